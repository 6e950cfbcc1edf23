//! `deploy/aws-iam-policy.json` grants each AWS action the operator calls, and no other.
//!
//! The calls are derived from the source: every operation name the `src/aws` modules pass
//! to their error mapping, restricted to the methods the reconciler and controller use.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::Value;

/// Actions AWS checks without the operator calling them by name, each for a reason.
const IMPLIED: &[(&str, &str)] = &[
    (
        "iam:PassRole",
        "SetIdentityPoolRoles passes the role to Cognito",
    ),
    (
        "iam:TagOpenIDConnectProvider",
        "CreateOpenIDConnectProvider with tags",
    ),
    (
        "cognito-identity:TagResource",
        "CreateIdentityPool/UpdateIdentityPool with tags",
    ),
];

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Operation names passed to the error mapping in `body`: `sdk_err(SERVICE, "Op")` or
/// `from_sdk(SERVICE, "Op", ...)`.
fn operation_names(body: &str) -> BTreeSet<String> {
    let mut ops = BTreeSet::new();
    for marker in [
        "sdk_err(SERVICE, \"",
        "sdk_err(\"sts\", \"",
        "from_sdk(SERVICE, \"",
    ] {
        for rest in body.split(marker).skip(1) {
            ops.insert(rest.split('"').next().unwrap().to_owned());
        }
    }
    ops
}

/// For one `src/aws/<service>.rs`: public method name -> operation names in its body,
/// including those of the sibling methods it calls (`self.other(`).
fn methods(source: &str) -> BTreeMap<String, BTreeSet<String>> {
    let code = source.split("#[cfg(test)]").next().unwrap();
    let bodies: BTreeMap<String, &str> = code
        .split("    pub async fn ")
        .skip(1)
        .map(|part| {
            let name = part.split(['(', '<']).next().unwrap().to_owned();
            (name, part.split("\n    pub ").next().unwrap())
        })
        .collect();
    bodies
        .iter()
        .map(|(name, body)| {
            let mut ops = operation_names(body);
            let compact: String = body.split_whitespace().collect();
            for (other, other_body) in &bodies {
                if other != name && compact.contains(&format!("self.{other}(")) {
                    ops.extend(operation_names(other_body));
                }
            }
            (name.clone(), ops)
        })
        .collect()
}

/// Method names called (`.name(`) anywhere in the operator's reconcile and controller code.
fn called_methods() -> BTreeSet<String> {
    let mut text = String::new();
    for dir in ["src/reconcile", "src"] {
        for entry in std::fs::read_dir(repo().join(dir)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "rs")
                && !path.starts_with(repo().join("src/aws"))
            {
                text.push_str(&std::fs::read_to_string(&path).unwrap());
            }
        }
    }
    text.split('.')
        .skip(1)
        .filter_map(|s| s.split_once('(').map(|(name, _)| name))
        .filter(|name| name.chars().all(|c| c.is_ascii_lowercase() || c == '_') && !name.is_empty())
        .map(str::to_owned)
        .collect()
}

/// API Gateway authorizes by HTTP verb on resource paths, not by operation name.
fn apigateway_action(operation: &str) -> String {
    let verb = match operation {
        op if op.starts_with("Get") => "GET",
        op if op.starts_with("Create") || op == "TagResource" => "POST",
        op if op.starts_with("Update") => "PATCH",
        op if op.starts_with("Delete") || op == "UntagResource" => "DELETE",
        op => panic!("no API Gateway verb known for {op}"),
    };
    format!("apigateway:{verb}")
}

/// Every IAM action the operator's code needs.
fn needed_actions() -> BTreeSet<String> {
    let called = called_methods();
    let mut actions = BTreeSet::new();
    for (file, prefix) in [
        ("src/aws/apigateway.rs", "apigateway"),
        ("src/aws/cognito.rs", "cognito-identity"),
        ("src/aws/iam.rs", "iam"),
        ("src/aws/lambda.rs", "lambda"),
        ("src/aws/sts.rs", "sts"),
    ] {
        for (method, operations) in methods(&read(file)) {
            if !called.contains(&method) {
                continue;
            }
            for op in operations {
                actions.insert(if prefix == "apigateway" {
                    apigateway_action(&op)
                } else {
                    format!("{prefix}:{op}")
                });
            }
        }
    }
    actions.extend(IMPLIED.iter().map(|(a, _)| a.to_string()));
    actions
}

fn granted_actions(policy: &Value) -> BTreeSet<String> {
    let mut actions = BTreeSet::new();
    for statement in policy["Statement"].as_array().unwrap() {
        assert_eq!(statement["Effect"], "Allow");
        match &statement["Action"] {
            Value::String(a) => {
                actions.insert(a.clone());
            }
            Value::Array(list) => {
                actions.extend(list.iter().map(|a| a.as_str().unwrap().to_owned()))
            }
            other => panic!("Action must be a string or list: {other}"),
        }
    }
    actions
}

#[test]
fn the_derivation_sees_the_operators_calls() {
    let needed = needed_actions();
    for action in [
        "apigateway:POST",
        "cognito-identity:CreateIdentityPool",
        "cognito-identity:SetIdentityPoolRoles",
        "iam:CreateRole",
        "iam:AddClientIDToOpenIDConnectProvider",
        "lambda:AddPermission",
        "sts:GetCallerIdentity",
    ] {
        assert!(needed.contains(action), "{action} not derived: {needed:?}");
    }
    // Called only by tests, never by the operator: not needed.
    assert!(
        !needed.contains("cognito-identity:ListTagsForResource"),
        "{needed:?}"
    );
    assert!(
        !needed.contains("cognito-identity:UntagResource"),
        "{needed:?}"
    );
}

#[test]
fn the_policy_grants_exactly_the_actions_the_operator_calls() {
    let policy: Value = serde_json::from_str(&read("deploy/aws-iam-policy.json")).unwrap();
    let granted = granted_actions(&policy);
    let needed = needed_actions();
    let missing: Vec<_> = needed.difference(&granted).collect();
    let extra: Vec<_> = granted.difference(&needed).collect();
    assert!(missing.is_empty(), "the policy lacks {missing:?}");
    assert!(
        extra.is_empty(),
        "the policy grants actions the operator never calls: {extra:?}"
    );
}

#[test]
fn writes_are_limited_by_our_tags_where_the_service_supports_it() {
    let policy: Value = serde_json::from_str(&read("deploy/aws-iam-policy.json")).unwrap();
    for statement in policy["Statement"].as_array().unwrap() {
        let actions = granted_actions(&serde_json::json!({"Statement": [statement]}));
        // Writes on resources that are not ours to tag, each bound otherwise: PassRole to
        // roles under our path and to Cognito only; Lambda permissions on the user's
        // functions; client ids on a provider that may be shared or someone else's.
        let exempt = [
            "iam:PassRole",
            "lambda:AddPermission",
            "lambda:RemovePermission",
            "iam:AddClientIDToOpenIDConnectProvider",
            "iam:RemoveClientIDFromOpenIDConnectProvider",
        ];
        let writes: Vec<_> = actions
            .iter()
            .filter(|a| {
                let op = a.split(':').nth(1).unwrap();
                !(op.starts_with("Get")
                    || op.starts_with("List")
                    || op.starts_with("Describe")
                    || op == "GET")
            })
            .filter(|a| !exempt.contains(&a.as_str()))
            .collect();
        let condition = statement["Condition"].to_string();
        // Either the resource/request carries our tag, or only our tag keys are written.
        let tag_bound = condition.contains("Tag/authedapi.dev/")
            || condition.contains(r#""aws:TagKeys":["authedapi.dev/*"]"#);
        assert!(
            writes.is_empty() || tag_bound,
            "writes {writes:?} in a statement without a tag condition: {statement}"
        );
        // Only calls without resource-level permissions may name every resource.
        if statement["Resource"] == "*" {
            let unscoped = BTreeSet::from([
                "sts:GetCallerIdentity".to_owned(),
                "cognito-identity:ListIdentityPools".to_owned(),
            ]);
            assert!(
                actions.is_subset(&unscoped),
                "Resource \"*\" for {actions:?}"
            );
        }
    }
}
