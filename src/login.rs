//! `authedapi call --login`: a login at the AuthedApi's issuer (Auth0, or any OpenID Connect
//! issuer) from a terminal, the way command-line tools do it (the authorization code flow
//! with PKCE and a loopback redirect, RFC 8252): print the login URL (the discovery
//! document's authorization endpoint), wait on the redirect URI (on this machine) for the
//! browser to come back with the code, exchange it for the ID token at the token endpoint. Nothing secret is printed: not the code,
//! not the client secret (read from an environment variable), not the tokens.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use tokio::sync::oneshot;

use crate::call::{CallError, Endpoints};

/// What the login needs.
pub struct Login<'a> {
    /// The issuer's authorization and token endpoints.
    pub endpoints: &'a Endpoints,
    pub client_id: &'a str,
    /// The client secret of a confidential (regular web) application; None with PKCE only.
    pub client_secret: Option<String>,
    /// A loopback URI registered as a callback of the application.
    pub redirect_uri: &'a str,
    pub timeout: Duration,
}

/// A random URL-safe string of `bytes` random bytes.
fn random(bytes: usize) -> String {
    let data: Vec<u8> = (0..bytes).map(|_| rand::random::<u8>()).collect();
    URL_SAFE_NO_PAD.encode(data)
}

/// The PKCE S256 challenge of `verifier`.
pub fn challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// The login page URL for `state` and `challenge`.
pub fn authorize_url(login: &Login<'_>, state: &str, challenge: &str) -> String {
    let query = [
        ("response_type", "code"),
        ("client_id", login.client_id),
        ("redirect_uri", login.redirect_uri),
        ("scope", "openid profile email"),
        ("state", state),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
    ]
    .iter()
    .map(|(k, v)| format!("{k}={}", urlencoding::encode(v)))
    .collect::<Vec<_>>()
    .join("&");
    let endpoint = &login.endpoints.authorization;
    let separator = if endpoint.contains('?') { '&' } else { '?' };
    format!("{endpoint}{separator}{query}")
}

/// Log in and return the ID token.
pub async fn login(login: Login<'_>) -> Result<String, CallError> {
    let redirect: http::Uri = login
        .redirect_uri
        .parse()
        .map_err(|_| CallError::Login(format!("{} is not a URI", login.redirect_uri)))?;
    let host = redirect.host().unwrap_or_default();
    if !matches!(host, "localhost" | "127.0.0.1" | "[::1]") || redirect.scheme_str() != Some("http")
    {
        return Err(CallError::Login(format!(
            "the redirect URI {} must be http://localhost:PORT or http://127.0.0.1:PORT (this \
             machine), and registered as a callback of the application",
            login.redirect_uri
        )));
    }
    let port = redirect.port_u16().unwrap_or(80);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|e| CallError::Login(format!("listening on {}: {e}", login.redirect_uri)))?;
    let state = random(16);
    let verifier = random(32);
    eprintln!(
        "Open this URL in a browser and log in (waiting for {} to redirect to {}):\n\n  {}\n",
        login.endpoints.who,
        login.redirect_uri,
        authorize_url(&login, &state, &challenge(&verifier))
    );
    let code = tokio::time::timeout(
        login.timeout,
        wait_for_code(listener, redirect.path(), &state, &login.endpoints.who),
    )
    .await
    .map_err(|_| CallError::Login(format!("no login within {:?}", login.timeout)))??;
    exchange(&login, &code, &verifier).await
}

/// Serve the redirect URI until the browser brings back the code (or an error).
async fn wait_for_code(
    listener: tokio::net::TcpListener,
    path: &str,
    state: &str,
    who: &str,
) -> Result<String, CallError> {
    let (sender, received) = oneshot::channel::<Result<String, CallError>>();
    let sender = std::sync::Arc::new(std::sync::Mutex::new(Some(sender)));
    let state = state.to_owned();
    let who = who.to_owned();
    let path = if path.is_empty() {
        "/".to_owned()
    } else {
        path.to_owned()
    };
    let handler = move |query: axum::extract::Query<std::collections::HashMap<String, String>>| {
        let sender = sender.clone();
        let state = state.clone();
        let who = who.clone();
        async move {
            let outcome = if let Some(error) = query.get("error") {
                Err(CallError::Login(format!(
                    "{who} refused the login: {error}: {}",
                    query
                        .get("error_description")
                        .map(String::as_str)
                        .unwrap_or("")
                )))
            } else if query.get("state") != Some(&state) {
                Err(CallError::Login(
                    "the redirect's state is not this login's".into(),
                ))
            } else {
                query
                    .get("code")
                    .cloned()
                    .ok_or_else(|| CallError::Login("the redirect has no code".into()))
            };
            let page = match &outcome {
                Ok(_) => "Logged in: you may close this window and go back to the terminal.",
                Err(_) => "The login failed: see the terminal.",
            };
            if let Some(sender) = sender.lock().expect("the sender lock").take() {
                let _ = sender.send(outcome);
            }
            axum::response::Html(format!(
                "<!doctype html><title>authedapi</title><p>{page}</p>"
            ))
        }
    };
    let app = axum::Router::new().route(&path, axum::routing::get(handler));
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let outcome = received
        .await
        .unwrap_or_else(|_| Err(CallError::Login("the redirect listener stopped".into())));
    server.abort();
    outcome
}

/// Exchange the code (with the PKCE verifier, and the secret when there is one).
async fn exchange(login: &Login<'_>, code: &str, verifier: &str) -> Result<String, CallError> {
    let mut params = vec![
        ("grant_type", "authorization_code"),
        ("client_id", login.client_id),
        ("code", code),
        ("redirect_uri", login.redirect_uri),
        ("code_verifier", verifier),
    ];
    if let Some(secret) = &login.client_secret {
        params.push(("client_secret", secret));
    }
    crate::call::token_request(login.endpoints, &params).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pkce_challenge_is_rfc_7636s() {
        // RFC 7636, appendix B.
        assert_eq!(
            challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn the_authorize_url_asks_for_a_code_with_pkce() {
        let endpoints = Endpoints {
            authorization: "https://myorg.us.auth0.com/authorize".into(),
            token: "https://myorg.us.auth0.com/oauth/token".into(),
            who: "Auth0".into(),
        };
        let login = Login {
            endpoints: &endpoints,
            client_id: "abc",
            client_secret: None,
            redirect_uri: "http://localhost:5678",
            timeout: Duration::from_secs(1),
        };
        let url = authorize_url(&login, "s1", "c1");
        assert!(url.starts_with("https://myorg.us.auth0.com/authorize?response_type=code&client_id=abc&redirect_uri=http%3A%2F%2Flocalhost%3A5678"), "{url}");
        assert!(
            url.contains("&state=s1&code_challenge=c1&code_challenge_method=S256"),
            "{url}"
        );
    }
}
