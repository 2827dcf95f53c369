//! Importing a running deployment of the Django seed: companies, domains,
//! and each company's users (with their password hashes), profiles,
//! projects, members and tasks, keeping ids, timestamps, owners,
//! assignments and statuses.
//!
//! The part that knows Django's tables is an [`ImportSource`] (the
//! `saas-import-django` crate reads them from PostgreSQL); this module is
//! the rest, the same for every backend:
//! - [`convert`](self) turns a company's source rows into what a backend
//!   stores ([`TenantImport`]), reporting every row it had to change or
//!   leave out as an [`ImportProblem`] — nothing aborts the import and
//!   nothing is dropped without a report;
//! - [`Saas::import`](crate::Saas::import) writes each company as a tenant
//!   through [`Store::import_tenant`](crate::store::Store::import_tenant)
//!   (all or nothing), verifies it ([`Inventory`]: counts and a checksum of
//!   ids against what the source held), adds its other domains, and skips
//!   tenants already imported and verified, so a second run changes nothing.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::error::Result;
use crate::projects::{NewProjectRecord, NewTaskRecord, ProjectId, TaskId};
use crate::users::{NewUserRecord, UserId};

mod convert;
mod run;

pub use convert::{convert_tenant, due_at_end_of_day};
pub use run::{ImportOutcome, ImportProgress, ImportProgressFn, ImportReport, TenantReport};

/// A company (`tenants_company`, django-tenants' tenant model) as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceCompany {
    /// Its id.
    pub id: i64,
    /// Its PostgreSQL schema, which becomes the tenant's slug.
    pub schema_name: String,
    /// Display name.
    pub name: String,
    /// Plan code (`free`, `basic`, `premium`, `enterprise`).
    pub subscription_plan: String,
    /// Inactive companies become suspended tenants.
    pub is_active: bool,
    /// Registration time.
    pub created_on: DateTime<Utc>,
}

/// A domain (`tenants_domain`) routing a host name to a company.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceDomain {
    /// Its id.
    pub id: i64,
    /// The host name.
    pub domain: String,
    /// The company it routes to (may name no company in inconsistent data).
    pub tenant_id: i64,
    /// Whether it is the company's primary domain.
    pub is_primary: bool,
}

/// A user (`auth_user`) with its profile (`core_userprofile`), if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceUser {
    /// Its id.
    pub id: i64,
    /// Login name as Django stored it.
    pub username: String,
    /// Email address (Django allows it blank).
    pub email: String,
    /// Django's password hash (`pbkdf2_sha256$…`, or `!…` when unusable).
    pub password: String,
    /// Given name.
    pub first_name: String,
    /// Family name.
    pub last_name: String,
    /// Whether the account may log in.
    pub is_active: bool,
    /// Last successful login.
    pub last_login: Option<DateTime<Utc>>,
    /// Creation time.
    pub date_joined: DateTime<Utc>,
    /// The profile's role; `None` when the user has no profile.
    pub role: Option<String>,
    /// The profile's department (empty without a profile).
    pub department: String,
}

/// A project (`core_project`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceProject {
    /// Its id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Status code.
    pub status: String,
    /// Start date.
    pub start_date: Option<NaiveDate>,
    /// End date.
    pub end_date: Option<NaiveDate>,
    /// The owning user.
    pub owner_id: i64,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// A task (`core_task`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceTask {
    /// Its id.
    pub id: i64,
    /// Its project.
    pub project_id: i64,
    /// Title.
    pub title: String,
    /// Description.
    pub description: String,
    /// Status code.
    pub status: String,
    /// Priority code.
    pub priority: String,
    /// Assignee (`SET NULL` when the user is deleted).
    pub assigned_to: Option<i64>,
    /// Creator (`SET NULL` when the user is deleted).
    pub created_by: Option<i64>,
    /// Due date (a calendar date in Django).
    pub due_date: Option<NaiveDate>,
    /// Completion time.
    pub completed_at: Option<DateTime<Utc>>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// Everything one company's schema holds, as read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceTenant {
    /// Users with their profiles.
    pub users: Vec<SourceUser>,
    /// Projects.
    pub projects: Vec<SourceProject>,
    /// Memberships, `(project id, user id)` (`core_project_members`).
    pub members: Vec<(i64, i64)>,
    /// Tasks.
    pub tasks: Vec<SourceTask>,
}

/// Where an import reads from: a running Django deployment's tables.
#[async_trait]
pub trait ImportSource: Send + Sync {
    /// Every company, the public schema's own included, by id.
    async fn companies(&self) -> Result<Vec<SourceCompany>>;
    /// Every domain, by id.
    async fn domains(&self) -> Result<Vec<SourceDomain>>;
    /// Everything in `company`'s schema.
    async fn tenant(&self, company: &SourceCompany) -> Result<SourceTenant>;
}

/// A user as a backend imports it: the record, its id and what a new user
/// does not have yet.
#[derive(Debug, Clone)]
pub struct ImportUser {
    /// The id it keeps.
    pub id: UserId,
    /// Its fields (the password hash as the source stored it).
    pub record: NewUserRecord,
    /// Whether it may log in.
    pub is_active: bool,
    /// Last successful login.
    pub last_login: Option<DateTime<Utc>>,
}

/// A project as a backend imports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportProject {
    /// The id it keeps.
    pub id: ProjectId,
    /// Its fields.
    pub record: NewProjectRecord,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// A task as a backend imports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportTask {
    /// The id it keeps.
    pub id: TaskId,
    /// Its fields.
    pub record: NewTaskRecord,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// One tenant's data for [`Store::import_tenant`](crate::store::Store::import_tenant):
/// consistent (every reference names a row here), ids unique, usernames
/// unique ignoring case.
#[derive(Debug, Clone, Default)]
pub struct TenantImport {
    /// Users, by id.
    pub users: Vec<ImportUser>,
    /// Projects, by id.
    pub projects: Vec<ImportProject>,
    /// Memberships, `(project, user)`, sorted.
    pub members: Vec<(ProjectId, UserId)>,
    /// Tasks, by id.
    pub tasks: Vec<ImportTask>,
}

impl TenantImport {
    /// The ids this import writes, to compare with what a store holds.
    pub fn inventory(&self) -> Inventory {
        Inventory::new(
            self.users.iter().map(|u| u.id).collect(),
            self.projects.iter().map(|p| p.id).collect(),
            self.members.clone(),
            self.tasks.iter().map(|t| t.id).collect(),
        )
    }
}

/// The ids of everything a tenant holds (sorted), what verification
/// compares: a store's ([`TenantStore::inventory`](crate::store::TenantStore::inventory))
/// against the import's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inventory {
    /// User ids.
    pub users: Vec<UserId>,
    /// Project ids.
    pub projects: Vec<ProjectId>,
    /// Memberships.
    pub members: Vec<(ProjectId, UserId)>,
    /// Task ids.
    pub tasks: Vec<TaskId>,
}

/// Counts of an [`Inventory`], for reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Users.
    pub users: u64,
    /// Projects.
    pub projects: u64,
    /// Memberships.
    pub members: u64,
    /// Tasks.
    pub tasks: u64,
}

impl Inventory {
    /// An inventory of these ids, sorted.
    pub fn new(
        mut users: Vec<UserId>,
        mut projects: Vec<ProjectId>,
        mut members: Vec<(ProjectId, UserId)>,
        mut tasks: Vec<TaskId>,
    ) -> Self {
        users.sort_unstable();
        projects.sort_unstable();
        members.sort_unstable();
        tasks.sort_unstable();
        Inventory {
            users,
            projects,
            members,
            tasks,
        }
    }

    /// How many of each.
    pub fn counts(&self) -> Counts {
        let n = |len: usize| len as u64;
        Counts {
            users: n(self.users.len()),
            projects: n(self.projects.len()),
            members: n(self.members.len()),
            tasks: n(self.tasks.len()),
        }
    }

    /// SHA-256 of every id, in order, as 16 hex digits: equal inventories
    /// have equal checksums, and a report can show it.
    pub fn checksum(&self) -> String {
        let mut h = Sha256::new();
        for u in &self.users {
            h.update(b"u");
            h.update(u.0.to_be_bytes());
        }
        for p in &self.projects {
            h.update(b"p");
            h.update(p.0.to_be_bytes());
        }
        for (p, u) in &self.members {
            h.update(b"m");
            h.update(p.0.to_be_bytes());
            h.update(u.0.to_be_bytes());
        }
        for t in &self.tasks {
            h.update(b"t");
            h.update(t.0.to_be_bytes());
        }
        h.finalize()[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

/// A row the import had to change or leave out, and what it did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImportProblem {
    /// The company's schema name.
    pub tenant: String,
    /// The source table (`auth_user`, `core_task`, `tenants_domain`, …).
    pub table: &'static str,
    /// The row's id (a membership's project id).
    pub id: i64,
    /// What was wrong.
    pub problem: String,
    /// What the import did about it.
    pub action: String,
}

impl ImportProblem {
    pub(crate) fn new(
        tenant: &str,
        table: &'static str,
        id: i64,
        problem: impl Into<String>,
        action: impl Into<String>,
    ) -> Self {
        ImportProblem {
            tenant: tenant.to_owned(),
            table,
            id,
            problem: problem.into(),
            action: action.into(),
        }
    }
}
