//! API Gateway VPC links (HTTP APIs, V2): the calls the VPC link kind makes, beside the
//! API's own in [`super::apigateway`]. A link's subnets and security groups are fixed at
//! creation (UpdateVpcLink only renames).

use crate::operations::Call;
use std::collections::BTreeMap;

use super::apigateway::ApiGateway;
use super::error::{AwsError, AwsResult, not_found_is_none, sdk_err};

const SERVICE: &str = "apigateway";

/// A VPC link as AWS reports it. Subnets and security groups are kept sorted.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct VpcLink {
    pub id: String,
    pub name: String,
    pub subnet_ids: Vec<String>,
    pub security_group_ids: Vec<String>,
    /// PENDING, AVAILABLE, DELETING, FAILED or INACTIVE.
    pub status: String,
    pub tags: BTreeMap<String, String>,
}

/// The status of a link that will never carry traffic again.
pub const FAILED: &str = "FAILED";

/// VPC link calls: the SDK client below, or a fake in tests.
#[async_trait::async_trait]
pub trait VpcLinksApi: Send + Sync {
    async fn create_vpc_link(
        &self,
        name: &str,
        subnet_ids: &[String],
        security_group_ids: &[String],
        tags: &BTreeMap<String, String>,
    ) -> AwsResult<VpcLink>;

    /// The link `id`, or None when it does not exist.
    async fn get_vpc_link(&self, id: &str) -> AwsResult<Option<VpcLink>>;

    /// Every VPC link of the account in the region.
    async fn list_vpc_links(&self) -> AwsResult<Vec<VpcLink>>;

    /// Rename the link (the only thing UpdateVpcLink changes).
    async fn rename_vpc_link(&self, id: &str, name: &str) -> AwsResult<()>;

    async fn delete_vpc_link(&self, id: &str) -> AwsResult<()>;
}

fn sorted(ids: &[String]) -> Vec<String> {
    let mut ids = ids.to_vec();
    ids.sort();
    ids
}

macro_rules! link_of {
    ($out:expr) => {{
        let out = $out;
        VpcLink {
            id: out.vpc_link_id().unwrap_or_default().to_owned(),
            name: out.name().unwrap_or_default().to_owned(),
            subnet_ids: sorted(out.subnet_ids()),
            security_group_ids: sorted(out.security_group_ids()),
            status: out
                .vpc_link_status()
                .map(|s| s.as_str().to_owned())
                .unwrap_or_default(),
            tags: super::tag_map(out.tags()),
        }
    }};
}

#[async_trait::async_trait]
impl VpcLinksApi for ApiGateway {
    async fn create_vpc_link(
        &self,
        name: &str,
        subnet_ids: &[String],
        security_group_ids: &[String],
        tags: &BTreeMap<String, String>,
    ) -> AwsResult<VpcLink> {
        let out = self
            .client
            .create_vpc_link()
            .name(name)
            .set_subnet_ids(Some(subnet_ids.to_vec()))
            .set_security_group_ids(Some(security_group_ids.to_vec()))
            .set_tags(Some(tags.clone().into_iter().collect()))
            .send()
            .await
            .map_err(sdk_err(SERVICE, Call::CreateVpcLink))?;
        Ok(link_of!(&out))
    }

    async fn get_vpc_link(&self, id: &str) -> AwsResult<Option<VpcLink>> {
        match self.client.get_vpc_link().vpc_link_id(id).send().await {
            Ok(out) => Ok(Some(link_of!(&out))),
            Err(e) => not_found_is_none(AwsError::from_sdk(SERVICE, Call::GetVpcLink.name(), e)),
        }
    }

    async fn list_vpc_links(&self) -> AwsResult<Vec<VpcLink>> {
        super::all_pages(|token| async move {
            let out = self
                .client
                .get_vpc_links()
                .max_results("100")
                .set_next_token(token)
                .send()
                .await
                .map_err(sdk_err(SERVICE, Call::GetVpcLinks))?;
            let items = out.items().iter().map(|l| link_of!(l)).collect();
            Ok((items, out.next_token().map(str::to_owned)))
        })
        .await
    }

    async fn rename_vpc_link(&self, id: &str, name: &str) -> AwsResult<()> {
        self.client
            .update_vpc_link()
            .vpc_link_id(id)
            .name(name)
            .send()
            .await
            .map(drop)
            .map_err(sdk_err(SERVICE, Call::UpdateVpcLink))
    }

    async fn delete_vpc_link(&self, id: &str) -> AwsResult<()> {
        self.client
            .delete_vpc_link()
            .vpc_link_id(id)
            .send()
            .await
            .map(drop)
            .map_err(sdk_err(SERVICE, Call::DeleteVpcLink))
    }
}
