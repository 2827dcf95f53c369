//! `saas-server worker`: background jobs and the periodic schedule, on
//! their own (and, through [`background`], inside `serve`).

use std::process::ExitCode;
use std::time::Duration;

use saas_core::jobs::builtin::builtin_schedule;
use saas_core::jobs::{Jobs, WorkerConfig};

use super::healthcheck;
use crate::config::WorkerSettings;
use crate::error::BoxError;
use crate::shutdown::Shutdown;
use crate::wire::Wired;

#[derive(Debug, clap::Args)]
pub(super) struct Args {
    #[command(flatten)]
    worker: WorkerSettings,
    /// Run until no job is ready and none is running, then exit
    /// (no schedule); for scripts and cron.
    #[arg(long)]
    until_idle: bool,
}

/// Runs jobs until SIGINT/SIGTERM, or with `--until-idle` until none is left.
pub(super) async fn run(wired: Wired, args: &Args) -> Result<ExitCode, BoxError> {
    let jobs = wired.jobs(wired.saas()?)?;
    if args.until_idle {
        let lease = Duration::from_secs(args.worker.lease_seconds);
        let config = WorkerConfig {
            concurrency: usize::from(args.worker.concurrency),
            lease,
            heartbeat_interval: lease / 3,
            ..WorkerConfig::default()
        };
        let stats = jobs.worker(config).run_until_idle().await;
        println!(
            "ran {} jobs: {} succeeded, {} to retry, {} dead",
            stats.claimed, stats.succeeded, stats.retried, stats.dead
        );
    } else {
        background(jobs, &args.worker, Shutdown::on_signals()).await?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs a worker (and the schedule unless disabled) until `shutdown`, then
/// lets running jobs finish within the grace period.
pub(super) async fn background(
    jobs: Jobs,
    settings: &WorkerSettings,
    shutdown: Shutdown,
) -> Result<(), BoxError> {
    let lease = Duration::from_secs(settings.lease_seconds);
    let concurrency = usize::from(settings.concurrency);
    let config = WorkerConfig {
        concurrency,
        batch_size: concurrency.min(32),
        lease,
        heartbeat_interval: lease / 3,
        poll_interval: Duration::from_millis(settings.poll_ms),
        grace_period: Duration::from_secs(settings.grace_seconds),
        ..WorkerConfig::default()
    };
    let worker = jobs.worker(config);
    let scheduler = if settings.scheduler() {
        Some(jobs.scheduler().extend(builtin_schedule()?))
    } else {
        tracing::info!("scheduler disabled in this process");
        None
    };
    let schedule = {
        let shutdown = shutdown.clone();
        async move {
            if let Some(s) = scheduler {
                s.run(shutdown.wait()).await;
            }
        }
    };
    let beat = {
        let shutdown = shutdown.clone();
        async move {
            tokio::select! {
                () = shutdown.wait() => {}
                () = heartbeat() => {}
            }
        }
    };
    let (stats, (), ()) = tokio::join!(worker.run(shutdown.wait()), schedule, beat);
    let _ = std::fs::remove_file(healthcheck::heartbeat_file());
    tracing::info!(?stats, "background jobs stopped");
    Ok(())
}

/// Touches the file `saas-server healthcheck --worker` reads, every
/// [`healthcheck::BEAT`], while the worker runs.
async fn heartbeat() {
    let path = healthcheck::heartbeat_file();
    let mut every = tokio::time::interval(healthcheck::BEAT);
    let mut warned = false;
    loop {
        every.tick().await;
        let stamp = chrono::Utc::now().to_rfc3339();
        if let Err(e) = tokio::fs::write(&path, stamp).await
            && !warned
        {
            warned = true;
            tracing::warn!(path = %path.display(), error = %e, "cannot write the worker's heartbeat file; `healthcheck --worker` will fail");
        }
    }
}
