//! The front door: curl and a Rust HTTPS client reach the real services' HTTPS names
//! through it, verified against the rig's CA; it refuses hosts without a route and says
//! 502 when an upstream is down.

use std::convert::Infallible;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use authedapi_rig::front_door::FrontDoor;
use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::Command;

const API_HOST: &str = "abc123.execute-api.us-east-1.amazonaws.com";
const API_PATTERN: &str = "*.execute-api.us-east-1.amazonaws.com";
const TENANT_HOST: &str = "rig-tenant.us.auth0.com";

/// A plain-HTTP server on loopback that answers every request with JSON naming itself
/// and echoing the request's method, path and query, `Host`, headers and body.
struct Echo {
    url: String,
    requests: Arc<AtomicUsize>,
}

impl Echo {
    async fn start(name: &'static str) -> Echo {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(AtomicUsize::new(0));
        let counted = requests.clone();
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let counted = counted.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        counted.fetch_add(1, Ordering::SeqCst);
                        echo(name, request)
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Echo { url, requests }
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

async fn echo(name: &str, request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let headers: serde_json::Map<String, Value> = parts
        .headers
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), json!(v.to_str().unwrap_or("?"))))
        .collect();
    let reply = json!({
        "server": name,
        "method": parts.method.as_str(),
        "path": parts.uri.path_and_query().map_or("/", |p| p.as_str()),
        "host": parts.headers.get("host").and_then(|v| v.to_str().ok()),
        "headers": headers,
        "body": String::from_utf8_lossy(&body),
        "body_len": body.len(),
    });
    Ok(Response::builder()
        .header("content-type", "application/json")
        .header("x-echo", name)
        .body(Full::new(Bytes::from(reply.to_string())))
        .unwrap())
}

/// A front door routing the execute-api wildcard and the Auth0 tenant to their upstreams.
async fn front_door(dir: &tempfile::TempDir, api: &Echo, tenant: &Echo) -> FrontDoor {
    FrontDoor::start_with_routes(
        dir.path(),
        [
            (API_PATTERN, api.url.as_str()),
            (TENANT_HOST, tenant.url.as_str()),
        ],
    )
    .await
    .unwrap()
}

struct CurlOutput {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Run curl with `env` (only; the test's proxy and CA variables are removed first).
async fn curl(env: &[(String, String)], args: &[&str]) -> CurlOutput {
    let mut command = Command::new("curl");
    for name in [
        "HTTPS_PROXY",
        "https_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "ALL_PROXY",
        "all_proxy",
        "NO_PROXY",
        "no_proxy",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "CURL_CA_BUNDLE",
        "CURL_HOME",
    ] {
        command.env_remove(name);
    }
    // No ~/.curlrc: the arguments here are all curl gets.
    command.arg("-q");
    let output = command
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .args(["--silent", "--show-error", "--max-time", "20"])
        .args(args)
        .kill_on_drop(true)
        .output()
        .await
        .expect("curl runs (it is /usr/bin/curl on the rig's machines)");
    CurlOutput {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn parse(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not the echo's JSON ({e}): {body}"))
}

#[tokio::test]
async fn curl_with_the_client_env_reaches_an_execute_api_name_verified_against_the_rig_ca() {
    let dir = tempfile::tempdir().unwrap();
    let (api, tenant) = (Echo::start("api").await, Echo::start("tenant").await);
    let door = front_door(&dir, &api, &tenant).await;

    let url = format!("https://{API_HOST}/public?x=1");
    let out = curl(
        &door.client_env(),
        &[
            "--fail-with-body",
            "--write-out",
            "\n%{http_code} %{ssl_verify_result}",
            &url,
        ],
    )
    .await;
    assert_eq!(
        out.code,
        Some(0),
        "curl failed: {}{}",
        out.stderr,
        out.stdout
    );
    let (body, status) = out.stdout.rsplit_once('\n').unwrap();
    assert_eq!(status, "200 0", "status and TLS verification result");
    let echo = parse(body);
    assert_eq!(echo["server"], "api");
    assert_eq!(echo["method"], "GET");
    assert_eq!(echo["path"], "/public?x=1");
    assert_eq!(echo["host"], API_HOST);
    assert_eq!(api.requests(), 1);
    assert_eq!(tenant.requests(), 0);
    assert_eq!(door.tunnels_opened(), 1);
}

#[tokio::test]
async fn curl_with_proxy_and_cacert_flags_reaches_an_auth0_tenant_by_its_exact_route() {
    let dir = tempfile::tempdir().unwrap();
    let (api, tenant) = (Echo::start("api").await, Echo::start("tenant").await);
    let door = front_door(&dir, &api, &tenant).await;

    let url = format!("https://{TENANT_HOST}/.well-known/openid-configuration");
    let ca = door.ca_pem_path().display().to_string();
    let proxy = door.proxy_url();
    let out = curl(
        &[],
        &["--fail-with-body", "--proxy", &proxy, "--cacert", &ca, &url],
    )
    .await;
    assert_eq!(
        out.code,
        Some(0),
        "curl failed: {}{}",
        out.stderr,
        out.stdout
    );
    let echo = parse(&out.stdout);
    assert_eq!(echo["server"], "tenant");
    assert_eq!(echo["host"], TENANT_HOST);
    assert_eq!(echo["path"], "/.well-known/openid-configuration");
    assert_eq!(api.requests(), 0);
}

#[tokio::test]
async fn a_rust_https_client_with_the_proxy_and_the_ca_posts_twice_over_one_tunnel() {
    let dir = tempfile::tempdir().unwrap();
    let (api, tenant) = (Echo::start("api").await, Echo::start("tenant").await);
    let door = front_door(&dir, &api, &tenant).await;

    let ca = std::fs::read(door.ca_pem_path()).unwrap();
    let client = reqwest::Client::builder()
        .no_proxy()
        .proxy(reqwest::Proxy::https(door.proxy_url()).unwrap())
        .tls_certs_only([reqwest::Certificate::from_pem(&ca).unwrap()])
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    for (i, body) in ["first body", "second body"].into_iter().enumerate() {
        let response = client
            .post(format!("https://{API_HOST}/items/{i}?kind=post"))
            .header("x-custom", "kept")
            .header("authorization", "Bearer token-1")
            .header("proxy-authorization", "not for the upstream")
            .header("keep-alive", "timeout=5")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["x-echo"], "api");
        let echo: Value = parse(&response.text().await.unwrap());
        assert_eq!(echo["method"], "POST");
        assert_eq!(echo["path"], format!("/items/{i}?kind=post"));
        assert_eq!(echo["host"], API_HOST);
        assert_eq!(echo["body"], body);
        let headers = &echo["headers"];
        assert_eq!(headers["x-custom"], "kept");
        assert_eq!(headers["authorization"], "Bearer token-1");
        assert_eq!(headers["content-length"], body.len().to_string());
        assert!(headers.get("proxy-authorization").is_none(), "{headers}");
        assert!(headers.get("keep-alive").is_none(), "{headers}");
    }
    assert_eq!(api.requests(), 2);
    assert_eq!(
        door.tunnels_opened(),
        1,
        "both requests went over one tunnel"
    );
}

#[tokio::test]
async fn plain_http_through_the_proxy_reaches_a_routed_host_with_its_host_header() {
    let dir = tempfile::tempdir().unwrap();
    let (api, tenant) = (Echo::start("api").await, Echo::start("tenant").await);
    let door = front_door(&dir, &api, &tenant).await;

    let url = format!("http://{API_HOST}/plain?y=2");
    let out = curl(
        &[("http_proxy".to_owned(), door.proxy_url())],
        &["--fail-with-body", "--data", "plain body", &url],
    )
    .await;
    assert_eq!(
        out.code,
        Some(0),
        "curl failed: {}{}",
        out.stderr,
        out.stdout
    );
    let echo = parse(&out.stdout);
    assert_eq!(echo["method"], "POST");
    assert_eq!(echo["path"], "/plain?y=2");
    assert_eq!(echo["host"], API_HOST);
    assert_eq!(echo["body"], "plain body");
    assert_eq!(door.tunnels_opened(), 0);
}

#[tokio::test]
async fn a_large_body_with_expect_100_continue_goes_through_whole_and_comes_back_streamed() {
    let dir = tempfile::tempdir().unwrap();
    let (api, tenant) = (Echo::start("api").await, Echo::start("tenant").await);
    let door = front_door(&dir, &api, &tenant).await;

    let body: String = (0..3 * 1024 * 1024)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let file = dir.path().join("body.txt");
    std::fs::write(&file, &body).unwrap();
    let data = format!("@{}", file.display());
    let url = format!("https://{API_HOST}/upload");
    let out = curl(
        &door.client_env(),
        &[
            "--fail-with-body",
            "--header",
            "Expect: 100-continue",
            "--data-binary",
            &data,
            &url,
        ],
    )
    .await;
    assert_eq!(out.code, Some(0), "curl failed: {}", out.stderr);
    let echo = parse(&out.stdout);
    assert_eq!(echo["body_len"], body.len());
    assert!(echo["body"] == body.as_str(), "the body arrived unchanged");
    assert!(
        echo["headers"].get("expect").is_none(),
        "{}",
        echo["headers"]
    );
    assert_eq!(api.requests(), 1);
}

#[tokio::test]
async fn a_tunnel_serves_only_the_host_it_was_opened_for() {
    let dir = tempfile::tempdir().unwrap();
    let (api, tenant) = (Echo::start("api").await, Echo::start("tenant").await);
    let door = front_door(&dir, &api, &tenant).await;
    let url = format!("https://{API_HOST}/public");

    // Another Host inside the tunnel: 421 Misdirected Request, not forwarded.
    let other = format!("Host: {TENANT_HOST}");
    let out = curl(
        &door.client_env(),
        &["--write-out", "\n%{http_code}", "--header", &other, &url],
    )
    .await;
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(out.stdout.ends_with("\n421"), "{}", out.stdout);

    // A CONNECT for one host and a ClientHello (SNI) for another: no handshake.
    let connect_to = format!("{API_HOST}:443:{TENANT_HOST}:443");
    let out = curl(&door.client_env(), &["--connect-to", &connect_to, &url]).await;
    assert_eq!(out.code, Some(35), "a TLS connect error: {}", out.stderr);
    assert_eq!(door.tunnels_opened(), 2);
    assert_eq!(
        api.requests() + tenant.requests(),
        0,
        "nothing was forwarded"
    );
}

/// Send `head` to the proxy on a fresh connection and read its answer until it closes or
/// the body (by `content-length`) is complete.
async fn raw(door: &FrontDoor, head: &str) -> String {
    let address = door.proxy_url().trim_start_matches("http://").to_owned();
    let mut stream = TcpStream::connect(address).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buffer))
            .await
            .expect("the proxy answers")
            .unwrap();
        if n == 0 {
            break;
        }
        answer.extend_from_slice(&buffer[..n]);
        let text = String::from_utf8_lossy(&answer);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|line| {
                    line.to_ascii_lowercase()
                        .strip_prefix("content-length: ")
                        .map(str::to_owned)
                })
                .and_then(|v| v.trim().parse::<usize>().ok());
            if length.is_some_and(|length| body.len() >= length) {
                break;
            }
        }
    }
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn a_host_without_a_route_is_refused_and_nothing_is_forwarded() {
    let dir = tempfile::tempdir().unwrap();
    let (api, tenant) = (Echo::start("api").await, Echo::start("tenant").await);
    let door = front_door(&dir, &api, &tenant).await;

    // curl sees the refused CONNECT (exit 56: "CONNECT tunnel failed, response 403").
    let out = curl(&door.client_env(), &["https://example.com/"]).await;
    assert_eq!(out.code, Some(56), "{}{}", out.stderr, out.stdout);
    assert!(out.stderr.contains("403"), "{}", out.stderr);

    let upstream_port = api.url.rsplit(':').next().unwrap();
    for head in [
        "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n".to_owned(),
        // Not the bare suffix of a wildcard, nor another region.
        "CONNECT execute-api.us-east-1.amazonaws.com:443 HTTP/1.1\r\n\r\n".to_owned(),
        "CONNECT abc123.execute-api.eu-west-1.amazonaws.com:443 HTTP/1.1\r\n\r\n".to_owned(),
        // Not a way to reach loopback services either.
        format!("CONNECT 127.0.0.1:{upstream_port} HTTP/1.1\r\n\r\n"),
        "GET http://example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n".to_owned(),
    ] {
        let answer = raw(&door, &head).await;
        assert!(answer.starts_with("HTTP/1.1 403"), "{head:?} got {answer}");
        assert!(answer.contains("serves only its routes"), "{answer}");
    }
    // Talking to the proxy as if it were the server is no way around it.
    let answer = raw(
        &door,
        &format!("GET /public HTTP/1.1\r\nHost: {API_HOST}\r\n\r\n"),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");

    assert_eq!(
        api.requests() + tenant.requests(),
        0,
        "nothing was forwarded"
    );
    assert_eq!(door.tunnels_opened(), 0);
}

#[tokio::test]
async fn a_route_added_at_run_time_applies_to_the_next_connect() {
    let dir = tempfile::tempdir().unwrap();
    let api = Echo::start("api").await;
    let door = FrontDoor::start(dir.path()).await.unwrap();
    let url = format!("https://{API_HOST}/later");

    let out = curl(&door.client_env(), &[&url]).await;
    assert_eq!(
        out.code,
        Some(56),
        "no route yet: {}{}",
        out.stderr,
        out.stdout
    );

    door.add_route(API_PATTERN, &api.url);
    let out = curl(&door.client_env(), &["--fail-with-body", &url]).await;
    assert_eq!(out.code, Some(0), "{}{}", out.stderr, out.stdout);
    assert_eq!(parse(&out.stdout)["path"], "/later");
    assert_eq!(api.requests(), 1);
}

#[tokio::test]
async fn an_upstream_that_is_down_gives_502_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let door = FrontDoor::start(dir.path()).await.unwrap();
    let down = format!("http://127.0.0.1:{}", authedapi_rig::free_port().unwrap());
    door.add_route(TENANT_HOST, &down);

    let url = format!("https://{TENANT_HOST}/authorize");
    let out = curl(&door.client_env(), &["--write-out", "\n%{http_code}", &url]).await;
    assert_eq!(out.code, Some(0), "{}{}", out.stderr, out.stdout);
    let (body, status) = out.stdout.rsplit_once('\n').unwrap();
    assert_eq!(status, "502", "{body}");
    assert!(body.contains(&down), "the body names the upstream: {body}");
    assert!(body.contains(TENANT_HOST), "{body}");
    assert!(body.contains("Connection refused"), "and says why: {body}");
}

#[tokio::test]
async fn without_the_rig_ca_tls_verification_fails_and_nothing_is_forwarded() {
    let dir = tempfile::tempdir().unwrap();
    let (api, tenant) = (Echo::start("api").await, Echo::start("tenant").await);
    let door = front_door(&dir, &api, &tenant).await;
    let url = format!("https://{API_HOST}/public");

    // curl with the proxy but its default trust store (exit 60: "SSL certificate problem").
    let env: Vec<(String, String)> = door
        .client_env()
        .into_iter()
        .filter(|(name, _)| !matches!(name.as_str(), "SSL_CERT_FILE" | "CURL_CA_BUNDLE"))
        .collect();
    let out = curl(&env, &[&url]).await;
    assert_eq!(out.code, Some(60), "{}{}", out.stderr, out.stdout);
    assert!(
        out.stderr.contains("SSL certificate problem"),
        "{}",
        out.stderr
    );

    // A Rust client with the proxy and the platform's roots refuses the certificate too.
    let client = reqwest::Client::builder()
        .no_proxy()
        .proxy(reqwest::Proxy::https(door.proxy_url()).unwrap())
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let error = client.get(&url).send().await.unwrap_err();
    let chain = format!("{error:?}");
    assert!(
        chain.contains("InvalidCertificate(UnknownIssuer)"),
        "{chain}"
    );

    assert_eq!(
        door.tunnels_opened(),
        2,
        "both got a tunnel, then refused its TLS"
    );
    assert_eq!(api.requests(), 0, "nothing was forwarded");
}

#[tokio::test]
async fn dropping_the_front_door_closes_its_port() {
    let dir = tempfile::tempdir().unwrap();
    let door = FrontDoor::start(dir.path()).await.unwrap();
    let address = door.proxy_url().trim_start_matches("http://").to_owned();
    TcpStream::connect(&address).await.unwrap();
    drop(door);
    // The listener's task ends on its next poll.
    for _ in 0..100 {
        if TcpStream::connect(&address).await.is_err() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{address} still accepts connections");
}
