//! The IAM OIDC provider of the issuer, shared by every AuthedApi of that issuer (IAM allows
//! one per URL: host and path, so two issuers on one host with different paths are two
//! providers). Its tags say who owns it and record who uses what:
//!
//! * created (tagged as this cluster's) only when absent;
//! * on a provider authedapi manages, this cluster's claim on the client id is recorded,
//!   so no cluster removes a client id another still uses;
//! * on one this cluster created, that it added the client id is recorded *before* the
//!   add, so it never removes one it did not add;
//! * a provider someone else made gets the client id and nothing else.
//!
//! Releasing a pair (the spec moved to another, or the object is deleted) undoes that,
//! unless another AuthedApi of this cluster still uses it: the claim goes; on a provider
//! this cluster created, the client id goes if this cluster added it and no cluster
//! claims it; the provider goes once no client id is left.

use std::collections::BTreeMap;

use crate::api::AuthedApi;
use crate::aws::iam::OidcProvider;
use crate::plan::{self, MANAGED_BY, OidcPlan, TAG_CLAIM_PREFIX, TAG_CLUSTER, TAG_MANAGED_BY};
use crate::reconcile::Error;
use crate::reconcile::driver::{
    Change, Created, Driver, KindInfo, Managed, TagUpkeep, gone_is_done,
};
use crate::reconcile::events::{Action, Call, Verb};

pub const INFO: KindInfo = KindInfo {
    name: "OIDC provider",
    unique_names: true,
    pending: None,
    creates: &[Call::CreateOpenIdConnectProvider],
    tags: TagUpkeep::None,
};

/// The provider `arn`, seen from the cluster `cluster_id`.
pub struct OidcProviderKind<'a> {
    pub arn: &'a str,
    pub cluster_id: &'a str,
}

/// What this object wants of the provider.
#[derive(Clone, Debug, PartialEq)]
pub enum Wanted {
    /// It exists and trusts the plan's client id.
    Registered(OidcPlan),
    /// This object no longer uses `client_id` on it.
    Released {
        client_id: String,
        /// Another AuthedApi of this cluster still does: nothing to do.
        used_by_others: bool,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub enum OidcChange {
    Create {
        url: String,
        client_id: String,
        tags: BTreeMap<String, String>,
    },
    Record(BTreeMap<String, String>),
    AddClientId(String),
    Unrecord(String),
    RemoveClientId(String),
    Delete,
}

impl Change for OidcChange {
    fn verb(&self) -> Verb {
        match self {
            OidcChange::Create { .. } => Verb::Create,
            OidcChange::Delete => Verb::Delete,
            _ => Verb::Update,
        }
    }

    fn action(&self) -> Action {
        Action::of(match self {
            OidcChange::Create { .. } => Call::CreateOpenIdConnectProvider,
            OidcChange::Record(_) => Call::TagOpenIdConnectProvider,
            OidcChange::AddClientId(_) => Call::AddClientIdToOpenIdConnectProvider,
            OidcChange::Unrecord(_) => Call::UntagOpenIdConnectProvider,
            OidcChange::RemoveClientId(_) => Call::RemoveClientIdFromOpenIdConnectProvider,
            OidcChange::Delete => Call::DeleteOpenIdConnectProvider,
        })
    }

    fn describe(&self) -> String {
        match self {
            OidcChange::Create { url, .. } => format!("Created OIDC provider {url}"),
            OidcChange::Record(tags) => format!(
                "Recorded this cluster's use of client id {} on the OIDC provider",
                tags.values().next().map(String::as_str).unwrap_or_default()
            ),
            OidcChange::AddClientId(id) => format!("Added client id {id} to the OIDC provider"),
            OidcChange::Unrecord(key) => {
                format!("Dropped the record {key} from the OIDC provider")
            }
            OidcChange::RemoveClientId(id) => {
                format!("Removed client id {id} from the OIDC provider")
            }
            OidcChange::Delete => "Deleted the OIDC provider (no client id left)".into(),
        }
    }
}

/// Who a provider belongs to, from its tags.
struct Ownership {
    /// authedapi created it (some cluster's operator): it carries claim records.
    managed: bool,
    /// This cluster created it: only then may client ids be removed or it be deleted.
    ours: bool,
}

fn ownership(cluster_id: &str, tags: &BTreeMap<String, String>) -> Ownership {
    let managed = tags.get(TAG_MANAGED_BY).map(String::as_str) == Some(MANAGED_BY);
    Ownership {
        managed,
        ours: managed && tags.get(TAG_CLUSTER).map(String::as_str) == Some(cluster_id),
    }
}

pub fn diff(cluster_id: &str, wanted: &Wanted, observed: Option<&OidcProvider>) -> Vec<OidcChange> {
    match wanted {
        Wanted::Registered(oidc) => register(cluster_id, oidc, observed),
        Wanted::Released {
            used_by_others: true,
            ..
        } => Vec::new(),
        Wanted::Released { client_id, .. } => match observed {
            Some(provider) => release(cluster_id, client_id, provider),
            None => Vec::new(),
        },
    }
}

fn register(cluster_id: &str, oidc: &OidcPlan, observed: Option<&OidcProvider>) -> Vec<OidcChange> {
    let Some(provider) = observed else {
        let mut tags = oidc.tags.clone();
        tags.extend([oidc.claim.clone(), oidc.added.clone()]);
        return vec![OidcChange::Create {
            url: oidc.url.clone(),
            client_id: oidc.client_id.clone(),
            tags,
        }];
    };
    let owner = ownership(cluster_id, &provider.tags);
    let missing = !provider.client_ids.contains(&oidc.client_id);
    let mut records = BTreeMap::new();
    if owner.managed && provider.tags.get(&oidc.claim.0) != Some(&oidc.claim.1) {
        records.insert(oidc.claim.0.clone(), oidc.claim.1.clone());
    }
    if missing && owner.ours && provider.tags.get(&oidc.added.0) != Some(&oidc.added.1) {
        records.insert(oidc.added.0.clone(), oidc.added.1.clone());
    }
    let mut changes = Vec::new();
    if !records.is_empty() {
        changes.push(OidcChange::Record(records));
    }
    if missing {
        changes.push(OidcChange::AddClientId(oidc.client_id.clone()));
    }
    changes
}

fn release(cluster_id: &str, client_id: &str, provider: &OidcProvider) -> Vec<OidcChange> {
    let owner = ownership(cluster_id, &provider.tags);
    let our_claim = plan::claim_key(cluster_id, client_id);
    let mut changes = Vec::new();
    if owner.managed && provider.tags.contains_key(&our_claim) {
        changes.push(OidcChange::Unrecord(our_claim.clone()));
    }
    if !owner.ours {
        return changes;
    }
    let added = plan::added_key(cluster_id, client_id);
    let claimed_elsewhere = provider.tags.iter().any(|(key, value)| {
        key.starts_with(TAG_CLAIM_PREFIX) && *key != our_claim && value == client_id
    });
    let present = provider.client_ids.iter().any(|c| c == client_id);
    let removed = present && provider.tags.contains_key(&added) && !claimed_elsewhere;
    if removed {
        changes.push(OidcChange::RemoveClientId(client_id.to_owned()));
        changes.push(OidcChange::Unrecord(added));
    }
    let remaining = provider
        .client_ids
        .iter()
        .filter(|c| !(removed && *c == client_id))
        .count();
    if remaining == 0 {
        changes.push(OidcChange::Delete);
    }
    changes
}

/// Whether `other` (not `uid`, not being deleted) holds `client_id` on the provider `arn`
/// by its status: it records each pair before registering it and drops it once released
/// (an object from before those records: the pair its status names).
pub fn holds(other: &AuthedApi, uid: &str, arn: &str, client_id: &str) -> bool {
    if other.metadata.uid.as_deref() == Some(uid) || other.metadata.deletion_timestamp.is_some() {
        return false;
    }
    let Some(status) = other.status.as_ref() else {
        return false;
    };
    if status.oidc_claims.is_empty() {
        return status.oidc_provider_arn.as_deref() == Some(arn)
            && status.oidc_client_id.as_deref() == Some(client_id);
    }
    status
        .oidc_claims
        .iter()
        .any(|c| c.provider_arn == arn && c.client_id == client_id)
}

/// Whether `other` may hold the pair by now, as far as a cache that may be behind on its
/// status can tell: it holds it there, or its spec names the issuer and client id.
pub fn may_hold(other: &AuthedApi, uid: &str, arn: &str, client_id: &str) -> bool {
    if other.metadata.uid.as_deref() == Some(uid) || other.metadata.deletion_timestamp.is_some() {
        return false;
    }
    holds(other, uid, arn, client_id)
        || plan::issuer_of(&other.spec).is_ok_and(|issuer| {
            issuer.client_id == client_id && plan::provider_name_of(arn) == Some(&issuer.name)
        })
}

#[async_trait::async_trait]
impl Managed for OidcProviderKind<'_> {
    type Desired = Wanted;
    type Observed = Option<OidcProvider>;
    type Change = OidcChange;

    fn info(&self) -> &'static KindInfo {
        &INFO
    }

    async fn observe(
        &self,
        d: &mut Driver<'_>,
        wanted: &Wanted,
    ) -> Result<Option<OidcProvider>, Error> {
        if matches!(
            wanted,
            Wanted::Released {
                used_by_others: true,
                ..
            }
        ) {
            return Ok(None);
        }
        Ok(d.aws.iam.get_oidc_provider(self.arn).await?)
    }

    fn diff(&self, wanted: &Wanted, observed: &Option<OidcProvider>) -> Vec<OidcChange> {
        diff(self.cluster_id, wanted, observed.as_ref())
    }

    async fn apply(
        &self,
        d: &mut Driver<'_>,
        _: &Wanted,
        observed: &mut Option<OidcProvider>,
        change: &OidcChange,
    ) -> Result<Option<Created>, Error> {
        let iam = &d.aws.iam;
        match change {
            OidcChange::Create {
                url,
                client_id,
                tags,
            } => {
                let arn = iam
                    .create_oidc_provider(url, std::slice::from_ref(client_id), tags)
                    .await?;
                *observed = Some(OidcProvider {
                    arn,
                    url: url.trim_start_matches("https://").to_owned(),
                    client_ids: vec![client_id.clone()],
                    tags: tags.clone(),
                });
            }
            OidcChange::Record(tags) => {
                iam.tag_oidc_provider(self.arn, tags).await?;
                if let Some(p) = observed {
                    p.tags.extend(tags.clone());
                }
            }
            OidcChange::AddClientId(id) => {
                iam.add_client_id(self.arn, id).await?;
                if let Some(p) = observed {
                    p.client_ids.push(id.clone());
                }
            }
            OidcChange::Unrecord(key) => {
                gone_is_done(
                    iam.untag_oidc_provider(self.arn, std::slice::from_ref(key))
                        .await,
                )?;
                if let Some(p) = observed {
                    p.tags.remove(key);
                }
            }
            OidcChange::RemoveClientId(id) => {
                gone_is_done(iam.remove_client_id(self.arn, id).await)?;
                if let Some(p) = observed {
                    p.client_ids.retain(|c| c != id);
                }
            }
            OidcChange::Delete => {
                gone_is_done(iam.delete_oidc_provider(self.arn).await)?;
                *observed = None;
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLUSTER: &str = "c1";
    const ARN: &str = "arn:aws:iam::1:oidc-provider/t.auth0.com";

    fn oidc(client_id: &str) -> OidcPlan {
        OidcPlan {
            name: "t.auth0.com".into(),
            url: "https://t.auth0.com".into(),
            arn: ARN.into(),
            client_id: client_id.into(),
            tags: BTreeMap::from([
                (TAG_MANAGED_BY.to_owned(), MANAGED_BY.to_owned()),
                (TAG_CLUSTER.to_owned(), CLUSTER.to_owned()),
            ]),
            claim: (plan::claim_key(CLUSTER, client_id), client_id.into()),
            added: (plan::added_key(CLUSTER, client_id), client_id.into()),
        }
    }

    fn provider(client_ids: &[&str], tags: &[(String, String)]) -> OidcProvider {
        OidcProvider {
            arn: ARN.into(),
            url: "t.auth0.com".into(),
            client_ids: client_ids.iter().map(|c| c.to_string()).collect(),
            tags: tags.iter().cloned().collect(),
        }
    }

    fn managed_by(cluster: &str) -> Vec<(String, String)> {
        vec![
            (TAG_MANAGED_BY.to_owned(), MANAGED_BY.to_owned()),
            (TAG_CLUSTER.to_owned(), cluster.to_owned()),
        ]
    }

    fn with(mut tags: Vec<(String, String)>, more: &[(String, String)]) -> Vec<(String, String)> {
        tags.extend(more.iter().cloned());
        tags
    }

    fn released(client_id: &str) -> Wanted {
        Wanted::Released {
            client_id: client_id.into(),
            used_by_others: false,
        }
    }

    #[test]
    fn an_absent_provider_is_created_with_our_records() {
        let changes = diff(CLUSTER, &Wanted::Registered(oidc("a")), None);
        let [
            OidcChange::Create {
                tags, client_id, ..
            },
        ] = &changes[..]
        else {
            panic!("{changes:?}")
        };
        assert_eq!(client_id, "a");
        assert_eq!(
            tags.get(&plan::claim_key(CLUSTER, "a")).map(String::as_str),
            Some("a")
        );
        assert_eq!(
            tags.get(&plan::added_key(CLUSTER, "a")).map(String::as_str),
            Some("a")
        );
    }

    #[test]
    fn on_our_provider_the_add_is_recorded_before_it_is_made() {
        let p = provider(&["other"], &managed_by(CLUSTER));
        let changes = diff(CLUSTER, &Wanted::Registered(oidc("a")), Some(&p));
        let [OidcChange::Record(records), OidcChange::AddClientId(id)] = &changes[..] else {
            panic!("{changes:?}")
        };
        assert_eq!(id, "a");
        assert_eq!(records.len(), 2, "claim and added: {records:?}");
    }

    #[test]
    fn on_another_clusters_provider_only_the_claim_is_recorded() {
        let p = provider(&["other"], &managed_by("c2"));
        let changes = diff(CLUSTER, &Wanted::Registered(oidc("a")), Some(&p));
        let [OidcChange::Record(records), OidcChange::AddClientId(_)] = &changes[..] else {
            panic!("{changes:?}")
        };
        assert_eq!(
            records.keys().collect::<Vec<_>>(),
            vec![&plan::claim_key(CLUSTER, "a")]
        );
    }

    #[test]
    fn on_someone_elses_provider_the_client_id_is_added_and_nothing_recorded() {
        let p = provider(&["other"], &[]);
        assert_eq!(
            diff(CLUSTER, &Wanted::Registered(oidc("a")), Some(&p)),
            vec![OidcChange::AddClientId("a".into())]
        );
    }

    #[test]
    fn a_registered_pair_needs_nothing() {
        let o = oidc("a");
        let p = provider(
            &["a"],
            &with(managed_by(CLUSTER), &[o.claim.clone(), o.added.clone()]),
        );
        assert!(diff(CLUSTER, &Wanted::Registered(o), Some(&p)).is_empty());
    }

    #[test]
    fn releasing_the_last_client_id_we_added_deletes_our_provider() {
        let o = oidc("a");
        let p = provider(
            &["a"],
            &with(managed_by(CLUSTER), &[o.claim.clone(), o.added.clone()]),
        );
        assert_eq!(
            diff(CLUSTER, &released("a"), Some(&p)),
            vec![
                OidcChange::Unrecord(o.claim.0.clone()),
                OidcChange::RemoveClientId("a".into()),
                OidcChange::Unrecord(o.added.0.clone()),
                OidcChange::Delete,
            ]
        );
    }

    #[test]
    fn a_client_id_another_cluster_claims_stays() {
        let o = oidc("a");
        let theirs = (plan::claim_key("c2", "a"), "a".to_owned());
        let p = provider(
            &["a"],
            &with(
                managed_by(CLUSTER),
                &[o.claim.clone(), o.added.clone(), theirs],
            ),
        );
        assert_eq!(
            diff(CLUSTER, &released("a"), Some(&p)),
            vec![OidcChange::Unrecord(o.claim.0.clone())]
        );
    }

    #[test]
    fn a_client_id_we_did_not_add_stays_and_so_does_its_provider() {
        let o = oidc("a");
        let p = provider(
            &["a", "b"],
            &with(managed_by(CLUSTER), std::slice::from_ref(&o.claim)),
        );
        assert_eq!(
            diff(CLUSTER, &released("a"), Some(&p)),
            vec![OidcChange::Unrecord(o.claim.0.clone())]
        );
    }

    #[test]
    fn someone_elses_provider_is_never_changed_on_release() {
        let p = provider(&["a"], &[]);
        assert!(diff(CLUSTER, &released("a"), Some(&p)).is_empty());
        let p = provider(&["a"], &managed_by("c2"));
        assert!(diff(CLUSTER, &released("a"), Some(&p)).is_empty());
    }

    fn object(uid: &str, issuer: serde_json::Value) -> std::sync::Arc<AuthedApi> {
        let mut spec = serde_json::json!({
            "stage": "dev",
            "routes": [{"route": "GET /x", "target": {"http": {"url": "https://example.com"}}}]
        });
        spec.as_object_mut()
            .unwrap()
            .extend(issuer.as_object().unwrap().clone());
        let mut obj = AuthedApi::new("o", serde_json::from_value(spec).unwrap());
        obj.metadata.uid = Some(uid.into());
        std::sync::Arc::new(obj)
    }

    #[test]
    fn another_object_may_hold_a_pair_only_on_the_same_host_and_path() {
        let realm_a = "arn:aws:iam::1:oidc-provider/login.example.com/realms/a";
        let realm_b = "arn:aws:iam::1:oidc-provider/login.example.com/realms/b";
        let other = object(
            "other",
            serde_json::json!({"oidc": {"issuer": "https://login.example.com/realms/a", "clientId": "c"}}),
        );
        assert!(may_hold(&other, "me", realm_a, "c"));
        assert!(
            !holds(&other, "me", realm_a, "c"),
            "its status says nothing"
        );
        assert!(
            !may_hold(&other, "me", realm_b, "c"),
            "another path on the same host is another provider"
        );
        assert!(!may_hold(&other, "me", realm_a, "other-client"));
        assert!(!may_hold(&other, "other", realm_a, "c"), "not itself");
        let host_only = "arn:aws:iam::1:oidc-provider/login.example.com";
        assert!(!may_hold(&other, "me", host_only, "c"));
        let auth0 = object(
            "other",
            serde_json::json!({"auth0": {"domain": "https://T.auth0.com/", "clientId": "c"}}),
        );
        assert!(may_hold(&auth0, "me", ARN, "c"));
    }

    /// An object holds what its status records: the pairs it recorded before registering
    /// (an object from before those records: the pair its status names).
    #[test]
    fn another_object_holds_the_pairs_its_status_records() {
        let mut other = (*object(
            "other",
            serde_json::json!({"auth0": {"domain": "https://t.auth0.com", "clientId": "c"}}),
        ))
        .clone();
        let status = other.status.get_or_insert_default();
        status.oidc_provider_arn = Some(ARN.into());
        status.oidc_client_id = Some("c".into());
        assert!(
            holds(&other, "me", ARN, "c"),
            "by the pair its status names"
        );
        let claim = |client_id: &str| crate::api::OidcClaim {
            provider_arn: ARN.into(),
            client_id: client_id.into(),
        };
        other.status.as_mut().unwrap().oidc_claims = vec![claim("d")];
        assert!(
            !holds(&other, "me", ARN, "c"),
            "released, though its status still names it"
        );
        assert!(holds(&other, "me", ARN, "d"));
    }

    #[test]
    fn a_pair_another_object_uses_is_not_released() {
        let o = oidc("a");
        let p = provider(
            &["a"],
            &with(managed_by(CLUSTER), &[o.claim.clone(), o.added.clone()]),
        );
        let busy = Wanted::Released {
            client_id: "a".into(),
            used_by_others: true,
        };
        assert!(diff(CLUSTER, &busy, Some(&p)).is_empty());
    }
}
