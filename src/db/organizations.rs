use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::organizations;
use super::{DbConnection, now};

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = organizations)]
pub struct Organization {
    pub id: String,
    pub slug: String,
    pub name: String,
    #[diesel(deserialize_as = super::stamp::Stamp)]
    pub created_at: NaiveDateTime,
    pub lock_version: i64,
}

#[derive(Insertable)]
#[diesel(table_name = organizations)]
pub struct NewOrganization<'a> {
    pub id: &'a str,
    pub slug: &'a str,
    pub name: &'a str,
    pub created_at: NaiveDateTime,
    pub lock_version: i64,
}

pub fn insert(conn: &mut DbConnection, id: &str, slug: &str, name: &str) -> QueryResult<()> {
    diesel::insert_into(organizations::table)
        .values(NewOrganization {
            id,
            slug,
            name,
            created_at: now(),
            lock_version: 0,
        })
        .execute(conn)
        .map(|_| ())
}

pub fn find_by_slug(conn: &mut DbConnection, slug: &str) -> QueryResult<Option<Organization>> {
    organizations::table
        .filter(organizations::slug.eq(slug))
        .select(Organization::as_select())
        .first(conn)
        .optional()
}

pub fn find(conn: &mut DbConnection, id: &str) -> QueryResult<Option<Organization>> {
    organizations::table
        .find(id)
        .select(Organization::as_select())
        .first(conn)
        .optional()
}

pub fn first(conn: &mut DbConnection) -> QueryResult<Option<Organization>> {
    organizations::table
        .order(organizations::created_at.asc())
        .select(Organization::as_select())
        .first(conn)
        .optional()
}

pub fn count(conn: &mut DbConnection) -> QueryResult<i64> {
    organizations::table.count().get_result(conn)
}

pub fn slug_taken(conn: &mut DbConnection, slug: &str) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        organizations::table.filter(organizations::slug.eq(slug)),
    ))
    .get_result(conn)
}

pub fn rename(conn: &mut DbConnection, id: &str, slug: &str, name: &str) -> QueryResult<()> {
    diesel::update(organizations::table.find(id))
        .set((organizations::slug.eq(slug), organizations::name.eq(name)))
        .execute(conn)
        .map(|_| ())
}

/// Serializes changes that depend on the organization's whole membership (the last-admin
/// rule): a write to the row takes a row lock on PostgreSQL, and inside a `write_tx` on
/// SQLite the database's write lock is already held.
pub fn lock(conn: &mut DbConnection, id: &str) -> QueryResult<()> {
    diesel::update(organizations::table.find(id))
        .set(organizations::lock_version.eq(organizations::lock_version + 1))
        .execute(conn)
        .map(|_| ())
}

/// Organizations by name (bounded: the platform page is a list).
/// (id, slug) of the given organizations.
pub fn slugs_of(conn: &mut DbConnection, ids: &[&str]) -> QueryResult<Vec<(String, String)>> {
    organizations::table
        .filter(organizations::id.eq_any(ids))
        .select((organizations::id, organizations::slug))
        .load(conn)
}

/// Organizations by name, for choice lists.
pub fn list(conn: &mut DbConnection, limit: i64) -> QueryResult<Vec<Organization>> {
    organizations::table
        .order((organizations::name.asc(), organizations::id.asc()))
        .limit(limit)
        .select(Organization::as_select())
        .load(conn)
}
