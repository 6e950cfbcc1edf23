//! A fault-injecting HTTP proxy for the AWS emulator, for stress tests and benchmarks.
//!
//! Point an AWS SDK at [`FaultProxy::endpoint`] (as `AWS_ENDPOINT_URL` or with
//! [`FaultProxy::sdk_config`]) and the proxy forwards every request to the emulator, or
//! answers it with a fault, as a test decides at runtime.
//!
//! What it guarantees:
//!
//! * **Transparent forwarding.** A request that draws no fault reaches the upstream with
//!   its method, path and query, headers (`Authorization`, `X-Amz-*`, `Host`, …) and body
//!   unchanged; the response's status, headers and body come back unchanged and streamed.
//!   Only hop-by-hop headers (`Connection`, `Transfer-Encoding`, …) are not relayed, since
//!   they describe one connection, not the message.
//! * **Classification as AWS names things.** Each request is classified into
//!   `(service, operation)` by [`classify`](fn@classify): the service is the one in the SigV4
//!   credential scope (`apigateway`, `cognito-identity`, `iam`, `lambda`, `sts`), the
//!   operation comes from `X-Amz-Target` (awsJson), the form's `Action` (awsQuery) or the
//!   method and path (restJson: API Gateway v2 and Lambda). Unknown requests are
//!   `("unknown", "Unknown")` at worst; they are still forwarded and counted.
//! * **Faults in each service's own wire protocol.** [`Fault::Throttle`],
//!   [`Fault::AccessDenied`] and [`Fault::Status`] answer with the status, the
//!   `x-amzn-ErrorType` header and the JSON or XML body that the service's protocol uses,
//!   plus an `x-amzn-RequestId`, so the AWS SDK parses them into the same error codes real
//!   AWS produces (`TooManyRequestsException`, `Throttling`, `AccessDeniedException`,
//!   `AccessDenied`, `ServiceUnavailable`, `InternalFailure`). [`Fault::Reset`] aborts the
//!   TCP connection (RST, no response at all); [`Fault::Delay`] forwards after a wait.
//!   The upstream never sees a request answered with a fault.
//! * **Reproducible randomness.** Rules fire with their `rate` drawn from a [`StdRng`]
//!   seeded with [`DEFAULT_SEED`] (or [`FaultProxy::set_seed`]): the same sequence of
//!   requests draws the same faults on every run.
//! * **Account quotas.** [`FaultProxy::set_rate_limit`] puts a token bucket in front of a
//!   service; requests over it are answered at once with that service's throttling error
//!   (outcome [`RATE_LIMITED`]), never queued or delayed.
//!   [`FaultProxy::set_rate_limit_per_access_key`] does the same with a bucket per SigV4
//!   access key id: per account, on a rig where each account is reached through one
//!   session (see there).
//! * **Every request is counted** by `(service, operation, outcome)` (and by access key
//!   id too, [`FaultProxy::counts_by_access_key`]), where the outcome is
//!   [`FORWARDED`], the fault's [`Fault::name`], [`RATE_LIMITED`] or [`UPSTREAM_ERROR`].
//!   A request is counted before its response is sent, so a count read after the SDK call
//!   returned includes it.
//!
//! Order of decisions for each request: the first rule that matches and fires (rules are
//! tried in order, each matching rule draws once) picks the fault; a delayed request then
//! goes on as an undrawn one does: the rate limit, then the upstream.
//!
//! The parts: `classify` names a request's service and operation, `protocol` writes each
//! service's errors, `limits` holds the rate limits, `server` serves connections, forwards
//! and counts; this module is the handle tests hold.

mod classify;
mod limits;
mod protocol;
mod server;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::Account;
use crate::serving::{Serving, bind_loopback};
pub use classify::{Classification, UNKNOWN_OPERATION, UNKNOWN_SERVICE, classify};
use server::{Shared, lock, serve};

/// The seed of the fault PRNG until [`FaultProxy::set_seed`] changes it.
pub const DEFAULT_SEED: u64 = 0x5eed_fa17_7e57_0001;
/// Outcome of a request passed to the upstream without a fault.
pub const FORWARDED: &str = "forwarded";
/// Outcome of a request refused by [`FaultProxy::set_rate_limit`]'s token bucket.
pub const RATE_LIMITED: &str = "rate_limited";
/// Outcome of a request the upstream could not be reached for (answered 502).
pub const UPSTREAM_ERROR: &str = "upstream_error";

/// What the proxy does to a request instead of (or before) forwarding it.
#[derive(Clone, Debug, PartialEq)]
pub enum Fault {
    /// Answer with the service's throttling error (`TooManyRequestsException` /
    /// `Throttling`), as AWS does when a quota is exceeded.
    Throttle,
    /// Answer with the service's access-denied error (`AccessDeniedException` /
    /// `AccessDenied`).
    AccessDenied,
    /// Answer with this HTTP status and a short error in the service's shape: code
    /// `ServiceUnavailable` for 503, `InternalFailure` for any other status. A number that
    /// is no HTTP status (outside 100..=999) is sent as 500.
    Status(u16),
    /// Abort the connection without any response: the client sees a connection error.
    Reset,
    /// Wait this long, then go on as if no rule had fired.
    Delay(Duration),
}

impl Fault {
    /// The outcome this fault is counted under: `throttle`, `access_denied`,
    /// `status_<code>`, `reset` or `delay`.
    pub fn name(&self) -> String {
        match self {
            Fault::Throttle => "throttle".to_owned(),
            Fault::AccessDenied => "access_denied".to_owned(),
            Fault::Status(status) => format!("status_{status}"),
            Fault::Reset => "reset".to_owned(),
            Fault::Delay(_) => "delay".to_owned(),
        }
    }
}

/// One fault rule: requests of `service` and `operation` (`None` matches any) draw
/// `fault` with probability `rate`.
#[derive(Clone, Debug, PartialEq)]
pub struct Rule {
    /// The SigV4 service name (`apigateway`, `cognito-identity`, `iam`, `lambda`, `sts`).
    pub service: Option<String>,
    /// The AWS operation name (`CreateApi`, `CreateRole`, …).
    pub operation: Option<String>,
    /// What happens to a request the rule fires for.
    pub fault: Fault,
    /// Probability in `0.0..=1.0` that a matching request draws the fault; 1.0 always,
    /// 0.0 (or NaN) never.
    pub rate: f64,
}

impl Rule {
    /// A rule for every request that always fires; narrow it with [`Rule::service`],
    /// [`Rule::operation`] and [`Rule::rate`].
    pub fn new(fault: Fault) -> Self {
        Self {
            service: None,
            operation: None,
            fault,
            rate: 1.0,
        }
    }

    /// Only requests to this service.
    pub fn service(mut self, service: impl Into<String>) -> Self {
        self.service = Some(service.into());
        self
    }

    /// Only requests of this operation.
    pub fn operation(mut self, operation: impl Into<String>) -> Self {
        self.operation = Some(operation.into());
        self
    }

    /// Fire with this probability per matching request.
    pub fn rate(mut self, rate: f64) -> Self {
        self.rate = rate;
        self
    }

    /// Whether the rule applies to a request classified as `class`.
    pub fn matches(&self, class: &Classification) -> bool {
        self.service.as_deref().is_none_or(|s| s == class.service)
            && self
                .operation
                .as_deref()
                .is_none_or(|o| o == class.operation)
    }
}

/// The fault rules and the PRNG their rates draw from.
struct Faults {
    rules: Vec<Rule>,
    rng: StdRng,
}

impl Faults {
    fn new() -> Self {
        Self {
            rules: Vec::new(),
            rng: StdRng::seed_from_u64(DEFAULT_SEED),
        }
    }

    /// The fault the first matching rule that fires draws, if any.
    fn draw(&mut self, class: &Classification) -> Option<Fault> {
        let Faults { rules, rng } = self;
        rules.iter().find_map(|rule| {
            if !rule.matches(class) {
                return None;
            }
            let roll: f64 = rng.random();
            (roll < rule.rate).then(|| rule.fault.clone())
        })
    }
}

/// The fault-injecting proxy; see the [module documentation](self). It stops when
/// dropped or [stopped](FaultProxy::stop).
pub struct FaultProxy {
    endpoint: String,
    shared: Arc<Shared>,
    serving: Serving,
}

impl FaultProxy {
    /// Start a proxy to `upstream` (`http://HOST:PORT`) on a free loopback port, as a task
    /// of the current tokio runtime (it ends with that runtime). Fails outside a runtime.
    pub fn start(upstream: &str) -> anyhow::Result<FaultProxy> {
        if tokio::runtime::Handle::try_current().is_err() {
            anyhow::bail!(
                "FaultProxy::start needs a tokio runtime; use FaultProxy::start_detached"
            );
        }
        let shared = Arc::new(Shared::new(upstream)?);
        let (listener, endpoint) = bind_loopback()?;
        let serving_shared = shared.clone();
        let serving = Serving::on_current_runtime(listener, move |listener, stopped| {
            serve(listener, serving_shared, stopped)
        })?;
        Ok(Self {
            endpoint,
            shared,
            serving,
        })
    }

    /// Start a proxy to `upstream` on a thread and tokio runtime of its own, so it serves
    /// any runtime (every `#[tokio::test]` has its own) and can live in a `static`.
    pub fn start_detached(upstream: &str) -> anyhow::Result<FaultProxy> {
        let shared = Arc::new(Shared::new(upstream)?);
        let (listener, endpoint) = bind_loopback()?;
        let serving_shared = shared.clone();
        let serving = Serving::detached("fault-proxy", listener, move |listener, stopped| {
            serve(listener, serving_shared, stopped)
        })?;
        Ok(Self {
            endpoint,
            shared,
            serving,
        })
    }

    /// The base URL to point an AWS SDK at: `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// SDK configuration for `account` whose requests go through this proxy (SigV4-signed
    /// with the account's keys, the SDK's default retry policy).
    pub async fn sdk_config(&self, account: &Account) -> aws_config::SdkConfig {
        sdk_config_via(account, self.endpoint()).await
    }

    /// Replace the fault rules; they apply to the next request.
    pub fn set_rules(&self, rules: Vec<Rule>) {
        lock(&self.shared.faults).rules = rules;
    }

    /// Remove every fault rule (rate limits stay).
    pub fn clear_rules(&self) {
        lock(&self.shared.faults).rules.clear();
    }

    /// Restart the fault PRNG from `seed`.
    pub fn set_seed(&self, seed: u64) {
        lock(&self.shared.faults).rng = StdRng::seed_from_u64(seed);
    }

    /// Cap `service` at `requests_per_second` with bursts of `burst` (at least 1): a token
    /// bucket, full now. Requests over it get the service's throttling error. A rate of 0
    /// (or anything not a positive finite number) allows the burst and no more.
    pub fn set_rate_limit(&self, service: &str, requests_per_second: f64, burst: u32) {
        lock(&self.shared.limits).set(service, requests_per_second, burst);
    }

    /// Remove `service`'s rate limit.
    pub fn clear_rate_limit(&self, service: &str) {
        lock(&self.shared.limits).clear(service);
    }

    /// Cap `service` at `requests_per_second` with bursts of `burst` for each SigV4 access
    /// key id (parsed from `Authorization: … Credential=AKID/…`, or a presigned
    /// `X-Amz-Credential`) separately: a token bucket per key, full when the key is first
    /// seen. Requests over it get the service's throttling error (outcome [`RATE_LIMITED`]).
    /// Unsigned requests share one bucket. Applies together with [`Self::set_rate_limit`]
    /// if both are set (the per-key bucket is checked first).
    ///
    /// This is API Gateway's quota per account as the proxy can see it: the proxy sees no
    /// account, only the key that signed. The operator reaches each tenant account through
    /// exactly one assumed-role session during a run (it caches the session's credentials
    /// and refreshes them only near expiry, an hour or more), so one key is one account; a
    /// refreshed session would get a second, full bucket for the same account.
    pub fn set_rate_limit_per_access_key(
        &self,
        service: &str,
        requests_per_second: f64,
        burst: u32,
    ) {
        lock(&self.shared.limits).set_per_key(service, requests_per_second, burst);
    }

    /// Remove `service`'s per-access-key rate limit.
    pub fn clear_rate_limit_per_access_key(&self, service: &str) {
        lock(&self.shared.limits).clear_per_key(service);
    }

    /// Requests received so far by (service, operation, outcome).
    pub fn counts(&self) -> BTreeMap<(String, String, String), u64> {
        lock(&self.shared.counts).clone()
    }

    /// Requests of `service` and `operation` with `outcome`.
    pub fn count(&self, service: &str, operation: &str, outcome: &str) -> u64 {
        lock(&self.shared.counts)
            .get(&(service.to_owned(), operation.to_owned(), outcome.to_owned()))
            .copied()
            .unwrap_or(0)
    }

    /// Requests of `service` and `operation` forwarded without a fault.
    pub fn forwarded(&self, service: &str, operation: &str) -> u64 {
        self.count(service, operation, FORWARDED)
    }

    /// Requests with `outcome`, whatever their service and operation.
    pub fn outcome_total(&self, outcome: &str) -> u64 {
        lock(&self.shared.counts)
            .iter()
            .filter(|((_, _, o), _)| o == outcome)
            .map(|(_, n)| n)
            .sum()
    }

    /// Every request received.
    pub fn total(&self) -> u64 {
        lock(&self.shared.counts).values().sum()
    }

    /// Requests received so far by (access key id, service, operation, outcome); unsigned
    /// requests under the key "".
    pub fn counts_by_access_key(&self) -> BTreeMap<(String, String, String, String), u64> {
        lock(&self.shared.key_counts).clone()
    }

    /// Both counts, taken at one instant: (by service, by access key).
    #[allow(clippy::type_complexity)]
    pub fn snapshot(
        &self,
    ) -> (
        BTreeMap<(String, String, String), u64>,
        BTreeMap<(String, String, String, String), u64>,
    ) {
        let counts = lock(&self.shared.counts);
        let key_counts = lock(&self.shared.key_counts);
        (counts.clone(), key_counts.clone())
    }

    /// Forget the counts.
    pub fn reset_counts(&self) {
        let mut counts = lock(&self.shared.counts);
        let mut key_counts = lock(&self.shared.key_counts);
        counts.clear();
        key_counts.clear();
    }

    /// Stop accepting and drop every connection. Idempotent; also done on drop.
    pub fn stop(&self) {
        self.serving.stop();
    }
}

impl std::fmt::Debug for FaultProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultProxy")
            .field("endpoint", &self.endpoint)
            .field("upstream", &self.shared.upstream)
            .finish_non_exhaustive()
    }
}

/// SDK configuration for `account` with its requests sent to `endpoint` instead of the
/// emulator (SigV4-signed with the account's keys, the SDK's default retry policy).
pub async fn sdk_config_via(account: &Account, endpoint: &str) -> aws_config::SdkConfig {
    account
        .sdk_config()
        .await
        .to_builder()
        .endpoint_url(endpoint)
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(service: &str, operation: &str) -> Classification {
        Classification {
            service: service.to_owned(),
            operation: operation.to_owned(),
        }
    }

    #[test]
    fn rules_match_and_draw_reproducibly() {
        let rule = Rule::new(Fault::Throttle)
            .service("iam")
            .operation("CreateRole");
        assert!(rule.matches(&class("iam", "CreateRole")));
        assert!(!rule.matches(&class("iam", "GetRole")));
        assert!(!rule.matches(&class("sts", "CreateRole")));
        assert!(Rule::new(Fault::Reset).matches(&class("sts", "GetCallerIdentity")));

        let mut faults = Faults::new();
        let c = class("sts", "GetCallerIdentity");
        let draws = |faults: &mut Faults| {
            (0..1000)
                .map(|_| faults.draw(&c).is_some())
                .collect::<Vec<_>>()
        };
        faults.rules = vec![
            Rule::new(Fault::AccessDenied).service("iam"),
            Rule::new(Fault::Throttle).rate(0.3),
        ];
        let first = draws(&mut faults);
        let fired = first.iter().filter(|f| **f).count();
        assert!((200..400).contains(&fired), "{fired} of 1000 at rate 0.3");
        faults.rng = StdRng::seed_from_u64(DEFAULT_SEED);
        assert_eq!(
            draws(&mut faults),
            first,
            "the same seed draws the same faults"
        );
        faults.rules = vec![Rule::new(Fault::Throttle).rate(0.0)];
        assert!(draws(&mut faults).iter().all(|f| !f));
        faults.rules = vec![
            Rule::new(Fault::Status(500)).service("sts").rate(1.0),
            Rule::new(Fault::Throttle),
        ];
        assert_eq!(
            faults.draw(&c),
            Some(Fault::Status(500)),
            "the first rule wins"
        );
    }

    /// A request signed with `access_key` for API Gateway's GetApis.
    async fn get_apis(client: &reqwest::Client, proxy: &FaultProxy, access_key: &str) -> u16 {
        client
            .get(format!("{}/v2/apis", proxy.endpoint()))
            .header(
                "authorization",
                format!(
                    "AWS4-HMAC-SHA256 Credential={access_key}/20260102/us-east-1/apigateway/aws4_request, \
                     SignedHeaders=host;x-amz-date, Signature=00"
                ),
            )
            .send()
            .await
            .expect("the proxy answers")
            .status()
            .as_u16()
    }

    #[tokio::test]
    async fn a_per_access_key_limit_throttles_each_key_on_its_own_and_counts_by_key() {
        // No upstream listens on port 9: forwarded requests come back 502 (upstream_error),
        // refused ones 429 from the proxy itself.
        let proxy = FaultProxy::start("http://127.0.0.1:9").unwrap();
        proxy.set_rate_limit_per_access_key("apigateway", 0.0, 3);
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        for key in ["ASIAACCOUNTONE", "ASIAACCOUNTTWO"] {
            let mut statuses = Vec::new();
            for _ in 0..5 {
                statuses.push(get_apis(&client, &proxy, key).await);
            }
            assert_eq!(statuses, [502, 502, 502, 429, 429], "{key}");
        }
        let by_key = proxy.counts_by_access_key();
        let count = |key: &str, outcome: &str| {
            by_key
                .get(&(
                    key.to_owned(),
                    "apigateway".to_owned(),
                    "GetApis".to_owned(),
                    outcome.to_owned(),
                ))
                .copied()
                .unwrap_or(0)
        };
        for key in ["ASIAACCOUNTONE", "ASIAACCOUNTTWO"] {
            assert_eq!(count(key, UPSTREAM_ERROR), 3, "{key}: its own burst");
            assert_eq!(count(key, RATE_LIMITED), 2, "{key}");
        }
        assert_eq!(proxy.count("apigateway", "GetApis", RATE_LIMITED), 4);
        proxy.clear_rate_limit_per_access_key("apigateway");
        assert_eq!(get_apis(&client, &proxy, "ASIAACCOUNTONE").await, 502);
        proxy.reset_counts();
        assert!(proxy.counts_by_access_key().is_empty());
    }
}
