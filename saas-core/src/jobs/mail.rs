//! Outgoing email: the [`Mailer`] trait and its implementations.
//!
//! - [`LogMailer`] (the default): logs each message through `tracing` and,
//!   when given a path, appends it to a file as one JSON object per line —
//!   what development setups and end-to-end tests read.
//! - [`MemoryMailer`]: keeps messages in memory, for tests.
//! - [`SmtpMailer`] (feature `smtp`): delivers through an SMTP relay with
//!   lettre, configured like the seed's Django `EMAIL_*` settings.

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
    /// `EMAIL_PORT` (default 25).
    pub port: u16,
    /// `EMAIL_USE_TLS` (default false): require STARTTLS.
    pub use_tls: bool,
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
            username: String::new(),
            password: String::new(),
            from: "webmaster@localhost".into(),
            timeout: std::time::Duration::from_secs(30),
        }
    }
}

impl SmtpConfig {
    /// Reads `EMAIL_HOST`, `EMAIL_PORT`, `EMAIL_USE_TLS`, `EMAIL_HOST_USER`,
    /// `EMAIL_HOST_PASSWORD` and `DEFAULT_FROM_EMAIL` from the environment.
    pub fn from_env() -> Result<Self, MailError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Like [`SmtpConfig::from_env`], reading variables through `get`.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, MailError> {
        let mut c = SmtpConfig::default();
        if let Some(h) = get("EMAIL_HOST").filter(|h| !h.trim().is_empty()) {
            c.host = h.trim().to_owned();
        }
        if let Some(p) = get("EMAIL_PORT").filter(|p| !p.trim().is_empty()) {
            c.port = p.trim().parse().map_err(|_| MailError::Config {
                message: format!("EMAIL_PORT must be a port number, not {p:?}"),
            })?;
        }
        if let Some(t) = get("EMAIL_USE_TLS").filter(|t| !t.trim().is_empty()) {
            c.use_tls = match t.trim().to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "on" => true,
                "false" | "0" | "no" | "off" => false,
                _ => {
                    return Err(MailError::Config {
                        message: format!("EMAIL_USE_TLS must be True or False, not {t:?}"),
                    });
                }
            };
        }
        c.username = get("EMAIL_HOST_USER").unwrap_or_default();
        c.password = get("EMAIL_HOST_PASSWORD").unwrap_or_default();
        if let Some(f) = get("DEFAULT_FROM_EMAIL").filter(|f| !f.trim().is_empty()) {
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
    use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

    use super::{MailError, Mailer, Message, SmtpConfig};

    /// Delivers through an SMTP relay (lettre).
    ///
    /// This build links no TLS library, so it speaks plain SMTP only:
    /// `EMAIL_USE_TLS=True` is refused at construction rather than silently
    /// sending in the clear, and so are credentials for a relay that is not
    /// on the loopback interface (point it at a local relay such as
    /// Postfix, which then uses TLS upstream).
    #[derive(Debug)]
    pub struct SmtpMailer {
        from: Mailbox,
        transport: AsyncSmtpTransport<Tokio1Executor>,
    }

    impl SmtpMailer {
        /// Builds the transport; no connection is made until the first send.
        pub fn new(config: &SmtpConfig) -> Result<Self, MailError> {
            if config.use_tls {
                return Err(MailError::Config {
                    message: "EMAIL_USE_TLS=True needs TLS, which this build does not include; \
                              relay through a local MTA on the loopback interface instead"
                        .into(),
                });
            }
            if !config.username.is_empty() && !config.is_loopback() {
                return Err(MailError::Config {
                    message: "refusing to send SMTP credentials unencrypted to a remote host"
                        .into(),
                });
            }
            let from: Mailbox = config.from.parse().map_err(|e| MailError::Address {
                address: config.from.clone(),
                source: Box::new(e),
            })?;
            let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&config.host)
                .port(config.port)
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

    #[cfg(feature = "smtp")]
    mod smtp_wire {
        use super::*;
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
        use tokio::net::TcpListener;

        /// What the in-test server received.
        #[derive(Debug, Default)]
        struct Received {
            mail_from: String,
            rcpt_to: Vec<String>,
            data: String,
        }

        /// A minimal SMTP server for one session on loopback.
        async fn serve_once(listener: TcpListener) -> std::io::Result<Received> {
            let (sock, _) = listener.accept().await?;
            let (r, mut w) = sock.into_split();
            let mut r = BufReader::new(r);
            let mut got = Received::default();
            w.write_all(b"220 localhost ESMTP test\r\n").await?;
            let mut line = String::new();
            loop {
                line.clear();
                if r.read_line(&mut line).await? == 0 {
                    break;
                }
                let cmd = line.trim_end().to_owned();
                let upper = cmd.to_ascii_uppercase();
                if upper.starts_with("EHLO") || upper.starts_with("HELO") {
                    w.write_all(b"250-localhost\r\n250 8BITMIME\r\n").await?;
                } else if upper.starts_with("MAIL FROM:") {
                    got.mail_from = cmd[10..].trim().to_owned();
                    w.write_all(b"250 OK\r\n").await?;
                } else if upper.starts_with("RCPT TO:") {
                    got.rcpt_to.push(cmd[8..].trim().to_owned());
                    w.write_all(b"250 OK\r\n").await?;
                } else if upper == "DATA" {
                    w.write_all(b"354 go ahead\r\n").await?;
                    loop {
                        line.clear();
                        if r.read_line(&mut line).await? == 0 {
                            break;
                        }
                        if line == ".\r\n" || line == ".\n" {
                            break;
                        }
                        got.data.push_str(&line);
                    }
                    w.write_all(b"250 queued\r\n").await?;
                } else if upper == "QUIT" {
                    w.write_all(b"221 bye\r\n").await?;
                    break;
                } else if upper == "RSET" || upper == "NOOP" {
                    w.write_all(b"250 OK\r\n").await?;
                } else {
                    w.write_all(b"502 not implemented\r\n").await?;
                }
            }
            Ok(got)
        }

        #[tokio::test]
        async fn smtp_mailer_delivers_to_a_real_listener() {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = listener.local_addr().unwrap().port();
            let server = tokio::spawn(serve_once(listener));
            let config = SmtpConfig {
                host: "127.0.0.1".into(),
                port,
                from: "noreply@acme.test".into(),
                timeout: std::time::Duration::from_secs(10),
                ..SmtpConfig::default()
            };
            let mailer = SmtpMailer::new(&config).unwrap();
            mailer
                .send(&Message::new(
                    email("alice@acme.test"),
                    "Welcome to Acme",
                    "Hello Alice,\nyour account is ready.",
                ))
                .await
                .unwrap();
            let got = tokio::time::timeout(std::time::Duration::from_secs(10), server)
                .await
                .unwrap()
                .unwrap()
                .unwrap();
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

        #[test]
        fn smtp_mailer_refuses_what_it_cannot_do_safely() {
            let tls = SmtpConfig {
                use_tls: true,
                ..SmtpConfig::default()
            };
            assert!(matches!(
                SmtpMailer::new(&tls),
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
            let local_creds = SmtpConfig {
                username: "me".into(),
                ..SmtpConfig::default()
            };
            assert!(SmtpMailer::new(&local_creds).is_ok());
        }
    }
}
