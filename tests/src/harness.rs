//! What every case needs: a [`Saas`] over the fixture's store, tenants with
//! fresh random names, users created cheaply, snapshots of a tenant's state,
//! and assertions on error variants.

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use saas_core::auth::Passwords;
use saas_core::commands::{NewProject, NewTask, NewUser, Registration};
use saas_core::plans::{Plan, PlanCatalog};
use saas_core::projects::{Project, Scope, Task, TaskOrderField, TaskOrdering, TaskQuery};
use saas_core::store::{PageRequest, Store, TenantStore};
use saas_core::tenancy::Tenant;
use saas_core::users::{Email, NewUserRecord, Role, User, UserId, Username};
use saas_core::{Error, Saas, Session};
use tokio::sync::OnceCell;

/// The token-signing secret of every test service (more than 32 bytes).
pub const SECRET: &[u8] = b"conformance-suite token-signing secret, 56 bytes long!!";

/// The password of every user the suite creates.
pub const PASSWORD: &str = "securepassword123";

/// A fresh tenant slug: `t` and a random UUID's 32 hex digits (no
/// underscore, so it can also be a hostname's label).
pub fn unique_slug() -> String {
    crate::records::unique("t")
}

/// The primary domain the suite gives the tenant with `slug`.
pub fn domain_for(slug: &str) -> String {
    format!("{slug}.conformance.test")
}

/// A valid registration for `slug` on `plan` (the catalog default when `None`).
pub fn registration(slug: &str, plan: Option<&str>) -> Registration {
    Registration {
        company_name: format!("Company {slug}"),
        schema_name: slug.to_owned(),
        domain_url: domain_for(slug),
        admin_username: "admin".to_owned(),
        admin_email: format!("admin@{}", domain_for(slug)),
        admin_password: PASSWORD.to_owned(),
        subscription_plan: plan.map(str::to_owned),
    }
}

/// A service over `store` with the built-in plan catalog.
pub fn saas(store: Arc<dyn Store>) -> Saas {
    saas_with_plans(store, PlanCatalog::builtin())
}

/// A service over `store` with `plans`.
pub fn saas_with_plans(store: Arc<dyn Store>, plans: PlanCatalog) -> Saas {
    Saas::builder(store)
        .secret(SECRET)
        .plans(plans)
        .build()
        .expect("the test secret is long enough")
}

/// A small catalog for limit tests: `tiny` 3 users / 2 projects / 3 tasks per
/// project, `ten` 10 / 10 / 10, and `roomy` unlimited (the default).
pub fn small_catalog() -> PlanCatalog {
    PlanCatalog::new(
        [
            Plan::new("tiny", Some(3), Some(2), Some(3), false),
            Plan::new("ten", Some(10), Some(10), Some(10), true),
            Plan::new("roomy", None, None, None, true),
        ],
        "roomy",
    )
    .expect("the small catalog is well-formed")
}

static PASSWORD_HASH: OnceCell<String> = OnceCell::const_new();

/// An argon2id hash of [`PASSWORD`], computed once per process, so users
/// can be created without paying for a hash each time.
pub async fn password_hash() -> String {
    PASSWORD_HASH
        .get_or_init(|| async {
            Passwords::new()
                .hash(PASSWORD)
                .await
                .expect("hashing works")
        })
        .await
        .clone()
}

/// A date in 2030 (`day` days after January 1st).
pub fn day(day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2030, 1, 1)
        .and_then(|d| d.checked_add_days(chrono::Days::new(u64::from(day))))
        .expect("a valid date")
}

/// A UTC time at midnight of January 1st of `year`.
pub fn year(year: i32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(year, 1, 1, 0, 0, 0)
        .single()
        .expect("a valid time")
}

/// A registered tenant and its owner, with helpers to act in it.
#[derive(Debug, Clone)]
pub struct World {
    /// The service.
    pub saas: Saas,
    /// The tenant as last read.
    pub tenant: Tenant,
    /// The admin created at registration.
    pub owner: User,
}

impl World {
    /// Registers a tenant with a fresh slug on `plan`.
    pub async fn register(saas: &Saas, plan: Option<&str>) -> World {
        let slug = unique_slug();
        let (tenant, owner) = saas
            .register(registration(&slug, plan))
            .await
            .expect("registration succeeds");
        World {
            saas: saas.clone(),
            tenant,
            owner,
        }
    }

    /// The tenant's storage handle.
    pub async fn store(&self) -> Arc<dyn TenantStore> {
        self.saas
            .store()
            .open(&self.tenant)
            .await
            .expect("the tenant opens")
    }

    /// Rereads the tenant from the catalog (after a plan or status change).
    pub async fn reload(&mut self) {
        self.tenant = self
            .saas
            .store()
            .tenant(self.tenant.id)
            .await
            .expect("the catalog answers")
            .expect("the tenant exists");
    }

    /// A session acting as `user`.
    pub async fn session(&self, user: UserId) -> Session {
        self.saas
            .session(&self.tenant, user)
            .await
            .expect("the user has a session")
    }

    /// A session acting as the owner.
    pub async fn owner_session(&self) -> Session {
        self.session(self.owner.id).await
    }

    /// Creates a user directly in storage (no plan limit, a precomputed hash),
    /// for cases about something else than user creation.
    pub async fn seed_user(&self, role: Role, username: &str) -> User {
        let record = NewUserRecord {
            username: Username::parse(username).expect("a valid username"),
            email: Email::parse(&format!("{username}@example.com")).expect("a valid email"),
            password_hash: password_hash().await,
            first_name: String::new(),
            last_name: String::new(),
            role,
            department: String::new(),
            is_owner: false,
            date_joined: self.saas.now(),
        };
        self.store()
            .await
            .create_user(&record, None)
            .await
            .expect("seeding a user succeeds")
    }

    /// Creates a user directly in storage and opens a session as it.
    pub async fn seed_session(&self, role: Role, username: &str) -> (User, Session) {
        let u = self.seed_user(role, username).await;
        let s = self.session(u.id).await;
        (u, s)
    }

    /// Everything stored in the tenant, for "nothing changed" checks.
    pub async fn snapshot(&self) -> Snapshot {
        snapshot(&*self.store().await).await
    }
}

/// Every user, project and task of a tenant (tasks by id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// Users by id.
    pub users: Vec<User>,
    /// Projects, newest first.
    pub projects: Vec<Project>,
    /// Tasks by id.
    pub tasks: Vec<Task>,
}

/// Reads every user, project and task through `store`, page by page.
pub async fn snapshot(store: &dyn TenantStore) -> Snapshot {
    let mut users = Vec::new();
    let mut projects = Vec::new();
    let mut tasks = Vec::new();
    let mut query = TaskQuery::new(Scope::All);
    query.ordering = TaskOrdering {
        field: TaskOrderField::Id,
        descending: false,
    };
    for page in 1.. {
        let p = PageRequest::new(Some(page), Some(PageRequest::MAX_SIZE)).expect("a valid page");
        let u = store.list_users(p).await.expect("list_users");
        let pr = store
            .list_projects(Scope::All, p)
            .await
            .expect("list_projects");
        let t = store.list_tasks(&query, p).await.expect("list_tasks");
        let done = u.items.is_empty() && pr.items.is_empty() && t.items.is_empty();
        users.extend(u.items);
        projects.extend(pr.items);
        tasks.extend(t.items);
        if done {
            break;
        }
    }
    Snapshot {
        users,
        projects,
        tasks,
    }
}

/// A new user with `username`, a matching email, [`PASSWORD`] and `role`.
pub fn new_user(username: &str, role: Option<Role>) -> NewUser {
    NewUser {
        username: username.to_owned(),
        email: format!("{}@example.com", username.to_ascii_lowercase()),
        password: PASSWORD.to_owned(),
        role,
        ..NewUser::default()
    }
}

/// A new project named `name`, status and dates left to defaults.
pub fn new_project(name: &str) -> NewProject {
    NewProject {
        name: name.to_owned(),
        ..NewProject::default()
    }
}

/// A new task titled `title` in `project`, everything else defaulted.
pub fn new_task(project: saas_core::projects::ProjectId, title: &str) -> NewTask {
    NewTask {
        project,
        title: title.to_owned(),
        description: String::new(),
        status: None,
        priority: None,
        assigned_to_id: None,
        due_date: None,
    }
}

/// The largest page, for lists that fit on one.
pub fn all() -> PageRequest {
    PageRequest::new(Some(1), Some(PageRequest::MAX_SIZE)).expect("a valid page")
}

/// Panics unless `result` is [`Error::Invalid`] naming `field`.
#[track_caller]
pub fn assert_invalid<T: std::fmt::Debug>(result: Result<T, Error>, field: &str) {
    match result {
        Err(Error::Invalid { fields }) if fields.contains_key(field) => {}
        other => panic!("expected Invalid naming {field:?}, got {other:?}"),
    }
}

/// Asserts that `$result` is an `Err` matching `$pattern` (an [`Error`] pattern).
#[macro_export]
macro_rules! assert_err {
    ($result:expr, $pattern:pat $(if $guard:expr)? $(,)?) => {
        match $result {
            Err($pattern) $(if $guard)? => {}
            other => panic!(
                "expected Err({}), got {:?}",
                stringify!($pattern),
                other
            ),
        }
    };
}
