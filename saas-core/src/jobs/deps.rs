//! [`WorkerDeps`]: what running jobs takes — the service, the queue, the
//! mailer, the clock and the registered kinds.
//!
//! The jobs runtime (`Jobs`) gathers them and hands them to each worker:
//! the worker depends on these values, never on the runtime that built it.

use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::job::{JobRegistry, truncate_micros};
use super::mail::Mailer;
use super::queue::JobQueue;
use crate::clock::Clock;
use crate::service::Saas;

/// The service, queue, mailer, clock and job kinds a worker runs jobs with.
/// Cheap to clone behind the `Arc` the runtime keeps it in.
#[derive(Clone)]
pub struct WorkerDeps {
    /// The service: tenant jobs get their tenant's handle through it, and
    /// every job gets it in its context.
    pub saas: Saas,
    /// The queue jobs are claimed from and recorded in.
    pub queue: Arc<dyn JobQueue>,
    /// The mailer jobs send with.
    pub mailer: Arc<dyn Mailer>,
    /// The clock every time stored or compared comes from.
    pub clock: Arc<dyn Clock>,
    /// The kinds that can run, by name.
    pub registry: JobRegistry,
}

impl fmt::Debug for WorkerDeps {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkerDeps")
            .field("queue", &self.queue)
            .field("mailer", &self.mailer)
            .field("kinds", &self.registry.kinds())
            .finish_non_exhaustive()
    }
}

impl WorkerDeps {
    /// Now, truncated to microseconds like every time a queue stores.
    pub fn now(&self) -> DateTime<Utc> {
        truncate_micros(self.clock.now())
    }
}
