//! Helpers shared by this crate's integration tests: a fresh store in a temp
//! directory per test, random tenant slugs, and record builders.

#![allow(dead_code)] // each test binary uses a different subset

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use saas_core::projects::{
    NewProjectRecord, NewTaskRecord, Priority, ProjectId, ProjectStatus, TaskStatus,
};
use saas_core::store::{Store, TenantStore};
use saas_core::tenancy::{Hostname, NewTenant, Slug, Tenant, TenantId, TenantName};
use saas_core::users::{Email, NewUserRecord, Role, User, UserId, Username};
use saas_store_sqlite::{SqliteOptions, SqliteStore};
use tempfile::TempDir;

/// Now, truncated to microseconds as the services hand times to stores.
pub(crate) fn now() -> DateTime<Utc> {
    DateTime::from_timestamp_micros(Utc::now().timestamp_micros()).expect("now is in range")
}

/// A fresh random slug.
pub(crate) fn random_slug() -> Slug {
    let mut s = format!("t_{}", uuid::Uuid::new_v4().simple());
    s.truncate(Slug::MAX_LEN);
    Slug::parse(&s).expect("valid slug")
}

/// A hostname derived from a slug (hostnames take no underscores).
pub(crate) fn host_for(slug: &Slug) -> Hostname {
    Hostname::parse(&format!("{}.localhost", slug.as_str().replace('_', "-")))
        .expect("valid hostname")
}

/// A registration for `slug` on `host`.
pub(crate) fn new_tenant_with(slug: &Slug, host: &Hostname) -> NewTenant {
    NewTenant {
        id: TenantId::new(),
        name: TenantName::parse(&format!("Company {slug}")).expect("valid name"),
        slug: slug.clone(),
        plan: "free".to_owned(),
        domain: host.clone(),
        created_at: now(),
    }
}

/// A registration with a fresh slug and hostname.
pub(crate) fn new_tenant() -> NewTenant {
    let slug = random_slug();
    let host = host_for(&slug);
    new_tenant_with(&slug, &host)
}

/// A user record; the hash is any string (hashing is the service's job).
pub(crate) fn user_record(username: &str, role: Role) -> NewUserRecord {
    NewUserRecord {
        username: Username::parse(username).expect("valid username"),
        email: Email::parse(&format!("{username}@example.com")).expect("valid email"),
        password_hash: format!("hash-of-{username}"),
        first_name: "First".to_owned(),
        last_name: "Last".to_owned(),
        role,
        department: "Engineering".to_owned(),
        is_owner: false,
        date_joined: now(),
    }
}

/// The owner admin of a registration.
pub(crate) fn admin_record() -> NewUserRecord {
    NewUserRecord {
        is_owner: true,
        ..user_record("admin", Role::Admin)
    }
}

/// A fresh store in its own temporary directory (kept alive by the TempDir).
pub(crate) fn store() -> (TempDir, SqliteStore) {
    store_with(SqliteOptions::default())
}

/// A fresh store with `options`.
pub(crate) fn store_with(options: SqliteOptions) -> (TempDir, SqliteStore) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::with_options(dir.path(), options).expect("open store");
    (dir, store)
}

/// Registers a fresh tenant and opens it.
pub(crate) async fn tenant(store: &SqliteStore) -> (Tenant, User, Arc<dyn TenantStore>) {
    let (tenant, admin) = store
        .create_tenant(&new_tenant(), &admin_record())
        .await
        .expect("create tenant");
    let handle = store.open(&tenant).await.expect("open tenant");
    (tenant, admin, handle)
}

/// A project record owned by `owner`.
pub(crate) fn project_record(name: &str, owner: UserId) -> NewProjectRecord {
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

/// A task record in `project` created by `by`.
pub(crate) fn task_record(project: ProjectId, title: &str, by: UserId) -> NewTaskRecord {
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

/// The file of a tenant under `root`.
pub(crate) fn tenant_file(root: &Path, slug: &Slug) -> PathBuf {
    root.join("tenants")
        .join(format!("{}.sqlite", slug.as_str()))
}

/// Names of the files in the tenants directory.
pub(crate) fn tenant_dir_files(root: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(root.join("tenants"))
        .expect("tenants dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}
