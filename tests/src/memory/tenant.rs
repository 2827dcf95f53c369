//! One tenant's data in memory: [`MemoryTenant`], the in-memory
//! [`TenantStore`].
//!
//! Rows keep ids, as a database's would: a task names its project, its
//! assignee and its creator, and the summaries a read shows are joined in
//! at read time, so a user's later changes show everywhere at once.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;
use std::sync::atomic::{AtomicBool, Ordering as AtomicOrdering};
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use saas_core::error::{Entity, Error, Resource, Result};
use saas_core::import::{Inventory, TenantImport};
use saas_core::projects::{
    NewProjectRecord, NewTaskRecord, Priority, Project, ProjectCounts, ProjectId, ProjectStatus,
    Scope, Task, TaskCounts, TaskId, TaskOrderField, TaskQuery, TaskStatus,
};
use saas_core::query::OrderKey;
use saas_core::store::{Page, PageRequest, RefreshOutcome, RefreshTokenRecord, TenantStore};
use saas_core::tenancy::TenantId;
use saas_core::updates::{ProjectChanges, TaskChanges, UserChanges};
use saas_core::users::{NewUserRecord, User, UserId, UserSummary};
use uuid::Uuid;

use super::paginate;

/// A refresh token as remembered.
#[derive(Debug, Clone)]
struct TokenRow {
    family: Uuid,
    user_id: UserId,
    expires_at: DateTime<Utc>,
    used: bool,
    revoked: bool,
}

/// A project without its joins.
#[derive(Debug, Clone)]
struct ProjectRow {
    name: String,
    description: String,
    status: ProjectStatus,
    start_date: Option<NaiveDate>,
    end_date: Option<NaiveDate>,
    owner: UserId,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

/// A task without its joins.
#[derive(Debug, Clone)]
struct TaskRow {
    project_id: ProjectId,
    title: String,
    description: String,
    status: TaskStatus,
    priority: Priority,
    assigned_to: Option<UserId>,
    created_by: UserId,
    due_date: Option<DateTime<Utc>>,
    completed_at: Option<DateTime<Utc>>,
    /// Kept as the SQL stores' triggers keep it (`Task::started_at`).
    started_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

/// A new task's `started_at`: its creation time unless it is to do.
fn started_at(status: TaskStatus, created_at: DateTime<Utc>) -> Option<DateTime<Utc>> {
    (status != TaskStatus::Todo).then_some(created_at)
}

/// Everything a tenant holds. Ids are never reused, as with a database's
/// sequences.
#[derive(Debug, Default)]
struct Data {
    /// By id: the user and its password hash.
    users: BTreeMap<UserId, (User, String)>,
    tokens: BTreeMap<Uuid, TokenRow>,
    projects: BTreeMap<ProjectId, ProjectRow>,
    /// (project, user) pairs.
    members: BTreeSet<(ProjectId, UserId)>,
    tasks: BTreeMap<TaskId, TaskRow>,
    last_user: i64,
    last_project: i64,
    last_task: i64,
}

/// A handle to one tenant's data in a [`super::MemoryStore`].
#[derive(Debug)]
pub struct MemoryTenant {
    id: TenantId,
    /// Set when the tenant is deleted, so holders of the handle fail
    /// closed instead of writing into data nobody can reach.
    closed: AtomicBool,
    data: Mutex<Data>,
}

impl MemoryTenant {
    pub(super) fn new(id: TenantId) -> Self {
        MemoryTenant {
            id,
            closed: AtomicBool::new(false),
            data: Mutex::default(),
        }
    }

    /// Makes every later call fail with `NotFound { Tenant }`.
    pub(super) fn close(&self) {
        self.closed.store(true, AtomicOrdering::Release);
    }

    /// The data, locked: the lock is what makes a check and the write it
    /// guards one step. Fails closed once the tenant is deleted.
    fn data(&self) -> Result<MutexGuard<'_, Data>> {
        if self.closed.load(AtomicOrdering::Acquire) {
            return Err(Error::not_found(Entity::Tenant));
        }
        // Every change is made whole under the lock, so a panic elsewhere
        // never leaves the data half-written.
        Ok(self.data.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl MemoryTenant {
    /// Fills a new tenant with imported rows, keeping their ids; later
    /// rows get ids above them. Refuses (and keeps nothing) data that is
    /// not consistent, as a database's constraints would.
    pub(super) fn load(&self, import: &TenantImport) -> Result<()> {
        let mut fresh = Data::default();
        for u in &import.users {
            let r = &u.record;
            let key = r.username.key();
            if fresh.users.values().any(|(x, _)| x.username.key() == key) {
                return Err(Error::Conflict {
                    entity: Entity::User,
                    field: "username",
                });
            }
            let user = User {
                id: u.id,
                username: r.username.clone(),
                email: r.email.clone(),
                first_name: r.first_name.clone(),
                last_name: r.last_name.clone(),
                role: r.role,
                department: r.department.clone(),
                is_active: u.is_active,
                is_owner: r.is_owner,
                last_login: u.last_login,
                date_joined: r.date_joined,
                token_version: 0,
            };
            if fresh
                .users
                .insert(u.id, (user, r.password_hash.clone()))
                .is_some()
            {
                return Err(Error::Conflict {
                    entity: Entity::User,
                    field: "id",
                });
            }
        }
        for p in &import.projects {
            let r = &p.record;
            fresh.require_user(r.owner)?;
            let row = ProjectRow {
                name: r.name.clone(),
                description: r.description.clone(),
                status: r.status,
                start_date: r.start_date,
                end_date: r.end_date,
                owner: r.owner,
                created_at: r.created_at,
                updated_at: p.updated_at,
            };
            if fresh.projects.insert(p.id, row).is_some() {
                return Err(Error::Conflict {
                    entity: Entity::Project,
                    field: "id",
                });
            }
        }
        for &(project, user) in &import.members {
            fresh.require_project(project)?;
            fresh.require_user(user)?;
            fresh.members.insert((project, user));
        }
        for t in &import.tasks {
            let r = &t.record;
            fresh.require_project(r.project_id)?;
            fresh.require_user(r.created_by)?;
            if let Some(a) = r.assigned_to {
                fresh.require_user(a)?;
            }
            let row = TaskRow {
                project_id: r.project_id,
                title: r.title.clone(),
                description: r.description.clone(),
                status: r.status,
                priority: r.priority,
                assigned_to: r.assigned_to,
                created_by: r.created_by,
                due_date: r.due_date,
                completed_at: r.completed_at,
                started_at: started_at(r.status, r.created_at),
                created_at: r.created_at,
                updated_at: t.updated_at,
            };
            if fresh.tasks.insert(t.id, row).is_some() {
                return Err(Error::Conflict {
                    entity: Entity::Task,
                    field: "id",
                });
            }
        }
        let last = |ids: Vec<i64>| ids.into_iter().max().unwrap_or(0);
        fresh.last_user = last(fresh.users.keys().map(|k| k.0).collect());
        fresh.last_project = last(fresh.projects.keys().map(|k| k.0).collect());
        fresh.last_task = last(fresh.tasks.keys().map(|k| k.0).collect());
        *self.data()? = fresh;
        Ok(())
    }
}

fn limit_reached(current: usize, limit: Option<u64>, resource: Resource) -> Result<()> {
    match limit {
        Some(limit) if current as u64 >= limit => Err(Error::PlanLimitExceeded {
            resource,
            limit,
            // A store does not know plan codes; the service fills it in.
            plan: String::new(),
        }),
        _ => Ok(()),
    }
}

impl Data {
    fn require_user(&self, id: UserId) -> Result<()> {
        if self.users.contains_key(&id) {
            Ok(())
        } else {
            Err(Error::not_found(Entity::User))
        }
    }

    fn require_assignee(&self, assignee: Option<UserId>) -> Result<()> {
        assignee.map_or(Ok(()), |id| self.require_user(id))
    }

    fn insert_token(&mut self, token: &RefreshTokenRecord) -> Result<()> {
        self.require_user(token.user_id)?;
        if self.tokens.contains_key(&token.jti) {
            // Token ids are random UUIDs: a repeat is a caller's bug, which
            // a database reports as a key violation.
            return Err(Error::backend(std::io::Error::other(
                "a refresh token with this id is already stored",
            )));
        }
        self.tokens.insert(
            token.jti,
            TokenRow {
                family: token.family,
                user_id: token.user_id,
                expires_at: token.expires_at,
                used: false,
                revoked: false,
            },
        );
        Ok(())
    }

    fn require_project(&self, id: ProjectId) -> Result<()> {
        if self.projects.contains_key(&id) {
            Ok(())
        } else {
            Err(Error::not_found(Entity::Project))
        }
    }

    fn summary(&self, id: UserId) -> Result<UserSummary> {
        self.users
            .get(&id)
            .map(|(u, _)| u.summary())
            .ok_or(Error::not_found(Entity::User))
    }

    fn project(&self, id: ProjectId) -> Result<Project> {
        let row = self
            .projects
            .get(&id)
            .ok_or(Error::not_found(Entity::Project))?;
        let members = self
            .members
            .range((id, UserId(i64::MIN))..=(id, UserId(i64::MAX)))
            .map(|(_, user)| self.summary(*user))
            .collect::<Result<_>>()?;
        Ok(Project {
            id,
            name: row.name.clone(),
            description: row.description.clone(),
            status: row.status,
            start_date: row.start_date,
            end_date: row.end_date,
            owner: self.summary(row.owner)?,
            members,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }

    fn task(&self, id: TaskId) -> Result<Task> {
        let row = self.tasks.get(&id).ok_or(Error::not_found(Entity::Task))?;
        Ok(Task {
            id,
            project_id: row.project_id,
            title: row.title.clone(),
            description: row.description.clone(),
            status: row.status,
            priority: row.priority,
            assigned_to: row.assigned_to.map(|u| self.summary(u)).transpose()?,
            created_by: self.summary(row.created_by)?,
            due_date: row.due_date,
            completed_at: row.completed_at,
            started_at: row.started_at,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }

    /// Whether `scope` sees `project`.
    fn visible(&self, scope: Scope, project: ProjectId) -> bool {
        match scope {
            Scope::All => true,
            Scope::InvolvedIn(user) => {
                self.projects.get(&project).is_some_and(|p| p.owner == user)
                    || self.members.contains(&(project, user))
            }
        }
    }

    /// Every project `scope` sees, newest first.
    fn projects_in(&self, scope: Scope) -> impl Iterator<Item = (&ProjectId, &ProjectRow)> {
        self.projects
            .iter()
            .rev()
            .filter(move |(id, _)| self.visible(scope, **id))
    }

    /// Every task matching `query`, unordered.
    fn matching(&self, query: &TaskQuery) -> Result<Vec<Task>> {
        let mut found = Vec::new();
        for (id, row) in &self.tasks {
            if self.visible(query.scope, row.project_id) {
                let task = self.task(*id)?;
                if query.matches(&task) {
                    found.push(task);
                }
            }
        }
        Ok(found)
    }
}

/// How `a` and `b` compare on `key`: missing due dates and start times last
/// in both directions, titles by bytes.
fn compare(a: &Task, b: &Task, key: &OrderKey) -> Ordering {
    let directed = |o: Ordering| if key.descending { o.reverse() } else { o };
    let missing_last = |x: Option<DateTime<Utc>>, y: Option<DateTime<Utc>>| match (x, y) {
        (Some(x), Some(y)) => directed(x.cmp(&y)),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    };
    match key.field {
        TaskOrderField::CreatedAt => directed(a.created_at.cmp(&b.created_at)),
        TaskOrderField::UpdatedAt => directed(a.updated_at.cmp(&b.updated_at)),
        TaskOrderField::DueDate => missing_last(a.due_date, b.due_date),
        TaskOrderField::StartedAt => missing_last(a.started_at, b.started_at),
        TaskOrderField::Priority => directed(a.priority.rank().cmp(&b.priority.rank())),
        TaskOrderField::Status => directed(a.status.rank().cmp(&b.status.rank())),
        TaskOrderField::Title => directed(a.title.as_bytes().cmp(b.title.as_bytes())),
        TaskOrderField::Id => directed(a.id.cmp(&b.id)),
    }
}

/// `query`'s matches in its order.
fn ordered(data: &Data, query: &TaskQuery) -> Result<Vec<Task>> {
    let mut tasks = data.matching(query)?;
    let keys = query.ordering.keys();
    tasks.sort_by(|a, b| {
        keys.iter()
            .map(|key| compare(a, b, key))
            .find(|o| o.is_ne())
            .unwrap_or(Ordering::Equal)
    });
    Ok(tasks)
}

#[async_trait]
impl TenantStore for MemoryTenant {
    fn tenant_id(&self) -> TenantId {
        self.id
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    // --- users -----------------------------------------------------------

    async fn create_user(&self, user: &NewUserRecord, max_users: Option<u64>) -> Result<User> {
        let mut data = self.data()?;
        limit_reached(data.users.len(), max_users, Resource::Users)?;
        let key = user.username.key();
        if data.users.values().any(|(u, _)| u.username.key() == key) {
            return Err(Error::Conflict {
                entity: Entity::User,
                field: "username",
            });
        }
        data.last_user += 1;
        let created = User {
            id: UserId(data.last_user),
            username: user.username.clone(),
            email: user.email.clone(),
            first_name: user.first_name.clone(),
            last_name: user.last_name.clone(),
            role: user.role,
            department: user.department.clone(),
            is_active: true,
            is_owner: user.is_owner,
            last_login: None,
            date_joined: user.date_joined,
            token_version: 0,
        };
        data.users
            .insert(created.id, (created.clone(), user.password_hash.clone()));
        Ok(created)
    }

    async fn user(&self, id: UserId) -> Result<Option<User>> {
        Ok(self.data()?.users.get(&id).map(|(u, _)| u.clone()))
    }

    async fn credentials(&self, username_key: &str) -> Result<Option<(User, String)>> {
        Ok(self
            .data()?
            .users
            .values()
            .find(|(u, _)| u.username.key() == username_key)
            .cloned())
    }

    async fn list_users(&self, page: PageRequest) -> Result<Page<User>> {
        let all = self
            .data()?
            .users
            .values()
            .map(|(u, _)| u.clone())
            .collect();
        Ok(paginate(all, page))
    }

    async fn update_user(&self, id: UserId, changes: &UserChanges) -> Result<User> {
        let mut data = self.data()?;
        let (user, _) = data
            .users
            .get_mut(&id)
            .ok_or(Error::not_found(Entity::User))?;
        if user.is_active && changes.is_active == Some(false) {
            user.token_version += 1;
        }
        let c = changes.clone();
        set(&mut user.email, c.email);
        set(&mut user.first_name, c.first_name);
        set(&mut user.last_name, c.last_name);
        set(&mut user.role, c.role);
        set(&mut user.department, c.department);
        set(&mut user.is_active, c.is_active);
        Ok(user.clone())
    }

    async fn set_password(&self, id: UserId, password_hash: &str) -> Result<()> {
        let mut data = self.data()?;
        let (user, hash) = data
            .users
            .get_mut(&id)
            .ok_or(Error::not_found(Entity::User))?;
        *hash = password_hash.to_owned();
        user.token_version += 1;
        Ok(())
    }

    async fn replace_password_hash(&self, id: UserId, current: &str, new: &str) -> Result<bool> {
        let mut data = self.data()?;
        match data.users.get_mut(&id) {
            Some((_, hash)) if hash == current => {
                *hash = new.to_owned();
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn record_login(&self, id: UserId, at: DateTime<Utc>) -> Result<()> {
        let mut data = self.data()?;
        let (user, _) = data
            .users
            .get_mut(&id)
            .ok_or(Error::not_found(Entity::User))?;
        user.last_login = Some(at);
        Ok(())
    }

    async fn count_users(&self) -> Result<u64> {
        Ok(self.data()?.users.len() as u64)
    }

    async fn inventory(&self) -> Result<Inventory> {
        let data = self.data()?;
        Ok(Inventory::new(
            data.users.keys().copied().collect(),
            data.projects.keys().copied().collect(),
            data.members.iter().copied().collect(),
            data.tasks.keys().copied().collect(),
        ))
    }

    // --- refresh tokens --------------------------------------------------

    async fn insert_refresh_token(&self, token: &RefreshTokenRecord) -> Result<()> {
        self.data()?.insert_token(token)
    }

    async fn rotate_refresh_token(
        &self,
        used: Uuid,
        successor: &RefreshTokenRecord,
    ) -> Result<RefreshOutcome> {
        // One lock for the whole rotation: nothing comes in between.
        let mut data = self.data()?;
        let Some(token) = data.tokens.get_mut(&used) else {
            return Ok(RefreshOutcome::Invalid);
        };
        if token.revoked || token.family != successor.family || token.user_id != successor.user_id {
            return Ok(RefreshOutcome::Invalid);
        }
        if token.used {
            let family = token.family;
            for t in data.tokens.values_mut().filter(|t| t.family == family) {
                t.revoked = true;
            }
            return Ok(RefreshOutcome::Reused);
        }
        token.used = true;
        let rotated = RefreshOutcome::Rotated {
            user_id: token.user_id,
            family: token.family,
        };
        data.insert_token(successor)?;
        Ok(rotated)
    }

    async fn prune_refresh_tokens(&self, before: DateTime<Utc>) -> Result<u64> {
        let mut data = self.data()?;
        let n = data.tokens.len();
        data.tokens.retain(|_, t| t.expires_at >= before);
        Ok((n - data.tokens.len()) as u64)
    }

    // --- projects --------------------------------------------------------

    async fn create_project(
        &self,
        project: &NewProjectRecord,
        max_projects: Option<u64>,
    ) -> Result<Project> {
        let mut data = self.data()?;
        limit_reached(data.projects.len(), max_projects, Resource::Projects)?;
        data.require_user(project.owner)?;
        data.last_project += 1;
        let id = ProjectId(data.last_project);
        data.projects.insert(
            id,
            ProjectRow {
                name: project.name.clone(),
                description: project.description.clone(),
                status: project.status,
                start_date: project.start_date,
                end_date: project.end_date,
                owner: project.owner,
                created_at: project.created_at,
                updated_at: project.created_at,
            },
        );
        data.project(id)
    }

    async fn project(&self, id: ProjectId) -> Result<Option<Project>> {
        let data = self.data()?;
        if !data.projects.contains_key(&id) {
            return Ok(None);
        }
        data.project(id).map(Some)
    }

    async fn list_projects(&self, scope: Scope, page: PageRequest) -> Result<Page<Project>> {
        let data = self.data()?;
        let all = data
            .projects_in(scope)
            .map(|(id, _)| data.project(*id))
            .collect::<Result<_>>()?;
        Ok(paginate(all, page))
    }

    async fn update_project(&self, id: ProjectId, changes: &ProjectChanges) -> Result<Project> {
        let mut data = self.data()?;
        let row = data
            .projects
            .get_mut(&id)
            .ok_or(Error::not_found(Entity::Project))?;
        let c = changes.clone();
        set(&mut row.name, c.name);
        set(&mut row.description, c.description);
        set(&mut row.status, c.status);
        set(&mut row.start_date, c.start_date);
        set(&mut row.end_date, c.end_date);
        row.updated_at = c.updated_at;
        data.project(id)
    }

    async fn delete_project(&self, id: ProjectId) -> Result<()> {
        let mut data = self.data()?;
        data.projects
            .remove(&id)
            .ok_or(Error::not_found(Entity::Project))?;
        // Its tasks and memberships go with it, as ON DELETE CASCADE does.
        data.tasks.retain(|_, t| t.project_id != id);
        data.members.retain(|(project, _)| *project != id);
        Ok(())
    }

    async fn add_member(&self, project: ProjectId, user: UserId) -> Result<Project> {
        let mut data = self.data()?;
        data.require_project(project)?;
        data.require_user(user)?;
        data.members.insert((project, user));
        data.project(project)
    }

    async fn remove_member(&self, project: ProjectId, user: UserId) -> Result<Project> {
        let mut data = self.data()?;
        data.require_project(project)?;
        data.require_user(user)?;
        data.members.remove(&(project, user));
        data.project(project)
    }

    async fn project_counts(&self, scope: Scope) -> Result<ProjectCounts> {
        let data = self.data()?;
        let mut counts = ProjectCounts::default();
        for (_, row) in data.projects_in(scope) {
            counts.total += 1;
            counts.by_status[row.status as usize] += 1;
        }
        Ok(counts)
    }

    // --- tasks -----------------------------------------------------------

    async fn create_task(
        &self,
        task: &NewTaskRecord,
        max_per_project: Option<u64>,
    ) -> Result<Task> {
        let mut data = self.data()?;
        data.require_project(task.project_id)?;
        let current = data
            .tasks
            .values()
            .filter(|t| t.project_id == task.project_id)
            .count();
        limit_reached(current, max_per_project, Resource::TasksPerProject)?;
        data.require_assignee(task.assigned_to)?;
        data.require_user(task.created_by)?;
        data.last_task += 1;
        let id = TaskId(data.last_task);
        data.tasks.insert(
            id,
            TaskRow {
                project_id: task.project_id,
                title: task.title.clone(),
                description: task.description.clone(),
                status: task.status,
                priority: task.priority,
                assigned_to: task.assigned_to,
                created_by: task.created_by,
                due_date: task.due_date,
                completed_at: task.completed_at,
                started_at: started_at(task.status, task.created_at),
                created_at: task.created_at,
                updated_at: task.created_at,
            },
        );
        data.task(id)
    }

    async fn task(&self, id: TaskId) -> Result<Option<Task>> {
        let data = self.data()?;
        if !data.tasks.contains_key(&id) {
            return Ok(None);
        }
        data.task(id).map(Some)
    }

    async fn list_tasks(&self, query: &TaskQuery, page: PageRequest) -> Result<Page<Task>> {
        let data = self.data()?;
        Ok(paginate(ordered(&data, query)?, page))
    }

    async fn project_tasks_after(
        &self,
        project: ProjectId,
        after: Option<TaskId>,
        limit: u32,
    ) -> Result<Vec<Task>> {
        let data = self.data()?;
        let from = after.map_or(Bound::Unbounded, Bound::Excluded);
        data.tasks
            .range((from, Bound::Unbounded))
            .filter(|(_, row)| row.project_id == project)
            .take(limit as usize)
            .map(|(id, _)| data.task(*id))
            .collect()
    }

    async fn update_task(
        &self,
        id: TaskId,
        changes: &TaskChanges,
        max_per_project: Option<u64>,
    ) -> Result<Task> {
        let mut data = self.data()?;
        let Some(current) = data.tasks.get(&id).map(|t| t.project_id) else {
            return Err(Error::not_found(Entity::Task));
        };
        if let Some(dest) = changes.project_id.filter(|p| *p != current) {
            data.require_project(dest)?;
            let there = data.tasks.values().filter(|t| t.project_id == dest).count();
            limit_reached(there, max_per_project, Resource::TasksPerProject)?;
        }
        if let Some(a) = changes.assigned_to {
            data.require_assignee(a)?;
        }
        let row = data
            .tasks
            .get_mut(&id)
            .ok_or(Error::not_found(Entity::Task))?;
        let c = changes.clone();
        if let Some(status) = c.status {
            if status == TaskStatus::Todo {
                row.started_at = None;
            } else if row.status == TaskStatus::Todo {
                row.started_at = Some(c.updated_at);
            }
        }
        set(&mut row.project_id, c.project_id);
        set(&mut row.title, c.title);
        set(&mut row.description, c.description);
        set(&mut row.status, c.status);
        set(&mut row.priority, c.priority);
        set(&mut row.assigned_to, c.assigned_to);
        set(&mut row.due_date, c.due_date);
        set(&mut row.completed_at, c.completed_at);
        row.updated_at = c.updated_at;
        data.task(id)
    }

    async fn delete_task(&self, id: TaskId) -> Result<()> {
        self.data()?
            .tasks
            .remove(&id)
            .map(|_| ())
            .ok_or(Error::not_found(Entity::Task))
    }

    async fn task_counts(&self, query: &TaskQuery, now: DateTime<Utc>) -> Result<TaskCounts> {
        let data = self.data()?;
        let mut counts = TaskCounts::default();
        for task in data.matching(query)? {
            counts.add(&task, now);
        }
        Ok(counts)
    }

    async fn delete_done_tasks_before(&self, cutoff: DateTime<Utc>) -> Result<u64> {
        let mut data = self.data()?;
        let n = data.tasks.len();
        data.tasks.retain(|_, t| {
            !(t.status == TaskStatus::Done && t.completed_at.is_some_and(|c| c < cutoff))
        });
        Ok((n - data.tasks.len()) as u64)
    }
}

/// Writes a changed field; `None` leaves it.
fn set<T>(field: &mut T, change: Option<T>) {
    if let Some(v) = change {
        *field = v;
    }
}
