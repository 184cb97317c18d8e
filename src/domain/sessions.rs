//! Signing in and a person's own sessions: the audit events of sign-ins, the list on
//! /account, ending one or all the others, and the "new sign-in" email sent when a
//! browser the account has not used before signs in.
//!
//! Sessions are named by their stored id, the SHA-256 of the key in the session cookie:
//! it names the row but cannot stand in for the key, since the store hashes whatever key
//! a cookie brings (and the cookie itself is encrypted with the server's key).

use askama::Template;
use chrono::NaiveDateTime;
use diesel::QueryResult;
use serde_json::json;

use crate::audit::{self, Event, Origin};
use crate::db::users::{self, User};
use crate::db::{self, DbConnection, sessions};
use crate::domain::notices;
use crate::mail::templates::{Rendered, SecurityChange, header_safe};

/// Browser and operating system, as read from a User-Agent header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    pub browser: String,
    pub os: String,
}

impl Client {
    /// "Chrome on Linux".
    pub fn label(&self) -> String {
        format!("{} on {}", self.browser, self.os)
    }
}

/// Browsers by a product token of their User-Agent, first match wins: a browser also
/// names the ones it descends from (Edge and Opera say Chrome and Safari, Chrome says
/// Safari), so each comes before its ancestors. The parser crates with full rule sets
/// (woothee, uap) all need the `regex` crate, 1.3 MB of the binary, for this label.
const BROWSERS: &[(&str, &str)] = &[
    ("Edg/", "Edge"),
    ("EdgA/", "Edge"),
    ("EdgiOS/", "Edge"),
    ("Edge/", "Edge"),
    ("OPR/", "Opera"),
    ("OPiOS/", "Opera"),
    ("Opera", "Opera"),
    ("Vivaldi/", "Vivaldi"),
    ("YaBrowser/", "Yandex Browser"),
    ("SamsungBrowser/", "Samsung Internet"),
    ("Firefox/", "Firefox"),
    ("FxiOS/", "Firefox"),
    ("Chromium/", "Chromium"),
    ("CriOS/", "Chrome"),
    ("Chrome/", "Chrome"),
    ("Trident/", "Internet Explorer"),
    ("MSIE ", "Internet Explorer"),
    ("Safari/", "Safari"),
];

/// Systems by a word of the User-Agent's platform, first match wins: iPhones say "like
/// Mac OS X" and Android says Linux.
const SYSTEMS: &[(&str, &str)] = &[
    ("iPhone", "iPhone"),
    ("iPad", "iPad"),
    ("Android", "Android"),
    ("CrOS", "ChromeOS"),
    ("Windows", "Windows"),
    ("Mac OS X", "macOS"),
    ("Macintosh", "macOS"),
    ("FreeBSD", "FreeBSD"),
    ("OpenBSD", "OpenBSD"),
    ("Linux", "Linux"),
];

fn first_named<'a>(user_agent: &str, names: &[(&str, &'a str)]) -> Option<&'a str> {
    names
        .iter()
        .find(|(token, _)| user_agent.contains(token))
        .map(|(_, name)| *name)
}

/// Reads a User-Agent; what it cannot tell reads as "Unknown".
pub fn describe(user_agent: Option<&str>) -> Client {
    let user_agent = user_agent.unwrap_or_default();
    Client {
        browser: first_named(user_agent, BROWSERS)
            .unwrap_or("Unknown browser")
            .into(),
        os: first_named(user_agent, SYSTEMS)
            .unwrap_or("an unknown system")
            .into(),
    }
}

/// Who is acting on their own sessions.
#[derive(Debug, Clone)]
pub struct Owner {
    pub user_id: String,
    pub email: String,
    /// The first name notices greet.
    pub first_name: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// No live session of this account has that id (another account's included).
    #[error("no such session")]
    NotFound,
    #[error(transparent)]
    Db(#[from] diesel::result::Error),
}

/// What ending one session did.
#[derive(Debug, Clone)]
pub struct Ended {
    pub client: Client,
    pub ip: String,
    /// The session ended was the one the request came with.
    pub was_current: bool,
}

/// Ends one of the owner's own sessions, in one transaction with its audit event. Any id
/// that is not a live session of this account, another account's above all, is
/// `NotFound` and changes nothing.
pub fn end_one(
    conn: &mut DbConnection,
    owner: &Owner,
    session_id: &str,
    current_id: Option<&str>,
    origin: &Origin,
) -> Result<Ended, SessionError> {
    db::write_tx(conn, |conn| {
        let row = sessions::find_for_user(conn, &owner.user_id, session_id, db::now())?
            .ok_or(SessionError::NotFound)?;
        sessions::delete(conn, &row.id)?;
        let client = describe(row.user_agent.as_deref());
        let ip = row.ip.clone().unwrap_or_default();
        let was_current = current_id == Some(row.id.as_str());
        audit::record(
            conn,
            &Event::new("account.session_ended", origin)
                .actor(&owner.user_id, &owner.email)
                .target("user", &owner.user_id, &owner.email)
                .details(json!({
                    "browser": client.browser,
                    "os": client.os,
                    "session_ip": ip,
                    "signed_in_at": super::timefmt::iso_time(row.created_at),
                    "this_browser": was_current,
                })),
        )?;
        Ok(Ended {
            client,
            ip,
            was_current,
        })
    })
}

/// "Sign out everywhere else": ends every session of the owner but `current_id`, with
/// one audit event giving the count. Answers how many ended, and when the kept session
/// was made (its new key keeps it).
pub fn end_others(
    conn: &mut DbConnection,
    owner: &Owner,
    current_id: &str,
    origin: &Origin,
) -> diesel::QueryResult<(usize, Option<NaiveDateTime>)> {
    db::write_tx(conn, |conn| {
        let ended = sessions::delete_for_user_except(conn, &owner.user_id, current_id)?;
        audit::record(
            conn,
            &Event::new("account.other_sessions_ended", origin)
                .actor(&owner.user_id, &owner.email)
                .target("user", &owner.user_id, &owner.email)
                .details(json!({ "sessions_ended": ended })),
        )?;
        let born = sessions::find(conn, current_id)?.map(|kept| kept.created_at);
        Ok((ended, born))
    })
}

/// Turns the "new sign-in" email on or off, audited. Answers whether anything changed;
/// posting the setting it already has records nothing.
pub fn set_signin_alerts(
    conn: &mut DbConnection,
    owner: &Owner,
    on: bool,
    public_url: &str,
    origin: &Origin,
) -> diesel::QueryResult<bool> {
    db::write_tx(conn, |conn| {
        if users::signin_alerts(conn, &owner.user_id)? == on {
            return Ok(false);
        }
        users::set_signin_alerts(conn, &owner.user_id, on)?;
        if !on {
            let off = SecurityChange::SignInAlertsOff;
            notices::tell_owner(conn, &owner.email, &owner.first_name, off, public_url)?;
        }
        audit::record(
            conn,
            &Event::new("account.signin_alerts_changed", origin)
                .actor(&owner.user_id, &owner.email)
                .target("user", &owner.user_id, &owner.email)
                .details(json!({ "enabled": on, "emails": if on { "on" } else { "off" } })),
        )?;
        Ok(true)
    })
}

/// The browser a sign-in comes from, as the "new sign-in" rule sees it.
#[derive(Debug, Clone)]
pub struct Browser {
    /// The account this browser's valid device cookie was issued to, if it brought one:
    /// a browser has signed in to that account before.
    pub device_owner: Option<String>,
    pub user_agent: Option<String>,
    pub ip: String,
    /// Where the person reviews their sessions: `{public_url}/account`.
    pub account_url: String,
}

/// Records, inside the sign-in's transaction, a sign-in that went through: the account's
/// last activity and, when the browser is new to the account and the person has not
/// turned it off, the "new sign-in" email. Answers whether the email was queued.
pub fn signed_in(conn: &mut DbConnection, user: &User, browser: &Browser) -> QueryResult<bool> {
    users::touch(conn, &user.id)?;
    let at = db::now();
    let known_browser = browser.device_owner.as_deref() == Some(user.id.as_str());
    if known_browser
        || !users::signin_alerts(conn, &user.id)?
        || !super::notices::take_share(conn, super::notices::NEW_SIGN_IN, &user.email)?
    {
        return Ok(false);
    }
    let email = NewSignInEmail {
        client: describe(browser.user_agent.as_deref()),
        ip: if browser.ip.is_empty() {
            "an unknown address".into()
        } else {
            browser.ip.clone()
        },
        at,
        account_url: browser.account_url.clone(),
    }
    .render()
    .map_err(|e| diesel::result::Error::SerializationError(e.into()))?;
    crate::mail::outbox::queue(conn, &user.email, &email, None, at)?;
    Ok(true)
}

/// A password sign-in that went through (two-factor ones are recorded by
/// `two_factor::record_outcome`).
pub fn record_login_succeeded(
    conn: &mut DbConnection,
    user: &User,
    new_browser_email: bool,
    origin: &Origin,
) -> QueryResult<()> {
    audit::record(
        conn,
        &Event::new("auth.login_succeeded", origin)
            .actor(&user.id, &user.email)
            .target("user", &user.id, &user.email)
            .details(json!({ "new_browser_email": new_browser_email })),
    )
}

/// A sign-in whose email and password matched no active account.
pub fn record_login_failed(
    conn: &mut DbConnection,
    typed: &str,
    origin: &Origin,
) -> QueryResult<()> {
    audit::record(conn, &attempt_event("auth.login_failed", typed, origin))
}

/// The audit trail gets one `auth.login_throttled` event per throttle key and window, at
/// its first refusal, not one per refused request (an anonymous client could otherwise
/// grow the insert-only table without bound). Later refusals in the same window are
/// counted in `login_attempts.refused` for that key.
pub fn record_login_throttled(
    conn: &mut DbConnection,
    typed: &str,
    limit: &str,
    window_ends_at: NaiveDateTime,
    origin: &Origin,
) -> QueryResult<()> {
    let details = json!({
        "limit": limit,
        "window_ends_at": super::timefmt::iso_time(window_ends_at),
        "refused_so_far": 1,
        "aggregated": "first refusal of this window; further refusals until window_ends_at are counted in the throttle table, not recorded one by one",
    });
    let event = attempt_event("auth.login_throttled", typed, origin).details(details);
    audit::record(conn, &event)
}

/// The event of a failed or throttled sign-in, naming the account it tried. People type
/// their password into the email field now and then: anything that is not an address
/// is not recorded.
fn attempt_event(action: &'static str, typed: &str, origin: &Origin) -> Event {
    let account = super::email::Email::parse(typed)
        .map(|e| e.as_str().to_string())
        .unwrap_or_else(|_| "(not an email address)".into());
    Event::new(action, origin).target("account", "", &account)
}

/// The "new sign-in" email (`templates/email/new_signin.txt` and `.html`).
#[derive(Debug, Clone)]
pub struct NewSignInEmail {
    pub client: Client,
    pub ip: String,
    pub at: NaiveDateTime,
    pub account_url: String,
}

impl NewSignInEmail {
    pub fn subject(&self) -> String {
        header_safe(&format!(
            "New sign-in to your Portcullis account from {}",
            self.client.label()
        ))
    }

    pub fn when(&self) -> String {
        self.at.format("%Y-%m-%d %H:%M UTC").to_string()
    }

    pub fn render(&self) -> Result<Rendered, askama::Error> {
        Ok(Rendered {
            subject: self.subject(),
            text: NewSignInText { e: self }.render()?,
            html: NewSignInHtml { e: self }.render()?,
        })
    }
}

#[derive(Template)]
#[template(path = "email/new_signin.txt")]
struct NewSignInText<'a> {
    e: &'a NewSignInEmail,
}

#[derive(Template)]
#[template(path = "email/new_signin.html")]
struct NewSignInHtml<'a> {
    e: &'a NewSignInEmail,
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHROME_LINUX: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";
    const FIREFOX_WINDOWS: &str =
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0";
    const SAFARI_IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1";

    #[test]
    fn user_agents_read_as_browser_and_system() {
        assert_eq!(describe(Some(CHROME_LINUX)).label(), "Chrome on Linux");
        let firefox = describe(Some(FIREFOX_WINDOWS));
        assert_eq!(firefox.browser, "Firefox");
        assert!(firefox.os.starts_with("Windows"), "{firefox:?}");
        assert_eq!(describe(Some(SAFARI_IPHONE)).label(), "Safari on iPhone");
    }

    #[test]
    fn browsers_are_told_apart_from_the_ones_they_name_as_ancestors() {
        for (ua, label) in [
            (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
                "Edge on Windows",
            ),
            (
                "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 OPR/115.0.0.0",
                "Opera on macOS",
            ),
            (
                "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
                "Safari on macOS",
            ),
            (
                "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.6778.81 Mobile Safari/537.36",
                "Chrome on Android",
            ),
            (
                "Mozilla/5.0 (iPad; CPU OS 17_7 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/131.0.6778.73 Mobile/15E148 Safari/604.1",
                "Chrome on iPad",
            ),
            (
                "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/156.0.0.0 Safari/537.36",
                "Chrome on Linux",
            ),
            (
                "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
                "Chrome on ChromeOS",
            ),
            (
                "Mozilla/5.0 (Windows NT 6.1; WOW64; Trident/7.0; rv:11.0) like Gecko",
                "Internet Explorer on Windows",
            ),
        ] {
            assert_eq!(describe(Some(ua)).label(), label, "{ua}");
        }
    }

    #[test]
    fn missing_or_odd_user_agents_read_as_unknown() {
        for ua in [
            None,
            Some(""),
            Some("   "),
            Some("curl-ish/0.0 \u{0} <script>"),
        ] {
            let client = describe(ua);
            assert_eq!(client.browser, "Unknown browser", "{ua:?}");
        }
    }

    #[test]
    fn the_email_says_what_when_where_and_what_to_do() {
        let rendered = NewSignInEmail {
            client: describe(Some(CHROME_LINUX)),
            ip: "203.0.113.7".into(),
            at: chrono::DateTime::UNIX_EPOCH.naive_utc(),
            account_url: "https://portal.example.com/account".into(),
        }
        .render()
        .unwrap();
        assert_eq!(
            rendered.subject,
            "New sign-in to your Portcullis account from Chrome on Linux"
        );
        for body in [&rendered.text, &rendered.html] {
            assert!(body.contains("Chrome"));
            assert!(body.contains("Linux"));
            assert!(body.contains("203.0.113.7"));
            assert!(body.contains("1970-01-01 00:00 UTC"));
            assert!(body.contains("https://portal.example.com/account"));
            assert!(body.contains("change your password"));
        }
    }
}
