//! JWT routes (`authorization: jwt`): API Gateway checks the Auth0 access token itself —
//! one JWT authorizer for the tenant (issuer, client id as audience), the route's scopes
//! on the route, the route left out of the IAM invoke policy; once no JWT route is left,
//! the authorizer goes.

use serde_json::json;

use authedapi::aws::apigateway::RouteAuth;

use crate::common::{Fixture, api_id};

#[tokio::test]
async fn a_jwt_route_gets_a_jwt_authorizer() {
    let s = Fixture::new("op-jwt", &[]).await;
    let mut object = s.seed("jwt").await;
    object["spec"]["routes"]
        .as_array_mut()
        .unwrap()
        .push(json!({
            "route": "GET /reports", "authorization": "jwt", "scopes": ["read:reports"],
            "target": {"http": {"url": "https://example.com/reports"}}
        }));
    let obj = s.apply_ready(&object).await;
    let id = api_id(&obj);
    let authorizers = s.aws.apigateway.list_authorizers(&id).await.unwrap();
    assert_eq!(authorizers.len(), 1);
    let jwt = authorizers[0].as_jwt().expect("a JWT authorizer");
    assert_eq!(jwt.issuer, "https://myorg.us.auth0.com/");
    assert_eq!(jwt.audience, vec!["UsGRQJJz5sDfPQDs6bhQ9Oc3hNISuVif"]);
    let routes = s.aws.apigateway.list_routes(&id).await.unwrap();
    let reports = routes.iter().find(|r| r.key == "GET /reports").unwrap();
    assert_eq!(
        reports.auth,
        RouteAuth::Jwt {
            authorizer_id: jwt.id.clone(),
            scopes: vec!["read:reports".into()]
        }
    );
    // The JWT route is not in the IAM policy.
    let policy = s.invoke_policy(&obj).await.unwrap();
    assert_eq!(
        policy["Statement"][0]["Resource"],
        json!([s.arn(&format!("{id}/$default/GET/private"))])
    );

    // No JWT route left: the authorizer goes too.
    let routes = object["spec"]["routes"].as_array_mut().unwrap();
    routes.pop();
    let obj = s.apply_ready(&object).await;
    assert!(
        s.aws
            .apigateway
            .list_authorizers(&api_id(&obj))
            .await
            .unwrap()
            .is_empty()
    );
}
