//! The state of one issuer (a tenant): its domain and endpoint layout, applications,
//! users, signing keys and outstanding codes, and how it signs tokens.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, Header};
use rand::RngCore as _;
use serde_json::{Map, Value};

use super::accounts::{Application, TestUser};
use super::keys::SigningKey;

/// Claims the stand-in sets itself; a user's claims never replace them.
pub(super) const REGISTERED_CLAIMS: &[&str] = &["iss", "sub", "aud", "iat", "exp", "nonce", "azp"];

/// Which product's endpoint layout an issuer has (see the [module documentation](super)).
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
pub(super) struct Paths {
    pub(super) authorize: &'static str,
    pub(super) token: &'static str,
    pub(super) userinfo: &'static str,
    pub(super) keys: &'static str,
}

impl Flavor {
    pub(super) fn paths(self) -> Paths {
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

#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum ChallengeMethod {
    S256,
    Plain,
}

/// What a code stands for until it is exchanged.
pub(super) struct Grant {
    pub(super) client_id: String,
    pub(super) redirect_uri: String,
    pub(super) username: String,
    pub(super) scope: Option<String>,
    pub(super) audience: Option<String>,
    pub(super) nonce: Option<String>,
    pub(super) challenge: Option<(ChallengeMethod, String)>,
    pub(super) issued: Instant,
}

pub(super) struct Shared {
    /// The host name, e.g. rig-tenant.us.auth0.com.
    pub(super) domain: String,
    /// The issuer's path on it: "" for an Auth0 tenant, e.g. "/oauth2/default".
    pub(super) base_path: String,
    pub(super) flavor: Flavor,
    pub(super) applications: HashMap<String, Application>,
    pub(super) users: Mutex<HashMap<String, TestUser>>,
    /// Current key first.
    pub(super) keys: Mutex<Vec<Arc<SigningKey>>>,
    pub(super) codes: Mutex<HashMap<String, Grant>>,
    /// How far [`Auth0StandIn::age_codes`] moved the codes' clock on.
    pub(super) code_clock: Mutex<Duration>,
}

pub(super) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub(super) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

pub(super) fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

impl Shared {
    pub(super) fn new(
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
    pub(super) fn issuer(&self) -> String {
        match self.flavor {
            Flavor::Auth0 => format!("https://{}{}/", self.domain, self.base_path),
            Flavor::Okta | Flavor::Keycloak => format!("https://{}{}", self.domain, self.base_path),
        }
    }

    /// The absolute path of the endpoint at `path` (relative to the issuer's path).
    pub(super) fn full_path(&self, path: &str) -> String {
        format!("{}{path}", self.base_path)
    }

    pub(super) fn published(&self, path: &str) -> String {
        format!("https://{}{}", self.domain, self.full_path(path))
    }

    pub(super) fn code_now(&self) -> Instant {
        Instant::now() + *lock(&self.code_clock)
    }

    pub(super) fn current_key(&self) -> Arc<SigningKey> {
        lock(&self.keys)[0].clone()
    }

    pub(super) fn sign(&self, claims: &Map<String, Value>) -> anyhow::Result<String> {
        let key = self.current_key();
        let header = Header {
            kid: Some(key.kid.clone()),
            ..Header::new(Algorithm::RS256)
        };
        Ok(jsonwebtoken::encode(&header, claims, &key.encoding)?)
    }

    /// The claims of an ID token for `user` and `client_id`.
    pub(super) fn id_token_claims(
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

    pub(super) fn user(&self, username: &str) -> Option<TestUser> {
        lock(&self.users).get(username).cloned()
    }
}
