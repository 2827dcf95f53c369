//! This backend's errors, and how they map into [`saas_core::Error`].

use saas_core::{Entity, Error};

/// What can go wrong inside the PostgreSQL backend.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PgError {
    /// The database refused or failed a statement, or the connection broke.
    #[error("database operation failed")]
    Sqlx {
        /// What sqlx reported.
        #[from]
        source: sqlx::Error,
    },
    /// A tenant is recorded in a database this store was not configured with.
    #[error("database {name:?} is not configured")]
    UnknownDatabase {
        /// The database name recorded in the catalog.
        name: String,
    },
    /// A stored value does not parse as its domain type (someone wrote to
    /// the tables behind the backend's back).
    #[error("stored value in column {column} is malformed")]
    Corrupt {
        /// The column holding the value.
        column: &'static str,
    },
    /// The configuration cannot work.
    #[error("invalid configuration: {reason}")]
    Config {
        /// What is wrong.
        reason: &'static str,
    },
    /// The host applications' migrations cannot run on this backend.
    #[error("host application migrations")]
    Apps {
        /// What is wrong with them.
        #[source]
        source: Error,
    },
    /// A tenant schema is at a version newer than this build knows and not
    /// compatible with it (a version above this build's is not additive;
    /// see [`saas_core::migration`]): a newer release wrote it, and using
    /// it could misread or lose data.
    #[error(
        "tenant schema {schema} is at version {found}, newer than the {known} this build knows; \
         only builds that know version {compatible_from} or later may use it"
    )]
    SchemaTooNew {
        /// The schema.
        schema: String,
        /// Its version in the ledger.
        found: i32,
        /// The oldest version whose build may use it.
        compatible_from: i32,
        /// The newest version this build knows.
        known: i32,
    },
    /// A number read from or sent to the database is out of range.
    #[error("number out of range in {what}")]
    OutOfRange {
        /// Which value.
        what: &'static str,
    },
}

impl From<PgError> for Error {
    fn from(e: PgError) -> Self {
        match e {
            PgError::Sqlx { source } => map_sqlx(source),
            other => Error::backend(other),
        }
    }
}

/// Unique constraints and the conflict each one means.
const UNIQUE: &[(&str, Entity, &str)] = &[
    ("tenants_pkey", Entity::Tenant, "id"),
    ("tenants_slug_key", Entity::Tenant, "slug"),
    ("domains_pkey", Entity::Domain, "hostname"),
    ("superusers_username_key_key", Entity::Superuser, "username"),
    ("users_username_key_key", Entity::User, "username"),
];

/// Foreign keys and the missing thing a violation means.
const FOREIGN: &[(&str, Entity)] = &[
    ("tasks_project_id_fkey", Entity::Project),
    ("tasks_assigned_to_fkey", Entity::User),
    ("tasks_created_by_fkey", Entity::User),
    ("projects_owner_id_fkey", Entity::User),
    ("project_members_project_id_fkey", Entity::Project),
    ("project_members_user_id_fkey", Entity::User),
    ("refresh_tokens_user_id_fkey", Entity::User),
    ("domains_tenant_id_fkey", Entity::Tenant),
];

/// Maps a sqlx error to the core vocabulary: an unreachable server is
/// unavailable and a full disk is full storage, unique violations become
/// conflicts, dangling references and vanished tenant storage become
/// not-found, everything else stays a backend error with its source.
pub(crate) fn map_sqlx(e: sqlx::Error) -> Error {
    match &e {
        // No connection, or it broke: the server is down, restarting or
        // unreachable (the pool's acquire timeout bounds the wait).
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => {
            return Error::unavailable(PgError::Sqlx { source: e });
        }
        sqlx::Error::Database(db) => match db.code().as_deref() {
            // Connection exceptions (class 08), shutdowns and a server
            // that is starting up.
            Some(c) if c.starts_with("08") || matches!(c, "57P01" | "57P02" | "57P03") => {
                return Error::unavailable(PgError::Sqlx { source: e });
            }
            // disk_full
            Some("53100") => return Error::storage_full(PgError::Sqlx { source: e }),
            _ => {}
        },
        _ => {}
    }
    if let sqlx::Error::Database(db) = &e {
        let code = db.code();
        let constraint = db.constraint();
        match code.as_deref() {
            Some("23505") => {
                if let Some(&(_, entity, field)) =
                    UNIQUE.iter().find(|(name, _, _)| Some(*name) == constraint)
                {
                    return Error::Conflict { entity, field };
                }
            }
            Some("23503") => {
                if let Some(&(_, entity)) =
                    FOREIGN.iter().find(|(name, _)| Some(*name) == constraint)
                {
                    return Error::NotFound { entity };
                }
            }
            // The tenant's schema already exists: its slug is taken, even if
            // the catalog row is gone (storage left by an older failure).
            Some("42P06") => {
                return Error::Conflict {
                    entity: Entity::Tenant,
                    field: "slug",
                };
            }
            // Undefined table or schema: the tenant's storage was dropped
            // while a handle to it was still around.
            Some("42P01") | Some("3F000") => return Error::not_found(Entity::Tenant),
            _ => {}
        }
    }
    Error::backend(PgError::Sqlx { source: e })
}

/// Shorthand used everywhere a sqlx call is awaited.
pub(crate) trait SqlxResultExt<T> {
    /// Maps the error into [`saas_core::Error`].
    fn db(self) -> Result<T, Error>;
}

impl<T> SqlxResultExt<T> for Result<T, sqlx::Error> {
    fn db(self) -> Result<T, Error> {
        self.map_err(map_sqlx)
    }
}

/// A malformed stored value.
pub(crate) fn corrupt(column: &'static str) -> Error {
    Error::backend(PgError::Corrupt { column })
}
