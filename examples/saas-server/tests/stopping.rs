//! Process-level tests of stopping: the real binary, killed with SIGKILL
//! in the middle of a batch, loses no job (invariant 4, "a job survives a
//! worker crash and runs again after its lease expires"); `saas-server
//! worker` stopped with SIGTERM finishes what it is running before exiting;
//! `saas-server serve` stopped with SIGTERM under load drops no request
//! and leaves no job leased, and keeps to its drain deadline.
//!
//! The jobs are of the test-only `test_sleep` kind, so that many are in
//! flight at any moment. The production binary does not know that kind:
//! the worker or server is this test binary run again as `saas-server …`
//! (the `worker_process` test, when `WORKER_ARGS` is set), running only
//! `test_sleep`, so a test worker on a shared database never takes real
//! jobs. Each case runs on SQLite (a fresh directory) and on PostgreSQL
//! (`SAAS_TEST_DATABASE_URL`; skipped when unreachable unless
//! `SAAS_REQUIRE_POSTGRES=1`). On the shared PostgreSQL queue a case follows
//! only the jobs it enqueued.

use std::collections::BTreeMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use std::process::ExitCode;

use saas_core::jobs::{
    Job, JobContext, JobError, JobId, JobQueue, JobRecord, JobScope, JobStatus, JobsBuilder, NewJob,
};
use serde_json::json;

/// Set in a worker process: its `saas-server` command line, as a JSON array.
const WORKER_ARGS: &str = "SAAS_TEST_WORKER_ARGS";

/// Sleeps for the payload's `ms` (at most a minute) and returns it, so the
/// tests have jobs in flight long enough to be interrupted.
#[derive(Debug)]
struct TestSleep;

#[async_trait::async_trait]
impl Job for TestSleep {
    const KIND: &'static str = "test_sleep";
    const SCOPE: JobScope = JobScope::Platform;
    type Payload = serde_json::Value;
    type Output = serde_json::Value;

    async fn run(
        &self,
        ctx: &JobContext,
        payload: serde_json::Value,
    ) -> Result<serde_json::Value, JobError> {
        let ms = payload
            .get("ms")
            .and_then(serde_json::Value::as_u64)
            .ok_or_else(|| JobError::fatal("test_sleep needs {\"ms\": <milliseconds>}"))?
            .min(60_000);
        tokio::time::sleep(Duration::from_millis(ms)).await;
        Ok(json!({"slept_ms": ms, "attempt": ctx.meta().attempt}))
    }
}

fn test_jobs_only(builder: JobsBuilder) -> JobsBuilder {
    builder.register(TestSleep)
}

/// Not a case: the worker process the cases start. Without `WORKER_ARGS`
/// it does nothing.
#[test]
fn worker_process() -> ExitCode {
    let Ok(args) = std::env::var(WORKER_ARGS) else {
        return ExitCode::SUCCESS;
    };
    let args: Vec<String> = serde_json::from_str(&args).expect("WORKER_ARGS is a JSON array");
    saas_server::main_with(
        std::iter::once("saas-server".to_owned()).chain(args),
        saas_server::Host::default().jobs(test_jobs_only),
    )
}

/// Where the queue lives, as the worker process is told.
#[derive(Debug, Clone)]
enum Db {
    Sqlite(std::path::PathBuf),
    Postgres(String),
}

/// A queue for the test process, and how to point a worker at the same one.
async fn setup(backend: &str, dir: &Path) -> Option<(Arc<dyn JobQueue>, Db)> {
    match backend {
        "sqlite" => {
            let data = dir.join("data");
            let d = data.clone();
            let queue =
                tokio::task::spawn_blocking(move || saas_store_sqlite::SqliteQueue::open(d))
                    .await
                    .expect("join")
                    .expect("open the SQLite queue");
            Some((Arc::new(queue), Db::Sqlite(data)))
        }
        _ => {
            if !testkit::pg::available().await {
                return None;
            }
            let url = testkit::pg::url();
            let queue = saas_store_postgres::PgQueue::connect(&url)
                .await
                .expect("open the PostgreSQL job queue");
            Some((Arc::new(queue), Db::Postgres(url)))
        }
    }
}

/// Starts `saas-server worker` with the `test_sleep` kind on `db`.
fn start_worker(dir: &Path, db: &Db, name: &str, lease_seconds: u64) -> Child {
    let lease = lease_seconds.to_string();
    let args = ["worker", "--concurrency", "8", "--poll-ms", "50"]
        .into_iter()
        .chain(["--lease-seconds", &lease])
        .chain(["--grace-seconds", "20", "--no-scheduler"]);
    start(dir, db, name, args, &[])
}

/// Starts `saas-server <args>` (with `env` set) knowing only the
/// `test_sleep` kind on `db`, its output in `dir/<name>.out` and `.err`.
fn start<'a>(
    dir: &Path,
    db: &Db,
    name: &str,
    command: impl IntoIterator<Item = &'a str>,
    env: &[(&str, &str)],
) -> Child {
    let log = |ext: &str| {
        std::fs::File::create(dir.join(format!("{name}.{ext}"))).expect("create worker log")
    };
    let mut args: Vec<String> = Vec::new();
    let mut cmd = Command::new(std::env::current_exe().expect("the test binary's path"));
    cmd.current_dir(dir)
        .env_remove("DATABASE_URL")
        .env_remove("DATABASE_HOST")
        .env_remove("EMAIL_BACKEND")
        .env_remove("EMAIL_FILE_PATH")
        .env_remove("DEBUG")
        // A fresh key: the server refuses keys published in the repository.
        .env("SECRET_KEY", testkit::program::fresh_signing_key())
        .env("RUST_LOG", "warn,saas_core::jobs::worker=info")
        .envs(env.iter().copied());
    match db {
        Db::Sqlite(data) => {
            args.extend(["--data-dir".to_owned(), data.display().to_string()]);
        }
        Db::Postgres(url) => {
            cmd.env("DATABASE_URL", url);
        }
    }
    args.extend(command.into_iter().map(str::to_owned));
    cmd.env(WORKER_ARGS, serde_json::to_string(&args).expect("JSON"))
        .args([
            "worker_process",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .stdin(Stdio::null())
        .stdout(log("out"))
        .stderr(log("err"))
        .spawn()
        .expect("start saas-server")
}

fn logs(dir: &Path) -> String {
    let mut out = String::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = entry.path();
        if p.extension().is_some_and(|e| e == "err" || e == "out") {
            out.push_str(&format!("--- {}\n", p.display()));
            out.push_str(&std::fs::read_to_string(&p).unwrap_or_default());
        }
    }
    out
}

async fn enqueue_sleeps(queue: &dyn JobQueue, n: usize, ms: u64) -> Vec<JobId> {
    let run = uuid::Uuid::new_v4().to_string();
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let job = NewJob::new("test_sleep", json!({"ms": ms, "i": i, "run": run}));
        let now = chrono::DateTime::from_timestamp_micros(chrono::Utc::now().timestamp_micros())
            .expect("now");
        ids.push(queue.enqueue(&job, now).await.expect("enqueue").id);
    }
    ids
}

async fn records(queue: &dyn JobQueue, ids: &[JobId]) -> Vec<JobRecord> {
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        out.push(queue.job(*id).await.expect("read job").expect("job stored"));
    }
    out
}

/// How many of `ids` are in each status.
async fn tally(queue: &dyn JobQueue, ids: &[JobId]) -> BTreeMap<&'static str, usize> {
    let mut m = BTreeMap::new();
    for j in records(queue, ids).await {
        *m.entry(j.status.as_str()).or_default() += 1;
    }
    m
}

async fn succeeded(queue: &dyn JobQueue, ids: &[JobId]) -> usize {
    tally(queue, ids)
        .await
        .get("succeeded")
        .copied()
        .unwrap_or(0)
}

/// Polls until `done` holds, or panics with the workers' logs after `limit`.
async fn wait_until<F, Fut>(dir: &Path, limit: Duration, what: &str, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !done().await {
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting until {what}\n{}",
            logs(dir)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn stop(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

async fn sigkill_mid_batch_loses_no_job(backend: &str) {
    const N: usize = 200;
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path().to_owned();
    let Some((queue, db)) = setup(backend, &dir).await else {
        return;
    };
    let queue = &*queue;
    let ids = enqueue_sleeps(queue, N, 100).await;

    let mut first = start_worker(&dir, &db, "first", 2);
    // Let it get well into the batch, then kill it without warning.
    wait_until(
        &dir,
        Duration::from_secs(120),
        "40 jobs succeeded",
        || async { succeeded(queue, &ids).await >= 40 },
    )
    .await;
    first.kill().expect("SIGKILL the worker");
    let status = first.wait().expect("reap the worker");
    assert!(!status.success(), "the worker was killed: {status:?}");

    // What the dead worker left behind: jobs it held, still `running`. A
    // completion the worker sent just before it died can still commit after
    // the kill (the database finishes a statement it received), so a job
    // counts as held only if it is still running a moment later.
    let at_kill = records(queue, &ids).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let settled = records(queue, &ids).await;
    let orphans: Vec<JobId> = at_kill
        .iter()
        .zip(&settled)
        .filter(|(then, now)| then.status == JobStatus::Running && now.status == JobStatus::Running)
        .map(|(j, _)| j.id)
        .collect();
    let done_at_kill = at_kill
        .iter()
        .filter(|j| j.status == JobStatus::Succeeded)
        .count();
    assert!(
        !orphans.is_empty(),
        "a worker running 8 jobs at a time was killed with none in flight"
    );
    assert!(done_at_kill < N, "the kill came too late");

    let mut second = start_worker(&dir, &db, "second", 2);
    wait_until(
        &dir,
        Duration::from_secs(180),
        "all jobs succeeded",
        || async { succeeded(queue, &ids).await == N },
    )
    .await;
    stop(&mut second);

    for j in records(queue, &ids).await {
        assert_eq!(j.status, JobStatus::Succeeded, "{j:?}");
        assert!(j.get().is_some_and(|r| r["slept_ms"] == 100), "{j:?}");
        if orphans.contains(&j.id) {
            assert!(
                j.attempts >= 2,
                "a job the killed worker held ran again: {j:?}"
            );
        }
    }
    eprintln!(
        "{backend}: {N} jobs, {done_at_kill} done before SIGKILL, {} in flight re-run after lease expiry; none lost, none dead",
        orphans.len()
    );
}

async fn sigterm_finishes_in_flight_jobs(backend: &str) {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path().to_owned();
    let Some((queue, db)) = setup(backend, &dir).await else {
        return;
    };
    let queue = &*queue;
    let ids = enqueue_sleeps(queue, 60, 400).await;

    // A long lease: anything not finished at exit would stay `running`.
    let mut worker = start_worker(&dir, &db, "graceful", 600);
    wait_until(
        &dir,
        Duration::from_secs(120),
        "8 jobs succeeded",
        || async { succeeded(queue, &ids).await >= 8 },
    )
    .await;
    let status = sigterm(&mut worker, &dir, Duration::from_secs(30)).await;
    assert!(status.success(), "{status:?}\n{}", logs(&dir));

    // Everything it started, it finished; the rest is still waiting.
    let mut done = 0;
    for j in records(queue, &ids).await {
        match j.status {
            JobStatus::Succeeded => {
                assert_eq!(j.attempts, 1, "{j:?}");
                done += 1;
            }
            JobStatus::Queued => assert_eq!(j.attempts, 0, "{j:?}"),
            other => panic!("job left {other} after a graceful stop: {j:?}"),
        }
    }
    assert!(done < ids.len(), "the stop came too late to test anything");
    // Leave nothing behind on a shared database.
    let mut cleanup = start_worker(&dir, &db, "cleanup", 60);
    wait_until(
        &dir,
        Duration::from_secs(120),
        "the rest succeeded",
        || async { succeeded(queue, &ids).await == ids.len() },
    )
    .await;
    stop(&mut cleanup);
}

/// Sends SIGTERM to `child` and waits for it to exit; panics with the logs
/// if it takes longer than `limit`.
async fn sigterm(child: &mut Child, dir: &Path, limit: Duration) -> std::process::ExitStatus {
    send_sigterm(child);
    exit_within(child, dir, limit).await
}

fn send_sigterm(child: &Child) {
    let sent = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(sent.success());
}

/// Waits for `child` to exit; panics with the logs after `limit`.
async fn exit_within(child: &mut Child, dir: &Path, limit: Duration) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(s) = child.try_wait().expect("wait") {
            return s;
        }
        if start.elapsed() > limit {
            stop(child);
            panic!(
                "saas-server did not exit within {limit:?} of SIGTERM\n{}",
                logs(dir)
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Starts `saas-server serve` with the `test_sleep` kind on `db` and
/// returns it with the address it listens on (read from its output).
async fn start_server(
    dir: &Path,
    db: &Db,
    name: &str,
    env: &[(&str, &str)],
) -> (Child, SocketAddr) {
    let args = ["serve", "--bind", "127.0.0.1:0", "--concurrency", "4"]
        .into_iter()
        .chain(["--poll-ms", "50", "--lease-seconds", "600"])
        .chain(["--grace-seconds", "5", "--no-scheduler"]);
    let mut env = env.to_vec();
    env.push(("REGISTRATION_RATE_LIMIT", "off"));
    let mut child = start(dir, db, name, args, &env);
    let out = dir.join(format!("{name}.out"));
    let start = Instant::now();
    loop {
        let text = std::fs::read_to_string(&out).unwrap_or_default();
        if let Some(addr) = text
            .lines()
            .find_map(|l| l.split_once("saas-server listening on http://"))
            .map(|(_, addr)| addr)
        {
            return (child, addr.trim().parse().expect("listening address"));
        }
        if start.elapsed() > Duration::from_secs(60) || child.try_wait().ok().flatten().is_some() {
            stop(&mut child);
            panic!("saas-server serve did not start\n{}", logs(dir));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// What became of one request sent while the server was stopping.
#[derive(Debug)]
enum Fate {
    /// A whole answer: a status line, headers and `Content-Length` bytes.
    Answered(u16),
    /// The connection was refused: the listener had closed, nothing sent.
    Refused,
    /// Anything else: the request was sent, or the connection made, and no
    /// whole answer came back.
    Dropped(String),
}

/// Reads one whole `Connection: close` answer from `s`.
fn answer(s: &mut TcpStream) -> Fate {
    let mut raw = Vec::new();
    if let Err(e) = s.read_to_end(&mut raw) {
        return Fate::Dropped(format!("read: {e} after {} bytes", raw.len()));
    }
    let text = String::from_utf8_lossy(&raw);
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        return Fate::Dropped(format!("no whole head: {text:?}"));
    };
    let status = head
        .strip_prefix("HTTP/1.1 ")
        .and_then(|r| r.get(..3))
        .and_then(|c| c.parse().ok());
    let length = head.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.eq_ignore_ascii_case("content-length")
            .then(|| value.trim().parse::<usize>().ok())
            .flatten()
    });
    match (status, length) {
        (Some(status), Some(n)) if body.len() == n => Fate::Answered(status),
        _ => Fate::Dropped(format!("incomplete answer: {text:?}")),
    }
}

/// One `GET /healthz` on a new connection.
fn probe(addr: SocketAddr) -> Fate {
    let mut s = match TcpStream::connect_timeout(&addr, Duration::from_secs(5)) {
        Ok(s) => s,
        Err(e) if e.kind() == ErrorKind::ConnectionRefused => return Fate::Refused,
        Err(e) => return Fate::Dropped(format!("connect: {e}")),
    };
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let req = "GET /healthz HTTP/1.1\r\nHost: probe.test\r\nConnection: close\r\n\r\n";
    if let Err(e) = s.write_all(req.as_bytes()) {
        return Fate::Dropped(format!("send: {e}"));
    }
    answer(&mut s)
}

/// A registration sent as far as half its body: a request in flight for as
/// long as the test likes.
struct SlowUpload {
    stream: TcpStream,
    rest: Vec<u8>,
    slug: String,
}

impl SlowUpload {
    fn begin(addr: SocketAddr) -> SlowUpload {
        let slug = testkit::server::unique("stop_");
        let body = json!({
            "company_name": "Stopping",
            "schema_name": slug,
            "domain_url": format!("{}.stop.test", slug.replace('_', "-")),
            "admin_username": "admin",
            "admin_email": "admin@stop.test",
            "admin_password": "securepassword123",
        })
        .to_string()
        .into_bytes();
        let mut stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .expect("timeout");
        let head = format!(
            "POST /api/register/ HTTP/1.1\r\nHost: stop.test\r\nConnection: close\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        let (first, rest) = body.split_at(body.len() / 2);
        stream.write_all(head.as_bytes()).expect("send the head");
        stream.write_all(first).expect("send half the body");
        SlowUpload {
            stream,
            rest: rest.to_vec(),
            slug,
        }
    }

    /// Sends the rest of the body and reads the answer.
    fn finish(mut self) -> (Fate, String) {
        if let Err(e) = self.stream.write_all(&self.rest) {
            return (Fate::Dropped(format!("send the rest: {e}")), self.slug);
        }
        (answer(&mut self.stream), self.slug)
    }
}

/// Clients sending probes on new connections, one after another, until one
/// is refused; each returns every probe's fate.
fn probers(addr: SocketAddr, n: usize) -> Vec<std::thread::JoinHandle<Vec<Fate>>> {
    (0..n)
        .map(|_| {
            std::thread::spawn(move || {
                let mut fates = Vec::new();
                loop {
                    let fate = probe(addr);
                    let refused = matches!(fate, Fate::Refused);
                    fates.push(fate);
                    if refused {
                        break;
                    }
                }
                fates
            })
        })
        .collect()
}

async fn serve_sigterm_drops_no_request_and_leaves_no_lease(backend: &str) {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path().to_owned();
    let Some((queue, db)) = setup(backend, &dir).await else {
        return;
    };
    let queue = &*queue;
    let (mut server, addr) =
        start_server(&dir, &db, "serve", &[("HTTP_DRAIN_SECONDS", "20")]).await;

    // Two jobs running when the signal comes: one that ends within the
    // worker's grace period (5 s), one that would run for a minute.
    let short = enqueue_sleeps(queue, 1, 2_000).await;
    let long = enqueue_sleeps(queue, 1, 60_000).await;
    let both = [short[0], long[0]];
    wait_until(&dir, Duration::from_secs(30), "both jobs run", || async {
        tally(queue, &both).await.get("running") == Some(&2)
    })
    .await;
    let long_before = records(queue, &long).await.remove(0);

    // Requests in flight: uploads half sent, and clients probing nonstop.
    let uploads: Vec<SlowUpload> = (0..3).map(|_| SlowUpload::begin(addr)).collect();
    let load = probers(addr, 4);
    tokio::time::sleep(Duration::from_millis(300)).await;
    send_sigterm(&server);

    // The listener closes at once, though requests are still in flight...
    let start = Instant::now();
    let mut fates: Vec<Fate> = Vec::new();
    loop {
        let fate = probe(addr);
        let refused = matches!(fate, Fate::Refused);
        fates.push(fate);
        if refused {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "the listener was still open 5 s after SIGTERM\n{}",
            logs(&dir)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for prober in load {
        fates.extend(prober.join().expect("prober"));
    }
    // ...and those requests, finished after it closed, are answered whole.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        server.try_wait().expect("wait").is_none(),
        "exited with requests in flight"
    );
    for upload in uploads {
        let (fate, slug) = upload.finish();
        assert!(
            matches!(fate, Fate::Answered(201)),
            "the registration of {slug}, in flight at SIGTERM, got {fate:?}\n{}",
            logs(&dir)
        );
    }
    let status = exit_within(&mut server, &dir, Duration::from_secs(30)).await;
    assert!(status.success(), "{status:?}\n{}", logs(&dir));

    let dropped: Vec<&str> = fates
        .iter()
        .filter_map(|f| match f {
            Fate::Dropped(why) => Some(why.as_str()),
            _ => None,
        })
        .collect();
    assert!(dropped.is_empty(), "requests dropped: {dropped:?}");
    let answered = fates
        .iter()
        .filter(|f| matches!(f, Fate::Answered(200)))
        .count();
    let refused = fates.iter().filter(|f| matches!(f, Fate::Refused)).count();
    assert_eq!(answered + refused, fates.len(), "{fates:?}");
    assert_eq!(refused, 5, "each prober ends at its first refusal");
    assert!(answered > 0, "no probe was answered");

    // The short job finished; the long one is back in the queue, unleased,
    // its attempt not counted against it.
    let short = records(queue, &short).await.remove(0);
    assert_eq!(short.status, JobStatus::Succeeded, "{short:?}");
    let long = records(queue, &long).await.remove(0);
    assert_eq!(long.status, JobStatus::Queued, "{long:?}\n{}", logs(&dir));
    assert_eq!(long.lease_until, None, "{long:?}");
    assert_eq!(long.max_attempts, long_before.max_attempts + 1, "{long:?}");
    assert!(long.run_at <= chrono::Utc::now(), "{long:?}");
    queue
        .cancel(long.id, chrono::Utc::now())
        .await
        .expect("cancel the long job");
    eprintln!(
        "{backend}: {answered} probes answered, {refused} refused, none dropped; 3 uploads answered after the listener closed"
    );
}

/// Past `HTTP_DRAIN_SECONDS`, the server exits even though a request is
/// still coming in, and closes its connection.
async fn serve_keeps_to_its_drain_deadline(backend: &str) {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path().to_owned();
    let Some((_queue, db)) = setup(backend, &dir).await else {
        return;
    };
    let (mut server, addr) = start_server(&dir, &db, "serve", &[("HTTP_DRAIN_SECONDS", "1")]).await;
    let upload = SlowUpload::begin(addr);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let start = Instant::now();
    let status = sigterm(&mut server, &dir, Duration::from_secs(10)).await;
    let took = start.elapsed();
    assert!(status.success(), "{status:?}\n{}", logs(&dir));
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_secs(5),
        "exited {took:?} after SIGTERM with a 1 s drain deadline\n{}",
        logs(&dir)
    );
    let (fate, _) = upload.finish();
    assert!(matches!(fate, Fate::Dropped(_)), "{fate:?}");
    assert!(
        logs(&dir).contains("drain deadline passed"),
        "{}",
        logs(&dir)
    );
}

mod sqlite {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sigkill_mid_batch_loses_no_job() {
        super::sigkill_mid_batch_loses_no_job("sqlite").await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sigterm_finishes_in_flight_jobs() {
        super::sigterm_finishes_in_flight_jobs("sqlite").await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn serve_sigterm_drops_no_request_and_leaves_no_lease() {
        super::serve_sigterm_drops_no_request_and_leaves_no_lease("sqlite").await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn serve_keeps_to_its_drain_deadline() {
        super::serve_keeps_to_its_drain_deadline("sqlite").await;
    }
}

/// The PostgreSQL queue is shared, and every test worker runs the same
/// kind: one case at a time, or one case's worker would take (and, when
/// killed, strand) the other's jobs.
static PG_SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

mod postgres {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sigkill_mid_batch_loses_no_job() {
        let _serial = super::PG_SERIAL.lock().await;
        super::sigkill_mid_batch_loses_no_job("postgres").await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sigterm_finishes_in_flight_jobs() {
        let _serial = super::PG_SERIAL.lock().await;
        super::sigterm_finishes_in_flight_jobs("postgres").await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn serve_sigterm_drops_no_request_and_leaves_no_lease() {
        let _serial = super::PG_SERIAL.lock().await;
        super::serve_sigterm_drops_no_request_and_leaves_no_lease("postgres").await;
    }
}
