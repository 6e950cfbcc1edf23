//! The Argo CD health check (`deploy/argocd/health.lua`), run in a real Lua interpreter the
//! way Argo CD runs it: the live object as the global table `obj`, the result a table with
//! `status` and `message`.

use mlua::{Lua, LuaOptions, StdLib, Table};
use serde_json::{Value, json};

/// How JSON numbers reach the script. Argo CD's interpreter (gopher-lua) has only floats;
/// Lua 5.4 also has integers. The script must give the same answers with both.
#[derive(Clone, Copy, Debug)]
enum Numbers {
    Float,
    Integer,
}

/// `value` as a Lua value: objects and arrays become tables (arrays 1-based), null nil.
fn to_lua(lua: &Lua, value: &Value, numbers: Numbers) -> mlua::Result<mlua::Value> {
    Ok(match value {
        Value::Null => mlua::Value::Nil,
        Value::Bool(b) => mlua::Value::Boolean(*b),
        Value::Number(n) => match (numbers, n.as_i64()) {
            (Numbers::Integer, Some(i)) => mlua::Value::Integer(i),
            _ => mlua::Value::Number(n.as_f64().expect("a finite number")),
        },
        Value::String(s) => mlua::Value::String(lua.create_string(s)?),
        Value::Array(items) => {
            let table = lua.create_table()?;
            for (i, item) in items.iter().enumerate() {
                table.raw_set(i + 1, to_lua(lua, item, numbers)?)?;
            }
            mlua::Value::Table(table)
        }
        Value::Object(fields) => {
            let table = lua.create_table()?;
            for (key, field) in fields {
                table.raw_set(key.as_str(), to_lua(lua, field, numbers)?)?;
            }
            mlua::Value::Table(table)
        }
    })
}

/// Run the health check on `obj`: (status, message).
fn health_with(obj: &Value, numbers: Numbers) -> (String, String) {
    let script = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/argocd/health.lua"),
    )
    .expect("deploy/argocd/health.lua exists");
    // Only the libraries Argo CD's sandbox offers too (base, string, table, math): no io/os.
    let lua = Lua::new_with(
        StdLib::STRING | StdLib::TABLE | StdLib::MATH,
        LuaOptions::default(),
    )
    .expect("a Lua state");
    lua.globals()
        .set("obj", to_lua(&lua, obj, numbers).expect("obj converts"))
        .expect("obj is set");
    let hs: Table = lua
        .load(&script)
        .set_name("health.lua")
        .eval()
        .unwrap_or_else(|e| panic!("health.lua failed on {obj:#}: {e}"));
    let status: String = hs.get("status").expect("hs.status is a string");
    let message: String = hs.get("message").expect("hs.message is a string");
    (status, message)
}

/// The health of `obj`, checked to be the same with float and integer numbers.
fn health(obj: &Value) -> (String, String) {
    let float = health_with(obj, Numbers::Float);
    let integer = health_with(obj, Numbers::Integer);
    assert_eq!(
        float, integer,
        "the answer depends on the number representation"
    );
    float
}

fn condition(kind: &str, status: &str, reason: &str, message: &str, generation: i64) -> Value {
    json!({
        "type": kind,
        "status": status,
        "reason": reason,
        "message": message,
        "observedGeneration": generation,
        "lastTransitionTime": "2026-01-01T00:00:00Z",
    })
}

/// An AuthedApi at `generation`, with `status` when given.
fn object(generation: i64, status: Option<Value>) -> Value {
    let mut obj = json!({
        "apiVersion": "authedapi.dev/v1alpha1",
        "kind": "AuthedApi",
        "metadata": {"name": "api-auth-auth0", "namespace": "default", "generation": generation},
        "spec": {"stage": "dev", "auth0": {"domain": "https://myorg.us.auth0.com", "clientId": "abc"},
                 "routes": [{"route": "GET /private", "target": {"http": {"url": "https://example.com"}}}]},
    });
    if let Some(status) = status {
        obj["status"] = status;
    }
    obj
}

fn status(observed: i64, conditions: Vec<Value>) -> Value {
    json!({
        "observedGeneration": observed,
        "apiId": "kfgmgyfi",
        "apiEndpoint": "https://kfgmgyfi.execute-api.us-east-1.amazonaws.com",
        "conditions": conditions,
    })
}

fn assert_health(obj: &Value, want_status: &str, want_message: &str) {
    let (status, message) = health(obj);
    assert_eq!(
        (status.as_str(), message.as_str()),
        (want_status, want_message),
        "for {obj:#}"
    );
}

#[test]
fn no_status_is_progressing() {
    assert_health(
        &object(1, None),
        "Progressing",
        "Waiting for the operator to observe generation 1",
    );
}

#[test]
fn old_observed_generation_is_progressing_even_when_ready() {
    // Ready=True for generation 2 says nothing about the spec of generation 3.
    let obj = object(
        3,
        Some(status(
            2,
            vec![
                condition("Ready", "True", "Ready", "AWS matches the spec", 2),
                condition("Reconciling", "False", "Ready", "", 2),
                condition("Stalled", "False", "Ready", "", 2),
            ],
        )),
    );
    assert_health(
        &obj,
        "Progressing",
        "Waiting for the operator to observe generation 3",
    );
}

#[test]
fn status_without_observed_generation_is_progressing() {
    let obj = object(
        2,
        Some(json!({"conditions": [condition("Ready", "True", "Ready", "ok", 2)]})),
    );
    assert_health(
        &obj,
        "Progressing",
        "Waiting for the operator to observe generation 2",
    );
}

#[test]
fn ready_for_the_current_generation_is_healthy() {
    let obj = object(
        4,
        Some(status(
            4,
            vec![
                condition("Ready", "True", "Ready", "AWS matches the spec", 4),
                condition("Reconciling", "False", "Ready", "", 4),
                condition("Stalled", "False", "Ready", "", 4),
            ],
        )),
    );
    assert_health(&obj, "Healthy", "AWS matches the spec");
}

#[test]
fn reconciling_is_progressing_with_its_message() {
    let obj = object(
        2,
        Some(status(
            2,
            vec![
                condition(
                    "Ready",
                    "False",
                    "Reconciling",
                    "Creating the identity pool",
                    2,
                ),
                condition(
                    "Reconciling",
                    "True",
                    "Creating",
                    "Creating the Cognito identity pool",
                    2,
                ),
                condition("Stalled", "False", "Reconciling", "", 2),
            ],
        )),
    );
    assert_health(&obj, "Progressing", "Creating the Cognito identity pool");
}

#[test]
fn stalled_is_degraded_with_its_message() {
    let message = "AccessDenied: User: arn:aws:sts::123456789012:assumed-role/authedapi is not authorized to perform: apigateway:POST";
    let obj = object(
        5,
        Some(status(
            5,
            vec![
                condition("Ready", "False", "AccessDenied", message, 5),
                // Stalled wins over a Reconciling that is still True.
                condition("Reconciling", "True", "AccessDenied", "retrying", 5),
                condition("Stalled", "True", "AccessDenied", message, 5),
            ],
        )),
    );
    assert_health(&obj, "Degraded", message);
}

#[test]
fn stalled_without_a_message_reports_its_reason() {
    let obj = object(
        1,
        Some(status(
            1,
            vec![condition("Stalled", "True", "NameConflict", "", 1)],
        )),
    );
    assert_health(&obj, "Degraded", "NameConflict");
}

#[test]
fn no_condition_true_is_progressing() {
    let obj = object(
        1,
        Some(status(
            1,
            vec![condition("Ready", "False", "Pending", "Waiting for AWS", 1)],
        )),
    );
    assert_health(&obj, "Progressing", "Waiting for AWS");
    let obj = object(1, Some(json!({"observedGeneration": 1})));
    assert_health(&obj, "Progressing", "Waiting for the Ready condition");
}
