//! The Cognito identity pool federating the issuer's OIDC provider: no unauthenticated
//! identities, tagged as this object's (tags others added are kept; an organisation's tag
//! that left the spec and the operator's --resource-tags is removed).
//! Pool names are not unique in Cognito: the id in status finds ours, and a pending
//! marker set before the create lets a restart find one whose id never reached status.

use crate::api::AuthedApiStatus;
use crate::aws::cognito::{Cognito, IdentityPool};
use crate::plan;
use crate::reconcile::adoption;
use crate::reconcile::driver::{
    Change, Created, Driver, KindInfo, Managed, TagUpkeep, gone_is_done, missing_tags,
};
use crate::reconcile::events::{Action, Call, Verb};
use crate::reconcile::{Conflict, Error};

pub const INFO: KindInfo = KindInfo {
    name: "identity pool",
    unique_names: false,
    pending: Some("IdentityPool"),
    creates: &[Call::CreateIdentityPool],
    tags: TagUpkeep::Corrected,
};

pub struct IdentityPoolKind;

/// The pool as planned (its id is AWS's to give).
#[derive(Clone, Debug, PartialEq)]
pub struct Wanted {
    pub pool: IdentityPool,
    /// Keys of the organisation's tags this object put on its resources and no longer
    /// wants: removed where the pool has them.
    pub stale_tags: Vec<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum PoolChange {
    Create,
    /// Remove the organisation's tags the plan no longer has (before any update, which
    /// sends the tags the pool keeps).
    Untag {
        id: String,
        keys: Vec<String>,
    },
    /// UpdateIdentityPool replaces every field: this is the whole pool to send.
    Update(IdentityPool),
    Delete {
        id: String,
        name: String,
    },
}

impl Change for PoolChange {
    fn verb(&self) -> Verb {
        match self {
            PoolChange::Create => Verb::Create,
            PoolChange::Update(_) | PoolChange::Untag { .. } => Verb::Update,
            PoolChange::Delete { .. } => Verb::Delete,
        }
    }

    fn action(&self) -> Action {
        match self {
            PoolChange::Create => Action::of(Call::CreateIdentityPool),
            PoolChange::Update(_) => Action::of(Call::UpdateIdentityPool),
            PoolChange::Untag { .. } => Action::of(Call::UntagResource),
            PoolChange::Delete { .. } => Action::of(Call::DeleteIdentityPool),
        }
    }

    fn describe(&self) -> String {
        match self {
            PoolChange::Create => "Created the identity pool".into(),
            PoolChange::Update(pool) => format!("Updated identity pool {}", pool.id),
            PoolChange::Untag { id, keys } => format!(
                "Removed the tags {} (no longer in spec.tags or --resource-tags) from identity pool {id}",
                keys.join(", ")
            ),
            PoolChange::Delete { id, name } => format!("Deleted identity pool {name} ({id})"),
        }
    }
}

pub fn diff(wanted: Option<&Wanted>, observed: Option<&IdentityPool>) -> Vec<PoolChange> {
    match (wanted, observed) {
        (Some(_), None) => vec![PoolChange::Create],
        (Some(wanted), Some(current)) => {
            let mut changes = Vec::new();
            let stale: Vec<String> = wanted
                .stale_tags
                .iter()
                .filter(|k| current.tags.contains_key(*k) && !plan::reserved_tag_key(k))
                .cloned()
                .collect();
            let mut current = current.clone();
            if !stale.is_empty() {
                current.tags.retain(|k, _| !stale.contains(k));
                changes.push(PoolChange::Untag {
                    id: current.id.clone(),
                    keys: stale,
                });
            }
            let w = &wanted.pool;
            let mut arns = current.oidc_provider_arns.clone();
            arns.sort();
            let mut wanted_arns = w.oidc_provider_arns.clone();
            wanted_arns.sort();
            let missing = missing_tags(&w.tags, &current.tags);
            if current.name == w.name
                && current.allow_unauthenticated == w.allow_unauthenticated
                && arns == wanted_arns
                && missing.is_empty()
            {
                return changes;
            }
            // Keep tags others added; ours win.
            let mut tags = current.tags.clone();
            tags.extend(w.tags.clone());
            changes.push(PoolChange::Update(IdentityPool {
                id: current.id.clone(),
                tags,
                ..w.clone()
            }));
            changes
        }
        (None, Some(current)) => vec![PoolChange::Delete {
            id: current.id.clone(),
            name: current.name.clone(),
        }],
        (None, None) => Vec::new(),
    }
}

#[async_trait::async_trait]
impl Managed for IdentityPoolKind {
    type Desired = Option<Wanted>;
    type Observed = Option<IdentityPool>;
    type Change = PoolChange;

    fn info(&self) -> &'static KindInfo {
        &INFO
    }

    /// By the id in status; else, when a create may have gone unrecorded, by name and
    /// uid tag (a same-named pool without our tag is someone else's and is ignored).
    async fn observe(
        &self,
        d: &mut Driver<'_>,
        wanted: &Option<Wanted>,
    ) -> Result<Option<IdentityPool>, Error> {
        let cognito = d.aws.cognito.clone();
        if let Some(id) = d.status.identity_pool_id.clone() {
            match cognito.describe_identity_pool(&id).await? {
                Some(pool) if d.is_ours(&pool.tags) => return Ok(Some(pool)),
                Some(_) if wanted.is_some() => {
                    return Err(
                        Conflict::untagged(d, format!("the identity pool {id} in status"))
                            .remedy("delete the status' identityPoolId or restore the pool's tags")
                            .into(),
                    );
                }
                // Not ours: nothing of ours to delete. Or deleted behind our back.
                _ => {}
            }
        }
        // The pool spec.adopt names, at the first reconcile: its identities keep their ids.
        if let Some(id) = adoption::pool_to_adopt(d).filter(|_| wanted.is_some()) {
            let pool = adoption::pool(d, &id).await?;
            d.record(|status| status.identity_pool_id = Some(id.clone()))
                .await?;
            return Ok(Some(pool));
        }
        if !d.is_pending(&INFO) {
            return Ok(None);
        }
        let name = &d.plan.identity_pool_name;
        for id in cognito.find_identity_pools_by_name(name).await? {
            if let Some(pool) = cognito.describe_identity_pool(&id).await?
                && d.is_ours(&pool.tags)
            {
                return Ok(Some(pool));
            }
        }
        Ok(None)
    }

    fn diff(&self, wanted: &Option<Wanted>, observed: &Option<IdentityPool>) -> Vec<PoolChange> {
        diff(wanted.as_ref(), observed.as_ref())
    }

    async fn apply(
        &self,
        d: &mut Driver<'_>,
        wanted: &Option<Wanted>,
        observed: &mut Option<IdentityPool>,
        change: &PoolChange,
    ) -> Result<Option<Created>, Error> {
        let cognito = d.aws.cognito.clone();
        match (change, wanted) {
            (PoolChange::Create, Some(wanted)) => {
                let pool = cognito.create_identity_pool(&wanted.pool).await?;
                let made = created(&pool);
                *observed = Some(pool);
                return Ok(Some(made));
            }
            (PoolChange::Untag { id, keys }, _) => {
                let plan = d.plan;
                let arn = Cognito::pool_arn(&plan.partition, &plan.region, &plan.account, id);
                cognito.untag(&arn, keys).await?;
                if let Some(pool) = observed {
                    pool.tags.retain(|k, _| !keys.contains(k));
                }
            }
            (PoolChange::Update(pool), _) => {
                cognito.update_identity_pool(pool).await?;
                *observed = Some(pool.clone());
            }
            (PoolChange::Delete { id, .. }, _) => {
                gone_is_done(cognito.delete_identity_pool(id).await)?;
                *observed = None;
            }
            (PoolChange::Create, None) => {}
        }
        Ok(None)
    }

    /// The pool id, which the roles' trust and the outputs read, saved before them.
    fn record(&self, status: &mut AuthedApiStatus, made: &Created) {
        status.identity_pool_id = Some(made.id.clone());
    }

    /// The pool of ours found by name, when it is wanted.
    fn adopted(
        &self,
        _d: &Driver<'_>,
        wanted: &Option<Wanted>,
        observed: &Option<IdentityPool>,
    ) -> Option<Created> {
        observed.as_ref().filter(|_| wanted.is_some()).map(created)
    }
}

fn created(pool: &IdentityPool) -> Created {
    Created {
        id: pool.id.clone(),
        endpoint: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn pool(id: &str, tags: &[(&str, &str)]) -> IdentityPool {
        IdentityPool {
            id: id.into(),
            name: "pool".into(),
            allow_unauthenticated: false,
            oidc_provider_arns: vec!["arn:p".into()],
            tags: tags
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
        }
    }

    fn wanted() -> Wanted {
        Wanted {
            pool: pool("", &[("authedapi.dev/uid", "u")]),
            stale_tags: Vec::new(),
        }
    }

    #[test]
    fn a_missing_pool_is_created() {
        assert_eq!(diff(Some(&wanted()), None), vec![PoolChange::Create]);
    }

    #[test]
    fn a_pool_as_planned_needs_nothing_and_foreign_tags_are_no_difference() {
        let current = pool("p", &[("authedapi.dev/uid", "u"), ("team", "x")]);
        assert!(diff(Some(&wanted()), Some(&current)).is_empty());
    }

    #[test]
    fn each_field_and_a_lost_tag_are_updated_keeping_foreign_tags() {
        let base = pool("p", &[("authedapi.dev/uid", "u"), ("team", "x")]);
        let mut changed = Vec::new();
        let mut c = base.clone();
        c.name = "renamed".into();
        changed.push(c);
        let mut c = base.clone();
        c.allow_unauthenticated = true;
        changed.push(c);
        let mut c = base.clone();
        c.oidc_provider_arns = vec!["arn:other".into()];
        changed.push(c);
        changed.push(pool("p", &[("team", "x")]));
        for current in changed {
            let changes = diff(Some(&wanted()), Some(&current));
            let [PoolChange::Update(sent)] = &changes[..] else {
                panic!("{current:?}: {changes:?}");
            };
            assert_eq!(sent.id, "p");
            assert_eq!(sent.name, "pool");
            assert!(!sent.allow_unauthenticated);
            assert_eq!(sent.oidc_provider_arns, vec!["arn:p".to_string()]);
            assert_eq!(sent.tags.get("team").map(String::as_str), Some("x"));
            assert_eq!(
                sent.tags.get("authedapi.dev/uid").map(String::as_str),
                Some("u")
            );
        }
    }

    #[test]
    fn a_tag_the_plan_no_longer_has_is_removed_and_the_update_keeps_the_rest() {
        let mut w = wanted();
        w.stale_tags = vec!["team".into(), "not-there".into()];
        let current = pool(
            "p",
            &[("authedapi.dev/uid", "u"), ("team", "a"), ("x", "y")],
        );
        assert_eq!(
            diff(Some(&w), Some(&current)),
            vec![PoolChange::Untag {
                id: "p".into(),
                keys: vec!["team".into()]
            }]
        );
        // With an update due as well, it sends what the pool keeps, without the stale key.
        w.pool.tags.insert("cost-center".into(), "a".into());
        let changes = diff(Some(&w), Some(&current));
        let [PoolChange::Untag { .. }, PoolChange::Update(sent)] = &changes[..] else {
            panic!("{changes:?}");
        };
        assert!(!sent.tags.contains_key("team"));
        assert_eq!(sent.tags.get("x").map(String::as_str), Some("y"));
        assert_eq!(sent.tags.get("cost-center").map(String::as_str), Some("a"));
    }

    #[test]
    fn nothing_wanted_deletes_ours() {
        assert_eq!(diff(None, Some(&pool("p", &[]))).len(), 1);
        assert!(diff(None, None).is_empty());
    }
}
