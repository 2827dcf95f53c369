//! What goes over the wire: response objects (built from `saas-core`'s
//! types) and the schemas of request bodies (parsed into `saas-core`'s
//! input types, which carry the seed's field names).
//!
//! Objects are written the way the seed's DRF serializers write them: ids
//! as integers, foreign keys as ids (`project`, `assigned_to_id`) with nested
//! summaries where the seed shows them (`owner`, `members`, `assigned_to`,
//! `created_by`).

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use saas_core::operator::TenantOverview;
use saas_core::projects::{Project, Task};
use saas_core::session::{Dashboard, ProjectStatistics, Usage};
use saas_core::tenancy::{Domain, Tenant};
use saas_core::users::{User, UserSummary};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// A user as `GET /api/users/` and `GET /api/users/me/` show it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UserOut {
    /// Id within the tenant.
    pub id: i64,
    /// Login name.
    pub username: String,
    /// Email address.
    pub email: String,
    /// Given name.
    pub first_name: String,
    /// Family name.
    pub last_name: String,
    /// `admin`, `manager`, `member` or `viewer`.
    pub role: String,
    /// Department.
    pub department: String,
    /// Inactive users cannot log in.
    pub is_active: bool,
    /// The tenant's owner (its first admin).
    pub is_owner: bool,
    /// Last successful login.
    pub last_login: Option<DateTime<Utc>>,
    /// When the user was created.
    pub date_joined: DateTime<Utc>,
}

impl From<&User> for UserOut {
    fn from(u: &User) -> Self {
        UserOut {
            id: u.id.0,
            username: u.username.as_str().to_owned(),
            email: u.email.as_str().to_owned(),
            first_name: u.first_name.clone(),
            last_name: u.last_name.clone(),
            role: u.role.as_str().to_owned(),
            department: u.department.clone(),
            is_active: u.is_active,
            is_owner: u.is_owner,
            last_login: u.last_login,
            date_joined: u.date_joined,
        }
    }
}

impl From<User> for UserOut {
    fn from(u: User) -> Self {
        UserOut::from(&u)
    }
}

/// A user nested in a project or task.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UserSummaryOut {
    /// Id within the tenant.
    pub id: i64,
    /// Login name.
    pub username: String,
    /// Email address.
    pub email: String,
    /// Given name.
    pub first_name: String,
    /// Family name.
    pub last_name: String,
    /// Role.
    pub role: String,
}

impl From<&UserSummary> for UserSummaryOut {
    fn from(u: &UserSummary) -> Self {
        UserSummaryOut {
            id: u.id.0,
            username: u.username.as_str().to_owned(),
            email: u.email.as_str().to_owned(),
            first_name: u.first_name.clone(),
            last_name: u.last_name.clone(),
            role: u.role.as_str().to_owned(),
        }
    }
}

/// A project with its owner and members.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProjectOut {
    /// Id within the tenant.
    pub id: i64,
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// `planning`, `active`, `on_hold`, `completed` or `archived`.
    pub status: String,
    /// Planned start (`YYYY-MM-DD`).
    pub start_date: Option<NaiveDate>,
    /// Planned end.
    pub end_date: Option<NaiveDate>,
    /// The user who created it.
    pub owner: UserSummaryOut,
    /// Members, by id.
    pub members: Vec<UserSummaryOut>,
    /// Number of members.
    pub member_count: usize,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

impl From<Project> for ProjectOut {
    fn from(p: Project) -> Self {
        ProjectOut {
            id: p.id.0,
            name: p.name,
            description: p.description,
            status: p.status.as_str().to_owned(),
            start_date: p.start_date,
            end_date: p.end_date,
            owner: UserSummaryOut::from(&p.owner),
            member_count: p.members.len(),
            members: p.members.iter().map(UserSummaryOut::from).collect(),
            created_at: p.created_at,
            updated_at: p.updated_at,
        }
    }
}

/// A task.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TaskOut {
    /// Id within the tenant.
    pub id: i64,
    /// Id of its project.
    pub project: i64,
    /// Title.
    pub title: String,
    /// Description.
    pub description: String,
    /// `todo`, `in_progress`, `review` or `done`.
    pub status: String,
    /// `low`, `medium`, `high` or `urgent`.
    pub priority: String,
    /// The assignee, or null.
    pub assigned_to: Option<UserSummaryOut>,
    /// Id of the assignee, or null.
    pub assigned_to_id: Option<i64>,
    /// The creator.
    pub created_by: UserSummaryOut,
    /// Due time.
    pub due_date: Option<DateTime<Utc>>,
    /// When it became done.
    pub completed_at: Option<DateTime<Utc>>,
    /// Past due and not done.
    pub is_overdue: bool,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

impl TaskOut {
    /// The wire form of `t`, with overdue judged as of `now`.
    pub fn new(t: Task, now: DateTime<Utc>) -> Self {
        TaskOut {
            id: t.id.0,
            project: t.project_id.0,
            is_overdue: t.is_overdue(now),
            title: t.title,
            description: t.description,
            status: t.status.as_str().to_owned(),
            priority: t.priority.as_str().to_owned(),
            assigned_to_id: t.assigned_to.as_ref().map(|u| u.id.0),
            assigned_to: t.assigned_to.as_ref().map(UserSummaryOut::from),
            created_by: UserSummaryOut::from(&t.created_by),
            due_date: t.due_date,
            completed_at: t.completed_at,
            created_at: t.created_at,
            updated_at: t.updated_at,
        }
    }
}

/// An amount in use against a plan limit.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
pub struct UsageOut {
    /// Amount in use.
    pub used: u64,
    /// The plan's limit; null when unlimited.
    pub limit: Option<u64>,
}

impl From<Usage> for UsageOut {
    fn from(u: Usage) -> Self {
        UsageOut {
            used: u.used,
            limit: u.limit,
        }
    }
}

fn breakdown(b: BTreeMap<&'static str, u64>) -> BTreeMap<String, u64> {
    b.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

/// `GET /api/projects/{id}/statistics/`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProjectStatisticsOut {
    /// The project.
    pub project_id: i64,
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
    /// Done as a percentage of all, one decimal.
    pub completion_rate: f64,
    /// Tasks by status.
    pub tasks_by_status: BTreeMap<String, u64>,
    /// Tasks by priority.
    pub tasks_by_priority: BTreeMap<String, u64>,
    /// Members.
    pub member_count: u64,
}

impl From<ProjectStatistics> for ProjectStatisticsOut {
    fn from(s: ProjectStatistics) -> Self {
        ProjectStatisticsOut {
            project_id: s.project_id.0,
            total_tasks: s.total_tasks,
            todo_tasks: s.todo_tasks,
            in_progress_tasks: s.in_progress_tasks,
            review_tasks: s.review_tasks,
            completed_tasks: s.completed_tasks,
            overdue_tasks: s.overdue_tasks,
            completion_rate: s.completion_rate,
            tasks_by_status: breakdown(s.tasks_by_status),
            tasks_by_priority: breakdown(s.tasks_by_priority),
            member_count: s.member_count,
        }
    }
}

/// `GET /api/dashboard/`: the user's view of the tenant.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DashboardOut {
    /// Projects visible to the user.
    pub total_projects: u64,
    /// Of which active.
    pub active_projects: u64,
    /// Projects by status.
    pub projects_by_status: BTreeMap<String, u64>,
    /// Tasks in visible projects.
    pub total_tasks: u64,
    /// Of which done.
    pub completed_tasks: u64,
    /// Of which in progress.
    pub in_progress_tasks: u64,
    /// Of which overdue.
    pub overdue_tasks: u64,
    /// Tasks by status.
    pub tasks_by_status: BTreeMap<String, u64>,
    /// Tasks by priority.
    pub tasks_by_priority: BTreeMap<String, u64>,
    /// Tasks assigned to the user.
    pub my_tasks: u64,
    /// Of which not done.
    pub my_open_tasks: u64,
    /// Of which overdue.
    pub my_overdue_tasks: u64,
    /// The five most recently changed visible tasks.
    pub recent_tasks: Vec<TaskOut>,
    /// The tenant's plan code.
    pub plan: String,
    /// Users against the plan's limit.
    pub users: UsageOut,
    /// Projects against the plan's limit.
    pub projects: UsageOut,
}

impl DashboardOut {
    /// The wire form of `d`, with overdue judged as of `now`.
    pub fn new(d: Dashboard, now: DateTime<Utc>) -> Self {
        DashboardOut {
            total_projects: d.total_projects,
            active_projects: d.active_projects,
            projects_by_status: breakdown(d.projects_by_status),
            total_tasks: d.total_tasks,
            completed_tasks: d.completed_tasks,
            in_progress_tasks: d.in_progress_tasks,
            overdue_tasks: d.overdue_tasks,
            tasks_by_status: breakdown(d.tasks_by_status),
            tasks_by_priority: breakdown(d.tasks_by_priority),
            my_tasks: d.my_tasks,
            my_open_tasks: d.my_open_tasks,
            my_overdue_tasks: d.my_overdue_tasks,
            recent_tasks: d
                .recent_tasks
                .into_iter()
                .map(|t| TaskOut::new(t, now))
                .collect(),
            plan: d.plan,
            users: d.users.into(),
            projects: d.projects.into(),
        }
    }
}

/// `POST /api/register/`'s answer: the tenant as registered and its admin.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RegistrationOut {
    /// Tenant id (UUIDv7).
    pub id: Uuid,
    /// Display name.
    pub company_name: String,
    /// Slug.
    pub schema_name: String,
    /// Primary domain.
    pub domain_url: String,
    /// Plan code.
    pub subscription_plan: String,
    /// `active` or `suspended`.
    pub status: String,
    /// Registration time.
    pub created_at: DateTime<Utc>,
    /// The first admin.
    pub admin: UserOut,
}

impl RegistrationOut {
    /// The wire form of a registration.
    pub fn new(t: &Tenant, domain: &str, admin: &User) -> Self {
        RegistrationOut {
            id: t.id.0,
            company_name: t.name.as_str().to_owned(),
            schema_name: t.slug.as_str().to_owned(),
            domain_url: domain.to_owned(),
            subscription_plan: t.plan.clone(),
            status: t.status.as_str().to_owned(),
            created_at: t.created_at,
            admin: UserOut::from(admin),
        }
    }
}

/// A domain routed to a tenant.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DomainOut {
    /// The hostname.
    pub hostname: String,
    /// Whether it is the tenant's primary domain.
    pub is_primary: bool,
}

impl From<&Domain> for DomainOut {
    fn from(d: &Domain) -> Self {
        DomainOut {
            hostname: d.hostname.as_str().to_owned(),
            is_primary: d.is_primary,
        }
    }
}

/// A tenant as the platform API shows it, with usage against its plan.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TenantOut {
    /// Id (UUIDv7).
    pub id: Uuid,
    /// Display name.
    pub name: String,
    /// Slug.
    pub slug: String,
    /// Plan code.
    pub plan: String,
    /// `active` or `suspended`.
    pub status: String,
    /// Registration time.
    pub created_at: DateTime<Utc>,
    /// Domains, primary first.
    pub domains: Vec<DomainOut>,
    /// Users against the plan's limit.
    pub users: UsageOut,
    /// Projects against the plan's limit.
    pub projects: UsageOut,
}

impl From<TenantOverview> for TenantOut {
    fn from(o: TenantOverview) -> Self {
        TenantOut {
            id: o.tenant.id.0,
            name: o.tenant.name.as_str().to_owned(),
            slug: o.tenant.slug.as_str().to_owned(),
            plan: o.tenant.plan.clone(),
            status: o.tenant.status.as_str().to_owned(),
            created_at: o.tenant.created_at,
            domains: o.domains.iter().map(DomainOut::from).collect(),
            users: o.users.into(),
            projects: o.projects.into(),
        }
    }
}

/// An access and refresh token pair.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TokenPairOut {
    /// Short-lived access token (send as `Authorization: Bearer <access>`).
    pub access: String,
    /// Single-use refresh token.
    pub refresh: String,
}

/// A platform access token.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PlatformTokenOut {
    /// Send as `Authorization: Bearer <access>` to `/api/platform/…`.
    pub access: String,
}

/// `GET /api/health/`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HealthOut {
    /// `healthy` or `unhealthy`.
    pub status: String,
    /// `ok` or `unavailable`.
    pub database: String,
}

// ---- request bodies ------------------------------------------------------
//
// Bodies are parsed straight into saas-core's input types; these mirror them
// for the OpenAPI document, and the small ones not in the core are used as is.

/// `POST /api/token/` and `POST /api/platform/token/`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct LoginIn {
    /// Username.
    pub username: String,
    /// Password.
    pub password: String,
}

/// `POST /api/token/refresh/`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct RefreshIn {
    /// A refresh token (usable once).
    pub refresh: String,
}

/// `POST /api/projects/{id}/add_member/` and `remove_member/`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct MemberIn {
    /// The user's id.
    pub user_id: i64,
}

/// `POST /api/platform/tenants/{id}/plan/`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct PlanIn {
    /// Plan code: `free`, `basic`, `premium`, `enterprise` (or the host's catalog).
    pub plan: String,
}

/// `POST /api/platform/tenants/{id}/domains/`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct DomainIn {
    /// Hostname to route to the tenant.
    pub hostname: String,
    /// Make it the primary domain.
    #[serde(default)]
    pub is_primary: bool,
}

/// `POST /api/users/change_password/`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct ChangePasswordIn {
    /// The current password.
    pub old_password: String,
    /// The new password (8 to 128 characters, not all digits).
    pub new_password: String,
}

/// Schema of `POST /api/register/`'s body.
#[derive(Debug, ToSchema)]
#[schema(as = Registration)]
#[allow(dead_code)]
pub struct RegistrationSchema {
    /// Display name, 1 to 100 characters.
    company_name: String,
    /// Slug: `^[a-z][a-z0-9_]{1,47}$`.
    schema_name: String,
    /// Primary domain, e.g. `acme.localhost`.
    domain_url: String,
    /// First admin's username.
    admin_username: String,
    /// First admin's email.
    admin_email: String,
    /// First admin's password (8 to 128 characters, not all digits).
    admin_password: String,
    /// Plan code (default `free`).
    subscription_plan: Option<String>,
}

/// Schema of `POST /api/users/register/`'s body.
#[derive(Debug, ToSchema)]
#[schema(as = NewUser)]
#[allow(dead_code)]
pub struct NewUserSchema {
    /// ASCII letters, digits and `@.+-_`; unique in the tenant ignoring case.
    username: String,
    /// Email address.
    email: String,
    /// Password.
    password: String,
    /// Given name.
    first_name: Option<String>,
    /// Family name.
    last_name: Option<String>,
    /// `admin`, `manager`, `member` (default) or `viewer`.
    role: Option<String>,
    /// Department.
    department: Option<String>,
}

/// Schema of `PATCH /api/users/{id}/`'s body.
#[derive(Debug, ToSchema)]
#[schema(as = UserPatch)]
#[allow(dead_code)]
pub struct UserPatchSchema {
    email: Option<String>,
    first_name: Option<String>,
    last_name: Option<String>,
    /// Admins only.
    role: Option<String>,
    department: Option<String>,
    /// Admins only.
    is_active: Option<bool>,
}

/// Schema of `POST /api/projects/`'s body.
#[derive(Debug, ToSchema)]
#[schema(as = NewProject)]
#[allow(dead_code)]
pub struct NewProjectSchema {
    /// 1 to 200 characters.
    name: String,
    description: Option<String>,
    /// `planning` (default), `active`, `on_hold`, `completed`, `archived`.
    status: Option<String>,
    start_date: Option<NaiveDate>,
    end_date: Option<NaiveDate>,
}

/// Schema of `PATCH /api/projects/{id}/`'s body (absent fields stay; null dates clear).
#[derive(Debug, ToSchema)]
#[schema(as = ProjectPatch)]
#[allow(dead_code)]
pub struct ProjectPatchSchema {
    name: Option<String>,
    description: Option<String>,
    status: Option<String>,
    start_date: Option<NaiveDate>,
    end_date: Option<NaiveDate>,
}

/// Schema of `POST /api/tasks/`'s body.
#[derive(Debug, ToSchema)]
#[schema(as = NewTask)]
#[allow(dead_code)]
pub struct NewTaskSchema {
    /// Project id.
    project: i64,
    /// 1 to 200 characters.
    title: String,
    description: Option<String>,
    /// `todo` (default), `in_progress`, `review`, `done`.
    status: Option<String>,
    /// `low`, `medium` (default), `high`, `urgent`.
    priority: Option<String>,
    /// The project's owner or one of its members.
    assigned_to_id: Option<i64>,
    due_date: Option<DateTime<Utc>>,
}

/// Schema of `PATCH /api/tasks/{id}/`'s body (absent fields stay; null clears
/// assignee or due date).
#[derive(Debug, ToSchema)]
#[schema(as = TaskPatch)]
#[allow(dead_code)]
pub struct TaskPatchSchema {
    title: Option<String>,
    description: Option<String>,
    status: Option<String>,
    priority: Option<String>,
    assigned_to_id: Option<i64>,
    due_date: Option<DateTime<Utc>>,
}
