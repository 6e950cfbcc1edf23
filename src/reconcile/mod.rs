//! Reconciling one AuthedApi. [`sync`] reads top to bottom as the order resources are
//! made in: plan, then for each kind observe → diff → act (the [`driver`] does that for
//! every kind in [`kinds`]), then status. [`cleanup`] is the same with nothing desired,
//! in reverse.
//!
//! Two annotations change what a reconcile may do:
//! * [`PAUSED`] `"true"`: nothing at all, not even reads or deletion, until it goes
//!   (Flux's `suspend`, Crossplane's `paused`); a `Paused` condition says so.
//! * [`OBSERVE_ONLY`] `"true"`: observe and diff, never write to AWS; the changes a
//!   reconcile would make are listed in `status.plannedChanges` and `WouldChange` events.
//!   Deleting such an object leaves AWS as it is.

pub mod cluster;
pub mod context;
pub mod driver;
pub mod events;
pub mod kinds;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::controller::Action as Requeue;
use kube::runtime::events::EventType;
use kube::runtime::finalizer::{self, Event as FinalizerEvent};

use crate::api::{AccessRoleStatus, AuthedApi, AuthedApiStatus, DeletionPolicy, RouteStatus};
use crate::aws::cognito::{IdentityPool, MappingRule, PoolRoles, RulesMapping};
use crate::aws::{AwsClients, AwsError, ErrorKind};
use crate::plan::{self, Identity, Plan};
use crate::status::{self, Outcome};
use crate::tenant::{self, AuthedApiTenant};

pub use context::Context;
use driver::{Driver, Mode};
use events::{Action, Call, Reason};
use kinds::{
    authorizer, http_api, identity_pool, integrations, oidc_provider, outputs, permissions,
    pool_roles, role, routes, stage,
};

/// The finalizer that keeps an object until its AWS resources are gone.
pub const FINALIZER: &str = "authedapi.dev/cleanup";
/// The field manager of every status write.
pub const FIELD_MANAGER: &str = "authedapi";
/// Annotation: `"true"` stops every reconcile of the object (and its deletion) until it goes.
pub const PAUSED: &str = "authedapi.dev/paused";
/// Annotation: `"true"` makes reconciles read and compare only, and report what they
/// would change.
pub const OBSERVE_ONLY: &str = "authedapi.dev/observe-only";

/// A resource we would use exists and is not ours; it was left alone.
#[derive(Debug, thiserror::Error)]
#[error("{what} {why}: it was left alone; {remedy}")]
pub struct Conflict {
    /// "IAM role x", "the identity pool y in status".
    pub what: String,
    pub why: String,
    pub remedy: &'static str,
}

impl Conflict {
    /// `what` lacks this object's uid tag.
    pub fn untagged(d: &Driver<'_>, what: String) -> Self {
        Self {
            what,
            why: format!(
                "exists and is not tagged as this object's ({}={})",
                plan::TAG_UID,
                d.uid()
            ),
            remedy: "",
        }
    }

    /// `what` has no owner reference to this object.
    pub fn not_owned(what: String) -> Self {
        Self {
            what,
            why: "exists and is not owned by this AuthedApi".into(),
            remedy: "",
        }
    }

    pub fn remedy(mut self, remedy: &'static str) -> Self {
        self.remedy = remedy;
        self
    }
}

/// Why a reconcile did not finish.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Aws(#[from] AwsError),
    /// A resource with our name exists and is not ours.
    #[error(transparent)]
    NameConflict(#[from] Conflict),
    /// The spec passed admission but cannot be built.
    #[error(transparent)]
    InvalidSpec(#[from] plan::PlanError),
    /// The spec uses what its namespace's tenant (or the operator) does not allow.
    #[error(
        "{}: ask the platform team to allow it, or change the spec (nothing was changed in AWS)",
        .0.join("; ")
    )]
    NotAllowed(Vec<String>),
    /// More than one AuthedApiTenant selects the namespace.
    #[error("{0}")]
    TenantsOverlap(String),
    /// The operator has no AWS region to work in.
    #[error("no AWS region: set spec.region or give the operator one (AWS_REGION)")]
    NoRegion,
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("finalizer: {0}")]
    Finalizer(#[source] Box<finalizer::Error<Error>>),
}

impl Error {
    /// The CamelCase reason used in conditions, events and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Aws(e) => match e.kind {
                ErrorKind::NotFound => "AwsResourceNotFound",
                ErrorKind::Conflict => "AwsConflict",
                ErrorKind::Throttled => "Throttled",
                ErrorKind::Transient => "AwsUnavailable",
                ErrorKind::AccessDenied => "AccessDenied",
                ErrorKind::Invalid => "AwsRejected",
            },
            Error::NameConflict(_) => "NameConflict",
            Error::InvalidSpec(_) => "InvalidSpec",
            Error::NotAllowed(_) | Error::TenantsOverlap(_) => "NotAllowed",
            Error::NoRegion => "OperatorMisconfigured",
            Error::Kube(_) => "KubernetesError",
            Error::Finalizer(_) => "FinalizerError",
        }
    }

    /// True when retrying alone will not help: a person must act.
    pub fn stalls(&self) -> bool {
        match self {
            Error::Aws(e) => !e.is_retryable(),
            Error::NameConflict(_)
            | Error::InvalidSpec(_)
            | Error::NotAllowed(_)
            | Error::TenantsOverlap(_)
            | Error::NoRegion => true,
            Error::Kube(_) | Error::Finalizer(_) => false,
        }
    }
}

/// Whether the annotation `key` is set to "true".
fn annotated(obj: &AuthedApi, key: &str) -> bool {
    obj.annotations().get(key).is_some_and(|v| v == "true")
}

/// Entry point for the controller: pause first, then the finalizer helper routes to
/// apply or cleanup.
pub async fn reconcile(obj: Arc<AuthedApi>, ctx: Arc<Context>) -> Result<Requeue, Error> {
    let started = Instant::now();
    let result = if annotated(&obj, PAUSED) {
        pause(&obj, &ctx).await
    } else {
        let namespace = obj.namespace().unwrap_or_default();
        let api: Api<AuthedApi> = Api::namespaced(ctx.client.clone(), &namespace);
        finalizer::finalizer(&api, FINALIZER, obj, |event| async {
            match event {
                FinalizerEvent::Apply(obj) => apply(&obj, &ctx).await,
                FinalizerEvent::Cleanup(obj) => cleanup(&obj, &ctx).await,
            }
        })
        .await
        .map_err(|e| match e {
            finalizer::Error::ApplyFailed(e) | finalizer::Error::CleanupFailed(e) => e,
            other => Error::Finalizer(Box::new(other)),
        })
    };
    ctx.metrics
        .reconciled(started.elapsed(), result.as_ref().err().map(Error::reason));
    result
}

/// Paused: no AWS call, no finalizer change; say so once in a condition and an event.
async fn pause(obj: &AuthedApi, ctx: &Context) -> Result<Requeue, Error> {
    ctx.forget(obj.metadata.uid.as_deref().unwrap_or_default());
    let mut current = obj.status.clone().unwrap_or_default();
    if status::is_paused(&current.conditions) {
        return Ok(Requeue::await_change());
    }
    current.conditions = status::paused(
        &current.conditions,
        obj.metadata.generation.unwrap_or_default(),
        k8s_openapi::jiff::Timestamp::now(),
    );
    save_status(obj, ctx, &current).await?;
    ctx.cluster
        .publish(
            obj,
            EventType::Normal,
            Reason::Paused,
            &Action::of(Call::Reconcile),
            format!("{PAUSED} is \"true\": no AWS call until it goes"),
        )
        .await;
    Ok(Requeue::await_change())
}

/// Make AWS match the spec (or, observe-only, tell how it differs); write the outcome.
async fn apply(obj: &AuthedApi, ctx: &Context) -> Result<Requeue, Error> {
    let generation = obj.metadata.generation.unwrap_or_default();
    let uid = obj.metadata.uid.clone().unwrap_or_default();
    let mode = if annotated(obj, OBSERVE_ONLY) {
        Mode::ObserveOnly
    } else {
        Mode::Act
    };

    // Steady state: this process fully synced this generation (and wrote Ready) less than
    // a resync period ago. No AWS call at all. The object in the cache may lag behind our
    // own status writes, so this trusts the memory of the sync, not the cached status.
    if let Some(wait) = ctx.time_to_resync(&uid, generation, mode) {
        return Ok(Requeue::requeue(wait));
    }
    // Failing and backing off: an event (our own status write, say) is no reason to retry
    // sooner.
    if let Some(wait) = ctx.backing_off(&uid, generation) {
        return Ok(Requeue::requeue(wait));
    }

    let mut base = obj.status.clone().unwrap_or_default();
    // A new generation: say so before working, so no one reads an old Ready as current.
    if base.observed_generation != Some(generation) {
        base.conditions = status::conditions(
            &base.conditions,
            generation,
            &Outcome::Progressing {
                reason: "Reconciling".into(),
                message: format!("Applying generation {generation}"),
            },
            k8s_openapi::jiff::Timestamp::now(),
        );
        base.observed_generation = Some(generation);
        save_status(obj, ctx, &base).await?;
    }

    let (result, mut d_status, planned, writes) = match prepare(obj, ctx).await {
        Ok((aws, plan)) => {
            let mut d = Driver::new(&aws, &plan, obj, ctx, base, mode);
            let result = sync(&mut d).await;
            (result, d.status, d.planned, d.status_writes)
        }
        Err(e) => (Err(e), base, Vec::new(), 0),
    };
    tracing::debug!(status_writes = writes, "reconciled {}", obj.name_any());
    let outcome = match &result {
        Ok(()) if planned.is_empty() => Outcome::Ready,
        Ok(()) => Outcome::Waiting {
            reason: "ObserveOnly".into(),
            message: format!(
                "{OBSERVE_ONLY} is \"true\": {} change(s) would be made (status.plannedChanges)",
                planned.len()
            ),
        },
        Err(e) if e.stalls() => Outcome::Stalled {
            reason: e.reason().into(),
            message: e.to_string(),
        },
        Err(e) => Outcome::Progressing {
            reason: e.reason().into(),
            message: e.to_string(),
        },
    };
    let before = d_status.conditions.clone();
    d_status.conditions = status::conditions(
        &before,
        generation,
        &outcome,
        k8s_openapi::jiff::Timestamp::now(),
    );
    d_status.planned_changes = planned.clone();
    let became_ready = outcome == Outcome::Ready && !status::is_ready(&before, generation);
    save_status(obj, ctx, &d_status).await?;

    for change in &planned {
        let (action, note) = change.split_once(": ").unwrap_or((change, ""));
        ctx.cluster
            .publish(
                obj,
                EventType::Normal,
                Reason::WouldChange,
                &Action::of(Call::Reconcile).with_subject(action),
                format!("Observe-only: would have {}", note.to_lowercase()),
            )
            .await;
    }
    match result {
        Ok(()) => {
            if became_ready {
                ctx.cluster
                    .publish(
                        obj,
                        EventType::Normal,
                        Reason::Ready,
                        &Action::of(Call::Reconcile),
                        "Every AWS resource matches the spec".into(),
                    )
                    .await;
            }
            ctx.mark_synced(&uid, generation, mode);
            Ok(Requeue::requeue(ctx.jittered_resync()))
        }
        Err(e) => {
            if !matches!(
                e,
                Error::Aws(AwsError {
                    kind: ErrorKind::Throttled,
                    ..
                })
            ) {
                ctx.cluster
                    .publish(
                        obj,
                        EventType::Warning,
                        Reason::Failed(e.reason()),
                        &Action::of(Call::Reconcile),
                        e.to_string(),
                    )
                    .await;
            }
            Err(e)
        }
    }
}

/// Write `status` as the object's whole status (outside a [`Driver`], which counts its own).
async fn save_status(
    obj: &AuthedApi,
    ctx: &Context,
    status: &AuthedApiStatus,
) -> Result<(), Error> {
    ctx.metrics.status_written();
    ctx.cluster
        .save_status(
            &obj.namespace().unwrap_or_default(),
            &obj.name_any(),
            status,
        )
        .await?;
    Ok(())
}

/// Refuse a spec that uses what its namespace may not (before any AWS call); then the
/// region, account, clients and plan for `obj`.
async fn prepare(obj: &AuthedApi, ctx: &Context) -> Result<(AwsClients, Plan), Error> {
    check_guardrails(obj, ctx).await?;
    names_for(obj, ctx).await
}

/// The region, account, clients and plan for `obj`.
async fn names_for(obj: &AuthedApi, ctx: &Context) -> Result<(AwsClients, Plan), Error> {
    // Without spec.region, the region first used stays (status): a redeploy of the
    // operator with another AWS_REGION must not orphan what it created.
    let region = obj
        .spec
        .region
        .clone()
        .or_else(|| obj.status.as_ref()?.region.clone())
        .or_else(|| ctx.aws.default_region())
        .ok_or(Error::NoRegion)?;
    let account = ctx.aws.account().await?;
    let namespace = obj.namespace().unwrap_or_default();
    let name = obj.name_any();
    let uid = obj.metadata.uid.clone().unwrap_or_default();
    let who = Identity {
        namespace: &namespace,
        name: &name,
        uid: &uid,
        account: &account,
        region: &region,
        cluster_id: &ctx.cluster_id,
        permissions_boundary: &ctx.permissions_boundary,
    };
    let plan = plan::plan(&obj.spec, &who)?;
    Ok((ctx.aws.clients(&region), plan))
}

async fn check_guardrails(obj: &AuthedApi, ctx: &Context) -> Result<(), Error> {
    let namespace = obj.namespace().unwrap_or_default();
    let tenants: Vec<AuthedApiTenant> = ctx.tenants.state().iter().map(|t| (**t).clone()).collect();
    let labels = if AuthedApiTenant::uses_labels(&tenants) {
        ctx.cluster.namespace_labels(&namespace).await?
    } else {
        BTreeMap::new()
    };
    let guardrails = tenant::guardrails_for(&namespace, &labels, &tenants, &ctx.defaults)
        .map_err(Error::TenantsOverlap)?;
    let found = tenant::violations(&obj.spec, &guardrails);
    if found.is_empty() {
        Ok(())
    } else {
        Err(Error::NotAllowed(found))
    }
}

/// Every kind, in dependency order. In observe-only mode a missing parent (no API, no
/// pool, no role yet) ends the walk: what lives inside it would be created with it.
pub async fn sync(d: &mut Driver<'_>) -> Result<(), Error> {
    let plan = d.plan;
    let ctx = d.ctx;
    let acting = d.mode == Mode::Act;
    d.status.account_id = Some(plan.account.clone());
    d.status.region = Some(plan.region.clone());
    let previous_oidc = registered_oidc(&d.status);

    {
        let _turn = ctx.lock_provider(&plan.oidc.arn).await;
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

    let api = http_api::Wanted {
        cors: plan.cors.clone(),
        disable_execute_api_endpoint: plan.disable_execute_api_endpoint,
    };
    let apis = d.ensure(&http_api::HttpApiKind, &Some(api)).await?;
    let Some(api_id) = apis.first().map(|a| a.id.clone()) else {
        return Ok(());
    };

    let in_api = integrations::Integrations { api_id: &api_id };
    let mut wanted_integrations = integrations::Wanted {
        targets: plan.integrations.clone(),
        prune: false,
    };
    let found = d.ensure(&in_api, &wanted_integrations).await?;
    let by_target = integrations::by_target(&found);
    let jwt = authorizer::Authorizer { api_id: &api_id };
    let mut wanted_jwt = authorizer::Wanted {
        jwt: plan.jwt.clone(),
        prune: false,
    };
    let authorizers = d.ensure(&jwt, &wanted_jwt).await?;
    let authorizer_id = authorizer::chosen(plan.jwt.as_ref(), &authorizers).map(|a| a.id.clone());
    let wanted_routes: Vec<routes::WantedRoute> = plan
        .routes
        .iter()
        .map(|r| routes::WantedRoute {
            key: r.key.clone(),
            integration_id: by_target.get(&r.target).cloned().unwrap_or_default(),
            auth: plan.route_auth(r, authorizer_id.as_deref()),
        })
        .collect();
    let in_routes = d
        .ensure(&routes::Routes { api_id: &api_id }, &wanted_routes)
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
    d.ensure(&stage::DefaultStage { api_id: &api_id }, &plan.stage)
        .await?;

    let functions = permissions::Wanted {
        functions: plan.lambda_functions.clone(),
        source_arn: plan.permission_source_arn(&api_id),
    };
    d.ensure(
        &permissions::Permissions {
            sid: &plan.permission_sid,
        },
        &functions,
    )
    .await?;
    if acting {
        d.status.lambda_permissions = plan.lambda_functions.iter().cloned().collect();
    }

    let pool = IdentityPool {
        id: String::new(),
        name: plan.identity_pool_name.clone(),
        allow_unauthenticated: false,
        oidc_provider_arns: vec![plan.oidc.arn.clone()],
        tags: plan.tags.clone(),
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
        provider: plan.oidc.domain.clone(),
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
    d.ensure(&pool_roles::PoolRolesKind { pool_id: &pool.id }, &roles)
        .await?;

    let config_map = d.obj.spec.outputs.as_ref().map(|o| {
        let data = BTreeMap::from([
            (
                "endpoint".to_owned(),
                d.status.api_endpoint.clone().unwrap_or_default(),
            ),
            ("identityPoolId".to_owned(), pool.id.clone()),
            ("region".to_owned(), plan.region.clone()),
            ("auth0Domain".to_owned(), plan.oidc.domain.clone()),
            ("auth0ClientId".to_owned(), plan.oidc.client_id.clone()),
        ]);
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

    // The pool no longer points at a provider/client id the spec moved away from: let it
    // go, and only then record the new pair (until then status keeps the old one, so a
    // failure on the way never forgets it).
    if let Some((arn, client_id)) = previous_oidc
        && (arn != plan.oidc.arn || client_id != plan.oidc.client_id)
    {
        release_oidc(d, &arn, &client_id).await?;
    }
    if acting {
        d.status.oidc_provider_arn = Some(plan.oidc.arn.clone());
        d.status.oidc_client_id = Some(plan.oidc.client_id.clone());
    }
    Ok(())
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
    };
    d.ensure(&role::RoleKind { name }, &Some(wanted)).await
}

/// The provider ARN and client id this object registered last time (from status).
fn registered_oidc(status: &AuthedApiStatus) -> Option<(String, String)> {
    Some((
        status.oidc_provider_arn.clone()?,
        status.oidc_client_id.clone()?,
    ))
}

/// Let go of a provider/client id pair (see [`oidc_provider`]).
async fn release_oidc(d: &mut Driver<'_>, arn: &str, client_id: &str) -> Result<(), Error> {
    let ctx = d.ctx;
    let _turn = ctx.lock_provider(arn).await;
    let others = ctx.store.state();
    let uid = d.uid().to_owned();
    let wanted = oidc_provider::Wanted::Released {
        client_id: client_id.to_owned(),
        used_by_others: oidc_provider::used_by_others(&others, &uid, arn, client_id),
    };
    let provider = oidc_provider::OidcProviderKind {
        arn,
        cluster_id: &ctx.cluster_id,
    };
    d.ensure(&provider, &wanted).await?;
    Ok(())
}

/// Delete every AWS resource of `obj` (unless it says Retain, or is observe-only),
/// innermost first.
async fn cleanup(obj: &AuthedApi, ctx: &Context) -> Result<Requeue, Error> {
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
    if let Some(access) = &mut for_names.spec.access {
        access.rules.iter_mut().for_each(|rule| rule.routes.clear());
    }
    let (aws, plan) = names_for(&for_names, ctx).await?;
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

/// After a failed reconcile: back off per object, longer when a person must act.
pub fn error_policy(obj: Arc<AuthedApi>, error: &Error, ctx: Arc<Context>) -> Requeue {
    let uid = obj.metadata.uid.clone().unwrap_or_default();
    let failures = ctx.failed(&uid, obj.metadata.generation.unwrap_or_default());
    let delay = backoff(failures, error.stalls(), ctx.resync);
    ctx.back_off(&uid, delay);
    tracing::warn!(
        object = %format!("{}/{}", obj.namespace().unwrap_or_default(), obj.name_any()),
        reason = error.reason(),
        retry_in = ?delay,
        "reconcile failed: {error}"
    );
    Requeue::requeue(delay)
}

/// Exponential backoff with jitter: from 1s for what may heal by itself, from 30s for
/// what needs a person; capped at the resync period (5 minutes for what may heal), plus
/// up to 20% jitter.
pub fn backoff(failures: u32, stalled: bool, resync: Duration) -> Duration {
    let (base, cap) = if stalled {
        (Duration::from_secs(30), resync.max(Duration::from_secs(30)))
    } else {
        (
            Duration::from_secs(1),
            Duration::from_secs(300).min(resync.max(Duration::from_secs(1))),
        )
    };
    let exp = base.saturating_mul(1u32 << failures.saturating_sub(1).min(16));
    let delay = exp.min(cap);
    // Up to +20%, so objects that failed together do not retry together.
    let jitter = delay.mul_f64(rand::random::<f64>() * 0.2);
    delay + jitter
}

#[cfg(test)]
mod tests;
