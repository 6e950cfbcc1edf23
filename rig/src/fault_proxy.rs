//! A fault-injecting HTTP proxy for the AWS emulator, for stress tests and benchmarks.
//!
//! Point an AWS SDK at [`FaultProxy::endpoint`] (as `AWS_ENDPOINT_URL` or with
//! [`FaultProxy::sdk_config`]) and the proxy forwards every request to the emulator, or
//! answers it with a fault, as a test decides at runtime.
//!
//! What it guarantees:
//!
//! * **Transparent forwarding.** A request that draws no fault reaches the upstream with
//!   its method, path and query, headers (`Authorization`, `X-Amz-*`, `Host`, …) and body
//!   unchanged; the response's status, headers and body come back unchanged and streamed.
//!   Only hop-by-hop headers (`Connection`, `Transfer-Encoding`, …) are not relayed, since
//!   they describe one connection, not the message.
//! * **Classification as AWS names things.** Each request is classified into
//!   `(service, operation)` by [`classify`]: the service is the one in the SigV4
//!   credential scope (`apigateway`, `cognito-identity`, `iam`, `lambda`, `sts`), the
//!   operation comes from `X-Amz-Target` (awsJson), the form's `Action` (awsQuery) or the
//!   method and path (restJson: API Gateway v2 and Lambda). Unknown requests are
//!   `("unknown", "Unknown")` at worst; they are still forwarded and counted.
//! * **Faults in each service's own wire protocol.** [`Fault::Throttle`],
//!   [`Fault::AccessDenied`] and [`Fault::Status`] answer with the status, the
//!   `x-amzn-ErrorType` header and the JSON or XML body that the service's protocol uses,
//!   plus an `x-amzn-RequestId`, so the AWS SDK parses them into the same error codes real
//!   AWS produces (`TooManyRequestsException`, `Throttling`, `AccessDeniedException`,
//!   `AccessDenied`, `ServiceUnavailable`, `InternalFailure`). [`Fault::Reset`] aborts the
//!   TCP connection (RST, no response at all); [`Fault::Delay`] forwards after a wait.
//!   The upstream never sees a request answered with a fault.
//! * **Reproducible randomness.** Rules fire with their `rate` drawn from a [`StdRng`]
//!   seeded with [`DEFAULT_SEED`] (or [`FaultProxy::set_seed`]): the same sequence of
//!   requests draws the same faults on every run.
//! * **Account quotas.** [`FaultProxy::set_rate_limit`] puts a token bucket in front of a
//!   service; requests over it are answered at once with that service's throttling error
//!   (outcome [`RATE_LIMITED`]), never queued or delayed.
//! * **Every request is counted** by `(service, operation, outcome)`, where the outcome is
//!   [`FORWARDED`], the fault's [`Fault::name`], [`RATE_LIMITED`] or [`UPSTREAM_ERROR`].
//!   A request is counted before its response is sent, so a count read after the SDK call
//!   returned includes it.
//!
//! Order of decisions for each request: the first rule that matches and fires (rules are
//! tried in order, each matching rule draws once) picks the fault; a delayed request then
//! goes on as an undrawn one does: the rate limit, then the upstream.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{CONNECTION, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode, Uri};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};

use crate::Account;

/// The seed of the fault PRNG until [`FaultProxy::set_seed`] changes it.
pub const DEFAULT_SEED: u64 = 0x5eed_fa17_7e57_0001;
/// Outcome of a request passed to the upstream without a fault.
pub const FORWARDED: &str = "forwarded";
/// Outcome of a request refused by [`FaultProxy::set_rate_limit`]'s token bucket.
pub const RATE_LIMITED: &str = "rate_limited";
/// Outcome of a request the upstream could not be reached for (answered 502).
pub const UPSTREAM_ERROR: &str = "upstream_error";
/// The service of a request without a SigV4 credential scope nor a recognizable shape.
pub const UNKNOWN_SERVICE: &str = "unknown";
/// The operation of a request no rule of [`classify`] recognizes.
pub const UNKNOWN_OPERATION: &str = "Unknown";

/// The account id in fault messages when the access key does not name one.
const FALLBACK_ACCOUNT: &str = "123456789012";
/// The rig's access keys are this prefix plus the 12-digit account id (see `emulator.rs`).
const RIG_ACCESS_KEY_PREFIX: &str = "AKIARIG0";
const X_AMZ_TARGET: &str = "x-amz-target";
const X_AMZN_ERROR_TYPE: &str = "x-amzn-errortype";
const X_AMZN_REQUEST_ID: &str = "x-amzn-requestid";

/// What the proxy does to a request instead of (or before) forwarding it.
#[derive(Clone, Debug, PartialEq)]
pub enum Fault {
    /// Answer with the service's throttling error (`TooManyRequestsException` /
    /// `Throttling`), as AWS does when a quota is exceeded.
    Throttle,
    /// Answer with the service's access-denied error (`AccessDeniedException` /
    /// `AccessDenied`).
    AccessDenied,
    /// Answer with this HTTP status and a short error in the service's shape: code
    /// `ServiceUnavailable` for 503, `InternalFailure` for any other status. A number that
    /// is no HTTP status (outside 100..=999) is sent as 500.
    Status(u16),
    /// Abort the connection without any response: the client sees a connection error.
    Reset,
    /// Wait this long, then go on as if no rule had fired.
    Delay(Duration),
}

impl Fault {
    /// The outcome this fault is counted under: `throttle`, `access_denied`,
    /// `status_<code>`, `reset` or `delay`.
    pub fn name(&self) -> String {
        match self {
            Fault::Throttle => "throttle".to_owned(),
            Fault::AccessDenied => "access_denied".to_owned(),
            Fault::Status(status) => format!("status_{status}"),
            Fault::Reset => "reset".to_owned(),
            Fault::Delay(_) => "delay".to_owned(),
        }
    }
}

/// One fault rule: requests of `service` and `operation` (`None` matches any) draw
/// `fault` with probability `rate`.
#[derive(Clone, Debug, PartialEq)]
pub struct Rule {
    /// The SigV4 service name (`apigateway`, `cognito-identity`, `iam`, `lambda`, `sts`).
    pub service: Option<String>,
    /// The AWS operation name (`CreateApi`, `CreateRole`, …).
    pub operation: Option<String>,
    /// What happens to a request the rule fires for.
    pub fault: Fault,
    /// Probability in `0.0..=1.0` that a matching request draws the fault; 1.0 always,
    /// 0.0 (or NaN) never.
    pub rate: f64,
}

impl Rule {
    /// A rule for every request that always fires; narrow it with [`Rule::service`],
    /// [`Rule::operation`] and [`Rule::rate`].
    pub fn new(fault: Fault) -> Self {
        Self {
            service: None,
            operation: None,
            fault,
            rate: 1.0,
        }
    }

    /// Only requests to this service.
    pub fn service(mut self, service: impl Into<String>) -> Self {
        self.service = Some(service.into());
        self
    }

    /// Only requests of this operation.
    pub fn operation(mut self, operation: impl Into<String>) -> Self {
        self.operation = Some(operation.into());
        self
    }

    /// Fire with this probability per matching request.
    pub fn rate(mut self, rate: f64) -> Self {
        self.rate = rate;
        self
    }

    /// Whether the rule applies to a request classified as `class`.
    pub fn matches(&self, class: &Classification) -> bool {
        self.service.as_deref().is_none_or(|s| s == class.service)
            && self
                .operation
                .as_deref()
                .is_none_or(|o| o == class.operation)
    }
}

/// A request's AWS service and operation.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Classification {
    /// The SigV4 signing name: `apigateway`, `cognito-identity`, `iam`, `lambda`, `sts`, …
    pub service: String,
    /// The operation as the service's API reference names it, or [`UNKNOWN_OPERATION`].
    pub operation: String,
}

/// Classify a request into (service, operation) as AWS defines them.
///
/// The service is the SigV4 credential scope's (`Authorization: … Credential=AKID/DATE/
/// REGION/SERVICE/aws4_request` or a presigned `X-Amz-Credential`); without one it is
/// guessed from the request's shape, else [`UNKNOWN_SERVICE`]. The operation is the part
/// of `X-Amz-Target` after the last dot (awsJson), the form's `Action` (awsQuery) or
/// derived from the method and path (API Gateway v2 and Lambda REST APIs).
pub fn classify(method: &Method, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> Classification {
    let target = header_str(headers, X_AMZ_TARGET);
    let action = query_action(headers, uri, body);
    let path = uri.path();
    let service = credential_scope(headers, uri)
        .map(|scope| scope.service)
        .or_else(|| guess_service(target, action.as_deref(), body, path))
        .unwrap_or_else(|| UNKNOWN_SERVICE.to_owned());
    let operation = if let Some(target) = target {
        target
            .rsplit_once('.')
            .map_or(target, |(_, op)| op)
            .to_owned()
    } else if let Some(action) = action {
        action
    } else {
        rest_operation(method, path)
            .unwrap_or(UNKNOWN_OPERATION)
            .to_owned()
    };
    Classification { service, operation }
}

/// The parts of a SigV4 credential scope the proxy uses.
struct CredentialScope {
    access_key_id: String,
    service: String,
}

fn credential_scope(headers: &HeaderMap, uri: &Uri) -> Option<CredentialScope> {
    let from_header = header_str(headers, "authorization").and_then(|auth| {
        let start = auth.find("Credential=")? + "Credential=".len();
        let rest = &auth[start..];
        let end = rest
            .find(|c: char| c == ',' || c.is_whitespace())
            .unwrap_or(rest.len());
        Some(rest[..end].to_owned())
    });
    let credential = from_header.or_else(|| form_value(uri.query()?, "X-Amz-Credential"))?;
    let mut parts = credential.split('/');
    let access_key_id = parts.next()?.to_owned();
    let _date = parts.next()?;
    let _region = parts.next()?;
    let service = parts.next()?.to_owned();
    (parts.next() == Some("aws4_request") && !service.is_empty()).then_some(CredentialScope {
        access_key_id,
        service,
    })
}

/// The service of an unsigned request, from its shape.
fn guess_service(
    target: Option<&str>,
    action: Option<&str>,
    body: &[u8],
    path: &str,
) -> Option<String> {
    if let Some(target) = target {
        return target
            .starts_with("AWSCognitoIdentityService.")
            .then(|| "cognito-identity".to_owned());
    }
    if action.is_some() {
        let body = std::str::from_utf8(body).unwrap_or_default();
        return match form_value(body, "Version").as_deref() {
            Some("2010-05-08") => Some("iam".to_owned()),
            Some("2011-06-15") => Some("sts".to_owned()),
            _ => None,
        };
    }
    if path.starts_with("/v2/") {
        Some("apigateway".to_owned())
    } else if path.starts_with("/2015-03-31/") || path.starts_with("/2017-03-31/") {
        Some("lambda".to_owned())
    } else {
        None
    }
}

/// The awsQuery `Action` of a form-encoded body, or of the query string.
fn query_action(headers: &HeaderMap, uri: &Uri, body: &[u8]) -> Option<String> {
    let is_form = header_str(headers, CONTENT_TYPE.as_str())
        .is_some_and(|ct| ct.contains("application/x-www-form-urlencoded"));
    let from_body = is_form
        .then(|| std::str::from_utf8(body).ok())
        .flatten()
        .and_then(|form| form_value(form, "Action"));
    from_body
        .or_else(|| form_value(uri.query()?, "Action"))
        .filter(|action| !action.is_empty())
}

/// The decoded value of `key` in an `application/x-www-form-urlencoded` string.
fn form_value(form: &str, key: &str) -> Option<String> {
    form.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(k) == key).then(|| percent_decode(v))
    })
}

fn percent_decode(text: &str) -> String {
    fn hex(byte: u8) -> Option<u8> {
        char::from(byte).to_digit(16).map(|d| d as u8)
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%' && i + 2 < bytes.len())
            .then(|| Some(hex(bytes[i + 1])? << 4 | hex(bytes[i + 2])?))
            .flatten();
        match (bytes[i], escaped) {
            (_, Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (b'+', None) => {
                out.push(b' ');
                i += 1;
            }
            (byte, None) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The operation of a REST request to API Gateway v2 or Lambda, from method and path.
fn rest_operation(method: &Method, path: &str) -> Option<&'static str> {
    let segments: Vec<&str> = path
        .trim_end_matches('/')
        .split('/')
        .skip(1)
        .filter(|s| !s.is_empty())
        .collect();
    let m = method;
    match segments.as_slice() {
        ["v2", "apis"] => pick(m, &[(Method::POST, "CreateApi"), (Method::GET, "GetApis")]),
        ["v2", "apis", _] => pick(
            m,
            &[
                (Method::GET, "GetApi"),
                (Method::PATCH, "UpdateApi"),
                (Method::DELETE, "DeleteApi"),
                (Method::PUT, "ReimportApi"),
            ],
        ),
        ["v2", "apis", _, "cors"] => pick(m, &[(Method::DELETE, "DeleteCorsConfiguration")]),
        ["v2", "apis", _, collection] => {
            let (create, list, ..) = api_collection(collection)?;
            pick(m, &[(Method::POST, create), (Method::GET, list)])
        }
        ["v2", "apis", _, collection, _] => {
            let (_, _, get, update, delete) = api_collection(collection)?;
            pick(
                m,
                &[
                    (Method::GET, get),
                    (Method::PATCH, update),
                    (Method::DELETE, delete),
                ],
            )
        }
        ["v2", "apis", _, "routes", _, "routeresponses"] => pick(
            m,
            &[
                (Method::POST, "CreateRouteResponse"),
                (Method::GET, "GetRouteResponses"),
            ],
        ),
        ["v2", "apis", _, "routes", _, "routeresponses", _] => pick(
            m,
            &[
                (Method::GET, "GetRouteResponse"),
                (Method::PATCH, "UpdateRouteResponse"),
                (Method::DELETE, "DeleteRouteResponse"),
            ],
        ),
        ["v2", "apis", _, "routes", _, "requestparameters", _] => {
            pick(m, &[(Method::DELETE, "DeleteRouteRequestParameter")])
        }
        ["v2", "apis", _, "integrations", _, "integrationresponses"] => pick(
            m,
            &[
                (Method::POST, "CreateIntegrationResponse"),
                (Method::GET, "GetIntegrationResponses"),
            ],
        ),
        [
            "v2",
            "apis",
            _,
            "integrations",
            _,
            "integrationresponses",
            _,
        ] => pick(
            m,
            &[
                (Method::GET, "GetIntegrationResponse"),
                (Method::PATCH, "UpdateIntegrationResponse"),
                (Method::DELETE, "DeleteIntegrationResponse"),
            ],
        ),
        ["v2", "apis", _, "stages", _, "accesslogsettings"] => {
            pick(m, &[(Method::DELETE, "DeleteAccessLogSettings")])
        }
        ["v2", "apis", _, "stages", _, "routesettings", _] => {
            pick(m, &[(Method::DELETE, "DeleteRouteSettings")])
        }
        ["v2", "apis", _, "stages", _, "cache", "authorizers"] => {
            pick(m, &[(Method::DELETE, "ResetAuthorizersCache")])
        }
        // The ARN is one percent-encoded segment, but accept it unencoded too.
        ["v2", "tags", _, ..] => pick(
            m,
            &[
                (Method::POST, "TagResource"),
                (Method::DELETE, "UntagResource"),
                (Method::GET, "GetTags"),
            ],
        ),
        ["2015-03-31", "functions"] => pick(
            m,
            &[
                (Method::POST, "CreateFunction"),
                (Method::GET, "ListFunctions"),
            ],
        ),
        ["2015-03-31", "functions", _] => pick(
            m,
            &[
                (Method::GET, "GetFunction"),
                (Method::DELETE, "DeleteFunction"),
            ],
        ),
        ["2015-03-31", "functions", _, "policy"] => pick(
            m,
            &[(Method::POST, "AddPermission"), (Method::GET, "GetPolicy")],
        ),
        ["2015-03-31", "functions", _, "policy", _] => {
            pick(m, &[(Method::DELETE, "RemovePermission")])
        }
        ["2015-03-31", "functions", _, "configuration"] => pick(
            m,
            &[
                (Method::GET, "GetFunctionConfiguration"),
                (Method::PUT, "UpdateFunctionConfiguration"),
            ],
        ),
        ["2015-03-31", "functions", _, "code"] => pick(m, &[(Method::PUT, "UpdateFunctionCode")]),
        ["2015-03-31", "functions", _, "invocations"] => pick(m, &[(Method::POST, "Invoke")]),
        ["2015-03-31", "functions", _, "versions"] => pick(
            m,
            &[
                (Method::POST, "PublishVersion"),
                (Method::GET, "ListVersionsByFunction"),
            ],
        ),
        ["2017-03-31", "tags", _, ..] => pick(
            m,
            &[
                (Method::POST, "TagResource"),
                (Method::GET, "ListTags"),
                (Method::DELETE, "UntagResource"),
            ],
        ),
        _ => None,
    }
}

fn pick(method: &Method, table: &[(Method, &'static str)]) -> Option<&'static str> {
    table
        .iter()
        .find(|(m, _)| m == method)
        .map(|&(_, operation)| operation)
}

/// (Create, list-Get, Get, Update, Delete) operations of an API's sub-collection.
fn api_collection(
    collection: &str,
) -> Option<(
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
)> {
    Some(match collection {
        "integrations" => (
            "CreateIntegration",
            "GetIntegrations",
            "GetIntegration",
            "UpdateIntegration",
            "DeleteIntegration",
        ),
        "routes" => (
            "CreateRoute",
            "GetRoutes",
            "GetRoute",
            "UpdateRoute",
            "DeleteRoute",
        ),
        "authorizers" => (
            "CreateAuthorizer",
            "GetAuthorizers",
            "GetAuthorizer",
            "UpdateAuthorizer",
            "DeleteAuthorizer",
        ),
        "stages" => (
            "CreateStage",
            "GetStages",
            "GetStage",
            "UpdateStage",
            "DeleteStage",
        ),
        "deployments" => (
            "CreateDeployment",
            "GetDeployments",
            "GetDeployment",
            "UpdateDeployment",
            "DeleteDeployment",
        ),
        "models" => (
            "CreateModel",
            "GetModels",
            "GetModel",
            "UpdateModel",
            "DeleteModel",
        ),
        _ => return None,
    })
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The wire protocol a service's errors are written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Protocol {
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
struct RequestInfo {
    class: Classification,
    protocol: Protocol,
    account: String,
}

impl RequestInfo {
    fn new(method: &Method, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> Self {
        let class = classify(method, uri, headers, body);
        let is_query = query_action(headers, uri, body).is_some();
        let protocol = Protocol::of(&class.service, headers, is_query);
        let account = credential_scope(headers, uri)
            .and_then(|scope| {
                let id = scope.access_key_id.strip_prefix(RIG_ACCESS_KEY_PREFIX)?;
                (id.len() == 12 && id.bytes().all(|b| b.is_ascii_digit())).then(|| id.to_owned())
            })
            .unwrap_or_else(|| FALLBACK_ACCOUNT.to_owned());
        Self {
            class,
            protocol,
            account,
        }
    }
}

/// An error the proxy answers in the service's protocol.
#[derive(Clone, Copy, Debug)]
enum ErrorKind {
    Throttle,
    AccessDenied,
    Status(u16),
}

type ProxyBody = BoxBody<Bytes, hyper::Error>;

fn full(body: impl Into<Bytes>) -> ProxyBody {
    Full::new(body.into())
        .map_err(|never: Infallible| match never {})
        .boxed()
}

/// The response AWS gives for `kind` to the request `info`, in its service's protocol.
fn error_response(info: &RequestInfo, kind: ErrorKind, request_id: &str) -> Response<ProxyBody> {
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
    let mut response = Response::new(full(body));
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

/// Headers that describe one connection, not the message (RFC 9110 §7.6.1).
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in [
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    ] {
        headers.remove(name);
    }
}

/// A token bucket: `capacity` tokens, refilled at `rate` per second.
#[derive(Clone, Debug)]
struct TokenBucket {
    rate: f64,
    capacity: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    fn new(rate: f64, burst: u32, now: Instant) -> Self {
        let capacity = f64::from(burst.max(1));
        Self {
            rate: if rate.is_finite() && rate > 0.0 {
                rate
            } else {
                0.0
            },
            capacity,
            tokens: capacity,
            last: now,
        }
    }

    fn try_take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = self.last.max(now);
        self.tokens = (self.tokens + elapsed * self.rate).min(self.capacity);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// The settings tests change at runtime.
struct Faults {
    rules: Vec<Rule>,
    rng: StdRng,
    limits: HashMap<String, TokenBucket>,
}

/// State shared by the proxy's handle and its connections.
struct Shared {
    /// `scheme://authority` of the upstream, without a trailing slash.
    upstream: String,
    client: Client<HttpConnector, Full<Bytes>>,
    faults: Mutex<Faults>,
    counts: Mutex<BTreeMap<(String, String, String), u64>>,
    next_request_id: AtomicU64,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Shared {
    fn new(upstream: &str) -> anyhow::Result<Self> {
        let uri: Uri = upstream
            .parse()
            .map_err(|e| anyhow::anyhow!("upstream {upstream:?} is not a URL: {e}"))?;
        anyhow::ensure!(
            uri.scheme_str() == Some("http"),
            "upstream {upstream:?} must be an http:// URL"
        );
        let authority = uri
            .authority()
            .ok_or_else(|| anyhow::anyhow!("upstream {upstream:?} has no host"))?;
        anyhow::ensure!(
            matches!(uri.path(), "" | "/") && uri.query().is_none(),
            "upstream {upstream:?} must have no path: requests keep their own"
        );
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        Ok(Self {
            upstream: format!("http://{authority}"),
            client: Client::builder(TokioExecutor::new()).build(connector),
            faults: Mutex::new(Faults {
                rules: Vec::new(),
                rng: StdRng::seed_from_u64(DEFAULT_SEED),
                limits: HashMap::new(),
            }),
            counts: Mutex::new(BTreeMap::new()),
            next_request_id: AtomicU64::new(0),
        })
    }

    /// The fault the first matching rule that fires draws, if any.
    fn draw_fault(&self, class: &Classification) -> Option<Fault> {
        let mut faults = lock(&self.faults);
        let Faults { rules, rng, .. } = &mut *faults;
        rules.iter().find_map(|rule| {
            if !rule.matches(class) {
                return None;
            }
            let roll: f64 = rng.random();
            (roll < rule.rate).then(|| rule.fault.clone())
        })
    }

    /// Whether the service's rate limit (if any) lets one more request through now.
    fn admit(&self, service: &str) -> bool {
        lock(&self.faults)
            .limits
            .get_mut(service)
            .is_none_or(|bucket| bucket.try_take(Instant::now()))
    }

    fn count(&self, class: &Classification, outcome: &str) {
        *lock(&self.counts)
            .entry((
                class.service.clone(),
                class.operation.clone(),
                outcome.to_owned(),
            ))
            .or_default() += 1;
    }

    /// Count `fault` for `info` and answer it with the service's `kind` of error.
    fn fail(&self, info: &RequestInfo, fault: &Fault, kind: ErrorKind) -> Response<ProxyBody> {
        self.count(&info.class, &fault.name());
        error_response(info, kind, &self.request_id())
    }

    /// A fresh request id shaped like AWS's (a version-4 UUID).
    fn request_id(&self) -> String {
        let n = self.next_request_id.fetch_add(1, Ordering::Relaxed);
        let a = splitmix64(n ^ 0x7265_7175_6573_7469);
        let b = splitmix64(a);
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xfff,
            ((b >> 48) & 0x3fff) | 0x8000,
            b & 0xffff_ffff_ffff
        )
    }

    async fn forward(
        &self,
        parts: http::request::Parts,
        body: Bytes,
    ) -> anyhow::Result<Response<ProxyBody>> {
        let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        let uri: Uri = format!("{}{path}", self.upstream).parse()?;
        let mut headers = parts.headers;
        strip_hop_by_hop(&mut headers);
        let mut request = Request::new(Full::new(body));
        *request.method_mut() = parts.method;
        *request.uri_mut() = uri;
        *request.headers_mut() = headers;
        let response = self.client.request(request).await?;
        let (mut parts, body) = response.into_parts();
        strip_hop_by_hop(&mut parts.headers);
        Ok(Response::from_parts(parts, body.boxed()))
    }
}

fn splitmix64(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Answer one request: a fault, the rate limit's throttling error, or the upstream's.
async fn handle(
    shared: Arc<Shared>,
    reset: Arc<Notify>,
    request: Request<Incoming>,
) -> Result<Response<ProxyBody>, hyper::Error> {
    let (parts, body) = request.into_parts();
    let body = body.collect().await?.to_bytes();
    let info = RequestInfo::new(&parts.method, &parts.uri, &parts.headers, &body);
    let outcome = match shared.draw_fault(&info.class) {
        None => FORWARDED.to_owned(),
        Some(fault @ Fault::Delay(delay)) => {
            tokio::time::sleep(delay).await;
            fault.name()
        }
        Some(Fault::Reset) => {
            shared.count(&info.class, &Fault::Reset.name());
            // The connection's task drops the socket with SO_LINGER 0 (a TCP RST); this
            // request never gets an answer.
            reset.notify_one();
            return std::future::pending().await;
        }
        Some(fault @ Fault::Throttle) => {
            return Ok(shared.fail(&info, &fault, ErrorKind::Throttle));
        }
        Some(fault @ Fault::AccessDenied) => {
            return Ok(shared.fail(&info, &fault, ErrorKind::AccessDenied));
        }
        Some(fault @ Fault::Status(status)) => {
            return Ok(shared.fail(&info, &fault, ErrorKind::Status(status)));
        }
    };
    if !shared.admit(&info.class.service) {
        shared.count(&info.class, RATE_LIMITED);
        return Ok(error_response(
            &info,
            ErrorKind::Throttle,
            &shared.request_id(),
        ));
    }
    match shared.forward(parts, body).await {
        Ok(response) => {
            shared.count(&info.class, &outcome);
            Ok(response)
        }
        Err(error) => {
            shared.count(&info.class, UPSTREAM_ERROR);
            let mut response = Response::new(full(format!(
                "fault proxy: upstream {} failed: {error:#}",
                shared.upstream
            )));
            *response.status_mut() = StatusCode::BAD_GATEWAY;
            Ok(response)
        }
    }
}

/// Serve one client connection until it closes, a request draws [`Fault::Reset`], or the
/// proxy stops.
async fn serve_connection(
    stream: TcpStream,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    let reset = Arc::new(Notify::new());
    let service = {
        let reset = reset.clone();
        hyper::service::service_fn(move |request| handle(shared.clone(), reset.clone(), request))
    };
    let mut connection =
        hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service);
    tokio::select! {
        _ = &mut connection => {}
        () = reset.notified() => {
            let stream = connection.into_parts().io.into_inner();
            // Closing a socket whose linger time is zero sends RST instead of FIN.
            let _ = stream.set_zero_linger();
            drop(stream);
        }
        _ = shutdown.changed() => {}
    }
}

async fn serve(listener: TcpListener, shared: Arc<Shared>, mut shutdown: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    tokio::spawn(serve_connection(stream, shared.clone(), shutdown.clone()));
                }
                // Out of file descriptors and the like: wait instead of spinning.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
        }
    }
}

/// The fault-injecting proxy; see the [module documentation](self). It stops when
/// dropped or [stopped](FaultProxy::stop).
pub struct FaultProxy {
    endpoint: String,
    shared: Arc<Shared>,
    shutdown: watch::Sender<bool>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl FaultProxy {
    /// Start a proxy to `upstream` (`http://HOST:PORT`) on a free loopback port, as a task
    /// of the current tokio runtime (it ends with that runtime). Fails outside a runtime.
    pub fn start(upstream: &str) -> anyhow::Result<FaultProxy> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            anyhow::anyhow!(
                "FaultProxy::start needs a tokio runtime; use FaultProxy::start_detached"
            )
        })?;
        let shared = Arc::new(Shared::new(upstream)?);
        let (listener, endpoint) = bind()?;
        let listener = {
            let _entered = runtime.enter();
            TcpListener::from_std(listener)?
        };
        let (shutdown, stopped) = watch::channel(false);
        runtime.spawn(serve(listener, shared.clone(), stopped));
        Ok(Self {
            endpoint,
            shared,
            shutdown,
            thread: Mutex::new(None),
        })
    }

    /// Start a proxy to `upstream` on a thread and tokio runtime of its own, so it serves
    /// any runtime (every `#[tokio::test]` has its own) and can live in a `static`.
    pub fn start_detached(upstream: &str) -> anyhow::Result<FaultProxy> {
        let shared = Arc::new(Shared::new(upstream)?);
        let (listener, endpoint) = bind()?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let listener = {
            let _entered = runtime.enter();
            TcpListener::from_std(listener)?
        };
        let (shutdown, stopped) = watch::channel(false);
        let serving = shared.clone();
        let thread = std::thread::Builder::new()
            .name("fault-proxy".to_owned())
            .spawn(move || runtime.block_on(serve(listener, serving, stopped)))?;
        Ok(Self {
            endpoint,
            shared,
            shutdown,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// The base URL to point an AWS SDK at: `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// SDK configuration for `account` whose requests go through this proxy (SigV4-signed
    /// with the account's keys, the SDK's default retry policy).
    pub async fn sdk_config(&self, account: &Account) -> aws_config::SdkConfig {
        sdk_config_via(account, self.endpoint()).await
    }

    /// Replace the fault rules; they apply to the next request.
    pub fn set_rules(&self, rules: Vec<Rule>) {
        lock(&self.shared.faults).rules = rules;
    }

    /// Remove every fault rule (rate limits stay).
    pub fn clear_rules(&self) {
        lock(&self.shared.faults).rules.clear();
    }

    /// Restart the fault PRNG from `seed`.
    pub fn set_seed(&self, seed: u64) {
        lock(&self.shared.faults).rng = StdRng::seed_from_u64(seed);
    }

    /// Cap `service` at `requests_per_second` with bursts of `burst` (at least 1): a token
    /// bucket, full now. Requests over it get the service's throttling error.
    pub fn set_rate_limit(&self, service: &str, requests_per_second: f64, burst: u32) {
        lock(&self.shared.faults).limits.insert(
            service.to_owned(),
            TokenBucket::new(requests_per_second, burst, Instant::now()),
        );
    }

    /// Remove `service`'s rate limit.
    pub fn clear_rate_limit(&self, service: &str) {
        lock(&self.shared.faults).limits.remove(service);
    }

    /// Requests received so far by (service, operation, outcome).
    pub fn counts(&self) -> BTreeMap<(String, String, String), u64> {
        lock(&self.shared.counts).clone()
    }

    /// Requests of `service` and `operation` with `outcome`.
    pub fn count(&self, service: &str, operation: &str, outcome: &str) -> u64 {
        lock(&self.shared.counts)
            .get(&(service.to_owned(), operation.to_owned(), outcome.to_owned()))
            .copied()
            .unwrap_or(0)
    }

    /// Requests of `service` and `operation` forwarded without a fault.
    pub fn forwarded(&self, service: &str, operation: &str) -> u64 {
        self.count(service, operation, FORWARDED)
    }

    /// Requests with `outcome`, whatever their service and operation.
    pub fn outcome_total(&self, outcome: &str) -> u64 {
        lock(&self.shared.counts)
            .iter()
            .filter(|((_, _, o), _)| o == outcome)
            .map(|(_, n)| n)
            .sum()
    }

    /// Every request received.
    pub fn total(&self) -> u64 {
        lock(&self.shared.counts).values().sum()
    }

    /// Forget the counts.
    pub fn reset_counts(&self) {
        lock(&self.shared.counts).clear();
    }

    /// Stop accepting and drop every connection. Idempotent; also done on drop.
    pub fn stop(&self) {
        self.shutdown.send_replace(true);
        let thread = lock(&self.thread).take();
        if let Some(thread) = thread
            && thread.thread().id() != std::thread::current().id()
        {
            let _ = thread.join();
        }
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop();
    }
}

impl std::fmt::Debug for FaultProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultProxy")
            .field("endpoint", &self.endpoint)
            .field("upstream", &self.shared.upstream)
            .finish_non_exhaustive()
    }
}

fn bind() -> anyhow::Result<(std::net::TcpListener, String)> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let endpoint = format!("http://{}", listener.local_addr()?);
    Ok((listener, endpoint))
}

/// SDK configuration for `account` with its requests sent to `endpoint` instead of the
/// emulator (SigV4-signed with the account's keys, the SDK's default retry policy).
pub async fn sdk_config_via(account: &Account, endpoint: &str) -> aws_config::SdkConfig {
    account
        .sdk_config()
        .await
        .to_builder()
        .endpoint_url(endpoint)
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DATE: &str = "20260102T030405Z";

    fn signed(service: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            "authorization",
            HeaderValue::from_str(&format!(
                "AWS4-HMAC-SHA256 Credential=AKIARIG0123456789012/20260102/us-east-1/{service}/aws4_request, \
                 SignedHeaders=content-type;host;x-amz-date;x-amz-user-agent, \
                 Signature=0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"
            ))
            .unwrap(),
        );
        headers.insert("x-amz-date", HeaderValue::from_static(DATE));
        headers.insert("host", HeaderValue::from_static("127.0.0.1:4566"));
        headers
    }

    fn rest(service: &str, method: Method, path: &str) -> Classification {
        let mut headers = signed(service);
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        classify(&method, &path.parse().unwrap(), &headers, b"{}")
    }

    fn query(service: &str, body: &str) -> Classification {
        let mut headers = signed(service);
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        classify(
            &Method::POST,
            &"/".parse().unwrap(),
            &headers,
            body.as_bytes(),
        )
    }

    fn json(target: &'static str, body: &str) -> Classification {
        let mut headers = signed("cognito-identity");
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/x-amz-json-1.1"),
        );
        headers.insert(X_AMZ_TARGET, HeaderValue::from_static(target));
        classify(
            &Method::POST,
            &"/".parse().unwrap(),
            &headers,
            body.as_bytes(),
        )
    }

    fn class(service: &str, operation: &str) -> Classification {
        Classification {
            service: service.to_owned(),
            operation: operation.to_owned(),
        }
    }

    #[test]
    fn classifies_api_gateway_v2() {
        let gw = |method: Method, path: &str| rest("apigateway", method, path).operation;
        assert_eq!(
            rest("apigateway", Method::POST, "/v2/apis").service,
            "apigateway"
        );
        let cases = [
            (Method::POST, "/v2/apis", "CreateApi"),
            (Method::GET, "/v2/apis?maxResults=100", "GetApis"),
            (Method::GET, "/v2/apis/a1b2c3d4e5", "GetApi"),
            (Method::PATCH, "/v2/apis/a1b2c3d4e5", "UpdateApi"),
            (Method::DELETE, "/v2/apis/a1b2c3d4e5", "DeleteApi"),
            (
                Method::POST,
                "/v2/apis/a1b2c3d4e5/integrations",
                "CreateIntegration",
            ),
            (
                Method::GET,
                "/v2/apis/a1b2c3d4e5/integrations",
                "GetIntegrations",
            ),
            (
                Method::GET,
                "/v2/apis/a1b2c3d4e5/integrations/ab12cd3",
                "GetIntegration",
            ),
            (
                Method::PATCH,
                "/v2/apis/a1b2c3d4e5/integrations/ab12cd3",
                "UpdateIntegration",
            ),
            (
                Method::DELETE,
                "/v2/apis/a1b2c3d4e5/integrations/ab12cd3",
                "DeleteIntegration",
            ),
            (Method::POST, "/v2/apis/a1b2c3d4e5/routes", "CreateRoute"),
            (Method::GET, "/v2/apis/a1b2c3d4e5/routes", "GetRoutes"),
            (Method::GET, "/v2/apis/a1b2c3d4e5/routes/r0ut3", "GetRoute"),
            (
                Method::PATCH,
                "/v2/apis/a1b2c3d4e5/routes/r0ut3",
                "UpdateRoute",
            ),
            (
                Method::DELETE,
                "/v2/apis/a1b2c3d4e5/routes/r0ut3",
                "DeleteRoute",
            ),
            (
                Method::POST,
                "/v2/apis/a1b2c3d4e5/authorizers",
                "CreateAuthorizer",
            ),
            (
                Method::GET,
                "/v2/apis/a1b2c3d4e5/authorizers",
                "GetAuthorizers",
            ),
            (
                Method::GET,
                "/v2/apis/a1b2c3d4e5/authorizers/au7h",
                "GetAuthorizer",
            ),
            (
                Method::PATCH,
                "/v2/apis/a1b2c3d4e5/authorizers/au7h",
                "UpdateAuthorizer",
            ),
            (
                Method::DELETE,
                "/v2/apis/a1b2c3d4e5/authorizers/au7h",
                "DeleteAuthorizer",
            ),
            (Method::POST, "/v2/apis/a1b2c3d4e5/stages", "CreateStage"),
            (Method::GET, "/v2/apis/a1b2c3d4e5/stages", "GetStages"),
            (
                Method::GET,
                "/v2/apis/a1b2c3d4e5/stages/%24default",
                "GetStage",
            ),
            (
                Method::PATCH,
                "/v2/apis/a1b2c3d4e5/stages/%24default",
                "UpdateStage",
            ),
            (
                Method::DELETE,
                "/v2/apis/a1b2c3d4e5/stages/%24default",
                "DeleteStage",
            ),
            (
                Method::POST,
                "/v2/tags/arn%3Aaws%3Aapigateway%3Aus-east-1%3A%3A%2Fapis%2Fa1b2c3d4e5",
                "TagResource",
            ),
            (
                Method::DELETE,
                "/v2/tags/arn%3Aaws%3Aapigateway%3Aus-east-1%3A%3A%2Fapis%2Fa1b2c3d4e5?tagKeys=a&tagKeys=b",
                "UntagResource",
            ),
            (
                Method::GET,
                "/v2/tags/arn%3Aaws%3Aapigateway%3Aus-east-1%3A%3A%2Fapis%2Fa1b2c3d4e5",
                "GetTags",
            ),
            (
                Method::GET,
                "/v2/tags/arn:aws:apigateway:us-east-1::/apis/a1b2c3d4e5",
                "GetTags",
            ),
            (
                Method::DELETE,
                "/v2/apis/a1b2c3d4e5/stages/%24default/routesettings/GET%20%2Fprivate",
                "DeleteRouteSettings",
            ),
            (
                Method::DELETE,
                "/v2/apis/a1b2c3d4e5/stages/%24default/accesslogsettings",
                "DeleteAccessLogSettings",
            ),
            (
                Method::DELETE,
                "/v2/apis/a1b2c3d4e5/cors",
                "DeleteCorsConfiguration",
            ),
            (Method::PUT, "/v2/apis/a1b2c3d4e5/routes", "Unknown"),
            (Method::GET, "/v2/apis/a1b2c3d4e5/widgets", "Unknown"),
            (Method::GET, "/v3/whatever", "Unknown"),
        ];
        for (method, path, operation) in cases {
            assert_eq!(gw(method.clone(), path), operation, "{method} {path}");
        }
    }

    #[test]
    fn classifies_lambda() {
        let arn = "arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Aprivate";
        let cases = [
            (
                Method::POST,
                "/2015-03-31/functions/private/policy".to_owned(),
                "AddPermission",
            ),
            (
                Method::GET,
                format!("/2015-03-31/functions/{arn}/policy"),
                "GetPolicy",
            ),
            (
                Method::DELETE,
                "/2015-03-31/functions/private/policy/authedapi-dev-abc?RevisionId=1".to_owned(),
                "RemovePermission",
            ),
            (
                Method::GET,
                "/2015-03-31/functions/private".to_owned(),
                "GetFunction",
            ),
            (
                Method::POST,
                "/2015-03-31/functions".to_owned(),
                "CreateFunction",
            ),
            (
                Method::DELETE,
                "/2015-03-31/functions/private".to_owned(),
                "DeleteFunction",
            ),
            (
                Method::POST,
                "/2015-03-31/functions/private/invocations".to_owned(),
                "Invoke",
            ),
            (
                Method::PUT,
                "/2015-03-31/functions/private".to_owned(),
                "Unknown",
            ),
        ];
        for (method, path, operation) in cases {
            let c = rest("lambda", method.clone(), &path);
            assert_eq!(c, class("lambda", operation), "{method} {path}");
        }
    }

    #[test]
    fn classifies_query_protocols() {
        assert_eq!(
            query(
                "iam",
                "Action=CreateRole&Version=2010-05-08&RoleName=dev-default-api-1a2b3c\
                 &AssumeRolePolicyDocument=%7B%22Version%22%3A%222012-10-17%22%7D",
            ),
            class("iam", "CreateRole")
        );
        assert_eq!(
            query(
                "iam",
                "Version=2010-05-08&Action=AddClientIDToOpenIDConnectProvider&ClientID=x"
            ),
            class("iam", "AddClientIDToOpenIDConnectProvider")
        );
        assert_eq!(
            query("sts", "Action=GetCallerIdentity&Version=2011-06-15"),
            class("sts", "GetCallerIdentity")
        );
        // A query request in the URL instead of the body.
        let headers = signed("sts");
        let uri: Uri = "/?Action=GetSessionToken&Version=2011-06-15"
            .parse()
            .unwrap();
        assert_eq!(
            classify(&Method::GET, &uri, &headers, b""),
            class("sts", "GetSessionToken")
        );
        assert_eq!(query("iam", "Version=2010-05-08"), class("iam", "Unknown"));
    }

    #[test]
    fn classifies_json_protocol() {
        assert_eq!(
            json(
                "AWSCognitoIdentityService.CreateIdentityPool",
                r#"{"IdentityPoolName":"dev_default_api","AllowUnauthenticatedIdentities":false}"#,
            ),
            class("cognito-identity", "CreateIdentityPool")
        );
        assert_eq!(
            json(
                "AWSCognitoIdentityService.SetIdentityPoolRoles",
                r#"{"IdentityPoolId":"us-east-1:7fb575c9-a8d4-422a-9210-5ebc5338b56f","Roles":{}}"#,
            ),
            class("cognito-identity", "SetIdentityPoolRoles")
        );
    }

    #[test]
    fn unsigned_requests_are_guessed_from_their_shape() {
        let headers = HeaderMap::new();
        let c = classify(
            &Method::GET,
            &"/v2/apis/abc".parse().unwrap(),
            &headers,
            b"",
        );
        assert_eq!(c, class("apigateway", "GetApi"));
        let c = classify(&Method::GET, &"/healthz".parse().unwrap(), &headers, b"");
        assert_eq!(c, class(UNKNOWN_SERVICE, UNKNOWN_OPERATION));
        let presigned: Uri = "/?Action=GetCallerIdentity&Version=2011-06-15\
            &X-Amz-Algorithm=AWS4-HMAC-SHA256\
            &X-Amz-Credential=AKIDEXAMPLE%2F20260102%2Fus-east-1%2Fsts%2Faws4_request"
            .parse()
            .unwrap();
        let c = classify(&Method::GET, &presigned, &headers, b"");
        assert_eq!(c, class("sts", "GetCallerIdentity"));
    }

    #[test]
    fn percent_decoding_handles_edges() {
        assert_eq!(percent_decode("a%2Fb+c"), "a/b c");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%4"), "%4");
        assert_eq!(percent_decode("%zz"), "%zz");
        assert_eq!(percent_decode("%41"), "A");
    }

    async fn body_of(response: Response<ProxyBody>) -> (StatusCode, HeaderMap, String) {
        let (parts, body) = response.into_parts();
        let bytes = body.collect().await.unwrap().to_bytes();
        (
            parts.status,
            parts.headers,
            String::from_utf8(bytes.to_vec()).unwrap(),
        )
    }

    fn info(service: &str, operation: &str) -> RequestInfo {
        let mut headers = signed(service);
        if service == "cognito-identity" {
            headers.insert(X_AMZ_TARGET, HeaderValue::from_static("X.Y"));
        }
        RequestInfo {
            class: class(service, operation),
            protocol: Protocol::of(service, &headers, matches!(service, "iam" | "sts")),
            account: "123456789012".to_owned(),
        }
    }

    #[tokio::test]
    async fn throttling_errors_have_each_protocols_shape() {
        let (status, headers, body) = body_of(error_response(
            &info("apigateway", "CreateApi"),
            ErrorKind::Throttle,
            "r1",
        ))
        .await;
        assert_eq!(status, 429);
        assert_eq!(headers[X_AMZN_ERROR_TYPE], "TooManyRequestsException");
        assert_eq!(headers[X_AMZN_REQUEST_ID], "r1");
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&body).unwrap(),
            serde_json::json!({"message": "Too Many Requests"})
        );

        let (status, headers, body) = body_of(error_response(
            &info("lambda", "GetPolicy"),
            ErrorKind::Throttle,
            "r2",
        ))
        .await;
        assert_eq!(status, 429);
        assert_eq!(headers[X_AMZN_ERROR_TYPE], "TooManyRequestsException");
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&body).unwrap(),
            serde_json::json!({"Type": "User", "message": "Rate exceeded", "Reason": "CallerRateLimitExceeded"})
        );

        let (status, headers, body) = body_of(error_response(
            &info("cognito-identity", "CreateIdentityPool"),
            ErrorKind::Throttle,
            "r3",
        ))
        .await;
        assert_eq!(status, 400);
        assert_eq!(headers[CONTENT_TYPE], "application/x-amz-json-1.1");
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&body).unwrap(),
            serde_json::json!({"__type": "TooManyRequestsException", "message": "Rate exceeded"})
        );

        let (status, headers, body) = body_of(error_response(
            &info("iam", "CreateRole"),
            ErrorKind::Throttle,
            "r4",
        ))
        .await;
        assert_eq!(status, 400);
        assert_eq!(headers[CONTENT_TYPE], "text/xml");
        assert_eq!(headers[X_AMZN_REQUEST_ID], "r4");
        assert_eq!(
            body,
            "<ErrorResponse xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\"><Error>\
             <Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message>\
             </Error><RequestId>r4</RequestId></ErrorResponse>"
        );

        let (_, _, body) = body_of(error_response(
            &info("sts", "GetCallerIdentity"),
            ErrorKind::Throttle,
            "r5",
        ))
        .await;
        assert!(
            body.starts_with("<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">")
        );
    }

    #[tokio::test]
    async fn access_denied_and_status_errors_have_each_protocols_shape() {
        let message = "User: arn:aws:iam::123456789012:user/test is not authorized to perform: apigateway:GetApis";
        let (status, headers, body) = body_of(error_response(
            &info("apigateway", "GetApis"),
            ErrorKind::AccessDenied,
            "r",
        ))
        .await;
        assert_eq!(status, 403);
        assert_eq!(headers[X_AMZN_ERROR_TYPE], "AccessDeniedException");
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&body).unwrap(),
            serde_json::json!({ "message": message })
        );

        let (status, _, body) = body_of(error_response(
            &info("cognito-identity", "ListIdentityPools"),
            ErrorKind::AccessDenied,
            "r",
        ))
        .await;
        assert_eq!(status, 400);
        let body: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["__type"], "AccessDeniedException");
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .ends_with("cognito-identity:ListIdentityPools")
        );

        let (status, _, body) = body_of(error_response(
            &info("iam", "ListRoles"),
            ErrorKind::AccessDenied,
            "r",
        ))
        .await;
        assert_eq!(status, 403);
        assert!(
            body.contains("<Type>Sender</Type><Code>AccessDenied</Code>"),
            "{body}"
        );

        let (status, headers, body) = body_of(error_response(
            &info("apigateway", "GetApis"),
            ErrorKind::Status(503),
            "r",
        ))
        .await;
        assert_eq!(status, 503);
        assert_eq!(headers[X_AMZN_ERROR_TYPE], "ServiceUnavailable");
        assert!(body.contains("Service Unavailable"));

        let (status, _, body) = body_of(error_response(
            &info("sts", "GetCallerIdentity"),
            ErrorKind::Status(500),
            "r",
        ))
        .await;
        assert_eq!(status, 500);
        assert!(
            body.contains("<Type>Receiver</Type><Code>InternalFailure</Code>"),
            "{body}"
        );

        let (status, _, _) = body_of(error_response(
            &info("lambda", "GetPolicy"),
            ErrorKind::Status(7),
            "r",
        ))
        .await;
        assert_eq!(status, 500);
    }

    #[test]
    fn token_bucket_allows_a_burst_then_the_rate() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(10.0, 5, start);
        let admitted = (0..30).filter(|_| bucket.try_take(start)).count();
        assert_eq!(admitted, 5, "the burst, no time passed");
        assert!(
            bucket.try_take(start + Duration::from_millis(100)),
            "one token per 100ms"
        );
        assert!(!bucket.try_take(start + Duration::from_millis(150)));
        let later = start + Duration::from_secs(60);
        let admitted = (0..30).filter(|_| bucket.try_take(later)).count();
        assert_eq!(admitted, 5, "refill stops at the burst size");
        let mut zero = TokenBucket::new(0.0, 0, start);
        assert!(zero.try_take(start));
        assert!(!zero.try_take(start + Duration::from_secs(3600)));
    }

    #[test]
    fn rules_match_and_draw_reproducibly() {
        let rule = Rule::new(Fault::Throttle)
            .service("iam")
            .operation("CreateRole");
        assert!(rule.matches(&class("iam", "CreateRole")));
        assert!(!rule.matches(&class("iam", "GetRole")));
        assert!(!rule.matches(&class("sts", "CreateRole")));
        assert!(Rule::new(Fault::Reset).matches(&class("sts", "GetCallerIdentity")));

        let shared = Shared::new("http://127.0.0.1:9").unwrap();
        let c = class("sts", "GetCallerIdentity");
        let draws = |shared: &Shared| {
            (0..1000)
                .map(|_| shared.draw_fault(&c).is_some())
                .collect::<Vec<_>>()
        };
        lock(&shared.faults).rules = vec![
            Rule::new(Fault::AccessDenied).service("iam"),
            Rule::new(Fault::Throttle).rate(0.3),
        ];
        let first = draws(&shared);
        let fired = first.iter().filter(|f| **f).count();
        assert!((200..400).contains(&fired), "{fired} of 1000 at rate 0.3");
        lock(&shared.faults).rng = StdRng::seed_from_u64(DEFAULT_SEED);
        assert_eq!(draws(&shared), first, "the same seed draws the same faults");
        lock(&shared.faults).rules = vec![Rule::new(Fault::Throttle).rate(0.0)];
        assert!(draws(&shared).iter().all(|f| !f));
        lock(&shared.faults).rules = vec![
            Rule::new(Fault::Status(500)).service("sts").rate(1.0),
            Rule::new(Fault::Throttle),
        ];
        assert_eq!(
            shared.draw_fault(&c),
            Some(Fault::Status(500)),
            "the first rule wins"
        );
    }

    #[test]
    fn request_ids_look_like_uuids_and_differ() {
        let shared = Shared::new("http://127.0.0.1:9/").unwrap();
        let a = shared.request_id();
        let b = shared.request_id();
        assert_ne!(a, b);
        let lengths: Vec<usize> = a.split('-').map(str::len).collect();
        assert_eq!(lengths, [8, 4, 4, 4, 12], "{a}");
        assert!(Shared::new("https://127.0.0.1:9").is_err());
        assert!(Shared::new("http://127.0.0.1:9/prefix").is_err());
    }

    #[test]
    fn hop_by_hop_headers_are_not_relayed() {
        let mut headers = signed("iam");
        headers.insert(
            "connection",
            HeaderValue::from_static("keep-alive, x-trace"),
        );
        headers.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        headers.insert("x-trace", HeaderValue::from_static("1"));
        headers.insert("transfer-encoding", HeaderValue::from_static("chunked"));
        strip_hop_by_hop(&mut headers);
        let mut names: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
        names.sort_unstable();
        assert_eq!(names, ["authorization", "host", "x-amz-date"]);
    }
}
