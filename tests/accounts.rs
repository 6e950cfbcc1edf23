//! Namespaces mapped to AWS accounts, on the rig with several emulator accounts: the
//! operator runs as a role in its own account holding only `sts:AssumeRole` on the
//! tenants' roles (`iam-policy --assume-only`); each tenant account has a role set up as
//! the README says (`iam-policy --trust` and the policy rendered for that account). The
//! IAM judge authorizes every request, cross-account AssumeRole included (the caller's
//! policy and the role's trust, with its external id), so what each test counts is what
//! the emulator saw, signed by whom.

mod common;

use std::path::Path;

use authedapi::api::AuthedApi;
use authedapi::tenant::AuthedApiTenant;
use authedapi_rig::operator_identity::{PolicyOptions, provision_tenant_role, tenant_role_arn};
use authedapi_rig::{Account, OperatorIdentity, TestNamespace, shared};
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

use common::{
    Operator, READY_TIMEOUT, apply, condition, install_crd, seed_in, wait_ready, wait_stalled,
};

const EXTERNAL_ID: &str = "rig-external-id-1";

fn operator_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_authedapi"))
}

/// The operator's own account, and a namespace it watches.
struct Rig {
    ns: String,
    own: Account,
    client: kube::Client,
    api: Api<AuthedApi>,
}

async fn rig(prefix: &str, own: &Account) -> Rig {
    let client = shared::client().await;
    install_crd(&client).await.unwrap();
    let ns = TestNamespace::create(&client, prefix).await.unwrap();
    Rig {
        api: Api::namespaced(client.clone(), &ns.name),
        ns: ns.name,
        own: own.clone(),
        client,
    }
}

/// The operator's role in `own`, allowed to assume `tenants`' roles and nothing else
/// (`iam-policy --assume-only`).
async fn operator_assuming(own: &Account, tenants: &[&Account]) -> OperatorIdentity {
    let mut args = vec!["--assume-only".to_owned()];
    for tenant in tenants {
        args.extend(["--assume-role".to_owned(), tenant_role_arn(tenant)]);
    }
    OperatorIdentity::provision(own, operator_bin(), "test", &PolicyOptions { args })
        .await
        .expect("the operator's role")
}

impl Rig {
    /// The operator as `identity`, with `--own-account=deny`: nothing may land in its own
    /// account.
    fn operator(&self, identity: &OperatorIdentity) -> Operator {
        Operator::start_as(
            &self.ns,
            &self.own,
            &identity.credentials,
            &[
                "--own-account",
                "deny",
                "--allowed-functions",
                "arn:aws:lambda:*:*:function:*",
            ],
            &[],
        )
    }

    /// An AuthedApiTenant mapping this namespace to `role_arn` with `external_id`.
    async fn map_to(&self, role_arn: &str, external_id: &str) {
        map(&self.client, &self.ns, role_arn, external_id, &[]).await;
    }
}

/// An AuthedApiTenant `<ns>-account` mapping `ns` to `role_arn` with `external_id` and the
/// tenant's `rate_limits`.
async fn map(
    client: &kube::Client,
    ns: &str,
    role_arn: &str,
    external_id: &str,
    rate_limits: &[&str],
) {
    let tenants: Api<AuthedApiTenant> = Api::all(client.clone());
    let name = format!("{ns}-account");
    let tenant = json!({
        "apiVersion": "authedapi.dev/v1alpha1", "kind": "AuthedApiTenant",
        "metadata": {"name": name},
        "spec": {
            "namespaces": [ns],
            "allowedFunctions": ["arn:aws:lambda:*:*:function:*"],
            "aws": {"roleArn": role_arn, "externalId": external_id, "rateLimits": rate_limits}
        }
    });
    tenants
        .patch(
            &name,
            &PatchParams::apply("test").force(),
            &Patch::Apply(tenant),
        )
        .await
        .expect("the tenant applies");
}

/// A tenant account with the operator's role in it.
async fn tenant_account(operator_role_arn: &str) -> Account {
    let account = shared::account();
    provision_tenant_role(
        &account,
        operator_bin(),
        "test",
        operator_role_arn,
        EXTERNAL_ID,
        &PolicyOptions::default(),
    )
    .await
    .expect("the tenant's role");
    account
}

/// The operator's role ARN in `own`, as OperatorIdentity names it (known before it exists,
/// so the tenant roles can trust it and it can be allowed to assume them).
fn operator_role_arn(own_id: &str) -> String {
    format!("arn:aws:iam::{own_id}:role/authedapi-operator-test")
}

/// The operations the emulator received signed by sessions of the role `role` in
/// `account` (as its IAM judge recorded them).
fn signed_by(account: &Account, role: &str) -> Vec<String> {
    let principal = format!("arn:aws:sts::{}:assumed-role/{role}", account.id);
    shared::emulator()
        .judge
        .decisions()
        .into_iter()
        .filter(|d| d.principal.starts_with(&principal))
        .map(|d| d.operation)
        .collect()
}

/// ... by sessions of the tenant role in `account`.
fn signed_in(account: &Account) -> Vec<String> {
    signed_by(account, "authedapi/")
}

async fn api_count(account: &Account) -> usize {
    let config = account.sdk_config().await;
    aws_sdk_apigatewayv2::Client::new(&config)
        .get_apis()
        .send()
        .await
        .unwrap()
        .items()
        .len()
}

async fn providers(account: &Account) -> Vec<String> {
    let config = account.sdk_config().await;
    aws_sdk_iam::Client::new(&config)
        .list_open_id_connect_providers()
        .send()
        .await
        .unwrap()
        .open_id_connect_provider_list()
        .iter()
        .filter_map(|p| p.arn().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn a_tenants_namespace_lands_in_its_account_signed_by_its_role_only() {
    let own = shared::account();
    let operator_role = operator_role_arn(&own.id);
    let team = tenant_account(&operator_role).await;
    let other = tenant_account(&operator_role).await;
    let identity = operator_assuming(&own, &[&team, &other]).await;
    let r = rig("acct-one", &own).await;
    r.map_to(&tenant_role_arn(&team), EXTERNAL_ID).await;
    let operator = r.operator(&identity);
    let team_config = team.sdk_config().await;
    apply(&r.api, &seed_in(&team, &team_config, "seed").await).await;
    let obj = wait_ready(&r.api, "seed", &operator, READY_TIMEOUT).await;

    let status = obj.status.clone().unwrap();
    assert_eq!(status.account_id.as_deref(), Some(team.id.as_str()));
    let source = status.account_source.unwrap();
    assert!(
        source.contains(&format!("AuthedApiTenant {}-account", r.ns))
            && source.contains(&tenant_role_arn(&team)),
        "{source}"
    );
    assert_eq!(
        api_count(&team).await,
        1,
        "the API is in the tenant's account"
    );
    assert_eq!(
        api_count(&r.own).await,
        0,
        "nothing in the operator's own account"
    );
    assert_eq!(
        api_count(&other).await,
        0,
        "nothing in another tenant's account"
    );
    assert!(
        status
            .oidc_provider_arn
            .unwrap()
            .contains(&format!(":{}:", team.id))
    );

    // Who signed what, as the emulator saw it: the operator's own credentials only
    // assumed the role; every other request was signed by the tenant account's role.
    let by_operator = signed_by(&r.own, "authedapi-operator-");
    assert!(!by_operator.is_empty());
    assert!(
        by_operator.iter().all(|op| op == "sts:AssumeRole"),
        "the operator's own credentials did only AssumeRole: {by_operator:?}"
    );
    let by_team = signed_in(&team);
    for service in ["apigateway", "iam", "cognito-identity", "lambda"] {
        assert!(
            by_team
                .iter()
                .any(|op| op.starts_with(&format!("{service}:"))),
            "{service} calls signed in the tenant's account: {by_team:?}"
        );
    }
    assert!(
        signed_in(&other).is_empty(),
        "no request signed with the other account's role"
    );

    // The operator's metrics say the same, by account.
    let metrics = operator.metrics().await;
    let in_account = |id: &str| {
        common::sum_metric(
            &metrics,
            "authedapi_aws_requests_total",
            Some(("account", id)),
        )
    };
    assert!(in_account(&team.id) > 0, "{metrics}");
    assert_eq!(in_account(&other.id), 0);
    assert_eq!(
        in_account(&r.own.id),
        0,
        "the operator's account is never called"
    );
}

#[tokio::test]
async fn a_role_that_cannot_be_assumed_stalls_with_aws_message_and_changes_nothing() {
    let own = shared::account();
    let team = tenant_account(&operator_role_arn(&own.id)).await;
    let identity = operator_assuming(&own, &[&team]).await;
    let r = rig("acct-refused", &own).await;
    // The tenant gives the wrong external id: the role's trust refuses the operator.
    r.map_to(&tenant_role_arn(&team), "not-the-agreed-id").await;
    let operator = r.operator(&identity);
    let team_config = team.sdk_config().await;
    apply(&r.api, &seed_in(&team, &team_config, "seed").await).await;
    let obj = wait_stalled(&r.api, "seed", &operator).await;
    let (_, reason, message) = condition(&obj, "Stalled").unwrap();
    assert_eq!(reason, "AccountUnavailable", "{message}");
    assert!(
        message.contains("is not authorized to perform: sts:AssumeRole")
            && message.contains(&tenant_role_arn(&team)),
        "AWS's own words: {message}"
    );
    assert!(
        message.contains(&format!("AuthedApiTenant {}-account", r.ns)),
        "{message}"
    );
    assert!(
        signed_in(&team).is_empty(),
        "nothing was signed as the tenant's role"
    );
    assert_eq!(api_count(&team).await, 0);
}

/// Two tenant accounts and two namespaces, one mapped to each, each watched by its own
/// operator process (as one identity), each with the seed Ready: one Auth0 domain and
/// client id in both accounts.
struct TwoTenants {
    own: Account,
    team: Account,
    other: Account,
    identity: OperatorIdentity,
    r: Rig,
    second: Rig,
    one: Operator,
    two: Operator,
    a: AuthedApi,
    b: AuthedApi,
}

async fn two_tenants_ready(prefix: &str) -> TwoTenants {
    let own = shared::account();
    let operator_role = operator_role_arn(&own.id);
    let team = tenant_account(&operator_role).await;
    let other = tenant_account(&operator_role).await;
    let identity = operator_assuming(&own, &[&team, &other]).await;
    let r = rig(prefix, &own).await;
    let second = rig(&format!("{prefix}-b"), &own).await;
    r.map_to(&tenant_role_arn(&team), EXTERNAL_ID).await;
    second.map_to(&tenant_role_arn(&other), EXTERNAL_ID).await;
    let (one, two) = (r.operator(&identity), second.operator(&identity));
    let team_config = team.sdk_config().await;
    let other_config = other.sdk_config().await;
    apply(&r.api, &seed_in(&team, &team_config, "seed").await).await;
    apply(&second.api, &seed_in(&other, &other_config, "seed").await).await;
    let a = wait_ready(&r.api, "seed", &one, READY_TIMEOUT).await;
    let b = wait_ready(&second.api, "seed", &two, READY_TIMEOUT).await;
    TwoTenants {
        own,
        team,
        other,
        identity,
        r,
        second,
        one,
        two,
        a,
        b,
    }
}

#[tokio::test]
async fn two_tenants_on_one_auth0_domain_get_one_provider_per_account_and_a_move_is_refused() {
    let TwoTenants {
        team,
        other,
        r,
        one,
        a,
        b,
        own: _own,
        identity: _identity,
        second: _second,
        two: _two,
    } = two_tenants_ready("acct-two").await;

    // The same Auth0 domain: one provider in each account, none in the operator's.
    let (in_team, in_other) = (providers(&team).await, providers(&other).await);
    assert_eq!(in_team.len(), 1, "{in_team:?}");
    assert_eq!(in_other.len(), 1, "{in_other:?}");
    let suffix = |arn: &str| arn.split(":oidc-provider/").nth(1).unwrap().to_owned();
    assert_eq!(suffix(&in_team[0]), suffix(&in_other[0]), "one domain");
    assert!(providers(&r.own).await.is_empty());
    assert_eq!(
        a.status.unwrap().oidc_provider_arn,
        Some(in_team[0].clone())
    );
    assert_eq!(
        b.status.unwrap().oidc_provider_arn,
        Some(in_other[0].clone())
    );

    // The platform maps the first namespace to the other account: refused, nothing moves.
    let writes_before = signed_in(&other).len();
    r.map_to(&tenant_role_arn(&other), EXTERNAL_ID).await;
    let moved = wait_stalled(&r.api, "seed", &one).await;
    let (_, reason, message) = condition(&moved, "Stalled").unwrap();
    assert_eq!(reason, "AccountMoved", "{message}");
    assert!(
        message.contains(&team.id) && message.contains(&other.id),
        "{message}"
    );
    assert_eq!(
        api_count(&team).await,
        1,
        "its resources stay where they are"
    );
    assert_eq!(api_count(&other).await, 1, "and no second set is made");
    assert_eq!(
        signed_in(&other)[writes_before..]
            .iter()
            .filter(|op| !common::is_read(op))
            .count(),
        0,
        "nothing written in the new account for the moved object"
    );
}

#[tokio::test]
async fn one_operator_many_accounts_a_slow_or_refused_account_holds_back_only_its_own() {
    let own = shared::account();
    let operator_role = operator_role_arn(&own.id);
    let fast = tenant_account(&operator_role).await;
    let slow = tenant_account(&operator_role).await;
    let refused = tenant_account(&operator_role).await;
    let identity = operator_assuming(&own, &[&fast, &slow, &refused]).await;
    let client = shared::client().await;
    install_crd(&client).await.unwrap();
    // One operator for three namespaces (selected by a label of this test's objects).
    let run = format!("accounts-{}", std::process::id());
    let label = format!("authedapi.dev/test-run={run}");
    let mut namespaces = Vec::new();
    for (prefix, account, external_id, limits) in [
        ("acct-fast", &fast, EXTERNAL_ID, &[][..]),
        // The slow account's own client-side API Gateway limit: 1 request every 2 s.
        ("acct-slow", &slow, EXTERNAL_ID, &["apigateway=0.5:1"][..]),
        ("acct-refused", &refused, "not-the-agreed-id", &[][..]),
    ] {
        let ns = TestNamespace::create(&client, prefix).await.unwrap().name;
        map(&client, &ns, &tenant_role_arn(account), external_id, limits).await;
        namespaces.push((ns, account));
    }
    let operator = Operator::start_selecting(
        &label,
        &own,
        &identity.credentials,
        &[
            "--own-account",
            "deny",
            "--allowed-functions",
            "arn:aws:lambda:*:*:function:*",
        ],
    );
    let start = std::time::Instant::now();
    let mut apis = Vec::new();
    for (ns, account) in &namespaces {
        let config = account.sdk_config().await;
        let mut seed = seed_in(account, &config, "seed").await;
        seed["metadata"]["labels"] = json!({"authedapi.dev/test-run": run});
        let api: Api<AuthedApi> = Api::namespaced(client.clone(), ns);
        apply(&api, &seed).await;
        apis.push(api);
    }
    wait_ready(&apis[0], "seed", &operator, READY_TIMEOUT).await;
    let fast_ready = start.elapsed();
    let stalled = wait_stalled(&apis[2], "seed", &operator).await;
    let (_, reason, message) = condition(&stalled, "Stalled").unwrap();
    assert_eq!(reason, "AccountUnavailable", "{message}");
    let slow_obj = apis[1].get("seed").await.unwrap();
    assert!(
        !authedapi::status::is_ready(&slow_obj.status.unwrap_or_default().conditions, 1),
        "the slow account is still at work when the fast one is Ready"
    );
    wait_ready(&apis[1], "seed", &operator, READY_TIMEOUT).await;
    let slow_ready = start.elapsed();
    eprintln!(
        "[measure] one operator, three accounts: the fast account's seed Ready in {:.1}s while \
         the slow one (API Gateway at 0.5 rps) took {:.1}s and the refused one stalled",
        fast_ready.as_secs_f64(),
        slow_ready.as_secs_f64()
    );
    assert!(
        fast_ready.as_secs_f64() * 3.0 < slow_ready.as_secs_f64(),
        "the fast account was not held back by the slow one: {fast_ready:?} vs {slow_ready:?}"
    );
    assert_eq!(api_count(&fast).await, 1);
    assert_eq!(api_count(&slow).await, 1);
    assert_eq!(api_count(&refused).await, 0);
    assert!(signed_in(&refused).is_empty());
}

/// Everything of authedapi's in `account`, as the emulator holds it: APIs, identity
/// pools, roles under /authedapi/, OIDC providers.
async fn everything_in(account: &Account) -> (usize, usize, usize, Vec<String>) {
    let config = account.sdk_config().await;
    let pools = aws_sdk_cognitoidentity::Client::new(&config)
        .list_identity_pools()
        .max_results(60)
        .send()
        .await
        .unwrap()
        .identity_pools()
        .len();
    let roles = aws_sdk_iam::Client::new(&config)
        .list_roles()
        .path_prefix("/authedapi/")
        .send()
        .await
        .unwrap()
        .roles()
        .len();
    (
        api_count(account).await,
        pools,
        roles,
        providers(account).await,
    )
}

/// A namespace moved to another tenant's account and back, then its object deleted, while
/// another tenant's object on the same Auth0 domain and client id lives in that other
/// account: the delete names what blocks it while the namespace is away, finishes once it
/// is back, and leaves nothing in the first account (checked in the emulator's state);
/// the other account keeps only the other object's. An object whose account role refuses
/// the operator from the start made nothing, and its delete finishes at once.
#[tokio::test]
async fn a_move_and_back_then_delete_leaves_nothing_and_a_refused_account_holds_no_delete() {
    let TwoTenants {
        own,
        team,
        other,
        identity,
        r,
        one,
        second: _second,
        two: _two,
        a: _,
        b: _,
    } = two_tenants_ready("acct-back").await;
    let team_config = team.sdk_config().await;

    // Away: the delete is blocked, and says by what and what to do.
    r.map_to(&tenant_role_arn(&other), EXTERNAL_ID).await;
    wait_stalled(&r.api, "seed", &one).await;
    r.api
        .delete("seed", &kube::api::DeleteParams::default())
        .await
        .unwrap();
    let blocked = common::wait_for(
        &r.api,
        "seed",
        &one,
        std::time::Duration::from_secs(30),
        "blocked",
        |o| condition(o, "Stalled").is_some_and(|(_, _, m)| m.contains("Deleting is blocked")),
    )
    .await;
    let (_, reason, message) = condition(&blocked, "Stalled").unwrap();
    assert_eq!(reason, "AccountMoved", "{message}");
    assert!(message.contains("deletionPolicy: Retain"), "{message}");

    // Back: the delete finishes, and nothing is left in the team's account.
    let start = std::time::Instant::now();
    r.map_to(&tenant_role_arn(&team), EXTERNAL_ID).await;
    common::wait_gone(&r.api, "seed", &one, std::time::Duration::from_secs(60)).await;
    eprintln!(
        "[measure] a delete blocked by a move finished {:.1}s after the namespace was mapped back",
        start.elapsed().as_secs_f64()
    );
    assert_eq!(everything_in(&team).await, (0, 0, 0, vec![]));
    let (apis, pools, roles, left) = everything_in(&other).await;
    assert_eq!((apis, pools, left.len()), (1, 1, 1), "{left:?}");
    assert!(roles > 0, "the other object's roles stay");

    // A role that refuses the operator from the start: nothing made, nothing to wait for.
    let refused = rig("acct-back-refused", &own).await;
    refused
        .map_to(&tenant_role_arn(&team), "not-the-agreed-id")
        .await;
    let three = refused.operator(&identity);
    apply(&refused.api, &seed_in(&team, &team_config, "seed").await).await;
    wait_stalled(&refused.api, "seed", &three).await;
    let start = std::time::Instant::now();
    refused
        .api
        .delete("seed", &kube::api::DeleteParams::default())
        .await
        .unwrap();
    common::wait_gone(
        &refused.api,
        "seed",
        &three,
        std::time::Duration::from_secs(30),
    )
    .await;
    eprintln!(
        "[measure] deleting an object Stalled AccountUnavailable: gone in {:.1}s",
        start.elapsed().as_secs_f64()
    );
    assert_eq!(everything_in(&team).await, (0, 0, 0, vec![]));
}
