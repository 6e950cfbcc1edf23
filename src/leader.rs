//! Leader election on a coordination.k8s.io Lease (kube-lease-manager): with several
//! replicas, only the holder of the lease runs the controller; a standby takes over within
//! the lease duration when the holder stops or stalls.

use std::time::Duration;

use kube_lease_manager::{LeaseManager, LeaseManagerBuilder};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The Lease every replica competes for.
pub const LEASE_NAME: &str = "authedapi-leader";

/// A lease this process holds.
pub struct Leadership {
    channel: watch::Receiver<bool>,
    task: JoinHandle<kube_lease_manager::Result<LeaseManager>>,
}

/// Wait until this process holds the lease `LEASE_NAME` in `namespace`.
pub async fn acquire(
    client: kube::Client,
    namespace: &str,
    identity: &str,
    duration: Duration,
) -> anyhow::Result<Leadership> {
    let manager = LeaseManagerBuilder::new(client, LEASE_NAME)
        .with_namespace(namespace)
        .with_identity(identity)
        .with_duration(duration.as_secs().max(2))
        .with_grace((duration.as_secs() / 3).max(1))
        .build()
        .await?;
    let (mut channel, task) = manager.watch().await;
    tracing::info!(
        lease = LEASE_NAME,
        namespace,
        identity,
        "waiting to become the leader"
    );
    while !*channel.borrow_and_update() {
        channel.changed().await?;
    }
    tracing::info!(lease = LEASE_NAME, identity, "became the leader");
    Ok(Leadership { channel, task })
}

impl Leadership {
    /// Resolves when the lease is lost (or can no longer be renewed).
    pub fn lost(&self) -> impl Future<Output = ()> + Send + Sync + 'static {
        let mut channel = self.channel.clone();
        async move {
            while channel.changed().await.is_ok() {
                if !*channel.borrow_and_update() {
                    return;
                }
            }
        }
    }

    /// Whether the lease is still held.
    pub fn is_held(&self) -> bool {
        *self.channel.borrow()
    }

    /// Give the lease up, so a standby takes over at once.
    pub async fn release(self) {
        drop(self.channel);
        match self.task.await {
            Ok(Ok(_)) => tracing::info!("released the lease"),
            Ok(Err(e)) => tracing::warn!("releasing the lease: {e}"),
            Err(e) => tracing::warn!("lease task: {e}"),
        }
    }
}
