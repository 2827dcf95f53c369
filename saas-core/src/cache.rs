//! A small bounded cache with a time to live, for catalog reads on the hot
//! path (tenants by host, slug and id; authenticated users).
//!
//! Entries expire `ttl` after they were read from the store, which bounds
//! how long a change made by another process goes unseen. Changes made
//! through this process invalidate at once, and an invalidation also fences
//! off every read that started before it: [`TtlCache::fill`] stores a value
//! only if nothing was invalidated since the caller took its
//! [`TtlCache::ticket`], so a slow read can never put back the value an
//! invalidation just removed.

use std::hash::Hash;
use std::num::NonZeroUsize;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use lru::LruCache;

/// Taken before a store read whose result may be cached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ticket(u64);

struct State<K: Hash + Eq, V> {
    entries: LruCache<K, (V, Instant)>,
    /// Bumped by every invalidation.
    generation: u64,
}

/// Bounded (least recently used entries go first) and time-limited.
pub(crate) struct TtlCache<K: Hash + Eq, V> {
    /// Its name in the lookup metrics ([`crate::telemetry::CACHE_LOOKUPS`]).
    name: &'static str,
    ttl: Duration,
    state: Mutex<State<K, V>>,
}

impl<K: Hash + Eq, V> std::fmt::Debug for TtlCache<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TtlCache")
            .field("ttl", &self.ttl)
            .field(
                "len",
                &self.state.lock().map_or(0, |state| state.entries.len()),
            )
            .finish()
    }
}

impl<K: Hash + Eq, V: Clone> TtlCache<K, V> {
    /// A cache of at most `capacity` entries (at least one), each valid for
    /// `ttl`, counting its hits and misses under `name`. A zero `ttl`
    /// caches nothing.
    pub(crate) fn new(name: &'static str, ttl: Duration, capacity: usize) -> Self {
        let capacity = NonZeroUsize::new(capacity).unwrap_or(NonZeroUsize::MIN);
        TtlCache {
            name,
            ttl,
            state: Mutex::new(State {
                entries: LruCache::new(capacity),
                generation: 0,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State<K, V>> {
        // A panic while holding the lock cannot leave the map half-updated
        // in a way that matters: every entry is a whole value.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The cached value, if present and younger than the TTL.
    pub(crate) fn get(&self, key: &K) -> Option<V> {
        let mut state = self.lock();
        let found = match state.entries.get(key) {
            Some((value, at)) if at.elapsed() < self.ttl => Some(value.clone()),
            Some(_) => {
                state.entries.pop(key);
                None
            }
            None => None,
        };
        drop(state);
        crate::telemetry::cache_lookup(self.name, found.is_some());
        found
    }

    /// Take before reading the store; pass to [`TtlCache::fill`].
    pub(crate) fn ticket(&self) -> Ticket {
        Ticket(self.lock().generation)
    }

    /// Caches `value` read under `ticket`, unless something was invalidated
    /// since (the value may predate that change).
    pub(crate) fn fill(&self, ticket: Ticket, key: K, value: V) {
        if self.ttl.is_zero() {
            return;
        }
        let mut state = self.lock();
        if state.generation == ticket.0 {
            state.entries.put(key, (value, Instant::now()));
        }
    }

    /// Drops `key` and fences off reads in flight.
    pub(crate) fn invalidate(&self, key: &K) {
        let mut state = self.lock();
        state.entries.pop(key);
        state.generation += 1;
    }

    /// Drops everything and fences off reads in flight.
    pub(crate) fn clear(&self) {
        let mut state = self.lock();
        state.entries.clear();
        state.generation += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_read_before_an_invalidation_is_not_cached() {
        let cache = TtlCache::new("test", Duration::from_secs(60), 10);
        let stale = cache.ticket();
        cache.invalidate(&"a");
        cache.fill(stale, "a", 1);
        assert_eq!(cache.get(&"a"), None, "the stale read was fenced off");
        let fresh = cache.ticket();
        cache.fill(fresh, "a", 2);
        assert_eq!(cache.get(&"a"), Some(2));
        let stale = cache.ticket();
        cache.clear();
        cache.fill(stale, "b", 3);
        assert_eq!(cache.get(&"a"), None);
        assert_eq!(cache.get(&"b"), None);
    }

    #[test]
    fn entries_expire_and_the_least_recently_used_go_first() {
        let cache = TtlCache::new("test", Duration::from_millis(30), 2);
        let t = cache.ticket();
        cache.fill(t, 1, "one");
        cache.fill(t, 2, "two");
        assert_eq!(cache.get(&1), Some("one"));
        cache.fill(t, 3, "three");
        assert_eq!(cache.get(&2), None, "2 was the least recently used");
        assert_eq!(cache.get(&1), Some("one"));
        assert_eq!(cache.get(&3), Some("three"));
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(cache.get(&1), None, "expired");
    }

    #[test]
    fn a_zero_ttl_caches_nothing() {
        let cache = TtlCache::new("test", Duration::ZERO, 10);
        cache.fill(cache.ticket(), "a", 1);
        assert_eq!(cache.get(&"a"), None);
    }
}
