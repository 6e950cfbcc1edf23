//! Ownership and isolation: the operator only ever changes or deletes what it made for
//! the object (uid and cluster tags). A resource someone else made under the name it
//! would use — another team's role, resources tagged with another namespace's uid,
//! another cluster's twin object in the same account — stalls the object with
//! `NameConflict` and is left alone, also when the object is deleted.

use std::collections::BTreeSet;
use std::time::Duration;

use authedapi::api::AuthedApi;
use authedapi::aws::AwsClients;
use authedapi_rig::{ControlPlane, TestNamespace, shared};
use kube::api::{Api, DeleteParams};
use serde_json::json;

use crate::common::{
    Fixture, Operator, READY_TIMEOUT, apply, condition, install_crd, seed_in, wait_for, wait_gone,
    wait_ready,
};

#[tokio::test]
async fn a_foreign_role_with_our_name_stalls_the_object_and_is_left_alone() {
    let s = Fixture::new("op-conflict", &[]).await;
    let object = s.seed("conflict").await;
    let spec: authedapi::api::AuthedApiSpec =
        serde_json::from_value(object["spec"].clone()).unwrap();
    let planned = authedapi::plan::plan(
        &spec,
        &authedapi::plan::Identity {
            namespace: &s.namespace.name,
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
    let stalled = wait_for(
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
    s.delete("conflict").await;
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
async fn namespaces_never_adopt_change_or_delete_each_others_resources() {
    let s = Fixture::through_proxy("stress-iso-a", vec![], &[]).await;
    let operator_a = &s.operator;
    let a = s.seed_ready("app").await;
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
    wait_ready(&s.api, "app", operator_a, Duration::from_secs(5)).await;
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
