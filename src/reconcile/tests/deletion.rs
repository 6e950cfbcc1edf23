//! Deletion: everything of ours goes, nothing else; what is gone already counts as done.

use super::*;
use crate::api::DeletionPolicy;

#[tokio::test]
async fn deletion_removes_everything_of_ours_and_nothing_else() {
    let rig = Rig::new();
    let mut obj = seed();
    rig.ready(&mut obj).await;
    rig.aws
        .state()
        .functions
        .get_mut(PUBLIC_FN)
        .unwrap()
        .push(crate::aws::lambda::Permission {
            sid: "someone-elses".into(),
            principal: Some("s3.amazonaws.com".into()),
            source_arn: None,
        });
    rig.delete(&obj).await.unwrap();
    let s = rig.aws.state();
    assert!(
        s.apis.is_empty() && s.pools.is_empty() && s.roles.is_empty(),
        "{s:?}"
    );
    assert!(
        s.providers.is_empty(),
        "the provider we created, with no client id left"
    );
    assert_eq!(s.functions[PUBLIC_FN].len(), 1, "their statement stays");
    assert_eq!(s.functions[PUBLIC_FN][0].sid, "someone-elses");
    assert!(s.functions[PRIVATE_FN].is_empty());
    assert!(rig.cluster.config_maps.lock().unwrap().is_empty());
}

#[tokio::test]
async fn deletion_of_what_is_already_gone_succeeds() {
    let rig = Rig::new();
    let mut obj = seed();
    rig.ready(&mut obj).await;
    {
        let mut s = rig.aws.state();
        s.apis.clear();
        s.pools.clear();
        s.role_policies.clear();
        s.roles.clear();
        s.providers.clear();
        s.functions.remove(PUBLIC_FN);
    }
    rig.delete(&obj).await.unwrap();
}

#[tokio::test]
async fn deletion_after_a_crash_finds_an_api_whose_id_never_reached_status() {
    let rig = Rig::new();
    let mut obj = seed();
    rig.ready(&mut obj).await;
    let status = obj.status.as_mut().unwrap();
    status.api_id = None;
    status.pending_creates = vec!["HttpApi".into()];
    rig.delete(&obj).await.unwrap();
    assert!(rig.aws.state().apis.is_empty());
}

#[tokio::test]
async fn deletion_with_retain_changes_nothing_in_aws() {
    let rig = Rig::new();
    let mut obj = seed();
    rig.ready(&mut obj).await;
    obj.spec.deletion_policy = DeletionPolicy::Retain;
    rig.delete(&obj).await.unwrap();
    assert_eq!(rig.aws.state().writes_total(), 0);
    assert!(rig.cluster.events().iter().any(|e| e.reason == "Retained"));
}
