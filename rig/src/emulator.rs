//! The AWS API emulator: moto server plus our extension (`hack/emulator/authedapi_moto.py`),
//! speaking the same wire protocols as AWS, so the AWS SDK for Rust talks to it unchanged,
//! with the IAM judge ([`Judge`]) in front of it: every signed request that is not the
//! account administrator's is authorized against its principal's IAM policies first.

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_config::{BehaviorVersion, Region};

use crate::judge::Judge;
use crate::process::Supervised;
use crate::{free_port, repo_root, tools_dir};

/// The region tests use unless they say otherwise.
pub const DEFAULT_REGION: &str = "us-east-1";
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// A running emulator; it stops when dropped.
pub struct Emulator {
    /// Held for its Drop, which stops the server.
    _process: Supervised,
    /// The IAM judge the emulator asks about every request.
    pub judge: Judge,
    /// Base URL for `AWS_ENDPOINT_URL`.
    pub endpoint: String,
    /// How long it took to accept connections.
    pub startup: Duration,
}

impl Emulator {
    /// Start the emulator on a free loopback port and wait until it accepts connections.
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_on(Ipv4Addr::LOCALHOST).await
    }

    /// Start the emulator on a free port of `address` (the rig's node reaches the host at
    /// its end of the veth pair) and wait until it accepts connections.
    pub async fn start_on(address: Ipv4Addr) -> anyhow::Result<Self> {
        let started = Instant::now();
        let python = tools_dir().join("venv/bin/python");
        anyhow::ensure!(
            python.exists(),
            "{} is missing: run hack/tools.sh to install the AWS emulator",
            python.display()
        );
        let judge = Judge::start().await?;
        let port = free_port()?;
        let script = repo_root().join("hack/emulator/authedapi_moto.py");
        let log = std::env::temp_dir().join(format!("authedapi-moto-{port}.log"));
        let mut process = Supervised::spawn_with_env(
            "moto",
            &python,
            &[
                script.display().to_string(),
                "-H".to_owned(),
                address.to_string(),
                "-p".to_owned(),
                port.to_string(),
            ],
            &[("AUTHEDAPI_JUDGE_URL".to_owned(), judge.url.clone())],
            &log,
            None,
        )?;
        let endpoint = format!("http://{address}:{port}");
        let deadline = Instant::now() + READY_TIMEOUT;
        while tokio::net::TcpStream::connect((address, port))
            .await
            .is_err()
        {
            anyhow::ensure!(
                !process.exited(),
                "the AWS emulator exited while starting:\n{}",
                process.log_tail(30)
            );
            anyhow::ensure!(
                Instant::now() < deadline,
                "the AWS emulator did not listen within {READY_TIMEOUT:?}:\n{}",
                process.log_tail(30)
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Nobody reads the log once the emulator is up: unlink it now, so runs leave no
        // file behind (moto keeps writing to the open file until it exits).
        let _ = std::fs::remove_file(&log);
        let startup = started.elapsed();
        eprintln!(
            "[rig] AWS emulator (moto 5.2.5, IAM judged) ready at {endpoint} in {:.2}s",
            startup.as_secs_f64()
        );
        Ok(Self {
            _process: process,
            judge,
            endpoint,
            startup,
        })
    }

    /// Tell the emulator where the OIDC issuer `name` (host and path) serves its discovery
    /// document and keys: `url`, over HTTPS trusting `ca_pem` when given. STS and Cognito
    /// verify that issuer's tokens with them, as AWS fetches them from the issuer.
    pub async fn register_issuer(
        &self,
        name: &str,
        url: &str,
        ca_pem: Option<&str>,
    ) -> anyhow::Result<()> {
        let response = reqwest::Client::builder()
            .no_proxy()
            .build()?
            .post(format!("{}/_rig/issuers", self.endpoint))
            .json(&serde_json::json!({"domain": name, "url": url, "ca": ca_pem}))
            .send()
            .await?;
        anyhow::ensure!(
            response.status().is_success(),
            "the emulator refused the issuer {name}: {}",
            response.status()
        );
        Ok(())
    }

    /// An AWS account of its own in this emulator, unused by anyone else.
    pub fn new_account(&self) -> Account {
        Account::new(&self.endpoint, &unique_account_id())
    }
}

/// Credentials and endpoint for one emulated AWS account.
#[derive(Clone, Debug)]
pub struct Account {
    /// The 12-digit account id.
    pub id: String,
    /// The emulator's URL.
    pub endpoint: String,
    /// The region calls go to.
    pub region: String,
}

/// An access key (and session token, for a role session) of one principal.
#[derive(Clone, Debug)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

impl Account {
    /// The account `id` on the emulator at `endpoint`, in the default region.
    pub fn new(endpoint: &str, id: &str) -> Self {
        Self {
            id: id.to_owned(),
            endpoint: endpoint.to_owned(),
            region: DEFAULT_REGION.to_owned(),
        }
    }

    /// The account administrator's key: the emulator acts in this account for it and the
    /// IAM judge lets it do anything (as the account root). The rig and the tests set
    /// accounts up and look at them with it; the operator never gets it.
    pub fn admin(&self) -> Credentials {
        Credentials {
            access_key_id: format!("AKIARIG0{}", self.id),
            secret_access_key: "rig-secret-access-key".to_owned(),
            session_token: None,
        }
    }

    /// SDK configuration for the administrator: SigV4-signed requests, as to real AWS.
    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        self.sdk_config_as(&self.admin()).await
    }

    /// SDK configuration for the principal holding `credentials`.
    pub async fn sdk_config_as(&self, credentials: &Credentials) -> aws_config::SdkConfig {
        aws_config::defaults(BehaviorVersion::latest())
            .endpoint_url(&self.endpoint)
            .region(Region::new(self.region.clone()))
            .credentials_provider(aws_credential_types::Credentials::new(
                credentials.access_key_id.clone(),
                credentials.secret_access_key.clone(),
                credentials.session_token.clone(),
                None,
                "authedapi-rig",
            ))
            .load()
            .await
    }

    /// An ACM certificate for `domain` in this account and region, in `status` (ISSUED,
    /// PENDING_VALIDATION, ...), from the emulator's ACM: its ARN.
    pub async fn certificate(&self, domain: &str, status: &str) -> anyhow::Result<String> {
        let body = self
            .rig_call(
                "certificates",
                serde_json::json!({
                    "account": self.id, "region": self.region, "domain": domain, "status": status
                }),
            )
            .await?;
        body["certificateArn"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| anyhow::anyhow!("no certificateArn in {body}"))
    }

    /// How many times the function `function_arn` has run in the emulator's data plane
    /// (what its CloudWatch log would show).
    pub async fn invocations(&self, function_arn: &str) -> anyhow::Result<u64> {
        let body = self
            .rig_call(
                "invocations",
                serde_json::json!({ "functionArn": function_arn }),
            )
            .await?;
        body["count"]
            .as_u64()
            .ok_or_else(|| anyhow::anyhow!("no count in {body}"))
    }

    /// Let `url` stand in, in the data plane, for the private target `target` (an ALB/NLB
    /// listener or Cloud Map service ARN of this account) that VPC link integrations name.
    pub async fn private_target(&self, target: &str, url: &str) -> anyhow::Result<()> {
        self.rig_call(
            "private-targets",
            serde_json::json!({
                "account": self.id, "region": self.region, "target": target, "url": url
            }),
        )
        .await?;
        Ok(())
    }

    /// POST `body` to the emulator's rig call `/_rig/<call>`; its JSON answer.
    async fn rig_call(
        &self,
        call: &str,
        body: serde_json::Value,
    ) -> anyhow::Result<serde_json::Value> {
        let response = reqwest::Client::builder()
            .no_proxy()
            .build()?
            .post(format!("{}/_rig/{call}", self.endpoint))
            .json(&body)
            .send()
            .await?;
        anyhow::ensure!(
            response.status().is_success(),
            "/_rig/{call}: {}",
            response.status()
        );
        Ok(response.json().await?)
    }

    /// Environment variables that point a process's AWS SDK at this account, as the
    /// principal holding `credentials`.
    pub fn env_as(&self, credentials: &Credentials) -> Vec<(&'static str, String)> {
        let mut env = vec![
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_ACCESS_KEY_ID", credentials.access_key_id.clone()),
            (
                "AWS_SECRET_ACCESS_KEY",
                credentials.secret_access_key.clone(),
            ),
            ("AWS_REGION", self.region.clone()),
        ];
        if let Some(token) = &credentials.session_token {
            env.push(("AWS_SESSION_TOKEN", token.clone()));
        }
        env
    }
}

/// A 12-digit account id no other test in this run uses.
fn unique_account_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or_default();
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let id = (nanos / 1000 + u64::from(std::process::id()) * 7919 + n * 104_729) % 900_000_000_000
        + 100_000_000_000;
    id.to_string()
}
