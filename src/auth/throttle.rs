//! Sign-in throttling, kept in the database so it holds across instances. Failures are
//! counted over a sliding window and forgotten after it: nobody is locked out for good.

use chrono::Duration;
use diesel::QueryResult;

use crate::db::{self, DbConnection, login_attempts};
use crate::domain::email::Email;

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub per_account: i64,
    pub per_address: i64,
    pub window: Duration,
}

fn account_key(email: &str) -> String {
    format!("account:{}", email.trim().to_lowercase())
}

fn address_key(ip: &str) -> String {
    format!("address:{ip}")
}

/// Whether another attempt may be checked at all; asked before any password is hashed.
pub fn is_throttled(
    conn: &mut DbConnection,
    limits: &Limits,
    email: &str,
    ip: &str,
) -> QueryResult<bool> {
    let since = db::now() - limits.window;
    Ok(
        login_attempts::failures_since(conn, &account_key(email), since)? >= limits.per_account
            || login_attempts::failures_since(conn, &address_key(ip), since)? >= limits.per_address,
    )
}

pub fn record_failure(conn: &mut DbConnection, email: &str, ip: &str) -> QueryResult<()> {
    // Only well-formed addresses get an account counter, so junk input cannot grow the
    // table with keys nobody will ever sign in with.
    if let Ok(email) = Email::parse(email) {
        login_attempts::record_failure(conn, &account_key(email.as_str()))?;
    }
    login_attempts::record_failure(conn, &address_key(ip))
}

pub fn record_success(conn: &mut DbConnection, email: &str) -> QueryResult<()> {
    login_attempts::clear(conn, &account_key(email))
}

pub fn prune(conn: &mut DbConnection, limits: &Limits) -> QueryResult<usize> {
    login_attempts::delete_older_than(conn, db::now() - limits.window)
}
