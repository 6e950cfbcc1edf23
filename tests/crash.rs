//! Crash safety: for every AWS create the operator makes, and before every status write, a
//! run that kills the operator at that point and starts it again ends Ready with exactly
//! one of each resource, counted in the emulator.

mod common;

use std::time::Duration;

use authedapi::api::AuthedApi;
use authedapi::aws::AwsClients;
use authedapi_rig::{Account, TestNamespace, shared};
use kube::api::Api;
use serde_json::json;

use common::{Operator, apply, install_crd, seed_in, wait_ready};

const TIMEOUT: Duration = Duration::from_secs(60);

/// How many of each resource exist in an account.
#[derive(Debug, PartialEq)]
struct Counts {
    apis: usize,
    integrations: usize,
    routes: usize,
    authorizers: usize,
    stages: usize,
    pools: usize,
    roles: usize,
    role_policies: usize,
    providers: usize,
    client_ids: usize,
    permissions: usize,
}

/// What the seed plus one JWT route becomes: exactly one of each.
const EXPECTED: Counts = Counts {
    apis: 1,
    integrations: 3,
    routes: 3,
    authorizers: 1,
    stages: 1,
    pools: 1,
    roles: 1,
    role_policies: 1,
    providers: 1,
    client_ids: 1,
    permissions: 2,
};

async fn count(account: &Account, config: &aws_types::SdkConfig) -> Counts {
    let aws = AwsClients::new(config, &[]);
    let apis = aws.apigateway.list_apis().await.unwrap();
    let (mut integrations, mut routes, mut authorizers, mut stages) = (0, 0, 0, 0);
    for api in &apis {
        integrations += aws
            .apigateway
            .list_integrations(&api.id)
            .await
            .unwrap()
            .len();
        routes += aws.apigateway.list_routes(&api.id).await.unwrap().len();
        authorizers += aws
            .apigateway
            .list_authorizers(&api.id)
            .await
            .unwrap()
            .len();
        stages += usize::from(
            aws.apigateway
                .get_stage(&api.id, "$default")
                .await
                .unwrap()
                .is_some(),
        );
    }
    let iam = aws_sdk_iam::Client::new(config);
    let roles: Vec<String> = iam
        .list_roles()
        .path_prefix("/authedapi/")
        .send()
        .await
        .unwrap()
        .roles()
        .iter()
        .map(|r| r.role_name().to_owned())
        .collect();
    let mut role_policies = 0;
    for role in &roles {
        role_policies += aws.iam.list_role_policies(role).await.unwrap().len();
    }
    let providers = iam.list_open_id_connect_providers().send().await.unwrap();
    let mut client_ids = 0;
    for provider in providers.open_id_connect_provider_list() {
        let arn = provider.arn().unwrap();
        client_ids += aws
            .iam
            .get_oidc_provider(arn)
            .await
            .unwrap()
            .unwrap()
            .client_ids
            .len();
    }
    let permissions = common::seed_permissions(&aws, account)
        .await
        .iter()
        .map(|(_, p)| p.len())
        .sum();
    Counts {
        apis: apis.len(),
        integrations,
        routes,
        authorizers,
        stages,
        pools: aws.cognito.list_identity_pools().await.unwrap().len(),
        roles: roles.len(),
        role_policies,
        providers: providers.open_id_connect_provider_list().len(),
        client_ids,
        permissions,
    }
}

/// Crash the operator where `hook` says, start it again, expect Ready with one of each.
async fn crash_and_recover(prefix: &str, hook: (&str, &str)) {
    let client = shared::client().await;
    install_crd(&client).await.unwrap();
    let ns = TestNamespace::create(&client, prefix).await.unwrap();
    let account = shared::account();
    let config = account.sdk_config().await;
    let api: Api<AuthedApi> = Api::namespaced(client, &ns.name);

    let mut object = seed_in(&account, &config, "crash").await;
    object["spec"]["routes"]
        .as_array_mut()
        .unwrap()
        .push(json!({
            "route": "GET /reports", "authorization": "jwt",
            "target": {"http": {"url": "https://example.com/reports"}}
        }));

    let mut crashing = Operator::start(&ns.name, &account, &[], &[hook]).await;
    apply(&api, &object).await;
    assert!(
        crashing.wait_exit(TIMEOUT).await,
        "the operator did not crash at {hook:?}:\n{}",
        crashing.log_tail(30)
    );
    assert!(
        crashing
            .log_tail(5)
            .contains(&format!("{}={}: exiting", hook.0, hook.1)),
        "the operator exited, but not at the crash point:\n{}",
        crashing.log_tail(30)
    );

    let operator = Operator::start(&ns.name, &account, &[], &[]).await;
    wait_ready(&api, "crash", &operator, TIMEOUT).await;
    assert_eq!(
        count(&account, &config).await,
        EXPECTED,
        "after a crash at {hook:?}"
    );
}

macro_rules! crash_after {
    ($($test:ident: $operation:literal,)+) => {$(
        #[tokio::test]
        async fn $test() {
            crash_and_recover("crash-op", (authedapi::testhooks::CrashAfter::ENV, $operation)).await;
        }
    )+};
}

crash_after! {
    after_create_oidc_provider: "CreateOpenIDConnectProvider",
    after_create_api: "CreateApi",
    after_create_integration: "CreateIntegration",
    after_create_authorizer: "CreateAuthorizer",
    after_create_route: "CreateRoute",
    after_create_stage: "CreateStage",
    after_add_permission: "AddPermission",
    after_create_identity_pool: "CreateIdentityPool",
    after_create_role: "CreateRole",
    after_put_role_policy: "PutRolePolicy",
    after_set_identity_pool_roles: "SetIdentityPoolRoles",
}

macro_rules! crash_before_status_write {
    ($($test:ident: $n:literal,)+) => {$(
        #[tokio::test]
        async fn $test() {
            crash_and_recover(
                "crash-status",
                (authedapi::testhooks::CRASH_BEFORE_STATUS_WRITE, $n),
            )
            .await;
        }
    )+};
}

// A first reconcile writes status 7 times: Reconciling, API create pending, API id,
// permission intent, pool create pending, pool id, Ready.
crash_before_status_write! {
    before_status_write_1: "1",
    before_status_write_2: "2",
    before_status_write_3: "3",
    before_status_write_4: "4",
    before_status_write_5: "5",
    before_status_write_6: "6",
    before_status_write_7: "7",
}
