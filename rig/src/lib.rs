//! The local test rig for authedapi: a real etcd + kube-apiserver (as controller-runtime's
//! envtest runs them: no kubelet, no controller-manager) and the moto AWS emulator, each on
//! a free loopback port. The tools come from `hack/tools.sh`, built from pinned sources.
//!
//! Processes are supervised so they never outlive the process that started them, even
//! when it is killed: see [`process`].

pub mod auth0;
pub mod certs;
pub mod control_plane;
pub mod emulator;
pub mod fault_proxy;
pub mod front_door;
pub mod functions;
pub mod judge;
pub mod node;
pub mod operator_identity;
pub mod process;
pub mod serving;
pub mod shared;
pub mod web;

use std::net::TcpListener;
use std::path::PathBuf;

pub use auth0::Auth0StandIn;
pub use control_plane::ControlPlane;
pub use emulator::{Account, Credentials, Emulator};
pub use fault_proxy::{Fault, FaultProxy, Rule};
pub use front_door::FrontDoor;
pub use judge::Judge;
pub use node::Node;
pub use operator_identity::OperatorIdentity;
pub use shared::TestNamespace;

/// What an operator process needs in its environment to reach `plane` and `account` as
/// the principal holding `credentials`: the AWS endpoint, credentials and region, and a
/// kubeconfig.
pub fn operator_env(
    plane: &ControlPlane,
    account: &Account,
    credentials: &Credentials,
) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = account
        .env_as(credentials)
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    env.push(("KUBECONFIG".into(), plane.kubeconfig.display().to_string()));
    env
}

/// The repository root (the workspace this crate lives in).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("rig/ lives inside the repository")
        .to_path_buf()
}

/// Where `hack/tools.sh` put the binaries and the emulator's virtualenv.
pub fn tools_dir() -> PathBuf {
    std::env::var_os("AUTHEDAPI_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".tools"))
}

/// Path of one tool binary, or an error telling how to build it.
pub fn tool(name: &str) -> anyhow::Result<PathBuf> {
    let path = tools_dir().join("bin").join(name);
    anyhow::ensure!(
        path.exists(),
        "{} is missing: run hack/tools.sh to build the rig's tools",
        path.display()
    );
    Ok(path)
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}
