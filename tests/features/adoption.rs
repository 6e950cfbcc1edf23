//! Adoption without downtime: the seed deployed as `sst deploy` leaves it (an API with its
//! routes, integrations and stage, the functions' permissions, an OIDC provider, an
//! identity pool and its role, named and tagged as SST does; CloudFormation's own `aws:`
//! tags cannot be set through the API) is handed to an AuthedApi. Without the platform's
//! mark it is refused, marked for another cluster it is refused, and marked for this
//! object it is adopted: the same endpoint, the same identity pool, a user's identity id
//! unchanged, while public and signed private calls in a loop never fail.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use authedapi::reconcile::requested::RECONCILE_REQUESTED;
use authedapi_rig::shared;
use aws_sdk_apigatewayv2::types::{AuthorizationType, IntegrationType};
use serde_json::json;

use crate::common::web::{Session, answer, cognito_session, get, id_token, signed};
use crate::common::{Fixture, annotate, condition, ensure_function, wait_for, wait_stalled};

const NAME: &str = "adopted";

/// What `sst deploy` made.
struct Deployed {
    api_id: String,
    endpoint: String,
    pool_id: String,
}

/// The seed as `sst deploy` leaves it, in the fixture's account.
async fn sst_deploy(s: &Fixture) -> Deployed {
    let config = &s.config;
    let account = &s.account.id;
    let sst_tags = [("sst:app", "api-auth-auth0"), ("sst:stage", "dev")]
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
    let gw = aws_sdk_apigatewayv2::Client::new(config);
    let api = gw
        .create_api()
        .name("dev-api-auth-auth0-Api")
        .protocol_type(aws_sdk_apigatewayv2::types::ProtocolType::Http)
        .set_tags(Some(sst_tags.clone().into_iter().collect()))
        .send()
        .await
        .unwrap();
    let api_id = api.api_id().unwrap().to_owned();
    let lambda = aws_sdk_lambda::Client::new(config);
    for (route, function, auth) in [
        (
            "GET /private",
            "sst-adopt-private",
            AuthorizationType::AwsIam,
        ),
        ("GET /public", "sst-adopt-public", AuthorizationType::None),
    ] {
        let arn = ensure_function(config, function).await;
        let integration = gw
            .create_integration()
            .api_id(&api_id)
            .integration_type(IntegrationType::AwsProxy)
            .integration_uri(&arn)
            .payload_format_version("2.0")
            .send()
            .await
            .unwrap();
        gw.create_route()
            .api_id(&api_id)
            .route_key(route)
            .authorization_type(auth)
            .target(format!(
                "integrations/{}",
                integration.integration_id().unwrap()
            ))
            .send()
            .await
            .unwrap();
        lambda
            .add_permission()
            .function_name(&arn)
            .statement_id(format!("devapiauthauth0Api{}", function.len()))
            .action("lambda:InvokeFunction")
            .principal("apigateway.amazonaws.com")
            .source_arn(format!(
                "arn:aws:execute-api:us-east-1:{account}:{api_id}/*/*"
            ))
            .send()
            .await
            .unwrap();
    }
    gw.create_stage()
        .api_id(&api_id)
        .stage_name("$default")
        .auto_deploy(true)
        .send()
        .await
        .unwrap();

    let iam = aws_sdk_iam::Client::new(config);
    let provider = iam
        .create_open_id_connect_provider()
        .url(format!("https://{}", shared::AUTH0_DOMAIN))
        .client_id_list(shared::AUTH0_CLIENT_ID)
        .thumbprint_list("9e99a48a9960b14926bb7f3b02e22da2b0ab7280")
        .send()
        .await
        .unwrap();
    let cognito = aws_sdk_cognitoidentity::Client::new(config);
    let pool = cognito
        .create_identity_pool()
        .identity_pool_name("devapiauthauth0AuthIdentityPool")
        .allow_unauthenticated_identities(false)
        .open_id_connect_provider_arns(provider.open_id_connect_provider_arn().unwrap())
        .set_identity_pool_tags(Some(sst_tags.into_iter().collect()))
        .send()
        .await
        .unwrap();
    let pool_id = pool.identity_pool_id().to_owned();
    let trust = json!({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Federated": "cognito-identity.amazonaws.com"},
        "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": {"StringEquals": {"cognito-identity.amazonaws.com:aud": pool_id},
                      "ForAnyValue:StringLike": {"cognito-identity.amazonaws.com:amr": "authenticated"}}}]});
    let role = iam
        .create_role()
        .role_name("dev-api-auth-auth0-AuthIdentityPoolAuthRole")
        .assume_role_policy_document(trust.to_string())
        .send()
        .await
        .unwrap();
    let invoke = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Action": "execute-api:Invoke",
        "Resource": format!("arn:aws:execute-api:us-east-1:{account}:{api_id}/*")}]});
    iam.put_role_policy()
        .role_name("dev-api-auth-auth0-AuthIdentityPoolAuthRole")
        .policy_name("sst-invoke")
        .policy_document(invoke.to_string())
        .send()
        .await
        .unwrap();
    cognito
        .set_identity_pool_roles()
        .identity_pool_id(&pool_id)
        .roles("authenticated", role.role().unwrap().arn())
        .send()
        .await
        .unwrap();
    Deployed {
        endpoint: format!("https://{api_id}.execute-api.us-east-1.amazonaws.com"),
        api_id,
        pool_id,
    }
}

/// Tag the API and the pool as the platform hands them over: `cluster`, and this object.
async fn mark(s: &Fixture, deployed: &Deployed, cluster: &str) {
    let tags = [
        ("authedapi.dev/cluster", cluster.to_owned()),
        (
            "authedapi.dev/adopt-by",
            format!("{}/{NAME}", s.namespace.name),
        ),
    ];
    aws_sdk_apigatewayv2::Client::new(&s.config)
        .tag_resource()
        .resource_arn(format!(
            "arn:aws:apigateway:us-east-1::/apis/{}",
            deployed.api_id
        ))
        .set_tags(Some(
            tags.iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        ))
        .send()
        .await
        .unwrap();
    let mut pool = s
        .aws
        .cognito
        .describe_identity_pool(&deployed.pool_id)
        .await
        .unwrap()
        .unwrap();
    pool.tags
        .extend(tags.iter().map(|(k, v)| (k.to_string(), v.clone())));
    s.aws.cognito.update_identity_pool(&pool).await.unwrap();
}

/// Public and signed private calls, one after the other, until `stop`: (calls, failures).
async fn calls_until(
    stop: Arc<AtomicBool>,
    endpoint: String,
    session: Session,
) -> (u32, Vec<String>) {
    let http = shared::web().http_client().unwrap();
    let (mut calls, mut failures) = (0, Vec::new());
    while !stop.load(Ordering::SeqCst) {
        let public = answer(http.get(format!("{endpoint}/public")).send().await.unwrap()).await;
        let private = answer(
            http.execute(signed(get(&format!("{endpoint}/private")), &session))
                .await
                .unwrap(),
        )
        .await;
        for (route, (status, body)) in [("public", public), ("private", private)] {
            calls += 1;
            if status != 200 {
                failures.push(format!("{route}: {status} {body}"));
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (calls, failures)
}

#[tokio::test]
async fn the_seed_deployed_by_sst_is_adopted_without_downtime() {
    let s = Fixture::new("op-adopt", &[]).await;
    let deployed = sst_deploy(&s).await;
    let token = id_token("adopter", &[]);
    let before = cognito_session(&s.config, &deployed.pool_id, &token)
        .await
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let calling = tokio::spawn(calls_until(
        stop.clone(),
        deployed.endpoint.clone(),
        before.clone(),
    ));

    let object = json!({
        "apiVersion": "authedapi.dev/v1alpha1", "kind": "AuthedApi",
        "metadata": {"name": NAME},
        "spec": {
            "stage": "dev",
            "auth0": {"domain": shared::AUTH0_DOMAIN, "clientId": shared::AUTH0_CLIENT_ID},
            "defaultAuthorization": "iam",
            "adopt": {"apiId": deployed.api_id, "identityPoolId": deployed.pool_id},
            "routes": [
                {"route": "GET /private", "target": {"lambda": {"functionArn":
                    format!("arn:aws:lambda:us-east-1:{}:function:sst-adopt-private", s.account.id)}}},
                {"route": "GET /public", "authorization": "none", "target": {"lambda": {"functionArn":
                    format!("arn:aws:lambda:us-east-1:{}:function:sst-adopt-public", s.account.id)}}}
            ]
        }
    });
    crate::common::apply(&s.api, &object).await;

    // Not marked: refused, with what to do.
    let refused = wait_stalled(&s.api, NAME, &s.operator).await;
    let (_, reason, message) = condition(&refused, "Stalled").unwrap();
    assert_eq!(reason, "AdoptionRefused", "{message}");
    assert!(
        message.contains(&format!(
            "authedapi.dev/adopt-by={}/{NAME}",
            s.namespace.name
        )),
        "{message}"
    );
    let handled = |value: &'static str| {
        move |o: &authedapi::api::AuthedApi| {
            o.status
                .as_ref()
                .and_then(|s| s.last_handled_reconcile_at.as_deref())
                == Some(value)
        }
    };

    // Marked for another cluster: never adopted.
    mark(&s, &deployed, "another-cluster").await;
    annotate(&s.api, NAME, RECONCILE_REQUESTED, Some("marked-elsewhere")).await;
    let elsewhere = wait_for(
        &s.api,
        NAME,
        &s.operator,
        Duration::from_secs(30),
        "handled",
        handled("marked-elsewhere"),
    )
    .await;
    let (_, reason, message) = condition(&elsewhere, "Stalled").unwrap();
    assert_eq!(reason, "AdoptionRefused", "{message}");
    assert!(message.contains("another cluster's"), "{message}");
    assert_eq!(elsewhere.status.unwrap().api_id, None);

    // Marked for this object: adopted.
    mark(&s, &deployed, "test").await;
    annotate(&s.api, NAME, RECONCILE_REQUESTED, Some("marked")).await;
    let adopted = s.ready(NAME).await;
    let status = adopted.status.unwrap();
    assert_eq!(status.api_id.as_deref(), Some(deployed.api_id.as_str()));
    assert_eq!(
        status.api_endpoint.as_deref(),
        Some(deployed.endpoint.as_str())
    );
    assert_eq!(
        status.identity_pool_id.as_deref(),
        Some(deployed.pool_id.as_str())
    );

    // A user logging in now has the same identity, and the operator's role.
    let after = cognito_session(&s.config, &deployed.pool_id, &token)
        .await
        .unwrap();
    assert_eq!(after.identity_id, before.identity_id);
    let http = shared::web().http_client().unwrap();
    let (code, body) = answer(
        http.execute(signed(
            get(&format!("{}/private", deployed.endpoint)),
            &after,
        ))
        .await
        .unwrap(),
    )
    .await;
    assert_eq!((code, body.as_str()), (200, "Hello user!"));
    // Calls go on a while with the adopted API.
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::SeqCst);
    let (calls, failures) = calling.await.unwrap();
    eprintln!(
        "[measure] adoption: {calls} calls during it, {} failed",
        failures.len()
    );
    assert!(calls >= 10, "the loop ran: {calls} calls");
    assert!(
        failures.is_empty(),
        "calls failed during adoption: {failures:?}"
    );
}
