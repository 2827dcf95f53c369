//! Throttles: at most N attempts per key in a fixed window, in memory,
//! with bounded memory.
//!
//! Three are kept (see [`crate::AppState`]): logins per tenant and
//! username (guessing one account's password), logins per client address
//! (spraying one password across usernames and tenants), and
//! registrations per client address (each registration is a schema or a
//! file, a password hash and an email to an address of the client's
//! choosing). A client address is the peer's, or the one a trusted proxy
//! reports ([`crate::extract::ClientAddr`]).

use std::fmt;
use std::net::IpAddr;
use std::num::NonZeroUsize;
use std::str::FromStr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use lru::LruCache;

/// A number of attempts per period, written as DRF writes throttle rates:
/// `10/hour`, `5/minute`, `100/day`, `2/second` (only the unit's first
/// letter counts, so `10/h` and `10/hours` are `10/hour`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Attempts allowed per period (0 allows none).
    pub count: u32,
    /// The period.
    pub per: Duration,
}

impl Rate {
    /// `count` attempts per `per`.
    pub const fn new(count: u32, per: Duration) -> Self {
        Rate { count, per }
    }
}

impl FromStr for Rate {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad =
            || format!("{s:?} is not a rate such as 10/hour (per second, minute, hour or day)");
        let (count, unit) = s.trim().split_once('/').ok_or_else(bad)?;
        let count = count.trim().parse().map_err(|_| bad())?;
        let per = match unit.trim().to_ascii_lowercase().chars().next() {
            Some('s') => 1,
            Some('m') => 60,
            Some('h') => 3600,
            Some('d') => 86_400,
            _ => return Err(bad()),
        };
        Ok(Rate::new(count, Duration::from_secs(per)))
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = match self.per.as_secs() {
            1 => "second".to_owned(),
            60 => "minute".to_owned(),
            3600 => "hour".to_owned(),
            86_400 => "day".to_owned(),
            other => format!("{other}s"),
        };
        write!(f, "{}/{unit}", self.count)
    }
}

/// Counts attempts per key in fixed windows.
///
/// Memory is bounded by `max_keys`: past it, the key least recently
/// attempted is forgotten, one at a time. Someone spraying new keys (many
/// usernames, many addresses) pushes out only keys idle for longer than
/// their own, never every count at once, and their own key, attempted on
/// every try, stays remembered and throttled.
#[derive(Debug)]
pub struct Throttle {
    /// Its name in the refusal count ([`saas_core::telemetry::THROTTLED`]).
    name: &'static str,
    rate: Option<Rate>,
    windows: Mutex<LruCache<String, (Instant, u32)>>,
}

impl Throttle {
    /// Default bound on remembered keys.
    pub const DEFAULT_MAX_KEYS: usize = 100_000;

    /// `rate` per key; `None` lets every attempt through.
    pub fn new(rate: Option<Rate>) -> Self {
        Self::with_max_keys(rate, Self::DEFAULT_MAX_KEYS)
    }

    /// Same, remembering at most `max_keys` keys.
    pub fn with_max_keys(rate: Option<Rate>, max_keys: usize) -> Self {
        let cap = NonZeroUsize::new(max_keys).unwrap_or(NonZeroUsize::MIN);
        Throttle {
            name: "unnamed",
            rate,
            windows: Mutex::new(LruCache::new(cap)),
        }
    }

    /// Counts its refusals under `name` in the metrics.
    pub fn named(mut self, name: &'static str) -> Self {
        self.name = name;
        self
    }

    /// The rate enforced, if any.
    pub fn rate(&self) -> Option<Rate> {
        self.rate
    }

    /// Records an attempt for `key`; `Err(retry_after)` when over the limit.
    pub fn attempt(&self, key: &str) -> Result<(), Duration> {
        let Some(rate) = self.rate else {
            return Ok(());
        };
        let now = Instant::now();
        let mut map = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        let entry = map.get_or_insert_mut(key.to_owned(), || (now, 0));
        if now.duration_since(entry.0) >= rate.per {
            *entry = (now, 0);
        }
        if entry.1 >= rate.count {
            metrics::counter!(saas_core::telemetry::THROTTLED, "throttle" => self.name)
                .increment(1);
            return Err(rate.per.saturating_sub(now.duration_since(entry.0)));
        }
        entry.1 += 1;
        Ok(())
    }

    /// Number of keys remembered (for tests and metrics).
    pub fn len(&self) -> usize {
        self.windows.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Whether no key is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The throttle key for a login: tenant (or platform) and case-folded
/// username, cut so a huge username cannot make a huge key.
pub(crate) fn login_key(scope: &str, username: &str) -> String {
    let name: String = username.chars().take(160).collect();
    format!("{scope}\u{0}{}", name.to_ascii_lowercase())
}

/// The throttle key for a client address: an IPv4 address, or an IPv6
/// address's /64 (one subscriber's network: a client given a /64 could
/// otherwise take a fresh address for every attempt). `None` (a host that
/// serves the router without the peer address) is one shared key.
pub(crate) fn address_key(addr: Option<IpAddr>) -> String {
    match addr.map(|a| a.to_canonical()) {
        Some(IpAddr::V4(v4)) => v4.to_string(),
        Some(IpAddr::V6(v6)) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        None => "unknown".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(count: u32, secs: u64) -> Option<Rate> {
        Some(Rate::new(count, Duration::from_secs(secs)))
    }

    #[test]
    fn limits_per_key() {
        let t = Throttle::new(rate(3, 60));
        for _ in 0..3 {
            assert!(t.attempt("a").is_ok());
        }
        let retry = t.attempt("a").unwrap_err();
        assert!(retry <= Duration::from_secs(60) && retry > Duration::from_secs(50));
        assert!(t.attempt("b").is_ok());
        let off = Throttle::new(None);
        for _ in 0..100 {
            assert!(off.attempt("a").is_ok());
        }
    }

    #[test]
    fn memory_is_bounded_without_forgetting_everyone() {
        let t = Throttle::with_max_keys(rate(3, 60), 10);
        for _ in 0..3 {
            t.attempt("sprayer").unwrap();
        }
        for i in 0..100 {
            let _ = t.attempt(&format!("k{i}"));
            assert!(t.len() <= 10);
            // The sprayer's own key is attempted with every new one.
            assert!(t.attempt("sprayer").is_err(), "forgotten after {i}");
        }
        // The most recent keys are still counted.
        assert!(t.attempt("k99").is_ok());
        assert_eq!(t.len(), 10);
    }

    #[test]
    fn windows_expire() {
        let t = Throttle::new(Some(Rate::new(1, Duration::from_millis(20))));
        assert!(t.attempt("a").is_ok());
        assert!(t.attempt("a").is_err());
        std::thread::sleep(Duration::from_millis(30));
        assert!(t.attempt("a").is_ok());
    }

    #[test]
    fn keys_fold_case_and_group_ipv6_networks() {
        assert_eq!(login_key("t", "ADMIN"), login_key("t", "admin"));
        assert_ne!(login_key("t1", "admin"), login_key("t2", "admin"));
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(address_key(Some(a)), address_key(Some(b)));
        assert_ne!(address_key(Some(a)), address_key(Some(c)));
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(address_key(Some(mapped)), "192.0.2.1");
    }

    #[test]
    fn rates_read_as_drf_writes_them() {
        assert_eq!(
            "10/hour".parse(),
            Ok(Rate::new(10, Duration::from_secs(3600)))
        );
        assert_eq!(" 5 / m ".parse(), Ok(Rate::new(5, Duration::from_secs(60))));
        assert_eq!(
            "100/days".parse(),
            Ok(Rate::new(100, Duration::from_secs(86_400)))
        );
        for bad in ["", "10", "ten/hour", "10/fortnight", "-1/hour", "10/"] {
            assert!(bad.parse::<Rate>().is_err(), "{bad}");
        }
        assert_eq!(
            Rate::new(10, Duration::from_secs(3600)).to_string(),
            "10/hour"
        );
    }
}
