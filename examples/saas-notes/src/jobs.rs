//! The notes application's background work: a job counting a new note's
//! words, and an event handler writing a welcome note into every new
//! tenant. Both reach the tenant's table through the same scoped access as
//! the routes.

use async_trait::async_trait;
use saas_core::Error;
use saas_core::events::Event;
use saas_core::jobs::events::{EventHandler, EventJob};
use saas_core::jobs::{Job, JobContext, JobError, JobsBuilder};
use serde::{Deserialize, Serialize};

use crate::notes;

/// Counts a note's words and stores the count (a tenant job, enqueued when
/// a note is written).
#[derive(Debug)]
pub struct CountWords;

/// Which note to count.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct NoteRef {
    /// The note's id in the job's tenant.
    pub note: i64,
}

#[async_trait]
impl Job for CountWords {
    const KIND: &'static str = "notes_count_words";
    type Payload = NoteRef;
    /// The count; `None` when the note was gone.
    type Output = Option<i64>;

    async fn run(&self, ctx: &JobContext, payload: NoteRef) -> Result<Option<i64>, JobError> {
        Ok(notes::count_words(ctx.store()?, payload.note).await?)
    }
}

/// Writes the welcome note into every tenant created, delivered as a
/// durable job ([`EventJob`]): registration never waits for it, and a
/// failure is retried. Other events are ignored.
#[derive(Debug)]
pub struct Welcome;

#[async_trait]
impl EventHandler for Welcome {
    async fn handle(&self, ctx: &JobContext, event: Event) -> Result<(), JobError> {
        let Event::TenantCreated { tenant, .. } = event else {
            return Ok(());
        };
        match ctx.saas().open_tenant(tenant).await {
            Ok((_, store)) => {
                if notes::welcome(&store, ctx.now()).await? {
                    tracing::info!(%tenant, "welcome note written");
                }
                Ok(())
            }
            // Deleted or suspended since: nobody to welcome.
            Err(Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

/// The job kinds a `saas-notes` worker runs: the built-in ones, and the
/// notes application's.
pub fn kinds(builder: JobsBuilder) -> JobsBuilder {
    saas_server::builtin_jobs(builder)
        .register(CountWords)
        .register(EventJob(Welcome))
}
