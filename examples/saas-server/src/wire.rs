//! Assembly: logging, the store and its job queue, the service, the mailer
//! and the jobs runtime, each built from the [`Config`].

use std::path::PathBuf;
use std::sync::Arc;

use saas_core::Saas;
use saas_core::apps::Apps;
use saas_core::clock::{Clock, SystemClock};
use saas_core::jobs::builtin::{BuiltinConfig, WelcomeEmailListener};
use saas_core::jobs::mail::{LogMailer, Mailer, SmtpMailer};
use saas_core::jobs::purge::PurgeDeletedTenants;
use saas_core::jobs::{JobQueue, Jobs, JobsBuilder};
use saas_core::store::Store;
use tracing_subscriber::EnvFilter;

use crate::config::{Config, Database, Mail, Secret};
use crate::error::BoxError;
use crate::host::Host;

/// The job kinds a worker of this program runs: given the runtime's
/// builder, registers them. [`builtin_jobs`] unless a [`Host`] or a test
/// adds kinds of its own.
pub type JobKinds = fn(JobsBuilder) -> JobsBuilder;

/// The seed's built-in jobs (emails, reports, overdue checks, cleanup).
pub fn builtin_jobs(builder: JobsBuilder) -> JobsBuilder {
    builder.builtin(BuiltinConfig::default())
}

/// Installs the log subscriber: RUST_LOG, or `info` (more of the HTTP
/// layer with DEBUG); JSON lines with LOG_FORMAT=json.
fn init_logging(config: &Config) {
    let default = config.default_log_filter();
    let filter = match config.log_filter.as_deref().map(EnvFilter::try_new) {
        Some(Ok(filter)) => filter,
        Some(Err(e)) => {
            eprintln!("warning: ignoring RUST_LOG ({e}); logging at {default:?}");
            EnvFilter::new(default)
        }
        None => EnvFilter::new(default),
    };
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    if config.log_json {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// The store and its durable job queue (in the same database: the
/// catalog's for PostgreSQL, `<DATA_DIR>/jobs.sqlite` for SQLite).
pub(crate) struct Storage {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) queue: Arc<dyn JobQueue>,
}

impl Storage {
    /// Connects to (or opens) `database`, creating what is missing, with
    /// the host's `apps` migrated alongside ours.
    pub(crate) async fn open(database: &Database, apps: Apps) -> Result<Storage, BoxError> {
        match database {
            Database::Postgres {
                url,
                transaction_pooler,
                connect_timeout,
            } => {
                tracing::info!("storage: PostgreSQL (one schema per tenant)");
                let mut config = saas_store_postgres::PgConfig::new(url.0.as_str())
                    .with_transaction_pooler(*transaction_pooler)
                    .with_apps(apps);
                config.acquire_timeout = *connect_timeout;
                let store = saas_store_postgres::PgStore::connect(config).await?;
                let queue = saas_store_postgres::PgQueue::for_store(&store).await?;
                Ok(Storage {
                    store: Arc::new(store),
                    queue: Arc::new(queue),
                })
            }
            Database::Sqlite { dir } => {
                tracing::info!(dir = %dir.display(), "storage: SQLite (one file per tenant)");
                let dir = dir.clone();
                let options = saas_store_sqlite::SqliteOptions {
                    apps,
                    ..saas_store_sqlite::SqliteOptions::default()
                };
                let store = tokio::task::spawn_blocking(move || {
                    saas_store_sqlite::SqliteStore::with_options(dir, options)
                })
                .await??;
                let queue = store.queue();
                Ok(Storage {
                    store: Arc::new(store),
                    queue: Arc::new(queue),
                })
            }
        }
    }
}

/// What every command but `config` starts from: the signing key (created
/// on first start where it is kept on disk), logging, open storage, and
/// what the host adds.
pub(crate) struct Wired {
    pub(crate) config: Config,
    key: Secret,
    pub(crate) storage: Storage,
    pub(crate) host: Host,
}

impl Wired {
    /// Reads or creates the key, installs logging, opens the storage.
    pub(crate) async fn start(config: Config, host: Host) -> Result<Wired, BoxError> {
        let key = config.signing_key.key()?;
        init_logging(&config);
        let storage = Storage::open(&config.database, host.apps.clone()).await?;
        Ok(Wired {
            config,
            key,
            storage,
            host,
        })
    }

    /// The service; every new user gets a welcome email job (the seed's
    /// `post_save` signal), and the host's listeners hear every event.
    pub(crate) fn saas(&self) -> Result<Saas, BoxError> {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let mut builder = Saas::builder(self.storage.store.clone())
            .secret(self.key.0.as_bytes())
            .clock(clock.clone());
        if let Some(b) = &self.config.base_domain {
            builder = builder.base_domain(b.clone());
        }
        for listener in &self.host.listeners {
            builder = builder.listener(listener(self.storage.queue.clone(), clock.clone()));
        }
        let welcome = WelcomeEmailListener::new(self.storage.queue.clone(), clock);
        Ok(builder.listener(Arc::new(welcome)).build()?)
    }

    /// The jobs runtime: the host's job kinds over the queue, sending email
    /// through the configured mailer.
    pub(crate) fn jobs(&self, saas: Saas) -> Result<Jobs, BoxError> {
        let builder = Jobs::builder(saas, self.storage.queue.clone())
            .mailer(mailer(&self.config.mail)?)
            .max_pending_per_tenant(self.config.data.max_pending_jobs_per_tenant);
        // The purge of deleted tenants keeps them TENANT_RETENTION_DAYS.
        let retention = self.config.data.tenant_retention;
        Ok((self.host.jobs)(builder)
            .register(PurgeDeletedTenants { retention })
            .build())
    }
}

/// The mailer EMAIL_BACKEND names: SMTP with the `EMAIL_*` settings, or
/// one that logs each message and, given EMAIL_FILE_PATH, also appends it
/// as a JSON line there (a file, or a directory to hold `emails.jsonl`).
fn mailer(mail: &Mail) -> Result<Arc<dyn Mailer>, BoxError> {
    match mail {
        Mail::Smtp(config) => {
            tracing::info!(host = %config.host, port = config.port, starttls = config.use_tls, implicit_tls = config.use_ssl, "email: SMTP");
            Ok(Arc::new(SmtpMailer::new(config)?))
        }
        Mail::Log {
            backend,
            from,
            file,
        } => {
            let mut mailer = LogMailer::new(from.clone());
            match file {
                Some(path) => {
                    let path = if path.is_dir() {
                        path.join("emails.jsonl")
                    } else {
                        PathBuf::from(path)
                    };
                    tracing::info!(file = %path.display(), "email: logged and appended to a file");
                    mailer = mailer.with_file(path);
                }
                None => tracing::info!("email: logged only (EMAIL_BACKEND={backend})"),
            }
            Ok(Arc::new(mailer))
        }
    }
}
