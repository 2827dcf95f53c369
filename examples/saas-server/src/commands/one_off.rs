//! What one-off commands (create-tenant, createsuperuser) say to the
//! operator: a password asked for on standard input, then what was done or
//! why the service refused.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

use crate::error::{BoxError, chain};

/// A secret given as a flag or its environment variable `env_name`, else
/// the first line of standard input (prompting when it is a terminal).
pub(super) fn secret_input(
    given: Option<String>,
    env_name: &str,
    prompt: &str,
) -> Result<String, BoxError> {
    if let Some(v) = given.filter(|v| !v.is_empty()) {
        return Ok(v);
    }
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprint!("{prompt} (input is shown; set {env_name} to avoid typing it): ");
        std::io::stderr().flush()?;
    }
    let mut line = String::new();
    stdin.lock().read_line(&mut line)?;
    let line = line.trim_end_matches(['\n', '\r']).to_owned();
    if line.is_empty() {
        return Err(
            format!("no password given: set {env_name} or pipe it on standard input").into(),
        );
    }
    Ok(line)
}

/// A refusal of the service, for the operator: the fields at fault, or
/// the error and its causes.
fn refusal(e: &saas_core::Error) -> String {
    match e {
        saas_core::Error::Invalid { fields } => fields
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect::<Vec<_>>()
            .join("; "),
        other => chain(other),
    }
}

/// Prints what a one-off command did, or why the service refused it.
pub(super) fn outcome<T>(
    result: Result<T, saas_core::Error>,
    done: impl FnOnce(T) -> String,
) -> ExitCode {
    match result {
        Ok(value) => {
            println!("{}", done(value));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {}", refusal(&e));
            ExitCode::FAILURE
        }
    }
}
