//! A [`Session`]: one user acting in one tenant. Every tenant operation is a
//! method here, and each checks the permission matrix, the object's
//! visibility and the plan before touching storage.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use crate::commands::{NewProject, NewTask, NewUser, ProjectPatch, TaskPatch, UserPatch};
use crate::context::Context;
use crate::dates;
use crate::error::{Entity, Error, Result, Validator};
use crate::events::Event;
use crate::patch::Patch;
use crate::permissions::{Action, Relation, require};
use crate::plans::Plan;
use crate::projects::{
    MAX_DESCRIPTION_CHARS, MAX_SEARCH_CHARS, MAX_TITLE_CHARS, NewProjectRecord, NewTaskRecord,
    Priority, Project, ProjectId, ProjectStatus, Scope, Task, TaskCounts, TaskId, TaskOrderField,
    TaskOrdering, TaskQuery, TaskStatus,
};
use crate::store::{DashboardCounts, DashboardQuery, Page, PageRequest, TenantStore};
use crate::tenancy::Tenant;
use crate::text;
use crate::updates::{ProjectChanges, TaskChanges, UserChanges, changed};
use crate::users::{
    Email, MAX_DEPARTMENT_CHARS, MAX_NAME_CHARS, NewUserRecord, Password, Role, User, UserId,
    parse_name,
};

/// Whose tasks to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Assignee {
    /// A given user.
    User(UserId),
    /// The acting user (`?assigned_to=me`).
    Me,
}

/// Filters of `GET /api/tasks/`.
#[derive(Debug, Clone, Default)]
pub struct TaskFilter {
    /// Only this project's tasks.
    pub project: Option<ProjectId>,
    /// Only tasks with this status.
    pub status: Option<TaskStatus>,
    /// Only tasks with this priority.
    pub priority: Option<Priority>,
    /// Only tasks assigned to this user.
    pub assigned_to: Option<Assignee>,
    /// Only tasks whose title or description contains this.
    pub search: Option<String>,
    /// Ordering (default newest first).
    pub ordering: Option<TaskOrdering>,
}

/// A used amount against a plan limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Usage {
    /// Amount in use.
    pub used: u64,
    /// The plan's limit (`None`: unlimited).
    pub limit: Option<u64>,
}

/// Counts keyed by status or priority name.
pub type Breakdown = BTreeMap<&'static str, u64>;

fn status_breakdown(c: &TaskCounts) -> Breakdown {
    TaskStatus::ALL
        .iter()
        .map(|s| (s.as_str(), c.status(*s)))
        .collect()
}

fn priority_breakdown(c: &TaskCounts) -> Breakdown {
    Priority::ALL
        .iter()
        .map(|p| (p.as_str(), c.priority(*p)))
        .collect()
}

/// `GET /api/projects/{id}/statistics/`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProjectStatistics {
    /// The project.
    pub project_id: ProjectId,
    /// All tasks.
    pub total_tasks: u64,
    /// Tasks to do.
    pub todo_tasks: u64,
    /// Tasks in progress.
    pub in_progress_tasks: u64,
    /// Tasks in review.
    pub review_tasks: u64,
    /// Tasks done.
    pub completed_tasks: u64,
    /// Tasks past due and not done.
    pub overdue_tasks: u64,
    /// Done as a percentage of all, one decimal (0 without tasks).
    pub completion_rate: f64,
    /// Tasks by status.
    pub tasks_by_status: Breakdown,
    /// Tasks by priority.
    pub tasks_by_priority: Breakdown,
    /// Members (the owner not counted unless a member).
    pub member_count: u64,
}

/// `GET /api/dashboard/`: the acting user's view of the tenant.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Dashboard {
    /// Projects visible to the user.
    pub total_projects: u64,
    /// Of which active.
    pub active_projects: u64,
    /// Projects by status.
    pub projects_by_status: BTreeMap<&'static str, u64>,
    /// Tasks in visible projects.
    pub total_tasks: u64,
    /// Of which done.
    pub completed_tasks: u64,
    /// Of which in progress.
    pub in_progress_tasks: u64,
    /// Of which overdue.
    pub overdue_tasks: u64,
    /// Tasks by status.
    pub tasks_by_status: Breakdown,
    /// Tasks by priority.
    pub tasks_by_priority: Breakdown,
    /// Tasks assigned to the user.
    pub my_tasks: u64,
    /// Of which not done.
    pub my_open_tasks: u64,
    /// Of which overdue.
    pub my_overdue_tasks: u64,
    /// The five most recently changed visible tasks.
    pub recent_tasks: Vec<Task>,
    /// The tenant's plan code.
    pub plan: String,
    /// Users against the plan's limit.
    pub users: Usage,
    /// Projects against the plan's limit.
    pub projects: Usage,
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

impl crate::store::TenantScope for Session {
    fn tenant_store(&self) -> &dyn TenantStore {
        self.store.as_ref()
    }
}

/// One user acting in one tenant. Obtained from
/// [`Saas::authenticate`](crate::Saas::authenticate) or
/// [`Saas::session`](crate::Saas::session); cheap to clone.
#[derive(Debug, Clone)]
pub struct Session {
    context: Arc<Context>,
    tenant: Tenant,
    store: Arc<dyn TenantStore>,
    actor: User,
}

impl Session {
    pub(crate) fn new(
        context: Arc<Context>,
        tenant: Tenant,
        store: Arc<dyn TenantStore>,
        actor: User,
    ) -> Self {
        Session {
            context,
            tenant,
            store,
            actor,
        }
    }

    /// The tenant.
    pub fn tenant(&self) -> &Tenant {
        &self.tenant
    }

    /// The acting user (`GET /api/users/me/`).
    pub fn me(&self) -> &User {
        &self.actor
    }

    /// The tenant's current plan.
    pub fn plan(&self) -> &Plan {
        self.context.plan_of(&self.tenant)
    }

    /// The tenant's storage handle (for jobs that run as this session).
    pub fn store(&self) -> &Arc<dyn TenantStore> {
        &self.store
    }

    fn role(&self) -> Role {
        self.actor.role
    }

    /// `Ok` when the acting user may perform `action` on an object it
    /// relates to as `relation` (a host application's own actions
    /// included, [`crate::permissions::HostAction`]); else
    /// [`Error::Forbidden`].
    pub fn require(&self, action: Action, relation: Relation) -> Result<()> {
        require(self.role(), action, relation)
    }

    fn scope(&self) -> Scope {
        if self.role() == Role::Admin {
            Scope::All
        } else {
            Scope::InvolvedIn(self.actor.id)
        }
    }

    fn with_plan(&self, e: Error) -> Error {
        match e {
            Error::PlanLimitExceeded {
                resource, limit, ..
            } => Error::PlanLimitExceeded {
                resource,
                limit,
                plan: self.plan().code.clone(),
            },
            other => other,
        }
    }

    // --- users -----------------------------------------------------------

    /// The tenant's users.
    pub async fn list_users(&self, page: PageRequest) -> Result<Page<User>> {
        require(self.role(), Action::ListUsers, Relation::None)?;
        self.store.list_users(page).await
    }

    /// A user of the tenant.
    pub async fn user(&self, id: UserId) -> Result<User> {
        require(self.role(), Action::ListUsers, Relation::None)?;
        self.store
            .user(id)
            .await?
            .ok_or(Error::not_found(Entity::User))
    }

    /// Registers a user (`POST /api/users/register/`). Admins may register
    /// any role, managers members and viewers. Counts against the plan.
    pub async fn register_user(&self, new: NewUser) -> Result<User> {
        require(
            self.role(),
            Action::RegisterUser(new.role()),
            Relation::None,
        )?;
        let mut v = Validator::new();
        let valid = new.validate(&mut v, "");
        v.finish()?;
        let valid = valid.ok_or_else(|| Error::invalid("user", "invalid user"))?;
        let hash = self.context.passwords.hash(valid.password.expose()).await?;
        let record = NewUserRecord {
            username: valid.username,
            email: valid.email,
            password_hash: hash,
            first_name: valid.first_name,
            last_name: valid.last_name,
            role: valid.role,
            department: valid.department,
            is_owner: false,
            date_joined: self.context.now(),
        };
        let user = self
            .store
            .create_user(&record, self.plan().max_users)
            .await
            .map_err(|e| self.with_plan(e))?;
        self.context.notify_user_created(&self.tenant, &user).await;
        Ok(user)
    }

    /// Changes a user. Anyone may change their own email, names and
    /// department; only admins change others, roles and the active flag.
    /// Nobody can demote or deactivate the tenant's owner.
    pub async fn update_user(&self, id: UserId, patch: UserPatch) -> Result<User> {
        let target = self
            .store
            .user(id)
            .await?
            .ok_or(Error::not_found(Entity::User))?;
        let privileged = patch.role.is_some_and(|r| r != target.role)
            || patch.is_active.is_some_and(|a| a != target.is_active);
        if id != self.actor.id || privileged {
            require(self.role(), Action::ManageUsers, Relation::None)?;
        }
        if target.is_owner
            && (patch.role.is_some_and(|r| r != Role::Admin) || patch.is_active == Some(false))
        {
            return Err(Error::Forbidden {
                reason: "the tenant's owner cannot be demoted or deactivated",
            });
        }
        let mut v = Validator::new();
        let email = patch
            .email
            .as_deref()
            .and_then(|e| v.check("email", Email::parse(e)));
        let mut name = |field: &'static str, value: &Option<String>, max: usize| {
            value
                .as_deref()
                .and_then(|value| v.check(field, parse_name(field, value, max)))
        };
        let first_name = name("first_name", &patch.first_name, MAX_NAME_CHARS);
        let last_name = name("last_name", &patch.last_name, MAX_NAME_CHARS);
        let department = name("department", &patch.department, MAX_DEPARTMENT_CHARS);
        v.finish()?;
        // Only what the request changes is written: a concurrent change of
        // another field (an admin's, say) stands.
        let changes = UserChanges {
            email: changed(email, &target.email),
            first_name: changed(first_name, &target.first_name),
            last_name: changed(last_name, &target.last_name),
            role: changed(patch.role, &target.role),
            department: changed(department, &target.department),
            is_active: changed(patch.is_active, &target.is_active),
        };
        let updated = self.store.update_user(id, &changes).await;
        self.context.forget_user(self.tenant.id, id);
        let updated = updated?;
        let tenant = self.tenant.id;
        if target.is_active && !updated.is_active {
            self.context
                .notify(Event::UserDeactivated { tenant, user: id })
                .await;
        }
        if target.role != updated.role {
            self.context
                .notify(Event::UserRoleChanged {
                    tenant,
                    user: id,
                    from: target.role,
                    to: updated.role,
                })
                .await;
        }
        Ok(updated)
    }

    /// Changes the acting user's password; every token issued before stops working.
    pub async fn change_password(&self, old: &str, new: &str) -> Result<()> {
        let (_, hash) = self
            .store
            .credentials(&self.actor.username.key())
            .await?
            .ok_or(Error::Unauthenticated)?;
        if !self.context.passwords.verify(old, &hash).await? {
            return Err(Error::invalid(
                "old_password",
                "is not your current password",
            ));
        }
        let new = Password::parse(new).map_err(|_| {
            Error::invalid(
                "new_password",
                "must be 8 to 128 characters and not entirely numeric",
            )
        })?;
        let hash = self.context.passwords.hash(new.expose()).await?;
        let set = self.store.set_password(self.actor.id, &hash).await;
        self.context.forget_user(self.tenant.id, self.actor.id);
        set
    }

    // --- projects --------------------------------------------------------

    fn relation_to(&self, p: &Project) -> Relation {
        if p.owner.id == self.actor.id {
            Relation::Owner
        } else if p.members.iter().any(|m| m.id == self.actor.id) {
            Relation::Member
        } else {
            Relation::None
        }
    }

    /// A project visible to the actor; invisible ones are NotFound.
    pub async fn project(&self, id: ProjectId) -> Result<Project> {
        self.visible(self.store.project(id).await?)
    }

    /// `found` if it is a project visible to the actor, else NotFound.
    fn visible(&self, found: Option<Project>) -> Result<Project> {
        match found {
            Some(p) if self.scope() == Scope::All || p.involves(self.actor.id) => Ok(p),
            _ => Err(Error::not_found(Entity::Project)),
        }
    }

    /// Projects visible to the actor, newest first.
    pub async fn list_projects(&self, page: PageRequest) -> Result<Page<Project>> {
        self.store.list_projects(self.scope(), page).await
    }

    fn check_dates(v: &mut Validator, start: Option<NaiveDate>, end: Option<NaiveDate>) {
        dates::check_date(v, "start_date", start);
        dates::check_date(v, "end_date", end);
        if let (Some(s), Some(e)) = (start, end)
            && e < s
        {
            v.add("end_date", "may not be before start_date");
        }
    }

    /// Creates a project owned by the actor. Counts against the plan.
    pub async fn create_project(&self, new: NewProject) -> Result<Project> {
        require(self.role(), Action::CreateProject, Relation::None)?;
        let mut v = Validator::new();
        let name = v.check(
            "name",
            text::required_line("name", &new.name, MAX_TITLE_CHARS),
        );
        let description = v.check(
            "description",
            text::block("description", &new.description, MAX_DESCRIPTION_CHARS),
        );
        Self::check_dates(&mut v, new.start_date, new.end_date);
        v.finish()?;
        let (Some(name), Some(description)) = (name, description) else {
            return Err(Error::invalid("project", "invalid project"));
        };
        let record = NewProjectRecord {
            name,
            description,
            status: new.status.unwrap_or(ProjectStatus::Planning),
            start_date: new.start_date,
            end_date: new.end_date,
            owner: self.actor.id,
            created_at: self.context.now(),
        };
        self.store
            .create_project(&record, self.plan().max_projects)
            .await
            .map_err(|e| self.with_plan(e))
    }

    /// Changes a project (admins, or its managers).
    pub async fn update_project(&self, id: ProjectId, patch: ProjectPatch) -> Result<Project> {
        let p = self.project(id).await?;
        require(self.role(), Action::UpdateProject, self.relation_to(&p))?;
        let mut v = Validator::new();
        let name = patch
            .name
            .as_deref()
            .and_then(|n| v.check("name", text::required_line("name", n, MAX_TITLE_CHARS)));
        let description = patch.description.as_deref().and_then(|d| {
            v.check(
                "description",
                text::block("description", d, MAX_DESCRIPTION_CHARS),
            )
        });
        let start_date = patch.start_date.apply(p.start_date);
        let end_date = patch.end_date.apply(p.end_date);
        Self::check_dates(&mut v, start_date, end_date);
        v.finish()?;
        let c = ProjectChanges {
            name: changed(name, &p.name),
            description: changed(description, &p.description),
            status: changed(patch.status, &p.status),
            start_date: changed(Some(start_date), &p.start_date),
            end_date: changed(Some(end_date), &p.end_date),
            ..ProjectChanges::at(self.context.now())
        };
        self.store.update_project(id, &c).await
    }

    /// Deletes a project with its tasks (admins, or its owner if a manager).
    pub async fn delete_project(&self, id: ProjectId) -> Result<()> {
        let p = self.project(id).await?;
        require(self.role(), Action::DeleteProject, self.relation_to(&p))?;
        self.store.delete_project(id).await
    }

    /// Adds a member (`POST /api/projects/{id}/add_member/`).
    pub async fn add_member(&self, id: ProjectId, user: UserId) -> Result<Project> {
        let p = self.project(id).await?;
        require(self.role(), Action::ManageMembers, self.relation_to(&p))?;
        self.store.add_member(id, user).await
    }

    /// Removes a member (`POST /api/projects/{id}/remove_member/`).
    pub async fn remove_member(&self, id: ProjectId, user: UserId) -> Result<Project> {
        let p = self.project(id).await?;
        require(self.role(), Action::ManageMembers, self.relation_to(&p))?;
        self.store.remove_member(id, user).await
    }

    /// Task statistics of a visible project.
    pub async fn statistics(&self, id: ProjectId) -> Result<ProjectStatistics> {
        let (p, c) = match self
            .store
            .project_with_counts(id, self.context.now())
            .await?
        {
            Some((p, c)) => (self.visible(Some(p))?, c),
            None => return Err(Error::not_found(Entity::Project)),
        };
        let done = c.status(TaskStatus::Done);
        Ok(ProjectStatistics {
            project_id: id,
            total_tasks: c.total,
            todo_tasks: c.status(TaskStatus::Todo),
            in_progress_tasks: c.status(TaskStatus::InProgress),
            review_tasks: c.status(TaskStatus::Review),
            completed_tasks: done,
            overdue_tasks: c.overdue,
            completion_rate: if c.total == 0 {
                0.0
            } else {
                round1(done as f64 * 100.0 / c.total as f64)
            },
            tasks_by_status: status_breakdown(&c),
            tasks_by_priority: priority_breakdown(&c),
            member_count: p.members.len() as u64,
        })
    }

    /// Checks that the actor may generate a report for a visible project on
    /// the tenant's plan; returns the project.
    pub async fn authorize_report(&self, id: ProjectId) -> Result<Project> {
        let p = self.project(id).await?;
        require(self.role(), Action::GenerateReport, self.relation_to(&p))?;
        self.plan().check_reports()?;
        Ok(p)
    }

    // --- tasks -----------------------------------------------------------

    fn task_relation(&self, t: &Task, p: &Project) -> Relation {
        if t.created_by.id == self.actor.id {
            Relation::Owner
        } else if p.involves(self.actor.id) {
            Relation::Member
        } else {
            Relation::None
        }
    }

    /// A task in a visible project; others are NotFound.
    pub async fn task(&self, id: TaskId) -> Result<Task> {
        self.task_with_project(id).await.map(|(t, _)| t)
    }

    async fn task_with_project(&self, id: TaskId) -> Result<(Task, Project)> {
        let (t, p) = self
            .store
            .task_with_project(id)
            .await?
            .ok_or(Error::not_found(Entity::Task))?;
        let p = self
            .visible(Some(p))
            .map_err(|_| Error::not_found(Entity::Task))?;
        Ok((t, p))
    }

    /// An assignee must be an active user involved in the project; `found`
    /// is the assignee's record as the store has it.
    fn check_assignee(
        v: &mut Validator,
        p: &Project,
        assignee: Option<UserId>,
        found: Option<&User>,
    ) {
        let Some(a) = assignee else { return };
        if !p.involves(a) {
            v.add(
                "assigned_to_id",
                "must be the project's owner or one of its members",
            );
        } else if !found.is_some_and(|u| u.id == a && u.is_active) {
            v.add("assigned_to_id", "must be an active user");
        }
    }

    /// `t` to the microsecond, as every backend stores it.
    fn truncate(t: DateTime<Utc>) -> DateTime<Utc> {
        DateTime::from_timestamp_micros(t.timestamp_micros()).unwrap_or(t)
    }

    /// The project a task is created in or moved to: visible to the actor
    /// (else an invalid `project`), and one the actor may create tasks in;
    /// with the record of `assignee`, read in the same go.
    async fn task_destination(
        &self,
        id: ProjectId,
        assignee: Option<UserId>,
    ) -> Result<(Project, Option<User>)> {
        let (found, user) = self.store.project_and_user(id, assignee).await?;
        let Ok(p) = self.visible(found) else {
            return Err(Error::invalid("project", "no such project"));
        };
        require(self.role(), Action::CreateTask, self.relation_to(&p))?;
        Ok((p, user))
    }

    /// Creates a task in a visible project the actor may work on. Counts
    /// against the plan's tasks-per-project limit.
    pub async fn create_task(&self, new: NewTask) -> Result<Task> {
        let (p, assignee) = self
            .task_destination(new.project, new.assigned_to_id)
            .await?;
        let mut v = Validator::new();
        let title = v.check(
            "title",
            text::required_line("title", &new.title, MAX_TITLE_CHARS),
        );
        let description = v.check(
            "description",
            text::block("description", &new.description, MAX_DESCRIPTION_CHARS),
        );
        Self::check_assignee(&mut v, &p, new.assigned_to_id, assignee.as_ref());
        dates::check_datetime(&mut v, "due_date", new.due_date);
        v.finish()?;
        let (Some(title), Some(description)) = (title, description) else {
            return Err(Error::invalid("task", "invalid task"));
        };
        let now = self.context.now();
        let status = new.status.unwrap_or(TaskStatus::Todo);
        let record = NewTaskRecord {
            project_id: p.id,
            title,
            description,
            status,
            priority: new.priority.unwrap_or(Priority::Medium),
            assigned_to: new.assigned_to_id,
            created_by: self.actor.id,
            due_date: new.due_date.map(Self::truncate),
            completed_at: (status == TaskStatus::Done).then_some(now),
            created_at: now,
        };
        self.store
            .create_task(&record, self.plan().max_tasks_per_project)
            .await
            .map_err(|e| self.with_plan(e))
    }

    /// Changes a task. Moving it to another project is checked as creating
    /// it there would be: the destination must be visible to the actor, who
    /// must be allowed to create tasks in it; the assignee (kept or new)
    /// must be involved in it; and it counts against the plan's
    /// tasks-per-project limit there.
    pub async fn update_task(&self, id: TaskId, patch: TaskPatch) -> Result<Task> {
        let (t, mut p) = self.task_with_project(id).await?;
        require(self.role(), Action::UpdateTask, self.task_relation(&t, &p))?;
        let current = t.assigned_to.as_ref().map(|u| u.id);
        let assignee = patch.assigned_to_id.apply(current);
        let mut assignee_record = None;
        let moved = match patch.project {
            Some(dest) if dest != t.project_id => {
                (p, assignee_record) = self.task_destination(dest, assignee).await?;
                true
            }
            _ => false,
        };
        let now = self.context.now();
        let mut v = Validator::new();
        let title = patch
            .title
            .as_deref()
            .and_then(|x| v.check("title", text::required_line("title", x, MAX_TITLE_CHARS)));
        let description = patch.description.as_deref().and_then(|x| {
            v.check(
                "description",
                text::block("description", x, MAX_DESCRIPTION_CHARS),
            )
        });
        if !moved
            && assignee != current
            && let Some(a) = assignee.filter(|a| p.involves(*a))
        {
            assignee_record = self.store.user(a).await?;
        }
        if moved || assignee != current {
            Self::check_assignee(&mut v, &p, assignee, assignee_record.as_ref());
        }
        if let Patch::Set(due) = &patch.due_date {
            dates::check_datetime(&mut v, "due_date", Some(*due));
        }
        v.finish()?;
        // Only what the request changes is written.
        let mut c = TaskChanges {
            project_id: moved.then_some(p.id),
            title: changed(title, &t.title),
            description: changed(description, &t.description),
            priority: changed(patch.priority, &t.priority),
            assigned_to: changed(Some(assignee), &current),
            due_date: changed(
                Some(patch.due_date.map(Self::truncate).apply(t.due_date)),
                &t.due_date,
            ),
            ..TaskChanges::at(now)
        };
        if let Some(s) = patch.status {
            Self::set_status(&mut c, &t, s, now);
        }
        self.store
            .update_task(id, &c, self.plan().max_tasks_per_project)
            .await
            .map_err(|e| self.with_plan(e))
    }

    /// Writes a status change and what follows from it: becoming done sets
    /// `completed_at`, leaving done clears it.
    fn set_status(c: &mut TaskChanges, t: &Task, s: TaskStatus, now: DateTime<Utc>) {
        if s == t.status {
            return;
        }
        c.status = Some(s);
        c.completed_at = Some((s == TaskStatus::Done).then_some(now));
    }

    /// Marks a task done (`POST /api/tasks/{id}/mark_complete/`); idempotent.
    pub async fn mark_complete(&self, id: TaskId) -> Result<Task> {
        self.update_task(
            id,
            TaskPatch {
                status: Some(TaskStatus::Done),
                ..TaskPatch::default()
            },
        )
        .await
    }

    /// Deletes a task.
    pub async fn delete_task(&self, id: TaskId) -> Result<()> {
        let (t, p) = self.task_with_project(id).await?;
        require(self.role(), Action::DeleteTask, self.task_relation(&t, &p))?;
        self.store.delete_task(id).await
    }

    fn task_query(&self, f: &TaskFilter) -> Result<TaskQuery> {
        let mut q = TaskQuery::new(self.scope());
        q.project = f.project;
        q.status = f.status;
        q.priority = f.priority;
        q.assigned_to = f.assigned_to.map(|a| match a {
            Assignee::Me => self.actor.id,
            Assignee::User(u) => u,
        });
        if let Some(s) = &f.search {
            let s = text::optional_line("search", s, MAX_SEARCH_CHARS)?;
            q.search = (!s.is_empty()).then_some(s);
        }
        if let Some(o) = f.ordering {
            q.ordering = o;
        }
        Ok(q)
    }

    /// Tasks in visible projects matching `filter`.
    pub async fn list_tasks(&self, filter: &TaskFilter, page: PageRequest) -> Result<Page<Task>> {
        let q = self.task_query(filter)?;
        self.store.list_tasks(&q, page).await
    }

    /// Tasks assigned to the actor (`GET /api/tasks/my_tasks/`), by due date.
    pub async fn my_tasks(&self, page: PageRequest) -> Result<Page<Task>> {
        let filter = TaskFilter {
            assigned_to: Some(Assignee::Me),
            ordering: Some(TaskOrdering {
                field: TaskOrderField::DueDate,
                descending: false,
            }),
            ..TaskFilter::default()
        };
        self.list_tasks(&filter, page).await
    }

    /// Counts of tasks matching `filter` (no paging).
    pub async fn task_counts(&self, filter: &TaskFilter) -> Result<TaskCounts> {
        let q = self.task_query(filter)?;
        self.store.task_counts(&q, self.context.now()).await
    }

    // --- dashboard -------------------------------------------------------

    /// The dashboard (`GET /api/dashboard/`).
    pub async fn dashboard(&self) -> Result<Dashboard> {
        let now = self.context.now();
        let query = DashboardQuery::new(self.scope(), self.actor.id);
        let DashboardCounts {
            projects,
            all_projects: total_projects,
            tasks: all,
            mine,
            recent,
            users,
        } = self.store.dashboard(&query, now).await?;
        let plan = self.plan();
        Ok(Dashboard {
            total_projects: projects.total,
            active_projects: projects.status(ProjectStatus::Active),
            projects_by_status: ProjectStatus::ALL
                .iter()
                .map(|s| (s.as_str(), projects.status(*s)))
                .collect(),
            total_tasks: all.total,
            completed_tasks: all.status(TaskStatus::Done),
            in_progress_tasks: all.status(TaskStatus::InProgress),
            overdue_tasks: all.overdue,
            tasks_by_status: status_breakdown(&all),
            tasks_by_priority: priority_breakdown(&all),
            my_tasks: mine.total,
            my_open_tasks: mine.total - mine.status(TaskStatus::Done),
            my_overdue_tasks: mine.overdue,
            recent_tasks: recent,
            plan: plan.code.clone(),
            users: Usage {
                used: users,
                limit: plan.max_users,
            },
            projects: Usage {
                used: total_projects,
                limit: plan.max_projects,
            },
        })
    }
}
