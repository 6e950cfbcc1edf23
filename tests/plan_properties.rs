//! Properties of the plan over random valid specs: every AWS name is valid for its service,
//! names never collide across (namespace, name, stage), and the invoke policy lists exactly
//! the routes that use IAM.

use std::collections::BTreeSet;

use authedapi::api::{
    Auth0, AuthedApiSpec, Authorization, Authorizer, DeletionPolicy, HttpTarget, LambdaAuthorizer,
    PayloadFormatVersion, Route, Target,
};
use authedapi::plan::{Identity, plan};
use proptest::prelude::*;

fn stage() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9-]{0,15}"
}

/// A DNS label, as namespaces are.
fn namespace() -> impl Strategy<Value = String> {
    "[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
}

/// A DNS subdomain, as object names are (up to 253 characters).
fn object_name() -> impl Strategy<Value = String> {
    prop::collection::vec("[a-z0-9]([a-z0-9-]{0,40}[a-z0-9])?", 1..6).prop_map(|parts| {
        let mut name = parts.join(".");
        name.truncate(253);
        name.trim_end_matches(['.', '-']).to_owned()
    })
}

fn authorization() -> impl Strategy<Value = Option<Authorization>> {
    prop_oneof![
        Just(None),
        Just(Some(Authorization::Iam)),
        Just(Some(Authorization::None)),
        Just(Some(Authorization::Jwt)),
        Just(Some(Authorization::Lambda)),
    ]
}

fn route_key() -> impl Strategy<Value = String> {
    let method = prop_oneof![
        Just("GET"),
        Just("POST"),
        Just("PUT"),
        Just("PATCH"),
        Just("DELETE"),
        Just("ANY"),
        Just("HEAD"),
        Just("OPTIONS")
    ];
    // A parameter is named by its position, so two keys that match the same requests are
    // the same key (API Gateway could not tell them apart either).
    let segment = prop_oneof!["[a-z0-9._~-]{1,12}".prop_map(Some), Just(None),];
    let path =
        (prop::collection::vec(segment, 0..4), prop::bool::ANY).prop_map(|(segments, greedy)| {
            let segments: Vec<String> = segments
                .into_iter()
                .enumerate()
                .map(|(i, s)| s.unwrap_or_else(|| format!("{{p{i}}}")))
                .collect();
            let mut path = format!("/{}", segments.join("/"));
            if greedy {
                path = format!("{}/{{proxy+}}", path.trim_end_matches('/'));
            }
            path
        });
    prop_oneof![
        1 => Just("$default".to_owned()),
        20 => (method, path).prop_map(|(m, p)| format!("{m} {p}")),
    ]
}

fn spec() -> impl Strategy<Value = AuthedApiSpec> {
    let routes = prop::collection::btree_map(route_key(), authorization(), 1..30);
    (
        stage(),
        routes,
        prop_oneof![
            Just(Authorization::Iam),
            Just(Authorization::None),
            Just(Authorization::Jwt)
        ],
    )
        .prop_map(|(stage, routes, default_authorization)| AuthedApiSpec {
            stage,
            region: None,
            auth0: Some(Auth0 {
                domain: "myorg.us.auth0.com".into(),
                client_id: "client".into(),
                audience: None,
            }),
            oidc: None,
            default_authorization,
            authorizers: vec![Authorizer {
                name: "users".into(),
                lambda: LambdaAuthorizer {
                    function_arn: "arn:aws:lambda:us-east-1:123456789012:function:auth".into(),
                    identity_sources: vec!["$request.header.Authorization".into()],
                    result_ttl_seconds: 300,
                    simple_responses: true,
                    payload_format_version: PayloadFormatVersion::V2,
                },
            }],
            routes: routes
                .into_iter()
                .map(|(route, authorization)| Route {
                    route,
                    authorization,
                    authorizer: (authorization == Some(Authorization::Lambda))
                        .then(|| "users".to_owned()),
                    scopes: None,
                    throttling: None,
                    target: Target {
                        lambda: None,
                        http: Some(HttpTarget {
                            url: "https://example.com/".into(),
                        }),
                        private: None,
                    },
                })
                .collect(),
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
            tags: Default::default(),
        })
}

fn who<'a>(namespace: &'a str, name: &'a str) -> Identity<'a> {
    Identity {
        namespace,
        name,
        uid: "uid",
        account: "123456789012",
        region: "us-east-1",
        cluster_id: "cluster",
        permissions_boundary: "authedapi-permissions-boundary",
    }
}

/// The IAM resource patterns of one route key, as this test reads API Gateway's ARN rules.
fn expected_resources(key: &str) -> Vec<String> {
    let Some((method, path)) = key.split_once(' ') else {
        return vec!["*".to_owned()];
    };
    let path: Vec<&str> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| if s.starts_with('{') { "*" } else { s })
        .collect();
    let methods: Vec<&str> = if method == "ANY" {
        vec!["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
    } else {
        vec![method]
    };
    methods
        .iter()
        .map(|m| format!("{m}/{}", path.join("/")))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn every_name_is_valid_for_its_service(spec in spec(), ns in namespace(), name in object_name()) {
        let p = plan(&spec, &who(&ns, &name)).unwrap();
        // API Gateway: 1..=128 characters.
        prop_assert!(!p.api_name.is_empty() && p.api_name.len() <= 128, "{}", p.api_name);
        // Cognito identity pool: [\w ]+, 1..=128.
        prop_assert!(p.identity_pool_name.len() <= 128);
        prop_assert!(p.identity_pool_name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ' '), "{}", p.identity_pool_name);
        // IAM role: [\w+=,.@-]{1,64}.
        prop_assert!(!p.role_name.is_empty() && p.role_name.len() <= 64, "{}", p.role_name);
        prop_assert!(p.role_name.chars().all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c)), "{}", p.role_name);
        // Lambda statement id: [A-Za-z0-9_-]{1,100}.
        prop_assert!(p.permission_sid.len() <= 100);
        prop_assert!(p.permission_sid.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'));
        // Every name starts with the stage.
        let prefix = format!("{}-", spec.stage);
        prop_assert!(p.api_name.starts_with(&prefix), "{}", p.api_name);
        prop_assert!(p.role_name.starts_with(&spec.stage[..spec.stage.len().min(10)]));
    }

    #[test]
    fn names_are_unique_across_namespace_name_and_stage(
        a in (namespace(), object_name(), stage()),
        b in (namespace(), object_name(), stage()),
        spec in spec(),
    ) {
        prop_assume!(a != b);
        let mut spec_a = spec.clone();
        spec_a.stage = a.2.clone();
        let mut spec_b = spec;
        spec_b.stage = b.2.clone();
        let pa = plan(&spec_a, &who(&a.0, &a.1)).unwrap();
        let pb = plan(&spec_b, &who(&b.0, &b.1)).unwrap();
        prop_assert_ne!(&pa.api_name, &pb.api_name);
        prop_assert_ne!(&pa.identity_pool_name, &pb.identity_pool_name);
        prop_assert_ne!(&pa.role_name, &pb.role_name);
        prop_assert_ne!(&pa.permission_sid, &pb.permission_sid);
    }

    /// Without access rules the default role holds every IAM route (so nothing needs a
    /// Deny): each route's method (ANY: every method) and path with parameters as `*`.
    #[test]
    fn the_invoke_policy_lists_exactly_the_iam_routes(spec in spec()) {
        let p = plan(&spec, &who("default", "api")).unwrap();
        let iam_routes: BTreeSet<String> = spec
            .routes
            .iter()
            .filter(|r| spec.authorization_of(r) == Authorization::Iam)
            .flat_map(|r| expected_resources(&r.route))
            .map(|pattern| format!("arn:aws:execute-api:us-east-1:123456789012:abc123/$default/{pattern}"))
            .collect();
        let listed: BTreeSet<String> = match p.invoke_policy("abc123") {
            Some(policy) => policy["Statement"][0]["Resource"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_owned())
                .collect(),
            None => BTreeSet::new(),
        };
        prop_assert_eq!(&listed, &iam_routes);
        // Never the whole API.
        prop_assert!(!listed.iter().any(|arn| arn.ends_with("abc123/*")));
        for arn in &listed {
            prop_assert!(arn.starts_with("arn:aws:execute-api:us-east-1:123456789012:abc123/$default/"), "{arn}");
            prop_assert!(!arn.contains('{'), "path parameters become *: {arn}");
        }
    }
}
