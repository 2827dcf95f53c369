//! The backend's own error type, and how it maps into [`saas_core::Error`].

use std::path::PathBuf;

use saas_core::{Entity, Error};

/// What can go wrong inside the SQLite backend.
///
/// Callers of the [`saas_core::store::Store`] trait see these wrapped in
/// [`Error::Backend`] (the source is kept, so the whole chain can be logged);
/// unique violations and missing rows are translated to
/// [`Error::Conflict`] and [`Error::NotFound`] where they happen, because only
/// there is it known which entity and field collided.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SqliteError {
    /// SQLite reported an error.
    #[error("sqlite operation failed")]
    Sqlite {
        /// The error from rusqlite.
        #[from]
        source: rusqlite::Error,
    },
    /// A file or directory operation failed.
    #[error("file operation on {path} failed")]
    Io {
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The blocking task that ran the database work was cancelled or panicked.
    #[error("blocking database task failed")]
    Blocking {
        /// The runtime's report.
        #[source]
        source: tokio::task::JoinError,
    },
    /// A database file carries a schema version newer than this build knows
    /// and not compatible with it (a version above this build's is not
    /// additive): it was written by a newer release, and touching it could
    /// lose data.
    #[error(
        "{path} has schema version {found}, newer than the {known} this build knows; \
         only builds that know version {compatible_from} or later may use it"
    )]
    SchemaTooNew {
        /// The database file.
        path: PathBuf,
        /// The version found in the file.
        found: i64,
        /// The oldest version whose build may use the file.
        compatible_from: i64,
        /// The newest version this build knows.
        known: i64,
    },
    /// A migration failed; the file stays at its previous version.
    #[error("migration to version {version} of {path} failed")]
    Migration {
        /// The database file.
        path: PathBuf,
        /// The version that could not be reached.
        version: i64,
        /// What SQLite reported.
        #[source]
        source: rusqlite::Error,
    },
    /// A stored value could not be decoded (the file was edited by hand or is
    /// damaged).
    #[error("stored value in column {column} is invalid")]
    Corrupt {
        /// The column holding the bad value.
        column: String,
    },
    /// A tenant file is marked as belonging to another tenant than the one
    /// it is opened for.
    #[error("tenant file {path} belongs to another tenant")]
    TenantMismatch {
        /// The tenant file.
        path: PathBuf,
    },
    /// The host applications' migrations cannot run on this backend, or
    /// a shared-scope one failed when the store was opened.
    #[error("host application migrations")]
    Apps {
        /// What is wrong.
        #[source]
        source: Error,
    },
    /// A connection pool was shut down while work was waiting for it.
    #[error("connection pool closed")]
    PoolClosed,
    /// A number did not fit the range SQLite stores.
    #[error("value of {what} is out of range")]
    OutOfRange {
        /// What overflowed.
        what: &'static str,
    },
}

impl From<SqliteError> for Error {
    /// A full disk is [`Error::StorageFull`] (writes fail, reads still
    /// work); everything else is [`Error::Backend`].
    fn from(e: SqliteError) -> Self {
        if e.is_disk_full() {
            Error::storage_full(e)
        } else {
            Error::backend(e)
        }
    }
}

impl SqliteError {
    /// Whether the disk (or the file system's quota) is full: SQLite's
    /// `SQLITE_FULL`, or `ENOSPC` creating a file or directory.
    pub fn is_disk_full(&self) -> bool {
        let sqlite_full =
            |e: &rusqlite::Error| e.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull);
        match self {
            SqliteError::Sqlite { source } | SqliteError::Migration { source, .. } => {
                sqlite_full(source)
            }
            SqliteError::Io { source, .. } => {
                source.kind() == std::io::ErrorKind::StorageFull
                    || source.kind() == std::io::ErrorKind::QuotaExceeded
            }
            _ => false,
        }
    }
}

/// The internal result: either a domain outcome the trait promises
/// (not found, conflict, plan limit, …) or a backend failure. Kept private so
/// the public [`SqliteError`] holds only backend failures.
#[derive(Debug)]
pub(crate) enum Failure {
    Core(Error),
    Db(SqliteError),
}

pub(crate) type R<T> = std::result::Result<T, Failure>;

/// Shows (and chains to the sources of) the error inside, so a failure
/// reads exactly like that error.
impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Core(e) => e.fmt(f),
            Failure::Db(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for Failure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Failure::Core(e) => e.source(),
            Failure::Db(e) => e.source(),
        }
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Core(e)
    }
}

impl From<SqliteError> for Failure {
    fn from(e: SqliteError) -> Self {
        Failure::Db(e)
    }
}

impl From<rusqlite::Error> for Failure {
    fn from(e: rusqlite::Error) -> Self {
        Failure::Db(SqliteError::Sqlite { source: e })
    }
}

impl From<Failure> for Error {
    fn from(f: Failure) -> Self {
        match f {
            Failure::Core(e) => e,
            Failure::Db(e) => e.into(),
        }
    }
}

/// Whether `e` is a UNIQUE or PRIMARY KEY violation.
pub(crate) fn is_unique_violation(e: &rusqlite::Error) -> bool {
    e.sqlite_error().is_some_and(|fe| {
        fe.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
            || fe.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
    })
}

/// Maps a unique violation to a conflict on `entity`/`field`, anything else to
/// a backend failure.
pub(crate) fn conflict_on(
    entity: Entity,
    field: &'static str,
) -> impl Fn(rusqlite::Error) -> Failure {
    move |e| {
        if is_unique_violation(&e) {
            Failure::Core(Error::Conflict { entity, field })
        } else {
            e.into()
        }
    }
}

pub(crate) fn not_found(entity: Entity) -> Failure {
    Failure::Core(Error::not_found(entity))
}

pub(crate) fn io_error(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Failure {
    let path = path.into();
    move |source| Failure::Db(SqliteError::Io { path, source })
}
