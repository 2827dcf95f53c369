//! `saas-server`: the example server of `saas`.
//!
//! Configured from flags, environment variables and an optional `.env`
//! file, with the seed's names where they apply; see `.env.example` at the
//! repository root and `saas-server --help`. Defaults to SQLite under
//! `./data`.
//!
//! ```text
//! saas-server                  # = serve
//! saas-server serve --bind 0.0.0.0:8000
//! saas-server serve --no-worker          # API only (also RUN_WORKER=false)
//! saas-server worker --concurrency 16     # jobs and the periodic schedule
//! saas-server migrate
//! saas-server create-tenant --company-name "Acme Corp" --schema-name acme \
//!     --domain-url acme.localhost --admin-username admin --admin-email admin@acme.com
//! SAAS_SUPERUSER_PASSWORD=... saas-server createsuperuser --username root --email root@example.com
//! saas-server config                     # the configuration, secrets shown as ***
//! saas-server jobs list --status dead     # also show, retry, cancel, stats; --json
//! saas-server tenants suspend acme        # also list, show, reactivate, set-plan, add-domain
//! saas-server healthcheck [--worker]     # for container health checks
//! ```
//!
//! The program is this library, so that tests can run its commands with
//! job kinds of their own ([`main_with`]); the `saas-server` binary runs it
//! with the built-in jobs.

mod commands;
mod config;
mod error;
mod shutdown;
mod wire;

use std::ffi::OsString;
use std::process::ExitCode;

use clap::Parser;

pub use wire::{JobKinds, builtin_jobs};

/// Runs `saas-server` with the command line `args` (the program name
/// first), workers running `kinds` of jobs: loads `.env`, parses and checks
/// the configuration, runs the command. Errors are printed to stderr.
pub fn main_with<I, T>(args: I, kinds: JobKinds) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    // A missing .env is normal; a malformed one is worth saying.
    if let Err(e) = dotenvy::dotenv()
        && !e.not_found()
    {
        eprintln!("warning: ignoring .env: {e}");
    }
    let cli = commands::Cli::parse_from(args);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::run(cli, kinds)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", error::chain(e.as_ref()));
            ExitCode::FAILURE
        }
    }
}
