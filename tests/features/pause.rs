//! The pause annotation (`authedapi.dev/paused: "true"`), as Flux's `suspend` and
//! Crossplane's `paused`: while set, the operator sends AWS nothing for the object (the
//! emulator's own record shows it), not even for a spec change or a delete; a condition
//! says so; when it goes, the object catches up.

use std::time::Duration;

use authedapi::reconcile::PAUSED;
use kube::api::DeleteParams;

use crate::common::{Fixture, annotate, apply, operator_requests, wait_for, wait_gone, wait_ready};

const TIMEOUT: Duration = Duration::from_secs(60);

#[tokio::test]
async fn a_paused_object_gets_no_aws_call_until_the_annotation_goes() {
    // A short resync: were the pause not honoured, a drift check would come within it.
    let s = Fixture::new("pause", &["--resync", "2s"]).await;
    let (api, account, aws, operator) = (&s.api, &s.account, &s.aws, &s.operator);
    let mut object = s.seed("paused").await;
    apply(api, &object).await;
    let ready = wait_ready(api, "paused", operator, TIMEOUT).await;
    let api_id = ready.status.unwrap().api_id.unwrap();

    annotate(api, "paused", PAUSED, Some("true")).await;
    wait_for(api, "paused", operator, TIMEOUT, "Paused", |o| {
        o.status
            .as_ref()
            .is_some_and(|s| authedapi::status::is_paused(&s.conditions))
    })
    .await;
    let before = operator_requests(account).len();
    // A spec change and a delete while paused: neither reaches AWS.
    object["spec"]["routes"].as_array_mut().unwrap().pop();
    apply(api, &object).await;
    api.delete("paused", &DeleteParams::default())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let during: Vec<String> = operator_requests(account).split_off(before);
    assert!(during.is_empty(), "AWS calls while paused: {during:?}");
    assert!(
        api.get_opt("paused").await.unwrap().is_some(),
        "the finalizer holds the object while paused"
    );
    assert!(aws.apigateway.get_api(&api_id).await.unwrap().is_some());

    // Unpaused, the delete goes ahead.
    annotate(api, "paused", PAUSED, None).await;
    wait_gone(api, "paused", operator, TIMEOUT).await;
    assert!(aws.apigateway.get_api(&api_id).await.unwrap().is_none());
}
