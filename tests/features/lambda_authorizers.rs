//! Lambda REQUEST authorizers (`spec.authorizers`, `authorization: lambda`): the operator
//! makes the authorizer and the route that names it, and lets only the API's authorizers
//! invoke the function; the rig's data plane then runs it before the route as API Gateway
//! does (allowed with its context, refused 403, no identity source 401, answers cached for
//! the TTL). An authorizer changed behind the operator's back is put back in place. A
//! function the namespace's tenant does not allow is refused before AWS.

use std::time::{Duration, Instant};

use kube::api::{Api, Patch, PatchParams};
use serde_json::{Value, json};

use authedapi::aws::apigateway::{Authorizer, RouteAuth};
use authedapi::tenant::AuthedApiTenant;
use authedapi_rig::functions::{authorizer_code, context_echo_code, ensure_function_with};
use authedapi_rig::shared;

use crate::common::{Fixture, api_id, apply, condition, wait_stalled};

/// The seed with authorizer `users` running `authorizer` (identity source: the
/// Authorization header, cached 300 s) on `GET /hello`, which `echo` serves.
async fn with_authorizer(s: &Fixture, name: &str, authorizer: &str, echo: &str) -> Value {
    let mut object = s.seed(name).await;
    object["spec"]["authorizers"] = json!([
        {"name": "users", "lambda": {"functionArn": authorizer, "resultTtlSeconds": 300}}
    ]);
    object["spec"]["routes"]
        .as_array_mut()
        .unwrap()
        .push(json!({
            "route": "GET /hello", "authorization": "lambda", "authorizer": "users",
            "target": {"lambda": {"functionArn": echo}}
        }));
    object
}

/// The rig's authorizer and context echo in the fixture's account: their ARNs.
async fn functions(s: &Fixture) -> (String, String) {
    let authorizer = ensure_function_with(&s.config, "rig-authorizer", &authorizer_code())
        .await
        .unwrap();
    let echo = ensure_function_with(&s.config, "context-echo", &context_echo_code())
        .await
        .unwrap();
    (authorizer, echo)
}

#[tokio::test]
async fn a_lambda_route_runs_its_authorizer_before_the_handler() {
    let s = &Fixture::new("op-lambda", &[]).await;
    let (authorizer, echo) = functions(s).await;
    let obj = s
        .apply_ready(&with_authorizer(s, "lambda", &authorizer, &echo).await)
        .await;
    let id = api_id(&obj);

    // In AWS: one REQUEST authorizer as planned, the route CUSTOM with it.
    let authorizers = s.aws.apigateway.list_authorizers(&id).await.unwrap();
    let [Authorizer::Request(made)] = authorizers.as_slice() else {
        panic!("one REQUEST authorizer: {authorizers:?}");
    };
    assert_eq!(made.name, "lambda-users");
    assert_eq!(
        made.config.uri,
        format!(
            "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/{authorizer}/invocations"
        )
    );
    assert_eq!(
        (made.config.result_ttl_seconds, made.config.simple_responses),
        (300, true)
    );
    let routes = s.aws.apigateway.list_routes(&id).await.unwrap();
    let hello = routes.iter().find(|r| r.key == "GET /hello").unwrap();
    assert_eq!(
        hello.auth,
        RouteAuth::Custom {
            authorizer_id: made.id.clone()
        }
    );
    // The function only authorizers use may be invoked by the API's authorizers alone.
    let statements = s
        .aws
        .lambda
        .permissions(&authorizer)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(statements.len(), 1, "{statements:?}");
    assert_eq!(
        statements[0].source_arn,
        Some(s.arn(&format!("{id}/authorizers/*")))
    );

    // On the data plane.
    let http = shared::web().http_client().unwrap();
    let url = format!("https://{id}.execute-api.us-east-1.amazonaws.com/hello");
    let call = async |authorization: Option<&str>| {
        let mut request = http.get(&url);
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        let answer = request.send().await.unwrap();
        (answer.status().as_u16(), answer.text().await.unwrap())
    };
    let runs = async || s.account.invocations(&authorizer).await.unwrap();

    let (status, body) = call(Some("allow:ada")).await;
    assert_eq!(status, 200, "{body}");
    let context: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(context["lambda"]["user"], "ada", "{body}");
    assert_eq!(runs().await, 1);

    // Within the TTL the same identity is answered from the cache.
    assert_eq!(call(Some("allow:ada")).await.0, 200);
    assert_eq!(runs().await, 1, "cached: the function did not run again");

    assert_eq!(
        call(Some("deny")).await,
        (403, r#"{"message":"Forbidden"}"#.to_owned())
    );
    assert_eq!(runs().await, 2);
    assert_eq!(
        call(None).await,
        (401, r#"{"message":"Unauthorized"}"#.to_owned())
    );
    assert_eq!(
        runs().await,
        2,
        "no identity source: the function never ran"
    );
}

#[tokio::test]
async fn an_authorizer_changed_in_aws_is_put_back_in_place_within_a_resync() {
    let s = &Fixture::new("op-lambda-drift", &["--resync", "3s"]).await;
    let (authorizer, echo) = functions(s).await;
    let obj = s
        .apply_ready(&with_authorizer(s, "drifty", &authorizer, &echo).await)
        .await;
    let id = api_id(&obj);
    let gw = &s.aws.apigateway;
    let request = async || {
        let authorizers = gw.list_authorizers(&id).await.unwrap();
        let [Authorizer::Request(found)] = authorizers.as_slice() else {
            panic!("one REQUEST authorizer: {authorizers:?}");
        };
        found.clone()
    };
    let planned = request().await;

    // Someone turns the cache off, reads the identity from elsewhere and runs another
    // function.
    let mut drifted = planned.config.clone();
    drifted.result_ttl_seconds = 0;
    drifted.identity_sources = vec!["$request.querystring.user".into()];
    drifted.uri = drifted.uri.replace(&authorizer, &echo);
    gw.update_request_authorizer(&id, &planned.id, &drifted)
        .await
        .unwrap();

    // Put back: the operator says it updated the authorizer, and AWS has it as planned.
    let updated = async || {
        s.events().await.iter().any(|e| {
            e.reason.as_deref() == Some("Updated")
                && e.action.as_deref() == Some("UpdateAuthorizer lambda-users")
        })
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let now = request().await;
        if now == planned && updated().await {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not put back within 20s: {now:?}, planned {planned:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test]
async fn an_authorizer_function_the_tenant_does_not_allow_is_refused() {
    let s = &Fixture::new("op-lambda-refused", &[]).await;
    let (authorizer, echo) = functions(s).await;
    // The tenant allows the seed's functions and the handler, not the authorizer.
    let tenant = format!("{}-lambda", s.namespace.name);
    let allowed = [
        format!(
            "arn:aws:lambda:*:{}:function:api-auth-auth0-*",
            s.account.id
        ),
        echo.clone(),
    ];
    Api::<AuthedApiTenant>::all(s.client.clone())
        .patch(
            &tenant,
            &PatchParams::apply("platform").force(),
            &Patch::Apply(json!({
                "apiVersion": "authedapi.dev/v1alpha1", "kind": "AuthedApiTenant",
                "metadata": {"name": tenant},
                "spec": {"namespaces": [s.namespace.name], "allowedFunctions": allowed}
            })),
        )
        .await
        .unwrap();
    apply(
        &s.api,
        &with_authorizer(s, "refused", &authorizer, &echo).await,
    )
    .await;
    let obj = wait_stalled(&s.api, "refused", &s.operator).await;
    let (_, reason, message) = condition(&obj, "Stalled").unwrap();
    assert_eq!(reason, "NotAllowed");
    assert!(
        message.contains(&format!(
            "the Lambda function {authorizer} is not allowed by AuthedApiTenant {tenant}"
        )),
        "{message}"
    );
    assert!(
        s.aws.apigateway.list_apis().await.unwrap().is_empty(),
        "refused before any AWS resource was made"
    );
}
