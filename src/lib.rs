//! authedapi: a Kubernetes operator that turns one `AuthedApi` resource into an AWS HTTP
//! API whose private routes only users logged in with Auth0 can call.
#![forbid(unsafe_code)]

pub mod api;
pub mod aws;
pub mod crdgen;
