//! The custom domain name, shared by every AuthedApi of this cluster that names it (each
//! maps its own API on it at its own base path: see [`super::api_mapping`]). Handled as
//! the shared OIDC provider is:
//!
//! * created, tagged as this cluster's, only when absent;
//! * one that exists and is not this cluster's (no authedapi cluster tag of ours) is
//!   never used, changed or deleted: `NameConflict`;
//! * its certificate follows the spec on ours;
//! * released by an object that no longer maps on it: deleted once no other AuthedApi
//!   of this cluster uses it and no mapping at all (anyone's) is left on it.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::api::AuthedApi;
use crate::aws::domains::DomainName;
use crate::plan::{DomainPlan, MANAGED_BY, TAG_CLUSTER, TAG_MANAGED_BY};
use crate::reconcile::driver::{
    Change, Created, Driver, KindInfo, Managed, TagUpkeep, gone_is_done,
};
use crate::reconcile::events::{Action, Call, Verb};
use crate::reconcile::{Conflict, Error};

pub const INFO: KindInfo = KindInfo {
    name: "domain name",
    unique_names: true,
    pending: None,
    creates: &[Call::CreateDomainName],
    // Shared: its tags say whose it is, set at creation.
    tags: TagUpkeep::None,
};

/// The domain `name`, seen from the cluster `cluster_id`.
pub struct DomainNameKind<'a> {
    pub name: &'a str,
    pub cluster_id: &'a str,
}

/// What this object wants of the domain.
#[derive(Clone, Debug, PartialEq)]
pub enum Wanted {
    /// It exists, is ours, with the plan's certificate.
    InUse(DomainPlan),
    /// This object's mapping on it is gone.
    Released {
        /// Another AuthedApi of this cluster still names it: nothing to do.
        used_by_others: bool,
    },
}

/// The domain as found, and (when releasing) how many mappings are left on it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Found {
    pub domain: Option<DomainName>,
    pub mappings_left: usize,
}

#[derive(Clone, Debug, PartialEq)]
pub enum DomainChange {
    Create {
        certificate_arn: String,
        tags: BTreeMap<String, String>,
    },
    SetCertificate(String),
    Delete,
}

impl Change for DomainChange {
    fn verb(&self) -> Verb {
        match self {
            DomainChange::Create { .. } => Verb::Create,
            DomainChange::SetCertificate(_) => Verb::Update,
            DomainChange::Delete => Verb::Delete,
        }
    }

    fn action(&self) -> Action {
        Action::of(match self {
            DomainChange::Create { .. } => Call::CreateDomainName,
            DomainChange::SetCertificate(_) => Call::UpdateDomainName,
            DomainChange::Delete => Call::DeleteDomainName,
        })
    }

    fn describe(&self) -> String {
        match self {
            DomainChange::Create {
                certificate_arn, ..
            } => format!("Created the custom domain with certificate {certificate_arn}"),
            DomainChange::SetCertificate(arn) => {
                format!("Set the custom domain's certificate to {arn}")
            }
            DomainChange::Delete => "Deleted the custom domain (no mapping left on it)".into(),
        }
    }
}

/// Whether `tags` say this cluster's operator created the domain.
pub fn is_ours(cluster_id: &str, tags: &BTreeMap<String, String>) -> bool {
    tags.get(TAG_MANAGED_BY).map(String::as_str) == Some(MANAGED_BY)
        && tags.get(TAG_CLUSTER).map(String::as_str) == Some(cluster_id)
}

/// The pure part. A domain not ours never gets here in use (observe refuses it).
pub fn diff(cluster_id: &str, wanted: &Wanted, found: &Found) -> Vec<DomainChange> {
    match (wanted, &found.domain) {
        (Wanted::InUse(plan), None) => vec![DomainChange::Create {
            certificate_arn: plan.certificate_arn.clone(),
            tags: plan.tags.clone(),
        }],
        (Wanted::InUse(plan), Some(domain)) if domain.certificate_arn != plan.certificate_arn => {
            vec![DomainChange::SetCertificate(plan.certificate_arn.clone())]
        }
        (Wanted::InUse(_), Some(_)) => Vec::new(),
        (
            Wanted::Released {
                used_by_others: false,
            },
            Some(domain),
        ) if found.mappings_left == 0 && is_ours(cluster_id, &domain.tags) => {
            vec![DomainChange::Delete]
        }
        (Wanted::Released { .. }, _) => Vec::new(),
    }
}

/// The other AuthedApis (not `uid`, not being deleted) that name the domain `name`, by
/// spec or by status.
pub fn users<'o>(others: &'o [Arc<AuthedApi>], uid: &str, name: &str) -> Vec<&'o AuthedApi> {
    others
        .iter()
        .filter(|other| {
            other.metadata.uid.as_deref() != Some(uid)
                && other.metadata.deletion_timestamp.is_none()
        })
        .filter(|other| {
            let by_spec = other.spec.domain.as_ref().is_some_and(|d| d.name == name);
            let by_status = other
                .status
                .as_ref()
                .and_then(|s| s.domain.as_ref())
                .is_some_and(|d| d.name == name);
            by_spec || by_status
        })
        .map(|other| &**other)
        .collect()
}

/// Why the users of a shared domain cannot have `certificate_arn` on it: another names
/// another certificate (they would take it in turns).
pub fn certificate_disagreement(users: &[&AuthedApi], certificate_arn: &str) -> Option<String> {
    let (user, theirs) = users.iter().find_map(|user| {
        let theirs = &user.spec.domain.as_ref()?.certificate_arn;
        (theirs != certificate_arn).then_some((user, theirs))
    })?;
    Some(format!(
        "spec.domain.certificateArn: AuthedApi {}/{} names the certificate {theirs} for the \
         same domain; every AuthedApi sharing a domain must name the same certificate (change \
         them all)",
        user.metadata.namespace.as_deref().unwrap_or_default(),
        user.metadata.name.as_deref().unwrap_or_default(),
    ))
}

#[async_trait::async_trait]
impl Managed for DomainNameKind<'_> {
    type Desired = Wanted;
    type Observed = Found;
    type Change = DomainChange;

    fn info(&self) -> &'static KindInfo {
        &INFO
    }

    async fn observe(&self, d: &mut Driver<'_>, wanted: &Wanted) -> Result<Found, Error> {
        if *wanted
            == (Wanted::Released {
                used_by_others: true,
            })
        {
            return Ok(Found::default());
        }
        let domain = d.aws.domains.get_domain_name(self.name).await?;
        match (&domain, wanted) {
            (Some(found), Wanted::InUse(_)) if !is_ours(self.cluster_id, &found.tags) => {
                Err(Conflict {
                    what: format!("the custom domain {}", self.name),
                    why: format!(
                        "exists and was not created by this cluster's operator (no tag {TAG_CLUSTER}={})",
                        self.cluster_id
                    ),
                    remedy: "choose another spec.domain.name, or map the API on that domain \
                             yourself (aws apigatewayv2 create-api-mapping) and remove \
                             spec.domain",
                }
                .into())
            }
            (Some(found), Wanted::Released { .. }) if is_ours(self.cluster_id, &found.tags) => {
                let mappings_left = d.aws.domains.list_api_mappings(self.name).await?.len();
                Ok(Found {
                    domain,
                    mappings_left,
                })
            }
            _ => Ok(Found {
                domain,
                mappings_left: 0,
            }),
        }
    }

    fn diff(&self, wanted: &Wanted, found: &Found) -> Vec<DomainChange> {
        diff(self.cluster_id, wanted, found)
    }

    async fn apply(
        &self,
        d: &mut Driver<'_>,
        _: &Wanted,
        found: &mut Found,
        change: &DomainChange,
    ) -> Result<Option<Created>, Error> {
        let domains = &d.aws.domains;
        match change {
            DomainChange::Create {
                certificate_arn,
                tags,
            } => {
                found.domain = Some(
                    domains
                        .create_domain_name(self.name, certificate_arn, tags)
                        .await?,
                );
            }
            DomainChange::SetCertificate(arn) => {
                domains.set_domain_certificate(self.name, arn).await?;
                if let Some(domain) = &mut found.domain {
                    domain.certificate_arn = arn.clone();
                }
            }
            DomainChange::Delete => {
                gone_is_done(domains.delete_domain_name(self.name).await)?;
                found.domain = None;
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLUSTER: &str = "c1";
    const CERT: &str = "arn:aws:acm:us-east-1:1:certificate/a";

    fn ours() -> BTreeMap<String, String> {
        BTreeMap::from([
            (TAG_MANAGED_BY.to_owned(), MANAGED_BY.to_owned()),
            (TAG_CLUSTER.to_owned(), CLUSTER.to_owned()),
        ])
    }

    fn plan(cert: &str) -> DomainPlan {
        DomainPlan {
            name: "api.example.com".into(),
            certificate_arn: cert.into(),
            base_path: "dev".into(),
            tags: ours(),
        }
    }

    fn found(cert: &str, tags: BTreeMap<String, String>, mappings_left: usize) -> Found {
        Found {
            domain: Some(DomainName {
                name: "api.example.com".into(),
                certificate_arn: cert.into(),
                tags,
                ..Default::default()
            }),
            mappings_left,
        }
    }

    const RELEASED: Wanted = Wanted::Released {
        used_by_others: false,
    };

    #[test]
    fn an_absent_domain_is_created_tagged_as_ours() {
        assert_eq!(
            diff(CLUSTER, &Wanted::InUse(plan(CERT)), &Found::default()),
            vec![DomainChange::Create {
                certificate_arn: CERT.into(),
                tags: ours()
            }]
        );
    }

    #[test]
    fn our_domain_as_planned_needs_nothing_and_a_new_certificate_is_set() {
        let wanted = Wanted::InUse(plan(CERT));
        assert!(diff(CLUSTER, &wanted, &found(CERT, ours(), 1)).is_empty());
        assert_eq!(
            diff(CLUSTER, &wanted, &found("arn:old", ours(), 1)),
            vec![DomainChange::SetCertificate(CERT.into())]
        );
    }

    #[test]
    fn our_domain_goes_with_its_last_mapping_only() {
        assert_eq!(
            diff(CLUSTER, &RELEASED, &found(CERT, ours(), 0)),
            vec![DomainChange::Delete]
        );
        assert!(
            diff(CLUSTER, &RELEASED, &found(CERT, ours(), 1)).is_empty(),
            "a mapping (anyone's) is left"
        );
        assert!(diff(CLUSTER, &RELEASED, &Found::default()).is_empty());
    }

    #[test]
    fn a_domain_another_object_uses_or_someone_else_made_is_never_deleted() {
        let busy = Wanted::Released {
            used_by_others: true,
        };
        assert!(diff(CLUSTER, &busy, &found(CERT, ours(), 0)).is_empty());
        assert!(diff(CLUSTER, &RELEASED, &found(CERT, BTreeMap::new(), 0)).is_empty());
        let mut theirs = ours();
        theirs.insert(TAG_CLUSTER.into(), "c2".into());
        assert!(diff(CLUSTER, &RELEASED, &found(CERT, theirs, 0)).is_empty());
    }

    #[test]
    fn ours_needs_both_the_managed_by_and_this_clusters_tag() {
        assert!(is_ours(CLUSTER, &ours()));
        assert!(!is_ours("c2", &ours()));
        let mut hand_made = BTreeMap::new();
        hand_made.insert(TAG_CLUSTER.to_owned(), CLUSTER.to_owned());
        assert!(!is_ours(CLUSTER, &hand_made));
    }

    fn object(uid: &str, domain: Option<(&str, &str)>, deleting: bool) -> Arc<AuthedApi> {
        let mut spec = serde_json::json!({
            "stage": "dev",
            "auth0": {"domain": "t.auth0.com", "clientId": "c"},
            "routes": [{"route": "GET /x", "target": {"http": {"url": "https://example.com"}}}]
        });
        if let Some((name, cert)) = domain {
            spec["domain"] = serde_json::json!({"name": name, "certificateArn": cert});
        }
        let mut obj = AuthedApi::new(uid, serde_json::from_value(spec).unwrap());
        obj.metadata.uid = Some(uid.into());
        obj.metadata.namespace = Some("ns".into());
        if deleting {
            obj.metadata.deletion_timestamp =
                Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                    k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
                ));
        }
        Arc::new(obj)
    }

    #[test]
    fn users_are_the_other_live_objects_naming_the_domain() {
        let mut by_status = (*object("s", None, false)).clone();
        by_status.status = Some(crate::api::AuthedApiStatus {
            domain: Some(crate::api::DomainStatus {
                name: "a.example.com".into(),
                ..Default::default()
            }),
            ..Default::default()
        });
        let others = [
            object("me", Some(("a.example.com", CERT)), false),
            object("x", Some(("a.example.com", CERT)), false),
            object("gone", Some(("a.example.com", CERT)), true),
            object("y", Some(("b.example.com", CERT)), false),
            Arc::new(by_status),
        ];
        let uids: Vec<_> = users(&others, "me", "a.example.com")
            .iter()
            .map(|o| o.metadata.uid.clone().unwrap())
            .collect();
        assert_eq!(uids, vec!["x", "s"]);
    }

    #[test]
    fn users_naming_another_certificate_disagree() {
        let same = object("x", Some(("a.example.com", CERT)), false);
        let other = object("y", Some(("a.example.com", "arn:other")), false);
        let status_only = object("z", None, false);
        assert_eq!(certificate_disagreement(&[&same, &status_only], CERT), None);
        let why = certificate_disagreement(&[&same, &other], CERT).expect("disagrees");
        assert!(why.contains("ns/y") && why.contains("arn:other"), "{why}");
    }
}
