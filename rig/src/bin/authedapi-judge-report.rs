//! `authedapi-judge-report`: after a run of the suite (`make test`), which statements of
//! the shipped IAM policies (`deploy/aws-iam-policy.json`, what `authedapi iam-policy`
//! prints with no flags, and `deploy/aws-iam-policy-seed.json`, the same for the examples'
//! account and the functions their tenant allows) granted which requests of the operator,
//! as the rig's IAM judges recorded them in `$AUTHEDAPI_JUDGE_RECORDS`. Fails when an Allow
//! statement granted nothing (a statement the operator never needs is privilege it should
//! not have) or a Deny statement refused nothing (no test attempts what it guards).
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
    /// The shipped policies (repeatable).
    #[arg(
        long = "policy",
        default_values = ["deploy/aws-iam-policy.json", "deploy/aws-iam-policy-seed.json"]
    )]
    policies: Vec<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let root = authedapi_rig::repo_root();
    let decisions = read_records_dir(&args.records)
        .with_context(|| format!("reading {}", args.records.display()))?;
    let judged = decisions
        .iter()
        .filter(|d| d.principal.contains(":assumed-role/authedapi-operator-"))
        .count();
    println!(
        "IAM judge: {} decisions recorded, {judged} of them the operator's",
        decisions.len()
    );
    let mut unused = Vec::new();
    for path in &args.policies {
        let policy: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(root.join(path))
                .with_context(|| format!("reading {}", path.display()))?,
        )?;
        // The rig's operator roles hold the shipped policy as the inline policy "authedapi".
        let uses = statement_use(&policy, "/inline/authedapi", &decisions);
        println!("{}: statements", path.display());
        for statement in &uses {
            let verb = if statement.denies {
                "refused"
            } else {
                "granted"
            };
            println!("  {:>6}  {} ({verb})", statement.grants, statement.sid);
            for operation in statement.operations.iter().take(6) {
                println!("          {operation}");
            }
        }
        unused.extend(uses.iter().flat_map(|u| {
            if u.grants == 0 {
                vec![format!("{} {}", path.display(), u.sid)]
            } else if u.denies {
                Vec::new()
            } else {
                u.unused_actions()
                    .into_iter()
                    .map(|a| format!("{} {} ({a})", path.display(), u.sid))
                    .collect()
            }
        }));
    }
    anyhow::ensure!(
        unused.is_empty(),
        "statements (or actions of statements) of the shipped policies that were never \
         used over the whole suite: an Allow that granted nothing is privilege the operator \
         never needs (remove it, or add the test that needs it); a Deny that refused nothing \
         guards what no test attempts (add the threat test): {}",
        unused.join(", ")
    );
    println!(
        "every Allow statement, and every action of every one, granted a request; every Deny refused one"
    );
    Ok(())
}
