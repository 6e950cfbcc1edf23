//! The Lambda REQUEST authorizers of spec.authorizers: each one's name in the API, the
//! URI API Gateway invokes its function at, and its identity sources, cache and response
//! format as API Gateway takes them.

use super::PlanError;
use crate::api::AuthedApiSpec;
use crate::aws::apigateway::LambdaAuthorizerConfig;

/// The prefix of a Lambda authorizer's name in the API (the JWT authorizer has its own
/// name; each kind keeps only authorizers of its own type).
pub const LAMBDA_AUTHORIZER_PREFIX: &str = "lambda-";

/// One Lambda authorizer as it should exist.
#[derive(Clone, Debug, PartialEq)]
pub struct LambdaAuthorizerPlan {
    /// Its name in spec.authorizers, which routes use.
    pub key: String,
    /// Its name in the API.
    pub name: String,
    pub function_arn: String,
    pub config: LambdaAuthorizerConfig,
}

/// The authorizers of `spec`, in an API in `partition` and `region`.
pub(super) fn lambda_authorizers(
    spec: &AuthedApiSpec,
    partition: &str,
    region: &str,
) -> Result<Vec<LambdaAuthorizerPlan>, PlanError> {
    spec.authorizers
        .iter()
        .map(|authorizer| {
            let lambda = &authorizer.lambda;
            let function_partition = lambda.function_arn.split(':').nth(1).unwrap_or_default();
            if function_partition != partition {
                return Err(PlanError(format!(
                    "authorizer {:?}: function {} is in partition {function_partition}, the API in {partition}",
                    authorizer.name, lambda.function_arn
                )));
            }
            Ok(LambdaAuthorizerPlan {
                key: authorizer.name.clone(),
                name: format!("{LAMBDA_AUTHORIZER_PREFIX}{}", authorizer.name),
                function_arn: lambda.function_arn.clone(),
                config: LambdaAuthorizerConfig {
                    uri: invocation_uri(partition, region, &lambda.function_arn),
                    identity_sources: lambda.identity_sources.clone(),
                    result_ttl_seconds: lambda.result_ttl_seconds,
                    simple_responses: lambda.simple_responses,
                    payload_format_version: lambda.payload_format_version.as_str().to_owned(),
                },
            })
        })
        .collect()
}

/// Where API Gateway in `region` invokes `function_arn`.
fn invocation_uri(partition: &str, region: &str, function_arn: &str) -> String {
    format!(
        "arn:{partition}:apigateway:{region}:lambda:path/2015-03-31/functions/{function_arn}/invocations"
    )
}

#[cfg(test)]
mod tests {
    use crate::plan::test_support::*;

    #[test]
    fn each_authorizer_is_planned_with_its_invocation_uri_and_settings() {
        let mut spec = seed();
        let mut v1 = authorizer("legacy", "auth-v1");
        v1.lambda.simple_responses = false;
        v1.lambda.payload_format_version = PayloadFormatVersion::V1;
        v1.lambda.result_ttl_seconds = 0;
        spec.authorizers = vec![authorizer("users", "auth"), v1];
        let p = plan(&spec, &who("default", "x", "us-east-1")).unwrap();
        let [users, legacy] = p.lambda_authorizers.as_slice() else {
            panic!("{:?}", p.lambda_authorizers)
        };
        assert_eq!(
            (users.key.as_str(), users.name.as_str()),
            ("users", "lambda-users")
        );
        assert_eq!(
            users.config.uri,
            format!(
                "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/arn:aws:lambda:us-east-1:{ACCOUNT}:function:auth/invocations"
            )
        );
        assert_eq!(
            users.config.identity_sources,
            ["$request.header.Authorization"]
        );
        assert_eq!(users.config.result_ttl_seconds, 300);
        assert!(users.config.simple_responses);
        assert_eq!(users.config.payload_format_version, "2.0");
        assert_eq!(legacy.config.payload_format_version, "1.0");
        assert!(!legacy.config.simple_responses);
        assert_eq!(legacy.config.result_ttl_seconds, 0);
    }

    #[test]
    fn an_authorizer_function_in_another_partition_is_refused() {
        let mut spec = seed();
        spec.routes.clear();
        spec.routes
            .push(route("GET /x", None, http("https://example.com")));
        spec.authorizers = vec![authorizer("users", "auth")];
        let err = plan(&spec, &who("default", "x", "cn-north-1")).unwrap_err();
        assert!(err.0.contains("authorizer \"users\""), "{err}");
    }
}
