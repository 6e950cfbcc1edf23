//! The `authedapi` command: the operator and its helpers.
#![forbid(unsafe_code)]

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "authedapi",
    version,
    about = "AuthedApi operator: Auth0-protected AWS HTTP APIs from Kubernetes"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the AuthedApi CustomResourceDefinition as YAML.
    Crd,
}

fn main() {
    match Cli::parse().command {
        Command::Crd => print!("{}", authedapi::crdgen::crd_yaml()),
    }
}
