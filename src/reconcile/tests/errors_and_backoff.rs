//! Error reasons, backoff, and the registry of kinds.

use super::*;

#[test]
fn backoff_grows_and_is_capped() {
    let resync = Duration::from_secs(600);
    let first = backoff(1, false, resync);
    assert!(first >= Duration::from_secs(1) && first <= Duration::from_millis(1200));
    let fifth = backoff(5, false, resync);
    assert!(fifth >= Duration::from_secs(16) && fifth <= Duration::from_millis(19200));
    assert!(backoff(30, false, resync) <= Duration::from_secs(360));
    let stalled = backoff(1, true, resync);
    assert!(stalled >= Duration::from_secs(30) && stalled <= Duration::from_secs(36));
    assert!(backoff(30, true, resync) <= Duration::from_secs(720));
    let short = Duration::from_secs(10);
    assert!(backoff(30, false, short) <= Duration::from_secs(12));
    assert!(backoff(30, true, short) <= Duration::from_secs(36));
}

#[test]
fn reasons_and_stalls() {
    let aws = |kind| {
        Error::Aws(AwsError {
            kind,
            service: "iam",
            operation: "CreateRole",
            code: "X".into(),
            message: "m".into(),
        })
    };
    assert!(aws(ErrorKind::AccessDenied).stalls());
    assert!(aws(ErrorKind::Invalid).stalls());
    assert!(!aws(ErrorKind::Throttled).stalls());
    assert!(!aws(ErrorKind::Transient).stalls());
    assert_eq!(aws(ErrorKind::Throttled).reason(), "Throttled");
    assert!(Error::NoRegion.stalls());
    assert!(Error::InvalidSpec(plan::PlanError("x".into())).stalls());
    // The operator's own credentials that cannot be loaded (STS refused its IRSA token):
    // a person must fix them, and the reason says so wherever it surfaces.
    assert!(aws(ErrorKind::Credentials).stalls());
    assert_eq!(
        aws(ErrorKind::Credentials).reason(),
        "CredentialsUnavailable"
    );
    let Error::Aws(refused) = aws(ErrorKind::Credentials) else {
        unreachable!()
    };
    let unavailable = Error::AccountUnavailable {
        via: "the operator's defaults".into(),
        source: AccountError::Aws(refused),
    };
    assert!(unavailable.stalls());
    assert_eq!(unavailable.reason(), "CredentialsUnavailable");
}

#[test]
fn every_registered_kind_names_its_creates_once() {
    for kind in kinds::REGISTERED {
        let mut unique = kind.creates.to_vec();
        unique.dedup();
        assert_eq!(unique.len(), kind.creates.len(), "{}", kind.name);
    }
    // Each crash point is one create: two kinds sharing a call are told apart by its
    // occurrence.
    let points = kinds::crash_points();
    let mut unique = points.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), points.len(), "{points:?}");
    for kind in kinds::REGISTERED {
        assert!(
            kind.pending.is_none() || !kind.unique_names,
            "{}: a pending marker is for names AWS does not keep unique",
            kind.name
        );
    }
    // Objects already stored name their pending creates so: the markers must not change.
    let markers: Vec<&str> = kinds::REGISTERED.iter().filter_map(|k| k.pending).collect();
    assert_eq!(markers, ["VpcLink", "HttpApi", "IdentityPool"]);
}

/// A delete that waits on a person is retried at least every 2 minutes (plus jitter),
/// however many times it failed: the fix is seen soon, not after a 10-minute backoff.
#[tokio::test]
async fn a_blocked_delete_is_retried_within_two_minutes() {
    let rig = Rig::new();
    let mut obj = seed();
    obj.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        k8s_openapi::jiff::Timestamp::now(),
    ));
    let obj = Arc::new(obj);
    let blocked = Error::NoAccount("the operator's defaults".into());
    for _ in 0..10 {
        error_policy(obj.clone(), &blocked, rig.ctx.clone());
    }
    let wait = rig
        .ctx
        .backing_off(obj.metadata.uid.as_deref().unwrap(), 1)
        .expect("backing off");
    assert!(
        wait <= DELETE_RETRY_MAX.mul_f64(1.2),
        "{wait:?} after ten failures"
    );
}

/// As the controller runs it: a reconcile AWS refuses fails, `error_policy` backs it off
/// (from 30 s, since a person must act), the reconcile our own status write triggers is
/// held back without an AWS call, and a spec change (a new generation) is tried at once.
#[tokio::test]
async fn a_failed_reconcile_is_backed_off_and_a_spec_change_is_not() {
    let rig = Rig::new();
    let mut obj = seed();
    obj.metadata.finalizers = Some(vec![FINALIZER.into()]);
    let uid = obj.metadata.uid.clone().unwrap();
    rig.aws.fail_next(Call::CreateApi, ErrorKind::AccessDenied);

    let error = reconcile(Arc::new(obj.clone()), rig.ctx.clone())
        .await
        .expect_err("AWS refused the create");
    assert_eq!(error.reason(), "AccessDenied", "{error}");
    error_policy(Arc::new(obj.clone()), &error, rig.ctx.clone());
    let wait = rig.ctx.backing_off(&uid, 1).expect("backing off");
    assert!(
        wait > Duration::from_secs(25) && wait <= Duration::from_secs(36),
        "{wait:?}"
    );

    // The failure's own status write brings the object back: held, nothing sent.
    obj.status = Some(rig.cluster.last_status());
    let before = calls(&rig);
    let requeue = reconcile(Arc::new(obj.clone()), rig.ctx.clone())
        .await
        .unwrap();
    assert_ne!(
        requeue,
        Requeue::await_change(),
        "retried after the backoff"
    );
    assert_eq!(calls(&rig), before, "no AWS call while held");
    assert!(rig.aws.state().apis.is_empty());

    obj.metadata.generation = Some(2);
    reconcile(Arc::new(obj.clone()), rig.ctx.clone())
        .await
        .unwrap();
    assert_eq!(
        rig.aws.state().apis.len(),
        1,
        "the new generation was applied"
    );
    assert!(status::is_ready(&rig.cluster.last_status().conditions, 2));
}
