//! How the operator commands (`jobs`, `tenants`) answer: a table for
//! people, or with `--json` one JSON document for scripts; a refusal of the
//! service on standard error and a failing exit code either way.

use std::process::ExitCode;

use comfy_table::{ContentArrangement, Table, presets};
use serde::Serialize;

use super::one_off;

/// Table or JSON, as the operator asked.
#[derive(Debug, Clone, Copy, clap::Args)]
pub(super) struct Format {
    /// Print JSON (one document) instead of a table.
    #[arg(long, global = true)]
    json: bool,
}

impl Format {
    /// Prints `value` as JSON, or as the text `people` renders from it;
    /// a refusal is printed on standard error and fails the command.
    pub(super) fn answer<T: Serialize>(
        self,
        result: Result<T, saas_core::Error>,
        people: impl FnOnce(&T) -> String,
    ) -> ExitCode {
        one_off::outcome(result, |value| {
            if self.json {
                serde_json::to_string_pretty(&value)
                    .unwrap_or_else(|e| format!("{{\"error\": \"cannot render JSON: {e}\"}}"))
            } else {
                people(&value)
            }
        })
    }
}

/// A table with `header` over `rows`, as wide as its content.
pub(super) fn table<R, C>(header: &[&str], rows: R) -> String
where
    R: IntoIterator<Item = Vec<C>>,
    C: Into<comfy_table::Cell>,
{
    let mut t = Table::new();
    t.load_style(presets::UTF8_HORIZONTAL_ONLY)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(header.iter().copied());
    for row in rows {
        t.add_row(row);
    }
    t.to_string()
}

/// Two columns, field and value, for one record.
pub(super) fn fields<'a>(rows: impl IntoIterator<Item = (&'a str, String)>) -> String {
    table(
        &["field", "value"],
        rows.into_iter().map(|(k, v)| vec![k.to_owned(), v]),
    )
}

/// An optional value as shown in a table: the value, or `-`.
pub(super) fn or_dash<T: ToString>(value: Option<T>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| v.to_string())
}
