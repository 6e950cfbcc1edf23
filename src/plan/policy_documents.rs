//! The IAM documents of a plan: the execute-api ARNs, the invoke policies of the roles,
//! the roles' trust policy, the Lambda permissions' source ARNs.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::Plan;
use crate::aws::apigateway::DEFAULT_STAGE;
use crate::route_access::RoleResources;

/// The inline policy on the authenticated role.
pub const INVOKE_POLICY_NAME: &str = "authedapi-invoke";

impl Plan {
    /// The execute-api ARN of a resource pattern (`METHOD/path`) on the `$default` stage.
    pub fn invoke_arn(&self, api_id: &str, pattern: &str) -> String {
        format!(
            "arn:{}:execute-api:{}:{}:{api_id}/{DEFAULT_STAGE}/{pattern}",
            self.partition, self.region, self.account
        )
    }

    /// The default authenticated role's inline policy, or None when it may invoke nothing.
    pub fn invoke_policy(&self, api_id: &str) -> Option<Value> {
        self.policy_for(api_id, &self.default_role_resources)
    }

    /// An inline policy allowing execute-api:Invoke on exactly `resources` (an Allow of
    /// the role's routes, a Deny of others' they would reach), or None when it allows
    /// nothing.
    pub fn policy_for(&self, api_id: &str, resources: &RoleResources) -> Option<Value> {
        if resources.allow.is_empty() {
            return None;
        }
        let arns = |patterns: &[String]| -> Vec<String> {
            patterns
                .iter()
                .map(|p| self.invoke_arn(api_id, p))
                .collect()
        };
        let mut statements = vec![json!({
            "Effect": "Allow",
            "Action": "execute-api:Invoke",
            "Resource": arns(&resources.allow),
        })];
        if !resources.deny.is_empty() {
            statements.push(json!({
                "Effect": "Deny",
                "Action": "execute-api:Invoke",
                "Resource": arns(&resources.deny),
            }));
        }
        Some(json!({"Version": "2012-10-17", "Statement": statements}))
    }

    /// Trust policy of the authenticated role: only identities of this pool that logged in.
    pub fn trust_policy(&self, identity_pool_id: &str) -> Value {
        json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Effect": "Allow",
                "Principal": {"Federated": "cognito-identity.amazonaws.com"},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {
                    "StringEquals": {"cognito-identity.amazonaws.com:aud": identity_pool_id},
                    "ForAnyValue:StringLike": {"cognito-identity.amazonaws.com:amr": "authenticated"}
                }
            }]
        })
    }

    /// What a Lambda permission's SourceArn allows: any route of this API.
    pub fn permission_source_arn(&self, api_id: &str) -> String {
        format!(
            "arn:{}:execute-api:{}:{}:{api_id}/*",
            self.partition, self.region, self.account
        )
    }

    /// What the SourceArn of a function only authorizers use allows: this API's
    /// authorizers, no route.
    pub fn authorizers_source_arn(&self, api_id: &str) -> String {
        format!(
            "arn:{}:execute-api:{}:{}:{api_id}/authorizers/*",
            self.partition, self.region, self.account
        )
    }

    /// Each function API Gateway invokes, with the narrowest SourceArn that lets it: any
    /// route of the API for a route's target, the API's authorizers for a function only
    /// authorizers use.
    pub fn invoke_permissions(&self, api_id: &str) -> BTreeMap<String, String> {
        let mut permissions: BTreeMap<String, String> = self
            .lambda_authorizers
            .iter()
            .map(|a| (a.function_arn.clone(), self.authorizers_source_arn(api_id)))
            .collect();
        permissions.extend(
            self.lambda_functions
                .iter()
                .map(|f| (f.clone(), self.permission_source_arn(api_id))),
        );
        permissions
    }
}

#[cfg(test)]
mod tests {
    use crate::plan::test_support::*;

    #[test]
    fn a_target_may_be_invoked_by_any_route_an_authorizer_only_function_by_authorizers() {
        let mut spec = seed();
        spec.authorizers = vec![authorizer("users", "auth"), authorizer("both", "private")];
        let p = plan(&spec, &who("default", "x", "us-east-1")).unwrap();
        let arn = |f: &str| format!("arn:aws:lambda:us-east-1:{ACCOUNT}:function:{f}");
        let api = format!("arn:aws:execute-api:us-east-1:{ACCOUNT}:api");
        assert_eq!(
            p.invoke_permissions("api"),
            BTreeMap::from([
                (arn("auth"), format!("{api}/authorizers/*")),
                (arn("private"), format!("{api}/*")),
                (arn("public"), format!("{api}/*")),
            ])
        );
    }

    #[test]
    fn trust_policy_allows_only_authenticated_identities_of_the_pool() {
        let trust = seed_plan().trust_policy("us-east-1:pool");
        let statement = &trust["Statement"][0];
        assert_eq!(
            statement["Principal"]["Federated"],
            "cognito-identity.amazonaws.com"
        );
        assert_eq!(statement["Action"], "sts:AssumeRoleWithWebIdentity");
        assert_eq!(
            statement["Condition"]["StringEquals"]["cognito-identity.amazonaws.com:aud"],
            "us-east-1:pool"
        );
        assert_eq!(
            statement["Condition"]["ForAnyValue:StringLike"]["cognito-identity.amazonaws.com:amr"],
            "authenticated"
        );
    }

    #[test]
    fn invoke_policy_lists_exactly_the_iam_routes() {
        let p = seed_plan();
        let policy = p.invoke_policy("abc123").unwrap();
        assert_eq!(policy["Statement"][0]["Action"], "execute-api:Invoke");
        assert_eq!(
            policy["Statement"][0]["Resource"],
            json!([format!(
                "arn:aws:execute-api:us-east-1:{ACCOUNT}:abc123/$default/GET/private"
            )])
        );
        assert_eq!(policy["Statement"].as_array().unwrap().len(), 1, "no deny");
    }

    #[test]
    fn no_iam_routes_means_no_invoke_policy() {
        let mut spec = seed();
        spec.default_authorization = Authorization::None;
        let p = plan(&spec, &who("default", "x", "us-east-1")).unwrap();
        assert_eq!(p.invoke_policy("abc"), None);
    }

    #[test]
    fn invoke_arns_name_the_default_stage() {
        let p = seed_plan();
        assert_eq!(
            p.invoke_arn("id", "GET/items/*"),
            format!("arn:aws:execute-api:us-east-1:{ACCOUNT}:id/$default/GET/items/*")
        );
    }
}
