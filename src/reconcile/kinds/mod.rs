//! One module per AWS (or Kubernetes) resource kind, each a [`Managed`] implementation
//! with a pure diff and its unit tests. A new kind is a module here, its entry in
//! [`REGISTERED`] (the order: the crash tests read it, and a test checks that sync
//! follows it and cleanup reverses it) and its calls in the in-memory fake.
//!
//! [`Managed`]: super::driver::Managed

pub mod api_mapping;
pub mod authorizer;
pub mod domain_name;
pub mod http_api;
pub mod identity_pool;
pub mod integrations;
pub mod lambda_authorizer;
pub mod oidc_provider;
pub mod outputs;
pub mod permissions;
pub mod pool_roles;
pub mod role;
pub mod role_policy;
pub mod routes;
pub mod stage;
pub mod vpc_link;

use super::driver::KindInfo;
use super::events::Call;

/// Every kind, in the order a reconcile creates them (deletion goes the other way, with
/// the API's children going with it).
pub const REGISTERED: &[&KindInfo] = &[
    &oidc_provider::INFO,
    // Before the integrations through it; deleted after the API (AWS keeps a link in use).
    &vpc_link::INFO,
    &http_api::INFO,
    &integrations::INFO,
    &authorizer::INFO,
    &lambda_authorizer::INFO,
    &routes::INFO,
    &stage::INFO,
    &domain_name::INFO,
    &api_mapping::INFO,
    &permissions::INFO,
    &identity_pool::INFO,
    &role::INFO,
    &role_policy::INFO,
    &pool_roles::INFO,
    &outputs::INFO,
];

/// Whether the kinds `visited` (named, in the order first ensured) come in `order`: a
/// kind not in it, or one before a kind it follows, is out of order.
pub fn follows<'k>(visited: &[&str], order: impl IntoIterator<Item = &'k KindInfo>) -> bool {
    let order: Vec<&str> = order.into_iter().map(|kind| kind.name).collect();
    let mut at = 0;
    visited
        .iter()
        .all(|name| match order.iter().skip(at).position(|k| k == name) {
            Some(step) => {
                at += step;
                true
            }
            None => false,
        })
}

/// Every AWS operation that creates something, for the crash tests.
pub fn creates() -> impl Iterator<Item = Call> {
    REGISTERED
        .iter()
        .flat_map(|kind| kind.creates.iter().copied())
}

/// Where the crash tests crash: after each create of every kind, in the order a first
/// reconcile makes them. A call a kind shares with an earlier one (CreateAuthorizer, of
/// the JWT and the Lambda authorizers) is named by its occurrence, "CreateAuthorizer#2",
/// as `AUTHEDAPI_TEST_CRASH_AFTER` takes it.
pub fn crash_points() -> Vec<String> {
    let mut points: Vec<String> = Vec::new();
    for call in creates() {
        let name = call.to_string();
        let before = points
            .iter()
            .filter(|p| p.split('#').next() == Some(name.as_str()))
            .count();
        points.push(match before {
            0 => name,
            n => format!("{name}#{}", n + 1),
        });
    }
    points
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_follow_the_order_when_each_comes_after_the_one_before() {
        let registered = REGISTERED.iter().copied();
        assert!(follows(&["OIDC provider", "HTTP API"], registered.clone()));
        assert!(follows(&[], registered.clone()));
        assert!(!follows(&["HTTP API", "OIDC provider"], registered.clone()));
        assert!(!follows(&["no such kind"], registered.clone()));
        assert!(follows(&["HTTP API", "OIDC provider"], registered.rev()));
    }

    #[test]
    fn a_create_two_kinds_make_is_crashed_at_each_occurrence() {
        let points = crash_points();
        assert_eq!(points.len(), creates().count());
        assert!(
            points.contains(&"CreateAuthorizer".to_owned()),
            "{points:?}"
        );
        assert!(
            points.contains(&"CreateAuthorizer#2".to_owned()),
            "{points:?}"
        );
    }

    #[test]
    fn every_kind_is_registered_once() {
        let mut names: Vec<&str> = REGISTERED.iter().map(|kind| kind.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), REGISTERED.len());
    }
}
