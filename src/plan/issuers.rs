//! The OIDC issuer an object federates (spec.auth0 or spec.oidc), the JWT authorizer that
//! checks its tokens, and the shared IAM OIDC provider of the issuer with this cluster's
//! records on it.

use std::collections::BTreeMap;

use super::names::short_hash;
use super::{Identity, PlanError};
use crate::api::AuthedApiSpec;

/// The JWT authorizer's name inside the API.
pub const JWT_AUTHORIZER_NAME: &str = "auth0";

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

/// The JWT authorizer of routes that use `jwt`: it checks `issuer`'s tokens.
pub(super) fn jwt_plan(issuer: &Issuer) -> JwtPlan {
    JwtPlan {
        name: JWT_AUTHORIZER_NAME.to_owned(),
        issuer: issuer.token_issuer.clone(),
        audience: issuer.audience.clone(),
    }
}

/// The shared provider of `issuer`, with this cluster's claim and record on it; `tags`
/// are put on it when this cluster creates it.
pub(super) fn oidc_plan(
    issuer: Issuer,
    partition: &str,
    who: &Identity<'_>,
    tags: BTreeMap<String, String>,
) -> OidcPlan {
    let client_id = issuer.client_id.clone();
    OidcPlan {
        url: issuer.url(),
        arn: provider_arn(partition, who.account, &issuer.name),
        tags,
        claim: (claim_key(who.cluster_id, &client_id), client_id.clone()),
        added: (added_key(who.cluster_id, &client_id), client_id.clone()),
        client_id,
        name: issuer.name,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Oidc;
    use crate::plan::test_support::*;

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
}
