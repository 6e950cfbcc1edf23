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

/// Create a Lambda function in the emulated account (standing in for the user's function)
/// and return its ARN. The function needs an execution role; one is made for it.
pub async fn create_function(config: &aws_types::SdkConfig, name: &str) -> String {
    let iam = aws_sdk_iam::Client::new(config);
    let role = iam
        .create_role()
        .role_name(format!("{name}-exec"))
        .assume_role_policy_document(
            serde_json::json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
            .to_string(),
        )
        .send()
        .await
        .expect("an execution role");
    let lambda = aws_sdk_lambda::Client::new(config);
    let out = lambda
        .create_function()
        .function_name(name)
        .runtime(aws_sdk_lambda::types::Runtime::Nodejs20x)
        .handler("index.handler")
        .role(role.role().unwrap().arn())
        .code(
            aws_sdk_lambda::types::FunctionCode::builder()
                .zip_file(aws_smithy_types::Blob::new(minimal_zip()))
                .build(),
        )
        .send()
        .await
        .expect("a function");
    out.function_arn().unwrap().to_owned()
}

/// An empty but valid zip archive (the emulator stores code, it never runs it here).
fn minimal_zip() -> Vec<u8> {
    // End-of-central-directory record of an archive with no entries.
    let mut zip = vec![0x50, 0x4b, 0x05, 0x06];
    zip.extend_from_slice(&[0; 18]);
    zip
}
