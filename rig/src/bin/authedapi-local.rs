//! `authedapi-local`: the operator's main job on this machine, with no cloud account, and
//! the seed's walkthrough on it.
//!
//! Starts a real etcd + kube-apiserver, the AWS emulator (IAM judged, with API Gateway's
//! data plane), an Auth0 stand-in for the example's Auth0 domain and the rig's web (the
//! front door that makes `https://<api>.execute-api...` and `https://<tenant>.auth0.com`
//! reachable), gives the operator a role holding the shipped IAM policy, applies the
//! platform's tenant and the example, waits until it is Ready and prints what `sst deploy`
//! prints, then the walkthrough's commands (curl, `authedapi call --login`, a handler
//! change). It keeps everything running until Ctrl-C (or, with `--exit`, checks the
//! public and private routes answer as the seed says and exits).
//!
//! `authedapi-local login URL` and `authedapi-local update-function NAME FILE` are the
//! walkthrough's helpers: a browser for the login page, and `aws lambda update-function-code`.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, bail};
use authedapi_rig::auth0::{Application, TestUser};
use authedapi_rig::emulator::Account;
use authedapi_rig::node::chart::{ChartInstall, NodeRig, OPERATOR_SERVICE_ACCOUNT};
use authedapi_rig::operator_identity::PolicyOptions;
use authedapi_rig::process::Supervised;
use authedapi_rig::web::Web;
use authedapi_rig::{
    Auth0StandIn, ControlPlane, Emulator, OperatorIdentity, free_port, functions, repo_root,
};
use clap::{Parser, Subcommand};

/// The account the examples' function ARNs name (moto's default account).
const EXAMPLE_ACCOUNT: &str = "123456789012";
/// The platform team's AuthedApiTenant for the examples' namespace.
const TENANT: &str = "examples/tenant.yaml";
/// The demo's Auth0 user (on the stand-in: not a real account).
const DEMO_USER: &str = "demo@example.com";
const DEMO_PASSWORD: &str = "authedapi-demo";
/// The stand-in application's client secret (a local fake, printed for the walkthrough).
const DEMO_CLIENT_SECRET: &str = "local-demo-client-secret";
/// The seed's callback URL (its Auth0 app's Allowed Callback URLs).
const CALLBACK: &str = "http://localhost:5678";

#[derive(Parser)]
#[command(
    about = "Run authedapi locally: control plane, AWS emulator, Auth0 stand-in, operator and an example"
)]
struct Args {
    /// The operator binary (built by `make demo`).
    #[arg(long, default_value = "target/debug/authedapi")]
    operator: PathBuf,
    /// The example to apply.
    #[arg(long, default_value = "examples/authedapi.yaml")]
    example: PathBuf,
    /// Exit once the example is Ready and answers (for scripts and CI) instead of waiting
    /// for Ctrl-C.
    #[arg(long)]
    exit: bool,
    /// Run the operator as users do: its image (`make image`) as a Pod on the rig's real
    /// node, installed by its Helm chart with IRSA credentials (needs root).
    #[arg(long)]
    node: bool,
    /// The image `--node` runs (hack/image.sh's archive).
    #[arg(long, default_value = "target/image/authedapi-0.1.0.oci.tar")]
    image: PathBuf,
    #[command(subcommand)]
    helper: Option<Helper>,
}

#[derive(Subcommand)]
enum Helper {
    /// Log in at the Auth0 stand-in's login page, as a browser would: open URL (the one
    /// `authedapi call --login` prints), submit the user's credentials, follow the redirect.
    Login {
        url: String,
        #[arg(long, default_value = DEMO_USER)]
        username: String,
        #[arg(long, default_value = DEMO_PASSWORD)]
        password: String,
    },
    /// Replace a Lambda function's code in the emulator with FILE (a Node.js handler), as
    /// `aws lambda update-function-code` does.
    UpdateFunction { name: String, file: PathBuf },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    match args.helper {
        Some(Helper::Login {
            url,
            username,
            password,
        }) => login(&url, &username, &password).await,
        Some(Helper::UpdateFunction { name, file }) => {
            let endpoint = std::env::var("AWS_ENDPOINT_URL")
                .context("AWS_ENDPOINT_URL is not set: source the demo's environment file first")?;
            let config = Account::new(&endpoint, EXAMPLE_ACCOUNT).sdk_config().await;
            functions::update_code(&config, &name, &file).await?;
            println!("Updated {name} with {}", file.display());
            Ok(())
        }
        None => demo(args).await,
    }
}

/// The Lambda function patterns the AuthedApiTenants in `path` allow.
fn tenant_functions(path: &str) -> anyhow::Result<Vec<String>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
    let mut functions = Vec::new();
    for document in serde_yaml::Deserializer::from_str(&text) {
        let value: serde_json::Value = serde::Deserialize::deserialize(document)?;
        if let Some(allowed) = value["spec"]["allowedFunctions"].as_array() {
            functions.extend(allowed.iter().filter_map(|f| f.as_str().map(str::to_owned)));
        }
    }
    anyhow::ensure!(!functions.is_empty(), "{path} allows no Lambda function");
    Ok(functions)
}

/// The example's Auth0 domain and client id (the stand-in takes them on).
fn auth0_of(example: &str) -> anyhow::Result<(String, String)> {
    for document in serde_yaml::Deserializer::from_str(example) {
        let value: serde_json::Value = serde::Deserialize::deserialize(document)?;
        let auth0 = &value["spec"]["auth0"];
        if let (Some(domain), Some(client)) = (auth0["domain"].as_str(), auth0["clientId"].as_str())
        {
            let domain = domain.trim_start_matches("https://").trim_end_matches('/');
            return Ok((domain.to_owned(), client.to_owned()));
        }
    }
    bail!("the example names no spec.auth0")
}

async fn demo(args: Args) -> anyhow::Result<()> {
    let root = repo_root();
    std::env::set_current_dir(&root)?;
    let started = Instant::now();

    let example = std::fs::read_to_string(&args.example)
        .with_context(|| format!("reading {}", args.example.display()))?;
    let operator_path = root.join(&args.operator);
    anyhow::ensure!(
        operator_path.exists(),
        "{} is missing: build it with `cargo build --bin authedapi`",
        operator_path.display()
    );
    let functions_allowed = tenant_functions(TENANT)?;
    // Where it runs: the operator as a local process on the loopback control plane, or as
    // a Pod from its image on the rig's node.
    let rig = if args.node {
        let tag = args
            .image
            .file_name()
            .and_then(|f| f.to_str())
            .and_then(|f| f.strip_prefix("authedapi-")?.strip_suffix(".oci.tar"))
            .context("--image is hack/image.sh's authedapi-<tag>.oci.tar")?
            .to_owned();
        println!(
            "Starting the rig's node (control plane, containerd, kubelet, kube-proxy) and the AWS emulator (moto)..."
        );
        Rig::Node(Box::new(
            NodeRig::start(&root.join(&args.image), &tag).await?,
        ))
    } else {
        println!(
            "Starting the local control plane (etcd + kube-apiserver) and the AWS emulator (moto)..."
        );
        let (plane, emulator) = tokio::try_join!(ControlPlane::start(), Emulator::start())?;
        println!("Installing the CRDs...");
        plane.install_crds()?;
        let web = Web::start(&emulator.endpoint, plane.dir()).await?;
        Rig::Local(Box::new(LocalRig {
            plane,
            emulator,
            web,
        }))
    };
    let (control_plane, emulator, web) = rig.parts();

    // The seed's Lambda functions with the seed's handlers, standing in for the user's.
    let account = Account::new(&emulator.endpoint, EXAMPLE_ACCOUNT);
    let config = account.sdk_config().await;
    for function in functions::function_names(&example) {
        functions::ensure_function(&config, &function).await?;
        println!("Created Lambda function {function} in the emulator (the seed's handler)");
    }

    // Auth0, as the example names it, and the web that reaches it and the APIs.
    let (domain, client_id) = auth0_of(&example)?;
    let auth0 = Auth0StandIn::start(
        &domain,
        vec![Application::confidential(
            &client_id,
            DEMO_CLIENT_SECRET,
            vec![
                CALLBACK.into(),
                "http://127.0.0.1/*".into(),
                "http://localhost/*".into(),
            ],
        )],
        vec![TestUser::new(DEMO_USER, DEMO_PASSWORD)],
    )
    .await?;
    web.add_issuer(&auth0).await?;
    println!(
        "Auth0 stand-in for https://{domain} (user {DEMO_USER}), reachable through the rig's web"
    );

    let running = match &rig {
        Rig::Local(_) => {
            // The operator's AWS identity, as a platform team would give it: the shipped
            // policy (`authedapi iam-policy`) on a role, every role it creates bounded,
            // rendered for this account and the functions the platform's tenant allows.
            let mut policy_args = Vec::new();
            for function in &functions_allowed {
                policy_args.extend(["--allowed-function".to_owned(), function.clone()]);
            }
            let identity = OperatorIdentity::provision(
                &account,
                &operator_path,
                "default",
                &PolicyOptions { args: policy_args },
            )
            .await?;
            println!(
                "Operator role {} holds the shipped IAM policy; every AWS request it makes is judged",
                identity.role_arn
            );
            println!("Applying {TENANT} (the platform team's limits)...");
            print!("{}", control_plane.run_kubectl(&["apply", "-f", TENANT])?);
            let metrics = format!("127.0.0.1:{}", free_port()?);
            let log = control_plane.dir().join("operator.log");
            let env = authedapi_rig::operator_env(control_plane, &account, &identity.credentials);
            let operator = Supervised::spawn_with_env(
                "authedapi",
                &operator_path,
                &[
                    "controller".into(),
                    "--metrics-addr".into(),
                    metrics.clone(),
                ],
                &env,
                &log,
                None,
            )?;
            println!(
                "Operator running (metrics on http://{metrics}/metrics, log in {})",
                log.display()
            );
            Running::Process(operator)
        }
        Rig::Node(node_rig) => {
            // The operator's IRSA role in the example's account, trusting the chart's
            // ServiceAccount; the chart installed as a platform team installs it.
            let install = ChartInstall::prepare_in(
                node_rig,
                "authedapi",
                OPERATOR_SERVICE_ACCOUNT,
                &operator_path,
                account.clone(),
                Some("default"),
                functions_allowed.clone(),
            )
            .await?;
            println!(
                "Operator role {} (IRSA: the pod's ServiceAccount token, judged by STS) holds the shipped IAM policy",
                install.role_arn
            );
            let took = install.install(&[])?;
            println!(
                "helm install --wait: the operator's pod is Ready in {:.1}s (namespace {})",
                took.as_secs_f64(),
                install.namespace
            );
            println!("Applying {TENANT} (the platform team's limits)...");
            print!("{}", control_plane.run_kubectl(&["apply", "-f", TENANT])?);
            Running::Pod(install.namespace.clone())
        }
    };

    println!("Applying {}...", args.example.display());
    let example_path = args.example.display().to_string();
    print!(
        "{}",
        control_plane.run_kubectl(&["apply", "-f", &example_path])?
    );
    let names = control_plane.run_kubectl(&["get", "-f", &example_path, "-o", "name"])?;
    for name in names.lines() {
        if let Err(e) =
            control_plane.run_kubectl(&["wait", "--for=condition=Ready", "--timeout=120s", name])
        {
            bail!(
                "{e}\n--- operator log ---\n{}",
                running.log_tail(control_plane)
            );
        }
    }
    let ready_in = started.elapsed();

    println!();
    let mut endpoints = Vec::new();
    for name in names.lines() {
        let field = |path: &str| {
            control_plane.run_kubectl(&["get", name, "-o", &format!("jsonpath={{{path}}}")])
        };
        let endpoint = field(".status.apiEndpoint")?;
        println!("✔ {name} is Ready");
        println!("  ApiEndpoint:    {endpoint}");
        println!("  IdentityPoolId: {}", field(".status.identityPoolId")?);
        endpoints.push((name.rsplit('/').next().unwrap_or(name).to_owned(), endpoint));
    }
    println!();
    print!(
        "{}",
        control_plane.run_kubectl(&["get", "authedapis", "-A"])?
    );
    println!();
    println!(
        "All up in {:.1}s (control plane {:.1}s, emulator {:.1}s).",
        ready_in.as_secs_f64(),
        control_plane.startup.as_secs_f64(),
        emulator.startup.as_secs_f64()
    );
    if let Running::Pod(namespace) = &running {
        println!("The operator runs as a Pod: kubectl -n {namespace} get pods,deployments");
    }

    // The environment a person uses from another terminal.
    let env_file = control_plane.dir().join("demo.env");
    let mut lines = vec![
        format!("export KUBECONFIG={}", control_plane.kubeconfig.display()),
        format!("export AWS_ENDPOINT_URL={}", emulator.endpoint),
        "export AWS_REGION=us-east-1".to_owned(),
        format!("export AUTH0_CLIENT_SECRET={DEMO_CLIENT_SECRET}"),
        format!(
            "export PATH={}:{}:$PATH",
            authedapi_rig::tools_dir().join("bin").display(),
            root.join("target/debug").display()
        ),
    ];
    lines.extend(
        web.client_env()
            .into_iter()
            .map(|(k, v)| format!("export {k}={v}")),
    );
    std::fs::write(&env_file, lines.join("\n") + "\n")?;

    let (name, endpoint) = endpoints.first().cloned().unwrap_or_default();
    println!("The seed's walkthrough, from another terminal:");
    println!("  source {}", env_file.display());
    println!("  curl {endpoint}/public                # Hello stranger!");
    println!("  curl {endpoint}/private               # {{\"message\":\"Forbidden\"}}");
    println!(
        "  # Log in with Auth0 and call the private route signed (user {DEMO_USER}, password {DEMO_PASSWORD}):"
    );
    println!(
        "  authedapi call {name} GET /private --login --client-secret-env AUTH0_CLIENT_SECRET"
    );
    println!(
        "  #   it prints a login URL: open it in a browser that uses the proxy in HTTPS_PROXY,"
    );
    println!(
        "  #   or log in from a third terminal (after the source line): authedapi-local login '<that URL>'"
    );
    println!("  # Make a change: the private handler greets you by your Cognito identity id");
    println!(
        "  authedapi-local update-function {name}-dev-private examples/functions/private-identity.mjs"
    );
    println!(
        "  authedapi call {name} GET /private --login --client-secret-env AUTH0_CLIENT_SECRET   # Hello us-east-1:…!"
    );
    println!(
        "  kubectl get aapi; kubectl describe aapi {name}; kubectl delete aapi {name}   # sst remove"
    );

    if args.exit {
        // What the walkthrough's first two steps see, checked.
        let http = web.http_client()?;
        for (path, status, body) in [
            ("/public", 200, "Hello stranger!"),
            ("/private", 403, r#"{"message":"Forbidden"}"#),
        ] {
            let answer = http.get(format!("{endpoint}{path}")).send().await?;
            let got = (answer.status().as_u16(), answer.text().await?);
            anyhow::ensure!(
                got == (status, body.to_owned()),
                "{path} answered {got:?}, not ({status}, {body:?})"
            );
            println!("✔ {path}: {status} {body}");
        }
        return Ok(());
    }
    println!("Press Ctrl-C to stop everything.");
    match running {
        Running::Process(mut operator) => tokio::select! {
            _ = tokio::signal::ctrl_c() => println!("Stopping..."),
            _ = async {
                while !operator.exited() {
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                }
            } => println!("The operator exited:\n{}", operator.log_tail(30)),
        },
        Running::Pod(_) => {
            tokio::signal::ctrl_c().await?;
            println!("Stopping...");
        }
    }
    Ok(())
}

/// The rig the demo runs on.
enum Rig {
    /// A loopback control plane and emulator; the operator runs as a process.
    Local(Box<LocalRig>),
    /// The rig's node; the operator runs as a Pod from its image.
    Node(Box<NodeRig>),
}

impl Rig {
    fn parts(&self) -> (&ControlPlane, &Emulator, &Web) {
        match self {
            Rig::Local(local) => (&local.plane, &local.emulator, &local.web),
            Rig::Node(rig) => (&rig.node.plane, &rig.emulator, &rig.web),
        }
    }
}

/// The loopback rig's parts.
struct LocalRig {
    plane: ControlPlane,
    emulator: Emulator,
    web: Web,
}

/// The operator the demo started.
enum Running {
    Process(Supervised),
    /// Its Deployment's namespace.
    Pod(String),
}

impl Running {
    fn log_tail(&self, plane: &ControlPlane) -> String {
        match self {
            Running::Process(operator) => operator.log_tail(30),
            Running::Pod(namespace) => plane
                .run_kubectl(&[
                    "logs",
                    "-n",
                    namespace,
                    "-l",
                    "app.kubernetes.io/name=authedapi",
                    "--tail=30",
                ])
                .unwrap_or_else(|e| e.to_string()),
        }
    }
}

/// Be the browser: open the login page, submit the form, follow the redirect back to the
/// waiting `authedapi call --login`.
async fn login(url: &str, username: &str, password: &str) -> anyhow::Result<()> {
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let page = browser
        .get(url)
        .send()
        .await
        .context("opening the login page")?;
    anyhow::ensure!(
        page.status().is_success(),
        "the login page answered {}",
        page.status()
    );
    let parsed = url::Url::parse(url)?;
    let mut form: Vec<(String, String)> = parsed.query_pairs().into_owned().collect();
    form.push(("username".into(), username.into()));
    form.push(("password".into(), password.into()));
    let submit = format!(
        "{}://{}/authorize",
        parsed.scheme(),
        parsed.host_str().unwrap_or_default()
    );
    let answer = browser.post(submit).form(&form).send().await?;
    let location = answer
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .with_context(|| format!("the login was refused ({})", answer.status()))?;
    let back = reqwest::Client::builder()
        .no_proxy()
        .build()?
        .get(&location)
        .send()
        .await?;
    println!(
        "{}",
        back.text()
            .await?
            .replace("<!doctype html><title>authedapi</title><p>", "")
            .replace("</p>", "")
    );
    Ok(())
}
