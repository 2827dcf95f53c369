//! Tenant-affine connections: a database's tenant connections split into
//! sub-pools, each tenant bound to two of them.
//!
//! A PostgreSQL backend caches the relation descriptors and catalog rows of
//! every table it has touched, and keeps the statements it prepared. When
//! any connection may serve any tenant, every backend ends up touching every
//! tenant's schema: with thousands of tenants it rarely finds one warm, and
//! its caches grow with the whole fleet. Here each tenant is bound, by
//! rendezvous hashing of its id, to a *home* sub-pool and a *spare* one (its
//! two highest-scoring sub-pools). A unit of work runs on the home sub-pool,
//! unless as many units as it has connections already hold or await one
//! there while the spare has room: so a backend sees about
//! `2 × tenants / sub-pools` schemas, and a busy tenant still gets twice
//! its share of connections before it waits. A unit that waits, waits on
//! the home sub-pool, in the pool's order of arrival and with its acquire
//! timeout: exhaustion is the same error as ever. Units are counted here
//! ([`Lease`]) rather than read from the pool, which returns a connection
//! to its idle queue only some time after a unit let go of it.
//!
//! The busiest tenants of each sub-pool ([`HotTenants`]) have their
//! statements prepared on its connections. A unit that spilled to the
//! spare runs unnamed, so that no connection's statement cache holds
//! tenants of another sub-pool's set.
//!
//! Behind a transaction pooler the sub-pools are client-side pools of the
//! pooler, which hands out server connections as it likes: affinity then
//! changes nothing on the server, and nothing breaks either.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use saas_core::tenancy::TenantId;
use sqlx::PgPool;
use sqlx::postgres::PgConnectOptions;

use crate::hot::HotTenants;

/// One sub-pool: its connections and the tenants it prepares statements for.
#[derive(Debug)]
pub(crate) struct SubPool {
    pub(crate) pool: PgPool,
    pub(crate) hot: HotTenants,
    /// Connections of the pool.
    max: u32,
    /// Units of work holding or awaiting one of them.
    in_use: AtomicU32,
    /// Units of work run here unprepared (of tenants not among the
    /// busiest) since the pool last recycled a connection for them
    /// ([`crate::pooling::pool_options`]).
    cold: Arc<AtomicU64>,
}

impl SubPool {
    fn new(pool: PgPool, hot_capacity: usize, cold: Arc<AtomicU64>) -> Arc<Self> {
        Arc::new(SubPool {
            max: pool.options().get_max_connections(),
            pool,
            hot: HotTenants::new(hot_capacity),
            in_use: AtomicU32::new(0),
            cold,
        })
    }

    /// Counts one more unit of work here if that fits its connections.
    fn try_lease(self: &Arc<Self>) -> Option<Lease> {
        let before = self.in_use.fetch_add(1, Ordering::AcqRel);
        let lease = Lease(Arc::clone(self));
        // A lease that does not fit is dropped, which counts it out again.
        (before < self.max).then_some(lease)
    }

    /// Counts one more unit of work here.
    fn lease(self: &Arc<Self>) -> Lease {
        self.in_use.fetch_add(1, Ordering::AcqRel);
        Lease(Arc::clone(self))
    }
}

/// One unit of work counted on a sub-pool, until dropped.
#[derive(Debug)]
pub(crate) struct Lease(Arc<SubPool>);

impl Lease {
    /// Counts this unit of work as one that leaves a tenant's compiled
    /// triggers and foreign-key checks on a backend which does not keep
    /// that tenant's statements prepared: every
    /// [`crate::PgConfig::recycle_after`] of them, the sub-pool replaces a
    /// connection.
    pub(crate) fn count_cold(&self) {
        self.0.cold.fetch_add(1, Ordering::Relaxed);
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.0.in_use.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Where a unit of work runs: the pool, whether it is the tenant's home,
/// and the lease to hold for as long as the unit does.
pub(crate) struct Pick<'r> {
    pub(crate) pool: &'r PgPool,
    pub(crate) home: bool,
    pub(crate) lease: Lease,
}

/// The tenant sub-pools of one database.
#[derive(Debug)]
pub(crate) struct TenantPools {
    subpools: Vec<Arc<SubPool>>,
}

/// Where one tenant's units of work run.
#[derive(Debug, Clone)]
pub(crate) struct Route {
    home: Arc<SubPool>,
    /// `None` with a single sub-pool.
    spare: Option<Arc<SubPool>>,
}

/// Connections of sub-pool `i` of `n` sharing `total`: as even as can be,
/// and at least one.
fn share(total: u32, n: u32, i: u32) -> u32 {
    (total / n + u32::from(i < total % n)).max(1)
}

/// The rendezvous score of `tenant` for sub-pool `i`: a fixed mix (SplitMix64's
/// finalizer) of the id and the index, so the binding is the same in every
/// process and on every start.
fn score(tenant: TenantId, i: usize) -> u64 {
    let id = tenant.0.as_u128();
    let mut z = (id as u64)
        ^ ((id >> 64) as u64).rotate_left(29)
        ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl TenantPools {
    /// `subpools` sub-pools (at most one per connection) sharing
    /// `max_connections`, opened lazily: no connection is made before a
    /// tenant needs one. `hot_capacity` tenants of each are prepared; a
    /// connection is replaced for every `recycle_after` unprepared units of
    /// work ([`Lease::count_cold`]).
    pub(crate) fn new(
        options: &PgConnectOptions,
        subpools: usize,
        max_connections: u32,
        acquire_timeout: Duration,
        hot_capacity: usize,
        recycle_after: u64,
    ) -> Self {
        let n = u32::try_from(subpools)
            .unwrap_or(u32::MAX)
            .clamp(1, max_connections.max(1));
        let subpools = (0..n)
            .map(|i| {
                let cold = Arc::new(AtomicU64::new(0));
                let pool = crate::pooling::pool_options(recycle_after, Arc::clone(&cold))
                    .max_connections(share(max_connections, n, i))
                    .acquire_timeout(acquire_timeout)
                    .connect_lazy_with(options.clone());
                SubPool::new(pool, hot_capacity, cold)
            })
            .collect();
        TenantPools { subpools }
    }

    /// The sub-pools, in order.
    pub(crate) fn subpools(&self) -> impl Iterator<Item = &SubPool> {
        self.subpools.iter().map(|s| &**s)
    }

    /// The indexes of `tenant`'s home and spare sub-pools (the spare is the
    /// home when there is only one).
    pub(crate) fn choices(&self, tenant: TenantId) -> (usize, usize) {
        let mut ranked: Vec<(u64, usize)> = (0..self.subpools.len())
            .map(|i| (score(tenant, i), i))
            .collect();
        ranked.sort_unstable_by(|a, b| b.cmp(a));
        let home = ranked[0].1;
        (home, ranked.get(1).map_or(home, |r| r.1))
    }

    /// Where `tenant`'s units of work run.
    pub(crate) fn route(&self, tenant: TenantId) -> Route {
        let (home, spare) = self.choices(tenant);
        Route {
            home: Arc::clone(&self.subpools[home]),
            spare: (spare != home).then(|| Arc::clone(&self.subpools[spare])),
        }
    }

    /// Forgets `tenant`'s activity (deleted).
    pub(crate) fn forget(&self, tenant: TenantId) {
        for s in &self.subpools {
            s.hot.forget(tenant);
        }
    }

    /// Connections open in all sub-pools, and how many of them are idle.
    pub(crate) fn size_and_idle(&self) -> (u32, usize) {
        self.subpools.iter().fold((0, 0), |(size, idle), s| {
            (
                size.saturating_add(s.pool.size()),
                idle.saturating_add(s.pool.num_idle()),
            )
        })
    }

    /// Connections the sub-pools may open together.
    pub(crate) fn max_connections(&self) -> u32 {
        self.subpools
            .iter()
            .map(|s| s.pool.options().get_max_connections())
            .sum()
    }
}

impl Route {
    /// A route to one plain pool (the benchmarks' single-schema baseline).
    pub(crate) fn single(pool: PgPool) -> Self {
        Route {
            home: SubPool::new(pool, 0, Arc::default()),
            spare: None,
        }
    }

    /// Where the next unit of work runs: home, unless all of its
    /// connections are taken by units of work while the spare has one free.
    pub(crate) fn pick(&self) -> Pick<'_> {
        if let Some(lease) = self.home.try_lease() {
            return Pick {
                pool: &self.home.pool,
                home: true,
                lease,
            };
        }
        if let Some(spare) = &self.spare
            && let Some(lease) = spare.try_lease()
        {
            return Pick {
                pool: &spare.pool,
                home: false,
                lease,
            };
        }
        Pick {
            pool: &self.home.pool,
            home: true,
            lease: self.home.lease(),
        }
    }

    /// The home sub-pool's busiest tenants.
    pub(crate) fn hot(&self) -> &HotTenants {
        &self.home.hot
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_are_shared_evenly_and_never_zero() {
        assert_eq!(
            (0..4).map(|i| share(10, 4, i)).collect::<Vec<_>>(),
            [3, 3, 2, 2]
        );
        assert_eq!((0..3).map(|i| share(3, 3, i)).sum::<u32>(), 3);
        assert_eq!(share(1, 1, 0), 1);
    }

    fn pools(n: usize) -> TenantPools {
        TenantPools::new(
            &PgConnectOptions::new(),
            n,
            10,
            Duration::from_secs(1),
            1,
            0,
        )
    }

    #[tokio::test]
    async fn each_tenant_has_two_distinct_stable_choices_spread_evenly() {
        let p = pools(5);
        let mut homes = [0usize; 5];
        let mut pairs = std::collections::HashMap::new();
        for _ in 0..5000 {
            let t = TenantId::new();
            let (home, spare) = p.choices(t);
            assert_ne!(home, spare);
            assert_eq!(p.choices(t), (home, spare), "stable");
            homes[home] += 1;
            *pairs.entry((home, spare)).or_insert(0usize) += 1;
        }
        // 1,000 expected each; 6 standard deviations is about 170.
        for h in homes {
            assert!((800..1200).contains(&h), "{homes:?}");
        }
        // A busy sub-pool's tenants spill evenly over all the others:
        // every ordered pair occurs (250 expected each).
        assert_eq!(pairs.len(), 20, "{pairs:?}");
        assert!(pairs.values().all(|n| (150..350).contains(n)), "{pairs:?}");
    }

    #[tokio::test]
    async fn one_subpool_has_no_spare_and_subpools_never_exceed_connections() {
        let p = pools(1);
        let t = TenantId::new();
        assert_eq!(p.choices(t), (0, 0));
        assert!(p.route(t).spare.is_none());
        let p = pools(50);
        assert_eq!(p.subpools().count(), 10);
        assert_eq!(p.max_connections(), 10);
    }
}
