//! Observe-only (`authedapi.dev/observe-only: "true"`), a dry run per object: the
//! operator reads AWS and compares it with the spec, writes nothing to AWS (the
//! emulator's own record shows it), and lists the changes it would make in
//! `status.plannedChanges` and `WouldChange` events. Removing the annotation applies them.

use std::time::Duration;

use authedapi::api::AuthedApi;
use authedapi::reconcile::OBSERVE_ONLY;
use k8s_openapi::api::events::v1::Event;

use crate::common::{Fixture, annotate, apply, is_read, operator_requests, wait_for, wait_ready};

const TIMEOUT: Duration = Duration::from_secs(60);

fn planned(o: &AuthedApi) -> Vec<String> {
    o.status
        .as_ref()
        .map(|s| s.planned_changes.clone())
        .unwrap_or_default()
}

fn writes(operations: &[String]) -> Vec<&String> {
    operations.iter().filter(|op| !is_read(op)).collect()
}

#[tokio::test]
async fn observe_only_lists_the_diff_writes_nothing_and_applies_it_once_lifted() {
    let s = Fixture::new("observe", &["--resync", "2s"]).await;
    let (api, account, aws, operator) = (&s.api, &s.account, &s.aws, &s.operator);

    // A new object, observe-only from the start: nothing exists, nothing is created.
    let mut object = s.seed("dry").await;
    object["metadata"]["annotations"] = serde_json::json!({OBSERVE_ONLY: "true"});
    apply(api, &object).await;
    let seen = wait_for(api, "dry", operator, TIMEOUT, "observed", |o| {
        !planned(o).is_empty()
    })
    .await;
    assert_eq!(
        planned(&seen),
        vec![
            "CreateOpenIDConnectProvider: Created OIDC provider https://myorg.us.auth0.com",
            "CreateApi: Created the HTTP API",
        ]
    );
    let ready = seen
        .status
        .as_ref()
        .unwrap()
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .cloned()
        .unwrap();
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("False", "ObserveOnly")
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    let requests = operator_requests(account);
    assert!(!requests.is_empty(), "it did look");
    assert!(
        writes(&requests).is_empty(),
        "AWS writes while observe-only: {requests:?}"
    );
    assert!(aws.apigateway.list_apis().await.unwrap().is_empty());
    let would: Vec<Event> = s
        .events()
        .await
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some("WouldChange"))
        .collect();
    assert!(
        would
            .iter()
            .any(|e| e.action.as_deref() == Some("Reconcile CreateApi")),
        "{would:?}"
    );

    // Lifted: the diff is applied and the list empties.
    annotate(api, "dry", OBSERVE_ONLY, None).await;
    let ready = wait_ready(api, "dry", operator, TIMEOUT).await;
    assert!(planned(&ready).is_empty());
    let api_id = ready.status.unwrap().api_id.unwrap();

    // Set again on a drifted object: the drift is reported, not corrected.
    annotate(api, "dry", OBSERVE_ONLY, Some("true")).await;
    let route = aws
        .apigateway
        .list_routes(&api_id)
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.key == "GET /public")
        .unwrap();
    aws.apigateway
        .delete_route(&api_id, &route.id)
        .await
        .unwrap();
    let before = operator_requests(account).len();
    let seen = wait_for(api, "dry", operator, TIMEOUT, "drift observed", |o| {
        !planned(o).is_empty()
    })
    .await;
    assert_eq!(
        planned(&seen),
        vec!["CreateRoute GET /public: Created route GET /public (NONE)"]
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    let since = operator_requests(account).split_off(before);
    assert!(
        writes(&since).is_empty(),
        "AWS writes while observe-only: {since:?}"
    );
    let keys: Vec<String> = aws
        .apigateway
        .list_routes(&api_id)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.key)
        .collect();
    assert!(!keys.contains(&"GET /public".to_string()), "{keys:?}");
}
