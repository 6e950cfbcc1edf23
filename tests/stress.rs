//! The operator under stress, through the fault proxy: throttling, persistent
//! AccessDenied, drift, a restarted API server, isolation between namespaces and
//! clusters, policies AWS spells differently, and deletion under faults.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use authedapi::api::AuthedApi;
use authedapi::aws::AwsClients;
use authedapi::aws::apigateway::RouteAuth;
use authedapi::aws::cognito::PoolRoles;
use authedapi_rig::fault_proxy::{Fault, FaultProxy, Rule};
use authedapi_rig::{Account, ControlPlane, TestNamespace, shared};
use kube::api::{Api, DeleteParams};
use serde_json::{Value, json};

use common::{Operator, apply, install_crd, seed_in, wait_for, wait_gone, wait_ready};

/// A namespace, an account, and a fault proxy in front of the emulator for it.
struct Stressed {
    api: Api<AuthedApi>,
    namespace: String,
    account: Account,
    config: aws_types::SdkConfig,
    aws: AwsClients,
    proxy: FaultProxy,
}

impl Stressed {
    async fn new(prefix: &str) -> Self {
        let client = shared::client().await;
        install_crd(&client).await.unwrap();
        let ns = TestNamespace::create(&client, prefix).await.unwrap();
        let account = shared::account();
        let config = account.sdk_config().await;
        let proxy = FaultProxy::start(&shared::emulator().endpoint).unwrap();
        Self {
            api: Api::namespaced(client, &ns.name),
            namespace: ns.name,
            aws: AwsClients::new(&config, &[]),
            account,
            config,
            proxy,
        }
    }

    /// The operator for this namespace, its AWS calls through the proxy.
    async fn operator(&self, args: &[&str]) -> Operator {
        let via_proxy = Account {
            endpoint: self.proxy.endpoint().to_owned(),
            ..self.account.clone()
        };
        Operator::start(&self.namespace, &via_proxy, args, &[]).await
    }

    async fn seed(&self, name: &str) -> Value {
        seed_in(&self.account, &self.config, name).await
    }
}

fn condition(obj: &AuthedApi, type_: &str) -> Option<(String, String, String)> {
    obj.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
}

#[tokio::test]
async fn half_of_all_requests_throttled_twenty_objects_still_converge() {
    let s = Stressed::new("stress-throttle").await;
    s.proxy
        .set_rules(vec![Rule::new(Fault::Throttle).rate(0.5)]);
    let operator = s.operator(&[]).await;
    let names: Vec<String> = (0..20).map(|i| format!("api-{i}")).collect();
    for name in &names {
        apply(&s.api, &s.seed(name).await).await;
    }

    // Watch every object until all are Ready; none may ever be Stalled.
    let deadline = Instant::now() + Duration::from_secs(240);
    let mut ready = BTreeSet::new();
    while ready.len() < names.len() {
        for name in &names {
            let obj = s.api.get(name).await.unwrap();
            if let Some((status, reason, message)) = condition(&obj, "Stalled") {
                assert_ne!(
                    status, "True",
                    "{name} stalled under throttling: {reason}: {message}"
                );
            }
            let generation = obj.metadata.generation.unwrap_or_default();
            let conditions = obj
                .status
                .as_ref()
                .map(|s| s.conditions.as_slice())
                .unwrap_or_default();
            if authedapi::status::is_ready(conditions, generation) {
                ready.insert(name.clone());
            }
        }
        assert!(
            Instant::now() < deadline,
            "only {} of 20 Ready after 240s:\n{}",
            ready.len(),
            operator.log_tail(30)
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // Nothing duplicated.
    assert_eq!(s.aws.apigateway.list_apis().await.unwrap().len(), 20);
    assert_eq!(s.aws.cognito.list_identity_pools().await.unwrap().len(), 20);
    for (name, permissions) in common::seed_permissions(&s.aws, &s.account).await {
        assert_eq!(permissions.len(), 20, "one statement per object on {name}");
    }

    // Bounded: the seed needs 26 requests when nothing fails; with half of all attempts
    // throttled each call takes 2 attempts on average, and a reconcile cut short starts
    // over. The bound: 4x the fault-free total.
    let total = s.proxy.total();
    let throttled = s.proxy.outcome_total("throttle");
    eprintln!(
        "[measure] 20 objects, 50% throttled: {total} requests ({throttled} throttled), {:.1} per object",
        total as f64 / 20.0
    );
    assert!(total <= 20 * 26 * 4, "{total} requests for 20 objects");
}

#[tokio::test]
async fn persistent_access_denied_stalls_one_object_and_backs_off() {
    let s = Stressed::new("stress-denied").await;
    s.proxy.set_rules(vec![
        Rule::new(Fault::AccessDenied)
            .service("apigateway")
            .operation("CreateAuthorizer"),
    ]);
    let operator = s.operator(&[]).await;
    // Only "jwt" needs an authorizer; "plain" does not.
    let mut jwt = s.seed("jwt").await;
    jwt["spec"]["routes"][0]["authorization"] = json!("jwt");
    apply(&s.api, &jwt).await;
    apply(&s.api, &s.seed("plain").await).await;

    wait_ready(&s.api, "plain", &operator, Duration::from_secs(60)).await;
    let stalled = wait_stalled(&s.api, "jwt", &operator).await;
    let (_, reason, message) = condition(&stalled, "Stalled").unwrap();
    assert_eq!(reason, "AccessDenied");
    assert!(
        message.contains("not authorized"),
        "the AWS message: {message}"
    );
    assert_eq!(condition(&stalled, "Ready").unwrap().0, "False");

    // Backing off: over 40 seconds, at most a few more attempts.
    let first = s
        .proxy
        .count("apigateway", "CreateAuthorizer", "access_denied");
    tokio::time::sleep(Duration::from_secs(40)).await;
    let later = s
        .proxy
        .count("apigateway", "CreateAuthorizer", "access_denied");
    eprintln!(
        "[measure] AccessDenied: {first} attempts at first, {} more in 40s",
        later - first
    );
    assert!(later - first <= 2, "{} attempts in 40s", later - first);
    // The other object stayed Ready.
    wait_ready(&s.api, "plain", &operator, Duration::from_secs(5)).await;
}

#[tokio::test]
async fn a_client_id_the_spec_moves_away_from_is_released_even_after_a_failed_step() {
    let s = Stressed::new("stress-moving-client").await;
    let operator = s.operator(&[]).await;
    let mut object = s.seed("moving").await;
    object["spec"]["auth0"]["domain"] = json!("moving.auth0.com");
    object["spec"]["auth0"]["clientId"] = json!("old-client");
    apply(&s.api, &object).await;
    let obj = wait_ready(&s.api, "moving", &operator, Duration::from_secs(60)).await;
    let arn = obj.status.unwrap().oidc_provider_arn.unwrap();

    // The new client id goes onto the provider, then a later step fails.
    s.proxy.set_rules(vec![
        Rule::new(Fault::AccessDenied)
            .service("iam")
            .operation("GetRole"),
    ]);
    object["spec"]["auth0"]["clientId"] = json!("new-client");
    apply(&s.api, &object).await;
    wait_stalled(&s.api, "moving", &operator).await;
    let provider = s.aws.iam.get_oidc_provider(&arn).await.unwrap().unwrap();
    assert_eq!(provider.client_ids, vec!["old-client", "new-client"]);

    // Once the step succeeds, the old client id is let go: status had not forgotten it.
    s.proxy.clear_rules();
    wait_ready(&s.api, "moving", &operator, Duration::from_secs(90)).await;
    let provider = s.aws.iam.get_oidc_provider(&arn).await.unwrap().unwrap();
    assert_eq!(provider.client_ids, vec!["new-client"]);
}

#[tokio::test]
async fn drift_made_directly_in_aws_is_corrected_within_one_resync() {
    let s = Stressed::new("stress-drift").await;
    let operator = s.operator(&["--resync", "3s"]).await;
    apply(&s.api, &s.seed("drifty").await).await;
    let obj = wait_ready(&s.api, "drifty", &operator, Duration::from_secs(60)).await;
    let status = obj.status.unwrap();
    let (api_id, pool_id) = (status.api_id.unwrap(), status.identity_pool_id.unwrap());
    let role_arn = status.authenticated_role_arn.unwrap();
    let role = role_arn.rsplit('/').next().unwrap().to_owned();
    let gw = &s.aws.apigateway;
    let wanted_policy = s
        .aws
        .iam
        .get_role_policy(&role, "authedapi-invoke")
        .await
        .unwrap()
        .unwrap();

    // Someone deletes a route and the stage, widens the policy, detaches the pool's role...
    let public = gw
        .list_routes(&api_id)
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.key == "GET /public")
        .unwrap();
    gw.delete_route(&api_id, &public.id).await.unwrap();
    gw.delete_stage(&api_id, "$default").await.unwrap();
    let widened = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Action": "execute-api:Invoke", "Resource": "*"}]});
    s.aws
        .iam
        .put_role_policy(&role, "authedapi-invoke", &widened)
        .await
        .unwrap();
    s.aws
        .cognito
        .set_roles(&pool_id, &PoolRoles::default())
        .await
        .unwrap();
    // ...lets unauthenticated identities in, strips a tag of ours from the pool and the
    // role...
    let mut pool = s
        .aws
        .cognito
        .describe_identity_pool(&pool_id)
        .await
        .unwrap()
        .unwrap();
    pool.allow_unauthenticated = true;
    pool.tags.remove("authedapi.dev/stage");
    s.aws.cognito.update_identity_pool(&pool).await.unwrap();
    aws_sdk_iam::Client::new(&s.config)
        .untag_role()
        .role_name(&role)
        .tag_keys("authedapi.dev/stage")
        .send()
        .await
        .unwrap();
    // ...and widens the role's trust to every identity pool's users.
    let wanted_trust = s
        .aws
        .iam
        .get_role(&role)
        .await
        .unwrap()
        .unwrap()
        .trust_policy;
    let mut widened_trust = wanted_trust.clone();
    widened_trust["Statement"][0]["Condition"]
        .as_object_mut()
        .unwrap()
        .remove("StringEquals");
    s.aws
        .iam
        .update_trust_policy(&role, &widened_trust)
        .await
        .unwrap();
    let drifted = Instant::now();

    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let routes = gw.list_routes(&api_id).await.unwrap();
        let restored = routes
            .iter()
            .any(|r| r.key == "GET /public" && r.auth == RouteAuth::None)
            && gw
                .get_stage(&api_id, "$default")
                .await
                .unwrap()
                .is_some_and(|st| st.auto_deploy)
            && s.aws
                .iam
                .get_role_policy(&role, "authedapi-invoke")
                .await
                .unwrap()
                .is_some_and(|p| authedapi::policy::equivalent(&p, &wanted_policy))
            && s.aws
                .cognito
                .get_roles(&pool_id)
                .await
                .unwrap()
                .authenticated
                .as_deref()
                == Some(role_arn.as_str())
            && s.aws
                .cognito
                .describe_identity_pool(&pool_id)
                .await
                .unwrap()
                .is_some_and(|p| {
                    !p.allow_unauthenticated && p.tags.contains_key("authedapi.dev/stage")
                })
            && s.aws.iam.get_role(&role).await.unwrap().is_some_and(|r| {
                r.tags.contains_key("authedapi.dev/stage")
                    && authedapi::policy::equivalent(&r.trust_policy, &wanted_trust)
            });
        if restored {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "drift not corrected in 20s:\n{}",
            operator.log_tail(30)
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    eprintln!(
        "[measure] drift corrected {:?} after it was made (resync 3s)",
        drifted.elapsed()
    );
}

#[tokio::test]
async fn a_restarted_api_server_does_not_stop_the_operator() {
    // A control plane of its own, since this test restarts it.
    let mut plane = ControlPlane::start().await.unwrap();
    let client = plane.client().await.unwrap();
    install_crd(&client).await.unwrap();
    let ns = TestNamespace::create(&client, "stress-restart")
        .await
        .unwrap();
    let account = shared::account();
    let config = account.sdk_config().await;
    let kubeconfig = plane.kubeconfig.display().to_string();
    let mut operator =
        Operator::start(&ns.name, &account, &[], &[("KUBECONFIG", &kubeconfig)]).await;
    let api: Api<AuthedApi> = Api::namespaced(client, &ns.name);
    let seed = seed_in(&account, &config, "survivor").await;
    apply(&api, &seed).await;
    wait_ready(&api, "survivor", &operator, Duration::from_secs(60)).await;

    plane.restart_apiserver().await.unwrap();
    let client = plane.client().await.unwrap();
    let api: Api<AuthedApi> = Api::namespaced(client, &ns.name);
    let mut edited = seed.clone();
    edited["spec"]["routes"][1]["authorization"] = json!("iam");
    apply(&api, &edited).await;
    let obj = wait_ready(&api, "survivor", &operator, Duration::from_secs(90)).await;
    assert_eq!(obj.status.unwrap().observed_generation, Some(2));
    assert!(
        !operator.exited(),
        "the operator restarted instead of recovering"
    );
}

#[tokio::test]
async fn namespaces_never_adopt_change_or_delete_each_others_resources() {
    let s = Stressed::new("stress-iso-a").await;
    let operator_a = s.operator(&[]).await;
    let a = wait_ready_after_apply(&s, "app", &operator_a).await;
    let a_uid = a.metadata.uid.clone().unwrap();
    let a_api = a.status.as_ref().unwrap().api_id.clone().unwrap();

    // Namespace B, same account: resources carrying B's names but A's uid tag already exist.
    let client = shared::client().await;
    let ns_b = TestNamespace::create(&client, "stress-iso-b")
        .await
        .unwrap();
    let seed_b = s.seed("app").await;
    let spec_b: authedapi::api::AuthedApiSpec =
        serde_json::from_value(seed_b["spec"].clone()).unwrap();
    let planned_b = authedapi::plan::plan(
        &spec_b,
        &authedapi::plan::Identity {
            namespace: &ns_b.name,
            name: "app",
            uid: &a_uid,
            account: &s.account.id,
            region: "us-east-1",
            cluster_id: "test",
            permissions_boundary: "authedapi-permissions-boundary",
        },
    )
    .unwrap();
    let a_tags = planned_b.tags.clone(); // uid = A's
    let decoy_api = s
        .aws
        .apigateway
        .create_api(&planned_b.api_name, &a_tags)
        .await
        .unwrap();
    let decoy_trust = json!({"Version": "2012-10-17", "Statement": []});
    s.aws
        .iam
        .create_role(
            "/authedapi/",
            &planned_b.role_name,
            &decoy_trust,
            "A's",
            &a_tags,
            &planned_b.permissions_boundary_arn,
        )
        .await
        .unwrap();

    let api_b: Api<AuthedApi> = Api::namespaced(client.clone(), &ns_b.name);
    let operator_b = Operator::start(&ns_b.name, &s.account, &[], &[]).await;
    apply(&api_b, &seed_b).await;
    let b = wait_for(
        &api_b,
        "app",
        &operator_b,
        Duration::from_secs(60),
        "Stalled",
        |o| {
            condition(o, "Stalled")
                .is_some_and(|(status, reason, _)| status == "True" && reason == "NameConflict")
        },
    )
    .await;
    // B made an API of its own; it did not adopt the decoy.
    let b_api = b.status.as_ref().unwrap().api_id.clone().unwrap();
    assert_ne!(b_api, decoy_api.id);
    assert_ne!(b_api, a_api);
    let role = s
        .aws
        .iam
        .get_role(&planned_b.role_name)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(role.tags, a_tags, "the role is left as it was");
    assert!(
        s.aws
            .iam
            .list_role_policies(&planned_b.role_name)
            .await
            .unwrap()
            .is_empty()
    );

    // Deleting B removes only B's.
    api_b.delete("app", &DeleteParams::default()).await.unwrap();
    wait_gone(&api_b, "app", &operator_b, Duration::from_secs(60)).await;
    let apis: BTreeSet<String> = s
        .aws
        .apigateway
        .list_apis()
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.id)
        .collect();
    assert!(
        apis.contains(&a_api) && apis.contains(&decoy_api.id) && !apis.contains(&b_api),
        "{apis:?}"
    );
    assert!(
        s.aws
            .iam
            .get_role(&planned_b.role_name)
            .await
            .unwrap()
            .is_some()
    );
    wait_ready(&s.api, "app", &operator_a, Duration::from_secs(5)).await;
}

/// Wait until `name` says Stalled=True.
async fn wait_stalled(api: &Api<AuthedApi>, name: &str, operator: &Operator) -> AuthedApi {
    wait_for(
        api,
        name,
        operator,
        Duration::from_secs(60),
        "Stalled",
        |o| condition(o, "Stalled").is_some_and(|(status, _, _)| status == "True"),
    )
    .await
}

async fn wait_ready_after_apply(s: &Stressed, name: &str, operator: &Operator) -> AuthedApi {
    apply(&s.api, &s.seed(name).await).await;
    wait_ready(&s.api, name, operator, Duration::from_secs(60)).await
}

#[tokio::test]
async fn two_clusters_on_one_account_keep_apart() {
    // Cluster one: the shared control plane. Cluster two: a control plane of its own, with
    // an object of the same namespace, name and stage, so every AWS name is the same.
    let account = shared::account();
    let config = account.sdk_config().await;
    let aws = AwsClients::new(&config, &[]);
    let seed = seed_in(&account, &config, "twin").await;

    let one = shared::client().await;
    install_crd(&one).await.unwrap();
    let ns = TestNamespace::create(&one, "stress-clusters")
        .await
        .unwrap();
    let api_one: Api<AuthedApi> = Api::namespaced(one, &ns.name);
    let operator_one = Operator::start(&ns.name, &account, &["--cluster-id", "one"], &[]).await;
    apply(&api_one, &seed).await;
    let twin_one = wait_ready(&api_one, "twin", &operator_one, Duration::from_secs(60)).await;
    let status_one = twin_one.status.unwrap();

    let plane_two = ControlPlane::start().await.unwrap();
    let two = plane_two.client().await.unwrap();
    install_crd(&two).await.unwrap();
    let namespace = k8s_openapi::api::core::v1::Namespace {
        metadata: kube::api::ObjectMeta {
            name: Some(ns.name.clone()),
            ..Default::default()
        },
        ..Default::default()
    };
    Api::<k8s_openapi::api::core::v1::Namespace>::all(two.clone())
        .create(&Default::default(), &namespace)
        .await
        .unwrap();
    let api_two: Api<AuthedApi> = Api::namespaced(two, &ns.name);
    let kubeconfig_two = plane_two.kubeconfig.display().to_string();
    let operator_two = Operator::start(
        &ns.name,
        &account,
        &["--cluster-id", "two"],
        &[("KUBECONFIG", &kubeconfig_two)],
    )
    .await;
    apply(&api_two, &seed).await;
    wait_for(
        &api_two,
        "twin",
        &operator_two,
        Duration::from_secs(60),
        "Stalled",
        |o| {
            condition(o, "Stalled")
                .is_some_and(|(status, reason, _)| status == "True" && reason == "NameConflict")
        },
    )
    .await;

    // Cluster two deletes its object: cluster one's role, API, pool and claim on the
    // shared provider's client id all stay.
    api_two
        .delete("twin", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&api_two, "twin", &operator_two, Duration::from_secs(60)).await;
    let role_one = status_one.authenticated_role_arn.unwrap();
    assert!(
        aws.iam
            .get_role(role_one.rsplit('/').next().unwrap())
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        aws.apigateway
            .get_api(&status_one.api_id.unwrap())
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        aws.cognito
            .describe_identity_pool(&status_one.identity_pool_id.unwrap())
            .await
            .unwrap()
            .is_some()
    );
    let provider = aws
        .iam
        .get_oidc_provider(&status_one.oidc_provider_arn.unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        provider.client_ids,
        vec!["UsGRQJJz5sDfPQDs6bhQ9Oc3hNISuVif"],
        "cluster one still uses it"
    );
    wait_ready(&api_one, "twin", &operator_one, Duration::from_secs(5)).await;
}

#[tokio::test]
async fn policies_spelled_differently_by_aws_cause_no_updates() {
    let s = Stressed::new("stress-spelling").await;
    let operator = s.operator(&["--resync", "2s"]).await;
    let obj = wait_ready_after_apply(&s, "spelled", &operator).await;
    let status = obj.status.unwrap();
    let role = status
        .authenticated_role_arn
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();

    // Rewrite both policies with the same meaning: keys reordered, lists as singletons,
    // whitespace everywhere (IAM stores them and returns them URL-encoded). Counting
    // starts now (the test's own writes go straight to the emulator, not the proxy).
    s.proxy.reset_counts();
    let trust = s
        .aws
        .iam
        .get_role(&role)
        .await
        .unwrap()
        .unwrap()
        .trust_policy;
    let statement = &trust["Statement"][0];
    let respelled_trust: Value = serde_json::from_str(&format!(
        "{{ \"Statement\" : [ {{ \"Condition\": {cond}, \"Action\": [\"sts:AssumeRoleWithWebIdentity\"],\n \"Principal\": {principal}, \"Effect\": \"Allow\" }} ],\n \"Version\": \"2012-10-17\" }}",
        cond = statement["Condition"],
        principal = statement["Principal"],
    ))
    .unwrap();
    s.aws
        .iam
        .update_trust_policy(&role, &respelled_trust)
        .await
        .unwrap();
    let invoke = s
        .aws
        .iam
        .get_role_policy(&role, "authedapi-invoke")
        .await
        .unwrap()
        .unwrap();
    let respelled_invoke = json!({
        "Statement": {"Resource": invoke["Statement"][0]["Resource"][0], "Action": ["execute-api:Invoke"], "Effect": "Allow"},
        "Version": "2012-10-17"
    });
    s.aws
        .iam
        .put_role_policy(&role, "authedapi-invoke", &respelled_invoke)
        .await
        .unwrap();

    // Several resyncs later: no policy write at all.
    let reads_before = s.proxy.forwarded("iam", "GetRolePolicy");
    tokio::time::sleep(Duration::from_secs(7)).await;
    assert!(
        s.proxy.forwarded("iam", "GetRolePolicy") > reads_before + 1,
        "resyncs happened"
    );
    assert_eq!(s.proxy.forwarded("iam", "UpdateAssumeRolePolicy"), 0);
    assert_eq!(s.proxy.forwarded("iam", "PutRolePolicy"), 0);
}

#[tokio::test]
async fn deletion_under_half_throttling_removes_everything() {
    let s = Stressed::new("stress-delete").await;
    let operator = s.operator(&[]).await;
    for name in ["one", "two", "three"] {
        wait_ready_after_apply(&s, name, &operator).await;
    }
    s.proxy
        .set_rules(vec![Rule::new(Fault::Throttle).rate(0.5)]);
    for name in ["one", "two", "three"] {
        s.api.delete(name, &DeleteParams::default()).await.unwrap();
    }
    for name in ["one", "two", "three"] {
        wait_gone(&s.api, name, &operator, Duration::from_secs(180)).await;
    }
    s.proxy.clear_rules();
    assert!(s.aws.apigateway.list_apis().await.unwrap().is_empty());
    assert!(
        s.aws
            .cognito
            .list_identity_pools()
            .await
            .unwrap()
            .is_empty()
    );
    let iam = aws_sdk_iam::Client::new(&s.config);
    let roles = iam
        .list_roles()
        .path_prefix("/authedapi/")
        .send()
        .await
        .unwrap();
    assert!(roles.roles().is_empty());
    let providers = iam.list_open_id_connect_providers().send().await.unwrap();
    assert!(providers.open_id_connect_provider_list().is_empty());
    for (name, permissions) in common::seed_permissions(&s.aws, &s.account).await {
        assert!(permissions.is_empty(), "{name}: {permissions:?}");
    }
    eprintln!(
        "[measure] deleting 3 objects under 50% throttling: {} requests",
        s.proxy.total()
    );
}
