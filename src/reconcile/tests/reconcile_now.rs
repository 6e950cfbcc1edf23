//! Reconcile now (the annotation `authedapi.dev/reconcile-requested-at`): drift is
//! corrected at once instead of at the next resync, each value once, and a request waits
//! for a drift-check worker like any drift check.

use super::*;
use crate::reconcile::requested::RECONCILE_REQUESTED;

fn request(obj: &mut AuthedApi, value: &str) {
    obj.metadata
        .annotations
        .get_or_insert_with(Default::default)
        .insert(RECONCILE_REQUESTED.into(), value.into());
}

/// A Ready seed whose `GET /public` route someone deleted behind the operator's back.
async fn drifted(rig: &Rig) -> AuthedApi {
    let mut obj = seed();
    rig.ready(&mut obj).await;
    // The first reconcile's memory: the next is due only at the resync.
    let uid = obj.metadata.uid.clone().unwrap();
    assert!(rig.ctx.time_to_resync(&uid, 1, Mode::Act).is_some());
    let api_id = rig.api_id();
    rig.aws
        .state()
        .api(&api_id)
        .unwrap()
        .routes
        .retain(|r| r.key != "GET /public");
    rig.clear_counts();
    obj
}

#[tokio::test]
async fn a_request_corrects_drift_at_once_and_each_value_once() {
    let rig = Rig::new();
    let mut obj = drifted(&rig).await;

    apply(&obj, &rig.ctx).await.unwrap();
    assert_eq!(
        calls(&rig),
        0,
        "without a request, the drift waits for the resync"
    );

    request(&mut obj, "2026-12-04T16:00:00Z");
    apply(&obj, &rig.ctx).await.unwrap();
    assert_eq!(names(&rig.writes()), ["CreateRoute"]);
    let status = rig.cluster.last_status();
    assert_eq!(
        status.last_handled_reconcile_at.as_deref(),
        Some("2026-12-04T16:00:00Z")
    );
    assert!(status::is_ready(&status.conditions, 1));

    // The same request again, as the cache still shows it (before our status write):
    // handled already, nothing sent.
    rig.clear_counts();
    apply(&obj, &rig.ctx).await.unwrap();
    assert_eq!(calls(&rig), 0);
    obj.status = Some(status);
    apply(&obj, &rig.ctx).await.unwrap();
    assert_eq!(calls(&rig), 0);

    // A new value is a new request: a drift check (reads only, nothing to fix).
    request(&mut obj, "2026-12-04T16:05:00Z");
    apply(&obj, &rig.ctx).await.unwrap();
    assert!(calls(&rig) > 0);
    assert_eq!(rig.aws.state().writes_total(), 0);
}

#[tokio::test]
async fn a_request_waits_for_a_drift_check_worker_like_any_drift_check() {
    let rig = Rig::new();
    let mut obj = drifted(&rig).await;
    let taken = rig
        .ctx
        .drift_check_slots
        .clone()
        .try_acquire_many_owned(4)
        .unwrap();
    request(&mut obj, "now");
    let requeue = apply(&obj, &rig.ctx).await.unwrap();
    assert_ne!(requeue, Requeue::await_change());
    assert_eq!(calls(&rig), 0, "no worker: it comes back later");
    assert_eq!(rig.cluster.last_status().last_handled_reconcile_at, None);

    drop(taken);
    apply(&obj, &rig.ctx).await.unwrap();
    assert_eq!(names(&rig.writes()), ["CreateRoute"]);
    assert_eq!(
        rig.cluster
            .last_status()
            .last_handled_reconcile_at
            .as_deref(),
        Some("now")
    );
}

/// A failing object backs off; a request is one attempt now, not a way around the backoff
/// for every event after it.
#[tokio::test]
async fn a_request_retries_a_failing_object_once() {
    let rig = Rig::new();
    let mut obj = seed();
    let uid = obj.metadata.uid.clone().unwrap();
    let refused = AwsError {
        kind: ErrorKind::AccessDenied,
        service: "apigateway",
        operation: "CreateApi",
        code: "AccessDeniedException".into(),
        message: "not allowed".into(),
    };
    rig.aws.state().refused.insert("CreateApi", refused);
    let fail = async |obj: &AuthedApi| {
        let error = apply(obj, &rig.ctx).await.expect_err("refused");
        error_policy(Arc::new(obj.clone()), &error, rig.ctx.clone());
    };
    fail(&obj).await;
    obj.status = Some(rig.cluster.last_status());
    assert!(rig.ctx.backing_off(&uid, 1).is_some());

    // Asked to try again: one attempt at once, still refused.
    request(&mut obj, "r1");
    rig.clear_counts();
    fail(&obj).await;
    assert!(calls(&rig) > 0, "tried at once");
    obj.status = Some(rig.cluster.last_status());
    assert_eq!(
        obj.status
            .as_ref()
            .unwrap()
            .last_handled_reconcile_at
            .as_deref(),
        Some("r1")
    );
    // The same request, handled: the backoff holds again.
    rig.clear_counts();
    apply(&obj, &rig.ctx).await.unwrap();
    assert_eq!(calls(&rig), 0, "held by the backoff");

    // The policy fixed, a new request: done at once.
    rig.aws.state().refused.clear();
    request(&mut obj, "r2");
    apply(&obj, &rig.ctx).await.unwrap();
    assert_eq!(rig.aws.state().apis.len(), 1);
    assert!(status::is_ready(&rig.cluster.last_status().conditions, 1));
}
