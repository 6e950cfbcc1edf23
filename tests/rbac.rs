//! The chart's RBAC is enough, and no more: the operator, running with only a
//! ServiceAccount token bound to the chart's ClusterRole, takes the seed to Ready and
//! deletes it; a verb the chart does not grant is refused.

mod common;

use std::time::Duration;

use authedapi::api::AuthedApi;
use authedapi_rig::{TestNamespace, shared};
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, ListParams};

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
    let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(restricted, &ns.name);
    let refused = secrets.list(&ListParams::default()).await.unwrap_err();
    assert!(
        matches!(&refused, kube::Error::Api(s) if s.code == 403),
        "{refused}"
    );
}
