//! Which tenants' statements are worth preparing.
//!
//! With schema-qualified SQL every tenant has its own statements, so a
//! connection's prepared statement cache holds a few tenants' worth. When
//! more tenants than that are active, preparing every statement makes the
//! cache thrash: each statement is parsed and planned anyway, and evicting
//! the least recent one costs another round trip. Unnamed statements cost a
//! parse and plan every time, but that cost does not depend on how many
//! tenants there are.
//!
//! So only the busiest tenants, as many as the cache holds, are prepared;
//! everyone else runs unnamed. Each tenant sub-pool (`crate::affinity`)
//! keeps its own set, since its connections only ever see its tenants. Busy means frequent recently: counts per
//! tenant, halved every window (aging), and a tenant replaces the least
//! busy member only when clearly busier, so that a uniform spread over many
//! tenants does not churn the set. Per-request cost is then bounded by the
//! unnamed cost whatever the number of tenants, and a few busy tenants run
//! at the cost of a single-schema application.

use std::collections::HashMap;
use std::sync::Mutex;

use saas_core::tenancy::TenantId;

/// Requests a tenant needs in the current window before it may be
/// admitted: one request is not a trend.
const ADMIT_AT: u32 = 3;

/// How much busier than the least busy member a newcomer must be.
const MARGIN: u32 = 2;

/// Windows are this many requests per member of the set.
const WINDOW_PER_MEMBER: u32 = 16;

/// The busiest tenants, at most `capacity` of them.
#[derive(Debug)]
pub(crate) struct HotTenants {
    capacity: usize,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    counts: HashMap<TenantId, u32>,
    members: Vec<TenantId>,
    /// Requests seen in the current window.
    seen: u32,
}

impl HotTenants {
    /// A set of at most `capacity` tenants (0: nobody is ever prepared).
    pub(crate) fn new(capacity: usize) -> Self {
        HotTenants {
            capacity,
            state: Mutex::new(State::default()),
        }
    }

    /// Records one request of `tenant`; returns whether its statements
    /// should be prepared.
    pub(crate) fn touch(&self, tenant: TenantId) -> bool {
        if self.capacity == 0 {
            return false;
        }
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.seen += 1;
        let window = u32::try_from(self.capacity)
            .unwrap_or(u32::MAX)
            .saturating_mul(WINDOW_PER_MEMBER);
        if s.seen >= window {
            // Aging: old activity weighs half, and the map only keeps
            // tenants seen lately, so it stays as small as the window.
            s.seen = 0;
            s.counts.retain(|_, c| {
                *c /= 2;
                *c > 0
            });
        }
        let count = {
            let c = s.counts.entry(tenant).or_insert(0);
            *c = c.saturating_add(1);
            *c
        };
        if s.members.contains(&tenant) {
            return true;
        }
        if count < ADMIT_AT {
            return false;
        }
        if s.members.len() < self.capacity {
            s.members.push(tenant);
            return true;
        }
        let counts = &s.counts;
        let victim = s
            .members
            .iter()
            .enumerate()
            .map(|(i, m)| (i, counts.get(m).copied().unwrap_or(0)))
            .min_by_key(|(_, c)| *c);
        match victim {
            Some((i, least)) if count > least.saturating_add(MARGIN) => {
                s.members[i] = tenant;
                true
            }
            _ => false,
        }
    }

    /// Forgets `tenant` (deleted).
    pub(crate) fn forget(&self, tenant: TenantId) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.counts.remove(&tenant);
        s.members.retain(|m| *m != tenant);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: usize) -> Vec<TenantId> {
        (0..n).map(|_| TenantId::new()).collect()
    }

    #[test]
    fn a_few_busy_tenants_are_prepared() {
        let hot = HotTenants::new(4);
        let t = ids(3);
        let mut prepared = 0;
        for i in 0..300 {
            prepared += usize::from(hot.touch(t[i % 3]));
        }
        // Everyone is admitted after ADMIT_AT units of work.
        assert!(prepared >= 300 - 3 * ADMIT_AT as usize, "{prepared}");
    }

    #[test]
    fn a_uniform_spread_over_many_tenants_rarely_churns() {
        let hot = HotTenants::new(8);
        let t = ids(1000);
        let mut prepared = 0;
        for i in 0..20_000 {
            prepared += usize::from(hot.touch(t[(i * 7919) % 1000]));
        }
        // Nobody is busier than anybody else: (almost) nothing is prepared.
        assert!(prepared < 20_000 / 50, "{prepared}");
    }

    #[test]
    fn busy_tenants_win_over_a_uniform_background() {
        let hot = HotTenants::new(4);
        let busy = ids(2);
        let background = ids(500);
        let mut busy_prepared = 0;
        let mut busy_total = 0;
        for i in 0..20_000 {
            if i % 4 == 0 {
                busy_total += 1;
                busy_prepared += usize::from(hot.touch(busy[i % 8 / 4]));
            } else {
                hot.touch(background[(i * 7919) % 500]);
            }
        }
        assert!(
            busy_prepared * 100 >= busy_total * 95,
            "{busy_prepared}/{busy_total}"
        );
    }

    #[test]
    fn capacity_zero_prepares_nothing_and_forget_evicts() {
        let none = HotTenants::new(0);
        let t = TenantId::new();
        assert!((0..10).all(|_| !none.touch(t)));
        let hot = HotTenants::new(2);
        for _ in 0..5 {
            hot.touch(t);
        }
        assert!(hot.touch(t));
        hot.forget(t);
        assert!(!hot.touch(t));
    }
}
