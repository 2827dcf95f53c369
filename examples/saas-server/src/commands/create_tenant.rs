//! `saas-server create-tenant`: what `POST /api/register/` does, from the
//! command line.

use std::process::ExitCode;

use saas_core::commands::Registration;

use super::one_off;
use crate::error::BoxError;
use crate::wire::Wired;

#[derive(Debug, clap::Args)]
pub(super) struct Args {
    /// Display name of the organization.
    #[arg(long)]
    company_name: String,
    /// Tenant slug: a lowercase letter, then lowercase letters, digits or underscores.
    #[arg(long)]
    schema_name: String,
    /// Primary domain, e.g. acme.localhost.
    #[arg(long)]
    domain_url: String,
    /// First admin's username.
    #[arg(long, default_value = "admin")]
    admin_username: String,
    /// First admin's email.
    #[arg(long)]
    admin_email: String,
    /// First admin's password; prefer the environment or standard input,
    /// which other users cannot see in the process list.
    #[arg(long, env = "SAAS_ADMIN_PASSWORD", hide_env_values = true)]
    admin_password: Option<String>,
    /// Plan code (free, basic, premium, enterprise).
    #[arg(long)]
    subscription_plan: Option<String>,
}

/// Registers the tenant, its domain and its admin, all or nothing; a
/// refusal (taken slug, invalid field) is printed and fails the command.
pub(super) async fn run(wired: Wired, args: Args) -> Result<ExitCode, BoxError> {
    let saas = wired.saas()?;
    let admin_password =
        one_off::secret_input(args.admin_password, "SAAS_ADMIN_PASSWORD", "Admin password")?;
    let domain_url = args.domain_url;
    let registration = Registration {
        company_name: args.company_name,
        schema_name: args.schema_name,
        domain_url: domain_url.clone(),
        admin_username: args.admin_username,
        admin_email: args.admin_email,
        admin_password,
        subscription_plan: args.subscription_plan,
    };
    Ok(one_off::outcome(
        saas.register(registration).await,
        |(tenant, admin)| {
            format!(
                "created tenant {} ({}) on plan {} at {} with admin {} (id {})",
                tenant.slug, tenant.id, tenant.plan, domain_url, admin.username, admin.id
            )
        },
    ))
}
