//! Deleting a tenant in two steps: [`PgStore::mark_deleted`] (refused at
//! once, the schema kept, [`PgStore::restore`] undoes it) and
//! [`PgStore::purge`] (the catalog row first, then the schema), with
//! [`PgStore::orphans`] dropping schemas a purge interrupted after its
//! catalog commit left behind.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use saas_core::error::{Entity, Error, Result};
use saas_core::tenancy::{Slug, Tenant, TenantId};
use sqlx::{AssertSqlSafe, Row};
use uuid::Uuid;

use super::drop_sql;
use crate::PgStore;
use crate::error::SqlxResultExt;
use crate::schema::schema_name;

/// The ledger rows that may be orphans: older than an hour, since a younger
/// one may belong to a registration whose catalog row is not committed yet
/// (another database's schema is committed first).
const LEDGER_CANDIDATES: &str = "SELECT schema_name, tenant_id FROM saas_shared.tenant_schemas \
     WHERE migrated_at < now() - interval '1 hour'";

impl PgStore {
    /// Marks `tenant` deleted at `at`; a deleted tenant keeps its first time.
    pub(super) async fn mark_deleted(&self, tenant: TenantId, at: DateTime<Utc>) -> Result<Tenant> {
        const SQL: &str = "UPDATE saas_shared.tenants SET deleted_at = COALESCE(deleted_at, $2) \
            WHERE id = $1 \
            RETURNING id, name, slug, plan, status, database, created_at, deleted_at";
        let t = self
            .fetch_tenant(SQL, |q| q.bind(tenant.0).bind(at))
            .await?
            .ok_or(Error::not_found(Entity::Tenant))?;
        // Cached handles go with the tenant's reachability.
        self.forget_handle(tenant);
        Ok(t)
    }

    /// Takes the deletion mark off `tenant`.
    pub(super) async fn restore(&self, tenant: TenantId) -> Result<Tenant> {
        const SQL: &str = "UPDATE saas_shared.tenants SET deleted_at = NULL \
            WHERE id = $1 AND deleted_at IS NOT NULL \
            RETURNING id, name, slug, plan, status, database, created_at, deleted_at";
        match self.fetch_tenant(SQL, |q| q.bind(tenant.0)).await? {
            Some(t) => Ok(t),
            None if self.tenant_exists(tenant).await? => {
                Err(Error::State("only a deleted tenant can be restored"))
            }
            None => Err(Error::not_found(Entity::Tenant)),
        }
    }

    async fn tenant_exists(&self, tenant: TenantId) -> Result<bool> {
        let mut unit = self.unit(self.catalog()).await?;
        let found: Option<i32> =
            sqlx::query_scalar("SELECT 1 FROM saas_shared.tenants WHERE id = $1")
                .persistent(self.named())
                .bind(tenant.0)
                .fetch_optional(unit.conn())
                .await
                .db()?;
        unit.finish().await?;
        Ok(found.is_some())
    }

    /// Purges `tenant` (with `before`, only if deleted before it): the
    /// catalog row and domains, then the schema. In the catalog's database
    /// both go in one transaction (the schema is never dropped while a
    /// committed row names it); in another database the catalog commits
    /// first, and a schema whose drop did not commit is an orphan.
    pub(super) async fn purge(
        &self,
        tenant: TenantId,
        before: Option<DateTime<Utc>>,
    ) -> Result<bool> {
        // Evicted first, so that even a failed purge never leaves this
        // process's cache as the one thing still pointing at the tenant;
        // and again at the end, against an `open` that raced the purge.
        self.forget_handle(tenant);
        let catalog = self.catalog();
        let mut ctx = catalog.pool.begin().await.db()?;
        // Domains go with the row (ON DELETE CASCADE).
        let row = sqlx::query(
            "DELETE FROM saas_shared.tenants \
             WHERE id = $1 AND ($2::timestamptz IS NULL OR deleted_at < $2) \
             RETURNING slug, database",
        )
        .persistent(self.named())
        .bind(tenant.0)
        .bind(before)
        .fetch_optional(&mut *ctx)
        .await
        .db()?;
        let Some(row) = row else {
            return Ok(false);
        };
        let slug: String = row.try_get("slug").db()?;
        let slug = Slug::parse(&slug).map_err(|_| crate::error::corrupt("tenants.slug"))?;
        let database: String = row.try_get("database").db()?;
        let target = self.database(&database)?;
        let drop = drop_sql(&schema_name(&slug, tenant));
        if std::ptr::eq(target, catalog) {
            sqlx::raw_sql(AssertSqlSafe(drop))
                .execute(&mut *ctx)
                .await
                .db()?;
            ctx.commit().await.db()?;
        } else {
            // Catalog first: if the drop does not commit, what remains is a
            // schema nothing points to, which `orphans` drops later.
            ctx.commit().await.db()?;
            let dropped = sqlx::raw_sql(AssertSqlSafe(drop))
                .execute(&target.pool)
                .await;
            if let Err(e) = dropped {
                tracing::error!(slug = %slug, database = %database, error = %e,
                    "tenant purged from the catalog; its schema stays until the next purge of orphans");
            }
        }
        self.forget_handle(tenant);
        Ok(true)
    }

    /// Drops every tenant schema, in every database, that the catalog no
    /// longer names (found by the database's ledger, and an hour old:
    /// [`LEDGER_CANDIDATES`]). How many it dropped.
    pub(super) async fn orphans(&self) -> Result<u64> {
        let mut unit = self.unit(self.catalog()).await?;
        let known: HashSet<Uuid> = sqlx::query_scalar("SELECT id FROM saas_shared.tenants")
            .persistent(self.named())
            .fetch_all(unit.conn())
            .await
            .db()?
            .into_iter()
            .collect();
        unit.finish().await?;
        let mut dropped = 0;
        for db in &self.inner.databases {
            let mut unit = self.unit(db).await?;
            let ledger = sqlx::query(LEDGER_CANDIDATES)
                .persistent(self.named())
                .fetch_all(unit.conn())
                .await
                .db()?;
            unit.finish().await?;
            for row in &ledger {
                let schema: String = row.try_get("schema_name").db()?;
                let owner: Uuid = row.try_get("tenant_id").db()?;
                if known.contains(&owner) {
                    continue;
                }
                // Only names this crate makes (`t_<slug>_<id fragment>`).
                if !schema.starts_with(crate::schema::TENANT_PREFIX)
                    || !schema
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
                {
                    continue;
                }
                tracing::warn!(schema = %schema, database = %db.name,
                    "dropping a tenant schema no catalog row points to");
                sqlx::raw_sql(AssertSqlSafe(drop_sql(&schema)))
                    .execute(&db.pool)
                    .await
                    .db()?;
                dropped += 1;
            }
        }
        Ok(dropped)
    }
}
