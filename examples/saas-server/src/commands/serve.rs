//! `saas-server serve` (the default command): the REST API, with a worker
//! and the periodic schedule in the same process unless told not to.

use std::process::ExitCode;

use saas_http::{AppState, ServerLimits};

use super::worker;
use crate::config::ServeSettings;
use crate::error::BoxError;
use crate::shutdown::Shutdown;
use crate::wire::Wired;

/// Serves until SIGINT/SIGTERM, then lets in-flight requests and jobs finish.
pub(super) async fn run(wired: Wired, settings: &ServeSettings) -> Result<ExitCode, BoxError> {
    let metrics = saas_http::metrics::install_recorder()?;
    let saas = wired.saas()?;
    let jobs = wired.jobs(saas.clone())?;
    let in_process = settings.worker();
    if !in_process {
        tracing::info!("no worker in this process: run `saas-server worker` to process jobs");
    }
    let (config, host) = (wired.config, wired.host);
    let limits = within_open_files(config.limits);
    let state = AppState::new(saas, config.http.clone())
        .with_jobs(jobs.clone())
        .with_schedule(saas_core::jobs::builtin::builtin_schedule()?)
        .with_metrics(metrics);
    let app = host.router(state);
    let listener = tokio::net::TcpListener::bind(config.bind)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.bind))?;
    let local = listener.local_addr()?;
    greet(host.name, local, config.http.x_tenant);
    let shutdown = Shutdown::on_signals();
    let http = saas_http::serve(listener, app, limits, shutdown.clone().wait());
    let background = async {
        if in_process {
            worker::background(jobs, &settings.worker, shutdown.clone()).await
        } else {
            Ok(())
        }
    };
    let (served, worked) = tokio::join!(async { http.await.map_err(BoxError::from) }, background);
    served?;
    worked?;
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}

/// File descriptors kept for everything but client connections: tenant
/// databases (a few per open SQLite handle, or the PostgreSQL pool), the
/// job queue, logs and mail.
const RESERVED_FILES: u64 = 1024;

/// Raises the open-file limit to the hard limit (the default soft limit,
/// often 1024, would refuse connections long before MAX_CONNECTIONS), and
/// lowers the connection cap to what that limit leaves room for.
fn within_open_files(limits: ServerLimits) -> ServerLimits {
    let files = match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(files) => files,
        Err(e) => {
            tracing::warn!(error = %e, "cannot raise the open-file limit");
            return limits;
        }
    };
    let room = usize::try_from(files.saturating_sub(RESERVED_FILES).max(16)).unwrap_or(usize::MAX);
    if limits.max_connections > room {
        tracing::warn!(
            open_files = files,
            max_connections = room,
            "MAX_CONNECTIONS lowered to fit the open-file limit (raise the hard limit, e.g. LimitNOFILE=, for more)"
        );
        return ServerLimits {
            max_connections: room,
            ..limits
        };
    }
    tracing::info!(
        open_files = files,
        max_connections = limits.max_connections,
        "connection limits"
    );
    limits
}

/// Where the server listens (tests read this line: `<program> listening
/// on http://…`) and how to start using it.
fn greet(program: &str, local: std::net::SocketAddr, x_tenant: bool) {
    let shown = if local.ip().is_unspecified() {
        format!("127.0.0.1:{}", local.port())
    } else {
        local.to_string()
    };
    println!("{program} listening on http://{local}");
    println!("Register a first tenant:");
    println!(
        "  curl -X POST http://{shown}/api/register/ -H 'Content-Type: application/json' \\\n    \
         -d '{{\"company_name\": \"Acme Corp\", \"schema_name\": \"acme\", \"domain_url\": \"acme.localhost\", \
         \"admin_username\": \"admin\", \"admin_email\": \"admin@acme.com\", \
         \"admin_password\": \"securepassword123\", \"subscription_plan\": \"basic\"}}'"
    );
    println!("Then talk to it as that tenant:");
    println!(
        "  curl -X POST http://{shown}/api/token/ -H 'Host: acme.localhost' -H 'Content-Type: application/json' \\\n    \
         -d '{{\"username\": \"admin\", \"password\": \"securepassword123\"}}'"
    );
    if x_tenant {
        println!("  (or send `X-Tenant: acme` instead of the Host header)");
    }
    println!("API description: http://{shown}/api/openapi.json");
    println!(
        "Health: http://{shown}/healthz, http://{shown}/readyz; metrics: http://{shown}/metrics"
    );
}
