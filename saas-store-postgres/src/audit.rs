//! The audit log, in the catalog database's shared schema.

use saas_core::Result;
use saas_core::audit::{AuditEntry, AuditQuery, NewAuditEntry};
use saas_core::tenancy::TenantId;
use sqlx::Row;
use sqlx::postgres::PgRow;
use uuid::Uuid;

use crate::PgStore;
use crate::error::SqlxResultExt;

fn row(r: &PgRow) -> Result<AuditEntry> {
    let tenant: Option<Uuid> = r.try_get("tenant_id").db()?;
    Ok(AuditEntry {
        id: r.try_get("id").db()?,
        at: r.try_get("at").db()?,
        actor: r.try_get("actor").db()?,
        tenant: tenant.map(TenantId),
        action: r.try_get("action").db()?,
        target: r.try_get("target").db()?,
        detail: r.try_get("detail").db()?,
        client: r.try_get("client").db()?,
    })
}

impl PgStore {
    pub(crate) async fn append_audit_entry(&self, entry: &NewAuditEntry) -> Result<AuditEntry> {
        let mut unit = self.unit(self.catalog()).await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO saas_shared.audit_log (at, actor, tenant_id, action, target, detail, client) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        )
        .persistent(self.named())
        .bind(entry.at)
        .bind(&entry.actor)
        .bind(entry.tenant.map(|t| t.0))
        .bind(&entry.action)
        .bind(&entry.target)
        .bind(&entry.detail)
        .bind(entry.client.as_deref())
        .fetch_one(unit.conn())
        .await
        .db()?;
        unit.finish().await?;
        Ok(entry.clone().with_id(id))
    }

    /// One statement text whatever the filters: an absent filter is a NULL
    /// parameter.
    pub(crate) async fn list_audit(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>> {
        let mut unit = self.unit(self.catalog()).await?;
        let rows = sqlx::query(
            "SELECT id, at, actor, tenant_id, action, target, detail, client \
             FROM saas_shared.audit_log \
             WHERE ($1::uuid IS NULL OR tenant_id = $1) AND ($2::text IS NULL OR actor = $2) \
             AND ($3::text IS NULL OR action = $3) AND ($4::bigint IS NULL OR id < $4) \
             ORDER BY id DESC LIMIT $5",
        )
        .persistent(self.named())
        .bind(query.tenant.map(|t| t.0))
        .bind(query.actor.as_deref())
        .bind(query.action.as_deref())
        .bind(query.before)
        .bind(query.sql_limit())
        .fetch_all(unit.conn())
        .await
        .db()?;
        unit.finish().await?;
        rows.iter().map(row).collect()
    }
}
