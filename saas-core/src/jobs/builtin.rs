//! The seed's background jobs, doing real work through the tenant's scoped
//! handle:
//!
//! | kind | scope | what |
//! | --- | --- | --- |
//! | `send_welcome_email` | tenant | emails a new user (enqueued by [`WelcomeEmailListener`]) |
//! | `send_task_reminder_email` | tenant | emails assignees of one task, or of every open task due within a window |
//! | `check_overdue_tasks` | tenant | emails each assignee their overdue tasks (daily, via `fan_out_tenants`) |
//! | `generate_project_report` | tenant | a JSON report stored as the job's result; refused without the plan's reports feature |
//! | `cleanup_old_data` | tenant | deletes old done tasks, prunes expired refresh tokens (weekly, via `fan_out_tenants`) |
//! | `fan_out_tenants` | platform | enqueues one tenant job per active tenant |
//! | `prune_jobs` | platform | deletes finished jobs older than the retention (weekly) |
//! | `purge_deleted_tenants` | platform | purges tenants deleted longer than the retention ago, then orphaned storage (daily; [`super::purge`]) |
//!
//! [`builtin_schedule`] gives the periodic entries for a [`super::Scheduler`].

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

pub use super::job::NoPayload;
use super::job::{Job, JobContext, JobError, JobRegistry, JobScope, truncate_micros};
use super::mail::Message;
use super::purge::PurgeDeletedTenants;
use super::queue::{JobQueue, NewJob, validate_kind};
use super::scheduler::{Missed, Periodic};
use crate::clock::Clock;
use crate::error::{Entity, Error, Result};
use crate::projects::{
    Priority, ProjectId, Scope, Task, TaskId, TaskOrderField, TaskOrdering, TaskQuery, TaskStatus,
};
use crate::service::Listener;
use crate::store::{Page, TenantStore};
use crate::tenancy::{Tenant, TenantStatus};
use crate::users::{User, UserId, UserSummary};

/// Settings of the built-in jobs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltinConfig {
    /// Reminders cover open tasks due within this window from now (default 24 h).
    pub reminder_window: Duration,
    /// `cleanup_old_data` deletes done tasks completed longer ago than this
    /// (default 90 days).
    pub done_task_retention: Duration,
    /// `prune_jobs` deletes jobs finished longer ago than this (default 30
    /// days). Keep it longer than the longest periodic interval: finished
    /// periodic jobs hold their period's unique key until pruned.
    pub job_retention: Duration,
    /// `purge_deleted_tenants` purges tenants deleted longer ago than this
    /// (default 7 days); until then an operator can restore them.
    pub tenant_retention: Duration,
}

impl Default for BuiltinConfig {
    fn default() -> Self {
        BuiltinConfig {
            reminder_window: Duration::from_secs(24 * 3600),
            done_task_retention: Duration::from_secs(90 * 24 * 3600),
            job_retention: Duration::from_secs(30 * 24 * 3600),
            tenant_retention: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

/// Registers every built-in job.
pub fn register_all(registry: &mut JobRegistry, config: &BuiltinConfig) {
    registry
        .register(SendWelcomeEmail)
        .register(SendTaskReminderEmail {
            window: config.reminder_window,
        })
        .register(CheckOverdueTasks)
        .register(GenerateProjectReport)
        .register(CleanupOldData {
            retention: config.done_task_retention,
        })
        .register(FanOutTenants)
        .register(PruneJobs {
            retention: config.job_retention,
        })
        .register(PurgeDeletedTenants {
            retention: config.tenant_retention,
        });
}

/// The periodic entries of the seed's celery beat, in UTC: overdue checks
/// daily at 08:00, reminders daily at 07:00, cleanup and job pruning weekly
/// on Sunday at 03:00; and purging deleted tenants daily at 03:15. Missed
/// periods run once.
pub fn builtin_schedule() -> Result<Vec<Periodic>> {
    let fan = |kind: &str| {
        NewJob::new(FanOutTenants::KIND, json!({ "kind": kind, "payload": {} }))
            .max_attempts(FanOutTenants::MAX_ATTEMPTS)
    };
    Ok(vec![
        Periodic::new(
            "check_overdue_tasks",
            "0 0 8 * * *",
            fan(CheckOverdueTasks::KIND),
        )?
        .missed(Missed::RunOnce),
        Periodic::new(
            "send_task_reminder_email",
            "0 0 7 * * *",
            fan(SendTaskReminderEmail::KIND),
        )?
        .missed(Missed::Skip)
        .lateness(Duration::from_secs(3600)),
        Periodic::new(
            "cleanup_old_data",
            "0 0 3 * * Sun",
            fan(CleanupOldData::KIND),
        )?
        .missed(Missed::RunOnce),
        Periodic::new(
            "prune_jobs",
            "0 30 3 * * Sun",
            NewJob::new(PruneJobs::KIND, json!({})).max_attempts(PruneJobs::MAX_ATTEMPTS),
        )?
        .missed(Missed::RunOnce),
        Periodic::new(
            "purge_deleted_tenants",
            "0 15 3 * * *",
            NewJob::new(PurgeDeletedTenants::KIND, json!({}))
                .max_attempts(PurgeDeletedTenants::MAX_ATTEMPTS),
        )?
        .missed(Missed::RunOnce),
    ])
}

fn ago(now: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(d)
        .ok()
        .and_then(|d| now.checked_sub_signed(d))
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

fn ahead(now: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(d)
        .ok()
        .and_then(|d| now.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// Every task matching `query`, by id (pages through the store).
async fn all_tasks(store: &dyn TenantStore, mut query: TaskQuery) -> Result<Vec<Task>> {
    query.ordering = TaskOrdering {
        field: TaskOrderField::Id,
        descending: false,
    };
    Page::every(|page| store.list_tasks(&query, page)).await
}

/// Every active tenant, oldest first.
async fn active_tenants(ctx: &JobContext) -> Result<Vec<Tenant>> {
    let store = ctx.saas().store();
    let mut all = Page::every(|page| store.list_tenants(page)).await?;
    all.retain(|t| t.status == TenantStatus::Active);
    Ok(all)
}

fn task_line(t: &Task) -> String {
    let due = t
        .due_date
        .map(|d| d.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|| "no due date".into());
    format!(
        "- {} (task #{}, project #{}, priority {}, status {}, due {})",
        t.title, t.id, t.project_id, t.priority, t.status, due
    )
}

fn greeting(u: &UserSummary) -> String {
    if u.first_name.is_empty() {
        format!("Hello {},", u.username)
    } else {
        format!("Hello {},", u.first_name)
    }
}

/// Groups tasks by assignee (unassigned tasks are dropped).
fn by_assignee(tasks: Vec<Task>) -> BTreeMap<UserId, (UserSummary, Vec<Task>)> {
    let mut m: BTreeMap<UserId, (UserSummary, Vec<Task>)> = BTreeMap::new();
    for t in tasks {
        if let Some(a) = t.assigned_to.clone() {
            m.entry(a.id).or_insert_with(|| (a, Vec::new())).1.push(t);
        }
    }
    m
}

/// How many emails a job sent, and about how many tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct MailSummary {
    /// Tasks considered.
    pub tasks: u64,
    /// Emails sent.
    pub emails_sent: u64,
}

// --- send_welcome_email ---------------------------------------------------

/// Payload of `send_welcome_email`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WelcomePayload {
    /// The new user.
    pub user_id: UserId,
}

/// Emails a welcome to a new user. A user deleted or deactivated since is
/// skipped.
#[derive(Debug, Clone, Copy, Default)]
pub struct SendWelcomeEmail;

#[async_trait]
impl Job for SendWelcomeEmail {
    const KIND: &'static str = "send_welcome_email";
    type Payload = WelcomePayload;
    type Output = MailSummary;

    async fn run(&self, ctx: &JobContext, p: WelcomePayload) -> Result<MailSummary, JobError> {
        let tenant = ctx.tenant()?;
        let Some(user) = ctx.store()?.user(p.user_id).await? else {
            return Ok(MailSummary::default());
        };
        if !user.is_active {
            return Ok(MailSummary::default());
        }
        let name = if user.first_name.is_empty() {
            user.username.as_str()
        } else {
            user.first_name.as_str()
        };
        let body = format!(
            "Hello {name},\n\nwelcome to {}! Your account `{}` is ready; sign in with your username and password.\n",
            tenant.name, user.username
        );
        ctx.mailer()
            .send(&Message::new(
                user.email.clone(),
                format!("Welcome to {}", tenant.name),
                body,
            ))
            .await?;
        Ok(MailSummary {
            tasks: 0,
            emails_sent: 1,
        })
    }
}

/// Enqueues `send_welcome_email` whenever a user is created. Register it
/// with [`crate::SaasBuilder::listener`]; it needs only the queue, so it can
/// be built before the service.
#[derive(Debug, Clone)]
pub struct WelcomeEmailListener {
    queue: Arc<dyn JobQueue>,
    clock: Arc<dyn Clock>,
}

impl WelcomeEmailListener {
    /// A listener enqueueing on `queue`, timed by `clock`.
    pub fn new(queue: Arc<dyn JobQueue>, clock: Arc<dyn Clock>) -> Self {
        WelcomeEmailListener { queue, clock }
    }
}

#[async_trait]
impl Listener for WelcomeEmailListener {
    async fn user_created(&self, tenant: &Tenant, user: &User) -> Result<()> {
        let job = super::job::new_job::<SendWelcomeEmail>(
            Some(tenant.id),
            &WelcomePayload { user_id: user.id },
        )?
        // One welcome per user, even if the event is delivered twice.
        .unique_key(format!("welcome:{}", user.id));
        self.queue
            .enqueue(&job, truncate_micros(self.clock.now()))
            .await?;
        Ok(())
    }
}

// --- send_task_reminder_email ---------------------------------------------

/// Payload of `send_task_reminder_email`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ReminderPayload {
    /// Remind about this task only (the seed's `send_task_reminder_email(task_id)`).
    #[serde(default)]
    pub task_id: Option<TaskId>,
    /// Otherwise every open task due within this many hours from now
    /// (default: the configured window).
    #[serde(default)]
    pub within_hours: Option<u32>,
}

/// Emails assignees about open tasks coming due: one email per assignee.
#[derive(Debug, Clone, Copy)]
pub struct SendTaskReminderEmail {
    /// Default window.
    pub window: Duration,
}

#[async_trait]
impl Job for SendTaskReminderEmail {
    const KIND: &'static str = "send_task_reminder_email";
    type Payload = ReminderPayload;
    type Output = MailSummary;

    async fn run(&self, ctx: &JobContext, p: ReminderPayload) -> Result<MailSummary, JobError> {
        let tenant = ctx.tenant()?;
        let store = ctx.store()?;
        let now = ctx.now();
        let tasks = match p.task_id {
            Some(id) => store.task(id).await?.into_iter().collect(),
            None => {
                let window = p
                    .within_hours
                    .map(|h| Duration::from_secs(u64::from(h) * 3600))
                    .unwrap_or(self.window);
                let mut q = TaskQuery::new(Scope::All);
                q.due_from = Some(now);
                q.due_until = Some(ahead(now, window));
                all_tasks(&**store, q).await?
            }
        };
        let open: Vec<Task> = tasks
            .into_iter()
            .filter(|t| t.status != TaskStatus::Done)
            .collect();
        let mut summary = MailSummary {
            tasks: open.len() as u64,
            emails_sent: 0,
        };
        for (_, (user, tasks)) in by_assignee(open) {
            let lines: Vec<String> = tasks.iter().map(task_line).collect();
            let subject = if tasks.len() == 1 {
                format!("[{}] Reminder: {}", tenant.name, tasks[0].title)
            } else {
                format!(
                    "[{}] Reminder: {} tasks coming due",
                    tenant.name,
                    tasks.len()
                )
            };
            let body = format!(
                "{}\n\nthese tasks assigned to you are coming due:\n\n{}\n",
                greeting(&user),
                lines.join("\n")
            );
            ctx.mailer()
                .send(&Message::new(user.email.clone(), subject, body))
                .await?;
            summary.emails_sent += 1;
        }
        Ok(summary)
    }
}

// --- check_overdue_tasks ----------------------------------------------------

/// Emails each assignee the list of their overdue tasks (the seed's daily
/// `check_overdue_tasks`, per tenant).
#[derive(Debug, Clone, Copy, Default)]
pub struct CheckOverdueTasks;

#[async_trait]
impl Job for CheckOverdueTasks {
    const KIND: &'static str = "check_overdue_tasks";
    type Payload = NoPayload;
    type Output = MailSummary;

    async fn run(&self, ctx: &JobContext, _: NoPayload) -> Result<MailSummary, JobError> {
        let tenant = ctx.tenant()?;
        let mut q = TaskQuery::new(Scope::All);
        q.overdue_at = Some(ctx.now());
        let overdue = all_tasks(&**ctx.store()?, q).await?;
        let mut summary = MailSummary {
            tasks: overdue.len() as u64,
            emails_sent: 0,
        };
        for (_, (user, tasks)) in by_assignee(overdue) {
            let lines: Vec<String> = tasks.iter().map(task_line).collect();
            let body = format!(
                "{}\n\nthese tasks assigned to you are overdue:\n\n{}\n",
                greeting(&user),
                lines.join("\n")
            );
            ctx.mailer()
                .send(&Message::new(
                    user.email.clone(),
                    format!("[{}] {} overdue task(s)", tenant.name, tasks.len()),
                    body,
                ))
                .await?;
            summary.emails_sent += 1;
        }
        Ok(summary)
    }
}

// --- generate_project_report ----------------------------------------------

/// Payload of `generate_project_report`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportPayload {
    /// The project.
    pub project_id: ProjectId,
}

/// Per-assignee task counts in a report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssigneeCounts {
    /// The assignee.
    pub user_id: UserId,
    /// Their username.
    pub username: String,
    /// Tasks assigned.
    pub total: u64,
    /// Of which done.
    pub done: u64,
    /// Of which not done.
    pub open: u64,
    /// Of which overdue.
    pub overdue: u64,
}

/// A project report (the result of `generate_project_report`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProjectReport {
    /// The project (id, name, description, status, dates, owner).
    pub project: Value,
    /// Members (id, username, email, names, role).
    pub members: Vec<Value>,
    /// All tasks.
    pub total_tasks: u64,
    /// Counts by status name.
    pub tasks_by_status: BTreeMap<String, u64>,
    /// Counts by priority name.
    pub tasks_by_priority: BTreeMap<String, u64>,
    /// Not done and past due.
    pub overdue_tasks: u64,
    /// Done as a percentage of all, one decimal (0 without tasks).
    pub completion_rate: f64,
    /// Counts per assignee, by user id.
    pub assignees: Vec<AssigneeCounts>,
    /// Tasks without an assignee.
    pub unassigned_tasks: u64,
    /// Whether `members` or `assignees` were cut to
    /// [`REPORT_MAX_ENTRIES`] (the counts still cover every task).
    #[serde(default)]
    pub truncated: bool,
    /// When the report was made.
    pub generated_at: DateTime<Utc>,
}

/// Most entries a report lists in `members` and in `assignees`, so a
/// report's size does not grow with the tenant.
pub const REPORT_MAX_ENTRIES: usize = 1_000;

/// Tasks a report reads per page (by key, so every page costs the same).
const REPORT_PAGE: u32 = 500;

/// Builds a [`ProjectReport`]. Refused (dead, no retry) when the tenant's
/// plan has no reports or the project does not exist.
#[derive(Debug, Clone, Copy, Default)]
pub struct GenerateProjectReport;

#[async_trait]
impl Job for GenerateProjectReport {
    const KIND: &'static str = "generate_project_report";
    const MAX_ATTEMPTS: u32 = 3;
    type Payload = ReportPayload;
    type Output = ProjectReport;

    async fn run(&self, ctx: &JobContext, p: ReportPayload) -> Result<ProjectReport, JobError> {
        let tenant = ctx.tenant()?;
        // Checked again at run time: the plan may have changed since enqueue.
        ctx.saas().plan_of(tenant).check_reports()?;
        let store = ctx.store()?;
        let now = ctx.now();
        let project = store
            .project(p.project_id)
            .await?
            .ok_or(Error::not_found(Entity::Project))?;
        let mut by_status: BTreeMap<String, u64> = TaskStatus::ALL
            .iter()
            .map(|s| (s.as_str().to_owned(), 0))
            .collect();
        let mut by_priority: BTreeMap<String, u64> = Priority::ALL
            .iter()
            .map(|s| (s.as_str().to_owned(), 0))
            .collect();
        let mut assignees: BTreeMap<UserId, AssigneeCounts> = BTreeMap::new();
        let (mut done, mut overdue, mut unassigned, mut total) = (0u64, 0u64, 0u64, 0u64);
        let mut after = None;
        loop {
            let tasks = store
                .project_tasks_after(p.project_id, after, REPORT_PAGE)
                .await?;
            let Some(last) = tasks.last() else { break };
            after = Some(last.id);
            let full = tasks.len() as u32 == REPORT_PAGE;
            for t in &tasks {
                total += 1;
                *by_status.entry(t.status.as_str().to_owned()).or_default() += 1;
                *by_priority
                    .entry(t.priority.as_str().to_owned())
                    .or_default() += 1;
                let is_done = t.status == TaskStatus::Done;
                let is_overdue = t.is_overdue(now);
                done += u64::from(is_done);
                overdue += u64::from(is_overdue);
                match &t.assigned_to {
                    None => unassigned += 1,
                    Some(a) => {
                        let c = assignees.entry(a.id).or_insert_with(|| AssigneeCounts {
                            user_id: a.id,
                            username: a.username.as_str().to_owned(),
                            total: 0,
                            done: 0,
                            open: 0,
                            overdue: 0,
                        });
                        c.total += 1;
                        c.done += u64::from(is_done);
                        c.open += u64::from(!is_done);
                        c.overdue += u64::from(is_overdue);
                    }
                }
            }
            if !full {
                break;
            }
        }
        let completion_rate = if total == 0 {
            0.0
        } else {
            (done as f64 * 1000.0 / total as f64).round() / 10.0
        };
        let summary = |u: &UserSummary| {
            json!({
                "id": u.id,
                "username": u.username,
                "email": u.email,
                "first_name": u.first_name,
                "last_name": u.last_name,
                "role": u.role,
            })
        };
        Ok(ProjectReport {
            project: json!({
                "id": project.id,
                "name": project.name,
                "description": project.description,
                "status": project.status,
                "start_date": project.start_date,
                "end_date": project.end_date,
                "owner": summary(&project.owner),
                "created_at": project.created_at,
            }),
            members: project
                .members
                .iter()
                .take(REPORT_MAX_ENTRIES)
                .map(summary)
                .collect(),
            total_tasks: total,
            tasks_by_status: by_status,
            tasks_by_priority: by_priority,
            overdue_tasks: overdue,
            completion_rate,
            truncated: project.members.len() > REPORT_MAX_ENTRIES
                || assignees.len() > REPORT_MAX_ENTRIES,
            assignees: assignees.into_values().take(REPORT_MAX_ENTRIES).collect(),
            unassigned_tasks: unassigned,
            generated_at: now,
        })
    }
}

// --- cleanup_old_data -------------------------------------------------------

/// Payload of `cleanup_old_data`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CleanupPayload {
    /// Delete done tasks completed more than this many days ago (default:
    /// the configured retention).
    #[serde(default)]
    pub done_task_days: Option<u32>,
}

/// What `cleanup_old_data` removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CleanupSummary {
    /// Done tasks deleted.
    pub deleted_tasks: u64,
    /// Expired refresh tokens forgotten.
    pub pruned_refresh_tokens: u64,
}

/// Deletes a tenant's old done tasks and expired refresh tokens (the seed's
/// weekly `cleanup_old_data`; finished jobs are pruned by `prune_jobs`, since
/// the queue is shared by all tenants).
#[derive(Debug, Clone, Copy)]
pub struct CleanupOldData {
    /// Default age of done tasks to delete.
    pub retention: Duration,
}

#[async_trait]
impl Job for CleanupOldData {
    const KIND: &'static str = "cleanup_old_data";
    type Payload = CleanupPayload;
    type Output = CleanupSummary;

    async fn run(&self, ctx: &JobContext, p: CleanupPayload) -> Result<CleanupSummary, JobError> {
        let store = ctx.store()?;
        let now = ctx.now();
        let retention = p
            .done_task_days
            .map(|d| Duration::from_secs(u64::from(d) * 24 * 3600))
            .unwrap_or(self.retention);
        let deleted_tasks = store.delete_done_tasks_before(ago(now, retention)).await?;
        let pruned_refresh_tokens = store.prune_refresh_tokens(now).await?;
        Ok(CleanupSummary {
            deleted_tasks,
            pruned_refresh_tokens,
        })
    }
}

// --- platform jobs ------------------------------------------------------------

/// Payload of `fan_out_tenants`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FanOutPayload {
    /// The tenant job kind to enqueue per tenant.
    pub kind: String,
    /// Its payload.
    #[serde(default)]
    pub payload: Value,
}

/// What a fan-out did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct FanOutSummary {
    /// Active tenants.
    pub tenants: u64,
    /// Jobs newly enqueued (a retried fan-out does not enqueue twice).
    pub enqueued: u64,
}

/// Enqueues one tenant job per active tenant. Each child carries the unique
/// key `fanout:<this job's id>`, so a retried fan-out never doubles a child.
#[derive(Debug, Clone, Copy, Default)]
pub struct FanOutTenants;

#[async_trait]
impl Job for FanOutTenants {
    const KIND: &'static str = "fan_out_tenants";
    const SCOPE: JobScope = JobScope::Platform;
    const TIMEOUT: Duration = Duration::from_secs(3600);
    type Payload = FanOutPayload;
    type Output = FanOutSummary;

    async fn run(&self, ctx: &JobContext, p: FanOutPayload) -> Result<FanOutSummary, JobError> {
        validate_kind(&p.kind)?;
        let tenants = active_tenants(ctx).await?;
        let now = ctx.now();
        let mut summary = FanOutSummary {
            tenants: tenants.len() as u64,
            enqueued: 0,
        };
        let payload = if p.payload.is_null() {
            json!({})
        } else {
            p.payload
        };
        for t in &tenants {
            let job = NewJob::new(p.kind.clone(), payload.clone())
                .tenant(t.id)
                .unique_key(format!("fanout:{}", ctx.meta().id));
            if ctx.queue().enqueue(&job, now).await?.created {
                summary.enqueued += 1;
            }
        }
        Ok(summary)
    }
}

/// What `prune_jobs` removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PruneSummary {
    /// Finished jobs deleted.
    pub pruned_jobs: u64,
}

/// Deletes finished jobs older than the retention.
#[derive(Debug, Clone, Copy)]
pub struct PruneJobs {
    /// Age of finished jobs to delete.
    pub retention: Duration,
}

#[async_trait]
impl Job for PruneJobs {
    const KIND: &'static str = "prune_jobs";
    const SCOPE: JobScope = JobScope::Platform;
    type Payload = NoPayload;
    type Output = PruneSummary;

    async fn run(&self, ctx: &JobContext, _: NoPayload) -> Result<PruneSummary, JobError> {
        let pruned_jobs = ctx.queue().prune(ago(ctx.now(), self.retention)).await?;
        Ok(PruneSummary { pruned_jobs })
    }
}
