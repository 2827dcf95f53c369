//! Outgoing email: the [`Mailer`] trait and its implementations.
//!
//! - [`LogMailer`] (the default): logs each message through `tracing` and,
//!   when given a path, appends it to a file as one JSON object per line —
//!   what development setups and end-to-end tests read.
//! - [`MemoryMailer`]: keeps messages in memory, for tests.
// The SMTP mailer exists only with the `smtp` feature (off by default):
// link to it only then.
#![cfg_attr(
    feature = "smtp",
    doc = "- [`SmtpMailer`] (feature `smtp`): delivers through an SMTP relay with"
)]
#![cfg_attr(
    not(feature = "smtp"),
    doc = "- `SmtpMailer` (feature `smtp`): delivers through an SMTP relay with"
)]
//!   lettre, configured like the seed's Django `EMAIL_*` settings: plain
//!   SMTP, STARTTLS (`EMAIL_USE_TLS`) or implicit TLS (`EMAIL_USE_SSL`),
//!   with rustls and the Mozilla root certificates compiled in.

use std::fmt::Debug;
use std::path::PathBuf;
use std::sync::Mutex;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::users::Email;

/// One plain-text message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// Recipients.
    pub to: Vec<Email>,
    /// Subject line.
    pub subject: String,
    /// Plain-text body.
    pub body: String,
}

impl Message {
    /// A message to one recipient.
    pub fn new(to: Email, subject: impl Into<String>, body: impl Into<String>) -> Self {
        Message {
            to: vec![to],
            subject: subject.into(),
            body: body.into(),
        }
    }
}

/// A message as a mailer sent it (what [`LogMailer`] writes per line).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SentMessage {
    /// Sender address.
    pub from: String,
    /// Recipients.
    pub to: Vec<String>,
    /// Subject line.
    pub subject: String,
    /// Plain-text body.
    pub body: String,
}

impl SentMessage {
    fn new(from: &str, m: &Message) -> Self {
        SentMessage {
            from: from.to_owned(),
            to: m.to.iter().map(|e| e.as_str().to_owned()).collect(),
            subject: m.subject.clone(),
            body: m.body.clone(),
        }
    }
}

/// Errors of a [`Mailer`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MailError {
    /// The mailer's configuration cannot work.
    #[error("invalid mail configuration: {message}")]
    Config {
        /// What is wrong.
        message: String,
    },
    /// An address was refused by the message builder.
    #[error("invalid email address {address:?}")]
    Address {
        /// The address.
        address: String,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
    /// The message could not be assembled.
    #[error("could not build the message")]
    Build {
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
    /// The relay refused or the connection failed.
    #[error("mail delivery failed")]
    Transport {
        /// What the transport reported.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
    /// Writing the mail log failed.
    #[error("writing the mail log failed")]
    Io {
        /// The I/O error.
        #[from]
        source: std::io::Error,
    },
}

/// Sends email. Used as `Arc<dyn Mailer>` by jobs.
#[async_trait]
pub trait Mailer: Debug + Send + Sync + 'static {
    /// Sends one message.
    async fn send(&self, message: &Message) -> Result<(), MailError>;
}

/// The default mailer: logs every message, and appends it as a JSON line to
/// a file when one is configured.
#[derive(Debug)]
pub struct LogMailer {
    from: String,
    path: Option<PathBuf>,
    // Serializes appends so concurrent jobs never interleave lines.
    file_lock: tokio::sync::Mutex<()>,
}

impl LogMailer {
    /// A mailer that only logs, as sender `from`.
    pub fn new(from: impl Into<String>) -> Self {
        LogMailer {
            from: from.into(),
            path: None,
            file_lock: tokio::sync::Mutex::new(()),
        }
    }

    /// Also appends each message to `path` as a JSON line.
    pub fn with_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.path = Some(path.into());
        self
    }

    /// Reads back a file written by [`LogMailer::with_file`].
    pub async fn read_file(path: impl Into<PathBuf>) -> Result<Vec<SentMessage>, MailError> {
        let path = path.into();
        let text = tokio::task::spawn_blocking(move || std::fs::read_to_string(path))
            .await
            .map_err(|e| MailError::Io {
                source: std::io::Error::other(e),
            })??;
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                serde_json::from_str(l).map_err(|e| MailError::Build {
                    source: Box::new(e),
                })
            })
            .collect()
    }
}

impl Default for LogMailer {
    fn default() -> Self {
        LogMailer::new("webmaster@localhost")
    }
}

#[async_trait]
impl Mailer for LogMailer {
    async fn send(&self, message: &Message) -> Result<(), MailError> {
        let sent = SentMessage::new(&self.from, message);
        tracing::info!(
            from = %sent.from,
            to = ?sent.to,
            subject = %sent.subject,
            body_len = sent.body.len(),
            "email"
        );
        if let Some(path) = &self.path {
            let mut line = serde_json::to_string(&sent).map_err(|e| MailError::Build {
                source: Box::new(e),
            })?;
            line.push('\n');
            let _guard = self.file_lock.lock().await;
            let path = path.clone();
            // tokio's `fs` feature is not enabled for saas-core; std I/O off the executor.
            tokio::task::spawn_blocking(move || {
                use std::io::Write;
                let mut f = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)?;
                f.write_all(line.as_bytes())?;
                f.flush()
            })
            .await
            .map_err(|e| MailError::Io {
                source: std::io::Error::other(e),
            })??;
        }
        Ok(())
    }
}

/// Keeps sent messages in memory (for tests).
#[derive(Debug)]
pub struct MemoryMailer {
    from: String,
    sent: Mutex<Vec<SentMessage>>,
}

impl MemoryMailer {
    /// An empty mailer sending as `noreply@example.com`.
    pub fn new() -> Self {
        MemoryMailer {
            from: "noreply@example.com".into(),
            sent: Mutex::new(Vec::new()),
        }
    }

    /// Messages sent so far, oldest first.
    pub fn sent(&self) -> Vec<SentMessage> {
        self.sent.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Forgets sent messages.
    pub fn clear(&self) {
        self.sent.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

impl Default for MemoryMailer {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl Mailer for MemoryMailer {
    async fn send(&self, message: &Message) -> Result<(), MailError> {
        self.sent
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(SentMessage::new(&self.from, message));
        Ok(())
    }
}

/// SMTP settings, with the seed's (Django's) `EMAIL_*` names and defaults.
#[derive(Clone, PartialEq, Eq)]
pub struct SmtpConfig {
    /// `EMAIL_HOST` (default `localhost`).
    pub host: String,
    /// `EMAIL_PORT` (default 25; when unset, 587 with `EMAIL_USE_TLS` and
    /// 465 with `EMAIL_USE_SSL`).
    pub port: u16,
    /// `EMAIL_USE_TLS` (default false): upgrade with STARTTLS before
    /// anything else is sent, and fail rather than continue in the clear
    /// when the relay does not offer it (submission, port 587).
    pub use_tls: bool,
    /// `EMAIL_USE_SSL` (default false): TLS from the first byte ("SMTPS",
    /// port 465). Exclusive with `use_tls`.
    pub use_ssl: bool,
    /// `EMAIL_HOST_USER` (empty: no authentication).
    pub username: String,
    /// `EMAIL_HOST_PASSWORD`.
    pub password: String,
    /// `DEFAULT_FROM_EMAIL` (default `webmaster@localhost`).
    pub from: String,
    /// Timeout of each SMTP command.
    pub timeout: std::time::Duration,
}

impl Debug for SmtpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("use_tls", &self.use_tls)
            .field("use_ssl", &self.use_ssl)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("from", &self.from)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Default for SmtpConfig {
    fn default() -> Self {
        SmtpConfig {
            host: "localhost".into(),
            port: 25,
            use_tls: false,
            use_ssl: false,
            username: String::new(),
            password: String::new(),
            from: "webmaster@localhost".into(),
            timeout: std::time::Duration::from_secs(30),
        }
    }
}

impl SmtpConfig {
    /// Reads `EMAIL_HOST`, `EMAIL_PORT`, `EMAIL_USE_TLS`, `EMAIL_USE_SSL`,
    /// `EMAIL_HOST_USER`, `EMAIL_HOST_PASSWORD`, `EMAIL_TIMEOUT` (seconds)
    /// and `DEFAULT_FROM_EMAIL` from the environment.
    pub fn from_env() -> Result<Self, MailError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Like [`SmtpConfig::from_env`], reading variables through `get`.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, MailError> {
        let get = |k: &str| get(k).filter(|v| !v.trim().is_empty());
        let flag = |k: &str| -> Result<bool, MailError> {
            match get(k) {
                None => Ok(false),
                Some(t) => match t.trim().to_ascii_lowercase().as_str() {
                    "true" | "1" | "yes" | "on" => Ok(true),
                    "false" | "0" | "no" | "off" => Ok(false),
                    _ => Err(MailError::Config {
                        message: format!("{k} must be True or False, not {t:?}"),
                    }),
                },
            }
        };
        let mut c = SmtpConfig::default();
        if let Some(h) = get("EMAIL_HOST") {
            c.host = h.trim().to_owned();
        }
        c.use_tls = flag("EMAIL_USE_TLS")?;
        c.use_ssl = flag("EMAIL_USE_SSL")?;
        if c.use_tls && c.use_ssl {
            return Err(MailError::Config {
                message: "EMAIL_USE_TLS and EMAIL_USE_SSL are mutually exclusive: \
                          set only one of them to True"
                    .into(),
            });
        }
        c.port = match get("EMAIL_PORT") {
            Some(p) => p.trim().parse().map_err(|_| MailError::Config {
                message: format!("EMAIL_PORT must be a port number, not {p:?}"),
            })?,
            None if c.use_ssl => 465,
            None if c.use_tls => 587,
            None => 25,
        };
        if let Some(t) = get("EMAIL_TIMEOUT") {
            let secs: f64 = t.trim().parse().map_err(|_| MailError::Config {
                message: format!("EMAIL_TIMEOUT must be a number of seconds, not {t:?}"),
            })?;
            c.timeout = std::time::Duration::try_from_secs_f64(secs)
                .ok()
                .filter(|d| !d.is_zero())
                .ok_or_else(|| MailError::Config {
                    message: format!(
                        "EMAIL_TIMEOUT must be a positive number of seconds, not {t:?}"
                    ),
                })?;
        }
        c.username = get("EMAIL_HOST_USER").unwrap_or_default();
        c.password = get("EMAIL_HOST_PASSWORD").unwrap_or_default();
        if let Some(f) = get("DEFAULT_FROM_EMAIL") {
            c.from = f.trim().to_owned();
        }
        Ok(c)
    }

    /// Whether the relay is on the loopback interface (where plain SMTP
    /// with credentials does not cross a network).
    pub fn is_loopback(&self) -> bool {
        let h = self.host.trim_start_matches('[').trim_end_matches(']');
        h.eq_ignore_ascii_case("localhost")
            || h.parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }
}

#[cfg(feature = "smtp")]
pub use smtp::SmtpMailer;

#[cfg(feature = "smtp")]
mod smtp {
    use async_trait::async_trait;
    use lettre::message::Mailbox;
    use lettre::message::header::ContentType;
    use lettre::transport::smtp::authentication::Credentials;
    use lettre::transport::smtp::client::{Tls, TlsParameters};
    use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

    use super::{MailError, Mailer, Message, SmtpConfig};

    /// Delivers through an SMTP relay (lettre, TLS by rustls).
    ///
    /// - `use_tls` (`EMAIL_USE_TLS=True`): STARTTLS is *required*: a relay
    ///   that does not offer it gets no message and no credentials.
    /// - `use_ssl` (`EMAIL_USE_SSL=True`): TLS from the first byte.
    /// - Neither: plain SMTP. Credentials are then refused at construction
    ///   unless the relay is on the loopback interface, so a password never
    ///   crosses a network in the clear.
    ///
    /// Certificates are checked against the Mozilla roots compiled into the
    /// binary (webpki-roots), and the host name against `host`.
    #[derive(Debug)]
    pub struct SmtpMailer {
        from: Mailbox,
        transport: AsyncSmtpTransport<Tokio1Executor>,
    }

    impl SmtpMailer {
        /// Builds the transport; no connection is made until the first send.
        pub fn new(config: &SmtpConfig) -> Result<Self, MailError> {
            Self::build(config, None)
        }

        /// Like [`SmtpMailer::new`], also trusting the DER certificate
        /// `root` (a test relay's self-signed certificate).
        #[cfg(test)]
        pub(super) fn trusting(config: &SmtpConfig, root: Vec<u8>) -> Result<Self, MailError> {
            Self::build(config, Some(root))
        }

        fn build(config: &SmtpConfig, extra_root: Option<Vec<u8>>) -> Result<Self, MailError> {
            let tls_error = |e: lettre::transport::smtp::Error| MailError::Transport {
                source: Box::new(e),
            };
            if config.use_tls && config.use_ssl {
                return Err(MailError::Config {
                    message: "EMAIL_USE_TLS and EMAIL_USE_SSL are mutually exclusive".into(),
                });
            }
            let encrypted = config.use_tls || config.use_ssl;
            if !config.username.is_empty() && !encrypted && !config.is_loopback() {
                return Err(MailError::Config {
                    message: "refusing to send SMTP credentials unencrypted to a remote host: \
                              set EMAIL_USE_TLS=True (STARTTLS) or EMAIL_USE_SSL=True"
                        .into(),
                });
            }
            let from: Mailbox = config.from.parse().map_err(|e| MailError::Address {
                address: config.from.clone(),
                source: Box::new(e),
            })?;
            let tls = if encrypted {
                let mut params = TlsParameters::builder(config.host.clone());
                if let Some(der) = extra_root {
                    let cert = lettre::transport::smtp::client::Certificate::from_der(der)
                        .map_err(tls_error)?;
                    params = params.add_root_certificate(cert);
                }
                let params = params.build_rustls().map_err(tls_error)?;
                if config.use_ssl {
                    Tls::Wrapper(params)
                } else {
                    Tls::Required(params)
                }
            } else {
                Tls::None
            };
            let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&config.host)
                .port(config.port)
                .tls(tls)
                .timeout(Some(config.timeout));
            if !config.username.is_empty() {
                b = b.credentials(Credentials::new(
                    config.username.clone(),
                    config.password.clone(),
                ));
            }
            Ok(SmtpMailer {
                from,
                transport: b.build(),
            })
        }
    }

    #[async_trait]
    impl Mailer for SmtpMailer {
        async fn send(&self, message: &Message) -> Result<(), MailError> {
            let mut b = lettre::Message::builder()
                .from(self.from.clone())
                .subject(message.subject.clone())
                .header(ContentType::TEXT_PLAIN);
            for to in &message.to {
                let mbox: Mailbox = to.as_str().parse().map_err(|e| MailError::Address {
                    address: to.as_str().to_owned(),
                    source: Box::new(e),
                })?;
                b = b.to(mbox);
            }
            let email = b.body(message.body.clone()).map_err(|e| MailError::Build {
                source: Box::new(e),
            })?;
            self.transport
                .send(email)
                .await
                .map_err(|e| MailError::Transport {
                    source: Box::new(e),
                })?;
            tracing::info!(to = ?message.to, subject = %message.subject, "email sent over SMTP");
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn email(s: &str) -> Email {
        Email::parse(s).expect("valid email")
    }

    #[tokio::test]
    async fn log_mailer_appends_json_lines() {
        let dir = std::env::temp_dir().join(format!("saas-mail-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("mail.jsonl");
        let m = LogMailer::new("noreply@acme.test").with_file(&path);
        m.send(&Message::new(email("a@acme.test"), "Hi", "Body one"))
            .await
            .unwrap();
        m.send(&Message::new(email("b@acme.test"), "Ho", "Body\ntwo"))
            .await
            .unwrap();
        let sent = LogMailer::read_file(&path).await.unwrap();
        assert_eq!(sent.len(), 2);
        assert_eq!(sent[0].from, "noreply@acme.test");
        assert_eq!(sent[1].to, vec!["b@acme.test".to_owned()]);
        assert_eq!(sent[1].body, "Body\ntwo");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn smtp_config_reads_django_names() {
        let vars = [
            ("EMAIL_HOST", "smtp.example.com"),
            ("EMAIL_PORT", "587"),
            ("EMAIL_USE_TLS", "True"),
            ("EMAIL_HOST_USER", "me"),
            ("EMAIL_HOST_PASSWORD", "pw"),
            ("DEFAULT_FROM_EMAIL", "noreply@example.com"),
        ];
        let get = |k: &str| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        };
        let c = SmtpConfig::from_lookup(get).unwrap();
        assert_eq!(c.host, "smtp.example.com");
        assert_eq!(c.port, 587);
        assert!(c.use_tls);
        assert_eq!(c.username, "me");
        assert_eq!(c.from, "noreply@example.com");
        assert!(!format!("{c:?}").contains("pw"));
        let d = SmtpConfig::from_lookup(|_| None).unwrap();
        assert_eq!(d, SmtpConfig::default());
        assert!(SmtpConfig::from_lookup(|k| (k == "EMAIL_PORT").then(|| "x".into())).is_err());
        assert!(
            SmtpConfig::from_lookup(|k| (k == "EMAIL_USE_TLS").then(|| "maybe".into())).is_err()
        );
    }

    #[test]
    fn smtp_config_tls_modes_and_default_ports() {
        let with = |pairs: &'static [(&'static str, &'static str)]| {
            SmtpConfig::from_lookup(move |k| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            })
        };
        let tls = with(&[("EMAIL_USE_TLS", "True")]).unwrap();
        assert!(tls.use_tls && !tls.use_ssl);
        assert_eq!(tls.port, 587);
        let ssl = with(&[("EMAIL_USE_SSL", "true")]).unwrap();
        assert!(ssl.use_ssl && !ssl.use_tls);
        assert_eq!(ssl.port, 465);
        let explicit = with(&[("EMAIL_USE_SSL", "1"), ("EMAIL_PORT", "2465")]).unwrap();
        assert_eq!(explicit.port, 2465);
        assert!(matches!(
            with(&[("EMAIL_USE_TLS", "True"), ("EMAIL_USE_SSL", "True")]),
            Err(MailError::Config { .. })
        ));
        assert!(with(&[("EMAIL_USE_SSL", "sometimes")]).is_err());
        let timeout = with(&[("EMAIL_TIMEOUT", "2.5")]).unwrap();
        assert_eq!(timeout.timeout, std::time::Duration::from_millis(2500));
        for bad in ["0", "-1", "x", "NaN"] {
            let r = SmtpConfig::from_lookup(|k| (k == "EMAIL_TIMEOUT").then(|| bad.to_owned()));
            assert!(r.is_err(), "{bad}");
        }
        // Blank values are unset values (docker-compose passes `VAR=`).
        assert_eq!(
            with(&[("EMAIL_PORT", ""), ("EMAIL_USE_TLS", " ")]).unwrap(),
            SmtpConfig::default()
        );
    }

    #[cfg(feature = "smtp")]
    mod smtp_wire {
        use std::sync::Arc;
        use std::time::Duration;

        use super::*;
        use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
        use tokio::net::TcpListener;
        use tokio_rustls::TlsAcceptor;
        use tokio_rustls::rustls;

        /// What the in-test server received.
        #[derive(Debug, Default)]
        struct Received {
            mail_from: String,
            rcpt_to: Vec<String>,
            data: String,
            /// The client asked for STARTTLS.
            starttls: bool,
        }

        /// How the in-test server speaks.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        enum Mode {
            /// Plain SMTP, no STARTTLS offered.
            Plain,
            /// Plain greeting, STARTTLS offered, the rest over TLS.
            StartTls,
            /// TLS from the first byte.
            Implicit,
        }

        /// One SMTP dialogue on `stream`. Returns the stream when the client
        /// asked for STARTTLS (and `offer_starttls`), to be upgraded.
        async fn dialogue<S: AsyncRead + AsyncWrite + Unpin>(
            stream: S,
            greet: bool,
            offer_starttls: bool,
            got: &mut Received,
        ) -> std::io::Result<Option<S>> {
            let mut s = BufReader::new(stream);
            if greet {
                s.write_all(b"220 localhost ESMTP test\r\n").await?;
            }
            let mut line = String::new();
            loop {
                line.clear();
                if s.read_line(&mut line).await? == 0 {
                    return Ok(None);
                }
                let cmd = line.trim_end().to_owned();
                let upper = cmd.to_ascii_uppercase();
                if upper.starts_with("EHLO") || upper.starts_with("HELO") {
                    if offer_starttls {
                        s.write_all(b"250-localhost\r\n250-STARTTLS\r\n250 8BITMIME\r\n")
                            .await?;
                    } else {
                        s.write_all(b"250-localhost\r\n250 8BITMIME\r\n").await?;
                    }
                } else if upper == "STARTTLS" && offer_starttls {
                    got.starttls = true;
                    s.write_all(b"220 go ahead\r\n").await?;
                    s.flush().await?;
                    return Ok(Some(s.into_inner()));
                } else if let Some(from) = upper.strip_prefix("MAIL FROM:").map(|_| &cmd[10..]) {
                    got.mail_from = from.trim().to_owned();
                    s.write_all(b"250 OK\r\n").await?;
                } else if upper.starts_with("RCPT TO:") {
                    got.rcpt_to.push(cmd[8..].trim().to_owned());
                    s.write_all(b"250 OK\r\n").await?;
                } else if upper == "DATA" {
                    s.write_all(b"354 go ahead\r\n").await?;
                    loop {
                        line.clear();
                        if s.read_line(&mut line).await? == 0 {
                            break;
                        }
                        if line == ".\r\n" || line == ".\n" {
                            break;
                        }
                        got.data.push_str(&line);
                    }
                    s.write_all(b"250 queued\r\n").await?;
                } else if upper == "QUIT" {
                    s.write_all(b"221 bye\r\n").await?;
                    s.flush().await?;
                    return Ok(None);
                } else if upper == "RSET" || upper == "NOOP" {
                    s.write_all(b"250 OK\r\n").await?;
                } else {
                    s.write_all(b"502 not implemented\r\n").await?;
                }
            }
        }

        /// A minimal SMTP server for one session on loopback.
        async fn serve_once(
            listener: TcpListener,
            mode: Mode,
            tls: Option<TlsAcceptor>,
        ) -> std::io::Result<Received> {
            let (sock, _) = listener.accept().await?;
            let mut got = Received::default();
            let acceptor = || {
                tls.clone()
                    .ok_or_else(|| std::io::Error::other("no TLS configured"))
            };
            match mode {
                Mode::Plain => {
                    dialogue(sock, true, false, &mut got).await?;
                }
                Mode::Implicit => {
                    let stream = acceptor()?.accept(sock).await?;
                    dialogue(stream, true, false, &mut got).await?;
                }
                Mode::StartTls => {
                    if let Some(sock) = dialogue(sock, true, true, &mut got).await? {
                        let stream = acceptor()?.accept(sock).await?;
                        dialogue(stream, false, false, &mut got).await?;
                    }
                }
            }
            Ok(got)
        }

        /// A self-signed certificate for 127.0.0.1, as (server config, DER).
        fn test_tls() -> (TlsAcceptor, Vec<u8>) {
            let key = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
            let der = key.cert.der().to_vec();
            let private =
                rustls::pki_types::PrivateKeyDer::Pkcs8(key.signing_key.serialize_der().into());
            let config = rustls::ServerConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![key.cert.der().clone()], private)
            .unwrap();
            (TlsAcceptor::from(Arc::new(config)), der)
        }

        fn config(port: u16) -> SmtpConfig {
            SmtpConfig {
                host: "127.0.0.1".into(),
                port,
                from: "noreply@acme.test".into(),
                timeout: Duration::from_secs(10),
                ..SmtpConfig::default()
            }
        }

        fn welcome() -> Message {
            Message::new(
                email("alice@acme.test"),
                "Welcome to Acme",
                "Hello Alice,\nyour account is ready.",
            )
        }

        async fn received(server: tokio::task::JoinHandle<std::io::Result<Received>>) -> Received {
            tokio::time::timeout(Duration::from_secs(10), server)
                .await
                .unwrap()
                .unwrap()
                .unwrap()
        }

        fn assert_delivered(got: &Received) {
            assert_eq!(got.mail_from, "<noreply@acme.test>");
            assert_eq!(got.rcpt_to, vec!["<alice@acme.test>".to_owned()]);
            assert!(got.data.contains("From: noreply@acme.test"), "{}", got.data);
            assert!(got.data.contains("To: alice@acme.test"), "{}", got.data);
            assert!(
                got.data.contains("Subject: Welcome to Acme"),
                "{}",
                got.data
            );
            assert!(
                got.data.contains("Hello Alice,\r\nyour account is ready."),
                "{}",
                got.data
            );
        }

        #[tokio::test]
        async fn smtp_mailer_delivers_to_a_real_listener() {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = listener.local_addr().unwrap().port();
            let server = tokio::spawn(serve_once(listener, Mode::Plain, None));
            let mailer = SmtpMailer::new(&config(port)).unwrap();
            mailer.send(&welcome()).await.unwrap();
            let got = received(server).await;
            assert!(!got.starttls);
            assert_delivered(&got);
        }

        #[tokio::test]
        async fn starttls_upgrades_before_the_envelope() {
            let (acceptor, der) = test_tls();
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = listener.local_addr().unwrap().port();
            let server = tokio::spawn(serve_once(listener, Mode::StartTls, Some(acceptor)));
            let c = SmtpConfig {
                use_tls: true,
                ..config(port)
            };
            let mailer = SmtpMailer::trusting(&c, der).unwrap();
            mailer.send(&welcome()).await.unwrap();
            let got = received(server).await;
            assert!(got.starttls);
            assert_delivered(&got);
        }

        #[tokio::test]
        async fn implicit_tls_from_the_first_byte() {
            let (acceptor, der) = test_tls();
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = listener.local_addr().unwrap().port();
            let server = tokio::spawn(serve_once(listener, Mode::Implicit, Some(acceptor)));
            let c = SmtpConfig {
                use_ssl: true,
                ..config(port)
            };
            let mailer = SmtpMailer::trusting(&c, der).unwrap();
            mailer.send(&welcome()).await.unwrap();
            assert_delivered(&received(server).await);
        }

        #[tokio::test]
        async fn required_starttls_never_falls_back_to_plain() {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = listener.local_addr().unwrap().port();
            let server = tokio::spawn(serve_once(listener, Mode::Plain, None));
            let c = SmtpConfig {
                use_tls: true,
                username: "me".into(),
                password: "pw".into(),
                ..config(port)
            };
            let mailer = SmtpMailer::new(&c).unwrap();
            let err = mailer.send(&welcome()).await.unwrap_err();
            assert!(matches!(err, MailError::Transport { .. }), "{err:?}");
            let got = received(server).await;
            assert!(got.mail_from.is_empty() && got.data.is_empty(), "{got:?}");
        }

        #[tokio::test]
        async fn untrusted_certificates_are_refused() {
            let (acceptor, _der) = test_tls();
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = listener.local_addr().unwrap().port();
            let server = tokio::spawn(serve_once(listener, Mode::Implicit, Some(acceptor)));
            let c = SmtpConfig {
                use_ssl: true,
                ..config(port)
            };
            // Only the compiled-in public roots: the self-signed test
            // certificate is not among them.
            let mailer = SmtpMailer::new(&c).unwrap();
            let err = mailer.send(&welcome()).await.unwrap_err();
            assert!(matches!(err, MailError::Transport { .. }), "{err:?}");
            let r = tokio::time::timeout(Duration::from_secs(10), server)
                .await
                .unwrap()
                .unwrap();
            assert!(r.is_err(), "the handshake must fail: {r:?}");
        }

        #[test]
        fn smtp_mailer_refuses_what_it_cannot_do_safely() {
            let both = SmtpConfig {
                use_tls: true,
                use_ssl: true,
                ..SmtpConfig::default()
            };
            assert!(matches!(
                SmtpMailer::new(&both),
                Err(MailError::Config { .. })
            ));
            let remote_creds = SmtpConfig {
                host: "smtp.example.com".into(),
                username: "me".into(),
                password: "pw".into(),
                ..SmtpConfig::default()
            };
            assert!(matches!(
                SmtpMailer::new(&remote_creds),
                Err(MailError::Config { .. })
            ));
            for encrypted in [
                SmtpConfig {
                    use_tls: true,
                    ..remote_creds.clone()
                },
                SmtpConfig {
                    use_ssl: true,
                    ..remote_creds.clone()
                },
            ] {
                assert!(SmtpMailer::new(&encrypted).is_ok());
            }
            let local_creds = SmtpConfig {
                username: "me".into(),
                ..SmtpConfig::default()
            };
            assert!(SmtpMailer::new(&local_creds).is_ok());
        }
    }
}
