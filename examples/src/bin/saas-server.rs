//! `saas-server`: the example server of `saas`.
//!
//! Configured from environment variables (and an optional `.env` file), with
//! the seed's names where they apply; see `.env.example` at the repository
//! root. Defaults to SQLite under `./data`.
//!
//! ```text
//! saas-server                  # = serve
//! saas-server serve --bind 0.0.0.0:8000
//! saas-server serve --no-worker          # API only (also RUN_WORKER=false)
//! saas-server worker --concurrency 16     # jobs and the periodic schedule
//! saas-server migrate
//! saas-server create-tenant --company-name "Acme Corp" --schema-name acme \
//!     --domain-url acme.localhost --admin-username admin --admin-email admin@acme.com
//! SAAS_SUPERUSER_PASSWORD=... saas-server createsuperuser --username root --email root@example.com
//! ```

use std::io::{BufRead, IsTerminal, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, FromArgMatches, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use saas_core::Saas;
use saas_core::clock::{Clock, SystemClock};
use saas_core::commands::Registration;
use saas_core::jobs::builtin::{BuiltinConfig, WelcomeEmailListener, builtin_schedule};
use saas_core::jobs::mail::{LogMailer, Mailer, SmtpConfig, SmtpMailer};
use saas_core::jobs::{Job, JobContext, JobError, JobQueue, JobScope, Jobs, WorkerConfig};
use saas_core::store::{MigrationProgress, Store};
use saas_core::tenancy::Hostname;
use saas_http::{AppState, CorsOrigins, HttpConfig};
use tokio::sync::watch;
use tracing_subscriber::EnvFilter;

/// The key used when `DEBUG` is on and no `SECRET_KEY` is set. Public, so
/// tokens signed with it are worthless: development only.
const DEV_SECRET: &str = "saas-insecure-development-key-do-not-use-in-production";

#[derive(Debug, Parser)]
#[command(
    name = "saas-server",
    version,
    about = "The saas multi-tenant SaaS backend server"
)]
struct Cli {
    /// Address to listen on (env BIND).
    #[arg(long, env = "BIND", default_value = "127.0.0.1:8000", global = true)]
    bind: String,
    /// Directory of the SQLite databases when DATABASE_URL is not PostgreSQL (env DATA_DIR).
    #[arg(long, env = "DATA_DIR", default_value = "./data", global = true)]
    data_dir: PathBuf,
    /// TESTS ONLY: run the `test_sleep` job kind (payload `{"ms": N}`) that
    /// the process-level crash tests enqueue, and no other kind (so a test
    /// worker on a shared database never takes real jobs). Never set in production.
    #[arg(long, env = "SAAS_TEST_JOBS", hide = true, global = true)]
    test_jobs: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

/// How the background worker runs (`worker`, and `serve` unless `--no-worker`).
#[derive(Debug, Clone, Args)]
struct WorkerArgs {
    /// Most jobs running at once (env WORKER_CONCURRENCY).
    #[arg(long, env = "WORKER_CONCURRENCY", default_value_t = 8,
          value_parser = clap::value_parser!(u16).range(1..=1024))]
    concurrency: u16,
    /// Seconds a claimed job stays leased without a heartbeat; a job whose
    /// worker died runs again this long after its last heartbeat
    /// (env WORKER_LEASE_SECONDS).
    #[arg(long, env = "WORKER_LEASE_SECONDS", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    lease_seconds: u64,
    /// Seconds shutdown waits for running jobs before leaving them to lease
    /// expiry (env WORKER_GRACE_SECONDS).
    #[arg(long, env = "WORKER_GRACE_SECONDS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(0..=86_400))]
    grace_seconds: u64,
    /// Longest idle sleep between polls, in milliseconds (env WORKER_POLL_MS).
    #[arg(long, env = "WORKER_POLL_MS", default_value_t = 1000,
          value_parser = clap::value_parser!(u64).range(10..=60_000))]
    poll_ms: u64,
    /// Do not run the periodic schedule (overdue checks, reminders, cleanup)
    /// in this process (also env RUN_SCHEDULER=false).
    #[arg(long)]
    no_scheduler: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the REST API (the default), with a background worker and the
    /// periodic schedule in the same process unless `--no-worker`.
    Serve {
        /// Serve the API only; run `saas-server worker` separately
        /// (also env RUN_WORKER=false).
        #[arg(long)]
        no_worker: bool,
        #[command(flatten)]
        worker: WorkerArgs,
    },
    /// Bring the shared storage and every tenant's storage to the newest schema.
    Migrate,
    /// Register a tenant with its primary domain and first admin (like `POST /api/register/`).
    CreateTenant {
        /// Display name of the organization.
        #[arg(long)]
        company_name: String,
        /// Tenant slug: a lowercase letter, then lowercase letters, digits or underscores.
        #[arg(long)]
        schema_name: String,
        /// Primary domain, e.g. acme.localhost.
        #[arg(long)]
        domain_url: String,
        /// First admin's username.
        #[arg(long, default_value = "admin")]
        admin_username: String,
        /// First admin's email.
        #[arg(long)]
        admin_email: String,
        /// First admin's password; prefer env SAAS_ADMIN_PASSWORD or standard input,
        /// which other users cannot see in the process list.
        #[arg(long)]
        admin_password: Option<String>,
        /// Plan code (free, basic, premium, enterprise).
        #[arg(long)]
        subscription_plan: Option<String>,
    },
    /// Create a platform superuser. The password comes from env
    /// SAAS_SUPERUSER_PASSWORD, or else the first line of standard input.
    Createsuperuser {
        /// Username.
        #[arg(long)]
        username: String,
        /// Email address.
        #[arg(long)]
        email: String,
    },
    /// Run background jobs and the periodic schedule until SIGINT/SIGTERM.
    Worker {
        #[command(flatten)]
        worker: WorkerArgs,
        /// Run until no job is ready and none is running, then exit
        /// (no schedule); for scripts and cron.
        #[arg(long)]
        until_idle: bool,
    },
}

/// `serve` with nothing given: the defaults, and the environment.
fn default_serve() -> Result<Command, clap::Error> {
    let cmd = WorkerArgs::augment_args(clap::Command::new("serve"));
    let worker = WorkerArgs::from_arg_matches(&cmd.try_get_matches_from(["serve"])?)?;
    Ok(Command::Serve {
        no_worker: false,
        worker,
    })
}

/// Settings read from the environment.
#[derive(Debug)]
struct Settings {
    debug: bool,
    secret: String,
    database_url: Option<String>,
    /// PostgreSQL is reached through a transaction-mode pooler (PgBouncer).
    transaction_pooler: bool,
    http: HttpConfig,
    base_domain: Option<Hostname>,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

fn env_bool(name: &str) -> Result<bool, String> {
    env_bool_or(name, false)
}

fn env_bool_or(name: &str, default: bool) -> Result<bool, String> {
    match env(name).map(|v| v.to_ascii_lowercase()) {
        None => Ok(default),
        Some(v) if ["1", "true", "yes", "on"].contains(&v.as_str()) => Ok(true),
        Some(v) if ["0", "false", "no", "off"].contains(&v.as_str()) => Ok(false),
        Some(v) => Err(format!("{name}={v:?} is not a boolean (true/false)")),
    }
}

fn env_list(name: &str) -> Vec<String> {
    env(name)
        .map(|v| {
            v.split(',')
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

/// `DATABASE_URL`, or one built from the seed's `DATABASE_HOST`, `DATABASE_PORT`,
/// `DATABASE_NAME`, `DATABASE_USER` and `DATABASE_PASSWORD`.
fn database_url() -> Option<String> {
    if let Some(url) = env("DATABASE_URL") {
        return Some(url);
    }
    let host = env("DATABASE_HOST")?;
    let port = env("DATABASE_PORT").unwrap_or_else(|| "5432".into());
    let name = env("DATABASE_NAME").unwrap_or_else(|| "saas".into());
    let user = env("DATABASE_USER").unwrap_or_else(|| "postgres".into());
    let auth = match env("DATABASE_PASSWORD") {
        Some(pw) => format!("{}:{}", percent_encode(&user), percent_encode(&pw)),
        None => percent_encode(&user),
    };
    Some(format!("postgres://{auth}@{host}:{port}/{name}"))
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The SQLite directory the store will use, or `None` on PostgreSQL.
fn sqlite_dir(database_url: Option<&str>, data_dir: &Path) -> Option<PathBuf> {
    match database_url {
        None => Some(data_dir.to_owned()),
        Some(url) => url.strip_prefix("sqlite://").map(PathBuf::from),
    }
}

/// A random signing key kept in the SQLite data directory (mode 0600),
/// created on first start, so `saas-server` runs out of the box and tokens
/// survive restarts. PostgreSQL deployments set `SECRET_KEY` instead, since
/// several processes must share it.
fn persistent_secret(dir: &Path) -> Result<String, String> {
    use std::os::unix::fs::OpenOptionsExt;
    let path = dir.join("secret_key");
    if let Ok(existing) = std::fs::read_to_string(&path) {
        let existing = existing.trim();
        if existing.len() >= 32 {
            return Ok(existing.to_owned());
        }
        return Err(format!(
            "{} holds fewer than 32 bytes; remove it or set SECRET_KEY",
            path.display()
        ));
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    // Two v4 UUIDs: 244 bits from the operating system's CSPRNG.
    let key = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    file.write_all(key.as_bytes())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    eprintln!(
        "SECRET_KEY is not set: generated a signing key in {}",
        path.display()
    );
    Ok(key)
}

impl Settings {
    fn from_env(data_dir: &Path) -> Result<Settings, String> {
        let debug = env_bool("DEBUG")?;
        let database_url = database_url();
        let sqlite = sqlite_dir(database_url.as_deref(), data_dir);
        let secret = match env("SECRET_KEY") {
            Some(s) => s,
            None if !debug && sqlite.is_some() => {
                persistent_secret(sqlite.as_deref().unwrap_or(data_dir))?
            }
            None if debug => {
                eprintln!(
                    "\n  WARNING: SECRET_KEY is not set; DEBUG is on, so a fixed, PUBLIC development key\n  \
                     is used. Anyone can forge tokens for this server. Never run it like this in production.\n"
                );
                DEV_SECRET.to_owned()
            }
            None => {
                return Err(
                    "SECRET_KEY is required with PostgreSQL (at least 32 bytes; e.g. `openssl rand -hex 32`), \
                     or set DEBUG=true for development"
                        .into(),
                );
            }
        };
        if secret.len() < 32 {
            return Err("SECRET_KEY must be at least 32 bytes".into());
        }
        let cors = {
            let origins = env_list("CORS_ALLOWED_ORIGINS");
            if origins.iter().any(|o| o == "*") {
                CorsOrigins::Any
            } else if origins.is_empty() {
                CorsOrigins::None
            } else {
                CorsOrigins::List(origins)
            }
        };
        let base_domain = match env("BASE_DOMAIN") {
            Some(b) => Some(
                Hostname::parse(&b).map_err(|_| format!("BASE_DOMAIN={b:?} is not a hostname"))?,
            ),
            None => None,
        };
        let http = HttpConfig {
            x_tenant: env_bool("ENABLE_X_TENANT")?,
            cors,
            allowed_hosts: env_list("ALLOWED_HOSTS"),
            trust_forwarded_proto: env_bool("TRUST_X_FORWARDED_PROTO")?,
            ..HttpConfig::default()
        };
        Ok(Settings {
            debug,
            secret,
            database_url,
            transaction_pooler: env_bool("DATABASE_TRANSACTION_POOLER")?,
            http,
            base_domain,
        })
    }
}

fn init_tracing(debug: bool) {
    let default = if debug {
        "info,saas_http=debug,tower_http=debug"
    } else {
        "info"
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let json = env("LOG_FORMAT").is_some_and(|f| f.eq_ignore_ascii_case("json"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Error of a subcommand, printed with its chain of causes.
type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        out.push_str(": ");
        out.push_str(&s.to_string());
        cur = s.source();
    }
    out
}

/// The store and its durable job queue (in the same database: the
/// catalog's for PostgreSQL, `<DATA_DIR>/jobs.sqlite` for SQLite).
struct Storage {
    store: Arc<dyn Store>,
    queue: Arc<dyn JobQueue>,
}

async fn open_store(settings: &Settings, data_dir: PathBuf) -> Result<Storage, BoxError> {
    match &settings.database_url {
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            tracing::info!("storage: PostgreSQL (one schema per tenant)");
            let config = saas_store_postgres::PgConfig::new(url.as_str())
                .with_transaction_pooler(settings.transaction_pooler);
            let store = saas_store_postgres::PgStore::connect(config).await?;
            let queue: Arc<dyn JobQueue> =
                Arc::new(saas_store_postgres::PgQueue::for_store(&store).await?);
            Ok(Storage {
                store: Arc::new(store),
                queue,
            })
        }
        other => {
            let dir = match other {
                Some(url) => match url.strip_prefix("sqlite://") {
                    Some(path) => PathBuf::from(path),
                    None => {
                        return Err(format!(
                            "DATABASE_URL must start with postgres://, postgresql:// or sqlite:// (got {:?})",
                            url.split(':').next().unwrap_or("")
                        )
                        .into());
                    }
                },
                None => data_dir,
            };
            tracing::info!(dir = %dir.display(), "storage: SQLite (one file per tenant)");
            let store =
                tokio::task::spawn_blocking(move || saas_store_sqlite::SqliteStore::open(dir))
                    .await??;
            let queue: Arc<dyn JobQueue> = Arc::new(store.queue());
            Ok(Storage {
                store: Arc::new(store),
                queue,
            })
        }
    }
}

/// The service; every new user gets a welcome email job (the seed's
/// `post_save` signal).
fn build_saas(settings: &Settings, storage: &Storage) -> Result<Saas, BoxError> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let mut builder = Saas::builder(storage.store.clone())
        .secret(settings.secret.as_bytes())
        .clock(clock.clone());
    if let Some(b) = &settings.base_domain {
        builder = builder.base_domain(b.clone());
    }
    let welcome = WelcomeEmailListener::new(storage.queue.clone(), clock);
    Ok(builder.listener(Arc::new(welcome)).build()?)
}

/// The mailer named by `EMAIL_BACKEND`, Django-style: `…smtp.EmailBackend`
/// (or `smtp`) sends through SMTP with the `EMAIL_*` settings;
/// `…console.EmailBackend` (or `console`, the default) logs each message,
/// and `…filebased.EmailBackend` (or `file`) also appends it as a JSON line
/// to `EMAIL_FILE_PATH` (a file, or a directory to hold `emails.jsonl`).
/// `EMAIL_FILE_PATH` given with the console backend adds the file too.
fn mailer_from_env() -> Result<Arc<dyn Mailer>, BoxError> {
    let backend = env("EMAIL_BACKEND").unwrap_or_else(|| "console".into());
    let kind = backend
        .strip_suffix(".EmailBackend")
        .map(|m| m.rsplit('.').next().unwrap_or(m))
        .unwrap_or(&backend)
        .to_ascii_lowercase();
    let from = env("DEFAULT_FROM_EMAIL").unwrap_or_else(|| "webmaster@localhost".into());
    let file = env("EMAIL_FILE_PATH").map(|p| {
        let p = PathBuf::from(p);
        if p.is_dir() {
            p.join("emails.jsonl")
        } else {
            p
        }
    });
    match kind.as_str() {
        "smtp" => {
            let config = SmtpConfig::from_env()?;
            tracing::info!(host = %config.host, port = config.port, starttls = config.use_tls, implicit_tls = config.use_ssl, "email: SMTP");
            Ok(Arc::new(SmtpMailer::new(&config)?))
        }
        "console" | "filebased" | "file" => {
            let mut mailer = LogMailer::new(from);
            match file {
                Some(path) => {
                    tracing::info!(file = %path.display(), "email: logged and appended to a file");
                    mailer = mailer.with_file(path);
                }
                None if kind != "console" => {
                    return Err(format!("EMAIL_BACKEND={backend:?} needs EMAIL_FILE_PATH").into());
                }
                None => tracing::info!("email: logged only (EMAIL_BACKEND=console)"),
            }
            Ok(Arc::new(mailer))
        }
        _ => Err(format!(
            "EMAIL_BACKEND={backend:?} is not supported: use smtp, console or file \
             (or Django's django.core.mail.backends.{{smtp,console,filebased}}.EmailBackend)"
        )
        .into()),
    }
}

/// TESTS ONLY (`--test-jobs`): sleeps for the payload's `ms` (at most a
/// minute) and returns it, so crash tests have jobs that are in flight
/// long enough to be interrupted.
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
        Ok(serde_json::json!({"slept_ms": ms, "attempt": ctx.meta().attempt}))
    }
}

fn build_jobs(saas: Saas, queue: Arc<dyn JobQueue>, test_jobs: bool) -> Result<Jobs, BoxError> {
    let builder = Jobs::builder(saas, queue).mailer(mailer_from_env()?);
    Ok(if test_jobs {
        tracing::warn!("--test-jobs: running only the test-only `test_sleep` job kind");
        builder.register(TestSleep).build()
    } else {
        builder.builtin(BuiltinConfig::default()).build()
    })
}

/// Completes when shutdown has been asked for (SIGINT or SIGTERM).
#[derive(Debug, Clone)]
struct Shutdown(watch::Receiver<bool>);

impl Shutdown {
    /// Listens for SIGINT/SIGTERM; a second signal exits at once.
    fn on_signals() -> Shutdown {
        let (tx, rx) = watch::channel(false);
        tokio::spawn(async move {
            shutdown_signal().await;
            let _ = tx.send(true);
            shutdown_signal().await;
            eprintln!(
                "second signal: exiting now; unfinished jobs run again when their leases expire"
            );
            std::process::exit(130);
        });
        Shutdown(rx)
    }

    async fn wait(mut self) {
        // A dropped sender also means stop.
        let _ = self.0.wait_for(|stop| *stop).await;
    }
}

/// Runs a worker (and the schedule unless disabled) until `shutdown`, then
/// lets running jobs finish within the grace period.
async fn run_background(jobs: Jobs, args: WorkerArgs, shutdown: Shutdown) -> Result<(), BoxError> {
    let lease = Duration::from_secs(args.lease_seconds);
    let concurrency = usize::from(args.concurrency);
    let config = WorkerConfig {
        concurrency,
        batch_size: concurrency.min(32),
        lease,
        heartbeat_interval: lease / 3,
        poll_interval: Duration::from_millis(args.poll_ms),
        grace_period: Duration::from_secs(args.grace_seconds),
        ..WorkerConfig::default()
    };
    let run_scheduler = !args.no_scheduler && env_bool_or("RUN_SCHEDULER", true)?;
    let worker = jobs.worker(config);
    let scheduler = if run_scheduler {
        Some(jobs.scheduler().extend(builtin_schedule()?))
    } else {
        tracing::info!("scheduler disabled in this process");
        None
    };
    let schedule = {
        let shutdown = shutdown.clone();
        async move {
            if let Some(s) = scheduler {
                s.run(shutdown.wait()).await;
            }
        }
    };
    let (stats, ()) = tokio::join!(worker.run(shutdown.wait()), schedule);
    tracing::info!(?stats, "background jobs stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing in-flight requests and jobs");
}

async fn serve(
    settings: Settings,
    saas: Saas,
    jobs: Option<Jobs>,
    background: Option<WorkerArgs>,
    bind: &str,
) -> Result<(), BoxError> {
    let addr: SocketAddr = bind
        .parse()
        .map_err(|_| format!("BIND={bind:?} is not an address such as 127.0.0.1:8000"))?;
    let x_tenant = settings.http.x_tenant;
    let mut state = AppState::new(saas, settings.http);
    if let Some(j) = &jobs {
        state = state.with_jobs(j.clone());
    }
    let app = saas_http::router(state);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let local = listener.local_addr()?;
    let shown = if local.ip().is_unspecified() {
        format!("127.0.0.1:{}", local.port())
    } else {
        local.to_string()
    };
    println!("saas-server listening on http://{local}");
    println!("Register a first tenant:");
    println!(
        "  curl -X POST http://{shown}/api/register/ -H 'Content-Type: application/json' \\\n    \
         -d '{{\"company_name\": \"Acme Corp\", \"schema_name\": \"acme\", \"domain_url\": \"acme.localhost\", \
         \"admin_username\": \"admin\", \"admin_email\": \"admin@acme.com\", \
         \"admin_password\": \"securepassword123\", \"subscription_plan\": \"basic\"}}'"
    );
    println!("Then talk to it as that tenant:");
    println!(
        "  curl -X POST http://{shown}/api/token/ -H 'Host: acme.localhost' -H 'Content-Type: application/json' \\\n    \
         -d '{{\"username\": \"admin\", \"password\": \"securepassword123\"}}'"
    );
    if x_tenant {
        println!("  (or send `X-Tenant: acme` instead of the Host header)");
    }
    println!("API description: http://{shown}/api/openapi.json");
    let shutdown = Shutdown::on_signals();
    let http = axum::serve(listener, app).with_graceful_shutdown(shutdown.clone().wait());
    let worker = async {
        match (jobs, background) {
            (Some(jobs), Some(args)) => run_background(jobs, args, shutdown.clone()).await,
            _ => Ok(()),
        }
    };
    let (served, worked) = tokio::join!(async { http.await.map_err(BoxError::from) }, worker);
    served?;
    worked?;
    tracing::info!("stopped");
    Ok(())
}

async fn migrate(store: Arc<dyn Store>) -> Result<bool, BoxError> {
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{spinner} migrating [{bar:40}] {pos}/{len} tenants {msg}")
            .map_err(|e| format!("progress template: {e}"))?
            .progress_chars("=> "),
    );
    bar.enable_steady_tick(Duration::from_millis(120));
    let progress_bar = bar.clone();
    let progress = move |p: MigrationProgress| {
        progress_bar.set_length(p.total);
        progress_bar.set_position(p.done);
        progress_bar.set_message(p.slug);
    };
    let report = store.migrate(&progress).await;
    bar.finish_and_clear();
    let report = report?;
    println!(
        "migrated {} of {} tenants ({} already current, {} failed)",
        report.migrated,
        report.tenants,
        report.current,
        report.failed.len()
    );
    for (slug, why) in &report.failed {
        eprintln!("  failed: {slug}: {why}");
    }
    Ok(report.failed.is_empty())
}

/// A secret from `env_name`, else the first line of standard input
/// (prompting when it is a terminal).
fn secret_input(env_name: &str, prompt: &str) -> Result<String, BoxError> {
    if let Some(v) = std::env::var(env_name).ok().filter(|v| !v.is_empty()) {
        return Ok(v);
    }
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprint!("{prompt} (input is shown; set {env_name} to avoid typing it): ");
        std::io::stderr().flush()?;
    }
    let mut line = String::new();
    stdin.lock().read_line(&mut line)?;
    let line = line.trim_end_matches(['\n', '\r']).to_owned();
    if line.is_empty() {
        return Err(
            format!("no password given: set {env_name} or pipe it on standard input").into(),
        );
    }
    Ok(line)
}

fn report(e: &saas_core::Error) -> String {
    match e {
        saas_core::Error::Invalid { fields } => fields
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect::<Vec<_>>()
            .join("; "),
        other => chain(other),
    }
}

async fn run(cli: Cli) -> Result<ExitCode, BoxError> {
    let settings = Settings::from_env(&cli.data_dir)?;
    init_tracing(settings.debug);
    let command = match cli.command {
        Some(c) => c,
        None => default_serve()?,
    };
    let storage = open_store(&settings, cli.data_dir.clone()).await?;
    match command {
        Command::Serve { no_worker, worker } => {
            let saas = build_saas(&settings, &storage)?;
            let jobs = build_jobs(saas.clone(), storage.queue.clone(), cli.test_jobs)?;
            let run_worker = !no_worker && env_bool_or("RUN_WORKER", true)?;
            if !run_worker {
                tracing::info!(
                    "no worker in this process: run `saas-server worker` to process jobs"
                );
            }
            serve(
                settings,
                saas,
                Some(jobs),
                run_worker.then_some(worker),
                &cli.bind,
            )
            .await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Worker { worker, until_idle } => {
            let saas = build_saas(&settings, &storage)?;
            let jobs = build_jobs(saas, storage.queue.clone(), cli.test_jobs)?;
            if until_idle {
                let lease = Duration::from_secs(worker.lease_seconds);
                let config = WorkerConfig {
                    concurrency: usize::from(worker.concurrency),
                    lease,
                    heartbeat_interval: lease / 3,
                    ..WorkerConfig::default()
                };
                let stats = jobs.worker(config).run_until_idle().await;
                println!(
                    "ran {} jobs: {} succeeded, {} to retry, {} dead",
                    stats.claimed, stats.succeeded, stats.retried, stats.dead
                );
            } else {
                run_background(jobs, worker, Shutdown::on_signals()).await?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Migrate => Ok(if migrate(storage.store).await? {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        }),
        Command::CreateTenant {
            company_name,
            schema_name,
            domain_url,
            admin_username,
            admin_email,
            admin_password,
            subscription_plan,
        } => {
            let saas = build_saas(&settings, &storage)?;
            let admin_password = match admin_password {
                Some(p) => p,
                None => secret_input("SAAS_ADMIN_PASSWORD", "Admin password")?,
            };
            let registration = Registration {
                company_name,
                schema_name,
                domain_url: domain_url.clone(),
                admin_username,
                admin_email,
                admin_password,
                subscription_plan,
            };
            match saas.register(registration).await {
                Ok((tenant, admin)) => {
                    println!(
                        "created tenant {} ({}) on plan {} at {} with admin {} (id {})",
                        tenant.slug, tenant.id, tenant.plan, domain_url, admin.username, admin.id
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    eprintln!("error: {}", report(&e));
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        Command::Createsuperuser { username, email } => {
            let saas = build_saas(&settings, &storage)?;
            let password = secret_input("SAAS_SUPERUSER_PASSWORD", "Password")?;
            match saas.create_superuser(&username, &email, &password).await {
                Ok(su) => {
                    println!("created superuser {} (id {})", su.username, su.id);
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    eprintln!("error: {}", report(&e));
                    Ok(ExitCode::FAILURE)
                }
            }
        }
    }
}

fn main() -> ExitCode {
    // A missing .env is normal; a malformed one is worth saying.
    if let Err(e) = dotenvy::dotenv()
        && !e.not_found()
    {
        eprintln!("warning: ignoring .env: {e}");
    }
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", chain(e.as_ref()));
            ExitCode::FAILURE
        }
    }
}
