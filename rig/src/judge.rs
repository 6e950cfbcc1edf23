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

    /// Ask the judge about one request directly, as the emulator does (POST /authorize,
    /// see `hack/iam-judge/judge.mjs`): for calls the emulator cannot make, such as an
    /// API of another account whose resource policy admits everyone.
    pub async fn ask(&self, request: &serde_json::Value) -> anyhow::Result<serde_json::Value> {
        let response = reqwest::Client::new()
            .post(format!("{}/authorize", self.url))
            .json(request)
            .send()
            .await?
            .error_for_status()?;
        Ok(response.json().await?)
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
    /// The identity policies' Deny statements that refused it.
    #[serde(default)]
    pub denies: Vec<Grant>,
}

/// A statement that allowed (or, in `denies`, refused) a check.
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

/// The decisions in every records file of `dir` (a run's `$AUTHEDAPI_JUDGE_RECORDS`).
pub fn read_records_dir(dir: &Path) -> anyhow::Result<Vec<Decision>> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "jsonl") {
            all.extend(read_records(&path));
        }
    }
    Ok(all)
}

/// How often each statement of `policy` granted (a Deny statement: refused) a check of a
/// principal whose policy name ends with `policy_name`, with the operations concerned;
/// every statement of the policy is listed, unused ones with a count of 0.
pub fn statement_use(
    policy: &serde_json::Value,
    policy_name: &str,
    decisions: &[Decision],
) -> Vec<StatementUse> {
    let mut uses: Vec<StatementUse> = policy["Statement"]
        .as_array()
        .map(|statements| {
            statements
                .iter()
                .enumerate()
                .map(|(i, s)| StatementUse {
                    sid: s["Sid"]
                        .as_str()
                        .map_or_else(|| format!("#{}", i + 1), str::to_owned),
                    denies: s["Effect"] == "Deny",
                    grants: 0,
                    operations: Default::default(),
                    actions: match &s["Action"] {
                        serde_json::Value::String(a) => [(a.clone(), 0)].into(),
                        serde_json::Value::Array(list) => list
                            .iter()
                            .filter_map(|a| Some((a.as_str()?.to_owned(), 0)))
                            .collect(),
                        _ => Default::default(),
                    },
                })
                .collect()
        })
        .unwrap_or_default();
    for decision in decisions {
        for check in &decision.checks {
            let statements = check.grants.iter().map(|g| (g, false));
            let statements = statements.chain(check.denies.iter().map(|g| (g, true)));
            for (grant, denied) in statements.filter(|(g, _)| g.policy.ends_with(policy_name)) {
                if let Some(statement) = uses
                    .iter_mut()
                    .find(|u| u.sid == grant.sid && u.denies == denied)
                {
                    statement.grants += 1;
                    if let Some(count) = statement.actions.get_mut(&check.action) {
                        *count += 1;
                    }
                    statement
                        .operations
                        .insert(format!("{} ({})", decision.operation, check.action));
                }
            }
        }
    }
    uses
}

/// One statement's use over a run.
#[derive(Clone, Debug)]
pub struct StatementUse {
    pub sid: String,
    /// A Deny statement: `grants` counts the checks it refused.
    pub denies: bool,
    pub grants: u64,
    pub operations: std::collections::BTreeSet<String>,
    /// Each action the statement names, with how often it was granted by it.
    pub actions: std::collections::BTreeMap<String, u64>,
}

impl StatementUse {
    /// The statement's actions it never granted.
    pub fn unused_actions(&self) -> Vec<&str> {
        self.actions
            .iter()
            .filter(|(_, n)| **n == 0)
            .map(|(a, _)| a.as_str())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decision(sid: &str) -> Decision {
        serde_json::from_value(serde_json::json!({
            "principal": "arn:aws:sts::1:assumed-role/op/s",
            "operation": "iam:GetRole",
            "decision": "Allowed",
            "checks": [{"action": "iam:GetRole", "resource": "*", "decision": "Allowed",
                        "grants": [{"policy": "op/inline/authedapi", "sid": sid}]}]
        }))
        .unwrap()
    }

    #[test]
    fn a_statement_no_decision_used_is_reported_unused() {
        let policy = serde_json::json!({"Statement": [{"Sid": "A"}, {"Sid": "B"}]});
        let uses = statement_use(
            &policy,
            "/inline/authedapi",
            &[decision("A"), decision("A")],
        );
        assert_eq!(uses[0].sid, "A");
        assert_eq!(uses[0].grants, 2);
        assert_eq!(uses[1].sid, "B");
        assert_eq!(uses[1].grants, 0);
    }

    #[test]
    fn a_deny_statement_is_used_when_it_refuses() {
        let policy =
            serde_json::json!({"Statement": [{"Sid": "A"}, {"Sid": "NoX", "Effect": "Deny"}]});
        let mut refused = decision("A");
        refused.checks[0].grants.clear();
        refused.checks[0].denies = vec![Grant {
            policy: "op/inline/authedapi".into(),
            sid: "NoX".into(),
        }];
        let uses = statement_use(&policy, "/inline/authedapi", &[decision("A"), refused]);
        assert_eq!((uses[0].denies, uses[0].grants), (false, 1));
        assert_eq!((uses[1].denies, uses[1].grants), (true, 1));
    }

    #[test]
    fn grants_of_other_policies_do_not_count() {
        let policy = serde_json::json!({"Statement": [{"Sid": "A"}]});
        let mut other = decision("A");
        other.checks[0].grants[0].policy = "someone/inline/admin".into();
        assert_eq!(
            statement_use(&policy, "/inline/authedapi", &[other])[0].grants,
            0
        );
    }
}
