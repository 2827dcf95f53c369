//! `purge_deleted_tenants`: the second step of deleting a tenant. An
//! operator's delete only marks the tenant deleted (refused at once, data
//! kept, restorable); this platform job, run daily by the built-in
//! schedule, purges every tenant deleted longer than the retention ago,
//! then removes storage an interrupted purge left behind.

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::job::{Job, JobContext, JobError, JobScope, NoPayload};
use crate::store::Page;
use crate::tenancy::{TenantId, TenantStatus};

/// What `purge_deleted_tenants` removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PurgeSummary {
    /// Deleted tenants purged (their retention had passed).
    pub purged_tenants: u64,
    /// Pieces of storage no catalog row pointed to, removed.
    pub purged_orphans: u64,
}

/// Purges tenants deleted longer than `retention` ago (default 7 days:
/// [`super::builtin::BuiltinConfig::tenant_retention`]).
#[derive(Debug, Clone, Copy)]
pub struct PurgeDeletedTenants {
    /// How long a deleted tenant's data is kept (and can be restored).
    pub retention: Duration,
}

#[async_trait]
impl Job for PurgeDeletedTenants {
    const KIND: &'static str = "purge_deleted_tenants";
    const SCOPE: JobScope = JobScope::Platform;
    const MAX_ATTEMPTS: u32 = 3;
    type Payload = NoPayload;
    type Output = PurgeSummary;

    async fn run(&self, ctx: &JobContext, _: NoPayload) -> Result<PurgeSummary, JobError> {
        let store = ctx.saas().store();
        // A retention too long to subtract purges nothing.
        let Some(cutoff) = chrono::Duration::from_std(self.retention)
            .ok()
            .and_then(|d| ctx.now().checked_sub_signed(d))
        else {
            return Ok(PurgeSummary::default());
        };
        // Every due tenant first, then the purges: purging while paging
        // would shift the pages under the walk.
        let due: Vec<TenantId> = Page::every(|page| store.list_tenants(page))
            .await?
            .into_iter()
            .filter(|t| {
                t.status == TenantStatus::Deleted && t.deleted_at.is_some_and(|at| at < cutoff)
            })
            .map(|t| t.id)
            .collect();
        let mut summary = PurgeSummary::default();
        for id in due {
            // Checked again in the purge's own transaction: a restore since
            // the listing wins.
            if store.purge_tenant(id, Some(cutoff)).await? {
                summary.purged_tenants += 1;
            }
        }
        summary.purged_orphans = store.purge_orphans().await?;
        if summary.purged_tenants > 0 {
            ctx.saas().forget_hosts();
        }
        Ok(summary)
    }
}
