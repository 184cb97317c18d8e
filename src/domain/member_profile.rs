//! A member's profile page: who they are here, and one tab of what they belong to.

use std::collections::HashSet;

use diesel::QueryResult;

use super::members::{Actor, EditForm};
use super::roles::Permission;
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

/// Whether `actor` may read the Activity tab of `user_id`: it is a slice of the audit
/// trail, so it needs `audit.read`, as the trail does, except for one's own.
pub fn may_read_activity(actor: &Actor, user_id: &str) -> bool {
    actor.user_id == user_id || actor.standing().may(Permission::AuditRead)
}

impl Profile {
    pub fn may_manage_group(&self, group_id: &str) -> bool {
        self.manageable_groups.contains(group_id)
    }
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
    /// The viewer may open the Activity tab (see [`may_read_activity`]).
    pub can_read_activity: bool,
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
    /// How many browsers are signed in to the account, in any organization: for the
    /// member, and for those who manage members when the account is this organization's
    /// alone (deactivating ends its sessions); else a sign of presence elsewhere.
    pub sessions: Option<i64>,
    pub is_self: bool,
    /// The viewer may deactivate, activate or remove them: the page offers only what the
    /// rules would allow.
    pub can_act_on: bool,
    /// The viewer may make them an admin.
    pub can_make_admin: bool,
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
    /// Groups the member could join, for "Add to group" (for those who manage groups).
    pub joinable_groups: Vec<groups::Group>,
    /// Of the member's groups, those the viewer may take them out of.
    pub manageable_groups: HashSet<String>,
    pub pools: Vec<(Pool, String)>,
    /// Pools the actor manages, as (id, indented name), for "Add to pool".
    pub joinable_pools: Vec<(String, String)>,
    /// The pool roles the actor may give.
    pub pool_roles: Vec<Role>,
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
    let owned = super::members::org_owns_account(conn, &row.user)?;
    let roles = roles::list(conn, org_id)?;
    Ok(Some(Profile {
        member: profile_view(conn, actor, &row)?,
        member_id: row.user.id.clone(),
        tab: tab.name(),
        roles: policy::grantable(&actor.standing(), roles),
        name_locked: !owned && row.user.id != actor.user_id,
        form: EditForm {
            first_name: row.user.first_name,
            last_name: row.user.last_name,
            role_id: row.role.id,
            confirm_own_role: String::new(),
            access_until: super::access_until::field_value(row.membership.access_until),
        },
        joinable_groups: match tab {
            Tab::Groups if actor.standing().may(Permission::GroupsManage) => {
                let joined = groups::of_member(conn, org_id, user_id)?;
                let all = groups::list(conn, org_id)?;
                let reach = super::groups::manageable_ids(conn, actor, &all)?;
                all.into_iter()
                    .filter(|g| reach.contains(&g.id) && !joined.iter().any(|j| j.id == g.id))
                    .collect()
            }
            _ => Vec::new(),
        },
        manageable_groups: match tab {
            Tab::Groups => {
                let joined = groups::of_member(conn, org_id, user_id)?;
                super::groups::manageable_ids(conn, actor, &joined)?
            }
            _ => HashSet::new(),
        },
        groups: match tab {
            Tab::Groups => groups::of_member(conn, org_id, user_id)?,
            _ => Vec::new(),
        },
        pools: match tab {
            Tab::Pools => {
                let mut theirs = pools::of_member(conn, org_id, user_id)?;
                if let Some(readable) = super::pools::readable_by(conn, actor)? {
                    theirs.retain(|(pool, _)| readable.contains(&pool.id));
                }
                theirs
            }
            _ => Vec::new(),
        },
        joinable_pools: match tab {
            Tab::Pools => match super::pools::load_list(conn, actor) {
                Ok(list) => {
                    // Not the pools they are in already: adding them there is refused.
                    let theirs = pools::of_member(conn, org_id, user_id)?;
                    let mut joinable = list.parents;
                    joinable.retain(|(id, _)| !theirs.iter().any(|(p, _)| &p.id == id));
                    joinable
                }
                Err(super::RuleError::Db(e)) => return Err(e),
                Err(_) => Vec::new(),
            },
            _ => Vec::new(),
        },
        pool_roles: match tab {
            Tab::Pools => {
                policy::grantable(&actor.standing(), super::pools::pool_roles(conn, org_id)?)
            }
            _ => Vec::new(),
        },
        activity: match tab {
            Tab::Activity if may_read_activity(actor, user_id) => activity(conn, org_id, user_id)?,
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
    let is_self = row.user.id == actor.user_id;
    let group_roles = memberships::group_roles(conn, &row.membership.org_id, &row.user.id)?;
    let target = policy::Standing::of_member(&row.role, &group_roles);
    let can_act_on = super::member_list::may_act_on(actor, is_self, target);
    let may_grant_admin =
        super::member_list::may_grant_admin(actor, &roles::list(conn, &actor.org_id)?);
    Ok(ProfileView {
        is_self,
        can_read_activity: may_read_activity(actor, &row.user.id),
        can_act_on,
        can_make_admin: can_act_on && may_grant_admin && row.role.key != super::roles::ADMIN,
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
        sessions: if is_self
            || (actor.standing().may(Permission::UsersManage)
                && super::members::org_owns_account(conn, &row.user)?)
        {
            Some(sessions::count_for_user(conn, &row.user.id, now)?)
        } else {
            None
        },
    })
}

/// The invitations a member's Activity tab tells of: at most this many, the newest.
const INVITATIONS_SHOWN: i64 = 5;

/// The filters whose union is a member's activity, each served in order by its own
/// index: events done to them (`target_id`), events they did (`actor_id`), and the
/// events of the invitations they accepted, from before they were a member here (each
/// by its `target_id`). An address can pass from one account to another (an identity
/// provider re-addresses one, then the address is invited again): what the earlier
/// account did, or had done to it, or was invited to, is not the new one's, and what it
/// did under its old address is still its own, so every event is theirs by account,
/// never by address.
pub fn activity_filters(user_id: &str, invitation_ids: &[String]) -> Vec<audit_events::Filter> {
    let mine = [
        audit_events::Filter {
            target_id: Some(user_id.to_string()),
            ..Default::default()
        },
        audit_events::Filter {
            actor_id: Some(user_id.to_string()),
            ..Default::default()
        },
    ];
    let invitations = invitation_ids.iter().map(|id| audit_events::Filter {
        target_id: Some(id.clone()),
        ..Default::default()
    });
    mine.into_iter().chain(invitations).collect()
}

/// The newest events of the member in this organization: three indexed reads of at
/// most `ACTIVITY_SHOWN` rows each, merged newest first without repeats.
fn activity(
    conn: &mut DbConnection,
    org_id: &str,
    user_id: &str,
) -> QueryResult<Vec<ActivityView>> {
    let scope = audit_events::Scope::Org(org_id.to_string());
    let invitations =
        crate::db::invitations::accepted_by(conn, org_id, user_id, INVITATIONS_SHOWN)?;
    let mut rows: Vec<AuditRow> = Vec::new();
    for filter in activity_filters(user_id, &invitations) {
        rows.extend(audit_events::page(
            conn,
            &scope,
            &filter,
            None,
            ACTIVITY_SHOWN,
        )?);
    }
    rows.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
    rows.dedup_by(|a, b| a.id == b.id);
    rows.truncate(ACTIVITY_SHOWN as usize);
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
