//! Names and DDL: the shared schema, the tenant schemas and their migrations.
//!
//! Every identifier that reaches SQL here is either a constant or derived
//! from a [`Slug`], which only exists once validated
//! (`^[a-z][a-z0-9_]{1,47}$`), and a [`TenantId`], and is then quoted anyway.

use saas_core::migration::compatible_from;
use saas_core::query::{DONE_RANK, TODO_RANK};
use saas_core::tenancy::{Slug, TenantId};
use sqlx::{AssertSqlSafe, Connection, PgConnection};

/// Prefix of every tenant schema. With it a tenant schema can never be
/// `public`, `pg_*`, `information_schema` or the shared schema.
pub(crate) const TENANT_PREFIX: &str = "t_";

/// Hex digits of the tenant id at the end of its schema name.
const ID_HEX: usize = 12;

/// PostgreSQL truncates identifiers longer than this (NAMEDATALEN - 1):
/// two long slugs would silently share a schema.
const MAX_IDENTIFIER: usize = 63;

const _: () = assert!(TENANT_PREFIX.len() + Slug::MAX_LEN + 1 + ID_HEX <= MAX_IDENTIFIER);

/// Advisory lock key serializing shared-schema setup between processes.
const SHARED_SETUP_LOCK: i64 = 0x5aa5_0000_0000_0001;

/// `ident` in double quotes, with embedded quotes doubled. Only ever called
/// on constants and validated slugs; the doubling is a second line of defence.
pub(crate) fn quote_ident(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

/// The unquoted name of a tenant's schema: `t_<slug>_<the last 12 hex
/// digits of the tenant id>`. The only place a schema name is made.
///
/// The id is part of the name so that a handle, a session or another
/// process's cache of a deleted tenant can never reach the schema of a new
/// tenant registered later with the same slug: it points at a schema that
/// no longer exists. The last 12 digits are the random end of a UUIDv7 (the
/// front is the timestamp and counter). The suffix has a fixed length, so
/// the slug is the name minus it: two different slugs never share a name.
pub(crate) fn schema_name(slug: &Slug, id: TenantId) -> String {
    let hex = id.0.simple().to_string();
    let suffix = &hex[hex.len() - ID_HEX..];
    format!("{TENANT_PREFIX}{}_{suffix}", slug.as_str())
}

/// The quoted `schema` followed by a dot, ready to prefix table names.
pub(crate) fn qualified_prefix(schema: &str) -> String {
    format!("{}.", quote_ident(schema))
}

/// Renders a statement template: `{s}` becomes the table prefix (a quoted
/// schema and a dot, or nothing when `search_path` routes), and `{done}`
/// and `{todo}` the stored ranks of a done task ([`DONE_RANK`]) and of a
/// task to do ([`TODO_RANK`]).
pub(crate) fn render(template: &str, prefix: &str) -> String {
    template
        .replace("{s}", prefix)
        .replace("{done}", DONE_RANK)
        .replace("{todo}", TODO_RANK)
}

/// Migrations of the shared schema, oldest first: (version, SQL).
const SHARED_MIGRATIONS: &[(i32, &str)] = &[
    (
        1,
        r#"
CREATE TABLE saas_shared.tenants (
    id uuid NOT NULL,
    name text NOT NULL,
    slug text NOT NULL,
    plan text NOT NULL,
    status text NOT NULL CHECK (status IN ('active', 'suspended')),
    database text NOT NULL,
    created_at timestamptz NOT NULL,
    CONSTRAINT tenants_pkey PRIMARY KEY (id),
    CONSTRAINT tenants_slug_key UNIQUE (slug)
);
CREATE INDEX tenants_database ON saas_shared.tenants (database);
CREATE TABLE saas_shared.domains (
    hostname text NOT NULL,
    tenant_id uuid NOT NULL,
    is_primary boolean NOT NULL,
    CONSTRAINT domains_pkey PRIMARY KEY (hostname),
    CONSTRAINT domains_tenant_id_fkey FOREIGN KEY (tenant_id)
        REFERENCES saas_shared.tenants (id) ON DELETE CASCADE
);
CREATE INDEX domains_tenant_id ON saas_shared.domains (tenant_id);
CREATE UNIQUE INDEX domains_one_primary ON saas_shared.domains (tenant_id) WHERE is_primary;
CREATE TABLE saas_shared.superusers (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username text NOT NULL,
    username_key text NOT NULL,
    email text NOT NULL,
    password_hash text NOT NULL,
    created_at timestamptz NOT NULL,
    CONSTRAINT superusers_username_key_key UNIQUE (username_key)
);
-- The ledger of tenant schema versions. Every database holding tenant
-- schemas has its own, so a tenant's migration and its ledger row commit in
-- one transaction.
CREATE TABLE saas_shared.tenant_schemas (
    schema_name text PRIMARY KEY,
    tenant_id uuid NOT NULL,
    version integer NOT NULL,
    migrated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX tenant_schemas_version ON saas_shared.tenant_schemas (version);
"#,
    ),
    (
        2,
        // Tenant schemas used to be named `t_<slug>`, so a stale handle of a
        // deleted tenant reached the schema of the next tenant with that
        // slug. Existing schemas get the id suffix of `schema_name` (the
        // ledger has the id). A ledger row whose schema is gone is renamed
        // too, so `migrate` keeps reporting it.
        r#"
DO $$
DECLARE
    r record;
    renamed text;
BEGIN
    FOR r IN SELECT schema_name, tenant_id FROM saas_shared.tenant_schemas LOOP
        renamed := r.schema_name || '_' || right(replace(r.tenant_id::text, '-', ''), 12);
        IF EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = r.schema_name) THEN
            EXECUTE format('ALTER SCHEMA %I RENAME TO %I', r.schema_name, renamed);
        END IF;
        UPDATE saas_shared.tenant_schemas SET schema_name = renamed WHERE schema_name = r.schema_name;
    END LOOP;
END
$$;
"#,
    ),
    (
        3,
        // Provisioning in one statement, so one round trip and its own
        // transaction: the catalog rows (slug first, so a taken slug is
        // reported before a taken hostname), the tenant's storage (DDL and
        // ledger row, built by `provision_sql`) and its admin (the
        // rendered `INSERT_USER`, with the admin's fields as parameters).
        // SECURITY INVOKER (the default): it runs nothing its caller could
        // not run directly.
        r#"
CREATE FUNCTION saas_shared.provision_tenant(
    p_in_catalog boolean, p_id uuid, p_name text, p_slug text, p_plan text, p_database text,
    p_created_at timestamptz, p_hostname text, p_storage_ddl text, p_insert_admin text,
    a1 text, a2 text, a3 text, a4 text, a5 text, a6 text, a7 text, a8 text,
    a9 boolean, a10 timestamptz)
RETURNS TABLE (id bigint, username text, email text, first_name text, last_name text,
    role text, department text, is_active boolean, is_owner boolean,
    last_login timestamptz, date_joined timestamptz, token_version bigint)
LANGUAGE plpgsql
AS $fn$
#variable_conflict use_column
BEGIN
    IF p_in_catalog THEN
        INSERT INTO saas_shared.tenants (id, name, slug, plan, status, database, created_at)
        VALUES (p_id, p_name, p_slug, p_plan, 'active', p_database, p_created_at);
        INSERT INTO saas_shared.domains (hostname, tenant_id, is_primary)
        VALUES (p_hostname, p_id, true);
    END IF;
    EXECUTE p_storage_ddl;
    RETURN QUERY EXECUTE p_insert_admin USING a1, a2, a3, a4, a5, a6, a7, a8, a9, a10;
END
$fn$;
"#,
    ),
    (
        4,
        // Task counts by project, assignee (0 for none), status and
        // priority, for every tenant schema of this database, kept by the
        // triggers of tenant migration 4. Shared, so that provisioning a
        // tenant builds no btree for it (see `TENANT_MIGRATIONS`). Rows
        // belong to a tenant's tasks table by its oid (`tasks_oid`), which a
        // schema rename keeps; dropping a tenant deletes them.
        //
        // Superseded by tenant migration 5, which moves each tenant's tally
        // into its own schema and deletes the tenant's rows here: a
        // tenant's data lives in its schema. The table stays (nothing reads
        // it, and it holds rows only of tenants not yet migrated to 5)
        // because tenant migration 4, which provisioning and every
        // migration from below 4 still run, writes it before 5 empties it
        // in the same transaction; dropping it would break them and the
        // triggers of tenants still at 4.
        r#"
CREATE TABLE saas_shared.task_tally (
    tasks_oid oid NOT NULL,
    project_id bigint NOT NULL,
    assignee bigint NOT NULL,
    status smallint NOT NULL,
    priority smallint NOT NULL,
    n bigint NOT NULL,
    CONSTRAINT task_tally_pkey PRIMARY KEY (tasks_oid, project_id, assignee, status, priority)
);
"#,
    ),
    (
        5,
        // The audit log (used in the catalog database only). No foreign key
        // to tenants: a deleted tenant's trail stays.
        r#"
CREATE TABLE saas_shared.audit_log (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at timestamptz NOT NULL,
    actor text NOT NULL,
    tenant_id uuid,
    action text NOT NULL,
    target text NOT NULL,
    detail text NOT NULL,
    client text
);
CREATE INDEX audit_log_by_tenant ON saas_shared.audit_log (tenant_id, id);
"#,
    ),
    (
        6,
        // Two-step deletion: a deleted tenant keeps its row (and status, for
        // a restore) with the time of deletion until it is purged.
        r#"
ALTER TABLE saas_shared.tenants ADD COLUMN deleted_at timestamptz;
"#,
    ),
    (
        7,
        // Superusers can be deactivated, and their tokens revoked.
        r#"
ALTER TABLE saas_shared.superusers
    ADD COLUMN is_active boolean NOT NULL DEFAULT true,
    ADD COLUMN token_version bigint NOT NULL DEFAULT 0;
"#,
    ),
    (
        8,
        // Rolling deploys (see `saas_core::migration`): for each tenant
        // schema version, the oldest version whose build may still read
        // and write a schema at it. Every build writes the rows of the
        // versions it knows when it connects (`setup_shared`), before it
        // can bring any tenant to one, so a build meeting a tenant newer
        // than it knows finds the answer here; a version without a row is
        // served only by builds that know it.
        //
        // And the trigger function of tenant migration 6, here once rather
        // than in every schema: a task's `started_at` is the creation time
        // when it is created in another status than todo, the time of the
        // change (the `updated_at` the same statement writes) when it
        // leaves todo, NULL when it goes back to todo, and unchanged
        // otherwise. It names only the row, so one function serves every
        // schema. `{todo}` is rendered like tenant templates.
        r#"
CREATE TABLE saas_shared.tenant_schema_versions (
    version integer PRIMARY KEY,
    compatible_from integer NOT NULL
);
CREATE FUNCTION saas_shared.task_started() RETURNS trigger
LANGUAGE plpgsql
AS $fn$
BEGIN
    IF NEW.status = {todo} THEN
        NEW.started_at := NULL;
    ELSIF TG_OP = 'INSERT' THEN
        NEW.started_at := NEW.created_at;
    ELSIF OLD.status = {todo} THEN
        NEW.started_at := NEW.updated_at;
    END IF;
    RETURN NEW;
END
$fn$;
"#,
    ),
    (
        9,
        // Each tenant's tally trigger function gets a name of its own
        // (`tally_function_name`; new schemas are renamed as they are made,
        // see `TenantSchema::migration_sql`). PostgreSQL looks a function
        // up by name across all schemas at once (one catalog cache list
        // per name): with every tenant's function called `tally_tasks`,
        // each new tenant's `CREATE TRIGGER … EXECUTE FUNCTION` rebuilt a
        // list as long as the fleet (30 ms at 7,000 tenants), so
        // provisioning slowed down as tenants were added. Renaming changes
        // nothing else: triggers refer to their function by oid. Schemas
        // still at version 4 keep the name version 5 replaces.
        r#"
DO $$
DECLARE
    r record;
BEGIN
    FOR r IN
        SELECT n.nspname
        FROM saas_shared.tenant_schemas s
        JOIN pg_catalog.pg_namespace n ON n.nspname = s.schema_name
        JOIN pg_catalog.pg_proc p ON p.pronamespace = n.oid AND p.proname = 'tally_tasks'
        WHERE s.version >= 5
    LOOP
        EXECUTE format('ALTER FUNCTION %I.tally_tasks() RENAME TO %I',
            r.nspname, 'tally_tasks_' || right(r.nspname, 12));
    END LOOP;
END
$$;
"#,
    ),
];

/// The name of a tenant schema's tally trigger function once made (tenant
/// migrations 4 and 5 call it `tally_tasks`; shared migration 9 says why it
/// is renamed): `tally_tasks_` and the tenant id's digits that end the
/// schema name, so no two tenants' functions share a name.
pub(crate) fn tally_function_name(schema: &str) -> String {
    let digits = schema
        .get(schema.len().saturating_sub(ID_HEX)..)
        .unwrap_or(schema);
    format!("tally_tasks_{digits}")
}

/// Migrations of every tenant schema, oldest first: (version, template).
///
/// Indexes are the ones list pages and lookups need (tasks by project, by
/// assignee, newest first; memberships by user; token families). Every extra
/// object costs provisioning time, so the rarely run sweeps (pruning expired
/// tokens, deleting old done tasks) scan instead: they run weekly in a job.
///
/// Indexes only ever probed by equality are hash indexes: PostgreSQL 15
/// fsyncs every new btree index at the end of its build (it is written
/// outside shared buffers), and those fsyncs were most of the time it took
/// to provision a tenant; a hash index is built through shared buffers.
/// What must stay btree (primary keys, the unique username, the orderings
/// on `created_at` and `updated_at`, the open tasks by due date, and the
/// index of each TOAST table) is twelve builds.
/// `{s}` is the quoted schema and a dot. Provisioning applies them all at
/// once; `Store::migrate` applies the ones a tenant's ledger row lacks.
pub(crate) const TENANT_MIGRATIONS: &[(i32, &str)] = &[
    (
        1,
        r#"
CREATE TABLE {s}users (
    id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    username text NOT NULL,
    username_key text NOT NULL,
    email text NOT NULL,
    password_hash text NOT NULL,
    first_name text NOT NULL,
    last_name text NOT NULL,
    role text NOT NULL,
    department text NOT NULL,
    is_active boolean NOT NULL,
    is_owner boolean NOT NULL,
    last_login timestamptz,
    date_joined timestamptz NOT NULL,
    token_version bigint NOT NULL DEFAULT 0,
    CONSTRAINT users_username_key_key UNIQUE (username_key)
);
CREATE TABLE {s}refresh_tokens (
    jti uuid PRIMARY KEY,
    family uuid NOT NULL,
    user_id bigint NOT NULL,
    expires_at timestamptz NOT NULL,
    used boolean NOT NULL DEFAULT false,
    revoked boolean NOT NULL DEFAULT false,
    CONSTRAINT refresh_tokens_user_id_fkey FOREIGN KEY (user_id) REFERENCES {s}users (id) ON DELETE CASCADE
);
CREATE TABLE {s}projects (
    id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    name text NOT NULL,
    description text NOT NULL,
    status smallint NOT NULL,
    start_date date,
    end_date date,
    owner_id bigint NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    CONSTRAINT projects_owner_id_fkey FOREIGN KEY (owner_id) REFERENCES {s}users (id)
);
CREATE TABLE {s}project_members (
    project_id bigint NOT NULL,
    user_id bigint NOT NULL,
    PRIMARY KEY (project_id, user_id),
    CONSTRAINT project_members_project_id_fkey FOREIGN KEY (project_id) REFERENCES {s}projects (id) ON DELETE CASCADE,
    CONSTRAINT project_members_user_id_fkey FOREIGN KEY (user_id) REFERENCES {s}users (id) ON DELETE CASCADE
);
CREATE TABLE {s}tasks (
    id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    project_id bigint NOT NULL,
    title text NOT NULL,
    description text NOT NULL,
    status smallint NOT NULL,
    priority smallint NOT NULL,
    assigned_to bigint,
    created_by bigint NOT NULL,
    due_date timestamptz,
    completed_at timestamptz,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    CONSTRAINT tasks_project_id_fkey FOREIGN KEY (project_id) REFERENCES {s}projects (id) ON DELETE CASCADE,
    CONSTRAINT tasks_assigned_to_fkey FOREIGN KEY (assigned_to) REFERENCES {s}users (id),
    CONSTRAINT tasks_created_by_fkey FOREIGN KEY (created_by) REFERENCES {s}users (id)
);
"#,
    ),
    (
        2,
        r#"
CREATE INDEX tasks_project_id ON {s}tasks USING hash (project_id);
CREATE INDEX tasks_assigned_to ON {s}tasks USING hash (assigned_to);
CREATE INDEX tasks_created_at ON {s}tasks (created_at DESC, id);
CREATE INDEX project_members_user_id ON {s}project_members USING hash (user_id);
CREATE INDEX refresh_tokens_family ON {s}refresh_tokens USING hash (family);
"#,
    ),
    (
        3,
        // Version 2 first created its equality-only indexes as btree;
        // tenants migrated to it then get them rebuilt as hash (see above).
        // For every other tenant this only reads the catalog.
        r#"
DO $$
DECLARE
    idx record;
BEGIN
    FOR idx IN
        SELECT v.name, v.tab, v.col FROM (VALUES
            ('tasks_project_id', 'tasks', 'project_id'),
            ('tasks_assigned_to', 'tasks', 'assigned_to'),
            ('project_members_user_id', 'project_members', 'user_id'),
            ('refresh_tokens_family', 'refresh_tokens', 'family')) AS v (name, tab, col)
        JOIN pg_catalog.pg_class c ON c.oid = to_regclass('{s}' || v.name)
        JOIN pg_catalog.pg_am a ON a.oid = c.relam
        WHERE a.amname = 'btree'
    LOOP
        EXECUTE format('DROP INDEX {s}%I', idx.name);
        EXECUTE format('CREATE INDEX %I ON {s}%I USING hash (%I)', idx.name, idx.tab, idx.col);
    END LOOP;
END
$$;
"#,
    ),
    (
        4,
        // What large tenants need: the dashboard's "recently changed" walks
        // an index instead of sorting every task; overdue tasks are counted
        // from a partial index covering the scope and assignee filters;
        // counts by status and priority are summed from
        // `saas_shared.task_tally`, which the statement triggers below keep
        // exact in the transaction of every task write, cascading project
        // deletes included (one upsert per statement, its keys in order, so
        // concurrent writers lock tally rows in one order; rows at zero are
        // removed). Two btree builds: the tally's key is shared (see
        // `SHARED_MIGRATIONS`). Creating the triggers locks the tasks table
        // against writes until the migration commits, so the backfill
        // counts exactly the tasks the triggers will then track.
        r#"
CREATE INDEX tasks_updated_at ON {s}tasks (updated_at DESC, id);
CREATE INDEX tasks_open_due ON {s}tasks (due_date, project_id, assigned_to) WHERE status <> {done};
CREATE FUNCTION {s}tally_tasks() RETURNS trigger
LANGUAGE plpgsql
AS $fn$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO saas_shared.task_tally AS c (tasks_oid, project_id, assignee, status, priority, n)
        SELECT TG_RELID, project_id, coalesce(assigned_to, 0), status, priority, count(*)
        FROM new_rows GROUP BY 2, 3, 4, 5 ORDER BY 2, 3, 4, 5
        ON CONFLICT (tasks_oid, project_id, assignee, status, priority)
        DO UPDATE SET n = c.n + excluded.n;
        RETURN NULL;
    ELSIF TG_OP = 'UPDATE' THEN
        INSERT INTO saas_shared.task_tally AS c (tasks_oid, project_id, assignee, status, priority, n)
        SELECT TG_RELID, d.project_id, d.assignee, d.status, d.priority, sum(d.k) FROM (
            SELECT project_id, coalesce(assigned_to, 0), status, priority, -1 FROM old_rows
            UNION ALL
            SELECT project_id, coalesce(assigned_to, 0), status, priority, 1 FROM new_rows
        ) AS d (project_id, assignee, status, priority, k)
        GROUP BY 2, 3, 4, 5 HAVING sum(d.k) <> 0 ORDER BY 2, 3, 4, 5
        ON CONFLICT (tasks_oid, project_id, assignee, status, priority)
        DO UPDATE SET n = c.n + excluded.n;
    ELSE
        INSERT INTO saas_shared.task_tally AS c (tasks_oid, project_id, assignee, status, priority, n)
        SELECT TG_RELID, project_id, coalesce(assigned_to, 0), status, priority, -count(*)
        FROM old_rows GROUP BY 2, 3, 4, 5 ORDER BY 2, 3, 4, 5
        ON CONFLICT (tasks_oid, project_id, assignee, status, priority)
        DO UPDATE SET n = c.n + excluded.n;
    END IF;
    DELETE FROM saas_shared.task_tally
    WHERE tasks_oid = TG_RELID AND n = 0 AND project_id IN (SELECT project_id FROM old_rows);
    RETURN NULL;
END
$fn$;
CREATE TRIGGER tally_insert AFTER INSERT ON {s}tasks
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION {s}tally_tasks();
CREATE TRIGGER tally_update AFTER UPDATE ON {s}tasks
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION {s}tally_tasks();
CREATE TRIGGER tally_delete AFTER DELETE ON {s}tasks
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION {s}tally_tasks();
DELETE FROM saas_shared.task_tally WHERE tasks_oid = '{s}tasks'::regclass;
INSERT INTO saas_shared.task_tally (tasks_oid, project_id, assignee, status, priority, n)
SELECT '{s}tasks'::regclass, project_id, coalesce(assigned_to, 0), status, priority, count(*)
FROM {s}tasks GROUP BY 2, 3, 4, 5;
"#,
    ),
    (
        5,
        // The tally moves into the tenant's schema, so that all of a
        // tenant's data is there (`DROP SCHEMA … CASCADE` removes it,
        // `pg_dump -n` carries it, no oid is involved). Same discipline as
        // version 4: one upsert of the net deltas per statement, keys in
        // order, rows at zero removed. The triggers stay; their function is
        // replaced to write the local table (its body names the schema: a
        // schema rename must re-create it). The tasks table is locked
        // against writes first, so that no writer still running the old
        // function commits after the backfill has read the tasks: the
        // backfill counts exactly what the new function then maintains,
        // and the tenant's shared rows are deleted once nothing writes them.
        // One more btree build (the primary key, which `ON CONFLICT` needs);
        // every column is fixed-width, so no TOAST table.
        r#"
LOCK TABLE {s}tasks IN SHARE ROW EXCLUSIVE MODE;
CREATE TABLE {s}task_tally (
    project_id bigint NOT NULL,
    assignee bigint NOT NULL,
    status smallint NOT NULL,
    priority smallint NOT NULL,
    n bigint NOT NULL,
    CONSTRAINT task_tally_pkey PRIMARY KEY (project_id, assignee, status, priority)
);
CREATE OR REPLACE FUNCTION {s}tally_tasks() RETURNS trigger
LANGUAGE plpgsql
AS $fn$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO {s}task_tally AS c (project_id, assignee, status, priority, n)
        SELECT project_id, coalesce(assigned_to, 0), status, priority, count(*)
        FROM new_rows GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
        ON CONFLICT (project_id, assignee, status, priority)
        DO UPDATE SET n = c.n + excluded.n;
        RETURN NULL;
    ELSIF TG_OP = 'UPDATE' THEN
        INSERT INTO {s}task_tally AS c (project_id, assignee, status, priority, n)
        SELECT d.project_id, d.assignee, d.status, d.priority, sum(d.k) FROM (
            SELECT project_id, coalesce(assigned_to, 0), status, priority, -1 FROM old_rows
            UNION ALL
            SELECT project_id, coalesce(assigned_to, 0), status, priority, 1 FROM new_rows
        ) AS d (project_id, assignee, status, priority, k)
        GROUP BY 1, 2, 3, 4 HAVING sum(d.k) <> 0 ORDER BY 1, 2, 3, 4
        ON CONFLICT (project_id, assignee, status, priority)
        DO UPDATE SET n = c.n + excluded.n;
    ELSE
        INSERT INTO {s}task_tally AS c (project_id, assignee, status, priority, n)
        SELECT project_id, coalesce(assigned_to, 0), status, priority, -count(*)
        FROM old_rows GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
        ON CONFLICT (project_id, assignee, status, priority)
        DO UPDATE SET n = c.n + excluded.n;
    END IF;
    DELETE FROM {s}task_tally
    WHERE n = 0 AND project_id IN (SELECT project_id FROM old_rows);
    RETURN NULL;
END
$fn$;
INSERT INTO {s}task_tally (project_id, assignee, status, priority, n)
SELECT project_id, coalesce(assigned_to, 0), status, priority, count(*)
FROM {s}tasks GROUP BY 1, 2, 3, 4;
DELETE FROM saas_shared.task_tally WHERE tasks_oid = '{s}tasks'::regclass;
"#,
    ),
    (
        6,
        // Additive (`TENANT_ADDITIVE`): when work on a task started
        // (`Task::started_at`), kept by a trigger (the shared
        // `task_started`, see shared migration 8) so that every writer
        // keeps it right, builds that predate the column included. Tasks
        // that already left todo stay NULL: when they did is not known.
        // Adding a nullable column without a default rewrites nothing; the
        // index (the order `?ordering=-started_at` walks: latest started
        // first, never-started last) is one small btree build. The whole
        // step holds the tasks table's ACCESS EXCLUSIVE lock for a few
        // milliseconds (`migrate_tenant` takes it with a short
        // lock_timeout and retries, so it never queues behind a long
        // reader, nor readers behind it).
        r#"
ALTER TABLE {s}tasks ADD COLUMN started_at timestamptz;
CREATE INDEX tasks_started_at ON {s}tasks (started_at DESC NULLS LAST, id);
CREATE TRIGGER task_started BEFORE INSERT OR UPDATE OF status ON {s}tasks
    FOR EACH ROW EXECUTE FUNCTION saas_shared.task_started();
"#,
    ),
];

/// Tenant schema versions whose migration is additive: a build that knows
/// only the versions below one still reads and writes a schema at it
/// correctly (see [`saas_core::migration`]).
const TENANT_ADDITIVE: &[i32] = &[6];

/// The tenant schema version at which tasks have `started_at`.
pub(crate) const STARTED_AT_VERSION: i32 = 6;

/// The oldest version whose build may serve a tenant schema at `version`.
fn tenant_compatible_from(version: i32) -> i32 {
    let additive: Vec<i64> = TENANT_ADDITIVE.iter().map(|v| i64::from(*v)).collect();
    // Versions are small positive numbers; the floor is between 0 and it.
    i32::try_from(compatible_from(i64::from(version), &additive)).unwrap_or(version)
}

/// The tenant migrations a store runs: all of [`TENANT_MIGRATIONS`], or
/// fewer when [`crate::PgConfig::withhold_tenant_migrations`] emulates the
/// previous build.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TenantSchema {
    migrations: &'static [(i32, &'static str)],
}

impl TenantSchema {
    /// All migrations but the last `withheld`.
    pub(crate) fn new(withheld: usize) -> Self {
        TenantSchema {
            migrations: &TENANT_MIGRATIONS[..TENANT_MIGRATIONS.len().saturating_sub(withheld)],
        }
    }

    /// The newest tenant schema version this store knows.
    pub(crate) fn known(self) -> i32 {
        self.migrations.last().map_or(0, |(v, _)| *v)
    }

    /// The SQL bringing a tenant schema from `from` to [`Self::known`], in
    /// one string so it travels in one round trip.
    ///
    /// When it runs version 5 (which replaces the tally trigger function
    /// under the name version 4 gave it), it then gives the function its
    /// own name ([`tally_function_name`]).
    pub(crate) fn migration_sql(self, schema: &str, from: i32) -> String {
        let prefix = qualified_prefix(schema);
        let mut sql = String::new();
        for (_, template) in self.migrations.iter().filter(|(v, _)| *v > from) {
            sql.push_str(&render(template, &prefix));
        }
        if from < TALLY_VERSION && self.known() >= TALLY_VERSION {
            sql.push_str(&format!(
                "ALTER FUNCTION {prefix}tally_tasks() RENAME TO {};\n",
                quote_ident(&tally_function_name(schema))
            ));
        }
        sql
    }

    /// The version this store's statements are written for on a schema at
    /// `found`: the schema's own, or this store's newest when the schema is
    /// newer (served only when [`may_serve`](saas_core::migration::may_serve)
    /// says so).
    pub(crate) fn effective(self, found: i32) -> i32 {
        found.min(self.known())
    }
}

/// The tenant schema version from which the tenant's own `task_tally` is
/// kept by its triggers (4 kept the shared one, which nothing reads now).
pub(crate) const TALLY_VERSION: i32 = 5;

/// The newest shared schema version this build knows.
pub(crate) fn latest_shared_version() -> i32 {
    SHARED_MIGRATIONS.last().map_or(0, |(v, _)| *v)
}

/// The SQL of tenant migration `version` alone for `schema`, if there is
/// such a version.
pub(crate) fn tenant_migration_step_sql(schema: &str, version: i32) -> Option<String> {
    TENANT_MIGRATIONS
        .iter()
        .find(|(v, _)| *v == version)
        .map(|(_, template)| render(template, &qualified_prefix(schema)))
}

/// Creates or upgrades the shared schema of one database. Idempotent; safe
/// when many processes start at once (they queue on an advisory lock, and
/// the ledger tells the later ones there is nothing to do).
///
/// `named`: whether statements may be named prepared statements.
pub(crate) async fn setup_shared(conn: &mut PgConnection, named: bool) -> Result<(), sqlx::Error> {
    let mut tx = conn.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .persistent(named)
        .bind(SHARED_SETUP_LOCK)
        .execute(&mut *tx)
        .await?;
    sqlx::raw_sql(
        "CREATE SCHEMA IF NOT EXISTS saas_shared;
         CREATE TABLE IF NOT EXISTS saas_shared.schema_migrations (
             version integer PRIMARY KEY,
             applied_at timestamptz NOT NULL DEFAULT now()
         );",
    )
    .execute(&mut *tx)
    .await?;
    let current: i32 =
        sqlx::query_scalar("SELECT coalesce(max(version), 0) FROM saas_shared.schema_migrations")
            .persistent(named)
            .fetch_one(&mut *tx)
            .await?;
    for (version, sql) in SHARED_MIGRATIONS.iter().filter(|(v, _)| *v > current) {
        // Constant SQL from this file; never built from input.
        sqlx::raw_sql(AssertSqlSafe(render(sql, "")))
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO saas_shared.schema_migrations (version) VALUES ($1)")
            .persistent(named)
            .bind(version)
            .execute(&mut *tx)
            .await?;
    }
    // Every tenant version this build knows and its floor (a floor never
    // changes, so rows another build wrote stand). Read only when a tenant
    // is newer than a build knows, and written before this build can make
    // one so.
    let (versions, floors): (Vec<i32>, Vec<i32>) = TENANT_MIGRATIONS
        .iter()
        .map(|(v, _)| (*v, tenant_compatible_from(*v)))
        .unzip();
    sqlx::query(
        "INSERT INTO saas_shared.tenant_schema_versions (version, compatible_from) \
         SELECT * FROM unnest($1::integer[], $2::integer[]) ON CONFLICT (version) DO NOTHING",
    )
    .persistent(named)
    .bind(versions)
    .bind(floors)
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_prefixed_suffixed_and_quoted() {
        let slug = Slug::parse("acme").expect("valid slug");
        let id =
            TenantId(uuid::Uuid::parse_str("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b").expect("uuid"));
        let schema = schema_name(&slug, id);
        assert_eq!(schema, "t_acme_0c1d2e3f4a5b");
        assert_eq!(qualified_prefix(&schema), "\"t_acme_0c1d2e3f4a5b\".");
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
        let tenant = TenantSchema::new(0);
        assert!(
            tenant
                .migration_sql(&schema, 0)
                .contains("\"t_acme_0c1d2e3f4a5b\".tasks")
        );
        assert!(
            !tenant
                .migration_sql(&schema, tenant.known())
                .contains("CREATE")
        );
    }

    #[test]
    fn a_run_through_version_5_gives_the_tally_function_its_own_name() {
        let schema = "t_acme_0c1d2e3f4a5b";
        let rename = "ALTER FUNCTION \"t_acme_0c1d2e3f4a5b\".tally_tasks() \
                      RENAME TO \"tally_tasks_0c1d2e3f4a5b\";";
        assert_eq!(tally_function_name(schema), "tally_tasks_0c1d2e3f4a5b");
        let newest = TenantSchema::new(0);
        assert!(newest.migration_sql(schema, 0).contains(rename));
        assert!(newest.migration_sql(schema, 4).contains(rename));
        assert!(!newest.migration_sql(schema, 5).contains("tally_tasks"));
        // A build that stops at version 4 keeps the name version 5 replaces.
        let at_4 = TenantSchema::new(newest.known() as usize - 4);
        assert_eq!(at_4.known(), 4);
        assert!(!at_4.migration_sql(schema, 0).contains("RENAME"));
    }

    #[test]
    fn the_longest_name_fits_an_identifier() {
        let slug = Slug::parse(&format!("a{}", "z".repeat(Slug::MAX_LEN - 1))).expect("slug");
        let name = schema_name(&slug, TenantId::new());
        assert_eq!(name.len(), MAX_IDENTIFIER);
    }

    #[test]
    fn the_same_slug_with_another_id_is_another_schema() {
        let slug = Slug::parse("acme").expect("valid slug");
        assert_ne!(
            schema_name(&slug, TenantId::new()),
            schema_name(&slug, TenantId::new())
        );
    }
}
