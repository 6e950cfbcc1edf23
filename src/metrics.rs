//! Prometheus metrics, the AWS request counter (an SDK interceptor, so every call of every
//! service is counted in one place), and the `/metrics`, `/healthz`, `/readyz` server.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::FinalizerInterceptorContextRef;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AwsLabels {
    service: String,
    operation: String,
    /// "read" for Get/List/Describe calls, "write" for everything else.
    kind: &'static str,
    /// HTTP status class of the attempt ("2xx", "4xx", "5xx") or "error" without one.
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: String,
}

/// Every metric the operator exports.
pub struct Metrics {
    registry: Registry,
    reconciles: Family<ResultLabels, Counter>,
    reconcile_errors: Family<ReasonLabels, Counter>,
    reconcile_duration: Histogram,
    aws_requests: Family<AwsLabels, Counter>,
    status_writes: Counter,
    ready: AtomicBool,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("authedapi");
        let reconciles = Family::<ResultLabels, Counter>::default();
        let reconcile_errors = Family::<ReasonLabels, Counter>::default();
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
        let status_writes = Counter::default();
        registry.register(
            "status_writes",
            "Status writes (each one a point a crash test stops before)",
            status_writes.clone(),
        );
        Self {
            registry,
            reconciles,
            reconcile_errors,
            reconcile_duration,
            aws_requests,
            status_writes,
            ready: AtomicBool::new(false),
        }
    }
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

    fn aws_request(&self, service: &str, operation: &str, outcome: &'static str) {
        self.aws_requests
            .get_or_create(&AwsLabels {
                service: service.to_owned(),
                operation: operation.to_owned(),
                kind: kind_of_operation(operation),
                outcome,
            })
            .inc();
    }

    /// Mark the operator ready (its caches are filled) for `/readyz`.
    pub fn set_ready(&self) {
        self.ready.store(true, Ordering::Relaxed);
    }

    /// The metrics in Prometheus text format.
    pub fn encode(&self) -> String {
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

/// Counts every AWS request attempt. Added to every service client the operator builds.
#[derive(Clone, Debug)]
pub struct CountAwsRequests {
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
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
            self.metrics
                .aws_request(metadata.service(), metadata.name(), outcome);
        }
        Ok(())
    }
}

/// Serve `/metrics`, `/healthz` and `/readyz` on `addr` until the process ends.
pub async fn serve(addr: SocketAddr, metrics: Arc<Metrics>) -> std::io::Result<()> {
    let app = Router::new()
        .route("/metrics", get(metrics_text))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .with_state(metrics);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(addr = %listener.local_addr()?, "serving metrics and probes");
    axum::serve(listener, app).await
}

async fn metrics_text(State(metrics): State<Arc<Metrics>>) -> String {
    metrics.encode()
}

async fn readyz(State(metrics): State<Arc<Metrics>>) -> (StatusCode, &'static str) {
    if metrics.ready.load(Ordering::Relaxed) {
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
        metrics.aws_request("ApiGatewayV2", "CreateApi", "2xx");
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
            text.contains(r#"authedapi_aws_requests_total{service="ApiGatewayV2",operation="CreateApi",kind="write",outcome="2xx"} 1"#),
            "{text}"
        );
    }
}
