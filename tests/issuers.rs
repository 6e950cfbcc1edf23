//! Any OIDC issuer, on the rig: an Okta-style issuer (`https://<host>/oauth2/default`) and a
//! Keycloak-style realm (`https://<host>/realms/<realm>`) served by the issuer stand-in under
//! their paths, federated end to end: the IAM OIDC provider named by host and path, the pool,
//! the JWT authorizer's issuer exactly as given, and calls through the data plane with the
//! issuer's tokens (an IAM route with Cognito's credentials, a JWT route, `authedapi call`).
//! Bad issuers are refused at admission, and an issuer the namespace may not use stalls.

mod common;

use std::process::Stdio;
use std::time::Duration;

use authedapi::api::AuthedApi;
use authedapi::tenant::AuthedApiTenant;
use authedapi_rig::auth0::{Application, Flavor, TestUser};
use authedapi_rig::operator_identity::PolicyOptions;
use authedapi_rig::{Auth0StandIn, OperatorIdentity, TestNamespace, shared};
use kube::api::{Api, Patch, PatchParams};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::OnceCell;

use common::web::{answer, call_command, cognito_session_as, get, log_in_from_terminal, signed};
use common::{Operator, READY_TIMEOUT, apply, condition, install_crd, seed_in, wait_ready};

const OKTA_ISSUER: &str = "https://rig-idp.okta.com/oauth2/default";
const KEYCLOAK_ISSUER: &str = "https://login.rig-keycloak.example/realms/Rig-Team";
const CLIENT_ID: &str = "rig-oidc-client";
const CLIENT_SECRET: &str = "rig-oidc-secret-not-a-real-one";
const PASSWORD: &str = "correct horse battery staple";
/// What the operator (and its IAM policy) allows in these tests.
const ALLOWED: [&str; 3] = [
    "*.auth0.com",
    "*.okta.com/oauth2/*",
    "login.rig-keycloak.example/realms/*",
];

static OKTA: OnceCell<Auth0StandIn> = OnceCell::const_new();
static KEYCLOAK: OnceCell<Auth0StandIn> = OnceCell::const_new();

/// The stand-in for `issuer`, started once per test binary and registered with the web
/// (reachable at its host, known to the emulator by its host and path).
async fn stand_in(
    cell: &'static OnceCell<Auth0StandIn>,
    issuer: &str,
    flavor: Flavor,
) -> &'static Auth0StandIn {
    cell.get_or_init(|| async {
        let started = Auth0StandIn::start_issuer_detached(
            issuer,
            flavor,
            vec![Application::confidential(
                CLIENT_ID,
                CLIENT_SECRET,
                vec!["http://127.0.0.1/*".into()],
            )],
            Vec::new(),
        )
        .expect("the issuer stand-in starts");
        shared::web()
            .add_issuer(&started)
            .await
            .expect("the emulator knows the issuer");
        started
    })
    .await
}

async fn okta() -> &'static Auth0StandIn {
    stand_in(&OKTA, OKTA_ISSUER, Flavor::Okta).await
}

async fn keycloak() -> &'static Auth0StandIn {
    stand_in(&KEYCLOAK, KEYCLOAK_ISSUER, Flavor::Keycloak).await
}

/// A namespace, an account, and an operator allowed [`ALLOWED`] (its flag and its IAM
/// policy, rendered for them, so the IAM judge sees provider ARNs with paths).
struct Rig {
    ns: String,
    account: authedapi_rig::Account,
    config: aws_types::SdkConfig,
    api: Api<AuthedApi>,
    operator: Operator,
}

async fn rig(prefix: &str) -> Rig {
    let client = shared::client().await;
    install_crd(&client).await.unwrap();
    let ns = TestNamespace::create(&client, prefix).await.unwrap();
    let account = shared::account();
    let config = account.sdk_config().await;
    let mut args = Vec::new();
    for issuer in ALLOWED {
        args.extend(["--allowed-issuer".to_owned(), issuer.to_owned()]);
    }
    let identity = OperatorIdentity::provision(
        &account,
        std::path::Path::new(env!("CARGO_BIN_EXE_authedapi")),
        "test",
        &PolicyOptions { args },
    )
    .await
    .expect("the operator's IAM role");
    let allowed = ALLOWED.join(",");
    let operator = Operator::start_as(
        &ns.name,
        &account,
        &identity.credentials,
        &["--allowed-issuers", &allowed],
        &[],
    );
    Rig {
        api: Api::namespaced(client, &ns.name),
        ns: ns.name,
        account,
        config,
        operator,
    }
}

/// The seed (GET /private on iam, GET /public on none) plus GET /token on jwt, federating
/// `issuer` through spec.oidc.
async fn federating(r: &Rig, name: &str, issuer: &str) -> Value {
    let mut object = seed_in(&r.account, &r.config, name).await;
    let spec = object["spec"].as_object_mut().unwrap();
    spec.remove("auth0");
    spec.insert(
        "oidc".into(),
        json!({"issuer": issuer, "clientId": CLIENT_ID}),
    );
    let private = object["spec"]["routes"][0]["target"].clone();
    object["spec"]["routes"]
        .as_array_mut()
        .unwrap()
        .push(json!({"route": "GET /token", "authorization": "jwt", "target": private}));
    object
}

/// What the emulator holds for the object: the provider, the pool's providers, the
/// authorizers' issuers.
async fn check_federation(r: &Rig, obj: &AuthedApi, issuer: &str) {
    let status = obj.status.clone().unwrap();
    // The provider's name is the issuer without scheme (IAM keeps the path).
    let name = issuer.trim_start_matches("https://");
    let arn = format!("arn:aws:iam::{}:oidc-provider/{name}", r.account.id);
    assert_eq!(status.oidc_provider_arn.as_deref(), Some(arn.as_str()));
    let iam = aws_sdk_iam::Client::new(&r.config);
    let provider = iam
        .get_open_id_connect_provider()
        .open_id_connect_provider_arn(&arn)
        .send()
        .await
        .expect("the provider, by the ARN with the path");
    assert_eq!(provider.url(), Some(name));
    assert_eq!(provider.client_id_list(), [CLIENT_ID.to_owned()]);
    let cognito = aws_sdk_cognitoidentity::Client::new(&r.config);
    let pool = cognito
        .describe_identity_pool()
        .identity_pool_id(status.identity_pool_id.clone().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(pool.open_id_connect_provider_arns(), [arn]);
    let gateway = aws_sdk_apigatewayv2::Client::new(&r.config);
    let authorizers = gateway
        .get_authorizers()
        .api_id(status.api_id.clone().unwrap())
        .send()
        .await
        .unwrap();
    let issuers: Vec<&str> = authorizers
        .items()
        .iter()
        .filter_map(|a| a.jwt_configuration()?.issuer())
        .collect();
    assert_eq!(
        issuers,
        vec![issuer],
        "the issuer exactly as the spec gives it"
    );
}

/// An ID token of `issuer` for `user`, with `extra` claims on top.
fn token(issuer: &Auth0StandIn, user: &str, extra: serde_json::Map<String, Value>) -> String {
    issuer.add_user(TestUser::new(user, PASSWORD));
    issuer
        .id_token(user, CLIENT_ID, Duration::from_secs(600), extra)
        .unwrap()
}

/// The data plane lets the issuer's users in (and nobody with a token of another issuer).
async fn calls_get_through(r: &Rig, obj: &AuthedApi, issuer: &Auth0StandIn) {
    let status = obj.status.clone().unwrap();
    let endpoint = status.api_endpoint.unwrap();
    let pool_id = status.identity_pool_id.unwrap();
    let http = shared::web().http_client().unwrap();
    let id_token = token(issuer, "user@example.com", Default::default());

    // IAM: Cognito's credentials for the provider named by host and path.
    let credentials = cognito_session_as(&r.config, &pool_id, &issuer.name(), &id_token)
        .await
        .expect("Cognito takes the issuer's token");
    let private = http
        .execute(signed(get(&format!("{endpoint}/private")), &credentials))
        .await
        .unwrap();
    assert_eq!(answer(private).await, (200, "Hello user!".to_owned()));
    // The host alone is not the provider.
    let e = cognito_session_as(&r.config, &pool_id, issuer.domain(), &id_token)
        .await
        .unwrap_err();
    assert!(e.contains("not from a supported provider"), "{e}");

    // JWT: the bearer token, its iss compared exactly with the authorizer's issuer.
    let jwt = http
        .get(format!("{endpoint}/token"))
        .bearer_auth(&id_token)
        .send()
        .await
        .unwrap();
    assert_eq!(answer(jwt).await, (200, "Hello user!".to_owned()));
    let slashed = token(
        issuer,
        "user@example.com",
        serde_json::Map::from_iter([("iss".to_owned(), json!(format!("{}/", issuer.issuer())))]),
    );
    let jwt = http
        .get(format!("{endpoint}/token"))
        .bearer_auth(&slashed)
        .send()
        .await
        .unwrap();
    assert_eq!(
        answer(jwt).await,
        (401, r#"{"message":"Unauthorized"}"#.to_owned()),
        "an iss with Auth0's trailing slash is another issuer"
    );
}

#[tokio::test]
async fn an_okta_style_issuer_with_a_path_is_federated_end_to_end() {
    let r = rig("iss-okta").await;
    let okta = okta().await;
    assert_eq!(
        okta.issuer(),
        OKTA_ISSUER,
        "Okta's iss has no trailing slash"
    );
    apply(&r.api, &federating(&r, "okta", OKTA_ISSUER).await).await;
    let obj = wait_ready(&r.api, "okta", &r.operator, READY_TIMEOUT).await;
    check_federation(&r, &obj, OKTA_ISSUER).await;
    calls_get_through(&r, &obj, okta).await;

    // `authedapi call` with the issuer's token: Cognito's login is the provider's name.
    let id_token = token(okta, "caller@example.com", Default::default());
    let out = call_command(
        &r.ns,
        &["okta", "GET", "/private", "--id-token", &id_token],
        &[],
    )
    .output()
    .await
    .unwrap();
    let (stdout, stderr) = text(&out.stdout, &out.stderr);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert_eq!(stdout, "HTTP 200\nHello user!\n");
}

#[tokio::test]
async fn a_keycloak_style_realm_is_federated_and_logged_in_to_from_the_terminal() {
    let r = rig("iss-keycloak").await;
    let keycloak = keycloak().await;
    apply(&r.api, &federating(&r, "realm", KEYCLOAK_ISSUER).await).await;
    let obj = wait_ready(&r.api, "realm", &r.operator, READY_TIMEOUT).await;
    check_federation(&r, &obj, KEYCLOAK_ISSUER).await;
    calls_get_through(&r, &obj, keycloak).await;

    // `authedapi call --login`: the endpoints come from the realm's discovery document.
    keycloak.add_user(TestUser::new("terminal@example.com", PASSWORD));
    let port = authedapi_rig::free_port().unwrap();
    let redirect = format!("http://127.0.0.1:{port}/callback");
    let mut child = call_command(
        &r.ns,
        &[
            "realm",
            "GET",
            "/private",
            "--login",
            "--client-secret-env",
            "APP_SECRET",
            "--redirect-uri",
            &redirect,
        ],
        &[("APP_SECRET", CLIENT_SECRET)],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut printed = String::new();
    let url = loop {
        let line = tokio::time::timeout(Duration::from_secs(30), stderr.next_line())
            .await
            .expect("the login URL within 30s")
            .unwrap()
            .unwrap_or_else(|| panic!("no login URL: {printed}"));
        printed.push_str(&line);
        printed.push('\n');
        if line.trim().starts_with("https://") {
            break line.trim().to_owned();
        }
    };
    let authorize = format!("{KEYCLOAK_ISSUER}/protocol/openid-connect/auth");
    assert!(url.starts_with(&format!("{authorize}?")), "{printed}");
    log_in_from_terminal(
        &url,
        &authorize,
        "terminal@example.com",
        PASSWORD,
        &redirect,
    )
    .await;
    let out = child.wait_with_output().await.unwrap();
    let (stdout, _) = text(&out.stdout, &out.stderr);
    assert!(out.status.success(), "{stdout}");
    assert_eq!(stdout, "HTTP 200\nHello user!\n");
}

#[tokio::test]
async fn two_realms_on_one_host_are_two_providers() {
    let r = rig("iss-realms").await;
    let one = "https://login.rig-keycloak.example/realms/one";
    let two = "https://login.rig-keycloak.example/realms/two";
    apply(&r.api, &federating(&r, "one", one).await).await;
    apply(&r.api, &federating(&r, "two", two).await).await;
    wait_ready(&r.api, "one", &r.operator, READY_TIMEOUT).await;
    wait_ready(&r.api, "two", &r.operator, READY_TIMEOUT).await;
    let iam = aws_sdk_iam::Client::new(&r.config);
    let mut arns: Vec<String> = iam
        .list_open_id_connect_providers()
        .send()
        .await
        .unwrap()
        .open_id_connect_provider_list()
        .iter()
        .filter_map(|p| p.arn().map(str::to_owned))
        .collect();
    arns.sort();
    let prefix = format!(
        "arn:aws:iam::{}:oidc-provider/login.rig-keycloak.example",
        r.account.id
    );
    assert_eq!(
        arns,
        vec![
            format!("{prefix}/realms/one"),
            format!("{prefix}/realms/two")
        ]
    );
}

#[tokio::test]
async fn a_spec_with_both_or_neither_issuer_or_an_issuer_iam_would_refuse_is_refused_at_admission()
{
    let client = shared::client().await;
    install_crd(&client).await.unwrap();
    let ns = TestNamespace::create(&client, "iss-admission")
        .await
        .unwrap();
    let api: Api<AuthedApi> = Api::namespaced(client, &ns.name);
    let base = common::example();
    let refused = |edit: &dyn Fn(&mut Value)| {
        let mut object = base.clone();
        object["metadata"]["name"] = json!("refused");
        edit(&mut object);
        let api = api.clone();
        async move {
            api.patch(
                "refused",
                &PatchParams::apply(common::TEST_MANAGER).force(),
                &Patch::Apply(object),
            )
            .await
            .map(drop)
            .expect_err("the API server accepted it")
            .to_string()
        }
    };
    let e = refused(&|o| o["spec"]["oidc"] = json!({"issuer": OKTA_ISSUER, "clientId": "c"})).await;
    assert!(
        e.contains("set exactly one of auth0 (an Auth0 tenant) or oidc"),
        "{e}"
    );
    let e = refused(&|o| {
        o["spec"].as_object_mut().unwrap().remove("auth0");
    })
    .await;
    assert!(e.contains("set exactly one of auth0"), "{e}");
    // 137 characters: within the schema's length, its name (129) one over Cognito's limit.
    let long_path = format!("https://idp.example.com/{}", "a".repeat(113));
    for issuer in [
        "http://rig-idp.okta.com/oauth2/default",
        "https://rig-idp.okta.com:8443/oauth2/default",
        "https://rig-idp.okta.com/oauth2/default?tenant=x",
        "https://rig-idp.okta.com/oauth2/default#x",
        "https://user@rig-idp.okta.com/oauth2/default",
        "https://Rig-IdP.okta.com/oauth2/default",
        "https://rig-idp.okta.com//default",
        "rig-idp.okta.com/oauth2/default",
        long_path.as_str(),
    ] {
        let e = refused(&|o| {
            let spec = o["spec"].as_object_mut().unwrap();
            spec.remove("auth0");
            spec.insert("oidc".into(), json!({"issuer": issuer, "clientId": "c"}));
        })
        .await;
        assert!(e.contains("spec.oidc.issuer"), "{issuer}: {e}");
    }
    assert_eq!(long_path.len() - "https://".len(), 129);
    let e = refused(&|o| {
        let spec = o["spec"].as_object_mut().unwrap();
        spec.remove("auth0");
        spec.insert("oidc".into(), json!({"issuer": long_path, "clientId": "c"}));
    })
    .await;
    assert!(
        e.contains("Cognito's limit for a login provider name"),
        "{e}"
    );
    // The longest name Cognito takes (128 characters), with a trailing slash, is admitted.
    let longest = format!("https://idp.example.com/{}/", "a".repeat(128 - 16));
    let mut object = base.clone();
    object["metadata"]["name"] = json!("longest");
    let spec = object["spec"].as_object_mut().unwrap();
    spec.remove("auth0");
    spec.insert("oidc".into(), json!({"issuer": longest, "clientId": "c"}));
    apply(&api, &object).await;
}

#[tokio::test]
async fn an_issuer_the_namespace_may_not_use_stalls_with_not_allowed() {
    // The operator's own default: Auth0 domains, which a path issuer on another host is not.
    let client = shared::client().await;
    install_crd(&client).await.unwrap();
    let ns = TestNamespace::create(&client, "iss-refused").await.unwrap();
    let account = shared::account();
    let config = account.sdk_config().await;
    let operator = Operator::start(&ns.name, &account, &[], &[]).await;
    let api: Api<AuthedApi> = Api::namespaced(client.clone(), &ns.name);
    let r = Rig {
        ns: ns.name.clone(),
        account: account.clone(),
        config: config.clone(),
        api: api.clone(),
        operator,
    };
    apply(&api, &federating(&r, "okta", OKTA_ISSUER).await).await;
    let obj = common::wait_stalled(&api, "okta", &r.operator).await;
    let (_, reason, message) = condition(&obj, "Stalled").unwrap();
    assert_eq!(reason, "NotAllowed");
    assert!(
        message.contains("the issuer rig-idp.okta.com/oauth2/default is not allowed")
            && message.contains("*.auth0.com"),
        "{message}"
    );

    // A tenant's pattern with a path: another realm on an allowed host is still refused.
    let tenants: Api<AuthedApiTenant> = Api::all(client);
    let tenant_name = format!("{}-realm", ns.name);
    tenants
        .patch(
            &tenant_name,
            &PatchParams::apply("platform").force(),
            &Patch::Apply(json!({"apiVersion": "authedapi.dev/v1alpha1", "kind": "AuthedApiTenant",
                "metadata": {"name": tenant_name},
                "spec": {"namespaces": [ns.name], "allowedIssuers": ["login.rig-keycloak.example/realms/other"],
                         "allowedFunctions": [format!("arn:aws:lambda:*:{}:function:*", account.id)]}})),
        )
        .await
        .unwrap();
    apply(&api, &federating(&r, "realm", KEYCLOAK_ISSUER).await).await;
    let obj = common::wait_stalled(&api, "realm", &r.operator).await;
    let (_, reason, message) = condition(&obj, "Stalled").unwrap();
    assert_eq!(reason, "NotAllowed");
    assert!(
        message.contains(
            "login.rig-keycloak.example/realms/Rig-Team is not allowed by AuthedApiTenant"
        ),
        "{message}"
    );
    // Nothing was made in AWS.
    let iam = aws_sdk_iam::Client::new(&config);
    let providers = iam.list_open_id_connect_providers().send().await.unwrap();
    assert!(providers.open_id_connect_provider_list().is_empty());
}

#[tokio::test]
async fn the_charts_admission_policy_matches_issuers_by_host_and_path() {
    let client = shared::client().await;
    install_crd(&client).await.unwrap();
    let ns = TestNamespace::create(&client, "iss-policy").await.unwrap();
    // The chart's objects, as `helm template` renders them, for a release of this test.
    let release = format!("r{}", ns.name.replace('-', ""));
    let mut helm = common::helm();
    helm.args([
        "template",
        &release,
        "charts/authedapi",
        "--namespace",
        &ns.name,
    ]);
    let manifests = common::run(&mut helm, None);
    let mut kubectl = shared::control_plane().kubectl().unwrap();
    kubectl.args(["apply", "--server-side", "-n", &ns.name, "-f", "-"]);
    common::run(&mut kubectl, Some(&manifests));
    let tenants: Api<AuthedApiTenant> = Api::all(client.clone());
    let tenant_name = format!("{}-okta", ns.name);
    tenants
        .patch(
            &tenant_name,
            &PatchParams::apply("platform").force(),
            &Patch::Apply(
                json!({"apiVersion": "authedapi.dev/v1alpha1", "kind": "AuthedApiTenant",
                "metadata": {"name": tenant_name},
                "spec": {"namespaces": [ns.name], "allowedFunctions": ["*"],
                         "allowedIssuers": ["*.okta.com/oauth2/*", "login.rig-keycloak.example"]}}),
            ),
        )
        .await
        .unwrap();
    let api: Api<AuthedApi> = Api::namespaced(client, &ns.name);
    let put = |name: &str, issuer: &str| {
        let mut object = common::example();
        object["metadata"]["name"] = json!(name);
        let spec = object["spec"].as_object_mut().unwrap();
        spec.remove("auth0");
        spec.insert("oidc".into(), json!({"issuer": issuer, "clientId": "c"}));
        let (api, name) = (api.clone(), name.to_owned());
        async move {
            api.patch(
                &name,
                &PatchParams::apply(common::TEST_MANAGER).force(),
                &Patch::Apply(object),
            )
            .await
            .map(drop)
        }
    };
    // The policy takes effect a moment after it is created: wait for its first refusal.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let refused = loop {
        match put("host-only", "https://rig-idp.okta.com").await {
            Err(e) => break e.to_string(),
            Ok(()) => {
                assert!(
                    std::time::Instant::now() < deadline,
                    "the policy never refused"
                );
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    };
    assert!(
        refused.contains("the issuer rig-idp.okta.com is not allowed by AuthedApiTenant"),
        "a path pattern does not admit the host alone: {refused}"
    );
    for issuer in [
        "https://login.rig-keycloak.example/realms/team",
        "https://evil.example/rig-idp.okta.com/oauth2/default",
        "https://rig-idp.okta.com/other/default",
    ] {
        let e = put("refused", issuer).await.expect_err(issuer).to_string();
        assert!(
            e.contains("is not allowed by AuthedApiTenant"),
            "{issuer}: {e}"
        );
    }
    for (name, issuer) in [
        ("okta", OKTA_ISSUER),
        ("okta-slash", "https://rig-idp.okta.com/oauth2/aus1/"),
        ("keycloak-host", "https://login.rig-keycloak.example"),
    ] {
        put(name, issuer)
            .await
            .unwrap_or_else(|e| panic!("{issuer} refused: {e}"));
    }
}

fn text(stdout: &[u8], stderr: &[u8]) -> (String, String) {
    (
        String::from_utf8_lossy(stdout).into_owned(),
        String::from_utf8_lossy(stderr).into_owned(),
    )
}

/// A tenant and ten AuthedApis of its namespace in one `kubectl apply`, the tenant first:
/// the operator's tenants cache may not have the tenant when the objects come (the
/// operator allows no function by default, only the tenant does), and none of them may
/// ever say Stalled: every status they go through is watched until all are Ready.
#[tokio::test]
async fn a_tenant_and_ten_objects_in_one_apply_never_stall() {
    use futures::StreamExt;
    use kube::runtime::{WatchStreamExt, watcher};

    let client = shared::client().await;
    install_crd(&client).await.unwrap();
    let ns = TestNamespace::create(&client, "one-apply").await.unwrap();
    let account = shared::account();
    let config = account.sdk_config().await;
    // The operator's own defaults allow no function: only the tenant lets the seed in.
    let operator = Operator::start(
        &ns.name,
        &account,
        &[
            "--allowed-functions",
            "arn:aws:lambda:*:000000000000:function:nothing",
        ],
        &[],
    )
    .await;
    let api: Api<AuthedApi> = Api::namespaced(client.clone(), &ns.name);
    let tenant = json!({
        "apiVersion": "authedapi.dev/v1alpha1", "kind": "AuthedApiTenant",
        "metadata": {"name": format!("{}-team", ns.name)},
        "spec": {"namespaces": [ns.name],
                 "allowedFunctions": [format!("arn:aws:lambda:*:{}:function:*", account.id)]}
    });
    let mut documents = vec![tenant];
    for i in 0..10 {
        let mut object = seed_in(&account, &config, &format!("seed-{i}")).await;
        object["metadata"]["namespace"] = json!(ns.name);
        documents.push(object);
    }
    let manifest: String = documents
        .iter()
        .map(|d| format!("---\n{}\n", serde_json::to_string(d).unwrap()))
        .collect();

    // Every condition each object shows, from before the apply until all are Ready.
    let stalls = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = stalls.clone();
    let watching = api.clone();
    let watch = tokio::spawn(async move {
        let mut changes = watcher(watching, watcher::Config::default())
            .applied_objects()
            .boxed();
        while let Some(Ok(obj)) = changes.next().await {
            if let Some((status, reason, message)) = condition(&obj, "Stalled")
                && status == "True"
            {
                seen.lock().unwrap().push(format!(
                    "{}: {reason}: {message}",
                    obj.metadata.name.unwrap()
                ));
            }
        }
    });
    // Let the watch start before anything is applied.
    tokio::time::sleep(Duration::from_secs(1)).await;

    let mut kubectl = shared::control_plane().kubectl().expect("kubectl");
    let mut child = kubectl
        .args(["apply", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl apply");
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), manifest.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let start = std::time::Instant::now();
    for i in 0..10 {
        wait_ready(&api, &format!("seed-{i}"), &operator, READY_TIMEOUT).await;
    }
    eprintln!(
        "[measure] a tenant and ten objects in one apply: all Ready in {:.1}s",
        start.elapsed().as_secs_f64()
    );
    // The watch has had every change up to Ready.
    tokio::time::sleep(Duration::from_secs(1)).await;
    watch.abort();
    let stalls = stalls.lock().unwrap().clone();
    assert!(stalls.is_empty(), "Stalled on the way: {stalls:#?}");
}
