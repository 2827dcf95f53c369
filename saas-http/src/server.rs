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
//!   throttles read (see [`crate::extract::ClientAddr`]);
//! - a drain deadline ([`ServerLimits::drain_timeout`]): at shutdown the
//!   listener closes, requests in flight get that long to finish, and
//!   connections still open then are closed.
//!
//! Stopping drops no request a client has sent on a new connection:
//! connections the kernel has completed but the server has not accepted yet
//! are accepted before the listener closes (closing it would reset them),
//! new ones are turned away meanwhile (on Linux), and after that a client's
//! connect is refused. A connection whose first
//! request has not been read yet gets it read and answered, then closes.
//! Only an idle kept-alive connection is closed without an answer, as HTTP
//! allows at any time (a request a client sends on it at that very moment
//! fails and, if idempotent, is retried by the client, RFC 9112 §9.3.1).
//!
//! It speaks HTTP/1.1 only, as the seed's gunicorn does; put a proxy in
//! front for TLS or HTTP/2.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;
use tower::ServiceExt;

/// How much a server takes on. `Default` suits a small production server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerLimits {
    /// Longest a client may take to send a request head (the request line
    /// and headers), on a new connection or between requests on a kept one.
    pub header_read_timeout: Duration,
    /// Most connections served at once; past it, connections get 503.
    pub max_connections: usize,
    /// Longest shutdown waits for requests in flight once the listener has
    /// closed; connections still open then are closed unanswered.
    pub drain_timeout: Duration,
}

impl ServerLimits {
    /// Default of [`Self::header_read_timeout`].
    pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
    /// Default of [`Self::max_connections`].
    pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
    /// Default of [`Self::drain_timeout`].
    pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            header_read_timeout: Self::DEFAULT_HEADER_READ_TIMEOUT,
            max_connections: Self::DEFAULT_MAX_CONNECTIONS,
            drain_timeout: Self::DEFAULT_DRAIN_TIMEOUT,
        }
    }
}

/// Marks the requests of a connection accepted past the cap; the router's
/// `shed_overloaded` layer answers them 503.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Overloaded;

/// Serves `app` on `listener` within `limits` until `shutdown` completes,
/// then closes the listener, lets the requests in flight finish within
/// [`ServerLimits::drain_timeout`] and returns.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ServerLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    // Connections watch `stop` to finish their request and close.
    let (stop, stopped) = watch::channel(false);
    let mut connections = JoinSet::new();
    let accept = |connections: &mut JoinSet<()>, stream: TcpStream, peer: SocketAddr| {
        let permit = permits.clone().try_acquire_owned().ok();
        connections.spawn(connection(
            stream,
            peer,
            app.clone(),
            limits,
            permit,
            stopped.clone(),
        ));
    };
    let mut shutdown = pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => accept(&mut connections, stream, peer),
                Err(e) => {
                    // Out of file descriptors or a connection reset before
                    // accept: keep serving the connections there are.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            // Reap finished connections so the set does not grow.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            () = &mut shutdown => break,
        }
    }
    // Closing the listener resets the connections waiting in its backlog:
    // those clients have sent their requests, so answer them first. New
    // connections are turned away meanwhile (see `turn_away_new`), and
    // handshakes under way get a moment to complete. (The accept calls are
    // made here and now: tokio's would wait for the reactor to report the
    // listener readable.)
    let turned_away = turn_away_new(&listener);
    match listener.into_std() {
        Ok(listener) => {
            let mut backlog = || {
                // Non-blocking: ends at the first WouldBlock.
                while let Ok((stream, peer)) = listener.accept() {
                    let stream = stream
                        .set_nonblocking(true)
                        .and_then(|()| TcpStream::from_std(stream));
                    match stream {
                        Ok(stream) => accept(&mut connections, stream, peer),
                        Err(e) => {
                            tracing::warn!(%peer, error = %e, "cannot serve a connection accepted at shutdown")
                        }
                    }
                }
            };
            backlog();
            if turned_away {
                tokio::time::sleep(HANDSHAKE_GRACE).await;
                backlog();
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot accept the connections waiting at shutdown"),
    }
    let _ = stop.send(true);
    let in_flight = connections.len();
    if in_flight > 0 {
        tracing::info!(
            connections = in_flight,
            "listener closed; draining connections"
        );
    }
    let drained = tokio::time::timeout(limits.drain_timeout, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            connections = connections.len(),
            deadline = ?limits.drain_timeout,
            "drain deadline passed: closing the connections still open"
        );
        connections.shutdown().await;
    }
    Ok(())
}

/// How long, at shutdown, handshakes already under way get to complete
/// before the listener closes.
const HANDSHAKE_GRACE: Duration = Duration::from_millis(100);

/// From now on drops every new connection's first packet (SYN) at the
/// listening socket, with a packet filter, and lets handshakes under way
/// complete, so the backlog can be drained to the last connection before
/// the listener closes. A client turned away sends its SYN again a second
/// later, finds the port closed and is refused cleanly. Without the filter
/// (other systems, or a refusal) a connection whose handshake completes
/// between the last accept and the close is reset. Returns whether the
/// filter is on.
#[cfg(target_os = "linux")]
fn turn_away_new(listener: &TcpListener) -> bool {
    use socket2::{SockFilter, SockRef};
    // Classic BPF over the TCP header: A = the flags byte; SYN set: drop
    // (keep 0 bytes), else keep the whole packet.
    const LOAD_BYTE: u16 = 0x30; // BPF_LD | BPF_B | BPF_ABS
    const JUMP_IF_SET: u16 = 0x45; // BPF_JMP | BPF_JSET | BPF_K
    const RETURN: u16 = 0x06; // BPF_RET | BPF_K
    const TCP_FLAGS: u32 = 13;
    const SYN: u32 = 0x02;
    let program = [
        SockFilter::new(LOAD_BYTE, 0, 0, TCP_FLAGS),
        SockFilter::new(JUMP_IF_SET, 0, 1, SYN),
        SockFilter::new(RETURN, 0, 0, 0),
        SockFilter::new(RETURN, 0, 0, u32::MAX),
    ];
    match SockRef::from(listener).attach_filter(&program) {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(error = %e, "cannot turn new connections away at shutdown");
            false
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn turn_away_new(_listener: &TcpListener) -> bool {
    false
}

/// Serves one connection until it closes; once `stopped` turns, it finishes
/// the request under way and closes. A connection whose first request has
/// not begun is left to read it (within the header-read timeout) and
/// answer it first: hyper's graceful shutdown would close it unread, and
/// the request its client has sent would be lost.
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    app: Router,
    limits: ServerLimits,
    permit: Option<OwnedSemaphorePermit>,
    mut stopped: watch::Receiver<bool>,
) {
    let overloaded = permit.is_none();
    if overloaded {
        tracing::warn!(%peer, max = limits.max_connections, "connection cap reached; answering 503");
    }
    // Set when the connection's first request begins.
    let begun = Arc::new((AtomicBool::new(false), Notify::new()));
    let begins = Arc::clone(&begun);
    let service = app.map_request(move |mut req: axum::http::Request<Incoming>| {
        if !begins.0.swap(true, Ordering::AcqRel) {
            begins.1.notify_one();
        }
        req.extensions_mut().insert(ConnectInfo(peer));
        if overloaded {
            req.extensions_mut().insert(Overloaded);
        }
        req.map(Body::new)
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        // One answer on a connection past the cap, then it closes.
        .keep_alive(!overloaded);
    let conn = builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
    let mut conn = pin!(conn);
    let mut stopping = *stopped.borrow_and_update();
    let mut shut = false;
    loop {
        if stopping && !shut && begun.0.load(Ordering::Acquire) {
            conn.as_mut().graceful_shutdown();
            shut = true;
        }
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
                break;
            }
            _ = stopped.changed(), if !stopping => stopping = true,
            () = begun.1.notified(), if stopping && !shut => {}
        }
    }
    drop(permit);
}
