//! `AuthedApiTenant`: the platform team's word on what the AuthedApis of some namespaces
//! may use. A namespace user decides routes and targets; which Lambda functions those
//! may be and which OIDC issuers they may federate are the platform's decision, made
//! here (cluster-scoped, so a namespace user cannot edit it) and enforced twice: at
//! admission by the chart's ValidatingAdmissionPolicy, and by the operator before any
//! AWS call (an object outside its tenant's limits is `Stalled`, its resources untouched).
//!
//! A namespace no tenant selects gets the operator's defaults (`--allowed-issuers`,
//! `--allowed-functions`: Auth0's domains, and no function at all). A namespace two
//! tenants select is refused until the platform removes the overlap.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::core::SelectorExt;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use crate::api::AuthedApiSpec;
use crate::plan::normalize_domain;

/// What the AuthedApis in a set of namespaces may use. Owned by the platform team.
#[derive(CustomResource, KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[kube(
    group = "authedapi.dev",
    version = "v1alpha1",
    kind = "AuthedApiTenant",
    shortname = "aatenant",
    doc = "What the AuthedApis of a set of namespaces may use: Lambda functions and OIDC issuers. Owned by the platform team.",
    printcolumn = r#"{"name":"Namespaces","type":"string","jsonPath":".spec.namespaces"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[x_kube(validation = Rule::new("size(self.namespaces) > 0 || has(self.namespaceSelector)")
    .message("select namespaces: give namespaces, a namespaceSelector, or both"))]
#[serde(rename_all = "camelCase")]
pub struct AuthedApiTenantSpec {
    /// Namespaces this tenant governs, by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 256))]
    pub namespaces: Vec<String>,

    /// Namespaces this tenant governs, by label (as a NetworkPolicy selects them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<LabelSelector>,

    /// Lambda functions routes may target: ARN patterns where `*` matches any characters
    /// (e.g. `arn:aws:lambda:us-east-1:123456789012:function:team-a-*`). Empty: none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    pub allowed_functions: Vec<String>,

    /// OIDC issuers (hosts, with `*` wildcards, e.g. `*.auth0.com` or
    /// `login.example.com`) the AuthedApis may federate. Absent: the operator's
    /// `--allowed-issuers`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub allowed_issuers: Option<Vec<String>>,
}

/// The limits that apply to one namespace, and where they come from.
#[derive(Clone, Debug, PartialEq)]
pub struct Guardrails {
    /// `tenant <name>` or `the operator's defaults`, for messages.
    pub source: String,
    pub allowed_functions: Vec<String>,
    pub allowed_issuers: Vec<String>,
}

/// The operator's own limits, for namespaces no tenant selects.
#[derive(Clone, Debug, PartialEq)]
pub struct Defaults {
    pub allowed_functions: Vec<String>,
    pub allowed_issuers: Vec<String>,
}

impl AuthedApiTenant {
    /// Whether this tenant governs `namespace` (with `labels`).
    pub fn selects(&self, namespace: &str, labels: &BTreeMap<String, String>) -> bool {
        if self.spec.namespaces.iter().any(|n| n == namespace) {
            return true;
        }
        let Some(selector) = &self.spec.namespace_selector else {
            return false;
        };
        match kube::core::Selector::try_from(selector.clone()) {
            Ok(selector) => selector.matches(labels),
            // A selector the API server accepted but we cannot read selects nothing.
            Err(_) => false,
        }
    }

    /// Whether any tenant could select by label (so namespace labels are needed).
    pub fn uses_labels(tenants: &[AuthedApiTenant]) -> bool {
        tenants.iter().any(|t| t.spec.namespace_selector.is_some())
    }
}

/// The guardrails of `namespace`: its tenant's, else the operator's; an error when more
/// than one tenant selects it.
pub fn guardrails_for(
    namespace: &str,
    labels: &BTreeMap<String, String>,
    tenants: &[AuthedApiTenant],
    defaults: &Defaults,
) -> Result<Guardrails, String> {
    let mut selecting: Vec<&AuthedApiTenant> = tenants
        .iter()
        .filter(|t| t.metadata.deletion_timestamp.is_none() && t.selects(namespace, labels))
        .collect();
    selecting.sort_by_key(|t| t.metadata.name.clone());
    match selecting.as_slice() {
        [] => Ok(Guardrails {
            source: "the operator's defaults (no AuthedApiTenant selects this namespace)".into(),
            allowed_functions: defaults.allowed_functions.clone(),
            allowed_issuers: defaults.allowed_issuers.clone(),
        }),
        [tenant] => Ok(Guardrails {
            source: format!(
                "AuthedApiTenant {}",
                tenant.metadata.name.as_deref().unwrap_or_default()
            ),
            allowed_functions: tenant.spec.allowed_functions.clone(),
            allowed_issuers: tenant
                .spec
                .allowed_issuers
                .clone()
                .unwrap_or_else(|| defaults.allowed_issuers.clone()),
        }),
        several => Err(format!(
            "namespace {namespace} is selected by more than one AuthedApiTenant ({}): \
             the platform team must make them select it once",
            several
                .iter()
                .map(|t| t.metadata.name.as_deref().unwrap_or_default())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// `pattern` (where `*` is any run of characters, `?` one) matches `text` whole.
pub fn matches(pattern: &str, text: &str) -> bool {
    wildmatch::WildMatch::new(pattern).matches(text)
}

/// What `spec` uses that `guardrails` do not allow, one sentence each (empty: all allowed).
pub fn violations(spec: &AuthedApiSpec, guardrails: &Guardrails) -> Vec<String> {
    let mut found = Vec::new();
    let issuer = normalize_domain(&spec.auth0.domain);
    if !guardrails
        .allowed_issuers
        .iter()
        .any(|p| matches(&normalize_domain(p), &issuer))
    {
        found.push(format!(
            "the issuer {issuer} is not allowed by {} (allowed: {})",
            guardrails.source,
            list_or_none(&guardrails.allowed_issuers)
        ));
    }
    let mut functions: Vec<&str> = spec
        .routes
        .iter()
        .filter_map(|r| r.target.lambda.as_ref().map(|l| l.function_arn.as_str()))
        .collect();
    functions.sort();
    functions.dedup();
    for function in functions {
        if !guardrails
            .allowed_functions
            .iter()
            .any(|p| matches(p, function))
        {
            found.push(format!(
                "the Lambda function {function} is not allowed by {} (allowed: {})",
                guardrails.source,
                list_or_none(&guardrails.allowed_functions)
            ));
        }
    }
    found
}

fn list_or_none(patterns: &[String]) -> String {
    if patterns.is_empty() {
        "none".into()
    } else {
        patterns.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::api::ObjectMeta;

    fn tenant(name: &str, spec: AuthedApiTenantSpec) -> AuthedApiTenant {
        AuthedApiTenant {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            spec,
        }
    }

    fn spec_with(namespaces: &[&str], functions: &[&str]) -> AuthedApiTenantSpec {
        AuthedApiTenantSpec {
            namespaces: namespaces.iter().map(|s| s.to_string()).collect(),
            namespace_selector: None,
            allowed_functions: functions.iter().map(|s| s.to_string()).collect(),
            allowed_issuers: None,
        }
    }

    fn defaults() -> Defaults {
        Defaults {
            allowed_functions: vec![],
            allowed_issuers: vec!["*.auth0.com".into()],
        }
    }

    fn seed() -> AuthedApiSpec {
        serde_yaml::from_str(
            r#"
stage: dev
auth0: {domain: myorg.us.auth0.com, clientId: abc}
routes:
  - route: GET /private
    target: {lambda: {functionArn: "arn:aws:lambda:us-east-1:123456789012:function:team-a-private"}}
  - route: GET /public
    authorization: none
    target: {http: {url: "https://example.com/"}}
"#,
        )
        .unwrap()
    }

    #[test]
    fn a_namespace_without_tenant_gets_the_defaults_and_no_functions() {
        let g = guardrails_for("a", &BTreeMap::new(), &[], &defaults()).unwrap();
        let found = violations(&seed(), &g);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].contains("team-a-private") && found[0].contains("allowed: none"));
    }

    #[test]
    fn a_tenant_allows_its_functions_only() {
        let tenants = [tenant(
            "team-a",
            spec_with(
                &["a"],
                &["arn:aws:lambda:us-east-1:123456789012:function:team-a-*"],
            ),
        )];
        let g = guardrails_for("a", &BTreeMap::new(), &tenants, &defaults()).unwrap();
        assert_eq!(g.source, "AuthedApiTenant team-a");
        assert!(violations(&seed(), &g).is_empty());
        let other = guardrails_for("b", &BTreeMap::new(), &tenants, &defaults()).unwrap();
        assert!(!violations(&seed(), &other).is_empty());
    }

    #[test]
    fn selectors_match_labels() {
        let mut spec = spec_with(&[], &["*"]);
        spec.namespace_selector = Some(LabelSelector {
            match_labels: Some(BTreeMap::from([("team".into(), "a".into())])),
            ..Default::default()
        });
        let tenants = [tenant("by-label", spec)];
        let labelled = BTreeMap::from([("team".to_owned(), "a".to_owned())]);
        let g = guardrails_for("x", &labelled, &tenants, &defaults()).unwrap();
        assert_eq!(g.source, "AuthedApiTenant by-label");
        let g = guardrails_for("x", &BTreeMap::new(), &tenants, &defaults()).unwrap();
        assert!(g.source.contains("defaults"));
    }

    #[test]
    fn two_tenants_on_one_namespace_are_refused() {
        let tenants = [
            tenant("one", spec_with(&["a"], &["*"])),
            tenant("two", spec_with(&["a"], &["*"])),
        ];
        let e = guardrails_for("a", &BTreeMap::new(), &tenants, &defaults()).unwrap_err();
        assert!(e.contains("one, two"), "{e}");
    }

    #[test]
    fn issuers_are_checked_as_hosts() {
        let mut spec = seed();
        let g = Guardrails {
            source: "t".into(),
            allowed_functions: vec!["*".into()],
            allowed_issuers: vec!["*.auth0.com".into()],
        };
        assert!(violations(&spec, &g).is_empty());
        spec.auth0.domain = "https://token.actions.githubusercontent.com/".into();
        let found = violations(&spec, &g);
        assert!(
            found[0].contains("token.actions.githubusercontent.com"),
            "{found:?}"
        );
        spec.auth0.domain = "evilauth0.com".into();
        assert_eq!(violations(&spec, &g).len(), 1);
    }

    #[test]
    fn star_matches_across_separators_as_iam_does() {
        assert!(matches(
            "arn:aws:lambda:*:*:function:*",
            "arn:aws:lambda:us-east-1:1:function:f"
        ));
        assert!(!matches(
            "arn:aws:lambda:*:1:function:a-*",
            "arn:aws:lambda:us-east-1:2:function:a-x"
        ));
    }
}
