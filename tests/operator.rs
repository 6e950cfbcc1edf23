//! The operator end to end: `authedapi controller` as a process against the real
//! kube-apiserver and the AWS emulator. Every test reads AWS state back from the emulator.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use authedapi::api::AuthedApi;
use authedapi::aws::AwsClients;
use authedapi::aws::apigateway::RouteAuth;
use authedapi::aws::cognito::PoolRoles;
use authedapi_rig::{Account, TestNamespace, shared};
use kube::api::{Api, DeleteParams};
use serde_json::{Value, json};

use common::{Operator, apply, install_crd, seed_in, uid, wait_gone, wait_ready};

const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// A namespace, an AWS account, clients for it, and an operator watching the namespace.
struct Setup {
    api: Api<AuthedApi>,
    namespace: String,
    account: Account,
    config: aws_types::SdkConfig,
    aws: AwsClients,
    operator: Operator,
}

async fn setup(prefix: &str, operator_args: &[&str]) -> Setup {
    let client = shared::client().await;
    install_crd(&client).await.expect("the CRD installs");
    let ns = TestNamespace::create(&client, prefix)
        .await
        .expect("a namespace");
    let account = shared::account();
    let config = account.sdk_config().await;
    let operator = Operator::start(&ns.name, &account, operator_args, &[]).await;
    Setup {
        api: Api::namespaced(client, &ns.name),
        namespace: ns.name,
        aws: AwsClients::new(&config, &[]),
        account,
        config,
        operator,
    }
}

impl Setup {
    async fn seed(&self, name: &str) -> Value {
        seed_in(&self.account, &self.config, name).await
    }

    /// The invoke policy on `obj`'s authenticated role, if it has one.
    async fn invoke_policy(&self, obj: &AuthedApi) -> Option<Value> {
        self.aws
            .iam
            .get_role_policy(&role_name(obj), "authedapi-invoke")
            .await
            .unwrap()
    }

    async fn ready(&self, name: &str) -> AuthedApi {
        wait_ready(&self.api, name, &self.operator, READY_TIMEOUT).await
    }

    fn arn(&self, rest: &str) -> String {
        format!("arn:aws:execute-api:us-east-1:{}:{rest}", self.account.id)
    }
}

#[tokio::test]
async fn seed_example_becomes_ready_with_the_seed_resources() {
    let s = setup("op-seed", &[]).await;
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

/// Apply `object`, wait for Ready, return it.
async fn apply_ready(s: &Setup, object: &Value) -> AuthedApi {
    let name = object["metadata"]["name"].as_str().unwrap();
    apply(&s.api, object).await;
    s.ready(name).await
}

fn api_id(obj: &AuthedApi) -> String {
    obj.status
        .as_ref()
        .and_then(|s| s.api_id.clone())
        .expect("apiId")
}

fn role_name(obj: &AuthedApi) -> String {
    let arn = obj
        .status
        .as_ref()
        .and_then(|s| s.authenticated_role_arn.clone())
        .expect("role");
    arn.rsplit('/').next().unwrap().to_owned()
}

#[tokio::test]
async fn spec_edits_converge_and_kubectl_wait_works() {
    let s = setup("op-edit", &[]).await;
    let seed = s.seed("edited").await;
    let first = apply_ready(&s, &seed).await;
    assert_eq!(first.status.as_ref().unwrap().observed_generation, Some(1));
    let id = api_id(&first);

    // Flip GET /private from iam to none and point it at a URL; drop GET /public; add
    // POST /items (iam, by default).
    let private_fn = seed["spec"]["routes"][0]["target"]["lambda"]["functionArn"].clone();
    let public_fn = seed["spec"]["routes"][1]["target"]["lambda"]["functionArn"].clone();
    let mut edited = seed.clone();
    edited["spec"]["routes"] = json!([
        {"route": "GET /private", "authorization": "none",
         "target": {"http": {"url": "https://example.com/private"}}},
        {"route": "POST /items", "target": {"lambda": {"functionArn": private_fn}}},
    ]);
    apply(&s.api, &edited).await;

    // kubectl wait sees the new generation through to Ready.
    let out = shared::control_plane()
        .kubectl()
        .unwrap()
        .args([
            "wait",
            "--for=condition=Ready",
            "--timeout=60s",
            "-n",
            &s.namespace,
            "authedapi/edited",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let second = s.ready("edited").await;
    assert_eq!(second.status.as_ref().unwrap().observed_generation, Some(2));
    assert_eq!(api_id(&second), id, "the same API, updated in place");

    let routes = s.aws.apigateway.list_routes(&id).await.unwrap();
    let mut keys: Vec<_> = routes
        .iter()
        .map(|r| (r.key.clone(), r.auth.clone()))
        .collect();
    keys.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        keys,
        vec![
            ("GET /private".to_owned(), RouteAuth::None),
            ("POST /items".to_owned(), RouteAuth::Iam)
        ]
    );
    let integrations = s.aws.apigateway.list_integrations(&id).await.unwrap();
    assert_eq!(
        integrations.len(),
        2,
        "the unused integration is gone: {integrations:?}"
    );
    let private_route = routes.iter().find(|r| r.key == "GET /private").unwrap();
    let private_integration = integrations
        .iter()
        .find(|i| Some(&i.id) == private_route.integration_id.as_ref())
        .unwrap();
    assert!(format!("{:?}", private_integration.target).contains("https://example.com/private"));

    let policy = s.invoke_policy(&second).await.unwrap();
    assert_eq!(
        policy["Statement"][0]["Resource"],
        json!([s.arn(&format!("{id}/$default/POST/items"))])
    );

    // The public function is no longer a target: its permission is gone; the private
    // function's stays.
    let public = s
        .aws
        .lambda
        .permissions(public_fn.as_str().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert!(public.is_empty(), "{public:?}");
    let private = s
        .aws
        .lambda
        .permissions(private_fn.as_str().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(private.len(), 1);

    // Every route public: the role keeps no invoke policy at all.
    let mut open = edited.clone();
    open["spec"]["defaultAuthorization"] = json!("none");
    let third = apply_ready(&s, &open).await;
    assert_eq!(third.status.as_ref().unwrap().observed_generation, Some(3));
    assert_eq!(s.invoke_policy(&third).await, None);
}

#[tokio::test]
async fn a_jwt_route_gets_a_jwt_authorizer() {
    let s = setup("op-jwt", &[]).await;
    let mut object = s.seed("jwt").await;
    object["spec"]["routes"]
        .as_array_mut()
        .unwrap()
        .push(json!({
            "route": "GET /reports", "authorization": "jwt", "scopes": ["read:reports"],
            "target": {"http": {"url": "https://example.com/reports"}}
        }));
    let obj = apply_ready(&s, &object).await;
    let id = api_id(&obj);
    let authorizers = s.aws.apigateway.list_authorizers(&id).await.unwrap();
    assert_eq!(authorizers.len(), 1);
    assert_eq!(authorizers[0].issuer, "https://myorg.us.auth0.com/");
    assert_eq!(
        authorizers[0].audience,
        vec!["UsGRQJJz5sDfPQDs6bhQ9Oc3hNISuVif"]
    );
    let routes = s.aws.apigateway.list_routes(&id).await.unwrap();
    let reports = routes.iter().find(|r| r.key == "GET /reports").unwrap();
    assert_eq!(
        reports.auth,
        RouteAuth::Jwt {
            authorizer_id: authorizers[0].id.clone(),
            scopes: vec!["read:reports".into()]
        }
    );
    // The JWT route is not in the IAM policy.
    let policy = s.invoke_policy(&obj).await.unwrap();
    assert_eq!(
        policy["Statement"][0]["Resource"],
        json!([s.arn(&format!("{id}/$default/GET/private"))])
    );

    // No JWT route left: the authorizer goes too.
    let routes = object["spec"]["routes"].as_array_mut().unwrap();
    routes.pop();
    let obj = apply_ready(&s, &object).await;
    assert!(
        s.aws
            .apigateway
            .list_authorizers(&api_id(&obj))
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn dev_and_prod_of_one_api_share_nothing_but_the_provider() {
    let s = setup("op-stages", &[]).await;
    let mut objects = Vec::new();
    for doc in common::example_documents("authedapi-stages.yaml") {
        objects.push(common::moved_into(&s.account, &s.config, doc).await);
    }
    assert_eq!(objects.len(), 2);
    for object in &objects {
        apply(&s.api, object).await;
    }
    let dev = s.ready("api-auth-auth0-dev").await;
    let prod = s.ready("api-auth-auth0-prod").await;
    let (dev_status, prod_status) = (dev.status.clone().unwrap(), prod.status.clone().unwrap());
    assert_ne!(dev_status.api_id, prod_status.api_id);
    assert_ne!(dev_status.identity_pool_id, prod_status.identity_pool_id);
    assert_ne!(
        dev_status.authenticated_role_arn,
        prod_status.authenticated_role_arn
    );
    assert_eq!(dev_status.oidc_provider_arn, prod_status.oidc_provider_arn);
    assert!(role_name(&dev).starts_with("dev-"));
    assert!(role_name(&prod).starts_with("prod-"));

    let apis = s.aws.apigateway.list_apis().await.unwrap();
    assert_eq!(apis.len(), 2);
    let names: BTreeSet<_> = apis
        .iter()
        .map(|a| a.name.split('-').next().unwrap().to_owned())
        .collect();
    assert_eq!(names, BTreeSet::from(["dev".to_owned(), "prod".to_owned()]));
    let pools = s.aws.cognito.list_identity_pools().await.unwrap();
    assert_eq!(pools.len(), 2);
    assert!(
        pools.iter().any(|(_, n)| n.starts_with("dev_"))
            && pools.iter().any(|(_, n)| n.starts_with("prod_"))
    );
}

async fn delete(s: &Setup, name: &str) {
    s.api.delete(name, &DeleteParams::default()).await.unwrap();
    wait_gone(&s.api, name, &s.operator, READY_TIMEOUT).await;
}

/// `object` with another name and Auth0 client id.
fn with_client(object: &Value, name: &str, client_id: &str, domain: &str) -> Value {
    let mut object = object.clone();
    object["metadata"]["name"] = json!(name);
    object["spec"]["auth0"]["clientId"] = json!(client_id);
    object["spec"]["auth0"]["domain"] = json!(domain);
    object
}

#[tokio::test]
async fn one_oidc_provider_per_domain_shared_and_released() {
    let s = setup("op-oidc", &[]).await;
    let seed = s.seed("base").await;
    let a = apply_ready(&s, &with_client(&seed, "a", "client-a", "shared.auth0.com")).await;
    let b = apply_ready(&s, &with_client(&seed, "b", "client-b", "shared.auth0.com")).await;
    let arn = a.status.clone().unwrap().oidc_provider_arn.unwrap();
    assert_eq!(
        Some(&arn),
        b.status.as_ref().unwrap().oidc_provider_arn.as_ref()
    );
    let provider = s.aws.iam.get_oidc_provider(&arn).await.unwrap().unwrap();
    assert_eq!(provider.client_ids, vec!["client-a", "client-b"]);

    delete(&s, "a").await;
    let provider = s
        .aws
        .iam
        .get_oidc_provider(&arn)
        .await
        .unwrap()
        .expect("still used by b");
    assert_eq!(provider.client_ids, vec!["client-b"]);

    delete(&s, "b").await;
    assert_eq!(
        s.aws.iam.get_oidc_provider(&arn).await.unwrap(),
        None,
        "created by us, unused: gone"
    );
}

#[tokio::test]
async fn an_oidc_provider_we_did_not_create_is_used_but_never_deleted() {
    let s = setup("op-oidc-foreign", &[]).await;
    let arn = s
        .aws
        .iam
        .create_oidc_provider(
            "https://foreign.auth0.com",
            &["someone-else".into()],
            &Default::default(),
        )
        .await
        .unwrap();
    let seed = s.seed("base").await;
    apply_ready(
        &s,
        &with_client(&seed, "a", "client-a", "https://foreign.auth0.com/"),
    )
    .await;
    apply_ready(
        &s,
        &with_client(&seed, "b", "client-b", "foreign.auth0.com"),
    )
    .await;
    let provider = s.aws.iam.get_oidc_provider(&arn).await.unwrap().unwrap();
    assert_eq!(
        provider.client_ids,
        vec!["someone-else", "client-a", "client-b"]
    );
    assert!(
        provider.tags.is_empty(),
        "a provider someone else made is not tagged at all (its tags are not ours to \
         write): {:?}",
        provider.tags
    );

    delete(&s, "a").await;
    delete(&s, "b").await;
    let provider = s
        .aws
        .iam
        .get_oidc_provider(&arn)
        .await
        .unwrap()
        .expect("never deleted");
    // Client ids are removed only from providers this cluster created: IAM cannot let the
    // operator remove its own client ids from someone else's provider without letting it
    // remove theirs too, so ours stay (harmless: no identity pool uses them any more).
    assert_eq!(
        provider.client_ids,
        vec!["someone-else", "client-a", "client-b"]
    );
    assert!(provider.tags.is_empty(), "{:?}", provider.tags);
}

/// Every resource the seed creates in the account, counted from the emulator.
async fn count_resources(s: &Setup, role: &str) -> (usize, usize, bool, usize) {
    let apis = s.aws.apigateway.list_apis().await.unwrap().len();
    let pools = s.aws.cognito.list_identity_pools().await.unwrap().len();
    let role_exists = s.aws.iam.get_role(role).await.unwrap().is_some();
    let permissions = common::seed_permissions(&s.aws, &s.account)
        .await
        .iter()
        .map(|(_, p)| p.len())
        .sum();
    (apis, pools, role_exists, permissions)
}

#[tokio::test]
async fn delete_removes_every_aws_resource() {
    let s = setup("op-delete", &[]).await;
    let obj = apply_ready(&s, &s.seed("gone").await).await;
    let role = role_name(&obj);
    let provider = obj.status.clone().unwrap().oidc_provider_arn.unwrap();
    assert_eq!(count_resources(&s, &role).await, (1, 1, true, 2));

    delete(&s, "gone").await;
    assert_eq!(count_resources(&s, &role).await, (0, 0, false, 0));
    assert_eq!(s.aws.iam.get_oidc_provider(&provider).await.unwrap(), None);
}

#[tokio::test]
async fn retain_keeps_every_aws_resource() {
    let s = setup("op-retain", &[]).await;
    let mut object = s.seed("kept").await;
    object["spec"]["deletionPolicy"] = json!("Retain");
    let obj = apply_ready(&s, &object).await;
    let role = role_name(&obj);
    let provider = obj.status.clone().unwrap().oidc_provider_arn.unwrap();

    delete(&s, "kept").await;
    assert_eq!(count_resources(&s, &role).await, (1, 1, true, 2));
    assert!(
        s.aws
            .iam
            .get_oidc_provider(&provider)
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn a_foreign_role_with_our_name_stalls_the_object_and_is_left_alone() {
    let s = setup("op-conflict", &[]).await;
    let object = s.seed("conflict").await;
    let spec: authedapi::api::AuthedApiSpec =
        serde_json::from_value(object["spec"].clone()).unwrap();
    let planned = authedapi::plan::plan(
        &spec,
        &authedapi::plan::Identity {
            namespace: &s.namespace,
            name: "conflict",
            uid: "not-known-yet",
            account: &s.account.id,
            region: "us-east-1",
            cluster_id: "test",
            permissions_boundary: "authedapi-permissions-boundary",
        },
    )
    .unwrap();
    let foreign_trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]});
    s.aws
        .iam
        .create_role(
            "/",
            &planned.role_name,
            &foreign_trust,
            "someone else's",
            &Default::default(),
            &planned.permissions_boundary_arn,
        )
        .await
        .unwrap();

    apply(&s.api, &object).await;
    let stalled = common::wait_for(
        &s.api,
        "conflict",
        &s.operator,
        READY_TIMEOUT,
        "Stalled",
        |o| {
            o.status.as_ref().is_some_and(|st| {
                st.conditions.iter().any(|c| {
                    c.type_ == "Stalled" && c.status == "True" && c.reason == "NameConflict"
                })
            })
        },
    )
    .await;
    let ready = stalled
        .status
        .unwrap()
        .conditions
        .into_iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    assert_eq!(ready.status, "False");
    assert!(
        ready.message.contains(&planned.role_name),
        "{}",
        ready.message
    );

    let role = s
        .aws
        .iam
        .get_role(&planned.role_name)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(role.trust_policy, foreign_trust, "trust untouched");
    assert!(role.tags.is_empty(), "not tagged");
    assert!(
        s.aws
            .iam
            .list_role_policies(&planned.role_name)
            .await
            .unwrap()
            .is_empty()
    );

    // Deleting the object leaves the foreign role alone too.
    delete(&s, "conflict").await;
    assert!(
        s.aws
            .iam
            .get_role(&planned.role_name)
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn steady_state_resync_sends_no_aws_writes() {
    let s = setup("op-steady", &["--resync", "4s"]).await;
    apply_ready(&s, &s.seed("steady").await).await;
    // Let the reconcile triggered by our own status write pass.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let writes = s.operator.aws_requests(Some("write")).await;
    let reads = s.operator.aws_requests(Some("read")).await;

    // Inside the resync period an unchanged object costs no AWS call at all.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(s.operator.aws_requests(None).await, writes + reads);

    // A resync observes everything again, and writes nothing.
    let deadline = Instant::now() + Duration::from_secs(20);
    while s.operator.aws_requests(Some("read")).await == reads {
        assert!(
            Instant::now() < deadline,
            "no resync within 20s:\n{}",
            s.operator.log_tail(20)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let reads_per_resync = s.operator.aws_requests(Some("read")).await - reads;
    assert_eq!(
        s.operator.aws_requests(Some("write")).await,
        writes,
        "a resync wrote to AWS"
    );
    eprintln!("[measure] seed: {reads_per_resync} AWS reads and 0 writes per no-change resync");
}

#[tokio::test]
async fn with_leader_election_only_the_leader_reconciles_and_a_standby_takes_over() {
    let client = shared::client().await;
    install_crd(&client).await.unwrap();
    let ns = TestNamespace::create(&client, "op-leader").await.unwrap();
    let account = shared::account();
    let config = account.sdk_config().await;
    let api: Api<AuthedApi> = Api::namespaced(client, &ns.name);
    let lease_args = ["--leader-elect", "--lease-duration", "4s"];
    let lease_env = [("POD_NAMESPACE", ns.name.as_str())];

    let mut first = Operator::start(&ns.name, &account, &lease_args, &lease_env).await;
    let seed = seed_in(&account, &config, "led").await;
    apply(&api, &seed).await;
    wait_ready(&api, "led", &first, READY_TIMEOUT).await;
    // The second replica starts once the first leads: it must stay a standby.
    let second = Operator::start(&ns.name, &account, &lease_args, &lease_env).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(first.reconciles().await > 0);
    assert_eq!(second.reconciles().await, 0, "a standby reconciled");
    assert_eq!(second.aws_requests(None).await, 0, "a standby called AWS");

    // The leader dies without releasing the lease; a change arrives meanwhile.
    first.kill();
    let killed = Instant::now();
    let mut edited = seed.clone();
    edited["spec"]["routes"][1]["authorization"] = json!("iam");
    apply(&api, &edited).await;
    let obj = wait_ready(&api, "led", &second, READY_TIMEOUT).await;
    let took_over = killed.elapsed();
    assert_eq!(obj.status.as_ref().unwrap().observed_generation, Some(2));
    assert!(second.reconciles().await > 0);
    assert!(
        took_over < Duration::from_secs(4 + 10),
        "the standby took {took_over:?} to finish the change"
    );
    let aws = AwsClients::new(&config, &[]);
    let routes = aws.apigateway.list_routes(&api_id(&obj)).await.unwrap();
    assert!(
        routes.iter().all(|r| r.auth == RouteAuth::Iam),
        "{routes:?}"
    );
    eprintln!("[measure] leader killed: the standby finished the pending change in {took_over:?}");
}

#[tokio::test]
async fn without_spec_region_the_first_region_stays_when_the_operator_moves() {
    let mut s = setup("op-region", &[]).await;
    let mut object = s.seed("pinned").await;
    object["spec"].as_object_mut().unwrap().remove("region");
    let first = apply_ready(&s, &object).await.status.unwrap();
    assert_eq!(first.region.as_deref(), Some(s.account.region.as_str()));

    // The operator is redeployed with another default region (AWS_REGION).
    s.operator.stop();
    let elsewhere = Account {
        region: "eu-west-1".into(),
        ..s.account.clone()
    };
    s.operator = Operator::start(&s.namespace, &elsewhere, &[], &[]).await;
    // A change, so the new process certainly reconciles.
    object["spec"]["routes"].as_array_mut().unwrap().pop();
    let second = apply_ready(&s, &object).await.status.unwrap();
    assert_eq!(second.region, first.region);
    assert_eq!(second.api_id, first.api_id);
    let there = AwsClients::new(&elsewhere.sdk_config().await, &[]);
    assert!(
        there.apigateway.list_apis().await.unwrap().is_empty(),
        "nothing created in the operator's new default region"
    );
}
