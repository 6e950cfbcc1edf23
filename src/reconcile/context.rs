//! What every reconcile shares: clients, settings, the object cache, events, and the small
//! per-object memory (last full sync, failure count) that keeps steady state free of AWS
//! calls and failures backing off.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kube::runtime::reflector::Store;

use super::cluster::Cluster;
use super::driver::Mode;
use crate::api::{AuthedApi, AuthedApiStatus};
use crate::aws::budget::{DRIFT_READS_PER_OBJECT, stretched_resync};
pub use crate::aws::provider::AwsProvider;
use crate::metrics::Metrics;
use crate::tenant::{AuthedApiTenant, Defaults};

/// Per-object memory.
#[derive(Clone, Copy, Debug)]
struct Synced {
    generation: i64,
    mode: Mode,
    /// The tenants epoch it saw: a tenant changed since (limits, account) makes it due.
    tenants_epoch: u64,
    /// Its drift-check period then (the resync, or longer: see [`Context::resync_for`]).
    resync: Duration,
    at: Instant,
}

/// Failures in a row of one object, and when it may be retried.
#[derive(Clone, Copy, Debug, Default)]
struct Failures {
    count: u32,
    generation: i64,
    /// The tenants epoch of the last failure: a tenant change since ends the backoff.
    tenants_epoch: u64,
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
    /// How many drift checks may run at once (the rest of the workers stay free for
    /// changes).
    pub drift_check_slots: usize,
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
    /// Permits for drift checks running at once.
    pub drift_check_slots: Arc<tokio::sync::Semaphore>,
    /// Every AuthedApiTenant (the platform's limits per namespace).
    pub tenants: Store<AuthedApiTenant>,
    pub metrics: Arc<Metrics>,
    /// Every AuthedApi the controller watches (to know who else uses an OIDC client id).
    pub store: Store<AuthedApi>,
    synced: Mutex<HashMap<String, Synced>>,
    failures: Mutex<HashMap<String, Failures>>,
    /// The reconcile request each object's last run handled (its status write may not
    /// be in the cache yet).
    handled_requests: Mutex<HashMap<String, String>>,
    providers: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Counts changes to AuthedApiTenants (bumped once the tenants store has each).
    tenants_epoch: Arc<AtomicU64>,
    /// Objects per (account, region), counted from the cache at most every few seconds.
    counted: Mutex<HashMap<(String, String), (Instant, usize)>>,
    /// The stretched drift-check period last logged per (account, region).
    stretch_logged: Mutex<HashMap<(String, String), Duration>>,
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
            drift_check_slots: Arc::new(tokio::sync::Semaphore::new(
                settings.drift_check_slots.max(1),
            )),
            tenants,
            metrics,
            store,
            synced: Mutex::new(HashMap::new()),
            failures: Mutex::new(HashMap::new()),
            handled_requests: Mutex::new(HashMap::new()),
            providers: Mutex::new(HashMap::new()),
            tenants_epoch: Arc::new(AtomicU64::new(0)),
            counted: Mutex::new(HashMap::new()),
            stretch_logged: Mutex::new(HashMap::new()),
        }
    }

    /// Share the controller's count of tenant changes.
    pub fn with_tenants_epoch(mut self, epoch: Arc<AtomicU64>) -> Self {
        self.tenants_epoch = epoch;
        self
    }

    /// The count of tenant changes now (taken before a reconcile reads the tenants).
    pub fn tenants_epoch(&self) -> u64 {
        self.tenants_epoch.load(Ordering::SeqCst)
    }

    /// Time left until `uid` is due for a drift check, or None when it is due now (or was
    /// never synced by this process, or its generation moved).
    pub fn time_to_resync(&self, uid: &str, generation: i64, mode: Mode) -> Option<Duration> {
        let synced = self.synced.lock().expect("synced lock");
        let last = synced.get(uid)?;
        // A new generation, observe-only set or cleared (an annotation: no new
        // generation), or a tenant changed, is due now.
        if last.generation != generation
            || last.mode != mode
            || last.tenants_epoch != self.tenants_epoch()
        {
            return None;
        }
        last.resync
            .checked_sub(last.at.elapsed())
            .filter(|d| !d.is_zero())
    }

    /// Remember a full, successful sync that read the tenants at `tenants_epoch`, due
    /// again after `resync`; forget past failures.
    pub fn mark_synced(
        &self,
        uid: &str,
        generation: i64,
        mode: Mode,
        tenants_epoch: u64,
        resync: Duration,
    ) {
        self.synced.lock().expect("synced lock").insert(
            uid.to_owned(),
            Synced {
                generation,
                mode,
                tenants_epoch,
                resync,
                at: Instant::now(),
            },
        );
        self.failures.lock().expect("failures lock").remove(uid);
    }

    /// Whether this process has synced (or scheduled) `uid` before.
    pub fn seen(&self, uid: &str) -> bool {
        self.synced.lock().expect("synced lock").contains_key(uid)
    }

    /// Schedule the first drift check of `uid` (Ready at `generation`, not seen by this
    /// process yet) at a random point within the resync period: it counts as synced until
    /// then. Returns the wait (None when that point is now).
    pub fn spread_first_check(
        &self,
        obj: &AuthedApi,
        generation: i64,
        mode: Mode,
        tenants_epoch: u64,
    ) -> Option<Duration> {
        let uid = obj.metadata.uid.as_deref().unwrap_or_default();
        // Over the period the drift checks of its account will take (the status says
        // where it is), not just --resync: spread any tighter, they would queue.
        let period = match &obj.status {
            Some(AuthedApiStatus {
                account_id: Some(account),
                region: Some(region),
                ..
            }) => self.resync_for(account, region),
            _ => self.resync,
        };
        let wait = period.mul_f64(rand::random::<f64>());
        if wait < Duration::from_millis(10) {
            return None;
        }
        self.mark_synced(uid, generation, mode, tenants_epoch, wait);
        Some(wait)
    }

    /// Count a failure of `generation`; returns how many in a row.
    pub fn failed(&self, uid: &str, generation: i64) -> u32 {
        let epoch = self.tenants_epoch();
        let mut failures = self.failures.lock().expect("failures lock");
        let entry = failures.entry(uid.to_owned()).or_default();
        let count = entry.record(generation);
        entry.tenants_epoch = epoch;
        count
    }

    /// Hold retries of `uid` until `delay` from now (the error policy's backoff).
    pub fn back_off(&self, uid: &str, delay: Duration) {
        if let Some(entry) = self.failures.lock().expect("failures lock").get_mut(uid) {
            entry.retry_at = Some(Instant::now() + delay);
        }
    }

    /// Time left in the backoff of `uid` at `generation`. Our own status writes trigger
    /// reconciles too; without this they would retry a failing object at once, again
    /// and again. A new generation (a spec change) is never held back, nor is a failure
    /// from before a tenant changed (the change may be its fix: a namespace mapped back).
    pub fn backing_off(&self, uid: &str, generation: i64) -> Option<Duration> {
        let epoch = self.tenants_epoch();
        let failures = self.failures.lock().expect("failures lock");
        let entry = failures.get(uid)?;
        if entry.generation != generation || entry.tenants_epoch != epoch {
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

    /// Make `uid` due for a full look now, as seen before (no first-check spreading, no
    /// steady-state shortcut, no backoff): what the in-process tests want of every
    /// reconcile.
    #[cfg(test)]
    pub fn make_due(&self, uid: &str) {
        self.synced.lock().expect("synced lock").insert(
            uid.to_owned(),
            Synced {
                generation: i64::MIN,
                mode: Mode::Act,
                tenants_epoch: 0,
                resync: Duration::ZERO,
                at: Instant::now(),
            },
        );
        self.failures.lock().expect("failures lock").remove(uid);
    }

    /// Drop what we remember of a deleted object.
    pub fn forget(&self, uid: &str) {
        self.synced.lock().expect("synced lock").remove(uid);
        self.failures.lock().expect("failures lock").remove(uid);
        self.handled_requests
            .lock()
            .expect("requests lock")
            .remove(uid);
    }

    /// The reconcile request (see [`super::requested`]) this process last handled for `uid`.
    pub fn handled_request(&self, uid: &str) -> Option<String> {
        self.handled_requests
            .lock()
            .expect("requests lock")
            .get(uid)
            .cloned()
    }

    /// Remember that the run of `uid` handled `request`.
    pub fn request_handled(&self, uid: &str, request: String) {
        self.handled_requests
            .lock()
            .expect("requests lock")
            .insert(uid.to_owned(), request);
    }

    /// `period` with up to 10% jitter, so objects do not resync in lockstep.
    pub fn jittered(period: Duration) -> Duration {
        period + period.mul_f64(rand::random::<f64>() * 0.1)
    }

    /// How often the objects of `account` in `region` are checked for drift: the resync
    /// period, or longer when checking them all that often would take more than the drift
    /// checks' share of API Gateway's bucket there. Exported as a metric; logged when it
    /// starts to stretch, moves by a tenth, or stops.
    pub fn resync_for(&self, account: &str, region: &str) -> Duration {
        let Some(rate) = self.aws.drift_rate(account, region) else {
            return self.resync;
        };
        let objects = self.objects_in(account, region);
        let period = stretched_resync(self.resync, objects, DRIFT_READS_PER_OBJECT, rate);
        self.metrics.resync_period(account, period);
        let key = (account.to_owned(), region.to_owned());
        let mut logged = self.stretch_logged.lock().expect("stretch lock");
        let last = logged.get(&key).copied().unwrap_or(self.resync);
        let moved = period.abs_diff(last) > last / 10;
        if moved || (period == self.resync && last != self.resync) {
            if period > self.resync {
                tracing::info!(
                    account,
                    region,
                    objects,
                    drift_reads_per_second = rate,
                    resync = ?period,
                    "drift checks stretched past --resync: checking {objects} objects every \
                     {:?} would take more than the drift checks' share of API Gateway's quota",
                    self.resync
                );
            } else {
                tracing::info!(account, region, resync = ?period, "drift checks back to --resync");
            }
            logged.insert(key, period);
        }
        period
    }

    /// How many watched objects live in `account` and `region` (by their status), counted
    /// at most every 5 seconds.
    fn objects_in(&self, account: &str, region: &str) -> usize {
        let key = (account.to_owned(), region.to_owned());
        let mut counted = self.counted.lock().expect("counted lock");
        if let Some((at, n)) = counted.get(&key)
            && at.elapsed() < Duration::from_secs(5)
        {
            return *n;
        }
        let n = self
            .store
            .state()
            .iter()
            .filter(|o| {
                o.status.as_ref().is_some_and(|s| {
                    s.account_id.as_deref() == Some(account) && s.region.as_deref() == Some(region)
                })
            })
            .count();
        counted.insert(key, (Instant::now(), n));
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_tenant_change_makes_a_synced_object_due() {
        let (service, _nobody) = tower_test::mock::pair::<
            http::Request<kube::client::Body>,
            http::Response<kube::client::Body>,
        >();
        let epoch = Arc::new(AtomicU64::new(0));
        let client = kube::Client::new(service, "default");
        let reporter: kube::runtime::events::Reporter = "test".into();
        let recorder = kube::runtime::events::Recorder::new(client.clone(), reporter.clone());
        let ctx = Context::new(
            client.clone(),
            Arc::new(super::super::cluster::KubeCluster {
                client,
                recorder,
                reporter,
            }),
            AwsProvider::fixed(
                crate::aws::fake::FakeAws::default().clients(),
                "123456789012",
                None,
            ),
            Settings {
                cluster_id: "test".into(),
                resync: Duration::from_secs(600),
                permissions_boundary: "b".into(),
                defaults: Defaults {
                    allowed_functions: vec![],
                    allowed_private_targets: Vec::new(),
                    allowed_issuers: vec![],
                    own_account: true,
                },
                resource_tags: BTreeMap::new(),
                drift_check_slots: 1,
            },
            Arc::new(Metrics::default()),
            kube::runtime::reflector::store().0,
            kube::runtime::reflector::store().0,
        )
        .with_tenants_epoch(epoch.clone());
        let seen = ctx.tenants_epoch();
        ctx.mark_synced("uid", 1, Mode::Act, seen, Duration::from_secs(600));
        assert!(
            ctx.time_to_resync("uid", 1, Mode::Act).is_some(),
            "steady state"
        );
        epoch.fetch_add(1, Ordering::SeqCst);
        assert!(
            ctx.time_to_resync("uid", 1, Mode::Act).is_none(),
            "due after a tenant change"
        );
        // A sync that read the tenants before a change is not counted as seeing it.
        ctx.mark_synced("uid", 1, Mode::Act, seen, Duration::from_secs(600));
        assert!(ctx.time_to_resync("uid", 1, Mode::Act).is_none());
    }

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
