//! Reconciling one AuthedApi: [`reconcile`] (pause, finalizer), `apply` (scheduling first:
//! `schedule` and `admit` decide whether it runs now, by steady state, backoff and drift
//! pacing; then `work`, status around one sync), [`sync::sync`] which reads top to bottom as the order resources are made
//! in (plan, then for each kind observe → diff → act: the [`driver`] does that for every
//! kind in [`kinds`]), and [`cleanup::cleanup`], the same with nothing desired, in reverse.
//!
//! Two annotations change what a reconcile may do:
//! * [`PAUSED`] `"true"`: nothing at all, not even reads or deletion, until it goes
//!   (Flux's `suspend`, Crossplane's `paused`); a `Paused` condition says so.
//! * [`OBSERVE_ONLY`] `"true"`: observe and diff, never write to AWS; the changes a
//!   reconcile would make are listed in `status.plannedChanges` and `WouldChange` events.
//!   Deleting such an object leaves AWS as it is.

pub mod adoption;
pub mod cleanup;
pub mod cluster;
pub mod context;
mod domain;
pub mod driver;
mod errors;
pub mod events;
pub mod kinds;
pub mod requested;
pub mod sync;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::controller::Action as Requeue;
use kube::runtime::events::EventType;
use kube::runtime::finalizer::{self, Event as FinalizerEvent};

use crate::api::{AuthedApi, AuthedApiStatus};
use crate::aws::budget;
use crate::aws::provider::Account;
use crate::aws::{AwsClients, AwsError, ErrorKind};
use crate::plan::{self, Identity, Plan};
use crate::status::{self, Outcome};
use crate::tenant::{self, AuthedApiTenant, Guardrails};

use cleanup::cleanup;
pub use context::Context;
use driver::{Driver, Mode};
pub use errors::{Conflict, Error};
use events::{Action, Call, Reason};
use sync::sync;

/// The finalizer that keeps an object until its AWS resources are gone.
pub const FINALIZER: &str = "authedapi.dev/cleanup";
/// The field manager of every status write.
pub const FIELD_MANAGER: &str = "authedapi";
/// Annotation: `"true"` stops every reconcile of the object (and its deletion) until it goes.
pub const PAUSED: &str = "authedapi.dev/paused";
/// Annotation: `"true"` makes reconciles read and compare only, and report what they
/// would change.
pub const OBSERVE_ONLY: &str = "authedapi.dev/observe-only";
/// Whether the annotation `key` is set to "true".
pub(super) fn annotated(obj: &AuthedApi, key: &str) -> bool {
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

/// When one apply runs: now (and why, which paces its reads), or after a wait.
enum Schedule {
    Later(Duration),
    Now {
        purpose: budget::Purpose,
        /// The tenants as of the decision, for the memory of the sync.
        tenants_epoch: u64,
        /// The reconcile request (see [`requested`]) this run handles.
        request: Option<String>,
    },
}

/// Make AWS match the spec (or, observe-only, tell how it differs); write the outcome.
/// Scheduling first ([`schedule`], then [`admit`] once the account is known), the work
/// after ([`work`]).
async fn apply(obj: &AuthedApi, ctx: &Context) -> Result<Requeue, Error> {
    let generation = obj.metadata.generation.unwrap_or_default();
    let mode = if annotated(obj, OBSERVE_ONLY) {
        Mode::ObserveOnly
    } else {
        Mode::Act
    };
    let (purpose, tenants_epoch, request) = match schedule(obj, ctx, mode) {
        Schedule::Later(wait) => return Ok(Requeue::requeue(wait)),
        Schedule::Now {
            purpose,
            tenants_epoch,
            request,
        } => (purpose, tenants_epoch, request),
    };

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

    let prepared = prepare(obj, ctx).await;
    let _drift_slot = match admit(ctx, purpose, prepared.as_ref().ok()) {
        Ok(slot) => slot,
        Err(wait) => return Ok(Requeue::requeue(wait)),
    };
    let work_order = Work {
        mode,
        purpose,
        tenants_epoch,
        request,
    };
    work(obj, ctx, work_order, base, prepared).await
}

/// Whether `obj` is due, before any read: the steady state, a backoff, and a restart's
/// spread of drift checks each say when to come back instead, unless a person asked for
/// a reconcile now ([`requested`]). No AWS call, no write.
fn schedule(obj: &AuthedApi, ctx: &Context, mode: Mode) -> Schedule {
    let generation = obj.metadata.generation.unwrap_or_default();
    let uid = obj.metadata.uid.clone().unwrap_or_default();
    let request = requested::pending(obj, ctx.handled_request(&uid).as_deref()).map(str::to_owned);
    // Steady state: this process fully synced this generation (and wrote Ready) less than
    // a resync period ago. No AWS call at all. The object in the cache may lag behind our
    // own status writes, so this trusts the memory of the sync, not the cached status.
    if request.is_none()
        && let Some(wait) = ctx.time_to_resync(&uid, generation, mode)
    {
        return Schedule::Later(wait);
    }
    let tenants_epoch = ctx.tenants_epoch();
    // Failing and backing off: an event (our own status write, say) is no reason to retry
    // sooner; a request is (once: it is handled by the attempt).
    if request.is_none()
        && let Some(wait) = ctx.backing_off(&uid, generation)
    {
        return Schedule::Later(wait);
    }
    // A drift check: this generation was applied and found Ready before. Its reads are
    // paced to the drift checks' share of API Gateway's quota; everything else is a change.
    let purpose = match &obj.status {
        Some(s)
            if s.observed_generation == Some(generation)
                && status::is_ready(&s.conditions, generation) =>
        {
            budget::Purpose::DriftCheck
        }
        _ => budget::Purpose::Change,
    };
    // First sight of a Ready object (the operator just started): its drift check comes at
    // a random point of the resync period, as it would have in steady state, so a restart
    // is not every object's reads at once ahead of the creates queued behind them.
    if purpose == budget::Purpose::DriftCheck
        && request.is_none()
        && !ctx.seen(&uid)
        && let Some(wait) = ctx.spread_first_check(obj, generation, mode, tenants_epoch)
    {
        return Schedule::Later(wait);
    }
    Schedule::Now {
        purpose,
        tenants_epoch,
        request,
    }
}

/// A drift check of an object `placed` in its account goes when it has a worker of the
/// drift checks' share (held while the returned permit lives) and its account's drift
/// share has its reads; else it comes back after the returned wait. Changes always go.
fn admit(
    ctx: &Context,
    purpose: budget::Purpose,
    placed: Option<&Placed>,
) -> Result<Option<tokio::sync::OwnedSemaphorePermit>, Duration> {
    let Some(placed) = placed.filter(|_| purpose == budget::Purpose::DriftCheck) else {
        return Ok(None);
    };
    // The worker first, so one that comes back has spent none of its account's share.
    let Ok(slot) = ctx.drift_check_slots.clone().try_acquire_owned() else {
        return Err(Duration::from_millis(rand::random_range(500..2500)));
    };
    // Waiting here would hold a worker a create may need: come back then instead.
    if let Err(wait) = ctx.aws.admit_drift_check(
        &placed.plan.account,
        &placed.plan.region,
        budget::DRIFT_READS_PER_OBJECT,
    ) {
        return Err(wait + Duration::from_millis(rand::random_range(0..200)));
    }
    Ok(Some(slot))
}

/// What scheduling decided, for the work.
struct Work {
    mode: Mode,
    purpose: budget::Purpose,
    tenants_epoch: u64,
    /// The reconcile request this run handles, recorded with its outcome.
    request: Option<String>,
}

/// One sync of a scheduled object, its outcome written to status and events.
async fn work(
    obj: &AuthedApi,
    ctx: &Context,
    order: Work,
    mut base: AuthedApiStatus,
    prepared: Result<Placed, Error>,
) -> Result<Requeue, Error> {
    let generation = obj.metadata.generation.unwrap_or_default();
    let uid = obj.metadata.uid.clone().unwrap_or_default();
    let Work {
        mode,
        purpose,
        tenants_epoch,
        request,
    } = order;
    let (result, mut d_status, planned, writes, resync) = match prepared {
        Ok(Placed {
            aws,
            plan,
            account_source,
        }) => {
            base.account_source = Some(account_source);
            let mut d = Driver::new(&aws, &plan, obj, ctx, base, mode);
            let result = budget::with_purpose(purpose, sync(&mut d)).await;
            let resync = ctx.resync_for(&plan.account, &plan.region);
            (result, d.status, d.planned, d.status_writes, resync)
        }
        Err(e) => (Err(e), base, Vec::new(), 0, ctx.resync),
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
    if let Some(request) = request {
        d_status.last_handled_reconcile_at = Some(request.clone());
        ctx.request_handled(&uid, request);
    }
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
            let resync = Context::jittered(resync);
            ctx.mark_synced(&uid, generation, mode, tenants_epoch, resync);
            Ok(Requeue::requeue(resync))
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
/// region, account, clients and plan for `obj`. What the tenants say is read from the
/// cache, which may not have a tenant applied a moment ago (with this object, in one
/// apply), or may still have one since changed: before stalling on what the cache says,
/// and before placing an object for good (its first account is its account for life), the
/// tenants are read afresh.
async fn prepare(obj: &AuthedApi, ctx: &Context) -> Result<Placed, Error> {
    let place = async |tenants: &[AuthedApiTenant]| {
        let guardrails = guardrails(obj, ctx, tenants).await?;
        let found = tenant::violations(&obj.spec, &guardrails);
        if !found.is_empty() {
            return Err(Error::NotAllowed(found));
        }
        names_for(obj, ctx, &guardrails).await
    };
    let placed = obj.status.as_ref().is_some_and(|s| s.account_id.is_some());
    if !placed {
        return place(&ctx.cluster.tenants().await?).await;
    }
    match place(&cached_tenants(ctx)).await {
        Err(e) if e.comes_from_tenants() => place(&ctx.cluster.tenants().await?).await,
        placed => placed,
    }
}

/// Every AuthedApiTenant, as the cache has them.
pub(super) fn cached_tenants(ctx: &Context) -> Vec<AuthedApiTenant> {
    ctx.tenants.state().iter().map(|t| (**t).clone()).collect()
}

/// Where an object's resources are, and their names.
pub(super) struct Placed {
    pub aws: AwsClients,
    pub plan: Plan,
    /// Which account, and why (status.accountSource).
    pub account_source: String,
}

/// The limits and the AWS account of `obj`'s namespace under `tenants`: its tenant's, else
/// the operator's.
pub(super) async fn guardrails(
    obj: &AuthedApi,
    ctx: &Context,
    tenants: &[AuthedApiTenant],
) -> Result<Guardrails, Error> {
    let namespace = obj.namespace().unwrap_or_default();
    let labels = if AuthedApiTenant::uses_labels(tenants) {
        ctx.cluster.namespace_labels(&namespace).await?
    } else {
        BTreeMap::new()
    };
    tenant::guardrails_for(&namespace, &labels, tenants, &ctx.defaults)
        .map_err(Error::TenantsOverlap)
}

/// The account, region, clients and plan for `obj` under `guardrails`.
pub(super) async fn names_for(
    obj: &AuthedApi,
    ctx: &Context,
    guardrails: &Guardrails,
) -> Result<Placed, Error> {
    let (account, account_source) = match &guardrails.aws {
        Some(aws) => (
            Account::Assumed(aws.clone()),
            format!("{}, role {}", guardrails.source, aws.role_arn),
        ),
        None if ctx.defaults.own_account => (
            Account::Own,
            format!("the operator's own account: {}", guardrails.source),
        ),
        None => return Err(Error::NoAccount(guardrails.source.clone())),
    };
    // Without spec.region, the region first used stays (status): a redeploy of the
    // operator with another AWS_REGION must not orphan what it created.
    let region = obj
        .spec
        .region
        .clone()
        .or_else(|| obj.status.as_ref()?.region.clone())
        .or_else(|| guardrails.aws.as_ref()?.region.clone())
        .or_else(|| ctx.aws.default_region())
        .ok_or(Error::NoRegion)?;
    let placed = ctx
        .aws
        .in_account(&account, &region)
        .await
        .map_err(|source| Error::AccountUnavailable {
            via: guardrails.source.clone(),
            source,
        })?;
    // Resources stay in the account they were made in: a namespace mapped elsewhere
    // later must not make a second set there (and orphan the first).
    if let Some(from) = obj.status.as_ref().and_then(|s| s.account_id.clone())
        && from != placed.account
    {
        return Err(Error::AccountMoved {
            from,
            to: placed.account,
            via: guardrails.source.clone(),
        });
    }
    let boundary = guardrails
        .aws
        .as_ref()
        .and_then(|aws| aws.permissions_boundary.clone())
        .unwrap_or_else(|| ctx.permissions_boundary.clone());
    let namespace = obj.namespace().unwrap_or_default();
    let name = obj.name_any();
    let uid = obj.metadata.uid.clone().unwrap_or_default();
    let who = Identity {
        namespace: &namespace,
        name: &name,
        uid: &uid,
        account: &placed.account,
        region: &region,
        cluster_id: &ctx.cluster_id,
        permissions_boundary: &boundary,
    };
    let plan = plan::plan_tagged(&obj.spec, &who, &ctx.resource_tags)?;
    Ok(Placed {
        aws: placed.clients,
        plan,
        account_source,
    })
}

/// After a failed reconcile: back off per object, longer when a person must act.
pub fn error_policy(obj: Arc<AuthedApi>, error: &Error, ctx: Arc<Context>) -> Requeue {
    let uid = obj.metadata.uid.clone().unwrap_or_default();
    let failures = ctx.failed(&uid, obj.metadata.generation.unwrap_or_default());
    // A delete that waits on a person is retried at least every DELETE_RETRY_MAX (its
    // condition says what blocks it), so the fix is seen soon without a kick.
    let cap = match obj.metadata.deletion_timestamp {
        Some(_) => ctx.resync.min(DELETE_RETRY_MAX),
        None => ctx.resync,
    };
    let delay = backoff(failures, error.stalls(), cap);
    ctx.back_off(&uid, delay);
    tracing::warn!(
        object = %format!("{}/{}", obj.namespace().unwrap_or_default(), obj.name_any()),
        reason = error.reason(),
        retry_in = ?delay,
        "reconcile failed: {error}"
    );
    Requeue::requeue(delay)
}

/// The longest wait between two attempts at a blocked delete.
pub const DELETE_RETRY_MAX: Duration = Duration::from_secs(120);

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
