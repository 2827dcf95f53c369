//! The built `saas-server` binary's guard rails, on SQLite and on
//! PostgreSQL: signing keys published in the repository, too short or not
//! random are refused with a way to make one (DEBUG changes nothing), the
//! edge's settings reach `saas-server config`, and `serve` raises the
//! open-file limit.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const SERVER: &str = env!("CARGO_BIN_EXE_saas-server");

#[derive(Debug, Clone, Copy)]
enum Backend {
    Sqlite,
    Postgres,
}

fn pg_url() -> String {
    std::env::var("SAAS_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

fn fresh_key() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// `saas-server` in `dir` on `backend`, with no setting from the caller's
/// environment that could change what is tested.
fn command(dir: &Path, backend: Backend) -> Command {
    configured(Command::new(SERVER), dir, backend)
}

/// `saas-server` started by a shell that first lowers the soft open-file
/// limit to 256, as many systems set it.
fn command_with_few_files(dir: &Path, backend: Backend) -> Command {
    let mut sh = Command::new("sh");
    sh.arg("-c")
        .arg("ulimit -Sn 256 && exec \"$0\" \"$@\"")
        .arg(SERVER);
    configured(sh, dir, backend)
}

fn configured(mut cmd: Command, dir: &Path, backend: Backend) -> Command {
    cmd.current_dir(dir)
        .env_remove("DATABASE_HOST")
        .env_remove("DEBUG")
        .env_remove("SECRET_KEY")
        .env_remove("RUN_WORKER")
        .env("RUST_LOG", "warn")
        .arg("--data-dir")
        .arg(dir.join("data"))
        .stdin(Stdio::null());
    match backend {
        Backend::Sqlite => cmd.env_remove("DATABASE_URL"),
        Backend::Postgres => cmd.env("DATABASE_URL", pg_url()),
    };
    cmd
}

/// Runs `cmd` to its end, or kills it after 30 s (a `serve` that started:
/// its status is then not a success).
fn run(cmd: &mut Command) -> (Output, String) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run saas-server");
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let mut out = child.wait_with_output().expect("output");
            out.stderr
                .extend_from_slice(b"\n(still running after 30 s: killed)");
            let text = String::from_utf8_lossy(&out.stderr).into_owned();
            return (out, text);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().expect("output");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out, text)
}

fn signing_keys(backend: Backend) {
    let dir = tempfile::tempdir().expect("temp dir");
    for key in [
        "change-me-to-64-hex-characters-from-openssl-rand-hex-32",
        "change me: at least thirty-two bytes of secret",
        "e2e test secret of at least thirty-two bytes",
        "saas-insecure-development-key-do-not-use-in-production",
        "too short",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "0123456789abcdef0123456789abcdef0123456789abcdef",
    ] {
        for debug in ["false", "true"] {
            for command_name in ["config", "serve"] {
                let (out, text) = run(command(dir.path(), backend)
                    .env("SECRET_KEY", key)
                    .env("DEBUG", debug)
                    .arg(command_name));
                assert!(
                    !out.status.success() && !text.contains("killed"),
                    "{backend:?}: {command_name} accepted SECRET_KEY={key:?} with DEBUG={debug}\n{text}"
                );
                assert!(
                    text.contains("SECRET_KEY") && text.contains("openssl rand -hex 32"),
                    "{backend:?}: {text}"
                );
            }
        }
    }
    // A generated key is accepted.
    let (out, text) = run(command(dir.path(), backend)
        .env("SECRET_KEY", fresh_key())
        .arg("config"));
    assert!(out.status.success(), "{text}");
    assert!(text.contains("SECRET_KEY=***"), "{text}");
    // Without a key, DEBUG does not bring back a public one.
    let (out, text) = run(command(dir.path(), backend)
        .env("DEBUG", "true")
        .arg("config"));
    match backend {
        Backend::Postgres => {
            assert!(!out.status.success(), "{text}");
            assert!(text.contains("SECRET_KEY is required"), "{text}");
        }
        Backend::Sqlite => {
            assert!(out.status.success(), "{text}");
            assert!(text.contains("a key is generated in"), "{text}");
            assert!(
                !text.to_ascii_lowercase().contains("development key"),
                "{text}"
            );
        }
    }
    // A kept key file holding a published key is refused too.
    if let Backend::Sqlite = backend {
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).expect("data dir");
        std::fs::write(
            data.join("secret_key"),
            "change-me-to-64-hex-characters-from-openssl-rand-hex-32",
        )
        .expect("key file");
        let (out, text) = run(command(dir.path(), backend).arg("config"));
        assert!(!out.status.success(), "{text}");
        assert!(text.contains("openssl rand -hex 32"), "{text}");
    }
}

fn edge_settings_are_listed(backend: Backend) {
    let dir = tempfile::tempdir().expect("temp dir");
    let (out, text) = run(command(dir.path(), backend)
        .env("SECRET_KEY", fresh_key())
        .env("API_ERROR_FORMAT", "drf")
        .env("REGISTRATION_OPEN", "false")
        .env("SELF_SERVICE_PLANS", "free, basic")
        .env("REGISTRATION_RATE_LIMIT", "off")
        .env("LOGIN_ADDRESS_RATE_LIMIT", "30/minute")
        .env("TRUST_X_FORWARDED_FOR", "true")
        .env("MAX_CONNECTIONS", "500")
        .env("HTTP_DRAIN_SECONDS", "5")
        .arg("config"));
    assert!(out.status.success(), "{text}");
    for line in [
        "API_ERROR_FORMAT=drf",
        "REGISTRATION_OPEN=false",
        "SELF_SERVICE_PLANS=free,basic",
        "REGISTRATION_RATE_LIMIT=off",
        "LOGIN_RATE_LIMIT=10/minute",
        "LOGIN_ADDRESS_RATE_LIMIT=30/minute",
        "TRUST_X_FORWARDED_FOR=true",
        "HEADER_READ_TIMEOUT=10",
        "MAX_CONNECTIONS=500",
        "HTTP_DRAIN_SECONDS=5",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} missing:\n{text}");
    }
    for (name, value) in [
        ("SELF_SERVICE_PLANS", "gold"),
        ("REGISTRATION_RATE_LIMIT", "ten a day"),
        ("API_ERROR_FORMAT", "xml"),
    ] {
        let (out, text) = run(command(dir.path(), backend)
            .env("SECRET_KEY", fresh_key())
            .env(name, value)
            .arg("config"));
        assert!(!out.status.success(), "{name}={value} accepted: {text}");
        assert!(text.contains(name), "{text}");
    }
}

/// The soft open-file limit of a running process.
fn soft_nofile(pid: u32) -> Option<(String, String)> {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let mut fields = line["Max open files".len()..].split_whitespace();
    Some((fields.next()?.to_owned(), fields.next()?.to_owned()))
}

fn serve_raises_the_open_file_limit(backend: Backend) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut child = command_with_few_files(dir.path(), backend)
        .env("SECRET_KEY", fresh_key())
        .args(["serve", "--bind", "127.0.0.1:0", "--no-worker"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start saas-server serve");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if line.starts_with("saas-server listening on") {
                let _ = tx.send(());
            }
        }
    });
    let started = rx.recv_timeout(Duration::from_secs(60)).is_ok();
    let limits = soft_nofile(child.id());
    let _ = child.kill();
    let _ = child.wait();
    assert!(started, "saas-server did not start");
    let (soft, hard) = limits.expect("/proc limits");
    assert_ne!(soft, "256", "the soft limit was left as it was");
    assert_eq!(soft, hard, "the soft limit is raised to the hard one");
}

/// Whether PostgreSQL is reachable; with SAAS_REQUIRE_POSTGRES=1 it must be.
fn postgres_available() -> bool {
    let url = pg_url();
    let addr = url
        .split('@')
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap_or("127.0.0.1:5432")
        .to_owned();
    let reachable = addr
        .parse::<std::net::SocketAddr>()
        .ok()
        .is_some_and(|a| std::net::TcpStream::connect_timeout(&a, Duration::from_secs(3)).is_ok());
    if !reachable {
        if std::env::var("SAAS_REQUIRE_POSTGRES").is_ok_and(|v| v == "1") {
            panic!("PostgreSQL at {url} is unreachable and SAAS_REQUIRE_POSTGRES=1");
        }
        eprintln!("note: PostgreSQL at {url} is unreachable; skipping");
    }
    reachable
}

mod sqlite {
    use super::*;

    #[test]
    fn signing_keys() {
        super::signing_keys(Backend::Sqlite);
    }

    #[test]
    fn edge_settings_are_listed() {
        super::edge_settings_are_listed(Backend::Sqlite);
    }

    #[test]
    fn serve_raises_the_open_file_limit() {
        super::serve_raises_the_open_file_limit(Backend::Sqlite);
    }
}

mod postgres {
    use super::*;

    #[test]
    fn signing_keys() {
        if postgres_available() {
            super::signing_keys(Backend::Postgres);
        }
    }

    #[test]
    fn edge_settings_are_listed() {
        if postgres_available() {
            super::edge_settings_are_listed(Backend::Postgres);
        }
    }

    #[test]
    fn serve_raises_the_open_file_limit() {
        if postgres_available() {
            super::serve_raises_the_open_file_limit(Backend::Postgres);
        }
    }
}
