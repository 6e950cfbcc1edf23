//! kstatus as Flux computes it: sigs.k8s.io/cli-utils's `status.Compute` (the library
//! behind Flux's `wait`/`healthChecks` and `kpt live status`), run by `.tools/bin/kstatus`
//! on the objects as the API server holds them. A Ready AuthedApi is Current; a generation
//! the operator has not seen yet is InProgress until it has; a Stalled one is Failed, with
//! the operator's message. The operator's own count (authedapi_objects) agrees.

mod common;

use std::time::Duration;

use authedapi::api::AuthedApi;
use common::{Fixture, Operator, apply, try_run, wait_ready, wait_stalled};
use kube::api::{Api, ApiResource, DynamicObject};
use serde_json::{Value, json};

/// What kstatus says of an object: (status, message).
fn kstatus(object: &Value) -> (String, String) {
    let tool = authedapi_rig::tool("kstatus").unwrap_or_else(|e| panic!("{e}"));
    let (ok, out, err) = try_run(
        &mut std::process::Command::new(tool),
        Some(&object.to_string()),
    );
    assert!(ok, "kstatus failed on {object:#}:\n{out}\n{err}");
    let result: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    (
        result["status"].as_str().expect("a status").to_owned(),
        result["message"].as_str().unwrap_or_default().to_owned(),
    )
}

/// The object as the API server returns it (every field, as Flux reads it).
async fn as_stored(s: &Fixture, name: &str) -> Value {
    let api: Api<DynamicObject> = Api::namespaced_with(
        s.client.clone(),
        &s.namespace.name,
        &ApiResource::erase::<AuthedApi>(&()),
    );
    serde_json::to_value(api.get(name).await.expect("the object")).unwrap()
}

/// The operator's `authedapi_objects` gauge for `condition`.
async fn objects(operator: &Operator, condition: &str) -> String {
    let text = operator.metrics().await;
    let series = format!("authedapi_objects{{condition=\"{condition}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&series))
        .unwrap_or_else(|| panic!("no {series} in\n{text}"))
        .to_owned()
}

#[tokio::test]
async fn ready_is_current_and_a_generation_not_seen_yet_is_in_progress() {
    let mut s = Fixture::new("kstatus-ready", &[]).await;
    let mut object = s.seed("ready").await;
    apply(&s.api, &object).await;
    s.ready("ready").await;

    let stored = as_stored(&s, "ready").await;
    assert_eq!(stored["metadata"]["generation"], 1);
    assert_eq!(
        kstatus(&stored),
        ("Current".to_owned(), "Resource is Ready".to_owned())
    );
    assert_eq!(objects(&s.operator, "Ready").await, "1");

    // No operator sees the change: the new generation is not observed.
    s.operator.stop();
    object["spec"]["cors"] = json!({"allowOrigins": ["https://app.example.com"]});
    apply(&s.api, &object).await;
    let stored = as_stored(&s, "ready").await;
    assert_eq!(stored["metadata"]["generation"], 2);
    assert_eq!(stored["status"]["observedGeneration"], 1);
    assert_eq!(
        kstatus(&stored),
        (
            "InProgress".to_owned(),
            "AuthedApi generation is 2, but latest observed generation is 1".to_owned()
        )
    );

    // An operator again: it reconciles generation 2, and kstatus says Current again.
    s.operator = Operator::start(&s.namespace.name, &s.account, &[], &[]).await;
    wait_ready(&s.api, "ready", &s.operator, common::READY_TIMEOUT).await;
    let stored = as_stored(&s, "ready").await;
    assert_eq!(stored["status"]["observedGeneration"], 2);
    assert_eq!(kstatus(&stored).0, "Current");
}

#[tokio::test]
async fn stalled_is_failed_with_the_operators_message() {
    let s = Fixture::new("kstatus-stalled", &[]).await;
    let mut object = s.seed("stalled").await;
    // A function of the account (the operator may use them) that does not exist.
    object["spec"]["routes"][0]["target"]["lambda"]["functionArn"] = json!(format!(
        "arn:aws:lambda:us-east-1:{}:function:no-such-function",
        s.account.id
    ));
    apply(&s.api, &object).await;
    let stalled = wait_stalled(&s.api, "stalled", &s.operator).await;
    let (_, reason, message) = common::condition(&stalled, "Stalled").expect("a Stalled condition");
    assert!(message.contains("no-such-function"), "{reason}: {message}");

    let stored = as_stored(&s, "stalled").await;
    assert_eq!(kstatus(&stored), ("Failed".to_owned(), message));
    // The operator counts it Stalled (once its cache has the status it wrote).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while objects(&s.operator, "Stalled").await != "1" {
        assert!(
            std::time::Instant::now() < deadline,
            "authedapi_objects{{condition=\"Stalled\"}} is not 1:\n{}",
            s.operator.metrics().await
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(objects(&s.operator, "Ready").await, "0");
}
