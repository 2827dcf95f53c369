//! `saas-server jobs list|show|retry|cancel|stats`: the job queue for
//! operators (the seed's `celery inspect`), through the same [`Operator`]
//! methods as the platform API.
//!
//! [`Operator`]: saas_core::operator::Operator

use std::collections::BTreeMap;
use std::process::ExitCode;

use saas_core::jobs::{JobCount, JobFilter, JobId, JobRecord, JobStatus};
use saas_core::operator::Operator;

use super::output::{self, Format, or_dash};
use crate::error::BoxError;
use crate::wire::Wired;

#[derive(Debug, clap::Args)]
pub(super) struct Args {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    format: Format,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Jobs, newest first.
    List(ListArgs),
    /// Everything stored about one job.
    Show {
        /// The job's id.
        id: String,
    },
    /// Run a dead job again now.
    Retry {
        /// The job's id.
        id: String,
        /// Attempts it gets (1 to 1000).
        #[arg(long, default_value_t = 1)]
        extra_attempts: u32,
    },
    /// Cancel a queued, scheduled or retrying job.
    Cancel {
        /// The job's id.
        id: String,
    },
    /// How many jobs each kind has in each status.
    Stats,
}

#[derive(Debug, clap::Args)]
struct ListArgs {
    /// Only jobs in this status (queued, scheduled, running, succeeded,
    /// retrying, dead, cancelled).
    #[arg(long, value_parser = parse_status)]
    status: Option<JobStatus>,
    /// Only jobs of this kind.
    #[arg(long)]
    kind: Option<String>,
    /// Only jobs of this tenant (its slug or id).
    #[arg(long)]
    tenant: Option<String>,
    /// Only jobs older than this one (the last id of the previous page).
    #[arg(long, value_name = "JOB_ID", value_parser = parse_id)]
    before: Option<JobId>,
    /// Most jobs shown (1 to 1000).
    #[arg(long, default_value_t = JobFilter::DEFAULT_LIMIT)]
    limit: u32,
}

fn parse_status(s: &str) -> Result<JobStatus, String> {
    s.parse().map_err(|e: saas_core::Error| e.to_string())
}

fn parse_id(s: &str) -> Result<JobId, String> {
    uuid::Uuid::parse_str(s.trim())
        .map(JobId)
        .map_err(|_| format!("{s:?} is not a job id (a UUID)"))
}

/// Runs one `jobs` command.
pub(super) async fn run(wired: Wired, args: Args) -> Result<ExitCode, BoxError> {
    let saas = wired.saas()?;
    let jobs = wired.jobs(saas.clone())?;
    let operator = saas.operator_unchecked();
    let format = args.format;
    Ok(match args.command {
        Command::List(list) => {
            let filter = match filter(&operator, list).await {
                Ok(f) => f,
                Err(e) => return Ok(format.answer::<()>(Err(e), |()| String::new())),
            };
            format.answer(operator.list_jobs(&jobs, &filter).await, |found| {
                listing(found)
            })
        }
        Command::Show { id } => {
            let result = by_id(&id, |id| operator.job(&jobs, id)).await;
            format.answer(result, record)
        }
        Command::Retry { id, extra_attempts } => {
            let result = by_id(&id, |id| operator.retry_job(&jobs, id, extra_attempts)).await;
            format.answer(result, |j| {
                format!(
                    "job {} is {} again: {} attempts made, {} allowed",
                    j.id, j.status, j.attempts, j.max_attempts
                )
            })
        }
        Command::Cancel { id } => {
            let result = by_id(&id, |id| operator.cancel_job(&jobs, id)).await;
            format.answer(result, |j| format!("job {} is {}", j.id, j.status))
        }
        Command::Stats => format.answer(operator.job_stats(&jobs).await, |c| stats(c)),
    })
}

/// The job `id` names, given to `action`; an id that is not a UUID is a
/// job that does not exist.
async fn by_id<F, Fut>(id: &str, action: F) -> Result<JobRecord, saas_core::Error>
where
    F: FnOnce(JobId) -> Fut,
    Fut: Future<Output = Result<JobRecord, saas_core::Error>>,
{
    match parse_id(id) {
        Ok(id) => action(id).await,
        Err(message) => Err(saas_core::Error::invalid("id", message)),
    }
}

async fn filter(operator: &Operator, args: ListArgs) -> Result<JobFilter, saas_core::Error> {
    let tenant = match args.tenant {
        Some(key) => Some(operator.find_tenant(&key).await?.id),
        None => None,
    };
    Ok(JobFilter {
        status: args.status,
        kind: args.kind,
        tenant,
        before: args.before,
        limit: args.limit,
    })
}

fn time(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

/// The first line of an error, at most 60 characters.
fn short(error: &str) -> String {
    let line = error.lines().next().unwrap_or_default();
    match line.char_indices().nth(59) {
        Some((i, _)) => format!("{}…", &line[..i]),
        None => line.to_owned(),
    }
}

fn listing(found: &[JobRecord]) -> String {
    if found.is_empty() {
        return "no jobs".to_owned();
    }
    let rows = found.iter().map(|j| {
        vec![
            j.id.to_string(),
            j.kind.clone(),
            or_dash(j.tenant),
            j.status.to_string(),
            format!("{}/{}", j.attempts, j.max_attempts),
            time(j.run_at),
            time(j.updated_at),
            j.last_error.as_deref().map(short).unwrap_or_default(),
        ]
    });
    let table = output::table(
        &[
            "id",
            "kind",
            "tenant",
            "status",
            "attempts",
            "run at",
            "updated",
            "last error",
        ],
        rows,
    );
    let last = found.last().map(|j| j.id.to_string()).unwrap_or_default();
    format!("{table}\n{} jobs; next page: --before {last}", found.len())
}

fn record(j: &JobRecord) -> String {
    let json = |v: &serde_json::Value| v.to_string();
    output::fields([
        ("id", j.id.to_string()),
        ("kind", j.kind.clone()),
        ("tenant", or_dash(j.tenant)),
        ("status", j.status.to_string()),
        ("priority", j.priority.to_string()),
        ("attempts", format!("{} of {}", j.attempts, j.max_attempts)),
        ("payload", json(&j.payload)),
        ("result", or_dash(j.result.as_ref().map(json))),
        ("last error", or_dash(j.last_error.as_ref())),
        ("unique key", or_dash(j.unique_key.as_ref())),
        ("worker", or_dash(j.worker.as_ref())),
        ("lease until", or_dash(j.lease_until.map(time))),
        ("run at", time(j.run_at)),
        ("created", time(j.created_at)),
        ("updated", time(j.updated_at)),
        ("started", or_dash(j.started_at.map(time))),
        ("finished", or_dash(j.finished_at.map(time))),
    ])
}

/// Kinds down, statuses across, with totals.
fn stats(counts: &[JobCount]) -> String {
    if counts.is_empty() {
        return "no jobs".to_owned();
    }
    let mut by_kind: BTreeMap<&str, [u64; JobStatus::ALL.len()]> = BTreeMap::new();
    let column = |s: JobStatus| JobStatus::ALL.iter().position(|x| *x == s).unwrap_or(0);
    for c in counts {
        by_kind.entry(&c.kind).or_default()[column(c.status)] += c.count;
    }
    let mut totals = [0u64; 7];
    let mut rows: Vec<Vec<String>> = by_kind
        .iter()
        .map(|(kind, n)| {
            for (t, v) in totals.iter_mut().zip(n) {
                *t += v;
            }
            let mut row = vec![(*kind).to_owned()];
            row.extend(n.iter().map(u64::to_string));
            row.push(n.iter().sum::<u64>().to_string());
            row
        })
        .collect();
    let mut total = vec!["total".to_owned()];
    total.extend(totals.iter().map(u64::to_string));
    total.push(totals.iter().sum::<u64>().to_string());
    rows.push(total);
    let mut header = vec!["kind"];
    header.extend(JobStatus::ALL.iter().map(|s| s.as_str()));
    header.push("all");
    output::table(&header, rows)
}
