//! Outgoing email: the transports, the outbox worker and the email templates' views.
//!
//! Nothing sends mail directly. A change that announces itself by email writes an
//! `email_outbox` row in its own transaction ([`outbox::queue`]); the worker sends it
//! later, with retries, so a dead mail server delays mail and loses none.

pub mod outbox;
pub mod templates;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use tokio::sync::Notify;

use crate::config::Settings;
use crate::db::email_outbox::OutboxRow;

/// How a connection to the mail server is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    /// Plain text only: a relay on the same machine or network.
    None,
    /// STARTTLS when the server offers it, plain text otherwise.
    Opportunistic,
    /// STARTTLS or nothing.
    StartTls,
    /// TLS from the first byte (smtps, usually port 465).
    Implicit,
}

/// An SMTP server as `--smtp-url` describes it.
#[derive(Clone, PartialEq, Eq)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
    pub user: Option<String>,
    pub password: Option<String>,
}

// Hand-written so a password never reaches a log line through `{:?}`.
impl std::fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

impl SmtpConfig {
    /// `smtp://user:pass@host:port` or `smtps://...`, optionally `?tls=none|starttls|tls`.
    /// Without `tls=`, smtp uses STARTTLS when offered, and insists on it when credentials
    /// are given so a password never crosses the network in clear.
    pub fn parse(raw: &str) -> anyhow::Result<SmtpConfig> {
        let url = url::Url::parse(raw.trim())
            .map_err(|e| anyhow::anyhow!("--smtp-url is not a valid URL: {e}"))?;
        let implicit = match url.scheme() {
            "smtp" => false,
            "smtps" => true,
            other => {
                anyhow::bail!("--smtp-url must start with smtp:// or smtps://, not {other}://")
            }
        };
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| anyhow::anyhow!("--smtp-url needs a host"))?
            .trim_matches(['[', ']'])
            .to_string();
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8()
                .map(|c| c.into_owned())
                .map_err(|_| anyhow::anyhow!("--smtp-url: credentials are not valid UTF-8"))
        };
        let user = match url.username() {
            "" => None,
            u => Some(decode(u)?),
        };
        let password = url.password().map(decode).transpose()?;
        let requested = url
            .query_pairs()
            .find(|(k, _)| k == "tls")
            .map(|(_, v)| v.to_ascii_lowercase());
        let tls = match requested.as_deref() {
            None if implicit => TlsMode::Implicit,
            None if user.is_some() => TlsMode::StartTls,
            None => TlsMode::Opportunistic,
            Some("none") => TlsMode::None,
            Some("opportunistic") => TlsMode::Opportunistic,
            Some("starttls") => TlsMode::StartTls,
            Some("tls") => TlsMode::Implicit,
            Some(other) => anyhow::bail!(
                "--smtp-url: tls={other} is not one of none, opportunistic, starttls, tls"
            ),
        };
        let port = url.port().unwrap_or(match tls {
            TlsMode::Implicit => 465,
            _ => 587,
        });
        Ok(SmtpConfig {
            host,
            port,
            tls,
            user,
            password,
        })
    }

    /// A user name and password go only over TLS, unless the operator says the path to the
    /// server is private (`--smtp-allow-plaintext`): `tls=none` never encrypts, and
    /// `tls=opportunistic` falls back to plain text whenever the server (or anyone in the
    /// middle) does not offer STARTTLS.
    pub fn check_credentials_are_protected(&self, allow_plaintext: bool) -> anyhow::Result<()> {
        let plaintext = matches!(self.tls, TlsMode::None | TlsMode::Opportunistic);
        if self.user.is_some() && plaintext && !allow_plaintext {
            let mode = match self.tls {
                TlsMode::None => "tls=none",
                _ => "tls=opportunistic",
            };
            anyhow::bail!(
                "--smtp-url has a user name and password but {mode} would send them to {}:{} \
                 without encryption. Use smtps:// or ?tls=starttls, or, if the mail server is \
                 on this machine or a network you trust, pass --smtp-allow-plaintext \
                 (PORTCULLIS_SMTP_ALLOW_PLAINTEXT=true).",
                self.host,
                self.port
            );
        }
        Ok(())
    }

    fn transport(&self) -> anyhow::Result<AsyncSmtpTransport<Tokio1Executor>> {
        let params = || TlsParameters::new(self.host.clone());
        let tls = match self.tls {
            TlsMode::None => Tls::None,
            TlsMode::Opportunistic => Tls::Opportunistic(params()?),
            TlsMode::StartTls => Tls::Required(params()?),
            TlsMode::Implicit => Tls::Wrapper(params()?),
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&self.host)
            .port(self.port)
            .tls(tls)
            .timeout(Some(SMTP_TIMEOUT));
        if let Some(user) = &self.user {
            builder = builder.credentials(Credentials::new(
                user.clone(),
                self.password.clone().unwrap_or_default(),
            ));
        }
        Ok(builder.build())
    }
}

/// Longest wait for the mail server on any one step; the outbox lease is sized from it.
pub const SMTP_TIMEOUT: Duration = Duration::from_secs(15);

/// Where email goes.
#[derive(Clone)]
pub enum Mailer {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    /// `.eml` files in a directory: the default, for trying the portal on one machine.
    /// The directory is `0700` and every file `0600`: emails carry sign-in links.
    File(PathBuf),
}

/// Why an email was not sent.
#[derive(Debug)]
pub struct SendError {
    pub message: String,
    /// Retrying cannot help (the message itself is unusable).
    pub permanent: bool,
}

impl Mailer {
    pub fn from_settings(settings: &Settings) -> anyhow::Result<Mailer> {
        match &settings.smtp_url {
            Some(url) if !url.trim().is_empty() => {
                let config = SmtpConfig::parse(url)?;
                config.check_credentials_are_protected(settings.smtp_allow_plaintext)?;
                Ok(Mailer::Smtp(config.transport()?))
            }
            _ => {
                let dir = settings.data_dir.join("mail");
                crate::db::private_dir(&settings.data_dir)?;
                crate::db::private_dir(&dir)?;
                // The folder is the portal's own: narrow one that an older version made.
                #[cfg(unix)]
                {
                    use std::os::unix::fs::PermissionsExt;
                    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
                        .map_err(|e| {
                            anyhow::anyhow!("cannot restrict {} to its owner: {e}", dir.display())
                        })?;
                }
                Ok(Mailer::File(dir))
            }
        }
    }

    /// Only the local file transport may print links: whoever runs it reads both the log
    /// and the mail files on their own machine.
    pub fn logs_links(&self) -> bool {
        matches!(self, Mailer::File(_))
    }

    pub async fn send(&self, from: &Mailbox, row: &OutboxRow) -> Result<(), SendError> {
        let message = build_message(from, row).map_err(|message| SendError {
            message,
            permanent: true,
        })?;
        // Every server-side failure is retried, even a permanent SMTP reply: a refused
        // login or sender is fixed by the operator, and the mail should then still go.
        match self {
            Mailer::Smtp(transport) => {
                transport
                    .send(message)
                    .await
                    .map(|_| ())
                    .map_err(|e| SendError {
                        message: e.to_string(),
                        permanent: false,
                    })
            }
            Mailer::File(dir) => {
                let path = dir.join(format!("{}.eml", uuid::Uuid::now_v7()));
                let bytes = message.formatted();
                let written = path.clone();
                crate::db::off_thread::run(move || write_private_file(&written, &bytes))
                    .await
                    .map_err(|e| e.to_string())
                    .and_then(|r| r.map_err(|e| e.to_string()))
                    .map_err(|message| SendError {
                        message,
                        permanent: false,
                    })?;
                tracing::info!(file = %path.display(), "email written");
                Ok(())
            }
        }
    }
}

/// A new file, `0600` from the moment it exists.
fn write_private_file(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

fn build_message(from: &Mailbox, row: &OutboxRow) -> Result<Message, String> {
    let to: Mailbox = row
        .to_addr
        .parse()
        .map_err(|e| format!("invalid recipient: {e}"))?;
    // Mail without a Message-ID looks like spam, and so does one naming a container's
    // bare host name: the sender's own domain, and the outbox row's id, so a retry of the
    // same email (after a crash mid-send) carries the same one and receivers can drop it.
    let message_id = format!("<{}@{}>", row.id, from.email.domain());
    // A notice, not a conversation: out-of-office robots do not answer it (RFC 3834).
    let auto_submitted = lettre::message::header::HeaderValue::new(
        lettre::message::header::HeaderName::new_from_ascii_str("Auto-Submitted"),
        "auto-generated".into(),
    );
    Message::builder()
        .message_id(Some(message_id))
        .raw_header(auto_submitted)
        .from(from.clone())
        .to(to)
        .subject(templates::header_safe(&row.subject))
        .multipart(MultiPart::alternative_plain_html(
            row.text_body.clone(),
            row.html_body.clone(),
        ))
        .map_err(|e| format!("cannot build the email: {e}"))
}

/// What handlers need of the mail system: a nudge for the worker after queueing mail.
#[derive(Clone)]
pub struct MailHandle {
    wake: Arc<Notify>,
    reset_requests: Arc<Notify>,
    logs_links: bool,
}

impl MailHandle {
    pub fn new(wake: Arc<Notify>, reset_requests: Arc<Notify>, logs_links: bool) -> Self {
        Self {
            wake,
            reset_requests,
            logs_links,
        }
    }

    /// Tells the password-reset worker a request is queued.
    pub fn wake_reset_worker(&self) {
        self.reset_requests.notify_one();
    }

    /// Tells the worker new mail is waiting, so it need not wait for its next poll.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    pub fn logs_links(&self) -> bool {
        self.logs_links
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtp_urls_choose_tls_and_ports() {
        let plain = SmtpConfig::parse("smtp://mail.example.com").unwrap();
        assert_eq!(plain.tls, TlsMode::Opportunistic);
        assert_eq!(plain.port, 587);
        assert_eq!(plain.user, None);

        let auth = SmtpConfig::parse("smtp://me%40example.com:p%2Fss@mail.example.com:25").unwrap();
        assert_eq!(auth.tls, TlsMode::StartTls, "credentials insist on TLS");
        assert_eq!(auth.port, 25);
        assert_eq!(auth.user.as_deref(), Some("me@example.com"));
        assert_eq!(auth.password.as_deref(), Some("p/ss"));

        let implicit = SmtpConfig::parse("smtps://u:p@mail.example.com").unwrap();
        assert_eq!(implicit.tls, TlsMode::Implicit);
        assert_eq!(implicit.port, 465);

        let none = SmtpConfig::parse("smtp://127.0.0.1:2525?tls=none").unwrap();
        assert_eq!(none.tls, TlsMode::None);
        assert_eq!(none.host, "127.0.0.1");
    }

    #[test]
    fn bad_smtp_urls_are_refused() {
        assert!(SmtpConfig::parse("http://mail.example.com").is_err());
        assert!(SmtpConfig::parse("smtp://").is_err());
        assert!(SmtpConfig::parse("smtp://h.example.com?tls=maybe").is_err());
    }

    #[test]
    fn credentials_without_tls_need_the_operators_consent() {
        for url in [
            "smtp://u:p@mail.example.com?tls=none",
            "smtp://u:p@mail.example.com?tls=opportunistic",
        ] {
            let config = SmtpConfig::parse(url).unwrap();
            let refused = config.check_credentials_are_protected(false).unwrap_err();
            assert!(
                refused.to_string().contains("--smtp-allow-plaintext"),
                "{refused}"
            );
            assert!(
                !refused.to_string().contains(":p@"),
                "no password in the message"
            );
            config.check_credentials_are_protected(true).unwrap();
        }
        for url in [
            "smtp://u:p@mail.example.com",
            "smtp://u:p@mail.example.com?tls=starttls",
            "smtps://u:p@mail.example.com",
            "smtp://relay.example.com?tls=none",
        ] {
            let config = SmtpConfig::parse(url).unwrap();
            config.check_credentials_are_protected(false).unwrap();
        }
    }

    #[test]
    fn debug_output_hides_the_password() {
        let config = SmtpConfig::parse("smtp://user:hunter22@mail.example.com").unwrap();
        assert!(!format!("{config:?}").contains("hunter22"));
    }
}
