//! Serving.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;

/// Limits.
#[derive(Debug, Clone, Copy)]
pub struct ServerLimits {
    /// Header timeout.
    pub header_read_timeout: Duration,
    /// Cap.
    pub max_connections: usize,
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            header_read_timeout: Duration::from_secs(10),
            max_connections: 10_000,
        }
    }
}

/// Serves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    _limits: ServerLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown)
        .await
}
