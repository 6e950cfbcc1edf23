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

use std::collections::HashMap;
use std::convert::Infallible;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use bytes::Bytes;
use http::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_MAX_AGE, ACCESS_CONTROL_REQUEST_HEADERS, AUTHORIZATION, CACHE_CONTROL,
    CONTENT_TYPE, HeaderValue, LOCATION, ORIGIN, PRAGMA, VARY, WWW_AUTHENTICATE,
};
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use jsonwebtoken::jwk::{Jwk, JwkSet, PublicKeyUse, ThumbprintHash};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore as _;
use serde_json::{Map, Value, json};
use sha2::{Digest as _, Sha256};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use url::Url;
use url::form_urlencoded;

/// How long an authorization code can be exchanged after it was issued (Auth0: 10 min).
pub const CODE_LIFETIME: Duration = Duration::from_secs(600);
/// The `expires_in` of the access token (Auth0's default: 24 hours).
pub const ACCESS_TOKEN_LIFETIME: Duration = Duration::from_secs(86_400);
/// The lifetime of an ID token from `/oauth/token` (Auth0's default: 10 hours).
pub const ID_TOKEN_LIFETIME: Duration = Duration::from_secs(36_000);
/// Request bodies larger than this are refused (413).
const MAX_BODY: usize = 64 * 1024;
/// Auth0's message on its login page for a wrong username or password.
const WRONG_CREDENTIALS: &str = "Wrong email or password.";
/// Claims the stand-in sets itself; a user's claims never replace them.
const REGISTERED_CLAIMS: &[&str] = &["iss", "sub", "aud", "iat", "exp", "nonce", "azp"];

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

#[derive(Clone, Copy, Debug, PartialEq)]
enum ChallengeMethod {
    S256,
    Plain,
}

/// What a code stands for until it is exchanged.
struct Grant {
    client_id: String,
    redirect_uri: String,
    username: String,
    scope: Option<String>,
    audience: Option<String>,
    nonce: Option<String>,
    challenge: Option<(ChallengeMethod, String)>,
    issued: Instant,
}

/// One RSA signing key and its public JWK.
struct SigningKey {
    kid: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
    jwk: Jwk,
}

impl SigningKey {
    /// A fresh 2048-bit RSA key whose `kid` is its RFC 7638 thumbprint, with a self-signed
    /// certificate for `domain` in `x5c` as Auth0 publishes one.
    fn generate(domain: &str) -> anyhow::Result<Self> {
        let key_pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256)
            .context("generating an RSA key")?;
        let encoding = EncodingKey::from_rsa_pem(key_pair.serialize_pem().as_bytes())?;
        let mut jwk = Jwk::from_encoding_key(&encoding, Algorithm::RS256)?;
        let kid = jwk.thumbprint(ThumbprintHash::SHA256)?;
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new())?;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, domain);
        let certificate = params.self_signed(&key_pair)?;
        jwk.common.key_id = Some(kid.clone());
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        jwk.common.x509_chain = Some(vec![STANDARD.encode(certificate.der())]);
        let decoding = DecodingKey::from_jwk(&jwk)?;
        Ok(Self {
            kid,
            encoding,
            decoding,
            jwk,
        })
    }
}

/// Which product's endpoint layout an issuer has (see the [module documentation](self)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    /// `/authorize`, `/oauth/token`, `/userinfo`, `/.well-known/jwks.json`; `iss` with a
    /// trailing slash.
    Auth0,
    /// `/v1/authorize`, `/v1/token`, `/v1/userinfo`, `/v1/keys` (an Okta authorization
    /// server, e.g. `/oauth2/default`).
    Okta,
    /// `/protocol/openid-connect/{auth,token,userinfo,certs}` (a Keycloak realm, e.g.
    /// `/realms/<realm>`).
    Keycloak,
}

/// The endpoints of a flavor, relative to the issuer's path.
struct Paths {
    authorize: &'static str,
    token: &'static str,
    userinfo: &'static str,
    keys: &'static str,
}

impl Flavor {
    fn paths(self) -> Paths {
        match self {
            Flavor::Auth0 => Paths {
                authorize: "/authorize",
                token: "/oauth/token",
                userinfo: "/userinfo",
                keys: "/.well-known/jwks.json",
            },
            Flavor::Okta => Paths {
                authorize: "/v1/authorize",
                token: "/v1/token",
                userinfo: "/v1/userinfo",
                keys: "/v1/keys",
            },
            Flavor::Keycloak => Paths {
                authorize: "/protocol/openid-connect/auth",
                token: "/protocol/openid-connect/token",
                userinfo: "/protocol/openid-connect/userinfo",
                keys: "/protocol/openid-connect/certs",
            },
        }
    }
}

/// What a request's path (under the issuer's path) asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Endpoint {
    Discovery,
    Keys,
    Authorize,
    Token,
    Userinfo,
}

struct Shared {
    /// The host name, e.g. rig-tenant.us.auth0.com.
    domain: String,
    /// The issuer's path on it: "" for an Auth0 tenant, e.g. "/oauth2/default".
    base_path: String,
    flavor: Flavor,
    applications: HashMap<String, Application>,
    users: Mutex<HashMap<String, TestUser>>,
    /// Current key first.
    keys: Mutex<Vec<Arc<SigningKey>>>,
    codes: Mutex<HashMap<String, Grant>>,
    /// How far [`Auth0StandIn::age_codes`] moved the codes' clock on.
    code_clock: Mutex<Duration>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

impl Shared {
    fn new(
        domain: &str,
        base_path: &str,
        flavor: Flavor,
        applications: Vec<Application>,
        users: Vec<TestUser>,
    ) -> anyhow::Result<Self> {
        anyhow::ensure!(
            !domain.is_empty() && !domain.contains("://") && !domain.contains(['/', '?', '#', ' ']),
            "the Auth0 domain is a bare host name like rig-tenant.us.auth0.com, not {domain:?}"
        );
        anyhow::ensure!(
            base_path.is_empty()
                || (base_path.starts_with('/')
                    && !base_path.ends_with('/')
                    && !base_path.contains(['?', '#', ' ', '*'])),
            "an issuer's path is like /oauth2/default (no trailing slash), not {base_path:?}"
        );
        let mut by_id = HashMap::new();
        for application in applications {
            anyhow::ensure!(
                !application.client_id.is_empty(),
                "an application has an empty client_id"
            );
            let id = application.client_id.clone();
            anyhow::ensure!(
                by_id.insert(id.clone(), application).is_none(),
                "two applications have the client_id {id:?}"
            );
        }
        let mut by_name = HashMap::new();
        for user in users {
            let name = user.username.clone();
            anyhow::ensure!(
                by_name.insert(name.clone(), user).is_none(),
                "two test users are named {name:?}"
            );
        }
        Ok(Self {
            domain: domain.to_owned(),
            base_path: base_path.to_owned(),
            flavor,
            applications: by_id,
            users: Mutex::new(by_name),
            keys: Mutex::new(vec![Arc::new(SigningKey::generate(domain)?)]),
            codes: Mutex::new(HashMap::new()),
            code_clock: Mutex::new(Duration::ZERO),
        })
    }

    /// The `iss` of its tokens: with a trailing slash for Auth0, without for the others.
    fn issuer(&self) -> String {
        match self.flavor {
            Flavor::Auth0 => format!("https://{}{}/", self.domain, self.base_path),
            Flavor::Okta | Flavor::Keycloak => format!("https://{}{}", self.domain, self.base_path),
        }
    }

    /// The absolute path of the endpoint at `path` (relative to the issuer's path).
    fn full_path(&self, path: &str) -> String {
        format!("{}{path}", self.base_path)
    }

    fn published(&self, path: &str) -> String {
        format!("https://{}{}", self.domain, self.full_path(path))
    }

    /// Which endpoint the absolute `path` is, if any.
    fn endpoint(&self, path: &str) -> Option<Endpoint> {
        let relative = path.strip_prefix(self.base_path.as_str())?;
        let paths = self.flavor.paths();
        Some(match relative {
            "/.well-known/openid-configuration" => Endpoint::Discovery,
            p if p == paths.keys => Endpoint::Keys,
            p if p == paths.authorize => Endpoint::Authorize,
            p if p == paths.token => Endpoint::Token,
            p if p == paths.userinfo => Endpoint::Userinfo,
            _ => return None,
        })
    }

    fn code_now(&self) -> Instant {
        Instant::now() + *lock(&self.code_clock)
    }

    fn current_key(&self) -> Arc<SigningKey> {
        lock(&self.keys)[0].clone()
    }

    fn sign(&self, claims: &Map<String, Value>) -> anyhow::Result<String> {
        let key = self.current_key();
        let header = Header {
            kid: Some(key.kid.clone()),
            ..Header::new(Algorithm::RS256)
        };
        Ok(jsonwebtoken::encode(&header, claims, &key.encoding)?)
    }

    /// The claims of an ID token for `user` and `client_id`.
    fn id_token_claims(
        &self,
        user: &TestUser,
        client_id: &str,
        ttl: Duration,
        nonce: Option<&str>,
    ) -> Map<String, Value> {
        let mut claims: Map<String, Value> = user
            .claims
            .iter()
            .filter(|(name, _)| !REGISTERED_CLAIMS.contains(&name.as_str()))
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect();
        let now = unix_now();
        claims.insert("iss".into(), self.issuer().into());
        claims.insert("sub".into(), user.subject().into());
        claims.insert("aud".into(), client_id.into());
        claims.insert("iat".into(), now.into());
        claims.insert("exp".into(), (now + ttl.as_secs()).into());
        if let Some(nonce) = nonce {
            claims.insert("nonce".into(), nonce.into());
        }
        claims
    }

    fn user(&self, username: &str) -> Option<TestUser> {
        lock(&self.users).get(username).cloned()
    }
}

/// The Auth0 stand-in; see the [module documentation](self). It serves until dropped or
/// [stopped](Auth0StandIn::stop).
pub struct Auth0StandIn {
    url: String,
    shared: Arc<Shared>,
    shutdown: watch::Sender<bool>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
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
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let shared = Arc::new(shared);
        let (shutdown, stopped) = watch::channel(false);
        tokio::spawn(serve(listener, shared.clone(), stopped));
        Ok(Self {
            url,
            shared,
            shutdown,
            thread: Mutex::new(None),
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
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let url = format!("http://{}", listener.local_addr()?);
        let listener = {
            let _entered = runtime.enter();
            TcpListener::from_std(listener)?
        };
        let (shutdown, stopped) = watch::channel(false);
        let serving = shared.clone();
        let thread = std::thread::Builder::new()
            .name("auth0-stand-in".to_owned())
            .spawn(move || runtime.block_on(serve(listener, serving, stopped)))?;
        Ok(Self {
            url,
            shared,
            shutdown,
            thread: Mutex::new(Some(thread)),
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
        self.shutdown.send_replace(true);
        let thread = lock(&self.thread).take();
        if let Some(thread) = thread
            && thread.thread().id() != std::thread::current().id()
        {
            let _ = thread.join();
        }
    }
}

impl Drop for Auth0StandIn {
    fn drop(&mut self) {
        self.stop();
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

async fn serve(listener: TcpListener, shared: Arc<Shared>, mut shutdown: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    tokio::spawn(serve_connection(stream, shared.clone(), shutdown.clone()));
                }
                // Out of file descriptors and the like: wait instead of spinning.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
        }
    }
}

async fn serve_connection(
    stream: TcpStream,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    let service = hyper::service::service_fn(move |request| handle(shared.clone(), request));
    let connection =
        hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service);
    tokio::select! {
        _ = connection => {}
        _ = shutdown.changed() => {}
    }
}

type Reply = Response<Full<Bytes>>;

async fn handle(shared: Arc<Shared>, request: Request<Incoming>) -> Result<Reply, Infallible> {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let origin = request.headers().get(ORIGIN).cloned();
    let mut response = route(&shared, request).await;
    if let Some(origin) = origin
        && shared.endpoint(&path) != Some(Endpoint::Authorize)
    {
        let headers = response.headers_mut();
        headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        headers.insert(VARY, HeaderValue::from_static("Origin"));
    }
    tracing::debug!(%method, %path, status = response.status().as_u16(), "auth0 stand-in");
    Ok(response)
}

async fn route(shared: &Shared, request: Request<Incoming>) -> Reply {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let query = request.uri().query().unwrap_or_default().to_owned();
    let headers = request.headers().clone();
    let body = match Limited::new(request.into_body(), MAX_BODY).collect().await {
        Ok(body) => body.to_bytes(),
        Err(_) => return text(StatusCode::PAYLOAD_TOO_LARGE, "Payload Too Large"),
    };
    let Some(endpoint) = shared.endpoint(&path) else {
        return match method {
            Method::OPTIONS => preflight(&headers),
            _ => text(StatusCode::NOT_FOUND, "Not Found"),
        };
    };
    match (method, endpoint) {
        (Method::OPTIONS, _) => preflight(&headers),
        (Method::GET, Endpoint::Discovery) => json_reply(
            StatusCode::OK,
            discovery(shared),
            "public, max-age=15, stale-while-revalidate=15",
        ),
        (Method::GET, Endpoint::Keys) => {
            let keys = JwkSet {
                keys: lock(&shared.keys).iter().map(|k| k.jwk.clone()).collect(),
            };
            let keys = serde_json::to_value(keys).unwrap_or_default();
            json_reply(
                StatusCode::OK,
                keys,
                "public, max-age=15, stale-while-revalidate=15",
            )
        }
        (Method::GET, Endpoint::Authorize) => match Params::form(query.as_bytes()) {
            Ok(params) => authorize(shared, params, None),
            Err(message) => error_page(StatusCode::BAD_REQUEST, &message),
        },
        (Method::POST, Endpoint::Authorize) => {
            let params = Params::form(query.as_bytes())
                .and_then(|mut params| params.extend(Params::form(&body)?).map(|()| params));
            match params {
                Ok(params) => {
                    let (params, credentials) = params.take_credentials();
                    authorize(shared, params, Some(credentials))
                }
                Err(message) => error_page(StatusCode::BAD_REQUEST, &message),
            }
        }
        (Method::POST, Endpoint::Token) => match token(shared, &headers, &body) {
            Ok(tokens) => json_reply(StatusCode::OK, tokens, "no-store"),
            Err(error) => error.reply(),
        },
        (Method::GET | Method::POST, Endpoint::Userinfo) => userinfo(shared, &headers),
        _ => text(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed"),
    }
}

fn discovery(shared: &Shared) -> Value {
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

/// Request parameters in their order, each name once; an empty value counts as absent
/// (RFC 6749, 3.1).
#[derive(Debug, Default)]
struct Params(Vec<(String, String)>);

impl Params {
    fn form(bytes: &[u8]) -> Result<Self, String> {
        let mut params = Self::default();
        for (name, value) in form_urlencoded::parse(bytes) {
            params.push(name.into_owned(), value.into_owned())?;
        }
        Ok(params)
    }

    fn json(bytes: &[u8]) -> Result<Self, String> {
        let object: Map<String, Value> = serde_json::from_slice(bytes)
            .map_err(|_| "The request body is not a JSON object".to_owned())?;
        let mut params = Self::default();
        for (name, value) in object {
            let value = match value {
                Value::String(s) => s,
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                Value::Null => continue,
                _ => return Err(format!("Invalid value for parameter: {name}")),
            };
            params.push(name, value)?;
        }
        Ok(params)
    }

    fn push(&mut self, name: String, value: String) -> Result<(), String> {
        if self.0.iter().any(|(n, _)| *n == name) {
            return Err(format!("Duplicate parameter: {name}"));
        }
        self.0.push((name, value));
        Ok(())
    }

    fn extend(&mut self, other: Params) -> Result<(), String> {
        other
            .0
            .into_iter()
            .try_for_each(|(name, value)| self.push(name, value))
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, v)| n == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    /// The login form's username and password, apart from the authorization parameters.
    fn take_credentials(self) -> (Params, (Option<String>, Option<String>)) {
        let (mut username, mut password) = (None, None);
        let mut rest = Vec::new();
        for (name, value) in self.0 {
            match name.as_str() {
                "username" => username = Some(value),
                "password" => password = Some(value),
                _ => rest.push((name, value)),
            }
        }
        (Params(rest), (username, password))
    }
}

/// `GET /authorize` (no credentials: the login page) and `POST /authorize` (the login
/// form's credentials).
fn authorize(
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

fn found(location: &Url) -> Reply {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = StatusCode::FOUND;
    if let Ok(value) = HeaderValue::from_str(location.as_str()) {
        response.headers_mut().insert(LOCATION, value);
    }
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Escape `text` for HTML element content and quoted attribute values.
fn html_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    escaped
}

fn login_page(
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

fn error_page(status: StatusCode, message: &str) -> Reply {
    html(
        status,
        format!(
            "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
             <title>Error</title>\n</head>\n<body>\n<main>\n<h1>Oops!, something went wrong</h1>\n\
             <p class=\"error\">invalid_request: {}</p>\n</main>\n</body>\n</html>\n",
            html_escape(message)
        ),
    )
}

fn html(status: StatusCode, page: String) -> Reply {
    let mut response = Response::new(Full::new(Bytes::from(page)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn text(status: StatusCode, body: &'static str) -> Reply {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

fn json_reply(status: StatusCode, body: Value, cache_control: &'static str) -> Reply {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    headers.insert(CACHE_CONTROL, HeaderValue::from_static(cache_control));
    if cache_control == "no-store" {
        headers.insert(PRAGMA, HeaderValue::from_static("no-cache"));
    }
    response
}

fn preflight(headers: &HeaderMap) -> Reply {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = StatusCode::NO_CONTENT;
    let out = response.headers_mut();
    out.insert(
        ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, POST"),
    );
    let allowed = headers
        .get(ACCESS_CONTROL_REQUEST_HEADERS)
        .cloned()
        .unwrap_or_else(|| HeaderValue::from_static("authorization, content-type, auth0-client"));
    out.insert(ACCESS_CONTROL_ALLOW_HEADERS, allowed);
    out.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("86400"));
    response
}

/// A refusal of `/oauth/token`.
#[derive(Debug)]
struct TokenError {
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

    fn reply(&self) -> Reply {
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
fn token(shared: &Shared, headers: &HeaderMap, body: &[u8]) -> Result<Value, TokenError> {
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

/// `GET /userinfo` with an access token from `/oauth/token`.
fn userinfo(shared: &Shared, headers: &HeaderMap) -> Reply {
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

    #[test]
    fn auth0_params_treat_empty_values_as_absent_and_refuse_duplicates() {
        let params = Params::form(b"a=1&b=&c=x+y%21").unwrap();
        assert_eq!(params.get("a"), Some("1"));
        assert_eq!(params.get("b"), None);
        assert_eq!(params.get("c"), Some("x y!"));
        assert!(Params::form(b"a=1&a=2").is_err());
        let json = Params::json(br#"{"a":"1","n":2,"z":null}"#).unwrap();
        assert_eq!(json.get("n"), Some("2"));
        assert_eq!(json.get("z"), None);
        assert!(Params::json(br#"{"a":{"b":1}}"#).is_err());
        assert!(Params::json(b"[1]").is_err());
    }

    #[test]
    fn auth0_html_escape_covers_attribute_breakers() {
        assert_eq!(
            html_escape(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
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
