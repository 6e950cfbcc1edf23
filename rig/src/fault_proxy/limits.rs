//! Rate limits, as account quotas are: a token bucket per service (governor's GCRA), full
//! when set, and optionally a bucket per service and SigV4 access key id, which on the rig
//! is a bucket per service and account (see [`Limits::set_per_key`]). A request over a
//! limit is refused at once, never queued or delayed.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};

/// How long a bucket that does not refill takes to refill entirely: longer than any test.
/// (governor counts time in 64-bit nanoseconds, so every refill fits in ~584 years.)
const NEVER: Duration = Duration::from_secs(400 * 365 * 24 * 3600);

type Bucket<C> = RateLimiter<NotKeyed, InMemoryState, C, NoOpMiddleware<<C as Clock>::Instant>>;

/// A limit per access key: each key gets a bucket of `quota` of its own, full the first
/// time the key is seen.
struct PerKey<C: Clock> {
    quota: Quota,
    buckets: HashMap<String, Bucket<C>>,
}

/// The rate limits by service (SigV4 service name), and by service and access key.
pub(super) struct Limits<C: Clock = DefaultClock> {
    clock: C,
    buckets: HashMap<String, Bucket<C>>,
    per_key: HashMap<String, PerKey<C>>,
}

impl Limits {
    pub(super) fn new() -> Self {
        Self::with_clock(DefaultClock::default())
    }
}

impl<C: Clock + Clone> Limits<C> {
    fn with_clock(clock: C) -> Self {
        Self {
            clock,
            buckets: HashMap::new(),
            per_key: HashMap::new(),
        }
    }

    /// Cap `service` at `requests_per_second` (0, or anything not a positive finite
    /// number: no refill) with bursts of `burst` (at least 1), starting full.
    pub(super) fn set(&mut self, service: &str, requests_per_second: f64, burst: u32) {
        let bucket =
            RateLimiter::direct_with_clock(quota(requests_per_second, burst), self.clock.clone());
        self.buckets.insert(service.to_owned(), bucket);
    }

    pub(super) fn clear(&mut self, service: &str) {
        self.buckets.remove(service);
    }

    /// Cap `service` at `requests_per_second` with bursts of `burst` for each SigV4 access
    /// key id on its own (as [`Limits::set`] for one service). Each key's bucket starts
    /// full when the key is first seen; setting it again forgets every key's bucket.
    ///
    /// Why a key stands for an account: AWS's quotas are per account and region, and the
    /// proxy sees no account, only the credential that signed the request. On the rig the
    /// operator reaches each account through exactly one assumed-role session (one access
    /// key) during a run, so one key = one account. A run long enough for the SDK to
    /// refresh a session's credentials would give that account a second, full bucket.
    pub(super) fn set_per_key(&mut self, service: &str, requests_per_second: f64, burst: u32) {
        self.per_key.insert(
            service.to_owned(),
            PerKey {
                quota: quota(requests_per_second, burst),
                buckets: HashMap::new(),
            },
        );
    }

    pub(super) fn clear_per_key(&mut self, service: &str) {
        self.per_key.remove(service);
    }

    /// Whether `service`'s limits (if any) let one more request signed with `access_key`
    /// (`None`: unsigned; those share one bucket) through now; it is counted against them
    /// if so. The per-key limit is checked first, so a request it refuses takes nothing
    /// from the service-wide bucket.
    pub(super) fn admit(&mut self, service: &str, access_key: Option<&str>) -> bool {
        if let Some(per_key) = self.per_key.get_mut(service) {
            let key = access_key.unwrap_or_default();
            if !per_key.buckets.contains_key(key) {
                let bucket = RateLimiter::direct_with_clock(per_key.quota, self.clock.clone());
                per_key.buckets.insert(key.to_owned(), bucket);
            }
            if per_key.buckets[key].check().is_err() {
                return false;
            }
        }
        self.buckets
            .get(service)
            .is_none_or(|bucket| bucket.check().is_ok())
    }
}

fn quota(requests_per_second: f64, burst: u32) -> Quota {
    let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
    let slowest = NEVER / burst.get();
    let period = if requests_per_second.is_finite() && requests_per_second > 0.0 {
        Duration::try_from_secs_f64(requests_per_second.recip())
            .map_or(slowest, |period| period.min(slowest))
    } else {
        slowest
    };
    Quota::with_period(period.max(Duration::from_nanos(1)))
        .expect("a period of at least 1ns")
        .allow_burst(burst)
}

#[cfg(test)]
mod tests {
    use governor::clock::FakeRelativeClock;

    use super::*;

    #[test]
    fn a_limit_allows_a_burst_then_the_rate() {
        let clock = FakeRelativeClock::default();
        let mut limits = Limits::with_clock(clock.clone());
        limits.set("apigateway", 10.0, 5);
        let admitted = (0..30).filter(|_| limits.admit("apigateway", None)).count();
        assert_eq!(admitted, 5, "the burst, no time passed");
        clock.advance(Duration::from_millis(100));
        assert!(limits.admit("apigateway", None), "one token per 100ms");
        clock.advance(Duration::from_millis(50));
        assert!(!limits.admit("apigateway", None));
        clock.advance(Duration::from_secs(60));
        let admitted = (0..30).filter(|_| limits.admit("apigateway", None)).count();
        assert_eq!(admitted, 5, "refill stops at the burst size");
        limits.set("sts", 0.0, 0);
        assert!(limits.admit("sts", None));
        clock.advance(Duration::from_secs(3600));
        assert!(!limits.admit("sts", None));
    }

    #[test]
    fn limits_are_per_service_and_can_be_cleared() {
        let clock = FakeRelativeClock::default();
        let mut limits = Limits::with_clock(clock.clone());
        assert!((0..100).all(|_| limits.admit("iam", None)), "no limit set");
        limits.set("iam", 1.0, 2);
        assert_eq!((0..10).filter(|_| limits.admit("iam", None)).count(), 2);
        assert!(
            (0..100).all(|_| limits.admit("sts", None)),
            "another service"
        );
        limits.set("iam", 1.0, 3);
        assert_eq!(
            (0..10).filter(|_| limits.admit("iam", None)).count(),
            3,
            "a new limit starts full"
        );
        limits.clear("iam");
        assert!((0..100).all(|_| limits.admit("iam", None)));
        for rate in [f64::NAN, f64::INFINITY, -1.0, 1e-300, 1e300] {
            limits.set("lambda", rate, 2);
            assert_eq!(
                (0..10).filter(|_| limits.admit("lambda", None)).count(),
                2,
                "{rate}"
            );
        }
    }

    #[test]
    fn a_per_key_limit_gives_each_access_key_its_own_bucket() {
        let clock = FakeRelativeClock::default();
        let mut limits = Limits::with_clock(clock.clone());
        limits.set_per_key("apigateway", 10.0, 4);
        let admitted = |limits: &mut Limits<_>, key| {
            (0..30)
                .filter(|_| limits.admit("apigateway", Some(key)))
                .count()
        };
        assert_eq!(admitted(&mut limits, "ASIAONE"), 4, "one key's burst");
        assert_eq!(
            admitted(&mut limits, "ASIATWO"),
            4,
            "another key starts full: one account's use takes nothing from another's"
        );
        assert_eq!(admitted(&mut limits, "ASIAONE"), 0, "the first is empty");
        clock.advance(Duration::from_millis(100));
        assert_eq!(admitted(&mut limits, "ASIAONE"), 1, "10 rps per key");
        assert_eq!(admitted(&mut limits, "ASIATWO"), 1);
        assert!(
            (0..100).all(|_| limits.admit("iam", Some("ASIAONE"))),
            "other services are not limited"
        );
        let unsigned = (0..30).filter(|_| limits.admit("apigateway", None)).count();
        assert_eq!(unsigned, 4, "unsigned requests share one bucket");
        limits.set_per_key("apigateway", 10.0, 2);
        assert_eq!(
            admitted(&mut limits, "ASIAONE"),
            2,
            "setting it again starts every key full"
        );
        limits.clear_per_key("apigateway");
        assert_eq!(admitted(&mut limits, "ASIAONE"), 30);
    }

    #[test]
    fn per_key_and_service_wide_limits_both_apply() {
        let clock = FakeRelativeClock::default();
        let mut limits = Limits::with_clock(clock.clone());
        limits.set("apigateway", 1.0, 5);
        limits.set_per_key("apigateway", 1.0, 3);
        let a = (0..10)
            .filter(|_| limits.admit("apigateway", Some("A")))
            .count();
        assert_eq!(a, 3, "the key's burst");
        let b = (0..10)
            .filter(|_| limits.admit("apigateway", Some("B")))
            .count();
        assert_eq!(
            b, 2,
            "the service's burst of 5 is what is left; the 7 refused by A's bucket took none of it"
        );
    }
}
