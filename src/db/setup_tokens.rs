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

super::single_use::single_use_links!(setup_tokens, SetupToken);

/// Kills the account's set-up links that were not used.
pub fn delete_unused_for_user(conn: &mut DbConnection, user_id: &str) -> QueryResult<usize> {
    diesel::delete(
        setup_tokens::table
            .filter(setup_tokens::user_id.eq(user_id))
            .filter(setup_tokens::used_at.is_null()),
    )
    .execute(conn)
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
