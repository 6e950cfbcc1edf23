//! The chart's RBAC is enough, and no more: the operator, running with only a
//! ServiceAccount token bound to the chart's ClusterRole, takes the seed to Ready and
//! deletes it; a verb the chart does not grant is refused, and the chart's admission
//! policies refuse what RBAC cannot say (threat model: someone holding the operator's
//! Kubernetes token; a namespace user routing to functions their tenant does not allow).

mod common;

use std::time::Duration;

use authedapi::api::AuthedApi;
use authedapi::tenant::AuthedApiTenant;
use authedapi_rig::{TestNamespace, shared};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};

use common::{Operator, apply, helm, install_crd, run, seed_in, wait_gone, wait_ready};

/// Install the chart's objects (as `helm template` renders them) into `namespace` with
/// release name `release`.
fn install_chart_objects(namespace: &str, release: &str) {
    let mut helm = helm();
    helm.args([
        "template",
        release,
        "charts/authedapi",
        "--namespace",
        namespace,
    ]);
    let manifests = run(&mut helm, None);
    let mut kubectl = shared::control_plane().kubectl().unwrap();
    kubectl.args(["apply", "--server-side", "-n", namespace, "-f", "-"]);
    run(&mut kubectl, Some(&manifests));
}

/// A kubeconfig that authenticates as `serviceaccount` with a fresh token.
fn serviceaccount_kubeconfig(namespace: &str, serviceaccount: &str) -> std::path::PathBuf {
    let plane = shared::control_plane();
    let mut kubectl = plane.kubectl().unwrap();
    kubectl.args([
        "create",
        "token",
        serviceaccount,
        "-n",
        namespace,
        "--duration=1h",
    ]);
    let token = run(&mut kubectl, None).trim().to_owned();
    let path = plane
        .dir()
        .join(format!("kubeconfig-{namespace}-{serviceaccount}"));
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: rig\n  cluster:\n    server: {}\n    certificate-authority: {}\nusers:\n- name: sa\n  user:\n    token: {token}\ncontexts:\n- name: sa\n  context: {{cluster: rig, user: sa, namespace: {namespace}}}\ncurrent-context: sa\n",
            plane.server,
            plane.dir().join("ca.crt").display()
        ),
    )
    .unwrap();
    path
}

#[tokio::test]
async fn the_operator_works_with_only_the_charts_rbac_and_nothing_more() {
    let admin = shared::client().await;
    install_crd(&admin).await.unwrap();
    let ns = TestNamespace::create(&admin, "rbac").await.unwrap();
    let release = format!("r{}", ns.name.replace('-', ""));
    install_chart_objects(&ns.name, &release);
    let serviceaccount = format!("{release}-authedapi");
    let kubeconfig = serviceaccount_kubeconfig(&ns.name, &serviceaccount);

    let account = shared::account();
    let config = account.sdk_config().await;
    let kubeconfig_env = kubeconfig.display().to_string();
    let operator = Operator::start(
        &ns.name,
        &account,
        &[],
        &[("KUBECONFIG", kubeconfig_env.as_str())],
    )
    .await;
    let api: Api<AuthedApi> = Api::namespaced(admin.clone(), &ns.name);
    let mut object = seed_in(&account, &config, "least-privilege").await;
    object["spec"]["outputs"] = serde_json::json!({"configMapName": "least-privilege-outputs"});
    apply(&api, &object).await;
    let obj = wait_ready(&api, "least-privilege", &operator, Duration::from_secs(60)).await;
    assert!(
        obj.finalizers()
            .iter()
            .any(|f| f == "authedapi.dev/cleanup")
    );
    api.delete("least-privilege", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&api, "least-privilege", &operator, Duration::from_secs(60)).await;
    let log = operator.log_tail(usize::MAX); // all of it
    assert!(
        !log.contains("forbidden"),
        "the operator was refused something:\n{log}"
    );

    // The same credentials may not do what the chart does not grant.
    let restricted = authedapi_rig::control_plane::client_from_kubeconfig(&kubeconfig)
        .await
        .unwrap();
    let as_operator: Api<AuthedApi> = Api::namespaced(restricted.clone(), &ns.name);
    apply(&api, &seed_in(&account, &config, "victim").await).await;
    let refused = as_operator
        .delete("victim", &DeleteParams::default())
        .await
        .unwrap_err();
    assert!(
        matches!(&refused, kube::Error::Api(s) if s.code == 403),
        "{refused}"
    );
    let secrets: Api<k8s_openapi::api::core::v1::Secret> =
        Api::namespaced(restricted.clone(), &ns.name);
    let refused = secrets.list(&ListParams::default()).await.unwrap_err();
    assert!(
        matches!(&refused, kube::Error::Api(s) if s.code == 403),
        "{refused}"
    );

    // What RBAC cannot say, the chart's admission policy does. The token may not redirect
    // an AuthedApi (its spec is the namespace user's)...
    let redirect = serde_json::json!({"spec": {"routes": [{"route": "GET /private",
        "target": {"http": {"url": "https://attacker.example.com/"}}}]}});
    let refused = eventually_refused(|| {
        let (api, body) = (as_operator.clone(), redirect.clone());
        async move {
            api.patch("victim", &PatchParams::default(), &Patch::Merge(body))
                .await
        }
    })
    .await;
    assert!(
        refused.contains("may not change an AuthedApi's spec"),
        "{refused}"
    );
    // ...nor write a ConfigMap that is not its output, nor take one over.
    let configmaps: Api<ConfigMap> = Api::namespaced(restricted.clone(), &ns.name);
    let stray = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "stray"}, "data": {"k": "v"}});
    let refused = eventually_refused(|| {
        let (api, body) = (configmaps.clone(), stray.clone());
        async move {
            api.patch(
                "stray",
                &PatchParams::apply("authedapi").force(),
                &Patch::Apply(body),
            )
            .await
        }
    })
    .await;
    assert!(refused.contains("only its outputs ConfigMaps"), "{refused}");
    let admin_configmaps: Api<ConfigMap> = Api::namespaced(admin.clone(), &ns.name);
    admin_configmaps
        .create(
            &PostParams::default(),
            &serde_json::from_value(serde_json::json!({"metadata": {"name": "app-config"},
                "data": {"db": "postgres://"}}))
            .unwrap(),
        )
        .await
        .unwrap();
    let takeover =
        serde_json::json!({"metadata": {"labels": {"app.kubernetes.io/managed-by": "authedapi"}}});
    let refused = configmaps
        .patch(
            "app-config",
            &PatchParams::default(),
            &Patch::Merge(takeover),
        )
        .await
        .unwrap_err();
    assert!(
        refused.to_string().contains("only its outputs ConfigMaps"),
        "{refused}"
    );
    let refused = configmaps
        .delete("app-config", &DeleteParams::default())
        .await
        .unwrap_err();
    assert!(
        refused.to_string().contains("only its outputs ConfigMaps"),
        "{refused}"
    );
    // The platform's tenants are read-only to it.
    let tenants: Api<AuthedApiTenant> = Api::all(restricted);
    let tenant = serde_json::json!({"apiVersion": "authedapi.dev/v1alpha1",
        "kind": "AuthedApiTenant", "metadata": {"name": format!("{}-self-granted", ns.name)},
        "spec": {"namespaces": [ns.name], "allowedFunctions": ["*"]}});
    let refused = tenants
        .patch(
            &format!("{}-self-granted", ns.name),
            &PatchParams::apply("authedapi").force(),
            &Patch::Apply(tenant),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&refused, kube::Error::Api(s) if s.code == 403),
        "{refused}"
    );
}

/// An outputs ConfigMap as the operator writes it: labelled, owned (as controller) by the
/// AuthedApi `owner` with `uid`, holding `key`.
fn output(name: &str, owner: &str, uid: &str, key: &str) -> serde_json::Value {
    serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name,
            "labels": {"app.kubernetes.io/managed-by": "authedapi"},
            "ownerReferences": [{"apiVersion": "authedapi.dev/v1alpha1", "kind": "AuthedApi",
                "name": owner, "uid": uid, "controller": true, "blockOwnerDeletion": true}]},
        "data": {key: "https://abc123.execute-api.us-east-1.amazonaws.com"}})
}

/// Write `body` into `namespace` with `client`, as the operator does (server-side apply).
async fn write(
    client: &kube::Client,
    namespace: &str,
    body: &serde_json::Value,
) -> Result<ConfigMap, kube::Error> {
    let name = body["metadata"]["name"].as_str().unwrap().to_owned();
    Api::<ConfigMap>::namespaced(client.clone(), namespace)
        .patch(
            &name,
            &PatchParams::apply("authedapi").force(),
            &Patch::Apply(body),
        )
        .await
}

#[tokio::test]
async fn the_operators_token_writes_outputs_only_where_they_belong() {
    let admin = shared::client().await;
    install_crd(&admin).await.unwrap();
    let system = TestNamespace::create(&admin, "outputs-system")
        .await
        .unwrap();
    let team = TestNamespace::create(&admin, "outputs-team").await.unwrap();
    let empty = TestNamespace::create(&admin, "outputs-empty")
        .await
        .unwrap();
    let release = format!("r{}", system.name.replace('-', ""));
    install_chart_objects(&system.name, &release);
    let kubeconfig = serviceaccount_kubeconfig(&system.name, &format!("{release}-authedapi"));
    let token = authedapi_rig::control_plane::client_from_kubeconfig(&kubeconfig)
        .await
        .unwrap();

    // An AuthedApi asking for its outputs in `api-outputs` (no operator and no AWS here:
    // the policies judge the token's writes against the objects as they are).
    let mut object = common::example();
    object["metadata"] = serde_json::json!({"name": "api"});
    object["spec"]["outputs"] = serde_json::json!({"configMapName": "api-outputs"});
    let api: Api<AuthedApi> = Api::namespaced(admin.clone(), &team.name);
    apply(&api, &object).await;
    let uid = api.get("api").await.unwrap().metadata.uid.unwrap();

    // Never in kube-system (aws-auth there maps IAM roles to cluster users on EKS; the names
    // are this test's own): not even for an AuthedApi someone put there and that asks for
    // it. (Policies take a moment to be in force: the test waits for this refusal first.)
    let aws_auth = format!("{}-aws-auth", team.name);
    let mut there = common::example();
    there["metadata"] = serde_json::json!({"name": aws_auth});
    there["spec"]["outputs"] = serde_json::json!({"configMapName": aws_auth});
    let system_apis: Api<AuthedApi> = Api::namespaced(admin.clone(), "kube-system");
    apply(&system_apis, &there).await;
    let there_uid = system_apis
        .get(&aws_auth)
        .await
        .unwrap()
        .metadata
        .uid
        .unwrap();
    let refused = eventually_refused(|| {
        let body = output(&aws_auth, &aws_auth, &there_uid, "mapRoles");
        let token = token.clone();
        async move { write(&token, "kube-system", &body).await }
    })
    .await;
    assert!(
        refused.contains("may not write ConfigMaps in the protected namespace kube-system"),
        "{refused}"
    );
    // (Written before the policies were in force, if at all: not left behind.)
    let system_configmaps: Api<ConfigMap> = Api::namespaced(admin.clone(), "kube-system");
    let _ = system_configmaps
        .delete(&aws_auth, &DeleteParams::default())
        .await;
    system_apis
        .delete(&aws_auth, &DeleteParams::default())
        .await
        .unwrap();
    // Nor in a namespace without AuthedApis (kube-system now), whatever it claims. (Every
    // release's outputs policy refuses that, whoever writes: the API server looks params up
    // before it asks whose write it is.)
    let refused = write(
        &token,
        "kube-system",
        &output(
            &aws_auth,
            "ghost",
            "00000000-0000-0000-0000-000000000000",
            "mapRoles",
        ),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(refused.contains("is forbidden"), "{refused}");

    // The name an AuthedApi asks for is its own: no one else's, not one that does not exist.
    let refused = write(
        &token,
        &team.name,
        &output(
            "api-outputs",
            "ghost",
            "00000000-0000-0000-0000-000000000000",
            "endpoint",
        ),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        refused.contains(
            "is what AuthedApi api asks for (spec.outputs.configMapName): no other AuthedApi may own it"
        ),
        "{refused}"
    );
    write(
        &token,
        &team.name,
        &output("api-outputs", "api", &uid, "endpoint"),
    )
    .await
    .expect("the output the AuthedApi asks for");
    write(
        &token,
        &team.name,
        &output("api-outputs", "api", &uid, "region"),
    )
    .await
    .expect("a changed output");

    for (namespace, body, because) in [
        // Not in a namespace without AuthedApis...
        (
            &empty.name,
            output("api-outputs", "api", &uid, "endpoint"),
            "no params found",
        ),
        // ...nor under a name its owner does not ask for...
        (
            &team.name,
            output("other", "api", &uid, "endpoint"),
            "ConfigMap other names AuthedApi api as its owner, which does not ask for it",
        ),
        // ...nor owned by an AuthedApi of that name with another uid...
        (
            &team.name,
            output(
                "api-outputs-2",
                "api",
                "00000000-0000-0000-0000-000000000000",
                "endpoint",
            ),
            "or has another uid",
        ),
        // ...nor holding a key a workload's envFrom would read as its environment.
        (
            &team.name,
            output("api-outputs", "api", &uid, "NODE_OPTIONS"),
            "an outputs ConfigMap holds only the outputs' keys",
        ),
    ] {
        let refused = write(&token, namespace, &body)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            refused.contains(because),
            "{} in {namespace}: {refused}",
            body["metadata"]["name"]
        );
    }

    // An existing ConfigMap that is not an output, in kube-system or the team's namespace,
    // is never changed, taken over or deleted.
    for namespace in ["kube-system", team.name.as_str()] {
        let theirs: Api<ConfigMap> = Api::namespaced(admin.clone(), namespace);
        let name = format!("{}-settings", team.name);
        theirs
            .create(
                &PostParams::default(),
                &serde_json::from_value(serde_json::json!({"metadata": {"name": name},
                    "data": {"db": "postgres://"}}))
                .unwrap(),
            )
            .await
            .unwrap();
        let refused = write(&token, namespace, &output(&name, "api", &uid, "endpoint"))
            .await
            .unwrap_err()
            .to_string();
        assert!(refused.contains("is forbidden"), "{refused}");
        let refused = Api::<ConfigMap>::namespaced(token.clone(), namespace)
            .delete(&name, &DeleteParams::default())
            .await
            .unwrap_err()
            .to_string();
        assert!(refused.contains("is forbidden"), "{refused}");
        theirs
            .delete(&name, &DeleteParams::default())
            .await
            .unwrap();
    }

    // What remains (README): a policy sees one AuthedApi at a time, so an owner that does
    // not exist, under a name no AuthedApi asks for, passes; the garbage collector removes
    // it, and it can hold only the outputs' keys.
    write(
        &token,
        &team.name,
        &output(
            "unclaimed",
            "ghost",
            "00000000-0000-0000-0000-000000000000",
            "endpoint",
        ),
    )
    .await
    .expect("admitted: the gap the README names");

    Api::<ConfigMap>::namespaced(token, &team.name)
        .delete("api-outputs", &DeleteParams::default())
        .await
        .expect("its own output is deleted");
}

/// Retry `attempt` until the API server refuses it (admission policies take effect a
/// moment after they are created); the refusal's message.
async fn eventually_refused<T, F, Fut>(attempt: F) -> String
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<T, kube::Error>>,
{
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        match attempt().await {
            Err(e @ kube::Error::Api(_)) => return e.to_string(),
            Err(e) => panic!("not a refusal: {e}"),
            Ok(_) if std::time::Instant::now() > deadline => {
                panic!("still allowed after 20s: the admission policy is not in force")
            }
            Ok(_) => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    }
}

#[tokio::test]
async fn a_namespace_user_cannot_name_functions_or_issuers_their_tenant_does_not_allow() {
    let admin = shared::client().await;
    install_crd(&admin).await.unwrap();
    let ns = TestNamespace::create(&admin, "admission").await.unwrap();
    let release = format!("r{}", ns.name.replace('-', ""));
    install_chart_objects(&ns.name, &release);
    let account = shared::account();
    let config = account.sdk_config().await;
    let tenants: Api<AuthedApiTenant> = Api::all(admin.clone());
    let tenant = serde_json::json!({"apiVersion": "authedapi.dev/v1alpha1",
        "kind": "AuthedApiTenant", "metadata": {"name": format!("{}-team", ns.name)},
        "spec": {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns.name}},
                 "allowedFunctions": [format!("arn:aws:lambda:us-east-1:{}:function:api-auth-auth0-dev-*", account.id)],
                 "allowedIssuers": ["*.us.auth0.com"]}});
    tenants
        .patch(
            &format!("{}-team", ns.name),
            &PatchParams::apply("platform").force(),
            &Patch::Apply(tenant),
        )
        .await
        .unwrap();
    let api: Api<AuthedApi> = Api::namespaced(admin.clone(), &ns.name);
    let allowed = seed_in(&account, &config, "allowed").await;
    let mut payroll = allowed.clone();
    payroll["metadata"]["name"] = "payroll".into();
    payroll["spec"]["routes"][0]["target"]["lambda"]["functionArn"] =
        format!("arn:aws:lambda:us-east-1:{}:function:payroll", account.id).into();
    let refused = eventually_refused(|| {
        let (api, body) = (api.clone(), payroll.clone());
        async move {
            api.patch(
                "payroll",
                &PatchParams::apply("user").force(),
                &Patch::Apply(body),
            )
            .await
        }
    })
    .await;
    assert!(refused.contains("does not allow"), "{refused}");
    assert!(refused.contains(&format!("{}-team", ns.name)), "{refused}");
    // An authorizer's function is held to the same rule.
    let mut guard = allowed.clone();
    guard["metadata"]["name"] = "guard".into();
    guard["spec"]["authorizers"] = serde_json::json!([{"name": "users", "lambda": {
        "functionArn": format!("arn:aws:lambda:us-east-1:{}:function:payroll", account.id)}}]);
    let refused = api
        .patch(
            "guard",
            &PatchParams::apply("user").force(),
            &Patch::Apply(guard),
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(
        refused.contains("a Lambda authorizer runs a function that AuthedApiTenant"),
        "{refused}"
    );
    // A route through a VPC link reaches only private targets the tenant names (none here).
    let mut orders = allowed.clone();
    orders["metadata"]["name"] = "orders".into();
    orders["spec"]["vpcLink"] = serde_json::json!({"subnetIds": ["subnet-0a1b2c3d"]});
    orders["spec"]["routes"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({"route": "ANY /orders/{proxy+}", "target": {"private": {
            "listenerArn": format!("arn:aws:elasticloadbalancing:us-east-1:{}:listener/app/payments/50dc6c495c0c9188/f2f7dc8efc522ab2", account.id)}}}));
    let refused = api
        .patch(
            "orders",
            &PatchParams::apply("user").force(),
            &Patch::Apply(orders),
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(
        refused.contains("a route reaches a private target that AuthedApiTenant")
            && refused.contains("(allowed: none)"),
        "{refused}"
    );
    let mut ci = allowed.clone();
    ci["metadata"]["name"] = "ci".into();
    ci["spec"]["auth0"]["domain"] = "token.actions.githubusercontent.com".into();
    let refused = api
        .patch("ci", &PatchParams::apply("user").force(), &Patch::Apply(ci))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        refused.contains("token.actions.githubusercontent.com is not allowed"),
        "{refused}"
    );
    // What the tenant allows is admitted.
    api.patch(
        "allowed",
        &PatchParams::apply("user").force(),
        &Patch::Apply(allowed),
    )
    .await
    .unwrap();
}
