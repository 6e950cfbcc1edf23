//! Spec edits: what goes, in which order, and the shared OIDC provider handed over.

use super::*;

#[tokio::test]
async fn a_removed_route_goes_with_its_integration_and_permission() {
    let rig = Rig::new();
    let mut obj = seed();
    rig.ready(&mut obj).await;
    obj.spec.routes.retain(|r| r.route != "GET /public");
    obj.metadata.generation = Some(2);
    rig.reconcile(&mut obj).await.unwrap();
    assert_eq!(
        names(&rig.writes()),
        vec!["DeleteIntegration", "DeleteRoute", "RemovePermission"],
        "GET /public needs no credentials: no role policy changes"
    );
    let status = obj.status.unwrap();
    assert_eq!(status.lambda_permissions, vec![PRIVATE_FN.to_string()]);
    assert!(status::is_ready(&status.conditions, 2));
}

#[tokio::test]
async fn a_removed_access_rule_takes_its_role_and_policy_with_it() {
    let rig = Rig::new();
    let mut obj = seed();
    rig.ready(&mut obj).await;
    obj.spec.access = None;
    obj.metadata.generation = Some(2);
    rig.reconcile(&mut obj).await.unwrap();
    let writes = rig.writes();
    assert_eq!(writes.get("DeleteRole"), Some(&1));
    assert_eq!(writes.get("DeleteRolePolicy"), Some(&1));
    assert_eq!(rig.aws.state().roles.len(), 1);
    assert!(obj.status.unwrap().access_roles.is_empty());
}

#[tokio::test]
async fn no_jwt_route_left_deletes_the_authorizer_after_the_route() {
    let rig = Rig::new();
    let mut obj = seed();
    rig.ready(&mut obj).await;
    obj.spec.routes.retain(|r| r.route != "GET /reports");
    obj.metadata.generation = Some(2);
    rig.reconcile(&mut obj).await.unwrap();
    let writes = rig.writes();
    assert_eq!(writes.get("DeleteAuthorizer"), Some(&1));
    assert_eq!(writes.get("DeleteRoute"), Some(&1));
    assert!(
        rig.aws
            .state()
            .apis
            .values()
            .next()
            .unwrap()
            .authorizers
            .is_empty()
    );
}

#[tokio::test]
async fn a_new_client_id_is_registered_before_the_old_one_is_released() {
    let rig = Rig::new();
    let mut obj = seed();
    rig.ready(&mut obj).await;
    obj.spec.auth0.as_mut().unwrap().client_id = "client-2".into();
    obj.metadata.generation = Some(2);
    rig.reconcile(&mut obj).await.unwrap();
    let provider = rig.aws.state().providers.values().next().cloned().unwrap();
    assert_eq!(provider.client_ids, vec!["client-2".to_string()]);
    assert_eq!(
        obj.status.unwrap().oidc_client_id.as_deref(),
        Some("client-2")
    );
}

#[tokio::test]
async fn a_client_id_another_object_uses_is_not_released() {
    let mut rig = Rig::new();
    let mut obj = seed();
    rig.ready(&mut obj).await;
    let mut other = seed();
    other.metadata.name = Some("other".into());
    other.metadata.uid = Some("uid-2".into());
    rig.objects
        .apply_watcher_event(&watcher::Event::Apply(other));
    obj.spec.auth0.as_mut().unwrap().client_id = "client-2".into();
    obj.metadata.generation = Some(2);
    rig.reconcile(&mut obj).await.unwrap();
    let mut ids = rig
        .aws
        .state()
        .providers
        .values()
        .next()
        .unwrap()
        .client_ids
        .clone();
    ids.sort();
    assert_eq!(ids, vec!["client-1".to_string(), "client-2".to_string()]);
}
