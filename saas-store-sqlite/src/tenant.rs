//! The handle to one tenant's file: [`SqliteTenant`], the backend's
//! [`TenantStore`].

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::types::Value;
use rusqlite::{
    Connection, OptionalExtension, Row, Transaction, TransactionBehavior, params, params_from_iter,
};
use saas_core::import::Inventory;
use saas_core::projects::{
    NewProjectRecord, NewTaskRecord, Priority, Project, ProjectCounts, ProjectId, ProjectStatus,
    Scope, Task, TaskCounts, TaskId, TaskQuery, TaskStatus,
};
use saas_core::query::{DONE_RANK, OrderSpelling, TaskCondition};
use saas_core::store::{Page, PageRequest, RefreshOutcome, RefreshTokenRecord, TenantStore};
use saas_core::tenancy::TenantId;
use saas_core::updates::{Columns, ProjectChanges, TaskChanges, UserChanges};
use saas_core::users::{NewUserRecord, User, UserId, UserSummary};
use saas_core::{Entity, Error, Resource, Result};
use uuid::Uuid;

use crate::codec;
use crate::db::{Db, durably};
use crate::error::{Failure, R, SqliteError, conflict_on, not_found};

/// A handle scoped to one tenant's database file.
///
/// Cheap to clone behind its `Arc`; the store's cache holds one per recently
/// used tenant, and a handle evicted from the cache keeps working for whoever
/// still holds it, closing its connections when the last holder drops it.
#[derive(Debug)]
pub(crate) struct SqliteTenant {
    id: TenantId,
    db: Arc<Db>,
    /// Set when the tenant is deleted, so holders of the handle fail closed
    /// instead of writing into a file that is gone.
    closed: AtomicBool,
    /// Whether security-relevant writes run `synchronous=FULL`
    /// ([`crate::SqliteOptions::durable_security_writes`]).
    durable: bool,
    /// Whether task rows are read with `started_at` (see [`task_select`]).
    started_at: bool,
}

impl SqliteTenant {
    pub(crate) fn new(id: TenantId, db: Arc<Db>, durable: bool, started_at: bool) -> Self {
        SqliteTenant {
            id,
            db,
            closed: AtomicBool::new(false),
            durable,
            started_at,
        }
    }

    /// The pool, for tests that need a raw connection.
    #[cfg(test)]
    pub(crate) fn db(&self) -> &Arc<Db> {
        &self.db
    }

    /// Makes every later call fail with `NotFound { Tenant }`, waits for the
    /// calls in flight and closes the file's connections.
    pub(crate) async fn shutdown(&self) -> Result<()> {
        self.closed.store(true, Ordering::Release);
        Ok(self.db.shutdown().await?)
    }

    fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            Err(Error::not_found(Entity::Tenant))
        } else {
            Ok(())
        }
    }

    async fn write<T, F>(&self, f: F) -> Result<T>
    where
        F: FnOnce(&mut Connection) -> R<T> + Send + 'static,
        T: Send + 'static,
    {
        self.check_open()?;
        self.db.write(f).await.map_err(closed_as_gone)
    }

    /// [`Self::write`] synced to disk before it returns
    /// ([`crate::db::durably`]): for writes a power loss must not undo.
    async fn write_durably<T, F>(&self, f: F) -> Result<T>
    where
        F: FnOnce(&mut Connection) -> R<T> + Send + 'static,
        T: Send + 'static,
    {
        if self.durable {
            self.write(move |conn| durably(conn, f)).await
        } else {
            self.write(f).await
        }
    }

    /// Runs a host application's `f` in an immediate transaction on the
    /// writer, committing when it succeeds (see `crate::with_tenant_tx`).
    pub(crate) async fn host_write<T, E, F>(&self, f: F) -> Result<std::result::Result<T, E>>
    where
        F: FnOnce(&Transaction<'_>) -> std::result::Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: Send + 'static,
    {
        self.write(move |conn| {
            let tx = immediate(conn)?;
            match f(&tx) {
                Ok(value) => {
                    tx.commit()?;
                    Ok(Ok(value))
                }
                Err(e) => Ok(Err(e)),
            }
        })
        .await
    }

    /// Runs `sql` with `args` as one write; `NotFound` (`entity`) when it
    /// changed no row.
    async fn change_one<P>(&self, sql: &'static str, args: P, entity: Entity) -> Result<()>
    where
        P: rusqlite::Params + Send + 'static,
    {
        self.write(move |conn| change_one(conn, sql, args, entity))
            .await
    }

    /// A page: what `counter` counts (every match) and what `lister` lists
    /// (this page's items), read in one transaction so both see the same
    /// rows.
    async fn read_page<T, C, L>(&self, counter: C, lister: L) -> Result<Page<T>>
    where
        T: Send + 'static,
        C: FnOnce(&Connection) -> R<u64> + Send + 'static,
        L: FnOnce(&Connection) -> R<Vec<T>> + Send + 'static,
    {
        self.read(move |conn| {
            let tx = conn.transaction()?;
            let total = counter(&tx)?;
            let items = lister(&tx)?;
            Ok(Page {
                count: total,
                items,
            })
        })
        .await
    }

    async fn read<T, F>(&self, f: F) -> Result<T>
    where
        F: FnOnce(&mut Connection) -> R<T> + Send + 'static,
        T: Send + 'static,
    {
        self.check_open()?;
        self.db.read(f).await.map_err(closed_as_gone)
    }
}

/// A pool shut down under a call means the tenant was deleted meanwhile.
fn closed_as_gone(f: Failure) -> Error {
    match f {
        Failure::Db(SqliteError::PoolClosed) => Error::not_found(Entity::Tenant),
        other => other.into(),
    }
}

/// Starts a write transaction that takes the file's write lock at once, so
/// the reads inside it (limit counts, existence checks) cannot go stale
/// before the write.
pub(crate) fn immediate(conn: &mut Connection) -> rusqlite::Result<Transaction<'_>> {
    conn.transaction_with_behavior(TransactionBehavior::Immediate)
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn count(conn: &Connection, sql: &str, params: impl rusqlite::Params) -> rusqlite::Result<u64> {
    conn.prepare_cached(sql)?
        .query_row(params, |r| r.get::<_, i64>(0))
        .map(to_u64)
}

/// `Some(limit)` reached by `current`: the plan allows no more.
fn check_limit(current: u64, limit: Option<u64>, resource: Resource) -> R<()> {
    match limit {
        Some(limit) if current >= limit => Err(Failure::Core(Error::PlanLimitExceeded {
            resource,
            limit,
            // The backend does not know plan codes; the service fills it in.
            plan: String::new(),
        })),
        _ => Ok(()),
    }
}

/// Runs `sql` with `args`; `NotFound` (`entity`) when it changed no row.
fn change_one(conn: &Connection, sql: &str, args: impl rusqlite::Params, entity: Entity) -> R<()> {
    if conn.prepare_cached(sql)?.execute(args)? == 0 {
        return Err(not_found(entity));
    }
    Ok(())
}

/// Stores a new, unused refresh token of an existing user.
fn insert_refresh(conn: &Connection, token: &RefreshTokenRecord) -> R<()> {
    require_user(conn, token.user_id)?;
    conn.prepare_cached(
        "INSERT INTO refresh_tokens (jti, family, user_id, expires_at, used, revoked) \
         VALUES (?1, ?2, ?3, ?4, 0, 0)",
    )?
    .execute(params![
        token.jti.to_string(),
        token.family.to_string(),
        token.user_id.0,
        codec::micros(token.expires_at),
    ])?;
    Ok(())
}

/// Writes the columns of a partial update (and `extra`, an assignment of
/// the dialect's own) to row `id` of `table`; `NotFound` (`entity`) when
/// there is no such row. Nothing to write only checks that the row exists.
fn write_columns(
    conn: &Connection,
    table: &str,
    columns: &Columns,
    extra: Option<&str>,
    id: i64,
    entity: Entity,
) -> R<()> {
    let mut set = columns.assignments(1, |i| format!("?{i}"));
    if let Some(extra) = extra {
        if !set.is_empty() {
            set.push_str(", ");
        }
        set.push_str(extra);
    }
    if set.is_empty() {
        return if exists(conn, &format!("SELECT 1 FROM {table} WHERE id = ?1"), id)? {
            Ok(())
        } else {
            Err(not_found(entity))
        };
    }
    let mut args: Vec<Value> = columns.iter().map(|(_, v)| codec::value(v)).collect();
    let sql = format!("UPDATE {table} SET {set} WHERE id = ?{}", args.len() + 1);
    args.push(Value::Integer(id));
    change_one(conn, &sql, rusqlite::params_from_iter(args), entity)
}

fn exists(conn: &Connection, sql: &str, id: i64) -> rusqlite::Result<bool> {
    conn.prepare_cached(sql)?
        .query_row([id], |_| Ok(()))
        .optional()
        .map(|found| found.is_some())
}

fn user_exists(conn: &Connection, id: UserId) -> rusqlite::Result<bool> {
    exists(conn, "SELECT 1 FROM users WHERE id = ?1", id.0)
}

fn project_exists(conn: &Connection, id: ProjectId) -> rusqlite::Result<bool> {
    exists(conn, "SELECT 1 FROM projects WHERE id = ?1", id.0)
}

fn require_user(conn: &Connection, id: UserId) -> R<()> {
    if user_exists(conn, id)? {
        Ok(())
    } else {
        Err(not_found(Entity::User))
    }
}

fn require_project(conn: &Connection, id: ProjectId) -> R<()> {
    if project_exists(conn, id)? {
        Ok(())
    } else {
        Err(not_found(Entity::Project))
    }
}

// --- users -----------------------------------------------------------------

/// Inserts the user, no limit check; shared with tenant registration, which
/// creates the admin in the new file.
pub(crate) fn insert_user(conn: &Connection, user: &NewUserRecord) -> R<User> {
    conn.prepare_cached(
        "INSERT INTO users (username, username_key, email, password_hash, first_name, last_name, \
         role, department, is_owner, date_joined, is_active, last_login, token_version) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 1, NULL, 0)",
    )?
    .execute(params_from_iter(codec::user_values(user)))
    .map_err(conflict_on(Entity::User, "username"))?;
    Ok(User {
        id: UserId(conn.last_insert_rowid()),
        username: user.username.clone(),
        email: user.email.clone(),
        first_name: user.first_name.clone(),
        last_name: user.last_name.clone(),
        role: user.role,
        department: user.department.clone(),
        is_active: true,
        is_owner: user.is_owner,
        last_login: None,
        date_joined: user.date_joined,
        token_version: 0,
    })
}

fn load_user(conn: &Connection, id: UserId) -> rusqlite::Result<Option<User>> {
    conn.prepare_cached(concat!(
        "SELECT ",
        user_columns!(),
        " FROM users u WHERE u.id = ?1"
    ))?
    .query_row([id.0], |r| codec::user(r, 0))
    .optional()
}

// --- projects --------------------------------------------------------------

const PROJECT_SELECT: &str = concat!(
    "SELECT p.id, p.name, p.description, p.status, p.start_date, p.end_date, p.created_at, p.updated_at, ",
    summary_columns!("o"),
    " FROM projects p JOIN users o ON o.id = p.owner_id"
);

/// A project row without its members (filled in by [`attach_members`]).
fn project_row(r: &Row<'_>) -> rusqlite::Result<Project> {
    Ok(Project {
        id: ProjectId(r.get(0)?),
        name: r.get(1)?,
        description: r.get(2)?,
        status: codec::ranked(r, 3, ProjectStatus::from_rank)?,
        start_date: codec::opt_date(r, 4)?,
        end_date: codec::opt_date(r, 5)?,
        created_at: codec::ts(r, 6)?,
        updated_at: codec::ts(r, 7)?,
        owner: codec::summary(r, 8)?,
        members: Vec::new(),
    })
}

/// Fills in the members of every project with one query, however many
/// projects there are (no N+1).
fn attach_members(conn: &Connection, projects: &mut [Project]) -> rusqlite::Result<()> {
    if projects.is_empty() {
        return Ok(());
    }
    let mut ids = String::from("[");
    for (i, p) in projects.iter().enumerate() {
        if i > 0 {
            ids.push(',');
        }
        // Writing to a String cannot fail.
        let _ = write!(ids, "{}", p.id.0);
    }
    ids.push(']');
    let mut stmt = conn.prepare_cached(concat!(
        "SELECT m.project_id, ",
        summary_columns!("u"),
        " FROM memberships m JOIN users u ON u.id = m.user_id \
         WHERE m.project_id IN (SELECT value FROM json_each(?1)) \
         ORDER BY m.project_id, u.id"
    ))?;
    let mut by_project: HashMap<i64, Vec<UserSummary>> = HashMap::new();
    let rows = stmt.query_map([ids], |r| Ok((r.get::<_, i64>(0)?, codec::summary(r, 1)?)))?;
    for row in rows {
        let (project, member) = row?;
        by_project.entry(project).or_default().push(member);
    }
    for p in projects {
        if let Some(members) = by_project.remove(&p.id.0) {
            p.members = members;
        }
    }
    Ok(())
}

fn load_project(conn: &Connection, id: ProjectId) -> rusqlite::Result<Option<Project>> {
    let project = conn
        .prepare_cached(concat!(
            "SELECT p.id, p.name, p.description, p.status, p.start_date, p.end_date, p.created_at, p.updated_at, ",
            summary_columns!("o"),
            " FROM projects p JOIN users o ON o.id = p.owner_id WHERE p.id = ?1"
        ))?
        .query_row([id.0], project_row)
        .optional()?;
    let Some(project) = project else {
        return Ok(None);
    };
    let mut one = [project];
    attach_members(conn, &mut one)?;
    let [project] = one;
    Ok(Some(project))
}

fn require_loaded_project(conn: &Connection, id: ProjectId) -> R<Project> {
    load_project(conn, id)?.ok_or_else(|| not_found(Entity::Project))
}

/// A condition on projects aliased `p` limiting them to `scope`, and its
/// parameters.
fn project_scope(scope: Scope, params: &mut Vec<Value>) -> &'static str {
    match scope {
        Scope::All => "1 = 1",
        Scope::InvolvedIn(user) => {
            params.push(Value::Integer(user.0));
            params.push(Value::Integer(user.0));
            "(p.owner_id = ? OR EXISTS (SELECT 1 FROM memberships mm WHERE mm.project_id = p.id AND mm.user_id = ?))"
        }
    }
}

// --- tasks -----------------------------------------------------------------

/// The `SELECT … FROM` of a task row, with `$started` for its start time
/// (the column, or `NULL` where the store's statements predate it).
macro_rules! task_select {
    ($started:literal) => {
        concat!(
            "SELECT t.id, t.project_id, t.title, t.description, t.status, t.priority, t.due_date, \
             t.completed_at, t.created_at, t.updated_at, ",
            $started,
            ", ",
            summary_columns!("a"),
            ", ",
            summary_columns!("c"),
            " FROM tasks t LEFT JOIN users a ON a.id = t.assigned_to JOIN users c ON c.id = t.created_by"
        )
    };
}

/// The task rows' `SELECT … FROM` of a store whose statements read
/// `tasks.started_at` (tenant schema version
/// [`crate::schema::STARTED_AT_VERSION`]), or predate it (a store emulating
/// the previous build; see [`crate::SqliteOptions::withhold_tenant_migrations`]).
fn task_select(started_at: bool) -> &'static str {
    if started_at {
        task_select!("t.started_at")
    } else {
        task_select!("NULL")
    }
}

/// A task row of [`task_select`]; both user summaries come from the same
/// query's joins.
fn task_row(r: &Row<'_>) -> rusqlite::Result<Task> {
    Ok(Task {
        id: TaskId(r.get(0)?),
        project_id: ProjectId(r.get(1)?),
        title: r.get(2)?,
        description: r.get(3)?,
        status: codec::ranked(r, 4, TaskStatus::from_rank)?,
        priority: codec::ranked(r, 5, Priority::from_rank)?,
        due_date: codec::opt_ts(r, 6)?,
        completed_at: codec::opt_ts(r, 7)?,
        created_at: codec::ts(r, 8)?,
        updated_at: codec::ts(r, 9)?,
        started_at: codec::opt_ts(r, 10)?,
        assigned_to: codec::opt_summary(r, 11)?,
        created_by: codec::summary(r, 11 + codec::SUMMARY_WIDTH)?,
    })
}

fn load_task(conn: &Connection, id: TaskId, started_at: bool) -> rusqlite::Result<Option<Task>> {
    let sql = if started_at {
        concat!(task_select!("t.started_at"), " WHERE t.id = ?1")
    } else {
        concat!(task_select!("NULL"), " WHERE t.id = ?1")
    };
    conn.prepare_cached(sql)?
        .query_row([id.0], task_row)
        .optional()
}

/// What the conditions of a task query are applied to.
#[derive(Debug, Clone, Copy)]
enum Target {
    /// The tasks, aliased `t`.
    Tasks,
    /// `task_tally`, aliased `c`, for a query it serves
    /// ([`TaskQuery::tally_serves`]).
    Tally,
}

/// The WHERE condition of `query` on `target`, and its parameters: exactly
/// [`TaskQuery::matches`] within the scope.
fn task_filter(query: &TaskQuery, target: Target, params: &mut Vec<Value>) -> String {
    let (a, assignee) = match target {
        Target::Tasks => ("t", "assigned_to"),
        // Unassigned tasks are tallied under 0, which is no user's id.
        Target::Tally => ("c", "assignee"),
    };
    let mut conds: Vec<String> = Vec::new();
    for condition in query.conditions() {
        let (sql, values) = match condition {
            TaskCondition::InvolvedIn(user) => (
                format!(
                    "{a}.project_id IN (SELECT p.id FROM projects p WHERE p.owner_id = ? \
                     UNION SELECT mm.project_id FROM memberships mm WHERE mm.user_id = ?)"
                ),
                vec![Value::Integer(user.0); 2],
            ),
            TaskCondition::Project(project) => (
                format!("{a}.project_id = ?"),
                vec![Value::Integer(project.0)],
            ),
            TaskCondition::Status(status) => (
                format!("{a}.status = ?"),
                vec![Value::Integer(status.rank())],
            ),
            TaskCondition::Priority(priority) => (
                format!("{a}.priority = ?"),
                vec![Value::Integer(priority.rank())],
            ),
            TaskCondition::AssignedTo(user) => (
                format!("{a}.{assignee} = ?"),
                vec![Value::Integer(user.0)],
            ),
            // instr() is a literal substring test (no LIKE wildcards), and
            // the built-in lower() folds ASCII only, as TaskQuery::matches does.
            TaskCondition::Search(text) => (
                "(instr(lower(t.title), lower(?)) > 0 OR instr(lower(t.description), lower(?)) > 0)"
                    .to_owned(),
                vec![Value::Text(text.to_owned()); 2],
            ),
            TaskCondition::Overdue(now) => (
                format!("(t.status <> {DONE_RANK} AND t.due_date < ?)"),
                vec![Value::Integer(codec::micros(now))],
            ),
            TaskCondition::DueFrom(from) => (
                "t.due_date >= ?".to_owned(),
                vec![Value::Integer(codec::micros(from))],
            ),
            TaskCondition::DueUntil(until) => (
                "t.due_date < ?".to_owned(),
                vec![Value::Integer(codec::micros(until))],
            ),
        };
        conds.push(sql);
        params.extend(values);
    }
    if conds.is_empty() {
        "1 = 1".to_owned()
    } else {
        conds.join(" AND ")
    }
}

/// How many tasks match `query`: summed from `task_tally` when it serves
/// the query, else counted.
fn count_tasks(conn: &Connection, query: &TaskQuery) -> rusqlite::Result<u64> {
    let mut params = Vec::new();
    let sql = if query.tally_serves() {
        let filter = task_filter(query, Target::Tally, &mut params);
        format!("SELECT coalesce(sum(c.n), 0) FROM task_tally c WHERE {filter}")
    } else {
        let filter = task_filter(query, Target::Tasks, &mut params);
        format!("SELECT count(*) FROM tasks t WHERE {filter}")
    };
    count(conn, &sql, rusqlite::params_from_iter(params.iter()))
}

/// One page of tasks matching `query`, in its order. The LIMIT is written
/// into the SQL (a page size is 1..=100, so at most 100 statements): SQLite
/// plans with a bound LIMIT's value, so binding a new one would expire the
/// cached statement and re-prepare it on every run.
fn task_page(
    conn: &Connection,
    query: &TaskQuery,
    limit: i64,
    offset: i64,
    started_at: bool,
) -> rusqlite::Result<Vec<Task>> {
    let mut params = Vec::new();
    let filter = task_filter(query, Target::Tasks, &mut params);
    let order = query.ordering.order_by(&ORDER);
    params.push(Value::Integer(offset));
    let select = task_select(started_at);
    conn.prepare_cached(&format!(
        "{select} WHERE {filter} ORDER BY {order} LIMIT {limit} OFFSET ?"
    ))?
    .query_map(rusqlite::params_from_iter(params.iter()), task_row)?
    .collect()
}

/// How SQLite writes a task list's order keys: titles by bytes, missing due
/// dates and start times last either way (`IS NULL` sorts false first).
const ORDER: OrderSpelling = OrderSpelling {
    column: "t.{field} {dir}",
    nullable: "t.{field} IS NULL, t.{field} {dir}",
    title: "t.title COLLATE BINARY {dir}",
};

/// [`TenantStore::task_counts`] of a query the tally serves: by status and
/// priority from `task_tally`, overdue from the partial index of open tasks
/// by due date.
fn tallied_counts(
    conn: &Connection,
    query: &TaskQuery,
    now: DateTime<Utc>,
) -> rusqlite::Result<TaskCounts> {
    let mut params = Vec::new();
    let filter = task_filter(query, Target::Tally, &mut params);
    let mut counts = sum_groups(
        conn,
        &format!(
            "SELECT c.status, c.priority, sum(c.n) FROM task_tally c WHERE {filter} \
             GROUP BY c.status, c.priority"
        ),
        &params,
    )?;
    let mut params = Vec::new();
    let filter = task_filter(&query.overdue_as_of(now), Target::Tasks, &mut params);
    counts.overdue = count(
        conn,
        &format!("SELECT count(*) FROM tasks t INDEXED BY tasks_open_by_due WHERE {filter}"),
        rusqlite::params_from_iter(params.iter()),
    )?;
    Ok(counts)
}

/// [`TenantStore::task_counts`] of any query, from the tasks themselves.
fn scanned_counts(
    conn: &Connection,
    query: &TaskQuery,
    now: DateTime<Utc>,
) -> rusqlite::Result<TaskCounts> {
    let mut params = vec![Value::Integer(codec::micros(now))];
    let filter = task_filter(query, Target::Tasks, &mut params);
    sum_groups(
        conn,
        &format!(
            "SELECT t.status, t.priority, count(*), \
             sum(CASE WHEN t.status <> {DONE_RANK} AND t.due_date < ? THEN 1 ELSE 0 END) \
             FROM tasks t WHERE {filter} GROUP BY t.status, t.priority"
        ),
        &params,
    )
}

/// Adds up the rows of `sql`: a status rank, a priority rank, how many
/// tasks have both, and (when there is a fourth column) how many of those
/// are overdue.
fn sum_groups(conn: &Connection, sql: &str, params: &[Value]) -> rusqlite::Result<TaskCounts> {
    let mut stmt = conn.prepare_cached(sql)?;
    let with_overdue = stmt.column_count() > 3;
    let mut rows = stmt.query(rusqlite::params_from_iter(params.iter()))?;
    let mut counts = TaskCounts::default();
    while let Some(r) = rows.next()? {
        let status = codec::ranked(r, 0, TaskStatus::from_rank)?;
        let priority = codec::ranked(r, 1, Priority::from_rank)?;
        let n = to_u64(r.get(2)?);
        counts.total += n;
        counts.by_status[status as usize] += n;
        counts.by_priority[priority as usize] += n;
        if with_overdue {
            counts.overdue += to_u64(r.get(3)?);
        }
    }
    Ok(counts)
}

/// Whether `project` may take one more task under `limit`: nothing to read
/// without a limit, and with one the project's tasks are summed from
/// `task_tally` (exact inside the write transaction, whose triggers keep
/// it), not counted, so a create costs the same in a project of 10 tasks
/// or 100,000.
fn check_project_room(conn: &Connection, project: ProjectId, limit: Option<u64>) -> R<()> {
    if limit.is_none() {
        return Ok(());
    }
    let current = count(
        conn,
        "SELECT coalesce(sum(n), 0) FROM task_tally WHERE project_id = ?1",
        [project.0],
    )?;
    check_limit(current, limit, Resource::TasksPerProject)
}

fn require_assignee(conn: &Connection, assignee: Option<UserId>) -> R<()> {
    match assignee {
        Some(user) => require_user(conn, user),
        None => Ok(()),
    }
}

#[async_trait]
impl TenantStore for SqliteTenant {
    fn tenant_id(&self) -> TenantId {
        self.id
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn dialect(&self) -> Option<saas_core::apps::Dialect> {
        Some(saas_core::apps::Dialect::Sqlite)
    }

    // --- users -----------------------------------------------------------

    async fn create_user(&self, user: &NewUserRecord, max_users: Option<u64>) -> Result<User> {
        let user = user.clone();
        self.write(move |conn| {
            let tx = immediate(conn)?;
            let current = count(&tx, "SELECT count(*) FROM users", [])?;
            check_limit(current, max_users, Resource::Users)?;
            let created = insert_user(&tx, &user)?;
            tx.commit()?;
            Ok(created)
        })
        .await
    }

    async fn user(&self, id: UserId) -> Result<Option<User>> {
        self.read(move |conn| Ok(load_user(conn, id)?)).await
    }

    async fn credentials(&self, username_key: &str) -> Result<Option<(User, String)>> {
        let key = username_key.to_owned();
        self.read(move |conn| {
            Ok(conn
                .prepare_cached(concat!(
                    "SELECT ",
                    user_columns!(),
                    ", u.password_hash FROM users u WHERE u.username_key = ?1"
                ))?
                .query_row([key], |r| {
                    Ok((codec::user(r, 0)?, r.get(codec::USER_WIDTH)?))
                })
                .optional()?)
        })
        .await
    }

    async fn list_users(&self, page: PageRequest) -> Result<Page<User>> {
        let (limit, offset) = page.limit_offset();
        self.read_page(
            |tx| Ok(count(tx, "SELECT count(*) FROM users", [])?),
            move |tx| {
                Ok(tx
                    .prepare_cached(concat!(
                        "SELECT ",
                        user_columns!(),
                        " FROM users u ORDER BY u.id ASC LIMIT ?1 OFFSET ?2"
                    ))?
                    .query_map([limit, offset], |r| codec::user(r, 0))?
                    .collect::<rusqlite::Result<Vec<_>>>()?)
            },
        )
        .await
    }

    async fn update_user(&self, id: UserId, changes: &UserChanges) -> Result<User> {
        let changes = changes.clone();
        // Durable: a role or active flag taken away must stay taken away.
        self.write_durably(move |conn| {
            let tx = immediate(conn)?;
            // SET expressions see the row's old values: deactivating bumps
            // the token version of a user who was active.
            let bump = (changes.is_active == Some(false)).then_some(
                "token_version = token_version + (CASE WHEN is_active = 1 THEN 1 ELSE 0 END)",
            );
            write_columns(&tx, "users", &changes.columns(), bump, id.0, Entity::User)?;
            let user = load_user(&tx, id)?.ok_or_else(|| not_found(Entity::User))?;
            tx.commit()?;
            Ok(user)
        })
        .await
    }

    async fn set_password(&self, id: UserId, password_hash: &str) -> Result<()> {
        let hash = password_hash.to_owned();
        // Durable: after a power loss the old password must not work again.
        self.write_durably(move |conn| {
            change_one(
                conn,
                "UPDATE users SET password_hash = ?1, token_version = token_version + 1 WHERE id = ?2",
                (hash, id.0),
                Entity::User,
            )
        })
        .await
    }

    async fn replace_password_hash(&self, id: UserId, current: &str, new: &str) -> Result<bool> {
        let (current, new) = (current.to_owned(), new.to_owned());
        self.write(move |conn| {
            Ok(conn
                .prepare_cached(
                    "UPDATE users SET password_hash = ?3 WHERE id = ?1 AND password_hash = ?2",
                )?
                .execute(params![id.0, current, new])?
                == 1)
        })
        .await
    }

    async fn record_login(&self, id: UserId, at: DateTime<Utc>) -> Result<()> {
        self.change_one(
            "UPDATE users SET last_login = ?1 WHERE id = ?2",
            (codec::micros(at), id.0),
            Entity::User,
        )
        .await
    }

    async fn count_users(&self) -> Result<u64> {
        self.read(|conn| Ok(count(conn, "SELECT count(*) FROM users", [])?))
            .await
    }

    async fn inventory(&self) -> Result<Inventory> {
        self.read(|conn| {
            let tx = conn.transaction()?;
            crate::import::inventory(&tx)
        })
        .await
    }

    // --- refresh tokens --------------------------------------------------

    async fn insert_refresh_token(&self, token: &RefreshTokenRecord) -> Result<()> {
        let token = token.clone();
        self.write(move |conn| {
            let tx = immediate(conn)?;
            insert_refresh(&tx, &token)?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn rotate_refresh_token(
        &self,
        used: Uuid,
        successor: &RefreshTokenRecord,
    ) -> Result<RefreshOutcome> {
        let successor = successor.clone();
        // Durable: a used token rolled back to unused could be replayed. One
        // write transaction (the file's write lock) marks it used and stores
        // its successor, so no revocation of the family comes in between.
        self.write_durably(move |conn| {
            let tx = immediate(conn)?;
            let found = tx
                .prepare_cached(
                    "SELECT user_id, family, used, revoked FROM refresh_tokens WHERE jti = ?1",
                )?
                .query_row([used.to_string()], |r| {
                    Ok((
                        UserId(r.get(0)?),
                        codec::parsed(r, 1, |s| {
                            Uuid::parse_str(s).map_err(|_| Error::invalid("family", "not a uuid"))
                        })?,
                        r.get::<_, bool>(2)?,
                        r.get::<_, bool>(3)?,
                    ))
                })
                .optional()?;
            let outcome = match found {
                None | Some((_, _, _, true)) => RefreshOutcome::Invalid,
                Some((user_id, family, _, _))
                    if family != successor.family || user_id != successor.user_id =>
                {
                    RefreshOutcome::Invalid
                }
                Some((_, family, true, false)) => {
                    tx.prepare_cached("UPDATE refresh_tokens SET revoked = 1 WHERE family = ?1")?
                        .execute([family.to_string()])?;
                    RefreshOutcome::Reused
                }
                Some((user_id, family, false, false)) => {
                    tx.prepare_cached("UPDATE refresh_tokens SET used = 1 WHERE jti = ?1")?
                        .execute([used.to_string()])?;
                    insert_refresh(&tx, &successor)?;
                    RefreshOutcome::Rotated { user_id, family }
                }
            };
            tx.commit()?;
            Ok(outcome)
        })
        .await
    }

    async fn prune_refresh_tokens(&self, before: DateTime<Utc>) -> Result<u64> {
        self.write(move |conn| {
            let n = conn
                .prepare_cached("DELETE FROM refresh_tokens WHERE expires_at < ?1")?
                .execute([codec::micros(before)])?;
            Ok(n as u64)
        })
        .await
    }

    // --- projects --------------------------------------------------------

    async fn create_project(
        &self,
        project: &NewProjectRecord,
        max_projects: Option<u64>,
    ) -> Result<Project> {
        let project = project.clone();
        self.write(move |conn| {
            let tx = immediate(conn)?;
            let current = count(&tx, "SELECT count(*) FROM projects", [])?;
            check_limit(current, max_projects, Resource::Projects)?;
            require_user(&tx, project.owner)?;
            tx.prepare_cached(
                "INSERT INTO projects (name, description, status, start_date, end_date, owner_id, \
                 created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)",
            )?
            .execute(params_from_iter(codec::project_values(&project)))?;
            let created = require_loaded_project(&tx, ProjectId(tx.last_insert_rowid()))?;
            tx.commit()?;
            Ok(created)
        })
        .await
    }

    async fn project(&self, id: ProjectId) -> Result<Option<Project>> {
        self.read(move |conn| {
            let tx = conn.transaction()?;
            Ok(load_project(&tx, id)?)
        })
        .await
    }

    async fn list_projects(&self, scope: Scope, page: PageRequest) -> Result<Page<Project>> {
        let (limit, offset) = page.limit_offset();
        self.read_page(
            move |tx| {
                let mut params = Vec::new();
                let filter = project_scope(scope, &mut params);
                let sql = format!("SELECT count(*) FROM projects p WHERE {filter}");
                Ok(count(tx, &sql, rusqlite::params_from_iter(params.iter()))?)
            },
            move |tx| {
                let mut params = Vec::new();
                let filter = project_scope(scope, &mut params);
                params.push(Value::Integer(limit));
                params.push(Value::Integer(offset));
                let mut items = tx
                    .prepare_cached(&format!(
                        "{PROJECT_SELECT} WHERE {filter} ORDER BY p.id DESC LIMIT ? OFFSET ?"
                    ))?
                    .query_map(rusqlite::params_from_iter(params.iter()), project_row)?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                attach_members(tx, &mut items)?;
                Ok(items)
            },
        )
        .await
    }

    async fn update_project(&self, id: ProjectId, changes: &ProjectChanges) -> Result<Project> {
        let changes = changes.clone();
        self.write(move |conn| {
            let tx = immediate(conn)?;
            write_columns(
                &tx,
                "projects",
                &changes.columns(),
                None,
                id.0,
                Entity::Project,
            )?;
            let project = require_loaded_project(&tx, id)?;
            tx.commit()?;
            Ok(project)
        })
        .await
    }

    async fn delete_project(&self, id: ProjectId) -> Result<()> {
        // Tasks and memberships go with it (ON DELETE CASCADE).
        self.change_one(
            "DELETE FROM projects WHERE id = ?1",
            [id.0],
            Entity::Project,
        )
        .await
    }

    async fn add_member(&self, project: ProjectId, user: UserId) -> Result<Project> {
        self.write(move |conn| {
            let tx = immediate(conn)?;
            require_project(&tx, project)?;
            require_user(&tx, user)?;
            tx.prepare_cached(
                "INSERT OR IGNORE INTO memberships (project_id, user_id) VALUES (?1, ?2)",
            )?
            .execute([project.0, user.0])?;
            let loaded = require_loaded_project(&tx, project)?;
            tx.commit()?;
            Ok(loaded)
        })
        .await
    }

    async fn remove_member(&self, project: ProjectId, user: UserId) -> Result<Project> {
        self.write(move |conn| {
            let tx = immediate(conn)?;
            require_project(&tx, project)?;
            require_user(&tx, user)?;
            tx.prepare_cached("DELETE FROM memberships WHERE project_id = ?1 AND user_id = ?2")?
                .execute([project.0, user.0])?;
            let loaded = require_loaded_project(&tx, project)?;
            tx.commit()?;
            Ok(loaded)
        })
        .await
    }

    async fn project_counts(&self, scope: Scope) -> Result<ProjectCounts> {
        self.read(move |conn| {
            let mut params = Vec::new();
            let filter = project_scope(scope, &mut params);
            let mut counts = ProjectCounts::default();
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT p.status, count(*) FROM projects p WHERE {filter} GROUP BY p.status"
            ))?;
            let rows = stmt.query_map(rusqlite::params_from_iter(params.iter()), |r| {
                Ok((
                    codec::ranked(r, 0, ProjectStatus::from_rank)?,
                    to_u64(r.get(1)?),
                ))
            })?;
            for row in rows {
                let (status, n) = row?;
                counts.by_status[status as usize] += n;
                counts.total += n;
            }
            Ok(counts)
        })
        .await
    }

    // --- tasks -----------------------------------------------------------

    async fn create_task(
        &self,
        task: &NewTaskRecord,
        max_per_project: Option<u64>,
    ) -> Result<Task> {
        let task = task.clone();
        let started_at = self.started_at;
        self.write(move |conn| {
            let tx = immediate(conn)?;
            require_project(&tx, task.project_id)?;
            check_project_room(&tx, task.project_id, max_per_project)?;
            require_assignee(&tx, task.assigned_to)?;
            require_user(&tx, task.created_by)?;
            tx.prepare_cached(
                "INSERT INTO tasks (project_id, title, description, status, priority, assigned_to, \
                 created_by, due_date, completed_at, created_at, updated_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10)",
            )?
            .execute(params_from_iter(codec::task_values(&task)))?;
            let created = load_task(&tx, TaskId(tx.last_insert_rowid()), started_at)?
                .ok_or_else(|| not_found(Entity::Task))?;
            tx.commit()?;
            Ok(created)
        })
        .await
    }

    async fn task(&self, id: TaskId) -> Result<Option<Task>> {
        let started_at = self.started_at;
        self.read(move |conn| Ok(load_task(conn, id, started_at)?))
            .await
    }

    async fn list_tasks(&self, query: &TaskQuery, page: PageRequest) -> Result<Page<Task>> {
        let (limit, offset) = page.limit_offset();
        let (counted, listed) = (query.clone(), query.clone());
        let started_at = self.started_at;
        self.read_page(
            move |tx| Ok(count_tasks(tx, &counted)?),
            move |tx| Ok(task_page(tx, &listed, limit, offset, started_at)?),
        )
        .await
    }

    async fn task_page(&self, query: &TaskQuery, page: PageRequest) -> Result<Vec<Task>> {
        let (limit, offset) = page.limit_offset();
        let query = query.clone();
        let started_at = self.started_at;
        self.read(move |conn| Ok(task_page(conn, &query, limit, offset, started_at)?))
            .await
    }

    async fn project_tasks_after(
        &self,
        project: ProjectId,
        after: Option<TaskId>,
        limit: u32,
    ) -> Result<Vec<Task>> {
        let after = after.map_or(i64::MIN, |t| t.0);
        let started_at = self.started_at;
        self.read(move |conn| {
            Ok(conn
                .prepare_cached(&format!(
                    "{} WHERE t.project_id = ?1 AND t.id > ?2 ORDER BY t.id LIMIT ?3",
                    task_select(started_at)
                ))?
                .query_map(params![project.0, after, limit], task_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
    }

    async fn update_task(
        &self,
        id: TaskId,
        changes: &TaskChanges,
        max_per_project: Option<u64>,
    ) -> Result<Task> {
        let changes = changes.clone();
        let started_at = self.started_at;
        self.write(move |conn| {
            let tx = immediate(conn)?;
            let Some(current) = tx
                .prepare_cached("SELECT project_id FROM tasks WHERE id = ?1")?
                .query_row([id.0], |r| r.get::<_, i64>(0))
                .optional()?
            else {
                return Err(not_found(Entity::Task));
            };
            if let Some(dest) = changes.project_id.filter(|p| p.0 != current) {
                require_project(&tx, dest)?;
                check_project_room(&tx, dest, max_per_project)?;
            }
            if let Some(assignee) = changes.assigned_to {
                require_assignee(&tx, assignee)?;
            }
            write_columns(&tx, "tasks", &changes.columns(), None, id.0, Entity::Task)?;
            let task = load_task(&tx, id, started_at)?.ok_or_else(|| not_found(Entity::Task))?;
            tx.commit()?;
            Ok(task)
        })
        .await
    }

    async fn delete_task(&self, id: TaskId) -> Result<()> {
        self.change_one("DELETE FROM tasks WHERE id = ?1", [id.0], Entity::Task)
            .await
    }

    async fn task_counts(&self, query: &TaskQuery, now: DateTime<Utc>) -> Result<TaskCounts> {
        let query = query.clone();
        self.read(move |conn| {
            let tx = conn.transaction()?;
            if query.tally_serves() {
                Ok(tallied_counts(&tx, &query, now)?)
            } else {
                Ok(scanned_counts(&tx, &query, now)?)
            }
        })
        .await
    }

    async fn delete_done_tasks_before(&self, cutoff: DateTime<Utc>) -> Result<u64> {
        self.write(move |conn| {
            let n = conn
                .prepare_cached(&format!(
                    "DELETE FROM tasks WHERE status = {DONE_RANK} AND completed_at < ?1"
                ))?
                .execute([codec::micros(cutoff)])?;
            Ok(n as u64)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use saas_core::projects::{TaskOrderField, TaskOrdering};

    use super::*;

    /// `?ordering=-started_at` walks `tasks_by_started` (tenant schema
    /// version 4) instead of sorting the tasks.
    #[test]
    fn latest_started_first_walks_the_index() {
        let mut conn = Connection::open_in_memory().expect("open");
        crate::schema::TenantSchema::new(0)
            .migrate(&mut conn, std::path::Path::new(":memory:"))
            .expect("migrate");
        let order = TaskOrdering {
            field: TaskOrderField::StartedAt,
            descending: true,
        }
        .order_by(&ORDER);
        let sql = format!(
            "EXPLAIN QUERY PLAN {} WHERE 1 = 1 ORDER BY {order} LIMIT 20 OFFSET 0",
            task_select(true)
        );
        let mut stmt = conn.prepare(&sql).expect("explain");
        let plan: Vec<String> = stmt
            .query_map([], |r| r.get(3))
            .expect("plan")
            .collect::<rusqlite::Result<_>>()
            .expect("rows");
        let plan = plan.join("\n");
        assert!(plan.contains("tasks_by_started"), "{plan}");
        assert!(!plan.contains("TEMP B-TREE"), "{plan}");
    }
}
