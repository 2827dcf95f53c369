//! The [`Store`] implementation: catalog, provisioning, lifecycle, fleet
//! migrations.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use saas_core::audit::{AuditEntry, AuditQuery, NewAuditEntry};
use saas_core::error::{Entity, Error, Result};
use saas_core::import::TenantImport;
use saas_core::migration::{FleetTenant, may_serve, migrate_fleet};
use saas_core::store::{
    MigrationReport, Page, PageRequest, ProgressFn, Store, Superuser, TenantStore,
};
use saas_core::telemetry;
use saas_core::tenancy::{Domain, Hostname, NewTenant, Slug, Tenant, TenantId, TenantStatus};
use saas_core::tenant_query::TenantQuery;
use saas_core::users::{Email, NewUserRecord, User, Username};
use sqlx::{AssertSqlSafe, PgConnection, Postgres, Row, Transaction};

use crate::apps;
use crate::error::{SqlxResultExt, map_sqlx};
use crate::rows;
use crate::schema::{self, TenantSchema, qualified_prefix, quote_ident, schema_name};
use crate::tenant::{INSERT_USER, PgTenant, Prepare, bind_new_user};
use crate::unit::Unit;
use crate::{Database, PgStore, Placement};

mod lifecycle;

/// Inserts the catalog row and the primary domain in one statement, so a
/// taken slug is reported before a taken hostname.
const INSERT_TENANT: &str = "WITH t AS (
        INSERT INTO saas_shared.tenants (id, name, slug, plan, status, database, created_at)
        VALUES ($1, $2, $3, $4, 'active', $5, $6) RETURNING id)
    INSERT INTO saas_shared.domains (hostname, tenant_id, is_primary) SELECT $7, id, true FROM t";

/// Every tenant schema of a database's ledger with its version and the
/// oldest version whose build may use it (see `tenant_schema_versions`).
const LEDGER: &str = "SELECT l.schema_name, l.version, coalesce(v.compatible_from, l.version) AS compatible_from \
    FROM saas_shared.tenant_schemas l \
    LEFT JOIN saas_shared.tenant_schema_versions v ON v.version = l.version";

/// How long a tenant migration waits for a lock before it gives up and
/// tries again (see `PgStore::migrate_tenant`).
const MIGRATION_LOCK_TIMEOUT: &str = "SET LOCAL lock_timeout = '20ms'";

/// Attempts of a tenant migration that timed out on a lock, before it is
/// reported failed (a later `migrate` resumes it).
const MIGRATION_LOCK_ATTEMPTS: u32 = 500;

/// Why an attempt of a tenant migration stopped.
enum Retry {
    /// A lock was not granted within [`MIGRATION_LOCK_TIMEOUT`]: try again.
    LockTimeout(sqlx::Error),
    /// Anything else.
    Failed(Error),
}

impl From<sqlx::Error> for Retry {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            // lock_not_available
            sqlx::Error::Database(db) if db.code().as_deref() == Some("55P03") => {
                Retry::LockTimeout(e)
            }
            _ => Retry::Failed(map_sqlx(e)),
        }
    }
}

/// The error for a tenant schema this build may not use.
fn too_new(schema: String, found: i32, compatible_from: i32, known: i32) -> crate::PgError {
    crate::PgError::SchemaTooNew {
        schema,
        found,
        compatible_from,
        known,
    }
}

/// Locks a tenant's catalog row against deletion (adding a domain).
const SHARE_TENANT: &str = "SELECT 1 FROM saas_shared.tenants WHERE id = $1 FOR KEY SHARE";

/// Locks a tenant's catalog row for changes of its primary domain.
const LOCK_TENANT: &str = "SELECT 1 FROM saas_shared.tenants WHERE id = $1 FOR UPDATE";

/// Creates a tenant (catalog rows when `$1`, storage, admin) in one
/// statement; see shared schema migration 3. `$11..$20` are the admin's
/// fields in [`bind_new_user`] order.
const PROVISION: &str = "SELECT * FROM saas_shared.provision_tenant($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, \
    $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)";

/// Binds a new tenant's catalog fields (placed in `database`), in the
/// order [`INSERT_TENANT`] takes them and [`PROVISION`] after its first
/// parameter.
fn bind_tenant<'q>(
    query: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
    tenant: &'q NewTenant,
    database: &'q str,
) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
    query
        .bind(tenant.id.0)
        .bind(tenant.name.as_str())
        .bind(tenant.slug.as_str())
        .bind(&tenant.plan)
        .bind(database)
        .bind(tenant.created_at)
        .bind(tenant.domain.as_str())
}

/// Inserts a new tenant's catalog rows (the tenant, placed in `database`,
/// and its primary domain) in `conn`'s transaction.
async fn insert_catalog_rows(
    conn: &mut PgConnection,
    tenant: &NewTenant,
    database: &str,
    named: bool,
) -> Result<()> {
    let insert = sqlx::query(INSERT_TENANT).persistent(named);
    bind_tenant(insert, tenant, database)
        .execute(conn)
        .await
        .db()?;
    Ok(())
}

/// Commits the catalog's transaction, which held the slug and hostname
/// while the tenant's storage (`schema`) was made in `target`, another
/// database. When that commit fails the storage is dropped again: it must
/// not outlive a catalog row that never was.
async fn commit_catalog(
    ctx: Transaction<'_, Postgres>,
    target: &Database,
    tenant: &NewTenant,
    schema: &str,
) -> Result<()> {
    let Err(e) = ctx.commit().await else {
        return Ok(());
    };
    let undo = sqlx::raw_sql(AssertSqlSafe(drop_sql(schema)))
        .execute(&target.pool)
        .await;
    if let Err(undo) = undo {
        tracing::error!(slug = %tenant.slug, error = %undo,
            "could not drop the storage of a tenant whose catalog commit failed");
    }
    Err(map_sqlx(e))
}

/// DDL creating a tenant's schema at the newest version of `tenant_schema`
/// and its ledger row: one multi-statement simple query, one round trip.
fn provision_sql(tenant: &NewTenant, schema: &str, tenant_schema: TenantSchema) -> String {
    format!(
        "CREATE SCHEMA {quoted};{tables}\
         INSERT INTO saas_shared.tenant_schemas (schema_name, tenant_id, version) VALUES ('{schema}', '{id}', {version});",
        quoted = quote_ident(schema),
        tables = tenant_schema.migration_sql(schema, 0),
        // Made of a validated slug ([a-z0-9_]) and hex digits, like the
        // formatted UUID: nothing to escape.
        id = tenant.id.0.hyphenated(),
        version = tenant_schema.known(),
    )
}

/// Drops a tenant's schema (made by [`schema_name`]), with its task tally,
/// and its ledger row. A tenant still at schema version 4 (not migrated
/// yet) keeps its tally in the shared table, keyed by its tasks table's
/// oid: those rows are deleted first, while the table still names them
/// (for any other tenant that statement deletes nothing).
pub(crate) fn drop_sql(schema: &str) -> String {
    let quoted = quote_ident(schema);
    format!(
        "DELETE FROM saas_shared.task_tally WHERE tasks_oid = to_regclass('{quoted}.tasks')::oid; \
         DROP SCHEMA IF EXISTS {quoted} CASCADE; \
         DELETE FROM saas_shared.tenant_schemas WHERE schema_name = '{schema}';"
    )
}

impl PgStore {
    /// The database a new tenant goes to, per the placement policy.
    async fn place(&self) -> Result<&Database> {
        let dbs = &self.inner.databases;
        match &self.inner.config.placement {
            Placement::Database(name) => self.database(name),
            Placement::FewestTenants if dbs.len() == 1 => Ok(&dbs[0]),
            Placement::FewestTenants => {
                let mut unit = self.unit(self.catalog()).await?;
                let found = sqlx::query(
                    "SELECT database, count(*) AS n FROM saas_shared.tenants GROUP BY database",
                )
                .persistent(self.named())
                .fetch_all(unit.conn())
                .await
                .db()?;
                unit.finish().await?;
                let mut counts: HashMap<String, i64> = HashMap::new();
                for row in &found {
                    counts.insert(row.try_get("database").db()?, row.try_get("n").db()?);
                }
                let best = dbs
                    .iter()
                    .min_by_key(|d| counts.get(&d.name).copied().unwrap_or(0))
                    .unwrap_or(&dbs[0]);
                Ok(best)
            }
        }
    }

    /// Whether statements may be named (see `PgConfig::named_statements`).
    pub(crate) fn named(&self) -> bool {
        self.inner.config.named_statements()
    }

    /// Runs `query`, a change of one superuser, on the catalog; NotFound
    /// (superuser) when it changed no row.
    async fn change_superuser(
        &self,
        query: sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments>,
    ) -> Result<()> {
        let mut unit = self.unit(self.catalog()).await?;
        let done = query
            .persistent(self.named())
            .execute(unit.conn())
            .await
            .db()?;
        unit.finish().await?;
        if done.rows_affected() == 0 {
            return Err(Error::not_found(Entity::Superuser));
        }
        Ok(())
    }

    /// A unit of work for reads or one autocommitted statement on `db`.
    pub(crate) async fn unit(&self, db: &Database) -> Result<Unit> {
        db.observe_pool();
        Unit::auto(&db.pool, self.inner.config.transaction_pooler).await
    }

    /// The unit provisioning a tenant: one autocommitted statement, or a
    /// transaction when host migrations follow it.
    async fn provisioning_unit(&self, db: &Database) -> Result<Unit> {
        if self.inner.config.apps.no_tenant_migrations() {
            self.unit(db).await
        } else {
            Unit::tx(&db.pool).await
        }
    }

    /// The handle to give out for one request. With the default routing,
    /// opening a tenant is where its activity is counted (once per
    /// request, not per statement: a request's statements come in bursts
    /// that say nothing of how often the tenant comes back).
    fn for_request(&self, handle: Arc<PgTenant>) -> Arc<dyn TenantStore> {
        if handle.prepare() == Prepare::Busiest {
            let busy = handle.route().hot().touch(handle.tenant_id());
            Arc::new(handle.for_request(busy))
        } else {
            handle
        }
    }

    fn forget_handle(&self, id: TenantId) {
        for db in &self.inner.databases {
            db.tenants.forget(id);
        }
        let mut handles = self.inner.handles.lock().unwrap_or_else(|e| e.into_inner());
        handles.pop(&id);
    }

    async fn fetch_tenant(
        &self,
        sql: &'static str,
        bind: impl FnOnce(
            sqlx::query::Query<'static, sqlx::Postgres, sqlx::postgres::PgArguments>,
        )
            -> sqlx::query::Query<'static, sqlx::Postgres, sqlx::postgres::PgArguments>,
    ) -> Result<Option<Tenant>> {
        let mut unit = self.unit(self.catalog()).await?;
        let row = bind(sqlx::query(sql).persistent(self.named()))
            .fetch_optional(unit.conn())
            .await
            .db()?;
        unit.finish().await?;
        row.as_ref().map(rows::tenant).transpose()
    }

    /// Every tenant of the catalog for a fleet migration, with its schema
    /// and database. The ledger of every database is read once, and the
    /// tenants it shows current are settled without being touched, so a
    /// no-op run costs a few queries in all.
    async fn fleet(&self) -> Result<Vec<FleetTenant<(String, String, TenantId)>>> {
        let mut unit = self.unit(self.catalog()).await?;
        let tenants = sqlx::query("SELECT id, slug, database FROM saas_shared.tenants ORDER BY id")
            .persistent(self.named())
            .fetch_all(unit.conn())
            .await
            .db()?;
        unit.finish().await?;
        // Each schema's version and its compatibility floor.
        let mut ledger: HashMap<(String, String), (i32, i32)> = HashMap::new();
        for db in &self.inner.databases {
            let mut unit = self.unit(db).await?;
            let found = sqlx::query(LEDGER)
                .persistent(self.named())
                .fetch_all(unit.conn())
                .await
                .db()?;
            unit.finish().await?;
            for row in &found {
                ledger.insert(
                    (db.name.clone(), row.try_get("schema_name").db()?),
                    (
                        row.try_get("version").db()?,
                        row.try_get("compatible_from").db()?,
                    ),
                );
            }
        }
        let known = self.inner.tenant_schema.known();
        let mut fleet = Vec::with_capacity(tenants.len());
        for row in &tenants {
            let id = TenantId(row.try_get("id").db()?);
            let slug: String = row.try_get("slug").db()?;
            let database: String = row.try_get("database").db()?;
            let Ok(parsed) = Slug::parse(&slug) else {
                fleet.push(FleetTenant::Failed {
                    slug,
                    reason: "malformed slug in the catalog".to_owned(),
                });
                continue;
            };
            let schema = schema_name(&parsed, id);
            fleet.push(match ledger.get(&(database.clone(), schema.clone())) {
                Some(&(found, floor)) if !may_serve(known.into(), found.into(), floor.into()) => {
                    FleetTenant::Failed {
                        slug,
                        reason: too_new(schema, found, floor, known).to_string(),
                    }
                }
                // With host migrations, only the tenant's own ledger knows.
                Some((v, _)) if *v >= known && self.inner.config.apps.no_tenant_migrations() => {
                    FleetTenant::Current { slug }
                }
                Some(_) => FleetTenant::Pending {
                    slug,
                    work: (schema, database, id),
                },
                None => FleetTenant::Failed {
                    slug,
                    reason: "tenant schema missing from the ledger".to_owned(),
                },
            });
        }
        Ok(fleet)
    }

    /// Migrates one tenant schema to the newest version, then applies the
    /// host migrations it lacks, in one transaction with its ledger rows.
    /// Returns whether anything had to be done.
    ///
    /// The transaction takes its locks with a short `lock_timeout`
    /// ([`MIGRATION_LOCK_TIMEOUT`]): DDL on a table the API is reading waits
    /// for those readers, and every request arriving meanwhile would queue
    /// behind it. Giving up after a few milliseconds and trying again a
    /// moment later bounds what a request can wait; the tenant's handle
    /// in this process is dropped afterwards, so it is reopened with the
    /// statements of the new version.
    async fn migrate_tenant(&self, db: &Database, schema: &str, id: TenantId) -> Result<bool> {
        let mut attempt = 0u32;
        loop {
            match self.migrate_tenant_once(db, schema).await {
                Err(Retry::LockTimeout(e)) if attempt < MIGRATION_LOCK_ATTEMPTS => {
                    attempt += 1;
                    tracing::debug!(%schema, attempt, error = %e, "tenant migration waits for readers");
                    // Spread over 5..=25 ms so concurrent retries do not
                    // line up.
                    let pause = 5 + u64::from(attempt.wrapping_mul(7919) % 21);
                    tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
                }
                Err(Retry::LockTimeout(e)) => return Err(map_sqlx(e)),
                Err(Retry::Failed(e)) => return Err(e),
                Ok(changed) => {
                    if changed {
                        let mut handles =
                            self.inner.handles.lock().unwrap_or_else(|e| e.into_inner());
                        handles.pop(&id);
                    }
                    return Ok(changed);
                }
            }
        }
    }

    /// One attempt of [`Self::migrate_tenant`].
    async fn migrate_tenant_once(&self, db: &Database, schema: &str) -> Result<bool, Retry> {
        let known = self.inner.tenant_schema.known();
        let mut tx = db.pool.begin().await.map_err(Retry::from)?;
        sqlx::raw_sql(MIGRATION_LOCK_TIMEOUT)
            .execute(&mut *tx)
            .await
            .map_err(Retry::from)?;
        // Re-read under a row lock: another migrator may have been faster.
        let version: Option<i32> = sqlx::query_scalar(
            "SELECT version FROM saas_shared.tenant_schemas WHERE schema_name = $1 FOR UPDATE",
        )
        .persistent(self.named())
        .bind(schema)
        .fetch_optional(&mut *tx)
        .await
        .map_err(Retry::from)?;
        let Some(version) = version else {
            return Err(Retry::Failed(Error::not_found(Entity::Tenant)));
        };
        let ours = version < known;
        if ours {
            sqlx::raw_sql(AssertSqlSafe(
                self.inner.tenant_schema.migration_sql(schema, version),
            ))
            .execute(&mut *tx)
            .await
            .map_err(Retry::from)?;
            sqlx::query("UPDATE saas_shared.tenant_schemas SET version = $2, migrated_at = now() WHERE schema_name = $1").persistent(self.named())
                .bind(schema)
                .bind(known)
                .execute(&mut *tx)
                .await
                .map_err(Retry::from)?;
        }
        let theirs = apps::apply_tenant(&mut tx, &self.inner.config.apps, schema)
            .await
            .map_err(Retry::Failed)?;
        if !(ours || theirs) {
            return Ok(false);
        }
        tx.commit().await.map_err(Retry::from)?;
        Ok(true)
    }

    /// Locks `tenant`'s catalog row in `conn`'s transaction with `lock`
    /// ([`SHARE_TENANT`] or [`LOCK_TENANT`]); not found when there is none.
    async fn lock_tenant(
        &self,
        conn: &mut PgConnection,
        tenant: TenantId,
        lock: &'static str,
    ) -> Result<()> {
        let known: Option<i32> = sqlx::query_scalar(lock)
            .persistent(self.named())
            .bind(tenant.0)
            .fetch_optional(conn)
            .await
            .db()?;
        known.map(drop).ok_or(Error::not_found(Entity::Tenant))
    }

    /// Runs `sql`, one statement on the domain `hostname` (its `$1`), in
    /// `tx`, and commits.
    async fn commit_on_domain(
        &self,
        mut tx: Transaction<'_, Postgres>,
        sql: &'static str,
        hostname: &Hostname,
    ) -> Result<()> {
        sqlx::query(sql)
            .persistent(self.named())
            .bind(hostname.as_str())
            .execute(&mut *tx)
            .await
            .db()?;
        tx.commit().await.db()
    }

    /// Makes none of `tenant`'s domains primary (before another becomes it).
    async fn demote_primary(&self, conn: &mut PgConnection, tenant: TenantId) -> Result<()> {
        sqlx::query(
            "UPDATE saas_shared.domains SET is_primary = false WHERE tenant_id = $1 AND is_primary",
        )
        .persistent(self.named())
        .bind(tenant.0)
        .execute(conn)
        .await
        .db()?;
        Ok(())
    }
}

#[async_trait]
impl Store for PgStore {
    async fn create_tenant(
        &self,
        tenant: &NewTenant,
        admin: &NewUserRecord,
    ) -> Result<(Tenant, User)> {
        let target = self.place().await?;
        let catalog = self.catalog();
        let schema = schema_name(&tenant.slug, tenant.id);
        let ddl = provision_sql(tenant, &schema, self.inner.tenant_schema);
        let insert_admin = schema::render(INSERT_USER, &qualified_prefix(&schema));
        let provision = |in_catalog: bool| {
            let query = sqlx::query(PROVISION)
                .persistent(self.named())
                .bind(in_catalog);
            bind_new_user(
                bind_tenant(query, tenant, &target.name)
                    .bind(&ddl)
                    .bind(&insert_admin),
                admin,
            )
        };

        let created = if std::ptr::eq(target, catalog) {
            // One statement: its own transaction, one round trip (unless
            // host migrations run in the same transaction).
            let mut unit = self.provisioning_unit(catalog).await?;
            let row = provision(true).fetch_one(unit.conn()).await.db()?;
            apps::apply_tenant(unit.conn(), &self.inner.config.apps, &schema).await?;
            unit.finish().await?;
            rows::user(&row)?
        } else {
            // The catalog transaction stays open (holding the slug and
            // hostname) while the storage is created in the other database.
            let mut ctx = catalog.pool.begin().await.db()?;
            insert_catalog_rows(&mut ctx, tenant, &target.name, self.named()).await?;
            let mut unit = self.provisioning_unit(target).await?;
            let row = provision(false).fetch_one(unit.conn()).await.db()?;
            apps::apply_tenant(unit.conn(), &self.inner.config.apps, &schema).await?;
            unit.finish().await?;
            let user = rows::user(&row)?;
            commit_catalog(ctx, target, tenant, &schema).await?;
            user
        };
        Ok((tenant.to_tenant(&target.name), created))
    }

    async fn import_tenant(&self, tenant: &NewTenant, data: &TenantImport) -> Result<Tenant> {
        let target = self.place().await?;
        let catalog = self.catalog();
        let schema = schema_name(&tenant.slug, tenant.id);
        let ddl = provision_sql(tenant, &schema, self.inner.tenant_schema);
        let prefix = qualified_prefix(&schema);
        let in_catalog = std::ptr::eq(target, catalog);
        // The catalog rows first (a taken slug or hostname is reported
        // before any work), then storage and rows in the target's
        // transaction: the same one when the catalog is there.
        let mut ctx = catalog.pool.begin().await.db()?;
        insert_catalog_rows(&mut ctx, tenant, &target.name, false).await?;
        // The schema, its rows and the host's tables, in `conn`'s transaction.
        let fill = async |conn: &mut PgConnection| -> Result<()> {
            sqlx::raw_sql(AssertSqlSafe(ddl))
                .execute(&mut *conn)
                .await
                .db()?;
            crate::import::write_rows(conn, &prefix, data).await?;
            apps::apply_tenant(conn, &self.inner.config.apps, &schema).await?;
            Ok(())
        };
        if in_catalog {
            fill(&mut ctx).await?;
            ctx.commit().await.db()?;
        } else {
            let mut tx = target.pool.begin().await.db()?;
            fill(&mut tx).await?;
            tx.commit().await.db()?;
            commit_catalog(ctx, target, tenant, &schema).await?;
        }
        Ok(tenant.to_tenant(&target.name))
    }

    async fn tenant(&self, id: TenantId) -> Result<Option<Tenant>> {
        const SQL: &str = "SELECT id, name, slug, plan, status, database, created_at, deleted_at FROM saas_shared.tenants WHERE id = $1";
        self.fetch_tenant(SQL, |q| q.bind(id.0)).await
    }

    async fn tenant_by_slug(&self, slug: &Slug) -> Result<Option<Tenant>> {
        const SQL: &str = "SELECT id, name, slug, plan, status, database, created_at, deleted_at FROM saas_shared.tenants WHERE slug = $1";
        let slug = slug.as_str().to_owned();
        self.fetch_tenant(SQL, |q| q.bind(slug)).await
    }

    async fn tenant_by_domain(&self, hostname: &Hostname) -> Result<Option<Tenant>> {
        const SQL: &str = "SELECT t.id, t.name, t.slug, t.plan, t.status, t.database, t.created_at, t.deleted_at \
            FROM saas_shared.domains d JOIN saas_shared.tenants t ON t.id = d.tenant_id WHERE d.hostname = $1";
        let hostname = hostname.as_str().to_owned();
        self.fetch_tenant(SQL, |q| q.bind(hostname)).await
    }

    async fn list_tenants(&self, page: PageRequest) -> Result<Page<Tenant>> {
        let mut unit = self.unit(self.catalog()).await?;
        let total: i64 = sqlx::query_scalar("SELECT count(*) FROM saas_shared.tenants")
            .persistent(self.named())
            .fetch_one(unit.conn())
            .await
            .db()?;
        let found = sqlx::query(
            "SELECT id, name, slug, plan, status, database, created_at, deleted_at FROM saas_shared.tenants \
             ORDER BY id LIMIT $1 OFFSET $2",
        )
        .persistent(self.named())
        .bind(page.limit_offset().0)
        .bind(page.limit_offset().1)
        .fetch_all(unit.conn())
        .await
        .db()?;
        unit.finish().await?;
        rows::tenant_page(total, &found)
    }

    async fn search_tenants(&self, query: &TenantQuery, page: PageRequest) -> Result<Page<Tenant>> {
        self.search_catalog(query, page).await
    }

    async fn domains(&self, tenant: TenantId) -> Result<Vec<Domain>> {
        let mut unit = self.unit(self.catalog()).await?;
        let found = sqlx::query(
            "SELECT hostname, tenant_id, is_primary FROM saas_shared.domains WHERE tenant_id = $1 \
             ORDER BY is_primary DESC, hostname",
        )
        .persistent(self.named())
        .bind(tenant.0)
        .fetch_all(unit.conn())
        .await
        .db()?;
        unit.finish().await?;
        found.iter().map(rows::domain).collect()
    }

    async fn add_domain(
        &self,
        tenant: TenantId,
        hostname: &Hostname,
        is_primary: bool,
    ) -> Result<Domain> {
        let mut tx = self.catalog().pool.begin().await.db()?;
        // Locks the tenant row so a concurrent delete cannot slip between.
        self.lock_tenant(&mut tx, tenant, SHARE_TENANT).await?;
        if is_primary {
            self.demote_primary(&mut tx, tenant).await?;
        }
        sqlx::query(
            "INSERT INTO saas_shared.domains (hostname, tenant_id, is_primary) VALUES ($1, $2, $3)",
        )
        .persistent(self.named())
        .bind(hostname.as_str())
        .bind(tenant.0)
        .bind(is_primary)
        .execute(&mut *tx)
        .await
        .db()?;
        tx.commit().await.db()?;
        Ok(Domain {
            hostname: hostname.clone(),
            tenant_id: tenant,
            is_primary,
        })
    }

    async fn set_primary_domain(&self, tenant: TenantId, hostname: &Hostname) -> Result<()> {
        let mut tx = self.catalog().pool.begin().await.db()?;
        // The tenant's row lock serializes changes of its primary domain.
        self.lock_tenant(&mut tx, tenant, LOCK_TENANT).await?;
        let ours: Option<i32> = sqlx::query_scalar(
            "SELECT 1 FROM saas_shared.domains WHERE hostname = $1 AND tenant_id = $2",
        )
        .persistent(self.named())
        .bind(hostname.as_str())
        .bind(tenant.0)
        .fetch_optional(&mut *tx)
        .await
        .db()?;
        if ours.is_none() {
            return Err(Error::not_found(Entity::Domain));
        }
        // Demote first: the one-primary index is checked row by row.
        self.demote_primary(&mut tx, tenant).await?;
        self.commit_on_domain(
            tx,
            "UPDATE saas_shared.domains SET is_primary = true WHERE hostname = $1",
            hostname,
        )
        .await
    }

    async fn remove_domain(&self, tenant: TenantId, hostname: &Hostname) -> Result<()> {
        let mut tx = self.catalog().pool.begin().await.db()?;
        let primary: Option<bool> = sqlx::query_scalar(
            "SELECT is_primary FROM saas_shared.domains WHERE hostname = $1 AND tenant_id = $2 FOR UPDATE",
        ).persistent(self.named())
        .bind(hostname.as_str())
        .bind(tenant.0)
        .fetch_optional(&mut *tx)
        .await
        .db()?;
        match primary {
            None => {
                let known: Option<i32> =
                    sqlx::query_scalar("SELECT 1 FROM saas_shared.tenants WHERE id = $1")
                        .persistent(self.named())
                        .bind(tenant.0)
                        .fetch_optional(&mut *tx)
                        .await
                        .db()?;
                Err(Error::not_found(if known.is_some() {
                    Entity::Domain
                } else {
                    Entity::Tenant
                }))
            }
            Some(true) => Err(Error::State("cannot remove the primary domain")),
            Some(false) => {
                let sql = "DELETE FROM saas_shared.domains WHERE hostname = $1";
                self.commit_on_domain(tx, sql, hostname).await
            }
        }
    }

    async fn set_plan(&self, tenant: TenantId, plan: &str) -> Result<Tenant> {
        const SQL: &str = "UPDATE saas_shared.tenants SET plan = $2 WHERE id = $1 \
            RETURNING id, name, slug, plan, status, database, created_at, deleted_at";
        let plan = plan.to_owned();
        self.fetch_tenant(SQL, |q| q.bind(tenant.0).bind(plan))
            .await?
            .ok_or(Error::not_found(Entity::Tenant))
    }

    async fn set_status(&self, tenant: TenantId, status: TenantStatus) -> Result<Tenant> {
        if !matches!(status, TenantStatus::Active | TenantStatus::Suspended) {
            return Err(Error::invalid(
                "status",
                "must be active or suspended (a tenant is deleted by deleting it)",
            ));
        }
        // A deleted tenant is not found until it is restored.
        const SQL: &str = "UPDATE saas_shared.tenants SET status = $2 \
            WHERE id = $1 AND deleted_at IS NULL \
            RETURNING id, name, slug, plan, status, database, created_at, deleted_at";
        self.fetch_tenant(SQL, |q| q.bind(tenant.0).bind(status.as_str()))
            .await?
            .ok_or(Error::not_found(Entity::Tenant))
    }

    async fn delete_tenant(&self, tenant: TenantId, at: DateTime<Utc>) -> Result<Tenant> {
        self.mark_deleted(tenant, at).await
    }

    async fn restore_tenant(&self, tenant: TenantId) -> Result<Tenant> {
        self.restore(tenant).await
    }

    async fn purge_tenant(
        &self,
        tenant: TenantId,
        deleted_before: Option<DateTime<Utc>>,
    ) -> Result<bool> {
        self.purge(tenant, deleted_before).await
    }

    async fn purge_orphans(&self) -> Result<u64> {
        self.orphans().await
    }

    async fn open(&self, tenant: &Tenant) -> Result<Arc<dyn TenantStore>> {
        {
            let mut handles = self.inner.handles.lock().unwrap_or_else(|e| e.into_inner());
            let cached = handles.get(&tenant.id).map(Arc::clone);
            drop(handles);
            telemetry::cache_lookup("handle", cached.is_some());
            if let Some(handle) = cached {
                if let Ok(db) = self.database(&tenant.database) {
                    db.observe_pool();
                }
                return Ok(self.for_request(handle));
            }
        }
        let db = self.database(&tenant.database)?;
        let schema = schema_name(&tenant.slug, tenant.id);
        let mut unit = self.unit(db).await?;
        // The schema, its version in the ledger (0 without a row) and the
        // oldest version whose build may use it (its own version when the
        // version has no row: only builds that know it).
        let found: Option<(i32, i32)> = sqlx::query_as(
            "SELECT l.version, coalesce(v.compatible_from, l.version) \
             FROM pg_catalog.pg_namespace n \
             CROSS JOIN LATERAL (SELECT coalesce((SELECT version FROM saas_shared.tenant_schemas \
                 WHERE schema_name = $1), 0) AS version) l \
             LEFT JOIN saas_shared.tenant_schema_versions v ON v.version = l.version \
             WHERE n.nspname = $1",
        )
        .persistent(self.named())
        .bind(&schema)
        .fetch_optional(unit.conn())
        .await
        .db()?;
        unit.finish().await?;
        let Some((version, floor)) = found else {
            return Err(Error::not_found(Entity::Tenant));
        };
        let known = self.inner.tenant_schema.known();
        if !may_serve(known.into(), version.into(), floor.into()) {
            return Err(too_new(schema, version, floor, known).into());
        }
        let version = self.inner.tenant_schema.effective(version);
        let handle = Arc::new(PgTenant::new(
            tenant.id,
            db.tenants.route(tenant.id),
            &schema,
            version,
            &self.inner.config,
            &self.inner.unqualified,
        ));
        let mut handles = self.inner.handles.lock().unwrap_or_else(|e| e.into_inner());
        handles.put(tenant.id, Arc::clone(&handle));
        drop(handles);
        Ok(self.for_request(handle))
    }

    async fn create_superuser(
        &self,
        username: &Username,
        email: &Email,
        password_hash: &str,
    ) -> Result<Superuser> {
        let mut unit = self.unit(self.catalog()).await?;
        let row = sqlx::query(
            "INSERT INTO saas_shared.superusers (username, username_key, email, password_hash, created_at) \
             VALUES ($1, $2, $3, $4, now()) RETURNING id, username, email, created_at, is_active, \
             token_version",
        ).persistent(self.named())
        .bind(username.as_str())
        .bind(username.key())
        .bind(email.as_str())
        .bind(password_hash)
        .fetch_one(unit.conn())
        .await
        .db()?;
        unit.finish().await?;
        rows::superuser(&row)
    }

    async fn superuser_credentials(
        &self,
        username_key: &str,
    ) -> Result<Option<(Superuser, String)>> {
        let mut unit = self.unit(self.catalog()).await?;
        let row = sqlx::query(
            "SELECT id, username, email, created_at, is_active, token_version, password_hash \
             FROM saas_shared.superusers WHERE username_key = $1",
        )
        .persistent(self.named())
        .bind(username_key)
        .fetch_optional(unit.conn())
        .await
        .db()?;
        unit.finish().await?;
        rows::with_password_hash(row, rows::superuser)
    }

    async fn append_audit(&self, entry: &NewAuditEntry) -> Result<AuditEntry> {
        self.append_audit_entry(entry).await
    }

    async fn audit_log(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>> {
        self.list_audit(query).await
    }

    async fn superuser(&self, id: i64) -> Result<Option<Superuser>> {
        let mut unit = self.unit(self.catalog()).await?;
        let row = sqlx::query(
            "SELECT id, username, email, created_at, is_active, token_version \
             FROM saas_shared.superusers WHERE id = $1",
        )
        .persistent(self.named())
        .bind(id)
        .fetch_optional(unit.conn())
        .await
        .db()?;
        unit.finish().await?;
        row.as_ref().map(rows::superuser).transpose()
    }

    async fn set_superuser_active(&self, id: i64, active: bool) -> Result<Superuser> {
        let mut unit = self.unit(self.catalog()).await?;
        // SET expressions see the old is_active: only deactivating an active
        // superuser bumps the version.
        let row = sqlx::query(
            "UPDATE saas_shared.superusers SET is_active = $2, \
             token_version = token_version + CASE WHEN is_active AND NOT $2 THEN 1 ELSE 0 END \
             WHERE id = $1 RETURNING id, username, email, created_at, is_active, token_version",
        )
        .persistent(self.named())
        .bind(id)
        .bind(active)
        .fetch_optional(unit.conn())
        .await
        .db()?;
        unit.finish().await?;
        row.as_ref()
            .map(rows::superuser)
            .transpose()?
            .ok_or(Error::not_found(Entity::Superuser))
    }

    async fn set_superuser_password(&self, id: i64, password_hash: &str) -> Result<()> {
        let sql = "UPDATE saas_shared.superusers SET password_hash = $2, \
                   token_version = token_version + 1 WHERE id = $1";
        self.change_superuser(sqlx::query(sql).bind(id).bind(password_hash.to_owned()))
            .await
    }

    async fn delete_superuser(&self, id: i64) -> Result<()> {
        let sql = "DELETE FROM saas_shared.superusers WHERE id = $1";
        self.change_superuser(sqlx::query(sql).bind(id)).await
    }

    async fn migrate(&self, progress: ProgressFn<'_>) -> Result<MigrationReport> {
        for db in &self.inner.databases {
            let mut conn = db.pool.acquire().await.db()?;
            schema::setup_shared(&mut conn, self.named()).await.db()?;
        }
        let mut conn = self.catalog().pool.acquire().await.db()?;
        apps::apply_shared(&mut conn, &self.inner.config.apps, self.named()).await?;
        drop(conn);
        let tenants = self.fleet().await?;
        let concurrency = self.inner.config.migrate_concurrency;
        let report = migrate_fleet(
            tenants,
            concurrency,
            progress,
            |(schema, database, id)| async move {
                self.migrate_tenant(self.database(&database)?, &schema, id)
                    .await
            },
        )
        .await;
        Ok(report)
    }

    async fn ping(&self) -> Result<()> {
        for db in &self.inner.databases {
            // The simple protocol: one message, safe behind any pooler.
            sqlx::raw_sql("SELECT 1").execute(&db.pool).await.db()?;
        }
        Ok(())
    }

    async fn pending_migrations(&self) -> Result<u64> {
        let mut pending = 0;
        for db in &self.inner.databases {
            let mut unit = self.unit(db).await?;
            let (shared, tenants): (i32, i64) = sqlx::query_as(
                "SELECT (SELECT coalesce(max(version), 0) FROM saas_shared.schema_migrations), \
                        (SELECT count(*) FROM saas_shared.tenant_schemas WHERE version < $1)",
            )
            .persistent(self.named())
            .bind(self.inner.tenant_schema.known())
            .fetch_one(unit.conn())
            .await
            .db()?;
            unit.finish().await?;
            pending += u64::from(shared < schema::latest_shared_version());
            pending += u64::try_from(tenants).unwrap_or(0);
        }
        Ok(pending)
    }
}
