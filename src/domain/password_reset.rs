//! Forgotten passwords (OWASP Forgot Password Cheat Sheet): a one-time link by email, then
//! a new password.
//!
//! Rules:
//! - the answer to a request never says whether the address has an account, and takes
//!   the same time: the request page only queues what was typed ([`queue_request`], one
//!   insert either way), and a background worker ([`handle_next`]) looks the account up
//!   after the answer has gone; only a real, active account gets a link, an email and an
//!   event;
//! - a token is 32 bytes from the OS, only its SHA-256 is stored, it is consumed by one
//!   conditional UPDATE and dies after `ttl`; a newer request or a reset kills older links;
//! - the link is built from the configured public URL, never from the request's Host;
//! - a reset ends every session of the account, sends a "password changed" email and is
//!   audited, all in the transaction that stores the new hash; nobody is signed in by it;
//! - tokens reach neither logs nor the audit trail.
//!
//! Throttling (per address typed and per client address) is the caller's, in the same
//! write transaction as [`queue_request`] (`auth::throttle::reserve_prefixed`).

use chrono::{Duration, NaiveDateTime};
use serde_json::json;

use super::FieldErrors;
use super::email::Email;
use super::password::validate_new;
use super::timefmt::iso_time;
use crate::audit::{self, Event, Origin};
use crate::db::password_reset_requests::{self, ResetRequest};
use crate::db::password_resets::{self, NewPasswordReset};
use crate::db::users::{self, User};
use crate::db::{self, DbConnection, audit_events, sessions};
use crate::domain::tokens;
use crate::mail::outbox;
use crate::mail::templates::{PasswordChangedEmail, PasswordResetEmail};

/// The throttle key prefix of reset requests.
pub const THROTTLE_PREFIX: &str = "reset";

#[derive(Debug, thiserror::Error)]
pub enum ResetError {
    /// Unknown, used, expired, or the account is disabled or gone.
    #[error("This password reset link is not valid any more.")]
    InvalidLink,
    #[error("Please correct the highlighted fields.")]
    Invalid(FieldErrors),
    #[error(transparent)]
    Db(#[from] diesel::result::Error),
    #[error("email template failed: {0}")]
    Render(#[from] askama::Error),
}

/// What a request or a reset needs besides the database.
#[derive(Debug, Clone)]
pub struct Env {
    /// How long a fresh link stays valid.
    pub ttl: Duration,
    /// Base of links, without a trailing slash (`--public-url`).
    pub public_url: String,
    pub origin: Origin,
}

impl Env {
    fn link(&self, token: &str) -> String {
        format!("{}/reset/{token}", self.public_url)
    }
}

/// What a request did. The person asking is never told; tests and logs of counts are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requested {
    /// A link was emailed to the account's address.
    Sent { user_id: String },
    /// Nothing was sent: no account has this address, or it is not an address at all.
    NoAccount,
    /// Nothing was sent: the account is disabled.
    Disabled,
    /// Nothing was sent, and the live link stays: the account had its day's emails.
    Capped,
}

/// Reset emails one account is sent in a day at most. Anyone may ask for any address's
/// reset (within the throttle: five a quarter hour, about 480 a day), and each request
/// mailed the owner and killed the link they had: a script could flood their mailbox and
/// keep their reset from working. Past this, requests change nothing until the day is
/// over, and the last link mailed still works.
pub const EMAILS_A_DAY: i64 = 10;

/// Queues "I forgot my password" for whatever was typed; [`handle_next`] does the rest
/// later. Run it inside `db::write_tx` with the throttle's reservation.
/// `owners_browser` is the account whose own browser asks, when the caller knows it is
/// the typed address's: its requests are not held to the day's cap.
pub fn queue_request(
    conn: &mut DbConnection,
    typed_email: &str,
    origin: &Origin,
    owners_browser: Option<&str>,
) -> diesel::QueryResult<()> {
    password_reset_requests::insert(
        conn,
        &ResetRequest {
            id: db::new_id(),
            email: typed_email.to_string(),
            ip: origin.ip.clone(),
            request_id: origin.request_id.clone(),
            requested_at: db::now(),
            owners_browser: owners_browser.map(str::to_string),
        },
    )
}

/// Takes the oldest queued request and handles it with [`request`], in one write
/// transaction; `None` when nothing waits. The origin recorded is the requester's.
pub fn handle_next(
    conn: &mut DbConnection,
    ttl: Duration,
    public_url: &str,
) -> Result<Option<Requested>, ResetError> {
    if !password_reset_requests::any_waiting(conn)? || db::superseded(conn)? {
        return Ok(None);
    }
    db::write_tx(conn, |conn| {
        let Some(queued) = password_reset_requests::take_oldest(conn)? else {
            return Ok(None);
        };
        let env = Env {
            ttl,
            public_url: public_url.to_string(),
            origin: Origin {
                ip: queued.ip,
                request_id: queued.request_id,
            },
        };
        let asker = Asker::of(queued.owners_browser.as_deref());
        request(conn, &env, &queued.email, asker).map(Some)
    })
}

/// Who asked for a reset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asker<'a> {
    /// A browser the account signed in on with its current password (a device cookie).
    OwnersBrowser(&'a str),
    /// Anyone else: whoever knows the address.
    Anyone,
}

impl<'a> Asker<'a> {
    pub fn of(owners_browser: Option<&'a str>) -> Self {
        owners_browser.map_or(Asker::Anyone, Asker::OwnersBrowser)
    }

    fn is_owner_of(self, user: &User) -> bool {
        matches!(self, Asker::OwnersBrowser(id) if id == user.id)
    }
}

/// Handles "I forgot my password" for whatever was typed, inside a write transaction.
/// The page's answer never depends on it: it runs after the answer, from the queue.
pub fn request(
    conn: &mut DbConnection,
    env: &Env,
    typed_email: &str,
    asker: Asker,
) -> Result<Requested, ResetError> {
    // Still the same work whether or not the account exists (a token and its hash, the
    // lookup, the email rendered, the clean-up query), so the worker's load tells nothing.
    let token = tokens::generate();
    let token_hash = tokens::hash(&token);
    let now = db::now();
    let expires_at = now + env.ttl;
    let user = match Email::parse(typed_email) {
        Ok(email) => users::find_by_email(conn, email.as_str())?,
        Err(_) => None,
    };
    let email = PasswordResetEmail {
        name: user
            .as_ref()
            .map(|u| u.first_name.clone())
            .unwrap_or_default(),
        link: env.link(&token),
        expires_at,
    }
    .render()?;
    // An id no account has when there is none, so the query runs and touches nothing.
    let user_id = user.as_ref().map(|u| u.id.clone()).unwrap_or_default();
    // Two instances may handle two requests for one account at once: without taking
    // turns (PostgreSQL) neither's clean-up saw the other's new link, and two lived. A
    // disable and a change of address take the same turn before they kill links, so the
    // account read again here is the one they left: a link is never mailed to an address
    // the account gave up, nor made for an account just disabled.
    db::reset_links_lock(conn, &user_id)?;
    let now_held = match &user {
        Some(u) => users::find(conn, &u.id)?.filter(|held| held.email == u.email),
        None => None,
    };
    let active = now_held.as_ref().filter(|u| u.is_active());
    if let Some(user) = active {
        const REQUESTED: &str = "auth.password_reset_requested";
        let day = now - Duration::days(1);
        let today =
            audit_events::count_platform_about(conn, REQUESTED, &user.id, day, EMAILS_A_DAY)?;
        // Strangers' requests use up the day's emails; the owner's own browser is not
        // held to them, or ten requests a day would keep them from ever resetting.
        if today >= EMAILS_A_DAY && !asker.is_owner_of(user) {
            record_capped(conn, env, user, day)?;
            return Ok(Requested::Capped);
        }
    }
    password_resets::delete_unused_for_user(conn, &user_id)?;
    let Some(user) = active else {
        return Ok(if user.is_some() {
            Requested::Disabled
        } else {
            Requested::NoAccount
        });
    };
    password_resets::insert(
        conn,
        &NewPasswordReset {
            token_hash: &token_hash,
            user_id: &user.id,
            created_at: now,
            expires_at,
        },
    )?;
    outbox::queue_link(conn, &user.email, &email, None, now, Some(expires_at))?;
    audit::record(
        conn,
        &Event::new("auth.password_reset_requested", &env.origin)
            .target("user", &user.id, &user.email)
            .details(json!({ "expires_at": iso_time(expires_at) })),
    )?;
    Ok(Requested::Sent {
        user_id: user.id.clone(),
    })
}

/// The first request a day turned away by the cap is audited (once, so a flood does not
/// grow the trail): an admin looking into "I never got the email" sees why.
fn record_capped(
    conn: &mut DbConnection,
    env: &Env,
    user: &User,
    day: NaiveDateTime,
) -> diesel::QueryResult<()> {
    const CAPPED: &str = "auth.password_reset_capped";
    if audit_events::count_platform_about(conn, CAPPED, &user.id, day, 1)? > 0 {
        return Ok(());
    }
    audit::record(
        conn,
        &Event::new(CAPPED, &env.origin)
            .target("user", &user.id, &user.email)
            .details(json!({ "emails_a_day": EMAILS_A_DAY })),
    )
}

/// The audit trail gets one `auth.password_reset_throttled` event per throttle key and
/// window, at its first refusal, as throttled sign-ins do (`sessions::record_login_throttled`):
/// an anonymous client hammering the form must not grow the insert-only table one row per
/// request. Later refusals are counted in `login_attempts.refused` for that key. The
/// typed address is recorded only when it is one, whether or not it has an account.
pub fn record_throttled(
    conn: &mut DbConnection,
    typed: &str,
    limit: &str,
    window_ends_at: NaiveDateTime,
    origin: &Origin,
) -> diesel::QueryResult<()> {
    let account = Email::parse(typed)
        .map(|e| e.as_str().to_string())
        .unwrap_or_else(|_| "(not an email address)".into());
    audit::record(
        conn,
        &Event::new("auth.password_reset_throttled", origin)
            .target("account", "", &account)
            .details(json!({
                "limit": limit,
                "window_ends_at": iso_time(window_ends_at),
                "aggregated": "first refusal of this window; further refusals until window_ends_at are counted in the throttle table, not recorded one by one",
            })),
    )
}

/// Kills the account's reset and set-up links that were not used. Whoever asked for a
/// reset may not be the owner (anyone may ask; a mailbox can be read by another): once a
/// platform admin disabled the account or ended its sessions, a link mailed before must
/// not set a password after. A password change keeps them: the one who changes it knows
/// the password already, and a link is how the owner takes the account back from them.
pub fn end_unused_links(conn: &mut DbConnection, user_id: &str) -> diesel::QueryResult<usize> {
    // In turn with a request being handled, so it sees this change (see `request`).
    db::reset_links_lock(conn, user_id)?;
    Ok(password_resets::delete_unused_for_user(conn, user_id)?
        + crate::db::setup_tokens::delete_unused_for_user(conn, user_id)?)
}

/// The account a live link resets.
pub fn check_link(conn: &mut DbConnection, token: &str) -> Result<User, ResetError> {
    let token_hash = tokens::hash(token);
    let row = password_resets::find_live(conn, &token_hash, db::now())?
        .filter(|row| tokens::constant_time_eq(&row.token_hash, &token_hash))
        .ok_or(ResetError::InvalidLink)?;
    users::find(conn, &row.user_id)?
        .filter(User::is_active)
        .ok_or(ResetError::InvalidLink)
}

/// What the reset form sends.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct ResetForm {
    #[serde(default)]
    pub password: String,
    #[serde(default)]
    pub password_confirm: String,
}

/// Checks the new password's shape before any hashing happens.
pub fn validate(form: &ResetForm) -> Result<(), FieldErrors> {
    let mut errors = FieldErrors::default();
    errors.check(
        "password",
        validate_new(&form.password, &form.password_confirm),
    );
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// Consumes the link and stores the new password hash; in the same transaction ends every
/// session of the account, kills its other links, queues the "password changed" email and
/// records `auth.password_reset`. Answers the account, which is *not* signed in.
pub fn reset(
    conn: &mut DbConnection,
    env: &Env,
    token: &str,
    new_hash: &str,
) -> Result<User, ResetError> {
    db::write_tx(conn, |conn| {
        let user = check_link(conn, token)?;
        let now = db::now();
        if !password_resets::consume(conn, &tokens::hash(token), now)? {
            return Err(ResetError::InvalidLink);
        }
        users::set_password(conn, &user.id, new_hash)?;
        let ended = sessions::delete_for_user(conn, &user.id)?;
        password_resets::delete_unused_for_user(conn, &user.id)?;
        let email = changed_email(env, &user, now).render()?;
        outbox::queue(conn, &user.email, &email, None, now)?;
        audit::record(
            conn,
            &Event::new("auth.password_reset", &env.origin)
                .actor(&user.id, &user.email)
                .target("user", &user.id, &user.email)
                .details(json!({ "sessions_ended": ended })),
        )?;
        Ok(User {
            password_hash: Some(new_hash.to_string()),
            ..user
        })
    })
}

/// Housekeeping: links that are expired or used are deleted (their hashes are no use to
/// anyone, and a database kept small backs up small). Answers how many.
pub fn prune(conn: &mut DbConnection) -> diesel::QueryResult<usize> {
    password_resets::delete_dead(conn, db::now())
}

fn changed_email(env: &Env, user: &User, at: NaiveDateTime) -> PasswordChangedEmail {
    PasswordChangedEmail {
        name: user.first_name.clone(),
        changed_at: at,
        reset_url: format!("{}/forgot-password", env.public_url),
        by_reset_link: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::schema::{email_outbox, password_resets as pr};
    use crate::db::{DbTarget, PoolOptions, build_pool};
    use diesel::prelude::*;

    struct Fixture {
        _dir: tempfile::TempDir,
        pool: crate::db::DbPool,
        user: User,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let target = DbTarget::Sqlite(dir.path().join("t.db").to_string_lossy().into_owned());
        let pool = build_pool(&target, PoolOptions::default()).unwrap();
        let mut conn = pool.get().unwrap();
        db::migrate(&mut conn).unwrap();
        let created = crate::domain::setup::create_admin(
            &mut conn,
            &Email::parse("boss@example.com").unwrap(),
            None,
            Some("old hash"),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        Fixture {
            _dir: dir,
            pool,
            user: created.user,
        }
    }

    fn env() -> Env {
        Env {
            ttl: Duration::minutes(30),
            public_url: "https://portal.example.com".into(),
            origin: Origin::default(),
        }
    }

    fn ask(conn: &mut DbConnection, typed: &str) -> Requested {
        db::write_tx(conn, |conn| request(conn, &env(), typed, Asker::Anyone)).unwrap()
    }

    /// The raw token of the newest queued reset email.
    fn mailed_token(conn: &mut DbConnection) -> String {
        let body: String = email_outbox::table
            .filter(email_outbox::subject.eq("Reset your Portcullis password"))
            .order(email_outbox::created_at.desc())
            .select(email_outbox::text_body)
            .first(conn)
            .unwrap();
        let start = body.find("https://portal.example.com/reset/").unwrap()
            + "https://portal.example.com/reset/".len();
        body[start..].split_whitespace().next().unwrap().to_string()
    }

    fn outbox_count(conn: &mut DbConnection) -> i64 {
        email_outbox::table.count().get_result(conn).unwrap()
    }

    /// The request page only queues; the worker's turn makes the link, in order, with the
    /// requester's address in the audit event, and leaves the queue empty.
    #[test]
    fn queued_requests_are_handled_in_order_with_their_origin() {
        use crate::db::schema::{audit_events, password_reset_requests as queue};
        let f = fixture();
        let mut conn = f.pool.get().unwrap();
        let from = |ip: &str| Origin {
            ip: Some(ip.into()),
            request_id: None,
        };
        let before = outbox_count(&mut conn);
        queue_request(&mut conn, "nobody@example.com", &from("192.0.2.1"), None).unwrap();
        queue_request(&mut conn, "boss@example.com", &from("192.0.2.2"), None).unwrap();
        // Queuing alone makes no link and no email, whatever the address.
        assert_eq!(outbox_count(&mut conn), before);
        assert_eq!(pr::table.count().get_result::<i64>(&mut **conn).unwrap(), 0);

        let ttl = Duration::minutes(30);
        let url = "https://portal.example.com";
        let first = handle_next(&mut conn, ttl, url).unwrap();
        assert_eq!(first, Some(Requested::NoAccount));
        let second = handle_next(&mut conn, ttl, url).unwrap();
        assert_eq!(
            second,
            Some(Requested::Sent {
                user_id: f.user.id.clone()
            })
        );
        assert_eq!(handle_next(&mut conn, ttl, url).unwrap(), None);
        assert_eq!(
            queue::table.count().get_result::<i64>(&mut **conn).unwrap(),
            0
        );
        assert_eq!(outbox_count(&mut conn), before + 1);
        let token = mailed_token(&mut conn);
        assert_eq!(check_link(&mut conn, &token).unwrap().id, f.user.id);
        let ip: Option<String> = audit_events::table
            .filter(audit_events::action.eq("auth.password_reset_requested"))
            .select(audit_events::ip)
            .first(&mut **conn)
            .unwrap();
        assert_eq!(ip.as_deref(), Some("192.0.2.2"));
    }

    #[test]
    fn unknown_and_disabled_addresses_get_nothing() {
        let f = fixture();
        let mut conn = f.pool.get().unwrap();
        let before = outbox_count(&mut conn);
        assert_eq!(ask(&mut conn, "nobody@example.com"), Requested::NoAccount);
        assert_eq!(ask(&mut conn, "not an address"), Requested::NoAccount);
        users::set_status(&mut conn, &f.user.id, "disabled").unwrap();
        assert_eq!(ask(&mut conn, "BOSS@example.com "), Requested::Disabled);
        assert_eq!(outbox_count(&mut conn), before);
        let rows: i64 = pr::table.count().get_result(&mut **conn).unwrap();
        assert_eq!(rows, 0);
    }

    #[test]
    fn a_link_works_once_and_only_the_newest_one() {
        let f = fixture();
        let mut conn = f.pool.get().unwrap();
        assert_eq!(
            ask(&mut conn, " Boss@Example.com"),
            Requested::Sent {
                user_id: f.user.id.clone()
            }
        );
        let first = mailed_token(&mut conn);
        // Only the hash is stored.
        let stored: Vec<String> = pr::table.select(pr::token_hash).load(&mut **conn).unwrap();
        assert_eq!(stored, vec![tokens::hash(&first)]);
        std::thread::sleep(std::time::Duration::from_millis(5));
        ask(&mut conn, "boss@example.com");
        let second = mailed_token(&mut conn);
        assert_ne!(first, second);
        assert!(matches!(
            check_link(&mut conn, &first),
            Err(ResetError::InvalidLink)
        ));
        assert_eq!(check_link(&mut conn, &second).unwrap().id, f.user.id);

        let user = reset(&mut conn, &env(), &second, "new hash").unwrap();
        assert_eq!(user.id, f.user.id);
        let hash = users::find(&mut conn, &f.user.id)
            .unwrap()
            .unwrap()
            .password_hash;
        assert_eq!(hash.as_deref(), Some("new hash"));
        assert!(matches!(
            reset(&mut conn, &env(), &second, "again"),
            Err(ResetError::InvalidLink)
        ));
        let changed: i64 = email_outbox::table
            .filter(email_outbox::subject.eq("Your Portcullis password was changed"))
            .count()
            .get_result(&mut **conn)
            .unwrap();
        assert_eq!(changed, 1);
    }

    #[test]
    fn an_expired_link_is_dead() {
        let f = fixture();
        let mut conn = f.pool.get().unwrap();
        ask(&mut conn, "boss@example.com");
        let token = mailed_token(&mut conn);
        diesel::update(pr::table)
            .set(pr::expires_at.eq(db::now() - Duration::seconds(1)))
            .execute(&mut **conn)
            .unwrap();
        assert!(matches!(
            reset(&mut conn, &env(), &token, "new hash"),
            Err(ResetError::InvalidLink)
        ));
    }

    #[test]
    fn prune_deletes_expired_and_used_links_and_keeps_live_ones() {
        let f = fixture();
        let mut conn = f.pool.get().unwrap();
        let now = db::now();
        for (hash, expires, used) in [
            ("live", now + Duration::minutes(10), None),
            ("expired", now - Duration::seconds(1), None),
            ("used", now + Duration::minutes(10), Some(now)),
        ] {
            password_resets::insert(
                &mut conn,
                &NewPasswordReset {
                    token_hash: hash,
                    user_id: &f.user.id,
                    created_at: now - Duration::minutes(20),
                    expires_at: expires,
                },
            )
            .unwrap();
            if let Some(at) = used {
                assert!(password_resets::consume(&mut conn, hash, at).unwrap());
            }
        }
        assert_eq!(prune(&mut conn).unwrap(), 2);
        let left: Vec<String> = pr::table.select(pr::token_hash).load(&mut **conn).unwrap();
        assert_eq!(left, vec!["live".to_string()]);
    }

    #[test]
    fn new_passwords_are_checked_before_hashing() {
        let ok = ResetForm {
            password: "a long new password".into(),
            password_confirm: "a long new password".into(),
        };
        assert!(validate(&ok).is_ok());
        let short = ResetForm {
            password: "short".into(),
            password_confirm: "short".into(),
        };
        assert!(validate(&short).unwrap_err().get("password").is_some());
    }
}
