//! `saas-server tenants …` and `saas-server jobs …`, the built binary on
//! SQLite and on a PostgreSQL database of the test's own: tables for
//! people, `--json` for scripts, refusals that change nothing, and
//! `jobs retry` on a dead job making it run.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use saas_core::jobs::{ClaimRequest, JobId, JobQueue, JobStatus, NewJob};
use serde_json::{Value, json};

const SERVER: &str = env!("CARGO_BIN_EXE_saas-server");

/// Where a run keeps its data.
enum Storage {
    Sqlite(tempfile::TempDir),
    Postgres { dir: tempfile::TempDir, db: String },
}

impl Storage {
    fn dir(&self) -> &Path {
        match self {
            Storage::Sqlite(dir) | Storage::Postgres { dir, .. } => dir.path(),
        }
    }

    /// `saas-server ARGS` on this storage, nothing from the caller's
    /// environment changing what is tested.
    fn run(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(SERVER);
        cmd.current_dir(self.dir())
            .env_remove("DATABASE_HOST")
            .env_remove("DEBUG")
            .env_remove("RUN_WORKER")
            .env("SECRET_KEY", KEY.as_str())
            .env("RUST_LOG", "warn")
            .env("SAAS_ADMIN_PASSWORD", "securepassword123")
            .env("DATA_DIR", self.dir().join("data"))
            .stdin(Stdio::null());
        match self {
            Storage::Sqlite(_) => cmd.env_remove("DATABASE_URL"),
            Storage::Postgres { db, .. } => cmd.env("DATABASE_URL", testkit::pg::url_for(db)),
        };
        cmd.args(args).output().expect("run saas-server")
    }

    async fn queue(&self) -> std::sync::Arc<dyn JobQueue> {
        match self {
            Storage::Sqlite(dir) => std::sync::Arc::new(
                saas_store_sqlite::SqliteQueue::open(dir.path().join("data")).expect("queue"),
            ),
            Storage::Postgres { db, .. } => std::sync::Arc::new(
                saas_store_postgres::PgQueue::connect(&testkit::pg::url_for(db))
                    .await
                    .expect("queue"),
            ),
        }
    }
}

static KEY: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
});

/// Runs `args`, expecting success; the standard output.
fn ok(storage: &Storage, args: &[&str]) -> String {
    let out = storage.run(args);
    assert!(
        out.status.success(),
        "{args:?} failed:\n{}",
        testkit::program::output_text(&out)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `args` with `--json`, expecting success; the document.
fn json_of(storage: &Storage, args: &[&str]) -> Value {
    let mut args = args.to_vec();
    args.push("--json");
    let out = ok(storage, &args);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}):\n{out}"))
}

/// Runs `args`, expecting a refusal; standard error.
fn refused(storage: &Storage, args: &[&str]) -> String {
    let out = storage.run(args);
    assert!(
        !out.status.success(),
        "{args:?} succeeded:\n{}",
        testkit::program::output_text(&out)
    );
    assert!(
        out.stdout.is_empty(),
        "a refusal prints nothing on stdout: {}",
        testkit::program::output_text(&out)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn tenants(storage: &Storage) {
    let slug = format!("cli{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
    let domain = format!("{slug}.localhost");
    ok(
        storage,
        &[
            "create-tenant",
            "--company-name",
            "CLI Corp",
            "--schema-name",
            &slug,
            "--domain-url",
            &domain,
            "--admin-email",
            "admin@cli.example",
            "--subscription-plan",
            "basic",
        ],
    );

    let listed = json_of(storage, &["tenants", "list"]);
    assert_eq!(listed["count"], json!(1), "{listed}");
    assert_eq!(listed["results"][0]["slug"], json!(slug));
    assert_eq!(listed["results"][0]["users"]["used"], json!(1));
    let table = ok(storage, &["tenants", "list"]);
    assert!(
        table.contains(&slug) && table.contains("basic") && table.contains(&domain),
        "{table}"
    );

    let shown = json_of(storage, &["tenants", "show", &slug]);
    let id = shown["id"].as_str().expect("id").to_owned();
    assert_eq!(shown["plan"], json!("basic"));
    assert_eq!(shown["domains"][0]["hostname"], json!(domain));
    assert_eq!(
        json_of(storage, &["tenants", "show", &id])["slug"],
        json!(slug),
        "by id too"
    );
    assert!(ok(storage, &["tenants", "show", &slug]).contains("CLI Corp"));

    let changed = json_of(storage, &["tenants", "set-plan", &slug, "premium"]);
    assert_eq!(changed["plan"], json!("premium"));
    let e = refused(storage, &["tenants", "set-plan", &slug, "gold"]);
    assert!(e.contains("plan"), "{e}");
    assert_eq!(
        json_of(storage, &["tenants", "show", &slug])["plan"],
        json!("premium"),
        "unchanged"
    );

    let suspended = json_of(storage, &["tenants", "suspend", &slug]);
    assert_eq!(suspended["status"], json!("suspended"));
    assert_eq!(
        json_of(storage, &["tenants", "show", &slug])["status"],
        json!("suspended"),
        "operators still see a suspended tenant"
    );
    assert!(ok(storage, &["tenants", "reactivate", &slug]).contains("active"));
    assert_eq!(
        json_of(storage, &["tenants", "show", &slug])["status"],
        json!("active")
    );

    let other = format!("other-{slug}.example.com");
    let added = json_of(storage, &["tenants", "add-domain", &slug, &other]);
    assert_eq!(added["hostname"], json!(other));
    assert_eq!(added["is_primary"], json!(false));
    let e = refused(storage, &["tenants", "add-domain", &slug, "not a host!"]);
    assert!(e.contains("host"), "{e}");
    let domains = &json_of(storage, &["tenants", "show", &slug])["domains"];
    assert_eq!(domains.as_array().map(Vec::len), Some(2), "{domains}");

    for unknown in [
        "nosuch",
        "00000000-0000-7000-8000-000000000000",
        "NOT A SLUG",
    ] {
        let e = refused(storage, &["tenants", "suspend", unknown]);
        assert!(e.contains("not found"), "{unknown}: {e}");
    }
    let e = refused(storage, &["tenants", "list", "--page-size", "0"]);
    assert!(e.contains("page_size"), "{e}");
}

async fn jobs(storage: &Storage) {
    let slug = format!("job{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
    let domain = format!("{slug}.localhost");
    ok(
        storage,
        &[
            "create-tenant",
            "--company-name",
            "Jobs Corp",
            "--schema-name",
            &slug,
            "--domain-url",
            &domain,
            "--admin-email",
            "admin@jobs.example",
        ],
    );
    let tenant = json_of(storage, &["tenants", "show", &slug])["id"]
        .as_str()
        .expect("id")
        .parse::<uuid::Uuid>()
        .map(saas_core::tenancy::TenantId)
        .expect("tenant id");

    // A dead job: a worker claimed it and it failed for good.
    let queue = storage.queue().await;
    let now = testkit::records::now();
    let kind = "check_overdue_tasks";
    let dead = queue
        .enqueue(
            &NewJob::new(kind, json!({})).tenant(tenant).max_attempts(1),
            now,
        )
        .await
        .expect("enqueue")
        .id;
    let claimed = queue
        .claim(
            &ClaimRequest {
                worker: "test".into(),
                lease: std::time::Duration::from_secs(60),
                limit: 10,
                kinds: vec![kind.into()],
            },
            now,
        )
        .await
        .expect("claim");
    assert_eq!(claimed.iter().map(|j| j.id).collect::<Vec<_>>(), vec![dead]);
    queue
        .fail(dead, 1, "smtp server unreachable", None, now)
        .await
        .expect("fail");
    let waiting = queue
        .enqueue(
            &NewJob::new(kind, json!({}))
                .tenant(tenant)
                .run_at(now + chrono::Duration::hours(1)),
            now,
        )
        .await
        .expect("enqueue")
        .id;
    let dead_s = dead.to_string();
    let waiting_s = waiting.to_string();

    let listed = json_of(
        storage,
        &["jobs", "list", "--tenant", &slug, "--status", "dead"],
    );
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    assert_eq!(listed[0]["id"], json!(dead_s));
    assert_eq!(listed[0]["last_error"], json!("smtp server unreachable"));
    let all = json_of(storage, &["jobs", "list", "--tenant", &slug]);
    let kinds: Vec<&str> = all
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|j| j["kind"].as_str())
        .collect();
    assert_eq!(
        kinds,
        vec![kind, kind, "send_welcome_email"],
        "the admin's welcome email first"
    );
    let ours = json_of(
        storage,
        &["jobs", "list", "--tenant", &slug, "--kind", kind],
    );
    let ids: Vec<&str> = ours
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|j| j["id"].as_str())
        .collect();
    assert_eq!(
        ids,
        vec![waiting_s.as_str(), dead_s.as_str()],
        "newest first"
    );
    let page = json_of(
        storage,
        &["jobs", "list", "--tenant", &slug, "--limit", "1"],
    );
    assert_eq!(page.as_array().map(Vec::len), Some(1));
    assert_eq!(page[0]["id"], json!(waiting_s));
    let next = json_of(
        storage,
        &["jobs", "list", "--tenant", &slug, "--before", &waiting_s],
    );
    assert_eq!(next[0]["id"], json!(dead_s), "the next page");
    let table = ok(storage, &["jobs", "list", "--tenant", &slug]);
    assert!(
        table.contains(&dead_s) && table.contains("smtp server unreachable"),
        "{table}"
    );

    let shown = json_of(storage, &["jobs", "show", &dead_s]);
    assert_eq!(shown["status"], json!("dead"));
    assert_eq!(shown["tenant"], json!(tenant.to_string()));
    assert!(ok(storage, &["jobs", "show", &dead_s]).contains("smtp server unreachable"));

    let stats = json_of(storage, &["jobs", "stats"]);
    let count = |status: &str| {
        stats
            .as_array()
            .expect("stats")
            .iter()
            .find(|c| c["kind"] == json!(kind) && c["status"] == json!(status))
            .map(|c| c["count"].as_u64().expect("count"))
    };
    assert!(count("dead") >= Some(1), "{stats}");
    assert!(count("scheduled") >= Some(1), "{stats}");
    assert!(ok(storage, &["jobs", "stats"]).contains(kind));

    // Refusals change nothing.
    let e = refused(storage, &["jobs", "retry", &waiting_s]);
    assert!(e.contains("only a dead job"), "{e}");
    let e = refused(storage, &["jobs", "cancel", &dead_s]);
    assert!(e.contains("cancel"), "{e}");
    let e = refused(storage, &["jobs", "show", &JobId::new().to_string()]);
    assert!(e.contains("not found"), "{e}");
    let e = refused(storage, &["jobs", "show", "not-a-uuid"]);
    assert!(e.contains("not a job id"), "{e}");
    let out = storage.run(&["jobs", "list", "--status", "stuck"]);
    assert!(!out.status.success());
    assert!(
        testkit::program::output_text(&out).contains("must be one of"),
        "{}",
        testkit::program::output_text(&out)
    );
    let e = refused(storage, &["jobs", "list", "--limit", "0"]);
    assert!(e.contains("limit"), "{e}");
    assert_eq!(
        queue.job(dead).await.expect("job").expect("stored").status,
        JobStatus::Dead
    );

    // Retry makes the dead job run.
    let retried = json_of(storage, &["jobs", "retry", &dead_s]);
    assert_eq!(retried["status"], json!("queued"));
    assert_eq!(retried["max_attempts"], json!(2));
    let ran = ok(storage, &["worker", "--until-idle"]);
    assert!(ran.contains("succeeded"), "{ran}");
    let done = queue.job(dead).await.expect("job").expect("stored");
    assert_eq!(done.status, JobStatus::Succeeded, "{done:?}");
    assert_eq!(done.attempts, 2);
    assert!(done.result.is_some());

    // Cancel the waiting one.
    let cancelled = json_of(storage, &["jobs", "cancel", &waiting_s]);
    assert_eq!(cancelled["status"], json!("cancelled"));
    let e = refused(storage, &["jobs", "cancel", &waiting_s]);
    assert!(e.contains("cancel"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_commands_on_sqlite() {
    tenants(&Storage::Sqlite(tempfile::tempdir().expect("dir")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_commands_on_sqlite() {
    jobs(&Storage::Sqlite(tempfile::tempdir().expect("dir"))).await;
}

/// A database of the test's own, dropped after a passing run.
async fn postgres(name: &str) -> Option<Storage> {
    if !testkit::pg::available().await {
        return None;
    }
    let db = format!("{name}_{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    testkit::pg::ensure_database(&db).await;
    Some(Storage::Postgres {
        dir: tempfile::tempdir().expect("dir"),
        db,
    })
}

async fn drop_db(storage: Storage) {
    if let Storage::Postgres { db, .. } = storage {
        testkit::pg::drop_database(&db).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_commands_on_postgres() {
    let Some(storage) = postgres("cli_tenants").await else {
        return;
    };
    tenants(&storage);
    drop_db(storage).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_commands_on_postgres() {
    let Some(storage) = postgres("cli_jobs").await else {
        return;
    };
    jobs(&storage).await;
    drop_db(storage).await;
}
