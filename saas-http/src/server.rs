//! Serving the router over TCP with the limits a public server needs.
//!
//! `axum::serve` reads request headers for as long as a client cares to
//! send them and accepts every connection it is offered, so a few slow
//! clients can hold every socket and file descriptor of the process.
//! [`serve`] is the same HTTP/1.1 server with three limits:
//!
//! - a header-read timeout ([`ServerLimits::header_read_timeout`]): a
//!   client that has not sent a whole request head by then is disconnected;
//! - a cap on concurrent connections ([`ServerLimits::max_connections`]):
//!   past it, a connection is still accepted, but answered one 503
//!   `overloaded` (with `Retry-After`) and closed, so clients back off
//!   instead of queueing on a socket nobody serves;
//! - the peer address of every request, as axum's
//!   [`ConnectInfo<SocketAddr>`](axum::extract::ConnectInfo), which the
//!   throttles read (see [`crate::extract::ClientAddr`]).
//!
//! It speaks HTTP/1.1 only, as the seed's gunicorn does; put a proxy in
//! front for TLS or HTTP/2.

use std::future::Future;
use std::io;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tower::ServiceExt;

/// How much a server takes on. `Default` suits a small production server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerLimits {
    /// Longest a client may take to send a request head (the request line
    /// and headers), on a new connection or between requests on a kept one.
    pub header_read_timeout: Duration,
    /// Most connections served at once; past it, connections get 503.
    pub max_connections: usize,
}

impl ServerLimits {
    /// Default of [`Self::header_read_timeout`].
    pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
    /// Default of [`Self::max_connections`].
    pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            header_read_timeout: Self::DEFAULT_HEADER_READ_TIMEOUT,
            max_connections: Self::DEFAULT_MAX_CONNECTIONS,
        }
    }
}

/// Marks the requests of a connection accepted past the cap; the router's
/// `shed_overloaded` layer answers them 503.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Overloaded;

/// Serves `app` on `listener` within `limits` until `shutdown` completes,
/// then lets the requests in flight finish (as axum's graceful shutdown
/// does) and returns.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ServerLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    // Connections watch `stop`; `serve` waits until every one has dropped `done`.
    let (stop, stopped) = watch::channel(false);
    let (done, all_done) = watch::channel(());
    let mut shutdown = pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors or a connection reset before
                    // accept: keep serving the connections there are.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let permit = permits.clone().try_acquire_owned().ok();
        let overloaded = permit.is_none();
        if overloaded {
            tracing::warn!(%peer, max = limits.max_connections, "connection cap reached; answering 503");
        }
        let service = app
            .clone()
            .map_request(move |mut req: axum::http::Request<Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                if overloaded {
                    req.extensions_mut().insert(Overloaded);
                }
                req.map(Body::new)
            });
        let mut stopped = stopped.clone();
        let done = done.clone();
        tokio::spawn(async move {
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_read_timeout)
                // One answer on a connection past the cap, then it closes.
                .keep_alive(!overloaded);
            let conn =
                builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
            let mut conn = pin!(conn);
            loop {
                tokio::select! {
                    result = conn.as_mut() => {
                        if let Err(e) = result {
                            tracing::debug!(%peer, error = %e, "connection ended with an error");
                        }
                        break;
                    }
                    _ = stopped.changed() => conn.as_mut().graceful_shutdown(),
                }
            }
            drop(permit);
            drop(done);
        });
    }
    drop(listener);
    let _ = stop.send(true);
    drop(done);
    // Resolves once every connection task has dropped its `done`.
    let mut all_done = all_done;
    while all_done.changed().await.is_ok() {}
    Ok(())
}
