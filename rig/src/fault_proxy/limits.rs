//! Per-service rate limits, as account quotas are: a token bucket per service (governor's
//! GCRA), full when set. A request over its service's limit is refused at once, never
//! queued or delayed.

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

/// The rate limits by service (SigV4 service name).
pub(super) struct Limits<C: Clock = DefaultClock> {
    clock: C,
    buckets: HashMap<String, Bucket<C>>,
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

    /// Whether `service`'s limit (if any) lets one more request through now; it is
    /// counted against the limit if so.
    pub(super) fn admit(&self, service: &str) -> bool {
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
        let admitted = (0..30).filter(|_| limits.admit("apigateway")).count();
        assert_eq!(admitted, 5, "the burst, no time passed");
        clock.advance(Duration::from_millis(100));
        assert!(limits.admit("apigateway"), "one token per 100ms");
        clock.advance(Duration::from_millis(50));
        assert!(!limits.admit("apigateway"));
        clock.advance(Duration::from_secs(60));
        let admitted = (0..30).filter(|_| limits.admit("apigateway")).count();
        assert_eq!(admitted, 5, "refill stops at the burst size");
        limits.set("sts", 0.0, 0);
        assert!(limits.admit("sts"));
        clock.advance(Duration::from_secs(3600));
        assert!(!limits.admit("sts"));
    }

    #[test]
    fn limits_are_per_service_and_can_be_cleared() {
        let clock = FakeRelativeClock::default();
        let mut limits = Limits::with_clock(clock.clone());
        assert!((0..100).all(|_| limits.admit("iam")), "no limit set");
        limits.set("iam", 1.0, 2);
        assert_eq!((0..10).filter(|_| limits.admit("iam")).count(), 2);
        assert!((0..100).all(|_| limits.admit("sts")), "another service");
        limits.set("iam", 1.0, 3);
        assert_eq!(
            (0..10).filter(|_| limits.admit("iam")).count(),
            3,
            "a new limit starts full"
        );
        limits.clear("iam");
        assert!((0..100).all(|_| limits.admit("iam")));
        for rate in [f64::NAN, f64::INFINITY, -1.0, 1e-300, 1e300] {
            limits.set("lambda", rate, 2);
            assert_eq!(
                (0..10).filter(|_| limits.admit("lambda")).count(),
                2,
                "{rate}"
            );
        }
    }
}
