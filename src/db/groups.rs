use chrono::NaiveDateTime;
use diesel::prelude::*;

use diesel::sql_types::{BigInt, Text};

use super::DbConnection;
use super::schema::{group_members, groups};

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
    groups::table
        .filter(groups::org_id.eq(org_id))
        .order(groups::name.asc())
        .select(Group::as_select())
        .load(conn)
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

/// (user id, group name) for a page of members, one query for the whole page.
pub fn names_for_members(
    conn: &mut DbConnection,
    org_id: &str,
    user_ids: &[String],
) -> QueryResult<Vec<(String, String)>> {
    if let DbConnection::Postgresql(_) = conn {
        // `eq_any` is one array parameter here, so diesel keeps the statement prepared.
        return group_members::table
            .inner_join(groups::table)
            .filter(group_members::org_id.eq(org_id))
            .filter(group_members::user_id.eq_any(user_ids))
            .order(groups::name.asc())
            .select((group_members::user_id, groups::name))
            .load(conn);
    }
    let sql = format!(
        "SELECT gm.user_id AS user_id, g.name AS name \
         FROM group_members gm JOIN groups g ON g.id = gm.group_id \
         WHERE gm.org_id = ?1 AND gm.user_id IN {} ORDER BY g.name",
        super::sqlite_id_list(2),
    );
    let rows: Vec<MemberGroupName> = diesel::sql_query(sql)
        .bind::<Text, _>(org_id)
        .bind::<Text, _>(super::json_ids(user_ids))
        .load(conn)?;
    Ok(rows.into_iter().map(|r| (r.user_id, r.name)).collect())
}

#[derive(QueryableByName)]
struct MemberGroupName {
    #[diesel(sql_type = Text)]
    user_id: String,
    #[diesel(sql_type = Text)]
    name: String,
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
    to: &str,
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
        .execute(conn)
        .map(|_| ())
}

pub fn remove_member_everywhere(
    conn: &mut DbConnection,
    org_id: &str,
    user_id: &str,
) -> QueryResult<usize> {
    diesel::delete(
        group_members::table
            .filter(group_members::org_id.eq(org_id))
            .filter(group_members::user_id.eq(user_id)),
    )
    .execute(conn)
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
    ))
    .execute(conn)
}

pub fn delete(conn: &mut DbConnection, org_id: &str, id: &str) -> QueryResult<usize> {
    diesel::delete(
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
    .execute(conn)
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
    diesel::delete(
        group_members::table
            .filter(group_members::org_id.eq(org_id))
            .filter(group_members::group_id.eq(group_id))
            .filter(group_members::user_id.eq(user_id)),
    )
    .execute(conn)
}

/// The group's members (bounded), as (user id, email, display name).
pub fn members(
    conn: &mut DbConnection,
    org_id: &str,
    group_id: &str,
    limit: i64,
) -> QueryResult<Vec<super::users::User>> {
    use super::schema::users;
    group_members::table
        .inner_join(users::table.on(users::id.eq(group_members::user_id)))
        .filter(group_members::org_id.eq(org_id))
        .filter(group_members::group_id.eq(group_id))
        .order(users::email.asc())
        .limit(limit)
        .select(super::users::User::as_select())
        .load(conn)
}

/// (group id, member count) for every group of the organization.
pub fn member_counts(conn: &mut DbConnection, org_id: &str) -> QueryResult<Vec<(String, i64)>> {
    group_members::table
        .filter(group_members::org_id.eq(org_id))
        .group_by(group_members::group_id)
        .select((group_members::group_id, diesel::dsl::count_star()))
        .load(conn)
}

/// A role a member holds through a group or a pool, for the Users tab's effective role.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, QueryableByName)]
pub struct GrantedRole {
    #[diesel(sql_type = Text)]
    pub user_id: String,
    /// `group` or `pool`.
    #[diesel(sql_type = Text)]
    pub kind: String,
    /// The group's or the pool's name.
    #[diesel(sql_type = Text)]
    pub source: String,
    #[diesel(sql_type = Text)]
    pub role_name: String,
    #[diesel(sql_type = BigInt)]
    pub role_rank: i64,
}

/// Every role the page's members hold through a group or a pool: one query (a UNION
/// of the two sources) for the whole page.
pub fn granted_roles_for_members(
    conn: &mut DbConnection,
    org_id: &str,
    user_ids: &[String],
) -> QueryResult<Vec<GrantedRole>> {
    if let DbConnection::Postgresql(c) = conn {
        return granted_roles_on_postgres(c, org_id, user_ids);
    }
    let ids = super::sqlite_id_list(2);
    let sql = format!(
        "SELECT gm.user_id AS user_id, 'group' AS kind, g.name AS source, \
                r.name AS role_name, r.rank AS role_rank \
         FROM group_members gm JOIN groups g ON g.id = gm.group_id \
              JOIN roles r ON r.id = g.role_id \
         WHERE gm.org_id = ?1 AND gm.user_id IN {ids} \
         UNION ALL \
         SELECT pm.user_id, 'pool', p.name, r.name, r.rank \
         FROM pool_members pm JOIN pools p ON p.id = pm.pool_id \
              JOIN roles r ON r.id = pm.role_id \
         WHERE pm.org_id = ?1 AND pm.user_id IN {ids}"
    );
    diesel::sql_query(sql)
        .bind::<Text, _>(org_id)
        .bind::<Text, _>(super::json_ids(user_ids))
        .load(conn)
}

/// On PostgreSQL `eq_any` is one array parameter, so diesel keeps this prepared; a raw
/// statement would be planned on every page (1.3 ms at a million members).
fn granted_roles_on_postgres(
    conn: &mut diesel::PgConnection,
    org_id: &str,
    user_ids: &[String],
) -> QueryResult<Vec<GrantedRole>> {
    use super::schema::{pool_members, pools, roles};
    use diesel::dsl::sql;
    let by_group = group_members::table
        .inner_join(groups::table.inner_join(roles::table))
        .filter(group_members::org_id.eq(org_id))
        .filter(group_members::user_id.eq_any(user_ids))
        .select((
            group_members::user_id,
            sql::<Text>("'group'"),
            groups::name,
            roles::name,
            roles::rank,
        ));
    let by_pool = pool_members::table
        .inner_join(pools::table)
        .inner_join(roles::table)
        .filter(pool_members::org_id.eq(org_id))
        .filter(pool_members::user_id.eq_any(user_ids))
        .select((
            pool_members::user_id,
            sql::<Text>("'pool'"),
            pools::name,
            roles::name,
            roles::rank,
        ));
    by_group.union_all(by_pool).load(conn)
}
