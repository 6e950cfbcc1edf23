//! Who gets in, request by request, through the rig's execute-api data plane and Cognito's
//! credential flow: every refusal answers as AWS answers it — no signature, a wrong
//! signature, expired credentials, a role without the route, a JWT for another audience or
//! without the scope, a function whose policy does not admit the API, tokens Cognito does
//! not accept (another issuer, another audience, expired, none at all).

mod common;

use std::time::Duration;

use authedapi::api::AuthedApi;
use authedapi_rig::{TestNamespace, shared};
use kube::api::Api;
use serde_json::json;

use common::web::{Session, answer, cognito_session, get, id_token, signed};
use common::{Operator, apply, install_crd, moved_into, wait_ready};

const ROLES: &str = "https://rig.example.com/roles";

/// An API with one route per kind of access, and its identity pool.
struct Fixture {
    endpoint: String,
    pool_id: String,
    config: aws_types::SdkConfig,
    account: authedapi_rig::Account,
    http: reqwest::Client,
    _operator: Operator,
}

async fn fixture(prefix: &str) -> Fixture {
    let client = shared::client().await;
    install_crd(&client).await.unwrap();
    let ns = TestNamespace::create(&client, prefix).await.unwrap();
    let account = shared::account();
    let config = account.sdk_config().await;
    let function = |name: &str| json!({"lambda": {"functionArn": format!("arn:aws:lambda:us-east-1:123456789012:function:{prefix}-{name}")}});
    let object = json!({
        "apiVersion": "authedapi.dev/v1alpha1",
        "kind": "AuthedApi",
        "metadata": {"name": "doors"},
        "spec": {
            "stage": "dev",
            "auth0": {"domain": shared::AUTH0_DOMAIN, "clientId": shared::AUTH0_CLIENT_ID},
            "defaultAuthorization": "iam",
            "routes": [
                {"route": "GET /public", "authorization": "none", "target": function("public")},
                {"route": "GET /private", "target": function("private")},
                {"route": "GET /admin", "target": function("admin")},
                {"route": "GET /reports", "target": function("reports")},
                {"route": "GET /jwt", "authorization": "jwt", "target": function("jwt")},
                {"route": "GET /scoped", "authorization": "jwt", "scopes": ["read:reports"], "target": function("scoped")}
            ],
            "access": {
                "rules": [
                    {"name": "admin", "claim": ROLES, "matchType": "Contains", "value": "admin", "routes": ["GET /admin"]},
                    {"name": "reader", "claim": ROLES, "matchType": "Contains", "value": "reader", "routes": ["GET /reports"]}
                ],
                "unmatched": "AuthenticatedRole",
                "unlistedRoutes": "AuthenticatedRole"
            }
        }
    });
    let object = moved_into(&account, &config, object).await;
    shared::auth0();
    let operator = Operator::start(&ns.name, &account, &[], &[]).await;
    let api: Api<AuthedApi> = Api::namespaced(client, &ns.name);
    apply(&api, &object).await;
    let status = wait_ready(&api, "doors", &operator, Duration::from_secs(60))
        .await
        .status
        .unwrap();
    Fixture {
        endpoint: status.api_endpoint.unwrap(),
        pool_id: status.identity_pool_id.unwrap(),
        config,
        account,
        http: shared::web().http_client().unwrap(),
        _operator: operator,
    }
}

impl Fixture {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.endpoint)
    }

    async fn session(&self, user: &str, roles: &[&str]) -> Session {
        let token = id_token(user, &[(ROLES, json!(roles))]);
        cognito_session(&self.config, &self.pool_id, &token)
            .await
            .unwrap()
    }

    async fn signed(&self, path: &str, session: &Session) -> (u16, String) {
        answer(
            self.http
                .execute(signed(get(&self.url(path)), session))
                .await
                .unwrap(),
        )
        .await
    }

    async fn bearer(&self, path: &str, token: &str) -> (u16, String) {
        answer(
            self.http
                .get(self.url(path))
                .bearer_auth(token)
                .send()
                .await
                .unwrap(),
        )
        .await
    }
}

#[tokio::test]
async fn iam_routes_refuse_as_api_gateway_does() {
    let f = fixture("dp-iam").await;
    let plain = f.session("plain@example.com", &[]).await;
    let reader = f.session("reader@example.com", &["reader"]).await;

    // Without a signature.
    let (status, body) = answer(f.http.get(f.url("/private")).send().await.unwrap()).await;
    assert_eq!((status, body.as_str()), (403, r#"{"message":"Forbidden"}"#));
    // With a signature made with the wrong secret.
    let forged = Session {
        secret: "not-the-secret".into(),
        ..plain.clone()
    };
    let (status, body) = f.signed("/private", &forged).await;
    assert_eq!(status, 403);
    assert!(
        body.contains("The request signature we calculated does not match"),
        "{body}"
    );
    // With a session token that is not the key's.
    let mixed = Session {
        token: reader.token.clone(),
        ..plain.clone()
    };
    let (status, body) = f.signed("/private", &mixed).await;
    assert_eq!(
        (status, body.as_str()),
        (
            403,
            r#"{"message":"The security token included in the request is invalid."}"#
        )
    );

    // The default role may call its route, not a rule's.
    assert_eq!(
        f.signed("/private", &plain).await,
        (200, "Hello user!".to_owned())
    );
    let (status, body) = f.signed("/admin", &plain).await;
    assert_eq!(status, 403);
    assert!(
        body.contains("is not authorized to perform: execute-api:Invoke on resource: arn:aws:execute-api:us-east-1:")
            && body.ends_with("/$default/GET/admin\"}"),
        "{body}"
    );
    // A reader's role has its route and nothing else.
    assert_eq!(f.signed("/reports", &reader).await.0, 200);
    assert_eq!(f.signed("/admin", &reader).await.0, 403);
    assert_eq!(f.signed("/private", &reader).await.0, 403);

    // Expired credentials.
    shared::web()
        .expire_session(&plain.access_key)
        .await
        .unwrap();
    let (status, body) = f.signed("/private", &plain).await;
    assert_eq!(
        (status, body.as_str()),
        (
            403,
            r#"{"message":"The security token included in the request is expired"}"#
        )
    );
}

#[tokio::test]
async fn jwt_routes_want_a_token_for_the_audience_and_the_scopes() {
    let f = fixture("dp-jwt").await;
    let auth0 = shared::auth0();
    let token = id_token("jwt@example.com", &[]);
    assert_eq!(f.bearer("/jwt", &token).await.0, 200);
    let (status, body) = answer(f.http.get(f.url("/jwt")).send().await.unwrap()).await;
    assert_eq!(
        (status, body.as_str()),
        (401, r#"{"message":"Unauthorized"}"#)
    );
    let other_audience = auth0
        .id_token(
            "jwt@example.com",
            "someone-elses-client",
            Duration::from_secs(600),
            Default::default(),
        )
        .unwrap();
    let (status, body) = f.bearer("/jwt", &other_audience).await;
    assert_eq!(
        (status, body.as_str()),
        (401, r#"{"message":"Unauthorized"}"#)
    );
    let expired = auth0
        .id_token(
            "jwt@example.com",
            shared::AUTH0_CLIENT_ID,
            Duration::from_secs(600),
            serde_json::Map::from_iter([("exp".to_owned(), json!(1_600_000_000))]),
        )
        .unwrap();
    assert_eq!(f.bearer("/jwt", &expired).await.0, 401);
    // A route with scopes: the token must carry one.
    let (status, body) = f.bearer("/scoped", &token).await;
    assert_eq!((status, body.as_str()), (403, r#"{"message":"Forbidden"}"#));
    let scoped = auth0
        .id_token(
            "jwt@example.com",
            shared::AUTH0_CLIENT_ID,
            Duration::from_secs(600),
            serde_json::Map::from_iter([("scope".to_owned(), json!("openid read:reports"))]),
        )
        .unwrap();
    assert_eq!(f.bearer("/scoped", &scoped).await.0, 200);
}

#[tokio::test]
async fn a_function_whose_policy_does_not_admit_the_api_is_not_invoked() {
    let f = fixture("dp-lambda").await;
    assert_eq!(
        answer(f.http.get(f.url("/public")).send().await.unwrap())
            .await
            .0,
        200
    );
    // Someone removes the operator's statement from the function's policy.
    let lambda = aws_sdk_lambda::Client::new(&f.config);
    let function = format!(
        "arn:aws:lambda:us-east-1:{}:function:dp-lambda-public",
        f.account.id
    );
    let policy: serde_json::Value = serde_json::from_str(
        lambda
            .get_policy()
            .function_name(&function)
            .send()
            .await
            .unwrap()
            .policy()
            .unwrap(),
    )
    .unwrap();
    let sid = policy["Statement"][0]["Sid"].as_str().unwrap();
    lambda
        .remove_permission()
        .function_name(&function)
        .statement_id(sid)
        .send()
        .await
        .unwrap();
    let (status, body) = answer(f.http.get(f.url("/public")).send().await.unwrap()).await;
    assert_eq!(
        (status, body.as_str()),
        (500, r#"{"message":"Internal Server Error"}"#)
    );
}

#[tokio::test]
async fn cognito_refuses_tokens_it_must_not_accept() {
    let f = fixture("dp-cognito").await;
    let auth0 = shared::auth0();
    let refused = |result: Result<Session, String>| result.expect_err("Cognito accepted it");
    // Another issuer: a second Auth0 tenant this pool does not federate.
    let other = authedapi_rig::Auth0StandIn::start_detached(
        "other-tenant.eu.auth0.com",
        vec![authedapi_rig::auth0::Application::confidential(
            shared::AUTH0_CLIENT_ID,
            "x",
            vec!["http://localhost:5678".into()],
        )],
        vec![authedapi_rig::auth0::TestUser::new("mallory", "p")],
    )
    .unwrap();
    shared::web().add_issuer(&other).await.unwrap();
    let foreign = other
        .id_token(
            "mallory",
            shared::AUTH0_CLIENT_ID,
            Duration::from_secs(600),
            Default::default(),
        )
        .unwrap();
    let cognito = aws_sdk_cognitoidentity::Client::new(&f.config);
    let e = cognito
        .get_id()
        .identity_pool_id(&f.pool_id)
        .logins("other-tenant.eu.auth0.com", &foreign)
        .send()
        .await
        .unwrap_err();
    let e = format!("{}", aws_sdk_cognitoidentity::error::DisplayErrorContext(e));
    assert!(
        e.contains("NotAuthorizedException") && e.contains("not from a supported provider"),
        "{e}"
    );
    // The right provider name, a token signed by another issuer's key.
    let e = refused(cognito_session(&f.config, &f.pool_id, &foreign).await);
    assert!(e.contains("NotAuthorizedException"), "{e}");
    // Another audience than the provider's client ids.
    id_token("aud@example.com", &[]);
    let wrong_aud = auth0
        .id_token(
            "aud@example.com",
            "someone-elses-client",
            Duration::from_secs(600),
            Default::default(),
        )
        .unwrap();
    let e = refused(cognito_session(&f.config, &f.pool_id, &wrong_aud).await);
    assert!(e.contains("Incorrect token audience"), "{e}");
    // Expired.
    id_token("late@example.com", &[]);
    let expired = auth0
        .id_token(
            "late@example.com",
            shared::AUTH0_CLIENT_ID,
            Duration::from_secs(600),
            serde_json::Map::from_iter([("exp".to_owned(), json!(1_600_000_000))]),
        )
        .unwrap();
    let e = refused(cognito_session(&f.config, &f.pool_id, &expired).await);
    assert!(e.contains("Token expired"), "{e}");
    // No login at all: the pool allows no unauthenticated identities.
    let e = cognito
        .get_id()
        .identity_pool_id(&f.pool_id)
        .send()
        .await
        .unwrap_err();
    let e = format!("{}", aws_sdk_cognitoidentity::error::DisplayErrorContext(e));
    assert!(e.contains("Unauthenticated access is not supported"), "{e}");
}

#[tokio::test]
async fn functions_run_their_own_code_with_the_event_api_gateway_builds() {
    use authedapi_rig::functions::{Code, ensure_function_with};
    use aws_sdk_lambda::types::Runtime;
    let client = shared::client().await;
    install_crd(&client).await.unwrap();
    let ns = TestNamespace::create(&client, "dp-events").await.unwrap();
    let account = shared::account();
    let config = account.sdk_config().await;
    // A Node.js handler on payload 2.0 and a Python one on 1.0, each echoing the event.
    let node = ensure_function_with(&config, "echo-v2", &Code {
        runtime: Runtime::Nodejs20x,
        file: "index.mjs".into(),
        source: "export const handler = async (event) => ({ statusCode: 201, headers: {'x-echo': 'v2'}, \
                 body: JSON.stringify({ version: event.version, routeKey: event.routeKey, rawPath: event.rawPath, \
                 query: event.queryStringParameters, params: event.pathParameters, body: event.body, \
                 identity: event.requestContext.authorizer.iam.cognitoIdentity.identityId }) });".into(),
    }).await.unwrap();
    let python = ensure_function_with(&config, "echo-v1", &Code {
        runtime: Runtime::Python312,
        file: "app.py".into(),
        source: "import json\n\ndef handler(event, context):\n    return {'statusCode': 200, 'body': json.dumps({\n        'version': event['version'], 'method': event['httpMethod'], 'path': event['path'],\n        'resource': event['resource'], 'params': event['pathParameters'],\n        'identity': event['requestContext']['identity']['cognitoIdentityId']})}\n".into(),
    }).await.unwrap();
    let object = json!({
        "apiVersion": "authedapi.dev/v1alpha1", "kind": "AuthedApi", "metadata": {"name": "events"},
        "spec": {
            "stage": "dev",
            "auth0": {"domain": shared::AUTH0_DOMAIN, "clientId": shared::AUTH0_CLIENT_ID},
            "routes": [
                {"route": "POST /items/{id}", "target": {"lambda": {"functionArn": node}}},
                {"route": "GET /legacy/{name}", "target": {"lambda": {"functionArn": python, "payloadFormatVersion": "1.0"}}}
            ]
        }
    });
    shared::auth0();
    let operator = Operator::start(&ns.name, &account, &[], &[]).await;
    let api: Api<AuthedApi> = Api::namespaced(client, &ns.name);
    apply(&api, &object).await;
    let status = wait_ready(&api, "events", &operator, Duration::from_secs(60))
        .await
        .status
        .unwrap();
    let endpoint = status.api_endpoint.unwrap();
    let session = cognito_session(
        &config,
        &status.identity_pool_id.unwrap(),
        &id_token("events@example.com", &[]),
    )
    .await
    .unwrap();
    let http = shared::web().http_client().unwrap();

    let mut post = http::Request::post(format!("{endpoint}/items/42?color=red"))
        .body(b"{\"n\":1}".to_vec())
        .unwrap();
    post.headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    let answer = http.execute(signed(post, &session)).await.unwrap();
    assert_eq!(answer.status(), 201);
    assert_eq!(answer.headers()["x-echo"], "v2");
    let event: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(
        event,
        json!({
            "version": "2.0", "routeKey": "POST /items/{id}", "rawPath": "/items/42",
            "query": {"color": "red"}, "params": {"id": "42"}, "body": "{\"n\":1}",
            "identity": session.identity_id,
        })
    );

    let answer = http
        .execute(signed(get(&format!("{endpoint}/legacy/ada")), &session))
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let event: serde_json::Value = serde_json::from_str(&answer.text().await.unwrap()).unwrap();
    assert_eq!(
        event,
        json!({
            "version": "1.0", "method": "GET", "path": "/legacy/ada", "resource": "/legacy/{name}",
            "params": {"name": "ada"}, "identity": session.identity_id,
        })
    );
}
