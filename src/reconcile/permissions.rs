//! Lambda permissions: each function a route targets lets this API (and only it) invoke
//! it, through one statement whose id is ours. The functions are the user's; no other
//! statement on them is touched.
//!
//! The set of functions holding our statement is written to status *before* a statement
//! is added, so a crash can never leave one behind that we would not find again.

use std::collections::BTreeSet;

use super::{Error, Step};
use crate::aws::lambda::APIGATEWAY_PRINCIPAL;
use crate::aws::{AwsError, ErrorKind};

/// Every planned function has our statement, scoped to this API; functions the spec no
/// longer targets lose it.
pub async fn ensure(step: &mut Step<'_>, api_id: &str) -> Result<(), Error> {
    let lambda = &step.aws.lambda;
    let sid = step.plan.permission_sid.clone();
    let source_arn = step.plan.permission_source_arn(api_id);
    let wanted = step.plan.lambda_functions.clone();
    let recorded: BTreeSet<String> = step
        .writer
        .status
        .lambda_permissions
        .iter()
        .cloned()
        .collect();

    if !wanted.is_subset(&recorded) {
        step.writer.status.lambda_permissions = recorded.union(&wanted).cloned().collect();
        step.writer.save().await?;
    }

    for function in &wanted {
        let Some(statements) = lambda.permissions(function).await? else {
            return Err(AwsError {
                kind: ErrorKind::NotFound,
                service: "lambda",
                operation: "GetPolicy",
                code: "ResourceNotFoundException".into(),
                message: format!(
                    "function {function} does not exist: create it, or change the route's target"
                ),
            }
            .into());
        };
        let ours = statements.iter().find(|s| s.sid == sid);
        let current = ours.is_some_and(|s| {
            s.source_arn.as_deref() == Some(source_arn.as_str())
                && s.principal.as_deref() == Some(APIGATEWAY_PRINCIPAL)
        });
        if current {
            continue;
        }
        if ours.is_some() {
            // A statement cannot be changed in place: remove, then add.
            remove(step, function, &sid).await?;
        }
        match lambda.add_permission(function, &sid, &source_arn).await {
            Ok(()) => {}
            // Added by a reconcile that crashed before it could see it.
            Err(e) if e.kind == ErrorKind::Conflict => {}
            Err(e) => return Err(e.into()),
        }
        step.event(
            "Created",
            &format!("AddPermission {function}"),
            format!("Allowed the API to invoke {function}"),
        )
        .await;
    }

    for function in recorded.difference(&wanted) {
        remove(step, function, &sid).await?;
        step.event(
            "Deleted",
            &format!("RemovePermission {function}"),
            format!("Removed the API's permission on {function}"),
        )
        .await;
    }
    step.writer.status.lambda_permissions = wanted.into_iter().collect();
    Ok(())
}

/// Remove our statement from every function we recorded or planned.
pub async fn delete_all(step: &mut Step<'_>) -> Result<(), Error> {
    let sid = step.plan.permission_sid.clone();
    let mut functions: BTreeSet<String> = step
        .writer
        .status
        .lambda_permissions
        .iter()
        .cloned()
        .collect();
    functions.extend(
        step.obj
            .spec
            .routes
            .iter()
            .filter_map(|r| r.target.lambda.as_ref().map(|l| l.function_arn.clone())),
    );
    for function in functions {
        remove(step, &function, &sid).await?;
    }
    Ok(())
}

async fn remove(step: &Step<'_>, function: &str, sid: &str) -> Result<(), Error> {
    match step.aws.lambda.remove_permission(function, sid).await {
        Ok(()) => Ok(()),
        // Already gone, or the function itself is gone.
        Err(e) if e.is_not_found() => Ok(()),
        Err(e) => Err(e.into()),
    }
}
