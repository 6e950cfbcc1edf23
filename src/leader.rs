//! Leader election on a coordination.k8s.io Lease (kube-lease-manager): with several
//! replicas, only the holder of the lease runs the controller; a standby takes over within
//! the lease duration when the holder stops or stalls.

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use kube::runtime::{WatchStreamExt, watcher};
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
///
/// A standby's lease manager looks at the Lease again only when it would expire, so a
/// leader that gives it up on its way out (SIGTERM: a drain, a rollout) would be followed
/// up to a lease duration later, or by whichever new pod asks first. A watch of the Lease
/// wakes the standby as soon as it is free: the manager is started again, and its first
/// look takes it.
pub async fn acquire(
    client: kube::Client,
    namespace: &str,
    identity: &str,
    duration: Duration,
) -> anyhow::Result<Leadership> {
    let leases: Api<Lease> = Api::namespaced(client.clone(), namespace);
    let mut freed = watcher(
        leases,
        watcher::Config::default().fields(&format!("metadata.name={LEASE_NAME}")),
    )
    .default_backoff()
    .applied_objects()
    .try_filter(|lease| std::future::ready(is_free(lease)))
    .boxed();
    loop {
        let manager = LeaseManagerBuilder::new(client.clone(), LEASE_NAME)
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
        loop {
            if *channel.borrow_and_update() {
                tracing::info!(lease = LEASE_NAME, identity, "became the leader");
                return Ok(Leadership { channel, task });
            }
            tokio::select! {
                changed = channel.changed() => changed?,
                _ = freed.next() => {
                    // Not a release: this manager never held the lease.
                    task.abort();
                    tracing::info!(lease = LEASE_NAME, identity, "the lease was given up: asking for it now");
                    break;
                }
            }
        }
    }
}

/// Nobody holds `lease`: never taken, or given up.
fn is_free(lease: &Lease) -> bool {
    lease
        .spec
        .as_ref()
        .and_then(|s| s.holder_identity.as_deref())
        .is_none_or(str::is_empty)
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

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::coordination::v1::LeaseSpec;

    #[test]
    fn a_lease_is_free_when_nobody_holds_it() {
        let lease = |holder: Option<&str>| Lease {
            spec: Some(LeaseSpec {
                holder_identity: holder.map(str::to_owned),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert!(is_free(&Lease::default()));
        assert!(is_free(&lease(None)));
        assert!(is_free(&lease(Some(""))));
        assert!(!is_free(&lease(Some("authedapi-0"))));
    }
}
