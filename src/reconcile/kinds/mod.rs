//! One module per AWS (or Kubernetes) resource kind, each a [`Managed`] implementation
//! with a pure diff and its unit tests. A new kind is a module here, its entry in
//! [`REGISTERED`] (which the crash tests read) and its calls in the in-memory fake.
//!
//! [`Managed`]: super::driver::Managed

pub mod api_mapping;
pub mod authorizer;
pub mod domain_name;
pub mod http_api;
pub mod identity_pool;
pub mod integrations;
pub mod oidc_provider;
pub mod outputs;
pub mod permissions;
pub mod pool_roles;
pub mod role;
pub mod role_policy;
pub mod routes;
pub mod stage;

use super::driver::KindInfo;

/// Every kind, in the order a reconcile creates them (deletion goes the other way, with
/// the API's children going with it).
pub const REGISTERED: &[&KindInfo] = &[
    &oidc_provider::INFO,
    &http_api::INFO,
    &integrations::INFO,
    &authorizer::INFO,
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

/// Every AWS operation that creates something, for the crash tests.
pub fn creates() -> impl Iterator<Item = &'static str> {
    REGISTERED
        .iter()
        .flat_map(|kind| kind.creates.iter().copied())
}
