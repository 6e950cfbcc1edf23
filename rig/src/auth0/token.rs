//! The token endpoint: client authentication, the code and its PKCE verifier checked, the
//! tokens signed; errors as Auth0 answers them.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderMap, StatusCode};
use serde_json::{Map, Value, json};
use sha2::{Digest as _, Sha256};

use super::params::Params;
use super::replies::{Reply, json_reply};
use super::tenant::{ChallengeMethod, Shared, lock, unix_now};
use super::{ACCESS_TOKEN_LIFETIME, CODE_LIFETIME, ID_TOKEN_LIFETIME};

/// Whether `verifier` answers the PKCE `challenge` made with `method` (RFC 7636, 4.6).
fn pkce_matches(method: ChallengeMethod, challenge: &str, verifier: &str) -> bool {
    let well_formed = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
    if !well_formed {
        return false;
    }
    match method {
        ChallengeMethod::S256 => URL_SAFE_NO_PAD.encode(Sha256::digest(verifier)) == challenge,
        ChallengeMethod::Plain => verifier == challenge,
    }
}

/// A refusal of `/oauth/token`.
#[derive(Debug)]
pub(super) struct TokenError {
    status: StatusCode,
    error: &'static str,
    description: String,
}

impl TokenError {
    fn invalid_request(description: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            error: "invalid_request",
            description: description.into(),
        }
    }

    fn missing(parameter: &str) -> Self {
        Self::invalid_request(format!("Missing required parameter: {parameter}"))
    }

    /// Auth0's answer to a client that failed to authenticate.
    fn unauthorized() -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            error: "access_denied",
            description: "Unauthorized".to_owned(),
        }
    }

    fn invalid_grant(description: &str) -> Self {
        Self {
            status: StatusCode::FORBIDDEN,
            error: "invalid_grant",
            description: description.to_owned(),
        }
    }

    fn invalid_code() -> Self {
        Self::invalid_grant("Invalid authorization code")
    }

    pub(super) fn reply(&self) -> Reply {
        json_reply(
            self.status,
            json!({"error": self.error, "error_description": self.description}),
            "no-store",
        )
    }
}

/// The client id and secret of an `Authorization: Basic` header (RFC 6749, 2.3.1: each
/// form-urlencoded, then joined by `:`).
fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, String)>, TokenError> {
    let Some(value) = headers.get(AUTHORIZATION) else {
        return Ok(None);
    };
    let malformed = || TokenError::invalid_request("Malformed Authorization header");
    let value = value.to_str().map_err(|_| malformed())?;
    let Some((scheme, encoded)) = value.split_once(' ') else {
        return Err(malformed());
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(malformed());
    }
    let decoded = STANDARD.decode(encoded.trim()).map_err(|_| malformed())?;
    let decoded = String::from_utf8(decoded).map_err(|_| malformed())?;
    let (id, secret) = decoded.split_once(':').ok_or_else(malformed)?;
    let unescape = |part: &str| {
        percent_encoding::percent_decode_str(&part.replace('+', " "))
            .decode_utf8()
            .map(|s| s.into_owned())
            .map_err(|_| malformed())
    };
    Ok(Some((unescape(id)?, unescape(secret)?)))
}

/// `POST /oauth/token`: the tokens for a code, or why not.
pub(super) fn token(
    shared: &Shared,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Value, TokenError> {
    let is_json = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("application/json")
        });
    let params = if is_json {
        Params::json(body)
    } else {
        Params::form(body)
    }
    .map_err(TokenError::invalid_request)?;

    match params.get("grant_type") {
        None => return Err(TokenError::missing("grant_type")),
        Some("authorization_code") => {}
        Some(other) => {
            return Err(TokenError {
                status: StatusCode::FORBIDDEN,
                error: "unsupported_grant_type",
                description: format!("Unsupported grant type: {other}"),
            });
        }
    }

    // Who is asking: HTTP Basic or the body, not both.
    let (client_id, secret) = match basic_credentials(headers)? {
        Some((id, secret)) => {
            if params.get("client_secret").is_some() {
                return Err(TokenError::invalid_request(
                    "Only one client authentication method may be used",
                ));
            }
            if params.get("client_id").is_some_and(|body_id| body_id != id) {
                return Err(TokenError::invalid_request(
                    "client_id does not match the Authorization header",
                ));
            }
            (id, Some(secret))
        }
        None => {
            let id = params
                .get("client_id")
                .ok_or_else(|| TokenError::missing("client_id"))?;
            (
                id.to_owned(),
                params.get("client_secret").map(str::to_owned),
            )
        }
    };
    let Some(application) = shared.applications.get(&client_id) else {
        return Err(TokenError::unauthorized());
    };
    if !application.is_public() && secret.as_deref() != Some(application.client_secret.as_str()) {
        tracing::debug!(%client_id, "auth0 stand-in: client authentication failed");
        return Err(TokenError::unauthorized());
    }
    let code = params
        .get("code")
        .ok_or_else(|| TokenError::missing("code"))?;
    let redirect_uri = params
        .get("redirect_uri")
        .ok_or_else(|| TokenError::missing("redirect_uri"))?;

    // From here on the code is spent, whatever the outcome.
    let grant = lock(&shared.codes)
        .remove(code)
        .ok_or_else(TokenError::invalid_code)?;
    if shared.code_now().saturating_duration_since(grant.issued) >= CODE_LIFETIME
        || grant.client_id != client_id
    {
        return Err(TokenError::invalid_code());
    }
    if grant.redirect_uri != redirect_uri {
        return Err(TokenError::invalid_grant(
            "redirect_uri does not match the one of the authorization request",
        ));
    }
    match (&grant.challenge, params.get("code_verifier")) {
        (Some((method, challenge)), Some(verifier)) => {
            if !pkce_matches(*method, challenge, verifier) {
                return Err(TokenError::invalid_grant("Failed to verify code verifier"));
            }
        }
        (Some(_), None) => return Err(TokenError::missing("code_verifier")),
        // A verifier for a code issued without a challenge: the challenge got lost.
        (None, Some(_)) => {
            return Err(TokenError::invalid_grant("Failed to verify code verifier"));
        }
        // A public client has nothing else to authenticate with.
        (None, None) if application.is_public() => return Err(TokenError::unauthorized()),
        (None, None) => {}
    }

    let user = shared
        .user(&grant.username)
        .ok_or_else(TokenError::invalid_code)?;
    let server_error = |_| TokenError {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        error: "server_error",
        description: "could not sign the tokens".to_owned(),
    };
    let now = unix_now();
    let userinfo = shared.published(shared.flavor.paths().userinfo);
    let audience = match &grant.audience {
        Some(audience) => json!([audience, userinfo]),
        None => json!(userinfo),
    };
    let mut access = Map::new();
    access.insert("iss".into(), shared.issuer().into());
    access.insert("sub".into(), user.subject().into());
    access.insert("aud".into(), audience);
    access.insert("iat".into(), now.into());
    access.insert("exp".into(), (now + ACCESS_TOKEN_LIFETIME.as_secs()).into());
    access.insert(
        "scope".into(),
        grant.scope.clone().unwrap_or_default().into(),
    );
    access.insert("azp".into(), client_id.clone().into());
    let mut tokens = Map::new();
    tokens.insert(
        "access_token".into(),
        shared.sign(&access).map_err(server_error)?.into(),
    );
    let scope = grant.scope.as_deref().unwrap_or_default();
    if scope.split(' ').any(|s| s == "openid") {
        let claims =
            shared.id_token_claims(&user, &client_id, ID_TOKEN_LIFETIME, grant.nonce.as_deref());
        tokens.insert(
            "id_token".into(),
            shared.sign(&claims).map_err(server_error)?.into(),
        );
    }
    if !scope.is_empty() {
        tokens.insert("scope".into(), scope.into());
    }
    tokens.insert("expires_in".into(), ACCESS_TOKEN_LIFETIME.as_secs().into());
    tokens.insert("token_type".into(), "Bearer".into());
    Ok(Value::Object(tokens))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn auth0_pkce_s256_matches_rfc_7636_appendix_b() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(pkce_matches(ChallengeMethod::S256, challenge, verifier));
        assert!(!pkce_matches(ChallengeMethod::Plain, challenge, verifier));
        assert!(pkce_matches(ChallengeMethod::Plain, verifier, verifier));
        let other = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXK";
        assert!(!pkce_matches(ChallengeMethod::S256, challenge, other));
        // Too short and illegal characters never match, even as plain.
        assert!(!pkce_matches(ChallengeMethod::Plain, "short", "short"));
        let spaced = "dBjftJeZ4CVP mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        assert!(!pkce_matches(ChallengeMethod::Plain, spaced, spaced));
    }

    #[test]
    fn auth0_basic_credentials_are_form_decoded() {
        let mut headers = HeaderMap::new();
        let encoded = STANDARD.encode("my%3Aclient:se+cr%25et");
        headers.insert(
            AUTHORIZATION,
            HeaderValue::from_str(&format!("Basic {encoded}")).unwrap(),
        );
        let (id, secret) = basic_credentials(&headers).unwrap().unwrap();
        assert_eq!(id, "my:client");
        assert_eq!(secret, "se cr%et");
        headers.insert(AUTHORIZATION, HeaderValue::from_static("Basic !!!"));
        assert!(basic_credentials(&headers).is_err());
    }
}
