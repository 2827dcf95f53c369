//! Durable background jobs: the [`Job`] trait, the [`JobQueue`] contract the
//! backends implement, and the runtime — [`Worker`], [`Scheduler`] and the
//! seed's built-in jobs.
//!
//! Map of the module:
//! - [`queue`]: [`JobQueue`] and its values; its docs are the precise
//!   semantics (states, fairness, fencing, unique keys) every backend implements.
//! - [`listing`]: what operators ask a queue: [`JobFilter`] for a listing,
//!   [`JobCount`] for the counts by kind and status.
//! - [`memory`]: [`memory::MemoryQueue`], the reference implementation.
//! - [`job`]: [`Job`], [`JobContext`], [`JobError`], [`JobRegistry`], and
//!   [`WorkerDeps`] (what the runtime hands a worker: service, queue,
//!   mailer, clock, kinds).
//! - [`runtime`]: [`Jobs`], the handle hosts hold to enqueue and inspect jobs.
//! - [`worker`]: [`Worker`] — claims, runs, heartbeats, retries, shuts down.
//! - [`scheduler`]: [`Scheduler`] — cron-like periodic jobs, once per period.
//! - [`builtin`]: the seed's jobs (welcome, reminders, overdue, reports, cleanup).
//! - [`events`]: lifecycle events delivered as durable jobs.
//! - [`mail`]: the [`mail::Mailer`] trait, log, memory and SMTP mailers.
//!
//! Guarantees: at-least-once execution (a job whose worker dies runs again
//! once its lease expires); a stale worker can never complete, fail or
//! extend a job that was re-leased (fencing by attempt number); a tenant
//! job runs only with its own tenant's scoped handle, and fails closed when
//! the tenant is gone or suspended.

pub mod builtin;
pub mod events;
pub mod job;
pub mod listing;
pub mod mail;
pub mod memory;
pub mod purge;
pub mod queue;
pub mod runtime;
pub mod scheduler;
mod values;
pub mod worker;

pub use job::{Job, JobContext, JobError, JobMeta, JobRegistry, JobScope, WorkerDeps, new_job};
pub use listing::{JobCount, JobFilter};
pub use queue::{
    ClaimRequest, Enqueued, JobId, JobQueue, JobRecord, JobStatus, LeasedJob, NewJob, QueueError,
    QueueResult,
};
pub use runtime::{Jobs, JobsBuilder};
pub use scheduler::{Missed, Periodic, Scheduler};
pub use worker::{Backoff, Worker, WorkerConfig, WorkerStats};
