//! The desired AWS state of one AuthedApi, as a pure function of its spec and identity.
//!
//! No I/O here: names, tags, policies, the route table and the JWT settings are computed
//! from (spec, namespace, name, uid, account, region, cluster id), so every rule is unit
//! tested alone. Values AWS assigns (API id, pool id) are parameters of the methods that
//! need them.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::api::{AuthedApiSpec, Authorization, Route};
use crate::aws::apigateway::{
    AccessLogConfig, CorsConfig, DEFAULT_STAGE, IntegrationTarget, RouteAuth, StageSettings,
    Throttle,
};
use crate::route_access::{self, RoleResources};

/// Tag keys every taggable resource carries.
pub const TAG_OWNER: &str = "authedapi.dev/owner";
pub const TAG_UID: &str = "authedapi.dev/uid";
pub const TAG_STAGE: &str = "authedapi.dev/stage";
pub const TAG_CLUSTER: &str = "authedapi.dev/cluster";
/// On a shared OIDC provider: set when authedapi created it (so it may delete it).
pub const TAG_MANAGED_BY: &str = "authedapi.dev/managed-by";
pub const MANAGED_BY: &str = "authedapi";

/// IAM path of every role authedapi creates: the operator's own policy may create, change
/// and pass only roles under it.
pub const ROLE_PATH: &str = "/authedapi/";
/// The inline policy on the authenticated role.
pub const INVOKE_POLICY_NAME: &str = "authedapi-invoke";
/// The JWT authorizer's name inside the API.
pub const JWT_AUTHORIZER_NAME: &str = "auth0";
/// Payload format of Lambda proxy integrations (the HTTP API default, as in SST).
pub const LAMBDA_PAYLOAD_FORMAT: &str = "2.0";

/// AWS name limits.
const API_NAME_MAX: usize = 128;
const POOL_NAME_MAX: usize = 128;
const ROLE_NAME_MAX: usize = 64;
const HASH_LEN: usize = 8;

/// Who the object is and where its resources go.
#[derive(Clone, Debug)]
pub struct Identity<'a> {
    pub namespace: &'a str,
    pub name: &'a str,
    pub uid: &'a str,
    pub account: &'a str,
    pub region: &'a str,
    pub cluster_id: &'a str,
    /// The permissions boundary every role carries: an ARN, or a policy name in the account.
    pub permissions_boundary: &'a str,
}

/// A spec the API server accepted but AWS would not.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct PlanError(pub String);

/// One route as it should exist.
#[derive(Clone, Debug, PartialEq)]
pub struct PlannedRoute {
    pub key: String,
    pub target: IntegrationTarget,
    pub authorization: Authorization,
    pub scopes: Vec<String>,
}

/// The JWT authorizer, when any route uses `jwt`.
#[derive(Clone, Debug, PartialEq)]
pub struct JwtPlan {
    pub name: String,
    /// The `iss` of the tokens, compared as it is: `https://<domain>/` for Auth0 (with the
    /// trailing slash Auth0 puts in its tokens), spec.oidc.issuer exactly as given.
    pub issuer: String,
    pub audience: Vec<String>,
}

/// The OIDC issuer an object federates, from spec.auth0 or spec.oidc.
#[derive(Clone, Debug, PartialEq)]
pub struct Issuer {
    /// Host and path, without scheme or trailing slash (host in lower case), e.g.
    /// `myorg.us.auth0.com` or `example.okta.com/oauth2/default`: the name of the IAM OIDC
    /// provider (its ARN ends with it), the key of Cognito's `Logins` map and of the pool's
    /// role mapping, and what the platform's allowed issuers are matched against.
    pub name: String,
    /// The `iss` claim of its tokens, as the JWT authorizer compares it.
    pub token_issuer: String,
    pub client_id: String,
    /// Audiences the JWT authorizer accepts.
    pub audience: Vec<String>,
    /// Whether it is an Auth0 tenant (spec.auth0).
    pub auth0: bool,
}

impl Issuer {
    /// `https://<name>`: the provider URL IAM takes, and the base of the discovery document.
    pub fn url(&self) -> String {
        format!("https://{}", self.name)
    }

    /// What to call it in messages: "Auth0", or its name (host and path).
    pub fn display_name(&self) -> String {
        if self.auth0 {
            "Auth0".to_owned()
        } else {
            self.name.clone()
        }
    }

    /// Where its OpenID Connect discovery document is.
    pub fn discovery_url(&self) -> String {
        format!("{}/.well-known/openid-configuration", self.url())
    }
}

/// The issuer `spec` federates (exactly one of spec.auth0 and spec.oidc is set: the CRD
/// says so).
pub fn issuer_of(spec: &AuthedApiSpec) -> Result<Issuer, PlanError> {
    match (&spec.auth0, &spec.oidc) {
        (Some(auth0), None) => {
            let name = issuer_name(&auth0.domain);
            Ok(Issuer {
                token_issuer: format!("https://{name}/"),
                name,
                client_id: auth0.client_id.clone(),
                audience: auth0
                    .audience
                    .clone()
                    .unwrap_or_else(|| vec![auth0.client_id.clone()]),
                auth0: true,
            })
        }
        (None, Some(oidc)) => Ok(Issuer {
            name: issuer_name(&oidc.issuer),
            token_issuer: oidc.issuer.trim().to_owned(),
            client_id: oidc.client_id.clone(),
            audience: oidc
                .audience
                .clone()
                .unwrap_or_else(|| vec![oidc.client_id.clone()]),
            auth0: false,
        }),
        _ => Err(PlanError(
            "set exactly one of spec.auth0 or spec.oidc".to_owned(),
        )),
    }
}

/// The shared OIDC provider of the issuer.
#[derive(Clone, Debug, PartialEq)]
pub struct OidcPlan {
    /// The issuer's name (see [`Issuer::name`]), e.g. myorg.us.auth0.com or
    /// example.okta.com/oauth2/default.
    pub name: String,
    /// https://<name>, as IAM's CreateOpenIDConnectProvider takes it.
    pub url: String,
    pub arn: String,
    pub client_id: String,
    /// Tags put on a provider we create: ownership, and the operator's --resource-tags
    /// (never an object's spec.tags: the provider is shared).
    pub tags: BTreeMap<String, String>,
    /// This cluster's claim on the client id: a tag (key, value = client id) on the
    /// provider, so operators of several clusters sharing an account know who still
    /// uses a client id before removing it.
    pub claim: (String, String),
    /// The record (a tag, value = client id) that this cluster added the client id to a
    /// provider it created: written before the add, and the only reason it ever removes one.
    pub added: (String, String),
}

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
    /// Where the API is called through the domain.
    pub fn url(&self) -> String {
        if self.base_path.is_empty() {
            format!("https://{}", self.name)
        } else {
            format!("https://{}/{}", self.name, self.base_path)
        }
    }
}

/// Prefix of the claim tags on a shared OIDC provider.
pub const TAG_CLAIM_PREFIX: &str = "authedapi.dev/uses/";
/// Prefix of the records of client ids a cluster added to a provider it created.
pub const TAG_ADDED_PREFIX: &str = "authedapi.dev/added/";

/// The claim tag key of `cluster_id` on `client_id`.
pub fn claim_key(cluster_id: &str, client_id: &str) -> String {
    format!(
        "{TAG_CLAIM_PREFIX}{}/{}",
        short_hash(cluster_id),
        short_hash(client_id)
    )
}

/// The tag key recording that `cluster_id` added `client_id` to a provider (written
/// before the client id is added, so a client id is never removed unless it was ours).
pub fn added_key(cluster_id: &str, client_id: &str) -> String {
    format!(
        "{TAG_ADDED_PREFIX}{}/{}",
        short_hash(cluster_id),
        short_hash(client_id)
    )
}

/// The key prefixes of `cluster_id`'s own records on providers: (uses, added).
pub fn record_key_prefixes(cluster_id: &str) -> (String, String) {
    let cluster = short_hash(cluster_id);
    (
        format!("{TAG_CLAIM_PREFIX}{cluster}/"),
        format!("{TAG_ADDED_PREFIX}{cluster}/"),
    )
}

/// AWS's longest tag value (IAM, API Gateway, Cognito).
pub const TAG_VALUE_MAX: usize = 256;
/// AWS's longest tag key.
pub const TAG_KEY_MAX: usize = 128;
/// The most tags AWS allows on one resource (IAM, API Gateway, Cognito).
pub const TAGS_MAX: usize = 50;
/// The tags the operator puts on every resource of an object (owner, uid, stage, cluster).
pub const OUR_TAGS: usize = 4;
/// The prefix of the operator's own tag keys.
pub const OUR_TAG_PREFIX: &str = "authedapi.dev/";

/// Whether `key` is reserved: the operator's own (`authedapi.dev/...`) or AWS's (`aws:...`),
/// in any case (IAM compares tag keys without case).
pub fn reserved_tag_key(key: &str) -> bool {
    let lower = key.to_ascii_lowercase();
    lower.starts_with(OUR_TAG_PREFIX) || lower.starts_with("aws:")
}

/// Whether `c` is a character AWS allows in tags: a letter, a digit, a space separator or
/// one of `_.:/=+-@` (IAM's `[\p{L}\p{Z}\p{N}_.:/=+\-@]`, the narrowest of the services).
fn tag_char(c: char) -> bool {
    c.is_alphabetic()
        || c.is_numeric()
        || (c.is_whitespace() && !c.is_control())
        || "_.:/=+-@".contains(c)
}

/// Why AWS (or the operator) would refuse the organisation's tag `key`=`value`, if it would.
pub fn check_tag(key: &str, value: &str) -> Result<(), String> {
    let length = key.chars().count();
    if length == 0 || length > TAG_KEY_MAX {
        return Err(format!(
            "tag key {key:?}: keys are 1 to {TAG_KEY_MAX} characters"
        ));
    }
    if reserved_tag_key(key) {
        return Err(format!(
            "tag key {key:?}: keys starting with {OUR_TAG_PREFIX} are the operator's own and \
             keys starting with aws: are AWS's; neither can be set"
        ));
    }
    if !key.chars().all(tag_char) {
        return Err(format!(
            "tag key {key:?}: use only letters, digits, spaces and _.:/=+-@"
        ));
    }
    if value.chars().count() > TAG_VALUE_MAX {
        return Err(format!(
            "tag {key}: values are at most {TAG_VALUE_MAX} characters"
        ));
    }
    if !value.chars().all(tag_char) {
        return Err(format!(
            "tag {key}: use only letters, digits, spaces and _.:/=+-@ in the value"
        ));
    }
    Ok(())
}

/// The tags of every resource of an object: the operator-wide `resource_tags`, then
/// `spec_tags` over them (a spec key replaces an operator-wide key that differs only in
/// case: IAM holds one of them), then the operator's own over everything. Returns the
/// tags and the keys that are the organisation's (not the operator's own).
pub fn merge_tags(
    resource_tags: &BTreeMap<String, String>,
    spec_tags: &BTreeMap<String, String>,
    ours: BTreeMap<String, String>,
) -> Result<(BTreeMap<String, String>, BTreeSet<String>), PlanError> {
    for (key, value) in resource_tags {
        check_tag(key, value).map_err(|e| PlanError(format!("--resource-tags: {e}")))?;
    }
    for (key, value) in spec_tags {
        check_tag(key, value).map_err(|e| PlanError(format!("spec.tags: {e}")))?;
    }
    let mut tags: BTreeMap<String, String> = resource_tags
        .iter()
        .filter(|(key, _)| {
            !spec_tags
                .keys()
                .any(|spec_key| spec_key.eq_ignore_ascii_case(key))
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    tags.extend(spec_tags.iter().map(|(k, v)| (k.clone(), v.clone())));
    let keys: BTreeSet<String> = tags.keys().cloned().collect();
    tags.extend(ours);
    if tags.len() > TAGS_MAX {
        return Err(PlanError(format!(
            "spec.tags ({}) and the operator's --resource-tags ({}) make {} tags with the \
             operator's own {OUR_TAGS}; AWS allows {TAGS_MAX} per resource: remove {} from spec.tags",
            spec_tags.len(),
            resource_tags.len(),
            tags.len(),
            tags.len() - TAGS_MAX
        )));
    }
    Ok((tags, keys))
}

/// "namespace/name", for people reading tags; cut to a tag value's limit (a name may be
/// 253 characters). The uid tag, not this one, says whose a resource is.
fn owner_tag(namespace: &str, name: &str) -> String {
    format!("{namespace}/{name}")
        .chars()
        .take(TAG_VALUE_MAX)
        .collect()
}

/// The desired AWS state.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub partition: String,
    pub region: String,
    pub account: String,
    /// Short hash of namespace/name/stage: part of every name, so names never collide.
    pub hash: String,
    pub api_name: String,
    pub identity_pool_name: String,
    pub role_name: String,
    /// The permissions boundary every role of this object is created with.
    pub permissions_boundary_arn: String,
    /// Every resource's tags: the organisation's (operator-wide, then spec.tags) and ours.
    pub tags: BTreeMap<String, String>,
    /// The keys of `tags` that are the organisation's, not the operator's own.
    pub tag_keys: BTreeSet<String>,
    pub integrations: BTreeSet<IntegrationTarget>,
    pub routes: Vec<PlannedRoute>,
    pub jwt: Option<JwtPlan>,
    pub oidc: OidcPlan,
    /// The custom domain, when the spec has one.
    pub domain: Option<DomainPlan>,
    /// Functions the API must be allowed to invoke.
    pub lambda_functions: BTreeSet<String>,
    /// Statement id of our permission on each of those functions.
    pub permission_sid: String,
    /// Access by claim, when the spec has rules.
    pub access: Option<AccessPlan>,
    /// What the default authenticated role may invoke (exactly its routes).
    pub default_role_resources: RoleResources,
    /// CORS of the API (None: none).
    pub cors: Option<CorsConfig>,
    pub disable_execute_api_endpoint: bool,
    /// Throttling and access logs of the `$default` stage.
    pub stage: StageSettings,
}

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

/// The access log line when the spec gives no format: one JSON object per request.
pub const DEFAULT_ACCESS_LOG_FORMAT: &str = r#"{"requestId":"$context.requestId","ip":"$context.identity.sourceIp","cognitoIdentityId":"$context.identity.cognitoIdentityId","requestTime":"$context.requestTime","httpMethod":"$context.httpMethod","routeKey":"$context.routeKey","status":"$context.status","protocol":"$context.protocol","responseLength":"$context.responseLength","integrationLatency":"$context.integrationLatency","authorizerError":"$context.authorizer.error"}"#;

/// Compute the desired AWS state, without operator-wide tags.
pub fn plan(spec: &AuthedApiSpec, who: &Identity<'_>) -> Result<Plan, PlanError> {
    plan_tagged(spec, who, &BTreeMap::new())
}

/// Compute the desired AWS state, with the organisation's tags for every resource (the
/// operator's --resource-tags, under the spec's own).
pub fn plan_tagged(
    spec: &AuthedApiSpec,
    who: &Identity<'_>,
    resource_tags: &BTreeMap<String, String>,
) -> Result<Plan, PlanError> {
    let partition = partition_of(who.region).to_owned();
    let hash = short_hash(&format!("{}/{}/{}", who.namespace, who.name, spec.stage));
    let base = format!("{}-{}-{}", spec.stage, who.namespace, who.name);

    let mut routes = Vec::with_capacity(spec.routes.len());
    let mut integrations = BTreeSet::new();
    let mut lambda_functions = BTreeSet::new();
    for route in &spec.routes {
        check_route_key(&route.route)?;
        let target = integration_target(route, &partition)?;
        if let IntegrationTarget::Lambda { function_arn, .. } = &target {
            lambda_functions.insert(function_arn.clone());
        }
        integrations.insert(target.clone());
        routes.push(PlannedRoute {
            key: route.route.clone(),
            target,
            authorization: spec.authorization_of(route),
            scopes: route.scopes.clone().unwrap_or_default(),
        });
    }

    let issuer = issuer_of(spec)?;
    let jwt = routes
        .iter()
        .any(|r| r.authorization == Authorization::Jwt)
        .then(|| JwtPlan {
            name: JWT_AUTHORIZER_NAME.to_owned(),
            issuer: issuer.token_issuer.clone(),
            audience: issuer.audience.clone(),
        });

    let (tags, tag_keys) = merge_tags(
        resource_tags,
        &spec.tags,
        BTreeMap::from([
            (TAG_OWNER.to_owned(), owner_tag(who.namespace, who.name)),
            (TAG_UID.to_owned(), who.uid.to_owned()),
            (TAG_STAGE.to_owned(), spec.stage.clone()),
            (TAG_CLUSTER.to_owned(), who.cluster_id.to_owned()),
        ]),
    )?;
    let mut provider_tags = resource_tags.clone();
    provider_tags.extend([
        (TAG_MANAGED_BY.to_owned(), MANAGED_BY.to_owned()),
        (TAG_CLUSTER.to_owned(), who.cluster_id.to_owned()),
    ]);
    let domain = spec.domain.as_ref().map(|domain| DomainPlan {
        name: domain.name.clone(),
        certificate_arn: domain.certificate_arn.clone(),
        base_path: domain.base_path.clone().unwrap_or_default(),
        tags: provider_tags.clone(),
    });
    let client_id = issuer.client_id.clone();
    let oidc = OidcPlan {
        url: issuer.url(),
        arn: provider_arn(&partition, who.account, &issuer.name),
        tags: provider_tags,
        claim: (claim_key(who.cluster_id, &client_id), client_id.clone()),
        added: (added_key(who.cluster_id, &client_id), client_id.clone()),
        client_id,
        name: issuer.name,
    };

    let mut access = match &spec.access {
        None => None,
        Some(access) => Some(plan_access(spec, access, who, &base)?),
    };
    let default_role_resources = role_resources(spec, access.as_mut())?;

    Ok(Plan {
        access,
        default_role_resources,
        api_name: with_hash(&base, '-', &hash, API_NAME_MAX),
        identity_pool_name: with_hash(&pool_safe(&base), '_', &hash, POOL_NAME_MAX),
        role_name: with_hash(&base, '-', &hash, ROLE_NAME_MAX),
        permissions_boundary_arn: if who.permissions_boundary.starts_with("arn:") {
            who.permissions_boundary.to_owned()
        } else {
            format!(
                "arn:{partition}:iam::{}:policy/{}",
                who.account, who.permissions_boundary
            )
        },
        permission_sid: format!("authedapi-{hash}"),
        partition,
        region: who.region.to_owned(),
        account: who.account.to_owned(),
        hash,
        tags,
        tag_keys,
        integrations,
        routes,
        jwt,
        oidc,
        domain,
        lambda_functions,
        cors: spec.cors.as_ref().map(|c| {
            CorsConfig {
                allow_origins: c.allow_origins.clone(),
                allow_methods: c.allow_methods.clone(),
                allow_headers: c.allow_headers.clone(),
                expose_headers: c.expose_headers.clone(),
                allow_credentials: c.allow_credentials,
                max_age: c.max_age,
            }
            .normalized()
        }),
        disable_execute_api_endpoint: spec.disable_execute_api_endpoint,
        stage: StageSettings {
            default_throttle: spec.throttling.map(throttle),
            route_throttles: spec
                .routes
                .iter()
                .filter_map(|r| Some((r.route.clone(), throttle(r.throttling?))))
                .collect(),
            access_log: spec.access_log.as_ref().map(|log| AccessLogConfig {
                destination_arn: log.destination_arn.clone(),
                format: log
                    .format
                    .clone()
                    .unwrap_or_else(|| DEFAULT_ACCESS_LOG_FORMAT.to_owned()),
            }),
        },
    })
}

/// What each role may invoke, exactly its routes (see `route_access`): the default
/// role's (every IAM route, or with access rules what `unlistedRoutes` leaves it), and each
/// rule's, written into `access`. A spec IAM cannot express exactly is refused.
fn role_resources(
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
fn plan_access(
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
        let rule_hash = short_hash(&format!(
            "{}/{}/{}/{}",
            who.namespace, who.name, spec.stage, rule.name
        ));
        let room = ROLE_NAME_MAX - HASH_LEN - rule.name.len() - 2;
        let cut: String = base.chars().take(room).collect();
        rules.push(AccessRulePlan {
            name: rule.name.clone(),
            role_name: format!(
                "{}-{}-{rule_hash}",
                cut.trim_end_matches(['-', '.']),
                rule.name
            ),
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

fn throttle(t: crate::api::Throttling) -> Throttle {
    Throttle {
        burst: t.burst_limit,
        rate: t.rate_limit,
    }
}

impl Plan {
    /// The URL clients call.
    pub fn endpoint(&self, api_id: &str) -> String {
        let suffix = if self.partition == "aws-cn" {
            "amazonaws.com.cn"
        } else {
            "amazonaws.com"
        };
        format!("https://{api_id}.execute-api.{}.{suffix}", self.region)
    }

    /// The execute-api ARN of a resource pattern (`METHOD/path`) on the `$default` stage.
    pub fn invoke_arn(&self, api_id: &str, pattern: &str) -> String {
        format!(
            "arn:{}:execute-api:{}:{}:{api_id}/{DEFAULT_STAGE}/{pattern}",
            self.partition, self.region, self.account
        )
    }

    /// The default authenticated role's inline policy, or None when it may invoke nothing.
    pub fn invoke_policy(&self, api_id: &str) -> Option<Value> {
        self.policy_for(api_id, &self.default_role_resources)
    }

    /// An inline policy allowing execute-api:Invoke on exactly `resources` (an Allow of
    /// the role's routes, a Deny of others' they would reach), or None when it allows
    /// nothing.
    pub fn policy_for(&self, api_id: &str, resources: &RoleResources) -> Option<Value> {
        if resources.allow.is_empty() {
            return None;
        }
        let arns = |patterns: &[String]| -> Vec<String> {
            patterns
                .iter()
                .map(|p| self.invoke_arn(api_id, p))
                .collect()
        };
        let mut statements = vec![json!({
            "Effect": "Allow",
            "Action": "execute-api:Invoke",
            "Resource": arns(&resources.allow),
        })];
        if !resources.deny.is_empty() {
            statements.push(json!({
                "Effect": "Deny",
                "Action": "execute-api:Invoke",
                "Resource": arns(&resources.deny),
            }));
        }
        Some(json!({"Version": "2012-10-17", "Statement": statements}))
    }

    /// Trust policy of the authenticated role: only identities of this pool that logged in.
    pub fn trust_policy(&self, identity_pool_id: &str) -> Value {
        json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Effect": "Allow",
                "Principal": {"Federated": "cognito-identity.amazonaws.com"},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {
                    "StringEquals": {"cognito-identity.amazonaws.com:aud": identity_pool_id},
                    "ForAnyValue:StringLike": {"cognito-identity.amazonaws.com:amr": "authenticated"}
                }
            }]
        })
    }

    /// The ARN of the role this plan names (under our path).
    pub fn role_arn(&self) -> String {
        format!(
            "arn:{}:iam::{}:role{ROLE_PATH}{}",
            self.partition, self.account, self.role_name
        )
    }

    /// What a Lambda permission's SourceArn allows: any route of this API.
    pub fn permission_source_arn(&self, api_id: &str) -> String {
        format!(
            "arn:{}:execute-api:{}:{}:{api_id}/*",
            self.partition, self.region, self.account
        )
    }

    /// How API Gateway should authorize `route`, given the JWT authorizer's id.
    pub fn route_auth(&self, route: &PlannedRoute, authorizer_id: Option<&str>) -> RouteAuth {
        match route.authorization {
            Authorization::None => RouteAuth::None,
            Authorization::Iam => RouteAuth::Iam,
            Authorization::Jwt => RouteAuth::Jwt {
                authorizer_id: authorizer_id.unwrap_or_default().to_owned(),
                scopes: route.scopes.clone(),
            },
        }
    }
}

/// The partition an ARN in `region` lives in.
pub fn partition_of(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else if region.starts_with("us-iso-") {
        "aws-iso"
    } else if region.starts_with("us-isob-") {
        "aws-iso-b"
    } else {
        "aws"
    }
}

/// An issuer (or a pattern of issuers) without scheme and trailing slash, its host in
/// lower case and its path as it is: "https://MyOrg.us.auth0.com/" -> "myorg.us.auth0.com",
/// "https://Login.example.com/realms/Team/" -> "login.example.com/realms/Team".
pub fn issuer_name(issuer: &str) -> String {
    let issuer = issuer.trim();
    let issuer = match issuer.get(..8) {
        Some(scheme) if scheme.eq_ignore_ascii_case("https://") => &issuer[8..],
        _ => issuer,
    };
    let issuer = issuer.trim_end_matches('/');
    match issuer.split_once('/') {
        Some((host, path)) => format!("{}/{path}", host.to_ascii_lowercase()),
        None => issuer.to_ascii_lowercase(),
    }
}

/// The ARN of the IAM OIDC provider of the issuer named `name` (host and path).
pub fn provider_arn(partition: &str, account: &str, name: &str) -> String {
    format!("arn:{partition}:iam::{account}:oidc-provider/{name}")
}

/// The issuer name an OIDC provider ARN ends with (host and path).
pub fn provider_name_of(arn: &str) -> Option<&str> {
    arn.split_once(":oidc-provider/").map(|(_, name)| name)
}

fn short_hash(input: &str) -> String {
    let digest = Sha256::digest(input.as_bytes());
    digest
        .iter()
        .take(HASH_LEN / 2)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `base` cut to fit `max` with `sep` + `hash` appended. The hash is always there: stage,
/// namespace and name may all contain '-', so the readable part alone can collide.
fn with_hash(base: &str, sep: char, hash: &str, max: usize) -> String {
    let room = max - hash.len() - 1;
    let cut: String = base.chars().take(room).collect();
    let cut = cut.trim_end_matches(['-', '_', '.']);
    format!("{cut}{sep}{hash}")
}

/// Identity pool names allow only word characters and spaces.
fn pool_safe(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// "/items/{id}/{proxy+}" -> "/items/*/*"
/// What the CRD pattern cannot say about a route key: parameter syntax, and a greedy
/// `{proxy+}` only as the last segment.
fn check_route_key(key: &str) -> Result<(), PlanError> {
    let Some((_, path)) = key.split_once(' ') else {
        return Ok(()); // "$default"
    };
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    for (i, segment) in segments.iter().enumerate() {
        let opens = segment.matches('{').count();
        let closes = segment.matches('}').count();
        if opens == 0 && closes == 0 {
            continue;
        }
        let param = segment
            .strip_prefix('{')
            .and_then(|s| s.strip_suffix('}'))
            .filter(|_| opens == 1 && closes == 1);
        let Some(param) = param else {
            return Err(PlanError(format!(
                "route {key:?}: a path parameter must be a whole segment, like /{{id}}"
            )));
        };
        let name = param.strip_suffix('+').unwrap_or(param);
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(PlanError(format!(
                "route {key:?}: bad path parameter {{{param}}}"
            )));
        }
        if param.ends_with('+') && i + 1 != segments.len() {
            return Err(PlanError(format!(
                "route {key:?}: a greedy parameter {{{param}}} must be the last segment"
            )));
        }
    }
    Ok(())
}

fn integration_target(route: &Route, partition: &str) -> Result<IntegrationTarget, PlanError> {
    match (&route.target.lambda, &route.target.http) {
        (Some(lambda), None) => {
            let arn_partition = lambda.function_arn.split(':').nth(1).unwrap_or_default();
            if arn_partition != partition {
                return Err(PlanError(format!(
                    "route {:?}: function {} is in partition {arn_partition}, the API in {partition}",
                    route.route, lambda.function_arn
                )));
            }
            Ok(IntegrationTarget::Lambda {
                function_arn: lambda.function_arn.clone(),
                payload_format_version: lambda
                    .payload_format_version
                    .map(|v| v.as_str())
                    .unwrap_or(LAMBDA_PAYLOAD_FORMAT)
                    .to_owned(),
            })
        }
        (None, Some(http)) => Ok(IntegrationTarget::Http {
            url: http.url.clone(),
            method: "ANY".to_owned(),
        }),
        _ => Err(PlanError(format!(
            "route {:?}: exactly one target kind must be set",
            route.route
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{Auth0, DeletionPolicy, HttpTarget, LambdaTarget, Oidc, Target};

    const ACCOUNT: &str = "123456789012";

    fn lambda(name: &str) -> Target {
        Target {
            lambda: Some(LambdaTarget {
                function_arn: format!("arn:aws:lambda:us-east-1:{ACCOUNT}:function:{name}"),
                payload_format_version: None,
            }),
            http: None,
        }
    }

    fn http(url: &str) -> Target {
        Target {
            lambda: None,
            http: Some(HttpTarget { url: url.into() }),
        }
    }

    fn route(key: &str, authorization: Option<Authorization>, target: Target) -> Route {
        Route {
            route: key.into(),
            authorization,
            scopes: None,
            throttling: None,
            target,
        }
    }

    /// The seed: GET /private (iam by default), GET /public (none).
    fn seed() -> AuthedApiSpec {
        AuthedApiSpec {
            stage: "dev".into(),
            region: Some("us-east-1".into()),
            auth0: Some(Auth0 {
                domain: "https://myorg.us.auth0.com".into(),
                client_id: "UsGRQJJz5sDfPQDs6bhQ9Oc3hNISuVif".into(),
                audience: None,
            }),
            oidc: None,
            default_authorization: Authorization::Iam,
            routes: vec![
                route("GET /private", None, lambda("private")),
                route("GET /public", Some(Authorization::None), lambda("public")),
            ],
            deletion_policy: DeletionPolicy::Delete,
            access: None,
            outputs: None,
            cors: None,
            throttling: None,
            access_log: None,
            domain: None,
            disable_execute_api_endpoint: false,
            tags: BTreeMap::new(),
        }
    }

    fn who<'a>(namespace: &'a str, name: &'a str, region: &'a str) -> Identity<'a> {
        Identity {
            namespace,
            name,
            uid: "uid-1",
            account: ACCOUNT,
            region,
            cluster_id: "test",
            permissions_boundary: "authedapi-permissions-boundary",
        }
    }

    fn seed_plan() -> Plan {
        plan(&seed(), &who("default", "api-auth-auth0", "us-east-1")).unwrap()
    }

    #[test]
    fn names_are_stage_prefixed_and_carry_the_hash() {
        let p = seed_plan();
        assert_eq!(p.hash.len(), 8);
        assert_eq!(p.api_name, format!("dev-default-api-auth-auth0-{}", p.hash));
        assert_eq!(
            p.role_name,
            format!("dev-default-api-auth-auth0-{}", p.hash)
        );
        assert_eq!(
            p.identity_pool_name,
            format!("dev_default_api_auth_auth0_{}", p.hash)
        );
        assert_eq!(p.permission_sid, format!("authedapi-{}", p.hash));
    }

    #[test]
    fn long_names_are_cut_to_the_aws_limits_and_stay_unique() {
        let long = "a".repeat(253);
        let one = plan(
            &seed(),
            &who("team-with-a-long-namespace-name", &long, "us-east-1"),
        )
        .unwrap();
        let two = plan(
            &seed(),
            &who(
                "team-with-a-long-namespace-name",
                &format!("{long}b"),
                "us-east-1",
            ),
        )
        .unwrap();
        assert_eq!(one.role_name.len(), 64);
        assert!(one.api_name.len() <= 128);
        assert!(one.identity_pool_name.len() <= 128);
        assert_ne!(one.role_name, two.role_name);
        assert!(
            one.role_name
                .starts_with("dev-team-with-a-long-namespace-name-aaa")
        );
        for value in one.tags.values() {
            assert!(value.len() <= TAG_VALUE_MAX, "tag value too long: {value}");
        }
    }

    #[test]
    fn ambiguous_dashes_do_not_collide() {
        // stage "dev-x" in namespace "a" and stage "dev" in namespace "x-a" read the same.
        let mut spec = seed();
        spec.stage = "dev-x".into();
        let one = plan(&spec, &who("a", "n", "us-east-1")).unwrap();
        let two = plan(&seed(), &who("x-a", "n", "us-east-1")).unwrap();
        assert_ne!(one.api_name, two.api_name);
        assert_ne!(one.role_name, two.role_name);
        assert_ne!(one.identity_pool_name, two.identity_pool_name);
    }

    #[test]
    fn two_stages_of_one_spec_share_no_name() {
        let dev = seed_plan();
        let mut spec = seed();
        spec.stage = "prod".into();
        let prod = plan(&spec, &who("default", "api-auth-auth0", "us-east-1")).unwrap();
        assert!(prod.api_name.starts_with("prod-"));
        assert_ne!(dev.api_name, prod.api_name);
        assert_ne!(dev.role_name, prod.role_name);
        assert_ne!(dev.identity_pool_name, prod.identity_pool_name);
        assert_ne!(dev.permission_sid, prod.permission_sid);
        assert_eq!(dev.oidc, prod.oidc, "the OIDC provider is shared");
    }

    #[test]
    fn the_provider_claim_names_cluster_and_client() {
        let p = seed_plan();
        assert!(p.oidc.claim.0.starts_with(TAG_CLAIM_PREFIX));
        assert!(
            p.oidc.claim.0.len() <= 128,
            "IAM tag keys are at most 128 characters"
        );
        assert_eq!(p.oidc.claim.1, "UsGRQJJz5sDfPQDs6bhQ9Oc3hNISuVif");
        assert_ne!(claim_key("one", "client"), claim_key("two", "client"));
        assert_ne!(claim_key("one", "a"), claim_key("one", "b"));
    }

    #[test]
    fn tags_name_owner_uid_stage_and_cluster() {
        let p = seed_plan();
        assert_eq!(p.tags[TAG_OWNER], "default/api-auth-auth0");
        assert_eq!(p.tags[TAG_UID], "uid-1");
        assert_eq!(p.tags[TAG_STAGE], "dev");
        assert_eq!(p.tags[TAG_CLUSTER], "test");
        assert_eq!(p.oidc.tags[TAG_MANAGED_BY], MANAGED_BY);
    }

    #[test]
    fn trust_policy_allows_only_authenticated_identities_of_the_pool() {
        let trust = seed_plan().trust_policy("us-east-1:pool");
        let statement = &trust["Statement"][0];
        assert_eq!(
            statement["Principal"]["Federated"],
            "cognito-identity.amazonaws.com"
        );
        assert_eq!(statement["Action"], "sts:AssumeRoleWithWebIdentity");
        assert_eq!(
            statement["Condition"]["StringEquals"]["cognito-identity.amazonaws.com:aud"],
            "us-east-1:pool"
        );
        assert_eq!(
            statement["Condition"]["ForAnyValue:StringLike"]["cognito-identity.amazonaws.com:amr"],
            "authenticated"
        );
    }

    #[test]
    fn invoke_policy_lists_exactly_the_iam_routes() {
        let p = seed_plan();
        let policy = p.invoke_policy("abc123").unwrap();
        assert_eq!(policy["Statement"][0]["Action"], "execute-api:Invoke");
        assert_eq!(
            policy["Statement"][0]["Resource"],
            json!([format!(
                "arn:aws:execute-api:us-east-1:{ACCOUNT}:abc123/$default/GET/private"
            )])
        );
        assert_eq!(policy["Statement"].as_array().unwrap().len(), 1, "no deny");
    }

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

    #[test]
    fn no_iam_routes_means_no_invoke_policy() {
        let mut spec = seed();
        spec.default_authorization = Authorization::None;
        let p = plan(&spec, &who("default", "x", "us-east-1")).unwrap();
        assert_eq!(p.invoke_policy("abc"), None);
    }

    #[test]
    fn invoke_arns_name_the_default_stage() {
        let p = seed_plan();
        assert_eq!(
            p.invoke_arn("id", "GET/items/*"),
            format!("arn:aws:execute-api:us-east-1:{ACCOUNT}:id/$default/GET/items/*")
        );
    }

    #[test]
    fn partition_comes_from_the_region() {
        assert_eq!(partition_of("us-east-1"), "aws");
        assert_eq!(partition_of("cn-north-1"), "aws-cn");
        assert_eq!(partition_of("us-gov-west-1"), "aws-us-gov");
        let mut spec = seed();
        spec.routes = vec![route("GET /x", None, http("https://example.com"))];
        let p = plan(&spec, &who("default", "x", "cn-north-1")).unwrap();
        assert!(
            p.invoke_arn("id", "GET/x")
                .starts_with("arn:aws-cn:execute-api:cn-north-1:")
        );
        assert!(p.oidc.arn.starts_with("arn:aws-cn:iam::"));
        assert_eq!(
            p.endpoint("id"),
            "https://id.execute-api.cn-north-1.amazonaws.com.cn"
        );
        assert!(p.role_arn().starts_with("arn:aws-cn:iam::"));
        assert!(
            p.role_arn()
                .ends_with(&format!(":role/authedapi/{}", p.role_name))
        );
    }

    #[test]
    fn a_lambda_in_another_partition_is_refused() {
        let p = plan(&seed(), &who("default", "x", "cn-north-1"));
        assert!(p.unwrap_err().0.contains("partition"));
    }

    #[test]
    fn endpoint_is_the_execute_api_url() {
        assert_eq!(
            seed_plan().endpoint("abc123"),
            "https://abc123.execute-api.us-east-1.amazonaws.com"
        );
    }

    #[test]
    fn jwt_authorizer_only_when_a_route_uses_it_with_the_trailing_slash_issuer() {
        assert_eq!(seed_plan().jwt, None);
        let mut spec = seed();
        spec.routes[0].authorization = Some(Authorization::Jwt);
        spec.auth0.as_mut().unwrap().domain = "MyOrg.us.auth0.com/".into();
        let p = plan(&spec, &who("default", "x", "us-east-1")).unwrap();
        let jwt = p.jwt.unwrap();
        assert_eq!(jwt.issuer, "https://myorg.us.auth0.com/");
        assert_eq!(jwt.audience, vec!["UsGRQJJz5sDfPQDs6bhQ9Oc3hNISuVif"]);
        spec.auth0.as_mut().unwrap().audience = Some(vec!["https://api.example.com".into()]);
        let p = plan(&spec, &who("default", "x", "us-east-1")).unwrap();
        assert_eq!(p.jwt.unwrap().audience, vec!["https://api.example.com"]);
    }

    #[test]
    fn oidc_provider_is_one_per_domain() {
        let p = seed_plan();
        assert_eq!(p.oidc.name, "myorg.us.auth0.com");
        assert_eq!(p.oidc.url, "https://myorg.us.auth0.com");
        assert_eq!(
            p.oidc.arn,
            format!("arn:aws:iam::{ACCOUNT}:oidc-provider/myorg.us.auth0.com")
        );
        for spelling in [
            "myorg.us.auth0.com",
            "https://myorg.us.auth0.com/",
            "MYORG.us.auth0.com",
        ] {
            assert_eq!(issuer_name(spelling), "myorg.us.auth0.com");
        }
    }

    fn with_oidc(issuer: &str) -> AuthedApiSpec {
        let mut spec = seed();
        spec.auth0 = None;
        spec.oidc = Some(Oidc {
            issuer: issuer.into(),
            client_id: "okta-client".into(),
            audience: None,
        });
        spec.routes[0].authorization = Some(Authorization::Jwt);
        spec
    }

    #[test]
    fn an_okta_issuer_names_its_provider_by_host_and_path() {
        let p = plan(
            &with_oidc("https://example.okta.com/oauth2/default"),
            &who("default", "x", "us-east-1"),
        )
        .unwrap();
        assert_eq!(p.oidc.name, "example.okta.com/oauth2/default");
        assert_eq!(p.oidc.url, "https://example.okta.com/oauth2/default");
        assert_eq!(
            p.oidc.arn,
            format!("arn:aws:iam::{ACCOUNT}:oidc-provider/example.okta.com/oauth2/default")
        );
        assert_eq!(provider_name_of(&p.oidc.arn), Some(p.oidc.name.as_str()));
        assert_eq!(p.oidc.client_id, "okta-client");
        let jwt = p.jwt.unwrap();
        assert_eq!(
            jwt.issuer, "https://example.okta.com/oauth2/default",
            "Okta's iss has no trailing slash: the authorizer takes it as given"
        );
        assert_eq!(jwt.audience, vec!["okta-client"]);
    }

    #[test]
    fn a_keycloak_issuer_keeps_the_case_of_its_path_and_a_trailing_slash_it_was_given() {
        let spec = with_oidc("https://login.example.com/realms/Team-A/");
        let p = plan(&spec, &who("default", "x", "us-east-1")).unwrap();
        assert_eq!(p.oidc.name, "login.example.com/realms/Team-A");
        assert_eq!(p.oidc.url, "https://login.example.com/realms/Team-A");
        assert_eq!(
            p.jwt.unwrap().issuer,
            "https://login.example.com/realms/Team-A/"
        );
        let issuer = issuer_of(&spec).unwrap();
        assert_eq!(
            issuer.discovery_url(),
            "https://login.example.com/realms/Team-A/.well-known/openid-configuration"
        );
        assert!(!issuer.auth0);
    }

    #[test]
    fn two_paths_on_one_host_are_two_providers_and_an_auth0_domain_has_its_slash() {
        let one = plan(
            &with_oidc("https://login.example.com/realms/a"),
            &who("default", "x", "us-east-1"),
        )
        .unwrap();
        let two = plan(
            &with_oidc("https://login.example.com/realms/b"),
            &who("default", "x", "us-east-1"),
        )
        .unwrap();
        assert_ne!(one.oidc.arn, two.oidc.arn);
        assert_ne!(one.oidc.name, two.oidc.name);
        let auth0 = issuer_of(&seed()).unwrap();
        assert_eq!(auth0.token_issuer, "https://myorg.us.auth0.com/");
        assert_eq!(auth0.name, "myorg.us.auth0.com");
        assert!(auth0.auth0);
    }

    #[test]
    fn a_spec_with_neither_or_both_issuers_is_refused() {
        let mut spec = seed();
        spec.auth0 = None;
        assert!(plan(&spec, &who("default", "x", "us-east-1")).is_err());
        let mut both = with_oidc("https://example.okta.com/oauth2/default");
        both.auth0 = seed().auth0;
        assert!(plan(&both, &who("default", "x", "us-east-1")).is_err());
    }

    fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn spec_tags_win_over_the_operators_and_ours_over_both() {
        let org = tags(&[
            ("cost-center", "platform"),
            ("Team", "shared"),
            ("env", "x"),
        ]);
        let mut spec = seed();
        spec.tags = tags(&[("cost-center", "team-a"), ("team", "a")]);
        let me = who("default", "api-auth-auth0", "us-east-1");
        let p = plan_tagged(&spec, &me, &org).unwrap();
        assert_eq!(p.tags["cost-center"], "team-a");
        assert_eq!(p.tags["team"], "a");
        assert!(
            !p.tags.contains_key("Team"),
            "an operator-wide key differing only in case goes: {:?}",
            p.tags
        );
        assert_eq!(p.tags["env"], "x");
        assert_eq!(p.tags[TAG_UID], "uid-1");
        assert_eq!(p.tags.len(), 3 + OUR_TAGS);
        assert_eq!(
            p.tag_keys.iter().map(String::as_str).collect::<Vec<_>>(),
            vec!["cost-center", "env", "team"]
        );
        // The shared provider gets the operator-wide tags, never an object's.
        assert_eq!(p.oidc.tags["cost-center"], "platform");
        assert!(!p.oidc.tags.contains_key("team"));
        assert_eq!(p.oidc.tags[TAG_MANAGED_BY], MANAGED_BY);
    }

    #[test]
    fn ours_cannot_be_set_and_aws_limits_are_checked() {
        for key in [
            "authedapi.dev/uid",
            "AuthedApi.dev/owner",
            "aws:cloudformation",
            "AWS:x",
        ] {
            let mut spec = seed();
            spec.tags = tags(&[(key, "mine")]);
            let e = plan(&spec, &who("default", "x", "us-east-1")).unwrap_err();
            assert!(e.0.contains("spec.tags") && e.0.contains(key), "{key}: {e}");
        }
        let long_key = "k".repeat(129);
        let long_value = "v".repeat(257);
        for (key, value) in [
            (long_key.as_str(), "v"),
            ("k", long_value.as_str()),
            ("", "v"),
            ("a,b", "v"),
            ("k", "semi;colon"),
        ] {
            assert!(check_tag(key, value).is_err(), "{key:?}={value:?}");
        }
        assert!(check_tag("Cost Center", "Team A: ünïcode/+=@-_.").is_ok());
        assert!(check_tag(&"k".repeat(128), &"v".repeat(256)).is_ok());
        assert!(check_tag("k", "").is_ok(), "an empty value is a value");
        // 50 in all, counting ours: 46 of the organisation's fit, 47 do not.
        let mut spec = seed();
        spec.tags = (0..46).map(|i| (format!("k{i}"), "v".to_owned())).collect();
        assert_eq!(
            plan(&spec, &who("default", "x", "us-east-1"))
                .unwrap()
                .tags
                .len(),
            TAGS_MAX
        );
        let org = tags(&[("one-more", "v")]);
        let e = plan_tagged(&spec, &who("default", "x", "us-east-1"), &org).unwrap_err();
        assert!(e.0.contains("51 tags") && e.0.contains("remove 1"), "{e}");
    }

    #[test]
    fn route_table_and_integrations() {
        let mut spec = seed();
        spec.routes
            .push(route("POST /private", None, lambda("private")));
        spec.routes.push(route(
            "GET /docs",
            Some(Authorization::None),
            http("https://example.com/docs"),
        ));
        let p = plan(&spec, &who("default", "x", "us-east-1")).unwrap();
        assert_eq!(p.routes.len(), 4);
        assert_eq!(
            p.integrations.len(),
            3,
            "one integration per distinct target"
        );
        assert_eq!(p.lambda_functions.len(), 2);
        assert_eq!(p.routes[1].authorization, Authorization::None);
        assert_eq!(p.routes[2].authorization, Authorization::Iam);
        assert!(matches!(
            &p.routes[0].target,
            IntegrationTarget::Lambda { payload_format_version, .. } if payload_format_version == "2.0"
        ));
        assert!(
            matches!(&p.routes[3].target, IntegrationTarget::Http { method, .. } if method == "ANY")
        );
    }

    #[test]
    fn route_auth_for_each_kind() {
        let mut spec = seed();
        spec.routes[0].authorization = Some(Authorization::Jwt);
        spec.routes[0].scopes = Some(vec!["read".into()]);
        let p = plan(&spec, &who("default", "x", "us-east-1")).unwrap();
        assert_eq!(
            p.route_auth(&p.routes[0], Some("authz")),
            RouteAuth::Jwt {
                authorizer_id: "authz".into(),
                scopes: vec!["read".into()]
            }
        );
        assert_eq!(p.route_auth(&p.routes[1], Some("authz")), RouteAuth::None);
    }

    #[test]
    fn bad_path_parameters_are_refused() {
        for key in [
            "GET /files/{proxy+}/more",
            "GET /a{b}",
            "GET /{}",
            "GET /{a b}",
        ] {
            let mut spec = seed();
            spec.routes[0].route = key.into();
            let err = plan(&spec, &who("default", "x", "us-east-1")).unwrap_err();
            assert!(err.0.contains(key), "{key}: {err}");
        }
        let mut spec = seed();
        spec.routes[0].route = "GET /files/{id}/{proxy+}".into();
        assert!(plan(&spec, &who("default", "x", "us-east-1")).is_ok());
    }
}
