//! The handle to one tenant's schema: every [`TenantStore`] method.
//!
//! Statements are written once as templates whose table names carry a `{s}`
//! prefix, and rendered per handle: with the quoted tenant schema
//! ([`Routing::QualifiedSql`]), or with nothing when the handle routes with
//! `SET LOCAL search_path` inside each unit of work
//! ([`Routing::SetLocalSearchPath`]). Either way no session state outlives a
//! unit of work, so a pooled connection (or a PgBouncer server connection in
//! transaction mode) never carries one tenant into the next request.

use std::fmt;
use std::sync::{Arc, LazyLock};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use saas_core::error::{Entity, Error, Resource, Result};
use saas_core::import::Inventory;
use saas_core::projects::{
    NewProjectRecord, NewTaskRecord, Priority, Project, ProjectCounts, ProjectId, ProjectStatus,
    Scope, Task, TaskCounts, TaskId, TaskQuery, TaskStatus,
};
use saas_core::query::{DONE_RANK, OrderSpelling, TaskCondition};
use saas_core::store::{
    DashboardCounts, DashboardQuery, Page, PageRequest, RefreshOutcome, RefreshTokenRecord,
    TenantStore,
};
use saas_core::tenancy::TenantId;
use saas_core::updates::{Columns, ProjectChanges, TaskChanges, UserChanges, Value};
use saas_core::users::{NewUserRecord, User, UserId};
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::query::Query;
use sqlx::{AssertSqlSafe, PgPool, Postgres, QueryBuilder, Row};
use uuid::Uuid;

use crate::affinity::{Pick, Route};
use crate::error::{SqlxResultExt, corrupt};
use crate::rows::{self, count, small};
use crate::unit::Unit;
use crate::{PgConfig, Routing};

/// `SELECT` list of a user summary under table alias `$a`.
macro_rules! summary_cols {
    ($a:literal) => {
        concat!(
            $a,
            ".id AS ",
            $a,
            "_id, ",
            $a,
            ".username AS ",
            $a,
            "_username, ",
            $a,
            ".email AS ",
            $a,
            "_email, ",
            $a,
            ".first_name AS ",
            $a,
            "_first_name, ",
            $a,
            ".last_name AS ",
            $a,
            "_last_name, ",
            $a,
            ".role AS ",
            $a,
            "_role"
        )
    };
}

macro_rules! user_cols {
    () => {
        "id, username, email, first_name, last_name, role, department, is_active, is_owner, \
         last_login, date_joined, token_version"
    };
}

/// A user's columns under table alias `$a`, named as the table names them.
macro_rules! user_cols_of {
    ($a:literal) => {
        concat!(
            $a,
            ".id, ",
            $a,
            ".username, ",
            $a,
            ".email, ",
            $a,
            ".first_name, ",
            $a,
            ".last_name, ",
            $a,
            ".role, ",
            $a,
            ".department, ",
            $a,
            ".is_active, ",
            $a,
            ".is_owner, ",
            $a,
            ".last_login, ",
            $a,
            ".date_joined, ",
            $a,
            ".token_version"
        )
    };
}

/// A project (alias `p`, columns `p_*`) with its owner (`o_*`) and its
/// members (`m_*`, one array per field, by user id) from [`project_joins`].
macro_rules! project_cols {
    () => {
        concat!(
            "p.id AS p_id, p.name AS p_name, p.description AS p_description, p.status AS p_status, \
             p.start_date AS p_start_date, p.end_date AS p_end_date, p.created_at AS p_created_at, \
             p.updated_at AS p_updated_at, ",
            summary_cols!("o"),
            ", pm.m_id, pm.m_username, pm.m_email, pm.m_first_name, pm.m_last_name, pm.m_role"
        )
    };
}

/// The members of project `p`, aggregated into one row (`pm`): a
/// project and its members in one statement.
macro_rules! members_join {
    () => {
        " LEFT JOIN LATERAL (SELECT array_agg(u.id ORDER BY u.id) AS m_id, \
         array_agg(u.username ORDER BY u.id) AS m_username, array_agg(u.email ORDER BY u.id) AS m_email, \
         array_agg(u.first_name ORDER BY u.id) AS m_first_name, \
         array_agg(u.last_name ORDER BY u.id) AS m_last_name, array_agg(u.role ORDER BY u.id) AS m_role \
         FROM {s}project_members m JOIN {s}users u ON u.id = m.user_id WHERE m.project_id = p.id) pm ON true"
    };
}

/// The joins of [`project_cols`] after a project aliased `p`.
macro_rules! project_joins {
    () => {
        concat!(" JOIN {s}users o ON o.id = p.owner_id", members_join!())
    };
}

macro_rules! task_cols {
    () => {
        concat!(
            "t.id, t.project_id, t.title, t.description, t.status, t.priority, t.due_date, \
             t.completed_at, t.created_at, t.updated_at, {started_at}, ",
            summary_cols!("a"),
            ", ",
            summary_cols!("c")
        )
    };
}

macro_rules! task_joins {
    () => {
        " JOIN {s}users c ON c.id = t.created_by LEFT JOIN {s}users a ON a.id = t.assigned_to"
    };
}

macro_rules! involved {
    ($u:literal) => {
        concat!(
            "(p.owner_id = ",
            $u,
            " OR EXISTS (SELECT 1 FROM {s}project_members m ",
            "WHERE m.project_id = p.id AND m.user_id = ",
            $u,
            "))"
        )
    };
}

/// Inserts a user (active, token version 0); also used when provisioning.
pub(crate) const INSERT_USER: &str = concat!(
    "INSERT INTO {s}users (username, username_key, email, password_hash, first_name, last_name, \
     role, department, is_active, is_owner, date_joined) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, true, $9, $10) RETURNING ",
    user_cols!()
);

/// Declares the statement set: one `Arc<str>` field per template, rendered
/// with a table prefix.
macro_rules! statements {
    ($($name:ident = $sql:expr;)*) => {
        /// Every fixed statement of a tenant handle, rendered for one routing.
        pub(crate) struct Statements {
            $($name: Arc<str>,)*
        }

        impl Statements {
            /// Renders every template with `prefix` in front of table names,
            /// for a schema with `tasks.started_at` (tenant schema version
            /// [`crate::schema::STARTED_AT_VERSION`]) or without.
            pub(crate) fn render(prefix: &str, started_at: bool) -> Self {
                let started = if started_at {
                    "t.started_at"
                } else {
                    "NULL::timestamptz AS started_at"
                };
                Statements {
                    $($name: crate::schema::render($sql, prefix)
                        .replace("{started_at}", started)
                        .into(),)*
                }
            }
        }
    };
}

statements! {
    user_by_id = concat!("SELECT ", user_cols!(), " FROM {s}users WHERE id = $1");
    credentials = concat!("SELECT ", user_cols!(), ", password_hash FROM {s}users WHERE username_key = $1");
    list_users = concat!("SELECT ", user_cols!(), " FROM {s}users ORDER BY id LIMIT $1 OFFSET $2");
    count_users = "SELECT count(*) FROM {s}users";
    lock_users = "LOCK TABLE {s}users IN SHARE ROW EXCLUSIVE MODE";
    insert_user = INSERT_USER;
    // Partial updates: `{set}` becomes the assignments of the columns a
    // change writes, bound from $2 on (`update_query`).
    update_user = concat!("UPDATE {s}users SET {set} WHERE id = $1 RETURNING ", user_cols!());
    set_password = "UPDATE {s}users SET password_hash = $2, token_version = token_version + 1 WHERE id = $1";
    replace_password_hash = "UPDATE {s}users SET password_hash = $3 WHERE id = $1 AND password_hash = $2";
    record_login = "UPDATE {s}users SET last_login = $2 WHERE id = $1";

    insert_refresh = "INSERT INTO {s}refresh_tokens (jti, family, user_id, expires_at) VALUES ($1, $2, $3, $4)";
    // Rotations and revocations of a family take its lock first, so that a
    // revocation's UPDATE never runs beside a rotation inserting a
    // successor it would not see.
    lock_family = "SELECT pg_advisory_xact_lock($1)";
    lock_refresh = "SELECT family, user_id, used, revoked FROM {s}refresh_tokens WHERE jti = $1 FOR UPDATE";
    revoke_family = "UPDATE {s}refresh_tokens SET revoked = true WHERE family = $1";
    mark_refresh_used = "UPDATE {s}refresh_tokens SET used = true WHERE jti = $1";
    prune_refresh = "DELETE FROM {s}refresh_tokens WHERE expires_at < $1";

    project_by_id = concat!(
        "SELECT ", project_cols!(), " FROM {s}projects p", project_joins!(), " WHERE p.id = $1"
    );
    // Left joins from one row: the project and the user, either missing.
    project_and_user = concat!(
        "SELECT ", project_cols!(), ", ", user_cols_of!("u"),
        " FROM (SELECT) one LEFT JOIN {s}projects p ON p.id = $1 \
         LEFT JOIN {s}users o ON o.id = p.owner_id", members_join!(),
        " LEFT JOIN {s}users u ON u.id = $2"
    );
    list_projects_all = concat!(
        "SELECT ", project_cols!(), " FROM {s}projects p", project_joins!(),
        " ORDER BY p.id DESC LIMIT $1 OFFSET $2"
    );
    list_projects_involved = concat!(
        "SELECT ", project_cols!(), " FROM {s}projects p", project_joins!(), " WHERE ",
        involved!("$3"), " ORDER BY p.id DESC LIMIT $1 OFFSET $2"
    );
    // Then the project's task counts, `) tc ON true WHERE p.id = …`.
    project_with_counts_head = concat!(
        "SELECT ", project_cols!(), ", tc.* FROM {s}projects p", project_joins!(), " LEFT JOIN LATERAL ("
    );
    count_projects_all = "SELECT count(*) FROM {s}projects";
    count_projects_involved = concat!("SELECT count(*) FROM {s}projects p WHERE ", involved!("$1"));
    project_counts_all = "SELECT status, count(*) AS n FROM {s}projects GROUP BY status";
    project_counts_involved = concat!(
        "SELECT p.status, count(*) AS n FROM {s}projects p WHERE ", involved!("$1"), " GROUP BY p.status"
    );
    lock_projects = "LOCK TABLE {s}projects IN SHARE ROW EXCLUSIVE MODE";
    count_projects = "SELECT count(*) FROM {s}projects";
    insert_project = concat!(
        "WITH p AS (INSERT INTO {s}projects (name, description, status, start_date, end_date, owner_id, \
         created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7) RETURNING *) \
         SELECT ", project_cols!(), " FROM p", project_joins!()
    );
    update_project = concat!(
        "WITH p AS (UPDATE {s}projects SET {set} WHERE id = $1 RETURNING *) \
         SELECT ", project_cols!(), " FROM p", project_joins!()
    );
    delete_project = "DELETE FROM {s}projects WHERE id = $1";
    add_member = "INSERT INTO {s}project_members (project_id, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING";
    remove_member = "DELETE FROM {s}project_members WHERE project_id = $1 AND user_id = $2";

    task_by_id = concat!("SELECT ", task_cols!(), " FROM {s}tasks t", task_joins!(), " WHERE t.id = $1");
    task_with_project = concat!(
        "SELECT ", task_cols!(), ", ", project_cols!(), " FROM {s}tasks t", task_joins!(),
        " JOIN {s}projects p ON p.id = t.project_id", project_joins!(), " WHERE t.id = $1"
    );
    task_list = concat!("SELECT ", task_cols!(), " FROM {s}tasks t", task_joins!());
    project_tasks_after = concat!("SELECT ", task_cols!(), " FROM {s}tasks t", task_joins!(),
        " WHERE t.project_id = $1 AND t.id > $2 ORDER BY t.id LIMIT $3");
    share_project = "SELECT 1 FROM {s}projects WHERE id = $1 FOR KEY SHARE";
    lock_project = "SELECT 1 FROM {s}projects WHERE id = $1 FOR NO KEY UPDATE";
    count_project_tasks = "SELECT count(*) FROM {s}tasks WHERE project_id = $1";
    insert_task = concat!(
        "WITH t AS (INSERT INTO {s}tasks (project_id, title, description, status, priority, assigned_to, \
         created_by, due_date, completed_at, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10) RETURNING *) \
         SELECT ", task_cols!(), " FROM t", task_joins!()
    );
    update_task = concat!(
        "WITH t AS (UPDATE {s}tasks SET {set} WHERE id = $1 RETURNING *) \
         SELECT ", task_cols!(), " FROM t", task_joins!()
    );
    lock_task_project = "SELECT project_id FROM {s}tasks WHERE id = $1 FOR NO KEY UPDATE";
    delete_task = "DELETE FROM {s}tasks WHERE id = $1";
    delete_done_before = "DELETE FROM {s}tasks WHERE status = {done} AND completed_at < $1";
}

/// Whether a handle's statements become named prepared statements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Prepare {
    /// No: unnamed statements only.
    Never,
    /// Yes, all of them.
    Always,
    /// Decided for each request by the store (see `crate::hot`); until
    /// then, no.
    Busiest,
}

/// A [`TenantStore`] scoped to one tenant schema.
#[derive(Clone)]
pub(crate) struct PgTenant {
    tenant_id: TenantId,
    /// The tenant's sub-pools.
    route: Route,
    /// Table prefix the statements were rendered with (for dynamic SQL).
    prefix: Arc<str>,
    sql: Arc<Statements>,
    /// `BEGIN; SET LOCAL search_path …` when routing by search path.
    begin: Option<Arc<str>>,
    /// `BEGIN; SET LOCAL search_path …` for host applications' access
    /// (`crate::with_tenant_tx`), whatever the routing; `None` on the
    /// benchmarks' baseline handles.
    scoped_begin: Option<Arc<str>>,
    /// Whether statements become named prepared statements in sqlx's
    /// per-connection cache, or stay unnamed (parsed on every execution).
    prepare: Prepare,
    /// Every unit of work is a transaction (behind a transaction pooler).
    pooler: bool,
    /// Whether the schema has the tally triggers (tenant schema version
    /// [`crate::schema::TALLY_VERSION`] or later). Counts are summed from
    /// the schema's `task_tally` only then; a tenant `Store::migrate` has
    /// not reached yet is counted from its tasks, slower but exact.
    tallied: bool,
}

impl fmt::Debug for PgTenant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgTenant")
            .field("tenant_id", &self.tenant_id)
            .field(
                "routing",
                &if self.begin.is_some() {
                    "set_local"
                } else {
                    "qualified"
                },
            )
            .field("prepare", &self.prepare)
            .field("pooler", &self.pooler)
            .field("tallied", &self.tallied)
            .finish_non_exhaustive()
    }
}

/// A statement of a tenant handle, not yet run.
type PgQuery = Query<'static, Postgres, PgArguments>;

/// The partial update `template` (a rendered statement with `{set}`) for
/// row `id` ($1): the assignments of `columns` from $2 on, then `extra`
/// (an assignment of the dialect's own).
fn update_query(
    unit: &Unit,
    template: &str,
    id: i64,
    columns: &Columns,
    extra: Option<&str>,
) -> PgQuery {
    let mut set = columns.assignments(2, |i| format!("${i}"));
    if let Some(extra) = extra {
        if !set.is_empty() {
            set.push_str(", ");
        }
        set.push_str(extra);
    }
    let mut query = sqlx::query(AssertSqlSafe(template.replace("{set}", &set)))
        .persistent(unit.prepared)
        .bind(id);
    for (_, value) in columns.iter() {
        query = match value.clone() {
            Value::Text(s) => query.bind(s),
            Value::Rank(r) => query.bind(small(r)),
            Value::Bool(b) => query.bind(b),
            Value::Id(id) => query.bind(id),
            Value::Time(t) => query.bind(t),
            Value::Date(d) => query.bind(d),
        };
    }
    query
}

/// A rendered statement (from constant templates and a quoted, validated
/// schema name), named or not as `unit` says.
fn q(unit: &Unit, sql: &Arc<str>) -> PgQuery {
    sqlx::query(AssertSqlSafe(Arc::clone(sql))).persistent(unit.prepared)
}

impl PgTenant {
    /// A handle for `tenant_id` whose tables live in `schema` (unquoted,
    /// validated) on the sub-pools of `route`, with statements for tenant
    /// schema `version` (the schema's, or the store's newest when the
    /// schema is newer). `shared_unqualified` are the statement sets
    /// rendered without a prefix (without and with `started_at`), shared
    /// by all search-path handles.
    pub(crate) fn new(
        tenant_id: TenantId,
        route: Route,
        schema: &str,
        version: i32,
        config: &PgConfig,
        shared_unqualified: &[Arc<Statements>; 2],
    ) -> Self {
        let tallied = version >= crate::schema::TALLY_VERSION;
        let started_at = version >= crate::schema::STARTED_AT_VERSION;
        let quoted = crate::schema::quote_ident(schema);
        let pooler = config.transaction_pooler;
        let named = config.named_statements();
        // pg_temp listed last so a session temp table can never shadow a tenant table.
        let scoped: Arc<str> = format!("BEGIN; SET LOCAL search_path TO {quoted}, pg_temp").into();
        let qualified = |prepare: Prepare| {
            let prefix = format!("{quoted}.");
            PgTenant {
                tenant_id,
                route: route.clone(),
                sql: Arc::new(Statements::render(&prefix, started_at)),
                prefix: prefix.into(),
                begin: None,
                scoped_begin: Some(Arc::clone(&scoped)),
                prepare,
                pooler,
                tallied,
            }
        };
        match config.routing {
            Routing::QualifiedSql if named => qualified(Prepare::Busiest),
            Routing::QualifiedPrepared if named => qualified(Prepare::Always),
            Routing::QualifiedSql | Routing::QualifiedPrepared | Routing::QualifiedUnnamed => {
                qualified(Prepare::Never)
            }
            Routing::SetLocalSearchPath => PgTenant {
                tenant_id,
                route,
                sql: Arc::clone(&shared_unqualified[usize::from(started_at)]),
                prefix: "".into(),
                begin: Some(Arc::clone(&scoped)),
                scoped_begin: Some(Arc::clone(&scoped)),
                prepare: if named {
                    Prepare::Always
                } else {
                    Prepare::Never
                },
                pooler,
                tallied,
            },
        }
    }

    /// The single-schema baseline: unqualified SQL on a pool whose
    /// connections already have the tenant schema as their search path
    /// (benchmarks only, on tenants they provisioned: current schemas).
    pub(crate) fn baseline(
        tenant_id: TenantId,
        pool: PgPool,
        shared_unqualified: &Arc<Statements>,
    ) -> Self {
        PgTenant {
            tenant_id,
            route: Route::single(pool),
            sql: Arc::clone(shared_unqualified),
            prefix: "".into(),
            begin: None,
            scoped_begin: None,
            prepare: Prepare::Always,
            pooler: false,
            tallied: true,
        }
    }

    /// The pool for the next unit of work and the statement opening a
    /// transaction routed to this tenant's schema, for host applications'
    /// access.
    pub(crate) fn scoped(&self) -> Option<(Pick<'_>, &Arc<str>)> {
        self.scoped_begin.as_ref().map(|b| (self.route.pick(), b))
    }

    /// The tenant's sub-pools.
    pub(crate) fn route(&self) -> &Route {
        &self.route
    }

    /// A unit for reads or one autocommitted statement.
    async fn auto(&self) -> Result<Unit> {
        let pick = self.route.pick();
        let mut unit = match &self.begin {
            None => Unit::auto(pick.pool, self.pooler).await?,
            Some(begin) => Unit::begin_with(pick.pool, begin).await?,
        };
        unit.prepared = pick.home && self.prepare_now();
        if !unit.prepared {
            pick.lease.count_cold();
        }
        unit.lease = Some(pick.lease);
        Ok(unit)
    }

    /// A unit for several statements that must commit together.
    async fn tx(&self) -> Result<Unit> {
        let pick = self.route.pick();
        let mut unit = match &self.begin {
            None => Unit::tx(pick.pool).await?,
            Some(begin) => Unit::begin_with(pick.pool, begin).await?,
        };
        unit.prepared = pick.home && self.prepare_now();
        if !unit.prepared {
            pick.lease.count_cold();
        }
        unit.lease = Some(pick.lease);
        Ok(unit)
    }

    /// Whether this unit of work's statements are to be prepared.
    fn prepare_now(&self) -> bool {
        self.prepare == Prepare::Always
    }

    /// How this handle prepares its statements.
    pub(crate) fn prepare(&self) -> Prepare {
        self.prepare
    }

    /// This handle for one request, whose statements are prepared or not:
    /// a shallow copy (the rendered statements and the pool are shared).
    pub(crate) fn for_request(&self, prepared: bool) -> Self {
        PgTenant {
            prepare: if prepared {
                Prepare::Always
            } else {
                Prepare::Never
            },
            ..self.clone()
        }
    }

    /// Runs the statement `sql`, bound by `bind`, as its own unit of work;
    /// returns its row, if any.
    async fn fetch_optional(
        &self,
        sql: &Arc<str>,
        bind: impl FnOnce(PgQuery) -> PgQuery,
    ) -> Result<Option<PgRow>> {
        let mut unit = self.auto().await?;
        let row = bind(q(&unit, sql)).fetch_optional(unit.conn()).await.db()?;
        unit.finish().await?;
        Ok(row)
    }

    /// Runs the statement `qb` built as its own unit of work; returns its
    /// rows.
    async fn fetch_built(&self, qb: &mut QueryBuilder<Postgres>) -> Result<Vec<PgRow>> {
        let mut unit = self.auto().await?;
        let rows = qb
            .build()
            .persistent(unit.prepared)
            .fetch_all(unit.conn())
            .await
            .db()?;
        unit.finish().await?;
        Ok(rows)
    }

    /// [`PgTenant::fetch_optional`], its row read by `read`.
    async fn find<T>(
        &self,
        sql: &Arc<str>,
        read: fn(&PgRow) -> Result<T>,
        bind: impl FnOnce(PgQuery) -> PgQuery,
    ) -> Result<Option<T>> {
        self.fetch_optional(sql, bind)
            .await?
            .as_ref()
            .map(read)
            .transpose()
    }

    /// Runs `insert` (a statement returning the new row) on `unit`, which
    /// this finishes, and reads the row with `read`.
    async fn insert<T>(
        &self,
        mut unit: Unit,
        insert: Query<'_, Postgres, PgArguments>,
        read: fn(&PgRow) -> Result<T>,
    ) -> Result<T> {
        let row = insert.fetch_one(unit.conn()).await.db()?;
        let created = read(&row)?;
        unit.finish().await?;
        Ok(created)
    }

    /// Runs the statement `sql`, bound by `bind`, as its own unit of work;
    /// returns how many rows it changed.
    async fn execute(&self, sql: &Arc<str>, bind: impl FnOnce(PgQuery) -> PgQuery) -> Result<u64> {
        let mut unit = self.auto().await?;
        let done = bind(q(&unit, sql)).execute(unit.conn()).await.db()?;
        unit.finish().await?;
        Ok(done.rows_affected())
    }

    /// Runs the statement `sql`, bound by `bind`, as its own unit of work;
    /// `NotFound` (`entity`) when it changed no row.
    async fn change_one(
        &self,
        sql: &Arc<str>,
        entity: Entity,
        bind: impl FnOnce(PgQuery) -> PgQuery,
    ) -> Result<()> {
        if self.execute(sql, bind).await? == 0 {
            return Err(Error::not_found(entity));
        }
        Ok(())
    }

    /// The count `sql` (bound by `bind`) answers, on `unit`.
    async fn count_on(
        &self,
        unit: &mut Unit,
        sql: &Arc<str>,
        bind: impl FnOnce(PgQuery) -> PgQuery,
    ) -> Result<u64> {
        let row = bind(q(unit, sql)).fetch_one(unit.conn()).await.db()?;
        count(row.try_get::<i64, _>(0).db()?)
    }

    /// On `unit`, the count the first statement of `sql` answers and the
    /// rows of `page` the second lists (its `$1` and `$2` are the limit and
    /// the offset); `bind` binds the rest of both (the count's from `$1`).
    async fn page_on(
        &self,
        unit: &mut Unit,
        page: PageRequest,
        (count, list): (&Arc<str>, &Arc<str>),
        bind: impl Fn(PgQuery) -> PgQuery,
    ) -> Result<(u64, Vec<PgRow>)> {
        let (limit, offset) = page.limit_offset();
        let total = self.count_on(unit, count, &bind).await?;
        let found = bind(q(unit, list).bind(limit).bind(offset))
            .fetch_all(unit.conn())
            .await
            .db()?;
        Ok((total, found))
    }

    /// `NotFound` (`entity`) unless `sql`, bound to `id`, finds a row on
    /// `unit` (it may lock it).
    async fn require(
        &self,
        unit: &mut Unit,
        sql: &Arc<str>,
        id: i64,
        entity: Entity,
    ) -> Result<()> {
        let found = q(unit, sql)
            .bind(id)
            .fetch_optional(unit.conn())
            .await
            .db()?;
        match found {
            Some(_) => Ok(()),
            None => Err(Error::not_found(entity)),
        }
    }

    /// Stores a new, unused refresh token on `unit`.
    async fn insert_refresh_on(&self, unit: &mut Unit, token: &RefreshTokenRecord) -> Result<()> {
        q(unit, &self.sql.insert_refresh)
            .bind(token.jti)
            .bind(token.family)
            .bind(token.user_id.0)
            .bind(token.expires_at)
            .execute(unit.conn())
            .await
            .db()?;
        Ok(())
    }

    /// `NotFound` unless `project` exists; locks it against deletion
    /// (`FOR KEY SHARE`) until `unit` ends.
    async fn require_project(&self, unit: &mut Unit, project: ProjectId) -> Result<()> {
        let sql = &self.sql.share_project;
        self.require(unit, sql, project.0, Entity::Project).await
    }

    /// `PlanLimitExceeded` when the count `sql` (bound by `bind`) answers
    /// on `unit` has reached `limit`.
    async fn within_limit(
        &self,
        unit: &mut Unit,
        (limit, resource): (u64, Resource),
        sql: &Arc<str>,
        bind: impl FnOnce(PgQuery) -> PgQuery,
    ) -> Result<()> {
        if self.count_on(unit, sql, bind).await? >= limit {
            return Err(Error::PlanLimitExceeded {
                resource,
                limit,
                plan: String::new(),
            });
        }
        Ok(())
    }

    /// Takes the table lock `lock` on `unit`, then checks the count `count`
    /// answers against `limit`: under the lock, no concurrent creator can
    /// insert between the count and the insert that follows.
    async fn locked_within_limit(
        &self,
        unit: &mut Unit,
        lock: &Arc<str>,
        count: &Arc<str>,
        limit: (u64, Resource),
    ) -> Result<()> {
        q(unit, lock).execute(unit.conn()).await.db()?;
        self.within_limit(unit, limit, count, |q| q).await
    }

    /// The project `row` read (or `NotFound`), with its members, once
    /// `unit` (which this finishes) has committed.
    async fn finish_project(&self, unit: Unit, row: Option<PgRow>) -> Result<Project> {
        unit.finish().await?;
        row.as_ref()
            .map(rows::project)
            .transpose()?
            .ok_or(Error::not_found(Entity::Project))
    }

    /// Runs the membership statement `sql` for `project` and `user` on
    /// `unit`, which this finishes, and returns the project as it now is.
    async fn change_member(
        &self,
        mut unit: Unit,
        sql: &Arc<str>,
        project: ProjectId,
        user: UserId,
    ) -> Result<Project> {
        q(&unit, sql)
            .bind(project.0)
            .bind(user.0)
            .execute(unit.conn())
            .await
            .db()?;
        self.project_on(unit, project).await
    }

    /// The project `id` with its members, on `unit`, which this finishes.
    async fn project_on(&self, mut unit: Unit, id: ProjectId) -> Result<Project> {
        let row = q(&unit, &self.sql.project_by_id)
            .bind(id.0)
            .fetch_optional(unit.conn())
            .await
            .db()?;
        self.finish_project(unit, row).await
    }

    /// Appends ` AND …` for each of `query`'s conditions on `target`.
    fn push_conditions(&self, qb: &mut QueryBuilder<Postgres>, query: &TaskQuery, target: Target) {
        let s = &*self.prefix;
        let (a, assignee) = match target {
            Target::Tasks => ("t", "assigned_to"),
            // Unassigned tasks are tallied under 0, which is no user's id.
            Target::Tally => ("c", "assignee"),
        };
        for condition in query.conditions() {
            match condition {
                TaskCondition::InvolvedIn(user) => {
                    qb.push(format!(
                        " AND {a}.project_id IN (SELECT id FROM {s}projects WHERE owner_id = "
                    ));
                    qb.push_bind(user.0);
                    qb.push(format!(
                        " UNION SELECT project_id FROM {s}project_members WHERE user_id = "
                    ));
                    qb.push_bind(user.0);
                    qb.push(")");
                }
                TaskCondition::Project(project) => {
                    qb.push(format!(" AND {a}.project_id = "))
                        .push_bind(project.0);
                }
                TaskCondition::Status(status) => {
                    qb.push(format!(" AND {a}.status = "))
                        .push_bind(small(status.rank()));
                }
                TaskCondition::Priority(priority) => {
                    qb.push(format!(" AND {a}.priority = "))
                        .push_bind(small(priority.rank()));
                }
                TaskCondition::AssignedTo(user) => {
                    qb.push(format!(" AND {a}.{assignee} = ")).push_bind(user.0);
                }
                TaskCondition::Search(text) => {
                    // strpos is a literal match (no LIKE wildcards); under the "C"
                    // collation lower() folds ASCII only, exactly like the reference.
                    let needle = text.to_ascii_lowercase();
                    qb.push(" AND (strpos(lower(t.title COLLATE \"C\"), ")
                        .push_bind(needle.clone())
                        .push(") > 0 OR strpos(lower(t.description COLLATE \"C\"), ")
                        .push_bind(needle)
                        .push(") > 0)");
                }
                TaskCondition::Overdue(now) => {
                    qb.push(format!(" AND t.status <> {DONE_RANK} AND t.due_date < "))
                        .push_bind(now);
                }
                TaskCondition::DueFrom(from) => {
                    qb.push(" AND t.due_date >= ").push_bind(from);
                }
                TaskCondition::DueUntil(until) => {
                    qb.push(" AND t.due_date < ").push_bind(until);
                }
            }
        }
    }

    /// Whether this handle sums `query`'s counts from the schema's tally.
    fn tallies(&self, query: &TaskQuery) -> bool {
        self.tallied && query.tally_serves()
    }

    /// The statement listing the page `page` of the tasks `query` matches,
    /// each beside their count (summed from the tally when it serves the
    /// query, else counted): one row of NULLs beside it past the last page.
    fn list_tasks_query(&self, query: &TaskQuery, page: PageRequest) -> QueryBuilder<Postgres> {
        let s = &*self.prefix;
        let (sql, target) = if self.tallies(query) {
            (
                format!(
                    "SELECT * FROM (SELECT coalesce(sum(c.n), 0)::bigint AS total \
                     FROM {s}task_tally c WHERE true"
                ),
                Target::Tally,
            )
        } else {
            (
                format!("SELECT * FROM (SELECT count(*) AS total FROM {s}tasks t WHERE true"),
                Target::Tasks,
            )
        };
        let mut qb = QueryBuilder::<Postgres>::new(sql);
        self.push_conditions(&mut qb, query, target);
        qb.push(") n");
        self.push_beside_page(&mut qb, query, page);
        qb
    }

    /// The statement counting the tasks `query` matches by status and
    /// priority (the columns of [`rank_columns`]), then those overdue at `now`.
    fn task_counts_query(&self, query: &TaskQuery, now: DateTime<Utc>) -> QueryBuilder<Postgres> {
        let mut qb = QueryBuilder::<Postgres>::new("");
        self.push_task_counts(&mut qb, query, now);
        qb
    }

    /// Appends [`PgTenant::task_counts_query`]'s statement to `qb`.
    fn push_task_counts(
        &self,
        qb: &mut QueryBuilder<Postgres>,
        query: &TaskQuery,
        now: DateTime<Utc>,
    ) {
        let s = &*self.prefix;
        if self.tallies(query) {
            // By status and priority from the tally; overdue from the
            // partial index of open tasks by due date. One statement.
            qb.push(format!(
                "SELECT {}, (SELECT count(*) FROM {s}tasks t WHERE true",
                *TALLY_SUMS
            ));
            self.push_conditions(qb, &query.overdue_as_of(now), Target::Tasks);
            qb.push(format!(") AS overdue FROM {s}task_tally c WHERE true"));
            self.push_conditions(qb, query, Target::Tally);
        } else {
            qb.push(format!(
                "SELECT {}, count(*) FILTER (WHERE t.status <> {DONE_RANK} AND t.due_date < ",
                *TASK_COUNTS
            ));
            qb.push_bind(now)
                .push(format!(") AS overdue FROM {s}tasks t WHERE true"));
            self.push_conditions(qb, query, Target::Tasks);
        }
    }

    /// Appends the statement listing one page of the tasks `query` matches
    /// to `qb`.
    fn push_task_page(
        &self,
        qb: &mut QueryBuilder<Postgres>,
        query: &TaskQuery,
        page: PageRequest,
    ) {
        let (limit, offset) = page.limit_offset();
        qb.push(&*self.sql.task_list);
        qb.push(" WHERE true");
        self.push_conditions(qb, query, Target::Tasks);
        qb.push(" ORDER BY ").push(query.ordering.order_by(&ORDER));
        qb.push(" LIMIT ")
            .push_bind(limit)
            .push(" OFFSET ")
            .push_bind(offset);
    }

    /// The dashboard's statement (see [`TenantStore::dashboard`]): one row
    /// of counts — projects in scope by status and every project
    /// ([`PROJECT_COUNTS`]), the counts of the tasks in scope and of the
    /// user's ([`rank_columns`] and overdue, each), the users — beside
    /// each recent task (a row of NULLs when there is none), in their order.
    fn dashboard_query(
        &self,
        query: &DashboardQuery,
        now: DateTime<Utc>,
    ) -> QueryBuilder<Postgres> {
        let s = &*self.prefix;
        let mut qb = QueryBuilder::<Postgres>::new(format!(
            "SELECT * FROM (SELECT {}, (SELECT count(*) FROM {s}projects) AS all_projects \
             FROM {s}projects p WHERE true",
            *PROJECT_COUNTS
        ));
        if let Scope::InvolvedIn(user) = query.scope {
            qb.push(" AND (p.owner_id = ").push_bind(user.0);
            qb.push(format!(
                " OR EXISTS (SELECT 1 FROM {s}project_members m WHERE m.project_id = p.id AND m.user_id = "
            ));
            qb.push_bind(user.0).push("))");
        }
        qb.push(") pc, (");
        self.push_task_counts(&mut qb, &query.tasks, now);
        qb.push(") ac, (");
        self.push_task_counts(&mut qb, &query.mine, now);
        qb.push(format!(") mc, (SELECT count(*) AS users FROM {s}users) uc"));
        self.push_beside_page(&mut qb, &query.recent, query.recent_page);
        qb
    }

    /// Appends to a statement whose `FROM` yields one row the page `page`
    /// of the tasks `query` matches, as a lateral join (alias `t`): that row
    /// beside each task, in the page's order, or once beside NULLs when the
    /// page is empty ([`tasks_beside`] reads them).
    fn push_beside_page(
        &self,
        qb: &mut QueryBuilder<Postgres>,
        query: &TaskQuery,
        page: PageRequest,
    ) {
        qb.push(" LEFT JOIN LATERAL (");
        self.push_task_page(qb, query, page);
        // The outer order is the page's, spelled on its columns.
        qb.push(") t ON true ORDER BY ")
            .push(query.ordering.order_by(&ORDER));
    }

    /// One page of the tasks `query` matches, on `unit`.
    async fn task_page_on(
        &self,
        unit: &mut Unit,
        query: &TaskQuery,
        page: PageRequest,
    ) -> Result<Vec<Task>> {
        let mut qb = QueryBuilder::<Postgres>::new("");
        self.push_task_page(&mut qb, query, page);
        let found = qb
            .build()
            .persistent(unit.prepared)
            .fetch_all(unit.conn())
            .await
            .db()?;
        found.iter().map(rows::task).collect()
    }
}

/// What the conditions of a task query are applied to.
#[derive(Debug, Clone, Copy)]
enum Target {
    /// The tasks, aliased `t`.
    Tasks,
    /// The schema's `task_tally`, aliased `c`, for a query it serves.
    Tally,
}

/// `SELECT` list of [`TenantStore::task_counts`] but `overdue`, in the
/// order it reads them: the total, then one column per status (`s<rank>`)
/// and per priority (`p<rank>`). `all` counts every row; `one("status = 2")`
/// counts the rows where that holds.
fn rank_columns(all: &str, one: impl Fn(&str) -> String) -> String {
    let by_status = TaskStatus::ALL.iter().map(|s| {
        format!(
            "{} AS s{}",
            one(&format!("status = {}", s.rank())),
            s.rank()
        )
    });
    let by_priority = Priority::ALL.iter().map(|p| {
        format!(
            "{} AS p{}",
            one(&format!("priority = {}", p.rank())),
            p.rank()
        )
    });
    std::iter::once(format!("{all} AS total"))
        .chain(by_status)
        .chain(by_priority)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The tasks of rows that carry one beside other columns (see
/// `PgTenant::push_beside_page`): every row whose task id is not NULL.
fn tasks_beside(found: &[PgRow]) -> Result<Vec<Task>> {
    let mut tasks = Vec::with_capacity(found.len());
    for row in found {
        if row.try_get::<Option<i64>, _>("id").db()?.is_some() {
            tasks.push(rows::task(row)?);
        }
    }
    Ok(tasks)
}

/// Columns of a task count: [`rank_columns`], then overdue.
const TASK_COUNT_COLUMNS: usize = 1 + TaskStatus::ALL.len() + Priority::ALL.len() + 1;

/// The task counts in the [`TASK_COUNT_COLUMNS`] columns of `row` from
/// `at` on: [`rank_columns`] order, then overdue.
fn task_counts_at(row: &PgRow, at: usize) -> Result<TaskCounts> {
    let get = |i: usize| -> Result<u64> { count(row.try_get::<i64, _>(at + i).db()?) };
    let statuses = TaskStatus::ALL.len();
    let mut counts = TaskCounts {
        total: get(0)?,
        overdue: get(TASK_COUNT_COLUMNS - 1)?,
        ..TaskCounts::default()
    };
    for (i, slot) in counts.by_status.iter_mut().enumerate() {
        *slot = get(1 + i)?;
    }
    for (i, slot) in counts.by_priority.iter_mut().enumerate() {
        *slot = get(1 + statuses + i)?;
    }
    Ok(counts)
}

/// The projects aliased `p` counted (`projects`), then by status
/// (`ps<rank>`), in [`ProjectStatus::ALL`] order.
static PROJECT_COUNTS: LazyLock<String> = LazyLock::new(|| {
    std::iter::once("count(*) AS projects".to_owned())
        .chain(ProjectStatus::ALL.iter().map(|s| {
            format!(
                "count(*) FILTER (WHERE p.status = {}) AS ps{}",
                s.rank(),
                s.rank()
            )
        }))
        .collect::<Vec<_>>()
        .join(", ")
});

/// [`rank_columns`] summing the tally rows aliased `c`.
static TALLY_SUMS: LazyLock<String> = LazyLock::new(|| {
    rank_columns("coalesce(sum(c.n), 0)::bigint", |cond| {
        format!("coalesce(sum(c.n) FILTER (WHERE c.{cond}), 0)::bigint")
    })
});

/// [`rank_columns`] counting the tasks aliased `t`.
static TASK_COUNTS: LazyLock<String> = LazyLock::new(|| {
    rank_columns("count(*)", |cond| {
        format!("count(*) FILTER (WHERE t.{cond})")
    })
});

/// Binds a new user's fields to [`INSERT_USER`].
pub(crate) fn bind_new_user<'q>(
    query: sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments>,
    user: &'q NewUserRecord,
) -> sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments> {
    query
        .bind(user.username.as_str())
        .bind(user.username.key())
        .bind(user.email.as_str())
        .bind(&user.password_hash)
        .bind(&user.first_name)
        .bind(&user.last_name)
        .bind(user.role.as_str())
        .bind(&user.department)
        .bind(user.is_owner)
        .bind(user.date_joined)
}

/// How PostgreSQL writes a task list's order keys: titles under the "C"
/// collation (bytes), missing due dates last either way.
const ORDER: OrderSpelling = OrderSpelling {
    column: "t.{field} {dir}",
    nullable: "t.{field} {dir} NULLS LAST",
    title: "t.title COLLATE \"C\" {dir}",
};

#[async_trait]
impl TenantStore for PgTenant {
    fn tenant_id(&self) -> TenantId {
        self.tenant_id
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn dialect(&self) -> Option<saas_core::apps::Dialect> {
        Some(saas_core::apps::Dialect::Postgres)
    }

    async fn create_user(&self, user: &NewUserRecord, max_users: Option<u64>) -> Result<User> {
        let mut unit = self.tx().await?;
        if let Some(limit) = max_users {
            let (lock, count) = (&self.sql.lock_users, &self.sql.count_users);
            self.locked_within_limit(&mut unit, lock, count, (limit, Resource::Users))
                .await?;
        }
        let insert = bind_new_user(q(&unit, &self.sql.insert_user), user);
        self.insert(unit, insert, rows::user).await
    }

    async fn user(&self, id: UserId) -> Result<Option<User>> {
        self.find(&self.sql.user_by_id, rows::user, |q| q.bind(id.0))
            .await
    }

    async fn credentials(&self, username_key: &str) -> Result<Option<(User, String)>> {
        let row = self
            .fetch_optional(&self.sql.credentials, |q| q.bind(username_key))
            .await?;
        rows::with_password_hash(row, rows::user)
    }

    async fn list_users(&self, page: PageRequest) -> Result<Page<User>> {
        let mut unit = self.auto().await?;
        let sql = (&self.sql.count_users, &self.sql.list_users);
        let (total, found) = self.page_on(&mut unit, page, sql, |q| q).await?;
        unit.finish().await?;
        Ok(Page {
            count: total,
            items: found.iter().map(rows::user).collect::<Result<_>>()?,
        })
    }

    async fn update_user(&self, id: UserId, changes: &UserChanges) -> Result<User> {
        let columns = changes.columns();
        if columns.is_empty() {
            return self.user(id).await?.ok_or(Error::not_found(Entity::User));
        }
        // SET expressions see the row's old values: deactivating bumps the
        // token version of a user who was active.
        let bump = (changes.is_active == Some(false))
            .then_some("token_version = token_version + CASE WHEN is_active THEN 1 ELSE 0 END");
        let mut unit = self.auto().await?;
        let row = update_query(&unit, &self.sql.update_user, id.0, &columns, bump)
            .fetch_optional(unit.conn())
            .await
            .db()?;
        unit.finish().await?;
        row.as_ref()
            .map(rows::user)
            .transpose()?
            .ok_or(Error::not_found(Entity::User))
    }

    async fn set_password(&self, id: UserId, password_hash: &str) -> Result<()> {
        self.change_one(&self.sql.set_password, Entity::User, |q| {
            q.bind(id.0).bind(password_hash)
        })
        .await
    }

    async fn replace_password_hash(&self, id: UserId, current: &str, new: &str) -> Result<bool> {
        let changed = self
            .execute(&self.sql.replace_password_hash, |q| {
                q.bind(id.0).bind(current).bind(new)
            })
            .await?;
        Ok(changed == 1)
    }

    async fn record_login(&self, id: UserId, at: DateTime<Utc>) -> Result<()> {
        self.change_one(&self.sql.record_login, Entity::User, |q| {
            q.bind(id.0).bind(at)
        })
        .await
    }

    async fn count_users(&self) -> Result<u64> {
        let mut unit = self.auto().await?;
        let n = self
            .count_on(&mut unit, &self.sql.count_users, |q| q)
            .await?;
        unit.finish().await?;
        Ok(n)
    }

    async fn inventory(&self) -> Result<Inventory> {
        let mut unit = self.auto().await?;
        let found = crate::import::inventory(unit.conn(), &self.prefix).await?;
        unit.finish().await?;
        Ok(found)
    }

    async fn insert_refresh_token(&self, token: &RefreshTokenRecord) -> Result<()> {
        let mut unit = self.auto().await?;
        self.insert_refresh_on(&mut unit, token).await?;
        unit.finish().await
    }

    async fn rotate_refresh_token(
        &self,
        used: Uuid,
        successor: &RefreshTokenRecord,
    ) -> Result<RefreshOutcome> {
        let mut unit = self.tx().await?;
        // The family's lock, keyed by the family the token claims (a
        // mismatch with the stored one is refused below): every rotation
        // and revocation of the family runs one after the other.
        let (key, _) = successor.family.as_u64_pair();
        q(&unit, &self.sql.lock_family)
            .bind(key as i64)
            .execute(unit.conn())
            .await
            .db()?;
        // FOR UPDATE serializes concurrent consumers of the same token: the
        // second one sees the first one's mark and reports reuse.
        let Some(row) = q(&unit, &self.sql.lock_refresh)
            .bind(used)
            .fetch_optional(unit.conn())
            .await
            .db()?
        else {
            unit.finish().await?;
            return Ok(RefreshOutcome::Invalid);
        };
        let family: Uuid = row.try_get("family").db()?;
        let user_id = UserId(row.try_get("user_id").db()?);
        let used_before: bool = row.try_get("used").db()?;
        let revoked: bool = row.try_get("revoked").db()?;
        let outcome = if revoked || family != successor.family || user_id != successor.user_id {
            RefreshOutcome::Invalid
        } else if used_before {
            q(&unit, &self.sql.revoke_family)
                .bind(family)
                .execute(unit.conn())
                .await
                .db()?;
            RefreshOutcome::Reused
        } else {
            q(&unit, &self.sql.mark_refresh_used)
                .bind(used)
                .execute(unit.conn())
                .await
                .db()?;
            self.insert_refresh_on(&mut unit, successor).await?;
            RefreshOutcome::Rotated { user_id, family }
        };
        unit.finish().await?;
        Ok(outcome)
    }

    async fn prune_refresh_tokens(&self, before: DateTime<Utc>) -> Result<u64> {
        self.execute(&self.sql.prune_refresh, |q| q.bind(before))
            .await
    }

    async fn create_project(
        &self,
        project: &NewProjectRecord,
        max_projects: Option<u64>,
    ) -> Result<Project> {
        let mut unit = self.tx().await?;
        if let Some(limit) = max_projects {
            let (lock, count) = (&self.sql.lock_projects, &self.sql.count_projects);
            self.locked_within_limit(&mut unit, lock, count, (limit, Resource::Projects))
                .await?;
        }
        let insert = q(&unit, &self.sql.insert_project)
            .bind(&project.name)
            .bind(&project.description)
            .bind(small(project.status.rank()))
            .bind(project.start_date)
            .bind(project.end_date)
            .bind(project.owner.0)
            .bind(project.created_at);
        self.insert(unit, insert, rows::project).await
    }

    async fn project(&self, id: ProjectId) -> Result<Option<Project>> {
        let unit = self.auto().await?;
        match self.project_on(unit, id).await {
            Err(Error::NotFound { .. }) => Ok(None),
            found => found.map(Some),
        }
    }

    async fn project_and_user(
        &self,
        id: ProjectId,
        user: Option<UserId>,
    ) -> Result<(Option<Project>, Option<User>)> {
        let row = self
            .fetch_optional(&self.sql.project_and_user, |q| {
                q.bind(id.0).bind(user.map(|u| u.0))
            })
            .await?
            .ok_or_else(|| corrupt("project_and_user"))?;
        Ok((rows::project_opt(&row)?, rows::user_opt(&row)?))
    }

    async fn project_with_counts(
        &self,
        id: ProjectId,
        now: DateTime<Utc>,
    ) -> Result<Option<(Project, TaskCounts)>> {
        let mut qb = QueryBuilder::<Postgres>::new(&*self.sql.project_with_counts_head);
        self.push_task_counts(&mut qb, &TaskQuery::in_project(id), now);
        qb.push(") tc ON true WHERE p.id = ").push_bind(id.0);
        let row = self.fetch_built(&mut qb).await?.into_iter().next();
        // The counts are the last columns.
        row.map(|row| {
            let at = row.len() - TASK_COUNT_COLUMNS;
            Ok((rows::project(&row)?, task_counts_at(&row, at)?))
        })
        .transpose()
    }

    async fn list_projects(&self, scope: Scope, page: PageRequest) -> Result<Page<Project>> {
        let mut unit = self.auto().await?;
        let (total, found) = match scope {
            Scope::All => {
                let sql = (&self.sql.count_projects_all, &self.sql.list_projects_all);
                self.page_on(&mut unit, page, sql, |q| q).await?
            }
            Scope::InvolvedIn(user) => {
                let sql = (
                    &self.sql.count_projects_involved,
                    &self.sql.list_projects_involved,
                );
                self.page_on(&mut unit, page, sql, |q| q.bind(user.0))
                    .await?
            }
        };
        let items = found
            .iter()
            .map(rows::project)
            .collect::<Result<Vec<_>>>()?;
        unit.finish().await?;
        Ok(Page {
            count: total,
            items,
        })
    }

    async fn update_project(&self, id: ProjectId, changes: &ProjectChanges) -> Result<Project> {
        let mut unit = self.tx().await?;
        let columns = changes.columns();
        let row = update_query(&unit, &self.sql.update_project, id.0, &columns, None)
            .fetch_optional(unit.conn())
            .await
            .db()?;
        self.finish_project(unit, row).await
    }

    async fn delete_project(&self, id: ProjectId) -> Result<()> {
        // Tasks and memberships go with it (ON DELETE CASCADE), in the same statement.
        self.change_one(&self.sql.delete_project, Entity::Project, |q| q.bind(id.0))
            .await
    }

    async fn add_member(&self, project: ProjectId, user: UserId) -> Result<Project> {
        let mut unit = self.tx().await?;
        // Check the project first so that both missing reports the project.
        self.require_project(&mut unit, project).await?;
        self.change_member(unit, &self.sql.add_member, project, user)
            .await
    }

    async fn remove_member(&self, project: ProjectId, user: UserId) -> Result<Project> {
        let mut unit = self.tx().await?;
        // As in `add_member`: the project first, then the user.
        self.require_project(&mut unit, project).await?;
        self.require(&mut unit, &self.sql.user_by_id, user.0, Entity::User)
            .await?;
        self.change_member(unit, &self.sql.remove_member, project, user)
            .await
    }

    async fn project_counts(&self, scope: Scope) -> Result<ProjectCounts> {
        let mut unit = self.auto().await?;
        let found: Vec<PgRow> = match scope {
            Scope::All => q(&unit, &self.sql.project_counts_all),
            Scope::InvolvedIn(user) => q(&unit, &self.sql.project_counts_involved).bind(user.0),
        }
        .fetch_all(unit.conn())
        .await
        .db()?;
        unit.finish().await?;
        let mut counts = ProjectCounts::default();
        for row in &found {
            let status: i16 = row.try_get("status").db()?;
            let n = count(row.try_get("n").db()?)?;
            let slot = usize::try_from(status)
                .ok()
                .and_then(|i| counts.by_status.get_mut(i))
                .ok_or_else(|| corrupt("projects.status"))?;
            *slot += n;
            counts.total += n;
        }
        Ok(counts)
    }

    async fn create_task(
        &self,
        task: &NewTaskRecord,
        max_per_project: Option<u64>,
    ) -> Result<Task> {
        let unit = match max_per_project {
            // One statement: the foreign key checks (and locks) the project,
            // a missing one is NotFound (project).
            None => self.auto().await?,
            // Locking the project row checks it exists and serializes
            // concurrent creators in that project; the count comes after,
            // in a statement of its own, so that it sees every task a
            // creator that held the lock before committed.
            Some(limit) => {
                let mut unit = self.tx().await?;
                let lock = &self.sql.lock_project;
                self.require(&mut unit, lock, task.project_id.0, Entity::Project)
                    .await?;
                let limit = (limit, Resource::TasksPerProject);
                self.within_limit(&mut unit, limit, &self.sql.count_project_tasks, |q| {
                    q.bind(task.project_id.0)
                })
                .await?;
                unit
            }
        };
        let insert = q(&unit, &self.sql.insert_task)
            .bind(task.project_id.0)
            .bind(&task.title)
            .bind(&task.description)
            .bind(small(task.status.rank()))
            .bind(small(task.priority.rank()))
            .bind(task.assigned_to.map(|u| u.0))
            .bind(task.created_by.0)
            .bind(task.due_date)
            .bind(task.completed_at)
            .bind(task.created_at);
        self.insert(unit, insert, rows::task).await
    }

    async fn task(&self, id: TaskId) -> Result<Option<Task>> {
        self.find(&self.sql.task_by_id, rows::task, |q| q.bind(id.0))
            .await
    }

    async fn task_with_project(&self, id: TaskId) -> Result<Option<(Task, Project)>> {
        let read = |row: &PgRow| Ok((rows::task(row)?, rows::project(row)?));
        self.find(&self.sql.task_with_project, read, |q| q.bind(id.0))
            .await
    }

    async fn list_tasks(&self, query: &TaskQuery, page: PageRequest) -> Result<Page<Task>> {
        let found = self
            .fetch_built(&mut self.list_tasks_query(query, page))
            .await?;
        let first = found.first().ok_or_else(|| corrupt("list_tasks"))?;
        Ok(Page {
            count: count(first.try_get::<i64, _>("total").db()?)?,
            items: tasks_beside(&found)?,
        })
    }

    async fn task_page(&self, query: &TaskQuery, page: PageRequest) -> Result<Vec<Task>> {
        let mut unit = self.auto().await?;
        let items = self.task_page_on(&mut unit, query, page).await?;
        unit.finish().await?;
        Ok(items)
    }

    async fn project_tasks_after(
        &self,
        project: ProjectId,
        after: Option<TaskId>,
        limit: u32,
    ) -> Result<Vec<Task>> {
        let mut unit = self.auto().await?;
        let found = q(&unit, &self.sql.project_tasks_after)
            .bind(project.0)
            .bind(after.map_or(i64::MIN, |t| t.0))
            .bind(i64::from(limit))
            .fetch_all(unit.conn())
            .await
            .db()?;
        unit.finish().await?;
        found.iter().map(rows::task).collect()
    }

    async fn update_task(
        &self,
        id: TaskId,
        changes: &TaskChanges,
        max_per_project: Option<u64>,
    ) -> Result<Task> {
        let columns = changes.columns();
        let update = |unit: &Unit| update_query(unit, &self.sql.update_task, id.0, &columns, None);
        let Some(dest) = changes.project_id else {
            // A task staying in its project: one statement.
            let mut unit = self.auto().await?;
            let row = update(&unit).fetch_optional(unit.conn()).await.db()?;
            unit.finish().await?;
            return row
                .as_ref()
                .map(rows::task)
                .transpose()?
                .ok_or(Error::not_found(Entity::Task));
        };
        // Moving: checked as creating it there would be, under the
        // destination's lock, and written in the same transaction.
        let mut unit = self.tx().await?;
        let current: Option<i64> = q(&unit, &self.sql.lock_task_project)
            .bind(id.0)
            .fetch_optional(unit.conn())
            .await
            .db()?
            .map(|r| r.try_get(0))
            .transpose()
            .db()?;
        let Some(current) = current else {
            return Err(Error::not_found(Entity::Task));
        };
        if current != dest.0 {
            let lock = if max_per_project.is_some() {
                &self.sql.lock_project
            } else {
                &self.sql.share_project
            };
            self.require(&mut unit, lock, dest.0, Entity::Project)
                .await?;
            if let Some(limit) = max_per_project {
                let limit = (limit, Resource::TasksPerProject);
                self.within_limit(&mut unit, limit, &self.sql.count_project_tasks, |q| {
                    q.bind(dest.0)
                })
                .await?;
            }
        }
        let row = update(&unit).fetch_one(unit.conn()).await.db()?;
        let task = rows::task(&row)?;
        unit.finish().await?;
        Ok(task)
    }

    async fn delete_task(&self, id: TaskId) -> Result<()> {
        self.change_one(&self.sql.delete_task, Entity::Task, |q| q.bind(id.0))
            .await
    }

    async fn task_counts(&self, query: &TaskQuery, now: DateTime<Utc>) -> Result<TaskCounts> {
        let found = self
            .fetch_built(&mut self.task_counts_query(query, now))
            .await?;
        let row = found.first().ok_or_else(|| corrupt("task_counts"))?;
        task_counts_at(row, 0)
    }

    async fn dashboard(
        &self,
        query: &DashboardQuery,
        now: DateTime<Utc>,
    ) -> Result<DashboardCounts> {
        let found = self
            .fetch_built(&mut self.dashboard_query(query, now))
            .await?;
        let row = found.first().ok_or_else(|| corrupt("dashboard"))?;
        let get = |i: usize| -> Result<u64> { count(row.try_get::<i64, _>(i).db()?) };
        let mut projects = ProjectCounts {
            total: get(0)?,
            ..ProjectCounts::default()
        };
        for (i, slot) in projects.by_status.iter_mut().enumerate() {
            *slot = get(1 + i)?;
        }
        let at = 1 + projects.by_status.len();
        let recent = tasks_beside(&found)?;
        Ok(DashboardCounts {
            projects,
            all_projects: get(at)?,
            tasks: task_counts_at(row, at + 1)?,
            mine: task_counts_at(row, at + 1 + TASK_COUNT_COLUMNS)?,
            users: get(at + 1 + 2 * TASK_COUNT_COLUMNS)?,
            recent,
        })
    }

    async fn delete_done_tasks_before(&self, cutoff: DateTime<Utc>) -> Result<u64> {
        self.execute(&self.sql.delete_done_before, |q| q.bind(cutoff))
            .await
    }
}
