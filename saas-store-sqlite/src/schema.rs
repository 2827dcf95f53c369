//! Schema versions of the catalog and of tenant files.
//!
//! Each file records its version in `PRAGMA user_version`; version `n` means
//! the first `n` steps of its list have run. Steps are only ever appended, so
//! a file written by an older release is brought forward on open.
//!
//! A file from a newer release is served only when every version above
//! this build's is additive (see [`saas_core::migration`]): the low 16 bits
//! of `user_version` are the version, and the next 16 the oldest version
//! that may still read and write the file, when it is lower than the
//! version (0 otherwise, so a file whose newest step is breaking keeps a
//! plain version number). Any other newer file is refused rather than
//! misread. Builds before the one that introduced this rule refuse every
//! newer file (they read the whole number as the version).
//!
//! Steps, like the queue's statements, are templates that name stored
//! status codes by placeholder ([`render`]), so each code is written once.

use std::path::Path;

use rusqlite::{Connection, TransactionBehavior};
use saas_core::jobs::JobStatus;
use saas_core::migration::{compatible_from, may_serve};
use saas_core::query::{DONE_RANK, TODO_RANK};

use crate::error::SqliteError;

/// The stored code of a job status (see [`JOBS`]). The waiting statuses
/// come first, so "waiting" is `status < {running}`: one term that partial
/// indexes and queries share.
pub(crate) fn job_code(status: JobStatus) -> i64 {
    match status {
        JobStatus::Queued => 0,
        JobStatus::Scheduled => 1,
        JobStatus::Retrying => 2,
        JobStatus::Running => 3,
        JobStatus::Succeeded => 4,
        JobStatus::Dead => 5,
        JobStatus::Cancelled => 6,
    }
}

/// Renders a SQL template: `{done}` and `{todo}` become the stored ranks
/// of a done task ([`DONE_RANK`]) and of a task to do ([`TODO_RANK`]), and `{queued}` … `{cancelled}` (each job status by its
/// name) the status's [`job_code`]. The result is the same text on every
/// call, as prepared-statement caches need.
pub(crate) fn render(template: &str) -> String {
    let mut sql = template
        .replace("{done}", DONE_RANK)
        .replace("{todo}", TODO_RANK);
    for status in JobStatus::ALL {
        sql = sql.replace(
            &format!("{{{}}}", status.as_str()),
            &job_code(*status).to_string(),
        );
    }
    sql
}

/// Steps of the catalog schema (tenants, domains, superusers).
pub(crate) const CATALOG: &[&str] = &[
    // 1: the catalog.
    "CREATE TABLE tenants (
        id TEXT PRIMARY KEY NOT NULL,
        name TEXT NOT NULL,
        slug TEXT NOT NULL UNIQUE,
        plan TEXT NOT NULL,
        status INTEGER NOT NULL CHECK (status IN (0, 1)),
        database TEXT NOT NULL,
        created_at INTEGER NOT NULL
    ) STRICT;
    CREATE TABLE domains (
        hostname TEXT PRIMARY KEY NOT NULL,
        tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
        is_primary INTEGER NOT NULL CHECK (is_primary IN (0, 1))
    ) STRICT;
    CREATE INDEX domains_by_tenant ON domains(tenant_id);
    CREATE UNIQUE INDEX domains_one_primary ON domains(tenant_id) WHERE is_primary = 1;
    CREATE TABLE superusers (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        username TEXT NOT NULL,
        username_key TEXT NOT NULL UNIQUE,
        email TEXT NOT NULL,
        password_hash TEXT NOT NULL,
        created_at INTEGER NOT NULL
    ) STRICT;",
    // 2: the audit log. No foreign key to tenants: a deleted tenant's
    // trail stays.
    "CREATE TABLE audit_log (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at INTEGER NOT NULL,
        actor TEXT NOT NULL,
        tenant_id TEXT,
        action TEXT NOT NULL,
        target TEXT NOT NULL,
        detail TEXT NOT NULL,
        client TEXT
    ) STRICT;
    CREATE INDEX audit_log_by_tenant ON audit_log(tenant_id, id);",
    // 3: two-step deletion. A deleted tenant keeps its row (and status, for
    // a restore) with the time of deletion until it is purged.
    "ALTER TABLE tenants ADD COLUMN deleted_at INTEGER;",
    // 4: superusers can be deactivated, and their tokens revoked.
    "ALTER TABLE superusers ADD COLUMN is_active INTEGER NOT NULL DEFAULT 1 CHECK (is_active IN (0, 1));
    ALTER TABLE superusers ADD COLUMN token_version INTEGER NOT NULL DEFAULT 0;",
];

/// Steps of a tenant file's schema.
pub(crate) const TENANT: &[&str] = &[
    // 1: the tenant's tables. AUTOINCREMENT so ids of deleted projects and
    // tasks are never handed out again (clients may still hold them).
    "CREATE TABLE tenant_meta (
        singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
        tenant_id TEXT NOT NULL,
        slug TEXT NOT NULL
    ) STRICT;
    CREATE TABLE users (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        username TEXT NOT NULL,
        username_key TEXT NOT NULL,
        email TEXT NOT NULL,
        password_hash TEXT NOT NULL,
        first_name TEXT NOT NULL,
        last_name TEXT NOT NULL,
        role TEXT NOT NULL CHECK (role IN ('admin', 'manager', 'member', 'viewer')),
        department TEXT NOT NULL,
        is_active INTEGER NOT NULL CHECK (is_active IN (0, 1)),
        is_owner INTEGER NOT NULL CHECK (is_owner IN (0, 1)),
        last_login INTEGER,
        date_joined INTEGER NOT NULL,
        token_version INTEGER NOT NULL DEFAULT 0
    ) STRICT;
    CREATE UNIQUE INDEX users_username_key ON users(username_key);
    CREATE TABLE projects (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT NOT NULL,
        description TEXT NOT NULL,
        status INTEGER NOT NULL,
        start_date TEXT,
        end_date TEXT,
        owner_id INTEGER NOT NULL REFERENCES users(id),
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX projects_by_owner ON projects(owner_id);
    CREATE TABLE memberships (
        project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
        user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        PRIMARY KEY (project_id, user_id)
    ) STRICT, WITHOUT ROWID;
    CREATE INDEX memberships_by_user ON memberships(user_id);
    CREATE TABLE tasks (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
        title TEXT NOT NULL,
        description TEXT NOT NULL,
        status INTEGER NOT NULL,
        priority INTEGER NOT NULL,
        assigned_to INTEGER REFERENCES users(id),
        created_by INTEGER NOT NULL REFERENCES users(id),
        due_date INTEGER,
        completed_at INTEGER,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX tasks_by_project ON tasks(project_id);
    CREATE INDEX tasks_by_assignee ON tasks(assigned_to);
    CREATE INDEX tasks_by_creator ON tasks(created_by);
    CREATE TABLE refresh_tokens (
        jti TEXT PRIMARY KEY NOT NULL,
        family TEXT NOT NULL,
        user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        expires_at INTEGER NOT NULL,
        used INTEGER NOT NULL DEFAULT 0 CHECK (used IN (0, 1)),
        revoked INTEGER NOT NULL DEFAULT 0 CHECK (revoked IN (0, 1))
    ) STRICT;
    CREATE INDEX refresh_tokens_by_family ON refresh_tokens(family);",
    // 2: indexes for the periodic clean-up jobs, which scan by expiry and by
    // completion time.
    "CREATE INDEX refresh_tokens_by_expiry ON refresh_tokens(expires_at);
    CREATE INDEX tasks_done_by_completion ON tasks(completed_at) WHERE status = {done};",
    // 3: what large tenants need. The list's default order and the
    // dashboard's "recently changed" are index walks instead of a sort of
    // every task. Overdue tasks are counted from a partial index covering
    // the scope and assignee filters (status too: SQLite only reads an
    // index alone when it holds every column the query names). Counts by status and priority come
    // from `task_tally`: per project, assignee (0 for none), status and
    // priority, the number of tasks, kept exact by the triggers below in
    // the transaction of every task write (and of cascading project
    // deletes); rows at zero are removed, so it never outgrows the tasks.
    "CREATE INDEX tasks_by_created ON tasks(created_at DESC, id);
    CREATE INDEX tasks_by_updated ON tasks(updated_at DESC, id);
    CREATE INDEX tasks_open_by_due ON tasks(due_date, project_id, assigned_to, status) WHERE status <> {done};
    CREATE TABLE task_tally (
        project_id INTEGER NOT NULL,
        assignee INTEGER NOT NULL,
        status INTEGER NOT NULL,
        priority INTEGER NOT NULL,
        n INTEGER NOT NULL,
        PRIMARY KEY (project_id, assignee, status, priority)
    ) STRICT, WITHOUT ROWID;
    CREATE INDEX task_tally_by_assignee ON task_tally(assignee);
    CREATE TRIGGER task_tally_insert AFTER INSERT ON tasks BEGIN
        INSERT INTO task_tally (project_id, assignee, status, priority, n)
        VALUES (NEW.project_id, coalesce(NEW.assigned_to, 0), NEW.status, NEW.priority, 1)
        ON CONFLICT (project_id, assignee, status, priority) DO UPDATE SET n = n + 1;
    END;
    CREATE TRIGGER task_tally_delete AFTER DELETE ON tasks BEGIN
        UPDATE task_tally SET n = n - 1
        WHERE project_id = OLD.project_id AND assignee = coalesce(OLD.assigned_to, 0)
            AND status = OLD.status AND priority = OLD.priority;
        DELETE FROM task_tally
        WHERE project_id = OLD.project_id AND assignee = coalesce(OLD.assigned_to, 0)
            AND status = OLD.status AND priority = OLD.priority AND n = 0;
    END;
    CREATE TRIGGER task_tally_update AFTER UPDATE OF project_id, assigned_to, status, priority ON tasks
    WHEN OLD.project_id IS NOT NEW.project_id OR OLD.assigned_to IS NOT NEW.assigned_to
        OR OLD.status IS NOT NEW.status OR OLD.priority IS NOT NEW.priority
    BEGIN
        UPDATE task_tally SET n = n - 1
        WHERE project_id = OLD.project_id AND assignee = coalesce(OLD.assigned_to, 0)
            AND status = OLD.status AND priority = OLD.priority;
        DELETE FROM task_tally
        WHERE project_id = OLD.project_id AND assignee = coalesce(OLD.assigned_to, 0)
            AND status = OLD.status AND priority = OLD.priority AND n = 0;
        INSERT INTO task_tally (project_id, assignee, status, priority, n)
        VALUES (NEW.project_id, coalesce(NEW.assigned_to, 0), NEW.status, NEW.priority, 1)
        ON CONFLICT (project_id, assignee, status, priority) DO UPDATE SET n = n + 1;
    END;
    INSERT INTO task_tally (project_id, assignee, status, priority, n)
    SELECT project_id, coalesce(assigned_to, 0), status, priority, count(*)
    FROM tasks WHERE true GROUP BY 1, 2, 3, 4;",
    // 4 (additive): when work on a task started (`Task::started_at`), kept
    // by triggers so that every writer keeps it right, builds that predate
    // the column included: set to the creation time for a task created in
    // another status than todo, to the time of the change (the `updated_at`
    // the same statement wrote) when it leaves todo, cleared when it goes
    // back. Tasks that already left todo stay NULL: when they did is not
    // known. The index serves `?ordering=-started_at` (latest started
    // first, never-started last, as `ORDER` spells it).
    "ALTER TABLE tasks ADD COLUMN started_at INTEGER;
    CREATE INDEX tasks_by_started ON tasks(started_at IS NULL, started_at DESC, id);
    CREATE TRIGGER tasks_started_insert AFTER INSERT ON tasks WHEN NEW.status <> {todo} BEGIN
        UPDATE tasks SET started_at = NEW.created_at WHERE id = NEW.id;
    END;
    CREATE TRIGGER tasks_started_update AFTER UPDATE OF status ON tasks
    WHEN (OLD.status = {todo}) <> (NEW.status = {todo})
    BEGIN
        UPDATE tasks SET started_at = CASE WHEN NEW.status = {todo} THEN NULL ELSE NEW.updated_at END
        WHERE id = NEW.id;
    END;",
];

/// Versions of [`TENANT`] whose step is additive: a build that knows only
/// the versions below one still reads and writes a file at it correctly
/// (see [`saas_core::migration`]).
pub(crate) const TENANT_ADDITIVE: &[i64] = &[4];

/// The tenant schema version at which tasks have `started_at`.
pub(crate) const STARTED_AT_VERSION: i64 = 4;

/// Steps of the job queue's schema (`jobs.sqlite`, see [`crate::SqliteQueue`]).
///
/// Statuses are stored as their [`job_code`]. `tenant` is the tenant id, or
/// `''` for platform jobs, so the platform is one more fairness group and
/// unique keys compare it as equal to itself.
pub(crate) const JOBS: &[&str] = &[
    // 1: the queue.
    "CREATE TABLE jobs (
        id TEXT PRIMARY KEY NOT NULL,
        kind TEXT NOT NULL,
        tenant TEXT NOT NULL,
        payload TEXT NOT NULL,
        status INTEGER NOT NULL CHECK (status BETWEEN {queued} AND {cancelled}),
        priority INTEGER NOT NULL,
        attempts INTEGER NOT NULL,
        max_attempts INTEGER NOT NULL,
        run_at INTEGER NOT NULL,
        unique_key TEXT,
        worker TEXT,
        lease_until INTEGER,
        result TEXT,
        last_error TEXT,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        started_at INTEGER,
        finished_at INTEGER
    ) STRICT;
    -- Claims walk each tenant's waiting jobs in claim order and stop after
    -- the batch size; kind is carried so other kinds are skipped without
    -- reading the row. Only waiting jobs are indexed, so finished history
    -- costs claims nothing.
    CREATE INDEX jobs_waiting ON jobs(tenant, priority DESC, run_at, id, kind) WHERE status < {running};
    -- Expired leases (crashed workers).
    CREATE INDEX jobs_leased ON jobs(lease_until) WHERE status = {running};
    -- Unique keys per tenant group among jobs not cancelled.
    CREATE UNIQUE INDEX jobs_unique_key ON jobs(tenant, unique_key)
        WHERE unique_key IS NOT NULL AND status <> {cancelled};
    -- Pruning.
    CREATE INDEX jobs_finished ON jobs(finished_at) WHERE finished_at IS NOT NULL;",
    // 2: pending jobs by tenant, for the per-tenant cap (`NewJob::max_pending`).
    "CREATE INDEX jobs_pending ON jobs(tenant) WHERE status <= {running};",
];

/// The tenant schema steps a store runs: all of [`TENANT`], or fewer when
/// [`crate::SqliteOptions::withhold_tenant_migrations`] emulates the
/// previous build.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TenantSchema {
    steps: &'static [&'static str],
}

impl TenantSchema {
    /// All steps but the last `withheld`.
    pub(crate) fn new(withheld: usize) -> Self {
        TenantSchema {
            steps: &TENANT[..TENANT.len().saturating_sub(withheld)],
        }
    }

    /// The newest version this store knows.
    pub(crate) fn known(self) -> i64 {
        self.steps.len() as i64
    }

    /// Whether this store's statements read `tasks.started_at`: only when
    /// it knows that version (a newer file than it knows is served with
    /// the statements of the version it knows).
    pub(crate) fn started_at(self) -> bool {
        self.known() >= STARTED_AT_VERSION
    }

    /// [`migrate`] with these steps.
    pub(crate) fn migrate(self, conn: &mut Connection, path: &Path) -> Result<i64, SqliteError> {
        migrate(conn, path, self.steps, TENANT_ADDITIVE)
    }
}

/// Newest catalog schema version this build knows.
pub const CATALOG_SCHEMA_VERSION: i64 = CATALOG.len() as i64;

/// Newest tenant schema version this build knows.
pub const TENANT_SCHEMA_VERSION: i64 = TENANT.len() as i64;

/// Newest job queue schema version this build knows.
pub const JOBS_SCHEMA_VERSION: i64 = JOBS.len() as i64;

/// Bits of `user_version` holding the version; the compatibility floor is
/// stored above them.
const VERSION_BITS: u32 = 16;

/// Schema version of the open file and the oldest version that may still
/// read and write it (see the module documentation).
pub(crate) fn stamp(conn: &Connection) -> rusqlite::Result<(i64, i64)> {
    let raw: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    let version = raw & ((1 << VERSION_BITS) - 1);
    let floor = raw >> VERSION_BITS;
    Ok((version, if floor == 0 { version } else { floor }))
}

/// Schema version of the open file.
pub(crate) fn version(conn: &Connection) -> rusqlite::Result<i64> {
    stamp(conn).map(|(version, _)| version)
}

/// The `user_version` recording `version` of a list whose additive
/// versions are `additive`.
fn user_version(version: i64, additive: &[i64]) -> i64 {
    let floor = compatible_from(version, additive);
    if floor < version {
        version | (floor << VERSION_BITS)
    } else {
        version
    }
}

/// Whether this build (whose newest version of the list is `known`) may
/// use the open file as it is: it is current, or newer and still readable
/// and writable by this build. Fails with [`SqliteError::SchemaTooNew`]
/// for a newer file it may not use; `Ok(false)` means the file is behind.
pub(crate) fn usable(conn: &Connection, path: &Path, known: i64) -> Result<bool, SqliteError> {
    let (found, floor) = stamp(conn)?;
    if found < known {
        return Ok(false);
    }
    if may_serve(known, found, floor) {
        return Ok(true);
    }
    Err(SqliteError::SchemaTooNew {
        path: path.to_owned(),
        found,
        compatible_from: floor,
        known,
    })
}

/// Brings the file to the newest version of `steps` (templates, see
/// [`render`]), whose additive versions are `additive`; returns the version
/// it had before. A newer file is left as it is if this build may use it
/// ([`usable`]), and refused otherwise. Each step runs in its own `BEGIN
/// IMMEDIATE` transaction, so a concurrent migrator (another process) waits
/// and then finds nothing to do, and an interrupted run resumes where it
/// stopped.
pub(crate) fn migrate(
    conn: &mut Connection,
    path: &Path,
    steps: &[&str],
    additive: &[i64],
) -> Result<i64, SqliteError> {
    let known = i64::try_from(steps.len()).map_err(|_| SqliteError::OutOfRange {
        what: "schema version",
    })?;
    let before = version(conn)?;
    if before == known {
        return Ok(before);
    }
    loop {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        if usable(&tx, path, known)? {
            return Ok(before);
        }
        let current = version(&tx)?;
        let next = current + 1;
        let step = usize::try_from(current)
            .ok()
            .and_then(|i| steps.get(i))
            .ok_or(SqliteError::OutOfRange {
                what: "schema version",
            })?;
        let applied = tx
            .execute_batch(&render(step))
            .and_then(|()| tx.pragma_update(None, "user_version", user_version(next, additive)))
            .and_then(|()| tx.commit());
        if let Err(source) = applied {
            return Err(SqliteError::Migration {
                path: path.to_owned(),
                version: next,
                source,
            });
        }
        tracing::debug!(path = %path.display(), version = next, "migrated");
    }
}
