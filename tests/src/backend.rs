//! What a backend under test is to the suites: a [`Backend`] makes fresh
//! [`Fixture`]s, each a store and its job queue over storage of their own
//! (or fresh tenants on a shared database).

use std::sync::Arc;

use futures::future::BoxFuture;
use saas_core::jobs::JobQueue;
use saas_core::store::Store;

/// A backend under test, with storage that stays alive as long as the fixture.
pub trait Fixture: Send + Sync {
    /// The backend's name, for messages.
    fn backend(&self) -> &'static str;
    /// The store. Every call returns the same store.
    fn store(&self) -> Arc<dyn Store>;
    /// The job queue that goes with the store (as a host would pair them).
    fn queue(&self) -> BoxFuture<'_, Arc<dyn JobQueue>>;
    /// Deletes what the case left behind in storage that outlives the
    /// fixture (a shared database); called after a case that passed.
    fn cleanup(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}

/// Makes fixtures of one backend.
pub trait Backend: Sync {
    /// A fresh fixture, or `None` when the backend is not available here
    /// (after saying so on stderr).
    fn fixture(&self) -> BoxFuture<'_, Option<Box<dyn Fixture>>>;
}
