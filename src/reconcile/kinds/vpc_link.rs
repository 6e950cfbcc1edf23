//! The VPC link private integrations go through (spec.vpcLink). One of ours is created
//! tagged as this object's and deleted when no longer wanted; a referenced one (someone
//! else's) is only read, and the object stalls while it does not exist.
//!
//! * VPC link names are not unique in API Gateway: the id in status finds ours, a pending
//!   marker covers a create whose id never reached status, and every link carrying our
//!   uid tag is ours (a link without it is never adopted, changed or deleted).
//! * Subnets and security groups are fixed in AWS (UpdateVpcLink only renames): a spec
//!   that changes them gets a new link, the integrations move to it, and the old one goes.
//! * AWS refuses to delete a link integrations still use: deletes wait for the second
//!   pass (`prune`), after the integrations moved off (in sync) or the API went (cleanup).

use crate::api::AuthedApiStatus;
use crate::aws::vpc_links::{FAILED, VpcLink};
use crate::plan::{PlanError, VpcLinkPlan};
use crate::reconcile::Error;
use crate::reconcile::driver::{
    Change, Created, Driver, KindInfo, Managed, TagUpkeep, Tagged, gone_is_done,
};
use crate::reconcile::events::{Action, Call, Verb};

pub const INFO: KindInfo = KindInfo {
    name: "VPC link",
    unique_names: false,
    pending: Some("VpcLink"),
    creates: &[Call::CreateVpcLink],
    // API Gateway's tagging calls cannot be scoped to our own links (as for APIs).
    tags: TagUpkeep::Reported,
};

pub struct VpcLinkKind;

/// The link the spec asks for; with `prune`, every link of ours not in use goes.
#[derive(Clone, Debug, PartialEq)]
pub struct Wanted {
    pub link: Option<VpcLinkPlan>,
    pub prune: bool,
}

/// The links observe found.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Found {
    /// Links carrying this object's uid tag, the one status names first.
    pub ours: Vec<VpcLink>,
    /// The link spec.vpcLink.id names.
    pub referenced: Option<VpcLink>,
}

impl Found {
    /// The link private integrations go through: the referenced one, or the first of ours
    /// with the plan's subnets and security groups that has not failed.
    pub fn in_use(&self, wanted: Option<&VpcLinkPlan>) -> Option<&VpcLink> {
        match wanted? {
            VpcLinkPlan::Referenced { .. } => self.referenced.as_ref(),
            VpcLinkPlan::Owned {
                subnet_ids,
                security_group_ids,
                ..
            } => self.ours.iter().find(|link| {
                link.subnet_ids == *subnet_ids
                    && link.security_group_ids == *security_group_ids
                    && link.status != FAILED
            }),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum LinkChange {
    Create {
        name: String,
        subnet_ids: Vec<String>,
        security_group_ids: Vec<String>,
    },
    /// Our link, renamed behind our back.
    Rename {
        id: String,
        name: String,
    },
    Delete {
        id: String,
        name: String,
    },
}

impl Change for LinkChange {
    fn verb(&self) -> Verb {
        match self {
            LinkChange::Create { .. } => Verb::Create,
            LinkChange::Rename { .. } => Verb::Update,
            LinkChange::Delete { .. } => Verb::Delete,
        }
    }

    fn action(&self) -> Action {
        match self {
            LinkChange::Create { .. } => Action::of(Call::CreateVpcLink),
            LinkChange::Rename { id, .. } => Action::on(Call::UpdateVpcLink, id),
            LinkChange::Delete { id, .. } => Action::on(Call::DeleteVpcLink, id),
        }
    }

    fn describe(&self) -> String {
        match self {
            LinkChange::Create {
                subnet_ids,
                security_group_ids,
                ..
            } => format!(
                "Created the VPC link in subnets {} (security groups: {})",
                subnet_ids.join(", "),
                if security_group_ids.is_empty() {
                    "the VPC's default".to_owned()
                } else {
                    security_group_ids.join(", ")
                }
            ),
            LinkChange::Rename { id, name } => format!("Renamed VPC link {id} back to {name}"),
            LinkChange::Delete { id, name } => format!("Deleted VPC link {name} ({id})"),
        }
    }
}

/// The pure part: create or rename the link in use; with `prune`, delete the rest of ours.
pub fn diff(wanted: &Wanted, found: &Found) -> Vec<LinkChange> {
    let in_use = found.in_use(wanted.link.as_ref());
    let mut changes = Vec::new();
    if let Some(VpcLinkPlan::Owned {
        name,
        subnet_ids,
        security_group_ids,
    }) = &wanted.link
    {
        match in_use {
            None => changes.push(LinkChange::Create {
                name: name.clone(),
                subnet_ids: subnet_ids.clone(),
                security_group_ids: security_group_ids.clone(),
            }),
            Some(link) if link.name != *name => changes.push(LinkChange::Rename {
                id: link.id.clone(),
                name: name.clone(),
            }),
            Some(_) => {}
        }
    }
    if wanted.prune {
        let kept = in_use.map(|link| link.id.as_str());
        changes.extend(
            found
                .ours
                .iter()
                .filter(|link| Some(link.id.as_str()) != kept)
                .map(|link| LinkChange::Delete {
                    id: link.id.clone(),
                    name: link.name.clone(),
                }),
        );
    }
    changes
}

#[async_trait::async_trait]
impl Managed for VpcLinkKind {
    type Desired = Wanted;
    type Observed = Found;
    type Change = LinkChange;

    fn info(&self) -> &'static KindInfo {
        &INFO
    }

    /// Ours by their uid tag (one list call), only when the spec or status says there may
    /// be one: an object without a link pays no read. A referenced link by its id.
    async fn observe(&self, d: &mut Driver<'_>, wanted: &Wanted) -> Result<Found, Error> {
        let links = d.aws.vpc_links.clone();
        let mut found = Found::default();
        let owned = matches!(wanted.link, Some(VpcLinkPlan::Owned { .. }));
        if owned || d.status.vpc_link_id.is_some() || d.is_pending(&INFO) {
            found.ours = links
                .list_vpc_links()
                .await?
                .into_iter()
                .filter(|link| d.is_ours(&link.tags))
                .collect();
            let recorded = d.status.vpc_link_id.clone();
            found
                .ours
                .sort_by_key(|link| Some(&link.id) != recorded.as_ref());
        }
        if let Some(VpcLinkPlan::Referenced { id }) = &wanted.link {
            // Never one of ours to delete, whatever its tags say.
            found.ours.retain(|link| link.id != *id);
            match links.get_vpc_link(id).await? {
                Some(link) => found.referenced = Some(link),
                None => {
                    return Err(PlanError(format!(
                        "spec.vpcLink.id {id}: no such VPC link in account {} region {}; \
                         create it (aws apigatewayv2 create-vpc-link) or name another",
                        d.plan.account, d.plan.region
                    ))
                    .into());
                }
            }
        }
        Ok(found)
    }

    fn diff(&self, wanted: &Wanted, found: &Found) -> Vec<LinkChange> {
        diff(wanted, found)
    }

    async fn apply(
        &self,
        d: &mut Driver<'_>,
        _wanted: &Wanted,
        found: &mut Found,
        change: &LinkChange,
    ) -> Result<Option<Created>, Error> {
        let links = d.aws.vpc_links.clone();
        match change {
            LinkChange::Create {
                name,
                subnet_ids,
                security_group_ids,
            } => {
                let link = links
                    .create_vpc_link(name, subnet_ids, security_group_ids, &d.plan.tags)
                    .await?;
                let made = Created {
                    id: link.id.clone(),
                    endpoint: None,
                };
                found.ours.insert(0, link);
                return Ok(Some(made));
            }
            LinkChange::Rename { id, name } => {
                links.rename_vpc_link(id, name).await?;
                if let Some(link) = found.ours.iter_mut().find(|l| l.id == *id) {
                    link.name = name.clone();
                }
            }
            LinkChange::Delete { id, .. } => {
                gone_is_done(links.delete_vpc_link(id).await)?;
                found.ours.retain(|link| link.id != *id);
            }
        }
        Ok(None)
    }

    /// The id, which the integrations read, saved before any uses it.
    fn record(&self, status: &mut AuthedApiStatus, made: &Created) {
        status.vpc_link_id = Some(made.id.clone());
    }

    /// The link of ours in use, found by its tag after a create whose id was not saved.
    fn adopted(&self, _d: &Driver<'_>, wanted: &Wanted, found: &Found) -> Option<Created> {
        let link = found.in_use(wanted.link.as_ref())?;
        found.ours.iter().any(|l| l.id == link.id).then(|| Created {
            id: link.id.clone(),
            endpoint: None,
        })
    }

    fn reported_tags<'o>(&self, d: &Driver<'_>, found: &'o Found) -> Vec<Tagged<'o>> {
        found
            .ours
            .iter()
            .take(1)
            .map(|link| Tagged {
                what: format!("VPC link {}", link.id),
                arn: format!(
                    "arn:{}:apigateway:{}::/vpclinks/{}",
                    d.plan.partition, d.plan.region, link.id
                ),
                tags: &link.tags,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(id: &str, name: &str, subnets: &[&str], status: &str) -> VpcLink {
        VpcLink {
            id: id.into(),
            name: name.into(),
            subnet_ids: subnets.iter().map(|s| s.to_string()).collect(),
            security_group_ids: Vec::new(),
            status: status.into(),
            tags: Default::default(),
        }
    }

    fn owned(subnets: &[&str]) -> VpcLinkPlan {
        VpcLinkPlan::Owned {
            name: "ours".into(),
            subnet_ids: subnets.iter().map(|s| s.to_string()).collect(),
            security_group_ids: Vec::new(),
        }
    }

    fn wanted(link: Option<VpcLinkPlan>, prune: bool) -> Wanted {
        Wanted { link, prune }
    }

    fn found(ours: Vec<VpcLink>) -> Found {
        Found {
            ours,
            referenced: None,
        }
    }

    #[test]
    fn a_missing_link_of_ours_is_created() {
        let changes = diff(&wanted(Some(owned(&["subnet-a"])), false), &found(vec![]));
        assert_eq!(
            changes,
            vec![LinkChange::Create {
                name: "ours".into(),
                subnet_ids: vec!["subnet-a".into()],
                security_group_ids: vec![],
            }]
        );
    }

    #[test]
    fn a_link_as_planned_needs_nothing() {
        let current = found(vec![link("l1", "ours", &["subnet-a"], "AVAILABLE")]);
        assert!(diff(&wanted(Some(owned(&["subnet-a"])), true), &current).is_empty());
    }

    #[test]
    fn a_renamed_link_is_renamed_back() {
        let current = found(vec![link("l1", "renamed", &["subnet-a"], "AVAILABLE")]);
        assert_eq!(
            diff(&wanted(Some(owned(&["subnet-a"])), false), &current),
            vec![LinkChange::Rename {
                id: "l1".into(),
                name: "ours".into()
            }]
        );
    }

    #[test]
    fn other_subnets_or_a_failed_link_are_replaced_and_the_old_goes_only_when_pruning() {
        for old in [
            link("l1", "ours", &["subnet-old"], "AVAILABLE"),
            link("l1", "ours", &["subnet-a"], FAILED),
        ] {
            let current = found(vec![old]);
            let plan = Some(owned(&["subnet-a"]));
            let changes = diff(&wanted(plan.clone(), false), &current);
            assert!(
                matches!(&changes[..], [LinkChange::Create { .. }]),
                "{changes:?}"
            );
            let mut replaced = current.clone();
            replaced
                .ours
                .insert(0, link("l2", "ours", &["subnet-a"], "AVAILABLE"));
            assert_eq!(
                diff(&wanted(plan, true), &replaced),
                vec![LinkChange::Delete {
                    id: "l1".into(),
                    name: "ours".into()
                }]
            );
        }
    }

    #[test]
    fn nothing_wanted_deletes_every_link_of_ours_when_pruning() {
        let current = found(vec![
            link("l1", "ours", &["subnet-a"], "AVAILABLE"),
            link("l2", "ours", &["subnet-b"], "AVAILABLE"),
        ]);
        assert!(diff(&wanted(None, false), &current).is_empty());
        let changes = diff(&wanted(None, true), &current);
        assert_eq!(changes.len(), 2);
        assert!(changes.iter().all(|c| c.verb() == Verb::Delete));
    }

    #[test]
    fn a_referenced_link_is_used_and_never_created_renamed_or_deleted() {
        let reference = Some(VpcLinkPlan::Referenced {
            id: "theirs".into(),
        });
        let current = Found {
            ours: vec![link("l1", "ours", &["subnet-a"], "AVAILABLE")],
            referenced: Some(link("theirs", "someone's", &["subnet-x"], "AVAILABLE")),
        };
        assert_eq!(
            current.in_use(reference.as_ref()).map(|l| l.id.as_str()),
            Some("theirs")
        );
        assert!(diff(&wanted(reference.clone(), false), &current).is_empty());
        assert_eq!(
            diff(&wanted(reference, true), &current),
            vec![LinkChange::Delete {
                id: "l1".into(),
                name: "ours".into()
            }],
            "the link of ours it no longer uses goes, theirs stays"
        );
    }
}
