//! IAM: the authenticated role, its inline invoke policy, and the shared OIDC provider.
//!
//! IAM returns policy documents URL-encoded; they are decoded and parsed here, so callers
//! compare JSON values, never strings.

use crate::operations::Call;
use std::collections::BTreeMap;

use aws_sdk_iam::Client;
use aws_sdk_iam::types::Tag;
use aws_smithy_runtime_api::client::interceptors::SharedInterceptor;
use serde_json::Value;

use super::error::{AwsError, AwsResult, not_found_is_none, sdk_err};

const SERVICE: &str = "iam";

/// A role as IAM reports it.
#[derive(Clone, Debug, PartialEq)]
pub struct Role {
    pub name: String,
    pub arn: String,
    /// The trust (assume-role) policy, decoded.
    pub trust_policy: Value,
    pub tags: BTreeMap<String, String>,
    /// When IAM created it.
    pub created: Option<std::time::SystemTime>,
}

/// How long IAM may take to make a new role visible to other services (Cognito).
const PROPAGATION: std::time::Duration = std::time::Duration::from_secs(120);

impl Role {
    /// Whether the role is new enough that IAM may still be propagating it (an unknown
    /// or future creation time counts as new).
    pub fn is_new(&self) -> bool {
        match self.created.map(|c| c.elapsed()) {
            Some(Ok(age)) => age < PROPAGATION,
            Some(Err(_)) | None => true,
        }
    }
}

/// An OIDC identity provider as IAM reports it.
#[derive(Clone, Debug, PartialEq)]
pub struct OidcProvider {
    pub arn: String,
    /// The issuer without scheme, e.g. myorg.us.auth0.com or example.okta.com/oauth2/default
    pub url: String,
    pub client_ids: Vec<String>,
    pub tags: BTreeMap<String, String>,
}

/// IAM calls.
#[derive(Clone)]
pub struct Iam {
    client: Client,
}

fn to_tags(tags: &BTreeMap<String, String>) -> Vec<Tag> {
    tags.iter()
        .filter_map(|(k, v)| Tag::builder().key(k).value(v).build().ok())
        .collect()
}

fn from_tags(tags: &[Tag]) -> BTreeMap<String, String> {
    tags.iter()
        .map(|t| (t.key().to_owned(), t.value().to_owned()))
        .collect()
}

/// Decode a policy document as IAM returns it (URL-encoded JSON) into a JSON value.
pub fn decode_policy(document: &str) -> Result<Value, String> {
    let trimmed = document.trim_start();
    let decoded = if trimmed.starts_with('{') {
        std::borrow::Cow::Borrowed(trimmed)
    } else {
        urlencoding::decode(trimmed).map_err(|e| e.to_string())?
    };
    serde_json::from_str(&decoded).map_err(|e| format!("policy is not JSON: {e}"))
}

fn invalid_policy(operation: &'static str, message: String) -> AwsError {
    AwsError::invalid(SERVICE, operation, "MalformedPolicyDocument", message)
}

/// The IAM calls the operator makes: the SDK client below, or a fake in tests.
#[async_trait::async_trait]
pub trait IamApi: Send + Sync {
    /// The role named `name`, or None.
    async fn get_role(&self, name: &str) -> AwsResult<Option<Role>>;

    /// Create a role under `path` (e.g. "/authedapi/", so policies can scope to it),
    /// carrying the permissions boundary `boundary_arn`.
    async fn create_role(
        &self,
        path: &str,
        name: &str,
        trust_policy: &Value,
        description: &str,
        tags: &BTreeMap<String, String>,
        boundary_arn: &str,
    ) -> AwsResult<Role>;

    async fn update_trust_policy(&self, name: &str, trust_policy: &Value) -> AwsResult<()>;

    async fn tag_role(&self, name: &str, tags: &BTreeMap<String, String>) -> AwsResult<()>;

    async fn untag_role(&self, name: &str, keys: &[String]) -> AwsResult<()>;

    async fn delete_role(&self, name: &str) -> AwsResult<()>;

    /// The inline policy `policy` of `role`, decoded, or None.
    async fn get_role_policy(&self, role: &str, policy: &str) -> AwsResult<Option<Value>>;

    async fn put_role_policy(&self, role: &str, policy: &str, document: &Value) -> AwsResult<()>;

    async fn list_role_policies(&self, role: &str) -> AwsResult<Vec<String>>;

    async fn delete_role_policy(&self, role: &str, policy: &str) -> AwsResult<()>;

    /// The provider with this ARN, or None.
    async fn get_oidc_provider(&self, arn: &str) -> AwsResult<Option<OidcProvider>>;

    /// Create a provider for `url` (https://...) trusting `client_ids`; returns its ARN.
    async fn create_oidc_provider(
        &self,
        url: &str,
        client_ids: &[String],
        tags: &BTreeMap<String, String>,
    ) -> AwsResult<String>;

    async fn add_client_id(&self, arn: &str, client_id: &str) -> AwsResult<()>;

    async fn remove_client_id(&self, arn: &str, client_id: &str) -> AwsResult<()>;

    async fn tag_oidc_provider(&self, arn: &str, tags: &BTreeMap<String, String>) -> AwsResult<()>;

    async fn untag_oidc_provider(&self, arn: &str, keys: &[String]) -> AwsResult<()>;

    async fn delete_oidc_provider(&self, arn: &str) -> AwsResult<()>;
}

impl Iam {
    /// The client for `account` (its own retry quota; "" for clients not tied to one).
    pub fn new(
        config: &aws_types::SdkConfig,
        interceptors: &[SharedInterceptor],
        account: &str,
    ) -> Self {
        Self {
            client: sdk_client!(aws_sdk_iam, config, interceptors, "iam", account),
        }
    }

    // --- roles -------------------------------------------------------------------------
}

#[async_trait::async_trait]
impl IamApi for Iam {
    async fn get_role(&self, name: &str) -> AwsResult<Option<Role>> {
        let out = match self.client.get_role().role_name(name).send().await {
            Ok(out) => out,
            Err(e) => {
                return not_found_is_none(AwsError::from_sdk(SERVICE, Call::GetRole.name(), e));
            }
        };
        let Some(role) = out.role() else {
            return Ok(None);
        };
        let trust_policy = role
            .assume_role_policy_document()
            .map(decode_policy)
            .transpose()
            .map_err(|m| invalid_policy(Call::GetRole.name(), m))?
            .unwrap_or(Value::Null);
        Ok(Some(Role {
            name: role.role_name().to_owned(),
            arn: role.arn().to_owned(),
            trust_policy,
            tags: from_tags(role.tags()),
            created: std::time::SystemTime::try_from(*role.create_date()).ok(),
        }))
    }

    async fn create_role(
        &self,
        path: &str,
        name: &str,
        trust_policy: &Value,
        description: &str,
        tags: &BTreeMap<String, String>,
        boundary_arn: &str,
    ) -> AwsResult<Role> {
        let out = self
            .client
            .create_role()
            .path(path)
            .role_name(name)
            .permissions_boundary(boundary_arn)
            .assume_role_policy_document(trust_policy.to_string())
            .description(description)
            .set_tags(Some(to_tags(tags)))
            .send()
            .await
            .map_err(sdk_err(SERVICE, Call::CreateRole))?;
        let arn = out.role().map(|r| r.arn().to_owned()).unwrap_or_default();
        Ok(Role {
            name: name.to_owned(),
            arn,
            trust_policy: trust_policy.clone(),
            tags: tags.clone(),
            created: Some(std::time::SystemTime::now()),
        })
    }

    async fn update_trust_policy(&self, name: &str, trust_policy: &Value) -> AwsResult<()> {
        self.client
            .update_assume_role_policy()
            .role_name(name)
            .policy_document(trust_policy.to_string())
            .send()
            .await
            .map(drop)
            .map_err(sdk_err(SERVICE, Call::UpdateAssumeRolePolicy))
    }

    async fn tag_role(&self, name: &str, tags: &BTreeMap<String, String>) -> AwsResult<()> {
        self.client
            .tag_role()
            .role_name(name)
            .set_tags(Some(to_tags(tags)))
            .send()
            .await
            .map(drop)
            .map_err(sdk_err(SERVICE, Call::TagRole))
    }

    async fn untag_role(&self, name: &str, keys: &[String]) -> AwsResult<()> {
        self.client
            .untag_role()
            .role_name(name)
            .set_tag_keys(Some(keys.to_vec()))
            .send()
            .await
            .map(drop)
            .map_err(sdk_err(SERVICE, Call::UntagRole))
    }

    async fn delete_role(&self, name: &str) -> AwsResult<()> {
        self.client
            .delete_role()
            .role_name(name)
            .send()
            .await
            .map(drop)
            .map_err(sdk_err(SERVICE, Call::DeleteRole))
    }

    // --- inline policies ---------------------------------------------------------------

    async fn get_role_policy(&self, role: &str, policy: &str) -> AwsResult<Option<Value>> {
        match self
            .client
            .get_role_policy()
            .role_name(role)
            .policy_name(policy)
            .send()
            .await
        {
            Ok(out) => decode_policy(out.policy_document())
                .map(Some)
                .map_err(|m| invalid_policy(Call::GetRolePolicy.name(), m)),
            Err(e) => not_found_is_none(AwsError::from_sdk(SERVICE, Call::GetRolePolicy.name(), e)),
        }
    }

    async fn put_role_policy(&self, role: &str, policy: &str, document: &Value) -> AwsResult<()> {
        self.client
            .put_role_policy()
            .role_name(role)
            .policy_name(policy)
            .policy_document(document.to_string())
            .send()
            .await
            .map(drop)
            .map_err(sdk_err(SERVICE, Call::PutRolePolicy))
    }

    async fn list_role_policies(&self, role: &str) -> AwsResult<Vec<String>> {
        super::all_pages(|marker| async move {
            let out = self
                .client
                .list_role_policies()
                .role_name(role)
                .set_marker(marker)
                .send()
                .await
                .map_err(sdk_err(SERVICE, Call::ListRolePolicies))?;
            let next = out
                .marker()
                .filter(|_| out.is_truncated())
                .map(str::to_owned);
            Ok((out.policy_names().to_vec(), next))
        })
        .await
    }

    async fn delete_role_policy(&self, role: &str, policy: &str) -> AwsResult<()> {
        self.client
            .delete_role_policy()
            .role_name(role)
            .policy_name(policy)
            .send()
            .await
            .map(drop)
            .map_err(sdk_err(SERVICE, Call::DeleteRolePolicy))
    }

    // --- OIDC providers ----------------------------------------------------------------

    async fn get_oidc_provider(&self, arn: &str) -> AwsResult<Option<OidcProvider>> {
        match self
            .client
            .get_open_id_connect_provider()
            .open_id_connect_provider_arn(arn)
            .send()
            .await
        {
            Ok(out) => Ok(Some(OidcProvider {
                arn: arn.to_owned(),
                url: out.url().unwrap_or_default().to_owned(),
                client_ids: out.client_id_list().to_vec(),
                tags: from_tags(out.tags()),
            })),
            Err(e) => not_found_is_none(AwsError::from_sdk(
                SERVICE,
                Call::GetOpenIdConnectProvider.name(),
                e,
            )),
        }
    }

    async fn create_oidc_provider(
        &self,
        url: &str,
        client_ids: &[String],
        tags: &BTreeMap<String, String>,
    ) -> AwsResult<String> {
        let out = self
            .client
            .create_open_id_connect_provider()
            .url(url)
            .set_client_id_list(Some(client_ids.to_vec()))
            .set_tags(Some(to_tags(tags)))
            .send()
            .await
            .map_err(sdk_err(SERVICE, Call::CreateOpenIdConnectProvider))?;
        Ok(out
            .open_id_connect_provider_arn()
            .unwrap_or_default()
            .to_owned())
    }

    async fn add_client_id(&self, arn: &str, client_id: &str) -> AwsResult<()> {
        self.client
            .add_client_id_to_open_id_connect_provider()
            .open_id_connect_provider_arn(arn)
            .client_id(client_id)
            .send()
            .await
            .map(drop)
            .map_err(sdk_err(SERVICE, Call::AddClientIdToOpenIdConnectProvider))
    }

    async fn remove_client_id(&self, arn: &str, client_id: &str) -> AwsResult<()> {
        self.client
            .remove_client_id_from_open_id_connect_provider()
            .open_id_connect_provider_arn(arn)
            .client_id(client_id)
            .send()
            .await
            .map(drop)
            .map_err(sdk_err(
                SERVICE,
                Call::RemoveClientIdFromOpenIdConnectProvider,
            ))
    }

    async fn tag_oidc_provider(&self, arn: &str, tags: &BTreeMap<String, String>) -> AwsResult<()> {
        self.client
            .tag_open_id_connect_provider()
            .open_id_connect_provider_arn(arn)
            .set_tags(Some(to_tags(tags)))
            .send()
            .await
            .map(drop)
            .map_err(sdk_err(SERVICE, Call::TagOpenIdConnectProvider))
    }

    async fn untag_oidc_provider(&self, arn: &str, keys: &[String]) -> AwsResult<()> {
        self.client
            .untag_open_id_connect_provider()
            .open_id_connect_provider_arn(arn)
            .set_tag_keys(Some(keys.to_vec()))
            .send()
            .await
            .map(drop)
            .map_err(sdk_err(SERVICE, Call::UntagOpenIdConnectProvider))
    }

    async fn delete_oidc_provider(&self, arn: &str) -> AwsResult<()> {
        self.client
            .delete_open_id_connect_provider()
            .open_id_connect_provider_arn(arn)
            .send()
            .await
            .map(drop)
            .map_err(sdk_err(SERVICE, Call::DeleteOpenIdConnectProvider))
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_role_is_new_while_iam_may_still_propagate_it() {
        let role = |created| Role {
            name: "r".into(),
            arn: "arn".into(),
            trust_policy: Value::Null,
            tags: BTreeMap::new(),
            created,
        };
        let now = std::time::SystemTime::now();
        assert!(role(Some(now)).is_new());
        assert!(role(None).is_new());
        assert!(role(Some(now + std::time::Duration::from_secs(30))).is_new());
        assert!(!role(Some(now - std::time::Duration::from_secs(600))).is_new());
    }

    use super::*;

    #[test]
    fn decodes_url_encoded_policies() {
        let encoded = "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%5D%7D";
        assert_eq!(
            decode_policy(encoded).unwrap(),
            serde_json::json!({"Version": "2012-10-17", "Statement": []})
        );
        assert_eq!(
            decode_policy(r#"{"Version":"2012-10-17"}"#).unwrap(),
            serde_json::json!({"Version": "2012-10-17"})
        );
        assert!(decode_policy("%7Bnot json").is_err());
    }
}
