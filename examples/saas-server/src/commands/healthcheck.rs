//! `saas-server healthcheck`: what a container's health check runs, so
//! that the runtime image needs nothing besides the binary. For the server,
//! `GET /api/health/` on the address `serve` listens on (its answer says
//! whether the store is reachable); with `--worker`, whether a worker in
//! the same container has touched its heartbeat file recently.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::config::Config;
use crate::error::BoxError;

/// How often a running worker touches its heartbeat file.
pub(crate) const BEAT: Duration = Duration::from_secs(5);
/// A heartbeat older than this means the worker is stuck or gone.
const STALE: Duration = Duration::from_secs(30);

#[derive(Debug, clap::Args)]
pub(super) struct Args {
    /// Check the worker of this container (its heartbeat file) instead of
    /// the HTTP server.
    #[arg(long)]
    worker: bool,
    /// Seconds to wait for the server's answer.
    #[arg(long, default_value_t = 3,
          value_parser = clap::value_parser!(u64).range(1..=60))]
    timeout: u64,
}

/// The file a worker touches every [`BEAT`] while it runs (in the temporary
/// directory, so that a read-only image works).
pub(crate) fn heartbeat_file() -> PathBuf {
    std::env::temp_dir().join("saas-worker.alive")
}

/// Exits 0 when healthy; otherwise says why and exits 1.
pub(super) async fn run(config: &Config, args: &Args) -> Result<ExitCode, BoxError> {
    let verdict = if args.worker {
        worker()
    } else {
        let timeout = Duration::from_secs(args.timeout);
        match tokio::time::timeout(timeout, server(config)).await {
            Ok(v) => v,
            Err(_) => Err(format!("no answer within {} s", args.timeout)),
        }
    };
    Ok(match verdict {
        Ok(what) => {
            println!("healthy: {what}");
            ExitCode::SUCCESS
        }
        Err(why) => {
            eprintln!("unhealthy: {why}");
            ExitCode::FAILURE
        }
    })
}

fn worker() -> Result<String, String> {
    let path = heartbeat_file();
    let modified = std::fs::metadata(&path)
        .and_then(|m| m.modified())
        .map_err(|e| format!("no worker heartbeat at {}: {e}", path.display()))?;
    let age = SystemTime::now()
        .duration_since(modified)
        .unwrap_or(Duration::ZERO);
    if age > STALE {
        return Err(format!(
            "the worker's last heartbeat is {} s old",
            age.as_secs()
        ));
    }
    Ok(format!("worker heartbeat {} s ago", age.as_secs()))
}

/// One `GET /api/health/` to the server, with a Host it serves.
async fn server(config: &Config) -> Result<String, String> {
    let mut addr = config.bind;
    if addr.ip().is_unspecified() {
        addr.set_ip(if addr.is_ipv4() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        });
    }
    let host = served_host(&config.http.allowed_hosts);
    let mut stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    let request = format!(
        "GET /api/health/ HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nUser-Agent: saas-server-healthcheck\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| format!("cannot send to {addr}: {e}"))?;
    let mut answer = Vec::new();
    stream
        .take(64 * 1024)
        .read_to_end(&mut answer)
        .await
        .map_err(|e| format!("cannot read from {addr}: {e}"))?;
    let answer = String::from_utf8_lossy(&answer);
    let status = answer.lines().next().unwrap_or_default();
    if status.split_whitespace().nth(1) == Some("200") {
        Ok(format!("{addr} answered {status}"))
    } else {
        let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
        Err(format!("{addr} answered {status:?}: {}", body.trim()))
    }
}

/// A Host header ALLOWED_HOSTS lets through: its first exact host, the
/// domain of its first `.domain` pattern, or `localhost` (any host).
fn served_host(patterns: &[String]) -> String {
    patterns
        .iter()
        .find(|p| p.as_str() != "*")
        .map(|p| {
            p.trim()
                .trim_start_matches("*.")
                .trim_start_matches('.')
                .to_owned()
        })
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

#[cfg(test)]
mod tests {
    use super::served_host;

    #[test]
    fn the_host_sent_is_one_allowed_hosts_serves() {
        let hosts = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(served_host(&[]), "localhost");
        assert_eq!(served_host(&hosts(&["*"])), "localhost");
        assert_eq!(
            served_host(&hosts(&["*", "api.example.com"])),
            "api.example.com"
        );
        assert_eq!(served_host(&hosts(&[".example.com"])), "example.com");
        assert_eq!(served_host(&hosts(&["*.example.com"])), "example.com");
    }
}
