//! The server's configuration. Every setting is a command-line option that
//! also reads an environment variable (or `.env`) named as in the seed's
//! `.env.example`; a flag wins over the environment.
//!
//! [`Settings`] is what the operator gave, as clap parsed it. [`Config`] is
//! what the program runs with: [`Config::load`] checks the settings as a
//! whole at start, so a value no command could use stops every command
//! before it touches storage. An empty variable counts as unset, and values
//! are trimmed, as the seed's settings module reads them.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::{Args, FromArgMatches};
use saas_core::jobs::mail::SmtpConfig;
use saas_core::tenancy::Hostname;
use saas_http::{CorsOrigins, HttpConfig};

use crate::signing_key::SigningKey;

/// A configuration no command can run with; the message names the setting.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct ConfigError(pub(crate) String);

/// A value that must not be shown: `Debug` prints `***`.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Secret(pub(crate) String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

fn secret(value: &str) -> Result<Secret, std::convert::Infallible> {
    Ok(Secret(value.to_owned()))
}

/// A yes/no setting: `1`, `true`, `yes`, `on` or `0`, `false`, `no`, `off`
/// in any case; empty is `EMPTY` (the setting's default).
fn boolean<const EMPTY: bool>(value: &str) -> Result<bool, String> {
    match value.trim().to_ascii_lowercase().as_str() {
        "" => Ok(EMPTY),
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        other => Err(format!("{other:?} is not a boolean (true/false)")),
    }
}

/// The trimmed value, or `None` when unset or blank.
fn given(value: Option<&str>) -> Option<&str> {
    value.map(str::trim).filter(|v| !v.is_empty())
}

/// A comma-separated list, trimmed, without empty items.
fn list(value: Option<&str>) -> Vec<String> {
    given(value)
        .map(|v| {
            v.split(',')
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

/// Every setting of every command, as given.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Core")]
pub(crate) struct Settings {
    /// Development mode: more logging, and a fixed, PUBLIC signing key when
    /// SECRET_KEY is unset. Never in production.
    #[arg(long, env = "DEBUG", global = true, value_name = "BOOL",
          default_value = "false", value_parser = boolean::<false>)]
    pub(crate) debug: bool,
    /// Token-signing secret, at least 32 bytes; required with PostgreSQL.
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
    pub(crate) logging: LoggingSettings,
    #[command(flatten)]
    pub(crate) email: EmailSettings,
}

/// Where the data lives.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Storage")]
pub(crate) struct StorageSettings {
    /// postgres://user:password@host:5432/db for PostgreSQL (one schema per
    /// tenant); sqlite://DIR, or unset, for SQLite (one file per tenant).
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true,
          value_name = "URL", value_parser = secret)]
    pub(crate) database_url: Option<Secret>,
    /// PostgreSQL host, when DATABASE_URL is unset (the seed's split settings).
    #[arg(long, env = "DATABASE_HOST", global = true, value_name = "HOST")]
    pub(crate) database_host: Option<String>,
    /// PostgreSQL port, with DATABASE_HOST [default: 5432].
    #[arg(long, env = "DATABASE_PORT", global = true, value_name = "PORT")]
    pub(crate) database_port: Option<String>,
    /// PostgreSQL database, with DATABASE_HOST [default: saas].
    #[arg(long, env = "DATABASE_NAME", global = true, value_name = "NAME")]
    pub(crate) database_name: Option<String>,
    /// PostgreSQL user, with DATABASE_HOST [default: postgres].
    #[arg(long, env = "DATABASE_USER", global = true, value_name = "USER")]
    pub(crate) database_user: Option<String>,
    /// PostgreSQL password, with DATABASE_HOST.
    #[arg(long, env = "DATABASE_PASSWORD", global = true, hide_env_values = true,
          value_name = "PASSWORD", value_parser = secret)]
    pub(crate) database_password: Option<Secret>,
    /// PostgreSQL is reached through a transaction-mode pooler (PgBouncer):
    /// every unit of work is a transaction, no statement is named, and
    /// workers poll instead of listening.
    #[arg(long, env = "DATABASE_TRANSACTION_POOLER", global = true, value_name = "BOOL",
          default_value = "false", value_parser = boolean::<false>)]
    pub(crate) database_transaction_pooler: bool,
    /// Directory of the SQLite databases when DATABASE_URL is not PostgreSQL.
    #[arg(long, env = "DATA_DIR", global = true, default_value = "./data")]
    pub(crate) data_dir: PathBuf,
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

/// What the logs show, and how.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Logging")]
pub(crate) struct LoggingSettings {
    /// Log filter, e.g. `info,tower_http=debug` [default: info, more with DEBUG].
    #[arg(long, env = "RUST_LOG", global = true, value_name = "FILTER")]
    pub(crate) log_filter: Option<String>,
    /// `json` for one JSON object a line; anything else is text.
    #[arg(long, env = "LOG_FORMAT", global = true, value_name = "FORMAT")]
    pub(crate) log_format: Option<String>,
}

/// How email leaves (the seed's, that is Django's, names).
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Email")]
pub(crate) struct EmailSettings {
    /// smtp, console (log only) or file (log and append to EMAIL_FILE_PATH);
    /// Django's django.core.mail.backends.*.EmailBackend names work too
    /// [default: console].
    #[arg(long, env = "EMAIL_BACKEND", global = true, value_name = "BACKEND")]
    pub(crate) email_backend: Option<String>,
    /// For the file backend (or with console, in addition): a file, or a
    /// directory to hold emails.jsonl.
    #[arg(long, env = "EMAIL_FILE_PATH", global = true, value_name = "PATH")]
    pub(crate) email_file_path: Option<String>,
    /// Sender of every email [default: webmaster@localhost].
    #[arg(
        long,
        env = "DEFAULT_FROM_EMAIL",
        global = true,
        value_name = "ADDRESS"
    )]
    pub(crate) default_from_email: Option<String>,
    /// SMTP relay [default: localhost].
    #[arg(long, env = "EMAIL_HOST", global = true, value_name = "HOST")]
    pub(crate) email_host: Option<String>,
    /// SMTP port [default: 25; 587 with EMAIL_USE_TLS, 465 with EMAIL_USE_SSL].
    #[arg(long, env = "EMAIL_PORT", global = true, value_name = "PORT")]
    pub(crate) email_port: Option<String>,
    /// STARTTLS, required (submission, port 587).
    #[arg(long, env = "EMAIL_USE_TLS", global = true, value_name = "BOOL")]
    pub(crate) email_use_tls: Option<String>,
    /// TLS from the first byte (port 465); not with EMAIL_USE_TLS.
    #[arg(long, env = "EMAIL_USE_SSL", global = true, value_name = "BOOL")]
    pub(crate) email_use_ssl: Option<String>,
    /// Seconds each SMTP command may take [default: 30].
    #[arg(long, env = "EMAIL_TIMEOUT", global = true, value_name = "SECONDS")]
    pub(crate) email_timeout: Option<String>,
    /// SMTP user (unset: no authentication).
    #[arg(long, env = "EMAIL_HOST_USER", global = true, value_name = "USER")]
    pub(crate) email_host_user: Option<String>,
    /// SMTP password.
    #[arg(long, env = "EMAIL_HOST_PASSWORD", global = true, hide_env_values = true,
          value_name = "PASSWORD", value_parser = secret)]
    pub(crate) email_host_password: Option<Secret>,
}

impl EmailSettings {
    /// The setting named `name`, for [`SmtpConfig::from_lookup`], which
    /// holds the SMTP defaults and checks.
    fn var(&self, name: &str) -> Option<String> {
        let value = match name {
            "EMAIL_HOST" => self.email_host.as_deref(),
            "EMAIL_PORT" => self.email_port.as_deref(),
            "EMAIL_USE_TLS" => self.email_use_tls.as_deref(),
            "EMAIL_USE_SSL" => self.email_use_ssl.as_deref(),
            "EMAIL_TIMEOUT" => self.email_timeout.as_deref(),
            "EMAIL_HOST_USER" => self.email_host_user.as_deref(),
            "EMAIL_HOST_PASSWORD" => self.email_host_password.as_ref().map(|s| s.0.as_str()),
            "DEFAULT_FROM_EMAIL" => self.default_from_email.as_deref(),
            _ => None,
        };
        value.map(str::to_owned)
    }
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
    /// Seconds shutdown waits for running jobs before leaving them to lease expiry.
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

/// The storage backend and where it is.
#[derive(Debug, Clone)]
pub(crate) enum Database {
    /// One schema per tenant.
    Postgres {
        /// The connection URL (it may hold a password).
        url: Secret,
        /// Reached through a transaction-mode pooler.
        transaction_pooler: bool,
    },
    /// One file per tenant under `dir`.
    Sqlite {
        /// The directory of the catalog, queue and tenant files.
        dir: PathBuf,
    },
}

impl Database {
    fn from_settings(s: &StorageSettings) -> Result<Database, ConfigError> {
        let url = match s.database_url.as_ref().and_then(|u| given(Some(&u.0))) {
            Some(url) => url.to_owned(),
            None => match given(s.database_host.as_deref()) {
                Some(host) => url_from_parts(s, host),
                None => {
                    return Ok(Database::Sqlite {
                        dir: s.data_dir.clone(),
                    });
                }
            },
        };
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Database::Postgres {
                url: Secret(url),
                transaction_pooler: s.database_transaction_pooler,
            });
        }
        match url.strip_prefix("sqlite://") {
            Some(dir) => Ok(Database::Sqlite {
                dir: PathBuf::from(dir),
            }),
            None => Err(ConfigError(format!(
                "DATABASE_URL must start with postgres://, postgresql:// or sqlite:// (got {:?})",
                url.split(':').next().unwrap_or("")
            ))),
        }
    }

    /// The SQLite directory, or `None` on PostgreSQL.
    pub(crate) fn sqlite_dir(&self) -> Option<&Path> {
        match self {
            Database::Sqlite { dir } => Some(dir),
            Database::Postgres { .. } => None,
        }
    }
}

/// A URL from the seed's `DATABASE_HOST`, `DATABASE_PORT`, `DATABASE_NAME`,
/// `DATABASE_USER` and `DATABASE_PASSWORD`.
fn url_from_parts(s: &StorageSettings, host: &str) -> String {
    let port = given(s.database_port.as_deref()).unwrap_or("5432");
    let name = given(s.database_name.as_deref()).unwrap_or("saas");
    let user = given(s.database_user.as_deref()).unwrap_or("postgres");
    let password = s.database_password.as_ref().and_then(|p| given(Some(&p.0)));
    let auth = match password {
        Some(pw) => format!("{}:{}", percent_encode(user), percent_encode(pw)),
        None => percent_encode(user),
    };
    format!("postgres://{auth}@{host}:{port}/{name}")
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

/// Where email goes.
#[derive(Debug, Clone)]
pub(crate) enum Mail {
    /// Sent through an SMTP relay.
    Smtp(SmtpConfig),
    /// Logged, and appended as JSON lines to `file` when there is one.
    Log {
        /// EMAIL_BACKEND as given (for messages).
        backend: String,
        /// The sender.
        from: String,
        /// EMAIL_FILE_PATH: a file, or a directory for `emails.jsonl`.
        file: Option<PathBuf>,
    },
}

impl Mail {
    fn from_settings(s: &EmailSettings) -> Result<Mail, ConfigError> {
        let backend = given(s.email_backend.as_deref()).unwrap_or("console");
        let kind = backend
            .strip_suffix(".EmailBackend")
            .map_or(backend, |m| m.rsplit('.').next().unwrap_or(m))
            .to_ascii_lowercase();
        let file = given(s.email_file_path.as_deref()).map(PathBuf::from);
        match kind.as_str() {
            "smtp" => SmtpConfig::from_lookup(|name| s.var(name))
                .map(Mail::Smtp)
                .map_err(|e| ConfigError(e.to_string())),
            "console" | "filebased" | "file" => {
                if file.is_none() && kind != "console" {
                    return Err(ConfigError(format!(
                        "EMAIL_BACKEND={backend:?} needs EMAIL_FILE_PATH"
                    )));
                }
                Ok(Mail::Log {
                    backend: backend.to_owned(),
                    from: given(s.default_from_email.as_deref())
                        .unwrap_or("webmaster@localhost")
                        .to_owned(),
                    file,
                })
            }
            _ => Err(ConfigError(format!(
                "EMAIL_BACKEND={backend:?} is not supported: use smtp, console or file \
                 (or Django's django.core.mail.backends.{{smtp,console,filebased}}.EmailBackend)"
            ))),
        }
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
    /// Tenants resolve as subdomains of this.
    pub(crate) base_domain: Option<Hostname>,
    /// RUST_LOG, when given.
    pub(crate) log_filter: Option<String>,
    /// Logs are JSON lines.
    pub(crate) log_json: bool,
    /// Where email goes.
    pub(crate) mail: Mail,
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
        let signing_key = SigningKey::choose(s.secret_key.as_ref(), s.debug, &database)?;
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
        Ok(Config {
            debug: s.debug,
            signing_key,
            bind,
            database,
            data_dir: s.storage.data_dir.clone(),
            http: HttpConfig {
                x_tenant: s.tenancy.enable_x_tenant,
                cors,
                allowed_hosts: list(s.allowed_hosts.as_deref()),
                trust_forwarded_proto: s.trust_x_forwarded_proto,
                ..HttpConfig::default()
            },
            base_domain,
            log_filter: given(s.logging.log_filter.as_deref()).map(str::to_owned),
            log_json: given(s.logging.log_format.as_deref())
                .is_some_and(|f| f.eq_ignore_ascii_case("json")),
            mail: Mail::from_settings(&s.email)?,
        })
    }
}
