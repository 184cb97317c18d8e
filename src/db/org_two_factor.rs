//! `org_two_factor_policies`: one row per organization that has ever set a two-factor
//! requirement, and the count of its members who are not yet enrolled.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::DbConnection;
use super::schema::{group_members, memberships, org_two_factor_policies, totp_credentials, users};

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = org_two_factor_policies)]
pub struct PolicyRow {
    pub org_id: String,
    pub required: String,
    pub grace_days: i64,
    pub effective_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

pub fn find(conn: &mut DbConnection, org_id: &str) -> QueryResult<Option<PolicyRow>> {
    org_two_factor_policies::table
        .find(org_id)
        .select(PolicyRow::as_select())
        .first(conn)
        .optional()
}

/// Writes the organization's policy: an UPDATE, or an INSERT when it has none yet (an
/// upsert does not compile on the multi-backend connection). Call inside a transaction
/// that has locked the organization row, so two admins cannot both insert.
pub fn save(conn: &mut DbConnection, row: &PolicyRow) -> QueryResult<()> {
    let updated = diesel::update(org_two_factor_policies::table.find(&row.org_id))
        .set((
            org_two_factor_policies::required.eq(&row.required),
            org_two_factor_policies::grace_days.eq(row.grace_days),
            org_two_factor_policies::effective_at.eq(row.effective_at),
            org_two_factor_policies::updated_at.eq(row.updated_at),
        ))
        .execute(conn)?;
    if updated == 0 {
        diesel::insert_into(org_two_factor_policies::table)
            .values(row)
            .execute(conn)?;
    }
    Ok(())
}

/// Active members (with an active account) who have no second factor. With
/// `admins_only`, only those whose role is one of its role ids or who belong to one of
/// its groups (the roles and groups that grant `org.manage`).
pub fn count_unenrolled(
    conn: &mut DbConnection,
    org_id: &str,
    admins_only: Option<(&[String], &[String])>,
) -> QueryResult<i64> {
    let mut query = memberships::table
        .filter(memberships::org_id.eq(org_id))
        .filter(memberships::status.eq("active"))
        .filter(
            memberships::user_id.eq_any(
                users::table
                    .filter(users::status.eq("active"))
                    .select(users::id),
            ),
        )
        .filter(diesel::dsl::not(memberships::user_id.eq_any(
            totp_credentials::table.select(totp_credentials::user_id),
        )))
        .into_boxed();
    if let Some((role_ids, group_ids)) = admins_only {
        query = query.filter(
            memberships::role_id
                .eq_any(role_ids.to_vec())
                .or(memberships::user_id.eq_any(
                    group_members::table
                        .filter(group_members::org_id.eq(org_id))
                        .filter(group_members::group_id.eq_any(group_ids.to_vec()))
                        .select(group_members::user_id),
                )),
        );
    }
    query.count().get_result(conn)
}
