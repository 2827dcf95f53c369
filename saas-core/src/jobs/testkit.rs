//! An in-memory `Store` for the jobs runtime's unit tests: just enough of
//! the storage contract (tenants, users, refresh tokens, projects, tasks)
//! for the built-in jobs, following the semantics in `store.rs`.
//! Operations the jobs never use answer `Error::State`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::clock::Clock;
use crate::error::{Entity, Error, Resource, Result};
use crate::projects::{
    NewProjectRecord, NewTaskRecord, Project, ProjectChanges, ProjectCounts, ProjectId, Scope,
    Task, TaskChanges, TaskCounts, TaskId, TaskOrderField, TaskQuery,
};
use crate::store::{
    MigrationReport, Page, PageRequest, ProgressFn, RefreshOutcome, RefreshTokenRecord, Store,
    Superuser, TenantStore,
};
use crate::tenancy::{Domain, Hostname, NewTenant, Slug, Tenant, TenantId, TenantStatus};
use crate::users::{Email, NewUserRecord, User, UserChanges, UserId, Username};

const UNSUPPORTED: &str = "not supported by the jobs test store";

/// A clock tests can set.
#[derive(Debug)]
pub(crate) struct ManualClock(Mutex<DateTime<Utc>>);

impl ManualClock {
    pub(crate) fn new(t: DateTime<Utc>) -> Self {
        ManualClock(Mutex::new(t))
    }

    pub(crate) fn set(&self, t: DateTime<Utc>) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = t;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[derive(Debug, Default)]
struct Catalog {
    tenants: BTreeMap<TenantId, Tenant>,
    data: BTreeMap<TenantId, Arc<FakeTenant>>,
}

/// The fake catalog.
#[derive(Debug, Default)]
pub(crate) struct FakeStore {
    catalog: Mutex<Catalog>,
}

impl FakeStore {
    fn cat(&self) -> std::sync::MutexGuard<'_, Catalog> {
        self.catalog.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl Store for FakeStore {
    async fn create_tenant(&self, t: &NewTenant, admin: &NewUserRecord) -> Result<(Tenant, User)> {
        let tenant = t.to_tenant("default");
        let data = Arc::new(FakeTenant {
            id: t.id,
            data: Mutex::default(),
        });
        let user = data.create_user(admin, None).await?;
        let mut cat = self.cat();
        if cat.tenants.values().any(|x| x.slug == t.slug) {
            return Err(Error::Conflict {
                entity: Entity::Tenant,
                field: "slug",
            });
        }
        cat.tenants.insert(t.id, tenant.clone());
        cat.data.insert(t.id, data);
        Ok((tenant, user))
    }

    async fn tenant(&self, id: TenantId) -> Result<Option<Tenant>> {
        Ok(self.cat().tenants.get(&id).cloned())
    }

    async fn tenant_by_slug(&self, slug: &Slug) -> Result<Option<Tenant>> {
        Ok(self
            .cat()
            .tenants
            .values()
            .find(|t| &t.slug == slug)
            .cloned())
    }

    async fn tenant_by_domain(&self, _: &Hostname) -> Result<Option<Tenant>> {
        Ok(None)
    }

    async fn list_tenants(&self, page: PageRequest) -> Result<Page<Tenant>> {
        let all: Vec<Tenant> = self.cat().tenants.values().cloned().collect();
        Ok(paginate(all, page))
    }

    async fn domains(&self, _: TenantId) -> Result<Vec<Domain>> {
        Ok(Vec::new())
    }

    async fn add_domain(&self, _: TenantId, _: &Hostname, _: bool) -> Result<Domain> {
        Err(Error::State(UNSUPPORTED))
    }

    async fn remove_domain(&self, _: TenantId, _: &Hostname) -> Result<()> {
        Err(Error::State(UNSUPPORTED))
    }

    async fn set_plan(&self, id: TenantId, plan: &str) -> Result<Tenant> {
        let mut cat = self.cat();
        let t = cat
            .tenants
            .get_mut(&id)
            .ok_or(Error::not_found(Entity::Tenant))?;
        t.plan = plan.to_owned();
        Ok(t.clone())
    }

    async fn set_status(&self, id: TenantId, status: TenantStatus) -> Result<Tenant> {
        let mut cat = self.cat();
        let t = cat
            .tenants
            .get_mut(&id)
            .ok_or(Error::not_found(Entity::Tenant))?;
        t.status = status;
        Ok(t.clone())
    }

    async fn delete_tenant(&self, id: TenantId) -> Result<()> {
        let mut cat = self.cat();
        cat.data.remove(&id);
        cat.tenants
            .remove(&id)
            .map(|_| ())
            .ok_or(Error::not_found(Entity::Tenant))
    }

    async fn open(&self, tenant: &Tenant) -> Result<Arc<dyn TenantStore>> {
        self.cat()
            .data
            .get(&tenant.id)
            .cloned()
            .map(|d| d as Arc<dyn TenantStore>)
            .ok_or(Error::not_found(Entity::Tenant))
    }

    async fn create_superuser(&self, _: &Username, _: &Email, _: &str) -> Result<Superuser> {
        Err(Error::State(UNSUPPORTED))
    }

    async fn superuser_credentials(&self, _: &str) -> Result<Option<(Superuser, String)>> {
        Ok(None)
    }

    async fn migrate(&self, _: ProgressFn<'_>) -> Result<MigrationReport> {
        Ok(MigrationReport::default())
    }

    async fn ping(&self) -> Result<()> {
        Ok(())
    }
}

fn paginate<T>(all: Vec<T>, page: PageRequest) -> Page<T> {
    let count = all.len() as u64;
    let items = all
        .into_iter()
        .skip(page.offset() as usize)
        .take(page.page_size() as usize)
        .collect();
    Page { count, items }
}

#[derive(Debug, Default)]
struct TenantData {
    users: BTreeMap<UserId, (User, String)>,
    tokens: Vec<RefreshTokenRecord>,
    projects: BTreeMap<ProjectId, (NewProjectRecord, Vec<UserId>)>,
    tasks: BTreeMap<TaskId, Task>,
    next_id: i64,
}

/// One fake tenant's data.
#[derive(Debug)]
pub(crate) struct FakeTenant {
    id: TenantId,
    data: Mutex<TenantData>,
}

impl FakeTenant {
    fn d(&self) -> std::sync::MutexGuard<'_, TenantData> {
        self.data.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl TenantData {
    fn next(&mut self) -> i64 {
        self.next_id += 1;
        self.next_id
    }

    fn project(&self, id: ProjectId) -> Option<Project> {
        let (p, members) = self.projects.get(&id)?;
        let summary = |u: &UserId| self.users.get(u).map(|(u, _)| u.summary());
        Some(Project {
            id,
            name: p.name.clone(),
            description: p.description.clone(),
            status: p.status,
            start_date: p.start_date,
            end_date: p.end_date,
            owner: summary(&p.owner)?,
            members: members.iter().filter_map(summary).collect(),
            created_at: p.created_at,
            updated_at: p.created_at,
        })
    }

    fn visible(&self, scope: Scope, project: ProjectId) -> bool {
        match scope {
            Scope::All => true,
            Scope::InvolvedIn(u) => self
                .projects
                .get(&project)
                .is_some_and(|(p, m)| p.owner == u || m.contains(&u)),
        }
    }

    fn tasks(&self, q: &TaskQuery) -> Vec<Task> {
        let mut v: Vec<Task> = self
            .tasks
            .values()
            .filter(|t| self.visible(q.scope, t.project_id) && q.matches(t))
            .cloned()
            .collect();
        if q.ordering.field == TaskOrderField::Id && q.ordering.descending {
            v.reverse();
        } else if q.ordering.field != TaskOrderField::Id {
            v.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(a.id.cmp(&b.id)));
        }
        v
    }
}

#[async_trait]
impl TenantStore for FakeTenant {
    fn tenant_id(&self) -> TenantId {
        self.id
    }

    async fn create_user(&self, u: &NewUserRecord, max: Option<u64>) -> Result<User> {
        let mut d = self.d();
        if max.is_some_and(|m| d.users.len() as u64 >= m) {
            return Err(Error::PlanLimitExceeded {
                resource: Resource::Users,
                limit: max.unwrap_or_default(),
                plan: String::new(),
            });
        }
        if d.users
            .values()
            .any(|(x, _)| x.username.key() == u.username.key())
        {
            return Err(Error::Conflict {
                entity: Entity::User,
                field: "username",
            });
        }
        let id = UserId(d.next());
        let user = User {
            id,
            username: u.username.clone(),
            email: u.email.clone(),
            first_name: u.first_name.clone(),
            last_name: u.last_name.clone(),
            role: u.role,
            department: u.department.clone(),
            is_active: true,
            is_owner: u.is_owner,
            last_login: None,
            date_joined: u.date_joined,
            token_version: 0,
        };
        d.users.insert(id, (user.clone(), u.password_hash.clone()));
        Ok(user)
    }

    async fn user(&self, id: UserId) -> Result<Option<User>> {
        Ok(self.d().users.get(&id).map(|(u, _)| u.clone()))
    }

    async fn credentials(&self, key: &str) -> Result<Option<(User, String)>> {
        Ok(self
            .d()
            .users
            .values()
            .find(|(u, _)| u.username.key() == key)
            .cloned())
    }

    async fn list_users(&self, page: PageRequest) -> Result<Page<User>> {
        let all = self.d().users.values().map(|(u, _)| u.clone()).collect();
        Ok(paginate(all, page))
    }

    async fn update_user(&self, id: UserId, c: &UserChanges) -> Result<User> {
        let mut d = self.d();
        let (u, _) = d.users.get_mut(&id).ok_or(Error::not_found(Entity::User))?;
        if u.is_active && !c.is_active {
            u.token_version += 1;
        }
        u.email = c.email.clone();
        u.is_active = c.is_active;
        Ok(u.clone())
    }

    async fn set_password(&self, _: UserId, _: &str) -> Result<()> {
        Err(Error::State(UNSUPPORTED))
    }

    async fn record_login(&self, id: UserId, at: DateTime<Utc>) -> Result<()> {
        if let Some((u, _)) = self.d().users.get_mut(&id) {
            u.last_login = Some(at);
        }
        Ok(())
    }

    async fn count_users(&self) -> Result<u64> {
        Ok(self.d().users.len() as u64)
    }

    async fn insert_refresh_token(&self, t: &RefreshTokenRecord) -> Result<()> {
        self.d().tokens.push(t.clone());
        Ok(())
    }

    async fn consume_refresh_token(&self, _: Uuid) -> Result<RefreshOutcome> {
        Ok(RefreshOutcome::Invalid)
    }

    async fn prune_refresh_tokens(&self, before: DateTime<Utc>) -> Result<u64> {
        let mut d = self.d();
        let n = d.tokens.len();
        d.tokens.retain(|t| t.expires_at >= before);
        Ok((n - d.tokens.len()) as u64)
    }

    async fn create_project(&self, p: &NewProjectRecord, _: Option<u64>) -> Result<Project> {
        let mut d = self.d();
        if !d.users.contains_key(&p.owner) {
            return Err(Error::not_found(Entity::User));
        }
        let id = ProjectId(d.next());
        d.projects.insert(id, (p.clone(), Vec::new()));
        d.project(id).ok_or(Error::not_found(Entity::Project))
    }

    async fn project(&self, id: ProjectId) -> Result<Option<Project>> {
        Ok(self.d().project(id))
    }

    async fn list_projects(&self, _: Scope, _: PageRequest) -> Result<Page<Project>> {
        Err(Error::State(UNSUPPORTED))
    }

    async fn update_project(&self, _: ProjectId, _: &ProjectChanges) -> Result<Project> {
        Err(Error::State(UNSUPPORTED))
    }

    async fn delete_project(&self, _: ProjectId) -> Result<()> {
        Err(Error::State(UNSUPPORTED))
    }

    async fn add_member(&self, project: ProjectId, user: UserId) -> Result<Project> {
        let mut d = self.d();
        if !d.users.contains_key(&user) {
            return Err(Error::not_found(Entity::User));
        }
        let (_, members) = d
            .projects
            .get_mut(&project)
            .ok_or(Error::not_found(Entity::Project))?;
        if !members.contains(&user) {
            members.push(user);
            members.sort();
        }
        d.project(project).ok_or(Error::not_found(Entity::Project))
    }

    async fn remove_member(&self, _: ProjectId, _: UserId) -> Result<Project> {
        Err(Error::State(UNSUPPORTED))
    }

    async fn project_counts(&self, _: Scope) -> Result<ProjectCounts> {
        Err(Error::State(UNSUPPORTED))
    }

    async fn create_task(&self, t: &NewTaskRecord, _: Option<u64>) -> Result<Task> {
        let mut d = self.d();
        if !d.projects.contains_key(&t.project_id) {
            return Err(Error::not_found(Entity::Project));
        }
        let summary = |id: &UserId| {
            d.users
                .get(id)
                .map(|(u, _)| u.summary())
                .ok_or(Error::not_found(Entity::User))
        };
        let assigned_to = t.assigned_to.as_ref().map(summary).transpose()?;
        let created_by = summary(&t.created_by)?;
        let id = TaskId(d.next());
        let task = Task {
            id,
            project_id: t.project_id,
            title: t.title.clone(),
            description: t.description.clone(),
            status: t.status,
            priority: t.priority,
            assigned_to,
            created_by,
            due_date: t.due_date,
            completed_at: t.completed_at,
            created_at: t.created_at,
            updated_at: t.created_at,
        };
        d.tasks.insert(id, task.clone());
        Ok(task)
    }

    async fn task(&self, id: TaskId) -> Result<Option<Task>> {
        Ok(self.d().tasks.get(&id).cloned())
    }

    async fn list_tasks(&self, q: &TaskQuery, page: PageRequest) -> Result<Page<Task>> {
        Ok(paginate(self.d().tasks(q), page))
    }

    async fn update_task(&self, id: TaskId, c: &TaskChanges) -> Result<Task> {
        let mut d = self.d();
        let t = d.tasks.get_mut(&id).ok_or(Error::not_found(Entity::Task))?;
        t.status = c.status;
        t.completed_at = c.completed_at;
        t.due_date = c.due_date;
        t.updated_at = c.updated_at;
        Ok(t.clone())
    }

    async fn delete_task(&self, id: TaskId) -> Result<()> {
        self.d()
            .tasks
            .remove(&id)
            .map(|_| ())
            .ok_or(Error::not_found(Entity::Task))
    }

    async fn task_counts(&self, q: &TaskQuery, now: DateTime<Utc>) -> Result<TaskCounts> {
        let mut c = TaskCounts::default();
        for t in self.d().tasks(q) {
            c.add(&t, now);
        }
        Ok(c)
    }

    async fn delete_done_tasks_before(&self, cutoff: DateTime<Utc>) -> Result<u64> {
        let mut d = self.d();
        let n = d.tasks.len();
        d.tasks.retain(|_, t| {
            !(t.status == crate::projects::TaskStatus::Done
                && t.completed_at.is_some_and(|c| c < cutoff))
        });
        Ok((n - d.tasks.len()) as u64)
    }
}
