//! Projects, their members, and tasks.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::users::{UserId, UserSummary};

/// Longest project name or task title, in characters.
pub const MAX_TITLE_CHARS: usize = 200;
/// Longest project or task description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 10_000;

/// Id of a project, unique within its tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ProjectId(pub i64);

impl fmt::Display for ProjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Id of a task, unique within its tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TaskId(pub i64);

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Defines a closed string enum with `as_str`, `FromStr` (a validation error
/// listing the allowed values), `ALL` and serde in snake_case.
macro_rules! string_enum {
    ($(#[$doc:meta])* $name:ident, $field:literal { $($(#[$vdoc:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $($(#[$vdoc])* $variant),+
        }

        impl $name {
            /// Every value, in their natural order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The value as stored and serialized.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            /// Position in [`Self::ALL`]; backends store and order by it.
            pub fn rank(self) -> i64 {
                self as i64
            }

            /// The value at `rank`, if any.
            pub fn from_rank(rank: i64) -> Option<Self> {
                usize::try_from(rank).ok().and_then(|i| Self::ALL.get(i).copied())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(Error::invalid(
                        $field,
                        concat!("must be one of: ", $($text, " "),+).trim_end().replace(' ', ", "),
                    )),
                }
            }
        }
    };
}

string_enum!(
    /// Lifecycle of a project.
    ProjectStatus, "status" {
        /// Not started.
        Planning = "planning",
        /// In progress.
        Active = "active",
        /// Paused.
        OnHold = "on_hold",
        /// Finished.
        Completed = "completed",
        /// Kept for the record.
        Archived = "archived",
    }
);

string_enum!(
    /// Progress of a task.
    TaskStatus, "status" {
        /// Not started.
        Todo = "todo",
        /// Being worked on.
        InProgress = "in_progress",
        /// Awaiting review.
        Review = "review",
        /// Finished.
        Done = "done",
    }
);

string_enum!(
    /// Urgency of a task.
    Priority, "priority" {
        /// Whenever.
        Low = "low",
        /// Normal.
        Medium = "medium",
        /// Soon.
        High = "high",
        /// Now.
        Urgent = "urgent",
    }
);

/// A project with its owner and members.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Project {
    /// Id within the tenant.
    pub id: ProjectId,
    /// Name.
    pub name: String,
    /// Description (may be empty).
    pub description: String,
    /// Lifecycle status.
    pub status: ProjectStatus,
    /// Planned start.
    pub start_date: Option<NaiveDate>,
    /// Planned end.
    pub end_date: Option<NaiveDate>,
    /// The user who created it.
    pub owner: UserSummary,
    /// Members, by id.
    pub members: Vec<UserSummary>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

impl Project {
    /// Whether `user` owns the project or is one of its members.
    pub fn involves(&self, user: UserId) -> bool {
        self.owner.id == user || self.members.iter().any(|m| m.id == user)
    }
}

/// A validated new project; what a backend stores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewProjectRecord {
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Status.
    pub status: ProjectStatus,
    /// Planned start.
    pub start_date: Option<NaiveDate>,
    /// Planned end.
    pub end_date: Option<NaiveDate>,
    /// Owner.
    pub owner: UserId,
    /// Creation time (also the first `updated_at`).
    pub created_at: DateTime<Utc>,
}

/// A task of a project.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Task {
    /// Id within the tenant.
    pub id: TaskId,
    /// The project it belongs to.
    pub project_id: ProjectId,
    /// Title.
    pub title: String,
    /// Description (may be empty).
    pub description: String,
    /// Progress.
    pub status: TaskStatus,
    /// Urgency.
    pub priority: Priority,
    /// Assignee.
    pub assigned_to: Option<UserSummary>,
    /// Creator.
    pub created_by: UserSummary,
    /// Due time.
    pub due_date: Option<DateTime<Utc>>,
    /// Set when the task became done; cleared when it is reopened.
    pub completed_at: Option<DateTime<Utc>>,
    /// When work on it started: the time it last left `todo` (its
    /// `created_at` when created in another status), cleared when it goes
    /// back to `todo`. The storage keeps it (a trigger of tenant schema
    /// version 4 on SQLite, 6 on PostgreSQL), so every writer maintains it,
    /// older builds included. `None` for tasks that left `todo` before
    /// that version, and as read by a build older than it.
    pub started_at: Option<DateTime<Utc>>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

impl Task {
    /// A task is overdue when its due date is past and it is not done.
    pub fn is_overdue(&self, now: DateTime<Utc>) -> bool {
        self.status != TaskStatus::Done && self.due_date.is_some_and(|d| d < now)
    }
}

/// A validated new task; what a backend stores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTaskRecord {
    /// The project.
    pub project_id: ProjectId,
    /// Title.
    pub title: String,
    /// Description.
    pub description: String,
    /// Progress.
    pub status: TaskStatus,
    /// Urgency.
    pub priority: Priority,
    /// Assignee (an active user of the tenant).
    pub assigned_to: Option<UserId>,
    /// Creator.
    pub created_by: UserId,
    /// Due time.
    pub due_date: Option<DateTime<Utc>>,
    /// Completion time (set when created as done).
    pub completed_at: Option<DateTime<Utc>>,
    /// Creation time (also the first `updated_at`).
    pub created_at: DateTime<Utc>,
}

/// Which projects (and so which tasks) a query may see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Every project of the tenant (admins, jobs).
    All,
    /// Projects the user owns or is a member of.
    InvolvedIn(UserId),
}

/// Field a task list is ordered by. Ties are always broken by id, ascending.
/// Missing due dates and start times sort last in both directions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TaskOrderField {
    /// Creation time (the default, newest first).
    #[default]
    CreatedAt,
    /// Last change.
    UpdatedAt,
    /// Due time.
    DueDate,
    /// Start of work ([`Task::started_at`]); tasks not started sort last
    /// in both directions.
    StartedAt,
    /// Priority rank (low < medium < high < urgent).
    Priority,
    /// Status rank (todo < in_progress < review < done).
    Status,
    /// Title, by byte order.
    Title,
    /// Id.
    Id,
}

impl TaskOrderField {
    /// Every field.
    pub const ALL: &'static [TaskOrderField] = &[
        TaskOrderField::CreatedAt,
        TaskOrderField::UpdatedAt,
        TaskOrderField::DueDate,
        TaskOrderField::StartedAt,
        TaskOrderField::Priority,
        TaskOrderField::Status,
        TaskOrderField::Title,
        TaskOrderField::Id,
    ];

    /// The field's name, as `?ordering=` takes it (and as both backends
    /// name the column).
    pub fn as_str(self) -> &'static str {
        match self {
            TaskOrderField::CreatedAt => "created_at",
            TaskOrderField::UpdatedAt => "updated_at",
            TaskOrderField::DueDate => "due_date",
            TaskOrderField::StartedAt => "started_at",
            TaskOrderField::Priority => "priority",
            TaskOrderField::Status => "status",
            TaskOrderField::Title => "title",
            TaskOrderField::Id => "id",
        }
    }
}

/// Ordering of a task list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskOrdering {
    /// The field.
    pub field: TaskOrderField,
    /// Largest first.
    pub descending: bool,
}

impl Default for TaskOrdering {
    fn default() -> Self {
        TaskOrdering {
            field: TaskOrderField::CreatedAt,
            descending: true,
        }
    }
}

impl FromStr for TaskOrdering {
    type Err = Error;
    /// DRF's `?ordering=` syntax: a field name, `-` in front for descending.
    fn from_str(s: &str) -> Result<Self> {
        let (descending, name) = match s.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, s),
        };
        let field = TaskOrderField::ALL
            .iter()
            .copied()
            .find(|f| f.as_str() == name)
            .ok_or_else(|| {
                Error::invalid(
                    "ordering",
                    "must be one of: created_at, updated_at, due_date, priority, status, title, id (with - for descending)",
                )
            })?;
        Ok(TaskOrdering { field, descending })
    }
}

/// Longest search string accepted.
pub const MAX_SEARCH_CHARS: usize = 200;

/// A task filter; every condition present must hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskQuery {
    /// Visibility.
    pub scope: Scope,
    /// Only tasks of this project.
    pub project: Option<ProjectId>,
    /// Only tasks with this status.
    pub status: Option<TaskStatus>,
    /// Only tasks with this priority.
    pub priority: Option<Priority>,
    /// Only tasks assigned to this user.
    pub assigned_to: Option<UserId>,
    /// Only tasks whose title or description contains this text, ignoring
    /// ASCII case. `%`, `_` and `\` are literal.
    pub search: Option<String>,
    /// Only tasks that are not done and due strictly before this time.
    pub overdue_at: Option<DateTime<Utc>>,
    /// Only tasks due at or after this time.
    pub due_from: Option<DateTime<Utc>>,
    /// Only tasks due strictly before this time.
    pub due_until: Option<DateTime<Utc>>,
    /// Ordering of the results.
    pub ordering: TaskOrdering,
}

impl TaskQuery {
    /// Every task in `scope`, newest first.
    pub fn new(scope: Scope) -> Self {
        TaskQuery {
            scope,
            project: None,
            status: None,
            priority: None,
            assigned_to: None,
            search: None,
            overdue_at: None,
            due_from: None,
            due_until: None,
            ordering: TaskOrdering::default(),
        }
    }

    /// Every task of `project`, whoever sees it (statistics count these).
    pub fn in_project(project: ProjectId) -> Self {
        TaskQuery {
            project: Some(project),
            ..TaskQuery::new(Scope::All)
        }
    }

    /// Whether `task` (in a project visible under this query's scope) passes
    /// every filter. Backends answer in SQL; this is the reference they are
    /// tested against.
    pub fn matches(&self, task: &Task) -> bool {
        self.project.is_none_or(|p| task.project_id == p)
            && self.status.is_none_or(|s| task.status == s)
            && self.priority.is_none_or(|p| task.priority == p)
            && self
                .assigned_to
                .is_none_or(|u| task.assigned_to.as_ref().is_some_and(|a| a.id == u))
            && self.search.as_deref().is_none_or(|s| {
                let s = s.to_ascii_lowercase();
                task.title.to_ascii_lowercase().contains(&s)
                    || task.description.to_ascii_lowercase().contains(&s)
            })
            && self.overdue_at.is_none_or(|now| task.is_overdue(now))
            && self
                .due_from
                .is_none_or(|from| task.due_date.is_some_and(|d| d >= from))
            && self
                .due_until
                .is_none_or(|until| task.due_date.is_some_and(|d| d < until))
    }
}

/// Counts of tasks by status and priority, and how many are overdue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct TaskCounts {
    /// All tasks counted.
    pub total: u64,
    /// Indexed by [`TaskStatus::rank`].
    pub by_status: [u64; 4],
    /// Indexed by [`Priority::rank`].
    pub by_priority: [u64; 4],
    /// Not done and past due.
    pub overdue: u64,
}

impl TaskCounts {
    /// Count for one status.
    pub fn status(&self, s: TaskStatus) -> u64 {
        self.by_status[s as usize]
    }

    /// Count for one priority.
    pub fn priority(&self, p: Priority) -> u64 {
        self.by_priority[p as usize]
    }

    /// Adds one task as of `now` (the reference for backends' SQL counts).
    pub fn add(&mut self, task: &Task, now: DateTime<Utc>) {
        self.total += 1;
        self.by_status[task.status as usize] += 1;
        self.by_priority[task.priority as usize] += 1;
        if task.is_overdue(now) {
            self.overdue += 1;
        }
    }
}

/// Counts of projects by status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct ProjectCounts {
    /// All projects counted.
    pub total: u64,
    /// Indexed by [`ProjectStatus::rank`].
    pub by_status: [u64; 5],
}

impl ProjectCounts {
    /// Count for one status.
    pub fn status(&self, s: ProjectStatus) -> u64 {
        self.by_status[s as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enums_parse_and_rank() {
        assert_eq!(
            "on_hold".parse::<ProjectStatus>().unwrap(),
            ProjectStatus::OnHold
        );
        assert_eq!(TaskStatus::Done.rank(), 3);
        assert_eq!(Priority::from_rank(3), Some(Priority::Urgent));
        assert_eq!(Priority::from_rank(4), None);
        let err = "urgentissimo".parse::<Priority>().unwrap_err().to_string();
        assert!(err.contains("low, medium, high, urgent"), "{err}");
        assert!("DONE".parse::<TaskStatus>().is_err());
    }

    #[test]
    fn ordering_syntax() {
        let o: TaskOrdering = "-due_date".parse().unwrap();
        assert_eq!(o.field, TaskOrderField::DueDate);
        assert!(o.descending);
        assert!("password".parse::<TaskOrdering>().is_err());
    }
}
