//! Lambda permissions: each function a route targets or an authorizer runs lets this API
//! (and only it) invoke it, through one statement whose id is ours, with the narrowest
//! source the plan gives it (any route for a target, the API's authorizers for a function
//! only authorizers use). The functions are the user's; no other
//! statement on them is touched. The functions holding our statement are recorded in
//! status *before* a statement is added, so a crash never leaves one we would not find.

use std::collections::{BTreeMap, BTreeSet};

use crate::aws::lambda::{APIGATEWAY_PRINCIPAL, Permission};
use crate::aws::{AwsError, ErrorKind};
use crate::reconcile::Error;
use crate::reconcile::driver::{
    Change, Created, Driver, KindInfo, Managed, TagUpkeep, gone_is_done,
};
use crate::reconcile::events::{Action, Call, Verb};

pub const INFO: KindInfo = KindInfo {
    name: "Lambda permission",
    unique_names: true,
    pending: None,
    creates: &[Call::AddPermission],
    tags: TagUpkeep::None,
};

/// Our statement (id `sid`) on the functions the routes target and the authorizers run.
pub struct Permissions<'a> {
    pub sid: &'a str,
}

/// The functions that should let API Gateway invoke them, each with the source ARN that
/// may (none: every statement goes).
#[derive(Clone, Debug, PartialEq)]
pub struct Wanted {
    pub functions: BTreeMap<String, String>,
}

impl Wanted {
    pub fn none() -> Self {
        Self {
            functions: BTreeMap::new(),
        }
    }
}

/// Our statement on each function we may have one on: None when there is none.
pub type Observed = BTreeMap<String, Option<Permission>>;

#[derive(Clone, Debug, PartialEq)]
pub enum PermissionChange {
    Add(String),
    /// Our statement allows something else: remove it, add it as planned (statements
    /// cannot be changed in place).
    Replace(String),
    Remove(String),
}

impl Change for PermissionChange {
    fn verb(&self) -> Verb {
        match self {
            PermissionChange::Add(_) => Verb::Create,
            PermissionChange::Replace(_) => Verb::Update,
            PermissionChange::Remove(_) => Verb::Delete,
        }
    }

    fn action(&self) -> Action {
        match self {
            PermissionChange::Add(f) | PermissionChange::Replace(f) => {
                Action::on(Call::AddPermission, f)
            }
            PermissionChange::Remove(f) => Action::on(Call::RemovePermission, f),
        }
    }

    fn describe(&self) -> String {
        match self {
            PermissionChange::Add(f) => format!("Allowed the API to invoke {f}"),
            PermissionChange::Replace(f) => {
                format!("Allowed the API (and only it) to invoke {f} again")
            }
            PermissionChange::Remove(f) => format!("Removed the API's permission on {f}"),
        }
    }
}

pub fn diff(wanted: &Wanted, observed: &Observed) -> Vec<PermissionChange> {
    let mut changes = Vec::new();
    for (function, source_arn) in &wanted.functions {
        match observed.get(function).and_then(Option::as_ref) {
            None => changes.push(PermissionChange::Add(function.clone())),
            Some(s)
                if s.source_arn.as_deref() == Some(source_arn.as_str())
                    && s.principal.as_deref() == Some(APIGATEWAY_PRINCIPAL) => {}
            Some(_) => changes.push(PermissionChange::Replace(function.clone())),
        }
    }
    changes.extend(
        observed
            .iter()
            .filter(|(f, ours)| ours.is_some() && !wanted.functions.contains_key(*f))
            .map(|(f, _)| PermissionChange::Remove(f.clone())),
    );
    changes
}

#[async_trait::async_trait]
impl Managed for Permissions<'_> {
    type Desired = Wanted;
    type Observed = Observed;
    type Change = PermissionChange;

    fn info(&self) -> &'static KindInfo {
        &INFO
    }

    /// Every function we may hold a statement on: the planned, the recorded and the
    /// spec's targets and authorizers (a crash may have come between the record and the
    /// add).
    async fn observe(&self, d: &mut Driver<'_>, wanted: &Wanted) -> Result<Observed, Error> {
        let mut candidates: BTreeSet<String> = wanted.functions.keys().cloned().collect();
        candidates.extend(d.status.lambda_permissions.iter().cloned());
        candidates.extend(d.obj.spec.lambda_functions().into_iter().map(str::to_owned));
        let mut observed = Observed::new();
        for function in candidates {
            let statements = match d.aws.lambda.permissions(&function).await? {
                Some(statements) => statements,
                None if wanted.functions.contains_key(&function) => {
                    return Err(AwsError {
                        kind: ErrorKind::NotFound,
                        service: "lambda",
                        operation: "GetPolicy",
                        code: "ResourceNotFoundException".into(),
                        message: format!(
                            "function {function} does not exist: create it, or change the route's target or authorizer"
                        ),
                    }
                    .into());
                }
                // Gone, and with it any statement of ours.
                None => Vec::new(),
            };
            let ours = statements.into_iter().find(|s| s.sid == self.sid);
            observed.insert(function, ours);
        }
        Ok(observed)
    }

    fn diff(&self, wanted: &Wanted, observed: &Observed) -> Vec<PermissionChange> {
        diff(wanted, observed)
    }

    async fn apply(
        &self,
        d: &mut Driver<'_>,
        wanted: &Wanted,
        observed: &mut Observed,
        change: &PermissionChange,
    ) -> Result<Option<Created>, Error> {
        let lambda = &d.aws.lambda;
        match change {
            PermissionChange::Add(function) | PermissionChange::Replace(function) => {
                let functions: BTreeSet<String> = wanted.functions.keys().cloned().collect();
                d.record(|status| {
                    let recorded: BTreeSet<String> =
                        status.lambda_permissions.iter().cloned().collect();
                    if !functions.is_subset(&recorded) {
                        status.lambda_permissions = recorded.union(&functions).cloned().collect();
                    }
                })
                .await?;
                let source_arn = &wanted.functions[function];
                if matches!(change, PermissionChange::Replace(_)) {
                    gone_is_done(lambda.remove_permission(function, self.sid).await)?;
                }
                lambda
                    .add_permission(function, self.sid, source_arn)
                    .await?;
                observed.insert(
                    function.clone(),
                    Some(Permission {
                        sid: self.sid.to_owned(),
                        principal: Some(APIGATEWAY_PRINCIPAL.into()),
                        source_arn: Some(source_arn.clone()),
                    }),
                );
            }
            PermissionChange::Remove(function) => {
                gone_is_done(lambda.remove_permission(function, self.sid).await)?;
                observed.insert(function.clone(), None);
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SOURCE: &str = "arn:aws:execute-api:us-east-1:1:api/*/*";

    fn ours(source: &str) -> Option<Permission> {
        Some(Permission {
            sid: "sid".into(),
            principal: Some(APIGATEWAY_PRINCIPAL.into()),
            source_arn: Some(source.into()),
        })
    }

    fn wanted(functions: &[&str]) -> Wanted {
        Wanted {
            functions: functions
                .iter()
                .map(|f| (f.to_string(), SOURCE.to_string()))
                .collect(),
        }
    }

    fn observed(entries: &[(&str, Option<Permission>)]) -> Observed {
        entries
            .iter()
            .map(|(f, p)| (f.to_string(), p.clone()))
            .collect()
    }

    #[test]
    fn a_function_without_our_statement_gets_it() {
        assert_eq!(
            diff(&wanted(&["f"]), &observed(&[("f", None)])),
            vec![PermissionChange::Add("f".into())]
        );
    }

    #[test]
    fn our_statement_as_planned_needs_nothing() {
        assert!(diff(&wanted(&["f"]), &observed(&[("f", ours(SOURCE))])).is_empty());
    }

    #[test]
    fn a_statement_for_another_source_or_principal_is_replaced() {
        assert_eq!(
            diff(&wanted(&["f"]), &observed(&[("f", ours("arn:other"))])),
            vec![PermissionChange::Replace("f".into())]
        );
        let mut other_principal = ours(SOURCE);
        other_principal.as_mut().unwrap().principal = Some("s3.amazonaws.com".into());
        assert_eq!(
            diff(&wanted(&["f"]), &observed(&[("f", other_principal)])),
            vec![PermissionChange::Replace("f".into())]
        );
    }

    #[test]
    fn each_function_gets_its_own_source() {
        let authorizers_only = "arn:aws:execute-api:us-east-1:1:api/authorizers/*";
        let mut planned = wanted(&["f"]);
        planned
            .functions
            .insert("auth".into(), authorizers_only.into());
        let seen = observed(&[("f", ours(SOURCE)), ("auth", ours(SOURCE))]);
        assert_eq!(
            diff(&planned, &seen),
            vec![PermissionChange::Replace("auth".into())]
        );
        let seen = observed(&[("f", ours(SOURCE)), ("auth", ours(authorizers_only))]);
        assert!(diff(&planned, &seen).is_empty());
    }

    #[test]
    fn a_function_no_longer_targeted_loses_our_statement_and_only_if_it_has_one() {
        let seen = observed(&[("old", ours(SOURCE)), ("never", None)]);
        assert_eq!(
            diff(&Wanted::none(), &seen),
            vec![PermissionChange::Remove("old".into())]
        );
    }
}
