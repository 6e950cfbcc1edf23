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

/// The client ids on the provider after the seed, Ready, moves from client-1 to client-2
/// while `other` (the seed too) is in the cache.
async fn client_ids_after_a_move_beside(other: AuthedApi) -> Vec<String> {
    let mut rig = Rig::new();
    let mut obj = seed();
    rig.ready(&mut obj).await;
    rig.objects
        .apply_watcher_event(&watcher::Event::Apply(other));
    obj.spec.auth0.as_mut().unwrap().client_id = "client-2".into();
    obj.metadata.generation = Some(2);
    rig.reconcile(&mut obj).await.unwrap();
    rig.client_ids()
}

#[tokio::test]
async fn a_client_id_another_object_uses_is_not_released() {
    let mut other = another("other", "uid-2");
    // It recorded the pair before registering it, though its status does not name the
    // provider yet.
    other.status = Some(AuthedApiStatus {
        account_id: Some(ACCOUNT.into()),
        oidc_claims: vec![crate::api::OidcClaim {
            provider_arn: format!("arn:aws:iam::{ACCOUNT}:oidc-provider/tenant.us.auth0.com"),
            client_id: "client-1".into(),
        }],
        ..Default::default()
    });
    assert_eq!(
        client_ids_after_a_move_beside(other).await,
        vec!["client-1".to_string(), "client-2".to_string()]
    );
}

/// Another object whose spec names the same client id, and whose status (read afresh)
/// holds nothing, does not keep it: it registers it when it syncs.
#[tokio::test]
async fn a_client_id_only_an_object_that_made_nothing_names_is_released() {
    assert_eq!(
        client_ids_after_a_move_beside(another("other", "uid-2")).await,
        vec!["client-2".to_string()]
    );
}
