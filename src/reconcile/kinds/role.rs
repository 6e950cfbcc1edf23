//! An IAM role assumable by the identity pool's authenticated identities only: the
//! default role, and one per access rule. Role names are unique in IAM: a role with our
//! name that is not tagged as ours is someone else's (`NameConflict`, left alone). Its
//! trust policy and tags are corrected (an organisation's tag that left the spec and the
//! operator's --resource-tags is removed); deleting it removes its inline policies first.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::aws::iam::Role;
use crate::plan;
use crate::policy;
use crate::reconcile::driver::{
    Change, Created, Driver, KindInfo, Managed, TagUpkeep, gone_is_done, missing_tags,
};
use crate::reconcile::events::{Action, Call, Verb};
use crate::reconcile::{Conflict, Error};

pub const INFO: KindInfo = KindInfo {
    name: "IAM role",
    unique_names: true,
    pending: None,
    creates: &[Call::CreateRole],
    tags: TagUpkeep::Corrected,
};

/// The role named `name`.
pub struct RoleKind<'a> {
    pub name: &'a str,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Wanted {
    pub trust_policy: Value,
    pub description: String,
    /// The plan's tags (others' tags on the role stay).
    pub tags: BTreeMap<String, String>,
    /// Keys of the organisation's tags this object put on its resources and no longer
    /// wants (status.tagKeys less the plan's): removed where the role has them.
    pub stale_tags: Vec<String>,
}

/// Our role, and (when it is to go) its inline policies.
#[derive(Clone, Debug, PartialEq)]
pub struct Observed {
    pub role: Role,
    pub inline_policies: Vec<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum RoleChange {
    Create {
        name: String,
    },
    Trust {
        name: String,
    },
    /// Restore `missing`, sending every tag of the plan: the operator's IAM policy lets
    /// it tag a role only with a request that carries this cluster's tag.
    Tag {
        name: String,
        missing: Vec<String>,
        tags: BTreeMap<String, String>,
    },
    /// Remove the organisation's tags the plan no longer has.
    Untag {
        name: String,
        keys: Vec<String>,
    },
    Delete {
        name: String,
        inline_policies: Vec<String>,
    },
}

impl Change for RoleChange {
    fn verb(&self) -> Verb {
        match self {
            RoleChange::Create { .. } => Verb::Create,
            RoleChange::Trust { .. } | RoleChange::Tag { .. } | RoleChange::Untag { .. } => {
                Verb::Update
            }
            RoleChange::Delete { .. } => Verb::Delete,
        }
    }

    fn action(&self) -> Action {
        match self {
            RoleChange::Create { name } => Action::on(Call::CreateRole, name),
            RoleChange::Trust { name } => Action::on(Call::UpdateAssumeRolePolicy, name),
            RoleChange::Tag { name, .. } => Action::on(Call::TagRole, name),
            RoleChange::Untag { name, .. } => Action::on(Call::UntagRole, name),
            RoleChange::Delete { name, .. } => Action::on(Call::DeleteRole, name),
        }
    }

    fn describe(&self) -> String {
        match self {
            RoleChange::Create { name } => format!("Created IAM role {name}"),
            RoleChange::Trust { name } => format!("Restored the trust policy of IAM role {name}"),
            RoleChange::Tag { name, missing, .. } => {
                format!("Set the tags {} of IAM role {name}", missing.join(", "))
            }
            RoleChange::Untag { name, keys } => format!(
                "Removed the tags {} (no longer in spec.tags or --resource-tags) from IAM role {name}",
                keys.join(", ")
            ),
            RoleChange::Delete { name, .. } => format!("Deleted IAM role {name}"),
        }
    }
}

pub fn diff(name: &str, wanted: Option<&Wanted>, observed: Option<&Observed>) -> Vec<RoleChange> {
    let name = name.to_owned();
    match (wanted, observed) {
        (Some(_), None) => vec![RoleChange::Create { name }],
        (Some(w), Some(o)) => {
            let mut changes = Vec::new();
            if !policy::equivalent(&o.role.trust_policy, &w.trust_policy) {
                changes.push(RoleChange::Trust { name: name.clone() });
            }
            // Before any tag is set: IAM keys compare without case, so a key renamed only
            // in case is removed, then set anew.
            let stale: Vec<String> = w
                .stale_tags
                .iter()
                .filter(|k| o.role.tags.contains_key(*k) && !plan::reserved_tag_key(k))
                .cloned()
                .collect();
            if !stale.is_empty() {
                changes.push(RoleChange::Untag {
                    name: name.clone(),
                    keys: stale,
                });
            }
            let missing = missing_tags(&w.tags, &o.role.tags);
            if !missing.is_empty() {
                changes.push(RoleChange::Tag {
                    name,
                    missing: missing.into_keys().collect(),
                    tags: w.tags.clone(),
                });
            }
            changes
        }
        (None, Some(o)) => vec![RoleChange::Delete {
            name,
            inline_policies: o.inline_policies.clone(),
        }],
        (None, None) => Vec::new(),
    }
}

#[async_trait::async_trait]
impl Managed for RoleKind<'_> {
    type Desired = Option<Wanted>;
    type Observed = Option<Observed>;
    type Change = RoleChange;

    fn info(&self) -> &'static KindInfo {
        &INFO
    }

    async fn observe(
        &self,
        d: &mut Driver<'_>,
        wanted: &Option<Wanted>,
    ) -> Result<Option<Observed>, Error> {
        let iam = d.aws.iam.clone();
        let Some(role) = iam.get_role(self.name).await? else {
            return Ok(None);
        };
        if !d.is_ours(&role.tags) {
            if wanted.is_none() {
                return Ok(None);
            }
            return Err(Conflict::untagged(d, format!("IAM role {}", role.name))
                .remedy("delete or rename it, or rename this object")
                .into());
        }
        let inline_policies = if wanted.is_none() {
            iam.list_role_policies(self.name).await?
        } else {
            Vec::new()
        };
        Ok(Some(Observed {
            role,
            inline_policies,
        }))
    }

    fn diff(&self, wanted: &Option<Wanted>, observed: &Option<Observed>) -> Vec<RoleChange> {
        diff(self.name, wanted.as_ref(), observed.as_ref())
    }

    async fn apply(
        &self,
        d: &mut Driver<'_>,
        wanted: &Option<Wanted>,
        observed: &mut Option<Observed>,
        change: &RoleChange,
    ) -> Result<Option<Created>, Error> {
        let iam = d.aws.iam.clone();
        match (change, wanted) {
            (RoleChange::Create { name }, Some(w)) => {
                let role = iam
                    .create_role(
                        plan::ROLE_PATH,
                        name,
                        &w.trust_policy,
                        &w.description,
                        &w.tags,
                        &d.plan.permissions_boundary_arn,
                    )
                    .await?;
                *observed = Some(Observed {
                    role,
                    inline_policies: Vec::new(),
                });
            }
            (RoleChange::Trust { name }, Some(w)) => {
                iam.update_trust_policy(name, &w.trust_policy).await?;
                if let Some(o) = observed {
                    o.role.trust_policy = w.trust_policy.clone();
                }
            }
            (RoleChange::Tag { name, tags, .. }, _) => {
                iam.tag_role(name, tags).await?;
                if let Some(o) = observed {
                    o.role.tags.extend(tags.clone());
                }
            }
            (RoleChange::Untag { name, keys }, _) => {
                iam.untag_role(name, keys).await?;
                if let Some(o) = observed {
                    o.role.tags.retain(|k, _| !keys.contains(k));
                }
            }
            (
                RoleChange::Delete {
                    name,
                    inline_policies,
                },
                _,
            ) => {
                for policy_name in inline_policies {
                    gone_is_done(iam.delete_role_policy(name, policy_name).await)?;
                }
                gone_is_done(iam.delete_role(name).await)?;
                *observed = None;
            }
            (RoleChange::Create { .. } | RoleChange::Trust { .. }, None) => {}
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn trust(pool: &str) -> Value {
        json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
            "Principal": {"Federated": "cognito-identity.amazonaws.com"},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {"StringEquals": {"cognito-identity.amazonaws.com:aud": pool}}}]})
    }

    fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn wanted() -> Wanted {
        Wanted {
            trust_policy: trust("pool-1"),
            description: "d".into(),
            tags: tags(&[
                ("authedapi.dev/uid", "u"),
                ("authedapi.dev/namespace", "ns"),
            ]),
            stale_tags: Vec::new(),
        }
    }

    fn observed(trust_policy: Value, role_tags: BTreeMap<String, String>) -> Observed {
        Observed {
            role: Role {
                name: "r".into(),
                arn: "arn:aws:iam::1:role/authedapi/r".into(),
                trust_policy,
                tags: role_tags,
                created: None,
            },
            inline_policies: vec!["invoke".into()],
        }
    }

    #[test]
    fn a_missing_role_is_created() {
        assert_eq!(
            diff("r", Some(&wanted()), None),
            vec![RoleChange::Create { name: "r".into() }]
        );
    }

    #[test]
    fn a_role_as_planned_needs_nothing_and_others_tags_are_no_difference() {
        let o = observed(
            trust("pool-1"),
            tags(&[
                ("authedapi.dev/uid", "u"),
                ("authedapi.dev/namespace", "ns"),
                ("x", "y"),
            ]),
        );
        assert!(diff("r", Some(&wanted()), Some(&o)).is_empty());
    }

    #[test]
    fn a_changed_trust_policy_is_restored() {
        let o = observed(
            trust("pool-2"),
            tags(&[
                ("authedapi.dev/uid", "u"),
                ("authedapi.dev/namespace", "ns"),
            ]),
        );
        assert_eq!(
            diff("r", Some(&wanted()), Some(&o)),
            vec![RoleChange::Trust { name: "r".into() }]
        );
    }

    #[test]
    fn a_lost_tag_is_restored_with_every_tag_of_the_plan_in_the_request() {
        let o = observed(
            trust("pool-1"),
            tags(&[
                ("authedapi.dev/uid", "u"),
                ("authedapi.dev/namespace", "moved"),
            ]),
        );
        assert_eq!(
            diff("r", Some(&wanted()), Some(&o)),
            vec![RoleChange::Tag {
                name: "r".into(),
                missing: vec!["authedapi.dev/namespace".into()],
                tags: wanted().tags,
            }]
        );
    }

    #[test]
    fn a_tag_the_plan_no_longer_has_is_removed_before_tags_are_set() {
        let mut w = wanted();
        w.stale_tags = vec![
            "team".into(),
            "gone-already".into(),
            "authedapi.dev/uid".into(),
        ];
        w.tags.insert("Team".into(), "a".into());
        let o = observed(
            trust("pool-1"),
            tags(&[
                ("authedapi.dev/uid", "u"),
                ("authedapi.dev/namespace", "ns"),
                ("team", "a"),
                ("someone-elses", "x"),
            ]),
        );
        assert_eq!(
            diff("r", Some(&w), Some(&o)),
            vec![
                RoleChange::Untag {
                    name: "r".into(),
                    keys: vec!["team".into()],
                },
                RoleChange::Tag {
                    name: "r".into(),
                    missing: vec!["Team".into()],
                    tags: w.tags.clone(),
                }
            ]
        );
    }

    #[test]
    fn nothing_wanted_deletes_the_role_with_its_inline_policies() {
        let o = observed(trust("pool-1"), tags(&[]));
        assert_eq!(
            diff("r", None, Some(&o)),
            vec![RoleChange::Delete {
                name: "r".into(),
                inline_policies: vec!["invoke".into()]
            }]
        );
    }
}
