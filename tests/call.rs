//! `authedapi call` end to end: the operator makes the seed Ready, then the CLI turns an
//! Auth0 ID token into Cognito credentials (from the emulator) and calls a local server
//! standing in for the API endpoint, which checks the SigV4 signature with those
//! credentials (aws-sigv4 on the server side too). Public routes go unsigned, the code
//! exchange hits a stand-in token endpoint, and each error case exits non-zero with its
//! message.

mod common;

use std::process::Output;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use authedapi::api::AuthedApi;
use authedapi_rig::{Account, TestNamespace, shared};
use aws_credential_types::Credentials;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::routing::{any, post};
use kube::api::Api;
use serde_json::json;

use common::{Operator, apply, install_crd, seed_in, wait_ready};

/// Cognito GetId is unauthenticated, so the emulator serves it from its default account:
/// this test binary's objects live there (it has an emulator of its own).
const ACCOUNT: &str = "123456789012";
const CLIENT_SECRET: &str = "s3cret-never-printed";
const CODE: &str = "the-authorization-code";

/// The credentials the emulator's GetCredentialsForIdentity hands out.
fn emulator_credentials() -> Credentials {
    Credentials::new(
        "TESTACCESSKEY12345",
        "ABCSECRETKEY",
        Some("ABC12345".into()),
        None,
        "test",
    )
}

/// A JWT-shaped ID token expiring `exp_in` seconds from now (negative: expired).
fn id_token(exp_in: i64) -> String {
    use base64_engine::encode;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let header = encode(&json!({"alg": "RS256", "typ": "JWT"}).to_string());
    let claims = encode(
        &json!({"iss": "https://myorg.us.auth0.com/", "aud": "UsGRQJJz5sDfPQDs6bhQ9Oc3hNISuVif",
                "sub": "auth0|42", "exp": now + exp_in})
        .to_string(),
    );
    format!("{header}.{claims}.c2lnbmF0dXJl")
}

/// base64url without padding, enough for test tokens.
mod base64_engine {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    pub fn encode(text: &str) -> String {
        let bytes = text.as_bytes();
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let n = chunk
                .iter()
                .enumerate()
                .fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
            for i in 0..=chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            }
        }
        out
    }
}

/// What the stand-in API endpoint saw.
#[derive(Debug, Default)]
struct Seen {
    requests: Vec<(String, String, bool)>,
}

/// Re-sign the received request with the emulator's credentials at its x-amz-date, over
/// exactly the headers it says it signed, and compare.
fn signature_valid(method: &Method, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> bool {
    let Some(authorization) = headers.get("authorization").and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let Some(date) = headers.get("x-amz-date").and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let signed: Vec<&str> = authorization
        .split("SignedHeaders=")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .unwrap_or_default()
        .split(';')
        .collect();
    let host = headers
        .get("host")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let time = chrono_free_parse(date);
    let mut request = http::Request::builder()
        .method(method.as_str())
        .uri(format!("http://{host}{uri}"));
    for name in &signed {
        if matches!(*name, "x-amz-date" | "x-amz-security-token" | "host") {
            continue;
        }
        if let Some(value) = headers.get(*name) {
            request = request.header(*name, value);
        }
    }
    let mut request = request.body(body.to_vec()).unwrap();
    authedapi::call::sign_request(&mut request, &emulator_credentials(), "us-east-1", time)
        .unwrap();
    request
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        == Some(authorization)
}

/// "20261125T001122Z" -> SystemTime.
fn chrono_free_parse(date: &str) -> SystemTime {
    let n = |r: std::ops::Range<usize>| date[r].parse::<i64>().unwrap();
    let (y, m, d, hh, mm, ss) = (n(0..4), n(4..6), n(6..8), n(9..11), n(11..13), n(13..15));
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    UNIX_EPOCH + Duration::from_secs((days * 86400 + hh * 3600 + mm * 60 + ss) as u64)
}

async fn endpoint(
    State(seen): State<Arc<Mutex<Seen>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    let signed = headers.contains_key("authorization");
    let valid = signed && signature_valid(&method, &uri, &headers, &body);
    seen.lock()
        .unwrap()
        .requests
        .push((method.to_string(), uri.to_string(), valid));
    match (signed, valid) {
        (false, _) => (StatusCode::OK, "Hello stranger!".into()),
        (true, true) => (StatusCode::OK, "Hello user!".into()),
        (true, false) => (StatusCode::FORBIDDEN, "bad signature".into()),
    }
}

/// The stand-in Auth0 token endpoint: a code and the right secret give an ID token.
async fn token(body: Bytes) -> (StatusCode, String) {
    let request: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let good = request["grant_type"] == "authorization_code"
        && request["code"] == CODE
        && request["client_secret"] == CLIENT_SECRET
        && request["client_id"] == "UsGRQJJz5sDfPQDs6bhQ9Oc3hNISuVif";
    if good {
        (
            StatusCode::OK,
            json!({"id_token": id_token(3600), "access_token": "at", "token_type": "Bearer"})
                .to_string(),
        )
    } else {
        (
            StatusCode::FORBIDDEN,
            json!({"error": "invalid_grant", "error_description": "Invalid authorization code"})
                .to_string(),
        )
    }
}

/// A local server playing both the API endpoint and Auth0.
async fn stand_in() -> (String, Arc<Mutex<Seen>>) {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let app = Router::new()
        .route("/oauth/token", post(token))
        .fallback(any(endpoint))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen)
}

/// Run `authedapi call` with `args` against the rig; `env` on top.
async fn call(namespace: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    let emulator = shared::emulator();
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_authedapi"));
    command
        .arg("call")
        .args(["-n", namespace])
        .args(args)
        .env("KUBECONFIG", &shared::control_plane().kubeconfig)
        .env("AWS_ENDPOINT_URL", &emulator.endpoint)
        .env("AWS_REGION", "us-east-1")
        .env_remove("AUTHEDAPI_ID_TOKEN");
    for (k, v) in env {
        command.env(k, v);
    }
    command.output().await.expect("authedapi call runs")
}

fn text(output: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The seed Ready in a namespace of its own, in the emulator's default account.
async fn ready_seed(prefix: &str) -> (String, Operator) {
    let client = shared::client().await;
    install_crd(&client).await.unwrap();
    let ns = TestNamespace::create(&client, prefix).await.unwrap();
    let account = Account::new(&shared::emulator().endpoint, ACCOUNT);
    let config = account.sdk_config().await;
    let operator = Operator::start(&ns.name, &account, &[], &[]).await;
    let api: Api<AuthedApi> = Api::namespaced(client, &ns.name);
    apply(&api, &seed_in(&account, &config, "api").await).await;
    wait_ready(&api, "api", &operator, Duration::from_secs(60)).await;
    (ns.name, operator)
}

#[tokio::test]
async fn a_private_route_is_called_with_a_valid_sigv4_signature() {
    let (ns, _operator) = ready_seed("call-private").await;
    let (url, seen) = stand_in().await;
    let token = id_token(3600);
    let out = call(
        &ns,
        &["api", "GET", "/private", "--id-token", &token],
        &[("AUTHEDAPI_CALL_ENDPOINT", &url)],
    )
    .await;
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert_eq!(stdout, "HTTP 200\nHello user!\n");
    assert!(
        !stdout.contains(&token) && !stderr.contains(&token),
        "the token is never echoed"
    );
    let seen = seen.lock().unwrap();
    assert_eq!(seen.requests, vec![("GET".into(), "/private".into(), true)]);
}

#[tokio::test]
async fn a_public_route_is_called_unsigned() {
    let (ns, _operator) = ready_seed("call-public").await;
    let (url, seen) = stand_in().await;
    let out = call(
        &ns,
        &["api", "GET", "/public"],
        &[("AUTHEDAPI_CALL_ENDPOINT", &url)],
    )
    .await;
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert_eq!(stdout, "HTTP 200\nHello stranger!\n");
    assert_eq!(
        seen.lock().unwrap().requests,
        vec![("GET".into(), "/public".into(), false)]
    );
}

#[tokio::test]
async fn an_authorization_code_is_exchanged_for_the_id_token() {
    let (ns, _operator) = ready_seed("call-code").await;
    let (url, seen) = stand_in().await;
    let env = [
        ("AUTHEDAPI_CALL_ENDPOINT", url.as_str()),
        ("AUTHEDAPI_AUTH0_URL", url.as_str()),
        ("MY_CLIENT_SECRET", CLIENT_SECRET),
    ];
    let out = call(
        &ns,
        &[
            "api",
            "GET",
            "/private",
            "--code",
            CODE,
            "--client-secret-env",
            "MY_CLIENT_SECRET",
        ],
        &env,
    )
    .await;
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert_eq!(stdout, "HTTP 200\nHello user!\n");
    assert!(!stdout.contains(CLIENT_SECRET) && !stderr.contains(CLIENT_SECRET));
    assert_eq!(seen.lock().unwrap().requests.len(), 1);

    let out = call(
        &ns,
        &[
            "api",
            "GET",
            "/private",
            "--code",
            "wrong",
            "--client-secret-env",
            "MY_CLIENT_SECRET",
        ],
        &env,
    )
    .await;
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(
        stderr.contains("Auth0 refused the code exchange")
            && stderr.contains("Invalid authorization code"),
        "{stderr}"
    );
}

#[tokio::test]
async fn print_credentials_prints_the_temporary_credentials() {
    let (ns, _operator) = ready_seed("call-creds").await;
    let token = id_token(600);
    let out = call(
        &ns,
        &["api", "GET", "/private", "--print-credentials"],
        &[("AUTHEDAPI_ID_TOKEN", &token)],
    )
    .await;
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.contains("export AWS_ACCESS_KEY_ID=TESTACCESSKEY12345\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("export AWS_SECRET_ACCESS_KEY=ABCSECRETKEY\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("export AWS_SESSION_TOKEN=ABC12345\n"),
        "{stdout}"
    );
}

/// Each error case: exit code 2 and a message naming the problem.
async fn assert_fails(ns: &str, args: &[&str], env: &[(&str, &str)], expected: &str) {
    let out = call(ns, args, env).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stdout}{stderr}");
    assert!(stderr.contains(expected), "{expected:?} not in: {stderr}");
}

#[tokio::test]
async fn error_cases_exit_non_zero_with_a_clear_message() {
    let (ns, _operator) = ready_seed("call-errors").await;
    let (url, _seen) = stand_in().await;
    let endpoint = [("AUTHEDAPI_CALL_ENDPOINT", url.as_str())];
    let expired = id_token(-60);
    assert_fails(
        &ns,
        &["api", "GET", "/private", "--id-token", &expired],
        &endpoint,
        "expired or invalid: log in to Auth0 again",
    )
    .await;
    assert_fails(
        &ns,
        &["api", "GET", "/nowhere"],
        &endpoint,
        "no route for GET /nowhere: the spec has GET /private, GET /public",
    )
    .await;
    assert_fails(
        &ns,
        &["api", "DELETE", "/private"],
        &endpoint,
        "/private does not take DELETE: use GET",
    )
    .await;
    assert_fails(
        &ns,
        &["api", "GET", "/private"],
        &endpoint,
        "needs the caller's Auth0 ID token",
    )
    .await;
    assert_fails(
        &ns,
        &["missing", "GET", "/private"],
        &endpoint,
        "AuthedApi missing not found",
    )
    .await;

    // An object the operator has not made Ready (no operator watches this namespace).
    let client = shared::client().await;
    let idle = TestNamespace::create(&client, "call-idle").await.unwrap();
    let api: Api<AuthedApi> = Api::namespaced(client, &idle.name);
    let mut object = common::example();
    object["metadata"]["name"] = json!("idle");
    apply(&api, &object).await;
    assert_fails(
        &idle.name,
        &["idle", "GET", "/public"],
        &endpoint,
        "AuthedApi idle is not Ready",
    )
    .await;
}
