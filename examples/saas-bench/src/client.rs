//! A wrk-style load generator: C keep-alive HTTP/1.1 connections, each a
//! loop of request, read the whole body, next request, on a runtime and an
//! OS thread of their own so the client's tasks never queue behind the
//! server's on the server's workers.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

use clap::Args;

use crate::error::{BoxError, Res};
use crate::measure::{quantile, round3};

/// Builds request number `i` (a global counter shared by all connections,
/// so consecutive requests spread over tenants whatever the connection).
pub type MakeRequest = dyn Fn(usize) -> Request<Full<Bytes>> + Send + Sync;

/// What one run measured.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Requests answered in the measured time.
    pub requests: usize,
    /// Of those, the ones that failed or were not 2xx.
    pub errors: usize,
    /// The measured time.
    pub seconds: f64,
    /// Latencies in milliseconds, unsorted.
    pub latencies: Vec<f64>,
    /// What the first error said.
    pub first_error: Option<String>,
    /// Response body bytes received.
    pub bytes: usize,
}

impl Outcome {
    /// Requests per second.
    pub fn rps(&self) -> f64 {
        self.requests as f64 / self.seconds
    }

    /// The `q` quantile of latency, in milliseconds.
    pub fn p(&self, q: f64) -> f64 {
        quantile(&self.latencies, q)
    }

    /// The run as the JSON fields every HTTP scenario reports.
    pub fn json(&self) -> Value {
        json!({
            "requests": self.requests,
            "requests_per_s": round3(self.rps()),
            "p50_ms": round3(self.p(0.5)),
            "p90_ms": round3(self.p(0.9)),
            "p99_ms": round3(self.p(0.99)),
            "max_ms": round3(self.p(1.0)),
            "errors": self.errors,
            "mean_body_bytes": self.bytes.checked_div(self.requests).unwrap_or(0),
            "first_error": self.first_error,
        })
    }
}

#[derive(Default)]
struct ConnResult {
    latencies: Vec<f64>,
    errors: usize,
    first_error: Option<String>,
    bytes: usize,
}

async fn connect(addr: SocketAddr) -> Res<hyper::client::conn::http1::SendRequest<Full<Bytes>>> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        // A connection error shows up on the next send; nothing to do here.
        let _ = conn.await;
    });
    Ok(sender)
}

async fn one_connection(
    addr: SocketAddr,
    make: Arc<MakeRequest>,
    counter: Arc<AtomicUsize>,
    record_from: Instant,
    until: Instant,
    stop: Arc<AtomicBool>,
) -> Res<ConnResult> {
    let mut out = ConnResult::default();
    let mut sender = connect(addr).await?;
    while Instant::now() < until && !stop.load(Ordering::Relaxed) {
        let i = counter.fetch_add(1, Ordering::Relaxed);
        let request = make(i);
        let t0 = Instant::now();
        let result: Result<(StatusCode, Bytes, bool), BoxError> = async {
            sender.ready().await?;
            let response = sender.send_request(request).await?;
            let status = response.status();
            // A server without keep-alive (gunicorn's sync workers) closes
            // the connection after each answer: open the next one, as wrk does.
            let close = response
                .headers()
                .get(hyper::header::CONNECTION)
                .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"));
            let body = response.into_body().collect().await?.to_bytes();
            Ok((status, body, close))
        }
        .await;
        let elapsed = t0.elapsed();
        let recorded = t0 >= record_from;
        match result {
            Ok((status, body, close)) => {
                if close {
                    sender = connect(addr).await?;
                }
                if recorded {
                    out.latencies.push(elapsed.as_secs_f64() * 1000.0);
                    out.bytes += body.len();
                    if !status.is_success() {
                        out.errors += 1;
                        if out.first_error.is_none() {
                            out.first_error = Some(format!(
                                "{status}: {}",
                                String::from_utf8_lossy(&body[..body.len().min(300)])
                            ));
                        }
                    }
                }
            }
            Err(e) => {
                if recorded {
                    out.errors += 1;
                    out.first_error.get_or_insert_with(|| e.to_string());
                }
                sender = connect(addr).await?;
            }
        }
    }
    Ok(out)
}

/// Drives `connections` keep-alive connections at `addr` for `warmup` (not
/// recorded) plus `seconds`.
pub async fn drive(
    addr: SocketAddr,
    connections: usize,
    warmup: Duration,
    seconds: Duration,
    make: Arc<MakeRequest>,
) -> Res<Outcome> {
    let never = Arc::new(AtomicBool::new(false));
    drive_until(addr, connections, warmup, seconds, make, never).await
}

/// [`drive`], ending early (each connection after its request in flight)
/// once `stop` is set: for load that lasts as long as something else does.
pub async fn drive_until(
    addr: SocketAddr,
    connections: usize,
    warmup: Duration,
    seconds: Duration,
    make: Arc<MakeRequest>,
    stop: Arc<AtomicBool>,
) -> Res<Outcome> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("bench-client".into())
        .spawn(move || {
            let result = (|| -> Res<Outcome> {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                rt.block_on(async move {
                    let counter = Arc::new(AtomicUsize::new(0));
                    let start = Instant::now();
                    let record_from = start + warmup;
                    let until = record_from + seconds;
                    let mut tasks = Vec::new();
                    for _ in 0..connections.max(1) {
                        tasks.push(tokio::spawn(one_connection(
                            addr,
                            Arc::clone(&make),
                            Arc::clone(&counter),
                            record_from,
                            until,
                            Arc::clone(&stop),
                        )));
                    }
                    let mut all = ConnResult::default();
                    for t in tasks {
                        let r = t.await??;
                        all.latencies.extend(r.latencies);
                        all.errors += r.errors;
                        all.bytes += r.bytes;
                        if all.first_error.is_none() {
                            all.first_error = r.first_error;
                        }
                    }
                    let measured = Instant::now().saturating_duration_since(record_from);
                    Ok(Outcome {
                        requests: all.latencies.len(),
                        errors: all.errors,
                        seconds: measured.as_secs_f64().max(1e-9),
                        latencies: all.latencies,
                        first_error: all.first_error,
                        bytes: all.bytes,
                    })
                })
            })();
            let _ = tx.send(result.map_err(|e| e.to_string()));
        })?;
    rx.await?.map_err(BoxError::from)
}

/// How hard and how long to drive a server.
#[derive(Debug, Clone, Args)]
pub struct LoadArgs {
    /// Concurrent keep-alive connections.
    #[arg(long, default_value_t = 8)]
    pub connections: usize,
    /// Measured seconds per run.
    #[arg(long, default_value_t = 5)]
    pub seconds: u64,
    /// Unmeasured seconds before each run.
    #[arg(long, default_value_t = 1)]
    pub warmup: u64,
}

impl LoadArgs {
    /// One run against `addr`.
    pub async fn drive(&self, addr: SocketAddr, make: Arc<MakeRequest>) -> Res<Outcome> {
        drive(
            addr,
            self.connections,
            Duration::from_secs(self.warmup),
            Duration::from_secs(self.seconds),
            make,
        )
        .await
    }
}
