use chrono::NaiveDateTime;
use diesel::prelude::*;

use diesel::sql_types::Text;

use super::schema::{group_members, groups};
use super::{DbConnection, InJsonIds};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = groups)]
pub struct Group {
    pub id: String,
    pub org_id: String,
    pub name: String,
    pub description: String,
    pub role_id: Option<String>,
    pub owner_id: Option<String>,
    pub created_at: NaiveDateTime,
    /// When its name or members last changed (SCIM's `meta.lastModified`).
    pub updated_at: Option<NaiveDateTime>,
    /// How many times its members changed, counted by the database (migration
    /// `group_members_version`): part of its SCIM version.
    pub members_version: i64,
}

/// Marks a group as changed now (SCIM's `meta.lastModified`), once per transaction on
/// PostgreSQL: a bulk action or an identity provider's PATCH changes one group a
/// thousand times in one transaction, and there each update of the row leaves a version
/// every later one walks. The groups this transaction marked are listed in a setting
/// local to it, so another transaction's mark never stands in for this one's. SQLite
/// updates the row in place.
fn mark_group_changed(conn: &mut DbConnection, org_id: &str, group_id: &str) -> QueryResult<()> {
    const MARKED: &str = "portcullis.groups_marked";
    let now = super::now();
    let group = groups::table
        .filter(groups::org_id.eq(org_id))
        .filter(groups::id.eq(group_id));
    match conn {
        DbConnection::Sqlite(c) => {
            diesel::update(group)
                .set(groups::updated_at.eq(Some(now)))
                .execute(c)?;
        }
        DbConnection::Postgresql(c) => {
            #[derive(QueryableByName)]
            struct Marked {
                #[diesel(sql_type = diesel::sql_types::Bool)]
                already: bool,
            }
            let marked: Marked = diesel::sql_query(format!(
                "SELECT position(',' || $1 || ',' IN coalesce(current_setting('{MARKED}', true), '')) > 0 AS already"
            ))
            .bind::<Text, _>(group_id)
            .get_result(c)?;
            if !marked.already {
                diesel::update(group)
                    .set(groups::updated_at.eq(Some(now)))
                    .execute(c)?;
                diesel::sql_query(format!(
                    "SELECT set_config('{MARKED}', coalesce(nullif(current_setting('{MARKED}', true), ''), ',') || $1 || ',', true)"
                ))
                .bind::<Text, _>(group_id)
                .execute(c)?;
            }
        }
    }
    Ok(())
}

/// Marks a member's membership as changed now: their User resource lists their groups.
fn mark_member_changed(conn: &mut DbConnection, org_id: &str, user_id: &str) -> QueryResult<()> {
    use super::schema::memberships;
    diesel::update(
        memberships::table
            .filter(memberships::org_id.eq(org_id))
            .filter(memberships::user_id.eq(user_id)),
    )
    .set(memberships::updated_at.eq(Some(super::now())))
    .execute(conn)
    .map(|_| ())
}

/// Marks the memberships of everyone in the group as changed now (a rename, a deletion):
/// one statement, however many members.
fn mark_members_changed(conn: &mut DbConnection, org_id: &str, group_id: &str) -> QueryResult<()> {
    use super::schema::memberships;
    let in_group = group_members::table
        .filter(group_members::org_id.eq(org_id))
        .filter(group_members::group_id.eq(group_id))
        .select(group_members::user_id);
    diesel::update(
        memberships::table
            .filter(memberships::org_id.eq(org_id))
            .filter(memberships::user_id.eq_any(in_group)),
    )
    .set(memberships::updated_at.eq(Some(super::now())))
    .execute(conn)
    .map(|_| ())
}

pub fn find(conn: &mut DbConnection, org_id: &str, id: &str) -> QueryResult<Option<Group>> {
    groups::table
        .filter(groups::org_id.eq(org_id))
        .filter(groups::id.eq(id))
        .select(Group::as_select())
        .first(conn)
        .optional()
}

pub fn list(conn: &mut DbConnection, org_id: &str) -> QueryResult<Vec<Group>> {
    super::on_backend!(conn, |c| groups::table
        .filter(groups::org_id.eq(org_id))
        .order(groups::name.asc())
        .select(Group::as_select())
        .load(c))
}

/// The groups a member belongs to in this organization.
pub fn of_member(conn: &mut DbConnection, org_id: &str, user_id: &str) -> QueryResult<Vec<Group>> {
    groups::table
        .inner_join(group_members::table)
        .filter(group_members::org_id.eq(org_id))
        .filter(group_members::user_id.eq(user_id))
        .order(groups::name.asc())
        .select(Group::as_select())
        .load(conn)
}

pub fn owned_by(conn: &mut DbConnection, org_id: &str, user_id: &str) -> QueryResult<Vec<Group>> {
    groups::table
        .filter(groups::org_id.eq(org_id))
        .filter(groups::owner_id.eq(user_id))
        .order(groups::name.asc())
        .select(Group::as_select())
        .load(conn)
}

pub fn transfer_ownership(
    conn: &mut DbConnection,
    org_id: &str,
    from: &str,
    to: Option<&str>,
) -> QueryResult<usize> {
    diesel::update(
        groups::table
            .filter(groups::org_id.eq(org_id))
            .filter(groups::owner_id.eq(from)),
    )
    .set(groups::owner_id.eq(to))
    .execute(conn)
}

pub fn is_member(conn: &mut DbConnection, group_id: &str, user_id: &str) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        group_members::table
            .filter(group_members::group_id.eq(group_id))
            .filter(group_members::user_id.eq(user_id)),
    ))
    .get_result(conn)
}

pub fn add_member(
    conn: &mut DbConnection,
    org_id: &str,
    group_id: &str,
    user_id: &str,
) -> QueryResult<()> {
    diesel::insert_into(group_members::table)
        .values((
            group_members::group_id.eq(group_id),
            group_members::user_id.eq(user_id),
            group_members::org_id.eq(org_id),
            group_members::created_at.eq(super::now()),
        ))
        .execute(conn)?;
    mark_group_changed(conn, org_id, group_id)?;
    mark_member_changed(conn, org_id, user_id)
}

pub fn remove_member_everywhere(
    conn: &mut DbConnection,
    org_id: &str,
    user_id: &str,
) -> QueryResult<usize> {
    let left: Vec<String> = diesel::delete(
        group_members::table
            .filter(group_members::org_id.eq(org_id))
            .filter(group_members::user_id.eq(user_id)),
    )
    .returning(group_members::group_id)
    .get_results(conn)?;
    // A member is in a few groups, not thousands.
    for group_id in &left {
        mark_group_changed(conn, org_id, group_id)?;
    }
    mark_member_changed(conn, org_id, user_id)?;
    Ok(left.len())
}

/// Ids of the organization's groups that grant one of `role_ids`.
pub fn granting(
    conn: &mut DbConnection,
    org_id: &str,
    role_ids: &[String],
) -> QueryResult<Vec<String>> {
    groups::table
        .filter(groups::org_id.eq(org_id))
        .filter(groups::role_id.eq_any(role_ids))
        .select(groups::id)
        .load(conn)
}

pub fn insert(
    conn: &mut DbConnection,
    org_id: &str,
    name: &str,
    description: &str,
    role_id: Option<&str>,
    owner_id: Option<&str>,
) -> QueryResult<String> {
    let id = super::new_id();
    diesel::insert_into(groups::table)
        .values((
            groups::id.eq(&id),
            groups::org_id.eq(org_id),
            groups::name.eq(name),
            groups::description.eq(description),
            groups::role_id.eq(role_id),
            groups::owner_id.eq(owner_id),
            groups::created_at.eq(super::now()),
        ))
        .execute(conn)?;
    Ok(id)
}

pub fn update(
    conn: &mut DbConnection,
    org_id: &str,
    id: &str,
    name: &str,
    description: &str,
    role_id: Option<&str>,
    owner_id: Option<&str>,
) -> QueryResult<usize> {
    // Its members' User resources show its name.
    if find(conn, org_id, id)?.is_some_and(|g| g.name != name) {
        mark_members_changed(conn, org_id, id)?;
    }
    diesel::update(
        groups::table
            .filter(groups::org_id.eq(org_id))
            .filter(groups::id.eq(id)),
    )
    .set((
        groups::name.eq(name),
        groups::description.eq(description),
        groups::role_id.eq(role_id),
        groups::owner_id.eq(owner_id),
        groups::updated_at.eq(Some(super::now())),
    ))
    .execute(conn)
}

/// Deletes the group and its memberships; answers how many members it had.
pub fn delete(conn: &mut DbConnection, org_id: &str, id: &str) -> QueryResult<usize> {
    mark_members_changed(conn, org_id, id)?;
    let members = diesel::delete(
        group_members::table
            .filter(group_members::org_id.eq(org_id))
            .filter(group_members::group_id.eq(id)),
    )
    .execute(conn)?;
    diesel::delete(
        groups::table
            .filter(groups::org_id.eq(org_id))
            .filter(groups::id.eq(id)),
    )
    .execute(conn)?;
    Ok(members)
}

/// Whether another group of the organization already has this name (any case).
pub fn name_taken(
    conn: &mut DbConnection,
    org_id: &str,
    name: &str,
    except_id: Option<&str>,
) -> QueryResult<bool> {
    let names: Vec<(String, String)> = groups::table
        .filter(groups::org_id.eq(org_id))
        .select((groups::id, groups::name))
        .load(conn)?;
    let wanted = name.to_lowercase();
    Ok(names
        .into_iter()
        .any(|(id, n)| Some(id.as_str()) != except_id && n.to_lowercase() == wanted))
}

pub fn remove_member(
    conn: &mut DbConnection,
    org_id: &str,
    group_id: &str,
    user_id: &str,
) -> QueryResult<usize> {
    let removed = diesel::delete(
        group_members::table
            .filter(group_members::org_id.eq(org_id))
            .filter(group_members::group_id.eq(group_id))
            .filter(group_members::user_id.eq(user_id)),
    )
    .execute(conn)?;
    if removed > 0 {
        mark_group_changed(conn, org_id, group_id)?;
        mark_member_changed(conn, org_id, user_id)?;
    }
    Ok(removed)
}

/// Takes `user_ids` out of the group in one statement, which PostgreSQL counts once
/// (migration `group_and_pool_member_counts`): an identity provider emptying a group of
/// 100,000 would otherwise update the group's row 100,000 times in one transaction.
/// Answers how many were in it.
pub fn remove_members(
    conn: &mut DbConnection,
    org_id: &str,
    group_id: &str,
    user_ids: &[&str],
) -> QueryResult<usize> {
    use super::schema::memberships;
    let removed = diesel::delete(
        group_members::table
            .filter(group_members::org_id.eq(org_id))
            .filter(group_members::group_id.eq(group_id))
            .filter(group_members::user_id.eq_any(user_ids)),
    )
    .execute(conn)?;
    if removed > 0 {
        mark_group_changed(conn, org_id, group_id)?;
        diesel::update(
            memberships::table
                .filter(memberships::org_id.eq(org_id))
                .filter(memberships::user_id.eq_any(user_ids)),
        )
        .set(memberships::updated_at.eq(Some(super::now())))
        .execute(conn)?;
    }
    Ok(removed)
}

/// The group's members read by the group's key, then sorted: every one of them.
macro_rules! members_sorted_query {
    ($org_id:expr, $group_id:expr) => {
        group_members::table
            // The organization through the group's row: a filter on the membership's own
            // `org_id` led SQLite to the organization's index of every group's members.
            .inner_join(groups::table.on(groups::id.eq(group_members::group_id)))
            .inner_join(
                crate::db::schema::users::table
                    .on(crate::db::schema::users::id.eq(group_members::user_id)),
            )
            .filter(groups::org_id.eq($org_id))
            .filter(group_members::group_id.eq($group_id))
            .order(crate::db::schema::users::email.asc())
            .select(crate::db::users::User::as_select())
    };
}

/// The organization's members in email order, each with whether it is in the group (by
/// key), at most `$budget` of them.
macro_rules! members_walk_query {
    ($org_id:expr, $group_id:expr, $budget:expr) => {
        crate::db::schema::memberships::table
            .filter(crate::db::schema::memberships::org_id.eq($org_id))
            .order((
                crate::db::schema::memberships::email.asc(),
                crate::db::schema::memberships::user_id.asc(),
            ))
            .select((
                crate::db::schema::memberships::user_id,
                diesel::dsl::exists(
                    group_members::table
                        .filter(group_members::org_id.eq($org_id))
                        .filter(group_members::group_id.eq($group_id))
                        .filter(group_members::user_id.eq(crate::db::schema::memberships::user_id)),
                ),
            ))
            .limit($budget)
    };
}

/// The walk for the group's first page, if it is walked for.
fn walk_for_members(
    conn: &mut DbConnection,
    org_id: &str,
    group_id: &str,
    limit: i64,
) -> QueryResult<Option<super::SetWalk>> {
    let in_group: i64 = groups::table
        .filter(groups::org_id.eq(org_id))
        .filter(groups::id.eq(group_id))
        .select(groups::member_count)
        .first(conn)
        .optional()?
        .unwrap_or(0);
    super::SetWalk::plan(conn, org_id, in_group, limit)
}

/// The group's first `limit` members by email.
pub fn members(
    conn: &mut DbConnection,
    org_id: &str,
    group_id: &str,
    limit: i64,
) -> QueryResult<Vec<super::users::User>> {
    if let Some(walk) = walk_for_members(conn, org_id, group_id, limit)? {
        let found: Vec<String> = super::on_backend!(conn, |c| {
            super::memberships::WalkMatches::new(
                members_walk_query!(org_id, group_id, walk.budget),
                limit,
            )
            .load(c)
        })?;
        if walk.settled(found.len(), limit) {
            return super::users_in_order(conn, &found);
        }
    }
    members_sorted_query!(org_id, group_id)
        .limit(limit)
        .load(conn)
}

/// The plans of [`members`]' two reads (the walk with the budget it would take, or a
/// page's worth), and whether a group's page walks now.
pub fn explain_members(
    conn: &mut DbConnection,
    org_id: &str,
    group_id: &str,
    limit: i64,
) -> QueryResult<(bool, Vec<String>, Vec<String>)> {
    let budget = walk_for_members(conn, org_id, group_id, limit)?.map(|w| w.budget);
    let sorted = super::explain(conn, members_sorted_query!(org_id, group_id).limit(limit))?;
    let reads = budget.unwrap_or(limit);
    let prefix = super::explain_prefix(conn);
    let walked = super::on_backend!(conn, |c| super::explain_on(
        c,
        prefix,
        super::memberships::WalkMatches::new(
            members_walk_query!(org_id.to_string(), group_id.to_string(), reads),
            limit
        ),
    ))?;
    Ok((budget.is_some(), sorted, walked))
}

/// (group id, member count) for every group of the organization, as the database keeps
/// them (migration `group_and_pool_member_counts`): one row a group, however many members.
pub fn member_counts(conn: &mut DbConnection, org_id: &str) -> QueryResult<Vec<(String, i64)>> {
    groups::table
        .filter(groups::org_id.eq(org_id))
        .select((groups::id, groups::member_count))
        .load(conn)
}

/// A role a member holds through a group or a pool, for the Users tab's effective role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantedRole {
    pub user_id: String,
    /// `group` or `pool`.
    pub kind: String,
    /// The group's or the pool's name.
    pub source: String,
    pub role_name: String,
    pub role_rank: i64,
    pub role_permissions: String,
}

/// A group or pool a member belongs to, and the role it grants them, if any (a group
/// may grant none; a pool membership always names one).
#[derive(Debug, Clone, PartialEq, Eq, Queryable)]
pub struct Tie {
    pub user_id: String,
    /// `group` or `pool`.
    pub kind: String,
    /// The group's or the pool's id.
    pub source_id: String,
    /// The group's or the pool's name.
    pub source: String,
    pub role_name: Option<String>,
    pub role_rank: Option<i64>,
    pub role_permissions: Option<String>,
}

impl Tie {
    pub fn is_group(&self) -> bool {
        self.kind == "group"
    }

    /// The role the tie grants, if it grants one.
    pub fn granted(&self) -> Option<GrantedRole> {
        Some(GrantedRole {
            user_id: self.user_id.clone(),
            kind: self.kind.clone(),
            source: self.source.clone(),
            role_name: self.role_name.clone()?,
            role_rank: self.role_rank?,
            role_permissions: self.role_permissions.clone()?,
        })
    }
}

/// Every group and pool the page's members belong to, with the roles they grant: one
/// query (a UNION of the two sources) for the whole page's group names and effective
/// roles.
pub fn ties_of_members(
    conn: &mut DbConnection,
    org_id: &str,
    user_ids: &[String],
) -> QueryResult<Vec<Tie>> {
    use super::schema::{pool_members, pools, roles};
    // Typed on both and without SQL literals (diesel never keeps a statement with one
    // prepared; the kinds are bound values), so it is compiled once per connection. It was
    // compiled on every page: on SQLite a tenth of the page's CPU. Only the test of the
    // page's ids differs (`InJsonIds`).
    macro_rules! ties_where {
        ($in_groups:expr, $in_pools:expr) => {
            group_members::table
                .inner_join(groups::table.left_join(roles::table))
                .filter(group_members::org_id.eq(org_id))
                .filter($in_groups)
                .select((
                    group_members::user_id,
                    "group".into_sql::<Text>(),
                    groups::id,
                    groups::name,
                    roles::name.nullable(),
                    roles::rank.nullable(),
                    roles::permissions.nullable(),
                ))
                .union_all(
                    pool_members::table
                        .inner_join(pools::table)
                        .inner_join(roles::table)
                        .filter(pool_members::org_id.eq(org_id))
                        .filter($in_pools)
                        .select((
                            pool_members::user_id,
                            "pool".into_sql::<Text>(),
                            pools::id,
                            pools::name,
                            roles::name.nullable(),
                            roles::rank.nullable(),
                            roles::permissions.nullable(),
                        )),
                )
        };
    }
    match conn {
        DbConnection::Postgresql(c) => ties_where!(
            group_members::user_id.eq_any(user_ids),
            pool_members::user_id.eq_any(user_ids)
        )
        .load(c),
        DbConnection::Sqlite(c) => ties_where!(
            InJsonIds::new(group_members::user_id, user_ids),
            InJsonIds::new(pool_members::user_id, user_ids)
        )
        .load(c),
    }
}
