//! The AWS modules against the emulator: every resource kind of DESIGN.md's table is
//! created, read back and deleted with the AWS SDK for Rust, SigV4-signed as for AWS.

mod common;

use std::collections::BTreeMap;

use authedapi::aws::apigateway::{
    Authorizer, DEFAULT_STAGE, IntegrationTarget, LambdaAuthorizerConfig, RouteAuth,
};
use authedapi::aws::cognito::{Cognito, IdentityPool, PoolRoles};
use authedapi::aws::{AwsClients, ErrorKind};
use authedapi_rig::shared;
use serde_json::json;

async fn clients() -> (AwsClients, authedapi_rig::Account, aws_types::SdkConfig) {
    let account = shared::account();
    let config = account.sdk_config().await;
    (AwsClients::new(&config, &[]), account, config)
}

fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[tokio::test]
async fn caller_identity_is_the_account() {
    let (aws, account, _) = clients().await;
    let me = aws.sts.caller_identity().await.unwrap();
    assert_eq!(me.account, account.id);
}

#[tokio::test]
async fn http_api_integrations_authorizer_routes_and_stage() {
    let (aws, _, config) = clients().await;
    let gw = &aws.apigateway;
    let owner = tags(&[("authedapi.dev/uid", "u-1")]);

    let api = gw.create_api("dev-api-auth-auth0", &owner).await.unwrap();
    assert!(!api.id.is_empty());
    assert_eq!(api.tags, owner);
    let read = gw.get_api(&api.id).await.unwrap().expect("the API exists");
    assert_eq!(read.name, "dev-api-auth-auth0");
    assert_eq!(read.tags, owner);
    let found = gw.find_apis_by_name("dev-api-auth-auth0").await.unwrap();
    assert_eq!(
        found.iter().map(|a| &a.id).collect::<Vec<_>>(),
        vec![&api.id]
    );

    // Integrations: a Lambda function (AWS_PROXY, 2.0) and a URL (HTTP_PROXY).
    let function_arn = common::ensure_function(&config, "private").await;
    let lambda = IntegrationTarget::Lambda {
        function_arn: function_arn.clone(),
        payload_format_version: "2.0".into(),
    };
    let http = IntegrationTarget::Http {
        url: "https://example.com/public".into(),
        method: "ANY".into(),
    };
    let lambda_id = gw.create_integration(&api.id, &lambda).await.unwrap();
    let http_id = gw.create_integration(&api.id, &http).await.unwrap();
    let integrations = gw.list_integrations(&api.id).await.unwrap();
    assert_eq!(integrations.len(), 2);
    let target_of = |id: &str| {
        integrations
            .iter()
            .find(|i| i.id == id)
            .and_then(|i| i.target.clone())
    };
    assert_eq!(target_of(&lambda_id), Some(lambda));
    assert_eq!(target_of(&http_id), Some(http));

    // A JWT authorizer with the issuer's trailing slash and the client id as audience.
    let issuer = "https://myorg.us.auth0.com/";
    let audience = vec!["UsGRQJJz5sDfPQDs6bhQ9Oc3hNISuVif".to_owned()];
    let authorizer_id = gw
        .create_jwt_authorizer(&api.id, "auth0", issuer, &audience)
        .await
        .unwrap();
    let authorizers = gw.list_authorizers(&api.id).await.unwrap();
    assert_eq!(authorizers.len(), 1);
    let jwt = authorizers[0].as_jwt().expect("a JWT authorizer");
    assert_eq!(jwt.issuer, issuer);
    assert_eq!(jwt.audience, audience);

    // A Lambda REQUEST authorizer, read back with its settings beside the JWT one, and
    // updated in place.
    let function = "arn:aws:lambda:us-east-1:123456789012:function:auth";
    let mut config = LambdaAuthorizerConfig {
        uri: format!(
            "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/{function}/invocations"
        ),
        identity_sources: vec!["$request.header.Authorization".into()],
        result_ttl_seconds: 300,
        simple_responses: true,
        payload_format_version: "2.0".into(),
    };
    let lambda_authorizer_id = gw
        .create_request_authorizer(&api.id, "lambda-users", &config)
        .await
        .unwrap();
    let request = |authorizers: &[Authorizer]| {
        authorizers
            .iter()
            .find_map(|a| {
                a.as_request()
                    .filter(|r| r.id == lambda_authorizer_id)
                    .cloned()
            })
            .expect("the REQUEST authorizer")
    };
    let authorizers = gw.list_authorizers(&api.id).await.unwrap();
    assert_eq!(authorizers.len(), 2);
    let read = request(&authorizers);
    assert_eq!(
        (read.name.as_str(), &read.config),
        ("lambda-users", &config)
    );
    config.identity_sources = vec![
        "$request.header.Authorization".into(),
        "$request.querystring.team".into(),
    ];
    config.result_ttl_seconds = 0;
    config.simple_responses = false;
    config.payload_format_version = "1.0".into();
    gw.update_request_authorizer(&api.id, &lambda_authorizer_id, &config)
        .await
        .unwrap();
    assert_eq!(
        request(&gw.list_authorizers(&api.id).await.unwrap()).config,
        config
    );

    // Routes: AWS_IAM, NONE and JWT with scopes.
    let jwt = RouteAuth::Jwt {
        authorizer_id: authorizer_id.clone(),
        scopes: vec!["read:reports".into()],
    };
    let private = gw
        .create_route(&api.id, "GET /private", &lambda_id, &RouteAuth::Iam)
        .await
        .unwrap();
    gw.create_route(&api.id, "GET /public", &http_id, &RouteAuth::None)
        .await
        .unwrap();
    let custom = RouteAuth::Custom {
        authorizer_id: lambda_authorizer_id.clone(),
    };
    gw.create_route(&api.id, "GET /hello", &lambda_id, &custom)
        .await
        .unwrap();
    gw.create_route(&api.id, "GET /reports", &lambda_id, &jwt)
        .await
        .unwrap();
    let duplicate = gw
        .create_route(&api.id, "GET /public", &http_id, &RouteAuth::None)
        .await
        .unwrap_err();
    assert_eq!(
        duplicate.kind,
        ErrorKind::Conflict,
        "route keys are unique per API: {duplicate}"
    );
    let routes = gw.list_routes(&api.id).await.unwrap();
    let auth_of = |key: &str| routes.iter().find(|r| r.key == key).map(|r| r.auth.clone());
    assert_eq!(auth_of("GET /private"), Some(RouteAuth::Iam));
    assert_eq!(auth_of("GET /public"), Some(RouteAuth::None));
    assert_eq!(auth_of("GET /reports"), Some(jwt));
    assert_eq!(auth_of("GET /hello"), Some(custom));
    assert!(routes.iter().all(|r| r.integration_id.is_some()));

    // Flipping a route from AWS_IAM to NONE takes, because the type is sent explicitly.
    gw.update_route(&api.id, &private, &http_id, &RouteAuth::None)
        .await
        .unwrap();
    let routes = gw.list_routes(&api.id).await.unwrap();
    let flipped = routes.iter().find(|r| r.id == private).unwrap();
    assert_eq!(flipped.auth, RouteAuth::None);
    assert_eq!(flipped.integration_id.as_deref(), Some(http_id.as_str()));

    // The $default stage, auto-deployed.
    assert_eq!(gw.get_stage(&api.id, DEFAULT_STAGE).await.unwrap(), None);
    gw.create_stage(&api.id, DEFAULT_STAGE, &owner, &Default::default())
        .await
        .unwrap();
    let stage = gw
        .get_stage(&api.id, DEFAULT_STAGE)
        .await
        .unwrap()
        .expect("the stage");
    assert!(stage.auto_deploy);

    // Delete, innermost first; reads then come back empty.
    gw.delete_stage(&api.id, DEFAULT_STAGE).await.unwrap();
    assert_eq!(gw.get_stage(&api.id, DEFAULT_STAGE).await.unwrap(), None);
    for route in gw.list_routes(&api.id).await.unwrap() {
        gw.delete_route(&api.id, &route.id).await.unwrap();
    }
    gw.delete_authorizer(&api.id, &authorizer_id).await.unwrap();
    gw.delete_authorizer(&api.id, &lambda_authorizer_id)
        .await
        .unwrap();
    gw.delete_integration(&api.id, &lambda_id).await.unwrap();
    gw.delete_integration(&api.id, &http_id).await.unwrap();
    assert!(gw.list_routes(&api.id).await.unwrap().is_empty());
    assert!(gw.list_integrations(&api.id).await.unwrap().is_empty());
    assert!(gw.list_authorizers(&api.id).await.unwrap().is_empty());
    gw.delete_api(&api.id).await.unwrap();
    assert_eq!(gw.get_api(&api.id).await.unwrap(), None);
}

#[tokio::test]
async fn oidc_provider_client_ids_added_and_removed() {
    let (aws, account, _) = clients().await;
    let ours = tags(&[("authedapi.dev/cluster", "test")]);
    let arn = aws
        .iam
        .create_oidc_provider("https://myorg.us.auth0.com", &["client-a".into()], &ours)
        .await
        .unwrap();
    assert_eq!(
        arn,
        format!(
            "arn:aws:iam::{}:oidc-provider/myorg.us.auth0.com",
            account.id
        )
    );
    aws.iam.add_client_id(&arn, "client-b").await.unwrap();
    aws.iam.add_client_id(&arn, "client-b").await.unwrap(); // idempotent, as in IAM
    let provider = aws
        .iam
        .get_oidc_provider(&arn)
        .await
        .unwrap()
        .expect("the provider");
    assert_eq!(provider.url, "myorg.us.auth0.com");
    assert_eq!(provider.client_ids, vec!["client-a", "client-b"]);
    assert_eq!(provider.tags, ours);

    aws.iam.remove_client_id(&arn, "client-a").await.unwrap();
    let provider = aws.iam.get_oidc_provider(&arn).await.unwrap().unwrap();
    assert_eq!(provider.client_ids, vec!["client-b"]);

    aws.iam
        .tag_oidc_provider(&arn, &tags(&[("k", "v")]))
        .await
        .unwrap();
    aws.iam
        .untag_oidc_provider(&arn, &["authedapi.dev/cluster".into()])
        .await
        .unwrap();
    let provider = aws.iam.get_oidc_provider(&arn).await.unwrap().unwrap();
    assert_eq!(provider.tags, tags(&[("k", "v")]));

    // A second provider for the same URL is refused: URLs are unique per account.
    let dup = aws
        .iam
        .create_oidc_provider("https://myorg.us.auth0.com", &[], &ours)
        .await
        .unwrap_err();
    assert_eq!(dup.kind, ErrorKind::Conflict, "{dup}");

    aws.iam.delete_oidc_provider(&arn).await.unwrap();
    assert_eq!(aws.iam.get_oidc_provider(&arn).await.unwrap(), None);
    let missing = aws.iam.add_client_id(&arn, "client-c").await.unwrap_err();
    assert_eq!(missing.kind, ErrorKind::NotFound, "{missing}");
}

#[tokio::test]
async fn identity_pool_with_tags_and_roles() {
    let (aws, account, _) = clients().await;
    let provider = format!(
        "arn:aws:iam::{}:oidc-provider/myorg.us.auth0.com",
        account.id
    );
    let wanted = IdentityPool {
        id: String::new(),
        name: "dev_api_auth_auth0".into(),
        allow_unauthenticated: false,
        oidc_provider_arns: vec![provider.clone()],
        tags: tags(&[("authedapi.dev/uid", "u-1")]),
    };
    let pool = aws.cognito.create_identity_pool(&wanted).await.unwrap();
    assert!(pool.id.starts_with("us-east-1:"), "{}", pool.id);
    let read = aws
        .cognito
        .describe_identity_pool(&pool.id)
        .await
        .unwrap()
        .expect("the pool");
    assert_eq!(
        IdentityPool {
            id: String::new(),
            ..read.clone()
        },
        wanted
    );
    assert_eq!(
        aws.cognito
            .find_identity_pools_by_name("dev_api_auth_auth0")
            .await
            .unwrap(),
        vec![pool.id.clone()]
    );

    // Update replaces the whole pool.
    let replaced = IdentityPool {
        name: "dev_renamed".into(),
        oidc_provider_arns: vec![],
        ..read.clone()
    };
    aws.cognito.update_identity_pool(&replaced).await.unwrap();
    assert_eq!(
        aws.cognito.describe_identity_pool(&pool.id).await.unwrap(),
        Some(replaced)
    );

    // Roles.
    assert_eq!(
        aws.cognito.get_roles(&pool.id).await.unwrap(),
        PoolRoles::default()
    );
    let roles = PoolRoles {
        authenticated: Some(format!(
            "arn:aws:iam::{}:role/authedapi/dev-auth",
            account.id
        )),
        unauthenticated: None,
        mapping: None,
    };
    aws.cognito.set_roles(&pool.id, &roles).await.unwrap();
    assert_eq!(aws.cognito.get_roles(&pool.id).await.unwrap(), roles);

    // Tags by ARN.
    let arn = Cognito::pool_arn("aws", "us-east-1", &account.id, &pool.id);
    aws.cognito
        .tag(&arn, &tags(&[("extra", "1")]))
        .await
        .unwrap();
    assert_eq!(
        aws.cognito.list_tags(&arn).await.unwrap(),
        tags(&[("authedapi.dev/uid", "u-1"), ("extra", "1")])
    );
    aws.cognito.untag(&arn, &["extra".into()]).await.unwrap();
    assert_eq!(
        aws.cognito.list_tags(&arn).await.unwrap(),
        tags(&[("authedapi.dev/uid", "u-1")])
    );

    aws.cognito.delete_identity_pool(&pool.id).await.unwrap();
    assert_eq!(
        aws.cognito.describe_identity_pool(&pool.id).await.unwrap(),
        None
    );
    let gone = aws.cognito.get_roles(&pool.id).await.unwrap_err();
    assert_eq!(gone.kind, ErrorKind::NotFound, "{gone}");
}

#[tokio::test]
async fn role_with_trust_policy_and_inline_policy() {
    let (aws, account, _) = clients().await;
    let trust = json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Federated": "cognito-identity.amazonaws.com"},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {
                "StringEquals": {"cognito-identity.amazonaws.com:aud": "us-east-1:pool"},
                "ForAnyValue:StringLike": {"cognito-identity.amazonaws.com:amr": "authenticated"}
            }
        }]
    });
    let owner = tags(&[("authedapi.dev/uid", "u-1")]);
    let role = aws
        .iam
        .create_role(
            "/authedapi/",
            "dev-auth",
            &trust,
            "test",
            &owner,
            &format!(
                "arn:aws:iam::{}:policy/authedapi-permissions-boundary",
                account.id
            ),
        )
        .await
        .unwrap();
    assert_eq!(
        role.arn,
        format!("arn:aws:iam::{}:role/authedapi/dev-auth", account.id)
    );
    let read = aws
        .iam
        .get_role("dev-auth")
        .await
        .unwrap()
        .expect("the role");
    assert_eq!(read.trust_policy, trust, "decoded from IAM's URL encoding");
    assert_eq!(read.tags, owner);

    let mut changed = trust.clone();
    changed["Statement"][0]["Condition"]["StringEquals"]["cognito-identity.amazonaws.com:aud"] =
        json!("us-east-1:other");
    aws.iam
        .update_trust_policy("dev-auth", &changed)
        .await
        .unwrap();
    assert_eq!(
        aws.iam
            .get_role("dev-auth")
            .await
            .unwrap()
            .unwrap()
            .trust_policy,
        changed
    );

    let invoke = json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Action": "execute-api:Invoke",
            "Resource": [format!("arn:aws:execute-api:us-east-1:{}:abc123/$default/GET/private", account.id)]
        }]
    });
    assert_eq!(
        aws.iam.get_role_policy("dev-auth", "invoke").await.unwrap(),
        None
    );
    aws.iam
        .put_role_policy("dev-auth", "invoke", &invoke)
        .await
        .unwrap();
    assert_eq!(
        aws.iam.get_role_policy("dev-auth", "invoke").await.unwrap(),
        Some(invoke)
    );
    assert_eq!(
        aws.iam.list_role_policies("dev-auth").await.unwrap(),
        vec!["invoke"]
    );

    aws.iam
        .delete_role_policy("dev-auth", "invoke")
        .await
        .unwrap();
    assert!(
        aws.iam
            .list_role_policies("dev-auth")
            .await
            .unwrap()
            .is_empty()
    );
    aws.iam.delete_role("dev-auth").await.unwrap();
    assert_eq!(aws.iam.get_role("dev-auth").await.unwrap(), None);
}

#[tokio::test]
async fn lambda_permission_for_one_api() {
    let (aws, account, config) = clients().await;
    let function = common::ensure_function(&config, "public").await;
    assert_eq!(
        aws.lambda.permissions(&function).await.unwrap(),
        Some(vec![])
    );

    let source = format!(
        "arn:aws:execute-api:us-east-1:{}:abc123/*/*/public",
        account.id
    );
    aws.lambda
        .add_permission(&function, "authedapi-1", &source)
        .await
        .unwrap();
    let permissions = aws.lambda.permissions(&function).await.unwrap().unwrap();
    assert_eq!(permissions.len(), 1);
    assert_eq!(permissions[0].sid, "authedapi-1");
    assert_eq!(
        permissions[0].principal.as_deref(),
        Some("apigateway.amazonaws.com")
    );
    assert_eq!(permissions[0].source_arn.as_deref(), Some(source.as_str()));

    let again = aws
        .lambda
        .add_permission(&function, "authedapi-1", &source)
        .await
        .unwrap_err();
    assert_eq!(again.kind, ErrorKind::Conflict, "{again}");

    aws.lambda
        .remove_permission(&function, "authedapi-1")
        .await
        .unwrap();
    assert_eq!(
        aws.lambda.permissions(&function).await.unwrap(),
        Some(vec![])
    );

    let missing = format!("arn:aws:lambda:us-east-1:{}:function:missing", account.id);
    assert_eq!(aws.lambda.permissions(&missing).await.unwrap(), None);
}

/// VPC links (created with tags, listed, read, renamed, deleted) and a private integration
/// through one, read back with its link and TLS server name.
#[tokio::test]
async fn vpc_link_and_a_private_integration_through_it() {
    let (aws, account, _) = clients().await;
    let links = &aws.vpc_links;
    let owner = tags(&[("authedapi.dev/uid", "u-1")]);
    let subnets = ["subnet-4e5f6a7b".to_owned(), "subnet-0a1b2c3d".to_owned()];
    let link = links
        .create_vpc_link("dev-orders", &subnets, &["sg-0123abcd".to_owned()], &owner)
        .await
        .unwrap();
    assert_eq!(link.status, "AVAILABLE");
    assert_eq!(
        link.subnet_ids,
        ["subnet-0a1b2c3d", "subnet-4e5f6a7b"],
        "sorted"
    );
    assert_eq!(link.tags, owner);
    assert_eq!(
        links.get_vpc_link(&link.id).await.unwrap(),
        Some(link.clone())
    );
    assert_eq!(
        links.list_vpc_links().await.unwrap(),
        std::slice::from_ref(&link)
    );
    links.rename_vpc_link(&link.id, "renamed").await.unwrap();
    let renamed = links.get_vpc_link(&link.id).await.unwrap().unwrap();
    assert_eq!(renamed.name, "renamed");

    let gw = &aws.apigateway;
    let api = gw.create_api("dev-orders", &owner).await.unwrap();
    let private = IntegrationTarget::Private {
        uri: format!(
            "arn:aws:elasticloadbalancing:{}:{}:listener/app/orders/50dc6c495c0c9188/f2f7dc8efc522ab2",
            account.region, account.id
        ),
        vpc_link_id: link.id.clone(),
        tls_server_name: Some("orders.internal".into()),
    };
    let id = gw.create_integration(&api.id, &private).await.unwrap();
    let integrations = gw.list_integrations(&api.id).await.unwrap();
    assert_eq!(integrations.len(), 1);
    assert_eq!(integrations[0].id, id);
    assert_eq!(integrations[0].target, Some(private));

    gw.delete_api(&api.id).await.unwrap();
    links.delete_vpc_link(&link.id).await.unwrap();
    assert_eq!(links.get_vpc_link(&link.id).await.unwrap(), None);
    let again = links.delete_vpc_link(&link.id).await.unwrap_err();
    assert_eq!(again.kind, ErrorKind::NotFound);
}
