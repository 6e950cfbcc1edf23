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
use crate::plan::issuer_name;

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

    /// Lambda functions routes may target and authorizers may run: ARN patterns where `*`
    /// matches any characters (e.g.
    /// `arn:aws:lambda:us-east-1:123456789012:function:team-a-*`). Empty: none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    pub allowed_functions: Vec<String>,

    /// Private targets routes may send requests to through a VPC link (an ALB/NLB listener
    /// or a Cloud Map service): ARN patterns where `*` matches any characters (e.g.
    /// `arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/team-a-*`).
    /// Empty: none (a public route in front of another team's internal load balancer is
    /// for the platform to allow).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    pub allowed_private_targets: Vec<String>,

    /// OIDC issuers the AuthedApis may federate: a host, or a host and a path, with `*`
    /// and `?` wildcards, e.g. `*.auth0.com`, `*.okta.com/oauth2/*` or
    /// `login.example.com/realms/team-a`. A host-only pattern admits only issuers without
    /// a path (the host itself); to admit paths on a host, say which (`host/*` for any).
    /// In the host `*` never reaches into the path; in the path it matches across `/`.
    /// Absent: the operator's `--allowed-issuers`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(max = 64),
        inner(
            regex(pattern = r"^(https://)?[A-Za-z0-9*?.-]+(/[A-Za-z0-9._~:@*?-]+)*/?$"),
            length(min = 1, max = 255)
        )
    )]
    pub allowed_issuers: Option<Vec<String>>,

    /// The AWS account these namespaces' resources live in, reached by assuming a role
    /// there. Absent: the operator's own account, if the operator allows it
    /// (`--own-account`). Once an object has resources in an account, moving its namespace
    /// to another account stalls it; its resources stay where they are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws: Option<TenantAws>,
}

/// An AWS account, as the operator reaches it: by assuming a role in it with its own
/// credentials (which are used for nothing else there).
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "camelCase")]
pub struct TenantAws {
    /// The role to assume, e.g. `arn:aws:iam::111122223333:role/authedapi`. Its trust
    /// policy lets the operator's role assume it (with the external id); its policy is
    /// `authedapi iam-policy --account-id <that account>`.
    #[schemars(regex(
        pattern = r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/([\x21-\x7e]+/)*[A-Za-z0-9+=,.@_-]{1,64}$"
    ))]
    pub role_arn: String,

    /// The external id the role's trust policy requires (`sts:ExternalId`), as AWS
    /// recommends for a role a third party assumes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        regex(pattern = r"^[A-Za-z0-9+=,.@:/_-]+$"),
        length(min = 2, max = 1224)
    )]
    pub external_id: Option<String>,

    /// The role session's name (CloudTrail shows it). Default: `authedapi-<cluster id>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[A-Za-z0-9+=,.@_-]+$"), length(min = 2, max = 64))]
    pub session_name: Option<String>,

    /// The region of objects without spec.region. Default: the operator's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[a-z]{2}(-[a-z]+)+-[0-9]$"))]
    pub region: Option<String>,

    /// The permissions boundary (policy name or ARN in that account) of every role
    /// created there. Default: the operator's `--permissions-boundary`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 2048))]
    pub permissions_boundary: Option<String>,

    /// The operator's client-side rate limits in that account, `SERVICE=RATE[:BURST]`
    /// (e.g. `apigateway=5:20` for an account other tools use too). Services not named
    /// keep the operator's `--aws-rate-limit`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(max = 8),
        inner(regex(
            pattern = r"^(apigateway|cognito-identity|iam|lambda|sts)=[0-9]+(\.[0-9]+)?(:[1-9][0-9]*)?$"
        ))
    )]
    pub rate_limits: Vec<String>,
}

impl TenantAws {
    /// The account the role lives in (a role's ARN names its account).
    pub fn account(&self) -> &str {
        self.role_arn.split(':').nth(4).unwrap_or_default()
    }
}

/// The limits that apply to one namespace, and where they come from.
#[derive(Clone, Debug, PartialEq)]
pub struct Guardrails {
    /// `tenant <name>` or `the operator's defaults`, for messages.
    pub source: String,
    pub allowed_functions: Vec<String>,
    pub allowed_private_targets: Vec<String>,
    pub allowed_issuers: Vec<String>,
    /// The account to act in: None for the operator's own.
    pub aws: Option<TenantAws>,
}

/// The operator's own limits, for namespaces no tenant selects.
#[derive(Clone, Debug, PartialEq)]
pub struct Defaults {
    pub allowed_functions: Vec<String>,
    pub allowed_private_targets: Vec<String>,
    pub allowed_issuers: Vec<String>,
    /// Whether namespaces no tenant maps to an account use the operator's own.
    pub own_account: bool,
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
            allowed_private_targets: defaults.allowed_private_targets.clone(),
            allowed_issuers: defaults.allowed_issuers.clone(),
            aws: None,
        }),
        [tenant] => Ok(Guardrails {
            source: format!(
                "AuthedApiTenant {}",
                tenant.metadata.name.as_deref().unwrap_or_default()
            ),
            allowed_functions: tenant.spec.allowed_functions.clone(),
            allowed_private_targets: tenant.spec.allowed_private_targets.clone(),
            allowed_issuers: tenant
                .spec
                .allowed_issuers
                .clone()
                .unwrap_or_else(|| defaults.allowed_issuers.clone()),
            aws: tenant.spec.aws.clone(),
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

/// Whether the allowed-issuer `pattern` admits the issuer named `name` (host and path, as
/// [`issuer_name`] gives it). Host and path are matched apart: the host pattern against
/// the host only (so `*.auth0.com` never admits `evil.example/x.auth0.com`), the path
/// pattern against the path, where `*` matches across `/` as it does in IAM's ARNs. A
/// pattern without a path admits only issuers without one; one with a path only issuers
/// with a path it matches.
pub fn issuer_allowed(pattern: &str, name: &str) -> bool {
    let pattern = issuer_name(pattern);
    let (pattern_host, pattern_path) = split_issuer(&pattern);
    let (host, path) = split_issuer(name);
    if !matches(pattern_host, host) {
        return false;
    }
    match (pattern_path, path) {
        (None, None) => true,
        (Some(pattern_path), Some(path)) => matches(pattern_path, path),
        _ => false,
    }
}

/// "host/a/b" -> ("host", Some("a/b")).
fn split_issuer(name: &str) -> (&str, Option<&str>) {
    match name.split_once('/') {
        Some((host, path)) => (host, Some(path)),
        None => (name, None),
    }
}

/// Whether `guardrails` allow the issuer `spec` federates.
pub fn issuer_allowed_by(spec: &AuthedApiSpec, guardrails: &Guardrails) -> bool {
    crate::plan::issuer_of(spec).is_ok_and(|issuer| {
        guardrails
            .allowed_issuers
            .iter()
            .any(|p| issuer_allowed(p, &issuer.name))
    })
}

/// What `spec` uses that `guardrails` do not allow, one sentence each (empty: all allowed).
pub fn violations(spec: &AuthedApiSpec, guardrails: &Guardrails) -> Vec<String> {
    let mut found = Vec::new();
    match crate::plan::issuer_of(spec) {
        Ok(issuer) => {
            if !guardrails
                .allowed_issuers
                .iter()
                .any(|p| issuer_allowed(p, &issuer.name))
            {
                found.push(format!(
                    "the issuer {} is not allowed by {} (allowed: {})",
                    issuer.name,
                    guardrails.source,
                    list_or_none(&guardrails.allowed_issuers)
                ));
            }
        }
        Err(e) => found.push(e.0),
    }
    // Targets and authorizers alike: API Gateway invokes both.
    for function in spec.lambda_functions() {
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
    for target in spec.private_targets() {
        if !guardrails
            .allowed_private_targets
            .iter()
            .any(|p| matches(p, target))
        {
            found.push(format!(
                "the private target {target} is not allowed by {} (allowed: {})",
                guardrails.source,
                list_or_none(&guardrails.allowed_private_targets)
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
            allowed_private_targets: Vec::new(),
            allowed_issuers: None,
            aws: None,
        }
    }

    fn defaults() -> Defaults {
        Defaults {
            allowed_functions: vec![],
            allowed_private_targets: Vec::new(),
            allowed_issuers: vec!["*.auth0.com".into()],
            own_account: true,
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

    /// Team A's tenant: namespace a, its functions team-a-*.
    fn team_a() -> [AuthedApiTenant; 1] {
        [tenant(
            "team-a",
            spec_with(
                &["a"],
                &["arn:aws:lambda:us-east-1:123456789012:function:team-a-*"],
            ),
        )]
    }

    #[test]
    fn a_tenant_allows_its_functions_only() {
        let tenants = team_a();
        let g = guardrails_for("a", &BTreeMap::new(), &tenants, &defaults()).unwrap();
        assert_eq!(g.source, "AuthedApiTenant team-a");
        assert!(violations(&seed(), &g).is_empty());
        let other = guardrails_for("b", &BTreeMap::new(), &tenants, &defaults()).unwrap();
        assert!(!violations(&seed(), &other).is_empty());
    }

    /// A route through a VPC link reaches a load balancer or service inside the VPC: only
    /// one the tenant (or the operator's defaults) names.
    #[test]
    fn private_targets_are_refused_unless_allowed() {
        let mut spec = seed();
        spec.routes.push(
            serde_yaml::from_str(
                r#"
route: ANY /orders/{proxy+}
target: {private: {listenerArn: "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/payments/50dc6c495c0c9188/f2f7dc8efc522ab2"}}
"#,
            )
            .unwrap(),
        );
        let mut tenants = team_a();
        let g = guardrails_for("a", &BTreeMap::new(), &tenants, &defaults()).unwrap();
        let found = violations(&spec, &g);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].starts_with("the private target arn:aws:elasticloadbalancing:")
                && found[0].contains("allowed: none"),
            "{found:?}"
        );
        tenants[0].spec.allowed_private_targets = vec![
            "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/orders/*".into(),
        ];
        let g = guardrails_for("a", &BTreeMap::new(), &tenants, &defaults()).unwrap();
        assert_eq!(violations(&spec, &g).len(), 1, "payments is not orders");
        tenants[0].spec.allowed_private_targets = vec![
            "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/payments/*".into(),
        ];
        let g = guardrails_for("a", &BTreeMap::new(), &tenants, &defaults()).unwrap();
        assert!(violations(&spec, &g).is_empty());
    }

    #[test]
    fn an_authorizer_function_is_held_to_the_same_rules_as_a_target() {
        let g = guardrails_for("a", &BTreeMap::new(), &team_a(), &defaults()).unwrap();
        let mut spec = seed();
        spec.authorizers = serde_yaml::from_str(
            r#"
- name: users
  lambda: {functionArn: "arn:aws:lambda:us-east-1:123456789012:function:team-b-auth"}
"#,
        )
        .unwrap();
        assert_eq!(
            violations(&spec, &g),
            vec![
                "the Lambda function arn:aws:lambda:us-east-1:123456789012:function:team-b-auth \
                 is not allowed by AuthedApiTenant team-a (allowed: \
                 arn:aws:lambda:us-east-1:123456789012:function:team-a-*)"
            ]
        );
        spec.authorizers[0].lambda.function_arn =
            "arn:aws:lambda:us-east-1:123456789012:function:team-a-auth".into();
        assert!(violations(&spec, &g).is_empty());
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
            allowed_private_targets: Vec::new(),
            allowed_issuers: vec!["*.auth0.com".into()],
            aws: None,
        };
        assert!(violations(&spec, &g).is_empty());
        spec.auth0.as_mut().unwrap().domain = "https://token.actions.githubusercontent.com/".into();
        let found = violations(&spec, &g);
        assert!(
            found[0].contains("token.actions.githubusercontent.com"),
            "{found:?}"
        );
        spec.auth0.as_mut().unwrap().domain = "evilauth0.com".into();
        assert_eq!(violations(&spec, &g).len(), 1);
    }

    fn with_issuer(issuer: &str) -> AuthedApiSpec {
        let mut spec = seed();
        spec.auth0 = None;
        spec.oidc = Some(crate::api::Oidc {
            issuer: issuer.into(),
            client_id: "c".into(),
            audience: None,
        });
        spec
    }

    #[test]
    fn issuer_patterns_match_host_and_path_apart() {
        // A host-only pattern admits the host itself, never a path on it.
        assert!(issuer_allowed("*.auth0.com", "myorg.us.auth0.com"));
        assert!(issuer_allowed(
            "https://login.example.com/",
            "login.example.com"
        ));
        assert!(!issuer_allowed(
            "login.example.com",
            "login.example.com/realms/a"
        ));
        assert!(!issuer_allowed("*.auth0.com", "myorg.auth0.com/extra"));
        // The host's * never reaches into the path.
        assert!(!issuer_allowed("*.auth0.com", "evil.example/x.auth0.com"));
        assert!(!issuer_allowed(
            "*.okta.com/oauth2/*",
            "evil.example/a.okta.com/oauth2/x"
        ));
        // Paths: as written, or with wildcards that cross /.
        assert!(issuer_allowed(
            "*.okta.com/oauth2/*",
            "acme.okta.com/oauth2/default"
        ));
        assert!(!issuer_allowed(
            "*.okta.com/oauth2/*",
            "acme.okta.com/other/default"
        ));
        assert!(!issuer_allowed("*.okta.com/oauth2/*", "acme.okta.com"));
        assert!(issuer_allowed(
            "login.example.com/realms/*",
            "login.example.com/realms/a/b"
        ));
        assert!(issuer_allowed(
            "login.example.com/realms/team-a",
            "login.example.com/realms/team-a"
        ));
        assert!(!issuer_allowed(
            "login.example.com/realms/team-a",
            "login.example.com/realms/team-b"
        ));
        // Hosts compare without case, paths with it.
        assert!(issuer_allowed(
            "LOGIN.example.com/realms/Team",
            "login.example.com/realms/Team"
        ));
        assert!(!issuer_allowed(
            "login.example.com/realms/team",
            "login.example.com/realms/Team"
        ));
    }

    #[test]
    fn an_oidc_issuer_is_checked_by_host_and_path() {
        let g = Guardrails {
            source: "AuthedApiTenant t".into(),
            allowed_functions: vec!["*".into()],
            allowed_private_targets: Vec::new(),
            allowed_issuers: vec!["*.okta.com/oauth2/*".into()],
            aws: None,
        };
        assert!(violations(&with_issuer("https://acme.okta.com/oauth2/default"), &g).is_empty());
        let found = violations(&with_issuer("https://login.example.com/realms/a"), &g);
        assert_eq!(
            found,
            vec![
                "the issuer login.example.com/realms/a is not allowed by AuthedApiTenant t \
                  (allowed: *.okta.com/oauth2/*)"
                    .to_owned()
            ]
        );
        assert_eq!(
            violations(&seed(), &g).len(),
            1,
            "an Auth0 domain is a host"
        );
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
