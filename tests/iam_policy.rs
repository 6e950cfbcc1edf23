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
/// The narrowest policy that runs the seed: the examples' account and the functions
/// examples/tenant.yaml allows (`make deploy`'s SEED_POLICY_ARGS).
const SEED: [&str; 4] = [
    "--account-id",
    "123456789012",
    "--allowed-function",
    "arn:aws:lambda:us-east-1:123456789012:function:api-auth-auth0-*",
];

#[test]
fn deploy_holds_the_policies_rendered_for_the_defaults() {
    for (file, args) in [
        ("deploy/aws-iam-policy.json", &[][..]),
        ("deploy/aws-iam-policy-seed.json", &SEED[..]),
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

/// `authedapi iam-policy ARGS`: (success, stdout, stderr).
fn attempt(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_authedapi"))
        .arg("iam-policy")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn with_no_flags_the_policy_reaches_no_function_and_says_what_it_is_for() {
    let (ok, policy, notes) = attempt(&[]);
    assert!(ok, "{notes}");
    assert!(!policy.contains("lambda:"), "{policy}");
    assert!(
        notes.contains("no --account-id: rendered for any account"),
        "{notes}"
    );
    assert!(notes.contains("no --allowed-function"), "{notes}");
    // Narrowed to what the platform knows, it says nothing more.
    let (ok, policy, notes) = attempt(&SEED);
    assert!(ok && notes.is_empty(), "{notes}");
    assert!(policy.contains("lambda:AddPermission"), "{policy}");
}

#[test]
fn a_function_pattern_across_accounts_is_refused() {
    for pattern in [
        "*",
        "arn:aws:lambda:*:*:function:*",
        "arn:aws:lambda:us-east-1:210987654321:function:x",
    ] {
        let (ok, _, err) = attempt(&[
            "--account-id",
            "123456789012",
            "--allowed-function",
            pattern,
        ]);
        assert!(!ok, "{pattern} was rendered");
        assert!(err.contains(pattern), "{pattern}: {err}");
    }
}

/// The chart's defaults and the policy's agree: no function, the same issuers, the same
/// boundary and cluster id.
#[test]
fn the_chart_defaults_agree_with_the_policy_defaults() {
    let values: serde_json::Value = serde_yaml::from_str(
        &std::fs::read_to_string(repo().join("charts/authedapi/values.yaml")).unwrap(),
    )
    .unwrap();
    // No function by default, in both.
    assert_eq!(values["allowedFunctions"], serde_json::json!([]));
    let (_, policy, _) = attempt(&[]);
    assert!(!policy.contains("lambda:"));
    // The same issuers, the same boundary name.
    let policy: serde_json::Value = serde_json::from_str(&policy).unwrap();
    let issuers: Vec<String> = values["allowedIssuers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| format!("arn:aws:iam::*:oidc-provider/{}", i.as_str().unwrap()))
        .collect();
    let read = policy["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["Sid"] == "ReadAllowedOidcProviders")
        .unwrap();
    assert_eq!(read["Resource"], serde_json::json!(issuers));
    assert!(policy.to_string().contains(&format!(
        "policy/{}",
        values["aws"]["permissionsBoundary"].as_str().unwrap()
    )));
    assert_eq!(values["clusterId"], "default");
    assert!(
        policy
            .to_string()
            .contains("\"aws:ResourceTag/authedapi.dev/cluster\":\"default\"")
    );
}
