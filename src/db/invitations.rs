//! Invitations and what an invitee gets on acceptance (groups, pools). Status `pending`
//! past `expires_at` is "expired": that is computed, never stored.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::DbConnection;
use super::roles::Role;
use super::schema::{
    groups, invitation_groups, invitation_pools, invitations, memberships, pools, roles, users,
};

pub const PENDING: &str = "pending";
pub const ACCEPTED: &str = "accepted";
pub const CANCELLED: &str = "cancelled";

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = invitations)]
pub struct Invitation {
    pub id: String,
    pub org_id: String,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub role_id: String,
    pub token_hash: String,
    pub status: String,
    pub invited_by: Option<String>,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    pub last_sent_at: NaiveDateTime,
    pub send_count: i64,
    pub accepted_at: Option<NaiveDateTime>,
    pub accepted_user_id: Option<String>,
    /// When the membership its acceptance creates ends, if it does.
    pub access_until: Option<NaiveDateTime>,
}

impl Invitation {
    /// What the Invited tab shows: pending, accepted, cancelled or expired.
    pub fn display_status(&self, now: NaiveDateTime) -> &'static str {
        match self.status.as_str() {
            PENDING if self.expires_at <= now => "expired",
            PENDING => "pending",
            ACCEPTED => "accepted",
            _ => "cancelled",
        }
    }
}

#[derive(Insertable)]
#[diesel(table_name = invitations)]
pub struct NewInvitation<'a> {
    pub id: &'a str,
    pub org_id: &'a str,
    pub email: &'a str,
    pub first_name: &'a str,
    pub last_name: &'a str,
    pub role_id: &'a str,
    pub token_hash: &'a str,
    pub status: &'a str,
    pub invited_by: Option<&'a str>,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    pub last_sent_at: NaiveDateTime,
    pub send_count: i64,
    pub access_until: Option<NaiveDateTime>,
}

pub fn insert(conn: &mut DbConnection, row: &NewInvitation) -> QueryResult<()> {
    diesel::insert_into(invitations::table)
        .values(row)
        .execute(conn)
        .map(|_| ())
}

pub fn find_in_org(
    conn: &mut DbConnection,
    org_id: &str,
    id: &str,
) -> QueryResult<Option<Invitation>> {
    invitations::table
        .filter(invitations::org_id.eq(org_id))
        .filter(invitations::id.eq(id))
        .select(Invitation::as_select())
        .first(conn)
        .optional()
}

pub fn find_by_token_hash(
    conn: &mut DbConnection,
    token_hash: &str,
) -> QueryResult<Option<Invitation>> {
    invitations::table
        .filter(invitations::token_hash.eq(token_hash))
        .select(Invitation::as_select())
        .first(conn)
        .optional()
}

/// The invitation and the account that has its address, read in one statement so both
/// come from the same moment: an acceptance committing in between cannot show the new
/// account next to a still-pending invitation.
pub fn find_with_account(
    conn: &mut DbConnection,
    token_hash: &str,
) -> QueryResult<Option<(Invitation, Option<super::users::User>)>> {
    invitations::table
        .left_join(users::table.on(users::email.eq(invitations::email)))
        .filter(invitations::token_hash.eq(token_hash))
        .select((
            Invitation::as_select(),
            Option::<super::users::User>::as_select(),
        ))
        .first(conn)
        .optional()
}

/// The pending (possibly expired) invitations of these addresses; at most one each.
pub fn pending_for_emails(
    conn: &mut DbConnection,
    org_id: &str,
    emails: &[&str],
) -> QueryResult<Vec<Invitation>> {
    let mut found = Vec::new();
    // Chunks keep the parameter count well under both backends' limits.
    for chunk in emails.chunks(200) {
        found.extend(
            invitations::table
                .filter(invitations::org_id.eq(org_id))
                .filter(invitations::status.eq(PENDING))
                .filter(invitations::email.eq_any(chunk))
                .select(Invitation::as_select())
                .load(conn)?,
        );
    }
    Ok(found)
}

macro_rules! sent_by_query {
    ($org_id:expr, $inviter_id:expr) => {
        invitations::table
            .filter(invitations::org_id.eq($org_id))
            .filter(invitations::invited_by.eq($inviter_id))
            .filter(invitations::status.eq(PENDING))
            .select(Invitation::as_select())
    };
}

/// The pending (possibly expired) invitations this member sent in the organization, as
/// its inviter (the last to send them), from `invitations_org_sender_idx`.
pub fn pending_sent_by(
    conn: &mut DbConnection,
    org_id: &str,
    inviter_id: &str,
) -> QueryResult<Vec<Invitation>> {
    sent_by_query!(org_id, inviter_id).load(conn)
}

/// The plan of [`pending_sent_by`]: tests check its index serves it.
pub fn explain_pending_sent_by(
    conn: &mut DbConnection,
    org_id: &str,
    inviter_id: &str,
) -> QueryResult<Vec<String>> {
    super::explain(conn, sent_by_query!(org_id, inviter_id))
}

/// Gives a pending invitation a new token and expiry, killing the old link, unless it was
/// sent after `sent_before` (the resend rate limit). One conditional UPDATE, so of two
/// racing resends only one counts.
/// Gives the invitation a new token and expiry; whoever renews it becomes its inviter,
/// so acceptance checks their rank, not the first inviter's.
pub fn renew_token(
    conn: &mut DbConnection,
    id: &str,
    token_hash: &str,
    renewed_by: &str,
    now: NaiveDateTime,
    expires_at: NaiveDateTime,
    sent_before: NaiveDateTime,
) -> QueryResult<bool> {
    let n = diesel::update(
        invitations::table
            .filter(invitations::id.eq(id))
            .filter(invitations::status.eq(PENDING))
            .filter(invitations::last_sent_at.le(sent_before)),
    )
    .set((
        invitations::token_hash.eq(token_hash),
        invitations::invited_by.eq(renewed_by),
        invitations::expires_at.eq(expires_at),
        invitations::last_sent_at.eq(now),
        invitations::send_count.eq(invitations::send_count + 1),
    ))
    .execute(conn)?;
    Ok(n == 1)
}

/// Of these inviters, the ones with a membership here, each with whether it may act:
/// active, its access not ended by `now`, its account not disabled.
pub fn inviters_here(
    conn: &mut DbConnection,
    org_id: &str,
    inviter_ids: &[&str],
    now: NaiveDateTime,
) -> QueryResult<Vec<(String, bool)>> {
    let found: Vec<(super::memberships::Membership, super::users::User)> = memberships::table
        .inner_join(users::table)
        .filter(memberships::org_id.eq(org_id))
        .filter(memberships::user_id.eq_any(inviter_ids))
        .select((
            super::memberships::Membership::as_select(),
            super::users::User::as_select(),
        ))
        .load(conn)?;
    Ok(found
        .into_iter()
        .map(|(member, user)| {
            let acts = member.is_active() && !member.access_ended_by(now) && user.is_active();
            (member.user_id, acts)
        })
        .collect())
}

/// The name the accept form offers the invitee.
pub fn set_names(conn: &mut DbConnection, id: &str, first: &str, last: &str) -> QueryResult<()> {
    diesel::update(invitations::table.find(id))
        .set((
            invitations::first_name.eq(first),
            invitations::last_name.eq(last),
        ))
        .execute(conn)
        .map(|_| ())
}

pub fn cancel(conn: &mut DbConnection, id: &str) -> QueryResult<bool> {
    let n = diesel::update(
        invitations::table
            .filter(invitations::id.eq(id))
            .filter(invitations::status.eq(PENDING)),
    )
    .set(invitations::status.eq(CANCELLED))
    .execute(conn)?;
    Ok(n == 1)
}

/// Consumes a live token with one conditional UPDATE: of any number of requests racing
/// with the same token, exactly one sees `true`.
pub fn consume(conn: &mut DbConnection, token_hash: &str, now: NaiveDateTime) -> QueryResult<bool> {
    let n = diesel::update(
        invitations::table
            .filter(invitations::token_hash.eq(token_hash))
            .filter(invitations::status.eq(PENDING))
            .filter(invitations::expires_at.gt(now)),
    )
    .set((
        invitations::status.eq(ACCEPTED),
        invitations::accepted_at.eq(Some(now)),
    ))
    .execute(conn)?;
    Ok(n == 1)
}

macro_rules! accepted_query {
    ($org_id:expr, $user_id:expr, $limit:expr) => {
        invitations::table
            .filter(invitations::org_id.eq($org_id))
            .filter(invitations::accepted_user_id.eq($user_id))
            .order((invitations::created_at.desc(), invitations::id.desc()))
            .select(invitations::id)
            .limit($limit)
    };
}

/// The newest invitations of the organization this account accepted (at most `limit`):
/// those its Activity tab tells of, read in order from `invitations_accepted_user_idx`.
pub fn accepted_by(
    conn: &mut DbConnection,
    org_id: &str,
    user_id: &str,
    limit: i64,
) -> QueryResult<Vec<String>> {
    accepted_query!(org_id, user_id, limit).load(conn)
}

/// The plan of [`accepted_by`]: tests check its index serves it, in order.
pub fn explain_accepted_by(
    conn: &mut DbConnection,
    org_id: &str,
    user_id: &str,
) -> QueryResult<Vec<String>> {
    super::explain(conn, accepted_query!(org_id, user_id, 5))
}

/// Set after [`consume`], once the accepting account exists.
pub fn set_accepted_user(conn: &mut DbConnection, id: &str, user_id: &str) -> QueryResult<()> {
    diesel::update(invitations::table.find(id))
        .set(invitations::accepted_user_id.eq(Some(user_id)))
        .execute(conn)
        .map(|_| ())
}

/// Which invitations a page of the Invited tab shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusFilter {
    /// Pending and expired: what still needs attention (the default).
    Open,
    Pending,
    Expired,
    Accepted,
    Cancelled,
    All,
}

/// One row of the Invited tab.
#[derive(Debug, Clone)]
pub struct ListRow {
    pub invitation: Invitation,
    pub role: Role,
    pub inviter_email: Option<String>,
    pub inviter_first_name: Option<String>,
    pub inviter_last_name: Option<String>,
}

/// Where a page of the Invited tab starts: after this creation time and id.
pub type ListKey = (NaiveDateTime, String);

/// The inviter's email, first and last name; absent once the inviter's account is gone.
type InviterColumns = (Option<String>, Option<String>, Option<String>);

/// What a page of the Invited tab asks for.
#[derive(Debug, Clone)]
pub struct ListWhere<'a> {
    pub org_id: &'a str,
    pub filter: StatusFilter,
    /// Only addresses starting with this (lower-case, as addresses are stored).
    pub email_prefix: Option<&'a str>,
    /// The moment that tells pending from expired.
    pub now: NaiveDateTime,
}

/// Newest first, `limit` rows after the keyset `after` (created_at, id).
pub fn list(
    conn: &mut DbConnection,
    at: &ListWhere,
    after: Option<ListKey>,
    limit: i64,
) -> QueryResult<Vec<ListRow>> {
    match run_list(conn, at, after, limit, false)? {
        ListOutput::Rows(rows) => Ok(rows),
        ListOutput::Plan(_) => unreachable!("asked for rows"),
    }
}

/// The database's plan for a page of [`list`]: tests check an index serves it in order.
pub fn explain_list(
    conn: &mut DbConnection,
    at: &ListWhere,
    after: Option<ListKey>,
) -> QueryResult<Vec<String>> {
    match run_list(conn, at, after, 51, true)? {
        ListOutput::Plan(lines) => Ok(lines),
        ListOutput::Rows(_) => unreachable!("asked for a plan"),
    }
}

enum ListOutput {
    Rows(Vec<ListRow>),
    Plan(Vec<String>),
}

/// The address column as prefix searches compare it: byte-wise on both backends, as the
/// `(org_id, email)` index orders it (PostgreSQL's default collation would not keep a
/// prefix's strings together, hence `COLLATE "C"` there, matching its index).
fn email_column(backend: super::Backend) -> &'static str {
    match backend {
        super::Backend::Sqlite => "invitations.email",
        super::Backend::Postgres => "invitations.email COLLATE \"C\"",
    }
}

/// Builds the page query once, for loading or for explaining.
fn run_list(
    conn: &mut DbConnection,
    at: &ListWhere,
    after: Option<ListKey>,
    limit: i64,
    explain: bool,
) -> QueryResult<ListOutput> {
    let (org_id, filter, now) = (at.org_id, at.filter, at.now);
    let backend = super::backend(conn);
    let mut query = invitations::table
        .inner_join(roles::table)
        .left_join(users::table.on(invitations::invited_by.eq(users::id.nullable())))
        .filter(invitations::org_id.eq(org_id))
        .select((
            Invitation::as_select(),
            Role::as_select(),
            (
                users::email.nullable(),
                users::first_name.nullable(),
                users::last_name.nullable(),
            ),
        ))
        .order((invitations::created_at.desc(), invitations::id.desc()))
        .limit(limit)
        .into_boxed();
    query = match filter {
        StatusFilter::Open => query.filter(invitations::status.eq(PENDING)),
        StatusFilter::Pending => query
            .filter(invitations::status.eq(PENDING))
            .filter(invitations::expires_at.gt(now)),
        StatusFilter::Expired => query
            .filter(invitations::status.eq(PENDING))
            .filter(invitations::expires_at.le(now)),
        StatusFilter::Accepted => query.filter(invitations::status.eq(ACCEPTED)),
        StatusFilter::Cancelled => query.filter(invitations::status.eq(CANCELLED)),
        StatusFilter::All => query,
    };
    if let Some(prefix) = at.email_prefix.filter(|p| !p.is_empty()) {
        // `[prefix, prefix + U+10FFFF)`: a range the index serves, unlike LIKE on PostgreSQL.
        use diesel::dsl::sql;
        use diesel::sql_types::{Bool, Text};
        let column = email_column(backend);
        query = query.filter(
            sql::<Bool>(&format!("({column} >= "))
                .bind::<Text, _>(prefix.to_string())
                .sql(&format!(" AND {column} < "))
                .bind::<Text, _>(format!("{prefix}\u{10FFFF}"))
                .sql(")"),
        );
    }
    if let Some((created_at, id)) = after {
        // `created_at <= t` bounds the index range; the OR only sorts out ties at t.
        query = query.filter(invitations::created_at.le(created_at)).filter(
            invitations::created_at
                .lt(created_at)
                .or(invitations::id.lt(id)),
        );
    }
    if explain {
        return super::explain(conn, query).map(ListOutput::Plan);
    }
    let rows: Vec<(Invitation, Role, InviterColumns)> = query.load(conn)?;
    Ok(ListOutput::Rows(
        rows.into_iter()
            .map(|(invitation, role, (email, first, last))| ListRow {
                invitation,
                role,
                inviter_email: email,
                inviter_first_name: first,
                inviter_last_name: last,
            })
            .collect(),
    ))
}

/// Not a function returning a boxed query: unboxed, the statement has a fixed type, and
/// on the backend's own connection diesel keeps it prepared by that type.
macro_rules! pending_query {
    ($org_id:expr, $cap:expr) => {
        invitations::table
            .filter(invitations::org_id.eq($org_id))
            .filter(invitations::status.eq(PENDING))
            .select(invitations::id)
            .limit($cap)
    };
}

/// Pending invitations of the organization (expired ones too: both wait for someone to
/// act, as the tab's default view shows them), counted up to `cap` (the tab's badge says
/// "99+" beyond): a range of the `(org_id, status, ...)` index, never the rows.
pub fn pending_count(conn: &mut DbConnection, org_id: &str, cap: i64) -> QueryResult<i64> {
    let ids: Vec<String> = super::on_backend!(conn, |c| pending_query!(org_id, cap).load(c))?;
    Ok(ids.len() as i64)
}

/// The plan of [`pending_count`]: tests check its index serves it.
pub fn explain_pending_count(conn: &mut DbConnection, org_id: &str) -> QueryResult<Vec<String>> {
    super::explain(conn, pending_query!(org_id, 100))
}

pub fn add_group(conn: &mut DbConnection, invitation_id: &str, group_id: &str) -> QueryResult<()> {
    diesel::insert_into(invitation_groups::table)
        .values((
            invitation_groups::invitation_id.eq(invitation_id),
            invitation_groups::group_id.eq(group_id),
        ))
        .execute(conn)
        .map(|_| ())
}

pub fn add_pool(
    conn: &mut DbConnection,
    invitation_id: &str,
    pool_id: &str,
    role_id: &str,
) -> QueryResult<()> {
    diesel::insert_into(invitation_pools::table)
        .values((
            invitation_pools::invitation_id.eq(invitation_id),
            invitation_pools::pool_id.eq(pool_id),
            invitation_pools::role_id.eq(Some(role_id)),
        ))
        .execute(conn)
        .map(|_| ())
}

pub fn group_ids(conn: &mut DbConnection, invitation_id: &str) -> QueryResult<Vec<String>> {
    invitation_groups::table
        .filter(invitation_groups::invitation_id.eq(invitation_id))
        .select(invitation_groups::group_id)
        .load(conn)
}

/// (pool id, pool role) pairs; a missing role means the invitation's own role.
pub fn pool_grants(
    conn: &mut DbConnection,
    invitation_id: &str,
) -> QueryResult<Vec<(String, Option<String>)>> {
    invitation_pools::table
        .filter(invitation_pools::invitation_id.eq(invitation_id))
        .select((invitation_pools::pool_id, invitation_pools::role_id))
        .load(conn)
}

/// A group or pool as the invite form offers it. Groups and pools have their own module
/// later; these reads are all invitations need.
#[derive(Debug, Clone)]
pub struct Choice {
    pub id: String,
    pub name: String,
    /// For groups: the role the group grants (its rank and permissions), which limits
    /// who may add members.
    pub role_rank: Option<i64>,
    pub role_permissions: Option<String>,
}

pub fn org_groups(conn: &mut DbConnection, org_id: &str) -> QueryResult<Vec<Choice>> {
    let rows: Vec<(String, String, Option<i64>, Option<String>)> = groups::table
        .left_join(roles::table)
        .filter(groups::org_id.eq(org_id))
        .order(groups::name.asc())
        .select((
            groups::id,
            groups::name,
            roles::rank.nullable(),
            roles::permissions.nullable(),
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(id, name, role_rank, role_permissions)| Choice {
            id,
            name,
            role_rank,
            role_permissions,
        })
        .collect())
}

pub fn org_pools(conn: &mut DbConnection, org_id: &str) -> QueryResult<Vec<Choice>> {
    let rows: Vec<(String, String)> = pools::table
        .filter(pools::org_id.eq(org_id))
        .order(pools::name.asc())
        .select((pools::id, pools::name))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(id, name)| Choice {
            id,
            name,
            role_rank: None,
            role_permissions: None,
        })
        .collect())
}

/// Which of these addresses already belong to members (active or not) of the org.
pub fn member_emails(
    conn: &mut DbConnection,
    org_id: &str,
    emails: &[&str],
) -> QueryResult<Vec<String>> {
    let mut found = Vec::new();
    for chunk in emails.chunks(200) {
        found.extend(
            memberships::table
                .filter(memberships::org_id.eq(org_id))
                .filter(memberships::email.eq_any(chunk))
                .select(memberships::email)
                .load::<String>(conn)?,
        );
    }
    Ok(found)
}

pub fn is_member(conn: &mut DbConnection, org_id: &str, user_id: &str) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        memberships::table
            .filter(memberships::org_id.eq(org_id))
            .filter(memberships::user_id.eq(user_id)),
    ))
    .get_result(conn)
}

/// The role of an active member and when their access ends, to re-check at acceptance
/// what an inviter may grant.
pub fn active_member_role(
    conn: &mut DbConnection,
    org_id: &str,
    user_id: &str,
) -> QueryResult<Option<(Role, Option<NaiveDateTime>, NaiveDateTime)>> {
    memberships::table
        .inner_join(roles::table)
        .inner_join(users::table)
        .filter(memberships::org_id.eq(org_id))
        .filter(memberships::user_id.eq(user_id))
        .filter(memberships::status.eq("active"))
        .filter(users::status.eq("active"))
        .select((
            Role::as_select(),
            memberships::access_until,
            memberships::created_at,
        ))
        .first(conn)
        .optional()
}
