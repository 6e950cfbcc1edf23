//! Deleting an object: its finalizer removes every AWS resource it made — API, identity
//! pool, roles, the Lambda permissions and its OIDC provider — even with half of all AWS
//! requests throttled; with `deletionPolicy: Retain` everything stays in AWS.

use std::time::Duration;

use authedapi_rig::fault_proxy::{Fault, Rule};
use kube::api::DeleteParams;
use serde_json::json;

use crate::common::{self, Fixture, role_name, wait_gone};

/// Every resource the seed creates in the account, counted from the emulator.
async fn count_resources(s: &Fixture, role: &str) -> (usize, usize, bool, usize) {
    let apis = s.aws.apigateway.list_apis().await.unwrap().len();
    let pools = s.aws.cognito.list_identity_pools().await.unwrap().len();
    let role_exists = s.aws.iam.get_role(role).await.unwrap().is_some();
    let permissions = common::seed_permissions(&s.aws, &s.account)
        .await
        .iter()
        .map(|(_, p)| p.len())
        .sum();
    (apis, pools, role_exists, permissions)
}

#[tokio::test]
async fn deleting_the_object_removes_every_aws_resource() {
    let s = Fixture::new("op-delete", &[]).await;
    let obj = s.seed_ready("gone").await;
    let role = role_name(&obj);
    let provider = obj.status.clone().unwrap().oidc_provider_arn.unwrap();
    assert_eq!(count_resources(&s, &role).await, (1, 1, true, 2));

    s.delete("gone").await;
    assert_eq!(count_resources(&s, &role).await, (0, 0, false, 0));
    assert_eq!(s.aws.iam.get_oidc_provider(&provider).await.unwrap(), None);
}

#[tokio::test]
async fn with_deletion_policy_retain_deleting_the_object_keeps_every_aws_resource() {
    let s = Fixture::new("op-retain", &[]).await;
    let mut object = s.seed("kept").await;
    object["spec"]["deletionPolicy"] = json!("Retain");
    let obj = s.apply_ready(&object).await;
    let role = role_name(&obj);
    let provider = obj.status.clone().unwrap().oidc_provider_arn.unwrap();

    s.delete("kept").await;
    assert_eq!(count_resources(&s, &role).await, (1, 1, true, 2));
    assert!(
        s.aws
            .iam
            .get_oidc_provider(&provider)
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn deleting_objects_with_half_of_all_requests_throttled_removes_everything() {
    let s = Fixture::through_proxy("stress-delete", vec![], &[]).await;
    let operator = &s.operator;
    for name in ["one", "two", "three"] {
        s.seed_ready(name).await;
    }
    s.proxy()
        .set_rules(vec![Rule::new(Fault::Throttle).rate(0.5)]);
    for name in ["one", "two", "three"] {
        s.api.delete(name, &DeleteParams::default()).await.unwrap();
    }
    for name in ["one", "two", "three"] {
        wait_gone(&s.api, name, operator, Duration::from_secs(180)).await;
    }
    s.proxy().clear_rules();
    assert_nothing_left(&s).await;
    eprintln!(
        "[measure] deleting 3 objects under 50% throttling: {} requests",
        s.proxy().total()
    );
}

/// Deleting an object in a Stalled state finishes within a bounded time: one whose issuer
/// is not allowed made nothing (and the operator's policy does not even let it read that
/// issuer's provider: the delete used to wait on that for good); one whose Lambda
/// function does not exist made half of what it needs, and all of that goes.
#[tokio::test]
async fn deleting_a_stalled_object_finishes_within_a_bounded_time() {
    const BOUND: Duration = Duration::from_secs(30);
    let s = Fixture::new("op-delete-stalled", &[]).await;
    let mut refused = s.seed("refused").await;
    let spec = refused["spec"].as_object_mut().unwrap();
    spec.remove("auth0");
    spec.insert(
        "oidc".into(),
        json!({"issuer": "https://idp.example.com/realms/x", "clientId": "c"}),
    );
    let mut missing = s.seed("missing").await;
    missing["spec"]["routes"][0]["target"]["lambda"]["functionArn"] = json!(format!(
        "arn:aws:lambda:us-east-1:{}:function:does-not-exist",
        s.account.id
    ));
    for (object, reason) in [(refused, "NotAllowed"), (missing, "")] {
        let name = object["metadata"]["name"].as_str().unwrap().to_owned();
        common::apply(&s.api, &object).await;
        let stalled = common::wait_stalled(&s.api, &name, &s.operator).await;
        let (_, why, message) = common::condition(&stalled, "Stalled").unwrap();
        assert!(why.contains(reason), "{why}: {message}");
        let start = std::time::Instant::now();
        s.api.delete(&name, &DeleteParams::default()).await.unwrap();
        wait_gone(&s.api, &name, &s.operator, BOUND).await;
        eprintln!(
            "[measure] deleting an object Stalled {why}: gone in {:.1}s",
            start.elapsed().as_secs_f64()
        );
    }
    assert_nothing_left(&s).await;
}

/// A delete AWS refuses (AccessDenied on DeleteApi) says so in its conditions, with the way
/// out, instead of a stale reason; once AWS allows it, the delete finishes on its own (a
/// blocked delete is retried at least every 2 minutes).
#[tokio::test]
async fn a_refused_delete_names_its_blocker_and_finishes_once_allowed() {
    let s = Fixture::through_proxy("op-delete-denied", vec![], &[]).await;
    s.seed_ready("denied").await;
    s.proxy().set_rules(vec![
        Rule::new(Fault::AccessDenied)
            .service("apigateway")
            .operation("DeleteApi"),
    ]);
    s.api
        .delete("denied", &DeleteParams::default())
        .await
        .unwrap();
    let blocked = common::wait_for(
        &s.api,
        "denied",
        &s.operator,
        Duration::from_secs(60),
        "blocked",
        |o| {
            common::condition(o, "Stalled")
                .is_some_and(|(_, _, message)| message.contains("Deleting is blocked"))
        },
    )
    .await;
    let (status, reason, message) = common::condition(&blocked, "Stalled").unwrap();
    assert_eq!((status.as_str(), reason.as_str()), ("True", "AccessDenied"));
    assert!(
        message.contains("DeleteApi") && message.contains("deletionPolicy: Retain"),
        "{message}"
    );
    let start = std::time::Instant::now();
    s.proxy().clear_rules();
    wait_gone(&s.api, "denied", &s.operator, Duration::from_secs(150)).await;
    eprintln!(
        "[measure] a delete blocked by AccessDenied finished {:.1}s after AWS allowed it",
        start.elapsed().as_secs_f64()
    );
    assert_nothing_left(&s).await;
}

/// No API, identity pool, role under /authedapi/, OIDC provider or seed permission is left
/// in the fixture's account.
async fn assert_nothing_left(s: &Fixture) {
    assert!(s.aws.apigateway.list_apis().await.unwrap().is_empty());
    assert!(
        s.aws
            .cognito
            .list_identity_pools()
            .await
            .unwrap()
            .is_empty()
    );
    let iam = aws_sdk_iam::Client::new(&s.config);
    let roles = iam
        .list_roles()
        .path_prefix("/authedapi/")
        .send()
        .await
        .unwrap();
    assert!(roles.roles().is_empty());
    let providers = iam.list_open_id_connect_providers().send().await.unwrap();
    assert!(providers.open_id_connect_provider_list().is_empty());
    for (name, permissions) in common::seed_permissions(&s.aws, &s.account).await {
        assert!(permissions.is_empty(), "{name}: {permissions:?}");
    }
}
