//! `saas-server import-django --from postgres://…`: a running Django
//! deployment of the seed into the configured backend, with a progress bar
//! and a summary table (or `--json`).

use std::process::ExitCode;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use saas_core::import::{ImportProgress, ImportReport};
use saas_import_django::DjangoSource;

use crate::error::BoxError;
use crate::wire::Wired;

#[derive(Debug, clap::Args)]
pub(super) struct Args {
    /// The Django database, e.g. postgres://saas:saas@127.0.0.1:5432/saas.
    #[arg(long = "from", value_name = "URL")]
    from: String,
    /// Print the report as JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// Imports every company; fails unless every one is imported and verified
/// (now or by an earlier run). Rows changed or left out are listed, with
/// what was done; running again resumes and changes nothing already done.
pub(super) async fn run(wired: Wired, args: Args) -> Result<ExitCode, BoxError> {
    let saas = wired.saas()?;
    let source = DjangoSource::connect(&args.from).await?;
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{spinner} importing [{bar:40}] {pos}/{len} companies {msg}")
            .map_err(|e| format!("progress template: {e}"))?
            .progress_chars("=> "),
    );
    bar.enable_steady_tick(Duration::from_millis(120));
    let progress_bar = bar.clone();
    let progress = move |p: ImportProgress| {
        progress_bar.set_length(p.total);
        progress_bar.set_position(p.done);
        progress_bar.set_message(p.schema);
    };
    let report = saas.import(&source, &progress).await;
    bar.finish_and_clear();
    let report = report?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", table(&report));
    }
    Ok(if report.all_verified() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The summary: one line per company, then every problem.
fn table(report: &ImportReport) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<24} {:<17} {:>13} {:>15} {:>15} {:>17} {:<16} {:>8}",
        "company", "outcome", "users", "projects", "members", "tasks", "checksum", "problems"
    );
    for t in &report.tenants {
        let pair = |stored: u64, source: u64| format!("{stored}/{source}");
        let outcome = serde_json::to_value(t.outcome)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "{:<24} {:<17} {:>13} {:>15} {:>15} {:>17} {:<16} {:>8}",
            t.schema,
            outcome,
            pair(t.stored.users, t.source.users),
            pair(t.stored.projects, t.source.projects),
            pair(t.stored.members, t.source.members),
            pair(t.stored.tasks, t.source.tasks),
            t.checksum,
            t.problems
        );
    }
    let _ = writeln!(
        out,
        "(stored/source rows; a company's difference is in the problems below)"
    );
    for p in &report.problems {
        let _ = writeln!(
            out,
            "{} {} #{}: {} -> {}",
            if p.tenant.is_empty() { "-" } else { &p.tenant },
            p.table,
            p.id,
            p.problem,
            p.action
        );
    }
    out
}
