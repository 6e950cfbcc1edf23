//! What clients and AWS read first: the discovery document and the published keys (JWKS).

use jsonwebtoken::jwk::JwkSet;
use serde_json::{Value, json};

use super::tenant::{Shared, lock};

pub(super) fn discovery(shared: &Shared) -> Value {
    let paths = shared.flavor.paths();
    json!({
        "issuer": shared.issuer(),
        "authorization_endpoint": shared.published(paths.authorize),
        "token_endpoint": shared.published(paths.token),
        "userinfo_endpoint": shared.published(paths.userinfo),
        "jwks_uri": shared.published(paths.keys),
        "scopes_supported": [
            "openid", "profile", "offline_access", "name", "given_name", "family_name",
            "nickname", "email", "email_verified", "picture", "created_at", "identities",
            "phone", "address"
        ],
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code"],
        "code_challenge_methods_supported": ["S256", "plain"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": [
            "client_secret_basic", "client_secret_post", "none"
        ],
        "claims_supported": [
            "aud", "auth_time", "created_at", "email", "email_verified", "exp",
            "family_name", "given_name", "iat", "identities", "iss", "name", "nickname",
            "phone_number", "picture", "sub"
        ],
        "request_uri_parameter_supported": false,
        "request_parameter_supported": false
    })
}

/// The JWKS: every signing key, the current one first.
pub(super) fn keys(shared: &Shared) -> Value {
    let keys = JwkSet {
        keys: lock(&shared.keys).iter().map(|k| k.jwk.clone()).collect(),
    };
    serde_json::to_value(keys).unwrap_or_default()
}
