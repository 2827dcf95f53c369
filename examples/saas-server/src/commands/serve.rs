//! `saas-server serve` (the default command): the REST API, with a worker
//! and the periodic schedule in the same process unless told not to.

use std::process::ExitCode;

use saas_http::AppState;

use super::worker;
use crate::config::ServeSettings;
use crate::error::BoxError;
use crate::shutdown::Shutdown;
use crate::wire::{JobKinds, Wired};

/// Serves until SIGINT/SIGTERM, then lets in-flight requests and jobs finish.
pub(super) async fn run(
    wired: Wired,
    settings: &ServeSettings,
    kinds: JobKinds,
) -> Result<ExitCode, BoxError> {
    let saas = wired.saas()?;
    let jobs = wired.jobs(saas.clone(), kinds)?;
    let in_process = settings.worker();
    if !in_process {
        tracing::info!("no worker in this process: run `saas-server worker` to process jobs");
    }
    let config = wired.config;
    let app = saas_http::router(AppState::new(saas, config.http.clone()).with_jobs(jobs.clone()));
    let listener = tokio::net::TcpListener::bind(config.bind)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.bind))?;
    let local = listener.local_addr()?;
    greet(local, config.http.x_tenant);
    let shutdown = Shutdown::on_signals();
    let http = axum::serve(listener, app).with_graceful_shutdown(shutdown.clone().wait());
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

/// Where the server listens (tests read this line) and how to start using it.
fn greet(local: std::net::SocketAddr, x_tenant: bool) {
    let shown = if local.ip().is_unspecified() {
        format!("127.0.0.1:{}", local.port())
    } else {
        local.to_string()
    };
    println!("saas-server listening on http://{local}");
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
}
