//! Who can log in (test users) and which applications (clients) may ask, with the
//! callbacks each may be redirected to.

use std::fmt;

use serde_json::{Map, Value};
use url::Url;

/// A user who can log in on the login page.
#[derive(Clone, PartialEq)]
pub struct TestUser {
    /// What the login form's `username` field takes; the subject is `auth0|<username>`.
    pub username: String,
    /// What the login form's `password` field must hold.
    pub password: String,
    /// Extra ID-token claims, e.g. `"https://myapp.example.com/roles": ["admin"]`, `email`.
    pub claims: Map<String, Value>,
}

impl TestUser {
    /// A user without extra claims.
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        Self {
            username: username.into(),
            password: password.into(),
            claims: Map::new(),
        }
    }

    /// This user with one more ID-token claim.
    pub fn claim(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.claims.insert(name.into(), value.into());
        self
    }

    /// The `sub` of this user's tokens: `auth0|<username>`.
    pub fn subject(&self) -> String {
        format!("auth0|{}", self.username)
    }
}

impl fmt::Debug for TestUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestUser")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("claims", &self.claims)
            .finish()
    }
}

/// An Auth0 application (a client).
#[derive(Clone, PartialEq)]
pub struct Application {
    /// The `client_id` of `/authorize` and `/oauth/token`, and the `aud` of ID tokens.
    pub client_id: String,
    /// Empty for a public application (SPA or native: PKCE instead of a secret).
    pub client_secret: String,
    /// The allowed `redirect_uri` values, matched as whole strings; `http://127.0.0.1/*`,
    /// `http://localhost/*` and `http://[::1]/*` allow any port and path on that host.
    pub callbacks: Vec<String>,
}

impl Application {
    /// A confidential application (a regular web app) with this secret.
    pub fn confidential(
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
        callbacks: Vec<String>,
    ) -> Self {
        Self {
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            callbacks,
        }
    }

    /// A public application (SPA or native) that authenticates with PKCE alone.
    pub fn public(client_id: impl Into<String>, callbacks: Vec<String>) -> Self {
        Self::confidential(client_id, String::new(), callbacks)
    }

    /// Whether this application has no secret.
    pub fn is_public(&self) -> bool {
        self.client_secret.is_empty()
    }

    /// Whether one of the callbacks allows `redirect_uri`.
    pub fn allows_redirect(&self, redirect_uri: &str) -> bool {
        self.callbacks
            .iter()
            .any(|callback| callback_allows(callback, redirect_uri))
    }
}

impl fmt::Debug for Application {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secret = if self.is_public() {
            "<none>"
        } else {
            "<redacted>"
        };
        f.debug_struct("Application")
            .field("client_id", &self.client_id)
            .field("client_secret", &secret)
            .field("callbacks", &self.callbacks)
            .finish()
    }
}

/// Whether `callback` (one registered value) allows `redirect_uri`.
fn callback_allows(callback: &str, redirect_uri: &str) -> bool {
    if redirect_uri.contains('#') {
        // A redirection URI must not have a fragment (RFC 6749, 3.1.2).
        return false;
    }
    if callback == redirect_uri {
        return true;
    }
    let host = match callback {
        "http://127.0.0.1/*" => "127.0.0.1",
        "http://localhost/*" => "localhost",
        "http://[::1]/*" => "[::1]",
        _ => return false,
    };
    Url::parse(redirect_uri).is_ok_and(|uri| {
        uri.scheme() == "http"
            && uri.host_str() == Some(host)
            && uri.username().is_empty()
            && uri.password().is_none()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth0_loopback_wildcards_allow_any_port_and_path_on_their_host_only() {
        let any = "http://127.0.0.1/*";
        assert!(callback_allows(any, "http://127.0.0.1:53123/callback"));
        assert!(callback_allows(any, "http://127.0.0.1/"));
        assert!(callback_allows(any, "http://127.0.0.1:8080/a/b?x=1"));
        assert!(!callback_allows(any, "https://127.0.0.1:8080/callback"));
        assert!(!callback_allows(any, "http://localhost:8080/callback"));
        assert!(!callback_allows(any, "http://127.0.0.1.evil.example/cb"));
        assert!(!callback_allows(any, "http://user@127.0.0.1:80/cb"));
        assert!(!callback_allows(any, "http://127.0.0.1:8080/cb#frag"));
        assert!(callback_allows(
            "http://localhost/*",
            "http://localhost:3000/"
        ));
        assert!(callback_allows("http://[::1]/*", "http://[::1]:3000/cb"));
        // Any other callback is matched as a whole string; no other wildcards.
        let exact = "https://app.example.com/callback";
        assert!(callback_allows(exact, exact));
        assert!(!callback_allows(exact, "https://app.example.com/callback/"));
        assert!(!callback_allows(
            exact,
            "https://app.example.com/callback?x=1"
        ));
        assert!(!callback_allows(
            "https://*.example.com/*",
            "https://a.example.com/x"
        ));
    }

    #[test]
    fn auth0_debug_output_redacts_passwords_and_secrets() {
        let user = TestUser::new("alice", "hunter2-password").claim("email", "a@example.com");
        let app = Application::confidential("web", "s3cret-value", vec![]);
        let printed = format!("{user:?} {app:?}");
        assert!(!printed.contains("hunter2-password"), "{printed}");
        assert!(!printed.contains("s3cret-value"), "{printed}");
        assert!(
            printed.contains("alice") && printed.contains("web"),
            "{printed}"
        );
    }
}
