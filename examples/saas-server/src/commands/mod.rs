//! The command line: the global settings, the subcommands, and which one runs.

mod config;
mod create_tenant;
mod createsuperuser;
mod migrate;
mod serve;
mod worker;

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::BoxError;
use crate::config::{Config, ServeSettings, Settings};
use crate::wire::{JobKinds, Wired};

#[derive(Debug, Parser)]
#[command(
    name = "saas-server",
    version,
    about = "The saas multi-tenant SaaS backend server"
)]
pub(crate) struct Cli {
    #[command(flatten)]
    settings: Settings,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the REST API (the default), with a background worker and the
    /// periodic schedule in the same process unless `--no-worker`.
    Serve(ServeSettings),
    /// Bring the shared storage and every tenant's storage to the newest schema.
    Migrate,
    /// Register a tenant with its primary domain and first admin (like `POST /api/register/`).
    CreateTenant(create_tenant::Args),
    /// Create a platform superuser. The password comes from env
    /// SAAS_SUPERUSER_PASSWORD, or else the first line of standard input.
    Createsuperuser(createsuperuser::Args),
    /// Run background jobs and the periodic schedule until SIGINT/SIGTERM.
    Worker(worker::Args),
    /// Print the configuration the other commands would run with (from
    /// flags, the environment and `.env`), secrets shown as `***`.
    Config,
}

/// Runs the command `cli` names, with `kinds` of jobs.
pub(crate) async fn run(cli: Cli, kinds: JobKinds) -> Result<ExitCode, BoxError> {
    let config = Config::load(&cli.settings)?;
    let command = match cli.command {
        Some(c) => c,
        None => Command::Serve(ServeSettings::from_env()?),
    };
    match command {
        Command::Config => {
            print!(
                "{}",
                config::Listing::new(&config, &ServeSettings::from_env()?)
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve(serve) => serve::run(Wired::start(config).await?, &serve, kinds).await,
        Command::Worker(args) => worker::run(Wired::start(config).await?, &args, kinds).await,
        Command::Migrate => migrate::run(Wired::start(config).await?).await,
        Command::CreateTenant(args) => create_tenant::run(Wired::start(config).await?, args).await,
        Command::Createsuperuser(args) => {
            createsuperuser::run(Wired::start(config).await?, args).await
        }
    }
}

/// A secret given as a flag or its environment variable `env_name`, else
/// the first line of standard input (prompting when it is a terminal).
fn secret_input(given: Option<String>, env_name: &str, prompt: &str) -> Result<String, BoxError> {
    if let Some(v) = given.filter(|v| !v.is_empty()) {
        return Ok(v);
    }
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprint!("{prompt} (input is shown; set {env_name} to avoid typing it): ");
        std::io::stderr().flush()?;
    }
    let mut line = String::new();
    stdin.lock().read_line(&mut line)?;
    let line = line.trim_end_matches(['\n', '\r']).to_owned();
    if line.is_empty() {
        return Err(
            format!("no password given: set {env_name} or pipe it on standard input").into(),
        );
    }
    Ok(line)
}

/// A refusal of the service, for the operator: the fields at fault, or
/// the error and its causes.
fn refusal(e: &saas_core::Error) -> String {
    match e {
        saas_core::Error::Invalid { fields } => fields
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect::<Vec<_>>()
            .join("; "),
        other => crate::chain(other),
    }
}

/// Prints what a one-off command did, or why the service refused it.
fn outcome<T>(result: Result<T, saas_core::Error>, done: impl FnOnce(T) -> String) -> ExitCode {
    match result {
        Ok(value) => {
            println!("{}", done(value));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {}", refusal(&e));
            ExitCode::FAILURE
        }
    }
}
