//! The listener and the routes: each endpoint of the issuer's layout ([`Flavor`]) on an
//! axum router, and what every answer gets on its way out (CORS, the debug log line).
//!
//! [`Flavor`]: super::Flavor

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, any};
use bytes::Bytes;
use http::header::{ACCESS_CONTROL_ALLOW_ORIGIN, ALLOW, HeaderValue, ORIGIN, VARY};
use http::{HeaderMap, Method, StatusCode, Uri};
use http_body_util::{BodyExt, Limited};
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use super::authorize::authorize;
use super::discovery::{discovery, keys};
use super::params::Params;
use super::replies::{Reply, error_page, json_reply, preflight, text};
use super::tenant::Shared;
use super::token::token;
use super::userinfo::userinfo;
use crate::serving::accept_until_shutdown;

/// Request bodies larger than this are refused (413).
const MAX_BODY: usize = 64 * 1024;
/// How long clients may cache discovery and keys (Auth0's).
const PUBLIC_CACHE: &str = "public, max-age=15, stale-while-revalidate=15";

type Tenant = State<Arc<Shared>>;

pub(super) async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    shutdown: watch::Receiver<bool>,
) {
    let app = router(shared);
    accept_until_shutdown(listener, shutdown, |stream, stop| {
        serve_connection(stream, app.clone(), stop)
    })
    .await;
}

/// One connection until it ends or the stand-in stops (which drops it at once, unlike a
/// graceful shutdown).
async fn serve_connection(stream: TcpStream, app: Router, mut shutdown: watch::Receiver<bool>) {
    let connection = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(stream), TowerToHyperService::new(app));
    tokio::select! {
        _ = connection => {}
        _ = shutdown.changed() => {}
    }
}

/// The endpoints at their paths under the issuer's path; anything else is 404, except a
/// CORS preflight, which every path answers.
fn router(shared: Arc<Shared>) -> Router {
    let paths = shared.flavor.paths();
    let at = |path: &str| shared.full_path(path);
    Router::new()
        .route(
            &at("/.well-known/openid-configuration"),
            endpoint("GET").get(|State(shared): Tenant| async move {
                json_reply(StatusCode::OK, discovery(&shared), PUBLIC_CACHE)
            }),
        )
        .route(
            &at(paths.keys),
            endpoint("GET").get(|State(shared): Tenant| async move {
                json_reply(StatusCode::OK, keys(&shared), PUBLIC_CACHE)
            }),
        )
        .route(
            &at(paths.authorize),
            endpoint("GET, POST").get(login_form).post(login_submitted),
        )
        .route(&at(paths.token), endpoint("POST").post(token_request))
        .route(
            &at(paths.userinfo),
            endpoint("GET, POST")
                .get(userinfo_request)
                .post(userinfo_request),
        )
        .fallback(any(|method: Method, headers: HeaderMap| async move {
            match method {
                Method::OPTIONS => preflight(&headers),
                _ => text(StatusCode::NOT_FOUND, "Not Found"),
            }
        }))
        .layer(middleware::from_fn_with_state(shared.clone(), on_the_way))
        .with_state(shared)
}

/// An endpoint that answers CORS preflights, and 405 to the methods it does not take
/// (HEAD included: a GET endpoint here is not also a HEAD one).
fn endpoint(allow: &'static str) -> MethodRouter<Arc<Shared>> {
    let not_allowed = move || async move {
        let mut reply = text(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed");
        reply
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static(allow));
        reply
    };
    MethodRouter::new()
        .options(|headers: HeaderMap| async move { preflight(&headers) })
        .head(not_allowed)
        .fallback(not_allowed)
}

/// `GET /authorize`: the login page (or why not).
async fn login_form(State(shared): Tenant, uri: Uri) -> Reply {
    match Params::form(uri.query().unwrap_or_default().as_bytes()) {
        Ok(params) => authorize(&shared, params, None),
        Err(message) => error_page(StatusCode::BAD_REQUEST, &message),
    }
}

/// `POST /authorize`: the login form's credentials with the authorization parameters.
async fn login_submitted(State(shared): Tenant, uri: Uri, body: Bytes) -> Reply {
    let params = Params::form(uri.query().unwrap_or_default().as_bytes())
        .and_then(|mut params| params.extend(Params::form(&body)?).map(|()| params));
    match params {
        Ok(params) => {
            let (params, credentials) = params.take_credentials();
            authorize(&shared, params, Some(credentials))
        }
        Err(message) => error_page(StatusCode::BAD_REQUEST, &message),
    }
}

async fn token_request(State(shared): Tenant, headers: HeaderMap, body: Bytes) -> Reply {
    match token(&shared, &headers, &body) {
        Ok(tokens) => json_reply(StatusCode::OK, tokens, "no-store"),
        Err(error) => error.reply(),
    }
}

async fn userinfo_request(State(shared): Tenant, headers: HeaderMap) -> Reply {
    userinfo(&shared, &headers)
}

/// Around every request: the body read whole (413 beyond [`MAX_BODY`], whatever the path),
/// the request's origin allowed to read the answer (except the login page's), and a debug
/// line with method, path and status only (never parameters: they hold secrets).
async fn on_the_way(State(shared): Tenant, request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let origin = request.headers().get(ORIGIN).cloned();
    let (parts, body) = request.into_parts();
    let mut response = match Limited::new(body, MAX_BODY).collect().await {
        Ok(body) => {
            next.run(Request::from_parts(parts, Body::from(body.to_bytes())))
                .await
        }
        Err(_) => text(StatusCode::PAYLOAD_TOO_LARGE, "Payload Too Large").into_response(),
    };
    if let Some(origin) = origin
        && path != shared.full_path(shared.flavor.paths().authorize)
    {
        let headers = response.headers_mut();
        headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        headers.insert(VARY, HeaderValue::from_static("Origin"));
    }
    tracing::debug!(%method, %path, status = response.status().as_u16(), "auth0 stand-in");
    response
}
