//! What the SCIM server reads and writes beyond the portal's own tables: the identity
//! provider's ids (`external_id`) and SCIM's last-modified times, and members and groups
//! listed in a stable order (by creation, then id).

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::DbConnection;
use super::groups::Group;
use super::memberships::{MemberRow, Membership};
use super::roles::Role;
use super::schema::{group_members, groups, memberships, roles, users};
use super::users::User;

/// The SCIM-only fields of a membership.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScimFields {
    pub external_id: Option<String>,
    /// The IdP's userName when it is not the account's email.
    pub user_name: Option<String>,
    /// The attributes the IdP owns, as it last sent them (JSON).
    pub profile: Option<String>,
    pub updated_at: Option<NaiveDateTime>,
}

/// The organization's members with their accounts and roles, to filter further.
macro_rules! member_query {
    ($org_id:expr) => {
        memberships::table
            .inner_join(users::table)
            .inner_join(roles::table)
            .filter(memberships::org_id.eq($org_id))
            .select((
                Membership::as_select(),
                User::as_select(),
                Role::as_select(),
            ))
    };
}

fn rows(found: Vec<(Membership, User, Role)>) -> Vec<MemberRow> {
    found
        .into_iter()
        .map(|(membership, user, role)| MemberRow {
            membership,
            user,
            role,
        })
        .collect()
}

/// The organization's member whose account has this (lower-cased) email.
pub fn member_by_email(
    conn: &mut DbConnection,
    org_id: &str,
    email: &str,
) -> QueryResult<Option<MemberRow>> {
    let found = member_query!(org_id)
        .filter(users::email.eq(email))
        .load(conn)?;
    Ok(rows(found).pop())
}

/// The place in SCIM's stable order (creation time, user id) of the organization's
/// member at `offset`. Read from the index `(org_id, created_at, user_id)` alone: skipping
/// a member is an index step, not a joined row built and thrown away (at a million
/// members, 0.17 s to reach 900,000 against 1.2–1.8 s).
pub fn place_at(
    conn: &mut DbConnection,
    org_id: &str,
    offset: i64,
) -> QueryResult<Option<(NaiveDateTime, String)>> {
    memberships::table
        .filter(memberships::org_id.eq(org_id))
        .order((memberships::created_at.asc(), memberships::user_id.asc()))
        .select((memberships::created_at, memberships::user_id))
        .offset(offset)
        .limit(1)
        .first(conn)
        .optional()
}

/// Members of the organization in SCIM's stable order after the member at `after`
/// (their membership's creation time and user id), at most `limit`; with `status`, only
/// memberships of that status. A filter's scan reads the organization with it: a range
/// of `(org_id, [status,] created_at, user_id)` each time, where an OFFSET would read
/// every row before it again.
pub fn members_after(
    conn: &mut DbConnection,
    org_id: &str,
    status: Option<&str>,
    after: Option<(NaiveDateTime, String)>,
    limit: i64,
) -> QueryResult<Vec<MemberRow>> {
    let mut query = member_query!(org_id).into_boxed();
    if let Some(status) = status {
        query = query.filter(memberships::status.eq(status.to_string()));
    }
    if let Some((created_at, user_id)) = after {
        query = query.filter(memberships::created_at.ge(created_at)).filter(
            memberships::created_at
                .gt(created_at)
                .or(memberships::user_id.gt(user_id)),
        );
    }
    let found = query
        .order((memberships::created_at.asc(), memberships::user_id.asc()))
        .limit(limit)
        .load(conn)?;
    Ok(rows(found))
}

/// SCIM fields of these members, by user id.
pub fn fields_of(
    conn: &mut DbConnection,
    org_id: &str,
    user_ids: &[String],
) -> QueryResult<Vec<(String, ScimFields)>> {
    type Found = (
        String,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<NaiveDateTime>,
    );
    let found: Vec<Found> = memberships::table
        .filter(memberships::org_id.eq(org_id))
        .filter(memberships::user_id.eq_any(user_ids))
        .select((
            memberships::user_id,
            memberships::external_id,
            memberships::user_name,
            memberships::scim_profile,
            memberships::updated_at,
        ))
        .load(conn)?;
    Ok(found
        .into_iter()
        .map(|(id, external_id, user_name, profile, updated_at)| {
            (
                id,
                ScimFields {
                    external_id,
                    user_name,
                    profile,
                    updated_at,
                },
            )
        })
        .collect())
}

/// Sets the membership's external id and userName and marks it modified now.
pub fn set_fields(
    conn: &mut DbConnection,
    org_id: &str,
    user_id: &str,
    fields: &ScimFields,
) -> QueryResult<usize> {
    diesel::update(
        memberships::table
            .filter(memberships::org_id.eq(org_id))
            .filter(memberships::user_id.eq(user_id)),
    )
    .set((
        memberships::external_id.eq(fields.external_id.as_deref()),
        memberships::user_name.eq(fields.user_name.as_deref()),
        memberships::scim_profile.eq(fields.profile.as_deref()),
        memberships::updated_at.eq(fields.updated_at),
    ))
    .execute(conn)
}

/// The member whose SCIM userName is stored as `$name`.
macro_rules! by_stored_user_name {
    ($org_id:expr, $name:expr) => {
        member_query!($org_id)
            .filter(super::lower(memberships::user_name).eq(super::lower(Some($name.to_string()))))
    };
}

/// The member without a stored userName whose address is `$email`.
macro_rules! by_email_as_user_name {
    ($org_id:expr, $email:expr) => {
        member_query!($org_id)
            .filter(memberships::email.eq($email))
            .filter(memberships::user_name.is_null())
    };
}

macro_rules! by_external_id {
    ($org_id:expr, $external_id:expr) => {
        member_query!($org_id).filter(memberships::external_id.eq($external_id))
    };
}

/// The member whose SCIM userName is `user_name`: a stored one, or else the email. Two
/// lookups, each a range of an index on the organization (`(org_id, user_name)`, then
/// `(org_id, email, ...)`): written as one `OR` across the join, it read the whole
/// organization.
pub fn member_by_user_name(
    conn: &mut DbConnection,
    org_id: &str,
    user_name: &str,
) -> QueryResult<Option<MemberRow>> {
    // Before userNames matched in any case, "Ada" and "ADA" could be two members: the one
    // spelt as asked is the one meant, never whichever the database returned last.
    let exact = by_stored_user_name!(org_id, user_name)
        .filter(memberships::user_name.eq(user_name))
        .load(conn)?;
    if let Some(row) = rows(exact).pop() {
        return Ok(Some(row));
    }
    let stored = by_stored_user_name!(org_id, user_name).load(conn)?;
    if let Some(row) = rows(stored).pop() {
        return Ok(Some(row));
    }
    let email = user_name.trim().to_lowercase();
    let by_email = by_email_as_user_name!(org_id, email).load(conn)?;
    Ok(rows(by_email).pop())
}

/// The members whose SCIM externalId is `external_id` (Entra's lookup).
pub fn members_by_external_id(
    conn: &mut DbConnection,
    org_id: &str,
    external_id: &str,
) -> QueryResult<Vec<MemberRow>> {
    let found = by_external_id!(org_id, external_id).load(conn)?;
    Ok(rows(found))
}

/// The plans of the three lookups above, the same statements: tests check each reads a
/// range of an index on the organization, not the organization.
pub fn explain_member_lookups(
    conn: &mut DbConnection,
    org_id: &str,
) -> QueryResult<Vec<Vec<String>>> {
    Ok(vec![
        super::explain(conn, by_stored_user_name!(org_id, "ada"))?,
        super::explain(conn, by_email_as_user_name!(org_id, "ada@example.com"))?,
        super::explain(conn, by_external_id!(org_id, "00u1"))?,
    ])
}

/// Changes the account's email (its sign-in name), in every copy the lists sort by.
pub fn set_email(conn: &mut DbConnection, user_id: &str, email: &str) -> QueryResult<()> {
    diesel::update(users::table.filter(users::id.eq(user_id)))
        .set(users::email.eq(email))
        .execute(conn)?;
    diesel::update(memberships::table.filter(memberships::user_id.eq(user_id)))
        .set((
            memberships::email.eq(email),
            memberships::updated_at.eq(Some(super::now())),
        ))
        .execute(conn)?;
    Ok(())
}

/// (group id, group name) of each group the member is in.
pub fn groups_of(
    conn: &mut DbConnection,
    org_id: &str,
    user_ids: &[String],
) -> QueryResult<Vec<(String, String, String)>> {
    group_members::table
        .inner_join(groups::table)
        .filter(group_members::org_id.eq(org_id))
        .filter(group_members::user_id.eq_any(user_ids))
        .order((groups::name.asc(), groups::id.asc()))
        .select((group_members::user_id, groups::id, groups::name))
        .load(conn)
}

/// The organization's groups in a stable order, with their external ids.
pub fn groups(
    conn: &mut DbConnection,
    org_id: &str,
    name: Option<&str>,
    offset: i64,
    limit: i64,
) -> QueryResult<Vec<(Group, Option<String>)>> {
    let mut query = groups::table.filter(groups::org_id.eq(org_id)).into_boxed();
    if let Some(name) = name {
        // displayName is not case-exact (RFC 7643), as group names are unique in any case.
        query = query
            .filter(super::lower(groups::name.nullable()).eq(super::lower(Some(name.to_string()))));
    }
    query
        .order((groups::created_at.asc(), groups::id.asc()))
        .offset(offset)
        .limit(limit)
        .select((Group::as_select(), groups::external_id))
        .load(conn)
}

pub fn group(
    conn: &mut DbConnection,
    org_id: &str,
    id: &str,
) -> QueryResult<Option<(Group, Option<String>)>> {
    groups::table
        .filter(groups::org_id.eq(org_id))
        .filter(groups::id.eq(id))
        .select((Group::as_select(), groups::external_id))
        .first(conn)
        .optional()
}

pub fn set_group_external_id(
    conn: &mut DbConnection,
    org_id: &str,
    id: &str,
    external_id: Option<&str>,
) -> QueryResult<usize> {
    diesel::update(
        groups::table
            .filter(groups::org_id.eq(org_id))
            .filter(groups::id.eq(id)),
    )
    .set(groups::external_id.eq(external_id))
    .execute(conn)
}

/// The user ids of the group's members, in its primary key's order: no join and no sort,
/// so a group of a million costs its index entries alone.
pub fn group_member_ids(
    conn: &mut DbConnection,
    org_id: &str,
    group_id: &str,
) -> QueryResult<Vec<String>> {
    group_members::table
        .filter(group_members::group_id.eq(group_id))
        .filter(group_members::org_id.eq(org_id))
        .order(group_members::user_id.asc())
        .select(group_members::user_id)
        .load(conn)
}

/// Which of `user_ids` are members of the group, from its primary key.
pub fn group_members_among(
    conn: &mut DbConnection,
    org_id: &str,
    group_id: &str,
    user_ids: &[&str],
) -> QueryResult<Vec<String>> {
    group_members::table
        .filter(group_members::group_id.eq(group_id))
        .filter(group_members::org_id.eq(org_id))
        .filter(group_members::user_id.eq_any(user_ids))
        .select(group_members::user_id)
        .load(conn)
}

/// Whether the group has more than `limit` members, reading at most one more than that.
pub fn group_has_more_members_than(
    conn: &mut DbConnection,
    org_id: &str,
    group_id: &str,
    limit: i64,
) -> QueryResult<bool> {
    let first: Vec<String> = group_members::table
        .filter(group_members::group_id.eq(group_id))
        .filter(group_members::org_id.eq(org_id))
        .select(group_members::user_id)
        .order(group_members::user_id.asc())
        .offset(limit)
        .limit(1)
        .load(conn)?;
    Ok(!first.is_empty())
}

pub fn count_groups(conn: &mut DbConnection, org_id: &str) -> QueryResult<i64> {
    groups::table
        .filter(groups::org_id.eq(org_id))
        .count()
        .get_result(conn)
}
