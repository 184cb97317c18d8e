use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::DbConnection;
use super::schema::{pool_members, pools, roles};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = pools)]
pub struct Pool {
    pub id: String,
    pub org_id: String,
    pub parent_id: Option<String>,
    pub name: String,
    pub owner_id: Option<String>,
    pub created_at: NaiveDateTime,
}

/// A member's pools with the pool role's name.
pub fn of_member(
    conn: &mut DbConnection,
    org_id: &str,
    user_id: &str,
) -> QueryResult<Vec<(Pool, String)>> {
    pools::table
        .inner_join(pool_members::table.inner_join(roles::table))
        .filter(pool_members::org_id.eq(org_id))
        .filter(pool_members::user_id.eq(user_id))
        .order(pools::name.asc())
        .select((Pool::as_select(), roles::name))
        .load(conn)
}

pub fn owned_by(conn: &mut DbConnection, org_id: &str, user_id: &str) -> QueryResult<Vec<Pool>> {
    pools::table
        .filter(pools::org_id.eq(org_id))
        .filter(pools::owner_id.eq(user_id))
        .order(pools::name.asc())
        .select(Pool::as_select())
        .load(conn)
}

pub fn transfer_ownership(
    conn: &mut DbConnection,
    org_id: &str,
    from: &str,
    to: &str,
) -> QueryResult<usize> {
    diesel::update(
        pools::table
            .filter(pools::org_id.eq(org_id))
            .filter(pools::owner_id.eq(from)),
    )
    .set(pools::owner_id.eq(to))
    .execute(conn)
}

pub fn remove_member_everywhere(
    conn: &mut DbConnection,
    org_id: &str,
    user_id: &str,
) -> QueryResult<usize> {
    diesel::delete(
        pool_members::table
            .filter(pool_members::org_id.eq(org_id))
            .filter(pool_members::user_id.eq(user_id)),
    )
    .execute(conn)
}
