//! The storage contract: a [`Store`] (the catalog of tenants and domains, and
//! the door to each tenant's data) and a [`TenantStore`] handle scoped to
//! exactly one tenant.
//!
//! Tenant data is reachable only through a `TenantStore`, and a `TenantStore`
//! is only obtained from [`Store::open`] for a [`Tenant`] read from the
//! catalog. Nothing here accepts a schema name, a file path or SQL.
//!
//! Backends enforce plan limits themselves: `create_*` methods take the
//! limit, and the count and the insert happen in one transaction (or under
//! the tenant file's write lock), so concurrent creates can never overshoot.
//!
//! # Implementing a backend
//!
//! ```
//! use std::sync::Arc;
//! use saas_core::store::{Store, TenantStore};
//!
//! // A backend is a type implementing `Store`, whose `open` returns its own
//! // `TenantStore`. The conformance suite in the `tests` crate (the
//! // workspace's test kit) runs every operation against it; the SQLite and
//! // PostgreSQL crates are the models, and the kit's in-memory store the
//! // shortest complete implementation.
//! fn assert_backend<S: Store>(_: &S) {}
//! fn assert_handle(_: Arc<dyn TenantStore>) {}
//! ```

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::audit::{AuditEntry, AuditQuery, NewAuditEntry};
use crate::error::{Error, Result};
use crate::import::{Inventory, TenantImport};
pub use crate::migration::{MigrationOutcome, MigrationProgress, MigrationReport, ProgressFn};
use crate::projects::{
    NewProjectRecord, NewTaskRecord, Project, ProjectCounts, ProjectId, Scope, Task, TaskCounts,
    TaskId, TaskOrderField, TaskOrdering, TaskQuery,
};
use crate::tenancy::{Domain, Hostname, NewTenant, Slug, Tenant, TenantId, TenantStatus};
use crate::tenant_query::TenantQuery;
use crate::updates::{ProjectChanges, TaskChanges, UserChanges};
use crate::users::{Email, NewUserRecord, User, UserId, Username};

/// A page of a list, DRF style: 1-based page number and a bounded size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    page: u64,
    page_size: u64,
}

impl PageRequest {
    /// Page size when none is asked for.
    pub const DEFAULT_SIZE: u64 = 20;
    /// Largest page size accepted.
    pub const MAX_SIZE: u64 = 100;
    /// Largest page number accepted (keeps offsets far from overflow).
    pub const MAX_PAGE: u64 = 1_000_000;

    /// Validates a page request; `None` takes the defaults (page 1, 20 items).
    pub fn new(page: Option<u64>, page_size: Option<u64>) -> Result<Self> {
        let page = page.unwrap_or(1);
        let page_size = page_size.unwrap_or(Self::DEFAULT_SIZE);
        if !(1..=Self::MAX_PAGE).contains(&page) {
            return Err(Error::invalid("page", "must be a positive page number"));
        }
        if !(1..=Self::MAX_SIZE).contains(&page_size) {
            return Err(Error::invalid("page_size", "must be between 1 and 100"));
        }
        Ok(PageRequest { page, page_size })
    }

    /// The first page with the default size.
    pub fn first() -> Self {
        PageRequest {
            page: 1,
            page_size: Self::DEFAULT_SIZE,
        }
    }

    /// 1-based page number.
    pub fn page(&self) -> u64 {
        self.page
    }

    /// Items per page.
    pub fn page_size(&self) -> u64 {
        self.page_size
    }

    /// Rows to skip.
    pub fn offset(&self) -> u64 {
        (self.page - 1) * self.page_size
    }

    /// The page as SQL's `LIMIT` and `OFFSET` take it. Both fit an `i64`:
    /// the size is at most [`Self::MAX_SIZE`] and the page at most
    /// [`Self::MAX_PAGE`].
    pub fn limit_offset(&self) -> (i64, i64) {
        let fit = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        (fit(self.page_size), fit(self.offset()))
    }
}

impl Default for PageRequest {
    fn default() -> Self {
        Self::first()
    }
}

/// One page of results and the total count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Page<T> {
    /// Items matching, on all pages.
    pub count: u64,
    /// This page's items.
    pub items: Vec<T>,
}

impl<T> Page<T> {
    /// Maps the items, keeping the count.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            count: self.count,
            items: self.items.into_iter().map(f).collect(),
        }
    }

    /// Every item of a paged listing: `fetch` is asked for page after page
    /// of [`PageRequest::MAX_SIZE`] items until one comes back short or
    /// the count is reached (at most [`PageRequest::MAX_PAGE`] pages).
    pub async fn every<F>(mut fetch: impl FnMut(PageRequest) -> F) -> Result<Vec<T>>
    where
        F: Future<Output = Result<Page<T>>>,
    {
        let mut out = Vec::new();
        for page in 1..=PageRequest::MAX_PAGE {
            let p = fetch(PageRequest::new(Some(page), Some(PageRequest::MAX_SIZE))?).await?;
            let n = p.items.len() as u64;
            out.extend(p.items);
            if n < PageRequest::MAX_SIZE || out.len() as u64 >= p.count {
                break;
            }
        }
        Ok(out)
    }
}

/// What the dashboard reads for one user: the same queries on every
/// backend, whether it runs them one by one or together
/// ([`TenantStore::dashboard`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DashboardQuery {
    /// Projects the user sees.
    pub scope: Scope,
    /// Tasks in scope.
    pub tasks: TaskQuery,
    /// Of which assigned to the user.
    pub mine: TaskQuery,
    /// The most recently changed tasks in scope, newest first.
    pub recent: TaskQuery,
    /// How many of them.
    pub recent_page: PageRequest,
}

impl DashboardQuery {
    /// How many recently changed tasks the dashboard shows.
    pub const RECENT: u64 = 5;

    /// The dashboard of `user`, who sees the projects of `scope`.
    pub fn new(scope: Scope, user: crate::users::UserId) -> Self {
        let mut mine = TaskQuery::new(scope);
        mine.assigned_to = Some(user);
        let mut recent = TaskQuery::new(scope);
        recent.ordering = TaskOrdering {
            field: TaskOrderField::UpdatedAt,
            descending: true,
        };
        DashboardQuery {
            scope,
            tasks: TaskQuery::new(scope),
            mine,
            recent,
            recent_page: PageRequest {
                page: 1,
                page_size: Self::RECENT,
            },
        }
    }
}

/// What [`TenantStore::dashboard`] answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DashboardCounts {
    /// Projects in scope, by status.
    pub projects: ProjectCounts,
    /// Every project of the tenant (the plan's usage).
    pub all_projects: u64,
    /// Tasks in scope.
    pub tasks: TaskCounts,
    /// Tasks in scope assigned to the user.
    pub mine: TaskCounts,
    /// The most recently changed tasks in scope.
    pub recent: Vec<Task>,
    /// Users of the tenant (active or not).
    pub users: u64,
}

/// A refresh token as remembered by the tenant, for rotation and reuse detection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshTokenRecord {
    /// The token's unique id (its `jti` claim).
    pub jti: Uuid,
    /// Every token rotated from the same login shares a family.
    pub family: Uuid,
    /// The user it was issued to.
    pub user_id: UserId,
    /// Expiry.
    pub expires_at: DateTime<Utc>,
}

/// What consuming a refresh token found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshOutcome {
    /// Unused until now: now marked used, and its successor stored.
    Rotated {
        /// The token's user.
        user_id: UserId,
        /// The token's family.
        family: Uuid,
    },
    /// Already used before: the backend has revoked the whole family.
    Reused,
    /// Unknown or revoked.
    Invalid,
}

/// A platform superuser (the seed's `createsuperuser`), separate from tenant users.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Superuser {
    /// Id.
    pub id: i64,
    /// Login name.
    pub username: Username,
    /// Email address.
    pub email: Email,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Whether the superuser may log in; deactivating revokes its tokens.
    pub is_active: bool,
    /// Bumped by deactivation and password changes: a platform token of an
    /// older version is refused.
    pub token_version: i64,
}

/// The catalog of tenants, domains and superusers, and the door to each
/// tenant's data. Implemented by each backend; used as `Arc<dyn Store>`.
#[async_trait]
pub trait Store: Debug + Send + Sync + 'static {
    /// Creates the tenant's catalog row, primary domain, storage (schema or
    /// file, with every table) and first admin, all or nothing. Fails with
    /// [`Error::Conflict`] (tenant/slug or domain/hostname) when taken.
    async fn create_tenant(
        &self,
        tenant: &NewTenant,
        admin: &NewUserRecord,
    ) -> Result<(Tenant, User)>;

    /// Creates a tenant from imported data (see [`crate::import`]): the
    /// catalog row, primary domain and storage as [`Store::create_tenant`]
    /// does, then every user, project, membership and task of `data` with
    /// the ids, timestamps and password hashes it carries, all or nothing.
    /// Later rows get ids above the imported ones. Plan limits are not
    /// applied (the data was within the source's). Conflict (tenant/slug or
    /// domain/hostname) when taken.
    async fn import_tenant(&self, tenant: &NewTenant, data: &TenantImport) -> Result<Tenant>;

    /// The tenant with `id`.
    async fn tenant(&self, id: TenantId) -> Result<Option<Tenant>>;

    /// The tenant with `slug`.
    async fn tenant_by_slug(&self, slug: &Slug) -> Result<Option<Tenant>>;

    /// The tenant that `hostname` routes to.
    async fn tenant_by_domain(&self, hostname: &Hostname) -> Result<Option<Tenant>>;

    /// Tenants, oldest first.
    async fn list_tenants(&self, page: PageRequest) -> Result<Page<Tenant>>;

    /// The tenants `query` [selects](TenantQuery::matches), in its
    /// [order](TenantQuery::cmp), one page of them, and how many it selects.
    async fn search_tenants(&self, query: &TenantQuery, page: PageRequest) -> Result<Page<Tenant>>;

    /// The domains of a tenant, primary first.
    async fn domains(&self, tenant: TenantId) -> Result<Vec<Domain>>;

    /// Routes another hostname to a tenant. Making it primary demotes the
    /// previous primary domain.
    async fn add_domain(
        &self,
        tenant: TenantId,
        hostname: &Hostname,
        is_primary: bool,
    ) -> Result<Domain>;

    /// Makes one of a tenant's domains its primary one, demoting the
    /// previous. NotFound (tenant, then domain) when either is unknown or
    /// the hostname routes to another tenant.
    async fn set_primary_domain(&self, tenant: TenantId, hostname: &Hostname) -> Result<()>;

    /// Stops routing a hostname. The primary domain cannot be removed.
    async fn remove_domain(&self, tenant: TenantId, hostname: &Hostname) -> Result<()>;

    /// Changes a tenant's plan (the code is checked by the caller).
    async fn set_plan(&self, tenant: TenantId, plan: &str) -> Result<Tenant>;

    /// Suspends or reactivates a tenant.
    async fn set_status(&self, tenant: TenantId, status: TenantStatus) -> Result<Tenant>;

    /// Marks a tenant deleted at `at`: from then on it reads as
    /// [`TenantStatus::Deleted`] with `deleted_at = at`, and every lookup
    /// that serves requests refuses it like an unknown one. Its data, slug
    /// and domains are kept (nothing else can take them) until
    /// [`Store::purge_tenant`]. Deleting a deleted tenant changes nothing
    /// (its first `deleted_at` stands). [`Error::NotFound`] when unknown.
    async fn delete_tenant(&self, tenant: TenantId, at: DateTime<Utc>) -> Result<Tenant>;

    /// Brings back a deleted tenant, with the status it had before
    /// ([`TenantStatus::Active`] or [`TenantStatus::Suspended`]) and its
    /// data as it was. [`Error::State`] when it is not deleted;
    /// [`Error::NotFound`] when unknown (or already purged).
    async fn restore_tenant(&self, tenant: TenantId) -> Result<Tenant>;

    /// Removes a tenant for good: its catalog row and domains in one
    /// committed transaction first, then its storage (file or schema). A
    /// crash between the two leaves storage that no catalog row points to,
    /// which [`Store::purge_orphans`] removes later; storage is never
    /// removed while the catalog still names it.
    ///
    /// With `deleted_before`, only a tenant deleted before that time is
    /// purged, checked in the catalog transaction (so a restore that wins
    /// the race keeps the tenant); without, any tenant. Returns whether it
    /// purged one: idempotent, an unknown tenant is `Ok(false)`.
    async fn purge_tenant(
        &self,
        tenant: TenantId,
        deleted_before: Option<DateTime<Utc>>,
    ) -> Result<bool>;

    /// Removes tenant storage (files, schemas) that no catalog row points
    /// to: what a purge interrupted after its catalog commit left behind.
    /// Returns how many it removed.
    async fn purge_orphans(&self) -> Result<u64>;

    /// A handle scoped to `tenant`'s data.
    async fn open(&self, tenant: &Tenant) -> Result<Arc<dyn TenantStore>>;

    /// Creates a platform superuser. Conflict when the username is taken.
    async fn create_superuser(
        &self,
        username: &Username,
        email: &Email,
        password_hash: &str,
    ) -> Result<Superuser>;

    /// A superuser and its password hash, by case-folded username.
    async fn superuser_credentials(
        &self,
        username_key: &str,
    ) -> Result<Option<(Superuser, String)>>;

    /// Records an entry of the audit log; returns it with its id, higher
    /// than every id handed out before.
    async fn append_audit(&self, entry: &NewAuditEntry) -> Result<AuditEntry>;

    /// Audit entries [matching](AuditQuery::matches) `query`, newest
    /// (highest id) first, at most its limit.
    async fn audit_log(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>>;

    /// The superuser with `id`.
    async fn superuser(&self, id: i64) -> Result<Option<Superuser>>;

    /// Activates or deactivates a superuser; deactivating an active one
    /// bumps its token version. NotFound (superuser) if absent.
    async fn set_superuser_active(&self, id: i64, active: bool) -> Result<Superuser>;

    /// Replaces a superuser's password hash and bumps its token version.
    /// NotFound (superuser) if absent.
    async fn set_superuser_password(&self, id: i64, password_hash: &str) -> Result<()>;

    /// Deletes a superuser. NotFound (superuser) if absent.
    async fn delete_superuser(&self, id: i64) -> Result<()>;

    /// Brings shared storage and every tenant's storage to the newest schema
    /// version, reporting progress after each tenant and going on past
    /// failures. Backends run the tenants through
    /// [`crate::migration::migrate_fleet`].
    async fn migrate(&self, progress: ProgressFn<'_>) -> Result<MigrationReport>;

    /// Checks that the backend answers.
    async fn ping(&self) -> Result<()>;

    /// How many parts of the storage (shared storage, tenants) are behind
    /// the newest schema version this build knows, waiting for
    /// [`Store::migrate`]; 0 when everything is current. Parts brought
    /// forward when they are opened (SQLite's tenant files) are not
    /// counted. Readiness checks (`/readyz`) read it.
    async fn pending_migrations(&self) -> Result<u64>;
}

/// Whatever holds one tenant's storage handle: a [`Session`](crate::Session),
/// or the `Arc<dyn TenantStore>` a job's context gives. The backends'
/// scoped access for host applications takes one.
pub trait TenantScope {
    /// The tenant's storage handle.
    fn tenant_store(&self) -> &dyn TenantStore;
}

impl TenantScope for Arc<dyn TenantStore> {
    fn tenant_store(&self) -> &dyn TenantStore {
        self.as_ref()
    }
}

impl TenantScope for dyn TenantStore {
    fn tenant_store(&self) -> &dyn TenantStore {
        self
    }
}

/// Everything stored for one tenant, reachable only through this handle.
#[async_trait]
pub trait TenantStore: Debug + Send + Sync + 'static {
    /// The tenant this handle is scoped to.
    fn tenant_id(&self) -> TenantId;

    /// The handle as [`Any`](std::any::Any), so that its backend's crate
    /// can reach its own type: that is how `saas_store_postgres::with_tenant_tx`
    /// and `saas_store_sqlite::with_tenant_tx` give a host application the
    /// tenant's storage without taking a schema name or a path.
    fn as_any(&self) -> &dyn std::any::Any;

    /// The SQL dialect behind this handle, for host code serving either
    /// backend that must pick the SQL it runs through `with_tenant_tx`;
    /// `None` for storage without SQL (a test double).
    fn dialect(&self) -> Option<crate::apps::Dialect> {
        None
    }

    // --- users -----------------------------------------------------------

    /// Creates a user if fewer than `max_users` exist (checked atomically).
    /// Conflict (user/username) if the case-folded username is taken.
    async fn create_user(&self, user: &NewUserRecord, max_users: Option<u64>) -> Result<User>;

    /// The user with `id`.
    async fn user(&self, id: UserId) -> Result<Option<User>>;

    /// A user and its password hash, by case-folded username.
    async fn credentials(&self, username_key: &str) -> Result<Option<(User, String)>>;

    /// Users, by id.
    async fn list_users(&self, page: PageRequest) -> Result<Page<User>>;

    /// Writes only the fields `changes` names (none: writes nothing) and
    /// answers the user; deactivating bumps the token version. NotFound if
    /// absent.
    async fn update_user(&self, id: UserId, changes: &UserChanges) -> Result<User>;

    /// Replaces the password hash and bumps the token version.
    async fn set_password(&self, id: UserId, password_hash: &str) -> Result<()>;

    /// Replaces the password hash with `new` if it is still `current`
    /// (compare and swap), without bumping the token version: the password
    /// is the same, only its hash is renewed (a Django hash becoming
    /// argon2id at the first login). Returns whether it was replaced; a
    /// concurrent password change wins.
    async fn replace_password_hash(&self, id: UserId, current: &str, new: &str) -> Result<bool>;

    /// Records a successful login.
    async fn record_login(&self, id: UserId, at: DateTime<Utc>) -> Result<()>;

    /// Number of users (active or not).
    async fn count_users(&self) -> Result<u64>;

    /// The ids of every user, project, membership and task, for verifying
    /// an import.
    async fn inventory(&self) -> Result<Inventory>;

    // --- refresh tokens --------------------------------------------------

    /// Remembers an issued refresh token.
    async fn insert_refresh_token(&self, token: &RefreshTokenRecord) -> Result<()>;

    /// Rotates the refresh token `used` into `successor`, in one
    /// transaction: if `used` is unused (and of `successor`'s family and
    /// user), marks it used and stores `successor`; if it was used before,
    /// revokes its whole family ([`RefreshOutcome::Reused`]); unknown,
    /// revoked or of another family or user, [`RefreshOutcome::Invalid`].
    /// Rotations and revocations of one family never interleave, so a
    /// revocation never misses a successor.
    async fn rotate_refresh_token(
        &self,
        used: Uuid,
        successor: &RefreshTokenRecord,
    ) -> Result<RefreshOutcome>;

    /// Forgets refresh tokens that expired before `before`.
    async fn prune_refresh_tokens(&self, before: DateTime<Utc>) -> Result<u64>;

    // --- projects --------------------------------------------------------

    /// Creates a project if fewer than `max_projects` exist (checked atomically).
    async fn create_project(
        &self,
        project: &NewProjectRecord,
        max_projects: Option<u64>,
    ) -> Result<Project>;

    /// The project with `id`, with owner and members.
    async fn project(&self, id: ProjectId) -> Result<Option<Project>>;

    /// What [`TenantStore::project`] answers for `id` and, when asked,
    /// what [`TenantStore::user`] answers for `user`: the two reads a task
    /// write checks its destination and assignee with, together (one
    /// statement where the backend can).
    async fn project_and_user(
        &self,
        id: ProjectId,
        user: Option<UserId>,
    ) -> Result<(Option<Project>, Option<User>)> {
        let project = self.project(id).await?;
        let user = match user {
            Some(u) => self.user(u).await?,
            None => None,
        };
        Ok((project, user))
    }

    /// The project with `id` (as [`TenantStore::project`] answers) and its
    /// tasks counted as [`TenantStore::task_counts`] counts
    /// [`TaskQuery::in_project`] at `now`, read together (one statement
    /// where the backend can): a project's statistics.
    async fn project_with_counts(
        &self,
        id: ProjectId,
        now: DateTime<Utc>,
    ) -> Result<Option<(Project, TaskCounts)>> {
        let Some(project) = self.project(id).await? else {
            return Ok(None);
        };
        let counts = self.task_counts(&TaskQuery::in_project(id), now).await?;
        Ok(Some((project, counts)))
    }

    /// Projects visible in `scope`, newest first.
    async fn list_projects(&self, scope: Scope, page: PageRequest) -> Result<Page<Project>>;

    /// Writes only the fields `changes` names, and `updated_at`. NotFound
    /// if absent.
    async fn update_project(&self, id: ProjectId, changes: &ProjectChanges) -> Result<Project>;

    /// Deletes a project with its tasks and memberships. NotFound if absent.
    async fn delete_project(&self, id: ProjectId) -> Result<()>;

    /// Adds a member (idempotent). NotFound (project or user) if either is absent.
    async fn add_member(&self, project: ProjectId, user: UserId) -> Result<Project>;

    /// Removes a member (idempotent). NotFound (project, then user) if either
    /// is absent.
    async fn remove_member(&self, project: ProjectId, user: UserId) -> Result<Project>;

    /// Projects visible in `scope`, counted by status.
    async fn project_counts(&self, scope: Scope) -> Result<ProjectCounts>;

    // --- tasks -----------------------------------------------------------

    /// Creates a task if its project has fewer than `max_per_project` tasks
    /// (checked atomically). NotFound (project) if the project is absent.
    async fn create_task(&self, task: &NewTaskRecord, max_per_project: Option<u64>)
    -> Result<Task>;

    /// The task with `id`.
    async fn task(&self, id: TaskId) -> Result<Option<Task>>;

    /// The task with `id` and its project (with owner and members), read
    /// together (one statement where the backend can): what a request
    /// about a task checks visibility and permissions with.
    async fn task_with_project(&self, id: TaskId) -> Result<Option<(Task, Project)>> {
        let Some(task) = self.task(id).await? else {
            return Ok(None);
        };
        Ok(self.project(task.project_id).await?.map(|p| (task, p)))
    }

    /// Tasks matching `query` (see [`TaskQuery::matches`]), ordered as it says.
    async fn list_tasks(&self, query: &TaskQuery, page: PageRequest) -> Result<Page<Task>>;

    /// The items of [`TenantStore::list_tasks`] without counting every
    /// match, for callers that do not show the count.
    async fn task_page(&self, query: &TaskQuery, page: PageRequest) -> Result<Vec<Task>> {
        Ok(self.list_tasks(query, page).await?.items)
    }

    /// Writes only the fields `changes` names, and `updated_at`. NotFound if
    /// absent; NotFound (user) for an assignee that is not. A task moved to
    /// another project counts against `max_per_project` there (checked
    /// atomically, as [`TenantStore::create_task`] does); NotFound (project)
    /// if that project is absent.
    async fn update_task(
        &self,
        id: TaskId,
        changes: &TaskChanges,
        max_per_project: Option<u64>,
    ) -> Result<Task>;

    /// Deletes a task. NotFound if absent.
    async fn delete_task(&self, id: TaskId) -> Result<()>;

    /// Tasks matching `query`'s filters, counted by status and priority, with
    /// overdue counted as of `now`. Ordering is ignored.
    async fn task_counts(&self, query: &TaskQuery, now: DateTime<Utc>) -> Result<TaskCounts>;

    /// Everything the dashboard shows, with overdue counted as of `now`:
    /// the projects in `query.scope` counted by status, every project
    /// counted, the task counts of `query.tasks` and `query.mine`, the page
    /// `query.recent_page` of `query.recent`, and the users counted. Read
    /// together (one statement where the backend can).
    async fn dashboard(
        &self,
        query: &DashboardQuery,
        now: DateTime<Utc>,
    ) -> Result<DashboardCounts> {
        dashboard_by_parts(self, query, now).await
    }

    /// Up to `limit` tasks of `project` whose id is above `after` (`None`:
    /// from the first), by id: a walk by key over a project's tasks, each
    /// page as cheap as the first (reports read a project this way).
    async fn project_tasks_after(
        &self,
        project: ProjectId,
        after: Option<TaskId>,
        limit: u32,
    ) -> Result<Vec<Task>>;

    /// Deletes done tasks completed before `cutoff`; returns how many.
    async fn delete_done_tasks_before(&self, cutoff: DateTime<Utc>) -> Result<u64>;
}

/// [`TenantStore::dashboard`] read one part after the other, through the
/// store's other methods: what the method does unless a backend reads it
/// together, and what a backend that does is tested against.
pub async fn dashboard_by_parts<S: TenantStore + ?Sized>(
    store: &S,
    query: &DashboardQuery,
    now: DateTime<Utc>,
) -> Result<DashboardCounts> {
    let projects = store.project_counts(query.scope).await?;
    let tasks = store.task_counts(&query.tasks, now).await?;
    let mine = store.task_counts(&query.mine, now).await?;
    let recent = store.task_page(&query.recent, query.recent_page).await?;
    let users = store.count_users().await?;
    let all_projects = match query.scope {
        Scope::All => projects.total,
        Scope::InvolvedIn(_) => store.project_counts(Scope::All).await?.total,
    };
    Ok(DashboardCounts {
        projects,
        all_projects,
        tasks,
        mine,
        recent,
        users,
    })
}
