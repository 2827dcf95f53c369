//! Faults answered clearly, by the built binary under load: PostgreSQL
//! stopped and started again (a second cluster made for the test, never
//! the main one) is answered 503 with `Retry-After` within about two
//! seconds and recovered from at once; a full SQLite disk (a small tmpfs,
//! filled and freed) is answered 507 `storage_full` to writes while reads
//! are served, and recovered from at once. No request waits longer than
//! about two seconds, none is answered 500, and each outage is logged
//! once, not per request.
//!
//! Both need root (a PostgreSQL cluster, a mount); without it they skip
//! with a message, unless `SAAS_REQUIRE_POSTGRES=1` (which CI sets).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const SERVER: &str = env!("CARGO_BIN_EXE_saas-server");
const PASSWORD: &str = "securepassword123";
/// Longest any request may take: the two-second connection wait, and
/// some room for a machine busy with other tests.
const LONGEST: Duration = Duration::from_millis(3_000);

fn required() -> bool {
    std::env::var("SAAS_REQUIRE_POSTGRES").is_ok_and(|v| v == "1")
}

fn skip(why: &str) {
    assert!(!required(), "cannot run the fault test: {why}");
    eprintln!("skipped: {why}");
}

fn sh(cmd: &str, args: &[&str]) -> Result<(), String> {
    let out = Command::new(cmd)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{cmd}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{cmd} {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// `saas-server serve --no-worker` with `env`; its address once it listens.
fn serve(dir: &Path, env: &[(&str, String)]) -> (Child, SocketAddr) {
    let mut cmd = testkit::program::command(SERVER, dir);
    cmd.env("REGISTRATION_RATE_LIMIT", "off")
        .env("LOGIN_ADDRESS_RATE_LIMIT", "off")
        .args(["serve", "--no-worker", "--bind", "127.0.0.1:0"]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    testkit::program::serve(cmd, "saas-server", dir)
}

/// What the server wrote so far (the logs go to standard output).
fn log(dir: &Path) -> String {
    testkit::program::logs(dir)
}

/// What one request got.
#[derive(Debug, Clone)]
struct Answer {
    status: u16,
    retry_after: bool,
    code: Option<String>,
    took: Duration,
}

fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    host: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> Answer {
    let started = Instant::now();
    let answer = testkit::program::http_once(addr, method, path, host, token, body, &[]);
    let took = started.elapsed();
    let json = serde_json::from_str::<Value>(&answer.body).unwrap_or(Value::Null);
    Answer {
        status: answer.status,
        retry_after: answer.head.contains("\r\nretry-after: "),
        code: json["error"]["code"].as_str().map(str::to_owned),
        took,
    }
}

/// Registers a tenant; its host and an admin token.
fn tenant(addr: SocketAddr) -> (String, String) {
    let slug = format!("f{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
    let host = format!("{slug}.localhost");
    let registered = request(
        addr,
        "POST",
        "/api/register/",
        "localhost",
        None,
        Some(json!({
            "company_name": "Faults", "schema_name": slug, "domain_url": host,
            "admin_username": "admin", "admin_email": format!("admin@{slug}.test"),
            "admin_password": PASSWORD, "subscription_plan": "enterprise",
        })),
    );
    assert_eq!(registered.status, 201, "{registered:?}");
    let mut s = TcpStream::connect(addr).expect("connect");
    let body = json!({"username": "admin", "password": PASSWORD}).to_string();
    write!(s, "POST /api/token/ HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}", body.len()).expect("send");
    let mut raw = String::new();
    s.read_to_string(&mut raw).expect("read");
    let tokens: Value =
        serde_json::from_str(raw.split_once("\r\n\r\n").expect("body").1).expect("json");
    (
        host,
        tokens["access"].as_str().expect("access token").to_owned(),
    )
}

/// Requests from `threads` threads until `stop`, each answer kept with when it began.
fn load(
    addr: SocketAddr,
    host: &str,
    token: &str,
    threads: usize,
    stop: Arc<AtomicBool>,
    write: bool,
) -> Vec<std::thread::JoinHandle<Vec<(Instant, Answer)>>> {
    (0..threads)
        .map(|i| {
            let (host, token, stop) = (host.to_owned(), token.to_owned(), stop.clone());
            std::thread::spawn(move || {
                let mut out = Vec::new();
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let began = Instant::now();
                    let a = if write && i == 0 {
                        n += 1;
                        request(
                            addr,
                            "POST",
                            "/api/projects/",
                            &host,
                            Some(&token),
                            Some(json!({"name": format!("p{n}-{}", uuid::Uuid::new_v4())})),
                        )
                    } else {
                        request(addr, "GET", "/api/projects/", &host, Some(&token), None)
                    };
                    out.push((began, a));
                    std::thread::sleep(Duration::from_millis(20));
                }
                out
            })
        })
        .collect()
}

fn outage_lines(dir: &Path, what: &str) -> usize {
    log(dir)
        .lines()
        .filter(|l| l.contains(what) && l.contains("logged once"))
        .count()
}

/// A PostgreSQL cluster of the test's own, dropped with the value.
struct Cluster {
    name: String,
    port: u16,
}

impl Cluster {
    fn create() -> Result<Cluster, String> {
        let version = std::fs::read_dir("/etc/postgresql")
            .map_err(|e| format!("no /etc/postgresql: {e}"))?
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .next()
            .ok_or("no PostgreSQL version installed")?;
        let name = format!(
            "saas_fault_{}",
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        let port = testkit::program::free_port();
        let p = port.to_string();
        sh(
            "pg_createcluster",
            &[&version, &name, "--port", &p, "--", "--auth=trust"],
        )?;
        let cluster = Cluster { name, port };
        cluster.ctl("start")?;
        Ok(cluster)
    }

    fn version() -> String {
        std::fs::read_dir("/etc/postgresql")
            .ok()
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .next()
            .unwrap_or_default()
    }

    fn ctl(&self, action: &str) -> Result<(), String> {
        let mut args = vec!["--skip-systemctl-redirect", "", "", action];
        let v = Self::version();
        args[1] = &v;
        args[2] = &self.name;
        if action == "stop" {
            args.extend(["-m", "fast"]);
        }
        sh("pg_ctlcluster", &args)
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = sh("pg_dropcluster", &["--stop", &Self::version(), &self.name]);
    }
}

#[test]
fn postgres_stopped_under_load_is_503_within_two_seconds_and_recovers() {
    if Command::new("pg_createcluster")
        .arg("--help")
        .output()
        .is_err()
    {
        return skip("pg_createcluster is not installed");
    }
    let cluster = match Cluster::create() {
        Ok(c) => c,
        Err(why) => return skip(&why),
    };
    let tmp = tempfile::tempdir().expect("dir");
    let dir = tmp.path();
    let (mut server, addr) = serve(dir, &[("DATABASE_URL", cluster.url())]);
    let (host, token) = tenant(addr);

    let stop = Arc::new(AtomicBool::new(false));
    let threads = load(addr, &host, &token, 6, stop.clone(), false);
    std::thread::sleep(Duration::from_secs(1));
    let stopped_at = Instant::now();
    cluster.ctl("stop").expect("stop the cluster");
    let stopped = Instant::now();
    std::thread::sleep(Duration::from_secs(5));
    // From here on, the database may answer any moment.
    let started = Instant::now();
    cluster.ctl("start").expect("start the cluster");
    let ready = Instant::now();
    std::thread::sleep(Duration::from_secs(5));
    stop.store(true, Ordering::Relaxed);
    let answers: Vec<(Instant, Answer)> = threads
        .into_iter()
        .flat_map(|t| t.join().expect("load"))
        .collect();
    let _ = server.kill();
    let _ = server.wait();

    let slowest = answers
        .iter()
        .map(|(_, a)| a.took)
        .max()
        .unwrap_or_default();
    assert!(
        slowest < LONGEST,
        "a request took {slowest:?}\n{}",
        log(dir)
    );
    for (_, a) in &answers {
        assert!(a.status == 200 || a.status == 503, "{a:?}\n{}", log(dir));
        if a.status == 503 {
            assert!(a.retry_after, "503 without Retry-After: {a:?}");
            assert_eq!(a.code.as_deref(), Some("storage_unavailable"), "{a:?}");
        }
    }
    let during: Vec<&Answer> = answers
        .iter()
        .filter(|(t, _)| *t > stopped + Duration::from_millis(500) && *t < started)
        .map(|(_, a)| a)
        .collect();
    let refused = during.iter().filter(|a| a.status == 503).count();
    assert!(
        refused > 0 && refused * 10 >= during.len() * 9,
        "while it was down, {refused} of {} answered 503: {:?}",
        during.len(),
        during
            .iter()
            .filter(|a| a.status != 503)
            .collect::<Vec<_>>()
    );
    let first_ok = answers
        .iter()
        .filter(|(t, a)| *t > started && a.status == 200)
        .map(|(t, _)| *t)
        .min()
        .expect("answers after the restart");
    assert!(
        first_ok < ready + Duration::from_secs(3),
        "recovered {:?} after the restart",
        first_ok.saturating_duration_since(ready)
    );
    let last = answers
        .iter()
        .filter(|(t, _)| *t > ready + Duration::from_secs(3))
        .map(|(_, a)| a.status)
        .collect::<Vec<_>>();
    assert!(
        !last.is_empty() && last.iter().all(|s| *s == 200),
        "{last:?}"
    );
    assert_eq!(
        outage_lines(dir, "storage unreachable"),
        1,
        "logged once:\n{}",
        log(dir)
    );
    assert!(
        !log(dir).contains("request failed"),
        "no per-request error log:\n{}",
        log(dir)
    );
    eprintln!(
        "{} requests, stop took {:?}, slowest {slowest:?}, {} answered 503, first 200 {:?} after the restart",
        answers.len(),
        stopped - stopped_at,
        answers.iter().filter(|(_, a)| a.status == 503).count(),
        first_ok.saturating_duration_since(ready)
    );
}

/// A small tmpfs, unmounted with the value.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Result<Tmpfs, String> {
        std::fs::create_dir_all(at).map_err(|e| e.to_string())?;
        sh(
            "mount",
            &[
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size}"),
                "tmpfs",
                &at.display().to_string(),
            ],
        )?;
        Ok(Tmpfs(at.to_owned()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = sh("umount", &["-l", &self.0.display().to_string()]);
    }
}

/// Fills the file system of `dir` with a file; returns it.
fn fill(dir: &Path) -> PathBuf {
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).expect("filler");
    let block = vec![0u8; 64 * 1024];
    while f.write_all(&block).is_ok() {}
    let mut small = [0u8; 512].to_vec();
    while f.write_all(&small).is_ok() {}
    small.truncate(1);
    while f.write_all(&small).is_ok() {}
    let _ = f.sync_all();
    path
}

#[test]
fn a_full_sqlite_disk_is_507_to_writes_reads_still_served_and_recovers() {
    let tmp = tempfile::tempdir().expect("dir");
    let dir = tmp.path();
    let data = dir.join("data");
    let mount = match Tmpfs::mount(&data, "16m") {
        Ok(m) => m,
        Err(why) => return skip(&format!("cannot mount a tmpfs: {why}")),
    };
    let (mut server, addr) = serve(dir, &[("DATA_DIR", data.display().to_string())]);
    let (host, token) = tenant(addr);
    let created = request(
        addr,
        "POST",
        "/api/projects/",
        &host,
        Some(&token),
        Some(json!({"name": "before"})),
    );
    assert_eq!(created.status, 201, "{created:?}");

    let filler = fill(&data);
    // Writes fail once SQLite needs a page it cannot have; every answer
    // meanwhile is a success or a 507, and reads are served.
    let mut full = None;
    for i in 0..2_000 {
        let w = request(
            addr,
            "POST",
            "/api/projects/",
            &host,
            Some(&token),
            Some(json!({"name": format!("full-{i}-{}", "x".repeat(150))})),
        );
        assert!(w.status == 201 || w.status == 507, "{w:?}\n{}", log(dir));
        assert!(w.took < LONGEST, "{w:?}");
        if w.status == 507 {
            full = Some(w);
            break;
        }
    }
    let full = full.expect("a write was refused for the full disk");
    assert_eq!(full.code.as_deref(), Some("storage_full"), "{full:?}");

    let stop = Arc::new(AtomicBool::new(false));
    let threads = load(addr, &host, &token, 4, stop.clone(), true);
    std::thread::sleep(Duration::from_secs(2));
    stop.store(true, Ordering::Relaxed);
    let answers: Vec<Answer> = threads
        .into_iter()
        .flat_map(|t| t.join().expect("load"))
        .map(|(_, a)| a)
        .collect();
    for a in &answers {
        assert!(a.took < LONGEST, "{a:?}");
        assert!(
            matches!(a.status, 200 | 507),
            "reads served, writes refused: {a:?}\n{}",
            log(dir)
        );
    }
    assert!(answers.iter().any(|a| a.status == 200), "reads are served");
    assert!(
        answers.iter().any(|a| a.status == 507),
        "writes are refused"
    );

    std::fs::remove_file(&filler).expect("free the disk");
    let again = request(
        addr,
        "POST",
        "/api/projects/",
        &host,
        Some(&token),
        Some(json!({"name": "after"})),
    );
    assert_eq!(
        again.status,
        201,
        "writes work again at once: {again:?}\n{}",
        log(dir)
    );
    let listed = request(
        addr,
        "GET",
        "/api/projects/?page_size=100",
        &host,
        Some(&token),
        None,
    );
    assert_eq!(listed.status, 200);
    let _ = server.kill();
    let _ = server.wait();
    assert_eq!(
        outage_lines(dir, "storage full"),
        1,
        "logged once:\n{}",
        log(dir)
    );
    assert!(
        !log(dir).contains("request failed"),
        "no per-request error log:\n{}",
        log(dir)
    );
    drop(mount);
}
