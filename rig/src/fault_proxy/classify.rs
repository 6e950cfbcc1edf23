//! Request → (service, operation), as AWS names them: the SigV4 credential scope for the
//! service; `X-Amz-Target` (awsJson), the form's `Action` (awsQuery) or the method and
//! path (restJson: API Gateway v2 and Lambda, from [`REST_OPERATIONS`]) for the operation.

use http::header::{CONTENT_TYPE, HeaderMap};
use http::{Method, Uri};
use url::form_urlencoded;

/// The service of a request without a SigV4 credential scope nor a recognizable shape.
pub const UNKNOWN_SERVICE: &str = "unknown";
/// The operation of a request no rule of [`classify`] recognizes.
pub const UNKNOWN_OPERATION: &str = "Unknown";

pub(super) const X_AMZ_TARGET: &str = "x-amz-target";

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
pub(super) struct CredentialScope {
    pub(super) access_key_id: String,
    pub(super) service: String,
}

pub(super) fn credential_scope(headers: &HeaderMap, uri: &Uri) -> Option<CredentialScope> {
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
pub(super) fn query_action(headers: &HeaderMap, uri: &Uri, body: &[u8]) -> Option<String> {
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
    form_urlencoded::parse(form.as_bytes())
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

/// The REST operations of API Gateway v2 and Lambda: (method, path pattern, operation),
/// the paths as the API references write them. `{name}` matches one path segment,
/// `{name+}` one or more; the first matching row wins.
#[rustfmt::skip]
const REST_OPERATIONS: &[(&str, &str, &str)] = &[
    // API Gateway v2.
    ("POST", "/v2/apis", "CreateApi"),
    ("GET", "/v2/apis", "GetApis"),
    ("GET", "/v2/apis/{apiId}", "GetApi"),
    ("PATCH", "/v2/apis/{apiId}", "UpdateApi"),
    ("DELETE", "/v2/apis/{apiId}", "DeleteApi"),
    ("PUT", "/v2/apis/{apiId}", "ReimportApi"),
    ("DELETE", "/v2/apis/{apiId}/cors", "DeleteCorsConfiguration"),
    ("POST", "/v2/apis/{apiId}/integrations", "CreateIntegration"),
    ("GET", "/v2/apis/{apiId}/integrations", "GetIntegrations"),
    ("GET", "/v2/apis/{apiId}/integrations/{integrationId}", "GetIntegration"),
    ("PATCH", "/v2/apis/{apiId}/integrations/{integrationId}", "UpdateIntegration"),
    ("DELETE", "/v2/apis/{apiId}/integrations/{integrationId}", "DeleteIntegration"),
    ("POST", "/v2/apis/{apiId}/routes", "CreateRoute"),
    ("GET", "/v2/apis/{apiId}/routes", "GetRoutes"),
    ("GET", "/v2/apis/{apiId}/routes/{routeId}", "GetRoute"),
    ("PATCH", "/v2/apis/{apiId}/routes/{routeId}", "UpdateRoute"),
    ("DELETE", "/v2/apis/{apiId}/routes/{routeId}", "DeleteRoute"),
    ("POST", "/v2/apis/{apiId}/authorizers", "CreateAuthorizer"),
    ("GET", "/v2/apis/{apiId}/authorizers", "GetAuthorizers"),
    ("GET", "/v2/apis/{apiId}/authorizers/{authorizerId}", "GetAuthorizer"),
    ("PATCH", "/v2/apis/{apiId}/authorizers/{authorizerId}", "UpdateAuthorizer"),
    ("DELETE", "/v2/apis/{apiId}/authorizers/{authorizerId}", "DeleteAuthorizer"),
    ("POST", "/v2/apis/{apiId}/stages", "CreateStage"),
    ("GET", "/v2/apis/{apiId}/stages", "GetStages"),
    ("GET", "/v2/apis/{apiId}/stages/{stageName}", "GetStage"),
    ("PATCH", "/v2/apis/{apiId}/stages/{stageName}", "UpdateStage"),
    ("DELETE", "/v2/apis/{apiId}/stages/{stageName}", "DeleteStage"),
    ("POST", "/v2/apis/{apiId}/deployments", "CreateDeployment"),
    ("GET", "/v2/apis/{apiId}/deployments", "GetDeployments"),
    ("GET", "/v2/apis/{apiId}/deployments/{deploymentId}", "GetDeployment"),
    ("PATCH", "/v2/apis/{apiId}/deployments/{deploymentId}", "UpdateDeployment"),
    ("DELETE", "/v2/apis/{apiId}/deployments/{deploymentId}", "DeleteDeployment"),
    ("POST", "/v2/apis/{apiId}/models", "CreateModel"),
    ("GET", "/v2/apis/{apiId}/models", "GetModels"),
    ("GET", "/v2/apis/{apiId}/models/{modelId}", "GetModel"),
    ("PATCH", "/v2/apis/{apiId}/models/{modelId}", "UpdateModel"),
    ("DELETE", "/v2/apis/{apiId}/models/{modelId}", "DeleteModel"),
    ("POST", "/v2/apis/{apiId}/routes/{routeId}/routeresponses", "CreateRouteResponse"),
    ("GET", "/v2/apis/{apiId}/routes/{routeId}/routeresponses", "GetRouteResponses"),
    ("GET", "/v2/apis/{apiId}/routes/{routeId}/routeresponses/{id}", "GetRouteResponse"),
    ("PATCH", "/v2/apis/{apiId}/routes/{routeId}/routeresponses/{id}", "UpdateRouteResponse"),
    ("DELETE", "/v2/apis/{apiId}/routes/{routeId}/routeresponses/{id}", "DeleteRouteResponse"),
    ("DELETE", "/v2/apis/{apiId}/routes/{routeId}/requestparameters/{key}", "DeleteRouteRequestParameter"),
    ("POST", "/v2/apis/{apiId}/integrations/{id}/integrationresponses", "CreateIntegrationResponse"),
    ("GET", "/v2/apis/{apiId}/integrations/{id}/integrationresponses", "GetIntegrationResponses"),
    ("GET", "/v2/apis/{apiId}/integrations/{id}/integrationresponses/{rid}", "GetIntegrationResponse"),
    ("PATCH", "/v2/apis/{apiId}/integrations/{id}/integrationresponses/{rid}", "UpdateIntegrationResponse"),
    ("DELETE", "/v2/apis/{apiId}/integrations/{id}/integrationresponses/{rid}", "DeleteIntegrationResponse"),
    ("DELETE", "/v2/apis/{apiId}/stages/{stageName}/accesslogsettings", "DeleteAccessLogSettings"),
    ("DELETE", "/v2/apis/{apiId}/stages/{stageName}/routesettings/{routeKey}", "DeleteRouteSettings"),
    ("DELETE", "/v2/apis/{apiId}/stages/{stageName}/cache/authorizers", "ResetAuthorizersCache"),
    // The ARN is one percent-encoded segment, but accept it unencoded too.
    ("POST", "/v2/tags/{resource-arn+}", "TagResource"),
    ("DELETE", "/v2/tags/{resource-arn+}", "UntagResource"),
    ("GET", "/v2/tags/{resource-arn+}", "GetTags"),
    // Lambda.
    ("POST", "/2015-03-31/functions", "CreateFunction"),
    ("GET", "/2015-03-31/functions", "ListFunctions"),
    ("GET", "/2015-03-31/functions/{FunctionName}", "GetFunction"),
    ("DELETE", "/2015-03-31/functions/{FunctionName}", "DeleteFunction"),
    ("POST", "/2015-03-31/functions/{FunctionName}/policy", "AddPermission"),
    ("GET", "/2015-03-31/functions/{FunctionName}/policy", "GetPolicy"),
    ("DELETE", "/2015-03-31/functions/{FunctionName}/policy/{StatementId}", "RemovePermission"),
    ("GET", "/2015-03-31/functions/{FunctionName}/configuration", "GetFunctionConfiguration"),
    ("PUT", "/2015-03-31/functions/{FunctionName}/configuration", "UpdateFunctionConfiguration"),
    ("PUT", "/2015-03-31/functions/{FunctionName}/code", "UpdateFunctionCode"),
    ("POST", "/2015-03-31/functions/{FunctionName}/invocations", "Invoke"),
    ("POST", "/2015-03-31/functions/{FunctionName}/versions", "PublishVersion"),
    ("GET", "/2015-03-31/functions/{FunctionName}/versions", "ListVersionsByFunction"),
    ("POST", "/2017-03-31/tags/{ARN+}", "TagResource"),
    ("GET", "/2017-03-31/tags/{ARN+}", "ListTags"),
    ("DELETE", "/2017-03-31/tags/{ARN+}", "UntagResource"),
];

/// The operation of a REST request to API Gateway v2 or Lambda, from method and path.
fn rest_operation(method: &Method, path: &str) -> Option<&'static str> {
    let segments: Vec<&str> = path
        .trim_end_matches('/')
        .split('/')
        .skip(1)
        .filter(|s| !s.is_empty())
        .collect();
    REST_OPERATIONS
        .iter()
        .find(|(m, pattern, _)| *m == method.as_str() && path_matches(pattern, &segments))
        .map(|&(_, _, operation)| operation)
}

/// Whether `segments` fit `pattern` (see [`REST_OPERATIONS`]).
fn path_matches(pattern: &str, segments: &[&str]) -> bool {
    let mut rest = segments;
    for part in pattern.split('/').skip(1) {
        let is_param = part.starts_with('{') && part.ends_with('}');
        if is_param && part.ends_with("+}") {
            return !rest.is_empty();
        }
        match rest.split_first() {
            Some((segment, tail)) if is_param || *segment == part => rest = tail,
            _ => return false,
        }
    }
    rest.is_empty()
}

pub(super) fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

#[cfg(test)]
mod tests {
    use http::header::HeaderValue;

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
        #[rustfmt::skip]
        let cases = [
            (Method::POST, "/v2/apis", "CreateApi"),
            (Method::GET, "/v2/apis?maxResults=100", "GetApis"),
            (Method::GET, "/v2/apis/a1b2c3d4e5", "GetApi"),
            (Method::PATCH, "/v2/apis/a1b2c3d4e5", "UpdateApi"),
            (Method::DELETE, "/v2/apis/a1b2c3d4e5", "DeleteApi"),
            (Method::POST, "/v2/apis/a1b2c3d4e5/integrations", "CreateIntegration"),
            (Method::GET, "/v2/apis/a1b2c3d4e5/integrations", "GetIntegrations"),
            (Method::GET, "/v2/apis/a1b2c3d4e5/integrations/ab12cd3", "GetIntegration"),
            (Method::PATCH, "/v2/apis/a1b2c3d4e5/integrations/ab12cd3", "UpdateIntegration"),
            (Method::DELETE, "/v2/apis/a1b2c3d4e5/integrations/ab12cd3", "DeleteIntegration"),
            (Method::POST, "/v2/apis/a1b2c3d4e5/routes", "CreateRoute"),
            (Method::GET, "/v2/apis/a1b2c3d4e5/routes", "GetRoutes"),
            (Method::GET, "/v2/apis/a1b2c3d4e5/routes/r0ut3", "GetRoute"),
            (Method::PATCH, "/v2/apis/a1b2c3d4e5/routes/r0ut3", "UpdateRoute"),
            (Method::DELETE, "/v2/apis/a1b2c3d4e5/routes/r0ut3", "DeleteRoute"),
            (Method::POST, "/v2/apis/a1b2c3d4e5/authorizers", "CreateAuthorizer"),
            (Method::GET, "/v2/apis/a1b2c3d4e5/authorizers", "GetAuthorizers"),
            (Method::GET, "/v2/apis/a1b2c3d4e5/authorizers/au7h", "GetAuthorizer"),
            (Method::PATCH, "/v2/apis/a1b2c3d4e5/authorizers/au7h", "UpdateAuthorizer"),
            (Method::DELETE, "/v2/apis/a1b2c3d4e5/authorizers/au7h", "DeleteAuthorizer"),
            (Method::POST, "/v2/apis/a1b2c3d4e5/stages", "CreateStage"),
            (Method::GET, "/v2/apis/a1b2c3d4e5/stages", "GetStages"),
            (Method::GET, "/v2/apis/a1b2c3d4e5/stages/%24default", "GetStage"),
            (Method::PATCH, "/v2/apis/a1b2c3d4e5/stages/%24default", "UpdateStage"),
            (Method::DELETE, "/v2/apis/a1b2c3d4e5/stages/%24default", "DeleteStage"),
            (Method::POST, "/v2/tags/arn%3Aaws%3Aapigateway%3Aus-east-1%3A%3A%2Fapis%2Fa1b2c3d4e5", "TagResource"),
            (Method::DELETE, "/v2/tags/arn%3Aaws%3Aapigateway%3Aus-east-1%3A%3A%2Fapis%2Fa1b2c3d4e5?tagKeys=a&tagKeys=b", "UntagResource"),
            (Method::GET, "/v2/tags/arn%3Aaws%3Aapigateway%3Aus-east-1%3A%3A%2Fapis%2Fa1b2c3d4e5", "GetTags"),
            (Method::GET, "/v2/tags/arn:aws:apigateway:us-east-1::/apis/a1b2c3d4e5", "GetTags"),
            (Method::DELETE, "/v2/apis/a1b2c3d4e5/stages/%24default/routesettings/GET%20%2Fprivate", "DeleteRouteSettings"),
            (Method::DELETE, "/v2/apis/a1b2c3d4e5/stages/%24default/accesslogsettings", "DeleteAccessLogSettings"),
            (Method::DELETE, "/v2/apis/a1b2c3d4e5/cors", "DeleteCorsConfiguration"),
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
        #[rustfmt::skip]
        let cases = [
            (Method::POST, "/2015-03-31/functions/private/policy".to_owned(), "AddPermission"),
            (Method::GET, format!("/2015-03-31/functions/{arn}/policy"), "GetPolicy"),
            (Method::DELETE, "/2015-03-31/functions/private/policy/authedapi-dev-abc?RevisionId=1".to_owned(), "RemovePermission"),
            (Method::GET, "/2015-03-31/functions/private".to_owned(), "GetFunction"),
            (Method::POST, "/2015-03-31/functions".to_owned(), "CreateFunction"),
            (Method::DELETE, "/2015-03-31/functions/private".to_owned(), "DeleteFunction"),
            (Method::POST, "/2015-03-31/functions/private/invocations".to_owned(), "Invoke"),
            (Method::PUT, "/2015-03-31/functions/private".to_owned(), "Unknown"),
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
    fn form_values_are_percent_decoded_with_plus_as_space() {
        let decode = |value: &str| form_value(&format!("k={value}"), "k").unwrap();
        assert_eq!(decode("a%2Fb+c"), "a/b c");
        assert_eq!(decode("100%"), "100%");
        assert_eq!(decode("%4"), "%4");
        assert_eq!(decode("%zz"), "%zz");
        assert_eq!(decode("%41"), "A");
        // Keys are decoded too, the first pair with the key wins, a bare key is empty.
        assert_eq!(
            form_value("a=1&X%2DAmz=2&X-Amz=3", "X-Amz").as_deref(),
            Some("2")
        );
        assert_eq!(form_value("Action&b=1", "Action").as_deref(), Some(""));
        assert_eq!(form_value("a=1", "b"), None);
    }

    #[test]
    fn path_patterns_match_whole_segments() {
        assert!(path_matches("/v2/apis", &["v2", "apis"]));
        assert!(path_matches("/v2/apis/{apiId}", &["v2", "apis", "x"]));
        assert!(!path_matches("/v2/apis/{apiId}", &["v2", "apis"]));
        assert!(!path_matches("/v2/apis/{apiId}", &["v2", "apis", "x", "y"]));
        assert!(!path_matches("/v2/apis", &["v2", "api"]));
        assert!(path_matches("/v2/tags/{arn+}", &["v2", "tags", "a", "b"]));
        assert!(!path_matches("/v2/tags/{arn+}", &["v2", "tags"]));
    }

    #[test]
    fn the_credential_scope_names_the_access_key_id() {
        let uri: Uri = "/v2/apis".parse().unwrap();
        let scope = credential_scope(&signed("apigateway"), &uri).unwrap();
        assert_eq!(scope.access_key_id, "AKIARIG0123456789012");
        assert_eq!(scope.service, "apigateway");
        let presigned: Uri =
            "/?X-Amz-Credential=ASIAPRESIGNED%2F20260102%2Fus-east-1%2Fsts%2Faws4_request"
                .parse()
                .unwrap();
        let scope = credential_scope(&HeaderMap::new(), &presigned).unwrap();
        assert_eq!(scope.access_key_id, "ASIAPRESIGNED");
        assert!(
            credential_scope(&HeaderMap::new(), &uri).is_none(),
            "unsigned"
        );
    }
}
