//! Partial updates: a change to a user, project or task names only the
//! columns it writes, so that two writers changing different fields of the
//! same row never undo each other (a user's own edit of their name cannot
//! write back the role an admin just took away).
//!
//! [`UserChanges`], [`ProjectChanges`] and [`TaskChanges`] hold the fields
//! a request changed (`None`: not written); [`changed`] is how a session
//! decides that. Their `columns` are the same change as SQL backends write
//! it: column names and [`Value`]s in a fixed order, which a backend renders
//! as `SET a = ?, b = ?` ([`Columns::assignments`]) and binds value by value.

use chrono::{DateTime, NaiveDate, Utc};

use crate::projects::{Priority, ProjectId, ProjectStatus, TaskStatus};
use crate::users::{Email, Role, UserId};

/// The new value of a field, if it differs from the current one.
pub fn changed<T: PartialEq>(new: Option<T>, current: &T) -> Option<T> {
    new.filter(|n| n != current)
}

/// A column's new value, in the shapes the backends store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// Text (names, email, role).
    Text(String),
    /// A status or priority, by rank.
    Rank(i64),
    /// A flag.
    Bool(bool),
    /// A reference to another row, or none.
    Id(Option<i64>),
    /// A point in time, or none.
    Time(Option<DateTime<Utc>>),
    /// A calendar date, or none.
    Date(Option<NaiveDate>),
}

/// The columns a change writes, in a fixed order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Columns(Vec<(&'static str, Value)>);

impl Columns {
    fn set(&mut self, column: &'static str, value: Option<Value>) {
        if let Some(value) = value {
            self.0.push((column, value));
        }
    }

    /// Whether nothing is written.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The columns and their values.
    pub fn iter(&self) -> impl Iterator<Item = &(&'static str, Value)> {
        self.0.iter()
    }

    /// `a = <p>, b = <p>`, the placeholders numbered from `first` and
    /// written by `placeholder` (`?1` or `$1`).
    pub fn assignments(&self, first: usize, placeholder: fn(usize) -> String) -> String {
        self.0
            .iter()
            .enumerate()
            .map(|(i, (c, _))| format!("{c} = {}", placeholder(first + i)))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn text(s: &Option<String>) -> Option<Value> {
    s.clone().map(Value::Text)
}

/// The fields of a user a change writes. Deactivating bumps the token
/// version (backends do that with the write).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserChanges {
    /// Email address.
    pub email: Option<Email>,
    /// Given name.
    pub first_name: Option<String>,
    /// Family name.
    pub last_name: Option<String>,
    /// Role.
    pub role: Option<Role>,
    /// Department.
    pub department: Option<String>,
    /// Active flag.
    pub is_active: Option<bool>,
}

impl UserChanges {
    /// The columns written.
    pub fn columns(&self) -> Columns {
        let mut c = Columns::default();
        c.set(
            "email",
            self.email
                .as_ref()
                .map(|e| Value::Text(e.as_str().to_owned())),
        );
        c.set("first_name", text(&self.first_name));
        c.set("last_name", text(&self.last_name));
        c.set(
            "role",
            self.role.map(|r| Value::Text(r.as_str().to_owned())),
        );
        c.set("department", text(&self.department));
        c.set("is_active", self.is_active.map(Value::Bool));
        c
    }
}

/// The fields of a project a change writes; `updated_at` always.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectChanges {
    /// Name.
    pub name: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// Status.
    pub status: Option<ProjectStatus>,
    /// Planned start, or none.
    pub start_date: Option<Option<NaiveDate>>,
    /// Planned end, or none.
    pub end_date: Option<Option<NaiveDate>>,
    /// Time of the change.
    pub updated_at: DateTime<Utc>,
}

impl ProjectChanges {
    /// No field changed, at `updated_at`.
    pub fn at(updated_at: DateTime<Utc>) -> Self {
        ProjectChanges {
            name: None,
            description: None,
            status: None,
            start_date: None,
            end_date: None,
            updated_at,
        }
    }

    /// The columns written.
    pub fn columns(&self) -> Columns {
        let mut c = Columns::default();
        c.set("name", text(&self.name));
        c.set("description", text(&self.description));
        c.set("status", self.status.map(|s| Value::Rank(s.rank())));
        c.set("start_date", self.start_date.map(Value::Date));
        c.set("end_date", self.end_date.map(Value::Date));
        c.set("updated_at", Some(Value::Time(Some(self.updated_at))));
        c
    }
}

/// The fields of a task a change writes; `updated_at` always.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskChanges {
    /// Another project (checked by the backend against the destination's
    /// per-project limit).
    pub project_id: Option<ProjectId>,
    /// Title.
    pub title: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// Progress.
    pub status: Option<TaskStatus>,
    /// Urgency.
    pub priority: Option<Priority>,
    /// Assignee, or none.
    pub assigned_to: Option<Option<UserId>>,
    /// Due time, or none.
    pub due_date: Option<Option<DateTime<Utc>>>,
    /// Completion time, or none.
    pub completed_at: Option<Option<DateTime<Utc>>>,
    /// Time of the change.
    pub updated_at: DateTime<Utc>,
}

impl TaskChanges {
    /// No field changed, at `updated_at`.
    pub fn at(updated_at: DateTime<Utc>) -> Self {
        TaskChanges {
            project_id: None,
            title: None,
            description: None,
            status: None,
            priority: None,
            assigned_to: None,
            due_date: None,
            completed_at: None,
            updated_at,
        }
    }

    /// The columns written.
    pub fn columns(&self) -> Columns {
        let mut c = Columns::default();
        c.set("project_id", self.project_id.map(|p| Value::Id(Some(p.0))));
        c.set("title", text(&self.title));
        c.set("description", text(&self.description));
        c.set("status", self.status.map(|s| Value::Rank(s.rank())));
        c.set("priority", self.priority.map(|p| Value::Rank(p.rank())));
        c.set(
            "assigned_to",
            self.assigned_to.map(|a| Value::Id(a.map(|u| u.0))),
        );
        c.set("due_date", self.due_date.map(Value::Time));
        c.set("completed_at", self.completed_at.map(Value::Time));
        c.set("updated_at", Some(Value::Time(Some(self.updated_at))));
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_changed_fields_are_columns() {
        assert_eq!(changed(Some(1), &1), None);
        assert_eq!(changed(Some(2), &1), Some(2));
        assert_eq!(changed::<i32>(None, &1), None);
        let u = UserChanges {
            first_name: Some("Ann".into()),
            is_active: Some(false),
            ..UserChanges::default()
        };
        let cols = u.columns();
        let names: Vec<_> = cols.iter().map(|(c, _)| *c).collect();
        assert_eq!(names, ["first_name", "is_active"]);
        assert_eq!(
            cols.assignments(2, |i| format!("${i}")),
            "first_name = $2, is_active = $3"
        );
        assert!(UserChanges::default().columns().is_empty());
        let now = Utc::now();
        let t = TaskChanges {
            assigned_to: Some(None),
            ..TaskChanges::at(now)
        };
        assert_eq!(
            t.columns().iter().cloned().collect::<Vec<_>>(),
            [
                ("assigned_to", Value::Id(None)),
                ("updated_at", Value::Time(Some(now)))
            ]
        );
    }
}
