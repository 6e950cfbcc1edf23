//! An Auth0 stand-in: an OpenID Connect issuer on loopback that answers the flows of the
//! SST example "api-auth-auth0" as an Auth0 tenant does, so the rig can log a test user in,
//! exchange the code and hand the ID token to Cognito without any network.
//!
//! It serves plain HTTP on `127.0.0.1:<free port>` ([`Auth0StandIn::url`]); whatever
//! terminates TLS in front of it forwards requests with their original `Host`, which the
//! stand-in never reads. Every URL it *publishes* (the `iss` claim, the endpoints in the
//! discovery document) is `https://<domain>/...` for the fake tenant domain given at start
//! (`rig-tenant.us.auth0.com`), since that is what clients and AWS see.
//!
//! What it guarantees:
//!
//! * **Discovery and keys.** `GET /.well-known/openid-configuration` names the issuer
//!   `https://<domain>/` (with Auth0's trailing slash), `/authorize`, `/oauth/token`,
//!   `/userinfo` and `/.well-known/jwks.json` on that domain. `GET /.well-known/jwks.json`
//!   publishes every signing key (2048-bit RSA generated at start, never stored on disk)
//!   as `kty RSA, use sig, alg RS256, kid, n, e` plus a self-signed `x5c`, current key
//!   first; [`Auth0StandIn::rotate_key`] adds a new current key and keeps publishing the
//!   old ones.
//! * **Only registered redirects.** `/authorize` checks `client_id` and `redirect_uri`
//!   before anything else and answers an HTML error page (400) when either is missing,
//!   unknown or not among the application's callbacks: it never redirects to a URI that
//!   is not registered. A callback is matched as a whole string, except `http://127.0.0.1/*`,
//!   `http://localhost/*` and `http://[::1]/*`, which allow any port and path on that
//!   loopback host (a native app's loopback redirect). Any other error of a request whose
//!   client and redirect are valid goes back to the redirect as `error`,
//!   `error_description` and `state`, as OAuth 2.0 says.
//! * **A login page with configurable test users.** `GET /authorize` answers a small HTML
//!   form that posts `username`, `password` and the original parameters (hidden inputs)
//!   to `POST /authorize`. A script posts the same form directly. A wrong password (or an
//!   unknown user) answers **401** with the login page again and Auth0's message "Wrong
//!   email or password."; the right one answers `302 Location: <redirect_uri>?code=…&state=…`.
//! * **Codes as Auth0 has them.** A code is random (256 bits), bound to its client,
//!   redirect_uri, user, scope, nonce and PKCE challenge, lives [`CODE_LIFETIME`] (10
//!   minutes; [`Auth0StandIn::age_codes`] moves time on for tests) and is consumed by the
//!   first exchange that gets as far as looking it up (its client authenticated), whether
//!   that exchange then succeeds or not.
//! * **Client authentication.** An [`Application`] with a `client_secret` is confidential:
//!   every exchange must present that secret (`client_secret` in the body, or HTTP Basic),
//!   and also the `code_verifier` when `/authorize` got a `code_challenge`. One with an
//!   empty secret is public (an SPA or native app, Auth0's token endpoint authentication
//!   method "None"): it authenticates with PKCE alone, so its codes must have been issued
//!   with a `code_challenge` (`S256`, or `plain`).
//! * **Tokens.** `POST /oauth/token` (form-urlencoded or JSON) answers
//!   `{access_token, id_token, scope, expires_in: 86400, token_type: "Bearer"}`. The ID
//!   token (only when the scope has `openid`) is RS256 with the current key's `kid`:
//!   `iss`, `sub` = `auth0|<username>`, `aud` = client_id, `iat`, `exp` (+10 hours, Auth0's
//!   default), `nonce` when `/authorize` got one, plus the user's claims (which cannot
//!   override those). The access token is an RS256 JWT for `aud` =
//!   `https://<domain>/userinfo` (and the `audience` asked for at `/authorize`, first), good
//!   for `GET /userinfo`, which answers `sub` and the user's claims.
//! * **Errors as Auth0 answers them** at `/oauth/token`, JSON `{error, error_description}`:
//!   400 `invalid_request` (a missing parameter, a body that does not parse, two ways of
//!   client authentication), 401 `access_denied` "Unauthorized" (an unknown client, a
//!   missing or wrong secret, a public client without PKCE), 403 `invalid_grant` (a code
//!   unknown, used, expired or another client's: "Invalid authorization code"; a
//!   redirect_uri other than the one `/authorize` got; a wrong `code_verifier`: "Failed to
//!   verify code verifier"), 403 `unsupported_grant_type`.
//! * **No secrets in logs.** Requests are logged (at debug) by method, path and status
//!   only; passwords, client secrets, codes and tokens are never logged, and the
//!   [`Debug`] output of [`TestUser`] and [`Application`] redacts them.
//!
//! **Other issuers.** [`Auth0StandIn::start_issuer_detached`] serves an issuer at any path
//! of its host, with the endpoint layout of another product ([`Flavor`]): Okta's
//! (`https://<host>/oauth2/default`: `/v1/authorize`, `/v1/token`, `/v1/userinfo`,
//! `/v1/keys`) or Keycloak's (`https://<host>/realms/<realm>`:
//! `/protocol/openid-connect/{auth,token,userinfo,certs}`), each under the issuer's path,
//! with discovery at `<issuer>/.well-known/openid-configuration`, and an `iss` without
//! Auth0's trailing slash, as those products publish it. Everything else (users, codes,
//! client authentication, errors) is as described above.
//!
//! It is a stand-in for tests, not an identity provider: no sessions or SSO cookies, no
//! consent, no refresh tokens, no `response_mode` but `query`, and CORS lets every origin
//! read discovery, keys, tokens and userinfo (Auth0 allows only configured web origins).
//!
//! One job per file: `accounts` (users and applications), `keys` (key material),
//! `tenant` (an issuer's state), `server` (the listener and the routes, on axum),
//! `discovery`, `authorize` and `login_page`, `token`, `userinfo`, with
//! `params` and `replies` for reading requests and shaping answers.

mod accounts;
mod authorize;
mod discovery;
mod keys;
mod login_page;
mod params;
mod replies;
mod server;
mod tenant;
mod token;
mod userinfo;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use serde_json::{Map, Value};

pub use accounts::{Application, TestUser};
pub use tenant::Flavor;

use crate::serving::{Serving, bind_loopback};
use keys::SigningKey;
use server::serve;
use tenant::{Shared, lock};

/// How long an authorization code can be exchanged after it was issued (Auth0: 10 min).
pub const CODE_LIFETIME: Duration = Duration::from_secs(600);
/// The `expires_in` of the access token (Auth0's default: 24 hours).
pub const ACCESS_TOKEN_LIFETIME: Duration = Duration::from_secs(86_400);
/// The lifetime of an ID token from `/oauth/token` (Auth0's default: 10 hours).
pub const ID_TOKEN_LIFETIME: Duration = Duration::from_secs(36_000);

/// The Auth0 stand-in; see the [module documentation](self). It serves until dropped or
/// [stopped](Auth0StandIn::stop).
pub struct Auth0StandIn {
    url: String,
    shared: Arc<Shared>,
    serving: Serving,
}

impl Auth0StandIn {
    /// Start a stand-in for the tenant `domain` (e.g. `rig-tenant.us.auth0.com`) on a free
    /// loopback port, as a task of the current tokio runtime (it ends with that runtime).
    pub async fn start(
        domain: &str,
        applications: Vec<Application>,
        users: Vec<TestUser>,
    ) -> anyhow::Result<Self> {
        let domain = domain.to_owned();
        // RSA key generation takes a while: not on the runtime's threads.
        let shared = tokio::task::spawn_blocking(move || {
            Shared::new(&domain, "", Flavor::Auth0, applications, users)
        })
        .await
        .context("the key generation task")??;
        let (listener, url) = bind_loopback()?;
        let shared = Arc::new(shared);
        let serving_shared = shared.clone();
        let serving = Serving::on_current_runtime(listener, move |listener, stopped| {
            serve(listener, serving_shared, stopped)
        })?;
        Ok(Self {
            url,
            shared,
            serving,
        })
    }

    /// Start a stand-in on a thread and tokio runtime of its own, so it serves any runtime
    /// (every `#[tokio::test]` has its own) and can live in a `static`.
    pub fn start_detached(
        domain: &str,
        applications: Vec<Application>,
        users: Vec<TestUser>,
    ) -> anyhow::Result<Self> {
        Self::detached(Shared::new(domain, "", Flavor::Auth0, applications, users)?)
    }

    /// [`Auth0StandIn::start_detached`] for an issuer at any path of its host, e.g.
    /// `https://rig.okta.com/oauth2/default` with [`Flavor::Okta`] or
    /// `https://login.rig.example/realms/team` with [`Flavor::Keycloak`]: discovery, keys,
    /// login and tokens under that path, with that product's endpoint names.
    pub fn start_issuer_detached(
        issuer: &str,
        flavor: Flavor,
        applications: Vec<Application>,
        users: Vec<TestUser>,
    ) -> anyhow::Result<Self> {
        let rest = issuer
            .strip_prefix("https://")
            .with_context(|| format!("an issuer is an https URL, not {issuer:?}"))?
            .trim_end_matches('/');
        let (domain, path) = match rest.split_once('/') {
            Some((domain, path)) => (domain, format!("/{path}")),
            None => (rest, String::new()),
        };
        Self::detached(Shared::new(domain, &path, flavor, applications, users)?)
    }

    fn detached(shared: Shared) -> anyhow::Result<Self> {
        let shared = Arc::new(shared);
        let (listener, url) = bind_loopback()?;
        let serving_shared = shared.clone();
        let serving = Serving::detached("auth0-stand-in", listener, move |listener, stopped| {
            serve(listener, serving_shared, stopped)
        })?;
        Ok(Self {
            url,
            shared,
            serving,
        })
    }

    /// Where it really listens: `http://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The fake tenant domain (the issuer's host), e.g. `rig-tenant.us.auth0.com`.
    pub fn domain(&self) -> &str {
        &self.shared.domain
    }

    /// The issuer's host and path, without scheme or trailing slash (e.g.
    /// `rig.okta.com/oauth2/default`): the name AWS knows its OIDC provider by, and the
    /// key of Cognito's `Logins`.
    pub fn name(&self) -> String {
        format!("{}{}", self.shared.domain, self.shared.base_path)
    }

    /// The `iss` of its tokens: `https://<domain>/` for Auth0 (which puts the trailing
    /// slash in), `https://<domain><path>` for the others.
    pub fn issuer(&self) -> String {
        self.shared.issuer()
    }

    /// The absolute URL of its authorization endpoint (where the login page is).
    pub fn authorize_url(&self) -> String {
        self.shared.published(self.shared.flavor.paths().authorize)
    }

    /// Add a user who can log in, or replace the one with the same username.
    pub fn add_user(&self, user: TestUser) {
        lock(&self.shared.users).insert(user.username.clone(), user);
    }

    /// An ID token signed with the current key, for tests that skip the login: `iss`,
    /// `sub` (`auth0|<username>`), `aud` = `client_id`, `iat`, `exp` = now + `ttl`, plus the
    /// user's claims, and `extra` on top of all of them (so a test can also forge a token
    /// with a wrong `iss` or a past `exp`, signed with the real key). Fails for an unknown
    /// user; the client need not be registered.
    pub fn id_token(
        &self,
        username: &str,
        client_id: &str,
        ttl: Duration,
        extra: Map<String, Value>,
    ) -> anyhow::Result<String> {
        let user = self
            .shared
            .user(username)
            .with_context(|| format!("the Auth0 stand-in has no user {username:?}"))?;
        let mut claims = self.shared.id_token_claims(&user, client_id, ttl, None);
        claims.extend(extra);
        self.shared.sign(&claims)
    }

    /// The `kid` tokens are signed with now.
    pub fn current_kid(&self) -> String {
        self.shared.current_key().kid.clone()
    }

    /// Generate a new signing key, sign with it from now on and publish it first in the
    /// JWKS; the previous keys stay published (as after an Auth0 key rotation, before the
    /// old key is revoked). Returns the new `kid`.
    pub fn rotate_key(&self) -> anyhow::Result<String> {
        let key = Arc::new(SigningKey::generate(&self.shared.domain)?);
        let kid = key.kid.clone();
        lock(&self.shared.keys).insert(0, key);
        Ok(kid)
    }

    /// Make every outstanding authorization code `by` older, as if that much time had
    /// passed (codes live [`CODE_LIFETIME`]); codes issued later are fresh. For tests of
    /// expiry that must not wait ten minutes.
    pub fn age_codes(&self, by: Duration) {
        *lock(&self.shared.code_clock) += by;
    }

    /// Stop accepting and drop every connection. Idempotent; also done on drop.
    pub fn stop(&self) {
        self.serving.stop();
    }
}

impl fmt::Debug for Auth0StandIn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Auth0StandIn")
            .field("url", &self.url)
            .field("domain", &self.shared.domain)
            .finish_non_exhaustive()
    }
}
