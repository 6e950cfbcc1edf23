//! The operator as users run it: its own image (`hack/image.sh`), a Pod on the rig's real
//! node (containerd, kubelet, kube-proxy; [`authedapi_rig::Node`]), installed by its chart
//! with `helm install --wait`, with a projected ServiceAccount token for the API server and
//! AWS credentials the IRSA way (STS AssumeRoleWithWebIdentity with the pod's token,
//! judged like every other request). Failed over, upgraded, rolled back and uninstalled.
//!
//! One node for the whole binary; the tests take it in turn (each installs its own release
//! in namespaces of its own, with an AWS account of its own).

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use authedapi::api::AuthedApi;
use authedapi_rig::judge::Decision;
use authedapi_rig::node;
use authedapi_rig::node::chart::{
    ChartInstall, NodeRig, OPERATOR_SERVICE_ACCOUNT as OPERATOR_SA, STS_AUDIENCE, image_archive,
};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{Api, DeleteParams, ListParams};

use common::{apply, run, seed_in, try_run};

static WORLD: OnceLock<NodeRig> = OnceLock::new();
static BACKGROUND: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
/// The tests take the node in turn: each runs an operator and a hundred objects on two
/// cores, and a failover or an upgrade must not be timed against another test's load.
static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The node, the emulator its pods reach, the web, and the operator's image (`make
/// image`), started by the first test that asks, on a runtime of its own.
fn world() -> &'static NodeRig {
    WORLD.get_or_init(|| {
        let runtime = BACKGROUND.get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .expect("a tokio runtime")
        });
        std::thread::spawn(move || {
            let tag = env!("CARGO_PKG_VERSION");
            runtime.block_on(NodeRig::start(&image_archive(tag), tag))
        })
        .join()
        .expect("the node's start thread panicked")
        .unwrap_or_else(|e| panic!("the rig's node did not start: {e:#}"))
    })
}

/// A test's installation of the chart on the node ([`ChartInstall`]), failing the test
/// with what the pods and the node say when a step fails.
struct Install(ChartInstall<'static>);

impl std::ops::Deref for Install {
    type Target = ChartInstall<'static>;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl Install {
    /// Namespaces, an AWS account, and the operator's IRSA role there trusting
    /// `service_account` (the shipped policy, the account's functions allowed).
    async fn prepare(name: &str, service_account: &str) -> Self {
        let operator = std::path::Path::new(env!("CARGO_BIN_EXE_authedapi"));
        Self(
            ChartInstall::prepare(world(), name, service_account, operator)
                .await
                .unwrap(),
        )
    }

    /// `helm install --wait` with `extra` values; how long it took.
    fn install(&self, extra: &[&str]) -> Duration {
        self.0.install(extra).unwrap_or_else(|e| panic!("{e:#}"))
    }

    fn uninstall(&self) {
        self.0.uninstall().unwrap()
    }

    async fn api(&self) -> Api<AuthedApi> {
        Api::namespaced(world().node.plane.client().await.unwrap(), &self.apps)
    }

    async fn pods(&self) -> Vec<Pod> {
        self.0.pods().await.unwrap()
    }

    async fn metrics(&self, pod: &Pod) -> String {
        self.0.metrics(pod).await.unwrap()
    }

    /// Wait until `name` is Ready at its generation.
    async fn ready(&self, name: &str, timeout: Duration) -> AuthedApi {
        let api = self.api().await;
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(obj) = api.get_opt(name).await.unwrap() {
                let generation = obj.metadata.generation.unwrap_or_default();
                let conditions = obj
                    .status
                    .as_ref()
                    .map(|s| s.conditions.clone())
                    .unwrap_or_default();
                if authedapi::status::is_ready(&conditions, generation) {
                    return obj;
                }
                assert!(
                    Instant::now() < deadline,
                    "{name} not Ready after {timeout:?}: {conditions:?}\n{}",
                    self.diagnose()
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Wait until `name` has a condition of `type_` True whose message contains `text`;
    /// that condition.
    async fn condition(&self, name: &str, type_: &str, text: &str, timeout: Duration) -> Condition {
        let api = self.api().await;
        let deadline = Instant::now() + timeout;
        loop {
            let conditions = api
                .get_opt(name)
                .await
                .unwrap()
                .and_then(|o| o.status)
                .map(|s| s.conditions)
                .unwrap_or_default();
            if let Some(c) = conditions
                .iter()
                .find(|c| c.type_ == type_ && c.status == "True" && c.message.contains(text))
            {
                return c.clone();
            }
            assert!(
                Instant::now() < deadline,
                "{name} has no {type_} condition saying {text:?} after {timeout:?}: {conditions:#?}\n{}",
                self.diagnose()
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

/// helm, pointed at the node's cluster.
fn helm() -> Command {
    world().helm().unwrap()
}

/// What the kernel says about a container's main process.
struct Process {
    pid: u32,
}

impl Process {
    fn of(pod: &Pod) -> Self {
        let id = pod
            .status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref())
            .and_then(|c| c.first())
            .and_then(|c| c.container_id.clone())
            .expect("a running container");
        Self {
            pid: world().node.container_pid(&id).unwrap(),
        }
    }

    fn status(&self) -> BTreeMap<String, String> {
        std::fs::read_to_string(format!("/proc/{}/status", self.pid))
            .unwrap()
            .lines()
            .filter_map(|line| line.split_once(':'))
            .map(|(k, v)| (k.to_owned(), v.trim().to_owned()))
            .collect()
    }

    fn environment(&self) -> BTreeMap<String, String> {
        std::fs::read(format!("/proc/{}/environ", self.pid))
            .unwrap()
            .split(|b| *b == 0)
            .filter_map(|entry| {
                let entry = String::from_utf8_lossy(entry);
                let (k, v) = entry.split_once('=')?;
                Some((k.to_owned(), v.to_owned()))
            })
            .collect()
    }

    /// The options of the mount at `path` in the process's mount namespace.
    fn mount_options(&self, path: &str) -> String {
        std::fs::read_to_string(format!("/proc/{}/mountinfo", self.pid))
            .unwrap()
            .lines()
            .map(|line| line.split_whitespace().collect::<Vec<_>>())
            .rfind(|fields| fields.get(4) == Some(&path))
            .map(|fields| fields[5].to_owned())
            .unwrap_or_default()
    }

    /// Every file of the container's filesystem (as the process sees it), but /proc,
    /// /sys and /dev.
    fn files(&self) -> Vec<PathBuf> {
        let root = PathBuf::from(format!("/proc/{}/root", self.pid));
        let mut found = Vec::new();
        let mut stack = vec![root.clone()];
        while let Some(dir) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                let inside = path.strip_prefix(&root).unwrap().to_owned();
                if ["proc", "sys", "dev"].iter().any(|p| inside.starts_with(p)) {
                    continue;
                }
                match entry.file_type() {
                    Ok(t) if t.is_dir() => stack.push(path),
                    Ok(_) => found.push(PathBuf::from("/").join(inside)),
                    Err(_) => {}
                }
            }
        }
        found
    }
}

#[tokio::test]
async fn helm_install_wait_runs_the_operator_as_a_pod_and_the_seed_answers() {
    let _turn = TURN.lock().await;
    let world = world();
    let install = Install::prepare("install", OPERATOR_SA).await;
    let took = install.install(&[]);
    eprintln!("[node] helm install --wait: {:.1}s", took.as_secs_f64());

    // The pod: Ready (its probes pass), non-root, read-only, no capabilities.
    let pods = install.pods().await;
    assert_eq!(pods.len(), 1, "{}", install.diagnose());
    let pod = &pods[0];
    let ready = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .map(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
        .unwrap_or(false);
    assert!(ready, "the operator's pod is Ready: {:?}", pod.status);
    let process = Process::of(pod);
    let status = process.status();
    for (field, want) in [("Uid", "65532"), ("Gid", "65532")] {
        assert!(
            status[field].split_whitespace().all(|id| id == want),
            "{field}: {}",
            status[field]
        );
    }
    for caps in ["CapInh", "CapPrm", "CapEff", "CapAmb"] {
        assert_eq!(status[caps], "0000000000000000", "{caps}");
    }
    assert_eq!(status["NoNewPrivs"], "1");
    let root = process.mount_options("/");
    assert!(
        root.split(',').any(|o| o == "ro"),
        "the root filesystem is read-only: {root}"
    );

    // No kubeconfig and no static AWS key anywhere in the pod: the API server through the
    // projected ServiceAccount token, AWS through the IRSA token.
    let env = process.environment();
    for name in [
        "KUBECONFIG",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_SHARED_CREDENTIALS_FILE",
        "AWS_CONFIG_FILE",
    ] {
        assert!(
            !env.contains_key(name),
            "{name} is in the pod's environment"
        );
    }
    assert_eq!(env["AWS_ROLE_ARN"], install.role_arn);
    assert_eq!(
        env["AWS_WEB_IDENTITY_TOKEN_FILE"],
        "/var/run/secrets/eks.amazonaws.com/serviceaccount/token"
    );
    assert!(env.contains_key("KUBERNETES_SERVICE_HOST"));
    let files = process.files();
    let credentials: Vec<_> = files
        .iter()
        .filter(|p| {
            let s = p.display().to_string();
            s.contains("kubeconfig") || s.contains("/.kube/") || s.contains("/.aws/")
        })
        .collect();
    assert!(credentials.is_empty(), "credential files: {credentials:?}");
    assert!(
        files
            .iter()
            .any(|p| p.ends_with("eks.amazonaws.com/serviceaccount/token")),
        "the IRSA token is mounted"
    );
    assert!(
        files
            .iter()
            .any(|p| p.ends_with("kubernetes.io/serviceaccount/token")),
        "the ServiceAccount token is mounted"
    );

    // The seed: Ready, its AWS state right, its public route answering.
    let config = install.account.sdk_config().await;
    let api = install.api().await;
    apply(
        &api,
        &seed_in(&install.account, &config, "api-auth-auth0").await,
    )
    .await;
    let obj = install
        .ready("api-auth-auth0", Duration::from_secs(90))
        .await;
    let status = obj.status.unwrap();
    let apigw = aws_sdk_apigatewayv2::Client::new(&config);
    let api_id = status.api_id.clone().unwrap();
    let found = apigw.get_api().api_id(&api_id).send().await.unwrap();
    assert_eq!(
        found.tags().unwrap().get("authedapi.dev/cluster"),
        Some(&install.cluster_id)
    );
    let routes = apigw.get_routes().api_id(&api_id).send().await.unwrap();
    let mut keys: Vec<_> = routes
        .items()
        .iter()
        .map(|r| {
            (
                r.route_key().unwrap_or_default().to_owned(),
                r.authorization_type().map(|a| a.as_str().to_owned()),
            )
        })
        .collect();
    keys.sort();
    assert_eq!(
        keys,
        vec![
            ("GET /private".to_owned(), Some("AWS_IAM".to_owned())),
            ("GET /public".to_owned(), Some("NONE".to_owned())),
        ]
    );
    let http = world.web.http_client().unwrap();
    let endpoint = status.api_endpoint.unwrap();
    let public = http.get(format!("{endpoint}/public")).send().await.unwrap();
    assert_eq!(public.status(), 200);
    assert_eq!(public.text().await.unwrap(), "Hello stranger!");

    // IRSA: STS let the pod's token assume the role; every request after that was signed
    // by that role's session, none by anything else.
    let decisions = install.decisions();
    let web_identity: Vec<_> = decisions
        .iter()
        .filter(|d| d.operation == "sts:AssumeRoleWithWebIdentity")
        .collect();
    assert!(!web_identity.is_empty(), "STS was asked: {decisions:?}");
    assert!(web_identity.iter().all(|d| d.decision == "Allowed"
        && d.principal
            == format!(
                "arn:aws:iam::{}:oidc-provider/{}",
                install.account.id,
                node::ISSUER_HOST
            )));
    let role_session = format!(
        "arn:aws:sts::{}:assumed-role/authedapi-operator/",
        install.account.id
    );
    let signed: Vec<_> = decisions
        .iter()
        .filter(|d| d.operation != "sts:AssumeRoleWithWebIdentity")
        .collect();
    assert!(signed.len() > 10, "the operator's requests: {signed:?}");
    let others: Vec<_> = signed
        .iter()
        .filter(|d| !d.principal.starts_with(&role_session))
        .map(|d| (&d.principal, &d.operation))
        .collect();
    assert!(others.is_empty(), "signed by another principal: {others:?}");

    install.uninstall();
}

/// The sum of a metric's samples whose labels contain `label` (`key="value"`).
fn metric(text: &str, name: &str, label: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && l.contains(label))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn irsa_refuses_another_service_account_a_wrong_audience_and_an_expired_token() {
    let _turn = TURN.lock().await;
    let world = world();

    // A pod of another ServiceAccount cannot become the operator: the role trusts only
    // `authedapi` in the operator's namespace. STS refuses, and the operator says so.
    let intruder = Install::prepare("intruder", OPERATOR_SA).await;
    intruder.install(&["serviceAccount.name=intruder"]);
    let config = intruder.account.sdk_config().await;
    apply(
        &intruder.api().await,
        &seed_in(&intruder.account, &config, "seed").await,
    )
    .await;
    let stalled = intruder
        .condition(
            "seed",
            "Stalled",
            "Not authorized to perform sts:AssumeRoleWithWebIdentity",
            Duration::from_secs(60),
        )
        .await;
    assert_eq!(stalled.reason, "CredentialsUnavailable", "{stalled:?}");
    let pods = intruder.pods().await;
    let text = intruder.metrics(&pods[0]).await;
    assert!(
        metric(
            &text,
            "authedapi_reconcile_errors_total",
            r#"reason="CredentialsUnavailable""#
        ) >= 1.0,
        "{text}"
    );
    let refused: Vec<_> = intruder
        .decisions()
        .into_iter()
        .filter(|d| d.operation == "sts:AssumeRoleWithWebIdentity")
        .collect();
    assert!(!refused.is_empty() && refused.iter().all(|d| d.decision != "Allowed"));
    assert!(
        intruder
            .decisions()
            .iter()
            .all(|d| d.operation == "sts:AssumeRoleWithWebIdentity"),
        "no other request was ever signed"
    );
    intruder.uninstall();

    // A token for another audience: STS checks it against the provider's client ids.
    let audience = Install::prepare("audience", OPERATOR_SA).await;
    audience.install(&["aws.webIdentity.audience=not-sts"]);
    let config = audience.account.sdk_config().await;
    apply(
        &audience.api().await,
        &seed_in(&audience.account, &config, "seed").await,
    )
    .await;
    let stalled = audience
        .condition(
            "seed",
            "Stalled",
            "Incorrect token audience",
            Duration::from_secs(60),
        )
        .await;
    assert_eq!(stalled.reason, "CredentialsUnavailable", "{stalled:?}");
    audience.uninstall();

    // An expired token of the right ServiceAccount: STS says so, as AWS words it.
    let expired = world
        .node
        .expired_service_account_token(
            &format!("system:serviceaccount:{}:{OPERATOR_SA}", audience.namespace),
            STS_AUDIENCE,
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs()
                - 60,
        )
        .unwrap();
    let sts = aws_sdk_sts::Client::new(&audience.account.sdk_config().await);
    let err = sts
        .assume_role_with_web_identity()
        .role_arn(&audience.role_arn)
        .role_session_name("expired")
        .web_identity_token(expired)
        .send()
        .await
        .expect_err("an expired token is refused");
    let service = err.into_service_error();
    assert_eq!(service.meta().code(), Some("ExpiredTokenException"));
    assert!(
        service
            .meta()
            .message()
            .unwrap_or_default()
            .starts_with("Token expired: current date/time"),
        "{service:?}"
    );
}

/// Write requests (anything but reads) the judge recorded, as (operation, resources).
fn writes(decisions: &[Decision]) -> Vec<(String, String)> {
    decisions
        .iter()
        .filter(|d| {
            let op = d.operation.split(':').nth(1).unwrap_or_default();
            !(op.starts_with("Get") || op.starts_with("List") || op.starts_with("Describe"))
                && d.operation != "sts:AssumeRoleWithWebIdentity"
        })
        .map(|d| {
            let resources: Vec<_> = d.checks.iter().map(|c| c.resource.as_str()).collect();
            (d.operation.clone(), resources.join(","))
        })
        .collect()
}

/// The node cordoned (no new pod scheduled) until this is dropped, even by a failing
/// test: the tests after it need the node.
struct Cordoned;

impl Cordoned {
    fn node() -> Self {
        world()
            .node
            .plane
            .run_kubectl(&["cordon", node::NODE_NAME])
            .unwrap();
        Self
    }
}

impl Drop for Cordoned {
    fn drop(&mut self) {
        let _ = world()
            .node
            .plane
            .run_kubectl(&["uncordon", node::NODE_NAME]);
    }
}

/// The Lease's holder.
async fn leader(install: &Install) -> Option<String> {
    let leases: Api<Lease> = Api::namespaced(
        world().node.plane.client().await.unwrap(),
        &install.namespace,
    );
    leases
        .get_opt("authedapi-leader")
        .await
        .unwrap()
        .and_then(|l| l.spec)
        .and_then(|s| s.holder_identity)
        .filter(|h| !h.is_empty())
}

#[tokio::test]
async fn two_replicas_fail_over_at_once_on_sigterm_and_never_write_twice() {
    let _turn = TURN.lock().await;
    let install = Install::prepare("failover", OPERATOR_SA).await;
    install.install(&["replicas=2"]);
    let config = install.account.sdk_config().await;
    let api = install.api().await;
    apply(&api, &seed_in(&install.account, &config, "seed").await).await;
    install.ready("seed", Duration::from_secs(90)).await;

    // The leader's pod is deleted, as a drain or a rollout does: the kubelet sends SIGTERM;
    // the leader stops and gives the Lease up on its way out, so the standby takes over at
    // once rather than after the lease lapses.
    let old = leader(&install).await.expect("a leader");
    let standby: Vec<String> = install
        .pods()
        .await
        .into_iter()
        .filter_map(|p| p.metadata.name)
        .filter(|name| *name != old)
        .collect();
    let pods: Api<Pod> = Api::namespaced(
        world().node.plane.client().await.unwrap(),
        &install.namespace,
    );
    let grace = Duration::from_secs(30);
    // As in a drain, the node is cordoned first: the Deployment's replacement pod cannot
    // start and race the standby for the Lease, so the handover is the standby's.
    let cordoned = Cordoned::node();
    let deleted = Instant::now();
    pods.delete(&old, &DeleteParams::default()).await.unwrap();
    let handed_over = loop {
        match leader(&install).await {
            Some(holder) if holder != old => {
                // The standby that was waiting, not the pod the Deployment makes to
                // replace the old one: the standby saw the Lease given up.
                assert_eq!(vec![holder], standby, "the standby took the Lease");
                break deleted.elapsed();
            }
            _ => {}
        }
        assert!(
            deleted.elapsed() < Duration::from_secs(30),
            "the Lease is still {old}'s\n{}",
            install.diagnose()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // A change right away is the new leader's to make, within the lease duration.
    let mut edited = seed_in(&install.account, &config, "seed").await;
    edited["spec"]["tags"] = serde_json::json!({"team": "failover"});
    apply(&api, &edited).await;
    let edit_started = Instant::now();
    install.ready("seed", Duration::from_secs(15)).await;
    let reconciled = edit_started.elapsed();
    let gone = loop {
        if pods.get_opt(&old).await.unwrap().is_none() {
            break deleted.elapsed();
        }
        assert!(
            deleted.elapsed() < grace + Duration::from_secs(10),
            "{old} still there after its grace period\n{}",
            install.diagnose()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    drop(cordoned);
    eprintln!(
        "[node] failover: Lease handed over {:.2}s after the delete; the old leader gone after {:.2}s (grace {grace:?}); the edit Ready {:.2}s later",
        handed_over.as_secs_f64(),
        gone.as_secs_f64(),
        reconciled.as_secs_f64()
    );
    assert!(
        handed_over < Duration::from_secs(5),
        "handed over after {handed_over:?}: the leader did not give the Lease up on SIGTERM"
    );
    assert!(gone < grace, "the old leader outlived its grace period");

    // No AWS write went out twice, by either replica: each (operation, resource) once,
    // but the creates of an API's integrations and routes, which IAM authorizes on the
    // API's collection: the seed has two of each (two routes, two functions).
    let writes = writes(&install.decisions());
    let mut counts = BTreeMap::<&(String, String), usize>::new();
    for write in &writes {
        *counts.entry(write).or_default() += 1;
    }
    let twice: Vec<_> = counts
        .iter()
        .filter(|((op, _), n)| {
            let once_per_route =
                op == "apigateway:CreateIntegration" || op == "apigateway:CreateRoute";
            **n > if once_per_route { 2 } else { 1 }
        })
        .collect();
    assert!(twice.is_empty(), "sent twice: {twice:#?}");
    let apigw = aws_sdk_apigatewayv2::Client::new(&config);
    let api_id = api
        .get("seed")
        .await
        .unwrap()
        .status
        .unwrap()
        .api_id
        .unwrap();
    let routes = apigw.get_routes().api_id(&api_id).send().await.unwrap();
    let integrations = apigw
        .get_integrations()
        .api_id(&api_id)
        .send()
        .await
        .unwrap();
    assert_eq!((routes.items().len(), integrations.items().len()), (2, 2));
    assert!(
        writes.iter().any(|(op, _)| op == "iam:TagRole"),
        "the edit's tags were written: {writes:#?}"
    );
    install.uninstall();
}

/// A second image of the same operator under another version tag (`hack/image.sh
/// --binary`), loaded into the node: what `helm upgrade` to a new release runs.
fn next_image(tag: &str) {
    let binary = image_archive(env!("CARGO_PKG_VERSION"))
        .parent()
        .and_then(|dir| dir.parent())
        .expect("target/image")
        .join("release/authedapi");
    let out = tempfile::tempdir().unwrap();
    run(
        Command::new(common::repo().join("hack/image.sh"))
            .args(["--tag", tag, "--binary"])
            .arg(&binary)
            .arg("--out")
            .arg(out.path()),
        None,
    );
    world()
        .node
        .import_image(&out.path().join(format!("authedapi-{tag}.oci.tar")))
        .unwrap();
}

/// Every condition change of the install's objects while `during` runs: (object, Ready
/// status) for each observed Ready condition that was not True.
async fn not_ready_while<F: std::future::Future<Output = T>, T>(
    install: &Install,
    during: F,
) -> (T, Vec<(String, String)>) {
    use futures::StreamExt;
    use kube::runtime::{WatchStreamExt, watcher};
    let api = install.api().await;
    let mut events = Box::pin(watcher(api, watcher::Config::default()).applied_objects());
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let recorder = {
        let seen = seen.clone();
        tokio::spawn(async move {
            while let Some(Ok(obj)) = events.next().await {
                let generation = obj.metadata.generation.unwrap_or_default();
                let conditions = obj.status.map(|s| s.conditions).unwrap_or_default();
                if !authedapi::status::is_ready(&conditions, generation) {
                    seen.lock().unwrap().push((
                        obj.metadata.name.unwrap_or_default(),
                        format!("{conditions:?}"),
                    ));
                }
            }
        })
    };
    let out = during.await;
    // The watch has seen everything up to now once a fresh list would (a second's slack).
    tokio::time::sleep(Duration::from_secs(1)).await;
    recorder.abort();
    let seen = seen.lock().unwrap().clone();
    (out, seen)
}

#[tokio::test]
async fn helm_upgrade_and_rollback_with_100_ready_objects_send_no_aws_write() {
    let _turn = TURN.lock().await;
    let install = Install::prepare("upgrade", OPERATOR_SA).await;
    // The emulator has no quota: let the operator create the hundred at its pace.
    install.install(&["aws.rateLimits=apigateway=100:100"]);
    let config = install.account.sdk_config().await;
    let api = install.api().await;
    let seed = seed_in(&install.account, &config, "seed").await;
    let names: Vec<String> = (0..100).map(|i| format!("api-{i:03}")).collect();
    let created = Instant::now();
    for name in &names {
        let mut object = seed.clone();
        object["metadata"]["name"] = serde_json::json!(name);
        apply(&api, &object).await;
    }
    for name in &names {
        install.ready(name, Duration::from_secs(600)).await;
    }
    eprintln!(
        "[node] 100 objects Ready in {:.1}s",
        created.elapsed().as_secs_f64()
    );

    let next = format!("{}-next", world().image_tag);
    next_image(&next);
    for (step, args) in [
        (
            "upgrade",
            vec![
                "upgrade".to_owned(),
                install.release.clone(),
                "charts/authedapi".to_owned(),
                "--reuse-values".to_owned(),
                "--set".to_owned(),
                format!("image.tag={next}"),
            ],
        ),
        (
            "rollback",
            vec![
                "rollback".to_owned(),
                install.release.clone(),
                "1".to_owned(),
            ],
        ),
    ] {
        let writes_before = writes(&install.decisions()).len();
        let pods_before: Vec<String> = install
            .pods()
            .await
            .into_iter()
            .filter_map(|p| p.metadata.name)
            .collect();
        let ((took, out), not_ready) = not_ready_while(&install, async {
            let started = Instant::now();
            let mut cmd = helm();
            cmd.args(&args).args([
                "--namespace",
                &install.namespace,
                "--wait",
                "--timeout",
                "180s",
            ]);
            let out = try_run(&mut cmd, None);
            let took = started.elapsed();
            // The new operator has seen every object (its caches filled, its first looks
            // taken) before the writes are counted.
            tokio::time::sleep(Duration::from_secs(10)).await;
            (took, out)
        })
        .await;
        assert!(
            out.0,
            "helm {step} failed:\n{}\n{}\n{}",
            out.1,
            out.2,
            install.diagnose()
        );
        let pods = install.pods().await;
        let image = pods[0].spec.as_ref().unwrap().containers[0]
            .image
            .clone()
            .unwrap_or_default();
        assert!(
            pods.iter()
                .all(|p| !pods_before.contains(p.metadata.name.as_ref().unwrap())),
            "the rollout replaced the pod"
        );
        let writes_after = writes(&install.decisions());
        eprintln!(
            "[node] helm {step} --wait: {:.1}s, now {image}; AWS writes during it: {}",
            took.as_secs_f64(),
            writes_after.len() - writes_before
        );
        assert_eq!(
            writes_after.len(),
            writes_before,
            "helm {step} sent AWS writes: {:#?}",
            &writes_after[writes_before..]
        );
        assert!(
            not_ready.is_empty(),
            "objects left Ready during helm {step}: {not_ready:#?}"
        );
    }

    // helm uninstall leaves the objects (their finalizers waiting for an operator) and
    // every AWS resource, as the README says.
    install.uninstall();
    let left = api.list(&ListParams::default()).await.unwrap().items;
    assert_eq!(left.len(), 100);
    let apis = aws_sdk_apigatewayv2::Client::new(&config)
        .get_apis()
        .max_results("500")
        .send()
        .await
        .unwrap();
    assert_eq!(apis.items().len(), 100);
}

/// One file of the image's OCI archive.
fn archive_file(path: &str) -> Vec<u8> {
    let out = Command::new("tar")
        .arg("-xOf")
        .arg(image_archive(env!("CARGO_PKG_VERSION")))
        .arg(path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{path} in the image archive");
    out.stdout
}

fn blob(digest: &str) -> serde_json::Value {
    let path = format!("blobs/{}", digest.replacen(':', "/", 1));
    serde_json::from_slice(&archive_file(&path)).unwrap()
}

#[test]
fn the_image_runs_as_nonroot_with_its_labels_and_an_sbom_and_the_dockerfile_agrees() {
    let index: serde_json::Value = serde_json::from_slice(&archive_file("index.json")).unwrap();
    let manifest = blob(index["manifests"][0]["digest"].as_str().unwrap());
    assert_eq!(
        index["manifests"][0]["annotations"]["io.containerd.image.name"],
        format!("ghcr.io/authedapi/authedapi:{}", env!("CARGO_PKG_VERSION"))
    );
    let config = blob(manifest["config"]["digest"].as_str().unwrap());
    let c = &config["config"];
    assert_eq!(c["User"], "65532:65532");
    assert_eq!(c["Entrypoint"], serde_json::json!(["/authedapi"]));
    assert_eq!(c["Cmd"], serde_json::json!(["controller"]));
    let labels = &c["Labels"];
    assert_eq!(
        labels["org.opencontainers.image.version"],
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(
        labels["org.opencontainers.image.source"],
        "https://github.com/authedapi/authedapi"
    );
    let revision = labels["org.opencontainers.image.revision"]
        .as_str()
        .unwrap();
    assert!(revision.len() >= 40, "a git revision: {revision}");
    assert_eq!(config["os"], "linux");

    // The SBOM beside it names the Debian packages and the Rust crates inside.
    let sbom: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            image_archive(env!("CARGO_PKG_VERSION"))
                .with_file_name(format!("authedapi-{}.spdx.json", env!("CARGO_PKG_VERSION"))),
        )
        .unwrap(),
    )
    .unwrap();
    let names: Vec<&str> = sbom["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    for name in [
        "libc6",
        "ca-certificates",
        "tzdata",
        "kube-runtime",
        "tokio",
        "aws-sdk-apigatewayv2",
    ] {
        assert!(
            names.contains(&name),
            "{name} is not in the SBOM: {names:?}"
        );
    }

    // The Dockerfile (for those with a registry) builds the same layout.
    let dockerfile = std::fs::read_to_string(common::repo().join("Dockerfile")).unwrap();
    for line in [
        "FROM gcr.io/distroless/cc-debian12:nonroot",
        "USER 65532:65532",
        r#"ENTRYPOINT ["/authedapi"]"#,
        r#"CMD ["controller"]"#,
        "cargo auditable build --release --locked --bin authedapi",
        "org.opencontainers.image.revision=",
    ] {
        assert!(dockerfile.contains(line), "the Dockerfile lacks {line:?}");
    }
}
