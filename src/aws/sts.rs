//! STS: who the operator is (the account every ARN is built with).

use crate::operations::Call;
use aws_sdk_sts::Client;
use aws_smithy_runtime_api::client::interceptors::SharedInterceptor;

use super::error::{AwsResult, sdk_err};

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
    /// The client for `account` (its own retry quota; "" for clients not tied to one).
    pub fn new(
        config: &aws_types::SdkConfig,
        interceptors: &[SharedInterceptor],
        account: &str,
    ) -> Self {
        Self {
            client: sdk_client!(aws_sdk_sts, config, interceptors, "sts", account),
        }
    }

    pub async fn caller_identity(&self) -> AwsResult<CallerIdentity> {
        let out = self
            .client
            .get_caller_identity()
            .send()
            .await
            .map_err(sdk_err("sts", Call::GetCallerIdentity))?;
        Ok(CallerIdentity {
            account: out.account().unwrap_or_default().to_owned(),
            arn: out.arn().unwrap_or_default().to_owned(),
        })
    }
}
