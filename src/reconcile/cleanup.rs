//! Deleting what an object made: every kind with nothing desired, innermost first.

use kube::runtime::controller::Action as Requeue;
use kube::runtime::events::EventType;

use super::domain::release_domain;
use super::driver::{Driver, Mode};
use super::events::{Action, Call, Reason};
use super::kinds::{http_api, identity_pool, outputs, permissions, role};
use super::sync::{registered_oidc, release_oidc};
use super::{Context, Error, OBSERVE_ONLY, Placed, annotated, guardrails, names_for};
use crate::api::{AuthedApi, DeletionPolicy};

/// Delete every AWS resource of `obj` (unless it says Retain, or is observe-only),
/// innermost first.
pub(super) async fn cleanup(obj: &AuthedApi, ctx: &Context) -> Result<Requeue, Error> {
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
    // Names do not depend on the routes; a spec whose routes no longer plan must still
    // be deletable. (Access rules keep their names, which name their roles.)
    let mut for_names = obj.clone();
    for_names.spec.routes.clear();
    // Nor on the tags: a spec whose tags AWS would refuse must still be deletable.
    for_names.spec.tags.clear();
    if let Some(access) = &mut for_names.spec.access {
        access.rules.iter_mut().for_each(|rule| rule.routes.clear());
    }
    let guardrails = guardrails(obj, ctx).await?;
    let Placed { aws, plan, .. } = names_for(&for_names, ctx, &guardrails).await?;
    let status = obj.status.clone().unwrap_or_default();
    let mut d = Driver::new(&aws, &plan, obj, ctx, status, Mode::Act);

    d.ensure(&outputs::Outputs, &None).await?;
    d.ensure(&identity_pool::IdentityPoolKind, &None).await?;
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
        release_domain(&mut d, name, api_id.as_deref()).await?;
    }
    // The API goes with everything in it (integrations, authorizer, routes, stage).
    d.ensure(&http_api::HttpApiKind, &None).await?;
    // The pair status records (the spec may have moved away from it) and the one the spec
    // names (its client id may have been added before status recorded it).
    let planned = (plan.oidc.arn.clone(), plan.oidc.client_id.clone());
    let registered = registered_oidc(&d.status).filter(|pair| *pair != planned);
    for (arn, client_id) in registered.into_iter().chain([planned]) {
        release_oidc(&mut d, &arn, &client_id).await?;
    }
    ctx.forget(&uid);
    Ok(Requeue::await_change())
}
