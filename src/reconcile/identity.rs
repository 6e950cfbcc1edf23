//! Who may call the private routes: the shared OIDC provider for the Auth0 domain, the
//! Cognito identity pool federating it, the role its authenticated identities assume,
//! that role's invoke policy, and the pool's role attachment.

use kube::ResourceExt;

use super::{Error, Step};
use crate::aws::cognito::{IdentityPool, MappingRule, PoolRoles, RulesMapping};
use crate::aws::{AwsError, ErrorKind};
use std::collections::BTreeMap;

use crate::plan::{
    self, INVOKE_POLICY_NAME, MANAGED_BY, TAG_CLAIM_PREFIX, TAG_CLUSTER, TAG_MANAGED_BY,
};
use crate::policy;

/// The provider ARN and client id this object registered last time (from status).
pub fn registered_oidc(step: &Step<'_>) -> Option<(String, String)> {
    let status = &step.writer.status;
    Some((
        status.oidc_provider_arn.clone()?,
        status.oidc_client_id.clone()?,
    ))
}

/// Who a provider belongs to, from its tags.
struct Ownership {
    /// authedapi created it (some cluster's operator): it carries claim records.
    managed: bool,
    /// This cluster created it: only then may client ids be removed or it be deleted.
    ours: bool,
}

fn ownership(step: &Step<'_>, tags: &BTreeMap<String, String>) -> Ownership {
    let managed = tags.get(TAG_MANAGED_BY).map(String::as_str) == Some(MANAGED_BY);
    Ownership {
        managed,
        ours: managed && tags.get(TAG_CLUSTER) == Some(&step.ctx.cluster_id),
    }
}

/// The provider for the Auth0 domain exists and trusts our client id. It is shared by
/// every AuthedApi on that domain: created (tagged as this cluster's) only when absent.
/// On a provider authedapi manages, this cluster's claim on the client id is recorded
/// (so no cluster removes a client id another still uses); on one this cluster created,
/// that it added the client id is recorded *before* adding it (so it never removes one it
/// did not add). A provider someone else made gets the client id and nothing else.
/// Status records the pair only once a pair the spec moved away from has been let go
/// (see `reconcile::sync`), so that one is never lost.
pub async fn ensure_oidc_provider(step: &mut Step<'_>) -> Result<(), Error> {
    let iam = &step.aws.iam;
    let oidc = &step.plan.oidc;
    let _turn = step.ctx.lock_provider(&oidc.arn).await;
    let provider = match iam.get_oidc_provider(&oidc.arn).await? {
        Some(provider) => provider,
        None => {
            let mut tags = oidc.tags.clone();
            tags.extend([oidc.claim.clone(), oidc.added.clone()]);
            match iam
                .create_oidc_provider(&oidc.url, std::slice::from_ref(&oidc.client_id), &tags)
                .await
            {
                Ok(_) => {
                    step.event(
                        "Created",
                        "CreateOpenIDConnectProvider",
                        format!("Created OIDC provider {}", oidc.url),
                    )
                    .await;
                    return Ok(());
                }
                // Another AuthedApi on this domain created it a moment ago.
                Err(e) if e.kind == ErrorKind::Conflict => {
                    iam.get_oidc_provider(&oidc.arn).await?.ok_or(e)?
                }
                Err(e) => return Err(e.into()),
            }
        }
    };
    let owner = ownership(step, &provider.tags);
    let mut records = BTreeMap::new();
    if owner.managed && provider.tags.get(&oidc.claim.0) != Some(&oidc.claim.1) {
        records.insert(oidc.claim.0.clone(), oidc.claim.1.clone());
    }
    let missing = !provider.client_ids.contains(&oidc.client_id);
    if missing && owner.ours && provider.tags.get(&oidc.added.0) != Some(&oidc.added.1) {
        records.insert(oidc.added.0.clone(), oidc.added.1.clone());
    }
    if !records.is_empty() {
        iam.tag_oidc_provider(&oidc.arn, &records).await?;
    }
    if missing {
        iam.add_client_id(&oidc.arn, &oidc.client_id).await?;
        step.event(
            "Updated",
            "AddClientIDToOpenIDConnectProvider",
            format!(
                "Added client id {} to OIDC provider {}",
                oidc.client_id, oidc.url
            ),
        )
        .await;
    }
    Ok(())
}

/// Whether any other AuthedApi this operator watches, not being deleted, uses the client
/// id on the provider.
fn used_by_others(step: &Step<'_>, arn: &str, client_id: &str) -> bool {
    let uid = step.uid();
    step.ctx.store.state().iter().any(|other| {
        if other.metadata.uid.as_deref() == Some(uid) || other.metadata.deletion_timestamp.is_some()
        {
            return false;
        }
        let by_status = other.status.as_ref().is_some_and(|s| {
            s.oidc_provider_arn.as_deref() == Some(arn)
                && s.oidc_client_id.as_deref() == Some(client_id)
        });
        let by_spec = other.spec.auth0.client_id == client_id
            && arn.ends_with(&format!(
                ":oidc-provider/{}",
                plan::normalize_domain(&other.spec.auth0.domain)
            ));
        by_status || by_spec
    })
}

/// Let go of a provider/client id pair, unless another AuthedApi of this cluster still
/// uses it: drop this cluster's claim; on a provider this cluster created, remove the
/// client id if this cluster recorded adding it and no cluster claims it any more, and
/// delete the provider once no client id is left. A client id this cluster did not add,
/// and a provider it did not create, are never removed.
pub async fn release_oidc(step: &Step<'_>, arn: &str, client_id: &str) -> Result<(), Error> {
    let iam = &step.aws.iam;
    let _turn = step.ctx.lock_provider(arn).await;
    if used_by_others(step, arn, client_id) {
        return Ok(());
    }
    let Some(provider) = iam.get_oidc_provider(arn).await? else {
        return Ok(());
    };
    let owner = ownership(step, &provider.tags);
    let our_claim = plan::claim_key(&step.ctx.cluster_id, client_id);
    if owner.managed && provider.tags.contains_key(&our_claim) {
        match iam
            .untag_oidc_provider(arn, std::slice::from_ref(&our_claim))
            .await
        {
            Ok(()) => {}
            Err(e) if e.is_not_found() => return Ok(()),
            Err(e) => return Err(e.into()),
        }
    }
    if !owner.ours {
        return Ok(());
    }
    let added = plan::added_key(&step.ctx.cluster_id, client_id);
    let claimed_elsewhere = provider.tags.iter().any(|(key, value)| {
        key.starts_with(TAG_CLAIM_PREFIX) && *key != our_claim && value == client_id
    });
    let present = provider.client_ids.iter().any(|c| c == client_id);
    let mut removed = false;
    if present && provider.tags.contains_key(&added) && !claimed_elsewhere {
        match iam.remove_client_id(arn, client_id).await {
            Ok(()) => {
                removed = true;
                step.event(
                    "Updated",
                    "RemoveClientIDFromOpenIDConnectProvider",
                    format!(
                        "Removed client id {client_id} from OIDC provider {}",
                        provider.url
                    ),
                )
                .await;
            }
            Err(e) if e.is_not_found() => return Ok(()),
            Err(e) => return Err(e.into()),
        }
        match iam
            .untag_oidc_provider(arn, std::slice::from_ref(&added))
            .await
        {
            Ok(()) => {}
            Err(e) if e.is_not_found() => return Ok(()),
            Err(e) => return Err(e.into()),
        }
    }
    let remaining = provider
        .client_ids
        .iter()
        .filter(|c| !(removed && *c == client_id))
        .count();
    if remaining == 0 {
        match iam.delete_oidc_provider(arn).await {
            Ok(()) => {
                step.event(
                    "Deleted",
                    "DeleteOpenIDConnectProvider",
                    format!("Deleted OIDC provider {} (no client id left)", provider.url),
                )
                .await;
            }
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// The pool as planned, for create and update (UpdateIdentityPool replaces all of it).
fn wanted_pool(step: &Step<'_>, id: &str) -> IdentityPool {
    IdentityPool {
        id: id.to_owned(),
        name: step.plan.identity_pool_name.clone(),
        allow_unauthenticated: false,
        oidc_provider_arns: vec![step.plan.oidc.arn.clone()],
        tags: step.plan.tags.clone(),
    }
}

/// Marks a CreateIdentityPool whose outcome may not be in status yet.
pub const PENDING_POOL: &str = "IdentityPool";

/// Our identity pool: by status id; else, if a create may have happened unrecorded, ours
/// by name and uid tag; else a new one (marked pending before, saved right after).
pub async fn ensure_identity_pool(step: &mut Step<'_>) -> Result<String, Error> {
    let cognito = &step.aws.cognito;
    let current = match find_pool(step).await? {
        Some(pool) => pool,
        None => {
            step.writer.mark_pending(PENDING_POOL).await?;
            let pool = cognito.create_identity_pool(&wanted_pool(step, "")).await?;
            step.writer.status.identity_pool_id = Some(pool.id.clone());
            step.writer.clear_pending(PENDING_POOL);
            step.writer.save().await?;
            step.event(
                "Created",
                "CreateIdentityPool",
                format!("Created identity pool {} ({})", pool.name, pool.id),
            )
            .await;
            return Ok(pool.id);
        }
    };
    if step.writer.status.identity_pool_id.as_deref() != Some(&current.id)
        || step.writer.is_pending(PENDING_POOL)
    {
        step.writer.status.identity_pool_id = Some(current.id.clone());
        step.writer.clear_pending(PENDING_POOL);
        step.writer.save().await?;
    }
    let wanted = wanted_pool(step, &current.id);
    let tags_match = step.has_plan_tags(&current.tags);
    let mut current_arns = current.oidc_provider_arns.clone();
    current_arns.sort();
    if current.name != wanted.name
        || current.allow_unauthenticated
        || current_arns != wanted.oidc_provider_arns
        || !tags_match
    {
        // Keep tags others added; ours win.
        let mut merged = wanted.clone();
        merged.tags = current.tags.clone();
        merged.tags.extend(wanted.tags.clone());
        cognito.update_identity_pool(&merged).await?;
        step.event(
            "Updated",
            "UpdateIdentityPool",
            format!("Updated identity pool {}", current.id),
        )
        .await;
    }
    Ok(current.id)
}

/// Our pool if it exists: by the id in status, else (when a create may have gone
/// unrecorded) by name and uid tag. Pool names are not unique in Cognito: a same-named pool
/// without our tag is someone else's and is ignored.
async fn find_pool(step: &Step<'_>) -> Result<Option<IdentityPool>, Error> {
    let cognito = &step.aws.cognito;
    if let Some(id) = &step.writer.status.identity_pool_id {
        match cognito.describe_identity_pool(id).await? {
            Some(pool) if step.is_ours(&pool.tags) => return Ok(Some(pool)),
            Some(_) => {
                return Err(Error::NameConflict(format!(
                    "the identity pool {id} in status is not tagged as this object's"
                )));
            }
            None => {}
        }
    }
    if !step.writer.is_pending(PENDING_POOL) {
        return Ok(None);
    }
    for id in cognito
        .find_identity_pools_by_name(&step.plan.identity_pool_name)
        .await?
    {
        if let Some(pool) = cognito.describe_identity_pool(&id).await?
            && step.is_ours(&pool.tags)
        {
            return Ok(Some(pool));
        }
    }
    Ok(None)
}

/// The authenticated role: trust only this pool's authenticated identities. Returns its
/// ARN and whether it is new enough that IAM may still be propagating it.
pub async fn ensure_role(step: &mut Step<'_>, pool_id: &str) -> Result<(String, bool), Error> {
    let name = step.plan.role_name.clone();
    let (arn, is_new) = ensure_named_role(step, &name, pool_id, "authenticated identities").await?;
    step.writer.status.authenticated_role_arn = Some(arn.clone());
    Ok((arn, is_new))
}

/// A role named `name`, assumable by this pool's authenticated identities only; its ARN
/// and whether IAM may still be propagating it (created now or minutes ago: a failed
/// step after its create is retried within that time).
async fn ensure_named_role(
    step: &mut Step<'_>,
    name: &str,
    pool_id: &str,
    purpose: &str,
) -> Result<(String, bool), Error> {
    let iam = &step.aws.iam;
    let trust = step.plan.trust_policy(pool_id);
    match iam.get_role(name).await? {
        None => {
            let description = format!(
                "{purpose} of identity pool {pool_id} (AuthedApi {}/{})",
                step.obj.namespace().unwrap_or_default(),
                step.obj.name_any()
            );
            let role = iam
                .create_role(
                    plan::ROLE_PATH,
                    name,
                    &trust,
                    &description,
                    &step.plan.tags,
                    &step.plan.permissions_boundary_arn,
                )
                .await?;
            step.event(
                "Created",
                &format!("CreateRole {name}"),
                format!("Created IAM role {name}"),
            )
            .await;
            Ok((role.arn, true))
        }
        Some(role) if !step.is_ours(&role.tags) => Err(Error::NameConflict(format!(
            "IAM role {} exists and is not tagged as this object's ({}={}): it was left alone; \
             delete or rename it, or rename this object",
            role.name,
            plan::TAG_UID,
            step.uid()
        ))),
        Some(role) => {
            if !policy::equivalent(&role.trust_policy, &trust) {
                iam.update_trust_policy(&role.name, &trust).await?;
                step.event(
                    "Updated",
                    &format!("UpdateAssumeRolePolicy {name}"),
                    format!("Restored the trust policy of IAM role {name}"),
                )
                .await;
            }
            if !step.has_plan_tags(&role.tags) {
                iam.tag_role(&role.name, &step.plan.tags).await?;
            }
            let is_new = role.is_new();
            Ok((role.arn, is_new))
        }
    }
}

/// The default role may invoke exactly its routes; with none, it has no policy.
pub async fn ensure_invoke_policy(step: &mut Step<'_>, api_id: &str) -> Result<(), Error> {
    let role = step.plan.role_name.clone();
    let wanted = step.plan.invoke_policy(api_id);
    ensure_role_policy(step, &role, wanted).await
}

/// `role`'s inline invoke policy is `wanted` (absent when None).
async fn ensure_role_policy(
    step: &mut Step<'_>,
    role: &str,
    wanted: Option<serde_json::Value>,
) -> Result<(), Error> {
    let iam = &step.aws.iam;
    let current = iam.get_role_policy(role, INVOKE_POLICY_NAME).await?;
    match (&wanted, &current) {
        (Some(w), Some(c)) if policy::equivalent(w, c) => {}
        (Some(w), _) => {
            iam.put_role_policy(role, INVOKE_POLICY_NAME, w).await?;
            let verb = if current.is_some() {
                "Updated"
            } else {
                "Created"
            };
            let routes = w["Statement"][0]["Resource"].as_array().map_or(0, Vec::len);
            step.event(
                verb,
                &format!("PutRolePolicy {role}"),
                format!("{verb} policy {INVOKE_POLICY_NAME} on {role}: invoke {routes} route(s)"),
            )
            .await;
        }
        (None, Some(_)) => {
            iam.delete_role_policy(role, INVOKE_POLICY_NAME).await?;
            step.event(
                "Deleted",
                &format!("DeleteRolePolicy {role}"),
                format!("Deleted policy {INVOKE_POLICY_NAME} on {role}: it may invoke no route"),
            )
            .await;
        }
        (None, None) => {}
    }
    Ok(())
}

/// One role per access rule, each allowed exactly its rule's routes; roles of rules no
/// longer in the spec are deleted. Returns the rule roles' ARNs, in rule order, and
/// whether any is new enough that IAM may still be propagating it. Roles are recorded in status before they are
/// created, so one is never left behind by a crash.
pub async fn ensure_access_roles(
    step: &mut Step<'_>,
    pool_id: &str,
    api_id: &str,
) -> Result<(Vec<String>, bool), Error> {
    use crate::api::AccessRoleStatus;
    let wanted: Vec<AccessRoleStatus> = step
        .plan
        .access
        .iter()
        .flat_map(|a| a.rules.iter())
        .map(|r| AccessRoleStatus {
            rule: r.name.clone(),
            role_name: r.role_name.clone(),
        })
        .collect();
    let recorded = step.writer.status.access_roles.clone();
    let missing: Vec<_> = wanted
        .iter()
        .filter(|w| !recorded.contains(w))
        .cloned()
        .collect();
    if !missing.is_empty() {
        step.writer.status.access_roles.extend(missing);
        step.writer.save().await?;
    }
    let mut arns = Vec::new();
    let mut any_new = false;
    let rules = step
        .plan
        .access
        .clone()
        .map(|a| a.rules)
        .unwrap_or_default();
    for rule in &rules {
        let purpose = format!("Users matching access rule {}", rule.name);
        let (arn, is_new) = ensure_named_role(step, &rule.role_name, pool_id, &purpose).await?;
        let policy = step.plan.policy_for(api_id, &rule.resources);
        ensure_role_policy(step, &rule.role_name, policy).await?;
        arns.push(arn);
        any_new |= is_new;
    }
    for stale in recorded.iter().filter(|r| !wanted.contains(r)) {
        delete_role_named(step, &stale.role_name).await?;
    }
    step.writer.status.access_roles = wanted;
    Ok((arns, any_new))
}

/// The pool hands out the default role to authenticated identities, nothing to others,
/// and, with access rules, the rules' roles by claim.
pub async fn ensure_pool_roles(
    step: &mut Step<'_>,
    pool_id: &str,
    role_arn: &str,
    rule_role_arns: &[String],
    role_is_new: bool,
) -> Result<(), Error> {
    let cognito = &step.aws.cognito;
    let mapping = step.plan.access.as_ref().map(|access| RulesMapping {
        provider: step.plan.oidc.domain.clone(),
        deny_unmatched: access.deny_unmatched,
        rules: access
            .rules
            .iter()
            .zip(rule_role_arns)
            .map(|(rule, arn)| MappingRule {
                claim: rule.claim.clone(),
                match_type: rule.match_type.clone(),
                value: rule.value.clone(),
                role_arn: arn.clone(),
            })
            .collect(),
    });
    let wanted = PoolRoles {
        authenticated: Some(role_arn.to_owned()),
        unauthenticated: None,
        mapping,
    };
    if cognito.get_roles(pool_id).await? == wanted {
        return Ok(());
    }
    match cognito.set_roles(pool_id, &wanted).await {
        Ok(()) => {}
        // IAM is eventually consistent: a role created a moment ago may not be visible to
        // Cognito yet. Retry as progress, not as a failure of the spec.
        Err(e) if role_is_new && e.kind == ErrorKind::Invalid => {
            return Err(AwsError {
                kind: ErrorKind::Transient,
                message: format!("waiting for the new IAM role to propagate: {}", e.message),
                ..e
            }
            .into());
        }
        Err(e) => return Err(e.into()),
    }
    step.event(
        "Updated",
        "SetIdentityPoolRoles",
        format!(
            "Set the roles of identity pool {pool_id}: authenticated {role_arn}, {} claim rule(s)",
            rule_role_arns.len()
        ),
    )
    .await;
    Ok(())
}

/// Delete the identity pool if it is ours.
pub async fn delete_identity_pool(step: &mut Step<'_>) -> Result<(), Error> {
    let pool = match find_pool(step).await {
        Ok(pool) => pool,
        // Not ours: nothing of ours to delete.
        Err(Error::NameConflict(_)) => None,
        Err(e) => return Err(e),
    };
    if let Some(pool) = pool {
        match step.aws.cognito.delete_identity_pool(&pool.id).await {
            Ok(()) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e.into()),
        }
        step.event(
            "Deleted",
            "DeleteIdentityPool",
            format!("Deleted identity pool {} ({})", pool.name, pool.id),
        )
        .await;
    }
    Ok(())
}

/// Delete the default role and every access rule role (inline policies first), if ours.
pub async fn delete_role(step: &mut Step<'_>) -> Result<(), Error> {
    let mut names: Vec<String> = step
        .writer
        .status
        .access_roles
        .iter()
        .map(|r| r.role_name.clone())
        .collect();
    names.extend(
        step.plan
            .access
            .iter()
            .flat_map(|a| a.rules.iter().map(|r| r.role_name.clone())),
    );
    names.push(step.plan.role_name.clone());
    names.sort();
    names.dedup();
    for name in names {
        delete_role_named(step, &name).await?;
    }
    Ok(())
}

/// Delete one role (its inline policies first) if it is ours.
async fn delete_role_named(step: &mut Step<'_>, name: &str) -> Result<(), Error> {
    let iam = &step.aws.iam;
    let Some(role) = iam.get_role(name).await? else {
        return Ok(());
    };
    if !step.is_ours(&role.tags) {
        return Ok(());
    }
    for policy_name in iam.list_role_policies(name).await? {
        match iam.delete_role_policy(name, &policy_name).await {
            Ok(()) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e.into()),
        }
    }
    match iam.delete_role(name).await {
        Ok(()) => {}
        Err(e) if e.is_not_found() => {}
        Err(e) => return Err(e.into()),
    }
    step.event(
        "Deleted",
        &format!("DeleteRole {name}"),
        format!("Deleted IAM role {name}"),
    )
    .await;
    Ok(())
}
