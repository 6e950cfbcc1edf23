//! Which requests each role may invoke, exactly.
//!
//! A role's policy allows `execute-api:Invoke` on its routes, each written as an IAM
//! resource pattern with `*` for its path parameters. IAM's `*` matches any characters,
//! `/` included, so `GET /pets/{id}` as `GET/pets/*` also matches `GET /pets/1/owner`,
//! which API Gateway may route to another role's route; and a role holding `$default`
//! matches everything. So a role's policy also denies the other roles' routes that
//! overlap its own, and the result is then *checked* against API Gateway's routing, over
//! every request there is: requests are sequences of path segments, every route and
//! every pattern is a small automaton over them, and their product is explored until no
//! new state appears. The policy must allow exactly the requests API Gateway routes to
//! the role's IAM routes, and none routed to another IAM route. Where IAM cannot say
//! that, the spec is refused with the routes involved and a request that shows why.
//!
//! Requests are taken to have no empty path segment (no `//`, no trailing `/`).

use std::collections::{BTreeSet, HashMap, VecDeque};

use crate::routing::{RouteKey, Segment as Seg};

/// The methods a route key may name (besides ANY).
pub const METHODS: [&str; 7] = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

/// One role's routes: IAM route keys of the spec.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Role<'a> {
    /// Names the role in messages ("access rule \"admin\"", "the authenticated role").
    pub name: &'a str,
    pub routes: Vec<&'a str>,
}

/// A role's Invoke resources, as suffixes after `<apiId>/<stage>/`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RoleResources {
    pub allow: Vec<String>,
    pub deny: Vec<String>,
}

/// Why no policy gives a role exactly its routes.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Inexpressible(pub String);

/// A route key as a language of requests ([`RouteKey`]: API Gateway's own precedence),
/// with the key itself for messages.
#[derive(Clone, Debug)]
struct RouteLanguage {
    key: String,
    route: RouteKey,
}

impl std::ops::Deref for RouteLanguage {
    type Target = RouteKey;

    fn deref(&self) -> &RouteKey {
        &self.route
    }
}

impl RouteLanguage {
    fn parse(key: &str) -> Self {
        Self {
            key: key.to_owned(),
            route: RouteKey::parse(key),
        }
    }

    /// The IAM resource patterns (after `<apiId>/<stage>/`) covering this route: one per
    /// method it answers, parameters as `*`. Literal `*` is written `${*}`, IAM's escape.
    fn patterns(&self) -> Vec<String> {
        if self.default {
            return vec!["*".to_owned()];
        }
        let path: Vec<String> = self
            .segments
            .iter()
            .map(|s| match s {
                Seg::Literal(l) => l.replace('*', "${*}"),
                Seg::Param | Seg::Greedy => "*".to_owned(),
            })
            .collect();
        let methods: Vec<&str> = match &self.method {
            Some(m) => vec![m.as_str()],
            None => METHODS.to_vec(),
        };
        methods
            .into_iter()
            .map(|m| format!("{m}/{}", path.join("/")))
            .collect()
    }

    /// The language of this route's IAM patterns, for requests of `method`: the same
    /// segments with every parameter widened to `*` (one or more segments).
    fn pattern_language(&self) -> Vec<Seg> {
        self.segments
            .iter()
            .map(|s| match s {
                Seg::Literal(l) => Seg::Literal(l.clone()),
                Seg::Param | Seg::Greedy => Seg::Greedy,
            })
            .collect()
    }
}

/// Positions reachable in `segments` (bit i: i segments matched) after `symbol`.
fn step(segments: &[Seg], positions: u128, symbol: &Symbol) -> u128 {
    let mut next = 0u128;
    for (i, seg) in segments.iter().enumerate() {
        if positions & (1 << i) == 0 {
            continue;
        }
        match seg {
            Seg::Literal(l) if matches!(symbol, Symbol::Lit(s) if s == l) => next |= 1 << (i + 1),
            Seg::Literal(_) => {}
            Seg::Param => next |= 1 << (i + 1),
            // One or more: stay (more to come) or finish here.
            Seg::Greedy => next |= (1 << i) | (1 << (i + 1)),
        }
    }
    next
}

fn accepts(segments: &[Seg], positions: u128) -> bool {
    positions & (1 << segments.len()) != 0
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Symbol {
    Lit(String),
    /// Any segment no route names.
    Other,
}

/// An automaton over request paths for one method: per route, the positions of the route
/// and of its patterns. A state keeps only the live ones (most die at the first segment),
/// and from a state only the literals its live positions name, plus "any other segment",
/// lead anywhere new: that keeps exploring a 300-route API to a few thousand small steps.
struct Product<'a> {
    routes: &'a [RouteLanguage],
    patterns: Vec<Vec<Seg>>,
}

/// One explored request: what API Gateway routes it to, which patterns match it.
struct Request {
    path: Vec<Symbol>,
    routed: Option<usize>,
    /// Routes whose patterns match this request, ascending.
    matching_patterns: Vec<usize>,
}

impl Request {
    fn matches(&self, route: usize) -> bool {
        self.matching_patterns.binary_search(&route).is_ok()
    }
}

/// Live automata: (automaton, positions), automaton i < n a route, n + i its patterns.
type State = Vec<(usize, u128)>;

impl Product<'_> {
    fn segments(&self, automaton: usize) -> &[Seg] {
        let n = self.routes.len();
        if automaton < n {
            &self.routes[automaton].segments
        } else {
            &self.patterns[automaton - n]
        }
    }

    /// Every distinct behaviour of requests of `method`, one shortest request each.
    fn explore(&self, method: &str) -> Result<Vec<Request>, Inexpressible> {
        let n = self.routes.len();
        let start: State = (0..2 * n)
            .filter(|&a| self.routes[a % n].answers(method))
            .map(|a| (a, 1u128))
            .collect();
        let mut seen: HashMap<State, ()> = HashMap::new();
        let mut queue = VecDeque::from([(start, Vec::new())]);
        let mut found = Vec::new();
        while let Some((state, path)) = queue.pop_front() {
            if state.is_empty() || seen.insert(state.clone(), ()).is_some() {
                continue;
            }
            let accepting = |a: usize, positions: u128| {
                self.routes[a % n].default || accepts(self.segments(a), positions)
            };
            let matching: Vec<usize> = state
                .iter()
                .filter(|&&(a, p)| a < n && accepting(a, p))
                .map(|&(a, _)| a)
                .collect();
            let routed = matching
                .iter()
                .copied()
                .max_by(|&a, &b| self.routes[a].rank().cmp(&self.routes[b].rank()));
            if let Some(best) = routed
                && let Some(&other) = matching
                    .iter()
                    .find(|&&i| i != best && self.routes[i].rank() == self.routes[best].rank())
            {
                return Err(Inexpressible(format!(
                    "spec.routes: {:?} and {:?} match the same requests (e.g. {}): API \
                     Gateway cannot tell them apart; remove one",
                    self.routes[best].key,
                    self.routes[other].key,
                    show(method, &path)
                )));
            }
            let matching_patterns = state
                .iter()
                .filter(|&&(a, p)| a >= n && accepting(a, p))
                .map(|&(a, _)| a - n)
                .collect();
            found.push(Request {
                path: path.clone(),
                routed,
                matching_patterns,
            });
            // The literals some live position names, and any other segment.
            let mut symbols: BTreeSet<Symbol> = BTreeSet::from([Symbol::Other]);
            for &(a, positions) in &state {
                for (i, seg) in self.segments(a).iter().enumerate() {
                    if let Seg::Literal(l) = seg
                        && positions & (1 << i) != 0
                    {
                        symbols.insert(Symbol::Lit(l.clone()));
                    }
                }
            }
            for symbol in symbols {
                let next: State = state
                    .iter()
                    .map(|&(a, p)| (a, step(self.segments(a), p, &symbol)))
                    .filter(|&(_, p)| p != 0)
                    .collect();
                let mut longer = path.clone();
                longer.push(symbol);
                queue.push_back((next, longer));
            }
        }
        Ok(found)
    }
}

fn show(method: &str, path: &[Symbol]) -> String {
    let segments: Vec<&str> = path
        .iter()
        .map(|s| match s {
            Symbol::Lit(l) => l.as_str(),
            Symbol::Other => "x",
        })
        .collect();
    format!("{method} /{}", segments.join("/"))
}

/// The Invoke resources of each role (in `roles`' order), given every route key of the
/// spec and which of them use IAM authorization; or why IAM cannot give some role exactly
/// its routes.
pub fn role_resources(
    all_routes: &[&str],
    iam_routes: &BTreeSet<&str>,
    roles: &[Role<'_>],
) -> Result<Vec<RoleResources>, Inexpressible> {
    let routes: Vec<RouteLanguage> = all_routes.iter().map(|k| RouteLanguage::parse(k)).collect();
    let index = |key: &str| routes.iter().position(|r| r.key == key);
    let product = Product {
        routes: &routes,
        patterns: routes
            .iter()
            .map(|r| {
                if r.default {
                    vec![Seg::Greedy]
                } else {
                    r.pattern_language()
                }
            })
            .collect(),
    };
    let mut explored = Vec::new();
    for method in METHODS {
        explored.push((method, product.explore(method)?));
    }
    let owner_of = |route: usize| {
        roles
            .iter()
            .position(|r| r.routes.contains(&routes[route].key.as_str()))
    };
    let is_iam = |route: usize| iam_routes.contains(routes[route].key.as_str());

    let mut resources = Vec::with_capacity(roles.len());
    for role in roles {
        let own: Vec<usize> = role.routes.iter().filter_map(|k| index(k)).collect();
        let owned: BTreeSet<usize> = own.iter().copied().collect();
        // Deny the other IAM routes our patterns would reach: those some request routed
        // to them matches (not $default: denying everything would deny our own).
        let deny: Vec<usize> = (0..routes.len())
            .filter(|&x| is_iam(x) && !own.contains(&x) && !routes[x].default)
            .filter(|&x| {
                explored.iter().any(|(_, requests)| {
                    requests.iter().any(|q| {
                        q.routed == Some(x) && q.matching_patterns.iter().any(|r| owned.contains(r))
                    })
                })
            })
            .collect();
        for (method, requests) in &explored {
            for q in requests {
                let allowed = q.matching_patterns.iter().any(|r| owned.contains(r))
                    && !deny.iter().any(|&x| q.matches(x));
                let Some(routed) = q.routed else { continue };
                if !is_iam(routed) {
                    continue; // IAM is not asked about this request
                }
                let intended = owned.contains(&routed);
                if allowed == intended {
                    continue;
                }
                let request = show(method, &q.path);
                let owner = owner_of(routed)
                    .map_or_else(|| "no role".to_owned(), |o| roles[o].name.to_owned());
                let culprit = if intended {
                    deny.iter().find(|&&x| q.matches(x)).copied()
                } else {
                    own.iter().find(|&&r| q.matches(r)).copied()
                };
                let culprit = culprit.map_or_else(String::new, |c| format!("{:?}", routes[c].key));
                return Err(Inexpressible(if intended {
                    format!(
                        "spec.access: IAM cannot give {} exactly its routes: a request like {request} is \
                         routed by API Gateway to {:?}, which is theirs, but the policy must \
                         deny {culprit} to them (IAM's * matches '/' too, so that pattern \
                         covers this request as well). Give the overlapping routes to one \
                         rule, or make their paths differ in a literal segment",
                        role.name, routes[routed].key
                    )
                } else {
                    format!(
                        "spec.access: IAM cannot give {} exactly its routes: a request like {request} is \
                         routed by API Gateway to {:?} ({owner}), but the policy for \
                         {culprit} covers it too (IAM's * matches '/' too). Give the \
                         overlapping routes to one rule, or make their paths differ in a \
                         literal segment",
                        role.name, routes[routed].key
                    )
                }));
            }
        }
        let patterns = |ids: &[usize]| -> Vec<String> {
            ids.iter()
                .flat_map(|&i| routes[i].patterns())
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect()
        };
        resources.push(RoleResources {
            allow: patterns(&own),
            deny: patterns(&deny),
        });
    }
    Ok(resources)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resources(
        all: &[&str],
        iam: &[&str],
        roles: &[(&str, &[&str])],
    ) -> Result<Vec<RoleResources>, Inexpressible> {
        let iam: BTreeSet<&str> = iam.iter().copied().collect();
        let roles: Vec<Role<'_>> = roles
            .iter()
            .map(|(name, routes)| Role {
                name,
                routes: routes.to_vec(),
            })
            .collect();
        role_resources(all, &iam, &roles)
    }

    #[test]
    fn literal_routes_are_exact_and_need_no_deny() {
        let r = resources(
            &["GET /private", "GET /admin", "GET /public"],
            &["GET /private", "GET /admin"],
            &[("reader", &["GET /private"]), ("admin", &["GET /admin"])],
        )
        .unwrap();
        assert_eq!(r[0].allow, ["GET/private"]);
        assert!(r[0].deny.is_empty());
        assert_eq!(r[1].allow, ["GET/admin"]);
    }

    #[test]
    fn any_becomes_every_method_not_a_wildcard() {
        let r = resources(&["ANY /items"], &["ANY /items"], &[("a", &["ANY /items"])]).unwrap();
        assert_eq!(r[0].allow.len(), 7);
        assert!(r[0].allow.contains(&"DELETE/items".to_owned()));
        assert!(r[0].allow.iter().all(|p| !p.starts_with('*')));
    }

    #[test]
    fn a_parameter_reaching_into_another_rules_route_is_denied_there() {
        let r = resources(
            &["GET /pets/{id}", "GET /pets/{id}/owner"],
            &["GET /pets/{id}", "GET /pets/{id}/owner"],
            &[
                ("reader", &["GET /pets/{id}"]),
                ("admin", &["GET /pets/{id}/owner"]),
            ],
        )
        .unwrap();
        assert_eq!(r[0].allow, ["GET/pets/*"]);
        assert_eq!(r[0].deny, ["GET/pets/*/owner"]);
        assert!(r[1].deny.is_empty(), "{r:?}");
    }

    #[test]
    fn a_greedy_route_of_another_rule_below_ours_cannot_be_separated() {
        let e = resources(
            &["GET /pets/{id}", "GET /pets/{rest+}"],
            &["GET /pets/{id}", "GET /pets/{rest+}"],
            &[
                ("reader", &["GET /pets/{id}"]),
                ("admin", &["GET /pets/{rest+}"]),
            ],
        )
        .unwrap_err();
        assert!(e.0.contains("GET /pets/x is routed"), "{e}");
        assert!(e.0.contains("\"GET /pets/{rest+}\""), "{e}");
    }

    #[test]
    fn an_iam_default_route_of_another_rule_is_refused_when_parameters_reach_it() {
        let e = resources(
            &["GET /pets/{id}", "$default"],
            &["GET /pets/{id}", "$default"],
            &[("reader", &["GET /pets/{id}"]), ("fallback", &["$default"])],
        )
        .unwrap_err();
        assert!(e.0.contains("$default"), "{e}");
    }

    #[test]
    fn a_role_holding_default_denies_the_other_literal_routes() {
        let r = resources(
            &["GET /admin", "$default"],
            &["GET /admin", "$default"],
            &[("admin", &["GET /admin"]), ("everyone", &["$default"])],
        )
        .unwrap();
        assert_eq!(r[1].allow, ["*"]);
        assert_eq!(r[1].deny, ["GET/admin"]);
    }

    #[test]
    fn routes_of_other_kinds_are_not_denied() {
        // GET /pets/{id}/owner is public: IAM is never asked about its requests.
        let r = resources(
            &["GET /pets/{id}", "GET /pets/{id}/owner"],
            &["GET /pets/{id}"],
            &[("reader", &["GET /pets/{id}"])],
        )
        .unwrap();
        assert!(r[0].deny.is_empty());
    }

    #[test]
    fn one_role_with_every_iam_route_is_always_exact() {
        let all = [
            "GET /pets/{id}",
            "GET /pets/{rest+}",
            "$default",
            "POST /x/{a}/y",
        ];
        let r = resources(&all, &all, &[("all", &all)]).unwrap();
        assert!(r[0].deny.is_empty());
    }

    #[test]
    fn literal_stars_are_escaped() {
        let r = resources(&["GET /a*b"], &["GET /a*b"], &[("a", &["GET /a*b"])]).unwrap();
        assert_eq!(r[0].allow, ["GET/a${*}b"]);
    }
}

#[cfg(test)]
mod cost {
    use super::*;

    /// Not a timing assertion: prints how long the check takes for the largest API.
    #[test]
    fn three_hundred_routes() {
        let keys: Vec<String> = (0..300)
            .map(|i| match i % 3 {
                0 => format!("GET /r{i}/{{id}}"),
                1 => format!("POST /r{i}/items/{{id}}/sub"),
                _ => format!("ANY /r{i}/{{rest+}}"),
            })
            .collect();
        let all: Vec<&str> = keys.iter().map(String::as_str).collect();
        let iam: BTreeSet<&str> = all.iter().copied().collect();
        let roles = [
            Role {
                name: "a",
                routes: all[..150].to_vec(),
            },
            Role {
                name: "b",
                routes: all[150..].to_vec(),
            },
        ];
        let started = std::time::Instant::now();
        role_resources(&all, &iam, &roles).unwrap();
        eprintln!("[measure] 300 routes, 2 roles: {:?}", started.elapsed());
    }
}
