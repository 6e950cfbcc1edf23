//! The threat model (README, "Threat model"), one test per threat: each attempts what the
//! threat would do — with the operator's own AWS credentials (a role holding the shipped
//! policy, rendered for this cluster) or as a namespace user — and shows it refused by
//! the rig's IAM judge or by the operator, as AWS and the operator would refuse it.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use authedapi::api::AuthedApi;
use authedapi_rig::{Account, Credentials, OperatorIdentity, TestNamespace, shared};
use aws_sdk_iam::error::ProvideErrorMetadata;
use kube::api::Api;
use serde_json::json;

use common::{Operator, apply, ensure_function, install_crd, seed_in, wait_for, wait_gone};

/// This cluster's id, as the operator's policy is rendered for it.
const CLUSTER: &str = "test";

/// An account, its administrator's SDK config, and the operator's credentials in it.
struct Thief {
    account: Account,
    admin: aws_types::SdkConfig,
    operator: aws_types::SdkConfig,
}

async fn thief_with(args: &[&str]) -> Thief {
    let account = shared::account();
    let identity = OperatorIdentity::provision(
        &account,
        std::path::Path::new(env!("CARGO_BIN_EXE_authedapi")),
        CLUSTER,
        &authedapi_rig::operator_identity::PolicyOptions {
            args: args.iter().map(|a| a.to_string()).collect(),
        },
    )
    .await
    .unwrap();
    Thief {
        admin: account.sdk_config().await,
        operator: account.sdk_config_as(&identity.credentials).await,
        account,
    }
}

async fn thief() -> Thief {
    thief_with(&[]).await
}

/// `result` failed with AWS's AccessDenied (in the service's own spelling) and a message
/// naming `action`.
fn assert_denied<T: std::fmt::Debug, E: ProvideErrorMetadata + std::fmt::Debug>(
    result: Result<T, E>,
    action: &str,
) {
    let e = result.expect_err(&format!("{action} was allowed"));
    let code = e.code().unwrap_or_default();
    assert!(
        code == "AccessDenied" || code == "AccessDeniedException",
        "{action}: {e:?}"
    );
    let message = e.message().unwrap_or_default();
    assert!(
        message.contains(&format!("is not authorized to perform: {action}")),
        "{action}: {message}"
    );
}

fn tags(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn iam_tags(pairs: &[(&str, &str)]) -> Vec<aws_sdk_iam::types::Tag> {
    pairs
        .iter()
        .map(|(k, v)| {
            aws_sdk_iam::types::Tag::builder()
                .key(*k)
                .value(*v)
                .build()
                .unwrap()
        })
        .collect()
}

fn trust_of(account: &str) -> String {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"AWS": format!("arn:aws:iam::{account}:root")},
            "Action": "sts:AssumeRole"
        }]
    })
    .to_string()
}

fn boundary_of(account: &Account) -> String {
    format!(
        "arn:aws:iam::{}:policy/authedapi-permissions-boundary",
        account.id
    )
}

#[tokio::test]
async fn a_role_without_the_boundary_cannot_be_created() {
    let t = thief().await;
    let iam = aws_sdk_iam::Client::new(&t.operator);
    let attempt = iam
        .create_role()
        .path("/authedapi/")
        .role_name("escape-hatch")
        .assume_role_policy_document(trust_of("999999999999"))
        .set_tags(Some(iam_tags(&[("authedapi.dev/cluster", CLUSTER)])))
        .send()
        .await;
    assert_denied(attempt, "iam:CreateRole");
    // Nor with another boundary of the thief's choosing.
    let attempt = iam
        .create_role()
        .path("/authedapi/")
        .role_name("escape-hatch")
        .assume_role_policy_document(trust_of("999999999999"))
        .permissions_boundary(format!(
            "arn:aws:iam::{}:policy/AdministratorAccess",
            t.account.id
        ))
        .set_tags(Some(iam_tags(&[("authedapi.dev/cluster", CLUSTER)])))
        .send()
        .await;
    assert_denied(attempt, "iam:CreateRole");
}

#[tokio::test]
async fn a_policy_put_on_a_bounded_role_grants_nothing_beyond_invoking_apis() {
    let t = thief().await;
    let iam = aws_sdk_iam::Client::new(&t.operator);
    // What the operator may do: a bounded role of this cluster, with any inline policy
    // (the thief writes `*:*`) and a trust the thief chooses (here this account's root,
    // so the test can use the role; an outside account would do as well).
    iam.create_role()
        .path("/authedapi/")
        .role_name("thiefs-role")
        .assume_role_policy_document(trust_of(&t.account.id))
        .permissions_boundary(boundary_of(&t.account))
        .set_tags(Some(iam_tags(&[("authedapi.dev/cluster", CLUSTER)])))
        .send()
        .await
        .unwrap();
    iam.put_role_policy()
        .role_name("thiefs-role")
        .policy_name("everything")
        .policy_document(
            json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})
                .to_string(),
        )
        .send()
        .await
        .unwrap();
    // The boundary cannot be taken off or swapped.
    assert_denied(
        iam.delete_role_permissions_boundary()
            .role_name("thiefs-role")
            .send()
            .await,
        "iam:DeleteRolePermissionsBoundary",
    );
    assert_denied(
        iam.put_role_permissions_boundary()
            .role_name("thiefs-role")
            .permissions_boundary(format!("arn:aws:iam::{}:policy/open", t.account.id))
            .send()
            .await,
        "iam:PutRolePermissionsBoundary",
    );
    // A session of the role may do nothing but invoke APIs.
    let sts = aws_sdk_sts::Client::new(&t.admin);
    let session = sts
        .assume_role()
        .role_arn(format!(
            "arn:aws:iam::{}:role/authedapi/thiefs-role",
            t.account.id
        ))
        .role_session_name("thief")
        .send()
        .await
        .unwrap();
    let c = session.credentials().unwrap();
    let as_role = t
        .account
        .sdk_config_as(&Credentials {
            access_key_id: c.access_key_id().to_owned(),
            secret_access_key: c.secret_access_key().to_owned(),
            session_token: Some(c.session_token().to_owned()),
        })
        .await;
    let attempt = aws_sdk_iam::Client::new(&as_role)
        .create_user()
        .user_name("backdoor")
        .send()
        .await;
    assert_denied(attempt, "iam:CreateUser");
    let e = aws_sdk_iam::Client::new(&as_role)
        .list_roles()
        .send()
        .await
        .unwrap_err();
    assert!(
        e.message()
            .unwrap_or_default()
            .contains("because no permissions boundary allows"),
        "{e:?}"
    );
    // And a role the operator did not create (no boundary) takes no policy from it.
    aws_sdk_iam::Client::new(&t.admin)
        .create_role()
        .path("/authedapi/")
        .role_name("unbounded")
        .assume_role_policy_document(trust_of(&t.account.id))
        .set_tags(Some(iam_tags(&[("authedapi.dev/cluster", CLUSTER)])))
        .send()
        .await
        .unwrap();
    assert_denied(
        iam.put_role_policy()
            .role_name("unbounded")
            .policy_name("everything")
            .policy_document(
                json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})
                    .to_string(),
            )
            .send()
            .await,
        "iam:PutRolePolicy",
    );
}

#[tokio::test]
async fn oidc_providers_not_ours_cannot_be_tagged_stripped_or_deleted() {
    let t = thief().await;
    let admin = aws_sdk_iam::Client::new(&t.admin);
    let iam = aws_sdk_iam::Client::new(&t.operator);
    let create = |url: &str, tag_pairs: &[(&str, &str)]| {
        admin
            .create_open_id_connect_provider()
            .url(url)
            .client_id_list("theirs")
            .set_tags(Some(iam_tags(tag_pairs)))
            .send()
    };
    // The cluster's own IRSA provider, a CI provider: not an allowed issuer at all.
    let irsa = create("https://oidc.eks.us-east-1.amazonaws.com/id/ABCDEF", &[])
        .await
        .unwrap()
        .open_id_connect_provider_arn
        .unwrap();
    // An Auth0 provider another cluster's operator created, and one the platform made and
    // protected by giving it a cluster tag of its own.
    let others = create(
        "https://other-cluster.auth0.com",
        &[
            ("authedapi.dev/managed-by", "authedapi"),
            ("authedapi.dev/cluster", "other"),
        ],
    )
    .await
    .unwrap()
    .open_id_connect_provider_arn
    .unwrap();
    let protected = create(
        "https://platform.auth0.com",
        &[("authedapi.dev/cluster", "platform")],
    )
    .await
    .unwrap()
    .open_id_connect_provider_arn
    .unwrap();

    let claim_ours = iam_tags(&[
        ("authedapi.dev/managed-by", "authedapi"),
        ("authedapi.dev/cluster", CLUSTER),
    ]);
    for arn in [&irsa, &others, &protected] {
        assert_denied(
            iam.tag_open_id_connect_provider()
                .open_id_connect_provider_arn(arn)
                .set_tags(Some(claim_ours.clone()))
                .send()
                .await,
            "iam:TagOpenIDConnectProvider",
        );
        assert_denied(
            iam.untag_open_id_connect_provider()
                .open_id_connect_provider_arn(arn)
                .tag_keys("authedapi.dev/cluster")
                .send()
                .await,
            "iam:UntagOpenIDConnectProvider",
        );
        assert_denied(
            iam.remove_client_id_from_open_id_connect_provider()
                .open_id_connect_provider_arn(arn)
                .client_id("theirs")
                .send()
                .await,
            "iam:RemoveClientIDFromOpenIDConnectProvider",
        );
        assert_denied(
            iam.delete_open_id_connect_provider()
                .open_id_connect_provider_arn(arn)
                .send()
                .await,
            "iam:DeleteOpenIDConnectProvider",
        );
    }
    // Issuers outside the allowed list are not touched at all, not even to add a client id.
    assert_denied(
        iam.add_client_id_to_open_id_connect_provider()
            .open_id_connect_provider_arn(&irsa)
            .client_id("mine")
            .send()
            .await,
        "iam:AddClientIDToOpenIDConnectProvider",
    );
    // Another cluster's records on a shared provider are not ours to strip.
    admin
        .tag_open_id_connect_provider()
        .open_id_connect_provider_arn(&others)
        .set_tags(Some(iam_tags(&[(
            "authedapi.dev/uses/0ther000/1234abcd",
            "theirs",
        )])))
        .send()
        .await
        .unwrap();
    assert_denied(
        iam.untag_open_id_connect_provider()
            .open_id_connect_provider_arn(&others)
            .tag_keys("authedapi.dev/uses/0ther000/1234abcd")
            .send()
            .await,
        "iam:UntagOpenIDConnectProvider",
    );
    let untouched = admin
        .get_open_id_connect_provider()
        .open_id_connect_provider_arn(&others)
        .send()
        .await
        .unwrap();
    assert_eq!(untouched.client_id_list(), ["theirs"]);
    assert_eq!(untouched.tags().len(), 3);
}

/// A namespace with the operator (judged, shipped policy) watching it.
struct Namespace {
    name: String,
    api: Api<AuthedApi>,
    account: Account,
    config: aws_types::SdkConfig,
    operator: Operator,
}

async fn namespace(prefix: &str) -> Namespace {
    let client = shared::client().await;
    install_crd(&client).await.unwrap();
    let ns = TestNamespace::create(&client, prefix).await.unwrap();
    let account = shared::account();
    let config = account.sdk_config().await;
    let operator = Operator::start(&ns.name, &account, &[], &[]).await;
    Namespace {
        api: Api::namespaced(client, &ns.name),
        name: ns.name,
        account,
        config,
        operator,
    }
}

fn stalled_with(obj: &AuthedApi, reason: &str) -> Option<String> {
    obj.status.as_ref()?.conditions.iter().find_map(|c| {
        (c.type_ == "Stalled" && c.status == "True" && c.reason == reason)
            .then(|| c.message.clone())
    })
}

async fn wait_stalled(ns: &Namespace, name: &str, reason: &str) -> String {
    let obj = wait_for(
        &ns.api,
        name,
        &ns.operator,
        Duration::from_secs(60),
        reason,
        |o| stalled_with(o, reason).is_some(),
    )
    .await;
    stalled_with(&obj, reason).unwrap()
}

#[tokio::test]
async fn a_client_id_that_was_there_before_is_never_removed() {
    let ns = namespace("threat-client-id").await;
    let admin = aws_sdk_iam::Client::new(&ns.config);
    // Our cluster's provider, to which someone later adds a client id of their own...
    let mut first = seed_in(&ns.account, &ns.config, "first").await;
    first["spec"]["auth0"] = json!({"domain": "shared-tenant.auth0.com", "clientId": "ours"});
    apply(&ns.api, &first).await;
    common::wait_ready(&ns.api, "first", &ns.operator, Duration::from_secs(60)).await;
    let arn = format!(
        "arn:aws:iam::{}:oidc-provider/shared-tenant.auth0.com",
        ns.account.id
    );
    admin
        .add_client_id_to_open_id_connect_provider()
        .open_id_connect_provider_arn(&arn)
        .client_id("ci-pipeline")
        .send()
        .await
        .unwrap();
    // ...and an AuthedApi naming that client id too (a namespace user can name any).
    let mut second = seed_in(&ns.account, &ns.config, "second").await;
    second["spec"]["auth0"] =
        json!({"domain": "shared-tenant.auth0.com", "clientId": "ci-pipeline"});
    apply(&ns.api, &second).await;
    common::wait_ready(&ns.api, "second", &ns.operator, Duration::from_secs(60)).await;

    for name in ["second", "first"] {
        ns.api.delete(name, &Default::default()).await.unwrap();
        wait_gone(&ns.api, name, &ns.operator, Duration::from_secs(60)).await;
    }
    let provider = admin
        .get_open_id_connect_provider()
        .open_id_connect_provider_arn(&arn)
        .send()
        .await
        .expect("a provider with a client id we did not add is not deleted");
    assert_eq!(
        provider.client_id_list(),
        ["ci-pipeline"],
        "ours is gone, the one that was there before stays"
    );
}

#[tokio::test]
async fn another_clusters_pool_api_and_role_cannot_be_tagged_or_changed() {
    let t = thief().await;
    let theirs = [
        ("authedapi.dev/cluster", "other"),
        ("authedapi.dev/uid", "u-other"),
    ];
    // Their API, pool and role (made with the administrator's credentials).
    let admin_gw = aws_sdk_apigatewayv2::Client::new(&t.admin);
    let api = admin_gw
        .create_api()
        .name("theirs")
        .protocol_type(aws_sdk_apigatewayv2::types::ProtocolType::Http)
        .set_tags(Some(tags(&theirs)))
        .send()
        .await
        .unwrap();
    let api_id = api.api_id().unwrap();
    let admin_pools = aws_sdk_cognitoidentity::Client::new(&t.admin);
    let pool = admin_pools
        .create_identity_pool()
        .identity_pool_name("theirs")
        .allow_unauthenticated_identities(false)
        .set_identity_pool_tags(Some(tags(&theirs)))
        .send()
        .await
        .unwrap();
    let pool_arn = format!(
        "arn:aws:cognito-identity:us-east-1:{}:identitypool/{}",
        t.account.id,
        pool.identity_pool_id()
    );
    aws_sdk_iam::Client::new(&t.admin)
        .create_role()
        .path("/authedapi/")
        .role_name("theirs")
        .assume_role_policy_document(trust_of(&t.account.id))
        .permissions_boundary(boundary_of(&t.account))
        .set_tags(Some(iam_tags(&theirs)))
        .send()
        .await
        .unwrap();

    let gw = aws_sdk_apigatewayv2::Client::new(&t.operator);
    assert_denied(
        gw.create_route()
            .api_id(api_id)
            .route_key("GET /stolen")
            .send()
            .await,
        "apigateway:POST",
    );
    assert_denied(
        gw.delete_api().api_id(api_id).send().await,
        "apigateway:DELETE",
    );
    assert_denied(
        gw.tag_resource()
            .resource_arn(format!("arn:aws:apigateway:us-east-1::/apis/{api_id}"))
            .set_tags(Some(tags(&[("authedapi.dev/cluster", CLUSTER)])))
            .send()
            .await,
        "apigateway:POST",
    );
    assert_denied(
        gw.create_api()
            .name("for-them")
            .protocol_type(aws_sdk_apigatewayv2::types::ProtocolType::Http)
            .set_tags(Some(tags(&theirs)))
            .send()
            .await,
        "apigateway:POST",
    );

    let pools = aws_sdk_cognitoidentity::Client::new(&t.operator);
    assert_denied(
        pools
            .update_identity_pool()
            .identity_pool_id(pool.identity_pool_id())
            .identity_pool_name("theirs")
            .allow_unauthenticated_identities(true)
            .send()
            .await,
        "cognito-identity:UpdateIdentityPool",
    );
    assert_denied(
        pools
            .tag_resource()
            .resource_arn(&pool_arn)
            .set_tags(Some(tags(&[("authedapi.dev/cluster", CLUSTER)])))
            .send()
            .await,
        "cognito-identity:TagResource",
    );
    assert_denied(
        pools
            .delete_identity_pool()
            .identity_pool_id(pool.identity_pool_id())
            .send()
            .await,
        "cognito-identity:DeleteIdentityPool",
    );
    // Their role cannot be handed to a pool (nor to theirs).
    assert_denied(
        pools
            .set_identity_pool_roles()
            .identity_pool_id(pool.identity_pool_id())
            .roles(
                "authenticated",
                format!("arn:aws:iam::{}:role/authedapi/theirs", t.account.id),
            )
            .send()
            .await,
        "iam:PassRole",
    );

    let iam = aws_sdk_iam::Client::new(&t.operator);
    assert_denied(
        iam.tag_role()
            .role_name("theirs")
            .set_tags(Some(iam_tags(&[("authedapi.dev/cluster", CLUSTER)])))
            .send()
            .await,
        "iam:TagRole",
    );
    assert_denied(
        iam.put_role_policy()
            .role_name("theirs")
            .policy_name("x")
            .policy_document(json!({"Version": "2012-10-17", "Statement": []}).to_string())
            .send()
            .await,
        "iam:PutRolePolicy",
    );
    assert_denied(
        iam.delete_role().role_name("theirs").send().await,
        "iam:DeleteRole",
    );
}

#[tokio::test]
async fn lambda_permissions_go_only_to_api_gateway_on_allowed_functions() {
    let t = thief_with(&["--allowed-function", "arn:aws:lambda:*:*:function:team-a-*"]).await;
    let allowed = ensure_function(&t.admin, "team-a-handler").await;
    let other = ensure_function(&t.admin, "payroll").await;
    let lambda = aws_sdk_lambda::Client::new(&t.operator);
    let add = |function: &str, principal: &str, sid: &str| {
        lambda
            .add_permission()
            .function_name(function)
            .statement_id(sid)
            .action("lambda:InvokeFunction")
            .principal(principal)
            .source_arn(format!(
                "arn:aws:execute-api:us-east-1:{}:abc/*",
                t.account.id
            ))
            .send()
    };
    add(&allowed, "apigateway.amazonaws.com", "ok")
        .await
        .unwrap();
    assert_denied(
        add(&allowed, "s3.amazonaws.com", "s3").await,
        "lambda:AddPermission",
    );
    assert_denied(add(&allowed, "*", "anyone").await, "lambda:AddPermission");
    assert_denied(
        add(&other, "apigateway.amazonaws.com", "payroll").await,
        "lambda:AddPermission",
    );
}

#[tokio::test]
async fn a_function_the_namespace_may_not_use_stalls_and_gets_no_permission() {
    let ns = namespace("threat-function").await;
    let mut seed = seed_in(&ns.account, &ns.config, "reach").await;
    // A function of the same account that no one allowed this namespace.
    let payroll = ensure_function(&ns.config, "payroll").await;
    let admin = aws_sdk_lambda::Client::new(&ns.config);
    // The operator here allows the account's functions (tests/common); the tenant of
    // this namespace narrows that to the seed's two.
    let client = shared::client().await;
    let tenants: Api<authedapi::tenant::AuthedApiTenant> = Api::all(client);
    let namespace = ns.name.clone();
    let tenant = json!({
        "apiVersion": "authedapi.dev/v1alpha1",
        "kind": "AuthedApiTenant",
        "metadata": {"name": format!("tenant-{namespace}")},
        "spec": {
            "namespaces": [namespace],
            "allowedFunctions": [format!("arn:aws:lambda:us-east-1:{}:function:api-auth-auth0-*", ns.account.id)]
        }
    });
    tenants
        .patch(
            tenant["metadata"]["name"].as_str().unwrap(),
            &kube::api::PatchParams::apply(common::TEST_MANAGER).force(),
            &kube::api::Patch::Apply(&tenant),
        )
        .await
        .unwrap();
    seed["spec"]["routes"][0]["target"] = json!({"lambda": {"functionArn": payroll}});
    apply(&ns.api, &seed).await;
    let message = wait_stalled(&ns, "reach", "NotAllowed").await;
    assert!(
        message.contains("payroll")
            && message.contains(&format!("AuthedApiTenant tenant-{namespace}")),
        "{message}"
    );
    let policy = admin.get_policy().function_name("payroll").send().await;
    assert!(
        policy.is_err(),
        "no statement was added to payroll: {policy:?}"
    );
}

#[tokio::test]
async fn a_disallowed_issuer_is_refused_with_the_reason() {
    let ns = namespace("threat-issuer").await;
    let mut seed = seed_in(&ns.account, &ns.config, "ci").await;
    // The CI system's issuer and client id, named by a namespace user.
    seed["spec"]["auth0"] =
        json!({"domain": "token.actions.githubusercontent.com", "clientId": "sts.amazonaws.com"});
    apply(&ns.api, &seed).await;
    let message = wait_stalled(&ns, "ci", "NotAllowed").await;
    assert!(
        message.contains("token.actions.githubusercontent.com") && message.contains("*.auth0.com"),
        "{message}"
    );
    let providers = aws_sdk_iam::Client::new(&ns.config)
        .list_open_id_connect_providers()
        .send()
        .await
        .unwrap();
    assert!(
        providers.open_id_connect_provider_list().is_empty(),
        "no provider touched"
    );
}
