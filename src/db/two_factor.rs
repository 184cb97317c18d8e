//! `totp_credentials` and `totp_recovery_codes`.
//!
//! Why the TOTP secret is stored as it is (base32 text, not hashed, not encrypted): a
//! code is HMAC(secret, time step), so checking one needs the secret itself; a hash would
//! make every code uncheckable. Encrypting it with a key kept beside the database (the
//! data directory, as the session key is) would only stop someone who holds a copy of the
//! database but not of that directory, and would add key rotation and a lost-key failure
//! mode we cannot yet support; database backups must therefore be protected like the
//! session key. Recovery codes, by contrast, are only compared, so only their SHA-256 is
//! kept.

use chrono::NaiveDateTime;
use diesel::dsl::{exists, select};
use diesel::prelude::*;

use super::schema::{totp_credentials, totp_recovery_codes, users};
use super::{DbConnection, new_id};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = totp_credentials)]
pub struct Credential {
    pub user_id: String,
    pub secret: String,
    pub enabled_at: NaiveDateTime,
    pub last_used_step: Option<i64>,
}

pub fn find(conn: &mut DbConnection, user_id: &str) -> QueryResult<Option<Credential>> {
    totp_credentials::table
        .find(user_id)
        .select(Credential::as_select())
        .first(conn)
        .optional()
}

/// Holds the account's credential row until the transaction ends; answers whether the
/// account has one. Every change to an account's second factor takes it first (a code
/// check, new recovery codes, turning it off, a reset), then its recovery codes, then the
/// account's row: one order, so no two of them wait on each other in a circle on
/// PostgreSQL. Inside a `write_tx` on SQLite the write lock is already held.
pub fn hold(conn: &mut DbConnection, user_id: &str) -> QueryResult<bool> {
    match conn {
        DbConnection::Sqlite(c) => {
            select(exists(totp_credentials::table.find(user_id))).get_result(c)
        }
        DbConnection::Postgresql(c) => totp_credentials::table
            .find(user_id)
            .select(totp_credentials::user_id)
            .for_update()
            .load::<String>(c)
            .map(|held| !held.is_empty()),
    }
}

pub fn insert(
    conn: &mut DbConnection,
    user_id: &str,
    secret: &str,
    enabled_at: NaiveDateTime,
    last_used_step: i64,
) -> QueryResult<()> {
    diesel::insert_into(totp_credentials::table)
        .values((
            totp_credentials::user_id.eq(user_id),
            totp_credentials::secret.eq(secret),
            totp_credentials::enabled_at.eq(enabled_at),
            totp_credentials::last_used_step.eq(Some(last_used_step)),
        ))
        .execute(conn)
        .map(|_| ())
}

/// Records `step` as used, only when it is later than the last step used: one
/// conditional UPDATE, so two requests carrying the same code cannot both pass.
pub fn advance_step(conn: &mut DbConnection, user_id: &str, step: i64) -> QueryResult<bool> {
    diesel::update(
        totp_credentials::table
            .filter(totp_credentials::user_id.eq(user_id))
            .filter(
                totp_credentials::last_used_step
                    .is_null()
                    .or(totp_credentials::last_used_step.lt(step)),
            ),
    )
    .set(totp_credentials::last_used_step.eq(Some(step)))
    .execute(conn)
    .map(|n| n == 1)
}

pub fn delete(conn: &mut DbConnection, user_id: &str) -> QueryResult<usize> {
    diesel::delete(totp_recovery_codes::table.filter(totp_recovery_codes::user_id.eq(user_id)))
        .execute(conn)?;
    diesel::delete(totp_credentials::table.find(user_id)).execute(conn)
}

pub fn set_auth_method(conn: &mut DbConnection, user_id: &str, method: &str) -> QueryResult<()> {
    diesel::update(users::table.find(user_id))
        .set(users::auth_method.eq(method))
        .execute(conn)
        .map(|_| ())
}

/// Replaces every recovery code of the account with these hashes.
pub fn replace_recovery_codes(
    conn: &mut DbConnection,
    user_id: &str,
    hashes: &[String],
    now: NaiveDateTime,
) -> QueryResult<()> {
    diesel::delete(totp_recovery_codes::table.filter(totp_recovery_codes::user_id.eq(user_id)))
        .execute(conn)?;
    for hash in hashes {
        diesel::insert_into(totp_recovery_codes::table)
            .values((
                totp_recovery_codes::id.eq(new_id()),
                totp_recovery_codes::user_id.eq(user_id),
                totp_recovery_codes::code_hash.eq(hash),
                totp_recovery_codes::created_at.eq(now),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// Marks the unused code with this hash used: one conditional UPDATE, so it works once.
pub fn use_recovery_code(
    conn: &mut DbConnection,
    user_id: &str,
    hash: &str,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    diesel::update(
        totp_recovery_codes::table
            .filter(totp_recovery_codes::user_id.eq(user_id))
            .filter(totp_recovery_codes::code_hash.eq(hash))
            .filter(totp_recovery_codes::used_at.is_null()),
    )
    .set(totp_recovery_codes::used_at.eq(Some(now)))
    .execute(conn)
    .map(|n| n == 1)
}

pub fn unused_recovery_codes(conn: &mut DbConnection, user_id: &str) -> QueryResult<i64> {
    totp_recovery_codes::table
        .filter(totp_recovery_codes::user_id.eq(user_id))
        .filter(totp_recovery_codes::used_at.is_null())
        .count()
        .get_result(conn)
}
