//! What the server keeps (deleted tenants, for how long) and how much work
//! a tenant may queue.

use std::time::Duration;

use clap::Args;

use super::parse::ConfigError;

/// Data retention and job limits, as given.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Data and jobs")]
pub(crate) struct DataSettings {
    /// Most jobs a tenant may have waiting or running when its users ask
    /// for more (reports); past it they get 429. A number, or `off`.
    #[arg(
        long,
        env = "MAX_PENDING_JOBS_PER_TENANT",
        global = true,
        value_name = "N",
        default_value = "50"
    )]
    pub(crate) max_pending_jobs_per_tenant: String,
    /// Days a deleted tenant's data is kept, restorable by an operator,
    /// before the daily purge removes it.
    #[arg(
        long,
        env = "TENANT_RETENTION_DAYS",
        global = true,
        value_name = "DAYS",
        default_value_t = 7,
        value_parser = clap::value_parser!(u32).range(0..=36_500)
    )]
    pub(crate) tenant_retention_days: u32,
}

/// The checked data settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Data {
    /// The cap of a tenant's pending jobs; `None`: no cap.
    pub(crate) max_pending_jobs_per_tenant: Option<u32>,
    /// How long a deleted tenant is kept before it is purged.
    pub(crate) tenant_retention: Duration,
}

impl Data {
    /// Checks `s`.
    pub(crate) fn from_settings(s: &DataSettings) -> Result<Data, ConfigError> {
        let cap = s.max_pending_jobs_per_tenant.trim();
        let max_pending_jobs_per_tenant = if cap.eq_ignore_ascii_case("off") {
            None
        } else {
            match cap.parse::<u32>() {
                Ok(n) if n >= 1 => Some(n),
                _ => {
                    return Err(ConfigError(format!(
                        "MAX_PENDING_JOBS_PER_TENANT={cap:?} must be a number of jobs (1 or more) or `off`"
                    )));
                }
            }
        };
        Ok(Data {
            max_pending_jobs_per_tenant,
            tenant_retention: Duration::from_secs(u64::from(s.tenant_retention_days) * 86_400),
        })
    }
}
