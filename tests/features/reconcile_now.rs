//! Reconcile now: a new value of `authedapi.dev/reconcile-requested-at` gets drift made
//! out of band corrected within seconds instead of at the next resync (10 minutes by
//! default), recorded in status.lastHandledReconcileAt; requests for many objects at once
//! wait for the account's drift share like the resync's drift checks.

use std::time::{Duration, Instant};

use authedapi::reconcile::requested::RECONCILE_REQUESTED;

use crate::common::{Fixture, annotate, api_id, sum_metric, wait_for};

fn handled(value: &str) -> impl Fn(&authedapi::api::AuthedApi) -> bool + '_ {
    move |obj| {
        obj.status
            .as_ref()
            .and_then(|s| s.last_handled_reconcile_at.as_deref())
            == Some(value)
    }
}

#[tokio::test]
async fn drift_is_corrected_within_seconds_of_a_request() {
    let s = Fixture::new("op-now", &[]).await;
    let obj = s.seed_ready("now").await;
    let api = api_id(&obj);
    let gw = &s.aws.apigateway;
    let has_public = async || {
        gw.list_routes(&api)
            .await
            .unwrap()
            .iter()
            .any(|r| r.key == "GET /public")
    };
    let public = gw
        .list_routes(&api)
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.key == "GET /public")
        .unwrap();
    gw.delete_route(&api, &public.id).await.unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        !has_public().await,
        "without a request the drift waits for the resync"
    );

    let asked = Instant::now();
    annotate(
        &s.api,
        "now",
        RECONCILE_REQUESTED,
        Some("2026-12-04T16:00:00Z"),
    )
    .await;
    wait_for(
        &s.api,
        "now",
        &s.operator,
        Duration::from_secs(30),
        "handled",
        handled("2026-12-04T16:00:00Z"),
    )
    .await;
    assert!(has_public().await, "the deleted route is back");
    eprintln!(
        "[measure] reconcile now: drift corrected {:.2}s after the annotation",
        asked.elapsed().as_secs_f64()
    );
}

#[tokio::test]
async fn requests_for_many_objects_wait_for_the_accounts_drift_share() {
    // API Gateway at 2 requests/s, drift checks at half: 1 read/s, a burst of one drift
    // check (5 reads). Three requests at once are 15 reads: at least 10 s.
    let s = Fixture::new(
        "op-now-share",
        &[
            "--aws-rate-limit",
            "apigateway=2:2",
            "--drift-check-share",
            "0.5",
        ],
    )
    .await;
    let names = ["share-a", "share-b", "share-c"];
    for name in names {
        s.seed_ready(name).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let apigateway = async || {
        sum_metric(
            &s.operator.metrics().await,
            "authedapi_aws_requests_total",
            Some(("service", "ApiGatewayV2")),
        )
    };
    let before = apigateway().await;

    let asked = Instant::now();
    for name in names {
        annotate(&s.api, name, RECONCILE_REQUESTED, Some("all-at-once")).await;
    }
    for name in names {
        wait_for(
            &s.api,
            name,
            &s.operator,
            Duration::from_secs(60),
            "handled",
            handled("all-at-once"),
        )
        .await;
    }
    let took = asked.elapsed().as_secs_f64();
    let reads = apigateway().await - before;
    eprintln!("[measure] reconcile now: 3 requests, {reads} API Gateway reads in {took:.1}s");
    assert!(reads >= 15, "each request was a drift check: {reads} reads");
    // Never faster than the share allows: the burst, then 1 read/s.
    assert!(
        reads as f64 <= 5.0 + took + 1.0,
        "{reads} reads in {took:.1}s exceed the drift share"
    );
    assert!(
        took >= 9.5,
        "three drift checks at 1 read/s took {took:.1}s"
    );
}
