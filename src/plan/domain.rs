//! The custom domain an object names, shared by every object naming it.

use std::collections::BTreeMap;

/// The custom domain (shared by every object naming it) and this object's mapping on it.
#[derive(Clone, Debug, PartialEq)]
pub struct DomainPlan {
    pub name: String,
    pub certificate_arn: String,
    /// The API mapping key: "" for the domain's root.
    pub base_path: String,
    /// Tags put on a domain we create: ownership and the operator's --resource-tags
    /// (never an object's spec.tags: the domain is shared), as the OIDC provider's.
    pub tags: BTreeMap<String, String>,
}

impl DomainPlan {
    /// The plan of `domain` (from the spec), with `tags` for when this cluster creates it.
    pub(super) fn of(domain: &crate::api::Domain, tags: BTreeMap<String, String>) -> Self {
        DomainPlan {
            name: domain.name.clone(),
            certificate_arn: domain.certificate_arn.clone(),
            base_path: domain.base_path.clone().unwrap_or_default(),
            tags,
        }
    }

    /// Where the API is called through the domain.
    pub fn url(&self) -> String {
        if self.base_path.is_empty() {
            format!("https://{}", self.name)
        } else {
            format!("https://{}/{}", self.name, self.base_path)
        }
    }
}
