//! The audit log's statements, in the catalog file.

use rusqlite::{Connection, Row, params};
use saas_core::audit::{AuditEntry, AuditQuery, NewAuditEntry};
use saas_core::tenancy::TenantId;
use uuid::Uuid;

use crate::codec;
use crate::error::R;

/// Appends `entry`; its id is the row id, which AUTOINCREMENT never reuses.
pub(crate) fn append(conn: &Connection, entry: NewAuditEntry) -> R<AuditEntry> {
    conn.prepare_cached(
        "INSERT INTO audit_log (at, actor, tenant_id, action, target, detail, client) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        codec::micros(entry.at),
        entry.actor,
        entry.tenant.map(|t| t.0.to_string()),
        entry.action,
        entry.target,
        entry.detail,
        entry.client,
    ])?;
    Ok(entry.with_id(conn.last_insert_rowid()))
}

fn row(r: &Row<'_>) -> rusqlite::Result<AuditEntry> {
    let tenant: Option<String> = r.get(3)?;
    let tenant = match tenant {
        Some(t) => Some(TenantId(Uuid::parse_str(&t).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(3, rusqlite::types::Type::Text, e.into())
        })?)),
        None => None,
    };
    Ok(AuditEntry {
        id: r.get(0)?,
        at: codec::ts(r, 1)?,
        actor: r.get(2)?,
        tenant,
        action: r.get(4)?,
        target: r.get(5)?,
        detail: r.get(6)?,
        client: r.get(7)?,
    })
}

/// The entries `query` matches, newest first. One statement text whatever
/// the filters: an absent filter is a NULL parameter.
pub(crate) fn list(conn: &Connection, query: &AuditQuery) -> R<Vec<AuditEntry>> {
    Ok(conn
        .prepare_cached(
            "SELECT id, at, actor, tenant_id, action, target, detail, client FROM audit_log \
             WHERE (?1 IS NULL OR tenant_id = ?1) AND (?2 IS NULL OR actor = ?2) \
             AND (?3 IS NULL OR action = ?3) AND (?4 IS NULL OR id < ?4) \
             ORDER BY id DESC LIMIT ?5",
        )?
        .query_map(
            params![
                query.tenant.map(|t| t.0.to_string()),
                query.actor,
                query.action,
                query.before,
                query.sql_limit(),
            ],
            row,
        )?
        .collect::<rusqlite::Result<Vec<_>>>()?)
}
