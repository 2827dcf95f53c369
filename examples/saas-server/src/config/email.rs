//! Where email goes: EMAIL_BACKEND and the seed's (that is, Django's)
//! other EMAIL_* settings.

use std::path::PathBuf;

use clap::Args;
use saas_core::jobs::mail::SmtpConfig;

use super::parse::{ConfigError, Secret, given, secret};

/// How email leaves (the seed's, that is Django's, names).
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Email")]
pub(crate) struct EmailSettings {
    /// smtp, console (log only) or file (log and append to EMAIL_FILE_PATH);
    /// Django's django.core.mail.backends.*.EmailBackend names work too
    /// [default: console].
    #[arg(long, env = "EMAIL_BACKEND", global = true, value_name = "BACKEND")]
    pub(crate) email_backend: Option<String>,
    /// For the file backend (or with console, in addition): a file, or a
    /// directory to hold emails.jsonl.
    #[arg(long, env = "EMAIL_FILE_PATH", global = true, value_name = "PATH")]
    pub(crate) email_file_path: Option<String>,
    /// Sender of every email [default: webmaster@localhost].
    #[arg(
        long,
        env = "DEFAULT_FROM_EMAIL",
        global = true,
        value_name = "ADDRESS"
    )]
    pub(crate) default_from_email: Option<String>,
    /// SMTP relay [default: localhost].
    #[arg(long, env = "EMAIL_HOST", global = true, value_name = "HOST")]
    pub(crate) email_host: Option<String>,
    /// SMTP port [default: 25; 587 with EMAIL_USE_TLS, 465 with EMAIL_USE_SSL].
    #[arg(long, env = "EMAIL_PORT", global = true, value_name = "PORT")]
    pub(crate) email_port: Option<String>,
    /// STARTTLS, required (submission, port 587).
    #[arg(long, env = "EMAIL_USE_TLS", global = true, value_name = "BOOL")]
    pub(crate) email_use_tls: Option<String>,
    /// TLS from the first byte (port 465); not with EMAIL_USE_TLS.
    #[arg(long, env = "EMAIL_USE_SSL", global = true, value_name = "BOOL")]
    pub(crate) email_use_ssl: Option<String>,
    /// Seconds each SMTP command may take [default: 30].
    #[arg(long, env = "EMAIL_TIMEOUT", global = true, value_name = "SECONDS")]
    pub(crate) email_timeout: Option<String>,
    /// SMTP user (unset: no authentication).
    #[arg(long, env = "EMAIL_HOST_USER", global = true, value_name = "USER")]
    pub(crate) email_host_user: Option<String>,
    /// SMTP password.
    #[arg(long, env = "EMAIL_HOST_PASSWORD", global = true, hide_env_values = true,
          value_name = "PASSWORD", value_parser = secret)]
    pub(crate) email_host_password: Option<Secret>,
}

impl EmailSettings {
    /// The setting named `name`, for [`SmtpConfig::from_lookup`], which
    /// holds the SMTP defaults and checks.
    fn var(&self, name: &str) -> Option<String> {
        let value = match name {
            "EMAIL_HOST" => self.email_host.as_deref(),
            "EMAIL_PORT" => self.email_port.as_deref(),
            "EMAIL_USE_TLS" => self.email_use_tls.as_deref(),
            "EMAIL_USE_SSL" => self.email_use_ssl.as_deref(),
            "EMAIL_TIMEOUT" => self.email_timeout.as_deref(),
            "EMAIL_HOST_USER" => self.email_host_user.as_deref(),
            "EMAIL_HOST_PASSWORD" => self.email_host_password.as_ref().map(|s| s.0.as_str()),
            "DEFAULT_FROM_EMAIL" => self.default_from_email.as_deref(),
            _ => None,
        };
        value.map(str::to_owned)
    }
}

/// Where email goes.
#[derive(Debug, Clone)]
pub(crate) enum Mail {
    /// Sent through an SMTP relay.
    Smtp(SmtpConfig),
    /// Logged, and appended as JSON lines to `file` when there is one.
    Log {
        /// EMAIL_BACKEND as given (for messages).
        backend: String,
        /// The sender.
        from: String,
        /// EMAIL_FILE_PATH: a file, or a directory for `emails.jsonl`.
        file: Option<PathBuf>,
    },
}

impl Mail {
    pub(super) fn from_settings(s: &EmailSettings) -> Result<Mail, ConfigError> {
        let backend = given(s.email_backend.as_deref()).unwrap_or("console");
        let kind = backend
            .strip_suffix(".EmailBackend")
            .map_or(backend, |m| m.rsplit('.').next().unwrap_or(m))
            .to_ascii_lowercase();
        let file = given(s.email_file_path.as_deref()).map(PathBuf::from);
        match kind.as_str() {
            "smtp" => SmtpConfig::from_lookup(|name| s.var(name))
                .map(Mail::Smtp)
                .map_err(|e| ConfigError(e.to_string())),
            "console" | "filebased" | "file" => {
                if file.is_none() && kind != "console" {
                    return Err(ConfigError(format!(
                        "EMAIL_BACKEND={backend:?} needs EMAIL_FILE_PATH"
                    )));
                }
                Ok(Mail::Log {
                    backend: backend.to_owned(),
                    from: given(s.default_from_email.as_deref())
                        .unwrap_or("webmaster@localhost")
                        .to_owned(),
                    file,
                })
            }
            _ => Err(ConfigError(format!(
                "EMAIL_BACKEND={backend:?} is not supported: use smtp, console or file \
                 (or Django's django.core.mail.backends.{{smtp,console,filebased}}.EmailBackend)"
            ))),
        }
    }
}
