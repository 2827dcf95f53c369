//! `saas-server migrate`: the shared storage and every tenant's, to the
//! newest schema, with a progress bar.

use std::process::ExitCode;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use saas_core::store::MigrationProgress;

use crate::error::BoxError;
use crate::wire::Wired;

/// Migrates; fails when any tenant could not be brought up to date (the
/// others are, and a later run resumes).
pub(super) async fn run(wired: Wired) -> Result<ExitCode, BoxError> {
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{spinner} migrating [{bar:40}] {pos}/{len} tenants {msg}")
            .map_err(|e| format!("progress template: {e}"))?
            .progress_chars("=> "),
    );
    bar.enable_steady_tick(Duration::from_millis(120));
    let progress_bar = bar.clone();
    let progress = move |p: MigrationProgress| {
        progress_bar.set_length(p.total);
        progress_bar.set_position(p.done);
        progress_bar.set_message(p.slug);
    };
    let report = wired.storage.store.migrate(&progress).await;
    bar.finish_and_clear();
    let report = report?;
    println!(
        "migrated {} of {} tenants ({} already current, {} failed)",
        report.migrated,
        report.tenants,
        report.current,
        report.failed.len()
    );
    for (slug, why) in &report.failed {
        eprintln!("  failed: {slug}: {why}");
    }
    Ok(if report.failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
