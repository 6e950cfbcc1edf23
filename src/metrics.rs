//! Prometheus metrics, the AWS request counter (an SDK interceptor, so every call of every
//! service is counted in one place), the time requests wait for the client-side rate
//! limiter, the objects by condition, and the `/metrics`, `/healthz`, `/readyz` server.

use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeTransmitInterceptorContextMut, FinalizerInterceptorContextRef,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse, Metadata};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use kube::runtime::reflector::Store;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::api::AuthedApi;
use crate::aws::error::{ErrorKind, kind_of};
use crate::readiness::Readiness;
use crate::status;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AwsLabels {
    service: String,
    operation: String,
    /// "read" for Get/List/Describe calls, "write" for everything else.
    kind: &'static str,
    /// HTTP status class of the attempt ("2xx", "4xx", "5xx") or "error" without one.
    outcome: &'static str,
    /// The AWS account the request acted in ("" for the operator's first look at who it is).
    account: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ThrottleLabels {
    service: String,
    operation: String,
    /// The AWS error code ("TooManyRequestsException", "Throttling", ...), or "unknown"
    /// for an HTTP 429 without one.
    code: String,
    account: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServiceLabels {
    service: String,
    account: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AccountLabels {
    account: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AccountConditionLabels {
    account: String,
    condition: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ConditionLabels {
    condition: &'static str,
}

/// Every metric the operator exports.
pub struct Metrics {
    registry: Registry,
    reconciles: Family<ResultLabels, Counter>,
    reconcile_errors: Family<ReasonLabels, Counter>,
    reconcile_duration: Histogram,
    aws_requests: Family<AwsLabels, Counter>,
    aws_throttles: Family<ThrottleLabels, Counter>,
    limiter_wait: Family<ServiceLabels, Histogram, fn() -> Histogram>,
    status_writes: Counter,
    objects: Family<ConditionLabels, Gauge>,
    account_objects: Family<AccountConditionLabels, Gauge>,
    resync_period: Family<AccountLabels, Gauge<f64, std::sync::atomic::AtomicU64>>,
    /// The controller's cache of AuthedApi objects, counted by condition at each scrape.
    store: OnceLock<Store<AuthedApi>>,
}

/// Buckets of the limiter wait: from "no wait" to the 30 s a long queue could reach.
fn limiter_wait_histogram() -> Histogram {
    Histogram::new([
        0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    ])
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("authedapi");
        let reconciles = Family::<ResultLabels, Counter>::default();
        let reconcile_errors = Family::<ReasonLabels, Counter>::default();
        // Exported at 0 from the start, so the first AccessDenied is an increase an alert
        // sees (Prometheus cannot tell how a series that appears at 1 got there).
        reconcile_errors
            .get_or_create(&ReasonLabels {
                reason: "AccessDenied".to_owned(),
            })
            .inc_by(0);
        let reconcile_duration =
            Histogram::new([0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0]);
        let aws_requests = Family::<AwsLabels, Counter>::default();
        registry.register("reconciles", "Reconciles by result", reconciles.clone());
        registry.register(
            "reconcile_errors",
            "Failed reconciles by reason",
            reconcile_errors.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Time one reconcile takes",
            reconcile_duration.clone(),
        );
        registry.register(
            "aws_requests",
            "AWS API requests (each attempt) by service, operation, kind and outcome",
            aws_requests.clone(),
        );
        let aws_throttles = Family::<ThrottleLabels, Counter>::default();
        registry.register(
            "aws_throttles",
            "AWS request attempts AWS throttled (TooManyRequestsException, Throttling, ...), \
             by service, operation and error code",
            aws_throttles.clone(),
        );
        let limiter_wait =
            Family::<ServiceLabels, Histogram, fn() -> Histogram>::new_with_constructor(
                limiter_wait_histogram,
            );
        registry.register(
            "aws_limiter_wait_seconds",
            "Time AWS request attempts waited for the client-side rate limiter, by service \
             (about 0 for a service without a limit)",
            limiter_wait.clone(),
        );
        let status_writes = Counter::default();
        registry.register(
            "status_writes",
            "Status writes (each one a point a crash test stops before)",
            status_writes.clone(),
        );
        let objects = Family::<ConditionLabels, Gauge>::default();
        registry.register(
            "objects",
            "AuthedApi objects the operator watches, by condition (Paused, Stalled, \
             Reconciling, Ready, or Unknown: none of those yet)",
            objects.clone(),
        );
        // Every condition has a series from the start, 0 until objects are counted.
        for condition in ObjectCondition::ALL {
            objects
                .get_or_create(&ConditionLabels {
                    condition: condition.as_str(),
                })
                .set(0);
        }
        let account_objects = Family::<AccountConditionLabels, Gauge>::default();
        registry.register(
            "account_objects",
            "AuthedApi objects by the AWS account their resources live in (status.accountId; \
             empty before the first reconcile) and condition (as authedapi_objects)",
            account_objects.clone(),
        );
        let resync_period =
            Family::<AccountLabels, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
        registry.register(
            "resync_period_seconds",
            "How often each object of an account is checked for drift: the --resync period, \
             or longer when checking every object that often would take more than the drift \
             checks' share of API Gateway's quota",
            resync_period.clone(),
        );
        Self {
            registry,
            account_objects,
            resync_period,
            reconciles,
            reconcile_errors,
            reconcile_duration,
            aws_requests,
            aws_throttles,
            limiter_wait,
            status_writes,
            objects,
            store: OnceLock::new(),
        }
    }
}

/// The one condition an object is counted under in `authedapi_objects`: the first of
/// Paused, then Reconciling for a generation the operator has not seen yet (as kstatus has
/// it), Stalled, Reconciling, Ready (for the current generation); Unknown when none holds
/// (no status yet, or Ready False by choice, as observe-only with changes pending).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ObjectCondition {
    Ready,
    Reconciling,
    Stalled,
    Paused,
    Unknown,
}

impl ObjectCondition {
    pub const ALL: [ObjectCondition; 5] = [
        ObjectCondition::Ready,
        ObjectCondition::Reconciling,
        ObjectCondition::Stalled,
        ObjectCondition::Paused,
        ObjectCondition::Unknown,
    ];

    /// The `condition` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectCondition::Ready => "Ready",
            ObjectCondition::Reconciling => "Reconciling",
            ObjectCondition::Stalled => "Stalled",
            ObjectCondition::Paused => "Paused",
            ObjectCondition::Unknown => "Unknown",
        }
    }

    /// Where `object` is counted.
    pub fn of(object: &AuthedApi) -> Self {
        let Some(object_status) = &object.status else {
            return ObjectCondition::Unknown;
        };
        let conditions = object_status.conditions.as_slice();
        let generation = object.metadata.generation;
        let holds = |type_: &str| {
            conditions
                .iter()
                .any(|c| c.type_ == type_ && c.status == "True")
        };
        if status::is_paused(conditions) {
            ObjectCondition::Paused
        } else if generation.is_some() && object_status.observed_generation != generation {
            ObjectCondition::Reconciling
        } else if holds(status::STALLED) {
            ObjectCondition::Stalled
        } else if holds(status::RECONCILING) {
            ObjectCondition::Reconciling
        } else if status::is_ready(conditions, generation.unwrap_or_default()) {
            ObjectCondition::Ready
        } else {
            ObjectCondition::Unknown
        }
    }
}

/// How many of `objects` are in each account (by status) under each condition (only the
/// pairs that hold some).
pub fn count_by_account<'a>(
    objects: impl IntoIterator<Item = &'a AuthedApi>,
) -> std::collections::BTreeMap<(String, &'static str), i64> {
    let mut counts = std::collections::BTreeMap::new();
    for object in objects {
        let account = object
            .status
            .as_ref()
            .and_then(|s| s.account_id.clone())
            .unwrap_or_default();
        *counts
            .entry((account, ObjectCondition::of(object).as_str()))
            .or_default() += 1;
    }
    counts
}

/// How many of `objects` are under each condition (every condition, zeros included).
pub fn count_by_condition<'a>(
    objects: impl IntoIterator<Item = &'a AuthedApi>,
) -> [(ObjectCondition, i64); 5] {
    let mut counts = ObjectCondition::ALL.map(|c| (c, 0));
    for object in objects {
        let condition = ObjectCondition::of(object);
        if let Some((_, n)) = counts.iter_mut().find(|(c, _)| *c == condition) {
            *n += 1;
        }
    }
    counts
}

impl Metrics {
    /// Count one finished reconcile.
    pub fn reconciled(&self, duration: Duration, error_reason: Option<&str>) {
        self.reconcile_duration.observe(duration.as_secs_f64());
        let result = if error_reason.is_some() {
            "error"
        } else {
            "ok"
        };
        self.reconciles
            .get_or_create(&ResultLabels { result })
            .inc();
        if let Some(reason) = error_reason {
            self.reconcile_errors
                .get_or_create(&ReasonLabels {
                    reason: reason.to_owned(),
                })
                .inc();
        }
    }

    /// Count one status write.
    pub fn status_written(&self) {
        self.status_writes.inc();
    }

    /// Count the objects of `store` by condition at every scrape from now on.
    pub fn count_objects_in(&self, store: Store<AuthedApi>) {
        // Set once, by the controller; a second call keeps the first store.
        let _ = self.store.set(store);
    }

    /// Set the `authedapi_objects` gauges.
    pub fn set_objects(&self, counts: &[(ObjectCondition, i64)]) {
        for (condition, n) in counts {
            self.objects
                .get_or_create(&ConditionLabels {
                    condition: condition.as_str(),
                })
                .set(*n);
        }
    }

    fn aws_throttled(&self, service: &str, operation: &str, code: &str, account: &str) {
        self.aws_throttles
            .get_or_create(&ThrottleLabels {
                service: service.to_owned(),
                operation: operation.to_owned(),
                code: code.to_owned(),
                account: account.to_owned(),
            })
            .inc();
    }

    /// The drift-check period of `account`'s objects now.
    pub fn resync_period(&self, account: &str, period: Duration) {
        self.resync_period
            .get_or_create(&AccountLabels {
                account: account.to_owned(),
            })
            .set(period.as_secs_f64());
    }

    /// Record that a request attempt to `service` in `account` waited `wait` for the rate
    /// limiter.
    pub fn limiter_waited(&self, service: &str, account: &str, wait: Duration) {
        self.limiter_wait
            .get_or_create(&ServiceLabels {
                service: service.to_owned(),
                account: account.to_owned(),
            })
            .observe(wait.as_secs_f64());
    }

    fn aws_request(&self, service: &str, operation: &str, outcome: &'static str, account: &str) {
        self.aws_requests
            .get_or_create(&AwsLabels {
                service: service.to_owned(),
                operation: operation.to_owned(),
                kind: kind_of_operation(operation),
                outcome,
                account: account.to_owned(),
            })
            .inc();
    }

    /// The metrics in Prometheus text format.
    pub fn encode(&self) -> String {
        if let Some(store) = self.store.get() {
            // A pass over the cache's Arcs at each scrape: no timer, never stale.
            let objects = store.state();
            self.set_objects(&count_by_condition(objects.iter().map(|o| o.as_ref())));
            // Rebuilt at each scrape: an account without objects has no series.
            self.account_objects.clear();
            for ((account, condition), n) in count_by_account(objects.iter().map(|o| o.as_ref())) {
                self.account_objects
                    .get_or_create(&AccountConditionLabels { account, condition })
                    .set(n);
            }
        }
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

/// "read" for calls that only look, "write" for calls that change something.
pub fn kind_of_operation(operation: &str) -> &'static str {
    if ["Get", "List", "Describe"]
        .iter()
        .any(|prefix| operation.starts_with(prefix))
    {
        "read"
    } else {
        "write"
    }
}

/// The AWS error code of an error response: the `x-amzn-ErrorType` header (restJson1,
/// awsJson), else the body's `__type` or `code` (JSON) or `<Code>` (awsQuery's XML).
/// Namespaces (`aws.protocols#`) and suffixes (`:http://...`) are cut off.
pub fn error_code(error_type_header: Option<&str>, body: &[u8]) -> Option<String> {
    let clean = |code: &str| {
        let code = code.rsplit('#').next().unwrap_or(code);
        let code = code.split(':').next().unwrap_or(code).trim();
        (!code.is_empty()).then(|| code.to_owned())
    };
    if let Some(code) = error_type_header.and_then(clean) {
        return Some(code);
    }
    let text = std::str::from_utf8(body).ok()?.trim_start();
    if text.starts_with('{') {
        let json: serde_json::Value = serde_json::from_str(text).ok()?;
        return ["__type", "code", "Code"]
            .iter()
            .find_map(|key| json.get(key)?.as_str())
            .and_then(clean);
    }
    let start = text.find("<Code>")? + "<Code>".len();
    let end = start + text[start..].find("</Code>")?;
    clean(&text[start..end])
}

/// The AWS error code when `response` says AWS throttled the request ("unknown" for a 429
/// without a code); `None` for any other response.
fn throttle_code(response: &HttpResponse) -> Option<String> {
    let status = response.status().as_u16();
    if status < 400 {
        return None;
    }
    let body = response.body().bytes().unwrap_or_default();
    let code = error_code(response.headers().get("x-amzn-errortype"), body);
    (kind_of(code.as_deref().unwrap_or_default(), status) == ErrorKind::Throttled)
        .then(|| code.unwrap_or_else(|| "unknown".to_owned()))
}

/// Counts every AWS request attempt (and the throttled ones), and marks when each attempt
/// is handed to the HTTP client, for [`TimeLimiterWait`]. Added to every service client
/// the operator builds.
#[derive(Clone, Debug)]
pub struct CountAwsRequests {
    metrics: Arc<Metrics>,
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Metrics")
    }
}

/// When an attempt was handed to the HTTP client, and to which service: a request
/// extension, read where the rate limiter lets the request go.
#[derive(Clone, Debug)]
struct HandedOver {
    service: String,
    account: String,
    at: Instant,
}

/// The account a client acts in, put in each request's config bag by [`InAccount`].
#[derive(Clone, Debug)]
pub struct AccountLabel(pub String);

impl aws_smithy_types::config_bag::Storable for AccountLabel {
    type Storer = aws_smithy_types::config_bag::StoreReplace<Self>;
}

/// Labels every request of one account's clients with that account, for the metrics.
#[derive(Debug)]
pub struct InAccount(pub String);

impl Intercept for InAccount {
    fn name(&self) -> &'static str {
        "InAccount"
    }

    fn read_before_execution(
        &self,
        _context: &aws_smithy_runtime_api::client::interceptors::context::BeforeSerializationInterceptorContextRef<'_>,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        cfg.interceptor_state()
            .store_put(AccountLabel(self.0.clone()));
        Ok(())
    }
}

fn account_of(cfg: &ConfigBag) -> String {
    cfg.load::<AccountLabel>()
        .map(|a| a.0.clone())
        .unwrap_or_default()
}

/// The HTTP client below the rate limiter (the SDK config's): for each request the
/// limiter lets through, it records how long the request waited since
/// [`CountAwsRequests`] handed it over. Requests to services without a limit wait
/// about 0.
#[derive(Clone)]
pub struct TimeLimiterWait {
    inner: SharedHttpClient,
    metrics: Arc<Metrics>,
}

impl TimeLimiterWait {
    pub fn new(inner: SharedHttpClient, metrics: Arc<Metrics>) -> Self {
        Self { inner, metrics }
    }
}

impl fmt::Debug for TimeLimiterWait {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TimeLimiterWait")
    }
}

impl HttpClient for TimeLimiterWait {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(TimeLimiterWaitConnector {
            inner: self.inner.http_connector(settings, components),
            metrics: self.metrics.clone(),
        })
    }
}

struct TimeLimiterWaitConnector {
    inner: SharedHttpConnector,
    metrics: Arc<Metrics>,
}

impl fmt::Debug for TimeLimiterWaitConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TimeLimiterWaitConnector")
    }
}

impl HttpConnector for TimeLimiterWaitConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        if let Some(handed) = request.extension::<HandedOver>() {
            self.metrics
                .limiter_waited(&handed.service, &handed.account, handed.at.elapsed());
        }
        self.inner.call(request)
    }
}

impl CountAwsRequests {
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Self { metrics }
    }
}

impl Intercept for CountAwsRequests {
    fn name(&self) -> &'static str {
        "CountAwsRequests"
    }

    fn modify_before_transmit(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(metadata) = cfg.load::<Metadata>() {
            let handed = HandedOver {
                service: metadata.service().to_owned(),
                account: account_of(cfg),
                at: Instant::now(),
            };
            context.request_mut().add_extension(handed);
        }
        Ok(())
    }

    fn read_after_attempt(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(metadata) = cfg.load::<Metadata>() {
            let outcome = match context.response().map(|r| r.status().as_u16()) {
                Some(200..=299) => "2xx",
                Some(400..=499) => "4xx",
                Some(500..=599) => "5xx",
                Some(_) => "other",
                None => "error",
            };
            let account = account_of(cfg);
            self.metrics
                .aws_request(metadata.service(), metadata.name(), outcome, &account);
            if let Some(code) = context.response().and_then(throttle_code) {
                self.metrics
                    .aws_throttled(metadata.service(), metadata.name(), &code, &account);
            }
        }
        Ok(())
    }
}

/// Serve `/metrics`, `/healthz` and `/readyz` on `addr` until the process ends.
pub async fn serve(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    readiness: Arc<Readiness>,
) -> std::io::Result<()> {
    let app = Router::new()
        .route("/metrics", get(metrics_text))
        .with_state(metrics)
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz).with_state(readiness));
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(addr = %listener.local_addr()?, "serving metrics and probes");
    axum::serve(listener, app).await
}

/// The content type of what [`Metrics::encode`] writes: prometheus-client writes
/// OpenMetrics text, whose counter families are named without `_total` (a scraper that
/// took it for the older text format would lose every counter's TYPE and HELP).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

async fn metrics_text(
    State(metrics): State<Arc<Metrics>>,
) -> ([(axum::http::header::HeaderName, &'static str); 1], String) {
    (
        [(axum::http::header::CONTENT_TYPE, CONTENT_TYPE)],
        metrics.encode(),
    )
}

async fn readyz(State(readiness): State<Arc<Readiness>>) -> (StatusCode, &'static str) {
    if readiness.is_ready() {
        (StatusCode::OK, "ok")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "starting")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_writes_are_told_apart() {
        for read in [
            "GetApi",
            "GetRoutes",
            "ListIdentityPools",
            "DescribeIdentityPool",
        ] {
            assert_eq!(kind_of_operation(read), "read", "{read}");
        }
        for write in [
            "CreateApi",
            "UpdateRoute",
            "PutRolePolicy",
            "SetIdentityPoolRoles",
            "TagResource",
        ] {
            assert_eq!(kind_of_operation(write), "write", "{write}");
        }
    }

    #[test]
    fn metrics_render_in_prometheus_text() {
        let metrics = Metrics::default();
        metrics.reconciled(Duration::from_millis(20), None);
        metrics.reconciled(Duration::from_millis(20), Some("AccessDenied"));
        metrics.aws_request("ApiGatewayV2", "CreateApi", "2xx", "123456789012");
        let text = metrics.encode();
        assert!(
            text.contains(r#"authedapi_reconciles_total{result="ok"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"authedapi_reconcile_errors_total{reason="AccessDenied"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"authedapi_aws_requests_total{service="ApiGatewayV2",operation="CreateApi",kind="write",outcome="2xx",account="123456789012"} 1"#),
            "{text}"
        );
    }

    /// The seed example with `generation` and `status` (JSON).
    fn object(generation: i64, status: serde_json::Value) -> AuthedApi {
        let mut object: serde_json::Value =
            serde_yaml::from_str(include_str!("../examples/authedapi.yaml")).unwrap();
        object["metadata"]["generation"] = generation.into();
        if !status.is_null() {
            object["status"] = status;
        }
        serde_json::from_value(object).unwrap()
    }

    fn condition(type_: &str, status: &str, generation: i64) -> serde_json::Value {
        serde_json::json!({
            "type": type_, "status": status, "reason": "R", "message": "m",
            "observedGeneration": generation,
            "lastTransitionTime": "2026-01-01T00:00:00Z",
        })
    }

    #[test]
    fn objects_are_counted_under_one_condition_each() {
        use ObjectCondition::*;
        let with = |generation, observed, conditions: Vec<serde_json::Value>| {
            object(
                generation,
                serde_json::json!({"observedGeneration": observed, "conditions": conditions}),
            )
        };
        let cases = [
            (object(1, serde_json::Value::Null), Unknown),
            (with(2, 2, vec![condition("Ready", "True", 2)]), Ready),
            // A spec the operator has not seen yet is work due, whatever it said before.
            (with(3, 2, vec![condition("Ready", "True", 2)]), Reconciling),
            (
                with(3, 2, vec![condition("Stalled", "True", 2)]),
                Reconciling,
            ),
            (
                with(
                    2,
                    2,
                    vec![
                        condition("Ready", "False", 2),
                        condition("Reconciling", "True", 2),
                    ],
                ),
                Reconciling,
            ),
            (
                with(
                    2,
                    2,
                    vec![
                        condition("Ready", "False", 2),
                        condition("Stalled", "True", 2),
                    ],
                ),
                Stalled,
            ),
            // Paused wins, even over a newer generation (a paused object is not reconciled).
            (
                with(
                    4,
                    2,
                    vec![
                        condition("Ready", "True", 2),
                        condition("Paused", "True", 4),
                    ],
                ),
                Paused,
            ),
            (
                with(
                    2,
                    2,
                    vec![
                        condition("Ready", "True", 2),
                        condition("Paused", "False", 2),
                    ],
                ),
                Ready,
            ),
            // Observe-only with changes pending: not Ready, nothing under way, nothing wrong.
            (with(2, 2, vec![condition("Ready", "False", 2)]), Unknown),
        ];
        for (object, expected) in &cases {
            assert_eq!(
                ObjectCondition::of(object),
                *expected,
                "{:?}",
                object.status
            );
        }
        let by_account = count_by_account(cases.iter().map(|(o, _)| o));
        assert_eq!(
            by_account.values().sum::<i64>(),
            cases.len() as i64,
            "every object counted once: {by_account:?}"
        );
        let counts = count_by_condition(cases.iter().map(|(o, _)| o));
        assert_eq!(
            counts,
            [
                (Ready, 2),
                (Reconciling, 3),
                (Stalled, 1),
                (Paused, 1),
                (Unknown, 2)
            ]
        );
        assert_eq!(
            count_by_condition([]),
            ObjectCondition::ALL.map(|c| (c, 0)),
            "every condition, zeros included"
        );

        let metrics = Metrics::default();
        let text = metrics.encode();
        assert!(
            text.contains(r#"authedapi_objects{condition="Stalled"} 0"#),
            "{text}"
        );
        assert!(
            text.contains(r#"authedapi_reconcile_errors_total{reason="AccessDenied"} 0"#),
            "{text}"
        );
        metrics.set_objects(&counts);
        let text = metrics.encode();
        assert!(
            text.contains(r#"authedapi_objects{condition="Reconciling"} 3"#),
            "{text}"
        );
        assert!(
            text.contains(r#"authedapi_objects{condition="Unknown"} 2"#),
            "{text}"
        );
    }

    #[test]
    fn error_codes_are_read_from_each_protocol() {
        // restJson1 (API Gateway, Lambda): the header.
        assert_eq!(
            error_code(
                Some("TooManyRequestsException:http://internal.amazon.com/coral/"),
                b"{}"
            )
            .as_deref(),
            Some("TooManyRequestsException")
        );
        // awsJson1.1 (Cognito Identity): the body's __type, with a namespace.
        assert_eq!(
            error_code(
                None,
                br#"{"__type":"com.amazonaws.cognito.identity#TooManyRequestsException","message":"Rate exceeded"}"#
            )
            .as_deref(),
            Some("TooManyRequestsException")
        );
        assert_eq!(
            error_code(None, br#"{"code":"ThrottlingException"}"#).as_deref(),
            Some("ThrottlingException")
        );
        // awsQuery (IAM, STS): XML.
        let xml = br#"<ErrorResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/">
  <Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error>
  <RequestId>1</RequestId></ErrorResponse>"#;
        assert_eq!(error_code(None, xml).as_deref(), Some("Throttling"));
        assert_eq!(error_code(None, b"").as_deref(), None);
        assert_eq!(error_code(None, b"Service Unavailable").as_deref(), None);
        assert_eq!(error_code(Some(""), b"{}").as_deref(), None);
    }

    fn response(status: u16, header: Option<&str>, body: &str) -> HttpResponse {
        let mut response = HttpResponse::new(
            status.try_into().unwrap(),
            aws_smithy_types::body::SdkBody::from(body),
        );
        if let Some(header) = header {
            response
                .headers_mut()
                .insert("x-amzn-ErrorType", header.to_owned());
        }
        response
    }

    #[test]
    fn throttled_responses_are_told_from_other_errors() {
        let throttled = [
            (
                response(429, Some("TooManyRequestsException"), "{}"),
                "TooManyRequestsException",
            ),
            (
                response(400, None, "<Error><Code>Throttling</Code></Error>"),
                "Throttling",
            ),
            (
                response(400, None, r#"{"__type":"ThrottlingException"}"#),
                "ThrottlingException",
            ),
            (response(429, None, ""), "unknown"),
        ];
        for (response, code) in &throttled {
            assert_eq!(throttle_code(response).as_deref(), Some(*code));
        }
        for response in [
            response(200, None, r#"{"__type":"ThrottlingException"}"#),
            response(403, Some("AccessDeniedException"), "{}"),
            response(400, None, "<Error><Code>NoSuchEntity</Code></Error>"),
            response(503, None, ""),
        ] {
            assert_eq!(throttle_code(&response), None);
        }
    }

    #[derive(Debug)]
    struct Answers200;

    impl HttpConnector for Answers200 {
        fn call(&self, _request: HttpRequest) -> HttpConnectorFuture {
            HttpConnectorFuture::ready(Ok(response(200, None, "")))
        }
    }

    #[tokio::test]
    async fn the_wait_from_hand_over_to_the_client_below_the_limiter_is_recorded() {
        let metrics = Arc::new(Metrics::default());
        let connector = TimeLimiterWaitConnector {
            inner: SharedHttpConnector::new(Answers200),
            metrics: metrics.clone(),
        };
        let mut request = HttpRequest::empty();
        request.add_extension(HandedOver {
            service: "ApiGatewayV2".into(),
            account: "123456789012".into(),
            at: Instant::now() - Duration::from_millis(300),
        });
        connector.call(request).await.unwrap();
        // A request nobody handed over (no extension) is not recorded.
        connector.call(HttpRequest::empty()).await.unwrap();
        let text = metrics.encode();
        assert!(
            text.contains(r#"authedapi_aws_limiter_wait_seconds_count{service="ApiGatewayV2",account="123456789012"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(
                r#"authedapi_aws_limiter_wait_seconds_bucket{le="0.25",service="ApiGatewayV2",account="123456789012"} 0"#
            ),
            "{text}"
        );
        assert!(
            text.contains(
                r#"authedapi_aws_limiter_wait_seconds_bucket{le="0.5",service="ApiGatewayV2",account="123456789012"} 1"#
            ),
            "{text}"
        );
    }
}
