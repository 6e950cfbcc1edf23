//! What every reconcile shares: clients, settings, the object cache, events, and the small
//! per-object memory (last full sync, failure count) that keeps steady state free of AWS
//! calls and failures backing off.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_config::{Region, SdkConfig};
use kube::runtime::reflector::Store;
use tokio::sync::OnceCell;

use super::cluster::Cluster;
use super::driver::Mode;
use crate::api::AuthedApi;
use crate::aws::ratelimit::Limits;
use crate::aws::{AwsClients, AwsError, SharedInterceptor};
use crate::metrics::Metrics;
use crate::tenant::{AuthedApiTenant, Defaults};

/// AWS clients per region, and the account they act in.
pub struct AwsProvider {
    base: SdkConfig,
    interceptors: Vec<SharedInterceptor>,
    limits: Limits,
    clients: Mutex<HashMap<String, AwsClients>>,
    account: OnceCell<String>,
    /// Clients given (an in-memory fake): every region gets them.
    fixed: Option<AwsClients>,
}

impl AwsProvider {
    pub fn new(base: SdkConfig, interceptors: Vec<SharedInterceptor>, limits: Limits) -> Self {
        Self {
            base,
            interceptors,
            limits,
            clients: Mutex::new(HashMap::new()),
            account: OnceCell::new(),
            fixed: None,
        }
    }

    /// `clients` for every region, acting in `account`, with `region` as the default.
    pub fn fixed(clients: AwsClients, account: &str, region: Option<&str>) -> Self {
        let mut base = SdkConfig::builder().behavior_version(aws_config::BehaviorVersion::latest());
        if let Some(region) = region {
            base = base.region(Region::new(region.to_owned()));
        }
        Self {
            base: base.build(),
            interceptors: Vec::new(),
            limits: Limits::none(),
            clients: Mutex::new(HashMap::new()),
            account: OnceCell::new_with(Some(account.to_owned())),
            fixed: Some(clients),
        }
    }

    /// The operator's own region (AWS_REGION, profile, IMDS), if it has one.
    pub fn default_region(&self) -> Option<String> {
        self.base.region().map(|r| r.to_string())
    }

    /// Clients for `region`, built once.
    pub fn clients(&self, region: &str) -> AwsClients {
        if let Some(fixed) = &self.fixed {
            return fixed.clone();
        }
        let mut clients = self.clients.lock().expect("clients lock");
        clients
            .entry(region.to_owned())
            .or_insert_with(|| {
                let config = self
                    .base
                    .to_builder()
                    .region(Region::new(region.to_owned()))
                    .build();
                // One token bucket per service and region, as AWS's quotas are.
                AwsClients::with_limits(&config, &self.interceptors, &self.limits)
            })
            .clone()
    }

    /// The account id, asked of STS once.
    pub async fn account(&self) -> Result<String, AwsError> {
        self.account
            .get_or_try_init(|| async {
                let region = self.default_region().unwrap_or_else(|| "us-east-1".into());
                Ok(self.clients(&region).sts.caller_identity().await?.account)
            })
            .await
            .cloned()
    }
}

/// Per-object memory.
#[derive(Clone, Copy, Debug)]
struct Synced {
    generation: i64,
    mode: Mode,
    at: Instant,
}

/// Failures in a row of one object, and when it may be retried.
#[derive(Clone, Copy, Debug, Default)]
struct Failures {
    count: u32,
    generation: i64,
    retry_at: Option<Instant>,
}

impl Failures {
    /// Count one more failure of `generation`; returns how many in a row. A new
    /// generation starts its own count: a fixed spec is not held back for the old one.
    fn record(&mut self, generation: i64) -> u32 {
        if self.generation != generation {
            *self = Failures::default();
        }
        self.count += 1;
        self.generation = generation;
        self.count
    }
}

/// The operator's settings a reconcile reads.
#[derive(Clone, Debug)]
pub struct Settings {
    pub cluster_id: String,
    pub resync: Duration,
    /// ARN or policy name of the permissions boundary every created role carries.
    pub permissions_boundary: String,
    /// Limits for namespaces no AuthedApiTenant selects.
    pub defaults: Defaults,
    /// The organisation's tags for every resource (--resource-tags), checked at startup.
    pub resource_tags: BTreeMap<String, String>,
}

/// Shared by every reconcile.
pub struct Context {
    /// For the finalizer; everything else a reconcile asks of Kubernetes goes through
    /// `cluster`.
    pub client: kube::Client,
    pub cluster: Arc<dyn Cluster>,
    pub aws: AwsProvider,
    pub cluster_id: String,
    pub resync: Duration,
    pub permissions_boundary: String,
    pub defaults: Defaults,
    pub resource_tags: BTreeMap<String, String>,
    /// Every AuthedApiTenant (the platform's limits per namespace).
    pub tenants: Store<AuthedApiTenant>,
    pub metrics: Arc<Metrics>,
    /// Every AuthedApi the controller watches (to know who else uses an OIDC client id).
    pub store: Store<AuthedApi>,
    synced: Mutex<HashMap<String, Synced>>,
    failures: Mutex<HashMap<String, Failures>>,
    providers: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl Context {
    pub fn new(
        client: kube::Client,
        cluster: Arc<dyn Cluster>,
        aws: AwsProvider,
        settings: Settings,
        metrics: Arc<Metrics>,
        store: Store<AuthedApi>,
        tenants: Store<AuthedApiTenant>,
    ) -> Self {
        Self {
            client,
            cluster,
            aws,
            cluster_id: settings.cluster_id,
            resync: settings.resync,
            permissions_boundary: settings.permissions_boundary,
            defaults: settings.defaults,
            resource_tags: settings.resource_tags,
            tenants,
            metrics,
            store,
            synced: Mutex::new(HashMap::new()),
            failures: Mutex::new(HashMap::new()),
            providers: Mutex::new(HashMap::new()),
        }
    }

    /// Time left until `uid` is due for a drift check, or None when it is due now (or was
    /// never synced by this process, or its generation moved).
    pub fn time_to_resync(&self, uid: &str, generation: i64, mode: Mode) -> Option<Duration> {
        let synced = self.synced.lock().expect("synced lock");
        let last = synced.get(uid)?;
        // A new generation, or observe-only set or cleared (an annotation: no new
        // generation), is due now.
        if last.generation != generation || last.mode != mode {
            return None;
        }
        self.resync
            .checked_sub(last.at.elapsed())
            .filter(|d| !d.is_zero())
    }

    /// Remember a full, successful sync; forget past failures.
    pub fn mark_synced(&self, uid: &str, generation: i64, mode: Mode) {
        self.synced.lock().expect("synced lock").insert(
            uid.to_owned(),
            Synced {
                generation,
                mode,
                at: Instant::now(),
            },
        );
        self.failures.lock().expect("failures lock").remove(uid);
    }

    /// Count a failure of `generation`; returns how many in a row.
    pub fn failed(&self, uid: &str, generation: i64) -> u32 {
        let mut failures = self.failures.lock().expect("failures lock");
        failures
            .entry(uid.to_owned())
            .or_default()
            .record(generation)
    }

    /// Hold retries of `uid` until `delay` from now (the error policy's backoff).
    pub fn back_off(&self, uid: &str, delay: Duration) {
        if let Some(entry) = self.failures.lock().expect("failures lock").get_mut(uid) {
            entry.retry_at = Some(Instant::now() + delay);
        }
    }

    /// Time left in the backoff of `uid` at `generation`. Our own status writes trigger
    /// reconciles too; without this they would retry a failing object at once, again
    /// and again. A new generation (a spec change) is never held back.
    pub fn backing_off(&self, uid: &str, generation: i64) -> Option<Duration> {
        let failures = self.failures.lock().expect("failures lock");
        let entry = failures.get(uid)?;
        if entry.generation != generation {
            return None;
        }
        entry
            .retry_at?
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
    }

    /// A lock per shared resource (an OIDC provider by ARN, a custom domain by name):
    /// objects using one take turns changing it, so they do not race to create it or to
    /// remove what another is about to use.
    pub async fn lock_shared(&self, key: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = self
            .providers
            .lock()
            .expect("providers lock")
            .entry(key.to_owned())
            .or_default()
            .clone();
        lock.lock_owned().await
    }

    /// Drop what we remember of a deleted object.
    pub fn forget(&self, uid: &str) {
        self.synced.lock().expect("synced lock").remove(uid);
        self.failures.lock().expect("failures lock").remove(uid);
    }

    /// The resync period with up to 10% jitter, so objects do not resync in lockstep.
    pub fn jittered_resync(&self) -> Duration {
        self.resync + self.resync.mul_f64(rand::random::<f64>() * 0.1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_count_per_generation() {
        let mut failures = Failures::default();
        assert_eq!(failures.record(1), 1);
        assert_eq!(failures.record(1), 2);
        assert_eq!(failures.record(1), 3);
        assert_eq!(failures.record(2), 1, "a new generation starts over");
        assert_eq!(failures.record(2), 2);
    }
}
