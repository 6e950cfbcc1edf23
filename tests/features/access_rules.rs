//! Access by Auth0 claim (`spec.access.rules`): each rule gets a role of its own that may
//! invoke exactly its routes, and the identity pool maps the claim to it (denying users
//! matching no rule unless told otherwise); unlisted routes go to nobody, or to the
//! default role when asked; a removed rule's role goes, and deleting the object deletes
//! every rule role; a rule naming a route the spec does not have is refused at admission.

use std::time::Duration;

use serde_json::json;

use crate::common::{Fixture, wait_gone};

/// The execute-api ARN of `rest` (e.g. `GET/admin`) on `api_id`'s `$default` stage.
fn arn(s: &Fixture, api_id: &str, rest: &str) -> String {
    s.arn(&format!("{api_id}/$default/{rest}"))
}

/// The role name in a role ARN.
fn role_name(arn: &str) -> String {
    arn.rsplit('/').next().unwrap().to_owned()
}

#[tokio::test]
async fn claim_rules_give_each_rule_a_role_for_exactly_its_routes() {
    let s = Fixture::new("feat-access", &[]).await;
    let mut object = s.seed("claims").await;
    let private = object["spec"]["routes"][0]["target"].clone();
    let routes = object["spec"]["routes"].as_array_mut().unwrap();
    routes.push(json!({"route": "GET /admin", "target": private}));
    routes.push(json!({"route": "GET /reports", "target": private}));
    object["spec"]["access"] = json!({
        "rules": [
            {"name": "admin", "claim": "https://myapp/roles", "matchType": "Contains", "value": "admin", "routes": ["GET /admin"]},
            {"name": "reader", "claim": "https://myapp/roles", "matchType": "Contains", "value": "reader", "routes": ["GET /reports"]},
        ]
    });
    let obj = s.apply_ready(&object).await;
    let status = obj.status.clone().unwrap();
    let api_id = status.api_id.clone().unwrap();
    let pool_id = status.identity_pool_id.clone().unwrap();
    assert_eq!(status.access_roles.len(), 2);

    let policy_of = |role: String| {
        let iam = s.aws.iam.clone();
        async move {
            iam.get_role_policy(&role, "authedapi-invoke")
                .await
                .unwrap()
        }
    };
    let admin = &status.access_roles[0];
    let reader = &status.access_roles[1];
    assert_eq!(
        (admin.rule.as_str(), reader.rule.as_str()),
        ("admin", "reader")
    );
    let admin_policy = policy_of(admin.role_name.clone()).await.unwrap();
    assert_eq!(
        admin_policy["Statement"][0]["Resource"],
        json!([arn(&s, &api_id, "GET/admin")])
    );
    let reader_policy = policy_of(reader.role_name.clone()).await.unwrap();
    assert_eq!(
        reader_policy["Statement"][0]["Resource"],
        json!([arn(&s, &api_id, "GET/reports")])
    );
    // Unlisted routes go to nobody by default: the default role may invoke nothing.
    assert_eq!(
        policy_of(role_name(status.authenticated_role_arn.as_ref().unwrap())).await,
        None
    );

    // The pool maps the claims to those roles, and denies users matching none.
    let roles = s.aws.cognito.get_roles(&pool_id).await.unwrap();
    let mapping = roles.mapping.expect("a role mapping");
    assert_eq!(mapping.provider, "myorg.us.auth0.com");
    assert!(mapping.deny_unmatched);
    let rules: Vec<(String, String, String, String)> = mapping
        .rules
        .iter()
        .map(|r| {
            (
                r.claim.clone(),
                r.match_type.clone(),
                r.value.clone(),
                role_name(&r.role_arn),
            )
        })
        .collect();
    assert_eq!(
        rules,
        vec![
            (
                "https://myapp/roles".into(),
                "Contains".into(),
                "admin".into(),
                admin.role_name.clone()
            ),
            (
                "https://myapp/roles".into(),
                "Contains".into(),
                "reader".into(),
                reader.role_name.clone()
            ),
        ]
    );

    // Unlisted routes to the default role; drop the reader rule: its role goes.
    object["spec"]["access"]["rules"]
        .as_array_mut()
        .unwrap()
        .pop();
    object["spec"]["access"]["unlistedRoutes"] = json!("AuthenticatedRole");
    object["spec"]["access"]["unmatched"] = json!("AuthenticatedRole");
    let obj = s.apply_ready(&object).await;
    let status = obj.status.unwrap();
    assert_eq!(status.access_roles.len(), 1);
    assert_eq!(
        s.aws.iam.get_role(&reader.role_name).await.unwrap(),
        None,
        "the removed rule's role is gone"
    );
    let default_policy = policy_of(role_name(status.authenticated_role_arn.as_ref().unwrap()))
        .await
        .unwrap();
    let mut resources: Vec<String> =
        serde_json::from_value(default_policy["Statement"][0]["Resource"].clone()).unwrap();
    resources.sort();
    assert_eq!(
        resources,
        vec![
            arn(&s, &api_id, "GET/private"),
            arn(&s, &api_id, "GET/reports")
        ]
    );
    let mapping = s
        .aws
        .cognito
        .get_roles(&pool_id)
        .await
        .unwrap()
        .mapping
        .unwrap();
    assert_eq!(mapping.rules.len(), 1);
    assert!(!mapping.deny_unmatched);

    // Deleting the object deletes every rule role too.
    s.api
        .delete("claims", &kube::api::DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&s.api, "claims", &s.operator, Duration::from_secs(60)).await;
    assert_eq!(s.aws.iam.get_role(&admin.role_name).await.unwrap(), None);
}

#[tokio::test]
async fn an_access_rule_naming_an_unknown_route_is_refused_at_admission() {
    let s = Fixture::new("feat-access-bad", &[]).await;
    let mut object = s.seed("bad-claims").await;
    object["spec"]["access"] = json!({"rules": [
        {"name": "admin", "claim": "roles", "value": "admin", "routes": ["GET /nowhere"]}
    ]});
    let name = "bad-claims";
    let err = s
        .api
        .patch(
            name,
            &kube::api::PatchParams::apply("tests"),
            &kube::api::Patch::Apply(&object),
        )
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("every route an access rule names must be one of spec.routes"),
        "{err}"
    );
}
