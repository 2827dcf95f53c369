//! [`Scheduler`]: periodic jobs defined in code, on cron expressions in UTC.
//!
//! Exactly once per period, with any number of scheduler processes: each
//! tick computes the period that `now` falls in (the latest cron occurrence
//! at or before `now`) and enqueues the entry's job with the unique key
//! `periodic:<name>:<period start, RFC 3339 UTC>`. Every process computes the
//! same key for the same period, so the queue's unique-key guarantee (see
//! [`super::queue`]) turns all but the first enqueue into no-ops — also after
//! the period's job has finished, because finished jobs keep their key until
//! pruned. Correctness therefore rests on the queue alone, not on clocks
//! agreeing or on any leader election.

use std::future::Future;
use std::pin::pin;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, SubsecRound, Utc};

use super::job::truncate_micros;
use super::queue::{Enqueued, JobQueue, NewJob};
use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::telemetry;

/// What to do about periods that passed while no scheduler was running.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Missed {
    /// Enqueue a period only within its lateness allowance of its start;
    /// periods missed during downtime are skipped.
    Skip,
    /// Enqueue the most recent period however late (once: earlier missed
    /// periods are not caught up).
    #[default]
    RunOnce,
}

/// A periodic job: a name, a cron schedule (UTC) and the job to enqueue.
#[derive(Debug, Clone)]
pub struct Periodic {
    name: String,
    schedule: cron::Schedule,
    job: NewJob,
    missed: Missed,
    lateness: Duration,
}

impl Periodic {
    /// A periodic job. `cron` has the `cron` crate's syntax, seconds first:
    /// `"0 0 8 * * *"` is 08:00:00 UTC daily, `"0 0 3 * * Sun"` 03:00 on
    /// Sundays. The job's `run_at` and `unique_key` are set per period.
    pub fn new(name: impl Into<String>, cron: &str, job: NewJob) -> Result<Self> {
        let name = name.into();
        if name.is_empty()
            || name.len() > 100
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
        {
            return Err(Error::invalid(
                "name",
                "must be 1 to 100 ASCII letters, digits, _ . or -",
            ));
        }
        let schedule = cron::Schedule::from_str(cron)
            .map_err(|e| Error::invalid("schedule", format!("invalid cron expression: {e}")))?;
        job.validate()?;
        Ok(Periodic {
            name,
            schedule,
            job,
            missed: Missed::default(),
            lateness: Duration::from_secs(60),
        })
    }

    /// Sets the missed-period policy (default [`Missed::RunOnce`]).
    pub fn missed(mut self, missed: Missed) -> Self {
        self.missed = missed;
        self
    }

    /// How late after a period's start [`Missed::Skip`] still enqueues it
    /// (default 60 s).
    pub fn lateness(mut self, lateness: Duration) -> Self {
        self.lateness = lateness;
        self
    }

    /// The name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Start of the period `now` falls in: the latest occurrence at or
    /// before `now`.
    pub fn period_at(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        // Cron has whole seconds: the latest occurrence strictly before the
        // next whole second is the latest one at or before `now`.
        let probe = now
            .trunc_subsecs(0)
            .checked_add_signed(chrono::Duration::seconds(1))?;
        self.schedule
            .after(&probe)
            .next_back()
            .filter(|p| *p <= now)
    }

    /// The first occurrence after `now`.
    pub fn next_after(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.schedule.after(&now).next()
    }

    /// The unique key of the period starting at `period`.
    pub fn key(&self, period: DateTime<Utc>) -> String {
        format!(
            "periodic:{}:{}",
            self.name,
            period.to_rfc3339_opts(SecondsFormat::Secs, true)
        )
    }

    /// The job to enqueue for `period` at `now`, unless the policy skips it.
    pub fn job_for(&self, now: DateTime<Utc>) -> Option<(DateTime<Utc>, NewJob)> {
        let period = self.period_at(now)?;
        if self.missed == Missed::Skip {
            let late = (now - period).to_std().unwrap_or(Duration::ZERO);
            if late > self.lateness {
                return None;
            }
        }
        let mut job = self.job.clone();
        job.run_at = None;
        job.unique_key = Some(self.key(period));
        Some((period, job))
    }
}

/// One enqueue a tick made (or found already made).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fired {
    /// The entry's name.
    pub name: String,
    /// The period's start.
    pub period: DateTime<Utc>,
    /// The queue's answer; `created = false` when another process (or an
    /// earlier tick) already enqueued this period.
    pub enqueued: Enqueued,
}

/// Enqueues periodic jobs. Run one in every process that should; they agree
/// through the queue.
#[derive(Debug, Clone)]
pub struct Scheduler {
    queue: Arc<dyn JobQueue>,
    clock: Arc<dyn Clock>,
    entries: Vec<Periodic>,
    max_sleep: Duration,
}

impl Scheduler {
    /// An empty scheduler.
    pub fn new(queue: Arc<dyn JobQueue>, clock: Arc<dyn Clock>) -> Self {
        Scheduler {
            queue,
            clock,
            entries: Vec::new(),
            max_sleep: Duration::from_secs(30),
        }
    }

    /// Adds an entry.
    pub fn entry(mut self, periodic: Periodic) -> Self {
        self.entries.push(periodic);
        self
    }

    /// Adds entries.
    pub fn extend(mut self, periodic: impl IntoIterator<Item = Periodic>) -> Self {
        self.entries.extend(periodic);
        self
    }

    /// Longest sleep between ticks, so clock jumps are noticed (default 30 s).
    pub fn max_sleep(mut self, d: Duration) -> Self {
        self.max_sleep = d;
        self
    }

    /// The entries.
    pub fn entries(&self) -> &[Periodic] {
        &self.entries
    }

    /// Enqueues every entry's current period (once per period across all
    /// schedulers). Failures are logged and retried on the next tick.
    pub async fn tick(&self) -> Vec<Fired> {
        let now = truncate_micros(self.clock.now());
        let mut fired = Vec::new();
        for p in &self.entries {
            let Some((period, job)) = p.job_for(now) else {
                continue;
            };
            match self.queue.enqueue(&job, now).await {
                Ok(enqueued) => {
                    if enqueued.created {
                        let lag = (now - period).to_std().unwrap_or(Duration::ZERO);
                        metrics::histogram!(telemetry::SCHEDULER_LAG, "entry" => p.name.clone())
                            .record(lag.as_secs_f64());
                        tracing::info!(periodic = %p.name, period = %period, job.id = %enqueued.id, "periodic job enqueued");
                    }
                    fired.push(Fired {
                        name: p.name.clone(),
                        period,
                        enqueued,
                    });
                }
                Err(e) => {
                    tracing::error!(periodic = %p.name, period = %period, error = %e, "enqueueing periodic job failed; will retry next tick");
                }
            }
        }
        fired
    }

    /// Ticks at every occurrence (and at least every `max_sleep`) until
    /// `shutdown` completes.
    pub async fn run(&self, shutdown: impl Future<Output = ()> + Send) {
        let mut shutdown = pin!(shutdown);
        tracing::info!(entries = self.entries.len(), "scheduler started");
        loop {
            self.tick().await;
            let now = self.clock.now();
            let next = self
                .entries
                .iter()
                .filter_map(|p| p.next_after(now))
                .min()
                .and_then(|n| (n - now).to_std().ok())
                .unwrap_or(self.max_sleep);
            // A few milliseconds past the occurrence, so the tick lands in
            // the new period even with a coarse timer.
            let sleep = (next + Duration::from_millis(5)).min(self.max_sleep);
            tokio::select! {
                () = &mut shutdown => break,
                () = tokio::time::sleep(sleep) => {}
            }
        }
        tracing::info!("scheduler stopped");
    }
}
