//! Tasks: the task object, and the bodies that create and change tasks.

use chrono::{DateTime, Utc};
use saas_core::commands::{NewTask, TaskPatch};
use saas_core::patch::Patch;
use saas_core::projects::{Priority, ProjectId, Task, TaskStatus};
use saas_core::users::UserId;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::fields;
use super::rules;
use super::users::UserSummaryOut;

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
    /// When work on it started: when it last left `todo` (read-only; null
    /// for tasks in `todo`, and for tasks started before the server stored
    /// it).
    pub started_at: Option<DateTime<Utc>>,
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
            started_at: t.started_at,
            created_at: t.created_at,
            updated_at: t.updated_at,
        }
    }
}

/// `POST /api/tasks/`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(expecting = "struct NewTask")]
pub struct NewTaskIn {
    /// Project id.
    #[serde(deserialize_with = "fields::required")]
    #[schema(value_type = i64)]
    pub project: ProjectId,
    /// 1 to 200 characters.
    #[schema(schema_with = rules::title)]
    pub title: String,
    /// Description.
    #[serde(default)]
    #[schema(schema_with = rules::description)]
    pub description: String,
    /// `todo` (default), `in_progress`, `review`, `done`.
    #[serde(default)]
    #[schema(schema_with = rules::task_status)]
    pub status: Option<TaskStatus>,
    /// `low`, `medium` (default), `high`, `urgent`.
    #[serde(default)]
    #[schema(schema_with = rules::priority)]
    pub priority: Option<Priority>,
    /// Id of the assignee: the project's owner or one of its members.
    #[serde(default, deserialize_with = "fields::optional")]
    #[schema(value_type = Option<i64>)]
    pub assigned_to_id: Option<UserId>,
    /// Due time.
    #[serde(default, deserialize_with = "fields::optional")]
    #[schema(schema_with = rules::datetime)]
    pub due_date: Option<DateTime<Utc>>,
}

impl From<NewTaskIn> for NewTask {
    fn from(b: NewTaskIn) -> Self {
        NewTask {
            project: b.project,
            title: b.title,
            description: b.description,
            status: b.status,
            priority: b.priority,
            assigned_to_id: b.assigned_to_id,
            due_date: b.due_date,
        }
    }
}

/// `PATCH /api/tasks/{id}/`: absent fields stay as they are; `null`
/// unassigns or clears the due time (and leaves any other field as it is).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(expecting = "struct TaskPatch")]
pub struct TaskPatchIn {
    /// Id of a project to move the task to (checked as creating it there).
    #[serde(default, deserialize_with = "fields::optional")]
    #[schema(value_type = Option<i64>)]
    pub project: Option<ProjectId>,
    /// New title.
    #[schema(schema_with = rules::title_patch)]
    pub title: Option<String>,
    /// New description.
    #[schema(schema_with = rules::description_patch)]
    pub description: Option<String>,
    /// New status (`done` sets `completed_at`; leaving `done` clears it).
    #[schema(schema_with = rules::task_status)]
    pub status: Option<TaskStatus>,
    /// New priority.
    #[schema(schema_with = rules::priority)]
    pub priority: Option<Priority>,
    /// Id of the new assignee, or `null` to unassign.
    #[serde(default, deserialize_with = "fields::patch")]
    #[schema(value_type = Option<i64>)]
    pub assigned_to_id: Patch<UserId>,
    /// New due time, or `null` for none.
    #[serde(default, deserialize_with = "fields::patch")]
    #[schema(schema_with = rules::datetime)]
    pub due_date: Patch<DateTime<Utc>>,
}

impl From<TaskPatchIn> for TaskPatch {
    fn from(b: TaskPatchIn) -> Self {
        TaskPatch {
            project: b.project,
            title: b.title,
            description: b.description,
            status: b.status,
            priority: b.priority,
            assigned_to_id: b.assigned_to_id,
            due_date: b.due_date,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn new_task_bodies() {
        for bad in [
            json!({"project": 1, "title": "x", "priority": "critical"}),
            json!({"project": 1, "title": "x", "status": "blocked"}),
            json!({"project": "one", "title": "x"}),
            json!({"title": "x"}),
            json!({"project": 1, "title": "x", "due_date": "tomorrow"}),
        ] {
            assert!(
                serde_json::from_value::<NewTaskIn>(bad.clone()).is_err(),
                "{bad}"
            );
        }
        let new: NewTask = serde_json::from_value::<NewTaskIn>(
            json!({"project": 7, "title": "x", "assigned_to_id": null, "due_date": "2030-01-01T10:00:00Z"}),
        )
        .unwrap()
        .into();
        assert_eq!(new.project, ProjectId(7));
        assert_eq!(new.assigned_to_id, None);
        assert!(new.due_date.is_some());
    }

    #[test]
    fn task_patch_bodies_keep_clear_or_set() {
        assert!(serde_json::from_value::<TaskPatchIn>(json!({"priority": "p0"})).is_err());
        let patch: TaskPatch = serde_json::from_value::<TaskPatchIn>(
            json!({"assigned_to_id": null, "due_date": null}),
        )
        .unwrap()
        .into();
        assert_eq!(patch.assigned_to_id, Patch::Clear);
        assert_eq!(patch.due_date, Patch::Clear);
        let patch: TaskPatch =
            serde_json::from_value::<TaskPatchIn>(json!({"assigned_to_id": 3, "title": null}))
                .unwrap()
                .into();
        assert_eq!(patch.assigned_to_id, Patch::Set(UserId(3)));
        assert_eq!(patch.due_date, Patch::Keep);
        assert_eq!(patch.title, None, "null leaves a title as it is");
    }
}
