//! What callers ask of the core: a registration, a new user, project or
//! task, and the partial updates of users, projects and tasks.
//!
//! Commands are plain values, not yet validated: [`Saas`](crate::Saas) and
//! [`Session`](crate::Session) check every field and report each failure
//! under the field's name here, which is the name the seed's clients send.
//! The HTTP crate reads them from JSON bodies; host applications build them
//! directly:
//!
//! ```
//! use saas_core::commands::{NewTask, NewUser, TaskPatch};
//! use saas_core::patch::Patch;
//! use saas_core::projects::{Priority, ProjectId};
//! use saas_core::users::Role;
//!
//! let manager = NewUser {
//!     role: Some(Role::Manager),
//!     ..NewUser::new("john", "john@acme.com", "a long password")
//! };
//! let task = NewTask {
//!     priority: Some(Priority::High),
//!     ..NewTask::new(ProjectId(1), "Write the press release")
//! };
//! // Absent fields stay as they are; the due date is cleared.
//! let patch = TaskPatch {
//!     title: Some("Write the launch post".into()),
//!     due_date: Patch::Clear,
//!     ..TaskPatch::default()
//! };
//! # let _ = (manager, task, patch);
//! ```

use chrono::{DateTime, NaiveDate, Utc};

use crate::error::Validator;
use crate::patch::Patch;
use crate::projects::{Priority, ProjectId, ProjectStatus, TaskStatus};
use crate::users::{
    Email, MAX_DEPARTMENT_CHARS, MAX_NAME_CHARS, Password, Role, UserId, Username, parse_name,
};

// --- tenants ---------------------------------------------------------------

/// Registers a tenant with its primary domain and first admin (the seed's
/// `POST /api/register/`).
#[derive(Debug, Clone, Default)]
pub struct Registration {
    /// Display name of the tenant.
    pub company_name: String,
    /// Tenant slug.
    pub schema_name: String,
    /// Primary domain.
    pub domain_url: String,
    /// First admin's username.
    pub admin_username: String,
    /// First admin's email.
    pub admin_email: String,
    /// First admin's password.
    pub admin_password: String,
    /// Plan code; the catalog's default when `None`.
    pub subscription_plan: Option<String>,
}

// --- users -----------------------------------------------------------------

/// A new user of a tenant (the seed's `POST /api/users/register/`).
#[derive(Debug, Clone, Default)]
pub struct NewUser {
    /// Login name.
    pub username: String,
    /// Email address.
    pub email: String,
    /// Password.
    pub password: String,
    /// Given name.
    pub first_name: String,
    /// Family name.
    pub last_name: String,
    /// Role; `member` when `None`.
    pub role: Option<Role>,
    /// Department.
    pub department: String,
}

/// A [`NewUser`] whose every field passed validation.
pub(crate) struct ValidNewUser {
    pub(crate) username: Username,
    pub(crate) email: Email,
    pub(crate) password: Password,
    pub(crate) first_name: String,
    pub(crate) last_name: String,
    pub(crate) role: Role,
    pub(crate) department: String,
}

impl NewUser {
    /// A member with the given credentials, without names or department.
    pub fn new(
        username: impl Into<String>,
        email: impl Into<String>,
        password: impl Into<String>,
    ) -> Self {
        NewUser {
            username: username.into(),
            email: email.into(),
            password: password.into(),
            ..NewUser::default()
        }
    }

    /// The role the user gets.
    pub(crate) fn role(&self) -> Role {
        self.role.unwrap_or(Role::Member)
    }

    /// Validates every field, reporting all failures at once. Credentials
    /// are reported under `prefix` + their name (a registration's admin is
    /// `admin_username`, `admin_email`, `admin_password`).
    pub(crate) fn validate(&self, v: &mut Validator, prefix: &str) -> Option<ValidNewUser> {
        let f = |name: &str| format!("{prefix}{name}");
        let username = v.check(&f("username"), Username::parse(&self.username));
        let email = v.check(&f("email"), Email::parse(&self.email));
        let password = v.check(&f("password"), Password::parse(&self.password));
        if self.password.eq_ignore_ascii_case(&self.username) && !self.username.is_empty() {
            v.add(&f("password"), "may not be the same as the username");
        }
        let first_name = v.check(
            "first_name",
            parse_name("first_name", &self.first_name, MAX_NAME_CHARS),
        );
        let last_name = v.check(
            "last_name",
            parse_name("last_name", &self.last_name, MAX_NAME_CHARS),
        );
        let department = v.check(
            "department",
            parse_name("department", &self.department, MAX_DEPARTMENT_CHARS),
        );
        Some(ValidNewUser {
            username: username?,
            email: email?,
            password: password?,
            first_name: first_name?,
            last_name: last_name?,
            role: self.role(),
            department: department?,
        })
    }
}

/// Changes to a user; `None` fields stay as they are.
#[derive(Debug, Clone, Default)]
pub struct UserPatch {
    /// New email.
    pub email: Option<String>,
    /// New given name.
    pub first_name: Option<String>,
    /// New family name.
    pub last_name: Option<String>,
    /// New role (admins only).
    pub role: Option<Role>,
    /// New department.
    pub department: Option<String>,
    /// Activate or deactivate (admins only).
    pub is_active: Option<bool>,
}

// --- projects --------------------------------------------------------------

/// A new project, owned by the user who creates it.
#[derive(Debug, Clone, Default)]
pub struct NewProject {
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Status; `planning` when `None`.
    pub status: Option<ProjectStatus>,
    /// Planned start.
    pub start_date: Option<NaiveDate>,
    /// Planned end (not before the start).
    pub end_date: Option<NaiveDate>,
}

impl NewProject {
    /// A project in planning, with only a name.
    pub fn new(name: impl Into<String>) -> Self {
        NewProject {
            name: name.into(),
            ..NewProject::default()
        }
    }
}

/// Changes to a project; `None` and [`Patch::Keep`] fields stay as they are.
#[derive(Debug, Clone, Default)]
pub struct ProjectPatch {
    /// New name.
    pub name: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// New status.
    pub status: Option<ProjectStatus>,
    /// New planned start, or none.
    pub start_date: Patch<NaiveDate>,
    /// New planned end, or none.
    pub end_date: Patch<NaiveDate>,
}

// --- tasks -----------------------------------------------------------------

/// A new task in a project.
#[derive(Debug, Clone)]
pub struct NewTask {
    /// The project.
    pub project: ProjectId,
    /// Title.
    pub title: String,
    /// Description.
    pub description: String,
    /// Status; `todo` when `None`.
    pub status: Option<TaskStatus>,
    /// Priority; `medium` when `None`.
    pub priority: Option<Priority>,
    /// Assignee: the project's owner or one of its members.
    pub assigned_to_id: Option<UserId>,
    /// Due time.
    pub due_date: Option<DateTime<Utc>>,
}

impl NewTask {
    /// An unassigned task to do, of medium priority, without description or
    /// due time.
    pub fn new(project: ProjectId, title: impl Into<String>) -> Self {
        NewTask {
            project,
            title: title.into(),
            description: String::new(),
            status: None,
            priority: None,
            assigned_to_id: None,
            due_date: None,
        }
    }
}

/// Changes to a task; `None` and [`Patch::Keep`] fields stay as they are.
#[derive(Debug, Clone, Default)]
pub struct TaskPatch {
    /// Another project to move the task to: checked as creating a task
    /// there would be (visibility, role, assignee, the plan's per-project
    /// limit).
    pub project: Option<ProjectId>,
    /// New title.
    pub title: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// New status (done sets `completed_at`; leaving done clears it).
    pub status: Option<TaskStatus>,
    /// New priority.
    pub priority: Option<Priority>,
    /// New assignee, or unassigned.
    pub assigned_to_id: Patch<UserId>,
    /// New due time, or none.
    pub due_date: Patch<DateTime<Utc>>,
}
