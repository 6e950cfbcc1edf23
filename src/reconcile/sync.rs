//! Making AWS match the spec: every kind in dependency order ([`kinds::REGISTERED`], as a
//! test checks), each through the driver.

use std::collections::BTreeMap;

use kube::ResourceExt;

use super::Error;
use super::adoption;
use super::driver::{Driver, Mode};
use super::kinds::{
    self, authorizer, http_api, identity_pool, integrations, lambda_authorizer, oidc_provider,
    outputs, permissions, pool_roles, role, routes, stage, vpc_link,
};
use crate::api::{AccessRoleStatus, AuthedApiStatus, DomainStatus, OidcClaim, RouteStatus};
use crate::aws::cognito::{IdentityPool, MappingRule, PoolRoles, RulesMapping};
use crate::plan::{VpcLinkPlan, through_link};

/// Every kind, in dependency order. In observe-only mode a missing parent (no API, no
/// pool, no role yet) ends the walk: what lives inside it would be created with it.
pub async fn sync(d: &mut Driver<'_>) -> Result<(), Error> {
    let plan = d.plan;
    let ctx = d.ctx;
    let acting = d.mode == Mode::Act;
    // Where its resources are, and the provider's client id it is about to register,
    // saved before the first AWS call that makes anything: a status without an account
    // proves there is nothing of this object's to delete, and no crash or later spec
    // change forgets a client id (each is released below once the pool moved off it).
    let claim = OidcClaim {
        provider_arn: plan.oidc.arn.clone(),
        client_id: plan.oidc.client_id.clone(),
    };
    d.record(|status| {
        status.account_id = Some(plan.account.clone());
        status.region = Some(plan.region.clone());
        if !status.oidc_claims.contains(&claim) {
            status.oidc_claims.push(claim.clone());
            status.oidc_claims.sort();
        }
    })
    .await?;
    d.status.account_id = Some(plan.account.clone());
    d.status.region = Some(plan.region.clone());
    let previous_oidc = registered_oidc(&d.status);

    // The organisation's tag keys are recorded before any resource gets them, so a key
    // that later leaves the spec is known to be ours to remove; the ones that left are
    // removed where the kind can untag, and forgotten once the sync is through.
    d.record(|status| {
        for key in &plan.tag_keys {
            if !status.tag_keys.contains(key) {
                status.tag_keys.push(key.clone());
            }
        }
        status.tag_keys.sort();
    })
    .await?;
    let stale_tags = d.stale_tags();

    // What spec.adopt names is checked before the first write.
    adoption::check(d).await?;

    {
        let _turn = ctx.lock_shared(&plan.oidc.arn).await;
        let provider = oidc_provider::OidcProviderKind {
            arn: &plan.oidc.arn,
            cluster_id: &ctx.cluster_id,
        };
        d.ensure(
            &provider,
            &oidc_provider::Wanted::Registered(plan.oidc.clone()),
        )
        .await?;
    }

    // The VPC link private targets go through, before the integrations that use it.
    let mut wanted_link = vpc_link::Wanted {
        link: plan.vpc_link.clone(),
        prune: false,
    };
    let links = d.ensure(&vpc_link::VpcLinkKind, &wanted_link).await?;
    let link_id = links
        .in_use(plan.vpc_link.as_ref())
        .map(|link| link.id.clone());

    let api = http_api::Wanted {
        cors: plan.cors.clone(),
        disable_execute_api_endpoint: plan.disable_execute_api_endpoint,
    };
    let apis = d.ensure(&http_api::HttpApiKind, &Some(api)).await?;
    let Some(api_id) = apis.first().map(|a| a.id.clone()) else {
        return Ok(());
    };
    if plan.vpc_link.is_some() && link_id.is_none() {
        return Ok(()); // observe-only: what goes through the link comes with it
    }
    let link_id = link_id.as_deref();

    // A new API has nothing inside it yet: its children are created without a look.
    let new_api = d.created(&http_api::INFO);
    let in_api = integrations::Integrations {
        api_id: &api_id,
        new_api,
    };
    let mut wanted_integrations = integrations::Wanted {
        targets: plan
            .integrations
            .iter()
            .map(|target| through_link(target, link_id))
            .collect(),
        prune: false,
    };
    let found = d.ensure(&in_api, &wanted_integrations).await?;
    let by_target = integrations::by_target(&found);
    let listed = authorizer::list(d, &api_id, new_api).await?;
    let jwt = authorizer::Authorizer {
        api_id: &api_id,
        listed: &listed,
    };
    let mut wanted_jwt = authorizer::Wanted {
        jwt: plan.jwt.clone(),
        prune: false,
    };
    let authorizers = d.ensure(&jwt, &wanted_jwt).await?;
    let authorizer_id = authorizer::chosen(plan.jwt.as_ref(), &authorizers).map(|a| a.id.clone());
    let lambda = lambda_authorizer::LambdaAuthorizers {
        api_id: &api_id,
        listed: &listed,
    };
    let mut wanted_lambda = lambda_authorizer::Wanted {
        authorizers: plan.lambda_authorizers.clone(),
        prune: false,
    };
    let lambda_authorizers = d.ensure(&lambda, &wanted_lambda).await?;
    let lambda_ids = lambda_authorizer::ids(&plan.lambda_authorizers, &lambda_authorizers);
    let wanted_routes: Vec<routes::WantedRoute> = plan
        .routes
        .iter()
        .map(|r| routes::WantedRoute {
            key: r.key.clone(),
            integration_id: by_target
                .get(&through_link(&r.target, link_id))
                .cloned()
                .unwrap_or_default(),
            auth: plan.route_auth(r, authorizer_id.as_deref(), &lambda_ids),
        })
        .collect();
    let in_routes = d
        .ensure(
            &routes::Routes {
                api_id: &api_id,
                new_api,
            },
            &wanted_routes,
        )
        .await?;
    if acting {
        d.status.routes = plan
            .routes
            .iter()
            .map(|r| RouteStatus {
                route: r.key.clone(),
                authorization: r.authorization,
                route_id: in_routes
                    .iter()
                    .find(|x| x.key == r.key)
                    .map(|x| x.id.clone()),
            })
            .collect();
    }
    // Now that no route uses them: the unused integrations and authorizers.
    wanted_integrations.prune = true;
    d.act(&in_api, &wanted_integrations, found).await?;
    wanted_jwt.prune = true;
    d.act(&jwt, &wanted_jwt, authorizers).await?;
    wanted_lambda.prune = true;
    d.act(&lambda, &wanted_lambda, lambda_authorizers).await?;
    // Now that no integration uses them: the links of ours not in use.
    wanted_link.prune = true;
    let links = d.act(&vpc_link::VpcLinkKind, &wanted_link, links).await?;
    if acting {
        d.status.vpc_link_id = match &plan.vpc_link {
            Some(VpcLinkPlan::Owned { .. }) => links
                .in_use(plan.vpc_link.as_ref())
                .map(|link| link.id.clone()),
            _ => None,
        };
    }
    d.ensure(
        &stage::DefaultStage {
            api_id: &api_id,
            new_api,
        },
        &plan.stage,
    )
    .await?;
    super::domain::sync_domain(d, &api_id).await?;

    let functions = permissions::Wanted {
        functions: plan.invoke_permissions(&api_id),
    };
    d.ensure(
        &permissions::Permissions {
            sid: &plan.permission_sid,
        },
        &functions,
    )
    .await?;
    if acting {
        d.status.lambda_permissions = functions.functions.keys().cloned().collect();
    }

    let pool = identity_pool::Wanted {
        pool: IdentityPool {
            id: String::new(),
            name: plan.identity_pool_name.clone(),
            allow_unauthenticated: false,
            oidc_provider_arns: vec![plan.oidc.arn.clone()],
            tags: plan.tags.clone(),
        },
        stale_tags: stale_tags.clone(),
    };
    let Some(pool) = d
        .ensure(&identity_pool::IdentityPoolKind, &Some(pool))
        .await?
    else {
        return Ok(());
    };

    let Some(default_role) =
        ensure_role(d, &plan.role_name, &pool.id, "authenticated identities").await?
    else {
        return Ok(());
    };
    d.status.authenticated_role_arn = Some(default_role.role.arn.clone());
    let mut propagating = default_role.role.is_new();
    d.ensure(
        &kinds::role_policy::RolePolicy {
            role: &plan.role_name,
            new_role: d.created_named(&role::INFO, &plan.role_name),
        },
        &plan.invoke_policy(&api_id),
    )
    .await?;

    // Access rule roles are recorded in status before they are created, so a crash never
    // leaves one behind that a later delete would not find.
    let rules = plan
        .access
        .as_ref()
        .map(|a| a.rules.as_slice())
        .unwrap_or_default();
    let wanted_roles: Vec<AccessRoleStatus> = rules
        .iter()
        .map(|r| AccessRoleStatus {
            rule: r.name.clone(),
            role_name: r.role_name.clone(),
        })
        .collect();
    let recorded = d.status.access_roles.clone();
    d.record(|status| {
        for role in &wanted_roles {
            if !status.access_roles.contains(role) {
                status.access_roles.push(role.clone());
            }
        }
    })
    .await?;
    let mut rule_arns = Vec::new();
    for rule in rules {
        let purpose = format!("Users matching access rule {}", rule.name);
        let Some(role) = ensure_role(d, &rule.role_name, &pool.id, &purpose).await? else {
            return Ok(());
        };
        propagating |= role.role.is_new();
        rule_arns.push(role.role.arn.clone());
        d.ensure(
            &kinds::role_policy::RolePolicy {
                role: &rule.role_name,
                new_role: d.created_named(&role::INFO, &rule.role_name),
            },
            &plan.policy_for(&api_id, &rule.resources),
        )
        .await?;
    }
    for stale in recorded.iter().filter(|r| !wanted_roles.contains(r)) {
        d.ensure(
            &role::RoleKind {
                name: &stale.role_name,
            },
            &None,
        )
        .await?;
    }
    if acting {
        d.status.access_roles = wanted_roles;
    }

    let mapping = plan.access.as_ref().map(|access| RulesMapping {
        provider: plan.oidc.name.clone(),
        deny_unmatched: access.deny_unmatched,
        rules: access
            .rules
            .iter()
            .zip(&rule_arns)
            .map(|(rule, arn)| MappingRule {
                claim: rule.claim.clone(),
                match_type: rule.match_type.clone(),
                value: rule.value.clone(),
                role_arn: arn.clone(),
            })
            .collect(),
    });
    let roles = pool_roles::Wanted {
        roles: PoolRoles {
            authenticated: Some(default_role.role.arn.clone()),
            unauthenticated: None,
            mapping,
        },
        roles_may_be_propagating: propagating,
    };
    let roles_kind = pool_roles::PoolRolesKind {
        pool_id: &pool.id,
        new_pool: d.created(&identity_pool::INFO),
    };
    d.ensure(&roles_kind, &roles).await?;

    let config_map = d.obj.spec.outputs.as_ref().map(|o| {
        // An Auth0 tenant's outputs keep the names the seed's frontend reads.
        let (issuer_key, client_key, issuer) = match &d.obj.spec.oidc {
            None => ("auth0Domain", "auth0ClientId", plan.oidc.name.clone()),
            Some(oidc) => ("issuer", "clientId", oidc.issuer.clone()),
        };
        let mut data = BTreeMap::from([
            (
                "endpoint".to_owned(),
                d.status.api_endpoint.clone().unwrap_or_default(),
            ),
            ("identityPoolId".to_owned(), pool.id.clone()),
            ("region".to_owned(), plan.region.clone()),
            (issuer_key.to_owned(), issuer),
            (client_key.to_owned(), plan.oidc.client_id.clone()),
        ]);
        data.extend(domain_outputs(d.status.domain.as_ref()));
        outputs::config_map(d.obj, &o.config_map_name, data)
    });
    d.ensure(&outputs::Outputs, &config_map).await?;
    if acting {
        d.status.outputs_config_map = d
            .obj
            .spec
            .outputs
            .as_ref()
            .map(|o| o.config_map_name.clone());
    }

    // The pool no longer points at a provider/client id the spec moved away from: let
    // each go (the one status names, and any other recorded), each forgotten only once
    // released (so a failure on the way never forgets one).
    let mut stale: Vec<(String, String)> = d
        .status
        .oidc_claims
        .iter()
        .filter(|c| **c != claim)
        .map(|c| (c.provider_arn.clone(), c.client_id.clone()))
        .collect();
    stale.extend(previous_oidc.filter(|(arn, client_id)| {
        (arn, client_id) != (&plan.oidc.arn, &plan.oidc.client_id)
            && !stale.iter().any(|(a, c)| a == arn && c == client_id)
    }));
    for (arn, client_id) in &stale {
        release_oidc(d, arn, client_id).await?;
    }
    if acting {
        d.status.oidc_provider_arn = Some(plan.oidc.arn.clone());
        d.status.oidc_client_id = Some(plan.oidc.client_id.clone());
        d.status.tag_keys = plan.tag_keys.iter().cloned().collect();
    }
    Ok(())
}

/// What DNS needs for the custom domain, as the outputs ConfigMap has it.
fn domain_outputs(domain: Option<&DomainStatus>) -> Vec<(String, String)> {
    let Some(domain) = domain else {
        return Vec::new();
    };
    [
        ("domainName", Some(&domain.name)),
        ("domainUrl", domain.url.as_ref()),
        ("domainTarget", domain.target_domain_name.as_ref()),
        ("domainHostedZoneId", domain.hosted_zone_id.as_ref()),
    ]
    .into_iter()
    .filter_map(|(key, value)| Some((key.to_owned(), value?.clone())))
    .collect()
}

/// A role only this pool's authenticated identities may assume; None in observe-only
/// mode when it does not exist yet.
async fn ensure_role(
    d: &mut Driver<'_>,
    name: &str,
    pool_id: &str,
    purpose: &str,
) -> Result<Option<role::Observed>, Error> {
    let wanted = role::Wanted {
        trust_policy: d.plan.trust_policy(pool_id),
        description: format!(
            "{purpose} of identity pool {pool_id} (AuthedApi {}/{})",
            d.obj.namespace().unwrap_or_default(),
            d.obj.name_any()
        ),
        tags: d.plan.tags.clone(),
        stale_tags: d.stale_tags(),
    };
    d.ensure(&role::RoleKind { name }, &Some(wanted)).await
}

/// The provider ARN and client id this object registered last time (from status).
pub(super) fn registered_oidc(status: &AuthedApiStatus) -> Option<(String, String)> {
    Some((
        status.oidc_provider_arn.clone()?,
        status.oidc_client_id.clone()?,
    ))
}

/// Let go of a provider/client id pair (see [`oidc_provider`]).
pub(super) async fn release_oidc(
    d: &mut Driver<'_>,
    arn: &str,
    client_id: &str,
) -> Result<(), Error> {
    let ctx = d.ctx;
    let _turn = ctx.lock_shared(arn).await;
    let uid = d.uid().to_owned();
    let wanted = oidc_provider::Wanted::Released {
        client_id: client_id.to_owned(),
        used_by_others: used_by_others(ctx, &uid, arn, client_id).await?,
    };
    let provider = oidc_provider::OidcProviderKind {
        arn,
        cluster_id: &ctx.cluster_id,
    };
    d.ensure(&provider, &wanted).await?;
    // Dropped with the turn still held, so no other object's release reads it as held.
    d.record(|status| {
        status
            .oidc_claims
            .retain(|c| !(c.provider_arn == arn && c.client_id == client_id))
    })
    .await
}

/// Whether another AuthedApi holds `client_id` on the provider `arn` (see
/// [`oidc_provider::holds`]), by its status read afresh: the cache may be behind on what
/// it recorded or released. Those the cache says may hold it are read, until one does.
/// Every object records a pair before registering it, and drops it after releasing it
/// while it still has the provider's turn, which this release holds: what is read is
/// what stands.
async fn used_by_others(
    ctx: &super::Context,
    uid: &str,
    arn: &str,
    client_id: &str,
) -> Result<bool, Error> {
    let candidates: Vec<(String, String)> = ctx
        .store
        .state()
        .iter()
        .filter(|other| oidc_provider::may_hold(other, uid, arn, client_id))
        .map(|other| (other.namespace().unwrap_or_default(), other.name_any()))
        .collect();
    for (namespace, name) in candidates {
        if let Some(fresh) = ctx.cluster.authed_api(&namespace, &name).await?
            && oidc_provider::holds(&fresh, uid, arn, client_id)
        {
            return Ok(true);
        }
    }
    Ok(false)
}
