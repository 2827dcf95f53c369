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
//! The program is this library, so that a host application can run it
//! with its own job kinds, tables, routes and listeners ([`Host`],
//! [`main_with`]: `examples/saas-notes`), and tests with job kinds of their
//! own; the `saas-server` binary runs it as [`Host::default`].

mod commands;
mod config;
mod error;
mod host;
mod shutdown;
mod wire;

use std::ffi::OsString;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};

pub use host::Host;
pub use wire::{JobKinds, builtin_jobs};

/// Threads of the blocking pool, where SQLite work and password hashing
/// run: four a core, at least 8 (tokio's default is 512). Each new thread
/// gets a share of the allocator's arenas and keeps what it freed there, so
/// under mixed load an unbounded pool grew the server's resident memory
/// (60 threads after a minute; BENCHMARKS.md, "Memory under load"). Work
/// past the cap waits in tokio's queue; no blocking task waits on another.
fn blocking_threads() -> usize {
    std::thread::available_parallelism().map_or(8, |n| (n.get() * 4).max(8))
}

/// Runs the program of `host` with the command line `args` (the program
/// name first): loads `.env`, parses and checks the configuration, runs
/// the command. Errors are printed to stderr.
pub fn main_with<I, T>(args: I, host: Host) -> ExitCode
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
    let matches = commands::Cli::command()
        .name(host.name)
        .get_matches_from(args);
    let cli = match commands::Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(blocking_threads())
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::run(cli, host)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", error::chain(e.as_ref()));
            ExitCode::FAILURE
        }
    }
}
