//! The rig's front door: how a person, `curl` or any HTTPS client on this machine (which
//! has no internet) reaches the HTTPS names they would use against the real services,
//! such as `https://<apiId>.execute-api.<region>.amazonaws.com/...` (the AWS emulator's
//! data plane) or `https://<tenant>.auth0.com/...` (the Auth0 stand-in), while what
//! answers is a plain-HTTP server of the rig on loopback.
//!
//! It is an HTTP forward proxy on `127.0.0.1:PORT` (a free port). Clients reach it the
//! standard way, with the variables of [`FrontDoor::client_env`]:
//! `HTTPS_PROXY=http://127.0.0.1:PORT` (and `https_proxy`), `NO_PROXY=127.0.0.1,localhost`
//! (and `no_proxy`) so loopback calls go direct, and `SSL_CERT_FILE` / `CURL_CA_BUNDLE`
//! naming the front door's CA certificate (`DIR/front-door-ca.pem`), or `curl --cacert`.
//!
//! What it guarantees:
//!
//! * **Only its routes.** A route maps a host pattern to an upstream `http://HOST:PORT`:
//!   an exact host (`rig-tenant.us.auth0.com`) or a leading wildcard
//!   (`*.execute-api.us-east-1.amazonaws.com`, which matches one label or more in front of
//!   the suffix, never the bare suffix). Hosts compare case-insensitively, a trailing dot
//!   ignored; an exact route wins over wildcards, a longer wildcard over a shorter one.
//!   Routes are given at start and can be added (or replaced) at run time; a change applies
//!   to the next request. A `CONNECT` or absolute-form request for any other host is
//!   answered `403 Forbidden` with a body saying the rig serves only its routes: the front
//!   door never opens a connection anywhere but to a route's upstream, so it is never an
//!   open proxy (not even to other loopback ports).
//! * **Real TLS, from the rig's own CA.** `CONNECT host:PORT` for a routed host is answered
//!   `200`, then the front door terminates TLS on the tunnel with a certificate for exactly
//!   that host (its one DNS name, or IP address, in the subject alternative names), issued
//!   on the fly by a CA generated at [`FrontDoor::start`] and cached per host. TLS 1.2 and
//!   1.3, ALPN `http/1.1`. A `ClientHello` whose SNI names another host than the `CONNECT`
//!   is refused (the handshake is dropped). The CA's private key lives only in this
//!   process's memory: only its certificate is written to disk, so trusting it trusts
//!   nothing once the front door is gone. A client that does not trust that CA fails to
//!   verify the certificate: nothing here is trusted by default.
//! * **Transparent forwarding.** Every HTTP/1.1 request inside a tunnel (keep-alive:
//!   several requests per tunnel) goes to the route's upstream with its method, path and
//!   query, headers (the original `Host` included) and body, streamed; the response's
//!   status, headers and body come back through the tunnel, streamed. Only hop-by-hop
//!   headers (`Connection` and the headers it names, `Keep-Alive`, `Proxy-*`, `TE`,
//!   `Trailer`, `Transfer-Encoding`, `Upgrade`) and `Expect` (the front door answers
//!   `100 Continue` itself) are not relayed. A request in a tunnel whose `Host` names
//!   another host than the tunnel's is answered `421 Misdirected Request`.
//! * **Plain `http://` too.** An absolute-form request (`GET http://host/path HTTP/1.1`,
//!   as clients send through `http_proxy`) for a routed host is forwarded the same way,
//!   with `Host` set to the URI's authority (RFC 9112 §3.2.2). A request that is neither
//!   `CONNECT` nor absolute-form `http://` is answered `400`.
//! * **Honest failures.** When the upstream cannot be reached (or fails before its
//!   response), the client gets `502 Bad Gateway` with a short text body naming the
//!   upstream and the host.
//! * **Stops when dropped**: the listener, every proxy connection and every tunnel end
//!   when the [`FrontDoor`] is dropped (or with the tokio runtime that started it).

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use http::header::{CONNECTION, CONTENT_TYPE, EXPECT, HOST, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode, Uri, Version};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::upgrade::OnUpgrade;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
};
use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::Acceptor;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_rustls::LazyConfigAcceptor;

/// The file name of the CA certificate [`FrontDoor::start`] writes into its directory.
pub const CA_FILE: &str = "front-door-ca.pem";
/// What `NO_PROXY` / `no_proxy` say in [`FrontDoor::client_env`]: loopback goes direct.
pub const NO_PROXY: &str = "127.0.0.1,localhost";

type ProxyBody = BoxBody<Bytes, hyper::Error>;

/// A host pattern: an exact host or a leading wildcard.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Pattern {
    /// This host only (lowercase, no trailing dot).
    Exact(String),
    /// Any host ending with this suffix (lowercase, starting with a dot) after at least
    /// one more label.
    Wildcard(String),
}

impl Pattern {
    fn parse(pattern: &str) -> anyhow::Result<Self> {
        let pattern = normalize_host(pattern);
        let (wildcard, name) = match pattern.strip_prefix("*.") {
            Some(suffix) => (true, suffix),
            None => (false, pattern.as_str()),
        };
        anyhow::ensure!(
            !name.is_empty()
                && name.split('.').all(|label| {
                    !label.is_empty()
                        && label
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                }),
            "host pattern {pattern:?} must be a host name, or `*.` and a host name"
        );
        Ok(if wildcard {
            Pattern::Wildcard(format!(".{name}"))
        } else {
            Pattern::Exact(name.to_owned())
        })
    }

    /// Whether `host` (normalized) matches.
    fn matches(&self, host: &str) -> bool {
        match self {
            Pattern::Exact(exact) => host == exact,
            Pattern::Wildcard(suffix) => host
                .strip_suffix(suffix.as_str())
                .is_some_and(|prefix| !prefix.is_empty() && !prefix.ends_with('.')),
        }
    }
}

impl std::fmt::Display for Pattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Pattern::Exact(host) => f.write_str(host),
            Pattern::Wildcard(suffix) => write!(f, "*{suffix}"),
        }
    }
}

#[derive(Clone, Debug)]
struct Route {
    pattern: Pattern,
    /// `http://HOST:PORT`, no trailing slash.
    upstream: String,
}

/// The routing table.
#[derive(Debug, Default)]
struct Routes(Vec<Route>);

impl Routes {
    /// Add a route, replacing one with the same pattern.
    fn add(&mut self, pattern: Pattern, upstream: String) {
        match self.0.iter_mut().find(|route| route.pattern == pattern) {
            Some(route) => route.upstream = upstream,
            None => self.0.push(Route { pattern, upstream }),
        }
    }

    /// The upstream for `host` (normalized): the exact route, else the matching wildcard
    /// with the longest suffix.
    fn upstream_for(&self, host: &str) -> Option<&str> {
        self.0
            .iter()
            .filter(|route| route.pattern.matches(host))
            .max_by_key(|route| match &route.pattern {
                Pattern::Exact(_) => usize::MAX,
                Pattern::Wildcard(suffix) => suffix.len(),
            })
            .map(|route| route.upstream.as_str())
    }

    fn patterns(&self) -> String {
        if self.0.is_empty() {
            return "none yet".to_owned();
        }
        self.0
            .iter()
            .map(|route| route.pattern.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Lowercase, without a trailing dot, IPv6 brackets or port-less already.
fn normalize_host(host: &str) -> String {
    host.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// The host of an authority (`host`, `host:port`, `[v6]:port`), normalized.
fn authority_host(authority: &str) -> String {
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority
            .rsplit_once(':')
            .map_or(authority, |(host, port)| {
                if port.bytes().all(|b| b.is_ascii_digit()) {
                    host
                } else {
                    authority
                }
            }),
    };
    normalize_host(host)
}

/// Parse an upstream URL: `http://HOST:PORT` with no path.
fn parse_upstream(upstream: &str) -> anyhow::Result<String> {
    let uri: Uri = upstream
        .parse()
        .with_context(|| format!("upstream {upstream:?} is not a URL"))?;
    anyhow::ensure!(
        uri.scheme_str() == Some("http"),
        "upstream {upstream:?} must be an http:// URL"
    );
    let authority = uri
        .authority()
        .ok_or_else(|| anyhow::anyhow!("upstream {upstream:?} has no host"))?;
    anyhow::ensure!(
        matches!(uri.path(), "" | "/") && uri.query().is_none(),
        "upstream {upstream:?} must have no path: requests keep their own"
    );
    Ok(format!("http://{authority}"))
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Headers that describe one connection, not the message (RFC 9110 §7.6.1), and
/// `Expect`, which the front door answers itself.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in [
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    ] {
        headers.remove(name);
    }
}

fn text(status: StatusCode, body: String) -> Response<ProxyBody> {
    let mut response = Response::new(Full::new(Bytes::from(body)).map_err(|n| match n {}).boxed());
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// A fresh CA: the rig's own, for the front door only.
fn new_ca() -> anyhow::Result<CertifiedIssuer<'static, KeyPair>> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, "authedapi rig front door CA");
    params
        .distinguished_name
        .push(DnType::OrganizationName, "authedapi-rig");
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    Ok(CertifiedIssuer::self_signed(params, KeyPair::generate()?)?)
}

/// State shared by the listener, its connections and tunnels.
struct Shared {
    routes: RwLock<Routes>,
    ca: CertifiedIssuer<'static, KeyPair>,
    provider: Arc<CryptoProvider>,
    /// TLS configuration per host, each with its certificate.
    tls: Mutex<HashMap<String, Arc<ServerConfig>>>,
    client: Client<HttpConnector, Incoming>,
    tunnels: AtomicU64,
}

impl Shared {
    fn upstream_for(&self, host: &str) -> Option<String> {
        self.routes
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .upstream_for(host)
            .map(str::to_owned)
    }

    fn refuse(&self, host: &str, what: &str) -> Response<ProxyBody> {
        let patterns = self
            .routes
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .patterns();
        text(
            StatusCode::FORBIDDEN,
            format!(
                "authedapi rig front door: no route for {host:?}; refusing {what}. It serves \
                 only its routes ({patterns}) and never connects anywhere else.\n"
            ),
        )
    }

    /// A certificate for exactly `host` issued by the CA, and its private key.
    fn issue(
        &self,
        host: &str,
    ) -> anyhow::Result<(CertificateDer<'static>, PrivateKeyDer<'static>)> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(vec![host.to_owned()])?;
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, host);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        let cert = params.signed_by(&key, &self.ca)?;
        Ok((
            cert.der().clone(),
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        ))
    }

    /// The TLS configuration serving `host` with its certificate, issued on first use.
    fn server_config(&self, host: &str) -> anyhow::Result<Arc<ServerConfig>> {
        let mut cache = lock(&self.tls);
        if let Some(config) = cache.get(host) {
            return Ok(config.clone());
        }
        let (cert, key) = self.issue(host)?;
        let mut config = ServerConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let config = Arc::new(config);
        cache.insert(host.to_owned(), config.clone());
        Ok(config)
    }

    /// Forward one request to `upstream` and relay its response (or a 502).
    async fn forward(
        &self,
        upstream: &str,
        host: &str,
        request: Request<Incoming>,
        set_host: Option<HeaderValue>,
    ) -> Response<ProxyBody> {
        let (mut parts, body) = request.into_parts();
        let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        let Ok(uri) = format!("{upstream}{path}").parse::<Uri>() else {
            return text(
                StatusCode::BAD_REQUEST,
                format!("authedapi rig front door: bad request target {path:?}\n"),
            );
        };
        parts.uri = uri;
        parts.version = Version::HTTP_11;
        strip_hop_by_hop(&mut parts.headers);
        parts.headers.remove(EXPECT);
        if let Some(value) = set_host {
            parts.headers.insert(HOST, value);
        }
        match self.client.request(Request::from_parts(parts, body)).await {
            Ok(response) => {
                let (mut parts, body) = response.into_parts();
                strip_hop_by_hop(&mut parts.headers);
                Response::from_parts(parts, body.boxed())
            }
            Err(error) => {
                let error = format!("{:#}", anyhow::Error::new(error));
                tracing::debug!(%upstream, %host, %error, "front door: upstream failed");
                text(
                    StatusCode::BAD_GATEWAY,
                    format!(
                        "authedapi rig front door: upstream {upstream} (for {host}) is \
                         unreachable or failed: {error}\n"
                    ),
                )
            }
        }
    }
}

/// Run `work` until it ends or the front door stops.
async fn until_stopped(mut stopped: watch::Receiver<()>, work: impl Future<Output = ()>) {
    tokio::select! {
        _ = stopped.changed() => {}
        () = work => {}
    }
}

/// Answer one request to the proxy itself: `CONNECT` or absolute-form `http://`.
async fn proxy_request(
    shared: Arc<Shared>,
    stopped: watch::Receiver<()>,
    request: Request<Incoming>,
) -> Result<Response<ProxyBody>, Infallible> {
    if request.method() == Method::CONNECT {
        return Ok(connect(shared, stopped, request));
    }
    let uri = request.uri().clone();
    let Some(authority) = uri.authority() else {
        return Ok(text(
            StatusCode::BAD_REQUEST,
            "authedapi rig front door: this is a forward proxy; send CONNECT host:443 (or an \
             absolute-form http:// request) for one of its routes\n"
                .to_owned(),
        ));
    };
    if uri.scheme_str() != Some("http") {
        return Ok(text(
            StatusCode::BAD_REQUEST,
            "authedapi rig front door: absolute-form requests must be http://; use CONNECT for \
             https\n"
                .to_owned(),
        ));
    }
    let host = authority_host(authority.as_str());
    let Some(upstream) = shared.upstream_for(&host) else {
        return Ok(shared.refuse(&host, &format!("{} {uri}", request.method())));
    };
    let Ok(host_header) = HeaderValue::from_str(authority.as_str()) else {
        return Ok(text(
            StatusCode::BAD_REQUEST,
            "authedapi rig front door: bad authority\n".to_owned(),
        ));
    };
    Ok(shared
        .forward(&upstream, &host, request, Some(host_header))
        .await)
}

/// Accept a `CONNECT` for a routed host (and open its tunnel) or refuse it.
fn connect(
    shared: Arc<Shared>,
    stopped: watch::Receiver<()>,
    mut request: Request<Incoming>,
) -> Response<ProxyBody> {
    let Some(authority) = request.uri().authority().cloned() else {
        return text(
            StatusCode::BAD_REQUEST,
            "authedapi rig front door: CONNECT needs host:port\n".to_owned(),
        );
    };
    let host = authority_host(authority.as_str());
    if shared.upstream_for(&host).is_none() {
        return shared.refuse(&host, &format!("CONNECT {authority}"));
    }
    shared.tunnels.fetch_add(1, Ordering::Relaxed);
    let upgrade = hyper::upgrade::on(&mut request);
    tokio::spawn(until_stopped(stopped, tunnel(shared, host, upgrade)));
    Response::new(Empty::new().map_err(|n| match n {}).boxed())
}

/// Terminate TLS on a tunnel for `host` and serve the HTTP/1.1 requests inside it.
async fn tunnel(shared: Arc<Shared>, host: String, upgrade: OnUpgrade) {
    let upgraded = match upgrade.await {
        Ok(upgraded) => upgraded,
        Err(error) => {
            tracing::debug!(%host, %error, "front door: CONNECT was not upgraded");
            return;
        }
    };
    let start = match LazyConfigAcceptor::new(Acceptor::default(), TokioIo::new(upgraded)).await {
        Ok(start) => start,
        Err(error) => {
            tracing::debug!(%host, %error, "front door: no TLS ClientHello in the tunnel");
            return;
        }
    };
    if let Some(sni) = start.client_hello().server_name()
        && normalize_host(sni) != host
    {
        tracing::warn!(%host, %sni, "front door: SNI names another host than CONNECT; dropped");
        return;
    }
    let config = match shared.server_config(&host) {
        Ok(config) => config,
        Err(error) => {
            tracing::warn!(%host, error = %format!("{error:#}"), "front door: cannot issue a certificate");
            return;
        }
    };
    let tls = match start.into_stream(config).await {
        Ok(tls) => tls,
        Err(error) => {
            tracing::debug!(%host, %error, "front door: TLS handshake failed");
            return;
        }
    };
    let service = {
        let host = host.clone();
        hyper::service::service_fn(move |request| {
            tunneled_request(shared.clone(), host.clone(), request)
        })
    };
    let connection =
        hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(tls), service);
    if let Err(error) = connection.await {
        tracing::debug!(%host, %error, "front door: tunnel connection ended with an error");
    }
}

/// Forward one request that came through the tunnel for `host`.
async fn tunneled_request(
    shared: Arc<Shared>,
    host: String,
    request: Request<Incoming>,
) -> Result<Response<ProxyBody>, Infallible> {
    let named = request
        .uri()
        .authority()
        .map(|authority| authority.as_str().to_owned())
        .or_else(|| {
            request
                .headers()
                .get(HOST)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        });
    let set_host = match named {
        Some(named) if authority_host(&named) != host => {
            return Ok(text(
                StatusCode::MISDIRECTED_REQUEST,
                format!(
                    "authedapi rig front door: this tunnel is for {host}, not {named}; open a \
                     CONNECT for that host\n"
                ),
            ));
        }
        Some(_) if request.headers().contains_key(HOST) => None,
        _ => HeaderValue::from_str(&host).ok(),
    };
    let Some(upstream) = shared.upstream_for(&host) else {
        return Ok(shared.refuse(&host, "the request"));
    };
    Ok(shared.forward(&upstream, &host, request, set_host).await)
}

/// Serve one client connection to the proxy until it closes or the front door stops.
async fn serve_connection(stream: TcpStream, shared: Arc<Shared>, stopped: watch::Receiver<()>) {
    let service = {
        let stopped = stopped.clone();
        hyper::service::service_fn(move |request| {
            proxy_request(shared.clone(), stopped.clone(), request)
        })
    };
    let connection = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    until_stopped(stopped, async {
        let _ = connection.await;
    })
    .await;
}

async fn serve(listener: TcpListener, shared: Arc<Shared>, stopped: watch::Receiver<()>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let _ = stream.set_nodelay(true);
                tokio::spawn(serve_connection(stream, shared.clone(), stopped.clone()));
            }
            // Out of file descriptors and the like: wait instead of spinning.
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

/// The front door; see the [module documentation](self). It stops when dropped.
pub struct FrontDoor {
    proxy_url: String,
    ca_pem_path: PathBuf,
    shared: Arc<Shared>,
    /// Dropping it stops the listener, its connections and tunnels.
    _stop: watch::Sender<()>,
}

impl FrontDoor {
    /// Start a front door with no routes yet on a free loopback port, as tasks of the
    /// current tokio runtime, and write its CA certificate as `dir/front-door-ca.pem`.
    pub async fn start(dir: &Path) -> anyhow::Result<Self> {
        Self::start_with_routes(dir, []).await
    }

    /// [`FrontDoor::start`] with these `(host_pattern, upstream)` routes (as
    /// [`FrontDoor::add_route`] takes them); fails on an invalid one.
    pub async fn start_with_routes<'a>(
        dir: &Path,
        routes: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> anyhow::Result<Self> {
        let mut table = Routes::default();
        for (pattern, upstream) in routes {
            table.add(Pattern::parse(pattern)?, parse_upstream(upstream)?);
        }
        let ca = new_ca()?;
        let ca_pem_path = dir.join(CA_FILE);
        tokio::fs::write(&ca_pem_path, ca.pem())
            .await
            .with_context(|| format!("writing {}", ca_pem_path.display()))?;
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let proxy_url = format!("http://{}", listener.local_addr()?);
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_secs(5)));
        let shared = Arc::new(Shared {
            routes: RwLock::new(table),
            ca,
            provider: Arc::new(rustls::crypto::aws_lc_rs::default_provider()),
            tls: Mutex::new(HashMap::new()),
            client: Client::builder(TokioExecutor::new()).build(connector),
            tunnels: AtomicU64::new(0),
        });
        let (stop, stopped) = watch::channel(());
        tokio::spawn(until_stopped(
            stopped.clone(),
            serve(listener, shared.clone(), stopped),
        ));
        Ok(Self {
            proxy_url,
            ca_pem_path,
            shared,
            _stop: stop,
        })
    }

    /// Route hosts matching `host_pattern` (`rig-tenant.us.auth0.com`, or
    /// `*.execute-api.us-east-1.amazonaws.com` for one label or more in front) to
    /// `upstream` (`http://127.0.0.1:5000`), replacing the route with the same pattern.
    /// Applies to the next request.
    ///
    /// # Panics
    ///
    /// If the pattern is not a host name (optionally after `*.`), or the upstream is not
    /// `http://HOST:PORT` without a path: both are mistakes in the calling test.
    pub fn add_route(&self, host_pattern: &str, upstream: &str) {
        let pattern = Pattern::parse(host_pattern).unwrap_or_else(|error| panic!("{error:#}"));
        let upstream = parse_upstream(upstream).unwrap_or_else(|error| panic!("{error:#}"));
        self.shared
            .routes
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .add(pattern, upstream);
    }

    /// The proxy's URL, for `HTTPS_PROXY`: `http://127.0.0.1:PORT`.
    pub fn proxy_url(&self) -> String {
        self.proxy_url.clone()
    }

    /// The CA certificate (PEM) a client must trust: `DIR/front-door-ca.pem`.
    pub fn ca_pem_path(&self) -> &Path {
        &self.ca_pem_path
    }

    /// How many `CONNECT` tunnels it has accepted (refused ones are not counted).
    pub fn tunnels_opened(&self) -> u64 {
        self.shared.tunnels.load(Ordering::Relaxed)
    }

    /// Environment variables that point a client at it: HTTPS_PROXY, https_proxy, NO_PROXY, no_proxy, SSL_CERT_FILE, CURL_CA_BUNDLE.
    ///
    /// `SSL_CERT_FILE` and `CURL_CA_BUNDLE` replace an OpenSSL client's (and curl's)
    /// default CA bundle file with the front door's CA; on this machine, without internet,
    /// nothing else is reachable through the front door anyway.
    pub fn client_env(&self) -> Vec<(String, String)> {
        let ca = self.ca_pem_path.display().to_string();
        vec![
            ("HTTPS_PROXY".to_owned(), self.proxy_url()),
            ("https_proxy".to_owned(), self.proxy_url()),
            ("NO_PROXY".to_owned(), NO_PROXY.to_owned()),
            ("no_proxy".to_owned(), NO_PROXY.to_owned()),
            ("SSL_CERT_FILE".to_owned(), ca.clone()),
            ("CURL_CA_BUNDLE".to_owned(), ca),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routes(list: &[(&str, &str)]) -> Routes {
        let mut routes = Routes::default();
        for (pattern, upstream) in list {
            routes.add(Pattern::parse(pattern).unwrap(), (*upstream).to_owned());
        }
        routes
    }

    #[test]
    fn a_wildcard_matches_one_label_or_more_but_not_the_bare_suffix() {
        let pattern = Pattern::parse("*.execute-api.us-east-1.amazonaws.com").unwrap();
        assert!(pattern.matches("abc123.execute-api.us-east-1.amazonaws.com"));
        assert!(pattern.matches("a.b.execute-api.us-east-1.amazonaws.com"));
        assert!(!pattern.matches("execute-api.us-east-1.amazonaws.com"));
        assert!(!pattern.matches(".execute-api.us-east-1.amazonaws.com"));
        assert!(!pattern.matches("abc123.execute-api.us-west-2.amazonaws.com"));
        assert!(!pattern.matches("abc123execute-api.us-east-1.amazonaws.com"));
    }

    #[test]
    fn an_exact_route_matches_only_its_host_case_insensitively() {
        let table = routes(&[("Rig-Tenant.us.auth0.com.", "http://127.0.0.1:1")]);
        assert_eq!(
            table.upstream_for(&normalize_host("rig-tenant.US.auth0.com")),
            Some("http://127.0.0.1:1")
        );
        assert_eq!(table.upstream_for("other.us.auth0.com"), None);
        assert_eq!(table.upstream_for("x.rig-tenant.us.auth0.com"), None);
    }

    #[test]
    fn an_exact_route_wins_over_wildcards_and_a_longer_wildcard_over_a_shorter_one() {
        let table = routes(&[
            ("*.amazonaws.com", "http://127.0.0.1:1"),
            (
                "*.execute-api.us-east-1.amazonaws.com",
                "http://127.0.0.1:2",
            ),
            (
                "special.execute-api.us-east-1.amazonaws.com",
                "http://127.0.0.1:3",
            ),
        ]);
        assert_eq!(
            table.upstream_for("iam.amazonaws.com"),
            Some("http://127.0.0.1:1")
        );
        assert_eq!(
            table.upstream_for("abc.execute-api.us-east-1.amazonaws.com"),
            Some("http://127.0.0.1:2")
        );
        assert_eq!(
            table.upstream_for("special.execute-api.us-east-1.amazonaws.com"),
            Some("http://127.0.0.1:3")
        );
    }

    #[test]
    fn adding_a_route_with_the_same_pattern_replaces_its_upstream() {
        let mut table = routes(&[("*.auth0.com", "http://127.0.0.1:1")]);
        table.add(
            Pattern::parse("*.AUTH0.com").unwrap(),
            "http://127.0.0.1:2".to_owned(),
        );
        assert_eq!(table.0.len(), 1);
        assert_eq!(
            table.upstream_for("t.auth0.com"),
            Some("http://127.0.0.1:2")
        );
    }

    #[test]
    fn patterns_and_upstreams_that_are_not_hosts_and_http_urls_are_rejected() {
        for bad in [
            "",
            "*",
            "*.",
            "a.*.com",
            "a..com",
            "a b.com",
            "http://a.com",
            "a.com/x",
        ] {
            assert!(Pattern::parse(bad).is_err(), "{bad:?} was accepted");
        }
        assert_eq!(
            parse_upstream("http://127.0.0.1:5000/").unwrap(),
            "http://127.0.0.1:5000"
        );
        for bad in [
            "https://127.0.0.1:5000",
            "127.0.0.1:5000",
            "http://127.0.0.1:5000/x",
        ] {
            assert!(parse_upstream(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn an_authority_names_its_host_without_the_port() {
        assert_eq!(authority_host("Abc.Example.com:443"), "abc.example.com");
        assert_eq!(authority_host("abc.example.com"), "abc.example.com");
        assert_eq!(authority_host("[::1]:443"), "::1");
    }

    #[test]
    fn hop_by_hop_headers_are_not_relayed() {
        let mut headers = HeaderMap::new();
        headers.insert("connection", HeaderValue::from_static("keep-alive, x-hop"));
        headers.insert("x-hop", HeaderValue::from_static("1"));
        headers.insert("proxy-authorization", HeaderValue::from_static("secret"));
        headers.insert("transfer-encoding", HeaderValue::from_static("chunked"));
        headers.insert("authorization", HeaderValue::from_static("Bearer t"));
        headers.insert("host", HeaderValue::from_static("a.example.com"));
        strip_hop_by_hop(&mut headers);
        let mut names: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
        names.sort_unstable();
        assert_eq!(names, ["authorization", "host"]);
    }

    #[tokio::test]
    async fn an_issued_certificate_names_its_host_and_verifies_against_the_rig_ca_only() {
        use rustls::client::WebPkiServerVerifier;
        use rustls::client::danger::ServerCertVerifier;
        use rustls::pki_types::{ServerName, UnixTime};

        let dir = tempfile::tempdir().unwrap();
        let door = FrontDoor::start(dir.path()).await.unwrap();
        let host = "abc123.execute-api.us-east-1.amazonaws.com";
        let config = door.shared.server_config(host).unwrap();
        assert!(Arc::ptr_eq(
            &config,
            &door.shared.server_config(host).unwrap()
        ));
        let (leaf, _) = door.shared.issue(host).unwrap();
        let provider = door.shared.provider.clone();
        let mut roots = rustls::RootCertStore::empty();
        roots.add(door.shared.ca.der().clone()).unwrap();
        let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .unwrap();
        verifier
            .verify_server_cert(
                &leaf,
                &[],
                &ServerName::try_from(host).unwrap(),
                &[],
                UnixTime::now(),
            )
            .unwrap();
        assert!(
            verifier
                .verify_server_cert(
                    &leaf,
                    &[],
                    &ServerName::try_from("other.execute-api.us-east-1.amazonaws.com").unwrap(),
                    &[],
                    UnixTime::now(),
                )
                .is_err()
        );
        let pem = std::fs::read_to_string(door.ca_pem_path()).unwrap();
        assert_eq!(pem, door.shared.ca.pem());
        assert!(!pem.contains("PRIVATE KEY"));
    }
}
