//! `saas-server tenants list|show|suspend|reactivate|set-plan|add-domain`:
//! the platform's tenants for operators (the seed's Django admin chores),
//! through the same [`Operator`] methods as the platform API. A tenant is
//! named by its slug or its id.

use std::process::ExitCode;

use saas_core::operator::{Operator, TenantOverview};
use saas_core::session::Usage;
use saas_core::store::{Page, PageRequest};
use saas_core::tenancy::{Domain, Tenant};
use serde::Serialize;

use super::output::{self, Format};
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
    /// Tenants, oldest first, with their domains and usage.
    List {
        /// Page number.
        #[arg(long, default_value_t = 1)]
        page: u64,
        /// Tenants per page (1 to 100).
        #[arg(long, default_value_t = PageRequest::DEFAULT_SIZE)]
        page_size: u64,
    },
    /// One tenant with its domains and usage.
    Show {
        /// Slug or id.
        tenant: String,
    },
    /// Refuse the tenant's requests, logins and jobs, as if it did not exist.
    Suspend {
        /// Slug or id.
        tenant: String,
    },
    /// Serve a suspended tenant again.
    Reactivate {
        /// Slug or id.
        tenant: String,
    },
    /// Bring back a deleted tenant, as it was (until it is purged).
    Restore {
        /// Slug or id.
        tenant: String,
    },
    /// Change the tenant's plan; takes effect at once.
    SetPlan {
        /// Slug or id.
        tenant: String,
        /// Plan code (free, basic, premium, enterprise).
        plan: String,
    },
    /// Route another hostname to the tenant.
    AddDomain {
        /// Slug or id.
        tenant: String,
        /// The hostname, e.g. acme.example.com.
        hostname: String,
        /// Make it the tenant's primary domain.
        #[arg(long)]
        primary: bool,
    },
}

/// A page of tenants as the API lists them.
#[derive(Serialize)]
struct Listing {
    count: u64,
    results: Vec<TenantOverview>,
}

/// Runs one `tenants` command.
pub(super) async fn run(wired: Wired, args: Args) -> Result<ExitCode, BoxError> {
    let saas = wired.saas()?;
    let operator = saas.operator_unchecked();
    let format = args.format;
    Ok(match args.command {
        Command::List { page, page_size } => {
            let listed = list(&operator, page, page_size).await;
            format.answer(listed, listing)
        }
        Command::Show { tenant } => {
            let found = match operator.find_tenant(&tenant).await {
                Ok(t) => operator.overview(t.id).await,
                Err(e) => Err(e),
            };
            format.answer(found, overview)
        }
        Command::Suspend { tenant } => {
            let done = change(&operator, &tenant, |id| operator.suspend(id)).await;
            format.answer(done, |t| format!("tenant {} is {}", t.slug, status(t)))
        }
        Command::Reactivate { tenant } => {
            let done = change(&operator, &tenant, |id| operator.reactivate(id)).await;
            format.answer(done, |t| format!("tenant {} is {}", t.slug, status(t)))
        }
        Command::Restore { tenant } => {
            let done = change(&operator, &tenant, |id| operator.restore(id)).await;
            format.answer(done, |t| format!("tenant {} is {}", t.slug, status(t)))
        }
        Command::SetPlan { tenant, plan } => {
            let done = change(&operator, &tenant, |id| operator.change_plan(id, &plan)).await;
            format.answer(done, |t| format!("tenant {} is on plan {}", t.slug, t.plan))
        }
        Command::AddDomain {
            tenant,
            hostname,
            primary,
        } => {
            let added = match operator.find_tenant(&tenant).await {
                Ok(t) => operator.add_domain(t.id, &hostname, primary).await,
                Err(e) => Err(e),
            };
            format.answer(added, |d: &Domain| {
                let primary = if d.is_primary { " (primary)" } else { "" };
                format!("{} routes to tenant {}{primary}", d.hostname, d.tenant_id)
            })
        }
    })
}

async fn list(operator: &Operator, page: u64, page_size: u64) -> Result<Listing, saas_core::Error> {
    let request = PageRequest::new(Some(page), Some(page_size))?;
    let Page { count, items } = operator.list_tenants(request).await?;
    Ok(Listing {
        count,
        results: items,
    })
}

/// Finds the tenant `key` names, then applies `action` to its id.
async fn change<F, Fut>(
    operator: &Operator,
    key: &str,
    action: F,
) -> Result<Tenant, saas_core::Error>
where
    F: FnOnce(saas_core::tenancy::TenantId) -> Fut,
    Fut: Future<Output = Result<Tenant, saas_core::Error>>,
{
    let tenant = operator.find_tenant(key).await?;
    action(tenant.id).await
}

fn status(t: &Tenant) -> &'static str {
    t.status.as_str()
}

fn usage(u: &Usage) -> String {
    match u.limit {
        Some(limit) => format!("{}/{limit}", u.used),
        None => format!("{}/unlimited", u.used),
    }
}

fn primary(domains: &[Domain]) -> String {
    domains
        .iter()
        .find(|d| d.is_primary)
        .or(domains.first())
        .map(|d| d.hostname.to_string())
        .unwrap_or_else(|| "-".to_owned())
}

fn listing(l: &Listing) -> String {
    if l.results.is_empty() {
        return format!("no tenants on this page ({} in all)", l.count);
    }
    let rows = l.results.iter().map(|o| {
        let t = &o.tenant;
        vec![
            t.slug.to_string(),
            t.name.to_string(),
            t.plan.clone(),
            status(t).to_owned(),
            usage(&o.users),
            usage(&o.projects),
            primary(&o.domains),
            t.id.to_string(),
        ]
    });
    let table = output::table(
        &[
            "slug", "name", "plan", "status", "users", "projects", "domain", "id",
        ],
        rows,
    );
    format!("{table}\n{} tenants in all", l.count)
}

fn overview(o: &TenantOverview) -> String {
    let t = &o.tenant;
    let domains = o
        .domains
        .iter()
        .map(|d| {
            if d.is_primary {
                format!("{} (primary)", d.hostname)
            } else {
                d.hostname.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(", ");
    output::fields([
        ("id", t.id.to_string()),
        ("slug", t.slug.to_string()),
        ("name", t.name.to_string()),
        ("plan", t.plan.clone()),
        ("status", status(t).to_owned()),
        ("users", usage(&o.users)),
        ("projects", usage(&o.projects)),
        ("domains", domains),
        ("database", t.database.clone()),
        (
            "created",
            t.created_at.format("%Y-%m-%d %H:%M:%S").to_string(),
        ),
    ])
}
