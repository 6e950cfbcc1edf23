//! Helpers shared by the integration tests (each test file includes this module).
#![allow(dead_code)] // not every test binary uses every helper

use std::path::PathBuf;
use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::wait::{await_condition, conditions};

/// Field manager the tests apply with.
pub const TEST_MANAGER: &str = "authedapi-tests";

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The CRD as generated from the Rust types (the same text as `crds/`).
pub fn crd() -> CustomResourceDefinition {
    serde_yaml::from_str(&authedapi::crdgen::crd_yaml()).expect("the generated CRD parses")
}

/// Install (server-side apply) the CRD and wait until it is Established.
pub async fn install_crd(client: &kube::Client) -> anyhow::Result<()> {
    let crds = Api::<CustomResourceDefinition>::all(client.clone());
    let crd = crd();
    let name = crd.metadata.name.clone().expect("the CRD has a name");
    crds.patch(
        &name,
        &PatchParams::apply(TEST_MANAGER).force(),
        &Patch::Apply(&crd),
    )
    .await?;
    tokio::time::timeout(
        Duration::from_secs(30),
        await_condition(crds, &name, conditions::is_crd_established()),
    )
    .await??;
    Ok(())
}

/// The seed example from `examples/authedapi.yaml`, as JSON.
pub fn example() -> serde_json::Value {
    let text =
        std::fs::read_to_string(repo().join("examples/authedapi.yaml")).expect("the example");
    serde_yaml::from_str(&text).expect("the example parses")
}
