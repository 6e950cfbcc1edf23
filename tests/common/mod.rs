//! Helpers shared by the integration tests (each test file includes this module).
#![allow(dead_code)] // not every test binary uses every helper

pub mod web;

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::wait::{await_condition, conditions};

/// Field manager the tests apply with.
pub const TEST_MANAGER: &str = "authedapi-tests";

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The CRD as generated from the Rust types (the same text as `crds/`).
pub fn crd() -> CustomResourceDefinition {
    serde_yaml::from_str(&authedapi::crdgen::crd_yaml()).expect("the generated CRD parses")
}

/// Install (server-side apply) both CRDs (AuthedApi, AuthedApiTenant) and wait until
/// they are Established.
pub async fn install_crd(client: &kube::Client) -> anyhow::Result<()> {
    let crds = Api::<CustomResourceDefinition>::all(client.clone());
    for (_, yaml) in authedapi::crdgen::all() {
        let crd: CustomResourceDefinition = serde_yaml::from_str(&yaml)?;
        let name = crd.metadata.name.clone().expect("the CRD has a name");
        crds.patch(
            &name,
            &PatchParams::apply(TEST_MANAGER).force(),
            &Patch::Apply(&crd),
        )
        .await?;
        tokio::time::timeout(
            Duration::from_secs(30),
            await_condition(crds.clone(), &name, conditions::is_crd_established()),
        )
        .await??;
    }
    Ok(())
}

/// The seed example from `examples/authedapi.yaml`, as JSON.
pub fn example() -> serde_json::Value {
    let text =
        std::fs::read_to_string(repo().join("examples/authedapi.yaml")).expect("the example");
    serde_yaml::from_str(&text).expect("the example parses")
}

use std::time::Instant;

use authedapi::api::AuthedApi;
use authedapi_rig::Account;
use authedapi_rig::process::Supervised;
use kube::ResourceExt;

/// The operator binary, run as a separate process against the shared rig, watching one
/// namespace with one AWS account.
pub struct Operator {
    process: Supervised,
    pub metrics_addr: String,
}

impl Operator {
    /// Start `authedapi controller` for `namespace`, acting in `account` as a role that
    /// holds the shipped IAM policy rendered for its cluster id (`--cluster-id`, default
    /// `test`): every AWS request it makes is judged by the rig's IAM judge. The platform
    /// allows it the account's Lambda functions (`--allowed-functions`) unless the test
    /// says otherwise.
    pub async fn start(
        namespace: &str,
        account: &Account,
        extra_args: &[&str],
        extra_env: &[(&str, &str)],
    ) -> Self {
        let cluster_id = extra_args
            .iter()
            .position(|a| *a == "--cluster-id")
            .and_then(|i| extra_args.get(i + 1))
            .copied()
            .unwrap_or("test");
        // Set the identity up in the emulator itself, not through a test's fault proxy.
        let direct = Account {
            endpoint: authedapi_rig::shared::emulator().endpoint.clone(),
            ..account.clone()
        };
        let identity = authedapi_rig::OperatorIdentity::provision(
            &direct,
            std::path::Path::new(env!("CARGO_BIN_EXE_authedapi")),
            cluster_id,
            &Default::default(),
        )
        .await
        .expect("the operator's IAM role in the emulator");
        Self::start_as(
            namespace,
            account,
            &identity.credentials,
            extra_args,
            extra_env,
        )
    }

    /// Start `authedapi controller` as the principal holding `credentials`.
    pub fn start_as(
        namespace: &str,
        account: &Account,
        credentials: &authedapi_rig::Credentials,
        extra_args: &[&str],
        extra_env: &[(&str, &str)],
    ) -> Self {
        Self::spawn(
            namespace,
            &["--namespace", namespace],
            account,
            credentials,
            extra_args,
            extra_env,
        )
    }

    /// Start `authedapi controller` watching every namespace's AuthedApis labelled
    /// `label` (a selector), as the principal holding `credentials`.
    pub fn start_selecting(
        label: &str,
        account: &Account,
        credentials: &authedapi_rig::Credentials,
        extra_args: &[&str],
    ) -> Self {
        let name: String = label
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        Self::spawn(
            &name,
            &["--watch-label-selector", label],
            account,
            credentials,
            extra_args,
            &[],
        )
    }

    fn spawn(
        name: &str,
        scope: &[&str],
        account: &Account,
        credentials: &authedapi_rig::Credentials,
        extra_args: &[&str],
        extra_env: &[(&str, &str)],
    ) -> Self {
        let control_plane = authedapi_rig::shared::control_plane();
        let port = authedapi_rig::free_port().expect("a free port");
        let metrics_addr = format!("127.0.0.1:{port}");
        let log = control_plane
            .dir()
            .join(format!("operator-{name}-{port}.log"));
        let mut args = vec!["controller".to_owned()];
        args.extend(scope.iter().map(|a| a.to_string()));
        args.extend(["--metrics-addr".to_owned(), metrics_addr.clone()]);
        if !extra_args.contains(&"--cluster-id") {
            args.extend(["--cluster-id".to_owned(), "test".to_owned()]);
        }
        if !extra_args.contains(&"--allowed-functions") {
            args.extend([
                "--allowed-functions".to_owned(),
                format!("arn:aws:lambda:*:{}:function:*", account.id),
            ]);
        }
        if !extra_args.contains(&"--allowed-private-targets") {
            args.extend([
                "--allowed-private-targets".to_owned(),
                format!("arn:aws:*:*:{}:*", account.id),
            ]);
        }
        args.extend(extra_args.iter().map(|a| a.to_string()));
        // The supervisor passes its environment on: set it for the child process.
        let mut env = authedapi_rig::operator_env(control_plane, account, credentials);
        env.push(("AUTHEDAPI_LOG_LEVEL".into(), "info,authedapi=debug".into()));
        env.extend(
            extra_env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        let process = Supervised::spawn_with_env(
            "authedapi",
            std::path::Path::new(env!("CARGO_BIN_EXE_authedapi")),
            &args,
            &env,
            &log,
            None,
        )
        .expect("the operator starts");
        Self {
            process,
            metrics_addr,
        }
    }

    /// The operator's log, for failure messages.
    pub fn log_tail(&self, lines: usize) -> String {
        self.process.log_tail(lines)
    }

    /// Whether the process has exited.
    pub fn exited(&mut self) -> bool {
        self.process.exited()
    }

    /// Wait up to `timeout` for the process to exit by itself.
    pub async fn wait_exit(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.process.exited() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    }

    /// Stop the operator (SIGTERM: it shuts down gracefully).
    pub fn stop(&mut self) {
        self.process.stop();
    }

    /// Kill the operator with SIGKILL, as a crash or a lost node would.
    pub fn kill(&mut self) {
        self.process.kill();
    }

    /// Reconciles the operator finished so far.
    pub async fn reconciles(&self) -> u64 {
        sum_metric(&self.metrics().await, "authedapi_reconciles_total", None)
    }

    /// The /metrics text (retrying while the server starts).
    pub async fn metrics(&self) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match http_get(&self.metrics_addr, "/metrics").await {
                Ok(body) => return body,
                Err(e) if Instant::now() > deadline => {
                    panic!("no metrics from the operator: {e}\n{}", self.log_tail(30))
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    /// AWS requests the operator made so far, all or only of `kind` ("read"/"write").
    pub async fn aws_requests(&self, kind: Option<&str>) -> u64 {
        sum_metric(
            &self.metrics().await,
            "authedapi_aws_requests_total",
            kind.map(|k| ("kind", k)),
        )
    }
}

/// Sum the samples of `metric` whose labels include `label` (when given).
pub fn sum_metric(text: &str, metric: &str, label: Option<(&str, &str)>) -> u64 {
    text.lines()
        .filter(|l| l.starts_with(metric))
        .filter(|l| label.is_none_or(|(k, v)| l.contains(&format!("{k}=\"{v}\""))))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// GET `http://{addr}{path}` (no proxy) and return the body, whatever the status: enough
/// for the metrics endpoint.
pub async fn http_get(addr: &str, path: &str) -> std::io::Result<String> {
    let response = reqwest::Client::builder()
        .no_proxy()
        .build()
        .map_err(std::io::Error::other)?
        .get(format!("http://{addr}{path}"))
        .send()
        .await
        .map_err(std::io::Error::other)?;
    response.text().await.map_err(std::io::Error::other)
}

/// Wait until `name` is Ready for its current generation; panics with the status and the
/// operator's log when it is not within `timeout`.
pub async fn wait_ready(
    api: &Api<AuthedApi>,
    name: &str,
    operator: &Operator,
    timeout: Duration,
) -> AuthedApi {
    wait_for(api, name, operator, timeout, "Ready", |o| {
        let generation = o.metadata.generation.unwrap_or_default();
        authedapi::status::is_ready(
            o.status
                .as_ref()
                .map(|s| s.conditions.as_slice())
                .unwrap_or_default(),
            generation,
        )
    })
    .await
}

/// Wait until `check` holds for `name`.
pub async fn wait_for(
    api: &Api<AuthedApi>,
    name: &str,
    operator: &Operator,
    timeout: Duration,
    what: &str,
    check: impl Fn(&AuthedApi) -> bool,
) -> AuthedApi {
    let deadline = Instant::now() + timeout;
    loop {
        let current = api.get_opt(name).await.expect("reading the object");
        if let Some(obj) = &current
            && check(obj)
        {
            return obj.clone();
        }
        if Instant::now() > deadline {
            panic!(
                "{name} not {what} within {timeout:?}; status: {:#?}\n--- operator log ---\n{}",
                current.and_then(|o| o.status),
                operator.log_tail(40)
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Wait until `name` is gone (its finalizer done).
pub async fn wait_gone(api: &Api<AuthedApi>, name: &str, operator: &Operator, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while api
        .get_opt(name)
        .await
        .expect("reading the object")
        .is_some()
    {
        assert!(
            Instant::now() < deadline,
            "{name} still exists after {timeout:?}\n--- operator log ---\n{}",
            operator.log_tail(40)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Server-side apply `object` (JSON) into `api`.
pub async fn apply(api: &Api<AuthedApi>, object: &serde_json::Value) -> AuthedApi {
    let name = object["metadata"]["name"]
        .as_str()
        .expect("a name")
        .to_owned();
    api.patch(
        &name,
        &PatchParams::apply(TEST_MANAGER).force(),
        &Patch::Apply(object),
    )
    .await
    .unwrap_or_else(|e| panic!("applying {name}: {e}"))
}

/// The seed example moved into `account`: its function ARNs point there, and the two
/// functions exist in the emulator.
pub async fn seed_in(
    account: &Account,
    config: &aws_types::SdkConfig,
    name: &str,
) -> serde_json::Value {
    let mut object = example();
    object["metadata"]["name"] = serde_json::json!(name);
    moved_into(account, config, object).await
}

/// Every document of an example file under `examples/`.
pub fn example_documents(file: &str) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(repo().join("examples").join(file)).expect("the example");
    serde_yaml::Deserializer::from_str(&text)
        .map(|doc| serde::Deserialize::deserialize(doc).expect("a YAML document"))
        .collect()
}

/// `object` with its function ARNs moved into `account`, the functions created there.
pub async fn moved_into(
    account: &Account,
    config: &aws_types::SdkConfig,
    object: serde_json::Value,
) -> serde_json::Value {
    let text = object.to_string().replace("123456789012", &account.id);
    let object: serde_json::Value = serde_json::from_str(&text).unwrap();
    for route in object["spec"]["routes"].as_array().unwrap() {
        if let Some(arn) = route["target"]["lambda"]["functionArn"].as_str() {
            let function = arn.rsplit(':').next().unwrap();
            ensure_function(config, function).await;
        }
    }
    object
}

/// Create the function unless it exists (tests may race for the same one).
pub async fn ensure_function(config: &aws_types::SdkConfig, name: &str) -> String {
    authedapi_rig::functions::ensure_function(config, name)
        .await
        .expect("a Lambda function in the emulator")
}

/// The uid of an object, for tag checks.
pub fn uid(obj: &AuthedApi) -> String {
    obj.uid().expect("a uid")
}

/// `helm` from the rig's tools, run in the repository, with its own (throwaway) homes.
pub fn helm() -> Command {
    let mut cmd = Command::new(authedapi_rig::tool("helm").expect("helm is built"));
    let home = std::env::temp_dir().join("authedapi-tests-helm");
    cmd.current_dir(repo())
        .env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_DATA_HOME", home.join("data"));
    cmd
}

/// Run `cmd` (with `stdin` when given); its stdout. Panics with its output when it fails.
pub fn run(cmd: &mut Command, stdin: Option<&str>) -> String {
    let (ok, stdout, stderr) = try_run(cmd, stdin);
    assert!(ok, "{cmd:?} failed:\n{stdout}\n{stderr}");
    stdout
}

/// Run `cmd`: (success, stdout, stderr).
pub fn try_run(cmd: &mut Command, stdin: Option<&str>) -> (bool, String, String) {
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("{cmd:?} starts: {e}"));
    let writer = stdin.map(|text| {
        let mut pipe = child.stdin.take().expect("a stdin pipe");
        let text = text.to_owned();
        std::thread::spawn(move || pipe.write_all(text.as_bytes()))
    });
    let out = child.wait_with_output().expect("the command runs");
    if let Some(writer) = writer {
        writer
            .join()
            .expect("the stdin writer")
            .expect("stdin is written");
    }
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The seed's Lambda functions, as the examples name them.
pub const SEED_FUNCTIONS: [&str; 2] = ["api-auth-auth0-dev-private", "api-auth-auth0-dev-public"];

/// The permission statements on each of the seed's functions in `account`.
pub async fn seed_permissions(
    aws: &authedapi::aws::AwsClients,
    account: &Account,
) -> Vec<(&'static str, Vec<authedapi::aws::lambda::Permission>)> {
    let mut found = Vec::new();
    for function in SEED_FUNCTIONS {
        let arn = format!(
            "arn:aws:lambda:us-east-1:{}:function:{function}",
            account.id
        );
        let permissions = aws.lambda.permissions(&arn).await.unwrap();
        found.push((function, permissions.expect("the function exists")));
    }
    found
}

/// The AWS operations the emulator received from operators acting in `account`, in
/// order, as its IAM judge recorded them (the emulator's own count, not the operator's).
pub fn operator_requests(account: &Account) -> Vec<String> {
    let principal = format!("::{}:assumed-role/authedapi-operator-", account.id);
    authedapi_rig::shared::emulator()
        .judge
        .decisions()
        .into_iter()
        .filter(|d| d.principal.contains(&principal))
        .map(|d| d.operation)
        .collect()
}

/// Whether an AWS operation ("service:Operation", as the judge records it) only reads.
pub fn is_read(operation: &str) -> bool {
    let name = operation.rsplit(':').next().unwrap_or(operation);
    ["Get", "List", "Describe"]
        .iter()
        .any(|prefix| name.starts_with(prefix))
}

/// Set (Some) or remove (None) an annotation on `name`.
pub async fn annotate(api: &Api<AuthedApi>, name: &str, key: &str, value: Option<&str>) {
    let patch = serde_json::json!({"metadata": {"annotations": {key: value}}});
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap_or_else(|e| panic!("annotating {name}: {e}"));
}

use authedapi::aws::AwsClients;
use authedapi_rig::fault_proxy::{FaultProxy, Rule};
use authedapi_rig::{TestNamespace, shared};
use kube::api::DeleteParams;

/// How long the end-to-end tests wait for an object to be Ready, Stalled or gone.
pub const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// What most end-to-end tests start from: a namespace of their own in the shared control
/// plane, a fresh AWS account in the shared emulator with clients for it, and an
/// operator watching the namespace (with `operator_args`).
pub struct Fixture {
    pub client: kube::Client,
    pub namespace: TestNamespace,
    pub account: Account,
    pub config: aws_types::SdkConfig,
    pub aws: AwsClients,
    pub api: Api<AuthedApi>,
    pub operator: Operator,
    proxy: Option<FaultProxy>,
}

impl Fixture {
    /// The operator reaches the emulator directly.
    pub async fn new(prefix: &str, operator_args: &[&str]) -> Self {
        Self::start(prefix, None, operator_args).await
    }

    /// The operator reaches the emulator through a fault proxy of this test's own, which
    /// holds `rules` from before the operator starts (see [`Fixture::proxy`]). The test's
    /// own AWS clients (`aws`, `config`) go straight to the emulator.
    pub async fn through_proxy(prefix: &str, rules: Vec<Rule>, operator_args: &[&str]) -> Self {
        Self::start(prefix, Some(rules), operator_args).await
    }

    async fn start(prefix: &str, proxy_rules: Option<Vec<Rule>>, operator_args: &[&str]) -> Self {
        let client = shared::client().await;
        install_crd(&client).await.expect("the CRD installs");
        let namespace = TestNamespace::create(&client, prefix)
            .await
            .expect("a namespace");
        let account = shared::account();
        let config = account.sdk_config().await;
        let (proxy, operator) = match proxy_rules {
            None => {
                let operator = Operator::start(&namespace.name, &account, operator_args, &[]).await;
                (None, operator)
            }
            Some(rules) => {
                let proxy = FaultProxy::start(&shared::emulator().endpoint)
                    .expect("a fault proxy in front of the emulator");
                if !rules.is_empty() {
                    proxy.set_rules(rules);
                }
                let via_proxy = Account {
                    endpoint: proxy.endpoint().to_owned(),
                    ..account.clone()
                };
                let operator =
                    Operator::start(&namespace.name, &via_proxy, operator_args, &[]).await;
                (Some(proxy), operator)
            }
        };
        Self {
            api: Api::namespaced(client.clone(), &namespace.name),
            aws: AwsClients::new(&config, &[]),
            client,
            namespace,
            account,
            config,
            operator,
            proxy,
        }
    }

    /// The fault proxy in front of the emulator (only for [`Fixture::through_proxy`]).
    pub fn proxy(&self) -> &FaultProxy {
        self.proxy
            .as_ref()
            .expect("a fixture made with Fixture::through_proxy")
    }

    /// Every events.k8s.io Event in this fixture's namespace.
    pub async fn events(&self) -> Vec<k8s_openapi::api::events::v1::Event> {
        Api::namespaced(self.client.clone(), &self.namespace.name)
            .list(&Default::default())
            .await
            .expect("events list")
            .items
    }

    /// The seed example named `name`, moved into this fixture's account.
    pub async fn seed(&self, name: &str) -> serde_json::Value {
        seed_in(&self.account, &self.config, name).await
    }

    /// Wait until `name` is Ready for its current generation.
    pub async fn ready(&self, name: &str) -> AuthedApi {
        wait_ready(&self.api, name, &self.operator, READY_TIMEOUT).await
    }

    /// Apply `object`, wait for Ready, return it.
    pub async fn apply_ready(&self, object: &serde_json::Value) -> AuthedApi {
        let name = object["metadata"]["name"].as_str().unwrap();
        apply(&self.api, object).await;
        self.ready(name).await
    }

    /// Apply the seed example named `name` and wait for Ready.
    pub async fn seed_ready(&self, name: &str) -> AuthedApi {
        self.apply_ready(&self.seed(name).await).await
    }

    /// Delete `name` and wait until it is gone (its finalizer done).
    pub async fn delete(&self, name: &str) {
        self.api
            .delete(name, &DeleteParams::default())
            .await
            .unwrap();
        wait_gone(&self.api, name, &self.operator, READY_TIMEOUT).await;
    }

    /// The invoke policy on `obj`'s authenticated role, if it has one.
    pub async fn invoke_policy(&self, obj: &AuthedApi) -> Option<serde_json::Value> {
        self.aws
            .iam
            .get_role_policy(&role_name(obj), "authedapi-invoke")
            .await
            .unwrap()
    }

    /// `arn:aws:execute-api:us-east-1:{account}:{rest}`.
    pub fn arn(&self, rest: &str) -> String {
        format!("arn:aws:execute-api:us-east-1:{}:{rest}", self.account.id)
    }
}

/// The API id in `obj`'s status.
pub fn api_id(obj: &AuthedApi) -> String {
    obj.status
        .as_ref()
        .and_then(|s| s.api_id.clone())
        .expect("apiId")
}

/// The name of `obj`'s authenticated role, from the ARN in its status.
pub fn role_name(obj: &AuthedApi) -> String {
    let arn = obj
        .status
        .as_ref()
        .and_then(|s| s.authenticated_role_arn.clone())
        .expect("role");
    arn.rsplit('/').next().unwrap().to_owned()
}

/// `obj`'s condition of `type_`: (status, reason, message).
pub fn condition(obj: &AuthedApi, type_: &str) -> Option<(String, String, String)> {
    obj.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
}

/// Wait until `name` says Stalled=True.
pub async fn wait_stalled(api: &Api<AuthedApi>, name: &str, operator: &Operator) -> AuthedApi {
    wait_for(
        api,
        name,
        operator,
        Duration::from_secs(60),
        "Stalled",
        |o| condition(o, "Stalled").is_some_and(|(status, _, _)| status == "True"),
    )
    .await
}
