//! Records for tests that talk to a [`Store`] directly, below the service
//! layer: fresh random slugs and hostnames, new tenants, users, projects
//! and tasks with plain values, and a registered tenant in one call.
//!
//! Everything is fresh per call (random slugs, hence hostnames), so tests
//! on a shared database never collide and can be rerun.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use saas_core::projects::{
    NewProjectRecord, NewTaskRecord, Priority, ProjectId, ProjectStatus, TaskStatus,
};
use saas_core::store::{Store, TenantStore};
use saas_core::tenancy::{Hostname, NewTenant, Slug, Tenant, TenantId, TenantName};
use saas_core::users::{Email, NewUserRecord, Role, User, UserId, Username};

/// Now, truncated to microseconds, as the service hands every time to a
/// store (and as stores give it back).
pub fn now() -> DateTime<Utc> {
    let t = Utc::now();
    DateTime::from_timestamp_micros(t.timestamp_micros()).unwrap_or(t)
}

/// `prefix` and random hex digits, 40 characters at most: a fresh slug,
/// username, kind or label.
pub fn unique(prefix: &str) -> String {
    let mut s = format!("{prefix}{}", uuid::Uuid::new_v4().simple());
    s.truncate(40);
    s
}

/// A fresh random slug: `t_` and 32 hex digits.
pub fn random_slug() -> Slug {
    Slug::parse(&unique("t_")).expect("a random slug is valid")
}

/// The hostname of `slug` under `localhost` (hostnames take no
/// underscores, so they become dashes).
pub fn host_for(slug: &Slug) -> Hostname {
    Hostname::parse(&format!("{}.localhost", slug.as_str().replace('_', "-")))
        .expect("a slug's hostname is valid")
}

/// A registration of `slug` on `host`, on the `free` plan.
pub fn new_tenant_with(slug: &Slug, host: &Hostname) -> NewTenant {
    NewTenant {
        id: TenantId::new(),
        name: TenantName::parse(&format!("Company {slug}")).expect("a valid name"),
        slug: slug.clone(),
        plan: "free".to_owned(),
        domain: host.clone(),
        created_at: now(),
    }
}

/// A registration with a fresh slug and hostname, on the `free` plan.
pub fn new_tenant() -> NewTenant {
    let slug = random_slug();
    let host = host_for(&slug);
    new_tenant_with(&slug, &host)
}

/// A user record for `username` (email `<username>@acme.test`). The hash
/// is a placeholder of argon2id's shape that names the user: hashing is the
/// service's job, a store only keeps the text.
pub fn user_record(username: &str, role: Role) -> NewUserRecord {
    NewUserRecord {
        username: Username::parse(username).expect("a valid username"),
        email: Email::parse(&format!("{username}@acme.test")).expect("a valid email"),
        password_hash: password_hash_of(username),
        first_name: "First".to_owned(),
        last_name: "Last".to_owned(),
        role,
        department: "Engineering".to_owned(),
        is_owner: false,
        date_joined: now(),
    }
}

/// The placeholder hash [`user_record`] stores for `username`.
pub fn password_hash_of(username: &str) -> String {
    format!("$argon2id$hash-of-{username}")
}

/// The owner admin of a registration (`admin`).
pub fn admin_record() -> NewUserRecord {
    NewUserRecord {
        is_owner: true,
        ..user_record("admin", Role::Admin)
    }
}

/// A project record named `name` (described as `about <name>`), owned by
/// `owner`, active, without dates.
pub fn project_record(name: &str, owner: UserId) -> NewProjectRecord {
    NewProjectRecord {
        name: name.to_owned(),
        description: format!("about {name}"),
        status: ProjectStatus::Active,
        start_date: None,
        end_date: None,
        owner,
        created_at: now(),
    }
}

/// A task record titled `title` in `project`, created by `by`: to do,
/// medium priority, unassigned, without due date.
pub fn task_record(project: ProjectId, title: &str, by: UserId) -> NewTaskRecord {
    NewTaskRecord {
        project_id: project,
        title: title.to_owned(),
        description: String::new(),
        status: TaskStatus::Todo,
        priority: Priority::Medium,
        assigned_to: None,
        created_by: by,
        due_date: None,
        completed_at: None,
        created_at: now(),
    }
}

/// Registers a fresh tenant ([`new_tenant`]) with its owner
/// ([`admin_record`]).
pub async fn tenant(store: &dyn Store) -> (Tenant, User) {
    store
        .create_tenant(&new_tenant(), &admin_record())
        .await
        .expect("registering a fresh tenant succeeds")
}

/// Registers a fresh tenant, as [`tenant`], and opens it.
pub async fn open_tenant(store: &dyn Store) -> (Tenant, User, Arc<dyn TenantStore>) {
    let (tenant, admin) = tenant(store).await;
    let handle = store.open(&tenant).await.expect("the new tenant opens");
    (tenant, admin, handle)
}
