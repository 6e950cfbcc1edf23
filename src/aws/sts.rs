//! STS: who the operator is (the account every ARN is built with).

use aws_sdk_sts::Client;
use aws_smithy_runtime_api::client::interceptors::SharedInterceptor;

use super::error::{AwsError, AwsResult};

/// The caller's identity.
#[derive(Clone, Debug, PartialEq)]
pub struct CallerIdentity {
    pub account: String,
    pub arn: String,
}

/// STS calls.
#[derive(Clone)]
pub struct Sts {
    client: Client,
}

impl Sts {
    pub fn new(config: &aws_types::SdkConfig, interceptors: &[SharedInterceptor]) -> Self {
        let mut builder = aws_sdk_sts::config::Builder::from(config);
        for interceptor in interceptors {
            builder.push_interceptor(interceptor.clone());
        }
        builder.set_retry_partition(Some(super::retry_partition("sts")));
        Self {
            client: Client::from_conf(builder.build()),
        }
    }

    pub async fn caller_identity(&self) -> AwsResult<CallerIdentity> {
        let out = self
            .client
            .get_caller_identity()
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("sts", "GetCallerIdentity", e))?;
        Ok(CallerIdentity {
            account: out.account().unwrap_or_default().to_owned(),
            arn: out.arn().unwrap_or_default().to_owned(),
        })
    }
}
