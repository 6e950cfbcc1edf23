//! The userinfo endpoint: the user's claims for an access token the stand-in signed.

use http::header::{AUTHORIZATION, HeaderValue, WWW_AUTHENTICATE};
use http::{HeaderMap, StatusCode};
use jsonwebtoken::{Algorithm, Validation};
use serde_json::{Map, Value};

use super::replies::{Reply, json_reply, text};
use super::tenant::{REGISTERED_CLAIMS, Shared, lock};

/// `GET /userinfo` with an access token from `/oauth/token`.
pub(super) fn userinfo(shared: &Shared, headers: &HeaderMap) -> Reply {
    let unauthorized = || {
        let mut response = text(StatusCode::UNAUTHORIZED, "Unauthorized");
        response.headers_mut().insert(
            WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer error=\"invalid_token\""),
        );
        response
    };
    let token = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    let Some(token) = token else {
        return unauthorized();
    };
    let Some(kid) = jsonwebtoken::decode_header(token).ok().and_then(|h| h.kid) else {
        return unauthorized();
    };
    let key = lock(&shared.keys).iter().find(|k| k.kid == kid).cloned();
    let Some(key) = key else {
        return unauthorized();
    };
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_issuer(&[shared.issuer()]);
    validation.set_audience(&[shared.published(shared.flavor.paths().userinfo)]);
    let Ok(data) = jsonwebtoken::decode::<Map<String, Value>>(token, &key.decoding, &validation)
    else {
        return unauthorized();
    };
    let subject = data.claims.get("sub").and_then(Value::as_str);
    let user = subject
        .and_then(|sub| sub.strip_prefix("auth0|"))
        .and_then(|name| shared.user(name));
    let Some(user) = user else {
        return unauthorized();
    };
    let mut claims: Map<String, Value> = user
        .claims
        .iter()
        .filter(|(name, _)| !REGISTERED_CLAIMS.contains(&name.as_str()))
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect();
    claims.insert("sub".into(), user.subject().into());
    json_reply(StatusCode::OK, Value::Object(claims), "no-store")
}
