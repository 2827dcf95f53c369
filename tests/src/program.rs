//! The example programs (`saas-server`, `saas-notes`) run as their built
//! binaries: a command line set apart from the environment the tests run
//! in, with a signing key of its own, and `serve` on a free port, waited
//! for until it says where it listens.

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
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
