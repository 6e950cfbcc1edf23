//! `authedapi-judge-report`: after a run of the suite (`make test`), which statements of
//! the shipped IAM policy (`deploy/aws-iam-policy.json`) granted which requests of the
//! operator, as the rig's IAM judges recorded them in `$AUTHEDAPI_JUDGE_RECORDS`. Fails
//! when a statement granted nothing: a statement the operator never needs is privilege
//! it should not have.
#![forbid(unsafe_code)]

use std::path::PathBuf;

use anyhow::Context;
use authedapi_rig::judge::{RECORDS_DIR_ENV, read_records_dir, statement_use};
use clap::Parser;

#[derive(Parser)]
#[command(about = "Which statements of the shipped IAM policy the operator used over a run")]
struct Args {
    /// The records directory (default: $AUTHEDAPI_JUDGE_RECORDS).
    #[arg(long, env = RECORDS_DIR_ENV)]
    records: PathBuf,
    /// The shipped policy.
    #[arg(long, default_value = "deploy/aws-iam-policy.json")]
    policy: PathBuf,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let root = authedapi_rig::repo_root();
    let policy: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root.join(&args.policy))
            .with_context(|| format!("reading {}", args.policy.display()))?,
    )?;
    let decisions = read_records_dir(&args.records)
        .with_context(|| format!("reading {}", args.records.display()))?;
    // The rig's operator roles hold the shipped policy as the inline policy "authedapi".
    let uses = statement_use(&policy, "/inline/authedapi", &decisions);
    let judged = decisions
        .iter()
        .filter(|d| d.principal.contains(":assumed-role/authedapi-operator-"))
        .count();
    println!(
        "IAM judge: {} decisions recorded, {judged} of them the operator's; shipped policy statements:",
        decisions.len()
    );
    for statement in &uses {
        println!("  {:>6}  {}", statement.grants, statement.sid);
        for operation in statement.operations.iter().take(6) {
            println!("          {operation}");
        }
    }
    let unused: Vec<String> = uses
        .iter()
        .flat_map(|u| {
            let actions = u.unused_actions();
            if u.grants == 0 {
                vec![u.sid.clone()]
            } else {
                actions
                    .into_iter()
                    .map(|a| format!("{} ({a})", u.sid))
                    .collect()
            }
        })
        .collect();
    anyhow::ensure!(
        unused.is_empty(),
        "statements (or actions of statements) of {} that granted nothing over the whole \
         suite (privilege the operator never needs: remove them, or add the test that needs \
         them): {}",
        args.policy.display(),
        unused.join(", ")
    );
    println!("every statement, and every action of every statement, granted a request");
    Ok(())
}
