use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

/// Portcullis: invite people into your organization, manage members, read the audit trail.
#[derive(Debug, Parser)]
#[command(name = "portcullis", version, about)]
pub struct Cli {
    #[command(flatten)]
    pub settings: Settings,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Environment variables read outside the options: the log filter.
const OTHER_VARIABLES: &[&str] = &["PORTCULLIS_LOG"];

/// The `PORTCULLIS_*` variables of `environment` that no option reads: a misspelled
/// `PORTCULLIS_SMTP_URL` would otherwise leave the portal writing mail to files and
/// logging invitation links, with nothing said.
pub fn unknown_variables(environment: impl Iterator<Item = String>) -> Vec<String> {
    use clap::CommandFactory;
    let command = Cli::command();
    let mut known: Vec<String> = command
        .get_arguments()
        .filter_map(|a| a.get_env())
        .map(|e| e.to_string_lossy().into_owned())
        .collect();
    for sub in command.get_subcommands() {
        known.extend(
            sub.get_arguments()
                .filter_map(|a| a.get_env())
                .map(|e| e.to_string_lossy().into_owned()),
        );
    }
    known.extend(OTHER_VARIABLES.iter().map(|v| v.to_string()));
    let mut unknown: Vec<String> = environment
        .filter(|name| name.starts_with("PORTCULLIS_") && !known.contains(name))
        .collect();
    unknown.sort();
    unknown
}

/// The public address must be one people can open: `http://` or `https://` and a host.
pub fn check_public_url(url: &str) -> Result<(), String> {
    match url::Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => Ok(()),
        _ => Err(format!(
            "--public-url {url:?} is not an address people can open: give it as https://portal.example.com"
        )),
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the web server (the default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Create a platform administrator who is Admin of an organization. Reads the
    /// password from standard input when one is piped in; otherwise prints a one-time
    /// setup link.
    CreateAdmin {
        #[arg(long)]
        email: String,
        /// Organization slug; the first organization when omitted.
        #[arg(long)]
        org: Option<String>,
    },
    /// Delete audit events older than DAYS days (retention). The audit trail is
    /// otherwise insert-only; each run records an `audit.pruned` event with the count.
    PruneAudit {
        #[arg(long, value_name = "DAYS", value_parser = clap::value_parser!(u32).range(1..))]
        older_than: u32,
    },
    /// Mint an API token for an organization and print only the token (for scripts and
    /// the SCIM conformance run). Recorded in the audit trail as made on the command line.
    CreateApiToken {
        /// Organization slug.
        #[arg(long)]
        org: String,
        /// A name that says where the token is used.
        #[arg(long)]
        name: String,
        /// Comma-separated scopes: `scim` (read and write), `read` (read only).
        #[arg(long, value_delimiter = ',', required = true)]
        scopes: Vec<String>,
        /// The role SCIM gives the members it creates (name or key); Member when omitted.
        #[arg(long)]
        role: Option<String>,
        /// Days until it expires; never when omitted.
        #[arg(long, value_name = "DAYS")]
        expires_days: Option<i64>,
    },
    /// Fill an organization with demo data, to try the portal or measure it at scale.
    SeedDemo {
        /// Organization slug, created when missing; the first organization when omitted.
        #[arg(long)]
        org: Option<String>,
        /// How many members to add (accounts without a password).
        #[arg(long, value_name = "N", default_value_t = 0)]
        members: u64,
        /// How many demo audit events to add.
        #[arg(long, value_name = "N", default_value_t = 0)]
        audit_events: u64,
    },
}

#[derive(Clone, Args)]
pub struct Settings {
    /// postgres://..., sqlite://PATH or a file path. Default: DATA_DIR/portcullis.db.
    // Its password must not reach `--help`, nor a log that keeps what `--help` printed.
    #[arg(
        long,
        env = "PORTCULLIS_DATABASE_URL",
        hide_env_values = true,
        global = true
    )]
    pub database_url: Option<String>,

    /// Address and port to listen on.
    #[arg(
        long,
        env = "PORTCULLIS_BIND",
        default_value = "127.0.0.1:8080",
        global = true
    )]
    pub bind: String,

    /// Where the SQLite database, the session key and outgoing mail files are kept.
    #[arg(
        long,
        env = "PORTCULLIS_DATA_DIR",
        default_value = "./data",
        global = true
    )]
    pub data_dir: PathBuf,

    /// The address people use to reach the portal, used in links. Default: http://BIND.
    #[arg(long, env = "PORTCULLIS_PUBLIC_URL", global = true)]
    pub public_url: Option<String>,

    /// Key that signs and encrypts session cookies (at least 64 bytes). Default: a key
    /// generated once and kept in DATA_DIR/session.key.
    #[arg(
        long,
        env = "PORTCULLIS_SESSION_KEY",
        hide_env_values = true,
        global = true
    )]
    pub session_key: Option<String>,

    /// A session ends after this long without a request.
    #[arg(long, env = "PORTCULLIS_SESSION_IDLE_TIMEOUT", default_value = "8h", value_parser = parse_period, global = true)]
    pub session_idle_timeout: Duration,

    /// A session ends this long after sign-in, however active.
    #[arg(long, env = "PORTCULLIS_SESSION_ABSOLUTE_TIMEOUT", default_value = "7days", value_parser = parse_period, global = true)]
    pub session_absolute_timeout: Duration,

    /// How long an invitation link stays valid.
    #[arg(long, env = "PORTCULLIS_INVITATION_TTL", default_value = "72h", value_parser = parse_period, global = true)]
    pub invitation_ttl: Duration,

    /// How long a password reset link stays valid.
    #[arg(long, env = "PORTCULLIS_PASSWORD_RESET_TTL", default_value = "30m", value_parser = parse_period, global = true)]
    pub password_reset_ttl: Duration,

    /// Outgoing mail server: `smtp://user:pass@host:port` (STARTTLS when offered; required
    /// when credentials are given) or `smtps://...` (TLS from the start). Add `?tls=none`,
    /// `?tls=starttls` or `?tls=tls` to choose. Default: no server; emails are written as
    /// .eml files to DATA_DIR/mail and invitation links are logged.
    #[arg(
        long,
        env = "PORTCULLIS_SMTP_URL",
        hide_env_values = true,
        global = true
    )]
    pub smtp_url: Option<String>,

    /// Allow `--smtp-url` credentials over a connection without TLS (`tls=none` or
    /// `tls=opportunistic`): only for a mail server on this machine or a trusted network.
    /// Without it, such a URL stops start-up.
    #[arg(
        long,
        env = "PORTCULLIS_SMTP_ALLOW_PLAINTEXT",
        default_value_t = false,
        global = true
    )]
    pub smtp_allow_plaintext: bool,

    /// Sender of every email, e.g. `Portcullis <noreply@example.com>`. Default:
    /// noreply@ the public URL's host.
    #[arg(long, env = "PORTCULLIS_MAIL_FROM", global = true)]
    pub mail_from: Option<String>,

    /// How often the outbox is checked for due emails (new ones are sent at once anyway).
    #[arg(long, env = "PORTCULLIS_MAIL_POLL_INTERVAL", default_value = "5s", value_parser = parse_period, global = true)]
    pub mail_poll_interval: Duration,

    /// How often memberships whose "access until" day is over are deactivated.
    #[arg(long, env = "PORTCULLIS_MEMBERSHIP_EXPIRY_INTERVAL", default_value = "5m", value_parser = parse_period, global = true)]
    pub membership_expiry_interval: Duration,

    /// Wait before the first retry of a failed email; each further retry waits twice as
    /// long, at most an hour.
    #[arg(long, env = "PORTCULLIS_MAIL_RETRY_DELAY", default_value = "30s", value_parser = parse_period, global = true)]
    pub mail_retry_delay: Duration,

    /// Failed sign-ins allowed per account within the throttle window.
    #[arg(
        long,
        env = "PORTCULLIS_LOGIN_MAX_FAILURES_PER_ACCOUNT",
        default_value_t = 5,
        value_parser = clap::value_parser!(i64).range(1..),
        global = true
    )]
    pub login_max_failures_per_account: i64,

    /// Failed sign-ins allowed per client address within the throttle window.
    #[arg(
        long,
        env = "PORTCULLIS_LOGIN_MAX_FAILURES_PER_ADDRESS",
        default_value_t = 20,
        value_parser = clap::value_parser!(i64).range(1..),
        global = true
    )]
    pub login_max_failures_per_address: i64,

    /// Window over which failed sign-ins are counted; they are forgotten after it.
    #[arg(long, env = "PORTCULLIS_LOGIN_THROTTLE_WINDOW", default_value = "15m", value_parser = parse_period, global = true)]
    pub login_throttle_window: Duration,

    /// Password hashes computed at once. Default: half the CPUs, at least one, so a flood
    /// of sign-ins never takes every core from the pages.
    #[arg(long, env = "PORTCULLIS_HASH_SLOTS", value_parser = at_least_one, global = true)]
    pub hash_slots: Option<usize>,

    /// Password checks (sign-ins, password changes) that may wait for a hashing slot;
    /// beyond them the answer is 503 at once, with `Retry-After`.
    #[arg(
        long,
        env = "PORTCULLIS_HASH_QUEUE",
        default_value_t = 32,
        global = true
    )]
    pub hash_queue: usize,

    /// Invitation emails one member may send within an organization in an hour, new and
    /// resent alike; past it the form says how many are left. Bounds what one account
    /// (or whoever took it over) can mail to strangers in the organization's name.
    /// Platform admins' invitations are not counted.
    #[arg(
        long,
        env = "PORTCULLIS_INVITATIONS_PER_HOUR",
        default_value_t = 1000,
        value_parser = clap::value_parser!(i64).range(1..),
        global = true
    )]
    pub invitations_per_hour: i64,

    /// Most members (or groups) one SCIM list request reads to apply a filter that no
    /// index narrows (`userName eq` and `externalId eq` are looked up); past it the answer
    /// is 400 `tooMany`, so no token holds a connection for minutes.
    #[arg(
        long,
        env = "PORTCULLIS_SCIM_SCAN_LIMIT",
        default_value_t = 50_000,
        value_parser = clap::value_parser!(i64).range(1..),
        global = true
    )]
    pub scim_scan_limit: i64,

    /// Reverse proxies whose forwarding header is believed, as CIDRs or addresses
    /// separated by commas (`10.0.0.0/8,192.168.1.7`). A request whose socket peer is in
    /// this list gets, as its client address, the right-most hop of the forwarding header
    /// that is not in the list (never the left-most, which the client writes). Default:
    /// none; the client address is always the socket's.
    #[arg(
        long,
        env = "PORTCULLIS_TRUSTED_PROXIES",
        value_name = "CIDR,...",
        value_delimiter = ',',
        value_parser = parse_proxy,
        global = true
    )]
    pub trusted_proxies: Vec<ipnet::IpNet>,

    /// The forwarding header the trusted proxies append to: `x-forwarded-for` or
    /// `forwarded` (RFC 7239, its `for=` parameters). Only this one is read, and only
    /// from a trusted proxy.
    #[arg(
        long,
        env = "PORTCULLIS_PROXY_HEADER",
        value_enum,
        default_value = "x-forwarded-for",
        global = true
    )]
    pub proxy_header: ProxyHeader,

    /// Log format: `text` or `json`.
    #[arg(
        long,
        env = "PORTCULLIS_LOG_FORMAT",
        default_value = "text",
        global = true
    )]
    pub log_format: String,

    /// HTTP worker threads. Default: one per CPU.
    #[arg(long, env = "PORTCULLIS_WORKERS", value_parser = at_least_one, global = true)]
    pub workers: Option<usize>,

    /// Database connections kept in the pool. Default: 4 on SQLite, 10 on PostgreSQL.
    #[arg(long, env = "PORTCULLIS_DB_POOL_SIZE", value_parser = clap::value_parser!(u32).range(1..), global = true)]
    pub db_pool_size: Option<u32>,

    /// Where the app reads "now" for rules that run on dates (the organization's
    /// two-factor deadline): the system clock, or one a test moves forward.
    #[arg(skip)]
    pub clock: Clock,

    /// Lets a test hold password hashes at their start; production never holds them.
    #[arg(skip)]
    pub hash_hold: HashHold,
}

/// A test's hand on the hashing slots: once [`HashHold::engage`]d, every password hash
/// waits at its start, in its slot, until [`HashHold::release`], so a test fills the
/// sign-in queue without racing a clock. The default never holds anything.
#[derive(Clone, Default)]
pub struct HashHold(Option<std::sync::Arc<HoldState>>);

#[derive(Default)]
struct HoldState {
    engaged: std::sync::atomic::AtomicBool,
    held: std::sync::atomic::AtomicUsize,
    /// Wakes held hashes on release and a test waiting for them to be held.
    changed: tokio::sync::Notify,
}

impl HashHold {
    /// A hold a test can engage; it starts released.
    pub fn adjustable() -> Self {
        HashHold(Some(Default::default()))
    }

    /// From now on, hashes wait at their start.
    ///
    /// # Panics
    /// On the default hold, which nothing may engage.
    pub fn engage(&self) {
        let state = self.0.as_ref().expect("only an adjustable hold can engage");
        state
            .engaged
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Lets every held hash go, and the ones after them.
    pub fn release(&self) {
        if let Some(state) = &self.0 {
            state
                .engaged
                .store(false, std::sync::atomic::Ordering::SeqCst);
            state.changed.notify_waiters();
        }
    }

    /// Waits until `n` hashes are held.
    pub async fn until_held(&self, n: usize) {
        let Some(state) = &self.0 else { return };
        loop {
            let changed = state.changed.notified();
            if state.held.load(std::sync::atomic::Ordering::SeqCst) >= n {
                return;
            }
            changed.await;
        }
    }

    /// Where a hash starts: passes at once unless a test engaged the hold.
    pub async fn pass(&self) {
        use std::sync::atomic::Ordering::SeqCst;
        let Some(state) = &self.0 else { return };
        if !state.engaged.load(SeqCst) {
            return;
        }
        state.held.fetch_add(1, SeqCst);
        state.changed.notify_waiters();
        loop {
            // Created before the check, so a release in between still wakes it.
            let released = state.changed.notified();
            if !state.engaged.load(SeqCst) {
                break;
            }
            released.await;
        }
        state.held.fetch_sub(1, SeqCst);
    }
}

/// The time the app's date rules see. The system clock in production; tests start the
/// app with [`Clock::adjustable`] and move it forward, so a deadline days away passes
/// without faking rows in the database.
#[derive(Clone, Default)]
pub struct Clock {
    /// Seconds added to the system time; `None` for the plain system clock.
    offset: Option<std::sync::Arc<std::sync::atomic::AtomicI64>>,
}

impl Clock {
    pub fn system() -> Self {
        Clock::default()
    }

    /// Starts at the system time; [`Clock::advance`] moves it forward.
    pub fn adjustable() -> Self {
        Clock {
            offset: Some(Default::default()),
        }
    }

    /// UTC now, in microseconds as the databases store it.
    pub fn now(&self) -> chrono::NaiveDateTime {
        use chrono::SubsecRound;
        let offset = self
            .offset
            .as_ref()
            .map_or(0, |o| o.load(std::sync::atomic::Ordering::SeqCst));
        (chrono::Utc::now().naive_utc() + chrono::Duration::seconds(offset)).trunc_subsecs(6)
    }

    /// Moves an adjustable clock forward (every copy of it sees the move).
    ///
    /// # Panics
    /// On the system clock, which nothing may move.
    pub fn advance(&self, by: chrono::Duration) {
        let offset = self
            .offset
            .as_ref()
            .expect("only an adjustable clock can be moved");
        offset.fetch_add(by.num_seconds(), std::sync::atomic::Ordering::SeqCst);
    }
}

/// Which forwarding header `--trusted-proxies` applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProxyHeader {
    XForwardedFor,
    Forwarded,
}

/// The longest validity or timeout an option may set. Each is added to the time and
/// stored as text; ten years keeps every sum a four-digit year, which sorts as text.
const LONGEST_PERIOD: Duration = Duration::from_secs(3650 * 24 * 3600);

/// A validity, timeout, window or interval: a humantime duration above zero (a zero
/// interval would stop a background job's timer or spin it) and at most ten years.
/// A count of threads or connections: zero would start a server that serves nothing
/// (or panic deep inside the library that runs them), so it is refused by name.
fn at_least_one(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("`{text}` is not a whole number")),
    }
}

fn parse_period(text: &str) -> Result<Duration, String> {
    let period = humantime::parse_duration(text).map_err(|e| e.to_string())?;
    if period.is_zero() {
        return Err("must be longer than zero".into());
    }
    if period > LONGEST_PERIOD {
        return Err("must be at most 3650 days".into());
    }
    Ok(period)
}

/// One `--trusted-proxies` entry: a CIDR, or a single address (a /32 or /128).
fn parse_proxy(entry: &str) -> Result<ipnet::IpNet, String> {
    let entry = entry.trim();
    entry
        .parse::<ipnet::IpNet>()
        .or_else(|_| entry.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| format!("{entry:?} is not a CIDR such as 10.0.0.0/8 or an IP address"))
}

impl Settings {
    pub fn database_url(&self) -> String {
        self.database_url.clone().unwrap_or_else(|| {
            self.data_dir
                .join("portcullis.db")
                .to_string_lossy()
                .into_owned()
        })
    }

    /// The base of every link, without a trailing slash.
    pub fn public_url(&self) -> String {
        self.public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.bind))
            .trim_end_matches('/')
            .to_string()
    }

    /// The sender address of outgoing email.
    pub fn mail_from(&self) -> String {
        if let Some(from) = &self.mail_from {
            return from.clone();
        }
        let host = url::Url::parse(&self.public_url())
            .ok()
            .and_then(|u| match u.host() {
                Some(url::Host::Domain(d)) if d.contains('.') => Some(d.to_string()),
                _ => None,
            })
            .unwrap_or_else(|| "localhost".into());
        format!("Portcullis <noreply@{host}>")
    }

    pub fn secure_cookies(&self) -> bool {
        self.public_url().starts_with("https://")
    }

    /// Settings as a test or an embedding program builds them, without reading argv.
    pub fn for_tests(database_url: String, data_dir: PathBuf) -> Self {
        let cli = Cli::parse_from(["portcullis"]);
        Settings {
            database_url: Some(database_url),
            data_dir,
            bind: "127.0.0.1:0".into(),
            mail_poll_interval: Duration::from_millis(200),
            mail_retry_delay: Duration::from_millis(200),
            membership_expiry_interval: Duration::from_millis(200),
            ..cli.settings
        }
    }
}

/// Secrets (the session key, the SMTP URL with its password) print as `<redacted>`, so a
/// debug log of the settings leaks nothing.
impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redacted = |v: &Option<String>| v.as_ref().map(|_| "<redacted>");
        f.debug_struct("Settings")
            .field(
                "database_url",
                &self.database_url.as_ref().map(|u| redact_password(u)),
            )
            .field("bind", &self.bind)
            .field("data_dir", &self.data_dir)
            .field("public_url", &self.public_url)
            .field("session_key", &redacted(&self.session_key))
            .field("smtp_url", &redacted(&self.smtp_url))
            .field("mail_from", &self.mail_from)
            .finish_non_exhaustive()
    }
}

/// `postgres://user:secret@host/db` -> `postgres://user:<redacted>@host/db`.
fn redact_password(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("<redacted>"));
            parsed.to_string()
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_period_is_above_zero_and_at_most_ten_years() {
        assert_eq!(parse_period("72h"), Ok(Duration::from_secs(72 * 3600)));
        assert_eq!(parse_period("3650days"), Ok(LONGEST_PERIOD));
        for refused in ["0s", "3651days", "100000years", "soon"] {
            assert!(parse_period(refused).is_err(), "{refused}");
        }
    }

    #[test]
    fn debug_output_hides_secrets() {
        let mut settings = Settings::for_tests(
            "postgres://app:hunter2@db.example/portcullis".into(),
            "/tmp/x".into(),
        );
        settings.smtp_url = Some("smtp://mailer:s3cret@mail.example:587".into());
        settings.session_key = Some("k".repeat(64));
        let text = format!("{settings:?}");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(!text.contains("s3cret"), "{text}");
        assert!(!text.contains(&"k".repeat(64)), "{text}");
        assert!(text.contains("db.example"));
    }
}
