//! A role's inline invoke policy: exactly the routes the role may call (see
//! `route_access`); none when it may call none. Compared by meaning, not by spelling
//! (IAM hands policies back reordered and re-encoded).

use serde_json::Value;

use crate::plan::INVOKE_POLICY_NAME;
use crate::policy;
use crate::reconcile::Error;
use crate::reconcile::driver::{
    Change, Created, Driver, KindInfo, Managed, TagUpkeep, gone_is_done,
};
use crate::reconcile::events::{Action, Call, Verb};

pub const INFO: KindInfo = KindInfo {
    name: "role policy",
    unique_names: true,
    pending: None,
    creates: &[Call::PutRolePolicy],
    tags: TagUpkeep::None,
};

/// The invoke policy of the role `role` (ours: the role kind checked it).
pub struct RolePolicy<'a> {
    pub role: &'a str,
    /// The role was created by this reconcile: it has no policy yet, no need to ask.
    pub new_role: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub enum PolicyChange {
    Put {
        role: String,
        document: Value,
        replaces: bool,
    },
    Delete {
        role: String,
    },
}

impl Change for PolicyChange {
    fn verb(&self) -> Verb {
        match self {
            PolicyChange::Put {
                replaces: false, ..
            } => Verb::Create,
            PolicyChange::Put { replaces: true, .. } => Verb::Update,
            PolicyChange::Delete { .. } => Verb::Delete,
        }
    }

    fn action(&self) -> Action {
        match self {
            PolicyChange::Put { role, .. } => Action::on(Call::PutRolePolicy, role),
            PolicyChange::Delete { role } => Action::on(Call::DeleteRolePolicy, role),
        }
    }

    fn describe(&self) -> String {
        match self {
            PolicyChange::Put {
                role,
                document,
                replaces,
            } => {
                let statements = document["Statement"].as_array().map_or(0, Vec::len);
                format!(
                    "{} policy {INVOKE_POLICY_NAME} on {role} ({statements} statement(s))",
                    if *replaces { "Updated" } else { "Created" }
                )
            }
            PolicyChange::Delete { role } => {
                format!("Deleted policy {INVOKE_POLICY_NAME} on {role}: it may invoke no route")
            }
        }
    }
}

pub fn diff(role: &str, wanted: Option<&Value>, observed: Option<&Value>) -> Vec<PolicyChange> {
    match (wanted, observed) {
        (Some(w), Some(o)) if policy::equivalent(w, o) => Vec::new(),
        (Some(w), o) => vec![PolicyChange::Put {
            role: role.to_owned(),
            document: w.clone(),
            replaces: o.is_some(),
        }],
        (None, Some(_)) => vec![PolicyChange::Delete {
            role: role.to_owned(),
        }],
        (None, None) => Vec::new(),
    }
}

#[async_trait::async_trait]
impl Managed for RolePolicy<'_> {
    type Desired = Option<Value>;
    type Observed = Option<Value>;
    type Change = PolicyChange;

    fn info(&self) -> &'static KindInfo {
        &INFO
    }

    async fn observe(&self, d: &mut Driver<'_>, _: &Option<Value>) -> Result<Option<Value>, Error> {
        if self.new_role {
            return Ok(None);
        }
        Ok(d.aws
            .iam
            .get_role_policy(self.role, INVOKE_POLICY_NAME)
            .await?)
    }

    fn diff(&self, wanted: &Option<Value>, observed: &Option<Value>) -> Vec<PolicyChange> {
        diff(self.role, wanted.as_ref(), observed.as_ref())
    }

    async fn apply(
        &self,
        d: &mut Driver<'_>,
        _: &Option<Value>,
        observed: &mut Option<Value>,
        change: &PolicyChange,
    ) -> Result<Option<Created>, Error> {
        let iam = &d.aws.iam;
        match change {
            PolicyChange::Put { role, document, .. } => {
                iam.put_role_policy(role, INVOKE_POLICY_NAME, document)
                    .await?;
                *observed = Some(document.clone());
            }
            PolicyChange::Delete { role } => {
                gone_is_done(iam.delete_role_policy(role, INVOKE_POLICY_NAME).await)?;
                *observed = None;
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn policy(resources: &[&str]) -> Value {
        json!({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "execute-api:Invoke", "Resource": resources}]})
    }

    #[test]
    fn a_missing_policy_is_put() {
        let changes = diff("r", Some(&policy(&["a"])), None);
        assert!(matches!(
            &changes[..],
            [PolicyChange::Put {
                replaces: false,
                ..
            }]
        ));
        assert_eq!(changes[0].verb(), Verb::Create);
    }

    #[test]
    fn the_same_policy_spelled_differently_needs_nothing() {
        let reordered = json!({"Statement": [
            {"Resource": ["a", "b"], "Action": ["execute-api:Invoke"], "Effect": "Allow"}],
            "Version": "2012-10-17"});
        assert!(diff("r", Some(&policy(&["b", "a"])), Some(&reordered)).is_empty());
    }

    #[test]
    fn a_changed_policy_is_replaced() {
        let changes = diff("r", Some(&policy(&["a"])), Some(&policy(&["a", "other"])));
        assert!(matches!(
            &changes[..],
            [PolicyChange::Put { replaces: true, .. }]
        ));
        assert_eq!(changes[0].verb(), Verb::Update);
    }

    #[test]
    fn a_policy_no_longer_wanted_is_deleted() {
        assert_eq!(
            diff("r", None, Some(&policy(&["a"]))),
            vec![PolicyChange::Delete { role: "r".into() }]
        );
        assert!(diff("r", None, None).is_empty());
    }
}
