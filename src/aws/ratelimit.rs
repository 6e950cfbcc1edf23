//! Client-side rate limits per AWS service, so the operator alone never drives an account
//! into throttling (API Gateway's management calls, for one, are capped at 10 requests per
//! second per account and region, burst 40). Every request attempt, retries included,
//! waits for a token in the HTTP client, below every SDK client: one place, all calls.

use std::collections::BTreeMap;
use std::fmt;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

use super::budget::Bucket;

/// A limit: `per_second` sustained, `burst` at once.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Limit {
    pub per_second: f64,
    pub burst: u32,
}

/// Limits by service name ("apigateway", "cognito-identity", "iam", "lambda", "sts").
#[derive(Clone, Debug, PartialEq)]
pub struct Limits(pub BTreeMap<String, Limit>);

impl Limits {
    /// No client-side limit on any service.
    pub fn none() -> Self {
        Self(BTreeMap::new())
    }
}

impl Default for Limits {
    /// API Gateway's fixed account quota for management calls: 10 rps, burst 40.
    fn default() -> Self {
        Self(BTreeMap::from([(
            "apigateway".to_owned(),
            Limit {
                per_second: 10.0,
                burst: 40,
            },
        )]))
    }
}

/// One token bucket per service, shared by every client of one account and region.
#[derive(Clone, Default)]
pub struct Limiters(BTreeMap<String, Bucket>);

impl Limiters {
    /// A new bucket for each of `limits`; API Gateway's gives drift-check reads at most
    /// `drift_share` of it (see [`super::budget`]).
    pub fn new(limits: &Limits, drift_share: Option<f64>) -> Self {
        Self(
            limits
                .0
                .iter()
                .map(|(service, limit)| {
                    let share = drift_share.filter(|_| service == "apigateway");
                    (service.clone(), Bucket::new(*limit, share))
                })
                .collect(),
        )
    }

    /// The bucket of `service`, if it is limited.
    pub fn of(&self, service: &str) -> Option<Bucket> {
        self.0.get(service).cloned()
    }
}

/// Parse "apigateway=10:40" (rate per second, optional burst; burst defaults to the rate).
pub fn parse_limit(text: &str) -> Result<(String, Limit), String> {
    let (service, spec) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?}: expected SERVICE=RATE[:BURST], e.g. apigateway=10:40"))?;
    let (rate, burst) = match spec.split_once(':') {
        Some((rate, burst)) => (rate, Some(burst)),
        None => (spec, None),
    };
    let per_second: f64 = rate
        .parse()
        .ok()
        .filter(|r: &f64| *r > 0.0 && r.is_finite())
        .ok_or_else(|| format!("{text:?}: the rate must be a positive number"))?;
    let burst = match burst {
        Some(b) => b
            .parse()
            .ok()
            .filter(|b| *b > 0)
            .ok_or_else(|| format!("{text:?}: the burst must be a positive integer"))?,
        None => per_second.ceil() as u32,
    };
    Ok((service.trim().to_owned(), Limit { per_second, burst }))
}

/// A token bucket for one service.
pub fn limiter(limit: Limit) -> Arc<DefaultDirectRateLimiter> {
    let period = Duration::from_secs_f64(1.0 / limit.per_second);
    let quota = Quota::with_period(period)
        .expect("a positive rate")
        .allow_burst(NonZeroU32::new(limit.burst).unwrap_or(NonZeroU32::MIN));
    Arc::new(RateLimiter::direct(quota))
}

/// The default HTTPS client of the AWS SDK (rustls, aws-lc).
pub fn default_http_client() -> SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
            aws_smithy_http_client::tls::rustls_provider::CryptoMode::AwsLc,
        ))
        .build_https()
}

/// An HTTP client that waits for a token before each request.
#[derive(Clone)]
pub struct RateLimitedClient {
    inner: SharedHttpClient,
    bucket: Bucket,
}

impl RateLimitedClient {
    pub fn new(inner: SharedHttpClient, bucket: Bucket) -> Self {
        Self { inner, bucket }
    }
}

impl fmt::Debug for RateLimitedClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RateLimitedClient")
    }
}

impl HttpClient for RateLimitedClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(RateLimitedConnector {
            inner: self.inner.http_connector(settings, components),
            bucket: self.bucket.clone(),
        })
    }
}

struct RateLimitedConnector {
    inner: SharedHttpConnector,
    bucket: Bucket,
}

impl fmt::Debug for RateLimitedConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RateLimitedConnector")
    }
}

impl HttpConnector for RateLimitedConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let inner = self.inner.clone();
        let bucket = self.bucket.clone();
        // API Gateway's reads are GETs (the other services' calls are all POSTs: changes).
        let read = request.method() == "GET";
        HttpConnectorFuture::new(async move {
            bucket.wait(read).await;
            inner.call(request).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn parses_limits() {
        assert_eq!(
            parse_limit("apigateway=10:40"),
            Ok((
                "apigateway".into(),
                Limit {
                    per_second: 10.0,
                    burst: 40
                }
            ))
        );
        assert_eq!(
            parse_limit("iam=2.5"),
            Ok((
                "iam".into(),
                Limit {
                    per_second: 2.5,
                    burst: 3
                }
            ))
        );
        assert!(parse_limit("iam").is_err());
        assert!(parse_limit("iam=0").is_err());
        assert!(parse_limit("iam=5:0").is_err());
        assert!(parse_limit("iam=x:1").is_err());
    }

    #[tokio::test]
    async fn the_bucket_allows_the_burst_then_the_rate() {
        let bucket = limiter(Limit {
            per_second: 20.0,
            burst: 5,
        });
        let start = Instant::now();
        for _ in 0..5 {
            bucket.until_ready().await;
        }
        assert!(
            start.elapsed() < Duration::from_millis(30),
            "the burst waits for nothing"
        );
        for _ in 0..10 {
            bucket.until_ready().await;
        }
        // 10 more at 20/s take about half a second.
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(400), "{took:?}");
        assert!(took < Duration::from_millis(1500), "{took:?}");
    }
}
