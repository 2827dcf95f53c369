//! A simple in-memory model of one tenant: what it should contain, and what
//! each operation should answer. Written from the specification (SPEC.md,
//! the permission matrix and the storage contract), independently of
//! saas-core's own implementation, so the property test compares two
//! readings of the same rules.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, NaiveDate, Utc};
use saas_core::error::{Entity, Resource};
use saas_core::projects::{Priority, ProjectId, ProjectStatus, TaskId, TaskOrderField, TaskStatus};
use saas_core::session::Assignee;
use saas_core::users::{Role, UserId};

/// What an operation should answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Success.
    Ok,
    /// `Error::Forbidden`.
    Forbidden,
    /// `Error::NotFound` of this entity.
    NotFound(Entity),
    /// `Error::Invalid` naming this field (among others, maybe).
    Invalid(&'static str),
    /// `Error::PlanLimitExceeded` for this resource.
    Limit(Resource),
    /// `Error::Conflict` on this entity and field.
    Conflict(Entity, &'static str),
    /// Either a username conflict or the users limit: both hold, and the
    /// contract does not say which a backend checks first.
    ConflictOrUserLimit,
}

/// Plan limits (`None`: unlimited).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Users, the admin included.
    pub users: Option<u64>,
    /// Projects.
    pub projects: Option<u64>,
    /// Tasks per project.
    pub tasks: Option<u64>,
}

/// A user as the model knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MUser {
    /// Id, as the backend assigned it.
    pub id: UserId,
    /// Role.
    pub role: Role,
    /// Case-folded username.
    pub key: String,
}

/// A project as the model knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MProject {
    /// Id, as the backend assigned it.
    pub id: ProjectId,
    /// Name (trimmed).
    pub name: String,
    /// Status.
    pub status: ProjectStatus,
    /// Planned start.
    pub start: Option<NaiveDate>,
    /// Planned end.
    pub end: Option<NaiveDate>,
    /// Owner.
    pub owner: UserId,
    /// Members.
    pub members: BTreeSet<UserId>,
}

impl MProject {
    /// Owner or member.
    pub fn involves(&self, u: UserId) -> bool {
        self.owner == u || self.members.contains(&u)
    }
}

/// A task as the model knows it. Timestamps are the backend's (the model
/// checks how they move, not their values).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MTask {
    /// Id, as the backend assigned it.
    pub id: TaskId,
    /// Project.
    pub project: ProjectId,
    /// Title (trimmed).
    pub title: String,
    /// Description.
    pub description: String,
    /// Status.
    pub status: TaskStatus,
    /// Priority.
    pub priority: Priority,
    /// Assignee.
    pub assignee: Option<UserId>,
    /// Creator.
    pub created_by: UserId,
    /// Due time.
    pub due: Option<DateTime<Utc>>,
    /// Completion time.
    pub completed_at: Option<DateTime<Utc>>,
    /// When it last left todo (none while to do).
    pub started_at: Option<DateTime<Utc>>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

impl MTask {
    /// Not done and past due.
    pub fn overdue(&self, now: DateTime<Utc>) -> bool {
        self.status != TaskStatus::Done && self.due.is_some_and(|d| d < now)
    }
}

/// A task list filter, as the model reads it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MFilter {
    /// Project.
    pub project: Option<ProjectId>,
    /// Status.
    pub status: Option<TaskStatus>,
    /// Priority.
    pub priority: Option<Priority>,
    /// Assignee.
    pub assigned_to: Option<Assignee>,
    /// Search text as sent (the service trims it).
    pub search: Option<String>,
    /// Ordering field and direction (`None`: newest first).
    pub ordering: Option<(TaskOrderField, bool)>,
}

/// Expected numbers of a dashboard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MDashboard {
    /// Visible projects.
    pub total_projects: u64,
    /// Visible projects by status rank.
    pub projects_by_status: [u64; 5],
    /// Visible tasks.
    pub total_tasks: u64,
    /// Visible tasks by status rank.
    pub tasks_by_status: [u64; 4],
    /// Visible tasks by priority rank.
    pub tasks_by_priority: [u64; 4],
    /// Visible overdue tasks.
    pub overdue: u64,
    /// Visible tasks assigned to the actor.
    pub my_tasks: u64,
    /// Of which not done.
    pub my_open: u64,
    /// Of which overdue.
    pub my_overdue: u64,
    /// Five most recently changed visible tasks.
    pub recent: Vec<TaskId>,
    /// Users in the tenant.
    pub users: u64,
    /// Projects in the tenant.
    pub projects: u64,
}

/// Expected numbers of a project's statistics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MStatistics {
    /// Tasks.
    pub total: u64,
    /// By status rank.
    pub by_status: [u64; 4],
    /// By priority rank.
    pub by_priority: [u64; 4],
    /// Overdue.
    pub overdue: u64,
    /// Members.
    pub members: u64,
}

/// One tenant's expected state.
#[derive(Debug, Clone)]
pub struct TenantModel {
    /// Plan code.
    pub plan: String,
    /// The plan's limits.
    pub limits: Limits,
    /// Users by id.
    pub users: Vec<MUser>,
    /// Projects by id.
    pub projects: BTreeMap<ProjectId, MProject>,
    /// Tasks by id.
    pub tasks: BTreeMap<TaskId, MTask>,
    /// Every project id ever created, for references (deleted ones too).
    pub known_projects: Vec<ProjectId>,
    /// Every task id ever created, for references (deleted ones too).
    pub known_tasks: Vec<TaskId>,
}

fn valid_line(s: &str, max: usize) -> Option<String> {
    let t = s.trim();
    (!t.is_empty() && t.chars().count() <= max && !t.chars().any(char::is_control))
        .then(|| t.to_owned())
}

fn under(limit: Option<u64>, used: usize) -> bool {
    limit.is_none_or(|l| (used as u64) < l)
}

impl TenantModel {
    /// A tenant with its users and no projects.
    pub fn new(plan: &str, limits: Limits, users: Vec<MUser>) -> Self {
        TenantModel {
            plan: plan.to_owned(),
            limits,
            users,
            projects: BTreeMap::new(),
            tasks: BTreeMap::new(),
            known_projects: Vec::new(),
            known_tasks: Vec::new(),
        }
    }

    /// The user with `id`.
    pub fn user(&self, id: UserId) -> Option<&MUser> {
        self.users.iter().find(|u| u.id == id)
    }

    fn role(&self, actor: UserId) -> Role {
        self.user(actor).map_or(Role::Viewer, |u| u.role)
    }

    /// The project `id` if `actor` may see it.
    pub fn visible_project(&self, actor: UserId, id: ProjectId) -> Option<&MProject> {
        let p = self.projects.get(&id)?;
        (self.role(actor) == Role::Admin || p.involves(actor)).then_some(p)
    }

    /// The task `id` and its project if `actor` may see them.
    pub fn visible_task(&self, actor: UserId, id: TaskId) -> Option<(&MTask, &MProject)> {
        let t = self.tasks.get(&id)?;
        let p = self.visible_project(actor, t.project)?;
        Some((t, p))
    }

    /// Valid name or title, trimmed.
    pub fn title(s: &str) -> Option<String> {
        valid_line(s, 200)
    }

    /// Expected answer to creating a project.
    pub fn create_project(
        &self,
        actor: UserId,
        name: &str,
        start: Option<NaiveDate>,
        end: Option<NaiveDate>,
    ) -> Outcome {
        if !matches!(self.role(actor), Role::Admin | Role::Manager) {
            return Outcome::Forbidden;
        }
        if Self::title(name).is_none() {
            return Outcome::Invalid("name");
        }
        if matches!((start, end), (Some(s), Some(e)) if e < s) {
            return Outcome::Invalid("end_date");
        }
        if !under(self.limits.projects, self.projects.len()) {
            return Outcome::Limit(Resource::Projects);
        }
        Outcome::Ok
    }

    /// Expected answer to changing a project (`dates` is the patch's).
    pub fn update_project(
        &self,
        actor: UserId,
        id: ProjectId,
        name: Option<&str>,
        dates: Option<(Option<NaiveDate>, Option<NaiveDate>)>,
    ) -> Outcome {
        let Some(p) = self.visible_project(actor, id) else {
            return Outcome::NotFound(Entity::Project);
        };
        let ok = match self.role(actor) {
            Role::Admin => true,
            Role::Manager => p.involves(actor),
            _ => false,
        };
        if !ok {
            return Outcome::Forbidden;
        }
        if name.is_some_and(|n| Self::title(n).is_none()) {
            return Outcome::Invalid("name");
        }
        let (s, e) = dates.unwrap_or((p.start, p.end));
        if matches!((s, e), (Some(s), Some(e)) if e < s) {
            return Outcome::Invalid("end_date");
        }
        Outcome::Ok
    }

    /// Expected answer to deleting a project.
    pub fn delete_project(&self, actor: UserId, id: ProjectId) -> Outcome {
        let Some(p) = self.visible_project(actor, id) else {
            return Outcome::NotFound(Entity::Project);
        };
        match self.role(actor) {
            Role::Admin => Outcome::Ok,
            Role::Manager if p.owner == actor => Outcome::Ok,
            _ => Outcome::Forbidden,
        }
    }

    /// Expected answer to adding or removing a member (the same rules).
    pub fn manage_member(&self, actor: UserId, id: ProjectId, user: UserId) -> Outcome {
        let Some(p) = self.visible_project(actor, id) else {
            return Outcome::NotFound(Entity::Project);
        };
        let ok = match self.role(actor) {
            Role::Admin => true,
            Role::Manager => p.involves(actor),
            _ => false,
        };
        if !ok {
            return Outcome::Forbidden;
        }
        if self.user(user).is_none() {
            return Outcome::NotFound(Entity::User);
        }
        Outcome::Ok
    }

    /// Expected answer to creating a task.
    pub fn create_task(
        &self,
        actor: UserId,
        project: ProjectId,
        title: &str,
        assignee: Option<UserId>,
    ) -> Outcome {
        let Some(p) = self.visible_project(actor, project) else {
            return Outcome::Invalid("project");
        };
        let ok = match self.role(actor) {
            Role::Admin => true,
            Role::Manager | Role::Member => p.involves(actor),
            Role::Viewer => false,
        };
        if !ok {
            return Outcome::Forbidden;
        }
        if Self::title(title).is_none() {
            return Outcome::Invalid("title");
        }
        if assignee.is_some_and(|a| !p.involves(a)) {
            return Outcome::Invalid("assigned_to_id");
        }
        let used = self.tasks.values().filter(|t| t.project == project).count();
        if !under(self.limits.tasks, used) {
            return Outcome::Limit(Resource::TasksPerProject);
        }
        Outcome::Ok
    }

    /// Expected answer to changing a task (`project`, `assignee`: the
    /// patch's). Moving a task to another project is allowed exactly where
    /// creating it there would be: the spec's rules for a new task apply to
    /// the destination, after the rules for changing the task.
    pub fn update_task(
        &self,
        actor: UserId,
        id: TaskId,
        project: Option<ProjectId>,
        title: Option<&str>,
        assignee: Option<Option<UserId>>,
    ) -> Outcome {
        let Some((t, p)) = self.visible_task(actor, id) else {
            return Outcome::NotFound(Entity::Task);
        };
        let involved = t.created_by == actor || p.involves(actor);
        let ok = match self.role(actor) {
            Role::Admin => true,
            Role::Manager | Role::Member => involved,
            Role::Viewer => false,
        };
        if !ok {
            return Outcome::Forbidden;
        }
        let moving = project.filter(|d| *d != t.project);
        let dest = match moving {
            None => p,
            Some(d) => {
                let Some(dest) = self.visible_project(actor, d) else {
                    return Outcome::Invalid("project");
                };
                let may_create = match self.role(actor) {
                    Role::Admin => true,
                    Role::Manager | Role::Member => dest.involves(actor),
                    Role::Viewer => false,
                };
                if !may_create {
                    return Outcome::Forbidden;
                }
                dest
            }
        };
        if title.is_some_and(|x| Self::title(x).is_none()) {
            return Outcome::Invalid("title");
        }
        let after = assignee.unwrap_or(t.assignee);
        if (moving.is_some() || after != t.assignee) && after.is_some_and(|u| !dest.involves(u)) {
            return Outcome::Invalid("assigned_to_id");
        }
        if moving.is_some() {
            let used = self.tasks.values().filter(|x| x.project == dest.id).count();
            if !under(self.limits.tasks, used) {
                return Outcome::Limit(Resource::TasksPerProject);
            }
        }
        Outcome::Ok
    }

    /// Expected answer to deleting a task.
    pub fn delete_task(&self, actor: UserId, id: TaskId) -> Outcome {
        let Some((t, p)) = self.visible_task(actor, id) else {
            return Outcome::NotFound(Entity::Task);
        };
        let ok = match self.role(actor) {
            Role::Admin => true,
            Role::Manager => t.created_by == actor || p.involves(actor),
            Role::Member => t.created_by == actor,
            Role::Viewer => false,
        };
        if ok { Outcome::Ok } else { Outcome::Forbidden }
    }

    /// Expected answer to registering a user named `username` with `role`.
    pub fn register_user(&self, actor: UserId, username: &str, role: Role) -> Outcome {
        let ok = match self.role(actor) {
            Role::Admin => true,
            Role::Manager => matches!(role, Role::Member | Role::Viewer),
            _ => false,
        };
        if !ok {
            return Outcome::Forbidden;
        }
        let valid = !username.is_empty()
            && username.len() <= 150
            && username
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"@.+-_".contains(&b));
        if !valid {
            return Outcome::Invalid("username");
        }
        let key = username.to_ascii_lowercase();
        let taken = self.users.iter().any(|u| u.key == key);
        let full = !under(self.limits.users, self.users.len());
        match (taken, full) {
            (true, true) => Outcome::ConflictOrUserLimit,
            (true, false) => Outcome::Conflict(Entity::User, "username"),
            (false, true) => Outcome::Limit(Resource::Users),
            (false, false) => Outcome::Ok,
        }
    }

    /// Expected answer to setting `user`'s role.
    pub fn change_role(&self, actor: UserId, user: UserId, role: Role, owner: UserId) -> Outcome {
        let Some(target) = self.user(user) else {
            return Outcome::NotFound(Entity::User);
        };
        let privileged = target.role != role;
        if (user != actor || privileged) && self.role(actor) != Role::Admin {
            return Outcome::Forbidden;
        }
        if user == owner && role != Role::Admin {
            return Outcome::Forbidden;
        }
        Outcome::Ok
    }

    /// Projects `actor` sees, newest (largest id) first.
    pub fn visible_projects(&self, actor: UserId) -> Vec<ProjectId> {
        self.projects
            .keys()
            .rev()
            .copied()
            .filter(|id| self.visible_project(actor, *id).is_some())
            .collect()
    }

    fn matches(&self, actor: UserId, t: &MTask, f: &MFilter) -> bool {
        let search = f
            .search
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_ascii_lowercase);
        self.visible_project(actor, t.project).is_some()
            && f.project.is_none_or(|p| t.project == p)
            && f.status.is_none_or(|s| t.status == s)
            && f.priority.is_none_or(|p| t.priority == p)
            && f.assigned_to.is_none_or(|a| {
                let who = match a {
                    Assignee::Me => actor,
                    Assignee::User(u) => u,
                };
                t.assignee == Some(who)
            })
            && search.is_none_or(|s| {
                t.title.to_ascii_lowercase().contains(&s)
                    || t.description.to_ascii_lowercase().contains(&s)
            })
    }

    /// Tasks `actor` sees through `filter`, in the filter's order.
    pub fn list_tasks(&self, actor: UserId, f: &MFilter) -> Vec<TaskId> {
        let mut v: Vec<&MTask> = self
            .tasks
            .values()
            .filter(|t| self.matches(actor, t, f))
            .collect();
        let (field, desc) = f.ordering.unwrap_or((TaskOrderField::CreatedAt, true));
        v.sort_by(|a, b| order(a, b, field, desc));
        v.into_iter().map(|t| t.id).collect()
    }

    /// Counts by status and priority and overdue of what `list_tasks` finds.
    pub fn counts(
        &self,
        actor: UserId,
        f: &MFilter,
        now: DateTime<Utc>,
    ) -> (u64, [u64; 4], [u64; 4], u64) {
        let mut by_status = [0; 4];
        let mut by_priority = [0; 4];
        let (mut total, mut overdue) = (0, 0);
        for t in self.tasks.values().filter(|t| self.matches(actor, t, f)) {
            total += 1;
            by_status[t.status as usize] += 1;
            by_priority[t.priority as usize] += 1;
            if t.overdue(now) {
                overdue += 1;
            }
        }
        (total, by_status, by_priority, overdue)
    }

    /// The dashboard `actor` should see.
    pub fn dashboard(&self, actor: UserId, now: DateTime<Utc>) -> MDashboard {
        let visible = self.visible_projects(actor);
        let mut projects_by_status = [0; 5];
        for id in &visible {
            projects_by_status[self.projects[id].status as usize] += 1;
        }
        let (total_tasks, tasks_by_status, tasks_by_priority, overdue) =
            self.counts(actor, &MFilter::default(), now);
        let mine = MFilter {
            assigned_to: Some(Assignee::Me),
            ..MFilter::default()
        };
        let (my_tasks, my_status, _, my_overdue) = self.counts(actor, &mine, now);
        let recent = self.list_tasks(
            actor,
            &MFilter {
                ordering: Some((TaskOrderField::UpdatedAt, true)),
                ..MFilter::default()
            },
        );
        MDashboard {
            total_projects: visible.len() as u64,
            projects_by_status,
            total_tasks,
            tasks_by_status,
            tasks_by_priority,
            overdue,
            my_tasks,
            my_open: my_tasks - my_status[TaskStatus::Done as usize],
            my_overdue,
            recent: recent.into_iter().take(5).collect(),
            users: self.users.len() as u64,
            projects: self.projects.len() as u64,
        }
    }

    /// The statistics of project `id`, if `actor` sees it.
    pub fn statistics(
        &self,
        actor: UserId,
        id: ProjectId,
        now: DateTime<Utc>,
    ) -> Option<MStatistics> {
        let p = self.visible_project(actor, id)?;
        let mut s = MStatistics {
            total: 0,
            by_status: [0; 4],
            by_priority: [0; 4],
            overdue: 0,
            members: p.members.len() as u64,
        };
        for t in self.tasks.values().filter(|t| t.project == id) {
            s.total += 1;
            s.by_status[t.status as usize] += 1;
            s.by_priority[t.priority as usize] += 1;
            if t.overdue(now) {
                s.overdue += 1;
            }
        }
        Some(s)
    }
}

/// The task order of the contract: by the field (ranks for status and
/// priority, bytes for titles), missing due dates and start times last in
/// both directions,
/// ties by id ascending.
pub fn order(a: &MTask, b: &MTask, field: TaskOrderField, desc: bool) -> Ordering {
    let dir = |o: Ordering| if desc { o.reverse() } else { o };
    let missing_last = |x: Option<DateTime<Utc>>, y: Option<DateTime<Utc>>| match (x, y) {
        (Some(x), Some(y)) => dir(x.cmp(&y)),
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (None, None) => Ordering::Equal,
    };
    let primary = match field {
        TaskOrderField::CreatedAt => dir(a.created_at.cmp(&b.created_at)),
        TaskOrderField::UpdatedAt => dir(a.updated_at.cmp(&b.updated_at)),
        TaskOrderField::DueDate => missing_last(a.due, b.due),
        TaskOrderField::StartedAt => missing_last(a.started_at, b.started_at),
        TaskOrderField::Priority => dir(a.priority.rank().cmp(&b.priority.rank())),
        TaskOrderField::Status => dir(a.status.rank().cmp(&b.status.rank())),
        TaskOrderField::Title => dir(a.title.as_bytes().cmp(b.title.as_bytes())),
        TaskOrderField::Id => dir(a.id.cmp(&b.id)),
    };
    primary.then(a.id.cmp(&b.id))
}
