//! Counts: a project's statistics, the dashboard, and usage against a plan.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use saas_core::session::{Dashboard, ProjectStatistics, Usage};
use serde::Serialize;
use utoipa::ToSchema;

use super::tasks::TaskOut;

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
