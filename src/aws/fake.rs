//! An in-memory AWS for the in-process reconcile tests: just enough of API Gateway,
//! Cognito, IAM and Lambda to drive every branch of every kind. It answers as the real
//! services do where the reconciler depends on it (NotFound for what is absent, Conflict
//! for a name IAM already has, ids it makes up), counts every write by operation, and
//! fails a chosen call once on request.
//!
//! A new kind's calls are added here, next to the trait they belong to.

use crate::operations::Call;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use serde_json::Value;

use super::apigateway::{
    ApiGatewayApi, Authorizer, CorsConfig, HttpApi, Integration, IntegrationTarget, JwtAuthorizer,
    LambdaAuthorizerConfig, RequestAuthorizer, Route, RouteAuth, Stage, StageSettings,
};
use super::cognito::{CognitoApi, IdentityPool, PoolRoles};
use super::domains::{ApiMapping, DomainName, DomainsApi};
use super::error::{AwsError, AwsResult, ErrorKind};
use super::iam::{IamApi, OidcProvider, Role};
use super::lambda::{APIGATEWAY_PRINCIPAL, LambdaApi, Permission};
use super::vpc_links::{VpcLink, VpcLinksApi};

/// An API with everything in it.
#[derive(Clone, Debug)]
pub struct FakeApi {
    pub api: HttpApi,
    pub integrations: Vec<Integration>,
    pub authorizers: Vec<Authorizer>,
    pub routes: Vec<Route>,
    pub stage: Option<Stage>,
}

/// Everything the fake holds; tests read and change it directly.
#[derive(Debug, Default)]
pub struct State {
    pub apis: BTreeMap<String, FakeApi>,
    pub pools: BTreeMap<String, IdentityPool>,
    pub pool_roles: BTreeMap<String, PoolRoles>,
    pub roles: BTreeMap<String, Role>,
    /// role -> policy name -> document.
    pub role_policies: BTreeMap<String, BTreeMap<String, Value>>,
    pub providers: BTreeMap<String, OidcProvider>,
    /// Custom domains by name, and the mappings on each.
    pub domains: BTreeMap<String, DomainName>,
    pub mappings: BTreeMap<String, Vec<ApiMapping>>,
    /// VPC links by id.
    pub vpc_links: BTreeMap<String, VpcLink>,
    /// Certificates API Gateway would take; any other is refused (BadRequestException).
    pub certificates: Vec<String>,
    /// function ARN -> its statements. A function not here does not exist.
    pub functions: BTreeMap<String, Vec<Permission>>,
    /// Writes made, by operation name.
    pub writes: BTreeMap<&'static str, usize>,
    /// Reads made, by operation name.
    pub reads: BTreeMap<&'static str, usize>,
    /// The next call of each operation named here fails with this error.
    pub failures: HashMap<&'static str, AwsError>,
    /// Every call of each operation named here fails with this error, until removed (a
    /// policy that refuses it, say).
    pub refused: HashMap<&'static str, AwsError>,
    /// Each role's permissions boundary.
    pub boundaries: BTreeMap<String, String>,
    /// The account this fake is (None: 123456789012).
    pub account: Option<String>,
    /// Issuers (host and path) whose OIDC providers the operator's IAM policy does not
    /// cover: every call on their provider is AccessDenied, as IAM answers it.
    pub denied_issuers: std::collections::BTreeSet<String>,
    next_id: u64,
}

impl State {
    fn id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}{:04}", self.next_id)
    }

    pub fn account(&self) -> String {
        self.account
            .clone()
            .unwrap_or_else(|| "123456789012".into())
    }

    pub fn writes_total(&self) -> usize {
        self.writes.values().sum()
    }

    pub fn api(&mut self, id: &str) -> AwsResult<&mut FakeApi> {
        self.apis
            .get_mut(id)
            .ok_or_else(|| not_found("apigateway", Call::GetApi.name(), format!("API {id}")))
    }
}

/// The fake services, sharing one [`State`].
#[derive(Clone, Debug, Default)]
pub struct FakeAws {
    pub state: Arc<Mutex<State>>,
}

pub fn not_found(service: &'static str, operation: &'static str, what: String) -> AwsError {
    AwsError {
        kind: ErrorKind::NotFound,
        service,
        operation,
        code: "NotFoundException".into(),
        message: format!("{what} not found"),
    }
}

impl FakeAws {
    /// A fake of the account `id`.
    pub fn in_account(id: &str) -> Self {
        let fake = Self::default();
        fake.state().account = Some(id.to_owned());
        fake
    }

    pub fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("fake state")
    }

    /// Make the next call of `operation` fail with `kind`.
    pub fn fail_next(&self, call: Call, kind: ErrorKind) {
        let operation = call.name();
        self.state().failures.insert(
            operation,
            AwsError {
                kind,
                service: "fake",
                operation,
                code: format!("{kind:?}"),
                message: format!("injected {kind:?}"),
            },
        );
    }

    /// The clients a reconcile uses, all backed by this fake.
    pub fn clients(&self) -> super::AwsClients {
        let config = aws_types::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_types::region::Region::new("us-east-1"))
            .build();
        super::AwsClients {
            apigateway: Arc::new(self.clone()),
            domains: Arc::new(self.clone()),
            vpc_links: Arc::new(self.clone()),
            cognito: Arc::new(self.clone()),
            iam: Arc::new(self.clone()),
            lambda: Arc::new(self.clone()),
            sts: super::sts::Sts::new(&config, &[], ""),
        }
    }

    /// Count a call and take the failure injected for it, if any.
    fn call(&self, operation: &'static str, write: bool) -> AwsResult<MutexGuard<'_, State>> {
        let mut state = self.state();
        if let Some(e) = state.failures.remove(operation) {
            return Err(e);
        }
        if let Some(e) = state.refused.get(operation) {
            return Err(e.clone());
        }
        let counts = if write {
            &mut state.writes
        } else {
            &mut state.reads
        };
        *counts.entry(operation).or_default() += 1;
        Ok(state)
    }

    /// AccessDenied when the operator's policy does not cover the provider `arn`.
    fn provider_allowed(&self, operation: &'static str, arn: &str) -> AwsResult<()> {
        let name = arn.split_once(":oidc-provider/").map_or(arn, |(_, n)| n);
        if self.state().denied_issuers.contains(name) {
            return Err(AwsError {
                kind: ErrorKind::AccessDenied,
                service: "iam",
                operation,
                code: "AccessDenied".into(),
                message: format!("not authorized to perform: iam:{operation} on resource: {arn}"),
            });
        }
        Ok(())
    }

    fn read(&self, operation: &'static str) -> AwsResult<MutexGuard<'_, State>> {
        self.call(operation, false)
    }

    fn write(&self, operation: &'static str) -> AwsResult<MutexGuard<'_, State>> {
        self.call(operation, true)
    }
}

#[async_trait::async_trait]
impl ApiGatewayApi for FakeAws {
    async fn create_api(&self, name: &str, tags: &BTreeMap<String, String>) -> AwsResult<HttpApi> {
        let mut s = self.write(Call::CreateApi.name())?;
        let id = s.id("api");
        let api = HttpApi {
            id: id.clone(),
            name: name.to_owned(),
            endpoint: format!("https://{id}.execute-api.us-east-1.amazonaws.com"),
            tags: tags.clone(),
            cors: None,
            disable_execute_api_endpoint: false,
        };
        s.apis.insert(
            id,
            FakeApi {
                api: api.clone(),
                integrations: Vec::new(),
                authorizers: Vec::new(),
                routes: Vec::new(),
                stage: None,
            },
        );
        Ok(api)
    }

    async fn get_api(&self, id: &str) -> AwsResult<Option<HttpApi>> {
        Ok(self
            .read(Call::GetApi.name())?
            .apis
            .get(id)
            .map(|a| a.api.clone()))
    }

    async fn list_apis(&self) -> AwsResult<Vec<HttpApi>> {
        Ok(self
            .read(Call::GetApis.name())?
            .apis
            .values()
            .map(|a| a.api.clone())
            .collect())
    }

    async fn find_apis_by_name(&self, name: &str) -> AwsResult<Vec<HttpApi>> {
        let s = self.read(Call::GetApis.name())?;
        Ok(s.apis
            .values()
            .filter(|a| a.api.name == name)
            .map(|a| a.api.clone())
            .collect())
    }

    async fn delete_api(&self, id: &str) -> AwsResult<()> {
        let mut s = self.write(Call::DeleteApi.name())?;
        s.apis
            .remove(id)
            .map(drop)
            .ok_or_else(|| not_found("apigateway", Call::DeleteApi.name(), format!("API {id}")))
    }

    async fn list_integrations(&self, api_id: &str) -> AwsResult<Vec<Integration>> {
        Ok(self
            .read(Call::GetIntegrations.name())?
            .api(api_id)?
            .integrations
            .clone())
    }

    async fn create_integration(
        &self,
        api_id: &str,
        target: &IntegrationTarget,
    ) -> AwsResult<String> {
        let mut s = self.write(Call::CreateIntegration.name())?;
        if let IntegrationTarget::Private { vpc_link_id, .. } = target
            && !s.vpc_links.contains_key(vpc_link_id)
        {
            return Err(AwsError {
                kind: ErrorKind::Invalid,
                service: "apigateway",
                operation: Call::CreateIntegration.name(),
                code: "BadRequestException".into(),
                message: format!("Invalid VPC link identifier specified: {vpc_link_id}"),
            });
        }
        let id = s.id("int");
        s.api(api_id)?.integrations.push(Integration {
            id: id.clone(),
            target: Some(target.clone()),
        });
        Ok(id)
    }

    async fn delete_integration(&self, api_id: &str, id: &str) -> AwsResult<()> {
        let mut s = self.write(Call::DeleteIntegration.name())?;
        s.api(api_id)?.integrations.retain(|i| i.id != id);
        Ok(())
    }

    async fn list_routes(&self, api_id: &str) -> AwsResult<Vec<Route>> {
        Ok(self
            .read(Call::GetRoutes.name())?
            .api(api_id)?
            .routes
            .clone())
    }

    async fn create_route(
        &self,
        api_id: &str,
        key: &str,
        integration_id: &str,
        auth: &RouteAuth,
    ) -> AwsResult<String> {
        let mut s = self.write(Call::CreateRoute.name())?;
        let id = s.id("rt");
        let api = s.api(api_id)?;
        if api.routes.iter().any(|r| r.key == key) {
            return Err(AwsError {
                kind: ErrorKind::Conflict,
                service: "apigateway",
                operation: Call::CreateRoute.name(),
                code: "ConflictException".into(),
                message: format!("route {key} exists"),
            });
        }
        api.routes.push(Route {
            id: id.clone(),
            key: key.to_owned(),
            integration_id: Some(integration_id.to_owned()),
            auth: auth.clone(),
        });
        Ok(id)
    }

    async fn update_route(
        &self,
        api_id: &str,
        route_id: &str,
        integration_id: &str,
        auth: &RouteAuth,
    ) -> AwsResult<()> {
        let mut s = self.write(Call::UpdateRoute.name())?;
        let route = s
            .api(api_id)?
            .routes
            .iter_mut()
            .find(|r| r.id == route_id)
            .ok_or_else(|| {
                not_found("apigateway", Call::UpdateRoute.name(), route_id.to_owned())
            })?;
        route.integration_id = Some(integration_id.to_owned());
        route.auth = auth.clone();
        Ok(())
    }

    async fn delete_route(&self, api_id: &str, route_id: &str) -> AwsResult<()> {
        let mut s = self.write(Call::DeleteRoute.name())?;
        s.api(api_id)?.routes.retain(|r| r.id != route_id);
        Ok(())
    }

    async fn list_authorizers(&self, api_id: &str) -> AwsResult<Vec<Authorizer>> {
        Ok(self
            .read(Call::GetAuthorizers.name())?
            .api(api_id)?
            .authorizers
            .clone())
    }

    async fn create_jwt_authorizer(
        &self,
        api_id: &str,
        name: &str,
        issuer: &str,
        audience: &[String],
    ) -> AwsResult<String> {
        let mut s = self.write(Call::CreateAuthorizer.name())?;
        let id = s.id("au");
        s.api(api_id)?
            .authorizers
            .push(Authorizer::Jwt(JwtAuthorizer {
                id: id.clone(),
                name: name.to_owned(),
                issuer: issuer.to_owned(),
                audience: audience.to_vec(),
            }));
        Ok(id)
    }

    async fn update_jwt_authorizer(
        &self,
        api_id: &str,
        id: &str,
        issuer: &str,
        audience: &[String],
    ) -> AwsResult<()> {
        let mut s = self.write(Call::UpdateAuthorizer.name())?;
        if let Some(Authorizer::Jwt(a)) =
            s.api(api_id)?.authorizers.iter_mut().find(|a| a.id() == id)
        {
            a.issuer = issuer.to_owned();
            a.audience = audience.to_vec();
        }
        Ok(())
    }

    async fn create_request_authorizer(
        &self,
        api_id: &str,
        name: &str,
        config: &LambdaAuthorizerConfig,
    ) -> AwsResult<String> {
        let mut s = self.write(Call::CreateAuthorizer.name())?;
        let id = s.id("au");
        s.api(api_id)?
            .authorizers
            .push(Authorizer::Request(RequestAuthorizer {
                id: id.clone(),
                name: name.to_owned(),
                config: config.clone(),
            }));
        Ok(id)
    }

    async fn update_request_authorizer(
        &self,
        api_id: &str,
        id: &str,
        config: &LambdaAuthorizerConfig,
    ) -> AwsResult<()> {
        let mut s = self.write(Call::UpdateAuthorizer.name())?;
        match s.api(api_id)?.authorizers.iter_mut().find(|a| a.id() == id) {
            Some(Authorizer::Request(a)) => {
                a.config = config.clone();
                Ok(())
            }
            _ => Err(not_found(
                "apigateway",
                Call::UpdateAuthorizer.name(),
                id.to_owned(),
            )),
        }
    }

    async fn delete_authorizer(&self, api_id: &str, id: &str) -> AwsResult<()> {
        let mut s = self.write(Call::DeleteAuthorizer.name())?;
        s.api(api_id)?.authorizers.retain(|a| a.id() != id);
        Ok(())
    }

    async fn get_stage(&self, api_id: &str, _name: &str) -> AwsResult<Option<Stage>> {
        Ok(self.read(Call::GetStage.name())?.api(api_id)?.stage.clone())
    }

    async fn create_stage(
        &self,
        api_id: &str,
        name: &str,
        tags: &BTreeMap<String, String>,
        settings: &StageSettings,
    ) -> AwsResult<()> {
        let mut s = self.write(Call::CreateStage.name())?;
        s.api(api_id)?.stage = Some(Stage {
            name: name.to_owned(),
            auto_deploy: true,
            tags: tags.clone(),
            settings: settings.clone(),
        });
        Ok(())
    }

    async fn update_stage_settings(
        &self,
        api_id: &str,
        _name: &str,
        _current: &StageSettings,
        wanted: &StageSettings,
    ) -> AwsResult<()> {
        let mut s = self.write(Call::UpdateStage.name())?;
        if let Some(stage) = &mut s.api(api_id)?.stage {
            stage.auto_deploy = true;
            stage.settings = wanted.clone();
        }
        Ok(())
    }

    async fn update_api_settings(
        &self,
        api_id: &str,
        cors: Option<&CorsConfig>,
        _had_cors: bool,
        disable_execute_api_endpoint: bool,
    ) -> AwsResult<()> {
        let mut s = self.write(Call::UpdateApi.name())?;
        let api = &mut s.api(api_id)?.api;
        api.cors = cors.cloned();
        api.disable_execute_api_endpoint = disable_execute_api_endpoint;
        Ok(())
    }

    async fn delete_stage(&self, api_id: &str, _name: &str) -> AwsResult<()> {
        let mut s = self.write(Call::DeleteStage.name())?;
        s.api(api_id)?.stage = None;
        Ok(())
    }
}

#[async_trait::async_trait]
impl DomainsApi for FakeAws {
    async fn get_domain_name(&self, name: &str) -> AwsResult<Option<DomainName>> {
        Ok(self
            .read(Call::GetDomainName.name())?
            .domains
            .get(name)
            .cloned())
    }

    async fn create_domain_name(
        &self,
        name: &str,
        certificate_arn: &str,
        tags: &BTreeMap<String, String>,
    ) -> AwsResult<DomainName> {
        let mut s = self.write(Call::CreateDomainName.name())?;
        if s.domains.contains_key(name) {
            return Err(conflict(
                Call::CreateDomainName.name(),
                format!("domain {name} exists"),
            ));
        }
        if !s.certificates.iter().any(|c| c == certificate_arn) {
            return Err(bad_certificate(
                Call::CreateDomainName.name(),
                certificate_arn,
            ));
        }
        let id = s.id("d-");
        let domain = DomainName {
            name: name.to_owned(),
            certificate_arn: certificate_arn.to_owned(),
            target: format!("{id}.execute-api.us-east-1.amazonaws.com"),
            hosted_zone_id: "Z1UJRXOUMOOFQ8".into(),
            tags: tags.clone(),
        };
        s.domains.insert(name.to_owned(), domain.clone());
        Ok(domain)
    }

    async fn set_domain_certificate(&self, name: &str, certificate_arn: &str) -> AwsResult<()> {
        let mut s = self.write(Call::UpdateDomainName.name())?;
        if !s.certificates.iter().any(|c| c == certificate_arn) {
            return Err(bad_certificate(
                Call::UpdateDomainName.name(),
                certificate_arn,
            ));
        }
        let domain = s.domains.get_mut(name).ok_or_else(|| {
            not_found(
                "apigateway",
                Call::UpdateDomainName.name(),
                format!("domain {name}"),
            )
        })?;
        domain.certificate_arn = certificate_arn.to_owned();
        Ok(())
    }

    async fn delete_domain_name(&self, name: &str) -> AwsResult<()> {
        let mut s = self.write(Call::DeleteDomainName.name())?;
        s.mappings.remove(name);
        s.domains.remove(name).map(drop).ok_or_else(|| {
            not_found(
                "apigateway",
                Call::DeleteDomainName.name(),
                format!("domain {name}"),
            )
        })
    }

    async fn list_api_mappings(&self, name: &str) -> AwsResult<Vec<ApiMapping>> {
        let s = self.read(Call::GetApiMappings.name())?;
        if !s.domains.contains_key(name) {
            return Err(not_found(
                "apigateway",
                Call::GetApiMappings.name(),
                format!("domain {name}"),
            ));
        }
        Ok(s.mappings.get(name).cloned().unwrap_or_default())
    }

    async fn create_api_mapping(
        &self,
        name: &str,
        api_id: &str,
        key: &str,
        stage: &str,
    ) -> AwsResult<ApiMapping> {
        let mut s = self.write(Call::CreateApiMapping.name())?;
        if !s.domains.contains_key(name) {
            return Err(not_found(
                "apigateway",
                Call::CreateApiMapping.name(),
                format!("domain {name}"),
            ));
        }
        if s.mappings
            .get(name)
            .is_some_and(|m| m.iter().any(|m| m.key == key))
        {
            return Err(conflict(
                Call::CreateApiMapping.name(),
                format!("key {key:?} is mapped"),
            ));
        }
        let mapping = ApiMapping {
            id: s.id("map"),
            key: key.to_owned(),
            api_id: api_id.to_owned(),
            stage: stage.to_owned(),
        };
        s.mappings
            .entry(name.to_owned())
            .or_default()
            .push(mapping.clone());
        Ok(mapping)
    }

    async fn delete_api_mapping(&self, name: &str, id: &str) -> AwsResult<()> {
        let mut s = self.write(Call::DeleteApiMapping.name())?;
        let mappings = s.mappings.entry(name.to_owned()).or_default();
        let before = mappings.len();
        mappings.retain(|m| m.id != id);
        if mappings.len() == before {
            return Err(not_found(
                "apigateway",
                Call::DeleteApiMapping.name(),
                format!("mapping {id}"),
            ));
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl VpcLinksApi for FakeAws {
    async fn create_vpc_link(
        &self,
        name: &str,
        subnet_ids: &[String],
        security_group_ids: &[String],
        tags: &BTreeMap<String, String>,
    ) -> AwsResult<VpcLink> {
        let mut s = self.write(Call::CreateVpcLink.name())?;
        let id = s.id("vpcl-");
        let mut link = VpcLink {
            id: id.clone(),
            name: name.to_owned(),
            subnet_ids: subnet_ids.to_vec(),
            security_group_ids: security_group_ids.to_vec(),
            status: "AVAILABLE".into(),
            tags: tags.clone(),
        };
        link.subnet_ids.sort();
        link.security_group_ids.sort();
        s.vpc_links.insert(id, link.clone());
        Ok(link)
    }

    async fn get_vpc_link(&self, id: &str) -> AwsResult<Option<VpcLink>> {
        Ok(self
            .read(Call::GetVpcLink.name())?
            .vpc_links
            .get(id)
            .cloned())
    }

    async fn list_vpc_links(&self) -> AwsResult<Vec<VpcLink>> {
        Ok(self
            .read(Call::GetVpcLinks.name())?
            .vpc_links
            .values()
            .cloned()
            .collect())
    }

    async fn rename_vpc_link(&self, id: &str, name: &str) -> AwsResult<()> {
        let mut s = self.write(Call::UpdateVpcLink.name())?;
        let link = s.vpc_links.get_mut(id).ok_or_else(|| {
            not_found(
                "apigateway",
                Call::UpdateVpcLink.name(),
                format!("VPC link {id}"),
            )
        })?;
        link.name = name.to_owned();
        Ok(())
    }

    /// Refused while an integration uses the link, as API Gateway refuses it.
    async fn delete_vpc_link(&self, id: &str) -> AwsResult<()> {
        let mut s = self.write(Call::DeleteVpcLink.name())?;
        let in_use = s.apis.values().flat_map(|a| &a.integrations).any(|i| {
            matches!(&i.target, Some(IntegrationTarget::Private { vpc_link_id, .. }) if vpc_link_id == id)
        });
        if in_use {
            return Err(AwsError {
                kind: ErrorKind::Invalid,
                service: "apigateway",
                operation: Call::DeleteVpcLink.name(),
                code: "BadRequestException".into(),
                message: format!("VPC link {id} is used by integrations"),
            });
        }
        s.vpc_links.remove(id).map(drop).ok_or_else(|| {
            not_found(
                "apigateway",
                Call::DeleteVpcLink.name(),
                format!("VPC link {id}"),
            )
        })
    }
}

fn conflict(operation: &'static str, message: String) -> AwsError {
    AwsError {
        kind: ErrorKind::Conflict,
        service: "apigateway",
        operation,
        code: "ConflictException".into(),
        message,
    }
}

fn bad_certificate(operation: &'static str, arn: &str) -> AwsError {
    AwsError {
        kind: ErrorKind::Invalid,
        service: "apigateway",
        operation,
        code: "BadRequestException".into(),
        message: format!("Certificate {arn} not found"),
    }
}

#[async_trait::async_trait]
impl CognitoApi for FakeAws {
    async fn create_identity_pool(&self, pool: &IdentityPool) -> AwsResult<IdentityPool> {
        let mut s = self.write(Call::CreateIdentityPool.name())?;
        let id = format!("us-east-1:{}", s.id("pool"));
        let pool = IdentityPool {
            id: id.clone(),
            ..pool.clone()
        };
        s.pools.insert(id, pool.clone());
        Ok(pool)
    }

    async fn describe_identity_pool(&self, id: &str) -> AwsResult<Option<IdentityPool>> {
        Ok(self
            .read(Call::DescribeIdentityPool.name())?
            .pools
            .get(id)
            .cloned())
    }

    async fn list_identity_pools(&self) -> AwsResult<Vec<(String, String)>> {
        let s = self.read(Call::ListIdentityPools.name())?;
        Ok(s.pools
            .values()
            .map(|p| (p.id.clone(), p.name.clone()))
            .collect())
    }

    async fn find_identity_pools_by_name(&self, name: &str) -> AwsResult<Vec<String>> {
        let s = self.read(Call::ListIdentityPools.name())?;
        Ok(s.pools
            .values()
            .filter(|p| p.name == name)
            .map(|p| p.id.clone())
            .collect())
    }

    async fn update_identity_pool(&self, pool: &IdentityPool) -> AwsResult<()> {
        let mut s = self.write(Call::UpdateIdentityPool.name())?;
        match s.pools.get_mut(&pool.id) {
            Some(current) => {
                *current = pool.clone();
                Ok(())
            }
            None => Err(not_found(
                "cognito-identity",
                Call::UpdateIdentityPool.name(),
                pool.id.clone(),
            )),
        }
    }

    async fn delete_identity_pool(&self, id: &str) -> AwsResult<()> {
        let mut s = self.write(Call::DeleteIdentityPool.name())?;
        s.pool_roles.remove(id);
        s.pools.remove(id).map(drop).ok_or_else(|| {
            not_found(
                "cognito-identity",
                Call::DeleteIdentityPool.name(),
                id.to_owned(),
            )
        })
    }

    async fn get_roles(&self, id: &str) -> AwsResult<PoolRoles> {
        Ok(self
            .read(Call::GetIdentityPoolRoles.name())?
            .pool_roles
            .get(id)
            .cloned()
            .unwrap_or_default())
    }

    async fn set_roles(&self, id: &str, roles: &PoolRoles) -> AwsResult<()> {
        let mut s = self.write(Call::SetIdentityPoolRoles.name())?;
        s.pool_roles.insert(id.to_owned(), roles.clone());
        Ok(())
    }

    async fn list_tags(&self, _arn: &str) -> AwsResult<BTreeMap<String, String>> {
        Ok(BTreeMap::new())
    }

    async fn tag(&self, _arn: &str, _tags: &BTreeMap<String, String>) -> AwsResult<()> {
        self.write(Call::TagResource.name()).map(drop)
    }

    async fn untag(&self, arn: &str, keys: &[String]) -> AwsResult<()> {
        let mut s = self.write(Call::UntagResource.name())?;
        let id = arn.rsplit('/').next().unwrap_or_default();
        let pool = s.pools.get_mut(id).ok_or_else(|| {
            not_found(
                "cognito-identity",
                Call::UntagResource.name(),
                arn.to_owned(),
            )
        })?;
        pool.tags.retain(|k, _| !keys.contains(k));
        Ok(())
    }
}

#[async_trait::async_trait]
impl IamApi for FakeAws {
    async fn get_role(&self, name: &str) -> AwsResult<Option<Role>> {
        Ok(self.read(Call::GetRole.name())?.roles.get(name).cloned())
    }

    async fn create_role(
        &self,
        path: &str,
        name: &str,
        trust_policy: &Value,
        _description: &str,
        tags: &BTreeMap<String, String>,
        boundary_arn: &str,
    ) -> AwsResult<Role> {
        let mut s = self.write(Call::CreateRole.name())?;
        if s.roles.contains_key(name) {
            return Err(AwsError {
                kind: ErrorKind::Conflict,
                service: "iam",
                operation: Call::CreateRole.name(),
                code: "EntityAlreadyExists".into(),
                message: format!("Role with name {name} already exists."),
            });
        }
        let role = Role {
            name: name.to_owned(),
            arn: format!("arn:aws:iam::{}:role{path}{name}", s.account()),
            trust_policy: trust_policy.clone(),
            tags: tags.clone(),
            created: Some(SystemTime::now()),
        };
        s.roles.insert(name.to_owned(), role.clone());
        s.boundaries
            .insert(name.to_owned(), boundary_arn.to_owned());
        Ok(role)
    }

    async fn update_trust_policy(&self, name: &str, trust_policy: &Value) -> AwsResult<()> {
        let mut s = self.write(Call::UpdateAssumeRolePolicy.name())?;
        let role = s.roles.get_mut(name).ok_or_else(|| {
            not_found("iam", Call::UpdateAssumeRolePolicy.name(), name.to_owned())
        })?;
        role.trust_policy = trust_policy.clone();
        Ok(())
    }

    async fn tag_role(&self, name: &str, tags: &BTreeMap<String, String>) -> AwsResult<()> {
        let mut s = self.write(Call::TagRole.name())?;
        let role = s
            .roles
            .get_mut(name)
            .ok_or_else(|| not_found("iam", Call::TagRole.name(), name.to_owned()))?;
        role.tags.extend(tags.clone());
        Ok(())
    }

    async fn untag_role(&self, name: &str, keys: &[String]) -> AwsResult<()> {
        let mut s = self.write(Call::UntagRole.name())?;
        let role = s
            .roles
            .get_mut(name)
            .ok_or_else(|| not_found("iam", Call::UntagRole.name(), name.to_owned()))?;
        role.tags.retain(|k, _| !keys.contains(k));
        Ok(())
    }

    async fn delete_role(&self, name: &str) -> AwsResult<()> {
        let mut s = self.write(Call::DeleteRole.name())?;
        if s.role_policies.get(name).is_some_and(|p| !p.is_empty()) {
            return Err(AwsError {
                kind: ErrorKind::Conflict,
                service: "iam",
                operation: Call::DeleteRole.name(),
                code: "DeleteConflict".into(),
                message: "Cannot delete entity, must delete policies first.".into(),
            });
        }
        s.roles
            .remove(name)
            .map(drop)
            .ok_or_else(|| not_found("iam", Call::DeleteRole.name(), name.to_owned()))
    }

    async fn get_role_policy(&self, role: &str, policy: &str) -> AwsResult<Option<Value>> {
        let s = self.read(Call::GetRolePolicy.name())?;
        Ok(s.role_policies
            .get(role)
            .and_then(|p| p.get(policy))
            .cloned())
    }

    async fn put_role_policy(&self, role: &str, policy: &str, document: &Value) -> AwsResult<()> {
        let mut s = self.write(Call::PutRolePolicy.name())?;
        if !s.roles.contains_key(role) {
            return Err(not_found(
                "iam",
                Call::PutRolePolicy.name(),
                role.to_owned(),
            ));
        }
        s.role_policies
            .entry(role.to_owned())
            .or_default()
            .insert(policy.to_owned(), document.clone());
        Ok(())
    }

    async fn list_role_policies(&self, role: &str) -> AwsResult<Vec<String>> {
        let s = self.read(Call::ListRolePolicies.name())?;
        Ok(s.role_policies
            .get(role)
            .map(|p| p.keys().cloned().collect())
            .unwrap_or_default())
    }

    async fn delete_role_policy(&self, role: &str, policy: &str) -> AwsResult<()> {
        let mut s = self.write(Call::DeleteRolePolicy.name())?;
        match s.role_policies.get_mut(role).and_then(|p| p.remove(policy)) {
            Some(_) => Ok(()),
            None => Err(not_found(
                "iam",
                Call::DeleteRolePolicy.name(),
                format!("{role}/{policy}"),
            )),
        }
    }

    async fn get_oidc_provider(&self, arn: &str) -> AwsResult<Option<OidcProvider>> {
        self.provider_allowed(Call::GetOpenIdConnectProvider.name(), arn)?;
        Ok(self
            .read(Call::GetOpenIdConnectProvider.name())?
            .providers
            .get(arn)
            .cloned())
    }

    async fn create_oidc_provider(
        &self,
        url: &str,
        client_ids: &[String],
        tags: &BTreeMap<String, String>,
    ) -> AwsResult<String> {
        let host = url.trim_start_matches("https://").to_owned();
        self.provider_allowed(Call::CreateOpenIdConnectProvider.name(), &host)?;
        let mut s = self.write(Call::CreateOpenIdConnectProvider.name())?;
        let arn = format!("arn:aws:iam::{}:oidc-provider/{host}", s.account());
        if s.providers.contains_key(&arn) {
            return Err(AwsError {
                kind: ErrorKind::Conflict,
                service: "iam",
                operation: Call::CreateOpenIdConnectProvider.name(),
                code: "EntityAlreadyExists".into(),
                message: format!("Provider with url {url} already exists."),
            });
        }
        s.providers.insert(
            arn.clone(),
            OidcProvider {
                arn: arn.clone(),
                url: host,
                client_ids: client_ids.to_vec(),
                tags: tags.clone(),
            },
        );
        Ok(arn)
    }

    async fn add_client_id(&self, arn: &str, client_id: &str) -> AwsResult<()> {
        self.provider_allowed(Call::AddClientIdToOpenIdConnectProvider.name(), arn)?;
        let mut s = self.write(Call::AddClientIdToOpenIdConnectProvider.name())?;
        let provider = s.providers.get_mut(arn).ok_or_else(|| {
            not_found(
                "iam",
                Call::AddClientIdToOpenIdConnectProvider.name(),
                arn.to_owned(),
            )
        })?;
        if !provider.client_ids.iter().any(|c| c == client_id) {
            provider.client_ids.push(client_id.to_owned());
        }
        Ok(())
    }

    async fn remove_client_id(&self, arn: &str, client_id: &str) -> AwsResult<()> {
        self.provider_allowed(Call::RemoveClientIdFromOpenIdConnectProvider.name(), arn)?;
        let mut s = self.write(Call::RemoveClientIdFromOpenIdConnectProvider.name())?;
        let provider = s.providers.get_mut(arn).ok_or_else(|| {
            not_found(
                "iam",
                Call::RemoveClientIdFromOpenIdConnectProvider.name(),
                arn.to_owned(),
            )
        })?;
        provider.client_ids.retain(|c| c != client_id);
        Ok(())
    }

    async fn tag_oidc_provider(&self, arn: &str, tags: &BTreeMap<String, String>) -> AwsResult<()> {
        self.provider_allowed(Call::TagOpenIdConnectProvider.name(), arn)?;
        let mut s = self.write(Call::TagOpenIdConnectProvider.name())?;
        let provider = s.providers.get_mut(arn).ok_or_else(|| {
            not_found("iam", Call::TagOpenIdConnectProvider.name(), arn.to_owned())
        })?;
        provider.tags.extend(tags.clone());
        Ok(())
    }

    async fn untag_oidc_provider(&self, arn: &str, keys: &[String]) -> AwsResult<()> {
        self.provider_allowed(Call::UntagOpenIdConnectProvider.name(), arn)?;
        let mut s = self.write(Call::UntagOpenIdConnectProvider.name())?;
        let provider = s.providers.get_mut(arn).ok_or_else(|| {
            not_found(
                "iam",
                Call::UntagOpenIdConnectProvider.name(),
                arn.to_owned(),
            )
        })?;
        provider.tags.retain(|k, _| !keys.contains(k));
        Ok(())
    }

    async fn delete_oidc_provider(&self, arn: &str) -> AwsResult<()> {
        self.provider_allowed(Call::DeleteOpenIdConnectProvider.name(), arn)?;
        let mut s = self.write(Call::DeleteOpenIdConnectProvider.name())?;
        s.providers.remove(arn).map(drop).ok_or_else(|| {
            not_found(
                "iam",
                Call::DeleteOpenIdConnectProvider.name(),
                arn.to_owned(),
            )
        })
    }
}

#[async_trait::async_trait]
impl LambdaApi for FakeAws {
    async fn permissions(&self, function: &str) -> AwsResult<Option<Vec<Permission>>> {
        Ok(self
            .read(Call::GetPolicy.name())?
            .functions
            .get(function)
            .cloned())
    }

    async fn add_permission(&self, function: &str, sid: &str, source_arn: &str) -> AwsResult<()> {
        let mut s = self.write(Call::AddPermission.name())?;
        let statements = s
            .functions
            .get_mut(function)
            .ok_or_else(|| not_found("lambda", Call::AddPermission.name(), function.to_owned()))?;
        if statements.iter().any(|p| p.sid == sid) {
            return Err(AwsError {
                kind: ErrorKind::Conflict,
                service: "lambda",
                operation: Call::AddPermission.name(),
                code: "ResourceConflictException".into(),
                message: format!("The statement id ({sid}) provided already exists."),
            });
        }
        statements.push(Permission {
            sid: sid.to_owned(),
            principal: Some(APIGATEWAY_PRINCIPAL.to_owned()),
            source_arn: Some(source_arn.to_owned()),
        });
        Ok(())
    }

    async fn remove_permission(&self, function: &str, sid: &str) -> AwsResult<()> {
        let mut s = self.write(Call::RemovePermission.name())?;
        let statements = s.functions.get_mut(function).ok_or_else(|| {
            not_found("lambda", Call::RemovePermission.name(), function.to_owned())
        })?;
        let before = statements.len();
        statements.retain(|p| p.sid != sid);
        if statements.len() == before {
            return Err(not_found(
                "lambda",
                Call::RemovePermission.name(),
                sid.to_owned(),
            ));
        }
        Ok(())
    }
}
