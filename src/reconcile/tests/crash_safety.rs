//! A crash between a create and its status write: the pending marker finds what was made.

use super::*;

#[tokio::test]
async fn an_api_created_before_a_crash_is_found_by_name_and_uid_not_created_again() {
    let rig = Rig::new();
    let mut obj = seed();
    rig.ready(&mut obj).await;
    // As if the operator crashed right after CreateApi: the marker is set, the id lost.
    let status = obj.status.as_mut().unwrap();
    status.api_id = None;
    status.pending_creates = vec!["HttpApi".into()];
    rig.reconcile(&mut obj).await.unwrap();
    assert_eq!(rig.aws.state().apis.len(), 1);
    assert!(!rig.writes().contains_key("CreateApi"));
    let status = obj.status.unwrap();
    assert_eq!(status.api_id, Some(rig.api_id()));
    assert!(status.pending_creates.is_empty());
}

#[tokio::test]
async fn a_pool_created_before_a_crash_is_found_by_name_and_uid_not_created_again() {
    let rig = Rig::new();
    let mut obj = seed();
    rig.ready(&mut obj).await;
    let status = obj.status.as_mut().unwrap();
    let id = status.identity_pool_id.take();
    status.pending_creates = vec!["IdentityPool".into()];
    rig.reconcile(&mut obj).await.unwrap();
    assert_eq!(rig.aws.state().pools.len(), 1);
    assert!(!rig.writes().contains_key("CreateIdentityPool"));
    assert_eq!(obj.status.unwrap().identity_pool_id, id);
}

#[tokio::test]
async fn a_same_named_api_without_our_tag_is_someone_elses_and_left_alone() {
    let rig = Rig::new();
    let mut obj = seed();
    rig.ready(&mut obj).await;
    let id = rig.api_id();
    rig.aws.state().api(&id).unwrap().api.tags.clear();
    let status = obj.status.as_mut().unwrap();
    status.api_id = None;
    status.pending_creates = vec!["HttpApi".into()];
    rig.reconcile(&mut obj).await.unwrap();
    assert_eq!(
        rig.aws.state().apis.len(),
        2,
        "ours is created beside theirs"
    );
    assert_ne!(obj.status.unwrap().api_id, Some(id));
}

#[tokio::test]
async fn without_a_pending_marker_a_lost_api_is_created_anew() {
    let rig = Rig::new();
    let mut obj = seed();
    rig.ready(&mut obj).await;
    let id = rig.api_id();
    rig.aws.state().apis.remove(&id);
    rig.reconcile(&mut obj).await.unwrap();
    assert_eq!(rig.writes().get("CreateApi"), Some(&1));
    assert_eq!(rig.writes().get("CreateRoute"), Some(&4));
}
