//! The shipped AWS IAM policies are what `authedapi iam-policy` renders for the defaults.
//!
//! That they are enough, and no more, is proven elsewhere by an engine that judges
//! requests, not here by reading them: every integration test runs the operator as a role
//! holding the rendered policy, with the rig's IAM judge on (a denied call fails the
//! test); `make test` ends with `authedapi-judge-report`, which fails when a statement
//! granted nothing over the suite; `tests/threats.rs` attempts what the policy must refuse.

mod common;

use std::process::Command;

use common::{repo, run};

fn rendered(args: &[&str]) -> String {
    run(
        Command::new(env!("CARGO_BIN_EXE_authedapi"))
            .arg("iam-policy")
            .args(args),
        None,
    )
}

/// The examples in deploy/ for many accounts (README, "Accounts"), as `make deploy` renders them.
const TENANT_TRUST: [&str; 5] = [
    "--trust",
    "--operator-role-arn",
    "arn:aws:iam::111122223333:role/authedapi-operator",
    "--external-id",
    "CHANGE-ME-to-the-tenants-externalId",
];
const ASSUME_ONLY: [&str; 3] = [
    "--assume-only",
    "--assume-role",
    "arn:aws:iam::444455556666:role/authedapi",
];

#[test]
fn deploy_holds_the_policies_rendered_for_the_defaults() {
    for (file, args) in [
        ("deploy/aws-iam-policy.json", &[][..]),
        ("deploy/aws-permissions-boundary.json", &["--boundary"][..]),
        ("deploy/aws-tenant-role-trust.json", &TENANT_TRUST[..]),
        ("deploy/aws-operator-assume-only.json", &ASSUME_ONLY[..]),
    ] {
        let on_disk = std::fs::read_to_string(repo().join(file)).unwrap();
        assert!(
            on_disk == rendered(args),
            "{file} is stale: run `make deploy` (authedapi iam-policy {args:?})"
        );
    }
}

#[test]
fn the_policy_is_rendered_for_the_cluster_it_names() {
    let policy: serde_json::Value = serde_json::from_str(&rendered(&[
        "--cluster-id",
        "prod-eu",
        "--account-id",
        "123456789012",
    ]))
    .unwrap();
    let text = policy.to_string();
    assert!(
        text.contains("\"aws:ResourceTag/authedapi.dev/cluster\":\"prod-eu\""),
        "{text}"
    );
    assert!(!text.contains("\"default\""), "{text}");
    assert!(text.contains("arn:aws:iam::123456789012:policy/authedapi-permissions-boundary"));
    // Every statement is named: the judge reports grants by Sid.
    assert!(
        policy["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["Sid"].is_string())
    );
}
