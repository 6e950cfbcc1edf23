//! The fault proxy against the real AWS emulator, through the AWS SDK for Rust: every
//! fault must reach the SDK as the error real AWS would give it.

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use authedapi_rig::fault_proxy::{FORWARDED, RATE_LIMITED, UPSTREAM_ERROR};
use authedapi_rig::{Account, Fault, FaultProxy, Rule, free_port, shared};
use aws_config::retry::RetryConfig;
use aws_sdk_apigatewayv2::types::ProtocolType;
use aws_sdk_sts::config::http::HttpResponse;
use aws_sdk_sts::error::{ProvideErrorMetadata, SdkError};

/// SDK clients of one account whose requests go through one proxy, without SDK retries
/// (so every call is exactly one request).
struct Clients {
    gateway: aws_sdk_apigatewayv2::Client,
    iam: aws_sdk_iam::Client,
    cognito: aws_sdk_cognitoidentity::Client,
    lambda: aws_sdk_lambda::Client,
    sts: aws_sdk_sts::Client,
}

impl Clients {
    async fn new(proxy: &FaultProxy, account: &Account) -> Self {
        let config = proxy
            .sdk_config(account)
            .await
            .to_builder()
            .retry_config(RetryConfig::disabled())
            .build();
        Self {
            gateway: aws_sdk_apigatewayv2::Client::new(&config),
            iam: aws_sdk_iam::Client::new(&config),
            cognito: aws_sdk_cognitoidentity::Client::new(&config),
            lambda: aws_sdk_lambda::Client::new(&config),
            sts: aws_sdk_sts::Client::new(&config),
        }
    }
}

/// A proxy in front of this test binary's emulator, and a fresh account.
fn setup() -> (FaultProxy, Account) {
    let emulator = shared::emulator();
    let proxy = FaultProxy::start(&emulator.endpoint).expect("the fault proxy starts");
    (proxy, shared::account())
}

/// (HTTP status, error code) of a service error; panics on any other kind of error.
fn service_error<E>(error: &SdkError<E, HttpResponse>) -> (u16, String)
where
    E: ProvideErrorMetadata + std::fmt::Debug,
{
    match error {
        SdkError::ServiceError(e) => (
            e.raw().status().as_u16(),
            e.err().code().unwrap_or_default().to_owned(),
        ),
        other => panic!("expected a service error, got {other:?}"),
    }
}

const TRUST_LAMBDA: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;

fn key(service: &str, operation: &str, outcome: &str) -> (String, String, String) {
    (service.to_owned(), operation.to_owned(), outcome.to_owned())
}

#[tokio::test]
async fn requests_pass_through_unchanged_and_are_counted() {
    let (proxy, account) = setup();
    let aws = Clients::new(&proxy, &account).await;

    let created = aws
        .gateway
        .create_api()
        .name("through-the-proxy")
        .protocol_type(ProtocolType::Http)
        .tags("authedapi.dev/owner", "default/through")
        .send()
        .await
        .expect("CreateApi through the proxy");
    let api_id = created.api_id().expect("an api id").to_owned();
    let got = aws
        .gateway
        .get_api()
        .api_id(&api_id)
        .send()
        .await
        .expect("GetApi through the proxy");
    assert_eq!(got.name(), Some("through-the-proxy"));
    assert_eq!(got.protocol_type(), Some(&ProtocolType::Http));
    assert_eq!(
        got.tags().and_then(|t| t.get("authedapi.dev/owner")),
        Some(&"default/through".to_owned()),
        "the request body reached the emulator"
    );

    // The emulator acts in the account the access key names: the signature's headers
    // arrived unchanged.
    let me = aws.sts.get_caller_identity().send().await.expect("STS");
    assert_eq!(me.account(), Some(account.id.as_str()));

    let role = aws
        .iam
        .create_role()
        .role_name("through-the-proxy")
        .assume_role_policy_document(TRUST_LAMBDA)
        .send()
        .await
        .expect("CreateRole through the proxy");
    assert!(
        role.role()
            .expect("a role")
            .arn()
            .contains(&format!(":{}:role/through-the-proxy", account.id))
    );

    let pool = aws
        .cognito
        .create_identity_pool()
        .identity_pool_name("through_the_proxy")
        .allow_unauthenticated_identities(false)
        .send()
        .await
        .expect("CreateIdentityPool through the proxy");
    let described = aws
        .cognito
        .describe_identity_pool()
        .identity_pool_id(pool.identity_pool_id())
        .send()
        .await
        .expect("DescribeIdentityPool through the proxy");
    assert_eq!(described.identity_pool_name(), "through_the_proxy");

    // The emulator's own errors come back unchanged too.
    let missing = aws
        .lambda
        .get_policy()
        .function_name("no-such-function")
        .send()
        .await
        .expect_err("no such function");
    assert_eq!(
        service_error(&missing),
        (404, "ResourceNotFoundException".to_owned())
    );

    let expected: BTreeMap<_, _> = [
        key("apigateway", "CreateApi", FORWARDED),
        key("apigateway", "GetApi", FORWARDED),
        key("sts", "GetCallerIdentity", FORWARDED),
        key("iam", "CreateRole", FORWARDED),
        key("cognito-identity", "CreateIdentityPool", FORWARDED),
        key("cognito-identity", "DescribeIdentityPool", FORWARDED),
        key("lambda", "GetPolicy", FORWARDED),
    ]
    .into_iter()
    .map(|k| (k, 1))
    .collect();
    assert_eq!(proxy.counts(), expected);
    assert_eq!(proxy.forwarded("apigateway", "CreateApi"), 1);
    assert_eq!(proxy.forwarded("apigateway", "GetApi"), 1);
    assert_eq!(proxy.total(), 7);
    proxy.reset_counts();
    assert_eq!(proxy.total(), 0);
    assert!(proxy.counts().is_empty());
}

#[tokio::test]
async fn throttling_reaches_the_sdk_as_each_service_signals_it() {
    let (proxy, account) = setup();
    let aws = Clients::new(&proxy, &account).await;
    proxy.set_rules(vec![
        Rule::new(Fault::Throttle)
            .service("apigateway")
            .operation("CreateApi"),
        Rule::new(Fault::Throttle)
            .service("iam")
            .operation("CreateRole"),
        Rule::new(Fault::Throttle)
            .service("cognito-identity")
            .operation("CreateIdentityPool"),
        Rule::new(Fault::Throttle)
            .service("sts")
            .operation("GetCallerIdentity"),
        Rule::new(Fault::Throttle)
            .service("lambda")
            .operation("GetPolicy"),
    ]);

    let error = aws
        .gateway
        .create_api()
        .name("throttled")
        .protocol_type(ProtocolType::Http)
        .send()
        .await
        .expect_err("CreateApi is throttled");
    assert_eq!(
        service_error(&error),
        (429, "TooManyRequestsException".to_owned())
    );
    assert!(matches!(
        error.into_service_error(),
        aws_sdk_apigatewayv2::operation::create_api::CreateApiError::TooManyRequestsException(_)
    ));

    let error = aws
        .iam
        .create_role()
        .role_name("throttled")
        .assume_role_policy_document(TRUST_LAMBDA)
        .send()
        .await
        .expect_err("CreateRole is throttled");
    assert_eq!(service_error(&error), (400, "Throttling".to_owned()));
    assert_eq!(error.message(), Some("Rate exceeded"));

    let error = aws
        .cognito
        .create_identity_pool()
        .identity_pool_name("throttled")
        .allow_unauthenticated_identities(false)
        .send()
        .await
        .expect_err("CreateIdentityPool is throttled");
    assert_eq!(
        service_error(&error),
        (400, "TooManyRequestsException".to_owned())
    );
    assert!(error.into_service_error().is_too_many_requests_exception());

    let error = aws
        .sts
        .get_caller_identity()
        .send()
        .await
        .expect_err("GetCallerIdentity is throttled");
    assert_eq!(service_error(&error), (400, "Throttling".to_owned()));

    let error = aws
        .lambda
        .get_policy()
        .function_name("anything")
        .send()
        .await
        .expect_err("GetPolicy is throttled");
    assert_eq!(
        service_error(&error),
        (429, "TooManyRequestsException".to_owned())
    );
    assert!(error.into_service_error().is_too_many_requests_exception());

    // Other operations of the same services still pass.
    aws.gateway.get_apis().send().await.expect("GetApis passes");
    aws.iam.list_roles().send().await.expect("ListRoles passes");
    aws.cognito
        .list_identity_pools()
        .max_results(10)
        .send()
        .await
        .expect("ListIdentityPools passes");
    aws.sts
        .get_session_token()
        .send()
        .await
        .expect("GetSessionToken passes");
    aws.lambda
        .list_functions()
        .send()
        .await
        .expect("ListFunctions passes");

    for (service, operation) in [
        ("apigateway", "CreateApi"),
        ("iam", "CreateRole"),
        ("cognito-identity", "CreateIdentityPool"),
        ("sts", "GetCallerIdentity"),
        ("lambda", "GetPolicy"),
    ] {
        assert_eq!(
            proxy.count(service, operation, "throttle"),
            1,
            "{operation}"
        );
        assert_eq!(proxy.forwarded(service, operation), 0, "{operation}");
    }
    for (service, operation) in [
        ("apigateway", "GetApis"),
        ("iam", "ListRoles"),
        ("cognito-identity", "ListIdentityPools"),
        ("sts", "GetSessionToken"),
        ("lambda", "ListFunctions"),
    ] {
        assert_eq!(proxy.forwarded(service, operation), 1, "{operation}");
    }
    assert_eq!(proxy.outcome_total("throttle"), 5);
    assert_eq!(proxy.total(), 10);

    // Without rules, the throttled operations pass again.
    proxy.clear_rules();
    aws.sts
        .get_caller_identity()
        .send()
        .await
        .expect("GetCallerIdentity passes once the rule is gone");
}

#[tokio::test]
async fn access_denied_reaches_the_sdk_in_each_protocol() {
    let (proxy, account) = setup();
    let aws = Clients::new(&proxy, &account).await;
    proxy.set_rules(vec![
        Rule::new(Fault::AccessDenied)
            .service("apigateway")
            .operation("GetApis"),
        Rule::new(Fault::AccessDenied).operation("ListRoles"),
        Rule::new(Fault::AccessDenied)
            .service("cognito-identity")
            .operation("ListIdentityPools"),
        Rule::new(Fault::AccessDenied)
            .service("lambda")
            .operation("ListFunctions"),
    ]);

    let error = aws.gateway.get_apis().send().await.expect_err("denied");
    assert_eq!(
        service_error(&error),
        (403, "AccessDeniedException".to_owned())
    );
    assert_eq!(
        error.message(),
        Some(
            format!(
                "User: arn:aws:iam::{}:user/test is not authorized to perform: apigateway:GetApis",
                account.id
            )
            .as_str()
        )
    );

    let error = aws.iam.list_roles().send().await.expect_err("denied");
    assert_eq!(service_error(&error), (403, "AccessDenied".to_owned()));
    assert!(
        error
            .message()
            .unwrap_or_default()
            .ends_with("iam:ListRoles")
    );

    let error = aws
        .cognito
        .list_identity_pools()
        .max_results(10)
        .send()
        .await
        .expect_err("denied");
    assert_eq!(
        service_error(&error),
        (400, "AccessDeniedException".to_owned())
    );

    let error = aws
        .lambda
        .list_functions()
        .send()
        .await
        .expect_err("denied");
    assert_eq!(
        service_error(&error),
        (403, "AccessDeniedException".to_owned())
    );

    aws.gateway
        .create_api()
        .name("allowed")
        .protocol_type(ProtocolType::Http)
        .send()
        .await
        .expect("CreateApi is not denied");
    assert_eq!(proxy.outcome_total("access_denied"), 4);
    assert_eq!(proxy.forwarded("apigateway", "CreateApi"), 1);
}

#[tokio::test]
async fn status_faults_are_service_errors_and_resets_are_connection_errors() {
    let (proxy, account) = setup();
    let aws = Clients::new(&proxy, &account).await;
    proxy.set_rules(vec![
        Rule::new(Fault::Status(503)).service("apigateway"),
        Rule::new(Fault::Status(500)).service("iam"),
        Rule::new(Fault::Reset)
            .service("sts")
            .operation("GetCallerIdentity"),
    ]);

    let error = aws.gateway.get_apis().send().await.expect_err("503");
    assert_eq!(
        service_error(&error),
        (503, "ServiceUnavailable".to_owned())
    );

    let error = aws.iam.list_roles().send().await.expect_err("500");
    assert_eq!(service_error(&error), (500, "InternalFailure".to_owned()));

    let started = Instant::now();
    let error = aws
        .sts
        .get_caller_identity()
        .send()
        .await
        .expect_err("the connection is reset");
    assert!(
        match &error {
            SdkError::DispatchFailure(failure) => failure.is_io(),
            SdkError::ResponseError(_) => true,
            _ => false,
        },
        "a reset must be a connection error, got {error:?}"
    );
    assert!(error.raw_response().is_none(), "no HTTP response at all");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the reset is immediate"
    );

    assert_eq!(proxy.count("apigateway", "GetApis", "status_503"), 1);
    assert_eq!(proxy.count("iam", "ListRoles", "status_500"), 1);
    assert_eq!(proxy.count("sts", "GetCallerIdentity", "reset"), 1);
    assert_eq!(proxy.outcome_total(FORWARDED), 0);

    // The proxy keeps serving after a reset, on a new connection.
    proxy.clear_rules();
    aws.sts
        .get_caller_identity()
        .send()
        .await
        .expect("STS passes after the reset");
    assert_eq!(proxy.forwarded("sts", "GetCallerIdentity"), 1);
}

/// Run `n` GetCallerIdentity calls; true for each one the proxy throttled.
async fn throttled_pattern(aws: &Clients, n: usize) -> Vec<bool> {
    let mut pattern = Vec::with_capacity(n);
    for _ in 0..n {
        match aws.sts.get_caller_identity().send().await {
            Ok(_) => pattern.push(false),
            Err(error) => {
                assert_eq!(service_error(&error), (400, "Throttling".to_owned()));
                pattern.push(true);
            }
        }
    }
    pattern
}

#[tokio::test]
async fn half_rate_faults_are_random_but_reproducible() {
    let (proxy, account) = setup();
    let aws = Clients::new(&proxy, &account).await;
    proxy.set_rules(vec![
        Rule::new(Fault::Throttle)
            .service("sts")
            .operation("GetCallerIdentity")
            .rate(0.5),
    ]);
    proxy.set_seed(7);
    let first = throttled_pattern(&aws, 200).await;
    let injected = first.iter().filter(|t| **t).count() as u64;
    assert!(
        (60..=140).contains(&injected),
        "{injected} of 200 throttled at rate 0.5"
    );
    assert_eq!(
        proxy.count("sts", "GetCallerIdentity", "throttle"),
        injected
    );
    assert_eq!(proxy.forwarded("sts", "GetCallerIdentity"), 200 - injected);
    assert_eq!(proxy.total(), 200);

    proxy.set_seed(7);
    proxy.reset_counts();
    let second = throttled_pattern(&aws, 200).await;
    assert_eq!(second, first, "the same seed throttles the same requests");

    proxy.set_seed(8);
    let third = throttled_pattern(&aws, 200).await;
    assert_ne!(third, first, "another seed, other requests");
}

#[tokio::test]
async fn rate_limit_throttles_requests_over_the_quota() {
    let (proxy, account) = setup();
    let aws = Clients::new(&proxy, &account).await;
    proxy.set_rate_limit("apigateway", 10.0, 5);

    let mut throttled = 0u64;
    let started = Instant::now();
    for _ in 0..30 {
        match aws.gateway.get_apis().send().await {
            Ok(_) => {}
            Err(error) => {
                assert_eq!(
                    service_error(&error),
                    (429, "TooManyRequestsException".to_owned())
                );
                throttled += 1;
            }
        }
    }
    let forwarded = proxy.forwarded("apigateway", "GetApis");
    let limited = proxy.count("apigateway", "GetApis", RATE_LIMITED);
    assert_eq!(forwarded + limited, 30);
    assert_eq!(limited, throttled, "every refused request reached the SDK");
    let elapsed = started.elapsed();
    // The bucket holds 5 and gains one token per 100ms: no more can have passed.
    let most = 5 + (elapsed.as_secs_f64() * 10.0).floor() as u64;
    assert!(
        (5..=most).contains(&forwarded),
        "{forwarded} forwarded in {elapsed:?}: the burst of 5 and at most {} refilled",
        most - 5
    );
    // Back-to-back calls take well under 300ms (about 70ms here); a machine so loaded
    // that they did not is covered by the bound above.
    if elapsed < Duration::from_millis(300) {
        assert!(forwarded <= 8, "{forwarded} forwarded in {elapsed:?}");
        assert!(limited >= 20, "{limited} throttled in {elapsed:?}");
    }

    // Other services are not limited.
    for _ in 0..10 {
        aws.sts.get_caller_identity().send().await.expect("STS");
    }
    assert_eq!(proxy.forwarded("sts", "GetCallerIdentity"), 10);

    // The bucket refills: after 300ms at 10 rps, about three requests pass again.
    tokio::time::sleep(Duration::from_millis(300)).await;
    aws.gateway.get_apis().send().await.expect("refilled");

    proxy.clear_rate_limit("apigateway");
    for _ in 0..10 {
        aws.gateway.get_apis().send().await.expect("no limit");
    }
}

/// A limit that does not refill: the burst passes, every later request is refused at once
/// (answered, never held until a token would come).
#[tokio::test]
async fn rate_limit_refuses_at_once_and_never_queues() {
    let (proxy, account) = setup();
    let aws = Clients::new(&proxy, &account).await;
    proxy.set_rate_limit("sts", 0.0, 2);
    for _ in 0..2 {
        aws.sts
            .get_caller_identity()
            .send()
            .await
            .expect("the burst");
    }
    let started = Instant::now();
    for _ in 0..5 {
        let error = aws
            .sts
            .get_caller_identity()
            .send()
            .await
            .expect_err("over the limit");
        assert_eq!(service_error(&error), (400, "Throttling".to_owned()));
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "refused requests are answered at once, took {:?}",
        started.elapsed()
    );
    assert_eq!(proxy.forwarded("sts", "GetCallerIdentity"), 2);
    assert_eq!(proxy.count("sts", "GetCallerIdentity", RATE_LIMITED), 5);
    assert_eq!(proxy.total(), 7);
}

#[tokio::test]
async fn delay_adds_latency_then_forwards() {
    let (proxy, account) = setup();
    let aws = Clients::new(&proxy, &account).await;
    let delay = Duration::from_millis(400);
    proxy.set_rules(vec![
        Rule::new(Fault::Delay(delay))
            .service("sts")
            .operation("GetCallerIdentity"),
    ]);
    let started = Instant::now();
    let me = aws
        .sts
        .get_caller_identity()
        .send()
        .await
        .expect("a delayed request still succeeds");
    let elapsed = started.elapsed();
    assert!(elapsed >= delay, "took {elapsed:?}, less than {delay:?}");
    assert_eq!(me.account(), Some(account.id.as_str()));
    assert_eq!(proxy.count("sts", "GetCallerIdentity", "delay"), 1);
    assert_eq!(proxy.forwarded("sts", "GetCallerIdentity"), 0);
}

#[tokio::test]
async fn unreachable_upstream_is_a_bad_gateway() {
    let dead = format!("http://127.0.0.1:{}", free_port().unwrap());
    let proxy = FaultProxy::start(&dead).unwrap();
    let account = Account::new(&dead, "123456789012");
    let aws = Clients::new(&proxy, &account).await;
    let error = aws.sts.get_caller_identity().send().await.expect_err("502");
    assert_eq!(error.raw_response().map(|r| r.status().as_u16()), Some(502));
    assert_eq!(proxy.count("sts", "GetCallerIdentity", UPSTREAM_ERROR), 1);
}

#[tokio::test]
async fn a_dropped_proxy_stops_listening() {
    let (proxy, _) = setup();
    let address = proxy.endpoint().trim_start_matches("http://").to_owned();
    tokio::net::TcpStream::connect(&address)
        .await
        .expect("the proxy listens");
    drop(proxy);
    let deadline = Instant::now() + Duration::from_secs(5);
    while tokio::net::TcpStream::connect(&address).await.is_ok() {
        assert!(Instant::now() < deadline, "still listening after drop");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A detached proxy lives in a `static` and serves one runtime after another.
#[test]
fn a_detached_proxy_outlives_any_one_runtime() {
    static PROXY: OnceLock<FaultProxy> = OnceLock::new();
    let proxy = PROXY.get_or_init(|| {
        FaultProxy::start_detached(&shared::emulator().endpoint).expect("a detached proxy")
    });
    let account = shared::account();
    proxy.set_rules(vec![
        Rule::new(Fault::Throttle)
            .service("sts")
            .operation("GetSessionToken"),
    ]);
    for round in 0..2 {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let aws = Clients::new(proxy, &account).await;
            aws.sts
                .get_caller_identity()
                .send()
                .await
                .unwrap_or_else(|e| panic!("round {round}: {e:?}"));
            let error = aws
                .sts
                .get_session_token()
                .send()
                .await
                .expect_err("throttled");
            assert_eq!(service_error(&error), (400, "Throttling".to_owned()));
        });
        drop(runtime);
    }
    assert_eq!(proxy.forwarded("sts", "GetCallerIdentity"), 2);
    assert_eq!(proxy.count("sts", "GetSessionToken", "throttle"), 2);
}
