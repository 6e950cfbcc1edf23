//! IAM policy documents compared by meaning, not by text.
//!
//! AWS hands policies back URL-encoded, re-ordered and re-spaced; a one-element list may
//! come back as a plain string. Comparing the text would send an update on every
//! reconcile. [`normalize`] maps every spelling of a policy to one JSON value.

use serde_json::{Map, Value};

/// The canonical form of a policy document: statements, actions and resources as sorted,
/// de-duplicated lists; condition values likewise; principals' lists sorted.
pub fn normalize(policy: &Value) -> Value {
    normalize_value(policy)
}

/// Whether two policy documents mean the same.
pub fn equivalent(a: &Value, b: &Value) -> bool {
    normalize(a) == normalize(b)
}

/// Every list in a policy is a set to IAM (Statement, Action, Resource, condition values,
/// principals): order, duplicates and one-vs-many spelling do not matter. Scalars
/// (Effect, Sid, Version) stay as they are.
fn normalize_value(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), normalize_value(v)))
                .collect::<Map<_, _>>(),
        ),
        Value::Array(items) => as_sorted_set(items),
        other => other.clone(),
    }
}

fn as_sorted_set(items: &[Value]) -> Value {
    let items: Vec<Value> = items.iter().map(normalize_value).collect();
    let mut items: Vec<(String, Value)> = items.into_iter().map(|v| (v.to_string(), v)).collect();
    items.sort_by(|a, b| a.0.cmp(&b.0));
    items.dedup_by(|a, b| a.0 == b.0);
    match items.len() {
        // One element: the same as the plain value, as IAM treats it.
        1 => items.pop().map(|(_, v)| v).unwrap_or(Value::Null),
        _ => Value::Array(items.into_iter().map(|(_, v)| v).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn order_whitespace_and_singletons_do_not_matter() {
        let ours = json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Effect": "Allow",
                "Action": "execute-api:Invoke",
                "Resource": ["arn:b", "arn:a"]
            }]
        });
        let theirs: Value = serde_json::from_str(
            r#"{ "Statement" : { "Resource":["arn:a","arn:b","arn:a"],
                 "Action":["execute-api:Invoke"], "Effect":"Allow" },
                 "Version":"2012-10-17" }"#,
        )
        .unwrap();
        assert!(equivalent(&ours, &theirs));
    }

    #[test]
    fn url_encoded_documents_compare_after_decoding() {
        let ours = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {"StringEquals": {"cognito-identity.amazonaws.com:aud": "us-east-1:p"}}}]});
        let encoded = urlencoding::encode(&ours.to_string()).into_owned();
        let decoded = crate::aws::iam::decode_policy(&encoded).unwrap();
        assert!(equivalent(&ours, &decoded));
    }

    #[test]
    fn a_different_resource_or_condition_is_a_difference() {
        let a = json!({"Statement": [{"Effect": "Allow", "Resource": ["arn:a"]}]});
        let b = json!({"Statement": [{"Effect": "Allow", "Resource": ["arn:a", "arn:b"]}]});
        assert!(!equivalent(&a, &b));
        let c = json!({"Statement": [{"Condition": {"StringEquals": {"k": "v1"}}}]});
        let d = json!({"Statement": [{"Condition": {"StringEquals": {"k": "v2"}}}]});
        assert!(!equivalent(&c, &d));
        let e = json!({"Statement": [{"Effect": "Allow"}]});
        let f = json!({"Statement": [{"Effect": "Deny"}]});
        assert!(!equivalent(&e, &f));
    }

    #[test]
    fn condition_value_lists_are_sets() {
        let a = json!({"Condition": {"StringEquals": {"k": ["x", "y"]}}});
        let b = json!({"Condition": {"StringEquals": {"k": ["y", "x"]}}});
        assert!(equivalent(&a, &b));
    }
}
