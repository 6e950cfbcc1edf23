//! API Gateway v2 (HTTP APIs): the API, its integrations, routes, authorizers and the
//! `$default` stage. Every call goes through here; results come back as plain types.

use crate::operations::Call;
use std::collections::BTreeMap;

use aws_sdk_apigatewayv2::Client;
use aws_sdk_apigatewayv2::types::{
    AuthorizationType, AuthorizerType, ConnectionType, IntegrationType, JwtConfiguration,
    ProtocolType, TlsConfigInput,
};
use aws_smithy_runtime_api::client::interceptors::SharedInterceptor;

use super::error::{AwsError, AwsResult, not_found_is_none, sdk_err};

const SERVICE: &str = "apigateway";
/// The stage every AuthedApi serves on: no stage segment in the URL, deployed on change.
pub const DEFAULT_STAGE: &str = "$default";
/// Where API Gateway finds the caller's token for a JWT authorizer.
pub const JWT_IDENTITY_SOURCE: &str = "$request.header.Authorization";
const PAGE_SIZE: &str = "100";

/// An HTTP API as AWS reports it.
#[derive(Clone, Debug, PartialEq)]
pub struct HttpApi {
    pub id: String,
    pub name: String,
    pub endpoint: String,
    pub tags: BTreeMap<String, String>,
    pub cors: Option<CorsConfig>,
    pub disable_execute_api_endpoint: bool,
}

/// CORS settings of an API. Lists are kept sorted, so equal settings compare equal.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CorsConfig {
    pub allow_origins: Vec<String>,
    pub allow_methods: Vec<String>,
    pub allow_headers: Vec<String>,
    pub expose_headers: Vec<String>,
    pub allow_credentials: bool,
    pub max_age: Option<i32>,
}

impl CorsConfig {
    /// The same settings with every list sorted and de-duplicated.
    pub fn normalized(mut self) -> Self {
        for list in [
            &mut self.allow_origins,
            &mut self.allow_methods,
            &mut self.allow_headers,
            &mut self.expose_headers,
        ] {
            list.sort();
            list.dedup();
        }
        self
    }

    fn of(cors: &aws_sdk_apigatewayv2::types::Cors) -> Self {
        CorsConfig {
            allow_origins: cors.allow_origins().to_vec(),
            allow_methods: cors.allow_methods().to_vec(),
            allow_headers: cors.allow_headers().to_vec(),
            expose_headers: cors.expose_headers().to_vec(),
            allow_credentials: cors.allow_credentials().unwrap_or(false),
            max_age: cors.max_age(),
        }
        .normalized()
    }

    fn to_sdk(&self) -> aws_sdk_apigatewayv2::types::Cors {
        aws_sdk_apigatewayv2::types::Cors::builder()
            .set_allow_origins(Some(self.allow_origins.clone()))
            .set_allow_methods(Some(self.allow_methods.clone()))
            .set_allow_headers(Some(self.allow_headers.clone()))
            .set_expose_headers(Some(self.expose_headers.clone()))
            .allow_credentials(self.allow_credentials)
            .set_max_age(self.max_age)
            .build()
    }
}

/// Throttling of a stage's routes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Throttle {
    pub burst: i32,
    pub rate: f64,
}

impl Throttle {
    fn of(settings: &aws_sdk_apigatewayv2::types::RouteSettings) -> Option<Self> {
        Some(Throttle {
            burst: settings.throttling_burst_limit()?,
            rate: settings.throttling_rate_limit()?,
        })
    }

    fn to_sdk(throttle: Option<Throttle>) -> aws_sdk_apigatewayv2::types::RouteSettings {
        aws_sdk_apigatewayv2::types::RouteSettings::builder()
            .set_throttling_burst_limit(throttle.map(|t| t.burst))
            .set_throttling_rate_limit(throttle.map(|t| t.rate))
            .build()
    }
}

/// Access logging of a stage.
#[derive(Clone, Debug, PartialEq)]
pub struct AccessLogConfig {
    pub destination_arn: String,
    pub format: String,
}

/// The settings of a stage the operator manages.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StageSettings {
    pub default_throttle: Option<Throttle>,
    pub route_throttles: BTreeMap<String, Throttle>,
    pub access_log: Option<AccessLogConfig>,
}

fn api_of(
    id: &str,
    name: Option<&str>,
    endpoint: Option<&str>,
    tags: Option<&std::collections::HashMap<String, String>>,
    cors: Option<&aws_sdk_apigatewayv2::types::Cors>,
    disable_execute_api_endpoint: Option<bool>,
) -> HttpApi {
    HttpApi {
        id: id.to_owned(),
        name: name.unwrap_or_default().to_owned(),
        endpoint: endpoint.unwrap_or_default().to_owned(),
        tags: super::tag_map(tags),
        cors: cors.map(CorsConfig::of),
        disable_execute_api_endpoint: disable_execute_api_endpoint.unwrap_or(false),
    }
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
    /// HTTP_PROXY through a VPC link to an ALB/NLB listener or a Cloud Map service (its
    /// ARN), method ANY, with the TLS server name to verify when it is set.
    Private {
        uri: String,
        vpc_link_id: String,
        tls_server_name: Option<String>,
    },
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
    /// CUSTOM: a Lambda REQUEST authorizer.
    Custom {
        authorizer_id: String,
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

/// How API Gateway calls a Lambda REQUEST authorizer.
#[derive(Clone, Debug, PartialEq)]
pub struct LambdaAuthorizerConfig {
    /// arn:PARTITION:apigateway:REGION:lambda:path/2015-03-31/functions/FUNCTION/invocations
    pub uri: String,
    /// In order: their values are the cache key.
    pub identity_sources: Vec<String>,
    pub result_ttl_seconds: i32,
    pub simple_responses: bool,
    pub payload_format_version: String,
}

/// A Lambda REQUEST authorizer.
#[derive(Clone, Debug, PartialEq)]
pub struct RequestAuthorizer {
    pub id: String,
    pub name: String,
    pub config: LambdaAuthorizerConfig,
}

/// An authorizer of an API, of either type.
#[derive(Clone, Debug, PartialEq)]
pub enum Authorizer {
    Jwt(JwtAuthorizer),
    Request(RequestAuthorizer),
}

impl Authorizer {
    pub fn id(&self) -> &str {
        match self {
            Authorizer::Jwt(a) => &a.id,
            Authorizer::Request(a) => &a.id,
        }
    }

    pub fn as_jwt(&self) -> Option<&JwtAuthorizer> {
        match self {
            Authorizer::Jwt(a) => Some(a),
            Authorizer::Request(_) => None,
        }
    }

    pub fn as_request(&self) -> Option<&RequestAuthorizer> {
        match self {
            Authorizer::Request(a) => Some(a),
            Authorizer::Jwt(_) => None,
        }
    }
}

/// A stage.
#[derive(Clone, Debug, PartialEq)]
pub struct Stage {
    pub name: String,
    pub auto_deploy: bool,
    pub tags: BTreeMap<String, String>,
    pub settings: StageSettings,
}

/// API Gateway v2 calls.
#[derive(Clone)]
pub struct ApiGateway {
    pub(super) client: Client,
}

/// A REQUEST authorizer's settings on a CreateAuthorizer or UpdateAuthorizer call (two
/// builder types of one shape): everything is sent, so an update leaves nothing as it was.
macro_rules! request_settings {
    ($call:expr, $config:expr) => {
        $call
            .authorizer_type(AuthorizerType::Request)
            .authorizer_uri(&$config.uri)
            .set_identity_source(Some($config.identity_sources.clone()))
            .authorizer_result_ttl_in_seconds($config.result_ttl_seconds)
            .enable_simple_responses($config.simple_responses)
            .authorizer_payload_format_version(&$config.payload_format_version)
    };
}

/// An authorizer as GetAuthorizers reports it: REQUEST with its Lambda settings, any
/// other type as JWT.
fn authorizer_of(a: &aws_sdk_apigatewayv2::types::Authorizer) -> Authorizer {
    let id = a.authorizer_id().unwrap_or_default().to_owned();
    let name = a.name().unwrap_or_default().to_owned();
    if a.authorizer_type() == Some(&AuthorizerType::Request) {
        return Authorizer::Request(RequestAuthorizer {
            id,
            name,
            config: LambdaAuthorizerConfig {
                uri: a.authorizer_uri().unwrap_or_default().to_owned(),
                identity_sources: a.identity_source().to_vec(),
                result_ttl_seconds: a.authorizer_result_ttl_in_seconds().unwrap_or(0),
                simple_responses: a.enable_simple_responses().unwrap_or(false),
                payload_format_version: a
                    .authorizer_payload_format_version()
                    .unwrap_or_default()
                    .to_owned(),
            },
        });
    }
    let jwt = a.jwt_configuration();
    Authorizer::Jwt(JwtAuthorizer {
        id,
        name,
        issuer: jwt.and_then(|j| j.issuer()).unwrap_or_default().to_owned(),
        audience: jwt.map(|j| j.audience().to_vec()).unwrap_or_default(),
    })
}

fn route_target(integration_id: &str) -> String {
    format!("integrations/{integration_id}")
}

/// The API Gateway v2 management calls the operator makes: the SDK client below, or a fake in tests.
#[async_trait::async_trait]
pub trait ApiGatewayApi: Send + Sync {
    async fn create_api(&self, name: &str, tags: &BTreeMap<String, String>) -> AwsResult<HttpApi>;

    /// The API with this id, or None when it does not exist.
    async fn get_api(&self, id: &str) -> AwsResult<Option<HttpApi>>;

    /// Every HTTP API in the account and region.
    async fn list_apis(&self) -> AwsResult<Vec<HttpApi>>;

    /// Every API named `name` (names are not unique in API Gateway).
    async fn find_apis_by_name(&self, name: &str) -> AwsResult<Vec<HttpApi>>;

    async fn delete_api(&self, id: &str) -> AwsResult<()>;

    async fn list_integrations(&self, api_id: &str) -> AwsResult<Vec<Integration>>;

    async fn create_integration(
        &self,
        api_id: &str,
        target: &IntegrationTarget,
    ) -> AwsResult<String>;

    async fn delete_integration(&self, api_id: &str, id: &str) -> AwsResult<()>;

    async fn list_routes(&self, api_id: &str) -> AwsResult<Vec<Route>>;

    /// Create a route. The authorization type is always sent, NONE included.
    async fn create_route(
        &self,
        api_id: &str,
        key: &str,
        integration_id: &str,
        auth: &RouteAuth,
    ) -> AwsResult<String>;

    /// Update a route's target and authorization. The authorization type is always sent:
    /// API Gateway keeps an old AWS_IAM otherwise.
    async fn update_route(
        &self,
        api_id: &str,
        route_id: &str,
        integration_id: &str,
        auth: &RouteAuth,
    ) -> AwsResult<()>;

    async fn delete_route(&self, api_id: &str, route_id: &str) -> AwsResult<()>;

    /// Every authorizer of the API, JWT and REQUEST.
    async fn list_authorizers(&self, api_id: &str) -> AwsResult<Vec<Authorizer>>;

    async fn create_jwt_authorizer(
        &self,
        api_id: &str,
        name: &str,
        issuer: &str,
        audience: &[String],
    ) -> AwsResult<String>;

    async fn update_jwt_authorizer(
        &self,
        api_id: &str,
        id: &str,
        issuer: &str,
        audience: &[String],
    ) -> AwsResult<()>;

    async fn create_request_authorizer(
        &self,
        api_id: &str,
        name: &str,
        config: &LambdaAuthorizerConfig,
    ) -> AwsResult<String>;

    /// Set a REQUEST authorizer's function, identity sources, cache and response format.
    async fn update_request_authorizer(
        &self,
        api_id: &str,
        id: &str,
        config: &LambdaAuthorizerConfig,
    ) -> AwsResult<()>;

    async fn delete_authorizer(&self, api_id: &str, id: &str) -> AwsResult<()>;

    async fn get_stage(&self, api_id: &str, name: &str) -> AwsResult<Option<Stage>>;

    /// Create a stage with auto-deploy on (and so no deployment id) and `settings`.
    async fn create_stage(
        &self,
        api_id: &str,
        name: &str,
        tags: &BTreeMap<String, String>,
        settings: &StageSettings,
    ) -> AwsResult<()>;

    /// Bring a stage's settings from `current` to `wanted`: auto-deploy on, throttling and
    /// access logs as wanted (UpdateStage merges route settings, so removed ones are
    /// deleted one by one; removed access logs likewise).
    async fn update_stage_settings(
        &self,
        api_id: &str,
        name: &str,
        current: &StageSettings,
        wanted: &StageSettings,
    ) -> AwsResult<()>;

    /// Set the API's CORS and default-endpoint settings; `None` CORS deletes them.
    async fn update_api_settings(
        &self,
        api_id: &str,
        cors: Option<&CorsConfig>,
        had_cors: bool,
        disable_execute_api_endpoint: bool,
    ) -> AwsResult<()>;

    async fn delete_stage(&self, api_id: &str, name: &str) -> AwsResult<()>;
}

impl ApiGateway {
    /// The client for `account` (its own retry quota; "" for clients not tied to one).
    pub fn new(
        config: &aws_types::SdkConfig,
        interceptors: &[SharedInterceptor],
        account: &str,
    ) -> Self {
        Self {
            client: sdk_client!(
                aws_sdk_apigatewayv2,
                config,
                interceptors,
                "apigateway",
                account
            ),
        }
    }

    /// The ARN API Gateway's tagging calls take for an API.
    pub fn api_arn(partition: &str, region: &str, api_id: &str) -> String {
        format!("arn:{partition}:apigateway:{region}::/apis/{api_id}")
    }

    // --- APIs --------------------------------------------------------------------------
}

#[async_trait::async_trait]
impl ApiGatewayApi for ApiGateway {
    async fn create_api(&self, name: &str, tags: &BTreeMap<String, String>) -> AwsResult<HttpApi> {
        let out = self
            .client
            .create_api()
            .name(name)
            .protocol_type(ProtocolType::Http)
            .set_tags(Some(tags.clone().into_iter().collect()))
            .send()
            .await
            .map_err(sdk_err(SERVICE, Call::CreateApi))?;
        Ok(api_of(
            out.api_id().unwrap_or_default(),
            out.name(),
            out.api_endpoint(),
            out.tags(),
            out.cors_configuration(),
            out.disable_execute_api_endpoint(),
        ))
    }

    async fn get_api(&self, id: &str) -> AwsResult<Option<HttpApi>> {
        match self.client.get_api().api_id(id).send().await {
            Ok(out) => Ok(Some(api_of(
                out.api_id().unwrap_or(id),
                out.name(),
                out.api_endpoint(),
                out.tags(),
                out.cors_configuration(),
                out.disable_execute_api_endpoint(),
            ))),
            Err(e) => not_found_is_none(AwsError::from_sdk(SERVICE, Call::GetApi.name(), e)),
        }
    }

    async fn list_apis(&self) -> AwsResult<Vec<HttpApi>> {
        super::all_pages(|token| async move {
            let out = self
                .client
                .get_apis()
                .max_results(PAGE_SIZE)
                .set_next_token(token)
                .send()
                .await
                .map_err(sdk_err(SERVICE, Call::GetApis))?;
            let items = out
                .items()
                .iter()
                .map(|a| {
                    api_of(
                        a.api_id().unwrap_or_default(),
                        a.name(),
                        a.api_endpoint(),
                        a.tags(),
                        a.cors_configuration(),
                        a.disable_execute_api_endpoint(),
                    )
                })
                .collect();
            Ok((items, out.next_token().map(str::to_owned)))
        })
        .await
    }

    async fn find_apis_by_name(&self, name: &str) -> AwsResult<Vec<HttpApi>> {
        let mut apis = self.list_apis().await?;
        apis.retain(|a| a.name == name);
        Ok(apis)
    }

    async fn delete_api(&self, id: &str) -> AwsResult<()> {
        self.client
            .delete_api()
            .api_id(id)
            .send()
            .await
            .map(drop)
            .map_err(sdk_err(SERVICE, Call::DeleteApi))
    }

    // --- integrations ------------------------------------------------------------------

    async fn list_integrations(&self, api_id: &str) -> AwsResult<Vec<Integration>> {
        super::all_pages(|token| async move {
            let out = self
                .client
                .get_integrations()
                .api_id(api_id)
                .max_results(PAGE_SIZE)
                .set_next_token(token)
                .send()
                .await
                .map_err(sdk_err(SERVICE, Call::GetIntegrations))?;
            let items = out
                .items()
                .iter()
                .map(|i| Integration {
                    id: i.integration_id().unwrap_or_default().to_owned(),
                    target: match (i.integration_type(), i.integration_uri()) {
                        (Some(IntegrationType::AwsProxy), Some(uri)) => {
                            Some(IntegrationTarget::Lambda {
                                function_arn: uri.to_owned(),
                                payload_format_version: i
                                    .payload_format_version()
                                    .unwrap_or("1.0")
                                    .to_owned(),
                            })
                        }
                        (Some(IntegrationType::HttpProxy), Some(uri))
                            if i.connection_type() == Some(&ConnectionType::VpcLink) =>
                        {
                            Some(IntegrationTarget::Private {
                                uri: uri.to_owned(),
                                vpc_link_id: i.connection_id().unwrap_or_default().to_owned(),
                                tls_server_name: i
                                    .tls_config()
                                    .and_then(|t| t.server_name_to_verify())
                                    .map(str::to_owned),
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
                })
                .collect();
            Ok((items, out.next_token().map(str::to_owned)))
        })
        .await
    }

    async fn create_integration(
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
            IntegrationTarget::Private {
                uri,
                vpc_link_id,
                tls_server_name,
            } => call
                .integration_type(IntegrationType::HttpProxy)
                .connection_type(ConnectionType::VpcLink)
                .connection_id(vpc_link_id)
                .integration_uri(uri)
                .integration_method("ANY")
                .payload_format_version("1.0")
                .set_tls_config(tls_server_name.as_ref().map(|name| {
                    TlsConfigInput::builder()
                        .server_name_to_verify(name)
                        .build()
                })),
        };
        let out = call
            .send()
            .await
            .map_err(sdk_err(SERVICE, Call::CreateIntegration))?;
        Ok(out.integration_id().unwrap_or_default().to_owned())
    }

    async fn delete_integration(&self, api_id: &str, id: &str) -> AwsResult<()> {
        self.client
            .delete_integration()
            .api_id(api_id)
            .integration_id(id)
            .send()
            .await
            .map(drop)
            .map_err(sdk_err(SERVICE, Call::DeleteIntegration))
    }

    // --- routes ------------------------------------------------------------------------

    async fn list_routes(&self, api_id: &str) -> AwsResult<Vec<Route>> {
        super::all_pages(|token| async move {
            let out = self
                .client
                .get_routes()
                .api_id(api_id)
                .max_results(PAGE_SIZE)
                .set_next_token(token)
                .send()
                .await
                .map_err(sdk_err(SERVICE, Call::GetRoutes))?;
            let items = out
                .items()
                .iter()
                .map(|r| Route {
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
                        Some(AuthorizationType::Custom) => RouteAuth::Custom {
                            authorizer_id: r.authorizer_id().unwrap_or_default().to_owned(),
                        },
                        _ => RouteAuth::None,
                    },
                })
                .collect();
            Ok((items, out.next_token().map(str::to_owned)))
        })
        .await
    }

    async fn create_route(
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
            RouteAuth::Custom { authorizer_id } => call
                .authorization_type(AuthorizationType::Custom)
                .authorizer_id(authorizer_id),
        };
        let out = call
            .send()
            .await
            .map_err(sdk_err(SERVICE, Call::CreateRoute))?;
        Ok(out.route_id().unwrap_or_default().to_owned())
    }

    async fn update_route(
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
            RouteAuth::Custom { authorizer_id } => call
                .authorization_type(AuthorizationType::Custom)
                .authorizer_id(authorizer_id)
                .set_authorization_scopes(Some(Vec::new())),
        };
        call.send()
            .await
            .map(drop)
            .map_err(sdk_err(SERVICE, Call::UpdateRoute))
    }

    async fn delete_route(&self, api_id: &str, route_id: &str) -> AwsResult<()> {
        self.client
            .delete_route()
            .api_id(api_id)
            .route_id(route_id)
            .send()
            .await
            .map(drop)
            .map_err(sdk_err(SERVICE, Call::DeleteRoute))
    }

    // --- authorizers ------------------------------------------------------------------------

    async fn list_authorizers(&self, api_id: &str) -> AwsResult<Vec<Authorizer>> {
        super::all_pages(|token| async move {
            let out = self
                .client
                .get_authorizers()
                .api_id(api_id)
                .max_results(PAGE_SIZE)
                .set_next_token(token)
                .send()
                .await
                .map_err(sdk_err(SERVICE, Call::GetAuthorizers))?;
            let items = out.items().iter().map(authorizer_of).collect();
            Ok((items, out.next_token().map(str::to_owned)))
        })
        .await
    }

    async fn create_jwt_authorizer(
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
            .map_err(sdk_err(SERVICE, Call::CreateAuthorizer))?;
        Ok(out.authorizer_id().unwrap_or_default().to_owned())
    }

    async fn update_jwt_authorizer(
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
            .map_err(sdk_err(SERVICE, Call::UpdateAuthorizer))
    }

    async fn create_request_authorizer(
        &self,
        api_id: &str,
        name: &str,
        config: &LambdaAuthorizerConfig,
    ) -> AwsResult<String> {
        let call = self.client.create_authorizer().api_id(api_id).name(name);
        let out = request_settings!(call, config)
            .send()
            .await
            .map_err(sdk_err(SERVICE, Call::CreateAuthorizer))?;
        Ok(out.authorizer_id().unwrap_or_default().to_owned())
    }

    async fn update_request_authorizer(
        &self,
        api_id: &str,
        id: &str,
        config: &LambdaAuthorizerConfig,
    ) -> AwsResult<()> {
        let call = self
            .client
            .update_authorizer()
            .api_id(api_id)
            .authorizer_id(id);
        request_settings!(call, config)
            .send()
            .await
            .map(drop)
            .map_err(sdk_err(SERVICE, Call::UpdateAuthorizer))
    }

    async fn delete_authorizer(&self, api_id: &str, id: &str) -> AwsResult<()> {
        self.client
            .delete_authorizer()
            .api_id(api_id)
            .authorizer_id(id)
            .send()
            .await
            .map(drop)
            .map_err(sdk_err(SERVICE, Call::DeleteAuthorizer))
    }

    // --- the $default stage ----------------------------------------------------------------

    async fn get_stage(&self, api_id: &str, name: &str) -> AwsResult<Option<Stage>> {
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
                tags: super::tag_map(out.tags()),
                settings: StageSettings {
                    default_throttle: out.default_route_settings().and_then(Throttle::of),
                    route_throttles: out
                        .route_settings()
                        .map(|routes| {
                            routes
                                .iter()
                                .filter_map(|(k, v)| Some((k.clone(), Throttle::of(v)?)))
                                .collect()
                        })
                        .unwrap_or_default(),
                    access_log: out.access_log_settings().and_then(|a| {
                        Some(AccessLogConfig {
                            destination_arn: a.destination_arn()?.to_owned(),
                            format: a.format().unwrap_or_default().to_owned(),
                        })
                    }),
                },
            })),
            Err(e) => not_found_is_none(AwsError::from_sdk(SERVICE, Call::GetStage.name(), e)),
        }
    }

    async fn create_stage(
        &self,
        api_id: &str,
        name: &str,
        tags: &BTreeMap<String, String>,
        settings: &StageSettings,
    ) -> AwsResult<()> {
        self.client
            .create_stage()
            .api_id(api_id)
            .stage_name(name)
            .auto_deploy(true)
            .set_tags(Some(tags.clone().into_iter().collect()))
            .default_route_settings(Throttle::to_sdk(settings.default_throttle))
            .set_route_settings((!settings.route_throttles.is_empty()).then(|| {
                settings
                    .route_throttles
                    .iter()
                    .map(|(k, t)| (k.clone(), Throttle::to_sdk(Some(*t))))
                    .collect()
            }))
            .set_access_log_settings(settings.access_log.as_ref().map(access_log_to_sdk))
            .send()
            .await
            .map(drop)
            .map_err(sdk_err(SERVICE, Call::CreateStage))
    }

    async fn update_stage_settings(
        &self,
        api_id: &str,
        name: &str,
        current: &StageSettings,
        wanted: &StageSettings,
    ) -> AwsResult<()> {
        let changed_routes: std::collections::HashMap<String, _> = wanted
            .route_throttles
            .iter()
            .filter(|(k, t)| current.route_throttles.get(*k) != Some(t))
            .map(|(k, t)| (k.clone(), Throttle::to_sdk(Some(*t))))
            .collect();
        self.client
            .update_stage()
            .api_id(api_id)
            .stage_name(name)
            .auto_deploy(true)
            .default_route_settings(Throttle::to_sdk(wanted.default_throttle))
            .set_route_settings((!changed_routes.is_empty()).then_some(changed_routes))
            .set_access_log_settings(wanted.access_log.as_ref().map(access_log_to_sdk))
            .send()
            .await
            .map_err(sdk_err(SERVICE, Call::UpdateStage))?;
        for route in current.route_throttles.keys() {
            if !wanted.route_throttles.contains_key(route) {
                self.client
                    .delete_route_settings()
                    .api_id(api_id)
                    .stage_name(name)
                    .route_key(route)
                    .send()
                    .await
                    .map_err(sdk_err(SERVICE, Call::DeleteRouteSettings))?;
            }
        }
        if current.access_log.is_some() && wanted.access_log.is_none() {
            self.client
                .delete_access_log_settings()
                .api_id(api_id)
                .stage_name(name)
                .send()
                .await
                .map_err(sdk_err(SERVICE, Call::DeleteAccessLogSettings))?;
        }
        Ok(())
    }

    async fn update_api_settings(
        &self,
        api_id: &str,
        cors: Option<&CorsConfig>,
        had_cors: bool,
        disable_execute_api_endpoint: bool,
    ) -> AwsResult<()> {
        self.client
            .update_api()
            .api_id(api_id)
            .set_cors_configuration(cors.map(CorsConfig::to_sdk))
            .disable_execute_api_endpoint(disable_execute_api_endpoint)
            .send()
            .await
            .map_err(sdk_err(SERVICE, Call::UpdateApi))?;
        if cors.is_none() && had_cors {
            self.client
                .delete_cors_configuration()
                .api_id(api_id)
                .send()
                .await
                .map_err(sdk_err(SERVICE, Call::DeleteCorsConfiguration))?;
        }
        Ok(())
    }

    async fn delete_stage(&self, api_id: &str, name: &str) -> AwsResult<()> {
        self.client
            .delete_stage()
            .api_id(api_id)
            .stage_name(name)
            .send()
            .await
            .map(drop)
            .map_err(sdk_err(SERVICE, Call::DeleteStage))
    }
}

fn access_log_to_sdk(log: &AccessLogConfig) -> aws_sdk_apigatewayv2::types::AccessLogSettings {
    aws_sdk_apigatewayv2::types::AccessLogSettings::builder()
        .destination_arn(&log.destination_arn)
        .format(&log.format)
        .build()
}
