//! A restarted Kubernetes API server: the operator process keeps running, reconnects
//! its watches, and converges a change made after the restart.

use std::time::Duration;

use authedapi::api::AuthedApi;
use authedapi_rig::{ControlPlane, TestNamespace, shared};
use kube::api::Api;
use serde_json::json;

use crate::common::{Operator, apply, install_crd, seed_in, wait_ready};

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
