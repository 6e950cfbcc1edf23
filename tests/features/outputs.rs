//! The outputs ConfigMap (`spec.outputs.configMapName`): what a client needs to call the
//! API (endpoint, identity pool, region, Auth0 domain and client id), owned by the
//! object; it follows a changed value, moves when renamed, and is deleted with the
//! object.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams};
use serde_json::json;

use crate::common::{Fixture, wait_gone};

#[tokio::test]
async fn the_outputs_config_map_follows_the_object() {
    let s = Fixture::new("feat-outputs", &[]).await;
    let config_maps: Api<ConfigMap> = Api::namespaced(s.client.clone(), &s.namespace.name);
    let mut object = s.seed("published").await;
    object["spec"]["outputs"] = json!({"configMapName": "api-outputs"});
    let obj = s.apply_ready(&object).await;
    let status = obj.status.clone().unwrap();
    let cm = config_maps.get("api-outputs").await.unwrap();
    let data = cm.data.clone().unwrap();
    let expected: BTreeMap<String, String> = [
        ("endpoint", status.api_endpoint.clone().unwrap()),
        ("identityPoolId", status.identity_pool_id.clone().unwrap()),
        ("region", "us-east-1".to_owned()),
        ("auth0Domain", "myorg.us.auth0.com".to_owned()),
        (
            "auth0ClientId",
            "UsGRQJJz5sDfPQDs6bhQ9Oc3hNISuVif".to_owned(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    assert_eq!(data, expected);
    let owner = &cm.metadata.owner_references.unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.uid.as_str()),
        ("AuthedApi", obj.metadata.uid.as_deref().unwrap())
    );
    assert_eq!(owner.controller, Some(true));

    // A value changes: the ConfigMap follows.
    object["spec"]["auth0"]["clientId"] = json!("another-client");
    s.apply_ready(&object).await;
    let data = config_maps.get("api-outputs").await.unwrap().data.unwrap();
    assert_eq!(data["auth0ClientId"], "another-client");

    // Renamed: the old one goes, the new one comes.
    object["spec"]["outputs"]["configMapName"] = json!("api-outputs-v2");
    s.apply_ready(&object).await;
    assert!(config_maps.get_opt("api-outputs").await.unwrap().is_none());
    assert!(
        config_maps
            .get_opt("api-outputs-v2")
            .await
            .unwrap()
            .is_some()
    );

    // Deleted with the object (the operator deletes it; no garbage collector runs here).
    s.api
        .delete("published", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&s.api, "published", &s.operator, Duration::from_secs(60)).await;
    assert!(
        config_maps
            .get_opt("api-outputs-v2")
            .await
            .unwrap()
            .is_none()
    );
}
