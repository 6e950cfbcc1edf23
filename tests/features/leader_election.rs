//! Leader election (`--leader-elect`): of two replicas only the lease holder reconciles
//! or calls AWS; when the leader dies without releasing the lease, the standby takes
//! over within the lease duration and finishes the change that arrived meanwhile.

use std::time::{Duration, Instant};

use authedapi::api::AuthedApi;
use authedapi::aws::AwsClients;
use authedapi::aws::apigateway::RouteAuth;
use authedapi_rig::{TestNamespace, shared};
use kube::api::Api;
use serde_json::json;

use crate::common::{Operator, READY_TIMEOUT, api_id, apply, install_crd, seed_in, wait_ready};

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
