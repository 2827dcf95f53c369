//! A clock tests set by hand, for schedulers and jobs that read the time.

use std::sync::Mutex;

use chrono::{DateTime, Utc};
use saas_core::clock::Clock;

/// A [`Clock`] that says what it was last set to.
#[derive(Debug)]
pub struct ManualClock(Mutex<DateTime<Utc>>);

impl ManualClock {
    /// A clock showing `t`.
    pub fn new(t: DateTime<Utc>) -> Self {
        ManualClock(Mutex::new(t))
    }

    /// Sets the clock to `t` (forwards or backwards).
    pub fn set(&self, t: DateTime<Utc>) {
        // A test that panicked while holding the lock changed no time.
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = t;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}
