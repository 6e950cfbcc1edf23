//! Lambda permissions: the statement on a user's function that lets one API invoke it.
//! The function is the user's; only statements whose id we chose are ever touched.

use crate::operations::Call;
use aws_sdk_lambda::Client;
use aws_smithy_runtime_api::client::interceptors::SharedInterceptor;
use serde_json::Value;

use super::error::{AwsError, AwsResult, not_found_is_none, sdk_err};

const SERVICE: &str = "lambda";
/// The principal API Gateway invokes functions as.
pub const APIGATEWAY_PRINCIPAL: &str = "apigateway.amazonaws.com";

/// One statement of a function's resource policy, as far as we read it.
#[derive(Clone, Debug, PartialEq)]
pub struct Permission {
    pub sid: String,
    pub principal: Option<String>,
    pub source_arn: Option<String>,
}

/// Lambda calls.
#[derive(Clone)]
pub struct Lambda {
    client: Client,
}

/// The Lambda calls the operator makes: the SDK client below, or a fake in tests.
#[async_trait::async_trait]
pub trait LambdaApi: Send + Sync {
    /// The statements of `function`'s resource policy (empty when it has none).
    /// `Ok(None)` when the function does not exist.
    async fn permissions(&self, function: &str) -> AwsResult<Option<Vec<Permission>>>;

    /// Allow API Gateway calls from `source_arn` to invoke `function`, under statement `sid`.
    /// A statement with that id already there is answered ResourceConflictException: the
    /// caller removes it first to change it.
    async fn add_permission(&self, function: &str, sid: &str, source_arn: &str) -> AwsResult<()>;

    async fn remove_permission(&self, function: &str, sid: &str) -> AwsResult<()>;
}

impl Lambda {
    /// The client for `account` (its own retry quota; "" for clients not tied to one).
    pub fn new(
        config: &aws_types::SdkConfig,
        interceptors: &[SharedInterceptor],
        account: &str,
    ) -> Self {
        Self {
            client: sdk_client!(aws_sdk_lambda, config, interceptors, "lambda", account),
        }
    }
}

#[async_trait::async_trait]
impl LambdaApi for Lambda {
    async fn permissions(&self, function: &str) -> AwsResult<Option<Vec<Permission>>> {
        let out = match self
            .client
            .get_policy()
            .function_name(function)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) => {
                let e = AwsError::from_sdk(SERVICE, Call::GetPolicy.name(), e);
                // A function without a policy answers ResourceNotFoundException too:
                // tell the two apart by looking at the function itself.
                if e.is_not_found() {
                    return match self
                        .client
                        .get_function()
                        .function_name(function)
                        .send()
                        .await
                    {
                        Ok(_) => Ok(Some(Vec::new())),
                        Err(e) => not_found_is_none(AwsError::from_sdk(
                            SERVICE,
                            Call::GetFunction.name(),
                            e,
                        )),
                    };
                }
                return Err(e);
            }
        };
        let policy: Value = serde_json::from_str(out.policy().unwrap_or("{}")).map_err(|e| {
            AwsError::invalid(
                SERVICE,
                Call::GetPolicy.name(),
                "",
                format!("function policy is not JSON: {e}"),
            )
        })?;
        Ok(Some(parse_statements(&policy)))
    }

    async fn add_permission(&self, function: &str, sid: &str, source_arn: &str) -> AwsResult<()> {
        self.client
            .add_permission()
            .function_name(function)
            .statement_id(sid)
            .action("lambda:InvokeFunction")
            .principal(APIGATEWAY_PRINCIPAL)
            .source_arn(source_arn)
            .send()
            .await
            .map(drop)
            .map_err(sdk_err(SERVICE, Call::AddPermission))
    }

    async fn remove_permission(&self, function: &str, sid: &str) -> AwsResult<()> {
        self.client
            .remove_permission()
            .function_name(function)
            .statement_id(sid)
            .send()
            .await
            .map(drop)
            .map_err(sdk_err(SERVICE, Call::RemovePermission))
    }
}

/// The statements of a resource policy document.
pub fn parse_statements(policy: &Value) -> Vec<Permission> {
    let statements = match &policy["Statement"] {
        Value::Array(items) => items.clone(),
        Value::Object(_) => vec![policy["Statement"].clone()],
        _ => Vec::new(),
    };
    statements
        .iter()
        .map(|s| Permission {
            sid: s["Sid"].as_str().unwrap_or_default().to_owned(),
            principal: match &s["Principal"] {
                Value::String(p) => Some(p.clone()),
                Value::Object(p) => p.get("Service").and_then(Value::as_str).map(str::to_owned),
                _ => None,
            },
            source_arn: s["Condition"]["ArnLike"]["AWS:SourceArn"]
                .as_str()
                .map(str::to_owned),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_statements_of_a_function_policy() {
        let policy = serde_json::json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Sid": "authedapi-abc",
                "Effect": "Allow",
                "Principal": {"Service": "apigateway.amazonaws.com"},
                "Action": "lambda:InvokeFunction",
                "Resource": "arn:aws:lambda:us-east-1:123456789012:function:f",
                "Condition": {"ArnLike": {"AWS:SourceArn": "arn:aws:execute-api:us-east-1:123456789012:abc/*"}}
            }]
        });
        assert_eq!(
            parse_statements(&policy),
            vec![Permission {
                sid: "authedapi-abc".into(),
                principal: Some("apigateway.amazonaws.com".into()),
                source_arn: Some("arn:aws:execute-api:us-east-1:123456789012:abc/*".into()),
            }]
        );
    }
}
