//! Which role the identity pool hands out: the default role to authenticated identities,
//! nothing to others and, with access rules, each rule's role by claim. It goes with the
//! pool, so it is never deleted on its own.

use crate::aws::cognito::PoolRoles;
use crate::aws::{AwsError, ErrorKind};
use crate::reconcile::Error;
use crate::reconcile::driver::{Change, Created, Driver, KindInfo, Managed, TagUpkeep};
use crate::reconcile::events::{Action, Call, Verb};

pub const INFO: KindInfo = KindInfo {
    name: "identity pool roles",
    unique_names: true,
    pending: None,
    creates: &[Call::SetIdentityPoolRoles],
    tags: TagUpkeep::None,
};

/// The roles of the pool `pool_id`.
pub struct PoolRolesKind<'a> {
    pub pool_id: &'a str,
    /// The pool was created by this reconcile: it has no roles yet, no need to ask.
    pub new_pool: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Wanted {
    pub roles: PoolRoles,
    /// A role was created a moment ago: IAM may not have shown it to Cognito yet.
    pub roles_may_be_propagating: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct SetRoles {
    pub rules: usize,
}

impl Change for SetRoles {
    fn verb(&self) -> Verb {
        Verb::Update
    }

    fn action(&self) -> Action {
        Action::of(Call::SetIdentityPoolRoles)
    }

    fn describe(&self) -> String {
        format!(
            "Set the roles of the identity pool: the default role for authenticated \
             identities, {} claim rule(s)",
            self.rules
        )
    }
}

pub fn diff(wanted: &PoolRoles, observed: &PoolRoles) -> Vec<SetRoles> {
    if wanted == observed {
        return Vec::new();
    }
    vec![SetRoles {
        rules: wanted.mapping.as_ref().map_or(0, |m| m.rules.len()),
    }]
}

#[async_trait::async_trait]
impl Managed for PoolRolesKind<'_> {
    type Desired = Wanted;
    type Observed = PoolRoles;
    type Change = SetRoles;

    fn info(&self) -> &'static KindInfo {
        &INFO
    }

    async fn observe(&self, d: &mut Driver<'_>, _: &Wanted) -> Result<PoolRoles, Error> {
        if self.new_pool {
            return Ok(PoolRoles::default());
        }
        Ok(d.aws.cognito.get_roles(self.pool_id).await?)
    }

    fn diff(&self, wanted: &Wanted, observed: &PoolRoles) -> Vec<SetRoles> {
        diff(&wanted.roles, observed)
    }

    async fn apply(
        &self,
        d: &mut Driver<'_>,
        wanted: &Wanted,
        observed: &mut PoolRoles,
        _: &SetRoles,
    ) -> Result<Option<Created>, Error> {
        match d.aws.cognito.set_roles(self.pool_id, &wanted.roles).await {
            Ok(()) => {
                *observed = wanted.roles.clone();
                Ok(None)
            }
            // IAM is eventually consistent: Cognito may not see a new role yet. Progress,
            // retried, not a failure of the spec.
            Err(e) if wanted.roles_may_be_propagating && e.kind == ErrorKind::Invalid => {
                Err(AwsError {
                    kind: ErrorKind::Transient,
                    message: format!("waiting for the new IAM role to propagate: {}", e.message),
                    ..e
                }
                .into())
            }
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::cognito::{MappingRule, RulesMapping};

    fn roles(rules: usize) -> PoolRoles {
        PoolRoles {
            authenticated: Some("arn:role/default".into()),
            unauthenticated: None,
            mapping: (rules > 0).then(|| RulesMapping {
                provider: "tenant.auth0.com".into(),
                deny_unmatched: true,
                rules: (0..rules)
                    .map(|i| MappingRule {
                        claim: "email".into(),
                        match_type: "Equals".into(),
                        value: format!("u{i}"),
                        role_arn: format!("arn:role/{i}"),
                    })
                    .collect(),
            }),
        }
    }

    #[test]
    fn roles_as_planned_need_nothing() {
        assert!(diff(&roles(2), &roles(2)).is_empty());
    }

    #[test]
    fn other_roles_a_rule_more_or_an_unauthenticated_role_are_set_again() {
        assert_eq!(diff(&roles(2), &roles(1)), vec![SetRoles { rules: 2 }]);
        assert_eq!(
            diff(&roles(0), &PoolRoles::default()),
            vec![SetRoles { rules: 0 }]
        );
        let mut open = roles(0);
        open.unauthenticated = Some("arn:role/anyone".into());
        assert_eq!(diff(&roles(0), &open).len(), 1);
    }
}
