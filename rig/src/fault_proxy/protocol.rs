//! Each service's wire protocol, and the error responses the proxy writes in it: the
//! status, `x-amzn-ErrorType`, `x-amzn-RequestId` and the JSON or XML body real AWS sends,
//! so the AWS SDK parses them into the same error codes.

use http::header::{CONTENT_TYPE, HeaderMap, HeaderValue};
use http::{Method, Response, StatusCode, Uri};

use super::classify::{Classification, X_AMZ_TARGET, classify, credential_scope, query_action};

/// The account id in fault messages when the access key does not name one.
const FALLBACK_ACCOUNT: &str = "123456789012";
/// The rig's access keys are this prefix plus the 12-digit account id (see `emulator.rs`).
const RIG_ACCESS_KEY_PREFIX: &str = "AKIARIG0";
pub(super) const X_AMZN_ERROR_TYPE: &str = "x-amzn-errortype";
pub(super) const X_AMZN_REQUEST_ID: &str = "x-amzn-requestid";

/// The wire protocol a service's errors are written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Protocol {
    /// restJson1, as API Gateway (v2) writes errors: `{"message": …}`.
    RestJson,
    /// restJson1 as Lambda writes errors: `{"Type": …, "message": …}`.
    LambdaRestJson,
    /// awsJson1.1 (Cognito Identity): `{"__type": …, "message": …}`.
    AwsJson11,
    /// awsQuery (IAM, STS): `<ErrorResponse>` XML.
    AwsQuery,
}

impl Protocol {
    fn of(service: &str, headers: &HeaderMap, is_query: bool) -> Self {
        match service {
            "apigateway" => Protocol::RestJson,
            "lambda" => Protocol::LambdaRestJson,
            "cognito-identity" => Protocol::AwsJson11,
            "iam" | "sts" => Protocol::AwsQuery,
            _ if headers.contains_key(X_AMZ_TARGET) => Protocol::AwsJson11,
            _ if is_query => Protocol::AwsQuery,
            _ => Protocol::RestJson,
        }
    }
}

/// Everything about a request the proxy needs to answer it with a fault.
pub(super) struct RequestInfo {
    pub(super) class: Classification,
    /// The SigV4 access key id that signed the request, if it is signed.
    pub(super) access_key_id: Option<String>,
    protocol: Protocol,
    account: String,
}

impl RequestInfo {
    pub(super) fn new(method: &Method, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> Self {
        let class = classify(method, uri, headers, body);
        let is_query = query_action(headers, uri, body).is_some();
        let protocol = Protocol::of(&class.service, headers, is_query);
        let scope = credential_scope(headers, uri);
        let access_key_id = scope.as_ref().map(|scope| scope.access_key_id.clone());
        let account = scope
            .and_then(|scope| {
                let id = scope.access_key_id.strip_prefix(RIG_ACCESS_KEY_PREFIX)?;
                (id.len() == 12 && id.bytes().all(|b| b.is_ascii_digit())).then(|| id.to_owned())
            })
            .unwrap_or_else(|| FALLBACK_ACCOUNT.to_owned());
        Self {
            class,
            access_key_id,
            protocol,
            account,
        }
    }
}

/// An error the proxy answers in the service's protocol.
#[derive(Clone, Copy, Debug)]
pub(super) enum ErrorKind {
    Throttle,
    AccessDenied,
    Status(u16),
}

/// The response AWS gives for `kind` to the request `info`, in its service's protocol.
pub(super) fn error_response(
    info: &RequestInfo,
    kind: ErrorKind,
    request_id: &str,
) -> Response<String> {
    let service = &info.class.service;
    let denied = format!(
        "User: arn:aws:iam::{}:user/test is not authorized to perform: {}:{}",
        info.account, service, info.class.operation
    );
    let (status, code, message) = match kind {
        ErrorKind::Throttle => match info.protocol {
            Protocol::RestJson => (429, "TooManyRequestsException", "Too Many Requests"),
            Protocol::LambdaRestJson => (429, "TooManyRequestsException", "Rate exceeded"),
            Protocol::AwsJson11 => (400, "TooManyRequestsException", "Rate exceeded"),
            Protocol::AwsQuery => (400, "Throttling", "Rate exceeded"),
        },
        ErrorKind::AccessDenied => match info.protocol {
            Protocol::RestJson | Protocol::LambdaRestJson => {
                (403, "AccessDeniedException", denied.as_str())
            }
            Protocol::AwsJson11 => (400, "AccessDeniedException", denied.as_str()),
            Protocol::AwsQuery => (403, "AccessDenied", denied.as_str()),
        },
        ErrorKind::Status(503) => (503, "ServiceUnavailable", "Service Unavailable"),
        ErrorKind::Status(status) => (status, "InternalFailure", "An internal error occurred"),
    };
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let (content_type, body) = match info.protocol {
        Protocol::RestJson => (
            "application/json",
            serde_json::json!({ "message": message }).to_string(),
        ),
        Protocol::LambdaRestJson => {
            let mut body = serde_json::json!({
                "Type": if status.is_server_error() { "Service" } else { "User" },
                "message": message,
            });
            if matches!(kind, ErrorKind::Throttle) {
                body["Reason"] = "CallerRateLimitExceeded".into();
            }
            ("application/json", body.to_string())
        }
        Protocol::AwsJson11 => (
            "application/x-amz-json-1.1",
            serde_json::json!({ "__type": code, "message": message }).to_string(),
        ),
        Protocol::AwsQuery => {
            let namespace = match service.as_str() {
                "iam" => "https://iam.amazonaws.com/doc/2010-05-08/".to_owned(),
                "sts" => "https://sts.amazonaws.com/doc/2011-06-15/".to_owned(),
                other => format!("https://{other}.amazonaws.com/doc/"),
            };
            let fault_type = if status.is_server_error() {
                "Receiver"
            } else {
                "Sender"
            };
            (
                "text/xml",
                format!(
                    "<ErrorResponse xmlns=\"{namespace}\"><Error><Type>{fault_type}</Type>\
                     <Code>{code}</Code><Message>{}</Message></Error>\
                     <RequestId>{request_id}</RequestId></ErrorResponse>",
                    xml_escape(message)
                ),
            )
        }
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(id) = HeaderValue::from_str(request_id) {
        headers.insert(X_AMZN_REQUEST_ID, id);
    }
    if info.protocol != Protocol::AwsQuery {
        headers.insert(X_AMZN_ERROR_TYPE, HeaderValue::from_static(code));
    }
    response
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts_of(response: Response<String>) -> (StatusCode, HeaderMap, String) {
        let (parts, body) = response.into_parts();
        (parts.status, parts.headers, body)
    }

    fn info(service: &str, operation: &str) -> RequestInfo {
        let mut headers = HeaderMap::new();
        if service == "cognito-identity" {
            headers.insert(X_AMZ_TARGET, HeaderValue::from_static("X.Y"));
        }
        RequestInfo {
            class: Classification {
                service: service.to_owned(),
                operation: operation.to_owned(),
            },
            access_key_id: None,
            protocol: Protocol::of(service, &headers, matches!(service, "iam" | "sts")),
            account: "123456789012".to_owned(),
        }
    }

    #[test]
    fn throttling_errors_have_each_protocols_shape() {
        let (status, headers, body) = parts_of(error_response(
            &info("apigateway", "CreateApi"),
            ErrorKind::Throttle,
            "r1",
        ));
        assert_eq!(status, 429);
        assert_eq!(headers[X_AMZN_ERROR_TYPE], "TooManyRequestsException");
        assert_eq!(headers[X_AMZN_REQUEST_ID], "r1");
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&body).unwrap(),
            serde_json::json!({"message": "Too Many Requests"})
        );

        let (status, headers, body) = parts_of(error_response(
            &info("lambda", "GetPolicy"),
            ErrorKind::Throttle,
            "r2",
        ));
        assert_eq!(status, 429);
        assert_eq!(headers[X_AMZN_ERROR_TYPE], "TooManyRequestsException");
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&body).unwrap(),
            serde_json::json!({"Type": "User", "message": "Rate exceeded", "Reason": "CallerRateLimitExceeded"})
        );

        let (status, headers, body) = parts_of(error_response(
            &info("cognito-identity", "CreateIdentityPool"),
            ErrorKind::Throttle,
            "r3",
        ));
        assert_eq!(status, 400);
        assert_eq!(headers[CONTENT_TYPE], "application/x-amz-json-1.1");
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&body).unwrap(),
            serde_json::json!({"__type": "TooManyRequestsException", "message": "Rate exceeded"})
        );

        let (status, headers, body) = parts_of(error_response(
            &info("iam", "CreateRole"),
            ErrorKind::Throttle,
            "r4",
        ));
        assert_eq!(status, 400);
        assert_eq!(headers[CONTENT_TYPE], "text/xml");
        assert_eq!(headers[X_AMZN_REQUEST_ID], "r4");
        assert_eq!(
            body,
            "<ErrorResponse xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\"><Error>\
             <Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message>\
             </Error><RequestId>r4</RequestId></ErrorResponse>"
        );

        let (_, _, body) = parts_of(error_response(
            &info("sts", "GetCallerIdentity"),
            ErrorKind::Throttle,
            "r5",
        ));
        assert!(
            body.starts_with("<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">")
        );
    }

    #[test]
    fn access_denied_and_status_errors_have_each_protocols_shape() {
        let message = "User: arn:aws:iam::123456789012:user/test is not authorized to perform: apigateway:GetApis";
        let (status, headers, body) = parts_of(error_response(
            &info("apigateway", "GetApis"),
            ErrorKind::AccessDenied,
            "r",
        ));
        assert_eq!(status, 403);
        assert_eq!(headers[X_AMZN_ERROR_TYPE], "AccessDeniedException");
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&body).unwrap(),
            serde_json::json!({ "message": message })
        );

        let (status, _, body) = parts_of(error_response(
            &info("cognito-identity", "ListIdentityPools"),
            ErrorKind::AccessDenied,
            "r",
        ));
        assert_eq!(status, 400);
        let body: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["__type"], "AccessDeniedException");
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .ends_with("cognito-identity:ListIdentityPools")
        );

        let (status, _, body) = parts_of(error_response(
            &info("iam", "ListRoles"),
            ErrorKind::AccessDenied,
            "r",
        ));
        assert_eq!(status, 403);
        assert!(
            body.contains("<Type>Sender</Type><Code>AccessDenied</Code>"),
            "{body}"
        );

        let (status, headers, body) = parts_of(error_response(
            &info("apigateway", "GetApis"),
            ErrorKind::Status(503),
            "r",
        ));
        assert_eq!(status, 503);
        assert_eq!(headers[X_AMZN_ERROR_TYPE], "ServiceUnavailable");
        assert!(body.contains("Service Unavailable"));

        let (status, _, body) = parts_of(error_response(
            &info("sts", "GetCallerIdentity"),
            ErrorKind::Status(500),
            "r",
        ));
        assert_eq!(status, 500);
        assert!(
            body.contains("<Type>Receiver</Type><Code>InternalFailure</Code>"),
            "{body}"
        );

        let (status, _, _) = parts_of(error_response(
            &info("lambda", "GetPolicy"),
            ErrorKind::Status(7),
            "r",
        ));
        assert_eq!(status, 500);
    }
}
