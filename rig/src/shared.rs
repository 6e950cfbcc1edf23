//! One control plane and one emulator per test binary, shared by its tests; each test
//! takes a namespace and an AWS account of its own, so tests run in parallel without
//! seeing each other.

use std::future::Future;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, ObjectMeta, PostParams};

use crate::auth0::{Application, Auth0StandIn};
use crate::web::Web;
use crate::{Account, ControlPlane, Emulator};

static CONTROL_PLANE: OnceLock<ControlPlane> = OnceLock::new();
static EMULATOR: OnceLock<Emulator> = OnceLock::new();
static WEB: OnceLock<(Web, tempfile::TempDir)> = OnceLock::new();
static AUTH0: OnceLock<Auth0StandIn> = OnceLock::new();
/// Runs the servers that are tokio tasks (the front door) for the whole test binary.
static BACKGROUND: OnceLock<tokio::runtime::Runtime> = OnceLock::new();

/// The shared Auth0 stand-in's domain (a fake Auth0 tenant: `*.auth0.com`, as allowed).
pub const AUTH0_DOMAIN: &str = "rig-tenant.us.auth0.com";
/// Its application, as the seed's Auth0 app: a client id, a secret and the seed's
/// callback `http://localhost:5678` (and any loopback port, for `authedapi call --login`).
pub const AUTH0_CLIENT_ID: &str = "rigClientId0000000000000000000000";
pub const AUTH0_CLIENT_SECRET: &str = "rig-client-secret-not-a-real-one";

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

/// The web of this test binary (front door to the emulator's data plane), started by the
/// first test that asks.
pub fn web() -> &'static Web {
    &WEB.get_or_init(|| {
        let runtime = BACKGROUND.get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .expect("a tokio runtime")
        });
        let endpoint = emulator().endpoint.clone();
        std::thread::spawn(move || {
            runtime.block_on(async move {
                let dir = tempfile::Builder::new()
                    .prefix("authedapi-web-")
                    .tempdir()?;
                let web = Web::start(&endpoint, dir.path()).await?;
                anyhow::Ok((web, dir))
            })
        })
        .join()
        .expect("the web's start thread panicked")
        .unwrap_or_else(|e| panic!("the test rig's web did not start: {e:#}"))
    })
    .0
}

/// The Auth0 stand-in of this test binary (domain [`AUTH0_DOMAIN`], the application
/// [`AUTH0_CLIENT_ID`]), reachable through [`web`]. Tests add the users they need.
pub fn auth0() -> &'static Auth0StandIn {
    AUTH0.get_or_init(|| {
        let stand_in = Auth0StandIn::start_detached(
            AUTH0_DOMAIN,
            vec![Application::confidential(
                AUTH0_CLIENT_ID,
                AUTH0_CLIENT_SECRET,
                vec![
                    "http://localhost:5678".into(),
                    "http://127.0.0.1/*".into(),
                    "http://localhost/*".into(),
                ],
            )],
            Vec::new(),
        )
        .expect("the Auth0 stand-in starts");
        let web = web();
        let runtime = BACKGROUND.get().expect("started with the web");
        std::thread::scope(|scope| {
            scope
                .spawn(|| runtime.block_on(web.add_issuer(&stand_in)))
                .join()
                .expect("the issuer thread panicked")
        })
        .expect("the emulator knows the stand-in");
        stand_in
    })
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
