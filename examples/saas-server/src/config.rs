//! The server's configuration. Every setting is a command-line option that
//! also reads an environment variable (or `.env`) named as in the seed's
//! `.env.example`; a flag wins over the environment.
//!
//! [`Settings`] is what the operator gave, as clap parsed it. [`Config`] is
//! what the program runs with: [`Config::load`] checks the settings as a
//! whole at start, so a value no command could use stops every command
//! before it touches storage. An empty variable counts as unset, and values
//! are trimmed, as the seed's settings module reads them.

mod data;
mod edge;
mod email;
mod parse;
mod signing_key;
mod storage;

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, FromArgMatches};
use saas_core::tenancy::Hostname;
use saas_http::{CorsOrigins, HttpConfig, MetricsToken, ServerLimits};

pub(crate) use self::data::{Data, DataSettings};
use self::edge::{Edge, EdgeSettings};
pub(crate) use self::email::{EmailSettings, Mail};
pub(crate) use self::parse::{ConfigError, Secret};
use self::parse::{boolean, given, list, secret};
pub(crate) use self::signing_key::SigningKey;
pub(crate) use self::storage::{Database, StorageSettings};

/// Every setting of every command, as given.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Core")]
pub(crate) struct Settings {
    /// Development mode: more logging. It never weakens the signing key.
    #[arg(long, env = "DEBUG", global = true, value_name = "BOOL",
          default_value = "false", value_parser = boolean::<false>)]
    pub(crate) debug: bool,
    /// Token-signing secret: at least 32 random-looking bytes (`openssl rand
    /// -hex 32`), not a key published anywhere; required with PostgreSQL.
    /// On SQLite, when unset, one is generated and kept in DATA_DIR/secret_key.
    /// Prefer the environment: other users can read the process list.
    #[arg(long, env = "SECRET_KEY", global = true, hide_env_values = true,
          value_parser = secret)]
    pub(crate) secret_key: Option<Secret>,
    /// Address to listen on.
    #[arg(long, env = "BIND", global = true, default_value = "127.0.0.1:8000")]
    pub(crate) bind: String,
    /// Hosts served, comma-separated: `example.com` exactly, `.example.com`
    /// for it and every subdomain, `*` for any. Empty: any host.
    #[arg(long, env = "ALLOWED_HOSTS", global = true, value_name = "HOSTS")]
    pub(crate) allowed_hosts: Option<String>,
    /// Hosts that serve the platform console at /console/, comma-separated,
    /// matched as ALLOWED_HOSTS is. Empty: every host that is no tenant's.
    #[arg(long, env = "PLATFORM_HOSTS", global = true, value_name = "HOSTS")]
    pub(crate) platform_hosts: Option<String>,
    /// Minutes a console session may sit idle before it ends.
    #[arg(long, env = "CONSOLE_IDLE_MINUTES", global = true, value_name = "MINUTES",
          default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=10080))]
    pub(crate) console_idle_minutes: u64,
    /// Browser origins allowed by CORS, comma-separated (`*` for any).
    /// Empty: no CORS.
    #[arg(
        long,
        env = "CORS_ALLOWED_ORIGINS",
        global = true,
        value_name = "ORIGINS"
    )]
    pub(crate) cors_allowed_origins: Option<String>,
    /// Build https:// pagination links when a proxy sets X-Forwarded-Proto: https.
    #[arg(long, env = "TRUST_X_FORWARDED_PROTO", global = true, value_name = "BOOL",
          default_value = "false", value_parser = boolean::<false>)]
    pub(crate) trust_x_forwarded_proto: bool,
    #[command(flatten)]
    pub(crate) storage: StorageSettings,
    #[command(flatten)]
    pub(crate) tenancy: TenancySettings,
    #[command(flatten)]
    pub(crate) edge: EdgeSettings,
    #[command(flatten)]
    pub(crate) logging: LoggingSettings,
    #[command(flatten)]
    pub(crate) email: EmailSettings,
    #[command(flatten)]
    pub(crate) data: DataSettings,
}

/// How a request finds its tenant.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Tenant resolution")]
pub(crate) struct TenancySettings {
    /// acme.<BASE_DOMAIN> resolves to the tenant with slug `acme` even
    /// without a registered domain.
    #[arg(long, env = "BASE_DOMAIN", global = true, value_name = "HOSTNAME")]
    pub(crate) base_domain: Option<String>,
    /// Accept an `X-Tenant: <slug>` header instead of the Host header.
    #[arg(long, env = "ENABLE_X_TENANT", global = true, value_name = "BOOL",
          default_value = "false", value_parser = boolean::<false>)]
    pub(crate) enable_x_tenant: bool,
}

/// What the logs show, and how; who may read the metrics.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Logging and metrics")]
pub(crate) struct LoggingSettings {
    /// Log filter, e.g. `info,tower_http=debug` [default: info, more with DEBUG].
    #[arg(long, env = "RUST_LOG", global = true, value_name = "FILTER")]
    pub(crate) log_filter: Option<String>,
    /// `json` for one JSON object a line; anything else is text.
    #[arg(long, env = "LOG_FORMAT", global = true, value_name = "FORMAT")]
    pub(crate) log_format: Option<String>,
    /// GET /metrics answers loopback clients only; with this bearer token
    /// set, also clients that send `Authorization: Bearer <token>`.
    #[arg(long, env = "METRICS_TOKEN", global = true, hide_env_values = true,
          value_parser = secret)]
    pub(crate) metrics_token: Option<Secret>,
}

/// How the background worker runs (`worker`, and `serve` unless told not to).
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Background jobs")]
pub(crate) struct WorkerSettings {
    /// Most jobs running at once.
    #[arg(long, env = "WORKER_CONCURRENCY", default_value_t = 8,
          value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub(crate) concurrency: u16,
    /// Seconds a claimed job stays leased without a heartbeat; a job whose
    /// worker died runs again this long after its last heartbeat.
    #[arg(long, env = "WORKER_LEASE_SECONDS", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub(crate) lease_seconds: u64,
    /// Seconds shutdown waits for running jobs; jobs still running then are
    /// given back to the queue at once (no wait for their leases to expire).
    #[arg(long, env = "WORKER_GRACE_SECONDS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(0..=86_400))]
    pub(crate) grace_seconds: u64,
    /// Longest idle sleep between polls, in milliseconds.
    #[arg(long, env = "WORKER_POLL_MS", default_value_t = 1000,
          value_parser = clap::value_parser!(u64).range(10..=60_000))]
    pub(crate) poll_ms: u64,
    /// Do not run the periodic schedule (overdue checks, reminders, cleanup)
    /// in this process (also RUN_SCHEDULER=false).
    #[arg(long)]
    pub(crate) no_scheduler: bool,
    /// Run the periodic schedule in this process; `--no-scheduler` wins.
    #[arg(long, env = "RUN_SCHEDULER", value_name = "BOOL", default_value = "true",
          action = clap::ArgAction::Set,
          value_parser = boolean::<true>)]
    pub(crate) run_scheduler: bool,
}

impl WorkerSettings {
    /// Whether this process runs the periodic schedule.
    pub(crate) fn scheduler(&self) -> bool {
        self.run_scheduler && !self.no_scheduler
    }
}

/// What `serve` runs besides the API.
#[derive(Debug, Clone, Args)]
pub(crate) struct ServeSettings {
    /// Serve the API only; run `saas-server worker` separately (also RUN_WORKER=false).
    #[arg(long)]
    pub(crate) no_worker: bool,
    /// Run a background worker and the schedule in the server's process;
    /// `--no-worker` wins.
    #[arg(long, env = "RUN_WORKER", value_name = "BOOL", default_value = "true",
          action = clap::ArgAction::Set,
          value_parser = boolean::<true>)]
    pub(crate) run_worker: bool,
    #[command(flatten)]
    pub(crate) worker: WorkerSettings,
}

impl ServeSettings {
    /// `serve` with no flags: the defaults and the environment (what
    /// `saas-server` with no command runs).
    pub(crate) fn from_env() -> Result<ServeSettings, ConfigError> {
        let command = ServeSettings::augment_args(clap::Command::new("serve"));
        command
            .try_get_matches_from(["serve"])
            .and_then(|m| ServeSettings::from_arg_matches(&m))
            .map_err(|e| {
                // clap's own rendering, less its "error: " and usage lines.
                let rendered = e.to_string();
                let first = rendered.lines().next().unwrap_or_default();
                ConfigError(first.trim_start_matches("error: ").to_owned())
            })
    }

    /// Whether `serve` runs a worker in its process.
    pub(crate) fn worker(&self) -> bool {
        self.run_worker && !self.no_worker
    }
}

/// The configuration every command runs with, checked.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    /// Development mode.
    pub(crate) debug: bool,
    /// Where the token-signing key comes from.
    pub(crate) signing_key: SigningKey,
    /// Where `serve` listens.
    pub(crate) bind: SocketAddr,
    /// The storage backend.
    pub(crate) database: Database,
    /// DATA_DIR as given (used by SQLite only).
    pub(crate) data_dir: PathBuf,
    /// The HTTP layer's settings.
    pub(crate) http: HttpConfig,
    /// What `serve` takes on: header timeout and connection cap.
    pub(crate) limits: ServerLimits,
    /// Tenants resolve as subdomains of this.
    pub(crate) base_domain: Option<Hostname>,
    /// RUST_LOG, when given.
    pub(crate) log_filter: Option<String>,
    /// Logs are JSON lines.
    pub(crate) log_json: bool,
    /// Where email goes.
    pub(crate) mail: Mail,
    /// Retention and job limits.
    pub(crate) data: Data,
}

impl Config {
    /// The log filter without RUST_LOG: `info`, and more of the HTTP layer
    /// with DEBUG.
    pub(crate) fn default_log_filter(&self) -> &'static str {
        if self.debug {
            "info,saas_http=debug,tower_http=debug"
        } else {
            "info"
        }
    }

    /// Checks `s` as a whole.
    pub(crate) fn load(s: &Settings) -> Result<Config, ConfigError> {
        let database = Database::from_settings(&s.storage)?;
        let signing_key = SigningKey::choose(s.secret_key.as_ref(), database.sqlite_dir())?;
        let bind = s.bind.trim();
        let bind = bind.parse().map_err(|_| {
            ConfigError(format!(
                "BIND={bind:?} is not an address such as 127.0.0.1:8000"
            ))
        })?;
        let origins = list(s.cors_allowed_origins.as_deref());
        let cors = if origins.iter().any(|o| o == "*") {
            CorsOrigins::Any
        } else if origins.is_empty() {
            CorsOrigins::None
        } else {
            CorsOrigins::List(origins)
        };
        let base_domain = match given(s.tenancy.base_domain.as_deref()) {
            Some(b) => Some(
                Hostname::parse(b)
                    .map_err(|_| ConfigError(format!("BASE_DOMAIN={b:?} is not a hostname")))?,
            ),
            None => None,
        };
        let edge = Edge::from_settings(&s.edge)?;
        let mut http = HttpConfig {
            x_tenant: s.tenancy.enable_x_tenant,
            cors,
            allowed_hosts: list(s.allowed_hosts.as_deref()),
            platform_hosts: list(s.platform_hosts.as_deref()),
            console_idle: std::time::Duration::from_secs(s.console_idle_minutes * 60),
            trust_forwarded_proto: s.trust_x_forwarded_proto,
            metrics_token: s
                .logging
                .metrics_token
                .as_ref()
                .and_then(|t| given(Some(t.0.as_str())))
                .map(MetricsToken::new),
            ..HttpConfig::default()
        };
        edge.apply(&mut http);
        Ok(Config {
            debug: s.debug,
            signing_key,
            bind,
            database,
            data_dir: s.storage.data_dir.clone(),
            http,
            limits: edge.limits,
            base_domain,
            log_filter: given(s.logging.log_filter.as_deref()).map(str::to_owned),
            log_json: given(s.logging.log_format.as_deref())
                .is_some_and(|f| f.eq_ignore_ascii_case("json")),
            mail: Mail::from_settings(&s.email)?,
            data: Data::from_settings(&s.data)?,
        })
    }
}
