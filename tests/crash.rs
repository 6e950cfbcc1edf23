//! Crash safety: for every AWS create of every registered kind, and before every status
//! write the operator reports, a run that kills the operator at that point and starts it
//! again ends Ready with exactly one of each resource, counted in the emulator.

mod common;

use std::time::Duration;

use authedapi::api::AuthedApi;
use authedapi::aws::AwsClients;
use authedapi_rig::{Account, TestNamespace, shared};
use kube::api::Api;
use serde_json::json;

use authedapi::testhooks::{CRASH_BEFORE_STATUS_WRITE, CrashAfter};
use common::{Operator, apply, install_crd, seed_in, sum_metric, wait_ready};

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
    /// Our statements on the Lambda authorizer's function.
    authorizer_permissions: usize,
    domains: usize,
    api_mappings: usize,
    vpc_links: usize,
}

/// What the seed plus one JWT route, one Lambda-authorized route and one private route
/// becomes: exactly one of each.
const EXPECTED: Counts = Counts {
    apis: 1,
    integrations: 4,
    routes: 5,
    authorizers: 2,
    stages: 1,
    pools: 1,
    roles: 1,
    role_policies: 1,
    providers: 1,
    client_ids: 1,
    permissions: 2,
    authorizer_permissions: 1,
    domains: 1,
    api_mappings: 1,
    vpc_links: 1,
};

/// The crash scenario's custom domain.
const DOMAIN: &str = "crash.example.com";
/// The function of the crash scenario's Lambda authorizer.
const AUTHORIZER_FUNCTION: &str = "crash-authorizer";

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
    let authorizer_permissions = aws
        .lambda
        .permissions(&authorizer_arn(account))
        .await
        .unwrap()
        .map_or(0, |statements| statements.len());
    let (domains, api_mappings) = match aws.domains.get_domain_name(DOMAIN).await.unwrap() {
        Some(_) => (
            1,
            aws.domains.list_api_mappings(DOMAIN).await.unwrap().len(),
        ),
        None => (0, 0),
    };
    Counts {
        vpc_links: aws.vpc_links.list_vpc_links().await.unwrap().len(),
        domains,
        api_mappings,
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
        authorizer_permissions,
    }
}

fn authorizer_arn(account: &Account) -> String {
    format!(
        "arn:aws:lambda:us-east-1:{}:function:{AUTHORIZER_FUNCTION}",
        account.id
    )
}

/// The crash scenario's object: the seed plus one JWT route, one route behind a Lambda
/// authorizer and one private route through a VPC link of its own, on a custom domain.
async fn crash_object(account: &Account, config: &aws_types::SdkConfig) -> serde_json::Value {
    let mut object = seed_in(account, config, "crash").await;
    common::ensure_function(config, AUTHORIZER_FUNCTION).await;
    object["spec"]["authorizers"] =
        json!([{"name": "users", "lambda": {"functionArn": authorizer_arn(account)}}]);
    object["spec"]["routes"]
        .as_array_mut()
        .unwrap()
        .push(json!({
            "route": "GET /team", "authorization": "lambda", "authorizer": "users",
            "target": {"http": {"url": "https://example.com/reports"}}
        }));
    let certificate = account.certificate(DOMAIN, "ISSUED").await.unwrap();
    object["spec"]["domain"] =
        json!({"name": DOMAIN, "certificateArn": certificate, "basePath": "dev"});
    object["spec"]["routes"]
        .as_array_mut()
        .unwrap()
        .push(json!({
            "route": "GET /reports", "authorization": "jwt",
            "target": {"http": {"url": "https://example.com/reports"}}
        }));
    object["spec"]["vpcLink"] = json!({"subnetIds": ["subnet-0a1b2c3d"]});
    let listener = format!(
        "arn:aws:elasticloadbalancing:us-east-1:{}:listener/app/orders/50dc6c495c0c9188/f2f7dc8efc522ab2",
        account.id
    );
    object["spec"]["routes"].as_array_mut().unwrap().push(
        json!({"route": "ANY /orders/{proxy+}", "target": {"private": {"listenerArn": listener}}}),
    );
    object
}

/// Crash the operator where `hook` says, start it again, expect Ready with one of each.
async fn crash_and_recover(prefix: &str, hook: (&str, String)) {
    let client = shared::client().await;
    install_crd(&client).await.unwrap();
    let ns = TestNamespace::create(&client, prefix).await.unwrap();
    let account = shared::account();
    let config = account.sdk_config().await;
    let api: Api<AuthedApi> = Api::namespaced(client, &ns.name);

    let mut crashing = Operator::start(&ns.name, &account, &[], &[(hook.0, &hook.1)]).await;
    apply(&api, &crash_object(&account, &config).await).await;
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

/// Run `scenarios` a few at a time (each has its own namespace, account and operator).
async fn run_all(scenarios: Vec<(&'static str, (&'static str, String))>) {
    use futures::StreamExt;
    futures::stream::iter(scenarios)
        .map(|(prefix, hook)| crash_and_recover(prefix, hook))
        .buffer_unordered(3)
        .collect::<Vec<()>>()
        .await;
}

/// Every create of every kind the reconciler registers: a kind added later is
/// crash-tested by being registered.
#[tokio::test]
async fn a_crash_right_after_any_aws_create_leaves_exactly_one_of_each() {
    let creates = authedapi::reconcile::kinds::crash_points();
    assert!(creates.len() >= 14, "{creates:?}");
    run_all(
        creates
            .into_iter()
            .map(|op| ("crash-op", (CrashAfter::ENV, op)))
            .collect(),
    )
    .await;
}

/// Before every status write a first reconcile makes, as many as the operator reports
/// making (its status_writes metric) on an uncrashed run of the same object.
#[tokio::test]
async fn a_crash_before_any_status_write_leaves_exactly_one_of_each() {
    let client = shared::client().await;
    install_crd(&client).await.unwrap();
    let ns = TestNamespace::create(&client, "crash-count").await.unwrap();
    let account = shared::account();
    let config = account.sdk_config().await;
    let api: Api<AuthedApi> = Api::namespaced(client, &ns.name);
    let operator = Operator::start(&ns.name, &account, &[], &[]).await;
    apply(&api, &crash_object(&account, &config).await).await;
    wait_ready(&api, "crash", &operator, TIMEOUT).await;
    let writes = sum_metric(
        &operator.metrics().await,
        "authedapi_status_writes_total",
        None,
    );
    assert!(
        writes >= 7,
        "a first reconcile writes status at least 7 times: {writes}"
    );
    drop(operator);

    run_all(
        (1..=writes)
            .map(|n| ("crash-status", (CRASH_BEFORE_STATUS_WRITE, n.to_string())))
            .collect(),
    )
    .await;
}

/// What a kind whose names AWS does not keep unique is, for [`adopted_after_a_crash`].
struct PendingKind {
    /// The create the operator crashes right after.
    create: &'static str,
    /// Its pending marker in status.
    marker: &'static str,
    /// The ids of every one in the account.
    ids: fn(AwsClients) -> futures::future::BoxFuture<'static, Vec<String>>,
    /// The id status records.
    recorded: fn(&authedapi::api::AuthedApiStatus) -> Option<String>,
}

/// A crash right after `kind`'s create leaves its marker and no id in status; the restart
/// adopts the one made (found by name and uid tag) instead of making a second.
/// `object` (named "crash") is in `account`.
async fn adopted_after_a_crash(
    prefix: &str,
    account: Account,
    object: serde_json::Value,
    kind: PendingKind,
) {
    let client = shared::client().await;
    install_crd(&client).await.unwrap();
    let ns = TestNamespace::create(&client, prefix).await.unwrap();
    let aws = AwsClients::new(&account.sdk_config().await, &[]);
    let api: Api<AuthedApi> = Api::namespaced(client, &ns.name);

    let mut crashing =
        Operator::start(&ns.name, &account, &[], &[(CrashAfter::ENV, kind.create)]).await;
    apply(&api, &object).await;
    assert!(
        crashing.wait_exit(TIMEOUT).await,
        "the operator did not crash after {}:\n{}",
        kind.create,
        crashing.log_tail(30)
    );
    assert_eq!(
        (kind.ids)(aws.clone()).await.len(),
        1,
        "{} went through",
        kind.create
    );
    let status = api.get("crash").await.unwrap().status.unwrap_or_default();
    assert_eq!(
        (kind.recorded)(&status),
        None,
        "the crash came before the status write"
    );
    assert_eq!(status.pending_creates, vec![kind.marker.to_string()]);

    let operator = Operator::start(&ns.name, &account, &[], &[]).await;
    let obj = wait_ready(&api, "crash", &operator, TIMEOUT).await;
    let ids = (kind.ids)(aws).await;
    assert_eq!(ids.len(), 1, "adopted, not duplicated: {ids:?}");
    assert_eq!(Some(ids[0].clone()), (kind.recorded)(&obj.status.unwrap()));
}

#[tokio::test]
async fn a_crash_right_after_create_api_is_adopted_not_duplicated() {
    let account = shared::account();
    let object = seed_in(&account, &account.sdk_config().await, "crash").await;
    adopted_after_a_crash(
        "crash-api",
        account,
        object,
        PendingKind {
            create: "CreateApi",
            marker: "HttpApi",
            ids: |aws| {
                Box::pin(async move {
                    let apis = aws.apigateway.list_apis().await.unwrap();
                    apis.into_iter().map(|a| a.id).collect()
                })
            },
            recorded: |status| status.api_id.clone(),
        },
    )
    .await;
}

#[tokio::test]
async fn a_crash_right_after_create_vpc_link_is_adopted_not_duplicated() {
    let account = shared::account();
    let object = crash_object(&account, &account.sdk_config().await).await;
    adopted_after_a_crash(
        "crash-vpc",
        account,
        object,
        PendingKind {
            create: "CreateVpcLink",
            marker: "VpcLink",
            ids: |aws| {
                Box::pin(async move {
                    let links = aws.vpc_links.list_vpc_links().await.unwrap();
                    links.into_iter().map(|l| l.id).collect()
                })
            },
            recorded: |status| status.vpc_link_id.clone(),
        },
    )
    .await;
}
