//! What a task list asks of storage, said once for every backend: the
//! conditions of a [`TaskQuery`], the keys of its [`TaskOrdering`], and
//! whether a tally of tasks by project, assignee, status and priority can
//! answer its counts.
//!
//! Backends only render these into their SQL dialect. The conditions come
//! in one fixed order, so a query of a given shape always renders to the
//! same statement text: prepared-statement caches key on that text.

use chrono::{DateTime, Utc};

use crate::projects::{
    Priority, ProjectId, Scope, TaskOrderField, TaskOrdering, TaskQuery, TaskStatus,
};
use crate::users::UserId;

/// The stored rank of [`TaskStatus::Done`] as SQL text, for backends to
/// splice into statements and partial indexes. A planner uses a partial
/// index (`WHERE status <> 3`) only for queries that spell the condition
/// the same way, so every statement takes the rank from here.
pub const DONE_RANK: &str = "3";

/// The stored rank of [`TaskStatus::Todo`] as SQL text (see [`DONE_RANK`]).
pub const TODO_RANK: &str = "0";

const _: () = assert!(
    TODO_RANK.len() == 1 && (TODO_RANK.as_bytes()[0] - b'0') as i64 == TaskStatus::Todo as i64,
    "TODO_RANK must spell TaskStatus::Todo's rank"
);

const _: () = assert!(
    DONE_RANK.len() == 1 && (DONE_RANK.as_bytes()[0] - b'0') as i64 == TaskStatus::Done as i64,
    "DONE_RANK must spell TaskStatus::Done's rank"
);

/// One condition of a task query. Every condition of a query must hold.
///
/// Not `non_exhaustive`, on purpose: a new condition must fail to compile
/// in every backend until it renders it, never be skipped by a wildcard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskCondition<'a> {
    /// The task's project is owned by this user or has them as a member
    /// (the query's [`Scope::InvolvedIn`]).
    InvolvedIn(UserId),
    /// The task belongs to this project.
    Project(ProjectId),
    /// The task has this status (stored as its rank).
    Status(TaskStatus),
    /// The task has this priority (stored as its rank).
    Priority(Priority),
    /// The task is assigned to this user.
    AssignedTo(UserId),
    /// The title or the description contains this text, ignoring ASCII
    /// case; `%`, `_` and `\` are literal (no pattern matching).
    Search(&'a str),
    /// The task is not done and is due strictly before this time.
    Overdue(DateTime<Utc>),
    /// The task is due at or after this time.
    DueFrom(DateTime<Utc>),
    /// The task is due strictly before this time.
    DueUntil(DateTime<Utc>),
}

impl TaskCondition<'_> {
    /// Whether a tally keyed by project, assignee, status and priority can
    /// tell this condition (the scope too: it is a condition on projects).
    pub fn tallied(&self) -> bool {
        matches!(
            self,
            TaskCondition::InvolvedIn(_)
                | TaskCondition::Project(_)
                | TaskCondition::Status(_)
                | TaskCondition::Priority(_)
                | TaskCondition::AssignedTo(_)
        )
    }
}

impl TaskQuery {
    /// The query's scope and filters as conditions, always in this order:
    /// scope, project, status, priority, assignee, search, overdue, due
    /// from, due until. Exactly [`TaskQuery::matches`] within the scope.
    pub fn conditions(&self) -> Vec<TaskCondition<'_>> {
        let scope = match self.scope {
            Scope::All => None,
            Scope::InvolvedIn(user) => Some(TaskCondition::InvolvedIn(user)),
        };
        [
            scope,
            self.project.map(TaskCondition::Project),
            self.status.map(TaskCondition::Status),
            self.priority.map(TaskCondition::Priority),
            self.assigned_to.map(TaskCondition::AssignedTo),
            self.search.as_deref().map(TaskCondition::Search),
            self.overdue_at.map(TaskCondition::Overdue),
            self.due_from.map(TaskCondition::DueFrom),
            self.due_until.map(TaskCondition::DueUntil),
        ]
        .into_iter()
        .flatten()
        .collect()
    }

    /// Whether every condition is [`TaskCondition::tallied`], so the
    /// query's counts can be summed from a tally instead of counting tasks.
    pub fn tally_serves(&self) -> bool {
        self.conditions().iter().all(TaskCondition::tallied)
    }

    /// The same query, limited to the tasks overdue at `now`: what a
    /// count of overdue tasks among this query's matches asks.
    pub fn overdue_as_of(&self, now: DateTime<Utc>) -> TaskQuery {
        TaskQuery {
            overdue_at: Some(now),
            ..self.clone()
        }
    }
}

/// One key of a task list's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderKey {
    /// The field. Missing due dates and start times sort last in both
    /// directions; titles sort by bytes.
    pub field: TaskOrderField,
    /// Largest first.
    pub descending: bool,
}

impl OrderKey {
    /// `"DESC"` or `"ASC"`.
    pub fn direction(&self) -> &'static str {
        if self.descending { "DESC" } else { "ASC" }
    }
}

impl TaskOrdering {
    /// The keys a list is sorted by: the field, then ties by id ascending
    /// (one key when the field is the id).
    pub fn keys(&self) -> Vec<OrderKey> {
        let first = OrderKey {
            field: self.field,
            descending: self.descending,
        };
        if self.field == TaskOrderField::Id {
            vec![first]
        } else {
            vec![
                first,
                OrderKey {
                    field: TaskOrderField::Id,
                    descending: false,
                },
            ]
        }
    }
}

/// How a backend's SQL writes the keys of a task list's order. In each
/// template `{field}` is the field's name and `{dir}` is `ASC` or `DESC`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderSpelling {
    /// A key on a column compared as stored (times, ranks, ids).
    pub column: &'static str,
    /// A time that may be missing (the due date, the start), missing
    /// ones last in both directions.
    pub nullable: &'static str,
    /// The title, compared by bytes.
    pub title: &'static str,
}

impl TaskOrdering {
    /// The ORDER BY list of [`TaskOrdering::keys`], each written as
    /// `spelling` says, joined by `", "`.
    pub fn order_by(&self, spelling: &OrderSpelling) -> String {
        let keys: Vec<String> = self
            .keys()
            .iter()
            .map(|key| {
                let template = match key.field {
                    TaskOrderField::DueDate | TaskOrderField::StartedAt => spelling.nullable,
                    TaskOrderField::Title => spelling.title,
                    _ => spelling.column,
                };
                template
                    .replace("{field}", key.field.as_str())
                    .replace("{dir}", key.direction())
            })
            .collect();
        keys.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_come_in_one_order() {
        let now = DateTime::from_timestamp(1_700_000_000, 0).expect("time");
        let mut q = TaskQuery::new(Scope::InvolvedIn(UserId(7)));
        q.due_until = Some(now);
        q.search = Some("x".into());
        q.status = Some(TaskStatus::Review);
        assert_eq!(
            q.conditions(),
            vec![
                TaskCondition::InvolvedIn(UserId(7)),
                TaskCondition::Status(TaskStatus::Review),
                TaskCondition::Search("x"),
                TaskCondition::DueUntil(now),
            ]
        );
        assert!(!q.tally_serves());
        q.search = None;
        q.due_until = None;
        assert!(q.tally_serves());
        assert!(!q.overdue_as_of(now).tally_serves());
        assert!(TaskQuery::new(Scope::All).conditions().is_empty());
    }

    #[test]
    fn ties_go_by_id() {
        let keys = |s: &str| {
            s.parse::<TaskOrdering>()
                .expect("ordering")
                .keys()
                .iter()
                .map(|k| format!("{} {}", k.field.as_str(), k.direction()))
                .collect::<Vec<_>>()
        };
        assert_eq!(keys("-due_date"), ["due_date DESC", "id ASC"]);
        assert_eq!(keys("title"), ["title ASC", "id ASC"]);
        assert_eq!(keys("-id"), ["id DESC"]);
        let spelling = OrderSpelling {
            column: "x.{field} {dir}",
            nullable: "{field} {dir} last",
            title: "title {dir} bytes",
        };
        let order_by = |s: &str| {
            s.parse::<TaskOrdering>()
                .expect("ordering")
                .order_by(&spelling)
        };
        assert_eq!(order_by("-created_at"), "x.created_at DESC, x.id ASC");
        assert_eq!(order_by("due_date"), "due_date ASC last, x.id ASC");
        assert_eq!(order_by("-started_at"), "started_at DESC last, x.id ASC");
        assert_eq!(order_by("-title"), "title DESC bytes, x.id ASC");
        assert_eq!(order_by("id"), "x.id ASC");
    }
}
