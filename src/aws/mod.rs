//! AWS, one module per service. Each wraps the SDK client for the calls the operator
//! makes, returns plain types, and turns every failure into an [`AwsError`] whose kind
//! says whether to retry or to stall.

pub mod apigateway;
pub mod cognito;
pub mod error;
pub mod iam;
pub mod lambda;
pub mod sts;

pub use aws_smithy_runtime_api::client::interceptors::SharedInterceptor;
pub use error::{AwsError, AwsResult, ErrorKind};

/// A client for every service the operator uses, sharing one SDK configuration.
#[derive(Clone)]
pub struct AwsClients {
    pub apigateway: apigateway::ApiGateway,
    pub cognito: cognito::Cognito,
    pub iam: iam::Iam,
    pub lambda: lambda::Lambda,
    pub sts: sts::Sts,
}

impl AwsClients {
    /// Clients for every service; each request passes through `interceptors` (metrics,
    /// test hooks).
    pub fn new(config: &aws_types::SdkConfig, interceptors: &[SharedInterceptor]) -> Self {
        Self {
            apigateway: apigateway::ApiGateway::new(config, interceptors),
            cognito: cognito::Cognito::new(config, interceptors),
            iam: iam::Iam::new(config, interceptors),
            lambda: lambda::Lambda::new(config, interceptors),
            sts: sts::Sts::new(config, interceptors),
        }
    }
}
