//! Process-level tests of `saas-server worker`: the real binary, killed with
//! SIGKILL in the middle of a batch, loses no job (invariant 4, "a job
//! survives a worker crash and runs again after its lease expires"); and
//! stopped with SIGTERM, finishes what it is running before exiting.
//!
//! The jobs are of the test-only `test_sleep` kind, so that many are in
//! flight at any moment. The production binary does not know that kind:
//! the worker is this test binary run again as `saas-server worker` (the
//! `worker_process` test, when `WORKER_ARGS` is set), running only
//! `test_sleep`, so a test worker on a shared database never takes real jobs. Each case runs on SQLite (a fresh directory) and on PostgreSQL
//! (`SAAS_TEST_DATABASE_URL`; skipped when unreachable unless
//! `SAAS_REQUIRE_POSTGRES=1`). On the shared PostgreSQL queue a case follows
//! only the jobs it enqueued.

use std::collections::BTreeMap;
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
        .env("RUST_LOG", "warn,saas_core::jobs::worker=info");
    match db {
        Db::Sqlite(data) => {
            args.extend(["--data-dir".to_owned(), data.display().to_string()]);
        }
        Db::Postgres(url) => {
            cmd.env("DATABASE_URL", url);
        }
    }
    let lease = lease_seconds.to_string();
    args.extend(
        ["worker", "--concurrency", "8", "--poll-ms", "50"]
            .into_iter()
            .chain(["--lease-seconds", &lease])
            .chain(["--grace-seconds", "20", "--no-scheduler"])
            .map(str::to_owned),
    );
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
        .expect("start saas-server worker")
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
    let pid = worker.id().to_string();
    let sent = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("run kill");
    assert!(sent.success());
    let start = Instant::now();
    let status = loop {
        if let Some(s) = worker.try_wait().expect("wait") {
            break s;
        }
        if start.elapsed() > Duration::from_secs(30) {
            stop(&mut worker);
            panic!(
                "the worker did not exit within 30 s of SIGTERM\n{}",
                logs(&dir)
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
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

mod sqlite {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sigkill_mid_batch_loses_no_job() {
        super::sigkill_mid_batch_loses_no_job("sqlite").await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sigterm_finishes_in_flight_jobs() {
        super::sigterm_finishes_in_flight_jobs("sqlite").await;
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
}
