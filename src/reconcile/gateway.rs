//! The HTTP API and everything inside it: integrations, the JWT authorizer, routes and the
//! `$default` stage. Inside an API that is ours, every child is ours too, so children are
//! reconciled as sets: create what is missing, update what differs, delete the rest.

use std::collections::{BTreeMap, HashMap};

use super::{Error, Step};
use crate::api::RouteStatus;
use crate::aws::apigateway::{
    ApiGateway, DEFAULT_STAGE, HttpApi, Integration, IntegrationTarget, JwtAuthorizer, RouteAuth,
};

/// Make the API match the plan; returns its id.
pub async fn ensure(step: &mut Step<'_>) -> Result<String, Error> {
    let gw = &step.aws.apigateway;
    let api = find_or_create_api(step).await?;
    let api_id = api.id.clone();
    let arn = ApiGateway::api_arn(&step.plan.partition, &step.plan.region, &api_id);
    warn_if_tags_drifted(step, &format!("HTTP API {api_id}"), &arn, &api.tags).await;

    ensure_api_settings(step, &api).await?;

    // Observe the children once; the steps below work from these lists.
    let existing_integrations = gw.list_integrations(&api_id).await?;
    let existing_authorizers = gw.list_authorizers(&api_id).await?;
    let integrations = ensure_integrations(step, &api_id, &existing_integrations).await?;
    let authorizer_id = ensure_authorizer(step, &api_id, &existing_authorizers).await?;
    ensure_routes(step, &api_id, &integrations, authorizer_id.as_deref()).await?;
    let unused_integrations = existing_integrations
        .iter()
        .map(|i| i.id.as_str())
        .filter(|id| !integrations.values().any(|wanted| wanted == id));
    let unused_authorizers = existing_authorizers
        .iter()
        .map(|a| a.id.as_str())
        .filter(|id| Some(*id) != authorizer_id.as_deref());
    delete_unused(step, &api_id, unused_integrations, unused_authorizers).await?;
    ensure_stage(step, &api_id).await?;
    Ok(api_id)
}

/// Marks a CreateApi whose outcome may not be in status yet.
pub const PENDING_API: &str = "HttpApi";

/// The API by the id in status; else, if a create may have happened unrecorded, ours by
/// name and uid tag; else a new one. The create is marked pending before it is sent and
/// its id saved right after, so a crash never leaves an API we would not find again.
async fn find_or_create_api(step: &mut Step<'_>) -> Result<HttpApi, Error> {
    let gw = &step.aws.apigateway;
    if let Some(id) = step.writer.status.api_id.clone() {
        match gw.get_api(&id).await? {
            Some(api) if step.is_ours(&api.tags) => return Ok(api),
            Some(_) => {
                return Err(Error::NameConflict(format!(
                    "the HTTP API {id} in status is not tagged as this object's ({}={})",
                    crate::plan::TAG_UID,
                    step.uid()
                )));
            }
            // Deleted behind our back: create it again.
            None => {}
        }
    }
    if step.writer.is_pending(PENDING_API)
        && let Some(api) = find_ours_by_name(step).await?.into_iter().next()
    {
        remember_api(step, &api).await?;
        return Ok(api);
    }
    step.writer.mark_pending(PENDING_API).await?;
    let api = gw.create_api(&step.plan.api_name, &step.plan.tags).await?;
    remember_api(step, &api).await?;
    step.event(
        "Created",
        "CreateApi",
        format!("Created HTTP API {} ({})", api.name, api.id),
    )
    .await;
    Ok(api)
}

/// APIs with our name and our uid tag. (Names are not unique in API Gateway; one with
/// our name but not our tag is someone else's and is ignored.)
async fn find_ours_by_name(step: &Step<'_>) -> Result<Vec<HttpApi>, Error> {
    let mut apis = step
        .aws
        .apigateway
        .find_apis_by_name(&step.plan.api_name)
        .await?;
    apis.retain(|a| step.is_ours(&a.tags));
    Ok(apis)
}

/// Save the API id and endpoint to status before anything else is created in it.
async fn remember_api(step: &mut Step<'_>, api: &HttpApi) -> Result<(), Error> {
    let endpoint = if api.endpoint.is_empty() {
        step.plan.endpoint(&api.id)
    } else {
        api.endpoint.clone()
    };
    let pending = step.writer.is_pending(PENDING_API);
    step.writer.clear_pending(PENDING_API);
    let status = &mut step.writer.status;
    if pending
        || status.api_id.as_deref() != Some(&api.id)
        || status.api_endpoint.as_deref() != Some(&endpoint)
    {
        status.api_id = Some(api.id.clone());
        status.api_endpoint = Some(endpoint);
        step.writer.save().await?;
    }
    Ok(())
}

/// One integration per distinct target; returns target -> integration id.
async fn ensure_integrations(
    step: &mut Step<'_>,
    api_id: &str,
    existing: &[Integration],
) -> Result<BTreeMap<IntegrationTarget, String>, Error> {
    let gw = &step.aws.apigateway;
    let mut by_target = BTreeMap::new();
    for integration in existing {
        if let Some(target) = &integration.target {
            by_target
                .entry(target.clone())
                .or_insert(integration.id.clone());
        }
    }
    let mut wanted = BTreeMap::new();
    for target in &step.plan.integrations {
        let id = match by_target.get(target) {
            Some(id) => id.clone(),
            None => {
                let id = gw.create_integration(api_id, target).await?;
                step.event(
                    "Created",
                    &format!("CreateIntegration {id}"),
                    format!("Created integration {id} to {}", describe(target)),
                )
                .await;
                id
            }
        };
        wanted.insert(target.clone(), id);
    }
    Ok(wanted)
}

/// The JWT authorizer when a route needs it; returns its id.
async fn ensure_authorizer(
    step: &mut Step<'_>,
    api_id: &str,
    existing: &[JwtAuthorizer],
) -> Result<Option<String>, Error> {
    let Some(jwt) = &step.plan.jwt else {
        return Ok(None);
    };
    let gw = &step.aws.apigateway;
    match existing.iter().find(|a| a.name == jwt.name) {
        Some(a) if a.issuer == jwt.issuer && sorted(&a.audience) == sorted(&jwt.audience) => {
            Ok(Some(a.id.clone()))
        }
        Some(a) => {
            gw.update_jwt_authorizer(api_id, &a.id, &jwt.issuer, &jwt.audience)
                .await?;
            step.event(
                "Updated",
                "UpdateAuthorizer",
                format!("Updated JWT authorizer {}: issuer {}", a.id, jwt.issuer),
            )
            .await;
            Ok(Some(a.id.clone()))
        }
        None => {
            let id = gw
                .create_jwt_authorizer(api_id, &jwt.name, &jwt.issuer, &jwt.audience)
                .await?;
            step.event(
                "Created",
                "CreateAuthorizer",
                format!("Created JWT authorizer {id}: issuer {}", jwt.issuer),
            )
            .await;
            Ok(Some(id))
        }
    }
}

/// Routes as planned: authorization type always explicit, NONE included.
async fn ensure_routes(
    step: &mut Step<'_>,
    api_id: &str,
    integrations: &BTreeMap<IntegrationTarget, String>,
    authorizer_id: Option<&str>,
) -> Result<(), Error> {
    let gw = &step.aws.apigateway;
    let existing = gw.list_routes(api_id).await?;
    let by_key: HashMap<&str, _> = existing.iter().map(|r| (r.key.as_str(), r)).collect();
    let mut statuses = Vec::with_capacity(step.plan.routes.len());
    for route in &step.plan.routes {
        let integration_id = &integrations[&route.target];
        let auth = step.plan.route_auth(route, authorizer_id);
        let id = match by_key.get(route.key.as_str()) {
            Some(current)
                if current.integration_id.as_deref() == Some(integration_id)
                    && same_auth(&current.auth, &auth) =>
            {
                current.id.clone()
            }
            Some(current) => {
                gw.update_route(api_id, &current.id, integration_id, &auth)
                    .await?;
                step.event(
                    "Updated",
                    &format!("UpdateRoute {}", route.key),
                    format!("Updated route {} ({})", route.key, auth_name(&auth)),
                )
                .await;
                current.id.clone()
            }
            None => {
                let id = gw
                    .create_route(api_id, &route.key, integration_id, &auth)
                    .await?;
                step.event(
                    "Created",
                    &format!("CreateRoute {}", route.key),
                    format!("Created route {} ({})", route.key, auth_name(&auth)),
                )
                .await;
                id
            }
        };
        statuses.push(RouteStatus {
            route: route.key.clone(),
            authorization: route.authorization,
            route_id: Some(id),
        });
    }
    for route in existing
        .iter()
        .filter(|r| !step.plan.routes.iter().any(|p| p.key == r.key))
    {
        gw.delete_route(api_id, &route.id).await?;
        step.event(
            "Deleted",
            &format!("DeleteRoute {}", route.key),
            format!("Deleted route {}", route.key),
        )
        .await;
    }
    step.writer.status.routes = statuses;
    Ok(())
}

/// Integrations and authorizers no route uses any more (including duplicates).
async fn delete_unused(
    step: &mut Step<'_>,
    api_id: &str,
    integrations: impl Iterator<Item = &str>,
    authorizers: impl Iterator<Item = &str>,
) -> Result<(), Error> {
    let gw = &step.aws.apigateway;
    for id in integrations {
        gw.delete_integration(api_id, id).await?;
        step.event(
            "Deleted",
            &format!("DeleteIntegration {id}"),
            format!("Deleted unused integration {id}"),
        )
        .await;
    }
    for id in authorizers {
        gw.delete_authorizer(api_id, id).await?;
        step.event(
            "Deleted",
            &format!("DeleteAuthorizer {id}"),
            format!("Deleted unused authorizer {id}"),
        )
        .await;
    }
    Ok(())
}

/// CORS and the default endpoint as the spec says.
async fn ensure_api_settings(step: &mut Step<'_>, api: &HttpApi) -> Result<(), Error> {
    let plan = step.plan;
    if api.cors == plan.cors
        && api.disable_execute_api_endpoint == plan.disable_execute_api_endpoint
    {
        return Ok(());
    }
    step.aws
        .apigateway
        .update_api_settings(
            &api.id,
            plan.cors.as_ref(),
            api.cors.is_some(),
            plan.disable_execute_api_endpoint,
        )
        .await?;
    step.event(
        "Updated",
        "UpdateApi",
        format!(
            "Set CORS ({}) and the default endpoint ({})",
            if plan.cors.is_some() { "on" } else { "off" },
            if plan.disable_execute_api_endpoint {
                "disabled"
            } else {
                "enabled"
            }
        ),
    )
    .await;
    Ok(())
}

/// API Gateway tags are set at creation only: the tags resource has no resource-tag
/// condition key, so the operator's IAM policy cannot let it retag an API of its own
/// without letting it retag (and so take) anyone's. Drift is reported, for a person to fix.
async fn warn_if_tags_drifted(
    step: &Step<'_>,
    what: &str,
    arn: &str,
    tags: &BTreeMap<String, String>,
) {
    let drifted: Vec<String> = step
        .plan
        .tags
        .iter()
        .filter(|(k, v)| tags.get(*k) != Some(v))
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    if drifted.is_empty() {
        return;
    }
    step.warn(
        "TagsDrifted",
        "TagResource",
        format!(
            "The {what} lacks the tags {}: authedapi sets API Gateway tags only when it \
             creates a resource. Restore them: aws apigatewayv2 tag-resource --resource-arn {arn} --tags ...",
            drifted.join(", ")
        ),
    )
    .await;
}

/// The `$default` stage with auto-deploy, so every change goes live, and the spec's
/// throttling and access logs.
async fn ensure_stage(step: &mut Step<'_>, api_id: &str) -> Result<(), Error> {
    let gw = &step.aws.apigateway;
    let wanted = &step.plan.stage;
    let stage = gw.get_stage(api_id, DEFAULT_STAGE).await?;
    if let Some(stage) = &stage {
        let arn = ApiGateway::api_arn(&step.plan.partition, &step.plan.region, api_id);
        let what = format!("{DEFAULT_STAGE} stage of {api_id}");
        warn_if_tags_drifted(
            step,
            &what,
            &format!("{arn}/stages/{DEFAULT_STAGE}"),
            &stage.tags,
        )
        .await;
    }
    match stage {
        Some(stage) if stage.auto_deploy && stage.settings == *wanted => {}
        Some(stage) => {
            gw.update_stage_settings(api_id, DEFAULT_STAGE, &stage.settings, wanted)
                .await?;
            step.event(
                "Updated",
                "UpdateStage",
                "Updated the $default stage (auto-deploy, throttling, access logs)".into(),
            )
            .await;
        }
        None => {
            gw.create_stage(api_id, DEFAULT_STAGE, &step.plan.tags, wanted)
                .await?;
            step.event(
                "Created",
                "CreateStage",
                "Created the $default stage (auto-deploy)".into(),
            )
            .await;
        }
    }
    Ok(())
}

/// Delete the API (with everything in it) if it is ours.
pub async fn delete(step: &mut Step<'_>) -> Result<(), Error> {
    let gw = &step.aws.apigateway;
    let mut ours = Vec::new();
    if let Some(id) = &step.writer.status.api_id
        && let Some(api) = gw.get_api(id).await?
        && step.is_ours(&api.tags)
    {
        ours.push(api);
    }
    // Also any API of ours whose id never reached status (a crash right after create).
    if step.writer.is_pending(PENDING_API) {
        for api in find_ours_by_name(step).await? {
            if !ours.iter().any(|a| a.id == api.id) {
                ours.push(api);
            }
        }
    }
    for api in ours {
        match gw.delete_api(&api.id).await {
            Ok(()) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e.into()),
        }
        step.event(
            "Deleted",
            &format!("DeleteApi {}", api.id),
            format!("Deleted HTTP API {} ({})", api.name, api.id),
        )
        .await;
    }
    Ok(())
}

fn same_auth(current: &RouteAuth, wanted: &RouteAuth) -> bool {
    match (current, wanted) {
        (
            RouteAuth::Jwt {
                authorizer_id: a,
                scopes: s,
            },
            RouteAuth::Jwt {
                authorizer_id: b,
                scopes: t,
            },
        ) => a == b && sorted(s) == sorted(t),
        _ => current == wanted,
    }
}

fn sorted(items: &[String]) -> Vec<&String> {
    let mut items: Vec<&String> = items.iter().collect();
    items.sort();
    items
}

fn auth_name(auth: &RouteAuth) -> &'static str {
    match auth {
        RouteAuth::None => "NONE",
        RouteAuth::Iam => "AWS_IAM",
        RouteAuth::Jwt { .. } => "JWT",
    }
}

fn describe(target: &IntegrationTarget) -> String {
    match target {
        IntegrationTarget::Lambda { function_arn, .. } => format!("Lambda {function_arn}"),
        IntegrationTarget::Http { url, .. } => format!("URL {url}"),
    }
}
