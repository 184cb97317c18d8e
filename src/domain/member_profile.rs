//! A member's profile page: who they are here, and one tab of what they belong to.

use diesel::QueryResult;

use super::members::{Actor, EditForm};
use super::{audit_catalogue, policy, timefmt, two_factor};
use crate::db::audit_events::{self, AuditRow};
use crate::db::memberships::{self, MemberRow};
use crate::db::pools::Pool;
use crate::db::roles::{self, Role};
use crate::db::{self, DbConnection, groups, pools, sessions};

/// Entries the Activity tab shows.
const ACTIVITY_SHOWN: i64 = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tab {
    Details,
    Groups,
    Pools,
    Activity,
}

impl Tab {
    pub fn name(self) -> &'static str {
        match self {
            Tab::Details => "details",
            Tab::Groups => "groups",
            Tab::Pools => "pools",
            Tab::Activity => "activity",
        }
    }
}

/// The member as the profile's header prints them.
pub struct ProfileView {
    pub email: String,
    pub name: String,
    pub status: String,
    pub active: bool,
    pub role_name: String,
    pub is_admin_role: bool,
    pub created: String,
    pub last_active: String,
    pub last_active_exact: String,
    pub auth_method: String,
    /// Signs in with a second factor.
    pub two_factor: bool,
    pub sessions: i64,
    pub is_self: bool,
}

pub struct ActivityView {
    pub when: String,
    pub when_exact: String,
    pub sentence: String,
    pub action: String,
    pub details: String,
}

/// Everything one tab of the profile shows.
pub struct Profile {
    pub member: ProfileView,
    pub member_id: String,
    pub tab: &'static str,
    /// The roles the viewer may give.
    pub roles: Vec<Role>,
    /// The account belongs to other organizations too: its name is not this one's to edit.
    pub name_locked: bool,
    /// The edit form as the member stands.
    pub form: EditForm,
    pub groups: Vec<groups::Group>,
    pub pools: Vec<(Pool, String)>,
    pub activity: Vec<ActivityView>,
}

/// The profile of `user_id` as `actor` sees it; `None` when they are no member here.
pub fn load(
    conn: &mut DbConnection,
    actor: &Actor,
    user_id: &str,
    tab: Tab,
) -> QueryResult<Option<Profile>> {
    let org_id = actor.org_id.as_str();
    let Some(row) = memberships::find(conn, org_id, user_id)? else {
        return Ok(None);
    };
    let other_orgs = memberships::all_orgs_of_user(conn, user_id)?.len() > 1;
    let roles = roles::list(conn, org_id)?;
    Ok(Some(Profile {
        member: profile_view(conn, actor, &row)?,
        member_id: row.user.id.clone(),
        tab: tab.name(),
        roles: policy::grantable(&actor.standing(), roles, |r| r.rank),
        name_locked: other_orgs && row.user.id != actor.user_id,
        form: EditForm {
            first_name: row.user.first_name,
            last_name: row.user.last_name,
            role_id: row.role.id,
            confirm_own_role: String::new(),
            access_until: super::access_until::field_value(row.membership.access_until),
        },
        groups: match tab {
            Tab::Groups => groups::of_member(conn, org_id, user_id)?,
            _ => Vec::new(),
        },
        pools: match tab {
            Tab::Pools => pools::of_member(conn, org_id, user_id)?,
            _ => Vec::new(),
        },
        activity: match tab {
            Tab::Activity => activity(conn, org_id, user_id)?,
            _ => Vec::new(),
        },
    }))
}

fn profile_view(
    conn: &mut DbConnection,
    actor: &Actor,
    row: &MemberRow,
) -> QueryResult<ProfileView> {
    let now = db::now();
    let last = row.membership.last_active();
    Ok(ProfileView {
        is_self: row.user.id == actor.user_id,
        name: row.user.display_name(),
        email: row.user.email.clone(),
        active: row.membership.is_active(),
        status: row.membership.status.clone(),
        is_admin_role: row.role.permission_set().is_admin(),
        role_name: row.role.name.clone(),
        created: timefmt::exact(row.membership.created_at),
        last_active: super::member_list::last_active(now, last),
        last_active_exact: last.map(timefmt::exact).unwrap_or_default(),
        auth_method: two_factor::auth_method_label(&row.user.auth_method).into(),
        two_factor: row.user.auth_method == two_factor::AUTH_METHOD_TOTP,
        sessions: sessions::count_for_user(conn, &row.user.id, now)?,
    })
}

fn activity(
    conn: &mut DbConnection,
    org_id: &str,
    user_id: &str,
) -> QueryResult<Vec<ActivityView>> {
    let rows = audit_events::page(
        conn,
        &audit_events::Scope::Org(org_id.to_string()),
        &audit_events::Filter {
            target_id: Some(user_id.to_string()),
            ..Default::default()
        },
        None,
        ACTIVITY_SHOWN,
    )?;
    let now = db::now();
    Ok(rows.into_iter().map(|e| activity_view(now, e)).collect())
}

fn activity_view(now: chrono::NaiveDateTime, e: AuditRow) -> ActivityView {
    ActivityView {
        when: timefmt::relative(now, e.created_at),
        when_exact: timefmt::exact(e.created_at),
        sentence: audit_catalogue::sentence(&e),
        details: audit_catalogue::details_pretty(&e.details).unwrap_or_default(),
        action: e.action,
    }
}
