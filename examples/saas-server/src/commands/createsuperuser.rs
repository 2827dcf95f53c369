//! `saas-server createsuperuser`: a platform superuser, who operates the
//! whole installation (the seed's `createsuperuser`).

use std::process::ExitCode;

use super::one_off;
use crate::error::BoxError;
use crate::wire::Wired;

#[derive(Debug, clap::Args)]
pub(super) struct Args {
    /// Username.
    #[arg(long)]
    username: String,
    /// Email address.
    #[arg(long)]
    email: String,
    /// Password; prefer the environment or standard input, which other
    /// users cannot see in the process list.
    #[arg(long, env = "SAAS_SUPERUSER_PASSWORD", hide_env_values = true)]
    password: Option<String>,
}

/// Creates the superuser; a refusal (duplicate, invalid field) is printed
/// and fails the command.
pub(super) async fn run(wired: Wired, args: Args) -> Result<ExitCode, BoxError> {
    let saas = wired.saas()?;
    let password = one_off::secret_input(args.password, "SAAS_SUPERUSER_PASSWORD", "Password")?;
    let created = saas
        .create_superuser(&args.username, &args.email, &password)
        .await;
    Ok(one_off::outcome(created, |su| {
        format!("created superuser {} (id {})", su.username, su.id)
    }))
}
