//! Fleet migrations: bringing every tenant's storage to the newest schema
//! version, the same way on every backend.
//!
//! A backend says which tenants there are (and which it already knows to be
//! current or broken) and how to migrate one; [`migrate_fleet`] runs them
//! with bounded concurrency, goes on past failures, reports progress after
//! each tenant and adds up the [`MigrationReport`]. `Store::migrate`
//! implementations first bring their shared storage forward, then hand the
//! tenants to it.
//!
//! # Rolling deploys: which builds may serve a newer schema
//!
//! Each tenant schema version is either *breaking* or *additive*. An
//! additive version only adds what older statements never name (a nullable
//! column kept by a trigger, an index), so a build that knows only the
//! versions before it still reads and writes the schema correctly. The
//! oldest version whose build may serve a schema at version `v` is
//! therefore `v` minus the additive versions directly below and including
//! it ([`compatible_from`]); each backend records it with the schema (see
//! the stores), and a build serves a schema newer than it knows only when
//! that floor is at most its own newest version ([`may_serve`]). Anything
//! else is refused with an error naming both versions, never misread.

use std::future::Future;

use futures::StreamExt;
use serde::Serialize;

use crate::error::chain;

/// The oldest schema version whose build may still read and write a schema
/// at `version`, given the versions whose migration is additive (see the
/// [module documentation](self)): `version` itself unless it is additive,
/// and then the floor of the version below it.
pub fn compatible_from(version: i64, additive: &[i64]) -> i64 {
    let mut floor = version;
    while floor > 0 && additive.contains(&floor) {
        floor -= 1;
    }
    floor
}

/// Whether a build whose newest schema version is `known` may serve a
/// schema at `found` whose compatibility floor ([`compatible_from`]) is
/// `floor`: it is not newer, or every version above `known` is additive.
pub fn may_serve(known: i64, found: i64, floor: i64) -> bool {
    found <= known || floor <= known
}

/// Progress of a fleet migration, reported after each tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationProgress {
    /// Tenants handled so far.
    pub done: u64,
    /// Tenants in all.
    pub total: u64,
    /// The tenant just handled.
    pub slug: String,
    /// What happened to it.
    pub outcome: MigrationOutcome,
}

/// What a fleet migration did to one tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MigrationOutcome {
    /// It was behind and is now current.
    Migrated,
    /// It was already current.
    Current,
    /// It could not be migrated (the report says why).
    Failed,
}

/// Outcome of a fleet migration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MigrationReport {
    /// Tenants considered.
    pub tenants: u64,
    /// Tenants that were behind and are now current.
    pub migrated: u64,
    /// Tenants already current.
    pub current: u64,
    /// Tenants that failed, with the reason; the run went on past them.
    pub failed: Vec<(String, String)>,
}

/// Callback receiving migration progress.
pub type ProgressFn<'a> = &'a (dyn Fn(MigrationProgress) + Send + Sync);

/// One tenant of a fleet migration, as the backend lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FleetTenant<T> {
    /// To be handed to the driver's `migrate_one`, with what it needs.
    Pending {
        /// The tenant's slug, for the report.
        slug: String,
        /// What `migrate_one` takes.
        work: T,
    },
    /// Known to be current without touching it.
    Current {
        /// The tenant's slug.
        slug: String,
    },
    /// Known not to be migratable, for this reason.
    Failed {
        /// The tenant's slug (as stored, even if malformed).
        slug: String,
        /// Why.
        reason: String,
    },
}

/// Migrates a fleet: reports the tenants the backend already judged
/// (current or failed) in list order, then runs `migrate_one` on the
/// pending ones, at most `concurrency` at once (at least one), reporting
/// each as it finishes. `migrate_one` answers whether the tenant was behind
/// (and is now current) or already current; an error is recorded with its
/// whole source chain and the run goes on.
pub async fn migrate_fleet<T, E, F, Fut>(
    tenants: Vec<FleetTenant<T>>,
    concurrency: usize,
    progress: ProgressFn<'_>,
    migrate_one: F,
) -> MigrationReport
where
    F: Fn(T) -> Fut,
    Fut: Future<Output = Result<bool, E>>,
    E: std::error::Error + 'static,
{
    let mut tally = Tally {
        report: MigrationReport {
            tenants: tenants.len() as u64,
            ..MigrationReport::default()
        },
        progress,
    };
    let mut pending = Vec::new();
    for tenant in tenants {
        match tenant {
            FleetTenant::Pending { slug, work } => pending.push((slug, work)),
            FleetTenant::Current { slug } => tally.record(slug, Ok(false)),
            FleetTenant::Failed { slug, reason } => tally.record(slug, Err(reason)),
        }
    }
    let mut runs = futures::stream::iter(pending)
        .map(|(slug, work)| {
            let run = migrate_one(work);
            async move { (slug, run.await) }
        })
        .buffer_unordered(concurrency.max(1));
    while let Some((slug, outcome)) = runs.next().await {
        tally.record(slug, outcome.map_err(|e| chain(&e)));
    }
    tally.report
}

/// The report so far and where progress goes.
struct Tally<'a> {
    report: MigrationReport,
    progress: ProgressFn<'a>,
}

impl Tally<'_> {
    /// Counts one tenant (`Ok(true)`: migrated, `Ok(false)`: current) and
    /// reports it.
    fn record(&mut self, slug: String, outcome: Result<bool, String>) {
        let report = &mut self.report;
        let outcome = match outcome {
            Ok(true) => {
                report.migrated += 1;
                MigrationOutcome::Migrated
            }
            Ok(false) => {
                report.current += 1;
                MigrationOutcome::Current
            }
            Err(reason) => {
                tracing::warn!(tenant = %slug, %reason, "tenant migration failed");
                report.failed.push((slug.clone(), reason));
                MigrationOutcome::Failed
            }
        };
        (self.progress)(MigrationProgress {
            done: report.migrated + report.current + report.failed.len() as u64,
            total: report.tenants,
            slug,
            outcome,
        });
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    #[test]
    fn additive_versions_lower_the_floor_and_breaking_ones_stop_it() {
        assert_eq!(compatible_from(3, &[]), 3);
        assert_eq!(compatible_from(4, &[4]), 3);
        assert_eq!(compatible_from(5, &[4, 5]), 3);
        assert_eq!(compatible_from(5, &[4]), 5);
        assert_eq!(compatible_from(6, &[4, 6]), 5);
        assert!(may_serve(3, 4, 3));
        assert!(may_serve(4, 4, 4));
        assert!(may_serve(4, 2, 2));
        assert!(!may_serve(3, 5, 5));
        assert!(!may_serve(2, 4, 3));
    }

    #[tokio::test]
    async fn runs_past_failures_and_counts_every_tenant() {
        let tenants = vec![
            FleetTenant::Pending {
                slug: "behind".to_owned(),
                work: Ok(true),
            },
            FleetTenant::Current {
                slug: "known_current".to_owned(),
            },
            FleetTenant::Pending {
                slug: "broken".to_owned(),
                work: Err("disk on fire"),
            },
            FleetTenant::Failed {
                slug: "bad slug".to_owned(),
                reason: "malformed".to_owned(),
            },
            FleetTenant::Pending {
                slug: "current".to_owned(),
                work: Ok(false),
            },
        ];
        let seen = Mutex::new(Vec::new());
        let progress = |p: MigrationProgress| {
            assert_eq!(p.total, 5);
            seen.lock().expect("lock").push((p.done, p.slug, p.outcome));
        };
        let report = migrate_fleet(tenants, 2, &progress, |work| async move {
            work.map_err(std::io::Error::other)
        })
        .await;
        assert_eq!(report.tenants, 5);
        assert_eq!(report.migrated, 1);
        assert_eq!(report.current, 2);
        let mut failed = report.failed.clone();
        failed.sort();
        assert_eq!(
            failed,
            vec![
                ("bad slug".to_owned(), "malformed".to_owned()),
                ("broken".to_owned(), "disk on fire".to_owned()),
            ]
        );
        let seen = seen.into_inner().expect("lock");
        let done: Vec<u64> = seen.iter().map(|(d, _, _)| *d).collect();
        assert_eq!(done, vec![1, 2, 3, 4, 5]);
        // What the backend judged comes first, in list order.
        assert_eq!(seen[0].1, "known_current");
        assert_eq!(seen[1].1, "bad slug");
    }
}
