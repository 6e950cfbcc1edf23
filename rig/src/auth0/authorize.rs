//! The authorization endpoint: the client and redirect checked first, then the login, then
//! a code back to the redirect.

use http::StatusCode;
use url::Url;

use super::login_page::login_page;
use super::params::Params;
use super::replies::{Reply, error_page, found};
use super::tenant::{ChallengeMethod, Grant, Shared, lock, random_token};

/// `GET /authorize` (no credentials: the login page) and `POST /authorize` (the login
/// form's credentials).
pub(super) fn authorize(
    shared: &Shared,
    params: Params,
    credentials: Option<(Option<String>, Option<String>)>,
) -> Reply {
    // Client and redirect first: until both are known good, nothing redirects.
    let Some(client_id) = params.get("client_id") else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "Missing required parameter: client_id",
        );
    };
    let Some(application) = shared.applications.get(client_id) else {
        return error_page(
            StatusCode::BAD_REQUEST,
            &format!("Unknown client: {client_id}"),
        );
    };
    let Some(redirect_uri) = params.get("redirect_uri") else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "Missing required parameter: redirect_uri",
        );
    };
    let redirect = match Url::parse(redirect_uri) {
        Ok(url) if application.allows_redirect(redirect_uri) => url,
        _ => {
            return error_page(
                StatusCode::BAD_REQUEST,
                &format!(
                    "Callback URL mismatch. {redirect_uri} is not in the list of allowed \
                     callback URLs of the application {client_id}."
                ),
            );
        }
    };
    let state = params.get("state");
    let refuse = |error: &str, description: &str| {
        let mut location = redirect.clone();
        {
            let mut query = location.query_pairs_mut();
            query
                .append_pair("error", error)
                .append_pair("error_description", description);
            if let Some(state) = state {
                query.append_pair("state", state);
            }
        }
        found(&location)
    };
    match params.get("response_type") {
        None => {
            return refuse(
                "invalid_request",
                "Missing required parameter: response_type",
            );
        }
        Some("code") => {}
        Some(other) => {
            return refuse(
                "unsupported_response_type",
                &format!("Unsupported response type: {other}"),
            );
        }
    }
    if let Some(mode) = params.get("response_mode")
        && mode != "query"
    {
        return refuse(
            "invalid_request",
            &format!("Unsupported response_mode: {mode}"),
        );
    }
    let challenge = match (
        params.get("code_challenge"),
        params.get("code_challenge_method"),
    ) {
        (None, None) => None,
        (None, Some(_)) => {
            return refuse(
                "invalid_request",
                "Missing required parameter: code_challenge",
            );
        }
        (Some(challenge), None | Some("plain")) => {
            Some((ChallengeMethod::Plain, challenge.to_owned()))
        }
        (Some(challenge), Some("S256")) => Some((ChallengeMethod::S256, challenge.to_owned())),
        (Some(_), Some(method)) => {
            return refuse(
                "invalid_request",
                &format!("Unsupported code_challenge_method: {method}"),
            );
        }
    };

    let Some((username, password)) = credentials else {
        return login_page(shared, application, &params, None, StatusCode::OK);
    };
    let user = username.as_deref().and_then(|name| shared.user(name));
    let Some(user) = user.filter(|user| Some(&user.password) == password.as_ref()) else {
        tracing::debug!(client_id, "auth0 stand-in: login refused");
        return login_page(
            shared,
            application,
            &params,
            username.as_deref(),
            StatusCode::UNAUTHORIZED,
        );
    };
    let code = random_token();
    lock(&shared.codes).insert(
        code.clone(),
        Grant {
            client_id: client_id.to_owned(),
            redirect_uri: redirect_uri.to_owned(),
            username: user.username.clone(),
            scope: params.get("scope").map(str::to_owned),
            audience: params.get("audience").map(str::to_owned),
            nonce: params.get("nonce").map(str::to_owned),
            challenge,
            issued: shared.code_now(),
        },
    );
    let mut location = redirect;
    {
        let mut query = location.query_pairs_mut();
        query.append_pair("code", &code);
        if let Some(state) = state {
            query.append_pair("state", state);
        }
    }
    found(&location)
}
