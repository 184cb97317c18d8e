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
    to: Option<&str>,
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

/// Every pool of the organization (the tree is built in memory from these).
pub fn list(conn: &mut DbConnection, org_id: &str) -> QueryResult<Vec<Pool>> {
    pools::table
        .filter(pools::org_id.eq(org_id))
        .order((pools::name.asc(), pools::id.asc()))
        .select(Pool::as_select())
        .load(conn)
}

pub fn find(conn: &mut DbConnection, org_id: &str, id: &str) -> QueryResult<Option<Pool>> {
    pools::table
        .filter(pools::org_id.eq(org_id))
        .filter(pools::id.eq(id))
        .select(Pool::as_select())
        .first(conn)
        .optional()
}

/// Whether another pool under the same parent (`None`: among the top-level pools)
/// already has this name, in any case. `pools_sibling_name_idx` holds the same rule.
pub fn sibling_name_taken(
    conn: &mut DbConnection,
    org_id: &str,
    parent_id: Option<&str>,
    name: &str,
    except_id: Option<&str>,
) -> QueryResult<bool> {
    let mut query = pools::table
        .filter(pools::org_id.eq(org_id))
        .select((pools::id, pools::name))
        .into_boxed();
    query = match parent_id {
        Some(p) => query.filter(pools::parent_id.eq(p.to_string())),
        None => query.filter(pools::parent_id.is_null()),
    };
    let siblings: Vec<(String, String)> = query.load(conn)?;
    let wanted = name.to_lowercase();
    Ok(siblings
        .into_iter()
        .any(|(id, n)| Some(id.as_str()) != except_id && n.to_lowercase() == wanted))
}

pub fn insert(
    conn: &mut DbConnection,
    org_id: &str,
    parent_id: Option<&str>,
    name: &str,
    owner_id: &str,
) -> QueryResult<String> {
    let id = super::new_id();
    diesel::insert_into(pools::table)
        .values((
            pools::id.eq(&id),
            pools::org_id.eq(org_id),
            pools::parent_id.eq(parent_id),
            pools::name.eq(name),
            pools::owner_id.eq(Some(owner_id)),
            pools::created_at.eq(super::now()),
        ))
        .execute(conn)?;
    Ok(id)
}

pub fn update(
    conn: &mut DbConnection,
    org_id: &str,
    id: &str,
    name: &str,
    parent_id: Option<&str>,
) -> QueryResult<usize> {
    diesel::update(
        pools::table
            .filter(pools::org_id.eq(org_id))
            .filter(pools::id.eq(id)),
    )
    .set((pools::name.eq(name), pools::parent_id.eq(parent_id)))
    .execute(conn)
}

/// Deletes these pools (a pool and its whole subtree) and their memberships in one
/// statement each, so the parent references never dangle between statements.
pub fn delete_many(conn: &mut DbConnection, org_id: &str, ids: &[String]) -> QueryResult<usize> {
    diesel::delete(
        pool_members::table
            .filter(pool_members::org_id.eq(org_id))
            .filter(pool_members::pool_id.eq_any(ids)),
    )
    .execute(conn)?;
    diesel::delete(
        pools::table
            .filter(pools::org_id.eq(org_id))
            .filter(pools::id.eq_any(ids)),
    )
    .execute(conn)
}

/// The pool's members with their pool role, read by the pool's key, then sorted: every
/// one of them.
macro_rules! members_sorted_query {
    ($org_id:expr, $pool_id:expr) => {
        pool_members::table
            // The organization through the pool's row, as for a group's members
            // (`groups::members`).
            .inner_join(pools::table)
            .inner_join(
                crate::db::schema::users::table
                    .on(crate::db::schema::users::id.eq(pool_members::user_id)),
            )
            .inner_join(roles::table)
            .filter(pools::org_id.eq($org_id))
            .filter(pool_members::pool_id.eq($pool_id))
            .order(crate::db::schema::users::email.asc())
            .select((
                crate::db::users::User::as_select(),
                crate::db::roles::Role::as_select(),
            ))
    };
}

/// The organization's members in email order, each with whether it is in the pool (by
/// key), at most `$budget` of them.
macro_rules! members_walk_query {
    ($org_id:expr, $pool_id:expr, $budget:expr) => {
        crate::db::schema::memberships::table
            .filter(crate::db::schema::memberships::org_id.eq($org_id))
            .order((
                crate::db::schema::memberships::email.asc(),
                crate::db::schema::memberships::user_id.asc(),
            ))
            .select((
                crate::db::schema::memberships::user_id,
                diesel::dsl::exists(
                    pool_members::table
                        .filter(pool_members::org_id.eq($org_id))
                        .filter(pool_members::pool_id.eq($pool_id))
                        .filter(pool_members::user_id.eq(crate::db::schema::memberships::user_id)),
                ),
            ))
            .limit($budget)
    };
}

/// The walk for the pool's first page, if it is walked for.
fn walk_for_members(
    conn: &mut DbConnection,
    org_id: &str,
    pool_id: &str,
    limit: i64,
) -> QueryResult<Option<super::SetWalk>> {
    let in_pool = member_count(conn, org_id, &[pool_id.to_string()])?;
    super::SetWalk::plan(conn, org_id, in_pool, limit)
}

/// The pool's first `limit` members by email, with their pool role.
pub fn members(
    conn: &mut DbConnection,
    org_id: &str,
    pool_id: &str,
    limit: i64,
) -> QueryResult<Vec<(super::users::User, super::roles::Role)>> {
    let found = match walk_for_members(conn, org_id, pool_id, limit)? {
        Some(walk) => {
            let found: Vec<String> = super::on_backend!(conn, |c| {
                super::memberships::WalkMatches::new(
                    members_walk_query!(org_id, pool_id, walk.budget),
                    limit,
                )
                .load(c)
            })?;
            walk.settled(found.len(), limit).then_some(found)
        }
        None => None,
    };
    let Some(found) = found else {
        return members_sorted_query!(org_id, pool_id)
            .limit(limit)
            .load(conn);
    };
    let page = super::users_in_order(conn, &found)?;
    let mut roles_of: std::collections::HashMap<String, super::roles::Role> = pool_members::table
        .inner_join(roles::table)
        .filter(pool_members::org_id.eq(org_id))
        .filter(pool_members::pool_id.eq(pool_id))
        .filter(pool_members::user_id.eq_any(&found))
        .select((pool_members::user_id, super::roles::Role::as_select()))
        .load::<(String, super::roles::Role)>(conn)?
        .into_iter()
        .collect();
    Ok(page
        .into_iter()
        .filter_map(|user| roles_of.remove(&user.id).map(|role| (user, role)))
        .collect())
}

/// The plans of [`members`]' two reads (the walk with the budget it would take, or a
/// page's worth), and whether a pool's page walks now.
pub fn explain_members(
    conn: &mut DbConnection,
    org_id: &str,
    pool_id: &str,
    limit: i64,
) -> QueryResult<(bool, Vec<String>, Vec<String>)> {
    let budget = walk_for_members(conn, org_id, pool_id, limit)?.map(|w| w.budget);
    let sorted = super::explain(conn, members_sorted_query!(org_id, pool_id).limit(limit))?;
    let reads = budget.unwrap_or(limit);
    let prefix = super::explain_prefix(conn);
    let walked = super::on_backend!(conn, |c| super::explain_on(
        c,
        prefix,
        super::memberships::WalkMatches::new(
            members_walk_query!(org_id.to_string(), pool_id.to_string(), reads),
            limit
        ),
    ))?;
    Ok((budget.is_some(), sorted, walked))
}

/// Memberships of these pools (someone in two of them counts twice), from the pools'
/// kept counts.
pub fn member_count(
    conn: &mut DbConnection,
    org_id: &str,
    pool_ids: &[String],
) -> QueryResult<i64> {
    let counts: Vec<i64> = pools::table
        .filter(pools::org_id.eq(org_id))
        .filter(pools::id.eq_any(pool_ids))
        .select(pools::member_count)
        .load(conn)?;
    Ok(counts.into_iter().sum())
}

/// Members of each of the organization's pools, by pool id, as the database keeps them
/// (migration `group_and_pool_member_counts`): one row a pool, however many members.
pub fn member_counts(
    conn: &mut DbConnection,
    org_id: &str,
) -> QueryResult<std::collections::HashMap<String, i64>> {
    let counts: Vec<(String, i64)> = pools::table
        .filter(pools::org_id.eq(org_id))
        .select((pools::id, pools::member_count))
        .load(conn)?;
    Ok(counts.into_iter().collect())
}

/// The roles the memberships of these pools carry, each once.
pub fn roles_held_in(
    conn: &mut DbConnection,
    org_id: &str,
    pool_ids: &[String],
) -> QueryResult<Vec<super::roles::Role>> {
    pool_members::table
        .inner_join(roles::table)
        .filter(pool_members::org_id.eq(org_id))
        .filter(pool_members::pool_id.eq_any(pool_ids))
        .select(super::roles::Role::as_select())
        .distinct()
        .load(conn)
}

/// (pool id, role) for every pool the user belongs to in this organization.
pub fn roles_of_user(
    conn: &mut DbConnection,
    org_id: &str,
    user_id: &str,
) -> QueryResult<Vec<(String, super::roles::Role)>> {
    pool_members::table
        .inner_join(roles::table)
        .filter(pool_members::org_id.eq(org_id))
        .filter(pool_members::user_id.eq(user_id))
        .select((pool_members::pool_id, super::roles::Role::as_select()))
        .load(conn)
}

pub fn is_member(conn: &mut DbConnection, pool_id: &str, user_id: &str) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        pool_members::table
            .filter(pool_members::pool_id.eq(pool_id))
            .filter(pool_members::user_id.eq(user_id)),
    ))
    .get_result(conn)
}

pub fn add_member(
    conn: &mut DbConnection,
    org_id: &str,
    pool_id: &str,
    user_id: &str,
    role_id: &str,
) -> QueryResult<()> {
    diesel::insert_into(pool_members::table)
        .values((
            pool_members::pool_id.eq(pool_id),
            pool_members::user_id.eq(user_id),
            pool_members::org_id.eq(org_id),
            pool_members::role_id.eq(role_id),
            pool_members::created_at.eq(super::now()),
        ))
        .execute(conn)
        .map(|_| ())
}

pub fn remove_member(
    conn: &mut DbConnection,
    org_id: &str,
    pool_id: &str,
    user_id: &str,
) -> QueryResult<usize> {
    diesel::delete(
        pool_members::table
            .filter(pool_members::org_id.eq(org_id))
            .filter(pool_members::pool_id.eq(pool_id))
            .filter(pool_members::user_id.eq(user_id)),
    )
    .execute(conn)
}
