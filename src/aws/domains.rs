//! API Gateway custom domain names (regional) and their API mappings: the calls the domain
//! kinds make, beside the API's own in [`super::apigateway`].

use crate::operations::Call;
use std::collections::BTreeMap;

use aws_sdk_apigatewayv2::types::{DomainNameConfiguration, EndpointType, SecurityPolicy};

use super::apigateway::ApiGateway;
use super::error::{AwsError, AwsResult, not_found_is_none, sdk_err};

const SERVICE: &str = "apigateway";
const PAGE_SIZE: &str = "100";

/// A custom domain name as AWS reports it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DomainName {
    pub name: String,
    pub certificate_arn: String,
    /// The regional host name DNS points at (d-xxxx.execute-api.<region>.amazonaws.com).
    pub target: String,
    /// The hosted zone of `target`, for a Route 53 alias.
    pub hosted_zone_id: String,
    pub tags: BTreeMap<String, String>,
}

/// An API mapping: `key` (a base path, "" for the root) on a domain serves `api_id`'s stage.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiMapping {
    pub id: String,
    pub key: String,
    pub api_id: String,
    pub stage: String,
}

/// Custom domain calls: the SDK client below, or a fake in tests.
#[async_trait::async_trait]
pub trait DomainsApi: Send + Sync {
    /// The domain `name`, or None when it does not exist.
    async fn get_domain_name(&self, name: &str) -> AwsResult<Option<DomainName>>;

    /// Create a regional domain (TLS 1.2) with `certificate_arn`.
    async fn create_domain_name(
        &self,
        name: &str,
        certificate_arn: &str,
        tags: &BTreeMap<String, String>,
    ) -> AwsResult<DomainName>;

    /// Give the domain another certificate.
    async fn set_domain_certificate(&self, name: &str, certificate_arn: &str) -> AwsResult<()>;

    async fn delete_domain_name(&self, name: &str) -> AwsResult<()>;

    /// Every mapping on the domain `name`.
    async fn list_api_mappings(&self, name: &str) -> AwsResult<Vec<ApiMapping>>;

    async fn create_api_mapping(
        &self,
        name: &str,
        api_id: &str,
        key: &str,
        stage: &str,
    ) -> AwsResult<ApiMapping>;

    async fn delete_api_mapping(&self, name: &str, id: &str) -> AwsResult<()>;
}

fn regional(certificate_arn: &str) -> DomainNameConfiguration {
    DomainNameConfiguration::builder()
        .certificate_arn(certificate_arn)
        .endpoint_type(EndpointType::Regional)
        .security_policy(SecurityPolicy::Tls12)
        .build()
}

fn domain_of(
    name: &str,
    configurations: &[DomainNameConfiguration],
    tags: Option<&std::collections::HashMap<String, String>>,
) -> DomainName {
    let first = configurations.first();
    let field = |f: fn(&DomainNameConfiguration) -> Option<&str>| {
        first.and_then(f).unwrap_or_default().to_owned()
    };
    DomainName {
        name: name.to_owned(),
        certificate_arn: field(DomainNameConfiguration::certificate_arn),
        target: field(DomainNameConfiguration::api_gateway_domain_name),
        hosted_zone_id: field(DomainNameConfiguration::hosted_zone_id),
        tags: super::tag_map(tags),
    }
}

#[async_trait::async_trait]
impl DomainsApi for ApiGateway {
    async fn get_domain_name(&self, name: &str) -> AwsResult<Option<DomainName>> {
        match self.client.get_domain_name().domain_name(name).send().await {
            Ok(out) => Ok(Some(domain_of(
                out.domain_name().unwrap_or(name),
                out.domain_name_configurations(),
                out.tags(),
            ))),
            Err(e) => not_found_is_none(AwsError::from_sdk(SERVICE, Call::GetDomainName.name(), e)),
        }
    }

    async fn create_domain_name(
        &self,
        name: &str,
        certificate_arn: &str,
        tags: &BTreeMap<String, String>,
    ) -> AwsResult<DomainName> {
        let out = self
            .client
            .create_domain_name()
            .domain_name(name)
            .domain_name_configurations(regional(certificate_arn))
            .set_tags(Some(tags.clone().into_iter().collect()))
            .send()
            .await
            .map_err(sdk_err(SERVICE, Call::CreateDomainName))?;
        Ok(domain_of(
            out.domain_name().unwrap_or(name),
            out.domain_name_configurations(),
            out.tags(),
        ))
    }

    async fn set_domain_certificate(&self, name: &str, certificate_arn: &str) -> AwsResult<()> {
        self.client
            .update_domain_name()
            .domain_name(name)
            .domain_name_configurations(regional(certificate_arn))
            .send()
            .await
            .map(drop)
            .map_err(sdk_err(SERVICE, Call::UpdateDomainName))
    }

    async fn delete_domain_name(&self, name: &str) -> AwsResult<()> {
        self.client
            .delete_domain_name()
            .domain_name(name)
            .send()
            .await
            .map(drop)
            .map_err(sdk_err(SERVICE, Call::DeleteDomainName))
    }

    async fn list_api_mappings(&self, name: &str) -> AwsResult<Vec<ApiMapping>> {
        super::all_pages(|token| async move {
            let out = self
                .client
                .get_api_mappings()
                .domain_name(name)
                .max_results(PAGE_SIZE)
                .set_next_token(token)
                .send()
                .await
                .map_err(sdk_err(SERVICE, Call::GetApiMappings))?;
            let items = out
                .items()
                .iter()
                .map(|m| ApiMapping {
                    id: m.api_mapping_id().unwrap_or_default().to_owned(),
                    key: m.api_mapping_key().unwrap_or_default().to_owned(),
                    api_id: m.api_id().unwrap_or_default().to_owned(),
                    stage: m.stage().unwrap_or_default().to_owned(),
                })
                .collect();
            Ok((items, out.next_token().map(str::to_owned)))
        })
        .await
    }

    async fn create_api_mapping(
        &self,
        name: &str,
        api_id: &str,
        key: &str,
        stage: &str,
    ) -> AwsResult<ApiMapping> {
        let out = self
            .client
            .create_api_mapping()
            .domain_name(name)
            .api_id(api_id)
            .set_api_mapping_key((!key.is_empty()).then(|| key.to_owned()))
            .stage(stage)
            .send()
            .await
            .map_err(sdk_err(SERVICE, Call::CreateApiMapping))?;
        Ok(ApiMapping {
            id: out.api_mapping_id().unwrap_or_default().to_owned(),
            key: key.to_owned(),
            api_id: api_id.to_owned(),
            stage: stage.to_owned(),
        })
    }

    async fn delete_api_mapping(&self, name: &str, id: &str) -> AwsResult<()> {
        self.client
            .delete_api_mapping()
            .domain_name(name)
            .api_mapping_id(id)
            .send()
            .await
            .map(drop)
            .map_err(sdk_err(SERVICE, Call::DeleteApiMapping))
    }
}
