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

/// The seed federating `issuer`, which the operator's defaults (`*.auth0.com`) do not
/// allow, and which the operator's IAM policy does not cover either.
fn with_refused_issuer(rig: &Rig) -> AuthedApi {
    let mut obj = seed();
    obj.spec.auth0 = None;
    obj.spec.oidc = Some(crate::api::Oidc {
        issuer: "https://idp.example.com/realms/team".into(),
        client_id: "c".into(),
        audience: None,
    });
    rig.aws
        .state()
        .denied_issuers
        .insert("idp.example.com/realms/team".into());
    obj
}

/// Stalled NotAllowed from the start, it made nothing: its delete finishes at once, without
/// a call. (Before, the delete read the issuer's provider, which the operator may not, and
/// waited on AccessDenied for good, the condition still saying NotAllowed.)
#[tokio::test]
async fn an_object_stalled_not_allowed_is_deleted_without_an_aws_call() {
    let rig = Rig::new();
    let mut obj = with_refused_issuer(&rig);
    let e = rig.reconcile(&mut obj).await.unwrap_err();
    assert_eq!(e.reason(), "NotAllowed", "{e}");
    rig.clear_counts();
    rig.delete(&obj).await.unwrap();
    let s = rig.aws.state();
    assert_eq!(s.writes_total() + s.reads.values().sum::<usize>(), 0);
}

/// Ready, then edited to an issuer it may not use (NotAllowed): its delete removes what it
/// made, releasing the provider it registered, and never touches the refused issuer's.
#[tokio::test]
async fn an_object_edited_to_a_refused_issuer_deletes_what_it_made() {
    let rig = Rig::new();
    let mut obj = seed();
    rig.ready(&mut obj).await;
    let refused = with_refused_issuer(&rig);
    obj.spec.auth0 = refused.spec.auth0;
    obj.spec.oidc = refused.spec.oidc;
    obj.metadata.generation = Some(2);
    let e = rig.reconcile(&mut obj).await.unwrap_err();
    assert_eq!(e.reason(), "NotAllowed", "{e}");
    rig.delete(&obj).await.unwrap();
    let s = rig.aws.state();
    assert!(s.apis.is_empty() && s.pools.is_empty() && s.roles.is_empty());
    assert!(s.providers.is_empty(), "{:?}", s.providers);
}

/// A delete AWS refuses says so: Stalled with AWS's reason, and how to let the object go.
#[tokio::test]
async fn a_delete_aws_refuses_names_the_blocker_and_the_way_out() {
    let rig = Rig::new();
    let mut obj = seed();
    rig.ready(&mut obj).await;
    let name = obj
        .status
        .as_ref()
        .unwrap()
        .oidc_provider_arn
        .clone()
        .unwrap();
    let issuer = crate::plan::provider_name_of(&name).unwrap().to_owned();
    rig.aws.state().denied_issuers.insert(issuer);
    let e = rig.delete(&obj).await.unwrap_err();
    assert_eq!(e.reason(), "AccessDenied");
    let conditions = rig.cluster.last_status().conditions;
    let stalled = conditions.iter().find(|c| c.type_ == "Stalled").unwrap();
    assert_eq!(
        (stalled.status.as_str(), stalled.reason.as_str()),
        ("True", "AccessDenied")
    );
    assert!(
        stalled.message.contains("Deleting is blocked")
            && stalled.message.contains("GetOpenIDConnectProvider")
            && stalled.message.contains("deletionPolicy: Retain"),
        "{}",
        stalled.message
    );
    // The way out it names works.
    obj.spec.deletion_policy = DeletionPolicy::Retain;
    rig.delete(&obj).await.unwrap();
}

/// Found by the model (`model.rs`): a reconcile that registered the client id on the
/// provider and stopped before status named it (a crash, a failure), then a spec edit to
/// another client id: the first was forgotten, and stayed on the provider after the
/// delete, with its records. Each pair is now recorded before it is registered.
#[tokio::test]
async fn a_client_id_registered_before_a_failure_and_an_edit_is_not_forgotten() {
    let rig = Rig::new();
    let mut obj = seed();
    rig.aws.fail_next(Call::CreateApi, ErrorKind::Transient);
    assert!(rig.reconcile(&mut obj).await.is_err());
    assert_eq!(
        rig.client_ids(),
        vec!["client-1".to_string()],
        "registered, and status does not name it yet"
    );
    obj.spec.auth0.as_mut().unwrap().client_id = "client-2".into();
    obj.metadata.generation = Some(2);
    rig.reconcile(&mut obj).await.unwrap();
    assert_eq!(
        rig.client_ids(),
        vec!["client-2".to_string()],
        "the first let go once the pool moved off it"
    );
    rig.delete(&obj).await.unwrap();
    assert!(rig.aws.state().providers.is_empty());
}

/// Found by the model: an object let go of a client id because another object's spec
/// named it (that one not synced since its edit), and that one never registered it, so
/// nobody released it. Only what an object's status records (read afresh) holds a client
/// id now: the first delete releases it, and nothing is left after both.
#[tokio::test]
async fn a_client_id_another_object_only_names_is_released_and_nothing_is_left() {
    let mut rig = Rig::new();
    let mut first = seed();
    rig.ready(&mut first).await;
    let mut second = another("second", "uid-2");
    second.spec.auth0.as_mut().unwrap().client_id = "client-2".into();
    rig.reconcile(&mut second).await.unwrap();
    second.spec.auth0.as_mut().unwrap().client_id = "client-1".into();
    second.metadata.generation = Some(2);
    rig.objects
        .apply_watcher_event(&watcher::Event::Apply(second.clone()));
    rig.delete(&first).await.unwrap();
    assert_eq!(
        rig.client_ids(),
        vec!["client-2".to_string()],
        "the second object only names client-1"
    );
    rig.delete(&second).await.unwrap();
    assert!(
        rig.aws.state().providers.is_empty(),
        "{:?}",
        rig.aws.state().providers
    );
}
