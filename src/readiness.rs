//! What `/readyz` answers: ready once every cache the controller reads from has been filled
//! by its first list (the AuthedApis and the AuthedApiTenants), and from then on; or at
//! once for a standby replica, which reads nothing until it leads.
//!
//! Each cache marks itself filled when its watch stream passes `InitDone`, seen in the
//! stream itself. (kube-runtime 5's `Store::wait_until_ready` wakes only the last of
//! several waiters, and the controller is one, so a second waiter never woke and /readyz
//! answered 503 forever.)

use std::sync::atomic::{AtomicBool, Ordering};

use futures::{Stream, TryStreamExt};
use kube::runtime::watcher;

/// A cache the controller reads from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cache {
    AuthedApis,
    Tenants,
}

/// Whether the operator is ready to serve (see the module's documentation).
#[derive(Debug, Default)]
pub struct Readiness {
    authed_apis: AtomicBool,
    tenants: AtomicBool,
    standby: AtomicBool,
}

impl Readiness {
    /// `cache` has been filled by its first list.
    pub fn filled(&self, cache: Cache) {
        let flag = match cache {
            Cache::AuthedApis => &self.authed_apis,
            Cache::Tenants => &self.tenants,
        };
        if !flag.swap(true, Ordering::Relaxed) {
            tracing::info!(?cache, "cache filled");
        }
    }

    /// This replica waits for the leader's lease: healthy and ready, reconciling nothing.
    pub fn standby(&self) {
        self.standby.store(true, Ordering::Relaxed);
    }

    /// What `/readyz` says.
    pub fn is_ready(&self) -> bool {
        self.standby.load(Ordering::Relaxed)
            || (self.authed_apis.load(Ordering::Relaxed) && self.tenants.load(Ordering::Relaxed))
    }
}

/// `events`, marking `cache` filled in `readiness` when its first list is done.
pub fn mark_filled<K, S>(
    events: S,
    readiness: std::sync::Arc<Readiness>,
    cache: Cache,
) -> impl Stream<Item = Result<watcher::Event<K>, watcher::Error>>
where
    S: Stream<Item = Result<watcher::Event<K>, watcher::Error>>,
{
    events.inspect_ok(move |event| {
        if matches!(event, watcher::Event::InitDone) {
            readiness.filled(cache);
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;
    use std::sync::Arc;

    #[test]
    fn ready_only_when_every_cache_is_filled() {
        let readiness = Readiness::default();
        assert!(!readiness.is_ready());
        readiness.filled(Cache::AuthedApis);
        assert!(!readiness.is_ready(), "the tenants are not known yet");
        readiness.filled(Cache::Tenants);
        assert!(readiness.is_ready());
    }

    #[test]
    fn a_standby_is_ready_at_once() {
        let readiness = Readiness::default();
        readiness.standby();
        assert!(readiness.is_ready());
    }

    #[tokio::test]
    async fn the_first_init_done_of_a_stream_fills_its_cache() {
        let readiness = Arc::new(Readiness::default());
        let events = futures::stream::iter([
            Ok(watcher::Event::<k8s_openapi::api::core::v1::ConfigMap>::Init),
            Ok(watcher::Event::InitApply(Default::default())),
        ]);
        let seen: Vec<_> = mark_filled(events, readiness.clone(), Cache::AuthedApis)
            .collect()
            .await;
        assert_eq!(seen.len(), 2);
        assert!(
            !readiness.authed_apis.load(Ordering::Relaxed),
            "not yet done"
        );
        let done = futures::stream::iter([Ok(watcher::Event::<
            k8s_openapi::api::core::v1::ConfigMap,
        >::InitDone)]);
        let _: Vec<_> = mark_filled(done, readiness.clone(), Cache::AuthedApis)
            .collect()
            .await;
        assert!(readiness.authed_apis.load(Ordering::Relaxed));
    }
}
