//! Deleting what an object made: every kind with nothing desired, innermost first (the
//! reverse of [`super::kinds::REGISTERED`], as a test checks).
//!
//! A delete never waits on what waiting cannot change. What status records decides what
//! there is to remove: an object that never recorded an account made nothing in AWS (sync
//! records it before the first call that makes anything), so its finalizer goes at once,
//! whatever blocks its reconciles (an issuer or account it may not use, a role that cannot
//! be assumed). Otherwise what it made is removed in the account status names; when that
//! cannot be done, its conditions say what blocks the delete and what a person can do.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::runtime::controller::Action as Requeue;
use kube::runtime::events::EventType;

use super::domain::release_domain;
use super::driver::{Driver, Mode};
use super::events::{Action, Call, Reason};
use super::kinds::{http_api, identity_pool, outputs, permissions, role};
use super::sync::{registered_oidc, release_oidc};
use super::{
    Context, Error, OBSERVE_ONLY, Placed, annotated, cached_tenants, guardrails, names_for,
    save_status,
};
use crate::api::{AuthedApi, AuthedApiStatus, DeletionPolicy};
use crate::status::{self, Outcome};
use crate::tenant::{self, AuthedApiTenant};

/// Delete every AWS resource of `obj` (unless it says Retain, or is observe-only),
/// innermost first; when that fails, say why in its conditions.
pub(super) async fn cleanup(obj: &AuthedApi, ctx: &Context) -> Result<Requeue, Error> {
    match remove(obj, ctx).await {
        Ok(requeue) => Ok(requeue),
        Err(e) => {
            blocked(obj, ctx, &e).await?;
            Err(e)
        }
    }
}

/// Whether `status` records anything this object may have made in AWS.
fn made_anything(status: &AuthedApiStatus) -> bool {
    status.account_id.is_some()
        || status.api_id.is_some()
        || status.identity_pool_id.is_some()
        || status.oidc_provider_arn.is_some()
        || !status.oidc_claims.is_empty()
        || status.authenticated_role_arn.is_some()
        || status.domain.is_some()
        || !status.pending_creates.is_empty()
        || !status.access_roles.is_empty()
        || !status.lambda_permissions.is_empty()
}

/// The conditions of an object whose delete failed with `error`: Stalled when a person
/// must act (with what they can do), Reconciling while it is retried. Written only when
/// they say something new.
async fn blocked(obj: &AuthedApi, ctx: &Context, error: &Error) -> Result<(), Error> {
    let generation = obj.metadata.generation.unwrap_or_default();
    let outcome = if error.stalls() {
        Outcome::Stalled {
            reason: error.reason().into(),
            message: format!(
                "Deleting is blocked: {error}. To delete the object and leave its AWS \
                 resources as they are, set spec.deletionPolicy: Retain"
            ),
        }
    } else {
        Outcome::Progressing {
            reason: error.reason().into(),
            message: format!("Deleting, retrying: {error}"),
        }
    };
    let mut current = obj.status.clone().unwrap_or_default();
    let conditions = status::conditions(
        &current.conditions,
        generation,
        &outcome,
        k8s_openapi::jiff::Timestamp::now(),
    );
    let said = |c: &[Condition]| {
        let mut said: Vec<(String, String, String, String)> = c
            .iter()
            .map(|c| {
                (
                    c.type_.clone(),
                    c.status.clone(),
                    c.reason.clone(),
                    c.message.clone(),
                )
            })
            .collect();
        said.sort();
        said
    };
    if said(&conditions) != said(&current.conditions) {
        current.conditions = conditions;
        save_status(obj, ctx, &current).await?;
    }
    Ok(())
}

async fn remove(obj: &AuthedApi, ctx: &Context) -> Result<Requeue, Error> {
    let uid = obj.metadata.uid.clone().unwrap_or_default();
    let keep = if obj.spec.deletion_policy == DeletionPolicy::Retain {
        Some("deletionPolicy is Retain: the AWS resources stay")
    } else if annotated(obj, OBSERVE_ONLY) {
        Some("observe-only objects never change AWS: the AWS resources stay")
    } else {
        None
    };
    if let Some(note) = keep {
        ctx.cluster
            .publish(
                obj,
                EventType::Normal,
                Reason::Retained,
                &Action::of(Call::Delete),
                note.into(),
            )
            .await;
        ctx.forget(&uid);
        return Ok(Requeue::await_change());
    }
    let status = obj.status.clone().unwrap_or_default();
    if !made_anything(&status) {
        ctx.cluster
            .publish(
                obj,
                EventType::Normal,
                Reason::Deleted,
                &Action::of(Call::Delete),
                "Nothing of this object's was made in AWS: nothing to delete".into(),
            )
            .await;
        ctx.forget(&uid);
        return Ok(Requeue::await_change());
    }
    // Names do not depend on the routes; a spec whose routes no longer plan must still
    // be deletable. (Access rules keep their names, which name their roles.)
    let mut for_names = obj.clone();
    for_names.spec.routes.clear();
    // Nor on the tags: a spec whose tags AWS would refuse must still be deletable.
    for_names.spec.tags.clear();
    if let Some(access) = &mut for_names.spec.access {
        access.rules.iter_mut().for_each(|rule| rule.routes.clear());
    }
    // Its account as the tenants say; read afresh before giving up on what the cache says.
    let place = async |tenants: &[AuthedApiTenant]| {
        let guardrails = guardrails(obj, ctx, tenants).await?;
        let placed = names_for(&for_names, ctx, &guardrails).await?;
        Ok::<_, Error>((placed, guardrails))
    };
    let (Placed { aws, plan, .. }, guardrails) = match place(&cached_tenants(ctx)).await {
        Err(e) if e.comes_from_tenants() => place(&ctx.cluster.tenants().await?).await?,
        placed => placed?,
    };
    let issuer_allowed = tenant::issuer_allowed_by(&obj.spec, &guardrails);
    let mut d = Driver::new(&aws, &plan, obj, ctx, status, Mode::Act);
    delete_all(&mut d, issuer_allowed).await?;
    ctx.forget(&uid);
    Ok(Requeue::await_change())
}

/// Every kind with nothing desired, in the reverse of [`super::kinds::REGISTERED`]. An issuer
/// not `issuer_allowed` is released only where status recorded it.
pub(super) async fn delete_all(d: &mut Driver<'_>, issuer_allowed: bool) -> Result<(), Error> {
    let plan = d.plan;
    d.ensure(&outputs::Outputs, &None).await?;
    let mut role_names: Vec<String> = d
        .status
        .access_roles
        .iter()
        .map(|r| r.role_name.clone())
        .collect();
    role_names.extend(
        plan.access
            .iter()
            .flat_map(|a| a.rules.iter().map(|r| r.role_name.clone())),
    );
    role_names.push(plan.role_name.clone());
    role_names.sort();
    role_names.dedup();
    for name in &role_names {
        d.ensure(&role::RoleKind { name }, &None).await?;
    }
    d.ensure(&identity_pool::IdentityPoolKind, &None).await?;
    d.ensure(
        &permissions::Permissions {
            sid: &plan.permission_sid,
        },
        &permissions::Wanted::none(),
    )
    .await?;
    // Its mappings (and the domain, with the last) go before the API they map.
    let api_id = d.status.api_id.clone();
    let mut domains: Vec<String> = d.status.domain.iter().map(|s| s.name.clone()).collect();
    domains.extend(plan.domain.iter().map(|p| p.name.clone()));
    domains.dedup();
    for name in &domains {
        release_domain(d, name, api_id.as_deref()).await?;
    }
    // The API goes with everything in it (integrations, authorizer, routes, stage).
    d.ensure(&http_api::HttpApiKind, &None).await?;
    // Every pair it recorded before registering, and the one status names. An object from
    // before those records may have registered the spec's pair before its status named
    // it: that one too, unless its issuer is not allowed (a sync never starts with such a
    // spec, and the operator's IAM policy may not even let it read that provider).
    let mut pairs: Vec<(String, String)> = d
        .status
        .oidc_claims
        .iter()
        .map(|c| (c.provider_arn.clone(), c.client_id.clone()))
        .collect();
    if d.status.oidc_claims.is_empty() && issuer_allowed {
        pairs.push((plan.oidc.arn.clone(), plan.oidc.client_id.clone()));
    }
    pairs.extend(registered_oidc(&d.status));
    pairs.sort();
    pairs.dedup();
    for (arn, client_id) in pairs {
        release_oidc(d, &arn, &client_id).await?;
    }
    Ok(())
}
