//! The console's cookie sessions, in this process's memory.
//!
//! A session id is 244 random bits, sent only in an `HttpOnly`,
//! `SameSite=Strict` cookie (`Secure` over HTTPS) scoped to `/console/`.
//! Every session carries a CSRF token that each form posts back. A visitor
//! gets an anonymous session (for the sign-in form's token); signing in
//! ends it and starts a new one under a new id, so an id planted before
//! sign-in is worth nothing after it. Sessions idle longer than
//! [`crate::HttpConfig::console_idle`] are gone.
//!
//! Memory is bounded: anonymous and signed-in sessions are kept in two
//! LRUs, so a flood of anonymous visits can push out only other anonymous
//! sessions, never a signed-in one. Sessions live in one process: a
//! console served by several processes needs sticky routing.

use std::num::NonZeroUsize;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use lru::LruCache;
use saas_core::store::Superuser;
use saas_core::tenancy::TenantId;
use saas_core::users::UserId;

/// The session cookie's name.
pub(crate) const COOKIE: &str = "saas_console";

/// Who a session belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Who {
    /// Not signed in.
    Anonymous,
    /// A platform superuser; valid at platform hosts only.
    Platform(Superuser),
    /// A tenant's admin or manager; valid at that tenant's hosts only, while
    /// the user's token version is the one it signed in with.
    Tenant {
        tenant: TenantId,
        user: UserId,
        token_version: i64,
    },
}

/// A session as a request sees it.
#[derive(Debug, Clone)]
pub(crate) struct ConsoleSession {
    pub(crate) id: String,
    pub(crate) who: Who,
    pub(crate) csrf: String,
    /// A message for the next page shown (and then forgotten).
    pub(crate) flash: Option<String>,
}

#[derive(Debug)]
struct Entry {
    who: Who,
    csrf: String,
    flash: Option<String>,
    last_seen: Instant,
}

/// The sessions of one router.
#[derive(Debug)]
pub(crate) struct Sessions {
    anonymous: Mutex<LruCache<String, Entry>>,
    signed_in: Mutex<LruCache<String, Entry>>,
    idle: Duration,
}

/// 244 random bits (two v4 UUIDs, from the OS's generator) as hex.
fn random_token() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// Equal strings, in time that does not depend on where they differ.
pub(crate) fn same_token(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

impl Sessions {
    const MAX_ANONYMOUS: usize = 20_000;
    const MAX_SIGNED_IN: usize = 100_000;

    pub(crate) fn new(idle: Duration) -> Self {
        let cap = |n: usize| NonZeroUsize::new(n).unwrap_or(NonZeroUsize::MIN);
        Sessions {
            anonymous: Mutex::new(LruCache::new(cap(Self::MAX_ANONYMOUS))),
            signed_in: Mutex::new(LruCache::new(cap(Self::MAX_SIGNED_IN))),
            idle,
        }
    }

    fn map(&self, who: &Who) -> &Mutex<LruCache<String, Entry>> {
        match who {
            Who::Anonymous => &self.anonymous,
            _ => &self.signed_in,
        }
    }

    /// The live session `id` names (taking its flash message), touched.
    pub(crate) fn get(&self, id: &str) -> Option<ConsoleSession> {
        for map in [&self.signed_in, &self.anonymous] {
            let mut map = map.lock().unwrap_or_else(|e| e.into_inner());
            let Some(entry) = map.get_mut(id) else {
                continue;
            };
            if entry.last_seen.elapsed() > self.idle {
                map.pop(id);
                return None;
            }
            entry.last_seen = Instant::now();
            return Some(ConsoleSession {
                id: id.to_owned(),
                who: entry.who.clone(),
                csrf: entry.csrf.clone(),
                flash: entry.flash.take(),
            });
        }
        None
    }

    /// The CSRF token of the live session `id` (its flash left in place).
    pub(crate) fn get_csrf(&self, id: &str) -> Option<String> {
        for map in [&self.signed_in, &self.anonymous] {
            let map = map.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(entry) = map.peek(id) {
                return (entry.last_seen.elapsed() <= self.idle).then(|| entry.csrf.clone());
            }
        }
        None
    }

    /// Starts a session for `who` under a fresh id.
    pub(crate) fn start(&self, who: Who) -> ConsoleSession {
        let session = ConsoleSession {
            id: random_token(),
            who,
            csrf: random_token(),
            flash: None,
        };
        let entry = Entry {
            who: session.who.clone(),
            csrf: session.csrf.clone(),
            flash: None,
            last_seen: Instant::now(),
        };
        self.map(&session.who)
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .put(session.id.clone(), entry);
        session
    }

    /// Ends session `id`.
    pub(crate) fn end(&self, id: &str) {
        for map in [&self.signed_in, &self.anonymous] {
            map.lock().unwrap_or_else(|e| e.into_inner()).pop(id);
        }
    }

    /// Leaves `message` for the next page session `id` shows.
    pub(crate) fn flash(&self, id: &str, message: String) {
        for map in [&self.signed_in, &self.anonymous] {
            if let Some(entry) = map.lock().unwrap_or_else(|e| e.into_inner()).peek_mut(id) {
                entry.flash = Some(message);
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_start_end_and_expire() {
        let s = Sessions::new(Duration::from_secs(60));
        let a = s.start(Who::Anonymous);
        let b = s.start(Who::Anonymous);
        assert_ne!(a.id, b.id);
        assert_ne!(a.csrf, b.csrf);
        assert_eq!(s.get(&a.id).map(|x| x.csrf), Some(a.csrf.clone()));
        s.flash(&a.id, "hello".into());
        assert_eq!(s.get(&a.id).and_then(|x| x.flash), Some("hello".into()));
        assert_eq!(s.get(&a.id).and_then(|x| x.flash), None, "shown once");
        s.end(&a.id);
        assert!(s.get(&a.id).is_none());
        let idle = Sessions::new(Duration::ZERO);
        let c = idle.start(Who::Anonymous);
        std::thread::sleep(Duration::from_millis(5));
        assert!(idle.get(&c.id).is_none(), "idle sessions expire");
    }

    #[test]
    fn tokens_compare_whole() {
        assert!(same_token("abc", "abc"));
        assert!(!same_token("abc", "abd"));
        assert!(!same_token("abc", "ab"));
    }
}
