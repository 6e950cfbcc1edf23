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

/// The operator's credentials in a fresh account, its policy rendered with `args`
/// (`{account}` in them stands for the account's id).
async fn thief_with(args: &[&str]) -> Thief {
    let account = shared::account();
    let identity = OperatorIdentity::provision(
        &account,
        std::path::Path::new(env!("CARGO_BIN_EXE_authedapi")),
        CLUSTER,
        &authedapi_rig::operator_identity::PolicyOptions {
            args: args
                .iter()
                .map(|a| a.replace("{account}", &account.id))
                .collect(),
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

/// The operator's credentials holding `deploy/aws-iam-policy.json` itself, as a user who
/// applies the shipped file unchanged has them (for the cluster id it names, `default`).
async fn thief_holding_the_shipped_policy() -> Thief {
    let account = shared::account();
    let shipped: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(common::repo().join("deploy/aws-iam-policy.json")).unwrap(),
    )
    .unwrap();
    let identity = OperatorIdentity::holding(
        &account,
        std::path::Path::new(env!("CARGO_BIN_EXE_authedapi")),
        "default",
        shipped,
    )
    .await
    .unwrap();
    Thief {
        admin: account.sdk_config().await,
        operator: account.sdk_config_as(&identity.credentials).await,
        account,
    }
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

/// What the operator's credentials may make: a role of this cluster under our path, with
/// the boundary, trusted by this account's root, holding `policy` as "everything".
async fn bounded_role(t: &Thief, name: &str, policy: &serde_json::Value) {
    let iam = aws_sdk_iam::Client::new(&t.operator);
    iam.create_role()
        .path("/authedapi/")
        .role_name(name)
        .assume_role_policy_document(trust_of(&t.account.id))
        .permissions_boundary(boundary_of(&t.account))
        .set_tags(Some(iam_tags(&[("authedapi.dev/cluster", CLUSTER)])))
        .send()
        .await
        .unwrap();
    iam.put_role_policy()
        .role_name(name)
        .policy_name("everything")
        .policy_document(policy.to_string())
        .send()
        .await
        .unwrap();
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
    bounded_role(
        &t,
        "thiefs-role",
        &json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}),
    )
    .await;
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
async fn an_unbounded_role_tagged_as_ours_still_cannot_be_changed_or_deleted() {
    let t = thief().await;
    let admin = aws_sdk_iam::Client::new(&t.admin);
    // The platform's own role under our path: no boundary, no tags, an admin's policy.
    admin
        .create_role()
        .path("/authedapi/")
        .role_name("platform-admin")
        .assume_role_policy_document(trust_of(&t.account.id))
        .send()
        .await
        .unwrap();
    let everything = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "*", "Resource": "*"}]})
    .to_string();
    let iam = aws_sdk_iam::Client::new(&t.operator);
    // What remains (README): IAM cannot tell this from the tags a CreateRole carries.
    iam.tag_role()
        .role_name("platform-admin")
        .set_tags(Some(iam_tags(&[("authedapi.dev/cluster", CLUSTER)])))
        .send()
        .await
        .expect("allowed: the gap the README names");
    // ...but without the boundary nothing about it can be changed: not its permissions,
    // not who may assume it, not its boundary, and it cannot be deleted.
    assert_denied(
        iam.put_role_policy()
            .role_name("platform-admin")
            .policy_name("more")
            .policy_document(&everything)
            .send()
            .await,
        "iam:PutRolePolicy",
    );
    assert_denied(
        iam.update_assume_role_policy()
            .role_name("platform-admin")
            .policy_document(trust_of("999999999999"))
            .send()
            .await,
        "iam:UpdateAssumeRolePolicy",
    );
    assert_denied(
        iam.put_role_permissions_boundary()
            .role_name("platform-admin")
            .permissions_boundary(boundary_of(&t.account))
            .send()
            .await,
        "iam:PutRolePermissionsBoundary",
    );
    assert_denied(
        iam.delete_role().role_name("platform-admin").send().await,
        "iam:DeleteRole",
    );
    // A role that carries a cluster tag of its own is never tagged as ours.
    admin
        .create_role()
        .path("/authedapi/")
        .role_name("platform-protected")
        .assume_role_policy_document(trust_of(&t.account.id))
        .set_tags(Some(iam_tags(&[("authedapi.dev/cluster", "platform")])))
        .send()
        .await
        .unwrap();
    assert_denied(
        iam.tag_role()
            .role_name("platform-protected")
            .set_tags(Some(iam_tags(&[("authedapi.dev/cluster", CLUSTER)])))
            .send()
            .await,
        "iam:TagRole",
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
async fn the_shipped_policy_opens_no_function_until_the_platform_names_them() {
    let t = thief_holding_the_shipped_policy().await;
    let payroll = ensure_function(&t.admin, "payroll").await;
    let lambda = aws_sdk_lambda::Client::new(&t.operator);
    // An API in another account invoking the payroll function: AddPermission cannot be
    // made to insist on a source ARN, so the function list is the only guard.
    assert_denied(
        lambda
            .add_permission()
            .function_name(&payroll)
            .statement_id("outsider")
            .action("lambda:InvokeFunction")
            .principal("apigateway.amazonaws.com")
            .source_arn("arn:aws:execute-api:us-east-1:999999999999:outsider/*")
            .send()
            .await,
        "lambda:AddPermission",
    );
    assert_denied(
        lambda.get_policy().function_name(&payroll).send().await,
        "lambda:GetPolicy",
    );

    // Rendered for the functions a platform names, in this account: a function of the same
    // name pattern in another account stays out of reach.
    let t = thief_with(&[
        "--allowed-function",
        "arn:aws:lambda:*:{account}:function:team-a-*",
    ])
    .await;
    let elsewhere = shared::account();
    let theirs = ensure_function(&elsewhere.sdk_config().await, "team-a-handler").await;
    assert!(!theirs.contains(&t.account.id), "{theirs}");
    assert_denied(
        aws_sdk_lambda::Client::new(&t.operator)
            .add_permission()
            .function_name(&theirs)
            .statement_id("cross-account")
            .action("lambda:InvokeFunction")
            .principal("apigateway.amazonaws.com")
            .send()
            .await,
        "lambda:AddPermission",
    );
}

#[tokio::test]
async fn lambda_permissions_go_only_to_api_gateway_on_allowed_functions() {
    let t = thief_with(&[
        "--allowed-function",
        "arn:aws:lambda:*:{account}:function:team-a-*",
    ])
    .await;
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
async fn a_functions_other_grants_cannot_be_removed() {
    let t = thief_with(&[
        "--allowed-function",
        "arn:aws:lambda:*:{account}:function:team-a-*",
    ])
    .await;
    let function = ensure_function(&t.admin, "team-a-events").await;
    let admin = aws_sdk_lambda::Client::new(&t.admin);
    // The function's own grants: S3 events, and a partner account.
    for (sid, principal) in [
        ("s3-events", "s3.amazonaws.com"),
        ("partner", "210987654321"),
    ] {
        admin
            .add_permission()
            .function_name(&function)
            .statement_id(sid)
            .action("lambda:InvokeFunction")
            .principal(principal)
            .send()
            .await
            .unwrap();
    }
    let lambda = aws_sdk_lambda::Client::new(&t.operator);
    lambda
        .add_permission()
        .function_name(&function)
        .statement_id("ours")
        .action("lambda:InvokeFunction")
        .principal("apigateway.amazonaws.com")
        .source_arn(format!(
            "arn:aws:execute-api:us-east-1:{}:abc/*",
            t.account.id
        ))
        .send()
        .await
        .unwrap();
    for sid in ["s3-events", "partner"] {
        assert_denied(
            lambda
                .remove_permission()
                .function_name(&function)
                .statement_id(sid)
                .send()
                .await,
            "lambda:RemovePermission",
        );
    }
    // API Gateway's grant is the operator's to remove.
    lambda
        .remove_permission()
        .function_name(&function)
        .statement_id("ours")
        .send()
        .await
        .unwrap();
    let policy = admin
        .get_policy()
        .function_name(&function)
        .send()
        .await
        .unwrap();
    let policy: serde_json::Value = serde_json::from_str(policy.policy().unwrap()).unwrap();
    let mut left: Vec<&str> = policy["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["Sid"].as_str().unwrap())
        .collect();
    left.sort();
    assert_eq!(left, ["partner", "s3-events"]);
}

#[tokio::test]
async fn a_provider_of_an_issuer_with_a_path_is_out_of_reach_of_a_host_wildcard() {
    // The default issuers: `*.auth0.com`, whose `*` IAM lets match across `/`.
    let t = thief().await;
    let iam = aws_sdk_iam::Client::new(&t.operator);
    let ours = iam_tags(&[
        ("authedapi.dev/managed-by", "authedapi"),
        ("authedapi.dev/cluster", CLUSTER),
    ]);
    let create = |url: &str| {
        iam.create_open_id_connect_provider()
            .url(url)
            .client_id_list("mine")
            .set_tags(Some(ours.clone()))
            .send()
    };
    // An issuer someone controls at attacker.example, named to end like an allowed host.
    assert_denied(
        create("https://attacker.example/x.auth0.com").await,
        "iam:CreateOpenIDConnectProvider",
    );
    let theirs = aws_sdk_iam::Client::new(&t.admin)
        .create_open_id_connect_provider()
        .url("https://attacker.example/y.auth0.com")
        .client_id_list("theirs")
        .send()
        .await
        .unwrap()
        .open_id_connect_provider_arn
        .unwrap();
    assert_denied(
        iam.get_open_id_connect_provider()
            .open_id_connect_provider_arn(&theirs)
            .send()
            .await,
        "iam:GetOpenIDConnectProvider",
    );
    assert_denied(
        iam.add_client_id_to_open_id_connect_provider()
            .open_id_connect_provider_arn(&theirs)
            .client_id("mine")
            .send()
            .await,
        "iam:AddClientIDToOpenIDConnectProvider",
    );
    assert_denied(
        iam.tag_open_id_connect_provider()
            .open_id_connect_provider_arn(&theirs)
            .set_tags(Some(ours.clone()))
            .send()
            .await,
        "iam:TagOpenIDConnectProvider",
    );
    // An allowed issuer's own provider is made as before.
    create("https://threats.auth0.com").await.unwrap();
}

#[tokio::test]
async fn a_bounded_role_may_invoke_only_this_accounts_apis() {
    let t = thief().await;
    // The most a thief can make: a bounded role allowed every invocation.
    let everything = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "execute-api:Invoke", "Resource": "*"}]});
    bounded_role(&t, "invoker", &everything).await;
    // The boundary as the account holds it.
    let admin = aws_sdk_iam::Client::new(&t.admin);
    let boundary = admin
        .get_policy_version()
        .policy_arn(boundary_of(&t.account))
        .version_id("v1")
        .send()
        .await
        .unwrap();
    // (IAM returns the document URL-encoded.)
    let document = boundary.policy_version().unwrap().document().unwrap();
    let boundary: serde_json::Value =
        serde_json::from_str(&urlencoding::decode(document).unwrap()).unwrap();
    // Invocations as AWS judges them for a session of the role: the emulator's data plane
    // serves only HTTP APIs of the caller's account, so the judge is asked directly about
    // another account's (a REST API whose resource policy admits everyone).
    let other = "210987654321";
    let ask = |resource: String, resource_policy: Option<serde_json::Value>| {
        let mut check = json!({"action": "execute-api:Invoke", "resource": resource,
            "context": {"aws:PrincipalArn": format!("arn:aws:iam::{}:role/invoker", t.account.id),
                        "aws:PrincipalAccount": t.account.id}});
        if let Some(policy) = resource_policy {
            check["resourcePolicy"] = policy;
            check["resourceAccount"] = json!(other);
        }
        let request = json!({
            "principal": format!("arn:aws:sts::{}:assumed-role/invoker/thief", t.account.id),
            "accountId": t.account.id,
            "operation": "execute-api:Invoke",
            "identityPolicies": [{"name": "invoker/inline/everything", "policy": everything}],
            "permissionBoundary": {"name": "authedapi-permissions-boundary", "policy": boundary},
            "checks": [check],
        });
        async move { shared::emulator().judge.ask(&request).await.unwrap() }
    };
    let here = ask(
        format!(
            "arn:aws:execute-api:us-east-1:{}:abc123/$default/GET/orders",
            t.account.id
        ),
        None,
    )
    .await;
    assert_eq!(here["decision"], "Allowed", "{here}");
    let everyone = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": "*", "Action": "execute-api:Invoke", "Resource": "*"}]});
    let there = ask(
        format!("arn:aws:execute-api:us-east-1:{other}:def456/$default/GET/payroll"),
        Some(everyone),
    )
    .await;
    assert_eq!(there["decision"], "ImplicitlyDenied", "{there}");
    assert!(
        there["failed"]["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("because no permissions boundary allows"),
        "{there}"
    );
}

#[tokio::test]
async fn identity_pool_roles_can_be_cleared_on_any_pool_of_the_account_but_only_ours_passed() {
    // What remains (README): SetIdentityPoolRoles has no resource type, so the operator's
    // credentials reach every pool of the account; what they can hand out is scoped.
    let t = thief().await;
    let admin_pools = aws_sdk_cognitoidentity::Client::new(&t.admin);
    let pool = admin_pools
        .create_identity_pool()
        .identity_pool_name("another-teams")
        .allow_unauthenticated_identities(false)
        .send()
        .await
        .unwrap();
    let theirs = aws_sdk_iam::Client::new(&t.admin)
        .create_role()
        .role_name("another-teams-users")
        .assume_role_policy_document(trust_of(&t.account.id))
        .send()
        .await
        .unwrap()
        .role
        .unwrap()
        .arn;
    admin_pools
        .set_identity_pool_roles()
        .identity_pool_id(pool.identity_pool_id())
        .roles("authenticated", &theirs)
        .send()
        .await
        .unwrap();
    let pools = aws_sdk_cognitoidentity::Client::new(&t.operator);
    // Handing that pool's users a role not this cluster's is refused...
    assert_denied(
        pools
            .set_identity_pool_roles()
            .identity_pool_id(pool.identity_pool_id())
            .roles("authenticated", &theirs)
            .send()
            .await,
        "iam:PassRole",
    );
    // ...but its roles can be taken away: its users get no credentials until it is put back.
    pools
        .set_identity_pool_roles()
        .identity_pool_id(pool.identity_pool_id())
        .set_roles(Some(HashMap::new()))
        .send()
        .await
        .expect("allowed: the gap the README names");
    let roles = admin_pools
        .get_identity_pool_roles()
        .identity_pool_id(pool.identity_pool_id())
        .send()
        .await
        .unwrap();
    assert!(roles.roles().is_none_or(|r| r.is_empty()), "{roles:?}");
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
