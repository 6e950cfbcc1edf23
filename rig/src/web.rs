//! The rig's web: what a person's browser, `curl` and `authedapi call` reach by the names
//! they would use for real. The [`FrontDoor`] routes `https://<apiId>.execute-api.<region>
//! .amazonaws.com` to the emulator's execute-api data plane, and each issuer stand-in's host
//! (`https://<tenant>.auth0.com`, or an Okta or Keycloak host whose issuer has a path) to
//! it; the emulator is told where each issuer (host and path) is, so Cognito and JWT
//! authorizers verify tokens as AWS does. One host serves one stand-in.
//!
//! A client is pointed at it the standard way ([`Web::client_env`]): `HTTPS_PROXY` (with
//! `NO_PROXY` for the loopback endpoints) and the front door's CA in `SSL_CERT_FILE` /
//! `CURL_CA_BUNDLE`.

use std::path::Path;

use crate::auth0::Auth0StandIn;
use crate::front_door::FrontDoor;

/// Regions whose execute-api names are routed (the ones tests and examples use).
const REGIONS: [&str; 4] = ["us-east-1", "us-west-2", "eu-west-1", "eu-central-1"];

/// The front door, wired to one emulator.
pub struct Web {
    pub front_door: FrontDoor,
    emulator: String,
}

impl Web {
    /// Route every API of the emulator at `emulator` (its URL) through a new front door
    /// whose CA is written in `dir`.
    pub async fn start(emulator: &str, dir: &Path) -> anyhow::Result<Self> {
        let front_door = FrontDoor::start(dir).await?;
        for region in REGIONS {
            front_door.add_route(&format!("*.execute-api.{region}.amazonaws.com"), emulator);
        }
        Ok(Self {
            front_door,
            emulator: emulator.to_owned(),
        })
    }

    /// Make `issuer` reachable at its https host, and known to the emulator by its name
    /// (host and path: the name its IAM OIDC provider and Cognito logins have).
    pub async fn add_issuer(&self, issuer: &Auth0StandIn) -> anyhow::Result<()> {
        self.front_door.add_route(issuer.domain(), issuer.url());
        let response = reqwest::Client::builder()
            .no_proxy()
            .build()?
            .post(format!("{}/_rig/issuers", self.emulator))
            .json(&serde_json::json!({"domain": issuer.name(), "url": issuer.url()}))
            .send()
            .await?;
        anyhow::ensure!(
            response.status().is_success(),
            "the emulator refused the issuer {}: {}",
            issuer.name(),
            response.status()
        );
        Ok(())
    }

    /// Make the role session behind `access_key_id` expired (a test's clock).
    pub async fn expire_session(&self, access_key_id: &str) -> anyhow::Result<()> {
        let response = reqwest::Client::builder()
            .no_proxy()
            .build()?
            .post(format!("{}/_rig/expire-session", self.emulator))
            .json(&serde_json::json!({"accessKeyId": access_key_id}))
            .send()
            .await?;
        anyhow::ensure!(response.status().is_success(), "{}", response.status());
        Ok(())
    }

    /// Environment variables that point a client (curl, `authedapi call`) at the web.
    pub fn client_env(&self) -> Vec<(String, String)> {
        self.front_door.client_env()
    }

    /// An HTTPS client that reaches the web (and trusts only its CA), as a browser would.
    pub fn http_client(&self) -> anyhow::Result<reqwest::Client> {
        let ca = std::fs::read(self.front_door.ca_pem_path())?;
        Ok(reqwest::Client::builder()
            .proxy(reqwest::Proxy::https(self.front_door.proxy_url())?)
            .tls_certs_only([reqwest::Certificate::from_pem(&ca)?])
            .redirect(reqwest::redirect::Policy::none())
            .build()?)
    }
}
