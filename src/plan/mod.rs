//! The desired AWS state of one AuthedApi, as a pure function of its spec and identity.
//!
//! No I/O here: names, tags, policies, the route table and the JWT settings are computed
//! from (spec, namespace, name, uid, account, region, cluster id), so every rule is unit
//! tested alone. Values AWS assigns (API id, pool id) are parameters of the methods that
//! need them.
//!
//! One job per file: [`names`], [`tags`], [`issuers`], [`authorizers`], [`domain`],
//! [`routes`], [`access`] and [`policy_documents`]; this module puts them together into a
//! [`Plan`].

mod access;
mod authorizers;
mod domain;
mod issuers;
mod names;
mod policy_documents;
mod routes;
mod tags;
#[cfg(test)]
mod test_support;
mod vpc_link;

use std::collections::{BTreeMap, BTreeSet};

use crate::api::{AuthedApiSpec, Authorization};
use crate::aws::apigateway::{
    AccessLogConfig, CorsConfig, IntegrationTarget, StageSettings, Throttle,
};
use crate::route_access::RoleResources;
use names::ObjectNames;
use routes::RouteTable;

pub use access::{AccessPlan, AccessRulePlan};
pub use authorizers::{LAMBDA_AUTHORIZER_PREFIX, LambdaAuthorizerPlan};
pub use domain::DomainPlan;
pub use issuers::{
    Issuer, JWT_AUTHORIZER_NAME, JwtPlan, OidcPlan, TAG_ADDED_PREFIX, TAG_CLAIM_PREFIX, added_key,
    claim_key, issuer_name, issuer_of, provider_arn, provider_name_of, record_key_prefixes,
};
pub use policy_documents::INVOKE_POLICY_NAME;
pub use routes::{LAMBDA_PAYLOAD_FORMAT, PlannedRoute};
pub use tags::{
    MANAGED_BY, OUR_TAG_PREFIX, OUR_TAGS, TAG_CLUSTER, TAG_KEY_MAX, TAG_MANAGED_BY, TAG_OWNER,
    TAG_STAGE, TAG_UID, TAG_VALUE_MAX, TAGS_MAX, check_tag, merge_tags, reserved_tag_key,
};
pub use vpc_link::{VpcLinkPlan, through_link};

/// IAM path of every role authedapi creates: the operator's own policy may create, change
/// and pass only roles under it.
pub const ROLE_PATH: &str = "/authedapi/";

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
    /// The Lambda REQUEST authorizers of spec.authorizers.
    pub lambda_authorizers: Vec<LambdaAuthorizerPlan>,
    pub oidc: OidcPlan,
    /// The custom domain, when the spec has one.
    pub domain: Option<DomainPlan>,
    /// The VPC link private targets go through, when the spec has one.
    pub vpc_link: Option<VpcLinkPlan>,
    /// Functions routes target (authorizers' functions are in `lambda_authorizers`).
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
    let names = ObjectNames::of(&spec.stage, who);

    let RouteTable {
        routes,
        integrations,
        lambda_functions,
    } = routes::route_table(spec, &partition)?;

    let lambda_authorizers = authorizers::lambda_authorizers(spec, &partition, who.region)?;
    let issuer = issuer_of(spec)?;
    let jwt = routes
        .iter()
        .any(|r| r.authorization == Authorization::Jwt)
        .then(|| issuers::jwt_plan(&issuer));

    let (tags, tag_keys) = tags::object_tags(spec, who, resource_tags)?;
    let provider_tags = tags::shared_resource_tags(resource_tags, who.cluster_id);
    let domain = spec
        .domain
        .as_ref()
        .map(|domain| DomainPlan::of(domain, provider_tags.clone()));
    let oidc = issuers::oidc_plan(issuer, &partition, who, provider_tags);
    // A link of ours shares the API's name (VPC link names are not unique either).
    let vpc_link = spec
        .vpc_link
        .as_ref()
        .map(|link| VpcLinkPlan::of(link, &names.api));

    let mut access = match &spec.access {
        None => None,
        Some(access) => Some(access::plan_access(spec, access, who, &names.base)?),
    };
    let default_role_resources = access::role_resources(spec, access.as_mut())?;

    Ok(Plan {
        access,
        default_role_resources,
        api_name: names.api,
        identity_pool_name: names.identity_pool,
        role_name: names.role,
        permissions_boundary_arn: if who.permissions_boundary.starts_with("arn:") {
            who.permissions_boundary.to_owned()
        } else {
            format!(
                "arn:{partition}:iam::{}:policy/{}",
                who.account, who.permissions_boundary
            )
        },
        permission_sid: format!("authedapi-{}", names.hash),
        partition,
        region: who.region.to_owned(),
        account: who.account.to_owned(),
        hash: names.hash,
        tags,
        tag_keys,
        integrations,
        routes,
        jwt,
        lambda_authorizers,
        oidc,
        domain,
        vpc_link,
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

    /// The ARN of the role this plan names (under our path).
    pub fn role_arn(&self) -> String {
        format!(
            "arn:{}:iam::{}:role{ROLE_PATH}{}",
            self.partition, self.account, self.role_name
        )
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::test_support::*;

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
    fn endpoint_is_the_execute_api_url() {
        assert_eq!(
            seed_plan().endpoint("abc123"),
            "https://abc123.execute-api.us-east-1.amazonaws.com"
        );
    }
}
