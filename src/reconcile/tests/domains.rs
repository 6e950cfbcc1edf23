//! The custom domain: created once and shared, a mapping per object, deleted with the
//! last; a certificate AWS refuses stalls; a domain not ours is never used or changed.

use super::*;
use crate::aws::domains::DomainName;

const CERT: &str =
    "arn:aws:acm:us-east-1:123456789012:certificate/0f4c1ab2-9c1e-4f3e-8d4b-1a2b3c4d5e6f";
const DOMAIN: &str = "api.example.com";

/// The seed on `DOMAIN` at `base_path`, as the object `name` (uid `uid`).
pub(super) fn on_domain(name: &str, uid: &str, base_path: &str) -> AuthedApi {
    let mut obj = seed();
    obj.metadata.name = Some(name.into());
    obj.metadata.uid = Some(uid.into());
    obj.spec.outputs = Some(crate::api::Outputs {
        config_map_name: format!("{name}-outputs"),
    });
    obj.spec.domain = Some(crate::api::Domain {
        name: DOMAIN.into(),
        certificate_arn: CERT.into(),
        base_path: Some(base_path.into()),
    });
    obj
}

/// `obj` in the controller's cache, as the others on the domain see it.
pub(super) fn known(rig: &mut Rig, obj: AuthedApi) {
    rig.objects.apply_watcher_event(&watcher::Event::Apply(obj));
}

pub(super) fn issued(rig: &Rig) {
    rig.aws.state().certificates.push(CERT.into());
}

fn mapping_keys(rig: &Rig) -> Vec<String> {
    let s = rig.aws.state();
    let mut keys: Vec<String> = s
        .mappings
        .get(DOMAIN)
        .into_iter()
        .flatten()
        .map(|m| m.key.clone())
        .collect();
    keys.sort();
    keys
}

#[tokio::test]
async fn two_objects_share_one_domain_at_their_base_paths_and_it_goes_with_the_last() {
    let mut rig = Rig::new();
    issued(&rig);
    let mut dev = on_domain("dev", "uid-dev", "dev");
    rig.ready(&mut dev).await;
    known(&mut rig, dev.clone());
    let mut prod = on_domain("prod", "uid-prod", "prod");
    rig.reconcile(&mut prod).await.unwrap();
    known(&mut rig, prod.clone());
    assert_eq!(rig.writes().get("CreateDomainName"), None, "created once");
    assert_eq!(mapping_keys(&rig), vec!["dev", "prod"]);

    let status = prod.status.clone().unwrap().domain.unwrap();
    assert_eq!(status.url.as_deref(), Some("https://api.example.com/prod"));
    let domain = rig.aws.state().domains[DOMAIN].clone();
    assert_eq!(
        status.target_domain_name.as_deref(),
        Some(domain.target.as_str())
    );
    assert_eq!(status.hosted_zone_id.as_deref(), Some("Z1UJRXOUMOOFQ8"));
    let outputs = rig.cluster.config_maps.lock().unwrap()["prod-outputs"].clone();
    let data = outputs.data.unwrap();
    assert_eq!(data["domainName"], DOMAIN);
    assert_eq!(data["domainTarget"], domain.target);
    assert_eq!(data["domainHostedZoneId"], "Z1UJRXOUMOOFQ8");

    rig.delete(&dev).await.unwrap();
    rig.objects
        .apply_watcher_event(&watcher::Event::Delete(dev.clone()));
    assert!(
        rig.aws.state().domains.contains_key(DOMAIN),
        "prod still maps on it"
    );
    assert_eq!(mapping_keys(&rig), vec!["prod"]);
    rig.delete(&prod).await.unwrap();
    assert!(
        rig.aws.state().domains.is_empty(),
        "{:?}",
        rig.aws.state().domains
    );
}

#[tokio::test]
async fn a_domain_another_object_names_is_kept_while_it_has_no_mapping_yet() {
    let mut rig = Rig::new();
    issued(&rig);
    let mut dev = on_domain("dev", "uid-dev", "dev");
    rig.ready(&mut dev).await;
    // prod names the domain but has not mapped on it yet.
    known(&mut rig, on_domain("prod", "uid-prod", "prod"));
    rig.delete(&dev).await.unwrap();
    assert!(rig.aws.state().domains.contains_key(DOMAIN));
    assert!(mapping_keys(&rig).is_empty());
}

#[tokio::test]
async fn a_mapping_someone_else_made_keeps_our_domain() {
    let rig = Rig::new();
    issued(&rig);
    let mut dev = on_domain("dev", "uid-dev", "dev");
    rig.ready(&mut dev).await;
    rig.aws
        .state()
        .mappings
        .get_mut(DOMAIN)
        .unwrap()
        .push(crate::aws::domains::ApiMapping {
            id: "theirs".into(),
            key: "legacy".into(),
            api_id: "their-api".into(),
            stage: "$default".into(),
        });
    rig.delete(&dev).await.unwrap();
    assert!(rig.aws.state().domains.contains_key(DOMAIN));
    assert_eq!(mapping_keys(&rig), vec!["legacy"]);
}

#[tokio::test]
async fn a_certificate_aws_refuses_stalls_with_its_message() {
    let rig = Rig::new();
    let mut obj = on_domain("dev", "uid-dev", "dev");
    let e = rig.reconcile(&mut obj).await.unwrap_err();
    assert_eq!(e.reason(), "AwsRejected");
    assert!(e.stalls());
    assert!(
        e.to_string().contains("BadRequestException") && e.to_string().contains(CERT),
        "{e}"
    );
    let stalled = obj.status.unwrap().conditions;
    assert!(
        stalled
            .iter()
            .any(|c| c.type_ == "Stalled" && c.message.contains(CERT))
    );
}

#[tokio::test]
async fn a_domain_that_is_not_ours_is_never_used_or_changed() {
    let rig = Rig::new();
    issued(&rig);
    let theirs = DomainName {
        name: DOMAIN.into(),
        certificate_arn: "arn:theirs".into(),
        target: "d-theirs.execute-api.us-east-1.amazonaws.com".into(),
        hosted_zone_id: "Z1UJRXOUMOOFQ8".into(),
        tags: BTreeMap::from([("team".into(), "web".into())]),
    };
    rig.aws
        .state()
        .domains
        .insert(DOMAIN.into(), theirs.clone());
    let mut obj = on_domain("dev", "uid-dev", "dev");
    let e = rig.reconcile(&mut obj).await.unwrap_err();
    assert_eq!(e.reason(), "NameConflict");
    assert!(e.stalls());
    assert!(
        e.to_string().contains("choose another spec.domain.name"),
        "{e}"
    );
    rig.delete(&obj).await.unwrap();
    let s = rig.aws.state();
    assert_eq!(s.domains[DOMAIN], theirs);
    assert!(s.mappings.get(DOMAIN).is_none_or(Vec::is_empty));
    for call in ["UpdateDomainName", "DeleteDomainName", "CreateApiMapping"] {
        assert_eq!(s.writes.get(call), None, "{call}");
    }
}

#[tokio::test]
async fn a_base_path_another_api_holds_stalls_with_name_conflict() {
    let rig = Rig::new();
    issued(&rig);
    let mut dev = on_domain("dev", "uid-dev", "dev");
    rig.ready(&mut dev).await;
    let mut other = on_domain("other", "uid-other", "dev");
    let e = rig.reconcile(&mut other).await.unwrap_err();
    assert_eq!(e.reason(), "NameConflict");
    assert!(e.to_string().contains("/dev"), "{e}");
    assert_eq!(mapping_keys(&rig), vec!["dev"]);
}

#[tokio::test]
async fn a_new_base_path_moves_the_mapping_and_a_new_domain_releases_the_old() {
    let rig = Rig::new();
    issued(&rig);
    let mut obj = on_domain("dev", "uid-dev", "dev");
    rig.ready(&mut obj).await;
    obj.spec.domain.as_mut().unwrap().base_path = None;
    obj.metadata.generation = Some(2);
    rig.reconcile(&mut obj).await.unwrap();
    assert_eq!(mapping_keys(&rig), vec![""]);
    assert_eq!(
        obj.status
            .as_ref()
            .unwrap()
            .domain
            .as_ref()
            .unwrap()
            .url
            .as_deref(),
        Some("https://api.example.com")
    );

    obj.spec.domain.as_mut().unwrap().name = "new.example.com".into();
    obj.metadata.generation = Some(3);
    rig.reconcile(&mut obj).await.unwrap();
    let s = rig.aws.state();
    assert_eq!(
        s.domains.keys().collect::<Vec<_>>(),
        vec!["new.example.com"]
    );
    assert_eq!(obj.status.unwrap().domain.unwrap().name, "new.example.com");
}

#[tokio::test]
async fn removing_the_domain_from_the_spec_releases_it() {
    let rig = Rig::new();
    issued(&rig);
    let mut obj = on_domain("dev", "uid-dev", "dev");
    rig.ready(&mut obj).await;
    obj.spec.domain = None;
    obj.metadata.generation = Some(2);
    rig.reconcile(&mut obj).await.unwrap();
    assert!(rig.aws.state().domains.is_empty());
    assert_eq!(obj.status.unwrap().domain, None);
}

#[tokio::test]
async fn a_new_certificate_is_set_unless_another_object_on_the_domain_names_another() {
    let mut rig = Rig::new();
    issued(&rig);
    let new_cert =
        "arn:aws:acm:us-east-1:123456789012:certificate/11111111-2222-3333-4444-555555555555";
    rig.aws.state().certificates.push(new_cert.into());
    let mut dev = on_domain("dev", "uid-dev", "dev");
    rig.ready(&mut dev).await;
    let prod = on_domain("prod", "uid-prod", "prod");
    known(&mut rig, prod);
    dev.spec.domain.as_mut().unwrap().certificate_arn = new_cert.into();
    dev.metadata.generation = Some(2);
    let e = rig.reconcile(&mut dev).await.unwrap_err();
    assert_eq!(e.reason(), "InvalidSpec");
    assert!(e.to_string().contains("team/prod"), "{e}");
    assert_eq!(rig.aws.state().domains[DOMAIN].certificate_arn, CERT);

    let mut prod = on_domain("prod", "uid-prod", "prod");
    prod.spec.domain.as_mut().unwrap().certificate_arn = new_cert.into();
    known(&mut rig, prod);
    rig.reconcile(&mut dev).await.unwrap();
    assert_eq!(rig.aws.state().domains[DOMAIN].certificate_arn, new_cert);
}

#[tokio::test]
async fn observe_only_plans_the_domain_and_its_mapping_and_makes_neither() {
    let rig = Rig::new();
    issued(&rig);
    let mut obj = on_domain("dev", "uid-dev", "dev");
    rig.ready(&mut obj).await;
    rig.aws.state().domains.clear();
    rig.aws.state().mappings.clear();
    obj.metadata
        .annotations
        .get_or_insert_default()
        .insert(OBSERVE_ONLY.into(), "true".into());
    rig.reconcile(&mut obj).await.unwrap();
    let planned = obj.status.unwrap().planned_changes;
    assert!(
        planned.iter().any(|p| p.starts_with("CreateDomainName")),
        "{planned:?}"
    );
    assert!(
        planned.iter().any(|p| p.starts_with("CreateApiMapping")),
        "{planned:?}"
    );
    assert!(rig.aws.state().domains.is_empty());
}
