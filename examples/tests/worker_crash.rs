//! Process-level tests of `saas-server worker`: the real binary, killed with
//! SIGKILL in the middle of a batch, loses no job (invariant 4, "a job
//! survives a worker crash and runs again after its lease expires"); and
//! stopped with SIGTERM, finishes what it is running before exiting.
//!
//! The jobs are of the test-only `test_sleep` kind, which the server runs
//! only with `--test-jobs`, so that many are in flight at any moment.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use saas_core::jobs::{JobId, JobQueue, JobStatus, NewJob};
use saas_store_sqlite::SqliteQueue;
use serde_json::json;

const SERVER: &str = env!("CARGO_BIN_EXE_saas-server");

/// Starts `saas-server worker` on the SQLite directory `data`.
fn start_worker(dir: &Path, data: &Path, name: &str, lease_seconds: u64) -> Child {
    let log = |ext: &str| {
        std::fs::File::create(dir.join(format!("{name}.{ext}"))).expect("create worker log")
    };
    Command::new(SERVER)
        .current_dir(dir)
        .env_remove("DATABASE_URL")
        .env_remove("DATABASE_HOST")
        .env_remove("EMAIL_BACKEND")
        .env_remove("EMAIL_FILE_PATH")
        .env_remove("DEBUG")
        .env(
            "SECRET_KEY",
            "worker crash test secret, at least 32 bytes long",
        )
        .env("RUST_LOG", "warn,saas_core::jobs::worker=info")
        .arg("--data-dir")
        .arg(data)
        .arg("--test-jobs")
        .args(["worker", "--concurrency", "8", "--poll-ms", "50"])
        .args(["--lease-seconds", &lease_seconds.to_string()])
        .args(["--grace-seconds", "20", "--no-scheduler"])
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

async fn open_queue(data: PathBuf) -> SqliteQueue {
    tokio::task::spawn_blocking(move || SqliteQueue::open(data))
        .await
        .expect("join")
        .expect("open the SQLite queue")
}

async fn enqueue_sleeps(queue: &SqliteQueue, n: usize, ms: u64) -> Vec<JobId> {
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let job = NewJob::new("test_sleep", json!({"ms": ms, "i": i}));
        let e = queue
            .enqueue(&job, chrono::Utc::now())
            .await
            .expect("enqueue");
        ids.push(e.id);
    }
    ids
}

async fn count(queue: &SqliteQueue, status: JobStatus) -> u64 {
    queue
        .counts()
        .await
        .expect("counts")
        .into_iter()
        .find(|(s, _)| *s == status)
        .map_or(0, |(_, n)| n)
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
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn stop(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_batch_loses_no_job() {
    const N: usize = 200;
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path().to_owned();
    let data = dir.join("data");
    let queue = open_queue(data.clone()).await;
    let ids = enqueue_sleeps(&queue, N, 100).await;

    let mut first = start_worker(&dir, &data, "first", 2);
    // Let it get well into the batch, then kill it without warning.
    wait_until(
        &dir,
        Duration::from_secs(120),
        "40 jobs succeeded",
        || async { count(&queue, JobStatus::Succeeded).await >= 40 },
    )
    .await;
    first.kill().expect("SIGKILL the worker");
    let status = first.wait().expect("reap the worker");
    assert!(!status.success(), "the worker was killed: {status:?}");

    // What the dead worker left behind: jobs it held, still `running`.
    let mut orphans = Vec::new();
    for id in &ids {
        let j = queue.job(*id).await.expect("job").expect("stored");
        if j.status == JobStatus::Running {
            orphans.push(j.id);
        }
    }
    let succeeded_at_kill = count(&queue, JobStatus::Succeeded).await;
    assert!(
        !orphans.is_empty(),
        "a worker running 8 jobs at a time was killed with none in flight"
    );
    assert!(succeeded_at_kill < N as u64, "the kill came too late");

    let mut second = start_worker(&dir, &data, "second", 2);
    wait_until(
        &dir,
        Duration::from_secs(180),
        "all jobs succeeded",
        || async { count(&queue, JobStatus::Succeeded).await == N as u64 },
    )
    .await;
    stop(&mut second);

    for id in &ids {
        let j = queue.job(*id).await.expect("job").expect("stored");
        assert_eq!(j.status, JobStatus::Succeeded, "{j:?}");
        assert!(j.get().is_some_and(|r| r["slept_ms"] == 100), "{j:?}");
    }
    for id in &orphans {
        let j = queue.job(*id).await.expect("job").expect("stored");
        assert!(
            j.attempts >= 2,
            "a job the killed worker held ran again: {j:?}"
        );
    }
    for status in [JobStatus::Dead, JobStatus::Running, JobStatus::Retrying] {
        assert_eq!(count(&queue, status).await, 0, "{status}");
    }
    eprintln!(
        "{N} jobs: {succeeded_at_kill} done before SIGKILL, {} in flight re-run after lease expiry",
        orphans.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_in_flight_jobs() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path().to_owned();
    let data = dir.join("data");
    let queue = open_queue(data.clone()).await;
    let ids = enqueue_sleeps(&queue, 60, 400).await;

    // A long lease: anything not finished at exit would stay `running`.
    let mut worker = start_worker(&dir, &data, "graceful", 600);
    wait_until(
        &dir,
        Duration::from_secs(120),
        "8 jobs succeeded",
        || async { count(&queue, JobStatus::Succeeded).await >= 8 },
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
    let mut succeeded = 0;
    for id in &ids {
        let j = queue.job(*id).await.expect("job").expect("stored");
        match j.status {
            JobStatus::Succeeded => {
                assert_eq!(j.attempts, 1, "{j:?}");
                succeeded += 1;
            }
            JobStatus::Queued => assert_eq!(j.attempts, 0, "{j:?}"),
            other => panic!("job left {other} after a graceful stop: {j:?}"),
        }
    }
    assert!(
        succeeded < ids.len(),
        "the stop came too late to test anything"
    );
}
