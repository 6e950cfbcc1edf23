//! The proxy's server: it accepts connections, decides each request's fate (a fault, the
//! rate limit, or the upstream), forwards it, and counts it.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use http::header::{CONNECTION, HeaderMap, HeaderName};
use http::{Request, Response, StatusCode, Uri};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};

use super::limits::Limits;
use super::protocol::{ErrorKind, RequestInfo, error_response};
use super::{FORWARDED, Fault, Faults, RATE_LIMITED, UPSTREAM_ERROR};
use crate::serving::accept_until_shutdown;

type ProxyBody = BoxBody<Bytes, hyper::Error>;

/// Requests counted by (service, operation, outcome).
pub(super) type Counts = BTreeMap<(String, String, String), u64>;
/// Requests counted by (access key id, service, operation, outcome); unsigned requests
/// under the key "".
pub(super) type KeyCounts = BTreeMap<(String, String, String, String), u64>;

fn full(body: impl Into<Bytes>) -> ProxyBody {
    Full::new(body.into())
        .map_err(|never: Infallible| match never {})
        .boxed()
}

/// State shared by the proxy's handle and its connections.
pub(super) struct Shared {
    /// `scheme://authority` of the upstream, without a trailing slash.
    pub(super) upstream: String,
    client: Client<HttpConnector, Full<Bytes>>,
    pub(super) faults: Mutex<Faults>,
    pub(super) limits: Mutex<Limits>,
    pub(super) counts: Mutex<Counts>,
    pub(super) key_counts: Mutex<KeyCounts>,
    next_request_id: AtomicU64,
}

pub(super) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Shared {
    pub(super) fn new(upstream: &str) -> anyhow::Result<Self> {
        let uri: Uri = upstream
            .parse()
            .map_err(|e| anyhow::anyhow!("upstream {upstream:?} is not a URL: {e}"))?;
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
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        Ok(Self {
            upstream: format!("http://{authority}"),
            client: Client::builder(TokioExecutor::new()).build(connector),
            faults: Mutex::new(Faults::new()),
            limits: Mutex::new(Limits::new()),
            counts: Mutex::new(BTreeMap::new()),
            key_counts: Mutex::new(BTreeMap::new()),
            next_request_id: AtomicU64::new(0),
        })
    }

    fn count(&self, info: &RequestInfo, outcome: &str) {
        let class = &info.class;
        // Both maps under both locks, so a reader of both sees the same requests.
        let mut counts = lock(&self.counts);
        let mut key_counts = lock(&self.key_counts);
        *counts
            .entry((
                class.service.clone(),
                class.operation.clone(),
                outcome.to_owned(),
            ))
            .or_default() += 1;
        *key_counts
            .entry((
                info.access_key_id.clone().unwrap_or_default(),
                class.service.clone(),
                class.operation.clone(),
                outcome.to_owned(),
            ))
            .or_default() += 1;
    }

    /// Count the request under `outcome` and answer it with the service's `kind` of error.
    fn fail(&self, info: &RequestInfo, outcome: &str, kind: ErrorKind) -> Response<ProxyBody> {
        self.count(info, outcome);
        error_response(info, kind, &self.request_id()).map(full)
    }

    /// A fresh request id shaped like AWS's (a version-4 UUID).
    fn request_id(&self) -> String {
        let n = self.next_request_id.fetch_add(1, Ordering::Relaxed);
        let a = splitmix64(n ^ 0x7265_7175_6573_7469);
        let b = splitmix64(a);
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xfff,
            ((b >> 48) & 0x3fff) | 0x8000,
            b & 0xffff_ffff_ffff
        )
    }

    async fn forward(
        &self,
        parts: http::request::Parts,
        body: Bytes,
    ) -> anyhow::Result<Response<ProxyBody>> {
        let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        let uri: Uri = format!("{}{path}", self.upstream).parse()?;
        let mut headers = parts.headers;
        strip_hop_by_hop(&mut headers);
        let mut request = Request::new(Full::new(body));
        *request.method_mut() = parts.method;
        *request.uri_mut() = uri;
        *request.headers_mut() = headers;
        let response = self.client.request(request).await?;
        let (mut parts, body) = response.into_parts();
        strip_hop_by_hop(&mut parts.headers);
        Ok(Response::from_parts(parts, body.boxed()))
    }
}

fn splitmix64(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Headers that describe one connection, not the message (RFC 9110 §7.6.1).
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

/// Answer one request: a fault, the rate limit's throttling error, or the upstream's.
async fn handle(
    shared: Arc<Shared>,
    reset: Arc<Notify>,
    request: Request<Incoming>,
) -> Result<Response<ProxyBody>, hyper::Error> {
    let (parts, body) = request.into_parts();
    let body = body.collect().await?.to_bytes();
    let info = RequestInfo::new(&parts.method, &parts.uri, &parts.headers, &body);
    let fault = lock(&shared.faults).draw(&info.class);
    let outcome = match fault {
        None => FORWARDED.to_owned(),
        Some(fault @ Fault::Delay(delay)) => {
            tokio::time::sleep(delay).await;
            fault.name()
        }
        Some(Fault::Reset) => {
            shared.count(&info, &Fault::Reset.name());
            // The connection's task drops the socket with SO_LINGER 0 (a TCP RST); this
            // request never gets an answer.
            reset.notify_one();
            return std::future::pending().await;
        }
        Some(fault @ Fault::Throttle) => {
            return Ok(shared.fail(&info, &fault.name(), ErrorKind::Throttle));
        }
        Some(fault @ Fault::AccessDenied) => {
            return Ok(shared.fail(&info, &fault.name(), ErrorKind::AccessDenied));
        }
        Some(fault @ Fault::Status(status)) => {
            return Ok(shared.fail(&info, &fault.name(), ErrorKind::Status(status)));
        }
    };
    if !lock(&shared.limits).admit(&info.class.service, info.access_key_id.as_deref()) {
        return Ok(shared.fail(&info, RATE_LIMITED, ErrorKind::Throttle));
    }
    match shared.forward(parts, body).await {
        Ok(response) => {
            shared.count(&info, &outcome);
            Ok(response)
        }
        Err(error) => {
            shared.count(&info, UPSTREAM_ERROR);
            let mut response = Response::new(full(format!(
                "fault proxy: upstream {} failed: {error:#}",
                shared.upstream
            )));
            *response.status_mut() = StatusCode::BAD_GATEWAY;
            Ok(response)
        }
    }
}

/// Serve one client connection until it closes, a request draws [`Fault::Reset`], or the
/// proxy stops.
async fn serve_connection(
    stream: TcpStream,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    let reset = Arc::new(Notify::new());
    let service = {
        let reset = reset.clone();
        hyper::service::service_fn(move |request| handle(shared.clone(), reset.clone(), request))
    };
    let mut connection =
        hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service);
    tokio::select! {
        _ = &mut connection => {}
        () = reset.notified() => {
            let stream = connection.into_parts().io.into_inner();
            // Closing a socket whose linger time is zero sends RST instead of FIN.
            let _ = stream.set_zero_linger();
            drop(stream);
        }
        _ = shutdown.changed() => {}
    }
}

/// Accept connections on `listener` until `shutdown` changes.
pub(super) async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    shutdown: watch::Receiver<bool>,
) {
    accept_until_shutdown(listener, shutdown, |stream, stop| {
        serve_connection(stream, shared.clone(), stop)
    })
    .await;
}

#[cfg(test)]
mod tests {
    use http::header::HeaderValue;

    use super::*;

    #[test]
    fn request_ids_look_like_uuids_and_differ() {
        let shared = Shared::new("http://127.0.0.1:9/").unwrap();
        let a = shared.request_id();
        let b = shared.request_id();
        assert_ne!(a, b);
        let lengths: Vec<usize> = a.split('-').map(str::len).collect();
        assert_eq!(lengths, [8, 4, 4, 4, 12], "{a}");
        assert!(Shared::new("https://127.0.0.1:9").is_err());
        assert!(Shared::new("http://127.0.0.1:9/prefix").is_err());
    }

    #[test]
    fn hop_by_hop_headers_are_not_relayed() {
        let mut headers = HeaderMap::new();
        for name in ["authorization", "host", "x-amz-date"] {
            headers.insert(name, HeaderValue::from_static("kept"));
        }
        headers.insert(
            "connection",
            HeaderValue::from_static("keep-alive, x-trace"),
        );
        headers.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        headers.insert("x-trace", HeaderValue::from_static("1"));
        headers.insert("transfer-encoding", HeaderValue::from_static("chunked"));
        strip_hop_by_hop(&mut headers);
        let mut names: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
        names.sort_unstable();
        assert_eq!(names, ["authorization", "host", "x-amz-date"]);
    }
}
