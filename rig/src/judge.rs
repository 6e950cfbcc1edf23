//! The IAM judge process: `hack/iam-judge/judge.mjs` on Node.js, evaluating AWS requests
//! with a maintained IAM policy simulator (`@cloud-copilot/iam-simulate`, pinned by
//! `hack/iam-judge/package-lock.json`, installed by `hack/tools.sh`). The emulator sends
//! it every signed request (see `hack/emulator/rig_judge.py`); it answers allowed or
//! denied, and appends each decision, with the statements that granted it, to a records
//! file (JSON lines).
//!
//! Records go to `$AUTHEDAPI_JUDGE_RECORDS/<port>.jsonl` when that directory is set (as
//! `make test` does, to check over the whole suite that every statement of the shipped
//! policy is used), else to a file of the process's own that is removed when it stops.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::process::Supervised;
use crate::{free_port, repo_root, tools_dir};

const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// Environment variable naming the directory the judges of a run write their records to.
pub const RECORDS_DIR_ENV: &str = "AUTHEDAPI_JUDGE_RECORDS";

/// A running judge; it stops when dropped.
pub struct Judge {
    _process: Supervised,
    /// `http://127.0.0.1:PORT`, for the emulator's AUTHEDAPI_JUDGE_URL.
    pub url: String,
    /// Where this judge appends its decisions.
    pub records: PathBuf,
    _scratch: Option<tempfile::TempDir>,
}

impl Judge {
    /// Start the judge on a free loopback port and wait until it answers.
    pub async fn start() -> anyhow::Result<Self> {
        let modules = tools_dir().join("iam-judge/node_modules");
        anyhow::ensure!(
            modules.join("@cloud-copilot/iam-simulate").exists(),
            "{} is missing: run hack/tools.sh to install the IAM judge",
            modules.display()
        );
        let port = free_port()?;
        let (records, scratch) = match std::env::var_os(RECORDS_DIR_ENV) {
            Some(dir) => {
                std::fs::create_dir_all(&dir)?;
                (
                    PathBuf::from(dir).join(format!("{}-{port}.jsonl", std::process::id())),
                    None,
                )
            }
            None => {
                let dir = tempfile::Builder::new()
                    .prefix("authedapi-judge-")
                    .tempdir()?;
                (dir.path().join("records.jsonl"), Some(dir))
            }
        };
        let log = std::env::temp_dir().join(format!("authedapi-judge-{port}.log"));
        let script = repo_root().join("hack/iam-judge/judge.mjs");
        let mut process = Supervised::spawn(
            "iam-judge",
            Path::new("node"),
            &[
                script.display().to_string(),
                "--port".to_owned(),
                port.to_string(),
                "--modules".to_owned(),
                modules.display().to_string(),
                "--records".to_owned(),
                records.display().to_string(),
            ],
            &log,
            None,
        )?;
        let deadline = Instant::now() + READY_TIMEOUT;
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            anyhow::ensure!(
                !process.exited(),
                "the IAM judge exited while starting:\n{}",
                process.log_tail(30)
            );
            anyhow::ensure!(
                Instant::now() < deadline,
                "the IAM judge did not listen within {READY_TIMEOUT:?}:\n{}",
                process.log_tail(30)
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = std::fs::remove_file(&log);
        Ok(Self {
            _process: process,
            url: format!("http://127.0.0.1:{port}"),
            records,
            _scratch: scratch,
        })
    }

    /// Every decision this judge has made so far.
    pub fn decisions(&self) -> Vec<Decision> {
        read_records(&self.records)
    }
}

/// One judged request, as the judge records it.
#[derive(Clone, Debug, Deserialize)]
pub struct Decision {
    pub principal: String,
    /// `service:Operation`, e.g. `iam:CreateRole`.
    pub operation: String,
    /// `Allowed`, `ImplicitlyDenied`, `ExplicitlyDenied` or `Error`.
    pub decision: String,
    pub checks: Vec<CheckRecord>,
}

/// One authorization a request needed (an action on a resource).
#[derive(Clone, Debug, Deserialize)]
pub struct CheckRecord {
    pub action: String,
    pub resource: String,
    pub decision: String,
    #[serde(default)]
    pub grants: Vec<Grant>,
}

/// A statement that allowed a check.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct Grant {
    /// The policy's name as the emulator sent it (`<role>/inline/<policy>`).
    pub policy: String,
    /// The statement's Sid (or `#<index>` without one).
    pub sid: String,
}

/// The decisions in one records file (lines that do not parse are skipped: a judge
/// killed mid-write leaves at most its last line short).
pub fn read_records(path: &Path) -> Vec<Decision> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect()
}
