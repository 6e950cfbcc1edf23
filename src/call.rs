//! `authedapi call`: call a route of an AuthedApi the way its users do, replacing the
//! seed's manual steps: an ID token of its issuer (Auth0, or any OIDC issuer: given, or
//! exchanged for an authorization code at the token endpoint its discovery document
//! names), Cognito GetId and GetCredentialsForIdentity with the issuer's provider name as
//! the login key, a SigV4-signed request for IAM routes, a bearer token for JWT routes,
//! nothing for public ones.
//!
//! Secrets (the client secret, the ID token when not given on the command line) come
//! from the environment or stdin and are never printed, except that
//! `--print-credentials` prints the temporary AWS credentials, which is what it is for.

use std::io::Read;
use std::time::SystemTime;

use aws_config::{BehaviorVersion, Region};
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use kube::api::Api;

use crate::api::{AuthedApi, Authorization, Route};
use crate::aws::AwsError;
use crate::https;
use crate::plan::{Issuer, issuer_of};
use crate::routing::{self, RouteKey};

/// Arguments of `authedapi call`.
#[derive(clap::Args, Clone, Debug)]
pub struct CallArgs {
    /// Namespace of the AuthedApi (default: the kubeconfig's).
    #[arg(short, long)]
    pub namespace: Option<String>,
    /// Name of the AuthedApi.
    pub name: String,
    /// HTTP method, e.g. GET.
    pub method: String,
    /// Path, e.g. /private (a query string is passed on).
    pub path: String,
    /// ID token of the caller (from the AuthedApi's issuer); "-" reads it from stdin.
    /// Default: $AUTHEDAPI_ID_TOKEN.
    #[arg(
        long,
        env = "AUTHEDAPI_ID_TOKEN",
        hide_env_values = true,
        conflicts_with = "code"
    )]
    pub id_token: Option<String>,
    /// An authorization code of the issuer to exchange for tokens (needs
    /// --client-secret-env). Codes may begin with '-': taken as they are.
    #[arg(
        long,
        requires = "client_secret_env",
        conflicts_with = "login",
        allow_hyphen_values = true
    )]
    pub code: Option<String>,
    /// Log in at the issuer now (its endpoints from <issuer>/.well-known/openid-configuration):
    /// print the login URL, wait for the browser to come back to --redirect-uri on this
    /// machine, exchange the code (PKCE; plus the secret of --client-secret-env for a
    /// confidential application).
    #[arg(long, conflicts_with = "id_token")]
    pub login: bool,
    /// How long --login waits for the browser.
    #[arg(long, default_value = "5m", value_parser = crate::controller::parse_duration)]
    pub login_timeout: std::time::Duration,
    /// Name of the environment variable holding the application's client secret.
    #[arg(long)]
    pub client_secret_env: Option<String>,
    /// The redirect URI the code is issued for (a callback URL registered with the
    /// application; for --login, a loopback one: this command listens on it).
    #[arg(long, default_value = "http://localhost:5678")]
    pub redirect_uri: String,
    /// Request body ("@file" reads a file, "-" reads stdin).
    #[arg(short, long)]
    pub data: Option<String>,
    /// Extra request header, "Name: value" (repeatable).
    #[arg(short = 'H', long = "header")]
    pub headers: Vec<String>,
    /// Print the temporary AWS credentials as shell exports instead of calling.
    #[arg(long)]
    pub print_credentials: bool,
}

/// Why a call could not be made; each says what to do.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("AuthedApi {0} not found")]
    NotFound(String),
    #[error(
        "AuthedApi {name} is not Ready ({reason}): {message}. Wait for it: kubectl wait --for=condition=Ready authedapi/{name}"
    )]
    NotReady {
        name: String,
        reason: String,
        message: String,
    },
    #[error("no route for {method} {path}: the spec has {routes}")]
    RouteNotInSpec {
        method: String,
        path: String,
        routes: String,
    },
    #[error("{path} does not take {method}: use {allowed}")]
    WrongMethod {
        method: String,
        path: String,
        allowed: String,
    },
    #[error(
        "route {route} needs the caller's {who} ID token: log in with --login, or pass --id-token (or - for stdin), set AUTHEDAPI_ID_TOKEN, or --code with --client-secret-env"
    )]
    TokenNeeded { route: String, who: String },
    #[error("login: {0}")]
    Login(String),
    #[error("the ID token was refused as expired or invalid: log in to {who} again ({message})")]
    TokenRefused { who: String, message: String },
    #[error("the client secret variable {0} is not set")]
    NoSecret(String),
    #[error("{who} refused the code exchange: {reason}")]
    CodeExchange { who: String, reason: String },
    #[error("the issuer's discovery document {url}: {problem}")]
    Discovery { url: String, problem: String },
    #[error("{0}")]
    Spec(String),
    #[error("Cognito: {0}")]
    Cognito(String),
    #[error("signing the request: {0}")]
    Signing(String),
    #[error("bad header {0:?}: use \"Name: value\"")]
    BadHeader(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("HTTP: {0}")]
    Http(#[from] crate::https::HttpError),
    #[error("Kubernetes: {0}")]
    Kube(#[from] kube::Error),
}

/// The route API Gateway would pick for `method` `path` ([`routing::route_for`]: segment
/// by segment a literal beats a parameter, which beats a greedy parameter; a method beats
/// ANY; `$default` catches the rest). Errors say whether the path or the method is unknown.
pub fn match_route<'a>(
    routes: &'a [Route],
    method: &str,
    path: &str,
) -> Result<&'a Route, CallError> {
    let method = method.to_ascii_uppercase();
    let path = path.split('?').next().unwrap_or(path);
    let keys: Vec<RouteKey> = routes.iter().map(|r| RouteKey::parse(&r.route)).collect();
    if let Some(i) = routing::route_for(&keys, &method, path) {
        return Ok(&routes[i]);
    }
    let segments = routing::path_segments(path);
    let mut allowed: Vec<&str> = routes
        .iter()
        .zip(&keys)
        .filter(|(_, k)| !k.default && k.matches_path(&segments))
        .filter_map(|(r, _)| r.route.split_once(' ').map(|(m, _)| m))
        .collect();
    if allowed.is_empty() {
        return Err(CallError::RouteNotInSpec {
            method,
            path: path.to_owned(),
            routes: routes
                .iter()
                .map(|r| r.route.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    allowed.sort();
    allowed.dedup();
    Err(CallError::WrongMethod {
        method,
        path: path.to_owned(),
        allowed: allowed.join(", "),
    })
}

fn read_stdin() -> Result<String, CallError> {
    let mut text = String::new();
    std::io::stdin().read_to_string(&mut text)?;
    Ok(text.trim().to_owned())
}

/// Where an issuer's users log in and codes are exchanged (its discovery document's
/// `authorization_endpoint` and `token_endpoint`).
#[derive(Clone, Debug, PartialEq)]
pub struct Endpoints {
    pub authorization: String,
    pub token: String,
    /// Who answers there, for messages: "Auth0", or the issuer's name.
    pub who: String,
}

/// The endpoints of `discovery` (a discovery document, OpenID Connect Discovery 1.0), which
/// must name `issuer` as its issuer, exactly (section 4.3).
pub fn endpoints_of(
    issuer: &Issuer,
    url: &str,
    discovery: &serde_json::Value,
) -> Result<Endpoints, CallError> {
    let problem = |problem: String| CallError::Discovery {
        url: url.to_owned(),
        problem,
    };
    let named = discovery["issuer"].as_str().unwrap_or_default();
    if named != issuer.token_issuer {
        return Err(problem(format!(
            "it names the issuer {named:?}, not {:?}: the AuthedApi's issuer must be what its \
             tokens' iss claim says",
            issuer.token_issuer
        )));
    }
    let endpoint = |field: &str| {
        discovery[field]
            .as_str()
            .filter(|e| e.starts_with("https://"))
            .map(str::to_owned)
            .ok_or_else(|| problem(format!("it has no https {field}")))
    };
    Ok(Endpoints {
        authorization: endpoint("authorization_endpoint")?,
        token: endpoint("token_endpoint")?,
        who: issuer.display_name(),
    })
}

/// Fetch `issuer`'s discovery document: its login and token endpoints.
pub async fn discover(issuer: &Issuer) -> Result<Endpoints, CallError> {
    let url = issuer.discovery_url();
    let failed = |problem: String| CallError::Discovery {
        url: url.clone(),
        problem,
    };
    let response = https::get(&url).await.map_err(|e| failed(e.to_string()))?;
    if !response.status.is_success() {
        return Err(failed(format!("HTTP {}", response.status)));
    }
    let document: serde_json::Value =
        serde_json::from_slice(&response.body).map_err(|e| failed(format!("not JSON: {e}")))?;
    endpoints_of(issuer, &url, &document)
}

/// Exchange an authorization code for an ID token at the token endpoint.
async fn exchange_code(
    endpoints: &Endpoints,
    client_id: &str,
    secret_env: &str,
    code: &str,
    redirect_uri: &str,
) -> Result<String, CallError> {
    let secret = secret_from(secret_env)?;
    token_request(
        endpoints,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", client_id),
            ("client_secret", &secret),
            ("code", code),
            ("redirect_uri", redirect_uri),
        ],
    )
    .await
}

/// The client secret in the environment variable `name`.
fn secret_from(name: &str) -> Result<String, CallError> {
    std::env::var(name).map_err(|_| CallError::NoSecret(name.to_owned()))
}

/// POST `params` (form-encoded, as RFC 6749 says) to the token endpoint; the ID token of
/// the answer.
pub async fn token_request(
    endpoints: &Endpoints,
    params: &[(&str, &str)],
) -> Result<String, CallError> {
    let body = params
        .iter()
        .map(|(k, v)| format!("{k}={}", urlencoding::encode(v)))
        .collect::<Vec<_>>()
        .join("&");
    let request = http::Request::post(&endpoints.token)
        .header(
            http::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .header(http::header::ACCEPT, "application/json")
        .body(body.into_bytes())
        .map_err(|e| CallError::CodeExchange {
            who: endpoints.who.clone(),
            reason: format!("the token endpoint {}: {e}", endpoints.token),
        })?;
    let response = https::send(request).await?;
    let status = response.status;
    let body: serde_json::Value = serde_json::from_slice(&response.body).unwrap_or_default();
    if !status.is_success() {
        let reason = body["error_description"]
            .as_str()
            .or(body["error"].as_str())
            .unwrap_or("no reason given");
        return Err(CallError::CodeExchange {
            who: endpoints.who.clone(),
            reason: format!("{status}: {reason}"),
        });
    }
    body["id_token"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| CallError::CodeExchange {
            who: endpoints.who.clone(),
            reason: "the response has no id_token".into(),
        })
}

/// Temporary AWS credentials of the identity the ID token maps to.
async fn credentials(
    region: &str,
    pool_id: &str,
    issuer: &Issuer,
    id_token: &str,
) -> Result<Credentials, CallError> {
    // Cognito's login key is the provider's name: the issuer's host and path.
    let provider = issuer.name.as_str();
    // GetId and GetCredentialsForIdentity are unauthenticated calls: no AWS credentials.
    let config = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(region.to_owned()))
        .no_credentials()
        .load()
        .await;
    let cognito = aws_sdk_cognitoidentity::Client::new(&config);
    // The operator's error mapping keeps network failures' causes, which carry no AWS code.
    let refused = |e: AwsError| {
        if e.code == "NotAuthorizedException" {
            CallError::TokenRefused {
                who: issuer.display_name(),
                message: e.message,
            }
        } else {
            CallError::Cognito(e.to_string())
        }
    };
    let identity = cognito
        .get_id()
        .identity_pool_id(pool_id)
        .logins(provider, id_token)
        .send()
        .await
        .map_err(|e| refused(AwsError::from_sdk("cognito-identity", "GetId", e)))?;
    let identity_id = identity.identity_id().unwrap_or_default();
    let out = cognito
        .get_credentials_for_identity()
        .identity_id(identity_id)
        .logins(provider, id_token)
        .send()
        .await
        .map_err(|e| {
            refused(AwsError::from_sdk(
                "cognito-identity",
                "GetCredentialsForIdentity",
                e,
            ))
        })?;
    let c = out
        .credentials()
        .ok_or_else(|| CallError::Cognito("no credentials in the response".into()))?;
    Ok(Credentials::new(
        c.access_key_id().unwrap_or_default(),
        c.secret_key().unwrap_or_default(),
        c.session_token().map(str::to_owned),
        None,
        "cognito-identity",
    ))
}

/// Sign `request` for API Gateway's execute-api with SigV4.
pub fn sign_request(
    request: &mut http::Request<Vec<u8>>,
    credentials: &Credentials,
    region: &str,
    time: SystemTime,
) -> Result<(), CallError> {
    let identity = credentials.clone().into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("execute-api")
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| CallError::Signing(e.to_string()))?
        .into();
    let headers: Vec<(&str, &str)> = request
        .headers()
        .iter()
        .filter_map(|(k, v)| Some((k.as_str(), v.to_str().ok()?)))
        .collect();
    let signable = SignableRequest::new(
        request.method().as_str(),
        request.uri().to_string(),
        headers.into_iter(),
        SignableBody::Bytes(request.body()),
    )
    .map_err(|e| CallError::Signing(e.to_string()))?;
    let (instructions, _) = sign(signable, &params)
        .map_err(|e| CallError::Signing(e.to_string()))?
        .into_parts();
    instructions.apply_to_request_http1x(request);
    Ok(())
}

fn body_of(data: &Option<String>) -> Result<Vec<u8>, CallError> {
    Ok(match data.as_deref() {
        None => Vec::new(),
        Some("-") => {
            let mut bytes = Vec::new();
            std::io::stdin().read_to_end(&mut bytes)?;
            bytes
        }
        Some(text) => match text.strip_prefix('@') {
            Some(file) => std::fs::read(file)?,
            None => text.as_bytes().to_vec(),
        },
    })
}

/// Run `authedapi call`; returns the process exit code.
pub async fn run(args: CallArgs) -> Result<i32, CallError> {
    let client = kube::Client::try_default().await?;
    let api: Api<AuthedApi> = match &args.namespace {
        Some(ns) => Api::namespaced(client, ns),
        None => Api::default_namespaced(client),
    };
    let obj = api
        .get_opt(&args.name)
        .await?
        .ok_or_else(|| CallError::NotFound(args.name.clone()))?;
    let generation = obj.metadata.generation.unwrap_or_default();
    let status = obj.status.clone().unwrap_or_default();
    if !crate::status::is_ready(&status.conditions, generation) {
        let ready = status.conditions.iter().find(|c| c.type_ == "Ready");
        return Err(CallError::NotReady {
            name: args.name.clone(),
            reason: ready
                .map(|c| c.reason.clone())
                .unwrap_or_else(|| "NoStatus".into()),
            message: ready
                .map(|c| c.message.clone())
                .unwrap_or_else(|| "the operator has not reported on it yet".into()),
        });
    }
    let route = match_route(&obj.spec.routes, &args.method, &args.path)?;
    let authorization = obj.spec.authorization_of(route);
    let region = status.region.clone().unwrap_or_else(|| "us-east-1".into());
    let issuer = issuer_of(&obj.spec).map_err(|e| CallError::Spec(e.0))?;

    // A Lambda authorizer reads what the caller sends (-H): no login for it either.
    let needs_token = matches!(authorization, Authorization::Iam | Authorization::Jwt);
    let id_token = if !needs_token && !args.print_credentials {
        None
    } else {
        Some(match (&args.id_token, &args.code) {
            _ if args.login => {
                let endpoints = discover(&issuer).await?;
                crate::login::login(crate::login::Login {
                    endpoints: &endpoints,
                    client_id: &issuer.client_id,
                    client_secret: args
                        .client_secret_env
                        .as_deref()
                        .map(secret_from)
                        .transpose()?,
                    redirect_uri: &args.redirect_uri,
                    timeout: args.login_timeout,
                })
                .await?
            }
            (Some(t), _) if t == "-" => read_stdin()?,
            (Some(t), _) => t.clone(),
            (None, Some(code)) => {
                let endpoints = discover(&issuer).await?;
                let secret_env = args.client_secret_env.as_deref().unwrap_or_default();
                exchange_code(
                    &endpoints,
                    &issuer.client_id,
                    secret_env,
                    code,
                    &args.redirect_uri,
                )
                .await?
            }
            (None, None) => {
                return Err(CallError::TokenNeeded {
                    route: route.route.clone(),
                    who: issuer.display_name(),
                });
            }
        })
    };

    let credentials = match (
        &id_token,
        authorization == Authorization::Iam || args.print_credentials,
    ) {
        (Some(token), true) => {
            let pool = status.identity_pool_id.clone().unwrap_or_default();
            Some(credentials(&region, &pool, &issuer, token).await?)
        }
        _ => None,
    };
    if args.print_credentials {
        let c = credentials.expect("credentials were fetched for --print-credentials");
        println!("export AWS_ACCESS_KEY_ID={}", c.access_key_id());
        println!("export AWS_SECRET_ACCESS_KEY={}", c.secret_access_key());
        if let Some(token) = c.session_token() {
            println!("export AWS_SESSION_TOKEN={token}");
        }
        println!("export AWS_REGION={region}");
        return Ok(0);
    }

    let endpoint = status.api_endpoint.clone().unwrap_or_default();
    let url = format!("{}{}", endpoint.trim_end_matches('/'), args.path);
    let mut request = http::Request::builder()
        .method(args.method.to_ascii_uppercase().as_str())
        .uri(&url)
        .body(body_of(&args.data)?)
        .map_err(|e| CallError::Signing(e.to_string()))?;
    for header in &args.headers {
        let (name, value) = header
            .split_once(':')
            .ok_or_else(|| CallError::BadHeader(header.clone()))?;
        let name = http::HeaderName::try_from(name.trim())
            .map_err(|_| CallError::BadHeader(header.clone()))?;
        let value = http::HeaderValue::try_from(value.trim())
            .map_err(|_| CallError::BadHeader(header.clone()))?;
        request.headers_mut().insert(name, value);
    }
    match authorization {
        Authorization::Iam => {
            let c = credentials.expect("IAM routes fetch credentials");
            sign_request(&mut request, &c, &region, SystemTime::now())?;
        }
        Authorization::Jwt => {
            let token = id_token.expect("JWT routes need the ID token");
            let value = http::HeaderValue::try_from(format!("Bearer {token}")).map_err(|_| {
                CallError::TokenRefused {
                    who: issuer.display_name(),
                    message: "the token is not a valid header value".into(),
                }
            })?;
            request
                .headers_mut()
                .insert(http::header::AUTHORIZATION, value);
        }
        Authorization::None | Authorization::Lambda => {}
    }

    let response = https::send(request).await?;
    let status_code = response.status;
    let body = String::from_utf8_lossy(&response.body);
    println!("HTTP {}", status_code.as_u16());
    println!("{body}");
    Ok(if status_code.is_success() { 0 } else { 1 })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{HttpTarget, Target};

    fn route(key: &str) -> Route {
        Route {
            route: key.into(),
            authorization: None,
            authorizer: None,
            scopes: None,
            throttling: None,
            target: Target {
                lambda: None,
                http: Some(HttpTarget {
                    url: "https://example.com".into(),
                }),
                private: None,
            },
        }
    }

    /// Issuers' codes are URL-safe base64: one in 64 begins with '-', which clap would
    /// otherwise take for an option (and `call --code` failed at random).
    #[test]
    fn a_code_beginning_with_a_hyphen_is_a_code() {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            call: CallArgs,
        }
        let cli = <Cli as clap::Parser>::try_parse_from([
            "call",
            "api",
            "GET",
            "/private",
            "--code",
            "-1xYz_",
            "--client-secret-env",
            "SECRET",
        ])
        .unwrap();
        assert_eq!(cli.call.code.as_deref(), Some("-1xYz_"));
    }

    #[test]
    fn picks_the_most_specific_route() {
        let routes = vec![
            route("GET /items/{id}"),
            route("GET /items/special"),
            route("ANY /items/{id}"),
            route("GET /files/{proxy+}"),
        ];
        let key = |m: &str, p: &str| match_route(&routes, m, p).unwrap().route.clone();
        assert_eq!(key("GET", "/items/special"), "GET /items/special");
        assert_eq!(key("get", "/items/42"), "GET /items/{id}");
        assert_eq!(key("DELETE", "/items/42"), "ANY /items/{id}");
        assert_eq!(key("GET", "/files/a/b/c?x=1"), "GET /files/{proxy+}");
    }

    /// API Gateway compares segment by segment: `/a/b/c` goes to `GET /a/{x}/{y}`, whose
    /// first segment is literal, though `GET /{p}/b/c` has more literals. (Scores added up
    /// picked the second, and signed the request for a route it never reached.)
    #[test]
    fn signs_for_the_route_api_gateway_picks_not_the_one_with_most_literals() {
        let routes = vec![route("GET /{p}/b/c"), route("GET /a/{x}/{y}")];
        assert_eq!(
            match_route(&routes, "GET", "/a/b/c").unwrap().route,
            "GET /a/{x}/{y}"
        );
    }

    #[test]
    fn unknown_paths_and_methods_are_told_apart() {
        let routes = vec![route("GET /private"), route("POST /private")];
        match match_route(&routes, "GET", "/nowhere") {
            Err(CallError::RouteNotInSpec { routes, .. }) => {
                assert_eq!(routes, "GET /private, POST /private")
            }
            other => panic!("{other:?}"),
        }
        match match_route(&routes, "DELETE", "/private") {
            Err(CallError::WrongMethod { allowed, .. }) => assert_eq!(allowed, "GET, POST"),
            other => panic!("{other:?}"),
        }
        let with_default = vec![route("GET /private"), route("$default")];
        assert_eq!(
            match_route(&with_default, "PUT", "/x").unwrap().route,
            "$default"
        );
    }

    fn okta() -> Issuer {
        Issuer {
            name: "example.okta.com/oauth2/default".into(),
            token_issuer: "https://example.okta.com/oauth2/default".into(),
            client_id: "c".into(),
            audience: vec!["c".into()],
            auth0: false,
        }
    }

    #[test]
    fn discovery_gives_the_endpoints_of_the_issuer_it_names_exactly() {
        let url = okta().discovery_url();
        assert_eq!(
            url,
            "https://example.okta.com/oauth2/default/.well-known/openid-configuration"
        );
        let document = serde_json::json!({
            "issuer": "https://example.okta.com/oauth2/default",
            "authorization_endpoint": "https://example.okta.com/oauth2/default/v1/authorize",
            "token_endpoint": "https://example.okta.com/oauth2/default/v1/token"
        });
        assert_eq!(
            endpoints_of(&okta(), &url, &document).unwrap(),
            Endpoints {
                authorization: "https://example.okta.com/oauth2/default/v1/authorize".into(),
                token: "https://example.okta.com/oauth2/default/v1/token".into(),
                who: "example.okta.com/oauth2/default".into(),
            }
        );
        let mut slash = document.clone();
        slash["issuer"] = "https://example.okta.com/oauth2/default/".into();
        let e = endpoints_of(&okta(), &url, &slash).unwrap_err().to_string();
        assert!(e.contains("names the issuer"), "{e}");
        let mut plain = document;
        plain["token_endpoint"] = "http://example.okta.com/token".into();
        assert!(endpoints_of(&okta(), &url, &plain).is_err());
    }

    #[test]
    fn greedy_parameters_need_a_segment() {
        let routes = vec![route("GET /files/{proxy+}")];
        assert!(match_route(&routes, "GET", "/files").is_err());
        assert!(match_route(&routes, "GET", "/files/").is_err());
    }
}
