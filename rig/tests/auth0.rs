//! The Auth0 stand-in over real HTTP, as a browser, a script and an OIDC client use it:
//! every token it hands out must verify with the keys it publishes, and every refusal
//! must be the one Auth0 gives.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use authedapi_rig::Auth0StandIn;
use authedapi_rig::auth0::{Application, CODE_LIFETIME, TestUser};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HOST, LOCATION};
use serde_json::{Map, Value, json};
use sha2::{Digest as _, Sha256};
use url::Url;

const DOMAIN: &str = "rig-tenant.us.auth0.com";
const WEB: &str = "web-app-client-id";
const WEB_SECRET: &str = "web-app-client-secret-0123456789abcdef";
const WEB_CALLBACK: &str = "https://app.example.com/callback";
const NATIVE: &str = "native-app-client-id";
const NATIVE_CALLBACK: &str = "http://127.0.0.1:53682/callback";
const ROLES: &str = "https://myapp.example.com/roles";
const VERIFIER: &str = "a-pkce-code-verifier-of-at-least-forty-three-characters-0123";

fn alice() -> TestUser {
    TestUser::new("alice", "alice-correct-horse")
        .claim(ROLES, json!(["admin"]))
        .claim("email", "alice@example.com")
        .claim("email_verified", true)
}

async fn stand_in() -> Auth0StandIn {
    Auth0StandIn::start(
        DOMAIN,
        vec![
            Application::confidential(WEB, WEB_SECRET, vec![WEB_CALLBACK.to_owned()]),
            Application::public(NATIVE, vec!["http://127.0.0.1/*".to_owned()]),
        ],
        vec![alice()],
    )
    .await
    .expect("the Auth0 stand-in starts")
}

/// A client that shows redirects instead of following them, and never uses a proxy.
fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .expect("an HTTP client")
}

fn form<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier))
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The parameters of an authorization request of the web app (no PKCE).
fn web_request() -> Vec<(&'static str, String)> {
    vec![
        ("response_type", "code".into()),
        ("client_id", WEB.into()),
        ("redirect_uri", WEB_CALLBACK.into()),
        ("scope", "openid profile email".into()),
        ("state", "state-web-1".into()),
        ("nonce", "nonce-web-1".into()),
    ]
}

/// The parameters of an authorization request of the native app, with PKCE S256.
fn native_request() -> Vec<(&'static str, String)> {
    vec![
        ("response_type", "code".into()),
        ("client_id", NATIVE.into()),
        ("redirect_uri", NATIVE_CALLBACK.into()),
        ("scope", "openid profile email".into()),
        ("state", "state-native-1".into()),
        ("code_challenge", s256(VERIFIER)),
        ("code_challenge_method", "S256".into()),
    ]
}

fn pairs<'a>(params: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    params.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// `POST /authorize` as the login form (or a script) sends it.
async fn log_in(
    auth0: &Auth0StandIn,
    request: &[(&'static str, String)],
    username: &str,
    password: &str,
) -> reqwest::Response {
    let mut fields = pairs(request);
    fields.push(("username", username));
    fields.push(("password", password));
    http()
        .post(format!("{}/authorize", auth0.url()))
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(form(fields))
        .send()
        .await
        .expect("POST /authorize")
}

/// The code of a login's redirect, checking it goes to `redirect_uri` with `state`.
fn code_of(response: &reqwest::Response, redirect_uri: &str, state: &str) -> String {
    assert_eq!(response.status(), StatusCode::FOUND);
    let location = response.headers()[LOCATION].to_str().unwrap();
    let location = Url::parse(location).expect("an absolute Location");
    let expected = Url::parse(redirect_uri).unwrap();
    assert_eq!(
        (location.scheme(), location.host_str(), location.port()),
        (expected.scheme(), expected.host_str(), expected.port())
    );
    assert_eq!(location.path(), expected.path());
    let query: Vec<(String, String)> = location.query_pairs().into_owned().collect();
    let get = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(get("state").as_deref(), Some(state));
    assert_eq!(get("error"), None);
    get("code").expect("a code in the redirect")
}

/// A code for alice from the web app's flow.
async fn web_code(auth0: &Auth0StandIn) -> String {
    let response = log_in(auth0, &web_request(), "alice", "alice-correct-horse").await;
    code_of(&response, WEB_CALLBACK, "state-web-1")
}

/// A code for alice from the native app's flow.
async fn native_code(auth0: &Auth0StandIn) -> String {
    let response = log_in(auth0, &native_request(), "alice", "alice-correct-horse").await;
    code_of(&response, NATIVE_CALLBACK, "state-native-1")
}

/// `POST /oauth/token` with a form body: the status and the JSON answer.
async fn exchange(auth0: &Auth0StandIn, fields: &[(&str, &str)]) -> (StatusCode, Value) {
    let response = http()
        .post(format!("{}/oauth/token", auth0.url()))
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(form(fields.iter().copied()))
        .send()
        .await
        .expect("POST /oauth/token");
    let status = response.status();
    (status, response.json().await.expect("a JSON answer"))
}

fn web_exchange(code: &str) -> Vec<(&str, &str)> {
    vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", WEB_CALLBACK),
        ("client_id", WEB),
        ("client_secret", WEB_SECRET),
    ]
}

fn native_exchange<'a>(code: &'a str, verifier: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", NATIVE_CALLBACK),
        ("client_id", NATIVE),
        ("code_verifier", verifier),
    ]
}

fn assert_refused(answer: &(StatusCode, Value), status: StatusCode, error: &str) {
    assert_eq!(answer.0, status, "{}", answer.1);
    assert_eq!(answer.1["error"], error, "{}", answer.1);
    assert!(
        answer.1["error_description"]
            .as_str()
            .is_some_and(|d| !d.is_empty()),
        "{}",
        answer.1
    );
    assert!(answer.1.get("id_token").is_none() && answer.1.get("access_token").is_none());
}

async fn get_json(auth0: &Auth0StandIn, path: &str) -> Value {
    let response = http()
        .get(format!("{}{path}", auth0.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK, "GET {path}");
    response.json().await.unwrap()
}

/// The claims of `token` after verifying it as an OIDC client does: its `kid` looked up in
/// the published JWKS, the key built from the JWK's `n` and `e`, RS256, `iss` and `aud`.
async fn verified_claims(auth0: &Auth0StandIn, token: &str, audience: &str) -> Map<String, Value> {
    let header = jsonwebtoken::decode_header(token).expect("a JWT header");
    assert_eq!(header.alg, Algorithm::RS256);
    assert_eq!(header.typ.as_deref(), Some("JWT"));
    let kid = header.kid.expect("a kid in the header");
    let jwks = get_json(auth0, "/.well-known/jwks.json").await;
    let jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid.as_str())
        .expect("the token's kid is published");
    assert_eq!(
        (&jwk["kty"], &jwk["alg"], &jwk["use"]),
        (&json!("RSA"), &json!("RS256"), &json!("sig"))
    );
    let key =
        DecodingKey::from_rsa_components(jwk["n"].as_str().unwrap(), jwk["e"].as_str().unwrap())
            .expect("an RSA key from n and e");
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_issuer(&[format!("https://{DOMAIN}/")]);
    validation.set_audience(&[audience]);
    validation.set_required_spec_claims(&["iss", "aud", "sub", "exp"]);
    jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation)
        .expect("the token verifies with the published key")
        .claims
}

/// The hidden inputs of a login page, in order.
fn hidden_inputs(page: &str) -> Vec<(String, String)> {
    let unescape = |s: &str| {
        s.replace("&quot;", "\"")
            .replace("&#39;", "'")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&")
    };
    page.split("<input type=\"hidden\" name=\"")
        .skip(1)
        .map(|rest| {
            let (name, rest) = rest.split_once('"').unwrap();
            let value = rest.strip_prefix(" value=\"").unwrap();
            let (value, _) = value.split_once('"').unwrap();
            (unescape(name), unescape(value))
        })
        .collect()
}

#[tokio::test]
async fn discovery_and_jwks_publish_the_https_domain_urls_and_a_usable_key() {
    let auth0 = stand_in().await;
    assert!(
        auth0.url().starts_with("http://127.0.0.1:"),
        "{}",
        auth0.url()
    );
    assert_eq!(auth0.domain(), DOMAIN);
    assert_eq!(auth0.issuer(), "https://rig-tenant.us.auth0.com/");

    // As the TLS front forwards it: the tenant's Host. The answer does not depend on it.
    let response = http()
        .get(format!("{}/.well-known/openid-configuration", auth0.url()))
        .header(HOST, DOMAIN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()[CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let discovery: Value = response.json().await.unwrap();
    assert_eq!(
        discovery,
        get_json(&auth0, "/.well-known/openid-configuration").await
    );
    assert_eq!(discovery["issuer"], "https://rig-tenant.us.auth0.com/");
    assert_eq!(
        discovery["authorization_endpoint"],
        "https://rig-tenant.us.auth0.com/authorize"
    );
    assert_eq!(
        discovery["token_endpoint"],
        "https://rig-tenant.us.auth0.com/oauth/token"
    );
    assert_eq!(
        discovery["jwks_uri"],
        "https://rig-tenant.us.auth0.com/.well-known/jwks.json"
    );
    assert_eq!(
        discovery["userinfo_endpoint"],
        "https://rig-tenant.us.auth0.com/userinfo"
    );
    assert_eq!(discovery["response_types_supported"], json!(["code"]));
    assert_eq!(discovery["subject_types_supported"], json!(["public"]));
    assert_eq!(
        discovery["id_token_signing_alg_values_supported"],
        json!(["RS256"])
    );
    assert_eq!(
        discovery["code_challenge_methods_supported"],
        json!(["S256", "plain"])
    );
    let scopes = discovery["scopes_supported"].as_array().unwrap();
    for scope in ["openid", "profile", "email"] {
        assert!(
            scopes.contains(&json!(scope)),
            "{scope} in scopes_supported"
        );
    }

    let jwks = get_json(&auth0, "/.well-known/jwks.json").await;
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1, "{jwks}");
    let key = &keys[0];
    assert_eq!(key["kty"], "RSA");
    assert_eq!(key["use"], "sig");
    assert_eq!(key["alg"], "RS256");
    assert_eq!(key["kid"], auth0.current_kid().as_str());
    assert_eq!(key["e"], "AQAB");
    let modulus = URL_SAFE_NO_PAD
        .decode(key["n"].as_str().unwrap())
        .expect("n is unpadded base64url");
    assert_eq!(modulus.len(), 256, "a 2048-bit modulus");
    assert!(modulus[0] & 0x80 != 0, "no leading zero byte in n");
    let certificate = STANDARD
        .decode(key["x5c"][0].as_str().unwrap())
        .expect("x5c is standard base64 DER");
    assert!(!certificate.is_empty());
    for private in ["d", "p", "q", "dp", "dq", "qi"] {
        assert!(key.get(private).is_none(), "no private part {private}");
    }

    // Usable: a token signed by the stand-in verifies with it.
    let token = auth0
        .id_token("alice", WEB, Duration::from_secs(60), Map::new())
        .unwrap();
    let claims = verified_claims(&auth0, &token, WEB).await;
    assert_eq!(claims["sub"], "auth0|alice");
}

#[tokio::test]
async fn the_code_flow_with_a_client_secret_gives_an_id_token_that_verifies_with_the_published_jwks()
 {
    let auth0 = stand_in().await;
    let request = web_request();

    // The browser: GET /authorize shows the login form, which keeps the original query.
    let query = form(pairs(&request));
    let response = http()
        .get(format!("{}/authorize?{query}", auth0.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()[CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let page = response.text().await.unwrap();
    assert!(
        page.contains("<form method=\"post\" action=\"/authorize\">"),
        "{page}"
    );
    assert!(page.contains("name=\"username\"") && page.contains("type=\"password\""));
    let hidden = hidden_inputs(&page);
    let expected: Vec<(String, String)> = request
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect();
    assert_eq!(hidden, expected);

    // Submitting the form: the hidden inputs, username and password.
    let mut fields: Vec<(&str, &str)> = hidden
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    fields.push(("username", "alice"));
    fields.push(("password", "alice-correct-horse"));
    let response = http()
        .post(format!("{}/authorize", auth0.url()))
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(form(fields))
        .send()
        .await
        .unwrap();
    let code = code_of(&response, WEB_CALLBACK, "state-web-1");

    let (status, tokens) = exchange(&auth0, &web_exchange(&code)).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 86_400);
    assert_eq!(tokens["scope"], "openid profile email");
    let id_token = tokens["id_token"].as_str().expect("an id_token");
    let claims = verified_claims(&auth0, id_token, WEB).await;
    let header = jsonwebtoken::decode_header(id_token).unwrap();
    assert_eq!(header.kid, Some(auth0.current_kid()));
    assert_eq!(claims["iss"], "https://rig-tenant.us.auth0.com/");
    assert_eq!(claims["aud"], WEB);
    assert_eq!(claims["sub"], "auth0|alice");
    assert_eq!(claims["nonce"], "nonce-web-1");
    assert_eq!(claims[ROLES], json!(["admin"]));
    assert_eq!(claims["email"], "alice@example.com");
    assert_eq!(claims["email_verified"], true);
    let (iat, exp) = (
        claims["iat"].as_u64().unwrap(),
        claims["exp"].as_u64().unwrap(),
    );
    assert!(iat.abs_diff(now()) <= 5, "iat is now");
    assert_eq!(exp - iat, 36_000, "Auth0's ID tokens live 10 hours");

    // The access token is for /userinfo, which answers the user's claims.
    let access_token = tokens["access_token"].as_str().expect("an access_token");
    let access = verified_claims(&auth0, access_token, &format!("https://{DOMAIN}/userinfo")).await;
    assert_eq!(access["sub"], "auth0|alice");
    assert_eq!(access["scope"], "openid profile email");
    let response = http()
        .get(format!("{}/userinfo", auth0.url()))
        .header(AUTHORIZATION, format!("Bearer {access_token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let userinfo: Value = response.json().await.unwrap();
    assert_eq!(userinfo["sub"], "auth0|alice");
    assert_eq!(userinfo["email"], "alice@example.com");
    assert_eq!(userinfo[ROLES], json!(["admin"]));
}

#[tokio::test]
async fn pkce_s256_without_a_secret_works_for_a_public_app_on_any_loopback_port() {
    let auth0 = stand_in().await;
    let code = native_code(&auth0).await;
    // Auth0 takes JSON bodies at /oauth/token too.
    let body = json!({
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": NATIVE_CALLBACK,
        "client_id": NATIVE,
        "code_verifier": VERIFIER,
    });
    let response = http()
        .post(format!("{}/oauth/token", auth0.url()))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let tokens: Value = response.json().await.unwrap();
    let claims = verified_claims(&auth0, tokens["id_token"].as_str().unwrap(), NATIVE).await;
    assert_eq!(claims["sub"], "auth0|alice");
    assert_eq!(claims["aud"], NATIVE);
    assert!(claims.get("nonce").is_none(), "no nonce asked, none given");

    // Another loopback port and path, another time: the wildcard callback allows it.
    let mut request = native_request();
    request[2].1 = "http://127.0.0.1:40001/other/path".into();
    let response = log_in(&auth0, &request, "alice", "alice-correct-horse").await;
    let code = code_of(
        &response,
        "http://127.0.0.1:40001/other/path",
        "state-native-1",
    );
    let mut fields = native_exchange(&code, VERIFIER);
    fields[2].1 = "http://127.0.0.1:40001/other/path";
    let (status, tokens) = exchange(&auth0, &fields).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
}

#[tokio::test]
async fn pkce_plain_and_http_basic_client_authentication_work_for_a_confidential_app() {
    let auth0 = stand_in().await;
    let mut request = web_request();
    request.push(("code_challenge", VERIFIER.into()));
    request.push(("code_challenge_method", "plain".into()));
    let response = log_in(&auth0, &request, "alice", "alice-correct-horse").await;
    let code = code_of(&response, WEB_CALLBACK, "state-web-1");
    let basic = STANDARD.encode(format!("{WEB}:{WEB_SECRET}"));
    let response = http()
        .post(format!("{}/oauth/token", auth0.url()))
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(AUTHORIZATION, format!("Basic {basic}"))
        .body(form([
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", WEB_CALLBACK),
            ("code_verifier", VERIFIER),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let tokens: Value = response.json().await.unwrap();
    verified_claims(&auth0, tokens["id_token"].as_str().unwrap(), WEB).await;
}

#[tokio::test]
async fn an_unknown_client_gets_an_error_page_and_no_redirect() {
    let auth0 = stand_in().await;
    let mut request = web_request();
    request[1].1 = "no-such-client".into();
    let response = http()
        .get(format!(
            "{}/authorize?{}",
            auth0.url(),
            form(pairs(&request))
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(response.headers().get(LOCATION).is_none());
    let page = response.text().await.unwrap();
    assert!(page.contains("Unknown client: no-such-client"), "{page}");
    assert!(
        !page.contains("<form"),
        "no login form for an unknown client"
    );

    // Not even with a user's right password.
    let response = log_in(&auth0, &request, "alice", "alice-correct-horse").await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(response.headers().get(LOCATION).is_none());

    // And no client_id at all.
    request.remove(1);
    let response = log_in(&auth0, &request, "alice", "alice-correct-horse").await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(response.headers().get(LOCATION).is_none());

    // At the token endpoint, as Auth0 answers an unknown client.
    let code = web_code(&auth0).await;
    let mut fields = web_exchange(&code);
    fields[3].1 = "no-such-client";
    let answer = exchange(&auth0, &fields).await;
    assert_refused(&answer, StatusCode::UNAUTHORIZED, "access_denied");
    assert_eq!(answer.1["error_description"], "Unauthorized");
}

#[tokio::test]
async fn an_unregistered_redirect_uri_gets_an_error_page_and_no_redirect() {
    let auth0 = stand_in().await;
    for (client, redirect_uri) in [
        (WEB, "https://evil.example.com/callback"),
        (WEB, "https://app.example.com/callback/other"),
        (WEB, "https://app.example.com/callback?next=evil"),
        (NATIVE, "http://localhost:53682/callback"),
        (NATIVE, "https://127.0.0.1:53682/callback"),
        (NATIVE, "http://127.0.0.1.evil.example/callback"),
        (NATIVE, WEB_CALLBACK),
    ] {
        let mut request = if client == WEB {
            web_request()
        } else {
            native_request()
        };
        request[2].1 = redirect_uri.into();
        let response = http()
            .get(format!(
                "{}/authorize?{}",
                auth0.url(),
                form(pairs(&request))
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{redirect_uri}");
        assert!(response.headers().get(LOCATION).is_none(), "{redirect_uri}");
        let page = response.text().await.unwrap();
        assert!(page.contains("Callback URL mismatch"), "{page}");

        let response = log_in(&auth0, &request, "alice", "alice-correct-horse").await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{redirect_uri}");
        assert!(response.headers().get(LOCATION).is_none(), "{redirect_uri}");
    }
    // An error of a request whose redirect is unregistered never goes to it either.
    let mut request = web_request();
    request[0].1 = "token".into();
    request[2].1 = "https://evil.example.com/callback".into();
    let response = log_in(&auth0, &request, "alice", "alice-correct-horse").await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(response.headers().get(LOCATION).is_none());
}

#[tokio::test]
async fn other_authorize_errors_go_back_to_the_registered_redirect_with_the_state() {
    let auth0 = stand_in().await;
    for (name, value, error) in [
        ("response_type", "token", "unsupported_response_type"),
        ("response_type", "", "invalid_request"),
        ("response_mode", "form_post", "invalid_request"),
        ("code_challenge_method", "S512", "invalid_request"),
    ] {
        let mut request = web_request();
        request.retain(|(k, _)| *k != name);
        request.push((name, value.into()));
        if name == "code_challenge_method" {
            request.push(("code_challenge", s256(VERIFIER)));
        }
        let response = log_in(&auth0, &request, "alice", "alice-correct-horse").await;
        assert_eq!(response.status(), StatusCode::FOUND, "{name}={value}");
        let location = Url::parse(response.headers()[LOCATION].to_str().unwrap()).unwrap();
        assert!(location.as_str().starts_with(WEB_CALLBACK), "{location}");
        let query: Map<String, Value> = location
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
            .collect();
        assert_eq!(query["error"], error, "{name}={value}");
        assert!(query.contains_key("error_description"));
        assert_eq!(query["state"], "state-web-1");
        assert!(!query.contains_key("code"));
    }
}

#[tokio::test]
async fn a_wrong_password_shows_the_login_page_again_with_401_and_no_code() {
    let auth0 = stand_in().await;
    for (username, password) in [
        ("alice", "not-alices-password"),
        ("alice", ""),
        ("mallory", "alice-correct-horse"),
    ] {
        let response = log_in(&auth0, &web_request(), username, password).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{username}");
        assert!(response.headers().get(LOCATION).is_none());
        let page = response.text().await.unwrap();
        assert!(page.contains("Wrong email or password."), "{page}");
        assert!(page.contains(&format!("name=\"username\" value=\"{username}\"")));
        if !password.is_empty() {
            assert!(!page.contains(password), "the password is not echoed");
        }
        let hidden = hidden_inputs(&page);
        assert_eq!(
            hidden.len(),
            web_request().len(),
            "the request is kept: {hidden:?}"
        );
    }
    // The right one still works afterwards.
    web_code(&auth0).await;
}

#[tokio::test]
async fn a_code_works_only_once() {
    let auth0 = stand_in().await;
    let code = web_code(&auth0).await;
    let (status, tokens) = exchange(&auth0, &web_exchange(&code)).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let answer = exchange(&auth0, &web_exchange(&code)).await;
    assert_refused(&answer, StatusCode::FORBIDDEN, "invalid_grant");
    assert_eq!(answer.1["error_description"], "Invalid authorization code");

    // A code nobody issued, and another client's code.
    let answer = exchange(&auth0, &web_exchange("made-up-code")).await;
    assert_refused(&answer, StatusCode::FORBIDDEN, "invalid_grant");
    let code = native_code(&auth0).await;
    let answer = exchange(&auth0, &web_exchange(&code)).await;
    assert_refused(&answer, StatusCode::FORBIDDEN, "invalid_grant");
}

#[tokio::test]
async fn a_redirect_uri_other_than_the_authorize_one_is_refused_at_the_token_endpoint() {
    let auth0 = stand_in().await;
    let code = web_code(&auth0).await;
    let mut fields = web_exchange(&code);
    fields[2].1 = "https://app.example.com/other-callback";
    let answer = exchange(&auth0, &fields).await;
    assert_refused(&answer, StatusCode::FORBIDDEN, "invalid_grant");
    // The attempt spent the code.
    let answer = exchange(&auth0, &web_exchange(&code)).await;
    assert_refused(&answer, StatusCode::FORBIDDEN, "invalid_grant");

    // A redirect_uri left out is a missing parameter.
    let code = web_code(&auth0).await;
    let mut fields = web_exchange(&code);
    fields.remove(2);
    assert_refused(
        &exchange(&auth0, &fields).await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    );
}

#[tokio::test]
async fn a_wrong_or_missing_client_secret_is_refused_and_leaves_the_code_unspent() {
    let auth0 = stand_in().await;
    let code = web_code(&auth0).await;
    let mut fields = web_exchange(&code);
    fields[4].1 = "not-the-secret";
    let answer = exchange(&auth0, &fields).await;
    assert_refused(&answer, StatusCode::UNAUTHORIZED, "access_denied");
    assert_eq!(answer.1["error_description"], "Unauthorized");

    fields.remove(4);
    let answer = exchange(&auth0, &fields).await;
    assert_refused(&answer, StatusCode::UNAUTHORIZED, "access_denied");

    // A wrong secret over HTTP Basic too.
    let basic = STANDARD.encode(format!("{WEB}:not-the-secret"));
    let response = http()
        .post(format!("{}/oauth/token", auth0.url()))
        .header(AUTHORIZATION, format!("Basic {basic}"))
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(form(fields.iter().copied()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    // The client never authenticated, so the code was not spent.
    let (status, tokens) = exchange(&auth0, &web_exchange(&code)).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
}

#[tokio::test]
async fn a_wrong_code_verifier_is_refused() {
    let auth0 = stand_in().await;
    let code = native_code(&auth0).await;
    let wrong = "another-pkce-code-verifier-of-at-least-forty-three-characters";
    let answer = exchange(&auth0, &native_exchange(&code, wrong)).await;
    assert_refused(&answer, StatusCode::FORBIDDEN, "invalid_grant");
    assert_eq!(
        answer.1["error_description"],
        "Failed to verify code verifier"
    );
    // The attempt spent the code: the right verifier is too late now.
    let answer = exchange(&auth0, &native_exchange(&code, VERIFIER)).await;
    assert_refused(&answer, StatusCode::FORBIDDEN, "invalid_grant");

    // The challenge itself is no verifier for S256.
    let code = native_code(&auth0).await;
    let challenge = s256(VERIFIER);
    let answer = exchange(&auth0, &native_exchange(&code, &challenge)).await;
    assert_refused(&answer, StatusCode::FORBIDDEN, "invalid_grant");

    // No verifier at all.
    let code = native_code(&auth0).await;
    let mut fields = native_exchange(&code, VERIFIER);
    fields.pop();
    let answer = exchange(&auth0, &fields).await;
    assert_refused(&answer, StatusCode::BAD_REQUEST, "invalid_request");

    // A public app whose flow did not use PKCE has nothing to authenticate with.
    let mut request = native_request();
    request.truncate(5);
    let response = log_in(&auth0, &request, "alice", "alice-correct-horse").await;
    let code = code_of(&response, NATIVE_CALLBACK, "state-native-1");
    let mut fields = native_exchange(&code, VERIFIER);
    fields.pop();
    let answer = exchange(&auth0, &fields).await;
    assert_refused(&answer, StatusCode::UNAUTHORIZED, "access_denied");
}

#[tokio::test]
async fn a_code_expires_after_ten_minutes() {
    let auth0 = stand_in().await;
    assert_eq!(CODE_LIFETIME, Duration::from_secs(600));
    let fresh_enough = web_code(&auth0).await;
    auth0.age_codes(CODE_LIFETIME - Duration::from_secs(1));
    let (status, tokens) = exchange(&auth0, &web_exchange(&fresh_enough)).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "a code 9:59 old still works: {tokens}"
    );

    let expired = web_code(&auth0).await;
    auth0.age_codes(CODE_LIFETIME);
    let answer = exchange(&auth0, &web_exchange(&expired)).await;
    assert_refused(&answer, StatusCode::FORBIDDEN, "invalid_grant");
    assert_eq!(answer.1["error_description"], "Invalid authorization code");

    // Codes issued after the clock moved are fresh.
    let code = web_code(&auth0).await;
    let (status, tokens) = exchange(&auth0, &web_exchange(&code)).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
}

#[tokio::test]
async fn id_token_tokens_verify_with_the_published_jwks_the_same_way() {
    let auth0 = stand_in().await;
    let mut extra = Map::new();
    extra.insert("nonce".into(), "nonce-from-test".into());
    extra.insert("https://myapp.example.com/tenant".into(), "t1".into());
    let token = auth0
        .id_token("alice", "any-client-id", Duration::from_secs(300), extra)
        .unwrap();
    let claims = verified_claims(&auth0, &token, "any-client-id").await;
    assert_eq!(claims["iss"], "https://rig-tenant.us.auth0.com/");
    assert_eq!(claims["sub"], "auth0|alice");
    assert_eq!(claims["aud"], "any-client-id");
    assert_eq!(claims["nonce"], "nonce-from-test");
    assert_eq!(claims[ROLES], json!(["admin"]));
    assert_eq!(claims["https://myapp.example.com/tenant"], "t1");
    let (iat, exp) = (
        claims["iat"].as_u64().unwrap(),
        claims["exp"].as_u64().unwrap(),
    );
    assert_eq!(exp - iat, 300);
    assert!(iat.abs_diff(now()) <= 5);

    // `extra` goes on top of everything: a forged issuer, signed with the real key.
    let mut forged = Map::new();
    forged.insert("iss".into(), "https://evil.example.com/".into());
    let token = auth0
        .id_token("alice", WEB, Duration::from_secs(300), forged)
        .unwrap();
    let unverified = jsonwebtoken::dangerous::insecure_decode::<Map<String, Value>>(&token)
        .unwrap()
        .claims;
    assert_eq!(unverified["iss"], "https://evil.example.com/");

    // Users added later log in and get tokens; unknown users get an error.
    assert!(
        auth0
            .id_token("bob", WEB, Duration::from_secs(60), Map::new())
            .is_err()
    );
    auth0.add_user(TestUser::new("bob", "bob-password").claim(ROLES, json!(["reader"])));
    let token = auth0
        .id_token("bob", WEB, Duration::from_secs(60), Map::new())
        .unwrap();
    assert_eq!(
        verified_claims(&auth0, &token, WEB).await[ROLES],
        json!(["reader"])
    );
    let response = log_in(&auth0, &web_request(), "bob", "bob-password").await;
    let code = code_of(&response, WEB_CALLBACK, "state-web-1");
    let (status, tokens) = exchange(&auth0, &web_exchange(&code)).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let claims = verified_claims(&auth0, tokens["id_token"].as_str().unwrap(), WEB).await;
    assert_eq!(claims["sub"], "auth0|bob");
}

#[tokio::test]
async fn a_rotated_key_is_published_beside_the_old_one_and_signs_from_then_on() {
    let auth0 = stand_in().await;
    let old_kid = auth0.current_kid();
    let old = auth0
        .id_token("alice", WEB, Duration::from_secs(60), Map::new())
        .unwrap();
    let new_kid = auth0.rotate_key().unwrap();
    assert_ne!(new_kid, old_kid);
    assert_eq!(auth0.current_kid(), new_kid);
    let jwks = get_json(&auth0, "/.well-known/jwks.json").await;
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(kids, [new_kid.as_str(), old_kid.as_str()]);
    verified_claims(&auth0, &old, WEB).await;
    let new = auth0
        .id_token("alice", WEB, Duration::from_secs(60), Map::new())
        .unwrap();
    assert_eq!(
        jsonwebtoken::decode_header(&new).unwrap().kid,
        Some(new_kid)
    );
    verified_claims(&auth0, &new, WEB).await;
}

#[tokio::test]
async fn the_token_endpoint_refuses_other_grants_and_malformed_requests() {
    let auth0 = stand_in().await;
    let code = web_code(&auth0).await;

    let mut fields = web_exchange(&code);
    fields[0].1 = "password";
    let answer = exchange(&auth0, &fields).await;
    assert_refused(&answer, StatusCode::FORBIDDEN, "unsupported_grant_type");
    assert_eq!(
        answer.1["error_description"],
        "Unsupported grant type: password"
    );

    for missing in ["grant_type", "code", "client_id"] {
        let fields: Vec<(&str, &str)> = web_exchange(&code)
            .into_iter()
            .filter(|(k, _)| *k != missing)
            .collect();
        let answer = exchange(&auth0, &fields).await;
        assert_refused(&answer, StatusCode::BAD_REQUEST, "invalid_request");
        assert_eq!(
            answer.1["error_description"],
            format!("Missing required parameter: {missing}")
        );
    }

    let mut fields = web_exchange(&code);
    fields.push(("code", "a-second-code"));
    assert_refused(
        &exchange(&auth0, &fields).await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    );

    let response = http()
        .post(format!("{}/oauth/token", auth0.url()))
        .header(CONTENT_TYPE, "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request");

    // Two ways of client authentication at once.
    let basic = STANDARD.encode(format!("{WEB}:{WEB_SECRET}"));
    let response = http()
        .post(format!("{}/oauth/token", auth0.url()))
        .header(AUTHORIZATION, format!("Basic {basic}"))
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(form(web_exchange(&code)))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);

    // None of these spent the code.
    let (status, tokens) = exchange(&auth0, &web_exchange(&code)).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
}

#[tokio::test]
async fn userinfo_needs_an_access_token_of_this_tenant() {
    let auth0 = stand_in().await;
    let id_token = auth0
        .id_token("alice", WEB, Duration::from_secs(60), Map::new())
        .unwrap();
    for authorization in [
        None,
        Some("Bearer not-a-token".to_owned()),
        Some(format!("Bearer {id_token}")),
    ] {
        let mut request = http().get(format!("{}/userinfo", auth0.url()));
        if let Some(authorization) = authorization {
            request = request.header(AUTHORIZATION, authorization);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert!(response.headers().contains_key("www-authenticate"));
    }
}

#[tokio::test]
async fn the_stand_in_stops_serving_when_dropped() {
    let auth0 = stand_in().await;
    let url = auth0.url().to_owned();
    get_json(&auth0, "/.well-known/jwks.json").await;
    drop(auth0);
    for _ in 0..200 {
        if http()
            .get(format!("{url}/.well-known/jwks.json"))
            .send()
            .await
            .is_err()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the stand-in still answers 2 s after it was dropped");
}

#[test]
fn a_detached_stand_in_serves_any_runtime() {
    let auth0 = Auth0StandIn::start_detached(DOMAIN, vec![], vec![alice()]).unwrap();
    for _ in 0..2 {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let discovery = runtime.block_on(get_json(&auth0, "/.well-known/openid-configuration"));
        assert_eq!(discovery["issuer"], "https://rig-tenant.us.auth0.com/");
    }
}

/// The answers around the endpoints, as the hand-written router gave them before the
/// routes moved onto axum: 404 elsewhere, a preflight on any path, 405 (HEAD included) to
/// a method an endpoint does not take, 413 for a body over 64 KiB whatever the path, and
/// the origin allowed to read every answer but the login page's.
#[tokio::test]
async fn paths_methods_bodies_and_origins_around_the_endpoints() {
    let auth0 = stand_in().await;
    let url = |path: &str| format!("{}{path}", auth0.url());

    let response = http().get(url("/nowhere")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(response.text().await.unwrap(), "Not Found");
    let response = http().get(url("/authorize/")).send().await.unwrap();
    assert_eq!(
        response.status(),
        StatusCode::NOT_FOUND,
        "no trailing slash"
    );

    for path in ["/nowhere", "/oauth/token"] {
        let response = http()
            .request(reqwest::Method::OPTIONS, url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NO_CONTENT, "{path}");
        assert_eq!(
            response.headers()["access-control-allow-methods"],
            "GET, POST"
        );
    }

    for (method, path, allow) in [
        (reqwest::Method::GET, "/oauth/token", "POST"),
        (reqwest::Method::PUT, "/authorize", "GET, POST"),
        (reqwest::Method::DELETE, "/.well-known/jwks.json", "GET"),
    ] {
        let response = http().request(method, url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED, "{path}");
        assert_eq!(response.headers()["allow"], allow, "{path}");
        assert_eq!(response.text().await.unwrap(), "Method Not Allowed");
    }
    let response = http()
        .head(url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);

    for path in ["/oauth/token", "/nowhere"] {
        let response = http()
            .post(url(path))
            .body(vec![b'a'; 64 * 1024 + 1])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE, "{path}");
    }

    let origin = "https://app.example.com";
    let response = http()
        .get(url("/.well-known/jwks.json"))
        .header("origin", origin)
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["access-control-allow-origin"], origin);
    assert_eq!(response.headers()["vary"], "Origin");
    let response = http()
        .get(url("/authorize"))
        .header("origin", origin)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST, "no client_id");
    assert!(
        !response
            .headers()
            .contains_key("access-control-allow-origin")
    );
}
