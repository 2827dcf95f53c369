//! Graceful shutdown on SIGINT or SIGTERM, shared by the HTTP server, the
//! worker and the scheduler of one process.

use tokio::sync::watch;

/// Completes when shutdown has been asked for.
#[derive(Debug, Clone)]
pub(crate) struct Shutdown(watch::Receiver<bool>);

impl Shutdown {
    /// Listens for SIGINT/SIGTERM; a second signal exits at once.
    pub(crate) fn on_signals() -> Shutdown {
        let (tx, rx) = watch::channel(false);
        tokio::spawn(async move {
            signal().await;
            let _ = tx.send(true);
            signal().await;
            eprintln!(
                "second signal: exiting now; unfinished jobs run again when their leases expire"
            );
            std::process::exit(130);
        });
        Shutdown(rx)
    }

    /// Waits until shutdown is asked for.
    pub(crate) async fn wait(mut self) {
        // A dropped sender also means stop.
        let _ = self.0.wait_for(|stop| *stop).await;
    }
}

async fn signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing in-flight requests and jobs");
}
