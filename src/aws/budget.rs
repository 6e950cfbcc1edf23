//! How one account's token bucket for a service is shared between changes (creates,
//! updates, deletes, and every call of a reconcile that applies a new spec) and drift
//! checks (the reads of a resync of an unchanged object). Drift-check reads get at most a
//! share of the bucket and wait while a change is waiting for it, so a create never queues
//! behind a resync; when the share cannot check every object within the resync period,
//! the period stretches ([`stretched_resync`]) instead of the share being exceeded.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use governor::DefaultDirectRateLimiter;

use super::ratelimit::{Limit, limiter};

/// The API Gateway reads of one object's drift check: GetApi, GetIntegrations,
/// GetAuthorizers, GetRoutes, GetStage (BENCHMARKS.md: 5 of a seed's 12 resync reads; a
/// custom domain adds 2).
pub const DRIFT_READS_PER_OBJECT: u32 = 5;

/// Why a request is made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// Applying a spec: a new generation, a create, a delete.
    Change,
    /// Comparing an unchanged object with AWS.
    DriftCheck,
}

tokio::task_local! {
    static PURPOSE: Purpose;
}

/// Run `work` with every AWS request it makes counted as `purpose`.
pub async fn with_purpose<F: Future>(purpose: Purpose, work: F) -> F::Output {
    PURPOSE.scope(purpose, work).await
}

/// The purpose of the request being made now (a change outside any reconcile).
fn current() -> Purpose {
    PURPOSE.try_with(|p| *p).unwrap_or(Purpose::Change)
}

/// One service's bucket in one account and region, with the drift checks' share of it.
#[derive(Clone)]
pub struct Bucket {
    all: Arc<DefaultDirectRateLimiter>,
    /// Drift-check reads take a token here first (None: no share, they take `all` only).
    drift: Option<Arc<DefaultDirectRateLimiter>>,
    drift_rate: Option<f64>,
    changes_waiting: Arc<AtomicUsize>,
}

/// Counts a change as waiting while it lives.
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn enter(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::SeqCst);
        Self(count)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Bucket {
    /// A bucket of `limit`; with `drift_share` (0 < share <= 1), drift-check reads get at
    /// most that share of it.
    pub fn new(limit: Limit, drift_share: Option<f64>) -> Self {
        let drift_rate = drift_share.map(|share| limit.per_second * share);
        Self {
            all: limiter(limit),
            drift: drift_share.map(|share| {
                limiter(Limit {
                    per_second: limit.per_second * share,
                    burst: ((f64::from(limit.burst) * share).floor() as u32).max(1),
                })
            }),
            drift_rate,
            changes_waiting: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// The drift checks' rate (requests per second), if they have a share.
    pub fn drift_rate(&self) -> Option<f64> {
        self.drift_rate
    }

    /// Wait until a request may go: `read` says whether it only reads.
    pub async fn wait(&self, read: bool) {
        if read && current() == Purpose::DriftCheck {
            if let Some(drift) = &self.drift {
                drift.until_ready().await;
            }
            // Changes first: a drift check can wait, a create should not.
            while self.changes_waiting.load(Ordering::SeqCst) > 0 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            self.all.until_ready().await;
        } else {
            let _waiting = Waiting::enter(&self.changes_waiting);
            self.all.until_ready().await;
        }
    }
}

/// The resync period that keeps the drift checks of `objects` within `drift_rate`
/// requests per second at `reads_per_object` each: `resync` when that fits, longer when
/// it does not.
pub fn stretched_resync(
    resync: Duration,
    objects: usize,
    reads_per_object: u32,
    drift_rate: f64,
) -> Duration {
    if drift_rate <= 0.0 || !drift_rate.is_finite() {
        return resync;
    }
    let needed = Duration::from_secs_f64(objects as f64 * f64::from(reads_per_object) / drift_rate);
    resync.max(needed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn the_resync_stretches_only_past_the_share() {
        let ten_minutes = Duration::from_secs(600);
        // 600 APIs x 5 reads at 5 rps: exactly 10 minutes.
        assert_eq!(stretched_resync(ten_minutes, 600, 5, 5.0), ten_minutes);
        assert_eq!(stretched_resync(ten_minutes, 100, 5, 5.0), ten_minutes);
        assert_eq!(
            stretched_resync(ten_minutes, 1000, 5, 5.0),
            Duration::from_secs(1000)
        );
        assert_eq!(stretched_resync(ten_minutes, 1000, 5, 0.0), ten_minutes);
    }

    #[tokio::test]
    async fn a_change_goes_before_drift_checks_waiting_for_the_bucket() {
        // 20 rps, burst 1; drift checks get half.
        let bucket = Bucket::new(
            Limit {
                per_second: 20.0,
                burst: 1,
            },
            Some(0.5),
        );
        assert_eq!(bucket.drift_rate(), Some(10.0));
        let start = Instant::now();
        let drift: Vec<_> = (0..10)
            .map(|_| {
                let bucket = bucket.clone();
                tokio::spawn(with_purpose(Purpose::DriftCheck, async move {
                    bucket.wait(true).await;
                    start.elapsed()
                }))
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(150)).await;
        let asked = start.elapsed();
        with_purpose(Purpose::Change, bucket.wait(false)).await;
        let change_waited = start.elapsed() - asked;
        let mut drift_done = Vec::new();
        for d in drift {
            drift_done.push(d.await.unwrap());
        }
        drift_done.sort();
        // Ten drift reads at their share (10 rps) take about a second; the change, asked
        // for while they queue, waits at most about one token of the whole bucket (50 ms).
        assert!(
            *drift_done.last().unwrap() >= Duration::from_millis(800),
            "the drift reads kept to their share: {drift_done:?}"
        );
        assert!(
            change_waited < Duration::from_millis(150),
            "the change waited {change_waited:?} behind drift reads"
        );
    }

    #[tokio::test]
    async fn reads_of_a_change_and_writes_of_a_drift_check_are_changes() {
        // 100 rps for all, 1 rps for drift-check reads.
        let bucket = Bucket::new(
            Limit {
                per_second: 100.0,
                burst: 1,
            },
            Some(0.01),
        );
        with_purpose(Purpose::DriftCheck, bucket.wait(true)).await;
        // The drift share is spent for a second; a write of the drift check (correcting
        // drift) and a read of a change do not wait for it.
        let start = Instant::now();
        with_purpose(Purpose::DriftCheck, bucket.wait(false)).await;
        with_purpose(Purpose::Change, bucket.wait(true)).await;
        assert!(
            start.elapsed() < Duration::from_millis(300),
            "{:?}",
            start.elapsed()
        );
        // Another drift-check read waits for its share.
        with_purpose(Purpose::DriftCheck, bucket.wait(true)).await;
        assert!(
            start.elapsed() >= Duration::from_millis(700),
            "{:?}",
            start.elapsed()
        );
    }
}
