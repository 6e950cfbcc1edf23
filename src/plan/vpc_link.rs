//! The VPC link private targets go through: one this object owns, or someone else's it
//! references. The link's id is AWS's to give: private targets are planned without it
//! and [`through_link`] puts it in once the link is known.

use crate::api::VpcLinkSpec;
use crate::aws::apigateway::IntegrationTarget;

/// What spec.vpcLink asks for.
#[derive(Clone, Debug, PartialEq)]
pub enum VpcLinkPlan {
    /// A link this object creates (tagged as its own) and deletes. Ids kept sorted.
    Owned {
        name: String,
        subnet_ids: Vec<String>,
        security_group_ids: Vec<String>,
    },
    /// Someone else's link: used, never changed or deleted.
    Referenced { id: String },
}

impl VpcLinkPlan {
    /// The plan of `spec`, a link of ours named `name`.
    pub(super) fn of(spec: &VpcLinkSpec, name: &str) -> Self {
        match (&spec.id, &spec.subnet_ids) {
            (Some(id), _) => VpcLinkPlan::Referenced { id: id.clone() },
            (None, subnets) => {
                let sorted = |ids: &Option<Vec<String>>| {
                    let mut ids = ids.clone().unwrap_or_default();
                    ids.sort();
                    ids.dedup();
                    ids
                };
                VpcLinkPlan::Owned {
                    name: name.to_owned(),
                    subnet_ids: sorted(subnets),
                    security_group_ids: sorted(&spec.security_group_ids),
                }
            }
        }
    }
}

/// `target` with its VPC link: a private target goes through `link_id` (None: the link
/// does not exist yet, and the target keeps no link).
pub fn through_link(target: &IntegrationTarget, link_id: Option<&str>) -> IntegrationTarget {
    match target {
        IntegrationTarget::Private {
            uri,
            tls_server_name,
            ..
        } => IntegrationTarget::Private {
            uri: uri.clone(),
            vpc_link_id: link_id.unwrap_or_default().to_owned(),
            tls_server_name: tls_server_name.clone(),
        },
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(subnets: Option<&[&str]>, groups: Option<&[&str]>, id: Option<&str>) -> VpcLinkSpec {
        let owned = |ids: &[&str]| ids.iter().map(|s| s.to_string()).collect();
        VpcLinkSpec {
            subnet_ids: subnets.map(owned),
            security_group_ids: groups.map(owned),
            id: id.map(str::to_owned),
        }
    }

    #[test]
    fn an_owned_link_has_its_ids_sorted_and_the_objects_name() {
        let plan = VpcLinkPlan::of(
            &spec(
                Some(&["subnet-b", "subnet-a"]),
                Some(&["sg-2", "sg-1"]),
                None,
            ),
            "dev-ns-x-1234",
        );
        assert_eq!(
            plan,
            VpcLinkPlan::Owned {
                name: "dev-ns-x-1234".into(),
                subnet_ids: vec!["subnet-a".into(), "subnet-b".into()],
                security_group_ids: vec!["sg-1".into(), "sg-2".into()],
            }
        );
        let no_groups = VpcLinkPlan::of(&spec(Some(&["subnet-a"]), None, None), "n");
        assert!(
            matches!(no_groups, VpcLinkPlan::Owned { security_group_ids, .. } if security_group_ids.is_empty())
        );
    }

    #[test]
    fn a_referenced_link_is_its_id() {
        assert_eq!(
            VpcLinkPlan::of(&spec(None, None, Some("abcd123")), "n"),
            VpcLinkPlan::Referenced {
                id: "abcd123".into()
            }
        );
    }

    #[test]
    fn private_targets_go_through_the_link_and_others_stay() {
        let private = IntegrationTarget::Private {
            uri: "arn:listener".into(),
            vpc_link_id: String::new(),
            tls_server_name: Some("orders.internal".into()),
        };
        assert_eq!(
            through_link(&private, Some("abcd123")),
            IntegrationTarget::Private {
                uri: "arn:listener".into(),
                vpc_link_id: "abcd123".into(),
                tls_server_name: Some("orders.internal".into()),
            }
        );
        let http = IntegrationTarget::Http {
            url: "https://x".into(),
            method: "ANY".into(),
        };
        assert_eq!(through_link(&http, Some("abcd123")), http);
    }
}
