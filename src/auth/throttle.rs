//! Sign-in throttling, kept in the database so it holds across instances.
//!
//! Each attempt is counted *before* its password is hashed, atomically: [`reserve`] runs
//! inside one write transaction (`db::write_tx`: the write lock on SQLite, row locks
//! taken by an upsert on PostgreSQL), so parallel requests cannot all pass a check that
//! only one of them should pass. A counted attempt that then fails stays counted; one
//! that succeeds is given back ([`succeeded`]).
//!
//! Keys and limits, over a fixed window that starts at a key's first attempt:
//! - `address:IP`: every attempt from a client address (`per_address`);
//! - `account:EMAIL`: attempts naming an account (`per_account`), from browsers that
//!   hold no device cookie for it;
//! - `device:NONCE`: attempts from a browser holding a valid device cookie for the
//!   account it names (`per_account` again). Such a browser has signed in to that
//!   account before, so strangers exhausting `account:EMAIL` do not lock its owner out
//!   (OWASP "device cookies"); it still has a limit of its own and the address limit.
//! - `signed-in:account:EMAIL`, `signed-in:device:NONCE`, `signed-in:totp:USER_ID`:
//!   right passwords ([`RIGHT_PASSWORDS_PER_WINDOW`]), checked before the hash and
//!   counted after it, under the key the attempt was counted under. So someone who knows
//!   the password but holds no device cookie (a phished password on a two-factor account)
//!   cannot spend the owner's browser's share.
//!
//! Refused attempts are counted in the key's `refused` column; only the first refusal of
//! a window is reported as such ([`Refusal::first_in_window`]), so the audit trail gets
//! one event per key and window, not one per request.

use chrono::{Duration, NaiveDateTime};
use diesel::QueryResult;

use crate::db::{self, DbConnection, login_attempts};
use crate::domain::email::Email;

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub per_account: i64,
    pub per_address: i64,
    pub window: Duration,
}

/// Who is trying to sign in (or to prove their password again).
#[derive(Debug, Clone, Copy)]
pub struct Attempt<'a> {
    /// What was typed as the email; only a well-formed address is counted per account.
    pub email: &'a str,
    pub ip: &'a str,
    /// The nonce of a valid device cookie issued to the account `email` names.
    pub device: Option<&'a str>,
}

/// Which limit turned an attempt away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Address,
    Account,
    Device,
    /// Right passwords ([`RIGHT_PASSWORDS_PER_WINDOW`]): someone who knows the password.
    RightPasswords,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Address => "address",
            Scope::Account => "account",
            Scope::Device => "device",
            Scope::RightPasswords => "right_passwords",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub scope: Scope,
    /// True for the first refusal of this key's window: the one worth an audit event.
    pub first_in_window: bool,
    pub window_ends_at: NaiveDateTime,
}

/// The counters an allowed attempt was counted under; hand it back to [`succeeded`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    address: String,
    /// `account:…` or `device:…`; none when what was typed is not an email address.
    holder: Option<(Scope, String)>,
    /// The `signed-in:` key counted when the password proves right (a sign-in, the
    /// password asked again, or a second factor's form that takes it); none for a code
    /// alone, which costs no hash.
    signed_in: Option<String>,
}

impl Reservation {
    /// Whether the attempt counted against the account itself (no device cookie).
    pub fn counted_per_account(&self) -> bool {
        matches!(self.holder, Some((Scope::Account, _)))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allowed(Reservation),
    Refused(Refusal),
}

fn account_key(email: &str) -> String {
    format!("account:{}", email.trim().to_lowercase())
}

/// An IPv6 client is counted by its /64: one home or one cloud machine is handed a whole
/// /64 and can send each attempt from a new address in it.
fn address_key(ip: &str) -> String {
    use std::net::{IpAddr, Ipv6Addr};
    let Ok(IpAddr::V6(v6)) = ip.parse::<IpAddr>() else {
        return format!("address:{ip}");
    };
    match v6.to_ipv4_mapped() {
        Some(v4) => format!("address:{v4}"),
        None => {
            let network = u128::from(v6) & !(u128::from(u64::MAX));
            format!("address:{}/64", Ipv6Addr::from(network))
        }
    }
}

fn device_key(nonce: &str) -> String {
    format!("device:{nonce}")
}

/// Right passwords one account may give in a window from browsers without its device
/// cookie, together, and from each browser holding one. Each costs a hash as a wrong one
/// does: unbounded, one member signing in again and again with their own password would
/// keep the hashing queue full for everyone.
pub const RIGHT_PASSWORDS_PER_WINDOW: i64 = 30;

/// Refuses the attempt when `key` (a `signed-in:` key) has had its right passwords this
/// window. Checked before the hash; [`succeeded`] counts one.
fn right_passwords_spent(
    conn: &mut DbConnection,
    key: &str,
    now: NaiveDateTime,
    window: Duration,
) -> QueryResult<Option<Refusal>> {
    let counter = login_attempts::open_window(conn, key, now, now - window)?;
    if counter.attempts < RIGHT_PASSWORDS_PER_WINDOW {
        return Ok(None);
    }
    login_attempts::add_refusal(conn, key)?;
    Ok(Some(Refusal {
        scope: Scope::RightPasswords,
        first_in_window: counter.refused == 0,
        window_ends_at: counter.window_started_at + window,
    }))
}

/// Counts the attempt under its keys, or refuses it when one of them has used up its
/// limit in the current window. Call it inside `db::write_tx`, before any hashing, and
/// in the same transaction as whatever records a refusal.
pub fn reserve(
    conn: &mut DbConnection,
    limits: &Limits,
    attempt: Attempt<'_>,
) -> QueryResult<Decision> {
    let now = db::now();
    let cutoff = now - limits.window;
    let address = address_key(attempt.ip);
    // Only well-formed addresses get an account counter, so junk input cannot grow the
    // table with keys nobody will ever sign in with.
    let holder = match (attempt.device, Email::parse(attempt.email)) {
        (Some(nonce), Ok(_)) => Some((Scope::Device, device_key(nonce))),
        (None, Ok(email)) => Some((Scope::Account, account_key(email.as_str()))),
        (_, Err(_)) => None,
    };

    // Always the address first, then the account: one lock order, no deadlocks.
    if let Some(refusal) = take(
        conn,
        &address,
        limits.per_address,
        Scope::Address,
        now,
        cutoff,
        limits.window,
    )? {
        return Ok(Decision::Refused(refusal));
    }
    if let Some((scope, key)) = &holder
        && let Some(refusal) = take(
            conn,
            key,
            limits.per_account,
            *scope,
            now,
            cutoff,
            limits.window,
        )?
    {
        // Not checked, so it does not use up the address's allowance.
        login_attempts::release(conn, &address)?;
        return Ok(Decision::Refused(refusal));
    }
    let signed_in = holder.as_ref().map(|(_, key)| format!("signed-in:{key}"));
    if let Some(key) = &signed_in
        && let Some(refusal) = right_passwords_spent(conn, key, now, limits.window)?
    {
        login_attempts::release(conn, &address)?;
        if let Some((_, holder)) = &holder {
            login_attempts::release(conn, holder)?;
        }
        return Ok(Decision::Refused(refusal));
    }
    Ok(Decision::Allowed(Reservation {
        address,
        holder,
        signed_in,
    }))
}

/// Counts one attempt under `key`, or one refusal when its window's limit is used up.
fn take(
    conn: &mut DbConnection,
    key: &str,
    limit: i64,
    scope: Scope,
    now: NaiveDateTime,
    cutoff: NaiveDateTime,
    window: Duration,
) -> QueryResult<Option<Refusal>> {
    let counter = login_attempts::open_window(conn, key, now, cutoff)?;
    if counter.attempts < limit {
        login_attempts::add_attempt(conn, key)?;
        return Ok(None);
    }
    login_attempts::add_refusal(conn, key)?;
    Ok(Some(Refusal {
        scope,
        first_in_window: counter.refused == 0,
        window_ends_at: counter.window_started_at + window,
    }))
}

/// The password was right: the address gets its attempt back, and the counter the
/// attempt was made under starts afresh. A sign-in through a device cookie clears only
/// that device's counter, so it does not wipe what strangers have spent on the account.
pub fn succeeded(conn: &mut DbConnection, reservation: &Reservation) -> QueryResult<()> {
    login_attempts::release(conn, &reservation.address)?;
    if let Some((_, key)) = &reservation.holder {
        login_attempts::clear(conn, key)?;
    }
    if let Some(key) = &reservation.signed_in {
        login_attempts::add_attempt(conn, key)?;
    }
    Ok(())
}

/// The password was never checked (the hashing queue was full): every counter the
/// attempt was made under gets it back.
pub fn unchecked(conn: &mut DbConnection, reservation: &Reservation) -> QueryResult<()> {
    login_attempts::release(conn, &reservation.address)?;
    if let Some((_, key)) = &reservation.holder {
        login_attempts::release(conn, key)?;
    }
    Ok(())
}

/// How many attempts have been refused in the current window of the account's counter
/// and of the address's (for tests and operators; the audit trail has only the first).
pub fn refused_so_far(conn: &mut DbConnection, email: &str, ip: &str) -> QueryResult<(i64, i64)> {
    let refused = |conn: &mut DbConnection, key: String| {
        login_attempts::find(conn, &key).map(|row| row.map(|(_, refused)| refused).unwrap_or(0))
    };
    Ok((
        refused(conn, account_key(email))?,
        refused(conn, address_key(ip))?,
    ))
}

/// The same counters for another kind of request limited per account and per client
/// address (password reset requests: `prefix` = `reset`), under keys of its own
/// (`PREFIX:address:IP`, `PREFIX:account:EMAIL`), so it neither spends nor is blocked by
/// sign-in attempts. Every request counts; nothing is given back. Call it inside
/// `db::write_tx`, like [`reserve`].
///
/// `device` is the nonce of the account's own device cookie, when the request carries
/// one: as for sign-in, that browser counts under its own key, so strangers using up the
/// account's requests do not block its owner.
pub fn reserve_prefixed(
    conn: &mut DbConnection,
    prefix: &str,
    limits: &Limits,
    (email, device): (&str, Option<&str>),
    ip: &str,
) -> QueryResult<Decision> {
    let now = db::now();
    let cutoff = now - limits.window;
    let address = format!("{prefix}:{}", address_key(ip));
    let account = match (device, Email::parse(email)) {
        (Some(nonce), Ok(_)) => Some((Scope::Device, format!("{prefix}:{}", device_key(nonce)))),
        (None, Ok(e)) => Some((
            Scope::Account,
            format!("{prefix}:{}", account_key(e.as_str())),
        )),
        (_, Err(_)) => None,
    };
    let (per_address, window) = (limits.per_address, limits.window);
    if let Some(refusal) = take(
        conn,
        &address,
        per_address,
        Scope::Address,
        now,
        cutoff,
        window,
    )? {
        return Ok(Decision::Refused(refusal));
    }
    if let Some((scope, key)) = &account
        && let Some(refusal) = take(conn, key, limits.per_account, *scope, now, cutoff, window)?
    {
        login_attempts::release(conn, &address)?;
        return Ok(Decision::Refused(refusal));
    }
    Ok(Decision::Allowed(Reservation {
        address,
        holder: account,
        signed_in: None,
    }))
}

/// Deletes the counters whose window has passed: the throttle's (`limits.window`), and
/// the notices' quarter hour when the throttle's window is shorter.
pub fn prune(conn: &mut DbConnection, limits: &Limits) -> QueryResult<usize> {
    let longest = limits.window.max(Duration::minutes(15));
    login_attempts::delete_older_than(conn, db::now() - longest)
}

/// The second sign-in step (a TOTP or recovery code) for account `user_id`, counted like
/// a password attempt: under the client address and, with the per-account limit, under
/// its own key `totp:USER_ID`, so guessing codes has a budget of its own that the
/// password step's device cookie does not lift. Hand the reservation to [`succeeded`].
///
/// `with_password`: the attempt also checks the password (new recovery codes, turning
/// two-factor off): its right passwords are bounded under `signed-in:totp:USER_ID`.
pub fn reserve_second_factor(
    conn: &mut DbConnection,
    limits: &Limits,
    user_id: &str,
    ip: &str,
    with_password: bool,
) -> QueryResult<Decision> {
    let now = db::now();
    let cutoff = now - limits.window;
    let address = address_key(ip);
    let key = format!("totp:{user_id}");
    let take_key = |conn: &mut DbConnection, key: &str, limit, scope| {
        take(conn, key, limit, scope, now, cutoff, limits.window)
    };
    if let Some(refusal) = take_key(conn, &address, limits.per_address, Scope::Address)? {
        return Ok(Decision::Refused(refusal));
    }
    if let Some(refusal) = take_key(conn, &key, limits.per_account, Scope::Account)? {
        login_attempts::release(conn, &address)?;
        return Ok(Decision::Refused(refusal));
    }
    let signed_in = with_password.then(|| format!("signed-in:{key}"));
    if let Some(spent) = &signed_in
        && let Some(refusal) = right_passwords_spent(conn, spent, now, limits.window)?
    {
        login_attempts::release(conn, &address)?;
        login_attempts::release(conn, &key)?;
        return Ok(Decision::Refused(refusal));
    }
    Ok(Decision::Allowed(Reservation {
        address,
        holder: Some((Scope::Account, key)),
        signed_in,
    }))
}
