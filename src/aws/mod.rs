//! AWS, one module per service. Each wraps the SDK client for the calls the operator
//! makes, returns plain types, and turns every failure into an [`AwsError`] whose kind
//! says whether to retry or to stall.

/// The SDK client of crate `$sdk` for one service: the shared configuration, every
/// interceptor, and the service's own retry partition. (Each SDK crate has its own config
/// builder type and no common trait, hence a macro.)
macro_rules! sdk_client {
    ($sdk:ident, $config:expr, $interceptors:expr, $service:literal, $account:expr) => {{
        let mut builder = $sdk::config::Builder::from($config);
        for interceptor in $interceptors {
            builder.push_interceptor(interceptor.clone());
        }
        builder.set_retry_partition(Some($crate::aws::retry_partition($service, $account)));
        $sdk::Client::from_conf(builder.build())
    }};
}

pub mod apigateway;
pub mod budget;
pub mod cognito;
pub mod domains;
pub mod error;
pub mod iam;
pub mod lambda;
pub mod provider;
pub mod ratelimit;
pub mod sts;
pub mod vpc_links;

pub use apigateway::ApiGatewayApi;
pub use aws_smithy_runtime_api::client::interceptors::SharedInterceptor;
pub use cognito::CognitoApi;
pub use domains::DomainsApi;
pub use error::{AwsError, AwsResult, ErrorKind};
pub use iam::IamApi;
pub use lambda::LambdaApi;
pub use vpc_links::VpcLinksApi;

use std::sync::Arc;

/// The SDK's retry quota for one service in one account (the SDK keeps one token bucket
/// per partition name, process-wide: a shared name would let one account's outage drain
/// every account's retries). Retries of throttling errors cost no
/// quota: the client-side rate limits and exponential backoff already pace them, and a
/// sustained throttle must not turn into failed reconciles. Other retries (5xx, timeouts)
/// cost quota as usual, which refills over time, so an outage is not amplified.
pub fn retry_partition(
    service: &str,
    account: &str,
) -> aws_smithy_runtime::client::retries::RetryPartition {
    use aws_smithy_runtime::client::retries::{RetryPartition, TokenBucket};
    RetryPartition::custom(format!("authedapi-{service}-{account}"))
        .token_bucket(
            TokenBucket::builder()
                .throttling_retry_cost(0)
                .refill_rate(10.0)
                .build(),
        )
        .build()
}

/// Tags as the SDK hands them back (a HashMap, maybe absent), ordered.
pub(crate) fn tag_map(
    tags: Option<&std::collections::HashMap<String, String>>,
) -> std::collections::BTreeMap<String, String> {
    tags.map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default()
}

/// Every item of a paginated list call. `page(token)` fetches one page and returns its
/// items and the token of the next page (None on the last).
pub(crate) async fn all_pages<T, Page, Fut>(mut page: Page) -> AwsResult<Vec<T>>
where
    Page: FnMut(Option<String>) -> Fut,
    Fut: std::future::Future<Output = AwsResult<(Vec<T>, Option<String>)>>,
{
    let mut found = Vec::new();
    let mut token = None;
    loop {
        let (items, next) = page(token).await?;
        found.extend(items);
        match next {
            Some(next) if !next.is_empty() => token = Some(next),
            _ => return Ok(found),
        }
    }
}

/// A client for every service the operator uses, sharing one SDK configuration. Each is a
/// trait object, so reconcile logic runs the same against AWS and against the in-memory
/// fake of its unit tests.
#[derive(Clone)]
pub struct AwsClients {
    pub apigateway: Arc<dyn ApiGatewayApi>,
    /// API Gateway's custom domains (the same service and rate limit as `apigateway`).
    pub domains: Arc<dyn DomainsApi>,
    /// API Gateway's VPC links (the same service and rate limit as `apigateway`).
    pub vpc_links: Arc<dyn VpcLinksApi>,
    pub cognito: Arc<dyn CognitoApi>,
    pub iam: Arc<dyn IamApi>,
    pub lambda: Arc<dyn LambdaApi>,
    pub sts: sts::Sts,
}

impl AwsClients {
    /// Clients for every service, without client-side rate limits; each request passes
    /// through `interceptors` (metrics, test hooks).
    pub fn new(config: &aws_types::SdkConfig, interceptors: &[SharedInterceptor]) -> Self {
        Self::with_limits(config, interceptors, &ratelimit::Limits::none())
    }

    /// Clients whose requests also wait for `limits` (one new token bucket per service).
    pub fn with_limits(
        config: &aws_types::SdkConfig,
        interceptors: &[SharedInterceptor],
        limits: &ratelimit::Limits,
    ) -> Self {
        Self::with_limiters(
            config,
            interceptors,
            &ratelimit::Limiters::new(limits, None),
            "",
        )
    }

    /// Clients acting in `account` whose requests also wait for `limiters` (shared with
    /// other clients of the same account and region).
    pub fn with_limiters(
        config: &aws_types::SdkConfig,
        interceptors: &[SharedInterceptor],
        limiters: &ratelimit::Limiters,
        account: &str,
    ) -> Self {
        let http = config
            .http_client()
            .unwrap_or_else(ratelimit::default_http_client);
        let for_service = |service: &str| match limiters.of(service) {
            Some(bucket) => config
                .to_builder()
                .http_client(ratelimit::RateLimitedClient::new(http.clone(), bucket))
                .build(),
            None => config.clone(),
        };
        let apigateway = Arc::new(apigateway::ApiGateway::new(
            &for_service("apigateway"),
            interceptors,
            account,
        ));
        Self {
            apigateway: apigateway.clone(),
            domains: apigateway.clone(),
            vpc_links: apigateway,
            cognito: Arc::new(cognito::Cognito::new(
                &for_service("cognito-identity"),
                interceptors,
                account,
            )),
            iam: Arc::new(iam::Iam::new(&for_service("iam"), interceptors, account)),
            lambda: Arc::new(lambda::Lambda::new(
                &for_service("lambda"),
                interceptors,
                account,
            )),
            sts: sts::Sts::new(&for_service("sts"), interceptors, account),
        }
    }
}
#[cfg(test)]
pub mod fake;
