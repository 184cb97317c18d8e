use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::DbConnection;
use super::schema::setup_tokens;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = setup_tokens)]
pub struct SetupToken {
    pub token_hash: String,
    pub purpose: String,
    pub user_id: Option<String>,
    pub org_id: Option<String>,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    pub used_at: Option<NaiveDateTime>,
}

pub const FIRST_ADMIN: &str = "first_admin";
pub const ACCOUNT: &str = "account";

#[derive(Insertable)]
#[diesel(table_name = setup_tokens)]
pub struct NewSetupToken<'a> {
    pub token_hash: &'a str,
    pub purpose: &'a str,
    pub user_id: Option<&'a str>,
    pub org_id: Option<&'a str>,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
}

pub fn insert(conn: &mut DbConnection, token: &NewSetupToken) -> QueryResult<()> {
    diesel::insert_into(setup_tokens::table)
        .values(token)
        .execute(conn)
        .map(|_| ())
}

/// A token that is unused and not expired.
pub fn find_live(
    conn: &mut DbConnection,
    token_hash: &str,
    now: NaiveDateTime,
) -> QueryResult<Option<SetupToken>> {
    setup_tokens::table
        .find(token_hash)
        .filter(setup_tokens::used_at.is_null())
        .filter(setup_tokens::expires_at.gt(now))
        .select(SetupToken::as_select())
        .first(conn)
        .optional()
}

/// Consumes the token with one conditional UPDATE: of two requests racing with the same
/// token, exactly one sees `true`.
pub fn consume(conn: &mut DbConnection, token_hash: &str, now: NaiveDateTime) -> QueryResult<bool> {
    let n = diesel::update(
        setup_tokens::table
            .find(token_hash)
            .filter(setup_tokens::used_at.is_null())
            .filter(setup_tokens::expires_at.gt(now)),
    )
    .set(setup_tokens::used_at.eq(Some(now)))
    .execute(conn)?;
    Ok(n == 1)
}

/// Only the newest first-admin link works: each start-up prints a fresh one.
pub fn delete_unused_first_admin(conn: &mut DbConnection) -> QueryResult<usize> {
    diesel::delete(
        setup_tokens::table
            .filter(setup_tokens::purpose.eq(FIRST_ADMIN))
            .filter(setup_tokens::used_at.is_null()),
    )
    .execute(conn)
}
