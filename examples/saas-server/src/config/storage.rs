//! Where the data lives: DATABASE_URL (or the seed's DATABASE_* parts),
//! the pooler flag, and the SQLite directory.

use std::path::{Path, PathBuf};

use clap::Args;

use super::parse::{ConfigError, Secret, boolean, given, secret};

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
    /// Seconds a request waits for a PostgreSQL connection before it is
    /// answered 503 with Retry-After (a database that is down or overloaded
    /// fails fast instead of holding every request).
    #[arg(long, env = "DATABASE_CONNECT_TIMEOUT", global = true, value_name = "SECONDS",
          default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..=300))]
    pub(crate) database_connect_timeout: u64,
    /// Directory of the SQLite databases when DATABASE_URL is not PostgreSQL.
    #[arg(long, env = "DATA_DIR", global = true, default_value = "./data")]
    pub(crate) data_dir: PathBuf,
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
        /// Longest wait for a pooled connection.
        connect_timeout: std::time::Duration,
    },
    /// One file per tenant under `dir`.
    Sqlite {
        /// The directory of the catalog, queue and tenant files.
        dir: PathBuf,
    },
}

impl Database {
    pub(super) fn from_settings(s: &StorageSettings) -> Result<Database, ConfigError> {
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
                connect_timeout: std::time::Duration::from_secs(s.database_connect_timeout),
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
