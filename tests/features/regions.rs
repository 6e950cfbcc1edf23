//! Regions: an object without `spec.region` is made in the operator's default region
//! (`AWS_REGION`), and that region is recorded in its status and kept — an operator
//! redeployed with another default region goes on updating it where it is and creates
//! nothing in its new default region.

use authedapi::aws::AwsClients;
use authedapi_rig::Account;

use crate::common::{Fixture, Operator};

#[tokio::test]
async fn without_spec_region_the_first_region_stays_when_the_operator_moves() {
    let mut s = Fixture::new("op-region", &[]).await;
    let mut object = s.seed("pinned").await;
    object["spec"].as_object_mut().unwrap().remove("region");
    let first = s.apply_ready(&object).await.status.unwrap();
    assert_eq!(first.region.as_deref(), Some(s.account.region.as_str()));

    // The operator is redeployed with another default region (AWS_REGION).
    s.operator.stop();
    let elsewhere = Account {
        region: "eu-west-1".into(),
        ..s.account.clone()
    };
    s.operator = Operator::start(&s.namespace.name, &elsewhere, &[], &[]).await;
    // A change, so the new process certainly reconciles.
    object["spec"]["routes"].as_array_mut().unwrap().pop();
    let second = s.apply_ready(&object).await.status.unwrap();
    assert_eq!(second.region, first.region);
    assert_eq!(second.api_id, first.api_id);
    let there = AwsClients::new(&elsewhere.sdk_config().await, &[]);
    assert!(
        there.apigateway.list_apis().await.unwrap().is_empty(),
        "nothing created in the operator's new default region"
    );
}
