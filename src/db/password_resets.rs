//! Password reset links: one row per link, keyed by the SHA-256 of its token (the token
//! itself is never stored). A link is live while unused and unexpired.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::DbConnection;
use super::schema::password_resets;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = password_resets)]
pub struct PasswordReset {
    pub token_hash: String,
    pub user_id: String,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    pub used_at: Option<NaiveDateTime>,
}

#[derive(Insertable)]
#[diesel(table_name = password_resets)]
pub struct NewPasswordReset<'a> {
    pub token_hash: &'a str,
    pub user_id: &'a str,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
}

pub fn insert(conn: &mut DbConnection, row: &NewPasswordReset) -> QueryResult<()> {
    diesel::insert_into(password_resets::table)
        .values(row)
        .execute(conn)
        .map(|_| ())
}

super::single_use::single_use_links!(password_resets, PasswordReset);

/// Kills the account's links that were not used: only the newest one works, and none
/// after a reset.
pub fn delete_unused_for_user(conn: &mut DbConnection, user_id: &str) -> QueryResult<usize> {
    diesel::delete(
        password_resets::table
            .filter(password_resets::user_id.eq(user_id))
            .filter(password_resets::used_at.is_null()),
    )
    .execute(conn)
}

/// Deletes the links nobody can use any more (expired or used): housekeeping.
pub fn delete_dead(conn: &mut DbConnection, now: NaiveDateTime) -> QueryResult<usize> {
    diesel::delete(
        password_resets::table.filter(
            password_resets::expires_at
                .le(now)
                .or(password_resets::used_at.is_not_null()),
        ),
    )
    .execute(conn)
}
