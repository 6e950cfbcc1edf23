//! The `AuthedApi` custom resource (group `authedapi.dev`, version `v1alpha1`).
//!
//! Everything a user can get wrong that the API server can check is checked here, at
//! admission: OpenAPI patterns, enums and bounds for single fields, CEL rules
//! (`x-kubernetes-validations`) for what spans fields or versions. The doc comments become
//! the CRD's descriptions, so `kubectl explain authedapi.spec` reads them.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The most routes (and integrations) one API Gateway HTTP API may have.
pub const MAX_ROUTES: usize = 300;
/// A Lambda function's ARN, optionally with a version or alias qualifier.
const FUNCTION_ARN_PATTERN: &str = r"^arn:aws(-cn|-us-gov)?:lambda:[a-z]{2}(-[a-z]+)+-[0-9]{1,2}:[0-9]{12}:function:[A-Za-z0-9_-]{1,64}(:(\$LATEST|[A-Za-z0-9_-]{1,128}))?$";
/// The most Lambda authorizers one object may declare (API Gateway allows 10 per API).
pub const MAX_AUTHORIZERS: usize = 10;

/// An HTTP API on AWS API Gateway whose private routes only users logged in with Auth0 (or
/// any OpenID Connect issuer) can call: the issuer is federated through a Cognito identity
/// pool, whose authenticated role may invoke exactly the routes that use IAM authorization.
#[derive(CustomResource, KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[kube(
    group = "authedapi.dev",
    version = "v1alpha1",
    kind = "AuthedApi",
    namespaced,
    shortname = "aapi",
    status = "AuthedApiStatus",
    doc = "An HTTP API on AWS whose private routes only users logged in with Auth0 (or another OIDC issuer) can call.",
    printcolumn = r#"{"name":"Stage","type":"string","jsonPath":".spec.stage"}"#,
    printcolumn = r#"{"name":"Endpoint","type":"string","jsonPath":".status.apiEndpoint"}"#,
    printcolumn = r#"{"name":"IdentityPool","type":"string","jsonPath":".status.identityPoolId"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[x_kube(
    validation = Rule::new("[has(self.auth0), has(self.oidc)].exists_one(x, x)")
        .message("set exactly one of auth0 (an Auth0 tenant) or oidc (any OpenID Connect issuer)"),
    validation = Rule::new("has(self.region) == has(oldSelf.region)")
        .message("region is immutable: it cannot be added or removed after creation")
        .field_path(".region")
        .reason(Reason::FieldValueForbidden),
    validation = Rule::new(
        "self.routes.all(r, !has(r.scopes) || (has(r.authorization) ? r.authorization : self.defaultAuthorization) == 'jwt')"
    )
    .message("scopes are allowed only on routes whose authorization is jwt")
    .field_path(".routes"),
    validation = Rule::new(
        "self.routes.all(r, (has(r.authorization) ? r.authorization : self.defaultAuthorization) != 'lambda' || (has(r.authorizer) && has(self.authorizers) && self.authorizers.exists(a, a.name == r.authorizer)))"
    )
    .message("a route whose authorization is lambda must name one of spec.authorizers in its authorizer field")
    .field_path(".routes"),
    validation = Rule::new(
        "self.routes.all(r, !has(r.authorizer) || (has(r.authorization) ? r.authorization : self.defaultAuthorization) == 'lambda')"
    )
    .message("authorizer is allowed only on routes whose authorization is lambda")
    .field_path(".routes"),
    validation = Rule::new(
        "!has(self.access) || self.access.rules.all(a, a.routes.all(k, self.routes.exists(r, r.route == k)))"
    )
    .message("every route an access rule names must be one of spec.routes")
    .field_path(".access.rules"),
    validation = Rule::new(
        "!has(self.domain) || !has(self.region) || self.domain.certificateArn.split(':')[3] == self.region"
    )
    .message("the domain's certificate must be in the API's region (spec.region): API Gateway takes a regional certificate from ACM in its own region")
    .field_path(".domain.certificateArn"),
    validation = Rule::new("has(self.vpcLink) || self.routes.all(r, !has(r.target.private))")
        .message("a route with a private target needs spec.vpcLink: the VPC link API Gateway reaches the listener or service through")
        .field_path(".routes")
)]
#[serde(rename_all = "camelCase")]
pub struct AuthedApiSpec {
    /// Stage (environment) name, e.g. dev or prod. It prefixes the name of every AWS
    /// resource this object owns, so two stages of one API never share anything.
    /// Lower-case letters, digits and '-', starting with a letter, at most 16 characters.
    /// Immutable.
    #[schemars(regex(pattern = r"^[a-z][a-z0-9-]{0,15}$"), length(min = 1, max = 16))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("stage is immutable").reason(Reason::FieldValueForbidden))]
    pub stage: String,

    /// AWS region to create the API in, e.g. us-east-1. Defaults to the operator's region.
    /// Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[a-z]{2}(-[a-z]+)+-[0-9]{1,2}$"), length(max = 32))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("region is immutable").reason(Reason::FieldValueForbidden))]
    pub region: Option<String>,

    /// The Auth0 application whose users may call the private routes. Exactly one of
    /// `auth0` or `oidc` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth0: Option<Auth0>,

    /// Any OpenID Connect issuer (Okta, Keycloak, Entra ID, Auth0 with a custom domain...)
    /// and the client whose users may call the private routes, instead of `auth0`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oidc: Option<Oidc>,

    /// How routes without their own `authorization` are protected: `iam` (callers sign
    /// requests with temporary AWS credentials from the Cognito identity pool), `jwt`
    /// (callers send their ID token as a bearer token) or `none` (public). Not `lambda`:
    /// a Lambda authorizer is named on each route that uses it.
    #[serde(default)]
    #[x_kube(
        validation = Rule::new("self != 'lambda'")
            .message("defaultAuthorization may not be lambda: set authorization: lambda and an authorizer on each route that uses a Lambda authorizer")
    )]
    pub default_authorization: Authorization,

    /// Lambda REQUEST authorizers, at most 10, each name once: a route with
    /// `authorization: lambda` names one in its `authorizer` field. The operator lets
    /// this API's authorizers (and only them) invoke each function.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = MAX_AUTHORIZERS))]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["name".into()]))]
    pub authorizers: Vec<Authorizer>,

    /// The API's routes, at most 300, each route key at most once.
    #[schemars(length(min = 1, max = MAX_ROUTES))]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["route".into()]))]
    pub routes: Vec<Route>,

    /// What happens to the AWS resources when this object is deleted: `Delete` removes
    /// them, `Retain` leaves them in the account and only lets the object go.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,

    /// Which users may call which IAM routes, by a claim in their ID token. Without
    /// it, every logged-in user may call every IAM route.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access: Option<Access>,

    /// Publish the API's coordinates for other workloads (a frontend, say).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outputs: Option<Outputs>,

    /// CORS settings of the API (answered by API Gateway itself, before any route).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cors: Option<Cors>,

    /// Default throttling of every route (on the `$default` stage).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throttling: Option<Throttling>,

    /// Access logs of the `$default` stage, written to a CloudWatch Logs log group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_log: Option<AccessLog>,

    /// A custom domain the API is served at, e.g. https://api.example.com/dev: several
    /// AuthedApis (the stages of one API, say) may share one domain, each at its own base
    /// path. The domain is created when the first needs it and deleted with the last
    /// mapping on it, and only if this cluster's operator created it; one that exists and
    /// is not is never used or changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<Domain>,

    /// The VPC link routes with a `private` target go through: exactly one of
    /// `subnetIds` (a link this object creates, tagged as its own, and deletes with it)
    /// or `id` (someone else's link: used as it is, never changed or deleted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vpc_link: Option<VpcLinkSpec>,

    /// Turn off the default https://<apiId>.execute-api.<region>.amazonaws.com endpoint
    /// (when clients come through `domain` only: the API is then reachable there alone).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub disable_execute_api_endpoint: bool,

    /// Resources made before this object (the seed as `sst deploy` left it, say) to take
    /// over instead of creating new ones: the same endpoint, the same identity pool (and so
    /// the same identity ids). The platform hands each over by tagging it
    /// `authedapi.dev/cluster=<the operator's cluster id>` and
    /// `authedapi.dev/adopt-by=<namespace>/<name>`; one without both is refused (Stalled,
    /// reason AdoptionRefused) and left as it is. Read at the first reconcile: once status
    /// holds an id, that id is used. Adopted resources are this object's from then on
    /// (deleted with it, unless deletionPolicy is Retain). With the annotation
    /// `authedapi.dev/observe-only: "true"`, status.plannedChanges lists what adopting
    /// would change, before anything is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adopt: Option<Adopt>,

    /// Tags for every AWS resource this object owns (API, stage, identity pool, roles), on
    /// top of the operator's --resource-tags (these win). Keys `authedapi.dev/...` are the
    /// operator's own and `aws:...` AWS's: neither may be set. At most 46 (AWS allows 50
    /// per resource, and the operator sets 4); keys 1-128, values 0-256 characters of
    /// letters, digits, spaces and `_.:/=+-@`. A tag removed here is removed from the
    /// roles and the pool; API Gateway keeps the tags it was created with (a change is
    /// reported as a TagsDrifted event with the command that applies it).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(schema_with = "tags_schema")]
    #[x_kube(
        validation = Rule::new("self.all(k, size(k) >= 1 && size(k) <= 128)")
            .message("tag keys are 1 to 128 characters"),
        validation = Rule::new(r"self.all(k, k.matches('^[\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]+$'))")
            .message("tag keys may hold only letters, digits, spaces and _.:/=+-@"),
        validation = Rule::new("self.all(k, !k.lowerAscii().startsWith('aws:'))")
            .message("tag keys starting with aws: are reserved for AWS"),
        validation = Rule::new("self.all(k, !k.lowerAscii().startsWith('authedapi.dev/'))")
            .message("tag keys starting with authedapi.dev/ are the operator's own (owner, uid, stage, cluster) and cannot be set or overridden"),
        validation = Rule::new("self.all(k, self.filter(j, j.lowerAscii() == k.lowerAscii()).size() == 1)")
            .message("tag keys must differ in more than case: IAM treats keys that differ only in case as the same key")
    )]
    pub tags: BTreeMap<String, String>,
}

/// The most tags spec.tags may hold: AWS allows 50 per resource, and the operator sets 4.
pub const MAX_SPEC_TAGS: usize = 46;
/// What a tag value may hold (IAM's pattern, the narrowest of the services tagged).
pub const TAG_VALUE_PATTERN: &str = r"^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$";

fn tags_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "maxProperties": MAX_SPEC_TAGS,
        "additionalProperties": {
            "type": "string",
            "maxLength": 256,
            "pattern": TAG_VALUE_PATTERN
        }
    })
}

/// A custom domain name (API Gateway, regional) and where on it this object's API is.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Domain {
    /// The host name, lower case, e.g. api.example.com (no wildcard, no trailing dot).
    #[schemars(
        regex(
            pattern = r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]([a-z0-9-]{0,61}[a-z0-9])?$"
        ),
        length(min = 4, max = 253)
    )]
    pub name: String,

    /// The ACM certificate for the name, issued, in the API's region, e.g.
    /// arn:aws:acm:us-east-1:123456789012:certificate/0f4c1ab2-9c1e-4f3e-8d4b-1a2b3c4d5e6f.
    /// It is set when the domain is created; changed here, it is changed on the domain
    /// (every AuthedApi sharing the domain must name the same one).
    #[schemars(
        regex(
            pattern = r"^arn:aws(-cn|-us-gov)?:acm:[a-z]{2}(-[a-z]+)+-[0-9]{1,2}:[0-9]{12}:certificate/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
        ),
        length(max = 128)
    )]
    pub certificate_arn: String,

    /// The path under the domain this API is served at (the API mapping key), e.g. dev
    /// or v1/dev; without it, the domain's root. Segments of letters, digits and `._~-`
    /// separated by single "/", no leading or trailing "/". Two AuthedApis on one domain
    /// need different base paths.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        regex(pattern = r"^[A-Za-z0-9._~-]+(/[A-Za-z0-9._~-]+)*$"),
        length(min = 1, max = 128)
    )]
    pub base_path: Option<String>,
}

/// A VPC link for private integrations (API Gateway HTTP API VPC link, V2).
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[x_kube(
    validation = Rule::new("[has(self.subnetIds), has(self.id)].exists_one(x, x)")
        .message("set exactly one of subnetIds (a VPC link this object creates) or id (an existing VPC link)"),
    validation = Rule::new("!has(self.securityGroupIds) || has(self.subnetIds)")
        .message("securityGroupIds go with subnetIds: a referenced link (id) keeps its own")
        .field_path(".securityGroupIds")
)]
#[serde(rename_all = "camelCase")]
pub struct VpcLinkSpec {
    /// The subnets (1 to 16, e.g. subnet-0a1b2c3d) API Gateway puts the link's network
    /// interfaces in: one per Availability Zone the targets are in. A link's subnets and
    /// security groups are fixed in AWS (UpdateVpcLink only renames), so a change here
    /// replaces the link: a new one is created, the integrations move to it, and the old
    /// one is deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 16),
        inner(regex(pattern = r"^subnet-[0-9a-f]{8}([0-9a-f]{9})?$"))
    )]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub subnet_ids: Option<Vec<String>>,

    /// Security groups (0 to 5, e.g. sg-0123abcd) of the link's network interfaces; with
    /// none, the VPC's default security group. A change replaces the link.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(max = 5),
        inner(regex(pattern = r"^sg-[0-9a-f]{8}([0-9a-f]{9})?$"))
    )]
    pub security_group_ids: Option<Vec<String>>,

    /// An existing VPC link's id (aws apigatewayv2 get-vpc-links), in the API's account
    /// and region: used as it is, never changed or deleted. The object stalls while it
    /// does not exist.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[a-z0-9]{1,32}$"))]
    pub id: Option<String>,
}

/// Access by claim: each rule maps users whose ID token claim matches to an IAM role that
/// may invoke exactly the rule's routes (Cognito identity pool role mapping, type Rules).
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Access {
    /// The rules, tried in order; the first that matches a user's token decides. At most
    /// 25 (Cognito's limit).
    #[schemars(length(min = 1, max = 25))]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["name".into()]))]
    pub rules: Vec<AccessRule>,

    /// What a user matching no rule gets: `Deny` (no credentials at all, the default) or
    /// `AuthenticatedRole` (the default role; see `unlistedRoutes`).
    #[serde(default)]
    pub unmatched: Unmatched,

    /// Who may call the IAM routes no rule names: `Nobody` (the default) or
    /// `AuthenticatedRole` (users given the default role).
    #[serde(default)]
    pub unlisted_routes: UnlistedRoutes,
}

/// One access rule.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AccessRule {
    /// Names the rule and its IAM role: lower-case letters, digits and '-', at most 20.
    #[schemars(
        regex(pattern = r"^[a-z0-9]([a-z0-9-]{0,18}[a-z0-9])?$"),
        length(min = 1, max = 20)
    )]
    pub name: String,
    /// The ID token claim to test, e.g. https://myapp.example.com/roles.
    #[schemars(length(min = 1, max = 64))]
    pub claim: String,
    /// How the claim is compared with `value`.
    #[serde(default)]
    pub match_type: MatchType,
    /// The value to compare with.
    #[schemars(length(min = 1, max = 128))]
    pub value: String,
    /// Route keys of spec.routes (IAM routes) these users may call, at most 16 (so the
    /// API server can afford to check each against spec.routes).
    #[schemars(length(min = 1, max = 16))]
    pub routes: Vec<String>,
}

// How a claim is compared (plain comment: see Authorization).
#[derive(JsonSchema, Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MatchType {
    #[default]
    Equals,
    Contains,
    StartsWith,
    NotEqual,
}

impl MatchType {
    /// The name Cognito's role mapping rules take.
    pub fn as_str(self) -> &'static str {
        match self {
            MatchType::Equals => "Equals",
            MatchType::Contains => "Contains",
            MatchType::StartsWith => "StartsWith",
            MatchType::NotEqual => "NotEqual",
        }
    }
}

// What users matching no access rule get.
#[derive(JsonSchema, Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Unmatched {
    #[default]
    Deny,
    AuthenticatedRole,
}

// Who may call IAM routes no access rule names.
#[derive(JsonSchema, Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum UnlistedRoutes {
    #[default]
    Nobody,
    AuthenticatedRole,
}

/// Where the operator publishes the API's coordinates.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Outputs {
    /// A ConfigMap in this object's namespace to write `endpoint`, `identityPoolId`,
    /// `region` and `auth0Domain` and `auth0ClientId` (with spec.auth0) or `issuer` and
    /// `clientId` (with spec.oidc), and with spec.domain `domainName`, `domainUrl`,
    /// `domainTarget` and `domainHostedZoneId` (what DNS points at), into. It is owned
    /// by this object and goes with it.
    #[schemars(
        regex(pattern = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"),
        length(min = 1, max = 253)
    )]
    pub config_map_name: String,
}

/// CORS, as API Gateway HTTP APIs configure it.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Cors {
    /// Allowed origins, e.g. https://app.example.com, or "*".
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 50))]
    pub allow_origins: Vec<String>,
    /// Allowed methods, e.g. GET, POST, or "*".
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 10))]
    pub allow_methods: Vec<String>,
    /// Allowed request headers, e.g. authorization, or "*".
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 50))]
    pub allow_headers: Vec<String>,
    /// Response headers the browser may read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 50))]
    pub expose_headers: Vec<String>,
    /// Whether credentials (cookies, authorization headers) may be sent.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_credentials: bool,
    /// How long, in seconds, browsers may cache a preflight answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 86400))]
    pub max_age: Option<i32>,
}

/// Request throttling.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Copy, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Throttling {
    /// Requests that may arrive at once.
    #[schemars(range(min = 0, max = 5000))]
    pub burst_limit: i32,
    /// Steady requests per second.
    #[schemars(range(min = 0.0, max = 10000.0))]
    pub rate_limit: f64,
}

/// Stage access logging.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AccessLog {
    /// ARN of the CloudWatch Logs log group, e.g.
    /// arn:aws:logs:us-east-1:123456789012:log-group:api-access-logs
    #[schemars(
        regex(
            pattern = r"^arn:aws(-cn|-us-gov)?:logs:[a-z0-9-]+:[0-9]{12}:log-group:[A-Za-z0-9_/.#-]{1,512}(:\*)?$"
        ),
        length(max = 600)
    )]
    pub destination_arn: String,
    /// Log line format with $context variables; default: a JSON line with request id,
    /// caller, time, method, route, status, latency and the authorizer's error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 10000))]
    pub format: Option<String>,
}

/// The Auth0 tenant and application users log in with.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Auth0 {
    /// The Auth0 tenant's domain, e.g. myorg.us.auth0.com. An "https://" prefix and a
    /// trailing "/" are accepted; no path.
    #[schemars(
        regex(
            pattern = r"^(https://)?[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+/?$"
        ),
        length(min = 1, max = 261)
    )]
    pub domain: String,

    /// The Auth0 application's client id. It is the audience of the ID tokens Cognito and
    /// the JWT authorizer accept.
    #[schemars(regex(pattern = r"^[^\s]+$"), length(min = 1, max = 255))]
    pub client_id: String,

    /// Audiences the JWT authorizer accepts, for routes with `jwt` authorization.
    /// Defaults to the client id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 10))]
    pub audience: Option<Vec<String>>,
}

/// Any OpenID Connect issuer, and the client its users log in with.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Oidc {
    /// The issuer URL exactly as the `iss` claim of its ID tokens has it, e.g.
    /// https://example.okta.com/oauth2/default or https://login.example.com/realms/team
    /// (the JWT authorizer compares it as it is; IAM and Cognito take it without a
    /// trailing "/"). https only, a lower-case host name, no port, query or fragment; its
    /// discovery document is at <issuer>/.well-known/openid-configuration. Without
    /// "https://" and a trailing "/" it is at most 128 characters (the longest login
    /// provider name Cognito takes).
    #[schemars(
        regex(
            pattern = r"^https://[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+(/[A-Za-z0-9._~!$&'()+,;=:@-]+)*/?$"
        ),
        length(min = 1, max = 137)
    )]
    #[x_kube(
        validation = Rule::new("size(self) - 8 - (self.endsWith('/') ? 1 : 0) <= 128")
            .message("the issuer without https:// and a trailing / must be at most 128 characters: Cognito's limit for a login provider name")
    )]
    pub issuer: String,

    /// The client (application) id users log in with. It is the audience of the ID tokens
    /// Cognito and the JWT authorizer accept.
    #[schemars(regex(pattern = r"^[^\s]+$"), length(min = 1, max = 255))]
    pub client_id: String,

    /// Audiences the JWT authorizer accepts, for routes with `jwt` authorization.
    /// Defaults to the client id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 10))]
    pub audience: Option<Vec<String>>,
}

// How a route is protected. (A plain comment: a doc comment here would replace the
// descriptions of the fields that use this type in the CRD.)
#[derive(JsonSchema, Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Authorization {
    /// AWS_IAM: the caller signs with credentials of the identity pool's authenticated role.
    #[default]
    Iam,
    /// NONE: anyone may call the route.
    None,
    /// JWT: the caller sends an ID token; API Gateway checks issuer and audience.
    Jwt,
    /// CUSTOM: the route's Lambda REQUEST authorizer (route.authorizer) decides.
    Lambda,
}

// What happens to the AWS resources when the object is deleted (plain comment: see above).
#[derive(JsonSchema, Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DeletionPolicy {
    /// Delete every AWS resource this object created.
    #[default]
    Delete,
    /// Leave the AWS resources in place; only the Kubernetes object goes.
    Retain,
}

/// Existing resources to adopt (see spec.adopt).
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Adopt {
    /// The HTTP API's id, e.g. a1b2c3d4e5 (its endpoint is kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[a-z0-9]{1,32}$"))]
    pub api_id: Option<String>,

    /// The Cognito identity pool's id, e.g. us-east-1:0f9c...; its identities keep their ids.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[a-z]{2}(-[a-z]+)+-[0-9]{1,2}:[0-9a-f-]{36}$"))]
    pub identity_pool_id: Option<String>,
}

/// One route of the API.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Route {
    /// The route key: "$default" (every request no other route matches) or
    /// "METHOD /path", e.g. "GET /private", "ANY /items/{id}", "GET /files/{proxy+}".
    #[schemars(
        regex(pattern = r"^(\$default|[A-Z]+ /[A-Za-z0-9._~:@!$&'()*+,;=/{}-]*)$"),
        length(min = 1, max = 128)
    )]
    #[x_kube(
        validation = Rule::new("self == '$default' || self.matches('^(ANY|GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS) ')")
            .message("route method must be one of ANY, GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS (or the whole key \"$default\")")
    )]
    pub route: String,

    /// How this route is protected; defaults to spec.defaultAuthorization.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization: Option<Authorization>,

    /// The Lambda authorizer (a name in spec.authorizers) deciding who may call this
    /// route (lambda routes only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64))]
    pub authorizer: Option<String>,

    /// OAuth scopes the caller's token must hold (jwt routes only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 20))]
    pub scopes: Option<Vec<String>>,

    /// Throttling of this route, instead of spec.throttling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throttling: Option<Throttling>,

    /// Where the route sends requests: exactly one of `lambda`, `http` or `private`.
    pub target: Target,
}

/// The backend of a route. Exactly one kind is set.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[x_kube(
    validation = Rule::new("[has(self.lambda), has(self.http), has(self.private)].exists_one(x, x)")
        .message("exactly one target kind must be set: lambda, http or private")
)]
#[serde(rename_all = "camelCase")]
pub struct Target {
    /// Invoke an AWS Lambda function (AWS_PROXY integration, payload format 2.0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lambda: Option<LambdaTarget>,

    /// Forward to an HTTP(S) URL (HTTP_PROXY integration).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpTarget>,

    /// Forward through spec.vpcLink to a private load balancer's listener or a Cloud Map
    /// service (HTTP_PROXY integration, connection type VPC_LINK).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private: Option<PrivateTarget>,
}

/// A private target in a VPC, reached through spec.vpcLink.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[x_kube(
    validation = Rule::new("[has(self.listenerArn), has(self.cloudMapServiceArn)].exists_one(x, x)")
        .message("set exactly one of listenerArn (an ALB or NLB listener) or cloudMapServiceArn (a Cloud Map service)")
)]
#[serde(rename_all = "camelCase")]
pub struct PrivateTarget {
    /// An Application or Network Load Balancer listener, e.g.
    /// arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/orders/50dc6c495c0c9188/f2f7dc8efc522ab2
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        regex(
            pattern = r"^arn:aws(-cn|-us-gov)?:elasticloadbalancing:[a-z]{2}(-[a-z]+)+-[0-9]{1,2}:[0-9]{12}:listener/(app|net)/[A-Za-z0-9-]{1,32}/[0-9a-f]{16}/[0-9a-f]{16}$"
        ),
        length(max = 256)
    )]
    pub listener_arn: Option<String>,

    /// An AWS Cloud Map service, e.g.
    /// arn:aws:servicediscovery:us-east-1:123456789012:service/srv-e4anhexample0004
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        regex(
            pattern = r"^arn:aws(-cn|-us-gov)?:servicediscovery:[a-z]{2}(-[a-z]+)+-[0-9]{1,2}:[0-9]{12}:service/srv-[a-z0-9]{1,64}$"
        ),
        length(max = 256)
    )]
    pub cloud_map_service_arn: Option<String>,

    /// The host name API Gateway checks the target's TLS certificate against (the
    /// integration's tlsConfig.serverNameToVerify); without it, no TLS to the target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        regex(
            pattern = r"^([A-Za-z0-9*]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$"
        ),
        length(min = 1, max = 253)
    )]
    pub tls_server_name: Option<String>,
}

impl PrivateTarget {
    /// The listener or service ARN: the integration's URI.
    pub fn uri(&self) -> &str {
        self.listener_arn
            .as_deref()
            .or(self.cloud_map_service_arn.as_deref())
            .unwrap_or_default()
    }
}

/// A Lambda function target.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LambdaTarget {
    /// The function's ARN, e.g. arn:aws:lambda:us-east-1:123456789012:function:private,
    /// optionally with a version or alias qualifier. The operator adds a permission to
    /// the function so that this API (and only it) may invoke it.
    #[schemars(
regex(pattern = FUNCTION_ARN_PATTERN), length(max = 256)
    )]
    pub function_arn: String,

    /// The Lambda event format: "2.0" (default, the HTTP API format) or "1.0" (the REST
    /// API format, for functions written for it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload_format_version: Option<PayloadFormatVersion>,
}

/// A Lambda REQUEST authorizer routes may name.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Authorizer {
    /// The name routes use in their `authorizer` field: lower-case letters, digits and
    /// '-', at most 64.
    #[schemars(
        regex(pattern = r"^[a-z0-9]([a-z0-9-]{0,62}[a-z0-9])?$"),
        length(min = 1, max = 64)
    )]
    pub name: String,

    /// The Lambda function that decides, and how API Gateway calls it.
    pub lambda: LambdaAuthorizer,
}

/// How API Gateway calls a Lambda REQUEST authorizer.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[x_kube(
    validation = Rule::new("!self.simpleResponses || self.payloadFormatVersion == '2.0'")
        .message("simpleResponses needs payloadFormatVersion 2.0 (API Gateway's rule): set simpleResponses: false for a 1.0 authorizer, which answers with an IAM policy"),
    validation = Rule::new("self.resultTtlSeconds == 0 || size(self.identitySources) > 0")
        .message("a cached authorizer (resultTtlSeconds > 0) needs identitySources: they are the cache key (API Gateway's rule)")
)]
#[serde(rename_all = "camelCase")]
pub struct LambdaAuthorizer {
    /// The function's ARN, as for a Lambda target, e.g.
    /// arn:aws:lambda:us-east-1:123456789012:function:authorizer. It must be a function
    /// the namespace may use, like a target; the operator lets this API's authorizers
    /// invoke it.
    #[schemars(
regex(pattern = FUNCTION_ARN_PATTERN), length(max = 256)
    )]
    pub function_arn: String,

    /// Where the caller's identity is: `$request.header.NAME`, `$request.querystring.NAME`,
    /// `$context.NAME` or `$stageVariables.NAME`, at most 10. A request missing one is
    /// refused (401) without calling the function; their values are the cache key.
    /// Default: the Authorization header. Empty only without caching (resultTtlSeconds 0).
    #[serde(default = "default_identity_sources")]
    #[schemars(
        length(max = 10),
        inner(
            regex(
                pattern = r"^\$(request\.(header|querystring)|context|stageVariables)\.[A-Za-z0-9._-]+$"
            ),
            length(max = 256)
        )
    )]
    pub identity_sources: Vec<String>,

    /// How long API Gateway caches the function's answer per identity, 0 (no cache) to
    /// 3600 seconds; default 300.
    #[serde(default = "default_result_ttl")]
    #[schemars(range(min = 0, max = 3600))]
    pub result_ttl_seconds: i32,

    /// The function answers {isAuthorized, context} (true, the default; payload 2.0
    /// only) rather than an IAM policy.
    #[serde(default = "default_true")]
    pub simple_responses: bool,

    /// The event format the function gets: "2.0" (default) or "1.0".
    #[serde(default = "default_authorizer_payload")]
    pub payload_format_version: PayloadFormatVersion,
}

fn default_identity_sources() -> Vec<String> {
    vec!["$request.header.Authorization".to_owned()]
}

fn default_result_ttl() -> i32 {
    300
}

fn default_true() -> bool {
    true
}

fn default_authorizer_payload() -> PayloadFormatVersion {
    PayloadFormatVersion::V2
}

// The Lambda proxy event format (plain comment: see Authorization).
#[derive(JsonSchema, Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum PayloadFormatVersion {
    #[serde(rename = "1.0")]
    V1,
    #[serde(rename = "2.0")]
    V2,
}

impl PayloadFormatVersion {
    pub fn as_str(self) -> &'static str {
        match self {
            PayloadFormatVersion::V1 => "1.0",
            PayloadFormatVersion::V2 => "2.0",
        }
    }
}

/// An HTTP URL target.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HttpTarget {
    /// Absolute http:// or https:// URL requests are forwarded to.
    #[schemars(length(min = 1, max = 2048))]
    #[x_kube(
        validation = Rule::new("isURL(self) && url(self).getScheme() in ['http', 'https'] && url(self).getHostname() != ''")
            .message("url must be an absolute http:// or https:// URL")
    )]
    pub url: String,
}

/// What the operator observed and did, in kstatus form.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AuthedApiStatus {
    /// The metadata.generation the conditions describe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// Ready, Reconciling and Stalled, following kstatus.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,

    /// The API Gateway HTTP API id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_id: Option<String>,

    /// The URL to call: https://<apiId>.execute-api.<region>.amazonaws.com
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_endpoint: Option<String>,

    /// The VPC link this object created and owns (spec.vpcLink.subnetIds); a referenced
    /// link is spec.vpcLink.id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vpc_link_id: Option<String>,

    /// The Cognito identity pool id callers get credentials from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_pool_id: Option<String>,

    /// The IAM role authenticated identities assume.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authenticated_role_arn: Option<String>,

    /// The IAM OIDC provider of the issuer (shared by every AuthedApi of that issuer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oidc_provider_arn: Option<String>,

    /// The client id this object registered with the OIDC provider (so it can be
    /// released when the spec moves to another one, or on delete).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oidc_client_id: Option<String>,

    /// Every OIDC provider and client id this object may have registered and not released
    /// yet, each recorded before it is registered: a crash or a spec change in between
    /// never makes one forgotten (deletion releases each).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub oidc_claims: Vec<OidcClaim>,

    /// Lambda functions on which this object holds an invoke permission.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lambda_permissions: Vec<String>,

    /// The AWS account the resources live in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,

    /// Why that account: the AuthedApiTenant (and role) that maps this namespace to it,
    /// or the operator's own account and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_source: Option<String>,

    /// The AWS region the resources live in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,

    /// The IAM role of each access rule.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub access_roles: Vec<AccessRoleStatus>,

    /// The custom domain this object's API is mapped on (spec.domain), and what DNS must
    /// point at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<DomainStatus>,

    /// The ConfigMap the outputs were last written to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outputs_config_map: Option<String>,

    /// AWS creates under way whose result is not recorded yet ("HttpApi", "IdentityPool",
    /// "VpcLink").
    /// API and pool names are not unique in AWS: after a crash between such a create and
    /// the status write, the operator looks the resource up by name and uid tag instead of
    /// creating a second one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending_creates: Vec<String>,

    /// The keys of the organisation's tags (spec.tags and the operator's --resource-tags)
    /// last put on this object's resources: a key that leaves both is removed from the
    /// roles and the identity pool (recorded before the tags are sent, so a crash never
    /// forgets one).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tag_keys: Vec<String>,

    /// The routes as they exist in AWS.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<RouteStatus>,

    /// With the annotation `authedapi.dev/observe-only: "true"`: the changes a reconcile
    /// would make to AWS, each "Action: what it does". Empty when AWS matches the spec.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub planned_changes: Vec<String>,

    /// The value of the annotation `authedapi.dev/reconcile-requested-at` the last
    /// reconcile handled: set a new value (a timestamp, say) to have the object checked
    /// for drift now rather than at the next resync (within its account's drift share).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_reconcile_at: Option<String>,
}

/// The custom domain as it exists in AWS.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DomainStatus {
    /// The domain name.
    pub name: String,
    /// The URL to call through it: https://<name>/<basePath>
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The regional host name a CNAME (or Route 53 alias) for the name points at,
    /// d-xxxxxxxxxx.execute-api.<region>.amazonaws.com.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_domain_name: Option<String>,
    /// The Route 53 hosted zone of that target, for an alias record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hosted_zone_id: Option<String>,
    /// The API mapping that puts this API at its base path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_mapping_id: Option<String>,
}

/// A client id on an OIDC provider.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "camelCase")]
pub struct OidcClaim {
    pub provider_arn: String,
    pub client_id: String,
}

/// The role of one access rule.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AccessRoleStatus {
    /// The rule's name.
    pub rule: String,
    /// The role's name.
    pub role_name: String,
}

/// One route as it exists in AWS.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RouteStatus {
    /// The route key.
    pub route: String,
    /// The authorization in effect.
    pub authorization: Authorization,
    /// The API Gateway route id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route_id: Option<String>,
}

impl AuthedApiSpec {
    /// The authorization a route ends up with.
    pub fn authorization_of(&self, route: &Route) -> Authorization {
        route.authorization.unwrap_or(self.default_authorization)
    }

    /// Every Lambda function the spec names, targets and authorizers alike (each subject
    /// to the same tenant rules), sorted, each once.
    pub fn lambda_functions(&self) -> Vec<&str> {
        let targets = self
            .routes
            .iter()
            .filter_map(|r| r.target.lambda.as_ref().map(|l| l.function_arn.as_str()));
        let authorizers = self
            .authorizers
            .iter()
            .map(|a| a.lambda.function_arn.as_str());
        let mut functions: Vec<&str> = targets.chain(authorizers).collect();
        functions.sort();
        functions.dedup();
        functions
    }

    /// Every private target (listener or Cloud Map service ARN) a route sends requests to.
    pub fn private_targets(&self) -> Vec<&str> {
        let mut targets: Vec<&str> = self
            .routes
            .iter()
            .filter_map(|r| r.target.private.as_ref())
            .filter_map(|p| {
                p.listener_arn
                    .as_deref()
                    .or(p.cloud_map_service_arn.as_deref())
            })
            .collect();
        targets.sort();
        targets.dedup();
        targets
    }
}
