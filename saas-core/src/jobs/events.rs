//! Durable delivery of lifecycle [`Event`]s: [`EventJobListener`] turns
//! each event into a job, and a worker runs it through the host's
//! [`EventHandler`] (registered as [`EventJob`]), with the queue's retries,
//! so a slow or failing handler neither blocks the change nor loses the
//! event.
//!
//! ```
//! use std::sync::Arc;
//! use async_trait::async_trait;
//! use saas_core::events::Event;
//! use saas_core::jobs::events::{EventHandler, EventJob, EventJobListener};
//! use saas_core::jobs::{JobContext, JobError, Jobs};
//!
//! #[derive(Debug)]
//! struct Audit;
//!
//! #[async_trait]
//! impl EventHandler for Audit {
//!     async fn handle(&self, _ctx: &JobContext, event: Event) -> Result<(), JobError> {
//!         tracing::info!(event = event.name(), "audited");
//!         Ok(())
//!     }
//! }
//!
//! # fn wire(store: Arc<dyn saas_core::store::Store>, queue: Arc<dyn saas_core::jobs::JobQueue>) -> saas_core::Result<()> {
//! let clock = Arc::new(saas_core::clock::SystemClock);
//! let saas = saas_core::Saas::builder(store)
//!     .listener(Arc::new(EventJobListener::new(queue.clone(), clock)))
//!     .build()?;
//! let jobs = Jobs::builder(saas, queue).register(EventJob(Audit)).build();
//! # let _ = jobs; Ok(()) }
//! ```

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;

use super::job::{Job, JobContext, JobError, JobScope, new_job, truncate_micros};
use super::queue::JobQueue;
use crate::clock::Clock;
use crate::error::Result;
use crate::events::Event;
use crate::service::Listener;

/// The job kind events travel as.
pub const EVENT_KIND: &str = "lifecycle_event";

/// What a host does with an event a worker took from the queue. An error
/// is retried as [`JobError`] says.
#[async_trait]
pub trait EventHandler: Debug + Send + Sync + 'static {
    /// Handles one event (at least once: make it idempotent).
    async fn handle(&self, ctx: &JobContext, event: Event) -> Result<(), JobError>;
}

/// The job running queued events through `H`. Register one with
/// [`super::JobsBuilder::register`]; dispatch on the event inside it.
#[derive(Debug)]
pub struct EventJob<H>(pub H);

#[async_trait]
impl<H: EventHandler> Job for EventJob<H> {
    const KIND: &'static str = EVENT_KIND;
    // A platform job: the event may be about a tenant that is suspended or
    // gone, whose tenant jobs are refused.
    const SCOPE: JobScope = JobScope::Platform;
    type Payload = Event;
    type Output = ();

    async fn run(&self, ctx: &JobContext, event: Event) -> Result<(), JobError> {
        self.0.handle(ctx, event).await
    }
}

/// The listener putting every event on the queue as an [`EventJob`].
#[derive(Debug, Clone)]
pub struct EventJobListener {
    queue: Arc<dyn JobQueue>,
    clock: Arc<dyn Clock>,
}

impl EventJobListener {
    /// A listener enqueueing on `queue`, timed by `clock`.
    pub fn new(queue: Arc<dyn JobQueue>, clock: Arc<dyn Clock>) -> Self {
        EventJobListener { queue, clock }
    }
}

/// The job kind's marker: any handler gives the same kind and payload.
#[derive(Debug)]
struct Marker;

#[async_trait]
impl EventHandler for Marker {
    async fn handle(&self, _: &JobContext, _: Event) -> Result<(), JobError> {
        Ok(())
    }
}

#[async_trait]
impl Listener for EventJobListener {
    async fn event(&self, event: &Event) -> Result<()> {
        let job = new_job::<EventJob<Marker>>(None, event)?;
        self.queue
            .enqueue(&job, truncate_micros(self.clock.now()))
            .await?;
        Ok(())
    }
}
