//! The operator end to end, one module per user-visible feature: `authedapi controller`
//! runs as a process against a real kube-apiserver and the AWS emulator (some tests
//! through a fault proxy), and every test reads the AWS state back from the emulator.
//! One test binary, so the rig starts and the AWS SDK and kube link once.
//!
//! - [`seed`]: the seed example becomes Ready with exactly the seed's AWS resources
//! - [`spec_edits`]: spec edits converge in place; `kubectl wait` sees each generation
//! - [`jwt`]: JWT routes get a JWT authorizer, which goes with the last JWT route
//! - [`lambda_authorizers`]: Lambda REQUEST authorizers run before their routes (allowed
//!   with context, 403, 401, cached); a function the tenant does not allow is refused
//! - [`stages`]: the dev and prod objects of one API share only the OIDC provider
//! - [`oidc_sharing`]: one OIDC provider per domain, shared, released, and never deleted
//!   when someone else made it
//! - [`access_rules`]: access by Auth0 claim, a role per rule; bad rules refused
//! - [`outputs`]: the outputs ConfigMap follows the object
//! - [`settings`]: CORS, throttling, access logs, endpoint, payload format
//! - [`domains`]: two stages on one custom domain at their base paths, the domain going
//!   with the last; a refused certificate stalls; a domain not ours is never adopted
//! - [`deletion`]: deleting removes every AWS resource (also under throttling); Retain
//!   keeps them
//! - [`drift`]: changes made directly in AWS are put back within one resync
//! - [`steady_state`]: an unchanged object costs no AWS writes
//! - [`throttling`]: objects converge with half of all AWS requests throttled
//! - [`access_denied`]: a step AWS keeps refusing stalls its object, which backs off
//! - [`isolation`]: nothing another namespace, cluster or team made is adopted, changed
//!   or deleted
//! - [`leader_election`]: only the leader reconciles; a standby takes over
//! - [`regions`]: an object's region stays when the operator's default region changes
//! - [`api_server_restart`]: the operator survives a restarted API server
//! - [`pause`]: a paused object gets no AWS call until the annotation goes
//! - [`observe_only`]: observe-only lists the diff and writes nothing
//! - [`vpc_links`]: a VPC link of ours carries private routes, is put back when changed
//!   behind our back and goes with the object; someone else's is used, never touched

#[path = "../common/mod.rs"]
mod common;

mod access_denied;
mod access_rules;
mod adoption;
mod api_server_restart;
mod deletion;
mod domains;
mod drift;
mod isolation;
mod jwt;
mod lambda_authorizers;
mod leader_election;
mod observe_only;
mod oidc_sharing;
mod outputs;
mod pause;
mod reconcile_now;
mod regions;
mod seed;
mod settings;
mod spec_edits;
mod stages;
mod steady_state;
mod throttling;
mod vpc_links;
