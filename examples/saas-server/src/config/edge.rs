//! What the HTTP edge takes from clients: the error format, who may
//! register and how often, login throttles, which proxy headers are
//! believed, and the server's connection limits.

use std::time::Duration;

use clap::Args;
use saas_core::plans::PlanCatalog;
use saas_http::{ErrorFormat, HttpConfig, Rate, ServerLimits};

use super::parse::{ConfigError, boolean, given, list};

/// The HTTP edge, as given.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Security and limits")]
pub(crate) struct EdgeSettings {
    /// Error bodies: `native` ({"error": {"code", "message", "fields"}}) or
    /// `drf` (the seed's {"detail": ...} and {"field": ["..."]}, with DRF's
    /// statuses) for clients written against the Django seed.
    #[arg(
        long,
        env = "API_ERROR_FORMAT",
        global = true,
        value_name = "FORMAT",
        default_value = "native"
    )]
    pub(crate) api_error_format: String,
    /// Anyone may register a tenant with POST /api/register/. When false it
    /// answers 403; operators create tenants (POST /api/platform/tenants/,
    /// `saas-server create-tenant`).
    #[arg(long, env = "REGISTRATION_OPEN", global = true, value_name = "BOOL",
          default_value = "true", action = clap::ArgAction::Set,
          value_parser = boolean::<true>)]
    pub(crate) registration_open: bool,
    /// Plans POST /api/register/ may choose, comma-separated (e.g. `free`).
    /// Empty: every plan, as the seed allows. Operators can change a
    /// tenant's plan later.
    #[arg(long, env = "SELF_SERVICE_PLANS", global = true, value_name = "PLANS")]
    pub(crate) self_service_plans: Option<String>,
    /// Registration attempts per client address, every attempt counted:
    /// `10/hour`, `50/day`, … or `off`.
    #[arg(
        long,
        env = "REGISTRATION_RATE_LIMIT",
        global = true,
        value_name = "RATE",
        default_value = "10/hour"
    )]
    pub(crate) registration_rate_limit: String,
    /// Login attempts per tenant and username (guessing one password):
    /// `10/minute`, … or `off`.
    #[arg(
        long,
        env = "LOGIN_RATE_LIMIT",
        global = true,
        value_name = "RATE",
        default_value = "10/minute"
    )]
    pub(crate) login_rate_limit: String,
    /// Login attempts per client address, whatever the username and tenant
    /// (password spraying): `60/minute`, … or `off`.
    #[arg(
        long,
        env = "LOGIN_ADDRESS_RATE_LIMIT",
        global = true,
        value_name = "RATE",
        default_value = "60/minute"
    )]
    pub(crate) login_address_rate_limit: String,
    /// Take the client's address, for throttling, from the last entry of
    /// X-Forwarded-For (set it only behind a proxy that appends one;
    /// otherwise any client can pose as any address).
    #[arg(long, env = "TRUST_X_FORWARDED_FOR", global = true, value_name = "BOOL",
          default_value = "false", value_parser = boolean::<false>)]
    pub(crate) trust_x_forwarded_for: bool,
    /// Seconds a client may take to send a request's headers before it is
    /// disconnected.
    #[arg(long, env = "HEADER_READ_TIMEOUT", global = true, value_name = "SECONDS",
          default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub(crate) header_read_timeout: u64,
    /// Most connections served at once; more are answered 503. Lowered at
    /// start to what the open-file limit allows.
    #[arg(long, env = "MAX_CONNECTIONS", global = true, value_name = "N",
          default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub(crate) max_connections: u64,
    /// Seconds a stopping server (SIGTERM, SIGINT) gives requests in flight
    /// to finish once it has stopped accepting connections; connections
    /// still open then are closed.
    #[arg(long, env = "HTTP_DRAIN_SECONDS", global = true, value_name = "SECONDS",
          default_value_t = 30, value_parser = clap::value_parser!(u64).range(0..=86_400))]
    pub(crate) http_drain_seconds: u64,
}

/// A rate setting: `N/period` or `off`.
fn rate(name: &str, value: &str) -> Result<Option<Rate>, ConfigError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "off" | "none" | "0" => Ok(None),
        _ => value
            .parse()
            .map(Some)
            .map_err(|e| ConfigError(format!("{name}: {e}, or off"))),
    }
}

/// The edge's part of the router's configuration and the server's limits.
pub(crate) struct Edge {
    pub(crate) error_format: ErrorFormat,
    pub(crate) registration_open: bool,
    pub(crate) self_service_plans: Option<Vec<String>>,
    pub(crate) registration_rate: Option<Rate>,
    pub(crate) login_rate: Option<Rate>,
    pub(crate) login_address_rate: Option<Rate>,
    pub(crate) trust_forwarded_for: bool,
    pub(crate) limits: ServerLimits,
}

impl Edge {
    /// Checks the settings: formats and rates that read, plans the catalog has.
    pub(crate) fn from_settings(s: &EdgeSettings) -> Result<Edge, ConfigError> {
        let error_format = s
            .api_error_format
            .parse()
            .map_err(|e| ConfigError(format!("API_ERROR_FORMAT: {e}")))?;
        let plans = list(given(s.self_service_plans.as_deref()));
        let catalog = PlanCatalog::builtin();
        for p in &plans {
            if catalog.get(p).is_err() {
                return Err(ConfigError(format!(
                    "SELF_SERVICE_PLANS names {p:?}, which is not a plan ({})",
                    catalog
                        .iter()
                        .map(|p| p.code.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
        }
        Ok(Edge {
            error_format,
            registration_open: s.registration_open,
            self_service_plans: (!plans.is_empty()).then_some(plans),
            registration_rate: rate("REGISTRATION_RATE_LIMIT", &s.registration_rate_limit)?,
            login_rate: rate("LOGIN_RATE_LIMIT", &s.login_rate_limit)?,
            login_address_rate: rate("LOGIN_ADDRESS_RATE_LIMIT", &s.login_address_rate_limit)?,
            trust_forwarded_for: s.trust_x_forwarded_for,
            limits: ServerLimits {
                header_read_timeout: Duration::from_secs(s.header_read_timeout),
                max_connections: usize::try_from(s.max_connections).unwrap_or(usize::MAX),
                drain_timeout: Duration::from_secs(s.http_drain_seconds),
            },
        })
    }

    /// Writes the edge's settings into `http`.
    pub(crate) fn apply(&self, http: &mut HttpConfig) {
        http.error_format = self.error_format;
        http.registration_open = self.registration_open;
        http.self_service_plans = self.self_service_plans.clone();
        http.registration_rate = self.registration_rate;
        match self.login_rate {
            Some(r) => {
                http.login_attempts = r.count;
                http.login_window = r.per;
            }
            None => http.login_attempts = 0,
        }
        http.login_address_rate = self.login_address_rate;
        http.trust_forwarded_for = self.trust_forwarded_for;
    }
}
