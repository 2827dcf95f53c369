//! The operator's tenant list: search, filters and order, rendered from a
//! [`TenantQuery`].

use rusqlite::{Connection, params};
use saas_core::store::{Page, PageRequest};
use saas_core::tenancy::{Tenant, TenantStatus};
use saas_core::tenant_query::{TenantQuery, TenantSort};

use crate::codec;
use crate::error::R;

/// The conditions: an absent filter is a NULL parameter, so a query shape
/// has one statement text. SQLite's `LIKE` folds ASCII case; the pattern
/// is lowercased, and so are the names it is matched against. The domains
/// are searched once (an uncorrelated `IN`), not once per tenant row.
const WHERE: &str = " FROM tenants t \
     WHERE (?1 IS NULL OR lower(t.name) LIKE ?1 ESCAPE '\\' OR t.slug LIKE ?1 ESCAPE '\\' \
        OR t.id IN (SELECT d.tenant_id FROM domains d WHERE d.hostname LIKE ?1 ESCAPE '\\')) \
       AND (?2 IS NULL OR t.plan = ?2) \
       AND (?3 IS NULL OR CASE WHEN t.deleted_at IS NULL THEN t.status ELSE -1 END = ?3)";

fn order(query: &TenantQuery) -> &'static str {
    match (query.sort, query.descending) {
        (TenantSort::Created, false) => " ORDER BY t.created_at, t.id",
        (TenantSort::Created, true) => " ORDER BY t.created_at DESC, t.id DESC",
        (TenantSort::Name, false) => " ORDER BY t.name, t.id",
        (TenantSort::Name, true) => " ORDER BY t.name DESC, t.id DESC",
        (TenantSort::Slug, false) => " ORDER BY t.slug, t.id",
        (TenantSort::Slug, true) => " ORDER BY t.slug DESC, t.id DESC",
        (TenantSort::Plan, false) => " ORDER BY t.plan, t.id",
        (TenantSort::Plan, true) => " ORDER BY t.plan DESC, t.id DESC",
        (TenantSort::Status, false) => " ORDER BY t.status, t.id",
        (TenantSort::Status, true) => " ORDER BY t.status DESC, t.id DESC",
    }
}

/// One page of the tenants `query` selects, and how many it selects.
pub(crate) fn search(
    conn: &mut Connection,
    query: &TenantQuery,
    page: PageRequest,
    columns: &str,
    row: fn(&rusqlite::Row<'_>) -> rusqlite::Result<Tenant>,
) -> R<Page<Tenant>> {
    let pattern = query.like_pattern();
    // A deleted tenant is the mark, not a stored status: -1 in the filter.
    let status = query.status.map(|s| match s {
        TenantStatus::Deleted => Ok(-1),
        s => codec::tenant_status_rank(s),
    });
    let status = status.transpose()?;
    let (limit, offset) = page.limit_offset();
    let tx = conn.transaction()?;
    let total: i64 = tx
        .prepare_cached(&format!("SELECT count(*){WHERE}"))?
        .query_row(params![pattern, query.plan, status], |r| r.get(0))?;
    let items = tx
        .prepare_cached(&format!(
            "SELECT {columns}{WHERE}{} LIMIT ?4 OFFSET ?5",
            order(query)
        ))?
        .query_map(params![pattern, query.plan, status, limit, offset], row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(Page {
        count: u64::try_from(total).unwrap_or(0),
        items,
    })
}
