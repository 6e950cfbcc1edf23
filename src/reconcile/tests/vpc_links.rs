//! VPC links and private integrations: a link of ours created tagged and used, replaced
//! when its subnets change, put back when deleted or renamed behind our back, deleted
//! with the object after the API; a referenced link used and never touched, or the
//! object stalled while it does not exist; a link not ours never adopted.

use super::*;
use crate::aws::apigateway::IntegrationTarget;
use crate::aws::vpc_links::VpcLink;

const LISTENER: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/orders/50dc6c495c0c9188/f2f7dc8efc522ab2";

/// The seed with a private route (`tls` the server name to verify) through `link`.
pub(super) fn private(link: serde_json::Value) -> AuthedApi {
    let mut obj = seed();
    obj.spec.vpc_link = Some(serde_json::from_value(link).unwrap());
    obj.spec.routes.push(
        serde_json::from_value(json!({
            "route": "ANY /orders/{proxy+}",
            "target": {"private": {"listenerArn": LISTENER, "tlsServerName": "orders.internal"}}
        }))
        .unwrap(),
    );
    obj
}

pub(super) fn owned_link() -> serde_json::Value {
    json!({"subnetIds": ["subnet-0a1b2c3d", "subnet-4e5f6a7b"], "securityGroupIds": ["sg-0123abcd"]})
}

fn links(rig: &Rig) -> Vec<VpcLink> {
    rig.aws.state().vpc_links.values().cloned().collect()
}

/// The one link there is.
fn the_link(rig: &Rig) -> VpcLink {
    let all = links(rig);
    assert_eq!(all.len(), 1, "one link: {all:?}");
    all[0].clone()
}

/// The private integrations of the one API: (URI, link id, TLS name).
fn private_integrations(rig: &Rig) -> Vec<(String, String, Option<String>)> {
    let s = rig.aws.state();
    s.apis
        .values()
        .flat_map(|a| &a.integrations)
        .filter_map(|i| match &i.target {
            Some(IntegrationTarget::Private {
                uri,
                vpc_link_id,
                tls_server_name,
            }) => Some((uri.clone(), vpc_link_id.clone(), tls_server_name.clone())),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn a_link_of_ours_is_created_tagged_recorded_and_used_by_the_private_route() {
    let rig = Rig::new();
    let mut obj = private(owned_link());
    rig.ready(&mut obj).await;
    let link = &the_link(&rig);
    assert_eq!(link.subnet_ids, ["subnet-0a1b2c3d", "subnet-4e5f6a7b"]);
    assert_eq!(link.security_group_ids, ["sg-0123abcd"]);
    assert_eq!(
        link.tags.get(plan::TAG_UID).map(String::as_str),
        Some("uid-1")
    );
    let status = obj.status.clone().unwrap();
    assert_eq!(status.vpc_link_id.as_deref(), Some(link.id.as_str()));
    assert!(status.pending_creates.is_empty(), "{status:?}");
    assert_eq!(
        private_integrations(&rig),
        [(
            LISTENER.to_owned(),
            link.id.clone(),
            Some("orders.internal".to_owned())
        )]
    );
    // Steady: nothing to write.
    rig.reconcile(&mut obj).await.unwrap();
    assert!(rig.writes().is_empty(), "{:?}", rig.writes());
}

#[tokio::test]
async fn new_subnets_replace_the_link_after_the_integration_moved() {
    let rig = Rig::new();
    let mut obj = private(owned_link());
    rig.ready(&mut obj).await;
    let old = links(&rig)[0].id.clone();
    obj.spec.vpc_link =
        Some(serde_json::from_value(json!({"subnetIds": ["subnet-99999999"]})).unwrap());
    rig.reconcile(&mut obj).await.unwrap();
    let link = &the_link(&rig);
    assert_ne!(link.id, old);
    assert_eq!(link.subnet_ids, ["subnet-99999999"]);
    assert_eq!(private_integrations(&rig)[0].1, link.id);
    assert_eq!(obj.status.unwrap().vpc_link_id.as_ref(), Some(&link.id));
}

#[tokio::test]
async fn a_link_deleted_behind_our_back_is_created_again_and_a_renamed_one_renamed_back() {
    let rig = Rig::new();
    let mut obj = private(owned_link());
    rig.ready(&mut obj).await;
    let name = links(&rig)[0].name.clone();
    rig.aws.state().vpc_links.clear();
    rig.reconcile(&mut obj).await.unwrap();
    let link = &the_link(&rig);
    assert_eq!(
        private_integrations(&rig)[0].1,
        link.id,
        "the integration moved"
    );
    let writes = rig.writes();
    assert_eq!(writes.get("CreateVpcLink"), Some(&1), "{writes:?}");

    rig.clear_counts();
    rig.aws
        .state()
        .vpc_links
        .values_mut()
        .for_each(|l| l.name = "renamed".into());
    rig.reconcile(&mut obj).await.unwrap();
    assert_eq!(names(&rig.writes()), ["UpdateVpcLink"]);
    assert_eq!(links(&rig)[0].name, name);
}

#[tokio::test]
async fn an_integration_moved_to_another_target_behind_our_back_is_put_back() {
    let rig = Rig::new();
    let mut obj = private(owned_link());
    rig.ready(&mut obj).await;
    let link = links(&rig)[0].id.clone();
    {
        let mut s = rig.aws.state();
        for integration in s.apis.values_mut().flat_map(|a| &mut a.integrations) {
            if let Some(IntegrationTarget::Private {
                uri,
                tls_server_name,
                ..
            }) = &mut integration.target
            {
                *uri = "arn:aws:servicediscovery:us-east-1:123456789012:service/srv-other".into();
                *tls_server_name = None;
            }
        }
    }
    rig.reconcile(&mut obj).await.unwrap();
    assert_eq!(
        private_integrations(&rig),
        [(
            LISTENER.to_owned(),
            link,
            Some("orders.internal".to_owned())
        )]
    );
    assert_eq!(
        names(&rig.writes()),
        ["CreateIntegration", "DeleteIntegration", "UpdateRoute"]
    );
}

#[tokio::test]
async fn deleting_removes_the_link_after_the_api() {
    let rig = Rig::new();
    let mut obj = private(owned_link());
    rig.ready(&mut obj).await;
    rig.delete(&obj).await.unwrap();
    assert!(links(&rig).is_empty());
    assert!(rig.aws.state().apis.is_empty());
}

#[tokio::test]
async fn dropping_the_link_from_the_spec_deletes_it_once_no_integration_uses_it() {
    let rig = Rig::new();
    let mut obj = private(owned_link());
    rig.ready(&mut obj).await;
    obj.spec.vpc_link = None;
    obj.spec.routes.pop();
    rig.reconcile(&mut obj).await.unwrap();
    assert!(links(&rig).is_empty());
    assert!(private_integrations(&rig).is_empty());
    assert_eq!(obj.status.unwrap().vpc_link_id, None);
}

fn someone_elses_link(rig: &Rig, tags: &[(&str, &str)]) -> String {
    let link = VpcLink {
        id: "theirs1".into(),
        name: "shared".into(),
        subnet_ids: vec!["subnet-0a1b2c3d".into()],
        security_group_ids: vec![],
        status: "AVAILABLE".into(),
        tags: tags
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    };
    rig.aws
        .state()
        .vpc_links
        .insert(link.id.clone(), link.clone());
    link.id
}

#[tokio::test]
async fn a_referenced_link_is_used_and_never_changed_or_deleted() {
    let rig = Rig::new();
    let theirs = someone_elses_link(&rig, &[("team", "network")]);
    let mut obj = private(json!({"id": theirs}));
    rig.ready(&mut obj).await;
    assert_eq!(private_integrations(&rig)[0].1, theirs);
    assert_eq!(obj.status.clone().unwrap().vpc_link_id, None);
    rig.delete(&obj).await.unwrap();
    let link = the_link(&rig);
    assert_eq!(
        (link.id.as_str(), link.name.as_str()),
        (theirs.as_str(), "shared")
    );
    let writes = rig.writes();
    assert!(
        !writes.contains_key("DeleteVpcLink") && !writes.contains_key("UpdateVpcLink"),
        "{writes:?}"
    );
}

#[tokio::test]
async fn a_referenced_link_that_does_not_exist_stalls_the_object_saying_so() {
    let rig = Rig::new();
    let mut obj = private(json!({"id": "nolink1"}));
    let error = rig.reconcile(&mut obj).await.unwrap_err();
    assert_eq!(error.reason(), "InvalidSpec");
    assert!(error.stalls());
    assert!(
        error.to_string().contains("spec.vpcLink.id nolink1"),
        "{error}"
    );
    assert!(
        rig.aws.state().apis.is_empty(),
        "nothing made before the link is known"
    );
}

#[tokio::test]
async fn a_link_not_tagged_as_ours_is_never_adopted_even_with_our_name() {
    let rig = Rig::new();
    let mut obj = private(owned_link());
    // Same subnets, our would-be name, someone else's uid.
    let theirs = someone_elses_link(&rig, &[(plan::TAG_UID, "someone-else")]);
    rig.aws
        .state()
        .vpc_links
        .get_mut(&theirs)
        .unwrap()
        .subnet_ids = vec!["subnet-0a1b2c3d".into(), "subnet-4e5f6a7b".into()];
    rig.reconcile(&mut obj).await.unwrap();
    assert_eq!(links(&rig).len(), 2);
    assert_ne!(private_integrations(&rig)[0].1, theirs);
    rig.delete(&obj).await.unwrap();
    assert_eq!(
        links(&rig).iter().map(|l| l.id.clone()).collect::<Vec<_>>(),
        [theirs]
    );
}

#[tokio::test]
async fn a_crash_after_the_create_is_adopted_by_its_tag_not_made_twice() {
    let rig = Rig::new();
    let mut obj = private(owned_link());
    rig.aws.fail_next(Call::CreateApi, ErrorKind::Transient);
    rig.reconcile(&mut obj).await.unwrap_err();
    // As if the status write after CreateVpcLink never happened.
    let mut status = obj.status.clone().unwrap();
    status.vpc_link_id = None;
    status.pending_creates = vec!["VpcLink".into()];
    obj.status = Some(status);
    rig.reconcile(&mut obj).await.unwrap();
    assert_eq!(links(&rig).len(), 1);
    let status = obj.status.unwrap();
    assert_eq!(status.vpc_link_id.as_ref(), Some(&links(&rig)[0].id));
    assert!(status.pending_creates.is_empty());
}
