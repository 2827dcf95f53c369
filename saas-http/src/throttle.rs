//! Login throttling: at most N attempts per key (tenant + username) per
//! window, in memory, with bounded memory.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Attempts.
    pub count: u32,
    /// Per this long.
    pub per: Duration,
}

impl Rate {
    /// `count` per `per`.
    pub fn new(count: u32, per: Duration) -> Self {
        Rate { count, per }
    }
}

/// Counts login attempts per key in fixed windows.
///
/// Memory is bounded by `max_keys`. When the table is full, expired windows
/// are dropped; if it is still full, it is cleared. Clearing forgets counts,
/// which an attacker could try to provoke by spraying usernames, but every
/// new key costs them a full password hash, so filling the table within one
/// window is far slower than the window itself.
#[derive(Debug)]
pub struct LoginThrottle {
    max_attempts: u32,
    window: Duration,
    max_keys: usize,
    windows: Mutex<HashMap<String, (Instant, u32)>>,
}

impl LoginThrottle {
    /// Default bound on remembered keys.
    pub const DEFAULT_MAX_KEYS: usize = 100_000;

    /// `max_attempts` per `window` for each key (0 attempts disables throttling).
    pub fn new(max_attempts: u32, window: Duration) -> Self {
        LoginThrottle {
            max_attempts,
            window,
            max_keys: Self::DEFAULT_MAX_KEYS,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Same, remembering at most `max_keys` keys.
    pub fn with_max_keys(mut self, max_keys: usize) -> Self {
        self.max_keys = max_keys.max(1);
        self
    }

    /// Records an attempt for `key`; `Err(retry_after)` when over the limit.
    pub fn attempt(&self, key: &str) -> Result<(), Duration> {
        if self.max_attempts == 0 {
            return Ok(());
        }
        let now = Instant::now();
        let mut map = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        if !map.contains_key(key) && map.len() >= self.max_keys {
            let window = self.window;
            map.retain(|_, (start, _)| now.duration_since(*start) < window);
            if map.len() >= self.max_keys {
                tracing::warn!(
                    keys = map.len(),
                    "login throttle table full; forgetting all counts"
                );
                map.clear();
            }
        }
        let entry = map.entry(key.to_owned()).or_insert((now, 0));
        let elapsed = now.duration_since(entry.0);
        if elapsed >= self.window {
            *entry = (now, 0);
        }
        if entry.1 >= self.max_attempts {
            return Err(self.window.saturating_sub(now.duration_since(entry.0)));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_per_key_and_bounds_memory() {
        let t = LoginThrottle::new(3, Duration::from_secs(60)).with_max_keys(10);
        for _ in 0..3 {
            assert!(t.attempt("a").is_ok());
        }
        let retry = t.attempt("a").unwrap_err();
        assert!(retry <= Duration::from_secs(60) && retry > Duration::from_secs(50));
        assert!(t.attempt("b").is_ok());
        for i in 0..100 {
            let _ = t.attempt(&format!("k{i}"));
            assert!(t.len() <= 10);
        }
    }

    #[test]
    fn windows_expire() {
        let t = LoginThrottle::new(1, Duration::from_millis(20));
        assert!(t.attempt("a").is_ok());
        assert!(t.attempt("a").is_err());
        std::thread::sleep(Duration::from_millis(30));
        assert!(t.attempt("a").is_ok());
    }

    #[test]
    fn keys_fold_case() {
        assert_eq!(login_key("t", "ADMIN"), login_key("t", "admin"));
        assert_ne!(login_key("t1", "admin"), login_key("t2", "admin"));
    }
}
