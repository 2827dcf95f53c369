//! The example programs (`saas-server`, `saas-notes`) run as their built
//! binaries: a command line set apart from the environment the tests run
//! in, with a signing key of its own, and `serve` on a free port, waited
//! for until it says where it listens.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

/// A random signing key (the programs refuse keys published in the
/// repository, and so any a test could share).
pub fn fresh_signing_key() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// The program at `bin` run in `dir` (where it finds no `.env`): storage
/// and mode settings of the test's environment removed, a fresh
/// [`fresh_signing_key`], warnings only in the logs.
pub fn command(bin: &str, dir: &Path) -> Command {
    let mut cmd = Command::new(bin);
    cmd.current_dir(dir)
        .env_remove("DATABASE_URL")
        .env_remove("DATABASE_HOST")
        .env_remove("DEBUG")
        .env_remove("RUN_WORKER")
        .env("SECRET_KEY", fresh_signing_key())
        .env("RUST_LOG", "warn");
    cmd
}

/// Starts `cmd`, a `serve` command line of `program` (which must listen
/// on `127.0.0.1:0`), and waits for its greeting, `<program> listening on
/// http://<address>`; returns the child and the address. Its standard
/// output is kept in `dir/serve.out` (it is read to the end, so the
/// program never blocks on a full pipe) and its standard error in
/// `dir/serve.err`; [`logs`] reads both. Panics with them when it does not
/// start within a minute.
pub fn serve(mut cmd: Command, program: &str, dir: &Path) -> (Child, SocketAddr) {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(dir.join("serve.err")).expect("create serve.err"))
        .spawn()
        .unwrap_or_else(|e| panic!("start {program}: {e}"));
    let stdout = child.stdout.take().expect("stdout");
    let mut kept = std::fs::File::create(dir.join("serve.out")).expect("create serve.out");
    let greeting = format!("{program} listening on http://");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = writeln!(kept, "{line}");
            if let Some(addr) = line.strip_prefix(&greeting) {
                let _ = tx.send(addr.trim().to_owned());
            }
        }
    });
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(addr) => (child, addr.parse().expect("a listening address")),
        Err(_) => {
            let _ = child.kill();
            panic!("{program} did not start\n{}", logs(dir));
        }
    }
}

/// What a program started by [`serve`] in `dir` wrote so far.
pub fn logs(dir: &Path) -> String {
    ["serve.out", "serve.err"]
        .iter()
        .map(|f| std::fs::read_to_string(dir.join(f)).unwrap_or_default())
        .collect()
}

/// A port nobody listens on right now, for a program that must be told one.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// What a finished command printed: its standard output, then its
/// standard error.
pub fn output_text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// What [`http_once`] got back.
#[derive(Debug)]
pub struct RawAnswer {
    /// The status code.
    pub status: u16,
    /// The status line and headers, lower-cased.
    pub head: String,
    /// The body, as text.
    pub body: String,
}

/// One HTTP/1.1 request on a connection of its own (`Connection: close`),
/// written the way a plain client writes it: `token` as a bearer token,
/// `body` as JSON, `headers` added. Waits up to 60 s for the whole answer.
pub fn http_once(
    addr: SocketAddr,
    method: &str,
    path: &str,
    host: &str,
    token: Option<&str>,
    body: Option<serde_json::Value>,
    headers: &[(&str, &str)],
) -> RawAnswer {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    if let Some(t) = token {
        req.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    for (name, value) in headers {
        req.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() {
        req.push_str("Content-Type: application/json\r\n");
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    s.write_all(req.as_bytes()).expect("send");
    let mut raw = String::new();
    s.read_to_string(&mut raw).expect("read");
    let status = raw
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status in {raw:?}"));
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    RawAnswer {
        status,
        head: head.to_ascii_lowercase(),
        body: body.to_owned(),
    }
}
