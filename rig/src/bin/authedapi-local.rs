//! `authedapi-local`: the operator's main job on this machine, with no cloud account.
//!
//! Starts a real etcd + kube-apiserver and the AWS emulator, installs the CRD, runs the
//! operator, applies an example, waits until it is Ready and prints what `sst deploy`
//! prints for the seed: the API endpoint and the identity pool id. Then it keeps
//! everything running for `kubectl` until Ctrl-C (or exits at once with `--exit`).
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, bail};
use authedapi_rig::emulator::Account;
use authedapi_rig::process::Supervised;
use authedapi_rig::{ControlPlane, Emulator, OperatorIdentity, free_port, functions, repo_root};
use clap::Parser;

/// The account the examples' function ARNs name (moto's default account).
const EXAMPLE_ACCOUNT: &str = "123456789012";
/// The platform team's AuthedApiTenant for the examples' namespace.
const TENANT: &str = "examples/tenant.yaml";

#[derive(Parser)]
#[command(about = "Run authedapi locally: control plane, AWS emulator, operator and an example")]
struct Args {
    /// The operator binary (built by `make demo`).
    #[arg(long, default_value = "target/debug/authedapi")]
    operator: PathBuf,
    /// The example to apply.
    #[arg(long, default_value = "examples/authedapi.yaml")]
    example: PathBuf,
    /// Exit once the example is Ready (for scripts and CI) instead of waiting for Ctrl-C.
    #[arg(long)]
    exit: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let root = repo_root();
    std::env::set_current_dir(&root)?;
    let started = Instant::now();

    println!(
        "Starting the local control plane (etcd + kube-apiserver) and the AWS emulator (moto)..."
    );
    let (control_plane, emulator) = tokio::try_join!(ControlPlane::start(), Emulator::start())?;

    println!("Installing the AuthedApi CRD...");
    control_plane.install_crds()?;

    // The seed's Lambda functions, standing in for the user's.
    let account = Account::new(&emulator.endpoint, EXAMPLE_ACCOUNT);
    let config = account.sdk_config().await;
    let example = std::fs::read_to_string(&args.example)
        .with_context(|| format!("reading {}", args.example.display()))?;
    for function in functions::function_names(&example) {
        functions::ensure_function(&config, &function).await?;
        println!("Created Lambda function {function} in the emulator (stands in for yours)");
    }

    let operator_path = root.join(&args.operator);
    anyhow::ensure!(
        operator_path.exists(),
        "{} is missing: build it with `cargo build --bin authedapi`",
        operator_path.display()
    );
    // The operator's AWS identity, as a platform team would give it: the shipped policy
    // (`authedapi iam-policy`) on a role, every role it creates bounded.
    let identity =
        OperatorIdentity::provision(&account, &operator_path, "default", &Default::default())
            .await?;
    println!(
        "Operator role {} holds the shipped IAM policy; every AWS request it makes is judged",
        identity.role_arn
    );
    println!("Applying {} (the platform team's limits)...", TENANT);
    print!("{}", control_plane.run_kubectl(&["apply", "-f", TENANT])?);

    let metrics = format!("127.0.0.1:{}", free_port()?);
    let log = control_plane.dir().join("operator.log");
    let env = authedapi_rig::operator_env(&control_plane, &account, &identity.credentials);
    let mut operator = Supervised::spawn_with_env(
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

    println!("Applying {}...", args.example.display());
    print!(
        "{}",
        control_plane.run_kubectl(&["apply", "-f", &args.example.display().to_string()])?
    );
    let names = control_plane.run_kubectl(&[
        "get",
        "-f",
        &args.example.display().to_string(),
        "-o",
        "name",
    ])?;
    for name in names.lines() {
        if let Err(e) =
            control_plane.run_kubectl(&["wait", "--for=condition=Ready", "--timeout=120s", name])
        {
            bail!("{e}\n--- operator log ---\n{}", operator.log_tail(30));
        }
    }
    let ready_in = started.elapsed();

    println!();
    for name in names.lines() {
        let field = |path: &str| {
            control_plane.run_kubectl(&["get", name, "-o", &format!("jsonpath={{{path}}}")])
        };
        println!("✔ {name} is Ready");
        println!("  ApiEndpoint:    {}", field(".status.apiEndpoint")?);
        println!("  IdentityPoolId: {}", field(".status.identityPoolId")?);
        println!(
            "  AuthenticatedRoleArn: {}",
            field(".status.authenticatedRoleArn")?
        );
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
    println!("Use it from another terminal:");
    println!("  export KUBECONFIG={}", control_plane.kubeconfig.display());
    println!(
        "  alias kubectl={}",
        authedapi_rig::tool("kubectl")?.display()
    );
    println!("  kubectl get aapi                       # stage, endpoint, identity pool, Ready");
    println!("  kubectl describe aapi api-auth-auth0   # conditions and events");
    println!("  kubectl explain authedapi.spec.routes  # the fields");
    println!(
        "  kubectl edit aapi api-auth-auth0       # change routes; the operator converges AWS"
    );
    println!("  kubectl delete aapi api-auth-auth0     # removes every AWS resource it created");
    println!(
        "The AWS emulator listens on {} (account {EXAMPLE_ACCOUNT}).",
        emulator.endpoint
    );

    if args.exit {
        return Ok(());
    }
    println!("Press Ctrl-C to stop everything.");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => println!("Stopping..."),
        _ = async {
            while !operator.exited() {
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
        } => println!("The operator exited:\n{}", operator.log_tail(30)),
    }
    Ok(())
}
