use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::organizations::Organization;
use super::roles::Role;
use super::schema::{group_members, groups, memberships, organizations, roles};
use super::{DbConnection, never, now};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = memberships)]
pub struct Membership {
    pub org_id: String,
    pub user_id: String,
    pub role_id: String,
    pub status: String,
    pub email: String,
    pub sort_name: String,
    pub created_at: NaiveDateTime,
    pub last_active_at: NaiveDateTime,
}

impl Membership {
    pub fn is_active(&self) -> bool {
        self.status == "active"
    }

    pub fn last_active(&self) -> Option<NaiveDateTime> {
        (self.last_active_at != never()).then_some(self.last_active_at)
    }
}

#[derive(Insertable)]
#[diesel(table_name = memberships)]
pub struct NewMembership<'a> {
    pub org_id: &'a str,
    pub user_id: &'a str,
    pub role_id: &'a str,
    pub status: &'a str,
    pub email: &'a str,
    pub sort_name: &'a str,
    pub created_at: NaiveDateTime,
    pub last_active_at: NaiveDateTime,
}

/// Adds an active member; `email` and the name are copied so the Users tab can sort by
/// them with an index that starts with the organization.
pub fn insert(
    conn: &mut DbConnection,
    org_id: &str,
    user: &super::users::User,
    role_id: &str,
) -> QueryResult<()> {
    let sort_name = crate::domain::names::sort_key(&user.first_name, &user.last_name);
    diesel::insert_into(memberships::table)
        .values(NewMembership {
            org_id,
            user_id: &user.id,
            role_id,
            status: "active",
            email: &user.email,
            sort_name: &sort_name,
            created_at: now(),
            last_active_at: never(),
        })
        .execute(conn)
        .map(|_| ())
}

/// The caller's active membership in the organization named by `slug`, with its role.
/// Answers `None` alike for an unknown organization and for one the user is not in.
pub fn find_active_by_slug(
    conn: &mut DbConnection,
    slug: &str,
    user_id: &str,
) -> QueryResult<Option<(Organization, Membership, Role)>> {
    organizations::table
        .inner_join(memberships::table.inner_join(roles::table))
        .filter(organizations::slug.eq(slug))
        .filter(memberships::user_id.eq(user_id))
        .filter(memberships::status.eq("active"))
        .select((
            Organization::as_select(),
            Membership::as_select(),
            Role::as_select(),
        ))
        .first(conn)
        .optional()
}

/// The organizations the user is an active member of, for the switcher.
pub fn orgs_of_user(conn: &mut DbConnection, user_id: &str) -> QueryResult<Vec<Organization>> {
    organizations::table
        .inner_join(memberships::table)
        .filter(memberships::user_id.eq(user_id))
        .filter(memberships::status.eq("active"))
        .order(organizations::name.asc())
        .select(Organization::as_select())
        .load(conn)
}

/// Permission lists of the roles the member's groups grant in this organization.
pub fn group_role_permissions(
    conn: &mut DbConnection,
    org_id: &str,
    user_id: &str,
) -> QueryResult<Vec<String>> {
    group_members::table
        .inner_join(groups::table.inner_join(roles::table))
        .filter(group_members::org_id.eq(org_id))
        .filter(group_members::user_id.eq(user_id))
        .select(roles::permissions)
        .load(conn)
}

/// Bumps the member's last-active time, at most once a minute so reads stay reads.
pub fn touch(conn: &mut DbConnection, org_id: &str, user_id: &str) -> QueryResult<()> {
    let now = now();
    diesel::update(
        memberships::table
            .filter(memberships::org_id.eq(org_id))
            .filter(memberships::user_id.eq(user_id))
            .filter(memberships::last_active_at.lt(now - chrono::Duration::seconds(60))),
    )
    .set(memberships::last_active_at.eq(now))
    .execute(conn)
    .map(|_| ())
}

/// One row of the Users tab.
#[derive(Debug, Clone)]
pub struct MemberRow {
    pub membership: Membership,
    pub user: super::users::User,
    pub role: Role,
}

pub fn first_page(
    conn: &mut DbConnection,
    org_id: &str,
    limit: i64,
) -> QueryResult<Vec<MemberRow>> {
    use super::schema::users;
    let rows: Vec<(Membership, super::users::User, Role)> = memberships::table
        .inner_join(users::table)
        .inner_join(roles::table)
        .filter(memberships::org_id.eq(org_id))
        .order(memberships::email.asc())
        .limit(limit)
        .select((
            Membership::as_select(),
            super::users::User::as_select(),
            Role::as_select(),
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(membership, user, role)| MemberRow {
            membership,
            user,
            role,
        })
        .collect())
}
