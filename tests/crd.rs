//! The CRD against a real kube-apiserver: it installs, the example is accepted, the docs
//! reach `kubectl explain`, and bad input is refused at admission with the field named.

mod common;

use std::time::{Duration, Instant};

use authedapi::api::AuthedApi;
use authedapi_rig::{TestNamespace, shared};
use kube::api::{Api, Patch, PatchParams, ValidationDirective};
use serde_json::{Value, json};

use common::{TEST_MANAGER, example, install_crd};

#[test]
fn crds_dir_matches_the_rust_types() {
    let on_disk = std::fs::read_to_string(common::repo().join(authedapi::crdgen::CRD_PATH))
        .expect("crds/ holds the generated CRD");
    assert!(
        on_disk == authedapi::crdgen::crd_yaml(),
        "crds/ is stale: run `cargo run -- crd > {}`",
        authedapi::crdgen::CRD_PATH
    );
}

/// A namespace with the CRD installed, and an Api for AuthedApis in it.
async fn setup(prefix: &str) -> Api<AuthedApi> {
    let client = shared::client().await;
    install_crd(&client)
        .await
        .expect("the CRD installs and becomes Established");
    let ns = TestNamespace::create(&client, prefix)
        .await
        .expect("a namespace");
    Api::namespaced(client, &ns.name)
}

async fn apply(api: &Api<AuthedApi>, object: &Value) -> Result<AuthedApi, kube::Error> {
    let name = object["metadata"]["name"].as_str().unwrap().to_owned();
    let params = PatchParams {
        field_validation: Some(ValidationDirective::Strict),
        ..PatchParams::apply(TEST_MANAGER)
    };
    api.patch(&name, &params, &Patch::Apply(object)).await
}

#[tokio::test]
async fn example_is_accepted_with_defaults() {
    let api = setup("crd-example").await;
    let created = apply(&api, &example())
        .await
        .expect("the example is accepted");
    assert_eq!(created.spec.stage, "dev");
    assert_eq!(created.spec.routes.len(), 2);
    // Defaults filled in by the API server from the schema.
    assert_eq!(
        serde_json::to_value(created.spec.deletion_policy).unwrap(),
        json!("Delete")
    );
    let mut no_default = example();
    no_default["metadata"]["name"] = json!("no-default-authorization");
    no_default["spec"]
        .as_object_mut()
        .unwrap()
        .remove("defaultAuthorization");
    let created = apply(&api, &no_default)
        .await
        .expect("accepted without defaultAuthorization");
    assert_eq!(
        serde_json::to_value(created.spec.default_authorization).unwrap(),
        json!("iam")
    );
}

#[tokio::test]
async fn kubectl_explain_shows_the_field_docs() {
    let client = shared::client().await;
    install_crd(&client).await.unwrap();
    // The OpenAPI document is published shortly after the CRD is Established: poll.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let out = shared::control_plane()
            .kubectl()
            .unwrap()
            .args(["explain", "authedapi.spec.routes"])
            .output()
            .expect("kubectl runs");
        let text = String::from_utf8_lossy(&out.stdout);
        if out.status.success() && text.contains("The API's routes") {
            assert!(text.contains("route\t<string> -required-"), "{text}");
            assert!(text.contains("The route key"), "{text}");
            assert!(text.contains("target\t<Object> -required-"), "{text}");
            return;
        }
        assert!(
            Instant::now() < deadline,
            "kubectl explain never showed the docs: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Create `object` as `kubectl create --validate=strict` does (POST, fieldValidation=Strict).
async fn create_strict(api: &Api<AuthedApi>, object: &Value) -> Result<Value, kube::Error> {
    let ns = api.namespace().expect("a namespaced Api");
    let request = http::Request::post(format!(
        "/apis/authedapi.dev/v1alpha1/namespaces/{ns}/authedapis?fieldValidation=Strict&fieldManager={TEST_MANAGER}"
    ))
    .header("content-type", "application/json")
    .body(serde_json::to_vec(object).unwrap())
    .unwrap();
    api.clone().into_client().request::<Value>(request).await
}

/// Assert the API server refuses `object`, both created (POST) and server-side applied,
/// and that each error names every one of `expected`.
async fn assert_rejected(api: &Api<AuthedApi>, object: Value, expected: &[&str]) {
    assert_refused_with(apply(api, &object).await.map(drop), &object, expected);
    assert_refused_with(
        create_strict(api, &object).await.map(drop),
        &object,
        expected,
    );
}

fn assert_refused_with(result: Result<(), kube::Error>, object: &Value, expected: &[&str]) {
    match result {
        Ok(_) => panic!("accepted, but should be refused: {object:#}"),
        Err(kube::Error::Api(status)) => {
            // Server-side apply reports a patch that does not fit the schema's structure
            // (unknown field, duplicate list-map key) as a 500; still a refusal.
            let typed_patch = status.code == 500
                && status
                    .message
                    .starts_with("failed to create typed patch object");
            assert!(
                status.code == 422 || status.code == 400 || typed_patch,
                "unexpected status {}: {}",
                status.code,
                status.message
            );
            for needle in expected {
                assert!(
                    status.message.contains(needle),
                    "{needle:?} missing from: {}",
                    status.message
                );
            }
        }
        Err(other) => panic!("unexpected error: {other}"),
    }
}

/// The example renamed to `name`, changed by `edit`.
fn variant(name: &str, edit: impl FnOnce(&mut Value)) -> Value {
    let mut object = example();
    object["metadata"]["name"] = json!(name);
    edit(&mut object);
    object
}

fn route(n: usize) -> Value {
    json!({"route": format!("GET /r{n}"), "target": {"http": {"url": "https://example.com/"}}})
}

macro_rules! rejects {
    ($test:ident, $edit:expr, $($expected:expr),+) => {
        #[tokio::test]
        async fn $test() {
            let api = setup("crd-bad").await;
            let object = variant(&stringify!($test).replace('_', "-"), $edit);
            assert_rejected(&api, object, &[$($expected),+]).await;
        }
    };
}

rejects!(
    malformed_route_key,
    |o| o["spec"]["routes"][0]["route"] = json!("GET/private"),
    "spec.routes[0].route"
);
rejects!(
    unknown_method,
    |o| o["spec"]["routes"][0]["route"] = json!("FETCH /private"),
    "spec.routes[0].route",
    "route method must be one of"
);
rejects!(
    duplicate_route,
    |o| o["spec"]["routes"][1]["route"] = json!("GET /private"),
    "spec.routes",
    "GET /private"
);
rejects!(
    two_targets_on_one_route,
    |o| o["spec"]["routes"][0]["target"]["http"] = json!({"url": "https://example.com/"}),
    "spec.routes[0].target",
    "exactly one target kind"
);
rejects!(
    route_without_target,
    |o| {
        o["spec"]["routes"][0]
            .as_object_mut()
            .unwrap()
            .remove("target");
    },
    "spec.routes[0].target",
    "Required value"
);
rejects!(
    route_with_empty_target,
    |o| o["spec"]["routes"][0]["target"] = json!({}),
    "spec.routes[0].target",
    "exactly one target kind"
);
rejects!(
    unknown_authorization,
    |o| o["spec"]["routes"][0]["authorization"] = json!("oauth"),
    "spec.routes[0].authorization",
    "Unsupported value"
);
rejects!(
    unknown_default_authorization,
    |o| o["spec"]["defaultAuthorization"] = json!("cognito"),
    "spec.defaultAuthorization",
    "Unsupported value"
);
rejects!(
    upper_case_stage,
    |o| o["spec"]["stage"] = json!("Dev"),
    "spec.stage"
);
rejects!(
    too_long_stage,
    |o| o["spec"]["stage"] = json!("abcdefghijklmnopq"),
    "spec.stage"
);
rejects!(
    missing_client_id,
    |o| {
        o["spec"]["auth0"]
            .as_object_mut()
            .unwrap()
            .remove("clientId");
    },
    "spec.auth0.clientId",
    "Required value"
);
rejects!(
    empty_client_id,
    |o| o["spec"]["auth0"]["clientId"] = json!(""),
    "spec.auth0.clientId"
);
rejects!(
    domain_with_a_path,
    |o| o["spec"]["auth0"]["domain"] = json!("https://myorg.us.auth0.com/authorize"),
    "spec.auth0.domain"
);
rejects!(
    malformed_lambda_arn,
    |o| o["spec"]["routes"][0]["target"]["lambda"]["functionArn"] =
        json!("arn:aws:lambda:us-east-1:1234:function:x"),
    "spec.routes[0].target.lambda.functionArn"
);
rejects!(
    relative_http_url,
    |o| o["spec"]["routes"][1]["target"] = json!({"http": {"url": "/public"}}),
    "spec.routes[1].target.http.url",
    "absolute http:// or https:// URL"
);
rejects!(
    more_than_300_routes,
    |o| o["spec"]["routes"] = Value::Array((0..301).map(route).collect()),
    "spec.routes",
    "300"
);
rejects!(
    scopes_on_an_iam_route,
    |o| o["spec"]["routes"][0]["scopes"] = json!(["read:reports"]),
    "spec.routes",
    "scopes are allowed only on routes whose authorization is jwt"
);

/// A Lambda authorizer `name` on the example's function, with `lambda` settings over the
/// defaults.
fn authorizer(name: &str, lambda: Value) -> Value {
    let mut settings =
        json!({"functionArn": "arn:aws:lambda:us-east-1:123456789012:function:auth"});
    settings
        .as_object_mut()
        .unwrap()
        .extend(lambda.as_object().unwrap().clone());
    json!({"name": name, "lambda": settings})
}

/// The example's GET /private as a lambda route of authorizer `users`.
fn lambda_route(o: &mut Value, authorizer_name: &str) {
    o["spec"]["routes"][0]["authorization"] = json!("lambda");
    o["spec"]["routes"][0]["authorizer"] = json!(authorizer_name);
}

#[tokio::test]
async fn a_lambda_route_and_its_authorizer_are_accepted_with_defaults() {
    let api = setup("crd-lambda").await;
    let object = variant("lambda-authorizer", |o| {
        o["spec"]["authorizers"] = json!([authorizer("users", json!({}))]);
        lambda_route(o, "users");
    });
    let created = apply(&api, &object).await.expect("accepted");
    let lambda = &created.spec.authorizers[0].lambda;
    assert_eq!(lambda.identity_sources, ["$request.header.Authorization"]);
    assert_eq!(lambda.result_ttl_seconds, 300);
    assert!(lambda.simple_responses);
    assert_eq!(lambda.payload_format_version.as_str(), "2.0");
    assert_eq!(created.spec.routes[0].authorizer.as_deref(), Some("users"));
}

rejects!(
    a_lambda_route_without_an_authorizer,
    |o| o["spec"]["routes"][0]["authorization"] = json!("lambda"),
    "spec.routes",
    "a route whose authorization is lambda must name one of spec.authorizers"
);
rejects!(
    a_lambda_route_naming_an_unknown_authorizer,
    |o| {
        o["spec"]["authorizers"] = json!([authorizer("users", json!({}))]);
        lambda_route(o, "admins");
    },
    "spec.routes",
    "a route whose authorization is lambda must name one of spec.authorizers"
);
rejects!(
    an_authorizer_on_a_route_that_is_not_lambda,
    |o| {
        o["spec"]["authorizers"] = json!([authorizer("users", json!({}))]);
        o["spec"]["routes"][0]["authorizer"] = json!("users");
    },
    "spec.routes",
    "authorizer is allowed only on routes whose authorization is lambda"
);
rejects!(
    lambda_as_the_default_authorization,
    |o| {
        o["spec"]["authorizers"] = json!([authorizer("users", json!({}))]);
        o["spec"]["defaultAuthorization"] = json!("lambda");
    },
    "spec.defaultAuthorization",
    "defaultAuthorization may not be lambda: set authorization: lambda and an authorizer on each route"
);
rejects!(
    simple_responses_with_payload_1_0,
    |o| o["spec"]["authorizers"] =
        json!([authorizer("users", json!({"payloadFormatVersion": "1.0"}))]),
    "spec.authorizers[0].lambda",
    "simpleResponses needs payloadFormatVersion 2.0"
);
rejects!(
    a_cached_authorizer_without_identity_sources,
    |o| o["spec"]["authorizers"] = json!([authorizer("users", json!({"identitySources": []}))]),
    "spec.authorizers[0].lambda",
    "a cached authorizer (resultTtlSeconds > 0) needs identitySources"
);
rejects!(
    an_identity_source_that_is_no_request_or_context_value,
    |o| o["spec"]["authorizers"] = json!([authorizer(
        "users",
        json!({"identitySources": ["Authorization"]})
    )]),
    "spec.authorizers[0].lambda.identitySources[0]"
);
rejects!(
    a_result_ttl_over_an_hour,
    |o| o["spec"]["authorizers"] = json!([authorizer("users", json!({"resultTtlSeconds": 3601}))]),
    "spec.authorizers[0].lambda.resultTtlSeconds"
);
rejects!(
    a_malformed_authorizer_function_arn,
    |o| o["spec"]["authorizers"] = json!([authorizer(
        "users",
        json!({"functionArn": "arn:aws:lambda:us-east-1:1:function:x"})
    )]),
    "spec.authorizers[0].lambda.functionArn"
);
rejects!(
    two_authorizers_of_one_name,
    |o| o["spec"]["authorizers"] = json!([
        authorizer("users", json!({})),
        authorizer("users", json!({"resultTtlSeconds": 0}))
    ]),
    "spec.authorizers",
    "users"
);
rejects!(
    more_than_10_authorizers,
    |o| o["spec"]["authorizers"] = Value::Array(
        (0..11)
            .map(|n| authorizer(&format!("a{n}"), json!({})))
            .collect()
    ),
    "spec.authorizers",
    "10"
);

const CERTIFICATE: &str =
    "arn:aws:acm:us-east-1:123456789012:certificate/0f4c1ab2-9c1e-4f3e-8d4b-1a2b3c4d5e6f";

fn domain(name: &str, certificate: &str, base_path: &str) -> Value {
    json!({"name": name, "certificateArn": certificate, "basePath": base_path})
}

rejects!(
    upper_case_domain_name,
    |o| o["spec"]["domain"] = domain("API.example.com", CERTIFICATE, "dev"),
    "spec.domain.name"
);
rejects!(
    wildcard_domain_name,
    |o| o["spec"]["domain"] = domain("*.example.com", CERTIFICATE, "dev"),
    "spec.domain.name"
);
rejects!(
    malformed_certificate_arn,
    |o| o["spec"]["domain"] = domain(
        "api.example.com",
        "arn:aws:iam::123456789012:server-certificate/x",
        "dev"
    ),
    "spec.domain.certificateArn"
);
rejects!(
    certificate_in_another_region,
    |o| o["spec"]["domain"] = domain(
        "api.example.com",
        &CERTIFICATE.replace("us-east-1", "eu-west-1"),
        "dev"
    ),
    "spec.domain.certificateArn",
    "the domain's certificate must be in the API's region"
);
rejects!(
    base_path_with_a_leading_slash,
    |o| o["spec"]["domain"] = domain("api.example.com", CERTIFICATE, "/dev"),
    "spec.domain.basePath"
);
rejects!(
    base_path_with_an_empty_segment,
    |o| o["spec"]["domain"] = domain("api.example.com", CERTIFICATE, "v1//dev"),
    "spec.domain.basePath"
);

#[tokio::test]
async fn a_custom_domain_with_a_nested_base_path_is_accepted() {
    let api = setup("crd-domain").await;
    let object = variant("with-domain", |o| {
        o["spec"]["domain"] = domain("api.example.com", CERTIFICATE, "v1/dev")
    });
    let created = apply(&api, &object).await.expect("accepted");
    let domain = created.spec.domain.expect("kept");
    assert_eq!(domain.base_path.as_deref(), Some("v1/dev"));
    assert_eq!(domain.certificate_arn, CERTIFICATE);
}

const LISTENER: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/orders/50dc6c495c0c9188/f2f7dc8efc522ab2";

/// The example with a private route to `target`, through `link` (none when null).
fn private_route(o: &mut Value, target: Value, link: Value) {
    o["spec"]["routes"][0]["target"] = json!({"private": target});
    if !link.is_null() {
        o["spec"]["vpcLink"] = link;
    }
}

rejects!(
    private_target_without_a_vpc_link,
    |o| private_route(o, json!({"listenerArn": LISTENER}), Value::Null),
    "spec.routes",
    "a route with a private target needs spec.vpcLink"
);
rejects!(
    private_target_with_a_listener_and_a_service,
    |o| private_route(
        o,
        json!({"listenerArn": LISTENER,
               "cloudMapServiceArn": "arn:aws:servicediscovery:us-east-1:123456789012:service/srv-e4anhexample0004"}),
        json!({"subnetIds": ["subnet-0a1b2c3d"]})
    ),
    "spec.routes[0].target.private",
    "set exactly one of listenerArn"
);
rejects!(
    private_target_to_a_target_group,
    |o| private_route(
        o,
        json!({"listenerArn": "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/orders/50dc6c495c0c9188"}),
        json!({"subnetIds": ["subnet-0a1b2c3d"]})
    ),
    "spec.routes[0].target.private.listenerArn"
);
rejects!(
    a_private_and_a_lambda_target_on_one_route,
    |o| {
        o["spec"]["vpcLink"] = json!({"subnetIds": ["subnet-0a1b2c3d"]});
        o["spec"]["routes"][0]["target"]["private"] = json!({"listenerArn": LISTENER});
    },
    "spec.routes[0].target",
    "exactly one target kind must be set: lambda, http or private"
);
rejects!(
    vpc_link_with_subnets_and_an_id,
    |o| o["spec"]["vpcLink"] = json!({"subnetIds": ["subnet-0a1b2c3d"], "id": "abcd123"}),
    "spec.vpcLink",
    "set exactly one of subnetIds"
);
rejects!(
    vpc_link_with_neither_subnets_nor_an_id,
    |o| o["spec"]["vpcLink"] = json!({"securityGroupIds": ["sg-0123abcd"]}),
    "spec.vpcLink",
    "set exactly one of subnetIds"
);
rejects!(
    security_groups_on_a_referenced_link,
    |o| o["spec"]["vpcLink"] = json!({"id": "abcd123", "securityGroupIds": ["sg-0123abcd"]}),
    "spec.vpcLink.securityGroupIds",
    "securityGroupIds go with subnetIds"
);
rejects!(
    malformed_subnet_id,
    |o| o["spec"]["vpcLink"] = json!({"subnetIds": ["subnet-XYZ"]}),
    "spec.vpcLink.subnetIds[0]"
);
// The apply and the create word it differently; both name the subnet.
rejects!(
    duplicate_subnet,
    |o| o["spec"]["vpcLink"] = json!({"subnetIds": ["subnet-0a1b2c3d", "subnet-0a1b2c3d"]}),
    "spec.vpcLink.subnetIds",
    "subnet-0a1b2c3d"
);
rejects!(
    more_than_16_subnets,
    |o| o["spec"]["vpcLink"] =
        json!({"subnetIds": (0..17).map(|i| format!("subnet-{i:08x}")).collect::<Vec<_>>()}),
    "spec.vpcLink.subnetIds"
);
rejects!(
    more_than_5_security_groups,
    |o| o["spec"]["vpcLink"] = json!({"subnetIds": ["subnet-0a1b2c3d"],
        "securityGroupIds": (0..6).map(|i| format!("sg-{i:08x}")).collect::<Vec<_>>()}),
    "spec.vpcLink.securityGroupIds"
);

#[tokio::test]
async fn private_targets_through_a_link_of_ours_or_a_referenced_one_are_accepted() {
    let api = setup("crd-private").await;
    let object = variant("with-link", |o| {
        private_route(
            o,
            json!({"listenerArn": LISTENER, "tlsServerName": "orders.internal"}),
            json!({"subnetIds": ["subnet-0a1b2c3d", "subnet-4e5f6a7b0c1d2e3f4"],
                   "securityGroupIds": ["sg-0123abcd"]}),
        );
        o["spec"]["routes"][1]["target"] = json!({"private": {"cloudMapServiceArn":
            "arn:aws:servicediscovery:us-east-1:123456789012:service/srv-e4anhexample0004"}});
    });
    let created = apply(&api, &object).await.expect("accepted");
    let link = created.spec.vpc_link.expect("kept");
    assert_eq!(link.subnet_ids.unwrap().len(), 2);
    let target = created.spec.routes[0]
        .target
        .private
        .clone()
        .expect("private");
    assert_eq!(target.uri(), LISTENER);
    assert_eq!(target.tls_server_name.as_deref(), Some("orders.internal"));
    // Another link, then someone else's: the spec may change (the link is replaced).
    let mut moved = object.clone();
    moved["spec"]["vpcLink"] = json!({"subnetIds": ["subnet-99999999"]});
    apply(&api, &moved).await.expect("new subnets accepted");
    moved["spec"]["vpcLink"] = json!({"id": "abcd123"});
    let referenced = apply(&api, &moved)
        .await
        .expect("a referenced link accepted");
    assert_eq!(
        referenced.spec.vpc_link.unwrap().id.as_deref(),
        Some("abcd123")
    );
}

/// Strict validation words an unknown field differently for a create and an apply.
#[tokio::test]
async fn unknown_field_in_strict_mode() {
    let api = setup("crd-bad").await;
    let object = variant("unknown-field-in-strict-mode", |o| {
        o["spec"]["routez"] = json!([])
    });
    assert_refused_with(
        apply(&api, &object).await.map(drop),
        &object,
        &[".spec.routez: field not declared in schema"],
    );
    assert_refused_with(
        create_strict(&api, &object).await.map(drop),
        &object,
        &["unknown field \"spec.routez\""],
    );
}

/// Create the example, then apply `edit` to it and expect the update refused.
async fn assert_update_rejected(name: &str, edit: impl FnOnce(&mut Value), expected: &[&str]) {
    let api = setup("crd-update").await;
    let original = variant(name, |_| {});
    apply(&api, &original)
        .await
        .expect("the original is accepted");
    let mut changed = original.clone();
    edit(&mut changed);
    assert_refused_with(apply(&api, &changed).await.map(drop), &changed, expected);
}

#[tokio::test]
async fn stage_changed_on_update() {
    assert_update_rejected(
        "stage-change",
        |o| o["spec"]["stage"] = json!("prod"),
        &["spec.stage", "stage is immutable"],
    )
    .await;
}

#[tokio::test]
async fn region_changed_on_update() {
    assert_update_rejected(
        "region-change",
        |o| o["spec"]["region"] = json!("eu-west-1"),
        &["spec.region", "region is immutable"],
    )
    .await;
}

#[tokio::test]
async fn region_removed_on_update() {
    assert_update_rejected(
        "region-removed",
        |o| {
            o["spec"].as_object_mut().unwrap().remove("region");
        },
        &["spec.region", "region is immutable"],
    )
    .await;
}

#[tokio::test]
async fn allowed_updates_are_accepted() {
    let api = setup("crd-update-ok").await;
    let original = variant("updates-ok", |_| {});
    apply(&api, &original).await.unwrap();
    let changed = variant("updates-ok", |o| {
        o["spec"]["routes"][1]["authorization"] = json!("iam");
        let routes = o["spec"]["routes"].as_array_mut().unwrap();
        routes.push(json!({"route": "ANY /items/{id}", "authorization": "jwt",
            "scopes": ["read:items"], "target": {"http": {"url": "http://example.com/items"}}}));
        routes
            .push(json!({"route": "$default", "target": {"http": {"url": "https://example.com"}}}));
    });
    let updated = apply(&api, &changed)
        .await
        .expect("route changes are allowed");
    assert_eq!(updated.spec.routes.len(), 4);
}
