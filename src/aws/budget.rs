//! How one account's token bucket for a service is shared between changes (creates,
//! updates, deletes, and every call of a reconcile that applies a new spec) and drift
//! checks (the reads of a resync of an unchanged object). Drift-check reads get at most a
//! share of the bucket and wait while a change is waiting for it, so a create never queues
//! behind a resync; when the share cannot check every object within the resync period,
//! the period stretches ([`stretched_resync`]) instead of the share being exceeded.

use std::future::Future;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use governor::DefaultDirectRateLimiter;
use governor::clock::{Clock, DefaultClock};

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
                    // At least one whole drift check, so one can always be admitted.
                    burst: ((f64::from(limit.burst) * share).floor() as u32)
                        .max(DRIFT_READS_PER_OBJECT),
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

    /// Take `reads` tokens of the drift checks' share for one drift check now, or say how
    /// long until they are there: a drift check that must wait is requeued for then
    /// rather than holding one of the controller's workers that a change may need.
    pub fn admit_drift_check(&self, reads: u32) -> Result<(), Duration> {
        let Some(drift) = &self.drift else {
            return Ok(());
        };
        let n = NonZeroU32::new(reads).unwrap_or(NonZeroU32::MIN);
        match drift.check_n(n) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(not_until)) => Err(not_until.wait_time_from(DefaultClock::default().now())),
            // More than the share's burst (not with our burst of at least one check's
            // reads): let it go; its reads still wait for the bucket.
            Err(_) => Ok(()),
        }
    }

    /// Wait until a request may go: `read` says whether it only reads. A drift check's
    /// reads were paid for at its admission ([`Bucket::admit_drift_check`]).
    pub async fn wait(&self, read: bool) {
        if read && current() == Purpose::DriftCheck {
            // Changes first: a drift check can wait, a create should not. A drift read
            // takes a token only at a moment no change is waiting for one; it never sits
            // inside the limiter's wait, where it would race a change for the next token.
            loop {
                if self.changes_waiting.load(Ordering::SeqCst) > 0 {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
                match self.all.check() {
                    Ok(()) => return,
                    Err(not_until) => {
                        let wait = not_until.wait_time_from(DefaultClock::default().now());
                        tokio::time::sleep(wait.max(Duration::from_millis(1))).await;
                    }
                }
            }
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
    async fn drift_checks_are_admitted_at_their_share_and_changes_do_not_wait_for_them() {
        // 20 rps, burst 5; drift checks get half: 10 reads/s, burst 5 (one check).
        let bucket = Bucket::new(
            Limit {
                per_second: 20.0,
                burst: 5,
            },
            Some(0.5),
        );
        assert_eq!(bucket.drift_rate(), Some(10.0));
        assert_eq!(bucket.admit_drift_check(5), Ok(()), "one check's burst");
        let wait = bucket.admit_drift_check(5).unwrap_err();
        assert!(
            wait > Duration::from_millis(400) && wait <= Duration::from_millis(500),
            "the next check in 5 reads / 10 per s: {wait:?}"
        );
        // A change is not held back by the spent drift share.
        let start = Instant::now();
        with_purpose(Purpose::Change, bucket.wait(false)).await;
        with_purpose(Purpose::Change, bucket.wait(true)).await;
        assert!(
            start.elapsed() < Duration::from_millis(100),
            "{:?}",
            start.elapsed()
        );
    }

    #[tokio::test]
    async fn an_admitted_drift_checks_reads_let_a_waiting_change_go_first() {
        // 10 rps, burst 1: every request waits 100 ms for the one before.
        let bucket = Bucket::new(
            Limit {
                per_second: 10.0,
                burst: 1,
            },
            Some(0.5),
        );
        let start = Instant::now();
        let drift: Vec<_> = (0..5)
            .map(|_| {
                let bucket = bucket.clone();
                tokio::spawn(with_purpose(Purpose::DriftCheck, async move {
                    bucket.wait(true).await;
                    start.elapsed()
                }))
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(120)).await;
        let asked = start.elapsed();
        with_purpose(Purpose::Change, bucket.wait(false)).await;
        let change_waited = start.elapsed() - asked;
        let mut drift_done = Vec::new();
        for d in drift {
            drift_done.push(d.await.unwrap());
        }
        drift_done.sort();
        assert!(
            change_waited < Duration::from_millis(150),
            "the change waited {change_waited:?} behind drift reads ({drift_done:?})"
        );
        assert!(
            *drift_done.last().unwrap() > asked + change_waited,
            "some drift reads went after the change: {drift_done:?}"
        );
    }
}
