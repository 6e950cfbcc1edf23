//! What the rig's own tests of the emulator share.

use aws_sdk_apigatewayv2::types::ProtocolType;

/// A new HTTP API named `name`: its id.
pub async fn http_api(gateway: &aws_sdk_apigatewayv2::Client, name: &str) -> String {
    gateway
        .create_api()
        .name(name)
        .protocol_type(ProtocolType::Http)
        .send()
        .await
        .unwrap()
        .api_id
        .unwrap()
}
