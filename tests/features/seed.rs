//! The seed: `examples/authedapi.yaml` applied to a namespace becomes Ready, and AWS then
//! holds exactly what the example describes — an HTTP API whose GET /private needs IAM
//! credentials and GET /public is open, a `$default` auto-deploy stage, an identity pool
//! federated with the Auth0 tenant and no guests, a role only its authenticated
//! identities may assume that may invoke the private route, the OIDC provider, and
//! permissions for the API to invoke both functions. Every fact is read back from the
//! emulator.

use std::time::Instant;

use authedapi::aws::apigateway::RouteAuth;
use authedapi::aws::cognito::PoolRoles;
use serde_json::json;

use crate::common::{self, Fixture, apply, uid};

#[tokio::test]
async fn seed_example_becomes_ready_with_the_seed_resources() {
    let s = Fixture::new("op-seed", &[]).await;
    let started = Instant::now();
    apply(&s.api, &s.seed("api-auth-auth0").await).await;
    let obj = s.ready("api-auth-auth0").await;
    let time_to_ready = started.elapsed();
    let status = obj.status.clone().unwrap();
    let api_id = status.api_id.clone().expect("apiId in status");
    let pool_id = status
        .identity_pool_id
        .clone()
        .expect("identityPoolId in status");

    assert_eq!(
        status.api_endpoint.as_deref(),
        Some(format!("https://{api_id}.execute-api.us-east-1.amazonaws.com").as_str())
    );
    assert_eq!(status.account_id.as_deref(), Some(s.account.id.as_str()));
    assert_eq!(status.region.as_deref(), Some("us-east-1"));

    // Routes: GET /private is AWS_IAM, GET /public is NONE.
    let routes = s.aws.apigateway.list_routes(&api_id).await.unwrap();
    let auth_of = |key: &str| routes.iter().find(|r| r.key == key).map(|r| r.auth.clone());
    assert_eq!(routes.len(), 2);
    assert_eq!(auth_of("GET /private"), Some(RouteAuth::Iam));
    assert_eq!(auth_of("GET /public"), Some(RouteAuth::None));
    let stage = s
        .aws
        .apigateway
        .get_stage(&api_id, "$default")
        .await
        .unwrap()
        .unwrap();
    assert!(stage.auto_deploy);

    // The role: trusted by this pool's authenticated identities only.
    let role_arn = status.authenticated_role_arn.clone().unwrap();
    let role_name = role_arn.rsplit('/').next().unwrap();
    let role = s
        .aws
        .iam
        .get_role(role_name)
        .await
        .unwrap()
        .expect("the role");
    let condition = &role.trust_policy["Statement"][0]["Condition"];
    assert_eq!(
        condition["StringEquals"]["cognito-identity.amazonaws.com:aud"],
        json!(pool_id)
    );
    assert_eq!(
        condition["ForAnyValue:StringLike"]["cognito-identity.amazonaws.com:amr"],
        json!("authenticated")
    );
    assert_eq!(role.tags["authedapi.dev/uid"], uid(&obj));

    // Its policy allows exactly the private route.
    let policy = s
        .aws
        .iam
        .get_role_policy(role_name, "authedapi-invoke")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        policy["Statement"][0]["Resource"],
        json!([s.arn(&format!("{api_id}/$default/GET/private"))])
    );
    assert_eq!(
        policy["Statement"][0]["Action"],
        json!("execute-api:Invoke")
    );

    // The pool: that role as authenticated, the Auth0 provider, no guests.
    let pool = s
        .aws
        .cognito
        .describe_identity_pool(&pool_id)
        .await
        .unwrap()
        .unwrap();
    let provider_arn = format!(
        "arn:aws:iam::{}:oidc-provider/myorg.us.auth0.com",
        s.account.id
    );
    assert_eq!(pool.oidc_provider_arns, vec![provider_arn.clone()]);
    assert!(!pool.allow_unauthenticated);
    assert_eq!(
        s.aws.cognito.get_roles(&pool_id).await.unwrap(),
        PoolRoles {
            authenticated: Some(role_arn.clone()),
            unauthenticated: None,
            mapping: None,
        }
    );
    let provider = s
        .aws
        .iam
        .get_oidc_provider(&provider_arn)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        provider.client_ids,
        vec!["UsGRQJJz5sDfPQDs6bhQ9Oc3hNISuVif"]
    );

    // Both functions may be invoked by this API.
    for (function, permissions) in common::seed_permissions(&s.aws, &s.account).await {
        assert_eq!(permissions.len(), 1, "{function}: {permissions:?}");
        assert_eq!(
            permissions[0].source_arn.as_deref(),
            Some(s.arn(&format!("{api_id}/*")).as_str())
        );
    }

    let creation_requests = s.operator.aws_requests(None).await;
    let creation_writes = s.operator.aws_requests(Some("write")).await;
    eprintln!(
        "[measure] seed: Ready in {:.2}s; {creation_requests} AWS requests ({creation_writes} writes) to create",
        time_to_ready.as_secs_f64()
    );
}

#[tokio::test]
async fn what_the_operator_made_is_told_in_events_about_the_object() {
    use k8s_openapi::api::events::v1::Event;
    let s = Fixture::new("op-seed-events", &[]).await;
    let obj = s.seed_ready("told").await;
    let ours: Vec<Event> = s
        .events()
        .await
        .into_iter()
        .filter(|e| e.reporting_controller.as_deref() == Some("authedapi"))
        .collect();
    let told = |reason: &str, action: &str| {
        ours.iter().any(|e| {
            e.reason.as_deref() == Some(reason)
                && e.action.as_deref() == Some(action)
                && e.type_.as_deref() == Some("Normal")
                && e.regarding.as_ref().and_then(|r| r.uid.clone()) == obj.metadata.uid
        })
    };
    assert!(told("Created", "CreateApi"), "{ours:#?}");
    assert!(told("Created", "CreateIdentityPool"), "{ours:#?}");
    assert!(told("Ready", "Reconcile"), "{ours:#?}");
}
