//! The `authedapi` command: the operator and its helpers.

use clap::{Parser, Subcommand, ValueEnum};
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(
    name = "authedapi",
    version,
    about = "AuthedApi operator: Auth0-protected AWS HTTP APIs from Kubernetes"
)]
struct Cli {
    /// Log format.
    #[arg(
        long,
        env = "AUTHEDAPI_LOG_FORMAT",
        value_enum,
        default_value = "text",
        global = true
    )]
    log_format: LogFormat,

    /// Log filter, e.g. info, debug, authedapi=debug,kube=info (RUST_LOG syntax).
    #[arg(
        long,
        env = "AUTHEDAPI_LOG_LEVEL",
        default_value = "info",
        global = true
    )]
    log_level: String,

    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the operator: reconcile AuthedApi objects into AWS.
    Controller(authedapi::controller::ControllerArgs),
    /// Print the CustomResourceDefinitions (AuthedApi, AuthedApiTenant) as YAML.
    Crd {
        /// Write each to its own file in this directory instead (as `crds/` holds them).
        #[arg(long)]
        dir: Option<std::path::PathBuf>,
    },
    /// Print the AWS IAM policy the operator needs (or, with --boundary, the permissions
    /// boundary of the roles it creates), rendered for one cluster.
    IamPolicy {
        /// Print the permissions boundary instead of the operator's own policy.
        #[arg(long)]
        boundary: bool,
        #[command(flatten)]
        params: authedapi::iam_policy::PolicyParams,
    },
    /// Call a route as a logged-in Auth0 user would: ID token -> Cognito credentials ->
    /// SigV4-signed request (IAM routes), bearer token (JWT routes), or unsigned (public).
    Call(authedapi::call::CallArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let filter = EnvFilter::try_new(&cli.log_level)?;
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().init(),
    }
    match cli.command {
        Command::Controller(args) => authedapi::controller::run(args).await,
        Command::Crd { dir } => {
            for (file, yaml) in authedapi::crdgen::all() {
                match &dir {
                    Some(dir) => std::fs::write(dir.join(file), yaml)?,
                    None => print!("---\n{yaml}"),
                }
            }
            Ok(())
        }
        Command::IamPolicy { boundary, params } => {
            let policy = authedapi::iam_policy::render(&params, boundary)
                .map_err(|refusal| anyhow::anyhow!(refusal))?;
            for note in params.notes(boundary) {
                eprintln!("note: {note}");
            }
            print!("{policy}");
            Ok(())
        }
        Command::Call(args) => match authedapi::call::run(args).await {
            Ok(code) => std::process::exit(code),
            Err(e) => {
                eprintln!("error: {e}");
                std::process::exit(2);
            }
        },
    }
}
