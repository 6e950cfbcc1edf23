//! What the plan's unit tests share: the seed spec and an identity.

pub use std::collections::BTreeMap;

pub use serde_json::json;

pub use super::*;
pub use crate::api::{
    Auth0, AuthedApiSpec, Authorization, Authorizer, DeletionPolicy, HttpTarget, LambdaAuthorizer,
    LambdaTarget, PayloadFormatVersion, Route, Target,
};

pub const ACCOUNT: &str = "123456789012";

pub fn lambda(name: &str) -> Target {
    Target {
        lambda: Some(LambdaTarget {
            function_arn: format!("arn:aws:lambda:us-east-1:{ACCOUNT}:function:{name}"),
            payload_format_version: None,
        }),
        http: None,
        private: None,
    }
}

pub fn http(url: &str) -> Target {
    Target {
        lambda: None,
        http: Some(HttpTarget { url: url.into() }),
        private: None,
    }
}

pub fn route(key: &str, authorization: Option<Authorization>, target: Target) -> Route {
    Route {
        route: key.into(),
        authorization,
        authorizer: None,
        scopes: None,
        throttling: None,
        target,
    }
}

/// A Lambda authorizer `name` running `function`, with the API's defaults.
pub fn authorizer(name: &str, function: &str) -> Authorizer {
    Authorizer {
        name: name.into(),
        lambda: LambdaAuthorizer {
            function_arn: format!("arn:aws:lambda:us-east-1:{ACCOUNT}:function:{function}"),
            identity_sources: vec!["$request.header.Authorization".into()],
            result_ttl_seconds: 300,
            simple_responses: true,
            payload_format_version: PayloadFormatVersion::V2,
        },
    }
}

/// The seed: GET /private (iam by default), GET /public (none).
pub fn seed() -> AuthedApiSpec {
    AuthedApiSpec {
        stage: "dev".into(),
        region: Some("us-east-1".into()),
        auth0: Some(Auth0 {
            domain: "https://myorg.us.auth0.com".into(),
            client_id: "UsGRQJJz5sDfPQDs6bhQ9Oc3hNISuVif".into(),
            audience: None,
        }),
        oidc: None,
        default_authorization: Authorization::Iam,
        authorizers: Vec::new(),
        routes: vec![
            route("GET /private", None, lambda("private")),
            route("GET /public", Some(Authorization::None), lambda("public")),
        ],
        deletion_policy: DeletionPolicy::Delete,
        access: None,
        outputs: None,
        cors: None,
        throttling: None,
        access_log: None,
        domain: None,
        vpc_link: None,
        disable_execute_api_endpoint: false,
        adopt: None,
        tags: BTreeMap::new(),
    }
}

pub fn who<'a>(namespace: &'a str, name: &'a str, region: &'a str) -> Identity<'a> {
    Identity {
        namespace,
        name,
        uid: "uid-1",
        account: ACCOUNT,
        region,
        cluster_id: "test",
        permissions_boundary: "authedapi-permissions-boundary",
    }
}

pub fn seed_plan() -> Plan {
    plan(&seed(), &who("default", "api-auth-auth0", "us-east-1")).unwrap()
}
