//! Lifecycle events: every listener hears each change once it is made,
//! never a change that failed, and the durable listener hands events to a
//! worker that runs the host's handler. Restoring a deleted tenant is
//! heard after it commits on every backend.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use saas_core::clock::SystemClock;
use saas_core::commands::UserPatch;
use saas_core::events::Event;
use saas_core::jobs::events::{EventHandler, EventJob, EventJobListener};
use saas_core::jobs::memory::MemoryQueue;
use saas_core::jobs::{JobContext, JobError, Jobs, WorkerConfig};
use saas_core::service::{Listener, Saas};
use saas_core::store::Store;
use saas_core::tenancy::TenantStatus;
use saas_core::users::Role;
use tests::Backend;
use tests::harness::registration;
use tests::harness::unique_slug;
use tests::memory::MemoryStore;

#[derive(Debug, Default)]
struct Recorder(Mutex<Vec<Event>>);

impl Recorder {
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().expect("lock"))
            .iter()
            .map(|e| e.name().to_owned())
            .collect()
    }
}

#[async_trait]
impl Listener for Recorder {
    async fn event(&self, event: &Event) -> saas_core::Result<()> {
        self.0.lock().expect("lock").push(event.clone());
        Ok(())
    }
}

/// A listener that always fails: the change stands and others still hear.
#[derive(Debug)]
struct Failing;

#[async_trait]
impl Listener for Failing {
    async fn event(&self, _: &Event) -> saas_core::Result<()> {
        Err(saas_core::Error::backend("the host's handler is down"))
    }
}

#[tokio::test]
async fn listeners_hear_every_lifecycle_change_after_it_is_made() {
    let recorder = Arc::new(Recorder::default());
    let saas = Saas::builder(Arc::new(MemoryStore::new()))
        .secret(b"events test secret of at least thirty-two bytes")
        .listener(Arc::new(Failing))
        .listener(recorder.clone())
        .build()
        .expect("service");
    let (tenant, admin) = saas
        .register(registration(&unique_slug(), Some("basic")))
        .await
        .expect("register");
    assert_eq!(recorder.take(), vec!["tenant_created", "user_created"]);

    let session = saas.session(&tenant, admin.id).await.expect("session");
    let user = session
        .register_user(saas_core::commands::NewUser::new(
            "jo",
            "jo@acme.com",
            "a long password",
        ))
        .await
        .expect("user");
    assert_eq!(recorder.take(), vec!["user_created"]);
    let promote = UserPatch {
        role: Some(Role::Manager),
        ..UserPatch::default()
    };
    session
        .update_user(user.id, promote)
        .await
        .expect("promote");
    let deactivate = UserPatch {
        is_active: Some(false),
        ..UserPatch::default()
    };
    session
        .update_user(user.id, deactivate.clone())
        .await
        .expect("deactivate");
    // No change, no event.
    session
        .update_user(user.id, deactivate)
        .await
        .expect("again");
    assert_eq!(
        recorder.take(),
        vec!["user_role_changed", "user_deactivated"]
    );
    // A refused change tells nobody.
    let demote_owner = UserPatch {
        role: Some(Role::Viewer),
        ..UserPatch::default()
    };
    assert!(session.update_user(admin.id, demote_owner).await.is_err());
    assert!(recorder.take().is_empty());

    let op = saas.operator_unchecked();
    op.change_plan(tenant.id, "premium").await.expect("plan");
    op.change_plan(tenant.id, "premium")
        .await
        .expect("same plan");
    op.suspend(tenant.id).await.expect("suspend");
    op.suspend(tenant.id).await.expect("suspend again");
    op.reactivate(tenant.id).await.expect("reactivate");
    assert!(op.change_plan(tenant.id, "gold").await.is_err());
    op.delete_tenant(tenant.id).await.expect("delete");
    op.delete_tenant(tenant.id).await.expect("delete again");
    assert_eq!(
        recorder.take(),
        vec![
            "plan_changed",
            "tenant_suspended",
            "tenant_reactivated",
            "tenant_deleted"
        ]
    );
}

#[derive(Debug, Default, Clone)]
struct Handler(Arc<Mutex<Vec<Event>>>);

#[async_trait]
impl EventHandler for Handler {
    async fn handle(&self, _: &JobContext, event: Event) -> Result<(), JobError> {
        self.0.lock().expect("lock").push(event);
        Ok(())
    }
}

#[tokio::test]
async fn durable_events_reach_the_handler_through_the_queue() {
    let queue = Arc::new(MemoryQueue::new());
    let saas = Saas::builder(Arc::new(MemoryStore::new()))
        .secret(b"events test secret of at least thirty-two bytes")
        .listener(Arc::new(EventJobListener::new(
            queue.clone(),
            Arc::new(SystemClock),
        )))
        .build()
        .expect("service");
    let handler = Handler::default();
    let jobs = Jobs::builder(saas.clone(), queue)
        .register(EventJob(handler.clone()))
        .build();
    let (tenant, _) = saas
        .register(registration(&unique_slug(), None))
        .await
        .expect("register");
    // Nothing ran yet: the change did not wait for the handler.
    assert!(handler.0.lock().expect("lock").is_empty());
    saas.operator_unchecked()
        .delete_tenant(tenant.id)
        .await
        .expect("delete");
    let worker = jobs.worker(WorkerConfig {
        poll_interval: Duration::from_millis(20),
        ..WorkerConfig::default()
    });
    worker.run_until_idle().await;
    let seen = handler.0.lock().expect("lock").clone();
    let names: Vec<&str> = seen.iter().map(Event::name).collect();
    assert_eq!(
        names.len(),
        3,
        "every event once, the deleted tenant's too: {names:?}"
    );
    for name in ["tenant_created", "user_created", "tenant_deleted"] {
        assert!(names.contains(&name), "{names:?}");
    }
    assert!(seen.iter().all(|e| e.tenant() == tenant.id));
}

/// Records each event with the tenant's status in the store at the moment
/// the listener hears it: a change heard before it committed would show
/// the status it had before.
#[derive(Debug)]
struct Witness {
    store: Arc<dyn Store>,
    heard: Mutex<Vec<(String, Option<TenantStatus>)>>,
}

#[async_trait]
impl Listener for Witness {
    async fn event(&self, event: &Event) -> saas_core::Result<()> {
        let status = self.store.tenant(event.tenant()).await?.map(|t| t.status);
        self.heard
            .lock()
            .expect("lock")
            .push((event.name().to_owned(), status));
        Ok(())
    }
}

impl Witness {
    fn take(&self) -> Vec<(String, Option<TenantStatus>)> {
        std::mem::take(&mut *self.heard.lock().expect("lock"))
    }
}

async fn restore_is_heard_after_it_commits(backend: &dyn Backend) {
    let Some(fixture) = backend.fixture().await else {
        return;
    };
    let witness = Arc::new(Witness {
        store: fixture.store(),
        heard: Mutex::default(),
    });
    let saas = Saas::builder(fixture.store())
        .secret(b"events test secret of at least thirty-two bytes")
        .listener(witness.clone())
        .build()
        .expect("service");
    let (tenant, _) = saas
        .register(registration(&unique_slug(), None))
        .await
        .expect("register");
    let op = saas.operator_unchecked();
    // Restoring a tenant that is not deleted is refused, and tells nobody.
    witness.take();
    assert!(op.restore(tenant.id).await.is_err());
    assert!(witness.take().is_empty());

    op.delete_tenant(tenant.id).await.expect("delete");
    op.restore(tenant.id).await.expect("restore");
    assert_eq!(
        witness.take(),
        vec![
            ("tenant_deleted".to_owned(), Some(TenantStatus::Deleted)),
            ("tenant_restored".to_owned(), Some(TenantStatus::Active)),
        ]
    );
    let restored = Event::TenantRestored {
        tenant: tenant.id,
        slug: tenant.slug.as_str().to_owned(),
    };
    assert_eq!(restored.name(), "tenant_restored");
    assert_eq!(restored.tenant(), tenant.id);
    // A second restore changes nothing and is heard by nobody.
    assert!(op.restore(tenant.id).await.is_err());
    assert!(witness.take().is_empty());
    // The cleanup purges only deleted tenants.
    op.delete_tenant(tenant.id)
        .await
        .expect("delete for cleanup");
    fixture.cleanup().await;
}

#[tokio::test]
async fn memory_restore_is_heard_after_it_commits() {
    restore_is_heard_after_it_commits(&tests::memory::Memory).await;
}

#[tokio::test]
async fn sqlite_restore_is_heard_after_it_commits() {
    restore_is_heard_after_it_commits(&tests::sqlite::Sqlite).await;
}

#[tokio::test]
async fn postgres_restore_is_heard_after_it_commits() {
    restore_is_heard_after_it_commits(&tests::pg::Postgres).await;
}
