//! `saas-server`: the example server of `saas`.
//!
//! Configured from environment variables (and an optional `.env` file), with
//! the seed's names where they apply; see `.env.example` at the repository
//! root. Defaults to SQLite under `./data`.
//!
//! ```text
//! saas-server                  # = serve
//! saas-server serve --bind 0.0.0.0:8000
//! saas-server migrate
//! saas-server create-tenant --company-name "Acme Corp" --schema-name acme \
//!     --domain-url acme.localhost --admin-username admin --admin-email admin@acme.com
//! SAAS_SUPERUSER_PASSWORD=... saas-server createsuperuser --username root --email root@example.com
//! ```

use std::io::{BufRead, IsTerminal, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use saas_core::Saas;
use saas_core::service::Registration;
use saas_core::store::{MigrationProgress, Store};
use saas_core::tenancy::Hostname;
use saas_http::{AppState, CorsOrigins, HttpConfig};
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
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the REST API (the default).
    Serve,
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
    /// Run background jobs (not available yet).
    Worker,
}

/// Settings read from the environment.
#[derive(Debug)]
struct Settings {
    debug: bool,
    secret: String,
    database_url: Option<String>,
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
    match env(name).map(|v| v.to_ascii_lowercase()) {
        None => Ok(false),
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

impl Settings {
    fn from_env() -> Result<Settings, String> {
        let debug = env_bool("DEBUG")?;
        let secret = match env("SECRET_KEY") {
            Some(s) => s,
            None if debug => {
                eprintln!(
                    "\n  WARNING: SECRET_KEY is not set; DEBUG is on, so a fixed, PUBLIC development key\n  \
                     is used. Anyone can forge tokens for this server. Never run it like this in production.\n"
                );
                DEV_SECRET.to_owned()
            }
            None => {
                return Err(
                    "SECRET_KEY is required (at least 32 bytes; e.g. `openssl rand -hex 32`), \
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
            database_url: database_url(),
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

async fn open_store(settings: &Settings, data_dir: PathBuf) -> Result<Arc<dyn Store>, BoxError> {
    match &settings.database_url {
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            tracing::info!("storage: PostgreSQL (one schema per tenant)");
            let store = saas_store_postgres::PgStore::connect_url(url).await?;
            Ok(Arc::new(store))
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
            Ok(Arc::new(store))
        }
    }
}

fn build_saas(settings: &Settings, store: Arc<dyn Store>) -> Result<Saas, BoxError> {
    let mut builder = Saas::builder(store).secret(settings.secret.as_bytes());
    if let Some(b) = &settings.base_domain {
        builder = builder.base_domain(b.clone());
    }
    Ok(builder.build()?)
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
    tracing::info!("shutting down: finishing in-flight requests");
}

async fn serve(settings: Settings, saas: Saas, bind: &str) -> Result<(), BoxError> {
    let addr: SocketAddr = bind
        .parse()
        .map_err(|_| format!("BIND={bind:?} is not an address such as 127.0.0.1:8000"))?;
    let x_tenant = settings.http.x_tenant;
    let app = saas_http::router(AppState::new(saas, settings.http));
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
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await?;
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
    let settings = Settings::from_env()?;
    init_tracing(settings.debug);
    let command = cli.command.unwrap_or(Command::Serve);
    if matches!(command, Command::Worker) {
        eprintln!(
            "error: `saas-server worker` is not available yet: the job queue is not built into this server"
        );
        return Ok(ExitCode::from(2));
    }
    let store = open_store(&settings, cli.data_dir.clone()).await?;
    match command {
        Command::Serve => {
            let saas = build_saas(&settings, store)?;
            serve(settings, saas, &cli.bind).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Migrate => Ok(if migrate(store).await? {
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
            let saas = build_saas(&settings, store)?;
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
            let saas = build_saas(&settings, store)?;
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
        Command::Worker => Ok(ExitCode::from(2)),
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
