//! The rig's data plane runs Lambda REQUEST authorizers as API Gateway does, driven here
//! with the AWS SDK alone (no operator): a request the function allows reaches the
//! integration with the function's context; one it refuses is 403; one without the
//! identity source is 401 and the function never runs; an answer is cached per identity
//! source for the authorizer's TTL; a function whose resource policy does not let the
//! authorizer invoke it is 500. Invocations are counted by the emulator, as the
//! function's log would count them.

mod common;

use authedapi_rig::functions::{authorizer_code, context_echo_code, ensure_function_with};
use authedapi_rig::{Account, shared};
use aws_sdk_apigatewayv2::types::{AuthorizationType, AuthorizerType, IntegrationType};
use serde_json::Value;

/// How an authorizer is set up for one test.
struct Setup {
    payload: &'static str,
    simple_responses: bool,
    ttl_seconds: i32,
    /// The source ARN the authorizer function's permission names; None: the authorizer's.
    permission_source: Option<fn(&str) -> String>,
}

/// An authorizer whose function lets it (and only it) invoke it.
fn setup(payload: &'static str, simple_responses: bool, ttl_seconds: i32) -> Setup {
    Setup {
        payload,
        simple_responses,
        ttl_seconds,
        permission_source: None,
    }
}

/// An HTTP API with one route, `GET /hello`, behind a Lambda REQUEST authorizer (identity
/// source: the Authorization header) and integrated with the context echo.
struct Api {
    account: Account,
    url: String,
    authorizer_arn: String,
    http: reqwest::Client,
}

fn lambda_uri(account: &Account, function_arn: &str) -> String {
    format!(
        "arn:aws:apigateway:{}:lambda:path/2015-03-31/functions/{function_arn}/invocations",
        account.region
    )
}

async fn api(setup: Setup) -> Api {
    let account = shared::account();
    let config = account.sdk_config().await;
    let authorizer_arn = ensure_function_with(&config, "rig-authorizer", &authorizer_code())
        .await
        .unwrap();
    let echo_arn = ensure_function_with(&config, "context-echo", &context_echo_code())
        .await
        .unwrap();
    let gateway = aws_sdk_apigatewayv2::Client::new(&config);
    let lambda = aws_sdk_lambda::Client::new(&config);
    let api_id = common::http_api(&gateway, "authorized").await;
    let execute_api = format!(
        "arn:aws:execute-api:{}:{}:{api_id}",
        account.region, account.id
    );
    let integration_id = gateway
        .create_integration()
        .api_id(&api_id)
        .integration_type(IntegrationType::AwsProxy)
        .integration_uri(&echo_arn)
        .payload_format_version(setup.payload)
        .send()
        .await
        .unwrap()
        .integration_id
        .unwrap();
    let authorizer_id = gateway
        .create_authorizer()
        .api_id(&api_id)
        .name("rig-authorizer")
        .authorizer_type(AuthorizerType::Request)
        .authorizer_uri(lambda_uri(&account, &authorizer_arn))
        .authorizer_payload_format_version(setup.payload)
        .enable_simple_responses(setup.simple_responses)
        .identity_source("$request.header.Authorization")
        .authorizer_result_ttl_in_seconds(setup.ttl_seconds)
        .send()
        .await
        .unwrap()
        .authorizer_id
        .unwrap();
    gateway
        .create_route()
        .api_id(&api_id)
        .route_key("GET /hello")
        .authorization_type(AuthorizationType::Custom)
        .authorizer_id(&authorizer_id)
        .target(format!("integrations/{integration_id}"))
        .send()
        .await
        .unwrap();
    lambda
        .add_permission()
        .function_name(&echo_arn)
        .statement_id("routes")
        .action("lambda:InvokeFunction")
        .principal("apigateway.amazonaws.com")
        .source_arn(format!("{execute_api}/*/*/*"))
        .send()
        .await
        .unwrap();
    let authorizer_source = match setup.permission_source {
        Some(source) => source(&execute_api),
        None => format!("{execute_api}/authorizers/{authorizer_id}"),
    };
    lambda
        .add_permission()
        .function_name(&authorizer_arn)
        .statement_id("authorizer")
        .action("lambda:InvokeFunction")
        .principal("apigateway.amazonaws.com")
        .source_arn(authorizer_source)
        .send()
        .await
        .unwrap();
    Api {
        url: format!(
            "https://{api_id}.execute-api.{}.amazonaws.com/hello",
            account.region
        ),
        account,
        authorizer_arn,
        http: shared::web().http_client().unwrap(),
    }
}

impl Api {
    /// (status, body) of `GET /hello` with `authorization` (none when None) and the
    /// authorizer answering as `response` asks ("iam" or "simple").
    async fn call(&self, authorization: Option<&str>, response: &str) -> (u16, String) {
        let mut request = self
            .http
            .get(&self.url)
            .header("x-rig-authorizer-response", response);
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        let answer = request.send().await.unwrap();
        (answer.status().as_u16(), answer.text().await.unwrap())
    }

    async fn authorizer_runs(&self) -> u64 {
        self.account
            .invocations(&self.authorizer_arn)
            .await
            .unwrap()
    }
}

fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

#[tokio::test]
async fn an_allowed_request_reaches_the_handler_with_the_context_and_is_cached() {
    let api = api(setup("2.0", true, 300)).await;

    let (status, body) = api.call(Some("allow:ada"), "simple").await;
    assert_eq!(status, 200, "{body}");
    // Payload 2.0: the function's context under requestContext.authorizer.lambda.
    assert_eq!(json(&body)["lambda"]["user"], "ada", "{body}");
    assert_eq!(json(&body)["lambda"]["payload"], "2.0", "{body}");
    assert_eq!(api.authorizer_runs().await, 1);

    // Within the TTL the same identity source is answered from the cache.
    let (status, body) = api.call(Some("allow:ada"), "simple").await;
    assert_eq!(
        (status, json(&body)["lambda"]["user"].clone()),
        (200, "ada".into())
    );
    assert_eq!(api.authorizer_runs().await, 1);

    // Another identity source is another cache entry: the function runs for it.
    let (status, body) = api.call(Some("allow:bob"), "simple").await;
    assert_eq!(
        (status, json(&body)["lambda"]["user"].clone()),
        (200, "bob".into())
    );
    assert_eq!(api.authorizer_runs().await, 2);
}

#[tokio::test]
async fn a_refusal_is_403_and_a_missing_identity_source_401_without_the_function() {
    let api = api(setup("2.0", true, 0)).await;

    assert_eq!(
        api.call(None, "simple").await,
        (401, r#"{"message":"Unauthorized"}"#.to_owned())
    );
    assert_eq!(
        api.authorizer_runs().await,
        0,
        "no identity source: not called"
    );

    assert_eq!(
        api.call(Some("deny:eve"), "simple").await,
        (403, r#"{"message":"Forbidden"}"#.to_owned())
    );
    // A TTL of 0 caches nothing: every request runs the function.
    assert_eq!(api.call(Some("deny:eve"), "simple").await.0, 403);
    assert_eq!(api.authorizer_runs().await, 2);
}

#[tokio::test]
async fn payload_1_0_authorizers_answer_with_an_iam_policy() {
    let api = api(setup("1.0", false, 0)).await;

    let (status, body) = api.call(Some("allow:ada"), "iam").await;
    assert_eq!(status, 200, "{body}");
    // Payload 1.0: the context flat in requestContext.authorizer, with the principal.
    let authorizer = json(&body);
    assert_eq!(authorizer["user"], "ada", "{body}");
    assert_eq!(authorizer["payload"], "1.0", "{body}");
    assert_eq!(authorizer["principalId"], "ada", "{body}");

    // A policy that denies the route's ARN.
    assert_eq!(api.call(Some("deny:eve"), "iam").await.0, 403);
    assert_eq!(api.authorizer_runs().await, 2);
}

#[tokio::test]
async fn payload_2_0_without_simple_responses_takes_only_a_policy() {
    let api = api(setup("2.0", false, 0)).await;

    let (status, body) = api.call(Some("allow:ada"), "iam").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(json(&body)["lambda"]["user"], "ada", "{body}");
    assert_eq!(json(&body)["principalId"], "ada", "{body}");
    // A simple response is malformed here: API Gateway's 500.
    assert_eq!(
        api.call(Some("allow:ada"), "simple").await,
        (500, r#"{"message":"Internal Server Error"}"#.to_owned())
    );
}

#[tokio::test]
async fn a_function_the_authorizer_may_not_invoke_is_refused_with_500() {
    // The function lets the API's routes invoke it, not its authorizer.
    let api = api(Setup {
        permission_source: Some(|execute_api| format!("{execute_api}/$default/*")),
        ..setup("2.0", true, 300)
    })
    .await;

    assert_eq!(
        api.call(Some("allow:ada"), "simple").await,
        (500, r#"{"message":"Internal Server Error"}"#.to_owned())
    );
    assert_eq!(api.authorizer_runs().await, 0);
}

#[tokio::test]
async fn request_authorizers_are_checked_and_read_back_as_created() {
    let account = shared::account();
    let config = account.sdk_config().await;
    let gateway = aws_sdk_apigatewayv2::Client::new(&config);
    let api_id = common::http_api(&gateway, "authorizers").await;
    let uri = lambda_uri(
        &account,
        &format!(
            "arn:aws:lambda:{}:{}:function:gate",
            account.region, account.id
        ),
    );
    let created = gateway
        .create_authorizer()
        .api_id(&api_id)
        .name("gate")
        .authorizer_type(AuthorizerType::Request)
        .authorizer_uri(&uri)
        .authorizer_payload_format_version("2.0")
        .enable_simple_responses(true)
        .identity_source("$request.header.Authorization")
        .identity_source("$request.querystring.tenant")
        .authorizer_result_ttl_in_seconds(60)
        .send()
        .await
        .unwrap();
    let id = created.authorizer_id.unwrap();
    let read = gateway
        .get_authorizer()
        .api_id(&api_id)
        .authorizer_id(&id)
        .send()
        .await
        .unwrap();
    assert_eq!(read.authorizer_type, Some(AuthorizerType::Request));
    assert_eq!(read.authorizer_uri.as_deref(), Some(uri.as_str()));
    assert_eq!(
        read.authorizer_payload_format_version.as_deref(),
        Some("2.0")
    );
    assert_eq!(read.enable_simple_responses, Some(true));
    assert_eq!(read.authorizer_result_ttl_in_seconds, Some(60));
    assert_eq!(
        read.identity_source.unwrap_or_default(),
        [
            "$request.header.Authorization",
            "$request.querystring.tenant"
        ]
    );
    let listed = gateway
        .get_authorizers()
        .api_id(&api_id)
        .send()
        .await
        .unwrap();
    assert_eq!(listed.items().len(), 1);

    let updated = gateway
        .update_authorizer()
        .api_id(&api_id)
        .authorizer_id(&id)
        .authorizer_result_ttl_in_seconds(0)
        .send()
        .await
        .unwrap();
    assert_eq!(updated.authorizer_result_ttl_in_seconds, Some(0));
    assert_eq!(
        updated.enable_simple_responses,
        Some(true),
        "the rest is kept"
    );

    // Refused as AWS refuses them: simple responses with payload 1.0, caching without
    // identity sources, a TTL over an hour, a URI that is no Lambda function's.
    let bad = [
        (
            "1.0",
            true,
            0,
            vec!["$request.header.Authorization"],
            uri.as_str(),
        ),
        ("2.0", true, 60, vec![], uri.as_str()),
        (
            "2.0",
            true,
            3601,
            vec!["$request.header.Authorization"],
            uri.as_str(),
        ),
        (
            "2.0",
            true,
            0,
            vec!["$request.header.Authorization"],
            "https://example.com/authorize",
        ),
    ];
    for (payload, simple, ttl, sources, uri) in bad {
        let refused = gateway
            .create_authorizer()
            .api_id(&api_id)
            .name("bad")
            .authorizer_type(AuthorizerType::Request)
            .authorizer_uri(uri)
            .authorizer_payload_format_version(payload)
            .enable_simple_responses(simple)
            .set_identity_source(Some(sources.iter().map(|s| s.to_string()).collect()))
            .authorizer_result_ttl_in_seconds(ttl)
            .send()
            .await
            .unwrap_err();
        assert!(
            refused
                .as_service_error()
                .is_some_and(|e| e.is_bad_request_exception()),
            "{payload} {simple} {ttl} {uri}: {refused:?}"
        );
    }
    let listed = gateway
        .get_authorizers()
        .api_id(&api_id)
        .send()
        .await
        .unwrap();
    assert_eq!(listed.items().len(), 1, "no refused authorizer was kept");
}
