//! Cognito identity pools: the pool that federates Auth0 and hands out credentials of the
//! authenticated role.

use crate::operations::Call;
use std::collections::{BTreeMap, HashMap};

use aws_sdk_cognitoidentity::Client;
use aws_smithy_runtime_api::client::interceptors::SharedInterceptor;

use aws_sdk_cognitoidentity::types::{
    AmbiguousRoleResolutionType, MappingRule as MappingRuleSdk, MappingRuleMatchType, RoleMapping,
    RoleMappingType, RulesConfigurationType,
};

use super::error::{AwsError, AwsResult, not_found_is_none, sdk_err};

fn invalid(operation: &'static str, message: String) -> AwsError {
    AwsError::invalid(SERVICE, operation, "", message)
}

const SERVICE: &str = "cognito-identity";
/// ListIdentityPools' largest page.
const PAGE_SIZE: i32 = 60;

/// An identity pool: what we send on create/update and what Describe returns.
#[derive(Clone, Debug, PartialEq)]
pub struct IdentityPool {
    pub id: String,
    pub name: String,
    pub allow_unauthenticated: bool,
    pub oidc_provider_arns: Vec<String>,
    pub tags: BTreeMap<String, String>,
}

/// A pool's roles and role mappings.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PoolRoles {
    pub authenticated: Option<String>,
    pub unauthenticated: Option<String>,
    /// Rules-type role mapping for one identity provider.
    pub mapping: Option<RulesMapping>,
}

/// Role mapping by token claims for one identity provider (e.g. myorg.us.auth0.com).
#[derive(Clone, Debug, PartialEq)]
pub struct RulesMapping {
    pub provider: String,
    /// No rule matches: no credentials (Deny) or the authenticated role.
    pub deny_unmatched: bool,
    pub rules: Vec<MappingRule>,
}

/// One claim rule of a role mapping.
#[derive(Clone, Debug, PartialEq)]
pub struct MappingRule {
    pub claim: String,
    /// Equals, Contains, StartsWith or NotEqual.
    pub match_type: String,
    pub value: String,
    pub role_arn: String,
}

/// Cognito Identity calls.
#[derive(Clone)]
pub struct Cognito {
    client: Client,
}

fn pool_of(
    id: &str,
    name: &str,
    allow_unauthenticated: bool,
    arns: &[String],
    tags: Option<&HashMap<String, String>>,
) -> IdentityPool {
    IdentityPool {
        id: id.to_owned(),
        name: name.to_owned(),
        allow_unauthenticated,
        oidc_provider_arns: arns.to_vec(),
        tags: super::tag_map(tags),
    }
}

/// The Cognito Identity calls the operator makes: the SDK client below, or a fake in tests.
#[async_trait::async_trait]
pub trait CognitoApi: Send + Sync {
    /// Create a pool (the `id` field of `pool` is ignored); returns it with its new id.
    async fn create_identity_pool(&self, pool: &IdentityPool) -> AwsResult<IdentityPool>;

    /// The pool with this id, or None.
    async fn describe_identity_pool(&self, id: &str) -> AwsResult<Option<IdentityPool>>;

    /// (id, name) of every identity pool in the account and region.
    async fn list_identity_pools(&self) -> AwsResult<Vec<(String, String)>>;

    /// Ids of every pool named `name` (names are not unique in Cognito).
    async fn find_identity_pools_by_name(&self, name: &str) -> AwsResult<Vec<String>>;

    /// Replace the pool with `pool`: UpdateIdentityPool sets every field, so all are sent.
    async fn update_identity_pool(&self, pool: &IdentityPool) -> AwsResult<()>;

    async fn delete_identity_pool(&self, id: &str) -> AwsResult<()>;

    async fn get_roles(&self, id: &str) -> AwsResult<PoolRoles>;

    async fn set_roles(&self, id: &str, roles: &PoolRoles) -> AwsResult<()>;

    async fn list_tags(&self, arn: &str) -> AwsResult<BTreeMap<String, String>>;

    async fn tag(&self, arn: &str, tags: &BTreeMap<String, String>) -> AwsResult<()>;

    async fn untag(&self, arn: &str, keys: &[String]) -> AwsResult<()>;
}

impl Cognito {
    /// The client for `account` (its own retry quota; "" for clients not tied to one).
    pub fn new(
        config: &aws_types::SdkConfig,
        interceptors: &[SharedInterceptor],
        account: &str,
    ) -> Self {
        Self {
            client: sdk_client!(
                aws_sdk_cognitoidentity,
                config,
                interceptors,
                "cognito-identity",
                account
            ),
        }
    }

    /// The ARN the tagging calls take for a pool.
    pub fn pool_arn(partition: &str, region: &str, account: &str, pool_id: &str) -> String {
        format!("arn:{partition}:cognito-identity:{region}:{account}:identitypool/{pool_id}")
    }
}

#[async_trait::async_trait]
impl CognitoApi for Cognito {
    async fn create_identity_pool(&self, pool: &IdentityPool) -> AwsResult<IdentityPool> {
        let out = self
            .client
            .create_identity_pool()
            .identity_pool_name(&pool.name)
            .allow_unauthenticated_identities(pool.allow_unauthenticated)
            .set_open_id_connect_provider_arns(Some(pool.oidc_provider_arns.clone()))
            .set_identity_pool_tags(Some(pool.tags.clone().into_iter().collect()))
            .send()
            .await
            .map_err(sdk_err(SERVICE, Call::CreateIdentityPool))?;
        Ok(pool_of(
            out.identity_pool_id(),
            out.identity_pool_name(),
            out.allow_unauthenticated_identities(),
            out.open_id_connect_provider_arns(),
            out.identity_pool_tags(),
        ))
    }

    async fn describe_identity_pool(&self, id: &str) -> AwsResult<Option<IdentityPool>> {
        match self
            .client
            .describe_identity_pool()
            .identity_pool_id(id)
            .send()
            .await
        {
            Ok(out) => Ok(Some(pool_of(
                out.identity_pool_id(),
                out.identity_pool_name(),
                out.allow_unauthenticated_identities(),
                out.open_id_connect_provider_arns(),
                out.identity_pool_tags(),
            ))),
            Err(e) => not_found_is_none(AwsError::from_sdk(
                SERVICE,
                Call::DescribeIdentityPool.name(),
                e,
            )),
        }
    }

    async fn list_identity_pools(&self) -> AwsResult<Vec<(String, String)>> {
        super::all_pages(|token| async move {
            let out = self
                .client
                .list_identity_pools()
                .max_results(PAGE_SIZE)
                .set_next_token(token)
                .send()
                .await
                .map_err(sdk_err(SERVICE, Call::ListIdentityPools))?;
            let pools = out.identity_pools().iter().filter_map(|p| {
                Some((
                    p.identity_pool_id()?.to_owned(),
                    p.identity_pool_name().unwrap_or_default().to_owned(),
                ))
            });
            Ok((pools.collect(), out.next_token().map(str::to_owned)))
        })
        .await
    }

    async fn find_identity_pools_by_name(&self, name: &str) -> AwsResult<Vec<String>> {
        Ok(self
            .list_identity_pools()
            .await?
            .into_iter()
            .filter(|(_, n)| n == name)
            .map(|(id, _)| id)
            .collect())
    }

    async fn update_identity_pool(&self, pool: &IdentityPool) -> AwsResult<()> {
        self.client
            .update_identity_pool()
            .identity_pool_id(&pool.id)
            .identity_pool_name(&pool.name)
            .allow_unauthenticated_identities(pool.allow_unauthenticated)
            .set_open_id_connect_provider_arns(Some(pool.oidc_provider_arns.clone()))
            .set_identity_pool_tags(Some(pool.tags.clone().into_iter().collect()))
            .send()
            .await
            .map(drop)
            .map_err(sdk_err(SERVICE, Call::UpdateIdentityPool))
    }

    async fn delete_identity_pool(&self, id: &str) -> AwsResult<()> {
        self.client
            .delete_identity_pool()
            .identity_pool_id(id)
            .send()
            .await
            .map(drop)
            .map_err(sdk_err(SERVICE, Call::DeleteIdentityPool))
    }

    async fn get_roles(&self, id: &str) -> AwsResult<PoolRoles> {
        let out = self
            .client
            .get_identity_pool_roles()
            .identity_pool_id(id)
            .send()
            .await
            .map_err(sdk_err(SERVICE, Call::GetIdentityPoolRoles))?;
        let roles = out.roles();
        let mapping = out
            .role_mappings()
            .and_then(|m| m.iter().next())
            .map(|(provider, m)| RulesMapping {
                provider: provider.clone(),
                deny_unmatched: m.ambiguous_role_resolution()
                    == Some(&AmbiguousRoleResolutionType::Deny),
                rules: m
                    .rules_configuration()
                    .map(|c| {
                        c.rules()
                            .iter()
                            .map(|r| MappingRule {
                                claim: r.claim().to_owned(),
                                match_type: r.match_type().as_str().to_owned(),
                                value: r.value().to_owned(),
                                role_arn: r.role_arn().to_owned(),
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
            });
        Ok(PoolRoles {
            authenticated: roles.and_then(|r| r.get("authenticated")).cloned(),
            unauthenticated: roles.and_then(|r| r.get("unauthenticated")).cloned(),
            mapping,
        })
    }

    async fn set_roles(&self, id: &str, roles: &PoolRoles) -> AwsResult<()> {
        let mut map = HashMap::new();
        if let Some(arn) = &roles.authenticated {
            map.insert("authenticated".to_owned(), arn.clone());
        }
        if let Some(arn) = &roles.unauthenticated {
            map.insert("unauthenticated".to_owned(), arn.clone());
        }
        let mappings = match &roles.mapping {
            Some(m) => {
                let rules = m
                    .rules
                    .iter()
                    .map(|r| {
                        MappingRuleSdk::builder()
                            .claim(&r.claim)
                            .match_type(MappingRuleMatchType::from(r.match_type.as_str()))
                            .value(&r.value)
                            .role_arn(&r.role_arn)
                            .build()
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| invalid(Call::SetIdentityPoolRoles.name(), e.to_string()))?;
                let mapping = RoleMapping::builder()
                    .r#type(RoleMappingType::Rules)
                    .ambiguous_role_resolution(if m.deny_unmatched {
                        AmbiguousRoleResolutionType::Deny
                    } else {
                        AmbiguousRoleResolutionType::AuthenticatedRole
                    })
                    .rules_configuration(
                        RulesConfigurationType::builder()
                            .set_rules(Some(rules))
                            .build()
                            .map_err(|e| {
                                invalid(Call::SetIdentityPoolRoles.name(), e.to_string())
                            })?,
                    )
                    .build()
                    .map_err(|e| invalid(Call::SetIdentityPoolRoles.name(), e.to_string()))?;
                Some(HashMap::from([(m.provider.clone(), mapping)]))
            }
            None => None,
        };
        self.client
            .set_identity_pool_roles()
            .identity_pool_id(id)
            .set_roles(Some(map))
            .set_role_mappings(mappings)
            .send()
            .await
            .map(drop)
            .map_err(sdk_err(SERVICE, Call::SetIdentityPoolRoles))
    }

    async fn list_tags(&self, arn: &str) -> AwsResult<BTreeMap<String, String>> {
        let out = self
            .client
            .list_tags_for_resource()
            .resource_arn(arn)
            .send()
            .await
            .map_err(sdk_err(SERVICE, Call::ListTagsForResource))?;
        Ok(super::tag_map(out.tags()))
    }

    async fn tag(&self, arn: &str, tags: &BTreeMap<String, String>) -> AwsResult<()> {
        self.client
            .tag_resource()
            .resource_arn(arn)
            .set_tags(Some(tags.clone().into_iter().collect()))
            .send()
            .await
            .map(drop)
            .map_err(sdk_err(SERVICE, Call::TagResource))
    }

    async fn untag(&self, arn: &str, keys: &[String]) -> AwsResult<()> {
        self.client
            .untag_resource()
            .resource_arn(arn)
            .set_tag_keys(Some(keys.to_vec()))
            .send()
            .await
            .map(drop)
            .map_err(sdk_err(SERVICE, Call::UntagResource))
    }
}
