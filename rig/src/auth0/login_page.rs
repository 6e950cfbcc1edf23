//! The login page `/authorize` shows: a form with the authorization request's parameters,
//! and Auth0's message after a wrong password.

use http::StatusCode;

use super::accounts::Application;
use super::params::Params;
use super::replies::{Reply, html, html_escape};
use super::tenant::Shared;

/// Auth0's message on its login page for a wrong username or password.
const WRONG_CREDENTIALS: &str = "Wrong email or password.";

pub(super) fn login_page(
    shared: &Shared,
    application: &Application,
    params: &Params,
    username: Option<&str>,
    status: StatusCode,
) -> Reply {
    let hidden: String = params
        .0
        .iter()
        .map(|(name, value)| {
            format!(
                "    <input type=\"hidden\" name=\"{}\" value=\"{}\">\n",
                html_escape(name),
                html_escape(value)
            )
        })
        .collect();
    let error = if status == StatusCode::OK {
        String::new()
    } else {
        format!("  <p class=\"error\" role=\"alert\">{WRONG_CREDENTIALS}</p>\n")
    };
    let page = format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>Log in | {domain}</title>\n</head>\n<body>\n<main>\n\
         <h1>Welcome</h1>\n<p>Log in to {domain} to continue to {client}.</p>\n{error}\
         <form method=\"post\" action=\"{action}\">\n{hidden}\
         \x20   <label>Username <input type=\"text\" name=\"username\" value=\"{username}\" \
         autocomplete=\"username\" required autofocus></label>\n\
         \x20   <label>Password <input type=\"password\" name=\"password\" \
         autocomplete=\"current-password\" required></label>\n\
         \x20   <button type=\"submit\">Continue</button>\n</form>\n</main>\n</body>\n</html>\n",
        domain = html_escape(&shared.domain),
        action = html_escape(&shared.full_path(shared.flavor.paths().authorize)),
        client = html_escape(&application.client_id),
        username = html_escape(username.unwrap_or_default()),
    );
    html(status, page)
}
