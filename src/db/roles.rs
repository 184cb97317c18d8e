use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::roles;
use super::{DbConnection, new_id, now};

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = roles)]
pub struct Role {
    pub id: String,
    pub org_id: String,
    pub key: String,
    pub name: String,
    pub permissions: String,
    pub rank: i64,
    pub builtin: bool,
    #[diesel(deserialize_as = super::stamp::Stamp)]
    pub created_at: NaiveDateTime,
}

#[derive(Insertable)]
#[diesel(table_name = roles)]
pub struct NewRole<'a> {
    pub id: &'a str,
    pub org_id: &'a str,
    pub key: &'a str,
    pub name: &'a str,
    pub permissions: &'a str,
    pub rank: i64,
    pub builtin: bool,
    pub created_at: NaiveDateTime,
}

pub fn insert(conn: &mut DbConnection, role: &NewRole) -> QueryResult<()> {
    diesel::insert_into(roles::table)
        .values(role)
        .execute(conn)
        .map(|_| ())
}

pub fn list(conn: &mut DbConnection, org_id: &str) -> QueryResult<Vec<Role>> {
    super::on_backend!(conn, |c| roles::table
        .filter(roles::org_id.eq(org_id))
        .order((roles::rank.desc(), roles::name.asc()))
        .select(Role::as_select())
        .load(c))
}

/// How many members (active or not) hold each role directly, by role id, as the
/// database keeps them (migration `role_member_counts`): one row a role.
pub fn member_counts(conn: &mut DbConnection, org_id: &str) -> QueryResult<Vec<(String, i64)>> {
    roles::table
        .filter(roles::org_id.eq(org_id))
        .select((roles::id, roles::member_count))
        .load(conn)
}

/// How many members hold the role directly, as the database keeps it; 0 for a role the
/// organization does not have.
pub fn member_count(conn: &mut DbConnection, org_id: &str, id: &str) -> QueryResult<i64> {
    Ok(roles::table
        .filter(roles::org_id.eq(org_id))
        .filter(roles::id.eq(id))
        .select(roles::member_count)
        .first(conn)
        .optional()?
        .unwrap_or(0))
}

pub fn find(conn: &mut DbConnection, org_id: &str, id: &str) -> QueryResult<Option<Role>> {
    roles::table
        .filter(roles::org_id.eq(org_id))
        .filter(roles::id.eq(id))
        .select(Role::as_select())
        .first(conn)
        .optional()
}

pub fn find_by_key(conn: &mut DbConnection, org_id: &str, key: &str) -> QueryResult<Option<Role>> {
    roles::table
        .filter(roles::org_id.eq(org_id))
        .filter(roles::key.eq(key))
        .select(Role::as_select())
        .first(conn)
        .optional()
}

pub fn insert_custom(
    conn: &mut DbConnection,
    org_id: &str,
    name: &str,
    permissions: &str,
    rank: i64,
) -> QueryResult<String> {
    let id = new_id();
    let key = format!("custom-{id}");
    insert(
        conn,
        &NewRole {
            id: &id,
            org_id,
            key: &key,
            name,
            permissions,
            rank,
            builtin: false,
            created_at: now(),
        },
    )?;
    Ok(id)
}

pub fn update_custom(
    conn: &mut DbConnection,
    org_id: &str,
    id: &str,
    name: &str,
    permissions: &str,
    rank: i64,
) -> QueryResult<usize> {
    diesel::update(
        roles::table
            .filter(roles::org_id.eq(org_id))
            .filter(roles::id.eq(id))
            .filter(roles::builtin.eq(false)),
    )
    .set((
        roles::name.eq(name),
        roles::permissions.eq(permissions),
        roles::rank.eq(rank),
    ))
    .execute(conn)
}

pub fn delete_custom(conn: &mut DbConnection, org_id: &str, id: &str) -> QueryResult<usize> {
    diesel::delete(
        roles::table
            .filter(roles::org_id.eq(org_id))
            .filter(roles::id.eq(id))
            .filter(roles::builtin.eq(false)),
    )
    .execute(conn)
}

/// What still refers to a role and keeps it: memberships, groups, pool memberships,
/// pending invitations and API tokens that still work.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RoleUse {
    pub members: i64,
    pub groups: i64,
    pub pool_members: i64,
    pub invitations: i64,
    pub tokens: i64,
}

impl RoleUse {
    pub fn in_use(&self) -> bool {
        self.members + self.groups + self.pool_members + self.invitations + self.tokens > 0
    }
}

pub fn usage(
    conn: &mut DbConnection,
    org_id: &str,
    id: &str,
    now: chrono::NaiveDateTime,
) -> QueryResult<RoleUse> {
    use super::schema::{
        api_tokens, groups, invitation_pools, invitations, memberships, pool_members,
    };
    let members = memberships::table
        .filter(memberships::org_id.eq(org_id))
        .filter(memberships::role_id.eq(id))
        .count()
        .get_result(conn)?;
    let groups = groups::table
        .filter(groups::org_id.eq(org_id))
        .filter(groups::role_id.eq(id))
        .count()
        .get_result(conn)?;
    let pool_members = pool_members::table
        .filter(pool_members::org_id.eq(org_id))
        .filter(pool_members::role_id.eq(id))
        .count()
        .get_result(conn)?;
    let pending: i64 = invitations::table
        .filter(invitations::org_id.eq(org_id))
        .filter(invitations::role_id.eq(id))
        .filter(invitations::status.eq("pending"))
        .count()
        .get_result(conn)?;
    let pool_invites: i64 = invitation_pools::table
        .inner_join(invitations::table.on(invitations::id.eq(invitation_pools::invitation_id)))
        .filter(invitations::org_id.eq(org_id))
        .filter(invitations::status.eq("pending"))
        .filter(invitation_pools::role_id.eq(id))
        .count()
        .get_result(conn)?;
    let tokens = api_tokens::table
        .filter(api_tokens::org_id.eq(org_id))
        .filter(api_tokens::role_id.eq(id))
        .filter(api_tokens::revoked_at.is_null())
        .filter(
            api_tokens::expires_at
                .is_null()
                .or(api_tokens::expires_at.gt(now)),
        )
        .count()
        .get_result(conn)?;
    Ok(RoleUse {
        members,
        groups,
        pool_members,
        invitations: pending + pool_invites,
        tokens,
    })
}

/// The records that name a role no one can use any more: closed invitations (accepted or
/// cancelled; an invitation's pool grant falls back to its role) and API tokens revoked
/// or expired. They go with the role; the audit trail keeps their story. Answers how
/// many invitations and tokens went.
pub fn delete_dead_references(
    conn: &mut DbConnection,
    org_id: &str,
    id: &str,
    now: chrono::NaiveDateTime,
) -> QueryResult<(usize, usize)> {
    use super::schema::{api_tokens, invitation_pools, invitations};
    let closed = invitations::table
        .filter(invitations::org_id.eq(org_id))
        .filter(invitations::status.ne("pending"));
    diesel::update(
        invitation_pools::table
            .filter(invitation_pools::role_id.eq(id))
            .filter(invitation_pools::invitation_id.eq_any(closed.select(invitations::id))),
    )
    .set(invitation_pools::role_id.eq(None::<String>))
    .execute(conn)?;
    let invitations = diesel::delete(closed.filter(invitations::role_id.eq(id))).execute(conn)?;
    let tokens = diesel::delete(
        api_tokens::table
            .filter(api_tokens::org_id.eq(org_id))
            .filter(api_tokens::role_id.eq(id))
            .filter(
                api_tokens::revoked_at
                    .is_not_null()
                    .or(api_tokens::expires_at.le(now)),
            ),
    )
    .execute(conn)?;
    Ok((invitations, tokens))
}
