//! Beyond the seed, read back from the emulator: access by Auth0 claim (a role per rule,
//! Cognito role mappings), the outputs ConfigMap, and API settings (CORS, throttling,
//! access logs, the default endpoint, the Lambda payload format).

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use authedapi::api::AuthedApi;
use authedapi::aws::AwsClients;
use authedapi::aws::apigateway::{IntegrationTarget, Throttle};
use authedapi_rig::{Account, TestNamespace, shared};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams};
use serde_json::{Value, json};

use common::{Operator, apply, install_crd, seed_in, wait_gone, wait_ready};

struct Setup {
    api: Api<AuthedApi>,
    config_maps: Api<ConfigMap>,
    account: Account,
    config: aws_types::SdkConfig,
    aws: AwsClients,
    operator: Operator,
}

async fn setup(prefix: &str) -> Setup {
    let client = shared::client().await;
    install_crd(&client).await.unwrap();
    let ns = TestNamespace::create(&client, prefix).await.unwrap();
    let account = shared::account();
    let config = account.sdk_config().await;
    let operator = Operator::start(&ns.name, &account, &[], &[]).await;
    Setup {
        api: Api::namespaced(client.clone(), &ns.name),
        config_maps: Api::namespaced(client, &ns.name),
        aws: AwsClients::new(&config, &[]),
        account,
        config,
        operator,
    }
}

impl Setup {
    async fn ready(&self, object: &Value) -> AuthedApi {
        apply(&self.api, object).await;
        let name = object["metadata"]["name"].as_str().unwrap();
        wait_ready(&self.api, name, &self.operator, Duration::from_secs(60)).await
    }

    fn arn(&self, api_id: &str, rest: &str) -> String {
        format!(
            "arn:aws:execute-api:us-east-1:{}:{api_id}/$default/{rest}",
            self.account.id
        )
    }
}

fn role_name(arn: &str) -> String {
    arn.rsplit('/').next().unwrap().to_owned()
}

#[tokio::test]
async fn claim_rules_give_each_rule_a_role_for_exactly_its_routes() {
    let s = setup("feat-access").await;
    let mut object = seed_in(&s.account, &s.config, "claims").await;
    let private = object["spec"]["routes"][0]["target"].clone();
    let routes = object["spec"]["routes"].as_array_mut().unwrap();
    routes.push(json!({"route": "GET /admin", "target": private}));
    routes.push(json!({"route": "GET /reports", "target": private}));
    object["spec"]["access"] = json!({
        "rules": [
            {"name": "admin", "claim": "https://myapp/roles", "matchType": "Contains", "value": "admin", "routes": ["GET /admin"]},
            {"name": "reader", "claim": "https://myapp/roles", "matchType": "Contains", "value": "reader", "routes": ["GET /reports"]},
        ]
    });
    let obj = s.ready(&object).await;
    let status = obj.status.clone().unwrap();
    let api_id = status.api_id.clone().unwrap();
    let pool_id = status.identity_pool_id.clone().unwrap();
    assert_eq!(status.access_roles.len(), 2);

    let policy_of = |role: String| {
        let iam = s.aws.iam.clone();
        async move {
            iam.get_role_policy(&role, "authedapi-invoke")
                .await
                .unwrap()
        }
    };
    let admin = &status.access_roles[0];
    let reader = &status.access_roles[1];
    assert_eq!(
        (admin.rule.as_str(), reader.rule.as_str()),
        ("admin", "reader")
    );
    let admin_policy = policy_of(admin.role_name.clone()).await.unwrap();
    assert_eq!(
        admin_policy["Statement"][0]["Resource"],
        json!([s.arn(&api_id, "GET/admin")])
    );
    let reader_policy = policy_of(reader.role_name.clone()).await.unwrap();
    assert_eq!(
        reader_policy["Statement"][0]["Resource"],
        json!([s.arn(&api_id, "GET/reports")])
    );
    // Unlisted routes go to nobody by default: the default role may invoke nothing.
    assert_eq!(
        policy_of(role_name(status.authenticated_role_arn.as_ref().unwrap())).await,
        None
    );

    // The pool maps the claims to those roles, and denies users matching none.
    let roles = s.aws.cognito.get_roles(&pool_id).await.unwrap();
    let mapping = roles.mapping.expect("a role mapping");
    assert_eq!(mapping.provider, "myorg.us.auth0.com");
    assert!(mapping.deny_unmatched);
    let rules: Vec<(String, String, String, String)> = mapping
        .rules
        .iter()
        .map(|r| {
            (
                r.claim.clone(),
                r.match_type.clone(),
                r.value.clone(),
                role_name(&r.role_arn),
            )
        })
        .collect();
    assert_eq!(
        rules,
        vec![
            (
                "https://myapp/roles".into(),
                "Contains".into(),
                "admin".into(),
                admin.role_name.clone()
            ),
            (
                "https://myapp/roles".into(),
                "Contains".into(),
                "reader".into(),
                reader.role_name.clone()
            ),
        ]
    );

    // Unlisted routes to the default role; drop the reader rule: its role goes.
    object["spec"]["access"]["rules"]
        .as_array_mut()
        .unwrap()
        .pop();
    object["spec"]["access"]["unlistedRoutes"] = json!("AuthenticatedRole");
    object["spec"]["access"]["unmatched"] = json!("AuthenticatedRole");
    let obj = s.ready(&object).await;
    let status = obj.status.unwrap();
    assert_eq!(status.access_roles.len(), 1);
    assert_eq!(
        s.aws.iam.get_role(&reader.role_name).await.unwrap(),
        None,
        "the removed rule's role is gone"
    );
    let default_policy = policy_of(role_name(status.authenticated_role_arn.as_ref().unwrap()))
        .await
        .unwrap();
    let mut resources: Vec<String> =
        serde_json::from_value(default_policy["Statement"][0]["Resource"].clone()).unwrap();
    resources.sort();
    assert_eq!(
        resources,
        vec![s.arn(&api_id, "GET/private"), s.arn(&api_id, "GET/reports")]
    );
    let mapping = s
        .aws
        .cognito
        .get_roles(&pool_id)
        .await
        .unwrap()
        .mapping
        .unwrap();
    assert_eq!(mapping.rules.len(), 1);
    assert!(!mapping.deny_unmatched);

    // Deleting the object deletes every rule role too.
    s.api
        .delete("claims", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&s.api, "claims", &s.operator, Duration::from_secs(60)).await;
    assert_eq!(s.aws.iam.get_role(&admin.role_name).await.unwrap(), None);
}

#[tokio::test]
async fn an_access_rule_naming_an_unknown_route_is_refused_at_admission() {
    let s = setup("feat-access-bad").await;
    let mut object = seed_in(&s.account, &s.config, "bad-claims").await;
    object["spec"]["access"] = json!({"rules": [
        {"name": "admin", "claim": "roles", "value": "admin", "routes": ["GET /nowhere"]}
    ]});
    let name = "bad-claims";
    let err = s
        .api
        .patch(
            name,
            &kube::api::PatchParams::apply("tests"),
            &kube::api::Patch::Apply(&object),
        )
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("every route an access rule names must be one of spec.routes"),
        "{err}"
    );
}

#[tokio::test]
async fn the_outputs_config_map_follows_the_object() {
    let s = setup("feat-outputs").await;
    let mut object = seed_in(&s.account, &s.config, "published").await;
    object["spec"]["outputs"] = json!({"configMapName": "api-outputs"});
    let obj = s.ready(&object).await;
    let status = obj.status.clone().unwrap();
    let cm = s.config_maps.get("api-outputs").await.unwrap();
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
    s.ready(&object).await;
    let data = s
        .config_maps
        .get("api-outputs")
        .await
        .unwrap()
        .data
        .unwrap();
    assert_eq!(data["auth0ClientId"], "another-client");

    // Renamed: the old one goes, the new one comes.
    object["spec"]["outputs"]["configMapName"] = json!("api-outputs-v2");
    s.ready(&object).await;
    assert!(
        s.config_maps
            .get_opt("api-outputs")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        s.config_maps
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
        s.config_maps
            .get_opt("api-outputs-v2")
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn api_settings_read_back_as_specified_and_go_when_removed() {
    let s = setup("feat-settings").await;
    let mut object = seed_in(&s.account, &s.config, "tuned").await;
    object["spec"]["cors"] = json!({
        "allowOrigins": ["https://app.example.com"], "allowMethods": ["GET", "POST"],
        "allowHeaders": ["authorization", "content-type"], "exposeHeaders": ["x-request-id"],
        "allowCredentials": true, "maxAge": 600
    });
    object["spec"]["throttling"] = json!({"burstLimit": 100, "rateLimit": 50.0});
    object["spec"]["routes"][0]["throttling"] = json!({"burstLimit": 10, "rateLimit": 5.0});
    object["spec"]["routes"][0]["target"]["lambda"]["payloadFormatVersion"] = json!("1.0");
    let log_group = format!(
        "arn:aws:logs:us-east-1:{}:log-group:api-access",
        s.account.id
    );
    object["spec"]["accessLog"] = json!({"destinationArn": log_group});
    object["spec"]["disableExecuteApiEndpoint"] = json!(true);
    let obj = s.ready(&object).await;
    let api_id = obj.status.unwrap().api_id.unwrap();

    let api = s.aws.apigateway.get_api(&api_id).await.unwrap().unwrap();
    let cors = api.cors.expect("CORS");
    assert_eq!(cors.allow_origins, vec!["https://app.example.com"]);
    assert_eq!(cors.allow_methods, vec!["GET", "POST"]);
    assert_eq!(cors.allow_headers, vec!["authorization", "content-type"]);
    assert_eq!(cors.expose_headers, vec!["x-request-id"]);
    assert!(cors.allow_credentials);
    assert_eq!(cors.max_age, Some(600));
    assert!(api.disable_execute_api_endpoint);

    let stage = s
        .aws
        .apigateway
        .get_stage(&api_id, "$default")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        stage.settings.default_throttle,
        Some(Throttle {
            burst: 100,
            rate: 50.0
        })
    );
    assert_eq!(
        stage.settings.route_throttles,
        BTreeMap::from([(
            "GET /private".to_owned(),
            Throttle {
                burst: 10,
                rate: 5.0
            }
        )])
    );
    let log = stage.settings.access_log.expect("access logs");
    assert_eq!(log.destination_arn, log_group);
    let format: Value = serde_json::from_str(&log.format).expect("the default format is JSON");
    assert_eq!(format["requestId"], "$context.requestId");

    let integrations = s.aws.apigateway.list_integrations(&api_id).await.unwrap();
    let payloads: Vec<String> = integrations
        .iter()
        .filter_map(|i| match &i.target {
            Some(IntegrationTarget::Lambda {
                payload_format_version,
                ..
            }) => Some(payload_format_version.clone()),
            _ => None,
        })
        .collect();
    let mut payloads = payloads;
    payloads.sort();
    assert_eq!(payloads, vec!["1.0", "2.0"]);

    // Removed from the spec: removed in AWS.
    for field in [
        "cors",
        "throttling",
        "accessLog",
        "disableExecuteApiEndpoint",
    ] {
        object["spec"].as_object_mut().unwrap().remove(field);
    }
    object["spec"]["routes"][0]
        .as_object_mut()
        .unwrap()
        .remove("throttling");
    s.ready(&object).await;
    let api = s.aws.apigateway.get_api(&api_id).await.unwrap().unwrap();
    assert_eq!(api.cors, None);
    assert!(!api.disable_execute_api_endpoint);
    let stage = s
        .aws
        .apigateway
        .get_stage(&api_id, "$default")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stage.settings.default_throttle, None);
    assert!(stage.settings.route_throttles.is_empty());
    assert_eq!(stage.settings.access_log, None);
}
