//! The operator's tenant list: search, filters and order, rendered from a
//! [`TenantQuery`].

use saas_core::Result;
use saas_core::store::{Page, PageRequest};
use saas_core::tenancy::Tenant;
use saas_core::tenant_query::{TenantQuery, TenantSort};
use sqlx::AssertSqlSafe;

use crate::PgStore;
use crate::error::SqlxResultExt;
use crate::rows;

/// The conditions: an absent filter is a NULL parameter, so a query shape
/// has one statement text. The domains are searched once (an uncorrelated
/// `IN`, a hashed subplan), not once per tenant row.
const WHERE: &str = " FROM saas_shared.tenants t \
     WHERE ($1::text IS NULL OR lower(t.name) LIKE $1 OR t.slug LIKE $1 \
        OR t.id IN (SELECT d.tenant_id FROM saas_shared.domains d WHERE d.hostname LIKE $1)) \
       AND ($2::text IS NULL OR t.plan = $2) \
       AND ($3::text IS NULL OR CASE WHEN t.deleted_at IS NULL THEN t.status ELSE 'deleted' END = $3)";

/// Text orders by bytes (`COLLATE "C"`), as every backend does.
fn order(query: &TenantQuery) -> &'static str {
    match (query.sort, query.descending) {
        (TenantSort::Created, false) => " ORDER BY t.created_at, t.id",
        (TenantSort::Created, true) => " ORDER BY t.created_at DESC, t.id DESC",
        (TenantSort::Name, false) => " ORDER BY t.name COLLATE \"C\", t.id",
        (TenantSort::Name, true) => " ORDER BY t.name COLLATE \"C\" DESC, t.id DESC",
        (TenantSort::Slug, false) => " ORDER BY t.slug COLLATE \"C\", t.id",
        (TenantSort::Slug, true) => " ORDER BY t.slug COLLATE \"C\" DESC, t.id DESC",
        (TenantSort::Plan, false) => " ORDER BY t.plan COLLATE \"C\", t.id",
        (TenantSort::Plan, true) => " ORDER BY t.plan COLLATE \"C\" DESC, t.id DESC",
        (TenantSort::Status, false) => " ORDER BY t.status COLLATE \"C\", t.id",
        (TenantSort::Status, true) => " ORDER BY t.status COLLATE \"C\" DESC, t.id DESC",
    }
}

impl PgStore {
    /// One page of the tenants `query` selects, and how many it selects.
    pub(crate) async fn search_catalog(
        &self,
        query: &TenantQuery,
        page: PageRequest,
    ) -> Result<Page<Tenant>> {
        let pattern = query.like_pattern();
        let status = query.status.map(|s| s.as_str());
        let (limit, offset) = page.limit_offset();
        let mut unit = self.unit(self.catalog()).await?;
        // Both statements are made of constants only.
        let counted = format!("SELECT count(*){WHERE}");
        let total: i64 = sqlx::query_scalar(AssertSqlSafe(counted))
            .persistent(self.named())
            .bind(pattern.as_deref())
            .bind(query.plan.as_deref())
            .bind(status)
            .fetch_one(unit.conn())
            .await
            .db()?;
        let listed = format!(
            "SELECT t.id, t.name, t.slug, t.plan, t.status, t.database, t.created_at, t.deleted_at{WHERE}{} \
             LIMIT $4 OFFSET $5",
            order(query)
        );
        let found = sqlx::query(AssertSqlSafe(listed))
            .persistent(self.named())
            .bind(pattern.as_deref())
            .bind(query.plan.as_deref())
            .bind(status)
            .bind(limit)
            .bind(offset)
            .fetch_all(unit.conn())
            .await
            .db()?;
        unit.finish().await?;
        rows::tenant_page(total, &found)
    }
}
