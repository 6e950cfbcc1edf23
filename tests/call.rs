//! `authedapi call` end to end on the rig's web: the real execute-api data plane (IAM,
//! JWT and public routes), the Auth0 stand-in (a login from the terminal, a code exchange)
//! and Cognito's credential flow. The command reaches them the standard way (HTTPS_PROXY
//! and the front door's CA), exactly as it would reach AWS and Auth0.

mod common;

use std::process::{Output, Stdio};
use std::time::Duration;

use authedapi::api::AuthedApi;
use authedapi_rig::{TestNamespace, shared};
use kube::api::Api;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};

use common::web::{call_command, id_token, log_in_from_terminal};
use common::{Operator, apply, install_crd, seed_in, wait_ready};

const PASSWORD: &str = "correct horse battery staple";

async fn call(namespace: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    call_command(namespace, args, env)
        .output()
        .await
        .expect("authedapi call runs")
}

fn text(output: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The seed (its /private on iam, /public on none) plus a JWT route, Ready, with the
/// stand-in as its Auth0 app.
async fn ready_seed(prefix: &str) -> (String, Operator) {
    let client = shared::client().await;
    install_crd(&client).await.unwrap();
    let ns = TestNamespace::create(&client, prefix).await.unwrap();
    let account = shared::account();
    let config = account.sdk_config().await;
    shared::auth0();
    let mut seed = seed_in(&account, &config, "api").await;
    seed["spec"]["auth0"] =
        json!({"domain": shared::AUTH0_DOMAIN, "clientId": shared::AUTH0_CLIENT_ID});
    let private = seed["spec"]["routes"][0]["target"].clone();
    seed["spec"]["routes"]
        .as_array_mut()
        .unwrap()
        .push(json!({"route": "GET /token", "authorization": "jwt", "target": private}));
    let operator = Operator::start(&ns.name, &account, &[], &[]).await;
    let api: Api<AuthedApi> = Api::namespaced(client, &ns.name);
    apply(&api, &seed).await;
    wait_ready(&api, "api", &operator, Duration::from_secs(60)).await;
    (ns.name, operator)
}

#[tokio::test]
async fn iam_jwt_and_public_routes_are_called_as_their_users_call_them() {
    let (ns, _operator) = ready_seed("call-routes").await;
    let token = id_token("caller@example.com", &[]);
    for (route, expected) in [
        ("/private", "HTTP 200\nHello user!\n"),
        ("/token", "HTTP 200\nHello user!\n"),
    ] {
        let out = call(&ns, &["api", "GET", route, "--id-token", &token], &[]).await;
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "{route}: {stdout}{stderr}");
        assert_eq!(stdout, expected, "{route}");
        assert!(
            !stdout.contains(&token) && !stderr.contains(&token),
            "the token is never echoed"
        );
    }
    let out = call(&ns, &["api", "GET", "/public"], &[]).await;
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert_eq!(stdout, "HTTP 200\nHello stranger!\n");
    // What the data plane refuses, the command reports with its status and exit code 1.
    let other = shared::auth0()
        .id_token(
            "caller@example.com",
            "another-app",
            Duration::from_secs(600),
            Default::default(),
        )
        .unwrap();
    let out = call(&ns, &["api", "GET", "/token", "--id-token", &other], &[]).await;
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out).0, "HTTP 401\n{\"message\":\"Unauthorized\"}\n");
}

#[tokio::test]
async fn login_runs_the_code_flow_from_the_terminal() {
    let (ns, _operator) = ready_seed("call-login").await;
    shared::auth0().add_user(authedapi_rig::auth0::TestUser::new(
        "terminal@example.com",
        PASSWORD,
    ));
    let port = authedapi_rig::free_port().unwrap();
    let redirect = format!("http://127.0.0.1:{port}/callback");
    let mut child = call_command(
        &ns,
        &[
            "api",
            "GET",
            "/private",
            "--login",
            "--client-secret-env",
            "APP_SECRET",
            "--redirect-uri",
            &redirect,
        ],
        &[("APP_SECRET", shared::AUTH0_CLIENT_SECRET)],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    // The command prints the login URL; a person opens it, logs in, and the browser comes
    // back to the redirect URI. Here the web's client is that browser.
    let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut printed = String::new();
    let url = loop {
        let line = tokio::time::timeout(Duration::from_secs(30), stderr.next_line())
            .await
            .expect("the login URL within 30s")
            .unwrap()
            .expect("the command prints the login URL");
        printed.push_str(&line);
        printed.push('\n');
        if let Some(url) = line
            .trim()
            .strip_prefix("https://")
            .map(|u| format!("https://{u}"))
        {
            break url;
        }
    };
    assert!(
        url.starts_with(&format!("https://{}/authorize?", shared::AUTH0_DOMAIN)),
        "{printed}"
    );
    let browser = shared::web().http_client().unwrap();
    assert_eq!(
        browser.get(&url).send().await.unwrap().status(),
        200,
        "the login page"
    );
    let back = log_in_from_terminal(
        &url,
        &format!("https://{}/authorize", shared::AUTH0_DOMAIN),
        "terminal@example.com",
        PASSWORD,
        &redirect,
    )
    .await;
    let out = child.wait_with_output().await.unwrap();
    let (stdout, _) = text(&out);
    assert!(out.status.success(), "{stdout}");
    assert_eq!(stdout, "HTTP 200\nHello user!\n");
    let code = url::Url::parse(&back)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    assert!(
        !printed.contains(&code) && !printed.contains(shared::AUTH0_CLIENT_SECRET),
        "nothing secret printed"
    );
}

#[tokio::test]
async fn an_authorization_code_is_exchanged_for_the_id_token() {
    let (ns, _operator) = ready_seed("call-code").await;
    shared::auth0().add_user(authedapi_rig::auth0::TestUser::new(
        "code@example.com",
        PASSWORD,
    ));
    // A code, as the seed gets one: log in with the browser, copy it from the callback.
    let browser = shared::web().http_client().unwrap();
    let login = browser
        .post(format!("https://{}/authorize", shared::AUTH0_DOMAIN))
        .form(&[
            ("response_type", "code"),
            ("client_id", shared::AUTH0_CLIENT_ID),
            ("redirect_uri", "http://localhost:5678"),
            ("scope", "openid profile"),
            ("username", "code@example.com"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    let location = login.headers()["location"].to_str().unwrap().to_owned();
    let code = url::Url::parse(&location)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let env = [("MY_CLIENT_SECRET", shared::AUTH0_CLIENT_SECRET)];
    let args = |code: &str| {
        vec![
            "api".to_owned(),
            "GET".into(),
            "/private".into(),
            "--code".into(),
            code.to_owned(),
            "--client-secret-env".into(),
            "MY_CLIENT_SECRET".into(),
        ]
    };
    let first: Vec<String> = args(&code);
    let out = call(
        &ns,
        &first.iter().map(String::as_str).collect::<Vec<_>>(),
        &env,
    )
    .await;
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert_eq!(stdout, "HTTP 200\nHello user!\n");
    assert!(
        !stdout.contains(shared::AUTH0_CLIENT_SECRET)
            && !stderr.contains(shared::AUTH0_CLIENT_SECRET)
    );
    // A code works once, as at Auth0.
    let out = call(
        &ns,
        &first.iter().map(String::as_str).collect::<Vec<_>>(),
        &env,
    )
    .await;
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr.contains("Auth0 refused the code exchange")
            && stderr.contains("Invalid authorization code"),
        "{stderr}"
    );
}

#[tokio::test]
async fn print_credentials_prints_working_temporary_credentials() {
    let (ns, _operator) = ready_seed("call-creds").await;
    let token = id_token("creds@example.com", &[]);
    let out = call(
        &ns,
        &["api", "GET", "/private", "--print-credentials"],
        &[("AUTHEDAPI_ID_TOKEN", &token)],
    )
    .await;
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    let exports: std::collections::BTreeMap<&str, &str> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("export ")?.split_once('='))
        .collect();
    assert!(exports["AWS_ACCESS_KEY_ID"].starts_with("ASIA"), "{stdout}");
    assert_eq!(exports["AWS_REGION"], "us-east-1");
    assert!(
        !exports["AWS_SECRET_ACCESS_KEY"].is_empty() && !exports["AWS_SESSION_TOKEN"].is_empty()
    );
}

/// Each error case: exit code 2 and a message naming the problem.
async fn assert_fails(ns: &str, args: &[&str], expected: &str) {
    let out = call(ns, args, &[]).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stdout}{stderr}");
    assert!(stderr.contains(expected), "{expected:?} not in: {stderr}");
}

#[tokio::test]
async fn error_cases_exit_non_zero_with_a_clear_message() {
    let (ns, _operator) = ready_seed("call-errors").await;
    id_token("late@example.com", &[]);
    let expired = shared::auth0()
        .id_token(
            "late@example.com",
            shared::AUTH0_CLIENT_ID,
            Duration::from_secs(600),
            serde_json::Map::from_iter([("exp".to_owned(), json!(1_600_000_000))]),
        )
        .unwrap();
    assert_fails(
        &ns,
        &["api", "GET", "/private", "--id-token", &expired],
        "expired or invalid: log in to Auth0 again",
    )
    .await;
    assert_fails(
        &ns,
        &["api", "GET", "/nowhere"],
        "no route for GET /nowhere: the spec has GET /private, GET /public, GET /token",
    )
    .await;
    assert_fails(
        &ns,
        &["api", "DELETE", "/private"],
        "/private does not take DELETE: use GET",
    )
    .await;
    assert_fails(
        &ns,
        &["api", "GET", "/private"],
        "needs the caller's Auth0 ID token: log in with --login",
    )
    .await;
    assert_fails(
        &ns,
        &["missing", "GET", "/private"],
        "AuthedApi missing not found",
    )
    .await;
    assert_fails(
        &ns,
        &[
            "api",
            "GET",
            "/private",
            "--login",
            "--redirect-uri",
            "https://app.example.com/cb",
        ],
        "must be http://localhost:PORT",
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
        "AuthedApi idle is not Ready",
    )
    .await;
}
