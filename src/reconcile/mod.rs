//! Reconciling one AuthedApi: observe each AWS resource, then create, update or delete it,
//! in dependency order. The steps live in one module per area:
//! [`gateway`] (API, integrations, authorizer, routes, stage), [`permissions`] (Lambda),
//! [`identity`] (OIDC provider, identity pool, role, policy, pool roles).
//!
//! Guarantees: every id AWS assigns is written to status right after its create, and
//! anything whose id status lacks is looked up by name and uid tag before a create, so a
//! crash never leaks or duplicates a resource. A same-named resource that is not ours
//! stalls the object (`NameConflict`) and is left alone.

pub mod context;
pub mod gateway;
pub mod identity;
pub mod outputs;
pub mod permissions;

use std::sync::Arc;
use std::time::{Duration, Instant};

use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::finalizer::{self, Event as FinalizerEvent};

use crate::api::{AuthedApi, AuthedApiStatus, DeletionPolicy};
use crate::aws::{AwsClients, AwsError, ErrorKind};
use crate::plan::{self, Identity, Plan};
use crate::status::{self, Outcome};
use crate::tenant::{self, AuthedApiTenant};

pub use context::Context;

/// The finalizer that keeps an object until its AWS resources are gone.
pub const FINALIZER: &str = "authedapi.dev/cleanup";
/// The field manager of every status write.
pub const FIELD_MANAGER: &str = "authedapi";

/// Why a reconcile did not finish.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Aws(#[from] AwsError),
    /// A resource with our name exists and is not ours.
    #[error("{0}")]
    NameConflict(String),
    /// The spec passed admission but cannot be built.
    #[error("{0}")]
    InvalidSpec(String),
    /// The spec uses what its namespace's tenant (or the operator) does not allow.
    #[error("{0}")]
    NotAllowed(String),
    /// The operator is missing configuration (e.g. no region anywhere).
    #[error("{0}")]
    Config(String),
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("finalizer: {0}")]
    Finalizer(String),
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
            Error::NotAllowed(_) => "NotAllowed",
            Error::Config(_) => "OperatorMisconfigured",
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
            | Error::Config(_) => true,
            Error::Kube(_) | Error::Finalizer(_) => false,
        }
    }
}

/// The status as this reconcile builds it, saved whole (server-side apply, our field
/// manager) whenever something worth keeping across a crash has happened.
pub struct StatusWriter {
    api: Api<AuthedApi>,
    name: String,
    pub status: AuthedApiStatus,
}

impl StatusWriter {
    fn new(obj: &AuthedApi, api: Api<AuthedApi>) -> Self {
        Self {
            api,
            name: obj.name_any(),
            status: obj.status.clone().unwrap_or_default(),
        }
    }

    /// Record that a create of `kind` is about to be sent (see `pendingCreates`).
    pub async fn mark_pending(&mut self, kind: &str) -> Result<(), kube::Error> {
        if !self.status.pending_creates.iter().any(|k| k == kind) {
            self.status.pending_creates.push(kind.to_owned());
            self.save().await?;
        }
        Ok(())
    }

    /// Whether a create of `kind` may have happened without its id reaching status.
    pub fn is_pending(&self, kind: &str) -> bool {
        self.status.pending_creates.iter().any(|k| k == kind)
    }

    /// The create of `kind` is recorded (its id is in status); saved with the next save.
    pub fn clear_pending(&mut self, kind: &str) {
        self.status.pending_creates.retain(|k| k != kind);
    }

    /// Write the status as it stands now.
    pub async fn save(&self) -> Result<(), kube::Error> {
        crate::testhooks::before_status_write();
        let patch = serde_json::json!({
            "apiVersion": "authedapi.dev/v1alpha1",
            "kind": "AuthedApi",
            "status": self.status,
        });
        self.api
            .patch_status(
                &self.name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&patch),
            )
            .await
            .map(drop)
    }
}

/// Everything a step needs: clients, the plan, the object, the status, events.
pub struct Step<'a> {
    pub aws: &'a AwsClients,
    pub plan: &'a Plan,
    pub obj: &'a AuthedApi,
    pub ctx: &'a Context,
    pub writer: &'a mut StatusWriter,
}

impl Step<'_> {
    /// Announce a change made in AWS (Normal event; failures to publish are logged).
    /// `action` names the call and, where there are several of a kind, which one: the
    /// event recorder folds events with the same reason and action into one.
    pub async fn event(&self, reason: &str, action: &str, note: String) {
        self.ctx
            .publish(self.obj, EventType::Normal, reason, action, note)
            .await;
    }

    /// Report something a person should fix (Warning event).
    pub async fn warn(&self, reason: &str, action: &str, note: String) {
        self.ctx
            .publish(self.obj, EventType::Warning, reason, action, note)
            .await;
    }

    pub fn uid(&self) -> &str {
        self.obj.metadata.uid.as_deref().unwrap_or_default()
    }

    /// Whether `tags` carry every tag the plan gives this object's resources.
    pub fn has_plan_tags(&self, tags: &std::collections::BTreeMap<String, String>) -> bool {
        self.plan.tags.iter().all(|(k, v)| tags.get(k) == Some(v))
    }

    /// Whether `tags` mark a resource as this object's.
    pub fn is_ours(&self, tags: &std::collections::BTreeMap<String, String>) -> bool {
        tags.get(plan::TAG_UID).map(String::as_str) == Some(self.uid())
    }
}

/// Entry point for the controller: the finalizer helper routes to apply or cleanup.
pub async fn reconcile(obj: Arc<AuthedApi>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = Instant::now();
    let namespace = obj.namespace().unwrap_or_default();
    let api: Api<AuthedApi> = Api::namespaced(ctx.client.clone(), &namespace);
    let result = finalizer::finalizer(&api, FINALIZER, obj, |event| async {
        match event {
            FinalizerEvent::Apply(obj) => apply(&obj, &ctx, api.clone()).await,
            FinalizerEvent::Cleanup(obj) => cleanup(&obj, &ctx).await,
        }
    })
    .await
    .map_err(|e| match e {
        finalizer::Error::ApplyFailed(e) | finalizer::Error::CleanupFailed(e) => e,
        other => Error::Finalizer(other.to_string()),
    });
    ctx.metrics
        .reconciled(started.elapsed(), result.as_ref().err().map(Error::reason));
    result
}

/// Make AWS match the spec; write the outcome to status.
async fn apply(obj: &AuthedApi, ctx: &Context, api: Api<AuthedApi>) -> Result<Action, Error> {
    let generation = obj.metadata.generation.unwrap_or_default();
    let uid = obj.metadata.uid.clone().unwrap_or_default();
    let conditions = obj
        .status
        .as_ref()
        .map(|s| s.conditions.as_slice())
        .unwrap_or_default();

    // Steady state: this process fully synced this generation (and wrote Ready) less than
    // a resync period ago. No AWS call at all. The object in the cache may lag behind our
    // own status writes, so this trusts the memory of the sync, not the cached status.
    if let Some(wait) = ctx.time_to_resync(&uid, generation) {
        return Ok(Action::requeue(wait));
    }
    // Failing and backing off: an event (our own status write, say) is no reason to retry
    // sooner.
    if let Some(wait) = ctx.backing_off(&uid, generation) {
        return Ok(Action::requeue(wait));
    }

    let mut writer = StatusWriter::new(obj, api);
    // A new generation: say so before working, so no one reads an old Ready as current.
    if writer.status.observed_generation != Some(generation) {
        writer.status.conditions = status::conditions(
            conditions,
            generation,
            &Outcome::Progressing {
                reason: "Reconciling".into(),
                message: format!("Applying generation {generation}"),
            },
            k8s_openapi::jiff::Timestamp::now(),
        );
        writer.status.observed_generation = Some(generation);
        writer.save().await?;
    }

    let result = sync(obj, ctx, &mut writer).await;
    let outcome = match &result {
        Ok(()) => Outcome::Ready,
        Err(e) if e.stalls() => Outcome::Stalled {
            reason: e.reason().into(),
            message: e.to_string(),
        },
        Err(e) => Outcome::Progressing {
            reason: e.reason().into(),
            message: e.to_string(),
        },
    };
    let previous = writer.status.conditions.clone();
    writer.status.conditions = status::conditions(
        &previous,
        generation,
        &outcome,
        k8s_openapi::jiff::Timestamp::now(),
    );
    let became_ready = result.is_ok() && !status::is_ready(&previous, generation);
    writer.save().await?;

    match result {
        Ok(()) => {
            if became_ready {
                ctx.publish(
                    obj,
                    EventType::Normal,
                    "Ready",
                    "Reconcile",
                    "Every AWS resource matches the spec".into(),
                )
                .await;
            }
            ctx.mark_synced(&uid, generation);
            Ok(Action::requeue(ctx.jittered_resync()))
        }
        Err(e) => {
            if !matches!(
                e,
                Error::Aws(AwsError {
                    kind: ErrorKind::Throttled,
                    ..
                })
            ) {
                ctx.publish(
                    obj,
                    EventType::Warning,
                    e.reason(),
                    "Reconcile",
                    e.to_string(),
                )
                .await;
            }
            Err(e)
        }
    }
}

/// The region, account, clients and plan for `obj`.
async fn prepare(obj: &AuthedApi, ctx: &Context) -> Result<(AwsClients, Plan), Error> {
    // Without spec.region, the region first used stays (status): a redeploy of the
    // operator with another AWS_REGION must not orphan what it created.
    let region = obj
        .spec
        .region
        .clone()
        .or_else(|| obj.status.as_ref()?.region.clone())
        .or_else(|| ctx.aws.default_region())
        .ok_or_else(|| {
            Error::Config(
                "no AWS region: set spec.region or give the operator one (AWS_REGION)".into(),
            )
        })?;
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
    let plan = plan::plan(&obj.spec, &who).map_err(|e| Error::InvalidSpec(e.0))?;
    Ok((ctx.aws.clients(&region), plan))
}

/// Refuse a spec that uses what its namespace may not (before any AWS call).
async fn check_guardrails(obj: &AuthedApi, ctx: &Context) -> Result<(), Error> {
    let namespace = obj.namespace().unwrap_or_default();
    let tenants: Vec<AuthedApiTenant> = ctx.tenants.state().iter().map(|t| (**t).clone()).collect();
    let labels = if AuthedApiTenant::uses_labels(&tenants) {
        Api::<k8s_openapi::api::core::v1::Namespace>::all(ctx.client.clone())
            .get(&namespace)
            .await?
            .metadata
            .labels
            .unwrap_or_default()
    } else {
        Default::default()
    };
    let guardrails = tenant::guardrails_for(&namespace, &labels, &tenants, &ctx.defaults)
        .map_err(Error::NotAllowed)?;
    let found = tenant::violations(&obj.spec, &guardrails);
    if found.is_empty() {
        return Ok(());
    }
    Err(Error::NotAllowed(format!(
        "{}: ask the platform team to allow it, or change the spec (nothing was changed in AWS)",
        found.join("; ")
    )))
}

/// Every step, in dependency order.
async fn sync(obj: &AuthedApi, ctx: &Context, writer: &mut StatusWriter) -> Result<(), Error> {
    check_guardrails(obj, ctx).await?;
    let (aws, plan) = prepare(obj, ctx).await?;
    writer.status.account_id = Some(plan.account.clone());
    writer.status.region = Some(plan.region.clone());
    let mut step = Step {
        aws: &aws,
        plan: &plan,
        obj,
        ctx,
        writer,
    };
    let previous_oidc = identity::registered_oidc(&step);
    identity::ensure_oidc_provider(&mut step).await?;
    let api_id = gateway::ensure(&mut step).await?;
    permissions::ensure(&mut step, &api_id).await?;
    let pool_id = identity::ensure_identity_pool(&mut step).await?;
    let (role_arn, role_is_new) = identity::ensure_role(&mut step, &pool_id).await?;
    identity::ensure_invoke_policy(&mut step, &api_id).await?;
    let (rule_roles, rule_role_is_new) =
        identity::ensure_access_roles(&mut step, &pool_id, &api_id).await?;
    identity::ensure_pool_roles(
        &mut step,
        &pool_id,
        &role_arn,
        &rule_roles,
        role_is_new || rule_role_is_new,
    )
    .await?;
    outputs::ensure(&mut step).await?;
    // The pool no longer points at a provider/client id the spec moved away from: let it
    // go, and only then record the new pair (until then status keeps the old one, so a
    // failure on the way never forgets it).
    if let Some((arn, client_id)) = previous_oidc
        && (arn != plan.oidc.arn || client_id != plan.oidc.client_id)
    {
        identity::release_oidc(&step, &arn, &client_id).await?;
    }
    step.writer.status.oidc_provider_arn = Some(plan.oidc.arn.clone());
    step.writer.status.oidc_client_id = Some(plan.oidc.client_id.clone());
    Ok(())
}

/// Delete every AWS resource of `obj` (unless it says Retain), innermost first.
async fn cleanup(obj: &AuthedApi, ctx: &Context) -> Result<Action, Error> {
    if obj.spec.deletion_policy == DeletionPolicy::Retain {
        ctx.publish(
            obj,
            EventType::Normal,
            "Retained",
            "Delete",
            "deletionPolicy is Retain: the AWS resources stay".into(),
        )
        .await;
        ctx.forget(obj.metadata.uid.as_deref().unwrap_or_default());
        return Ok(Action::await_change());
    }
    // Names do not depend on the routes; a spec whose routes no longer plan must still
    // be deletable. (Access rules keep their names, which name their roles.)
    let mut spec_for_names = obj.clone();
    spec_for_names.spec.routes.clear();
    if let Some(access) = &mut spec_for_names.spec.access {
        access.rules.iter_mut().for_each(|rule| rule.routes.clear());
    }
    let (aws, plan) = prepare(&spec_for_names, ctx).await?;
    let namespace = obj.namespace().unwrap_or_default();
    let mut writer = StatusWriter::new(obj, Api::namespaced(ctx.client.clone(), &namespace));
    let mut step = Step {
        aws: &aws,
        plan: &plan,
        obj,
        ctx,
        writer: &mut writer,
    };
    outputs::delete_for(obj, &ctx.client).await?;
    identity::delete_identity_pool(&mut step).await?;
    identity::delete_role(&mut step).await?;
    permissions::delete_all(&mut step).await?;
    gateway::delete(&mut step).await?;
    // The pair status records (the spec may have moved away from it) and the one the spec
    // names (its client id may have been added before status recorded it).
    let planned = (plan.oidc.arn.clone(), plan.oidc.client_id.clone());
    let registered = identity::registered_oidc(&step).filter(|pair| *pair != planned);
    for (arn, client_id) in registered.into_iter().chain([planned]) {
        identity::release_oidc(&step, &arn, &client_id).await?;
    }
    ctx.forget(obj.metadata.uid.as_deref().unwrap_or_default());
    Ok(Action::await_change())
}

/// After a failed reconcile: back off per object, longer when a person must act.
pub fn error_policy(obj: Arc<AuthedApi>, error: &Error, ctx: Arc<Context>) -> Action {
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
    Action::requeue(delay)
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
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let resync = Duration::from_secs(600);
        let first = backoff(1, false, resync);
        assert!(first >= Duration::from_secs(1) && first <= Duration::from_millis(1200));
        let fifth = backoff(5, false, resync);
        assert!(fifth >= Duration::from_secs(16) && fifth <= Duration::from_millis(19200));
        assert!(backoff(30, false, resync) <= Duration::from_secs(360));
        let stalled = backoff(1, true, resync);
        assert!(stalled >= Duration::from_secs(30) && stalled <= Duration::from_secs(36));
        assert!(backoff(30, true, resync) <= Duration::from_secs(720));
        let short = Duration::from_secs(10);
        assert!(backoff(30, false, short) <= Duration::from_secs(12));
        assert!(backoff(30, true, short) <= Duration::from_secs(36));
    }

    #[test]
    fn reasons_and_stalls() {
        let aws = |kind| {
            Error::Aws(AwsError {
                kind,
                service: "iam",
                operation: "CreateRole",
                code: "X".into(),
                message: "m".into(),
            })
        };
        assert!(aws(ErrorKind::AccessDenied).stalls());
        assert!(aws(ErrorKind::Invalid).stalls());
        assert!(!aws(ErrorKind::Throttled).stalls());
        assert!(!aws(ErrorKind::Transient).stalls());
        assert_eq!(aws(ErrorKind::Throttled).reason(), "Throttled");
        assert!(Error::NameConflict("x".into()).stalls());
        assert_eq!(Error::NameConflict("x".into()).reason(), "NameConflict");
    }
}
