//! STS: who the operator is (the account every ARN is built with).

use aws_sdk_sts::Client;

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
    pub fn new(config: &aws_types::SdkConfig) -> Self {
        Self {
            client: Client::new(config),
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
