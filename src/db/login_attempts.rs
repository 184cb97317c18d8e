//! Sign-in throttle counters: one row per key (`account:…`, `address:…`, `device:…`)
//! holding a fixed window, the attempts checked in it and the attempts refused in it.
//! Callers use these inside one write transaction (see `auth::throttle`).

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text, Timestamp};

use super::DbConnection;
use super::schema::login_attempts;

/// A key's window as it stands after [`open_window`].
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
pub struct Counter {
    #[diesel(sql_type = Timestamp)]
    pub window_started_at: NaiveDateTime,
    #[diesel(sql_type = BigInt)]
    pub attempts: i64,
    #[diesel(sql_type = BigInt)]
    pub refused: i64,
}

/// Creates the key's row, or starts a new window when the current one began at or
/// before `cutoff`, and answers the row. One statement (an upsert), so concurrent callers
/// never both create the row; on PostgreSQL it also locks the row until the caller's
/// transaction ends, and on SQLite the caller's `write_tx` holds the write lock: whatever
/// the caller decides from the answer and writes back is atomic.
pub fn open_window(
    conn: &mut DbConnection,
    key: &str,
    now: NaiveDateTime,
    cutoff: NaiveDateTime,
) -> QueryResult<Counter> {
    const UPSERT: &str = "INSERT INTO login_attempts (key, window_started_at, attempts, refused) \
         VALUES ($1, $2, 0, 0) \
         ON CONFLICT (key) DO UPDATE SET \
           attempts = CASE WHEN login_attempts.window_started_at <= $3 THEN 0 \
                           ELSE login_attempts.attempts END, \
           refused = CASE WHEN login_attempts.window_started_at <= $3 THEN 0 \
                          ELSE login_attempts.refused END, \
           window_started_at = CASE WHEN login_attempts.window_started_at <= $3 THEN $2 \
                                    ELSE login_attempts.window_started_at END \
         RETURNING window_started_at, attempts, refused";
    // `ON CONFLICT` does not compile on the multi connection: each backend gets it raw,
    // SQLite with `?1`-style numbered parameters.
    match conn {
        DbConnection::Postgresql(pg) => diesel::sql_query(UPSERT)
            .bind::<Text, _>(key)
            .bind::<Timestamp, _>(now)
            .bind::<Timestamp, _>(cutoff)
            .get_result(pg),
        DbConnection::Sqlite(lite) => diesel::sql_query(UPSERT.replace('$', "?"))
            .bind::<Text, _>(key)
            .bind::<Timestamp, _>(now)
            .bind::<Timestamp, _>(cutoff)
            .get_result(lite),
    }
}

/// Counts one checked attempt in the key's current window.
pub fn add_attempt(conn: &mut DbConnection, key: &str) -> QueryResult<()> {
    diesel::update(login_attempts::table.find(key))
        .set(login_attempts::attempts.eq(login_attempts::attempts + 1))
        .execute(conn)
        .map(|_| ())
}

/// Counts one refused attempt in the key's current window.
pub fn add_refusal(conn: &mut DbConnection, key: &str) -> QueryResult<()> {
    diesel::update(login_attempts::table.find(key))
        .set(login_attempts::refused.eq(login_attempts::refused + 1))
        .execute(conn)
        .map(|_| ())
}

/// Gives back one attempt counted by [`add_attempt`] (a sign-in that succeeded, or one
/// refused on another key after this one was counted).
pub fn release(conn: &mut DbConnection, key: &str) -> QueryResult<()> {
    diesel::update(
        login_attempts::table
            .find(key)
            .filter(login_attempts::attempts.gt(0)),
    )
    .set(login_attempts::attempts.eq(login_attempts::attempts - 1))
    .execute(conn)
    .map(|_| ())
}

pub fn clear(conn: &mut DbConnection, key: &str) -> QueryResult<()> {
    diesel::delete(login_attempts::table.find(key))
        .execute(conn)
        .map(|_| ())
}

pub fn find(conn: &mut DbConnection, key: &str) -> QueryResult<Option<(i64, i64)>> {
    login_attempts::table
        .find(key)
        .select((login_attempts::attempts, login_attempts::refused))
        .first(conn)
        .optional()
}

/// Forgets every window that began at or before `cutoff` (it has ended).
pub fn delete_older_than(conn: &mut DbConnection, cutoff: NaiveDateTime) -> QueryResult<usize> {
    diesel::delete(login_attempts::table.filter(login_attempts::window_started_at.le(cutoff)))
        .execute(conn)
}
