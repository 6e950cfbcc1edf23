//! authedapi: a Kubernetes operator that turns one `AuthedApi` resource into an AWS HTTP
//! API whose private routes only users logged in with Auth0 can call.

pub mod api;
pub mod aws;
pub mod call;
pub mod controller;
pub mod crdgen;
pub mod https;
pub mod iam_policy;
pub mod leader;
pub mod login;
pub mod metrics;
pub mod operations;
pub mod plan;
pub mod policy;
pub mod readiness;
pub mod reconcile;
pub mod route_access;
pub mod routing;
pub mod status;
pub mod tenant;
#[cfg(feature = "test-hooks")]
pub mod testhooks;
