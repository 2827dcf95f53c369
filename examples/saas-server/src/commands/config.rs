//! `saas-server config`: the configuration the other commands would run
//! with, as `NAME=value` lines under the variables' names (empty: unset),
//! secrets shown as `***`. Values are the effective ones: defaults filled
//! in, DATABASE_URL as built from the DATABASE_* parts.

use std::fmt::{self, Display, Formatter};

use saas_http::{CorsOrigins, ErrorFormat, Rate};

use crate::config::{Config, Database, Mail, ServeSettings, SigningKey};

/// What a secret is shown as.
const HIDDEN: &str = "***";

/// The listing of a configuration and of what `serve` would run besides the API.
pub(super) struct Listing<'a> {
    config: &'a Config,
    serve: &'a ServeSettings,
}

impl<'a> Listing<'a> {
    pub(super) fn new(config: &'a Config, serve: &'a ServeSettings) -> Self {
        Listing { config, serve }
    }
}

fn line(f: &mut Formatter<'_>, name: &str, value: impl Display) -> fmt::Result {
    writeln!(f, "{name}={value}")
}

impl Display for Listing<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let c = self.config;
        writeln!(
            f,
            "# saas-server configuration (flags, the environment and .env), secrets shown as {HIDDEN}"
        )?;
        writeln!(f, "\n# Core")?;
        line(f, "DEBUG", c.debug)?;
        match &c.signing_key {
            SigningKey::Given(_) => {}
            SigningKey::Kept {
                path,
                existing: Some(_),
            } => writeln!(
                f,
                "# unset: the key kept in {} signs tokens",
                path.display()
            )?,
            SigningKey::Kept {
                path,
                existing: None,
            } => writeln!(
                f,
                "# unset: a key is generated in {} at start",
                path.display()
            )?,
        }
        let key_given = matches!(c.signing_key, SigningKey::Given(_));
        line(f, "SECRET_KEY", if key_given { HIDDEN } else { "" })?;
        line(f, "BIND", c.bind)?;
        line(f, "ALLOWED_HOSTS", c.http.allowed_hosts.join(","))?;
        line(f, "PLATFORM_HOSTS", c.http.platform_hosts.join(","))?;
        line(
            f,
            "CONSOLE_IDLE_MINUTES",
            c.http.console_idle.as_secs() / 60,
        )?;
        let cors = match &c.http.cors {
            CorsOrigins::Any => "*".to_owned(),
            CorsOrigins::List(origins) => origins.join(","),
            CorsOrigins::None => String::new(),
        };
        line(f, "CORS_ALLOWED_ORIGINS", cors)?;
        line(f, "TRUST_X_FORWARDED_PROTO", c.http.trust_forwarded_proto)?;

        writeln!(f, "\n# Security and limits")?;
        let error_format = match c.http.error_format {
            ErrorFormat::Drf => "drf",
            _ => "native",
        };
        line(f, "API_ERROR_FORMAT", error_format)?;
        line(f, "REGISTRATION_OPEN", c.http.registration_open)?;
        let plans = c.http.self_service_plans.as_ref().map(|p| p.join(","));
        if plans.is_none() {
            writeln!(f, "# unset: every plan")?;
        }
        line(f, "SELF_SERVICE_PLANS", plans.unwrap_or_default())?;
        line(f, "REGISTRATION_RATE_LIMIT", rate(c.http.registration_rate))?;
        let per_user = (c.http.login_attempts > 0)
            .then(|| Rate::new(c.http.login_attempts, c.http.login_window));
        line(f, "LOGIN_RATE_LIMIT", rate(per_user))?;
        line(
            f,
            "LOGIN_ADDRESS_RATE_LIMIT",
            rate(c.http.login_address_rate),
        )?;
        line(f, "TRUST_X_FORWARDED_FOR", c.http.trust_forwarded_for)?;
        line(
            f,
            "HEADER_READ_TIMEOUT",
            c.limits.header_read_timeout.as_secs(),
        )?;
        line(f, "MAX_CONNECTIONS", c.limits.max_connections)?;
        line(f, "HTTP_DRAIN_SECONDS", c.limits.drain_timeout.as_secs())?;
        let cap = c.data.max_pending_jobs_per_tenant;
        let cap = cap.map_or_else(|| "off".to_owned(), |n| n.to_string());
        line(f, "MAX_PENDING_JOBS_PER_TENANT", cap)?;
        line(
            f,
            "TENANT_RETENTION_DAYS",
            c.data.tenant_retention.as_secs() / 86_400,
        )?;

        writeln!(f, "\n# Storage")?;
        match &c.database {
            Database::Postgres {
                url,
                transaction_pooler,
                connect_timeout,
            } => {
                writeln!(f, "# PostgreSQL, one schema per tenant")?;
                line(f, "DATABASE_URL", redacted_url(&url.0))?;
                line(f, "DATABASE_TRANSACTION_POOLER", transaction_pooler)?;
                line(f, "DATABASE_CONNECT_TIMEOUT", connect_timeout.as_secs())?;
            }
            Database::Sqlite { dir } => {
                writeln!(f, "# SQLite, one file per tenant, under {}", dir.display())?;
                line(
                    f,
                    "DATABASE_URL",
                    format_args!("sqlite://{}", dir.display()),
                )?;
            }
        }
        line(f, "DATA_DIR", c.data_dir.display())?;

        writeln!(f, "\n# Tenant resolution")?;
        let base = c.base_domain.as_ref().map(|b| b.as_str()).unwrap_or("");
        line(f, "BASE_DOMAIN", base)?;
        line(f, "ENABLE_X_TENANT", c.http.x_tenant)?;

        writeln!(f, "\n# Logging and metrics")?;
        let filter = c.log_filter.as_deref();
        line(f, "RUST_LOG", filter.unwrap_or(c.default_log_filter()))?;
        line(f, "LOG_FORMAT", if c.log_json { "json" } else { "text" })?;
        let token = c.http.metrics_token.as_ref().map_or("", |_| HIDDEN);
        if token.is_empty() {
            writeln!(f, "# unset: /metrics answers loopback clients only")?;
        }
        line(f, "METRICS_TOKEN", token)?;

        writeln!(f, "\n# Email")?;
        match &c.mail {
            Mail::Smtp(smtp) => {
                line(f, "EMAIL_BACKEND", "smtp")?;
                line(f, "EMAIL_HOST", &smtp.host)?;
                line(f, "EMAIL_PORT", smtp.port)?;
                line(f, "EMAIL_USE_TLS", smtp.use_tls)?;
                line(f, "EMAIL_USE_SSL", smtp.use_ssl)?;
                line(f, "EMAIL_TIMEOUT", smtp.timeout.as_secs_f64())?;
                line(f, "EMAIL_HOST_USER", &smtp.username)?;
                let password = if smtp.password.is_empty() { "" } else { HIDDEN };
                line(f, "EMAIL_HOST_PASSWORD", password)?;
                line(f, "DEFAULT_FROM_EMAIL", &smtp.from)?;
            }
            Mail::Log {
                backend,
                from,
                file,
            } => {
                line(f, "EMAIL_BACKEND", backend)?;
                let file = file.as_ref().map(|p| p.display().to_string());
                line(f, "EMAIL_FILE_PATH", file.unwrap_or_default())?;
                line(f, "DEFAULT_FROM_EMAIL", from)?;
            }
        }

        writeln!(
            f,
            "\n# Background jobs (what `serve` runs; `worker` reads the same)"
        )?;
        let w = &self.serve.worker;
        line(f, "RUN_WORKER", self.serve.worker())?;
        line(f, "RUN_SCHEDULER", w.scheduler())?;
        line(f, "WORKER_CONCURRENCY", w.concurrency)?;
        line(f, "WORKER_LEASE_SECONDS", w.lease_seconds)?;
        line(f, "WORKER_GRACE_SECONDS", w.grace_seconds)?;
        line(f, "WORKER_POLL_MS", w.poll_ms)
    }
}

/// A rate setting as it is written: `10/hour`, or `off`.
fn rate(rate: Option<Rate>) -> String {
    rate.map_or_else(|| "off".to_owned(), |r| r.to_string())
}

/// `url` with the password of its user part, and any `password` or
/// `sslpassword` parameter, shown as `***`.
fn redacted_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return HIDDEN.to_owned();
    };
    let (authority, tail) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{user}:{HIDDEN}@{host}"),
            None => authority.to_owned(),
        },
        None => authority.to_owned(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let params: Vec<String> = query
                .split('&')
                .map(|p| match p.split_once('=') {
                    Some((k, _)) if k.to_ascii_lowercase().contains("password") => {
                        format!("{k}={HIDDEN}")
                    }
                    _ => p.to_owned(),
                })
                .collect();
            format!("{path}?{}", params.join("&"))
        }
        None => tail.to_owned(),
    };
    format!("{scheme}://{authority}{tail}")
}

#[cfg(test)]
mod tests {
    use super::redacted_url;

    #[test]
    fn urls_lose_their_passwords_and_keep_the_rest() {
        assert_eq!(
            redacted_url("postgres://saas:s3cr%40t@db:5432/saas"),
            "postgres://saas:***@db:5432/saas"
        );
        assert_eq!(
            redacted_url("postgres://saas@db/saas?sslmode=require&password=x"),
            "postgres://saas@db/saas?sslmode=require&password=***"
        );
        assert_eq!(redacted_url("postgres://db/saas"), "postgres://db/saas");
        assert_eq!(redacted_url("not a url"), "***");
    }
}
