//! The command line: the global settings, the subcommands, and which one runs.

mod config;
mod create_tenant;
mod createsuperuser;
mod healthcheck;
mod import_django;
mod jobs;
mod migrate;
mod one_off;
mod output;
mod serve;
mod tenants;
mod worker;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{Config, ServeSettings, Settings};
use crate::error::BoxError;
use crate::host::Host;
use crate::wire::Wired;

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
    /// Import a running Django deployment of the seed (companies, domains,
    /// users with their passwords, projects, members, tasks) from its
    /// PostgreSQL database; resumable, verified per company.
    ImportDjango(import_django::Args),
    /// Run background jobs and the periodic schedule until SIGINT/SIGTERM.
    Worker(worker::Args),
    /// Print the configuration the other commands would run with (from
    /// flags, the environment and `.env`), secrets shown as `***`.
    Config,
    /// Inspect the job queue: list, show, retry (dead jobs), cancel
    /// (waiting jobs), stats. Tables, or `--json`.
    Jobs(jobs::Args),
    /// Operate tenants: list, show, suspend, reactivate, set-plan,
    /// add-domain. Tables, or `--json`.
    Tenants(tenants::Args),
    /// Exit 0 when the server answers its health endpoint (or, with
    /// `--worker`, when this container's worker is alive); for container
    /// health checks.
    Healthcheck(healthcheck::Args),
}

/// Runs the command `cli` names, as `host`'s program.
pub(crate) async fn run(cli: Cli, host: Host) -> Result<ExitCode, BoxError> {
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
        Command::Serve(serve) => serve::run(Wired::start(config, host).await?, &serve).await,
        Command::Worker(args) => worker::run(Wired::start(config, host).await?, &args).await,
        Command::Migrate => migrate::run(Wired::start(config, host).await?).await,
        Command::CreateTenant(args) => {
            create_tenant::run(Wired::start(config, host).await?, args).await
        }
        Command::ImportDjango(args) => {
            import_django::run(Wired::start(config, host).await?, args).await
        }
        Command::Createsuperuser(args) => {
            createsuperuser::run(Wired::start(config, host).await?, args).await
        }
        Command::Healthcheck(args) => healthcheck::run(&config, &args).await,
        Command::Jobs(args) => jobs::run(Wired::start(config, host).await?, args).await,
        Command::Tenants(args) => tenants::run(Wired::start(config, host).await?, args).await,
    }
}
