//! `spec.access`: a role per rule, and what each role (the default one included) may
//! invoke, exactly its routes.

use std::collections::BTreeSet;

use super::names::rule_role_name;
use super::{Identity, PlanError};
use crate::api::{AuthedApiSpec, Authorization};
use crate::route_access::{self, RoleResources};

/// The roles and Cognito role mapping of `spec.access`.
#[derive(Clone, Debug, PartialEq)]
pub struct AccessPlan {
    pub rules: Vec<AccessRulePlan>,
    /// Users matching no rule get no credentials (else the default role).
    pub deny_unmatched: bool,
    /// The IAM routes the default authenticated role may invoke.
    pub default_role_routes: Vec<String>,
}

/// One rule: its role, and the routes that role may invoke.
#[derive(Clone, Debug, PartialEq)]
pub struct AccessRulePlan {
    pub name: String,
    pub role_name: String,
    pub claim: String,
    pub match_type: String,
    pub value: String,
    pub routes: Vec<String>,
    /// What this rule's role may invoke (exactly its routes).
    pub resources: RoleResources,
}

/// What each role may invoke, exactly its routes (see `route_access`): the default
/// role's (every IAM route, or with access rules what `unlistedRoutes` leaves it), and each
/// rule's, written into `access`. A spec IAM cannot express exactly is refused.
pub(super) fn role_resources(
    spec: &AuthedApiSpec,
    access: Option<&mut AccessPlan>,
) -> Result<RoleResources, PlanError> {
    let all: Vec<&str> = spec.routes.iter().map(|r| r.route.as_str()).collect();
    let iam: BTreeSet<&str> = spec
        .routes
        .iter()
        .filter(|r| spec.authorization_of(r) == Authorization::Iam)
        .map(|r| r.route.as_str())
        .collect();
    let default_routes: Vec<&str> = match &access {
        Some(a) => a.default_role_routes.iter().map(String::as_str).collect(),
        None => iam.iter().copied().collect(),
    };
    let names: Vec<String> = access
        .as_ref()
        .map(|a| {
            a.rules
                .iter()
                .map(|r| format!("access rule {:?}", r.name))
                .collect()
        })
        .unwrap_or_default();
    let mut roles = vec![route_access::Role {
        name: "the default authenticated role",
        routes: default_routes,
    }];
    if let Some(a) = &access {
        for (rule, name) in a.rules.iter().zip(&names) {
            roles.push(route_access::Role {
                name,
                routes: rule.routes.iter().map(String::as_str).collect(),
            });
        }
    }
    let mut resources = route_access::role_resources(&all, &iam, &roles)
        .map_err(|e| PlanError(e.0))?
        .into_iter();
    let default = resources.next().unwrap_or_default();
    if let Some(a) = access {
        for (rule, r) in a.rules.iter_mut().zip(resources) {
            rule.resources = r;
        }
    }
    Ok(default)
}

/// Roles per rule, and which IAM routes the default role keeps.
pub(super) fn plan_access(
    spec: &AuthedApiSpec,
    access: &crate::api::Access,
    who: &Identity<'_>,
    base: &str,
) -> Result<AccessPlan, PlanError> {
    let iam_routes: Vec<&str> = spec
        .routes
        .iter()
        .filter(|r| spec.authorization_of(r) == Authorization::Iam)
        .map(|r| r.route.as_str())
        .collect();
    let mut named = BTreeSet::new();
    let mut rules = Vec::with_capacity(access.rules.len());
    for rule in &access.rules {
        for key in &rule.routes {
            if !iam_routes.contains(&key.as_str()) {
                return Err(PlanError(format!(
                    "access rule {:?} names route {key:?}, which is not an iam route of spec.routes",
                    rule.name
                )));
            }
            named.insert(key.clone());
        }
        rules.push(AccessRulePlan {
            name: rule.name.clone(),
            role_name: rule_role_name(base, who, &spec.stage, &rule.name),
            claim: rule.claim.clone(),
            match_type: rule.match_type.as_str().to_owned(),
            value: rule.value.clone(),
            routes: rule.routes.clone(),
            resources: RoleResources::default(),
        });
    }
    let default_role_routes = match access.unlisted_routes {
        crate::api::UnlistedRoutes::Nobody => Vec::new(),
        crate::api::UnlistedRoutes::AuthenticatedRole => iam_routes
            .iter()
            .filter(|k| !named.contains(**k))
            .map(|k| k.to_string())
            .collect(),
    };
    Ok(AccessPlan {
        rules,
        deny_unmatched: access.unmatched == crate::api::Unmatched::Deny,
        default_role_routes,
    })
}

#[cfg(test)]
mod tests {
    use crate::plan::test_support::*;

    #[test]
    fn a_rule_whose_parameter_reaches_another_rules_route_gets_a_deny() {
        let mut spec = seed();
        spec.routes = vec![
            route("GET /pets/{id}", None, http("https://example.com")),
            route("GET /pets/{id}/owner", None, http("https://example.com")),
        ];
        spec.access = Some(serde_json::from_value(json!({"rules": [
            {"name": "reader", "claim": "c", "matchType": "Equals", "value": "r", "routes": ["GET /pets/{id}"]},
            {"name": "admin", "claim": "c", "matchType": "Equals", "value": "a", "routes": ["GET /pets/{id}/owner"]}
        ]})).unwrap());
        let p = plan(&spec, &who("default", "x", "us-east-1")).unwrap();
        let reader = p
            .policy_for("id", &p.access.as_ref().unwrap().rules[0].resources)
            .unwrap();
        let prefix = format!("arn:aws:execute-api:us-east-1:{ACCOUNT}:id/$default");
        assert_eq!(
            reader["Statement"][0]["Resource"],
            json!([format!("{prefix}/GET/pets/*")])
        );
        assert_eq!(reader["Statement"][1]["Effect"], "Deny");
        assert_eq!(
            reader["Statement"][1]["Resource"],
            json!([format!("{prefix}/GET/pets/*/owner")])
        );
    }

    #[test]
    fn rules_iam_cannot_separate_are_refused_with_the_routes() {
        let mut spec = seed();
        spec.routes = vec![
            route("GET /pets/{id}", None, http("https://example.com")),
            route("GET /pets/{rest+}", None, http("https://example.com")),
        ];
        spec.access = Some(serde_json::from_value(json!({"rules": [
            {"name": "reader", "claim": "c", "matchType": "Equals", "value": "r", "routes": ["GET /pets/{id}"]},
            {"name": "admin", "claim": "c", "matchType": "Equals", "value": "a", "routes": ["GET /pets/{rest+}"]}
        ]})).unwrap());
        let e = plan(&spec, &who("default", "x", "us-east-1")).unwrap_err();
        assert!(
            e.0.starts_with("spec.access: IAM cannot give access rule"),
            "{e}"
        );
    }
}
