//! The organisation's tags on the rig: an operator started with `--resource-tags` and an
//! AuthedApi with `spec.tags`, every resource's tags read back from the emulator, then a
//! tag changed and one removed (the IAM judge sees TagRole, UntagRole and Cognito's
//! UntagResource under the shipped policy). Tags AWS or the operator would refuse are
//! refused at admission (spec.tags), at startup (the flag) and by the chart's schema.

mod common;

use std::collections::BTreeMap;
use std::process::Command;

use authedapi::api::AuthedApi;
use authedapi_rig::{TestNamespace, shared};
use kube::api::{Api, Patch, PatchParams};
use serde::Deserialize as _;
use serde_json::{Value, json};

use common::{Fixture, helm, install_crd, try_run};

type Tags = BTreeMap<String, String>;

fn tags(pairs: &[(&str, &str)]) -> Tags {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Every tagged resource of `obj` as the emulator has it: (what, tags).
async fn resources(f: &Fixture, obj: &AuthedApi) -> Vec<(String, Tags)> {
    let status = obj.status.clone().unwrap();
    let api_id = status.api_id.unwrap();
    let gateway = aws_sdk_apigatewayv2::Client::new(&f.config);
    let api = gateway.get_api().api_id(&api_id).send().await.unwrap();
    let stage = gateway
        .get_stage()
        .api_id(&api_id)
        .stage_name("$default")
        .send()
        .await
        .unwrap();
    let cognito = aws_sdk_cognitoidentity::Client::new(&f.config);
    let pool = cognito
        .describe_identity_pool()
        .identity_pool_id(status.identity_pool_id.unwrap())
        .send()
        .await
        .unwrap();
    let mut found = vec![
        (
            "HTTP API".to_owned(),
            Tags::from_iter(api.tags.unwrap_or_default()),
        ),
        (
            "stage".to_owned(),
            Tags::from_iter(stage.tags.unwrap_or_default()),
        ),
        (
            "identity pool".to_owned(),
            Tags::from_iter(pool.identity_pool_tags.unwrap_or_default()),
        ),
    ];
    let iam = aws_sdk_iam::Client::new(&f.config);
    let default_role = status
        .authenticated_role_arn
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    let mut roles = vec![default_role];
    roles.extend(status.access_roles.iter().map(|r| r.role_name.clone()));
    assert_eq!(roles.len(), 2, "the default role and the access rule's");
    for role in roles {
        let out = iam.get_role().role_name(&role).send().await.unwrap();
        let role_tags = out
            .role()
            .unwrap()
            .tags()
            .iter()
            .map(|t| (t.key().to_owned(), t.value().to_owned()))
            .collect();
        found.push((format!("role {role}"), role_tags));
    }
    found
}

fn api_gateway(what: &str) -> bool {
    what == "HTTP API" || what == "stage"
}

/// The TagsDrifted warnings of the namespace, by their notes.
async fn drift_warnings(f: &Fixture) -> Vec<String> {
    f.events()
        .await
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some("TagsDrifted"))
        .filter_map(|e| e.note)
        .collect()
}

/// Wait until a TagsDrifted warning contains `text` (events are published asynchronously).
async fn wait_warning(f: &Fixture, text: &str) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        if let Some(note) = drift_warnings(f)
            .await
            .into_iter()
            .find(|n| n.contains(text))
        {
            return note;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no TagsDrifted warning with {text:?}: {:?}",
            drift_warnings(f).await
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn the_organisations_tags_are_on_every_resource_and_follow_the_spec() {
    let f = Fixture::new("tags", &["--resource-tags", "cost-center=platform,env=rig"]).await;
    let mut object = f.seed("tagged").await;
    object["spec"]["tags"] = json!({"team": "a", "cost-center": "team-a"});
    object["spec"]["access"] = json!({"rules": [{"name": "admins", "claim": "email",
        "value": "admin@example.com", "routes": ["GET /private"]}]});
    let obj = f.apply_ready(&object).await;
    let owner = format!("{}/tagged", f.namespace.name);
    let uid = common::uid(&obj);
    let ours = tags(&[
        ("authedapi.dev/owner", &owner),
        ("authedapi.dev/uid", &uid),
        ("authedapi.dev/stage", "dev"),
        ("authedapi.dev/cluster", "test"),
    ]);
    let mut expected = tags(&[("team", "a"), ("cost-center", "team-a"), ("env", "rig")]);
    expected.extend(ours.clone());
    let found = resources(&f, &obj).await;
    assert_eq!(found.len(), 5);
    for (what, actual) in &found {
        assert_eq!(
            actual, &expected,
            "{what}: spec.tags over --resource-tags, ours"
        );
    }
    // The shared OIDC provider: the operator-wide tags only, at its creation.
    let iam = aws_sdk_iam::Client::new(&f.config);
    let provider = iam
        .get_open_id_connect_provider()
        .open_id_connect_provider_arn(
            obj.status
                .as_ref()
                .unwrap()
                .oidc_provider_arn
                .clone()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let provider_tags: Tags = provider
        .tags()
        .iter()
        .map(|t| (t.key().to_owned(), t.value().to_owned()))
        .collect();
    assert_eq!(
        provider_tags.get("cost-center").map(String::as_str),
        Some("platform")
    );
    assert_eq!(provider_tags.get("env").map(String::as_str), Some("rig"));
    assert!(!provider_tags.contains_key("team"), "{provider_tags:?}");

    // A tag changed: the roles and the pool follow; API Gateway keeps its own, reported.
    object["spec"]["tags"] = json!({"team": "b", "cost-center": "team-a"});
    let obj = f.apply_ready(&object).await;
    for (what, actual) in resources(&f, &obj).await {
        let team = if api_gateway(&what) { "a" } else { "b" };
        assert_eq!(actual["team"], team, "{what}");
        assert_eq!(actual["env"], "rig", "{what}");
        assert_eq!(actual["authedapi.dev/uid"], uid, "{what}");
    }
    let note = wait_warning(&f, "lacks the tags team=b").await;
    assert!(note.contains("aws apigatewayv2 tag-resource"), "{note}");

    // A tag removed: it leaves the roles and the pool (UntagRole, UntagResource).
    object["spec"]["tags"] = json!({"cost-center": "team-a"});
    let obj = f.apply_ready(&object).await;
    for (what, actual) in resources(&f, &obj).await {
        assert_eq!(
            actual.contains_key("team"),
            api_gateway(&what),
            "{what}: {actual:?}"
        );
        assert_eq!(actual["cost-center"], "team-a", "{what}");
        assert_eq!(actual["env"], "rig", "{what}");
        for (key, value) in &ours {
            assert_eq!(actual.get(key), Some(value), "{what}: ours stay");
        }
    }
    let note = wait_warning(&f, "carries the tags team").await;
    assert!(note.contains("--tag-keys team"), "{note}");
    assert_eq!(
        obj.status.unwrap().tag_keys,
        vec!["cost-center".to_owned(), "env".to_owned()]
    );
    let requests = common::operator_requests(&f.account);
    for call in [
        "iam:UntagRole",
        "cognito-identity:UntagResource",
        "iam:TagRole",
    ] {
        assert!(
            requests.iter().any(|r| r == call),
            "{call} never reached the emulator: {requests:?}"
        );
    }
}

#[tokio::test]
async fn spec_tags_aws_or_the_operator_would_refuse_are_refused_at_admission() {
    let client = shared::client().await;
    install_crd(&client).await.unwrap();
    let ns = TestNamespace::create(&client, "tags-admission")
        .await
        .unwrap();
    let api: Api<AuthedApi> = Api::namespaced(client, &ns.name);
    let with_tags = |name: &str, tags: Value| {
        let mut object = common::example();
        object["metadata"]["name"] = json!(name);
        object["spec"]["tags"] = tags;
        object
    };
    let put = |object: Value| {
        let api = api.clone();
        async move {
            let name = object["metadata"]["name"].as_str().unwrap().to_owned();
            api.patch(
                &name,
                &PatchParams::apply(common::TEST_MANAGER).force(),
                &Patch::Apply(object),
            )
            .await
            .map(drop)
        }
    };
    let one =
        |key: String, value: &str| Value::Object(serde_json::Map::from_iter([(key, json!(value))]));
    let too_many: serde_json::Map<String, Value> =
        (0..47).map(|i| (format!("k{i}"), json!("v"))).collect();
    for (tags, expected) in [
        (json!({"authedapi.dev/uid": "x"}), "the operator's own"),
        (json!({"AuthedApi.dev/cluster": "x"}), "the operator's own"),
        (
            json!({"aws:cloudformation:stack-name": "x"}),
            "reserved for AWS",
        ),
        (json!({"AWS:x": "x"}), "reserved for AWS"),
        (json!({"team;a": "x"}), "only letters, digits, spaces"),
        (json!({"team": "a;b"}), "spec.tags.team"),
        (one("k".repeat(129), "x"), "1 to 128 characters"),
        (one("team".into(), &"v".repeat(257)), "spec.tags.team"),
        (
            json!({"Team": "a", "team": "b"}),
            "differ in more than case",
        ),
        (Value::Object(too_many), "46"),
    ] {
        let e = put(with_tags("refused", tags.clone()))
            .await
            .expect_err("the API server accepted it")
            .to_string();
        assert!(
            e.contains("spec.tags") && e.contains(expected),
            "{tags}: {e}"
        );
    }
    // What AWS takes is admitted: 46 tags, letters of any script, spaces, _.:/=+-@, an
    // empty value, 128-character keys and 256-character values.
    let mut most: serde_json::Map<String, Value> =
        (0..43).map(|i| (format!("k{i}"), json!(""))).collect();
    most.insert("Kostenstelle Ünïcode".into(), json!("a_b.c:d/e=f+g-h@i"));
    most.insert("k".repeat(128), json!("v".repeat(256)));
    most.insert("team".into(), json!("a"));
    assert_eq!(most.len(), 46);
    put(with_tags("admitted", Value::Object(most)))
        .await
        .expect("admitted");
}

#[test]
fn resource_tags_the_operator_would_refuse_stop_it_at_startup() {
    let operator = || {
        let mut command = Command::new(env!("CARGO_BIN_EXE_authedapi"));
        command
            .arg("controller")
            .env_remove("AUTHEDAPI_RESOURCE_TAGS")
            // Nothing to connect to: the flag must be refused before any connection.
            .env("KUBECONFIG", "/nonexistent")
            .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9");
        command
    };
    for (flag, expected) in [
        ("authedapi.dev/cluster=other", "authedapi.dev/"),
        ("aws:createdBy=me", "aws:"),
        ("no-value", "KEY=VALUE"),
        ("team=a;b", "letters, digits, spaces"),
    ] {
        let (ok, _, stderr) = try_run(operator().args(["--resource-tags", flag]), None);
        assert!(!ok && stderr.contains(expected), "{flag}: {stderr}");
    }
    let many: Vec<String> = (0..47).map(|i| format!("k{i}=v")).collect();
    let (ok, _, stderr) = try_run(
        operator().env("AUTHEDAPI_RESOURCE_TAGS", many.join(",")),
        None,
    );
    assert!(!ok && stderr.contains("at most 46"), "{stderr}");
    let (ok, _, stderr) = try_run(operator().args(["--resource-tags", "Team=a,team=b"]), None);
    assert!(!ok && stderr.contains("twice"), "{stderr}");
}

/// The Deployment's environment as `helm template` renders it with `args`.
fn deployment_env(args: &[&str]) -> Result<BTreeMap<String, String>, String> {
    let mut command = helm();
    command.args([
        "template",
        "authedapi",
        "charts/authedapi",
        "--set",
        "aws.region=us-east-1",
    ]);
    command.args(args);
    let (ok, stdout, stderr) = try_run(&mut command, None);
    if !ok {
        return Err(stderr);
    }
    let deployment = serde_yaml::Deserializer::from_str(&stdout)
        .map(|doc| Value::deserialize(doc).unwrap())
        .find(|doc| doc["kind"] == "Deployment")
        .expect("a Deployment");
    Ok(
        deployment["spec"]["template"]["spec"]["containers"][0]["env"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| {
                Some((
                    e["name"].as_str()?.to_owned(),
                    e["value"].as_str()?.to_owned(),
                ))
            })
            .collect(),
    )
}

#[test]
fn the_chart_renders_resource_tags_and_refuses_what_the_operator_would() {
    let env = deployment_env(&[]).unwrap();
    assert!(
        !env.contains_key("AUTHEDAPI_RESOURCE_TAGS"),
        "none by default"
    );
    let env = deployment_env(&[
        "--set",
        "resourceTags.cost-center=platform",
        "--set-string",
        "resourceTags.env=a=b",
    ])
    .unwrap();
    assert_eq!(
        env["AUTHEDAPI_RESOURCE_TAGS"],
        "cost-center=platform,env=a=b"
    );
    for (set, expected) in [
        ("resourceTags.authedapi\\.dev/uid=x", "authedapi.dev/uid"),
        ("resourceTags.aws:x=y", "aws:x"),
        ("resourceTags.team=a;b", "/resourceTags/team"),
        ("resourceTags.a\\=b=c", "a=b"),
    ] {
        let e = deployment_env(&["--set", set]).expect_err(set);
        assert!(e.contains(expected), "--set {set}: {e}");
    }
}
