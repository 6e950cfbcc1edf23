//! What is not ours is never adopted, changed or deleted: NameConflict, left alone.

use super::*;

#[tokio::test]
async fn an_api_in_status_not_tagged_as_ours_stalls_with_name_conflict() {
    let rig = Rig::new();
    let mut obj = seed();
    rig.ready(&mut obj).await;
    let id = rig.api_id();
    rig.aws.state().api(&id).unwrap().api.tags.clear();
    let e = rig.reconcile(&mut obj).await.unwrap_err();
    assert_eq!(e.reason(), "NameConflict");
    assert!(e.stalls());
    assert!(e.to_string().contains("left alone"), "{e}");
    assert_eq!(rig.writes(), BTreeMap::new());
    let status = obj.status.unwrap();
    assert!(
        status
            .conditions
            .iter()
            .any(|c| c.type_ == "Stalled" && c.reason == "NameConflict")
    );
}

#[tokio::test]
async fn a_role_with_our_name_that_is_not_ours_stalls_and_is_never_touched() {
    let rig = Rig::new();
    let mut obj = seed();
    let plan_role = {
        rig.reconcile(&mut obj).await.unwrap();
        obj.status
            .as_ref()
            .unwrap()
            .authenticated_role_arn
            .clone()
            .unwrap()
    };
    let name = plan_role.rsplit('/').next().unwrap().to_owned();
    let theirs = Role {
        tags: BTreeMap::from([("team".into(), "other".into())]),
        ..rig.aws.state().roles[&name].clone()
    };
    rig.aws.state().roles.insert(name.clone(), theirs.clone());
    rig.clear_counts();
    let e = rig.reconcile(&mut obj).await.unwrap_err();
    assert_eq!(e.reason(), "NameConflict");
    assert!(e.to_string().contains(&format!("IAM role {name}")), "{e}");
    assert_eq!(rig.aws.state().roles[&name], theirs);
    // Deleting the object leaves their role too.
    rig.delete(&obj).await.unwrap();
    assert_eq!(rig.aws.state().roles.get(&name), Some(&theirs));
}

#[tokio::test]
async fn an_outputs_config_map_we_do_not_own_stalls_with_name_conflict() {
    let rig = Rig::new();
    let foreign = ConfigMap {
        metadata: kube::api::ObjectMeta {
            name: Some("seed-outputs".into()),
            ..Default::default()
        },
        data: Some(BTreeMap::from([("mine".into(), "yes".into())])),
        ..Default::default()
    };
    rig.cluster
        .config_maps
        .lock()
        .unwrap()
        .insert("seed-outputs".into(), foreign.clone());
    let mut obj = seed();
    let e = rig.reconcile(&mut obj).await.unwrap_err();
    assert_eq!(e.reason(), "NameConflict");
    assert_eq!(
        rig.cluster.config_maps.lock().unwrap()["seed-outputs"],
        foreign
    );
}
