//! Failures: which heal by retrying, which stall, and how they are reported.

use super::*;

#[tokio::test]
async fn a_role_still_propagating_is_progress_not_a_stall() {
    let rig = Rig::new();
    let mut obj = seed();
    rig.aws
        .fail_next(Call::SetIdentityPoolRoles, ErrorKind::Invalid);
    let e = rig.reconcile(&mut obj).await.unwrap_err();
    assert_eq!(e.reason(), "AwsUnavailable");
    assert!(!e.stalls());
    assert!(e.to_string().contains("propagate"), "{e}");
    // The next reconcile gets there.
    rig.reconcile(&mut obj).await.unwrap();
}

#[tokio::test]
async fn an_old_role_refused_by_cognito_stalls() {
    let rig = Rig::new();
    let mut obj = seed();
    rig.ready(&mut obj).await;
    {
        let mut s = rig.aws.state();
        for role in s.roles.values_mut() {
            role.created = Some(std::time::SystemTime::now() - Duration::from_secs(3600));
        }
        s.pool_roles.clear();
    }
    rig.aws
        .fail_next(Call::SetIdentityPoolRoles, ErrorKind::Invalid);
    let e = rig.reconcile(&mut obj).await.unwrap_err();
    assert_eq!(e.reason(), "AwsRejected");
    assert!(e.stalls());
}

#[tokio::test]
async fn a_create_that_races_is_observed_again_once() {
    let rig = Rig::new();
    let mut obj = seed();
    rig.aws
        .fail_next(Call::CreateOpenIdConnectProvider, ErrorKind::Conflict);
    rig.reconcile(&mut obj).await.unwrap();
    assert_eq!(rig.aws.state().providers.len(), 1);
}

#[tokio::test]
async fn a_missing_function_is_named_in_the_error() {
    let rig = Rig::new();
    rig.aws.state().functions.remove(PUBLIC_FN);
    let mut obj = seed();
    let e = rig.reconcile(&mut obj).await.unwrap_err();
    assert!(e.to_string().contains(PUBLIC_FN), "{e}");
    assert!(e.to_string().contains("does not exist"), "{e}");
}

#[tokio::test]
async fn throttling_is_retried_without_a_warning_event() {
    let rig = Rig::new();
    let mut obj = seed();
    rig.aws.fail_next(Call::CreateApi, ErrorKind::Throttled);
    let e = rig.reconcile(&mut obj).await.unwrap_err();
    assert_eq!(e.reason(), "Throttled");
    assert!(rig.cluster.events().iter().all(|e| !e.warning));
}

#[tokio::test]
async fn a_failure_is_a_warning_event_and_a_condition_with_the_same_words() {
    let rig = Rig::new();
    let mut obj = seed();
    rig.aws.fail_next(Call::CreateRole, ErrorKind::AccessDenied);
    let e = rig.reconcile(&mut obj).await.unwrap_err();
    let warning = rig
        .cluster
        .events()
        .into_iter()
        .find(|e| e.warning)
        .unwrap();
    assert_eq!(warning.reason, "AccessDenied");
    assert_eq!(warning.note, e.to_string());
    let status = obj.status.unwrap();
    let stalled = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Stalled")
        .unwrap();
    assert_eq!(stalled.message, e.to_string());
}

#[tokio::test]
async fn a_function_outside_the_namespaces_allowance_is_refused_before_any_aws_call() {
    let rig = Rig::new();
    let mut obj = seed();
    obj.spec.routes[0]
        .target
        .lambda
        .as_mut()
        .unwrap()
        .function_arn = "arn:aws:lambda:us-east-1:999999999999:function:theirs".into();
    let e = rig.reconcile(&mut obj).await.unwrap_err();
    assert_eq!(e.reason(), "NotAllowed");
    assert!(e.to_string().contains("nothing was changed in AWS"), "{e}");
    let s = rig.aws.state();
    assert_eq!((s.writes_total(), s.reads.len()), (0, 0));
}
