//! `api_tokens`: an organization's bearer tokens, kept as the SHA-256 of the secret.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::DbConnection;
use super::roles::Role;
use super::schema::{api_tokens, roles};

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = api_tokens)]
pub struct ApiToken {
    pub id: String,
    pub org_id: String,
    pub name: String,
    pub scopes: String,
    pub role_id: String,
    pub token_hash: String,
    pub created_by: Option<String>,
    pub created_by_email: String,
    pub created_at: NaiveDateTime,
    pub last_used_at: Option<NaiveDateTime>,
    pub expires_at: Option<NaiveDateTime>,
    pub revoked_at: Option<NaiveDateTime>,
}

pub fn insert(conn: &mut DbConnection, row: &ApiToken) -> QueryResult<()> {
    diesel::insert_into(api_tokens::table)
        .values(row)
        .execute(conn)
        .map(|_| ())
}

/// The organization's tokens with the role each grants, newest first.
pub fn list(conn: &mut DbConnection, org_id: &str) -> QueryResult<Vec<(ApiToken, Role)>> {
    api_tokens::table
        .inner_join(roles::table)
        .filter(api_tokens::org_id.eq(org_id))
        .order((api_tokens::created_at.desc(), api_tokens::id.desc()))
        .select((ApiToken::as_select(), Role::as_select()))
        .load(conn)
}

/// Whether a token of the organization that is neither revoked nor expired is named
/// `name`, ignoring case. Few tokens per organization: read through `org_id`.
pub fn live_name_taken(
    conn: &mut DbConnection,
    org_id: &str,
    name: &str,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    let names: Vec<String> = api_tokens::table
        .filter(api_tokens::org_id.eq(org_id))
        .filter(api_tokens::revoked_at.is_null())
        .filter(
            api_tokens::expires_at
                .is_null()
                .or(api_tokens::expires_at.gt(now)),
        )
        .select(api_tokens::name)
        .load(conn)?;
    Ok(names
        .iter()
        .any(|n| n.to_lowercase() == name.to_lowercase()))
}

pub fn find(conn: &mut DbConnection, org_id: &str, id: &str) -> QueryResult<Option<ApiToken>> {
    api_tokens::table
        .filter(api_tokens::org_id.eq(org_id))
        .filter(api_tokens::id.eq(id))
        .select(ApiToken::as_select())
        .first(conn)
        .optional()
}

/// The token whose secret hashes to `hash`, with the role it grants.
pub fn find_by_hash(conn: &mut DbConnection, hash: &str) -> QueryResult<Option<(ApiToken, Role)>> {
    api_tokens::table
        .inner_join(roles::table)
        .filter(api_tokens::token_hash.eq(hash))
        .select((ApiToken::as_select(), Role::as_select()))
        .first(conn)
        .optional()
}

/// Marks the token revoked unless it already is; answers whether it changed.
pub fn revoke(
    conn: &mut DbConnection,
    org_id: &str,
    id: &str,
    at: NaiveDateTime,
) -> QueryResult<bool> {
    diesel::update(
        api_tokens::table
            .filter(api_tokens::org_id.eq(org_id))
            .filter(api_tokens::id.eq(id))
            .filter(api_tokens::revoked_at.is_null()),
    )
    .set(api_tokens::revoked_at.eq(at))
    .execute(conn)
    .map(|n| n == 1)
}

/// Records a use, unless one was recorded since `unless_after`: one conditional UPDATE,
/// so a burst of requests writes at most once.
pub fn touch(
    conn: &mut DbConnection,
    id: &str,
    now: NaiveDateTime,
    unless_after: NaiveDateTime,
) -> QueryResult<()> {
    diesel::update(
        api_tokens::table.filter(api_tokens::id.eq(id)).filter(
            api_tokens::last_used_at
                .is_null()
                .or(api_tokens::last_used_at.lt(unless_after)),
        ),
    )
    .set(api_tokens::last_used_at.eq(now))
    .execute(conn)
    .map(|_| ())
}
