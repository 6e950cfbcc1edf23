//! API Gateway v2 (HTTP APIs): the API, its integrations, routes, JWT authorizer and the
//! `$default` stage. Every call goes through here; results come back as plain types.

use std::collections::BTreeMap;

use aws_sdk_apigatewayv2::Client;
use aws_sdk_apigatewayv2::types::{
    AuthorizationType, AuthorizerType, IntegrationType, JwtConfiguration, ProtocolType,
};
use aws_smithy_runtime_api::client::interceptors::SharedInterceptor;

use super::error::{AwsError, AwsResult};

const SERVICE: &str = "apigateway";
/// The stage every AuthedApi serves on: no stage segment in the URL, deployed on change.
pub const DEFAULT_STAGE: &str = "$default";
/// Where API Gateway finds the caller's token for a JWT authorizer.
pub const JWT_IDENTITY_SOURCE: &str = "$request.header.Authorization";
const PAGE_SIZE: &str = "100";

fn err<E>(
    op: &'static str,
) -> impl FnOnce(
    aws_sdk_apigatewayv2::error::SdkError<E, aws_smithy_runtime_api::http::Response>,
) -> AwsError
where
    E: aws_sdk_apigatewayv2::error::ProvideErrorMetadata
        + std::error::Error
        + Send
        + Sync
        + 'static,
{
    move |e| AwsError::from_sdk(SERVICE, op, e)
}

/// An HTTP API as AWS reports it.
#[derive(Clone, Debug, PartialEq)]
pub struct HttpApi {
    pub id: String,
    pub name: String,
    pub endpoint: String,
    pub tags: BTreeMap<String, String>,
}

/// What a route's integration calls.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IntegrationTarget {
    /// AWS_PROXY to a Lambda function ARN, with the payload format version.
    Lambda {
        function_arn: String,
        payload_format_version: String,
    },
    /// HTTP_PROXY to a URL with a method (ANY forwards the caller's).
    Http { url: String, method: String },
}

/// An integration as AWS reports it.
#[derive(Clone, Debug, PartialEq)]
pub struct Integration {
    pub id: String,
    pub target: Option<IntegrationTarget>,
}

/// How a route is authorized, as API Gateway spells it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RouteAuth {
    None,
    Iam,
    Jwt {
        authorizer_id: String,
        scopes: Vec<String>,
    },
}

/// A route as AWS reports it (or as we want it).
#[derive(Clone, Debug, PartialEq)]
pub struct Route {
    pub id: String,
    pub key: String,
    /// The integration id the route targets.
    pub integration_id: Option<String>,
    pub auth: RouteAuth,
}

/// A JWT authorizer.
#[derive(Clone, Debug, PartialEq)]
pub struct JwtAuthorizer {
    pub id: String,
    pub name: String,
    pub issuer: String,
    pub audience: Vec<String>,
}

/// A stage.
#[derive(Clone, Debug, PartialEq)]
pub struct Stage {
    pub name: String,
    pub auto_deploy: bool,
    pub tags: BTreeMap<String, String>,
}

/// API Gateway v2 calls.
#[derive(Clone)]
pub struct ApiGateway {
    client: Client,
}

fn tags_of(tags: Option<&std::collections::HashMap<String, String>>) -> BTreeMap<String, String> {
    tags.map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default()
}

fn route_target(integration_id: &str) -> String {
    format!("integrations/{integration_id}")
}

impl ApiGateway {
    pub fn new(config: &aws_types::SdkConfig, interceptors: &[SharedInterceptor]) -> Self {
        let mut builder = aws_sdk_apigatewayv2::config::Builder::from(config);
        for interceptor in interceptors {
            builder.push_interceptor(interceptor.clone());
        }
        builder.set_retry_partition(Some(super::retry_partition("apigateway")));
        Self {
            client: Client::from_conf(builder.build()),
        }
    }

    /// The ARN API Gateway's tagging calls take for an API.
    pub fn api_arn(region: &str, partition: &str, api_id: &str) -> String {
        format!("arn:{partition}:apigateway:{region}::/apis/{api_id}")
    }

    // --- APIs --------------------------------------------------------------------------

    pub async fn create_api(
        &self,
        name: &str,
        tags: &BTreeMap<String, String>,
    ) -> AwsResult<HttpApi> {
        let out = self
            .client
            .create_api()
            .name(name)
            .protocol_type(ProtocolType::Http)
            .set_tags(Some(tags.clone().into_iter().collect()))
            .send()
            .await
            .map_err(err("CreateApi"))?;
        Ok(HttpApi {
            id: out.api_id().unwrap_or_default().to_owned(),
            name: out.name().unwrap_or_default().to_owned(),
            endpoint: out.api_endpoint().unwrap_or_default().to_owned(),
            tags: tags_of(out.tags()),
        })
    }

    /// The API with this id, or None when it does not exist.
    pub async fn get_api(&self, id: &str) -> AwsResult<Option<HttpApi>> {
        match self.client.get_api().api_id(id).send().await {
            Ok(out) => Ok(Some(HttpApi {
                id: out.api_id().unwrap_or(id).to_owned(),
                name: out.name().unwrap_or_default().to_owned(),
                endpoint: out.api_endpoint().unwrap_or_default().to_owned(),
                tags: tags_of(out.tags()),
            })),
            Err(e) => not_found_is_none(AwsError::from_sdk(SERVICE, "GetApi", e)),
        }
    }

    /// Every HTTP API in the account and region.
    pub async fn list_apis(&self) -> AwsResult<Vec<HttpApi>> {
        let mut found = Vec::new();
        let mut token = None;
        loop {
            let out = self
                .client
                .get_apis()
                .max_results(PAGE_SIZE)
                .set_next_token(token)
                .send()
                .await
                .map_err(err("GetApis"))?;
            found.extend(out.items().iter().map(|a| HttpApi {
                id: a.api_id().unwrap_or_default().to_owned(),
                name: a.name().unwrap_or_default().to_owned(),
                endpoint: a.api_endpoint().unwrap_or_default().to_owned(),
                tags: tags_of(a.tags()),
            }));
            token = out.next_token().map(str::to_owned);
            if token.is_none() {
                return Ok(found);
            }
        }
    }

    /// Every API named `name` (names are not unique in API Gateway).
    pub async fn find_apis_by_name(&self, name: &str) -> AwsResult<Vec<HttpApi>> {
        let mut apis = self.list_apis().await?;
        apis.retain(|a| a.name == name);
        Ok(apis)
    }

    pub async fn delete_api(&self, id: &str) -> AwsResult<()> {
        self.client
            .delete_api()
            .api_id(id)
            .send()
            .await
            .map(drop)
            .map_err(err("DeleteApi"))
    }

    pub async fn tag_api(&self, arn: &str, tags: &BTreeMap<String, String>) -> AwsResult<()> {
        self.client
            .tag_resource()
            .resource_arn(arn)
            .set_tags(Some(tags.clone().into_iter().collect()))
            .send()
            .await
            .map(drop)
            .map_err(err("TagResource"))
    }

    // --- integrations ------------------------------------------------------------------

    pub async fn list_integrations(&self, api_id: &str) -> AwsResult<Vec<Integration>> {
        let mut found = Vec::new();
        let mut token = None;
        loop {
            let out = self
                .client
                .get_integrations()
                .api_id(api_id)
                .max_results(PAGE_SIZE)
                .set_next_token(token)
                .send()
                .await
                .map_err(err("GetIntegrations"))?;
            found.extend(out.items().iter().map(|i| Integration {
                id: i.integration_id().unwrap_or_default().to_owned(),
                target: match (i.integration_type(), i.integration_uri()) {
                    (Some(IntegrationType::AwsProxy), Some(uri)) => {
                        Some(IntegrationTarget::Lambda {
                            function_arn: uri.to_owned(),
                            payload_format_version:
                                i.payload_format_version().unwrap_or("1.0").to_owned(),
                        })
                    }
                    (Some(IntegrationType::HttpProxy), Some(uri)) => {
                        Some(IntegrationTarget::Http {
                            url: uri.to_owned(),
                            method: i.integration_method().unwrap_or("ANY").to_owned(),
                        })
                    }
                    _ => None,
                },
            }));
            token = out.next_token().map(str::to_owned);
            if token.is_none() {
                return Ok(found);
            }
        }
    }

    pub async fn create_integration(
        &self,
        api_id: &str,
        target: &IntegrationTarget,
    ) -> AwsResult<String> {
        let call = self.client.create_integration().api_id(api_id);
        let call = match target {
            IntegrationTarget::Lambda {
                function_arn,
                payload_format_version,
            } => call
                .integration_type(IntegrationType::AwsProxy)
                .integration_uri(function_arn)
                .payload_format_version(payload_format_version),
            IntegrationTarget::Http { url, method } => call
                .integration_type(IntegrationType::HttpProxy)
                .integration_uri(url)
                .integration_method(method)
                .payload_format_version("1.0"),
        };
        let out = call.send().await.map_err(err("CreateIntegration"))?;
        Ok(out.integration_id().unwrap_or_default().to_owned())
    }

    pub async fn delete_integration(&self, api_id: &str, id: &str) -> AwsResult<()> {
        self.client
            .delete_integration()
            .api_id(api_id)
            .integration_id(id)
            .send()
            .await
            .map(drop)
            .map_err(err("DeleteIntegration"))
    }

    // --- routes ------------------------------------------------------------------------

    pub async fn list_routes(&self, api_id: &str) -> AwsResult<Vec<Route>> {
        let mut found = Vec::new();
        let mut token = None;
        loop {
            let out = self
                .client
                .get_routes()
                .api_id(api_id)
                .max_results(PAGE_SIZE)
                .set_next_token(token)
                .send()
                .await
                .map_err(err("GetRoutes"))?;
            found.extend(out.items().iter().map(|r| {
                Route {
                    id: r.route_id().unwrap_or_default().to_owned(),
                    key: r.route_key().unwrap_or_default().to_owned(),
                    integration_id: r
                        .target()
                        .and_then(|t| t.strip_prefix("integrations/"))
                        .map(str::to_owned),
                    auth: match r.authorization_type() {
                        Some(AuthorizationType::AwsIam) => RouteAuth::Iam,
                        Some(AuthorizationType::Jwt) => RouteAuth::Jwt {
                            authorizer_id: r.authorizer_id().unwrap_or_default().to_owned(),
                            scopes: r.authorization_scopes().to_vec(),
                        },
                        _ => RouteAuth::None,
                    },
                }
            }));
            token = out.next_token().map(str::to_owned);
            if token.is_none() {
                return Ok(found);
            }
        }
    }

    /// Create a route. The authorization type is always sent, NONE included.
    pub async fn create_route(
        &self,
        api_id: &str,
        key: &str,
        integration_id: &str,
        auth: &RouteAuth,
    ) -> AwsResult<String> {
        let call = self
            .client
            .create_route()
            .api_id(api_id)
            .route_key(key)
            .target(route_target(integration_id));
        let call = match auth {
            RouteAuth::None => call.authorization_type(AuthorizationType::None),
            RouteAuth::Iam => call.authorization_type(AuthorizationType::AwsIam),
            RouteAuth::Jwt {
                authorizer_id,
                scopes,
            } => call
                .authorization_type(AuthorizationType::Jwt)
                .authorizer_id(authorizer_id)
                .set_authorization_scopes((!scopes.is_empty()).then(|| scopes.clone())),
        };
        let out = call.send().await.map_err(err("CreateRoute"))?;
        Ok(out.route_id().unwrap_or_default().to_owned())
    }

    /// Update a route's target and authorization. The authorization type is always sent:
    /// API Gateway keeps an old AWS_IAM otherwise.
    pub async fn update_route(
        &self,
        api_id: &str,
        route_id: &str,
        integration_id: &str,
        auth: &RouteAuth,
    ) -> AwsResult<()> {
        let call = self
            .client
            .update_route()
            .api_id(api_id)
            .route_id(route_id)
            .target(route_target(integration_id));
        let call = match auth {
            RouteAuth::None => call
                .authorization_type(AuthorizationType::None)
                .authorizer_id("")
                .set_authorization_scopes(Some(Vec::new())),
            RouteAuth::Iam => call
                .authorization_type(AuthorizationType::AwsIam)
                .authorizer_id("")
                .set_authorization_scopes(Some(Vec::new())),
            RouteAuth::Jwt {
                authorizer_id,
                scopes,
            } => call
                .authorization_type(AuthorizationType::Jwt)
                .authorizer_id(authorizer_id)
                .set_authorization_scopes(Some(scopes.clone())),
        };
        call.send().await.map(drop).map_err(err("UpdateRoute"))
    }

    pub async fn delete_route(&self, api_id: &str, route_id: &str) -> AwsResult<()> {
        self.client
            .delete_route()
            .api_id(api_id)
            .route_id(route_id)
            .send()
            .await
            .map(drop)
            .map_err(err("DeleteRoute"))
    }

    // --- JWT authorizers -------------------------------------------------------------------

    pub async fn list_authorizers(&self, api_id: &str) -> AwsResult<Vec<JwtAuthorizer>> {
        let mut found = Vec::new();
        let mut token = None;
        loop {
            let out = self
                .client
                .get_authorizers()
                .api_id(api_id)
                .max_results(PAGE_SIZE)
                .set_next_token(token)
                .send()
                .await
                .map_err(err("GetAuthorizers"))?;
            found.extend(out.items().iter().map(|a| {
                JwtAuthorizer {
                    id: a.authorizer_id().unwrap_or_default().to_owned(),
                    name: a.name().unwrap_or_default().to_owned(),
                    issuer: a
                        .jwt_configuration()
                        .and_then(|j| j.issuer())
                        .unwrap_or_default()
                        .to_owned(),
                    audience: a
                        .jwt_configuration()
                        .map(|j| j.audience().to_vec())
                        .unwrap_or_default(),
                }
            }));
            token = out.next_token().map(str::to_owned);
            if token.is_none() {
                return Ok(found);
            }
        }
    }

    pub async fn create_jwt_authorizer(
        &self,
        api_id: &str,
        name: &str,
        issuer: &str,
        audience: &[String],
    ) -> AwsResult<String> {
        let out = self
            .client
            .create_authorizer()
            .api_id(api_id)
            .name(name)
            .authorizer_type(AuthorizerType::Jwt)
            .identity_source(JWT_IDENTITY_SOURCE)
            .jwt_configuration(
                JwtConfiguration::builder()
                    .issuer(issuer)
                    .set_audience(Some(audience.to_vec()))
                    .build(),
            )
            .send()
            .await
            .map_err(err("CreateAuthorizer"))?;
        Ok(out.authorizer_id().unwrap_or_default().to_owned())
    }

    pub async fn update_jwt_authorizer(
        &self,
        api_id: &str,
        id: &str,
        issuer: &str,
        audience: &[String],
    ) -> AwsResult<()> {
        self.client
            .update_authorizer()
            .api_id(api_id)
            .authorizer_id(id)
            .authorizer_type(AuthorizerType::Jwt)
            .identity_source(JWT_IDENTITY_SOURCE)
            .jwt_configuration(
                JwtConfiguration::builder()
                    .issuer(issuer)
                    .set_audience(Some(audience.to_vec()))
                    .build(),
            )
            .send()
            .await
            .map(drop)
            .map_err(err("UpdateAuthorizer"))
    }

    pub async fn delete_authorizer(&self, api_id: &str, id: &str) -> AwsResult<()> {
        self.client
            .delete_authorizer()
            .api_id(api_id)
            .authorizer_id(id)
            .send()
            .await
            .map(drop)
            .map_err(err("DeleteAuthorizer"))
    }

    // --- the $default stage ----------------------------------------------------------------

    pub async fn get_stage(&self, api_id: &str, name: &str) -> AwsResult<Option<Stage>> {
        match self
            .client
            .get_stage()
            .api_id(api_id)
            .stage_name(name)
            .send()
            .await
        {
            Ok(out) => Ok(Some(Stage {
                name: out.stage_name().unwrap_or(name).to_owned(),
                auto_deploy: out.auto_deploy().unwrap_or(false),
                tags: tags_of(out.tags()),
            })),
            Err(e) => not_found_is_none(AwsError::from_sdk(SERVICE, "GetStage", e)),
        }
    }

    /// Create a stage with auto-deploy on (and so no deployment id).
    pub async fn create_stage(
        &self,
        api_id: &str,
        name: &str,
        tags: &BTreeMap<String, String>,
    ) -> AwsResult<()> {
        self.client
            .create_stage()
            .api_id(api_id)
            .stage_name(name)
            .auto_deploy(true)
            .set_tags(Some(tags.clone().into_iter().collect()))
            .send()
            .await
            .map(drop)
            .map_err(err("CreateStage"))
    }

    pub async fn enable_auto_deploy(&self, api_id: &str, name: &str) -> AwsResult<()> {
        self.client
            .update_stage()
            .api_id(api_id)
            .stage_name(name)
            .auto_deploy(true)
            .send()
            .await
            .map(drop)
            .map_err(err("UpdateStage"))
    }

    pub async fn delete_stage(&self, api_id: &str, name: &str) -> AwsResult<()> {
        self.client
            .delete_stage()
            .api_id(api_id)
            .stage_name(name)
            .send()
            .await
            .map(drop)
            .map_err(err("DeleteStage"))
    }
}

/// Turn "not found" into `Ok(None)`; pass every other error on.
pub(crate) fn not_found_is_none<T>(e: AwsError) -> AwsResult<Option<T>> {
    if e.is_not_found() { Ok(None) } else { Err(e) }
}
