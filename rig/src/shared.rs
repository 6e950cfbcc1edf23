//! One control plane and one emulator per test binary, shared by its tests; each test
//! takes a namespace and an AWS account of its own, so tests run in parallel without
//! seeing each other.

use std::future::Future;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, ObjectMeta, PostParams};

use crate::{Account, ControlPlane, Emulator};

static CONTROL_PLANE: OnceLock<ControlPlane> = OnceLock::new();
static EMULATOR: OnceLock<Emulator> = OnceLock::new();

/// Run `start` to completion on a thread and runtime of its own: each `#[tokio::test]`
/// has its own runtime, and what is shared must not depend on any one of them.
fn start_detached<T: Send + 'static, F>(what: &str, start: fn() -> F) -> T
where
    F: Future<Output = anyhow::Result<T>> + 'static,
{
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime")
            .block_on(start())
    })
    .join()
    .expect("the rig's start thread panicked")
    .unwrap_or_else(|e| panic!("the test rig's {what} did not start: {e:#}"))
}

/// The control plane of this test binary, started by the first test that asks.
pub fn control_plane() -> &'static ControlPlane {
    CONTROL_PLANE.get_or_init(|| start_detached("control plane", ControlPlane::start))
}

/// The AWS emulator of this test binary, started by the first test that asks.
pub fn emulator() -> &'static Emulator {
    EMULATOR.get_or_init(|| start_detached("AWS emulator", Emulator::start))
}

/// A cluster-admin client of the shared control plane, bound to the caller's runtime.
pub async fn client() -> kube::Client {
    control_plane()
        .client()
        .await
        .expect("a client for the rig's control plane")
}

/// A fresh AWS account in the shared emulator.
pub fn account() -> Account {
    emulator().new_account()
}

/// A namespace created for one test.
pub struct TestNamespace {
    pub name: String,
}

impl TestNamespace {
    /// Create a namespace named after `prefix` plus a unique suffix.
    pub async fn create(client: &kube::Client, prefix: &str) -> anyhow::Result<Self> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "{prefix}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                ..Default::default()
            },
            ..Default::default()
        };
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &ns)
            .await?;
        Ok(Self { name })
    }
}
