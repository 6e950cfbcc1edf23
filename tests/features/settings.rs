//! API settings: CORS, default and per-route throttling, access logs (with the default
//! JSON format), disabling the execute-api endpoint and the Lambda payload format version
//! read back from AWS as the spec says, and go from AWS when removed from the spec.

use std::collections::BTreeMap;

use authedapi::aws::apigateway::{IntegrationTarget, Throttle};
use serde_json::{Value, json};

use crate::common::Fixture;

#[tokio::test]
async fn api_settings_read_back_as_specified_and_go_when_removed() {
    let s = Fixture::new("feat-settings", &[]).await;
    let mut object = s.seed("tuned").await;
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
    let obj = s.apply_ready(&object).await;
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
    s.apply_ready(&object).await;
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
