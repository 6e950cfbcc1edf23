//! A property over random route tables, access rules and users: for every (user, request)
//! pair, what the rig's data plane lets through (routing, SigV4, the caller's role policy
//! judged by the IAM judge, JWT, Cognito's role mapping) is exactly what the spec says
//! that user may do. Seeded (`AUTHEDAPI_PROPERTY_SEED`, default below); a failure prints
//! the seed, the table, the rules, the user and the request.
//!
//! The spec's word: a route with `none` is everyone's; `jwt` is every logged-in user's; an
//! `iam` route is the routes of the first access rule the user's claim matches, else (when
//! `unmatched` is AuthenticatedRole) the default role's: every IAM route without rules,
//! with rules those no rule names if `unlistedRoutes` is AuthenticatedRole, else none. A
//! spec the operator refuses because IAM cannot express it exactly is counted, not called.

mod common;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use authedapi::api::AuthedApi;
use authedapi_rig::{TestNamespace, shared};
use kube::api::Api;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use common::web::{Session, cognito_session, get, id_token, signed};
use common::{Operator, apply, install_crd, moved_into, wait_for};

const DEFAULT_SEED: u64 = 0x00a1_1ce5_5eed;
const TABLES: usize = 16;
const ROLES: &str = "https://rig.example.com/role";

#[derive(Clone, Copy, Debug, PartialEq)]
enum Auth {
    Iam,
    Jwt,
    None,
}

#[derive(Clone, Debug)]
struct Table {
    routes: Vec<(String, Auth)>,
    /// Rule name -> its routes (rules are tried in this order).
    rules: Vec<(String, Vec<String>)>,
    with_access: bool,
    deny_unmatched: bool,
    unlisted_to_default: bool,
}

fn route_key(rng: &mut StdRng) -> String {
    if rng.random_ratio(1, 12) {
        return "$default".into();
    }
    let method = ["GET", "POST", "ANY"][rng.random_range(0..3)];
    let depth = rng.random_range(0..4);
    let mut segments: Vec<String> = (0..depth)
        .map(|i| {
            if rng.random_ratio(2, 5) {
                format!("{{p{i}}}")
            } else {
                ["a", "b", "c"][rng.random_range(0..3)].to_owned()
            }
        })
        .collect();
    if rng.random_ratio(1, 4) {
        segments.push("{rest+}".into());
    }
    format!("{method} /{}", segments.join("/"))
}

fn table(rng: &mut StdRng) -> Table {
    let mut routes: BTreeMap<String, Auth> = BTreeMap::new();
    for _ in 0..rng.random_range(3..9) {
        let auth = match rng.random_range(0..10) {
            0..6 => Auth::Iam,
            6..8 => Auth::None,
            _ => Auth::Jwt,
        };
        routes.insert(route_key(rng), auth);
    }
    let with_access = rng.random_ratio(3, 4);
    let rules_count = rng.random_range(1..4);
    let mut rules: Vec<(String, Vec<String>)> = (0..rules_count)
        .map(|i| (format!("r{i}"), Vec::new()))
        .collect();
    if with_access {
        for (key, auth) in &routes {
            if *auth == Auth::Iam {
                let slot = rng.random_range(0..=rules_count);
                if slot < rules_count {
                    rules[slot].1.push(key.clone());
                }
            }
        }
    }
    Table {
        routes: routes.into_iter().collect(),
        rules: if with_access { rules } else { Vec::new() },
        with_access,
        deny_unmatched: rng.random_bool(0.5),
        unlisted_to_default: rng.random_bool(0.5),
    }
}

impl Table {
    fn spec(&self, function: &str) -> Value {
        let routes: Vec<Value> = self
            .routes
            .iter()
            .map(|(key, auth)| {
                json!({
                    "route": key,
                    "authorization": match auth { Auth::Iam => "iam", Auth::Jwt => "jwt", Auth::None => "none" },
                    "target": {"lambda": {"functionArn": function}}
                })
            })
            .collect();
        let mut spec = json!({
            "stage": "dev",
            "auth0": {"domain": shared::AUTH0_DOMAIN, "clientId": shared::AUTH0_CLIENT_ID},
            "routes": routes,
        });
        // A rule must name at least one route (the CRD says so).
        let rules: Vec<Value> = self
            .rules
            .iter()
            .filter(|(_, routes)| !routes.is_empty())
            .map(|(name, routes)| {
                json!({"name": name, "claim": ROLES, "matchType": "Equals", "value": name, "routes": routes})
            })
            .collect();
        if self.with_access && !rules.is_empty() {
            spec["access"] = json!({
                "rules": rules,
                "unmatched": if self.deny_unmatched { "Deny" } else { "AuthenticatedRole" },
                "unlistedRoutes": if self.unlisted_to_default { "AuthenticatedRole" } else { "Nobody" },
            });
        }
        spec
    }

    fn has_rules(&self) -> bool {
        self.with_access && self.rules.iter().any(|(_, r)| !r.is_empty())
    }

    /// The IAM routes `role` (a user's claim value; None: no claim) may invoke, or None
    /// when the spec gives that user no credentials at all.
    fn allowed(&self, role: Option<&str>) -> Option<Vec<&str>> {
        let iam: Vec<&str> = self
            .routes
            .iter()
            .filter(|(_, a)| *a == Auth::Iam)
            .map(|(k, _)| k.as_str())
            .collect();
        if !self.has_rules() {
            return Some(iam);
        }
        if let Some((_, routes)) = self
            .rules
            .iter()
            .filter(|(_, r)| !r.is_empty())
            .find(|(name, _)| Some(name.as_str()) == role)
        {
            return Some(routes.iter().map(String::as_str).collect());
        }
        if self.deny_unmatched {
            return None;
        }
        let named: Vec<&str> = self
            .rules
            .iter()
            .flat_map(|(_, r)| r.iter().map(String::as_str))
            .collect();
        Some(if self.unlisted_to_default {
            iam.into_iter().filter(|k| !named.contains(k)).collect()
        } else {
            Vec::new()
        })
    }
}

/// Requests aimed at each route (parameters filled in, greedy parts one or two segments,
/// ANY as some method), and a few at random.
fn requests(table: &Table, rng: &mut StdRng) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (key, _) in &table.routes {
        for _ in 0..2 {
            let Some((method, path)) = key.split_once(' ') else {
                out.push(("GET".into(), "/zz/top".into()));
                continue;
            };
            let method = if method == "ANY" {
                ["GET", "POST", "DELETE"][rng.random_range(0..3)]
            } else {
                method
            };
            let path: Vec<String> = path
                .split('/')
                .filter(|s| !s.is_empty())
                .map(|s| match s {
                    "{rest+}" if rng.random_bool(0.5) => "g1/g2".to_owned(),
                    s if s.starts_with('{') => ["x", "a", "b"][rng.random_range(0..3)].to_owned(),
                    s => s.to_owned(),
                })
                .collect();
            out.push((method.to_owned(), format!("/{}", path.join("/"))));
        }
    }
    for _ in 0..3 {
        let depth = rng.random_range(0..4);
        let path: Vec<&str> = (0..depth)
            .map(|_| ["a", "b", "c", "x"][rng.random_range(0..4)])
            .collect();
        out.push((
            ["GET", "POST"][rng.random_range(0..2)].to_owned(),
            format!("/{}", path.join("/")),
        ));
    }
    out.sort();
    out.dedup();
    out
}

struct User {
    name: String,
    role: Option<String>,
    token: Option<String>,
    session: Option<Session>,
}

#[tokio::test]
async fn every_users_reach_is_what_the_spec_says() {
    let seed = std::env::var("AUTHEDAPI_PROPERTY_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_SEED);
    let mut rng = StdRng::seed_from_u64(seed);
    let client = shared::client().await;
    install_crd(&client).await.unwrap();
    let ns = TestNamespace::create(&client, "access-props")
        .await
        .unwrap();
    let account = shared::account();
    let config = account.sdk_config().await;
    shared::auth0();
    let http = shared::web().http_client().unwrap();
    let operator = Operator::start(&ns.name, &account, &[], &[]).await;
    let api: Api<AuthedApi> = Api::namespaced(client, &ns.name);
    let function = format!(
        "arn:aws:lambda:us-east-1:{}:function:props-handler",
        account.id
    );

    let (mut cases, mut refused_specs, mut tables_run) = (0usize, 0usize, 0usize);
    for t in 0..TABLES {
        let table = table(&mut rng);
        let name = format!("t{t}");
        let object = moved_into(
            &account,
            &config,
            json!({"apiVersion": "authedapi.dev/v1alpha1", "kind": "AuthedApi",
                   "metadata": {"name": name}, "spec": table.spec(&function)}),
        )
        .await;
        let case = |extra: &str| format!("seed {seed:#x}, table {t}: {table:#?}\n{extra}");
        apply(&api, &object).await;
        let obj = wait_for(
            &api,
            &name,
            &operator,
            Duration::from_secs(60),
            "Ready or refused",
            |o| {
                let conditions = o
                    .status
                    .as_ref()
                    .map(|s| s.conditions.as_slice())
                    .unwrap_or_default();
                authedapi::status::is_ready(conditions, o.metadata.generation.unwrap_or_default())
                    || conditions
                        .iter()
                        .any(|c| c.type_ == "Stalled" && c.status == "True")
            },
        )
        .await;
        let status = obj.status.unwrap();
        if let Some(stalled) = status
            .conditions
            .iter()
            .find(|c| c.type_ == "Stalled" && c.status == "True")
        {
            assert!(
                stalled.reason == "InvalidSpec" && stalled.message.contains("IAM cannot give"),
                "{}",
                case(&format!(
                    "stalled for another reason: {} {}",
                    stalled.reason, stalled.message
                ))
            );
            refused_specs += 1;
            continue;
        }
        tables_run += 1;
        let endpoint = status.api_endpoint.unwrap();
        let pool_id = status.identity_pool_id.unwrap();

        let mut users = vec![User {
            name: "anonymous".into(),
            role: None,
            token: None,
            session: None,
        }];
        let roles: Vec<Option<String>> = table
            .rules
            .iter()
            .map(|(n, _)| Some(n.clone()))
            .chain([Some("nobody".into()), None])
            .collect();
        for (i, role) in roles.into_iter().enumerate() {
            let username = format!("u{t}-{i}@example.com");
            let claims: Vec<(&str, Value)> = role.iter().map(|r| (ROLES, json!(r))).collect();
            let token = id_token(&username, &claims);
            let session = cognito_session(&config, &pool_id, &token).await;
            let expected = table.allowed(role.as_deref());
            assert_eq!(
                session.is_ok(),
                expected.is_some(),
                "{}",
                case(&format!(
                    "user {username} (role {role:?}): Cognito said {session:?}"
                ))
            );
            users.push(User {
                name: username,
                role,
                token: Some(token),
                session: session.ok(),
            });
        }

        for (method, path) in requests(&table, &mut rng) {
            let url = format!("{endpoint}{path}");
            // Which route API Gateway routes it to (the data plane says, on any answer).
            let probe = http
                .request(method.parse().unwrap(), &url)
                .send()
                .await
                .unwrap();
            let Some(route) = probe
                .headers()
                .get("x-rig-route-key")
                .map(|v| v.to_str().unwrap().to_owned())
            else {
                assert_eq!(
                    probe.status(),
                    404,
                    "{}",
                    case(&format!("{method} {path}: no route but {}", probe.status()))
                );
                continue;
            };
            let auth = table
                .routes
                .iter()
                .find(|(k, _)| *k == route)
                .map(|(_, a)| *a)
                .unwrap_or_else(|| {
                    panic!(
                        "{}",
                        case(&format!(
                            "{method} {path} routed to {route}, not a route of the table"
                        ))
                    )
                });
            for user in &users {
                let request = match (auth, &user.session, &user.token) {
                    (Auth::Iam, Some(session), _) => {
                        let mut r = get(&url);
                        *r.method_mut() = method.parse().unwrap();
                        signed(r, session)
                    }
                    (Auth::Jwt, _, Some(token)) => http
                        .request(method.parse().unwrap(), &url)
                        .bearer_auth(token)
                        .build()
                        .unwrap(),
                    _ => http.request(method.parse().unwrap(), &url).build().unwrap(),
                };
                let answer = http.execute(request).await.unwrap();
                let got = answer.status().as_u16();
                let body = answer.text().await.unwrap_or_default();
                let may = match auth {
                    Auth::None => true,
                    Auth::Jwt => user.token.is_some(),
                    Auth::Iam => {
                        user.session.is_some()
                            && table
                                .allowed(user.role.as_deref())
                                .is_some_and(|r| r.contains(&route.as_str()))
                    }
                };
                cases += 1;
                let mut context = String::new();
                let _ = write!(
                    context,
                    "user {} (role {:?}) {method} {path} -> route {route} ({auth:?}): got {got} {body}, spec says {}",
                    user.name,
                    user.role,
                    if may { "allowed" } else { "refused" }
                );
                assert_eq!(got == 200, may, "{}", case(&context));
                if !may {
                    assert!(matches!(got, 401 | 403), "{}", case(&context));
                }
            }
        }
    }
    eprintln!(
        "[measure] access property: seed {seed:#x}, {cases} (user, request) cases over {tables_run} tables; {refused_specs} specs refused as inexpressible"
    );
    assert!(
        cases >= 200,
        "only {cases} cases ran (seed {seed:#x}): too many specs refused"
    );
}
