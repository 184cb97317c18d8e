//! What admins do to members, and the rules that hold whatever they do: nobody acts
//! above their own rank, and an organization always keeps an active admin. Each action
//! runs in one transaction with its audit event.

use diesel::Connection;
use serde_json::json;

use super::names::sort_key;
use super::policy::{self, OwnMembership, Standing, Verdict};
use super::roles::{ADMIN, Permission, PermissionSet};
use super::{FieldErrors, RuleError, withdrawals};
use crate::audit::{self, Event, Origin};
use crate::db::memberships::{self, MemberRow};
use crate::db::roles::{self, Role};
use crate::db::{self, DbConnection, groups, organizations, pools, users};

/// The member acting, with what they may do in the organization.
#[derive(Debug, Clone)]
pub struct Actor {
    pub user_id: String,
    pub email: String,
    pub org_id: String,
    pub rank: i64,
    pub perms: PermissionSet,
    /// When the actor's own access ends, if it does: what they hand out ends by then too
    /// (`policy::access_within`).
    pub access_until: Option<chrono::NaiveDateTime>,
    /// The app's clock when the request came in: what "already over" is measured by.
    pub now: chrono::NaiveDateTime,
}

impl Actor {
    /// What the actor holds organization-wide, as the policy weighs it.
    pub fn standing(&self) -> Standing {
        Standing {
            perms: self.perms,
            rank: self.rank,
        }
    }
}

const ABOVE_OWN_RANK: &str = "You cannot change a member whose role ranks above your own or holds a permission you do not hold.";
const GRANT_ABOVE_OWN_RANK: &str =
    "You cannot grant a role that ranks above your own or holds a permission you do not hold.";

pub(crate) fn require(actor: &Actor, permission: Permission) -> Result<(), RuleError> {
    if actor.standing().may(permission) {
        Ok(())
    } else {
        Err(RuleError::Forbidden(
            "You do not have permission to do this.".into(),
        ))
    }
}

/// What the member holds organization-wide: their role with the roles their groups grant.
pub(crate) fn standing_of(conn: &mut DbConnection, row: &MemberRow) -> Result<Standing, RuleError> {
    let granted = memberships::group_roles(conn, &row.membership.org_id, &row.user.id)?;
    Ok(Standing::of_member(&row.role, &granted))
}

/// The organization's member `user_id`; anyone else is "not found".
pub(crate) fn load_target(
    conn: &mut DbConnection,
    actor: &Actor,
    user_id: &str,
) -> Result<MemberRow, RuleError> {
    memberships::find(conn, &actor.org_id, user_id)?.ok_or(RuleError::NotFound)
}

pub(crate) fn check_target_rank(
    conn: &mut DbConnection,
    actor: &Actor,
    target: &MemberRow,
) -> Result<(), RuleError> {
    if !actor.standing().may_act_on(standing_of(conn, target)?) {
        return Err(RuleError::Forbidden(ABOVE_OWN_RANK.into()));
    }
    Ok(())
}

/// Why a date was refused: it ends after the actor's own access.
pub(crate) fn beyond_own_access(actor: &Actor) -> String {
    let day = super::access_until::field_value(actor.access_until);
    format!(
        "Your own access ends after {day}: you can give access until that day at most, yours included. Another member who manages members can give more."
    )
}

/// One's own role changes only within the role one holds oneself, whatever one's groups
/// lend (`policy::may_take_role`).
pub(crate) fn check_own_role_change(
    actor: &Actor,
    target: &MemberRow,
    role: &Role,
) -> Result<(), RuleError> {
    if target.user.id == actor.user_id
        && !policy::may_take_role(Standing::of_role(&target.role), Standing::of_role(role))
    {
        return Err(RuleError::Forbidden(OWN_ROLE_ABOVE.into()));
    }
    Ok(())
}

fn load_role(conn: &mut DbConnection, actor: &Actor, role_id: &str) -> Result<Role, RuleError> {
    let role = roles::find(conn, &actor.org_id, role_id)?
        .ok_or_else(|| RuleError::invalid("role_id", "Choose one of the organization's roles."))?;
    if !actor.standing().may_grant(Standing::of_role(&role)) {
        return Err(RuleError::Forbidden(GRANT_ABOVE_OWN_RANK.into()));
    }
    Ok(role)
}

/// Checked after a change, inside its transaction: if the change left no active admin,
/// the error rolls it back. Because every admin-affecting change first locks the
/// organization row, two admins acting at once are serialized and cannot both succeed.
pub(crate) fn ensure_admin_remains(conn: &mut DbConnection, org_id: &str) -> Result<(), RuleError> {
    ensure_admin_remains_on(conn, org_id, None)
}

/// A change a member makes to who holds admin (a role, a status, a membership, a group, a
/// role's permissions, an end of access), checked as [`ensure_admin_remains`] and further:
/// - if an admin whose day is not over was there before the change, one still is after
///   it (an admin past their last day, whom the job has not come by yet, is no admin to
///   leave the organization to: the job would keep them, for good);
/// - for an actor whose own access ends, if an admin whose access outlasts theirs was
///   there before, one still is after it. Otherwise they could take the lasting admins
///   away and, kept as the last one when their day came (`expiry`), hold the
///   organization for good.
pub(crate) fn keeping_an_admin<T, E>(
    conn: &mut DbConnection,
    actor: &Actor,
    change: impl FnOnce(&mut DbConnection) -> Result<T, E>,
) -> Result<T, E>
where
    E: From<RuleError> + From<diesel::result::Error>,
{
    let org_id = actor.org_id.as_str();
    let outlasting = actor.access_until.filter(|until| *until > actor.now);
    let admin_roles = admin_role_ids(conn, org_id)?;
    let admins_at = |conn: &mut DbConnection, roles: &[String], at| {
        memberships::any_active_admin(conn, org_id, roles, at)
    };
    let current_before = admins_at(conn, &admin_roles, Some(actor.now))?;
    let lasting_before = match outlasting {
        Some(until) => admins_at(conn, &admin_roles, Some(until))?,
        None => false,
    };
    let done = change(conn)?;
    // The roles are read again: the change may have been to a role's permissions.
    let admin_roles = admin_role_ids(conn, org_id)?;
    if !admins_at(conn, &admin_roles, None)? {
        return Err(RuleError::LastAdmin.into());
    }
    if current_before && !admins_at(conn, &admin_roles, Some(actor.now))? {
        return Err(RuleError::Conflict(NO_CURRENT_ADMIN.into()).into());
    }
    if let Some(until) = outlasting
        && lasting_before
        && !admins_at(conn, &admin_roles, Some(until))?
    {
        return Err(RuleError::Conflict(format!(
            "An organization must keep an admin whose access lasts past yours (yours ends after {}). Make someone without an end date an admin first, or ask such an admin.",
            super::access_until::last_day(until)
        ))
        .into());
    }
    Ok(done)
}

const NO_CURRENT_ADMIN: &str = "An organization must keep at least one active admin whose access has not ended (an admin past their last day does not count). Make someone else an admin first.";

fn admin_role_ids(conn: &mut DbConnection, org_id: &str) -> diesel::QueryResult<Vec<String>> {
    Ok(roles::list(conn, org_id)?
        .into_iter()
        .filter(|r| r.permission_set().is_admin())
        .map(|r| r.id)
        .collect())
}

/// As [`ensure_admin_remains`], counting only admins whose last day is not over at
/// `on_at`: when a member's day ends, one whose day is over too is no admin to rely on
/// (with two admins past their day, the one who arrives is kept, not the one who left).
pub(crate) fn ensure_admin_remains_on(
    conn: &mut DbConnection,
    org_id: &str,
    on_at: Option<chrono::NaiveDateTime>,
) -> Result<(), RuleError> {
    let admin_roles = admin_role_ids(conn, org_id)?;
    if memberships::any_active_admin(conn, org_id, &admin_roles, on_at)? {
        Ok(())
    } else {
        Err(RuleError::LastAdmin)
    }
}

fn event(action: &'static str, actor: &Actor, target: &MemberRow, origin: &Origin) -> Event {
    Event::new(action, origin)
        .org(&actor.org_id)
        .actor(&actor.user_id, &actor.email)
        .target("user", &target.user.id, &target.user.email)
}

/// `group.member_added` / `group.member_removed`: the member is the target.
/// A member joining or leaving a group, with the role the group lends (`lent`, its
/// name), if any: joining such a group is taking that role, and the trail must say so.
pub(crate) fn group_member_event(
    action: &'static str,
    actor: &Actor,
    target: &MemberRow,
    (group, lent): (&groups::Group, Option<&Role>),
    origin: &Origin,
) -> Event {
    event(action, actor, target, origin).details(json!({
        "group_id": group.id,
        "group": group.name,
        "role": lent.map(|r| &r.name),
    }))
}

/// The role a group lends its members, if any.
pub(crate) fn lent_by(
    conn: &mut DbConnection,
    group: &groups::Group,
) -> diesel::QueryResult<Option<Role>> {
    match &group.role_id {
        Some(id) => roles::find(conn, &group.org_id, id),
        None => Ok(None),
    }
}

/// A change to one member, run inside the organization's transaction.
type MemberChange = fn(&mut DbConnection, &Actor, &str, &Origin) -> Result<(), RuleError>;

/// Runs `change` for a member manager, in one transaction holding the organization.
fn change_member(
    conn: &mut DbConnection,
    actor: &Actor,
    user_id: &str,
    origin: &Origin,
    change: MemberChange,
) -> Result<(), RuleError> {
    require(actor, Permission::UsersManage)?;
    in_org_tx(conn, actor, |conn| change(conn, actor, user_id, origin))
}

/// In one transaction that holds the organization's lock, for an actor who still holds
/// what they held when the request came in.
pub(crate) fn in_org_tx<T>(
    conn: &mut DbConnection,
    actor: &Actor,
    f: impl FnOnce(&mut DbConnection) -> Result<T, RuleError>,
) -> Result<T, RuleError> {
    db::write_tx(conn, |conn| {
        organizations::lock(conn, &actor.org_id)?;
        still_holds(conn, actor)?;
        f(conn)
    })
}

/// An add-to-group or add-to-pool form sent before anyone was picked (without
/// JavaScript, the picker's matches appear only after its Search).
pub(crate) const CHOOSE_A_MEMBER: &str =
    "Choose a member first: search for them by email or name, then pick one of the matches.";

pub(crate) const STANDING_CHANGED: &str = "Your own access here changed while this was being done: nothing was changed. Reload the page to see what you may do now.";

/// The actor's standing was read as the request came in, outside this transaction. A
/// demotion, deactivation or removal that committed since (this change may have waited
/// behind it for the organization's lock) must not let the request act with what they
/// held before: read again under the lock, they are still an active member holding at
/// least as much.
pub(crate) fn still_holds(conn: &mut DbConnection, actor: &Actor) -> Result<(), RuleError> {
    let refused = || RuleError::Forbidden(STANDING_CHANGED.into());
    let row = memberships::find(conn, &actor.org_id, &actor.user_id)?
        .filter(|row| row.membership.is_active() && row.user.is_active())
        .filter(|row| !row.membership.access_ended_by(actor.now))
        .ok_or_else(refused)?;
    if standing_of(conn, &row)?.holds_at_least(actor.standing()) {
        Ok(())
    } else {
        Err(refused())
    }
}

#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct EditForm {
    #[serde(default)]
    pub first_name: String,
    #[serde(default)]
    pub last_name: String,
    #[serde(default)]
    pub role_id: String,
    /// "yes" once the actor confirmed a change of their own role.
    #[serde(default)]
    pub confirm_own_role: String,
    /// The last day of access (`YYYY-MM-DD`), or empty for no end.
    #[serde(default)]
    pub access_until: String,
}

const OWN_MEMBERSHIP: &str = "You would lose access at once. Another admin can do it, or you can leave the organization from your profile.";
const NOT_FOUND: &str = "Not found.";
const OWN_ROLE_ABOVE: &str = "You cannot give yourself a role above the one you hold: what a group grants you lasts only while you are in it. Another admin can do it.";

const NAME_IS_THEIRS: &str = "This person's account is not this organization's alone (it belongs to other organizations too, or runs the platform), so only they (or a platform admin) can change their name.";
const OWN_MEMBERSHIP_IN_BULK: &str =
    "This is you: bulk actions never change your own membership. Use your profile instead.";

/// Whether the account is this organization's to change: its name, its email address,
/// its second factor (`policy::org_owns_account`).
pub fn org_owns_account(conn: &mut DbConnection, user: &users::User) -> diesel::QueryResult<bool> {
    let organizations = memberships::all_orgs_of_user(conn, &user.id)?.len();
    Ok(policy::org_owns_account(organizations, &user.platform_role))
}

/// [`org_owns_account`] for a change that depends on it: the account's row is held
/// first (`users::lock`), so a join to another organization that committed meanwhile is
/// counted, and one still to come waits for this change to end.
pub(crate) fn org_owns_account_held(
    conn: &mut DbConnection,
    user: &users::User,
) -> diesel::QueryResult<bool> {
    users::lock(conn, &user.id)?;
    org_owns_account(conn, user)
}

/// Edits a member's name, role and end of access. Answers whether anything changed.
pub fn edit(
    conn: &mut DbConnection,
    actor: &Actor,
    user_id: &str,
    form: &EditForm,
    origin: &Origin,
) -> Result<bool, RuleError> {
    require(actor, Permission::UsersManage)?;
    let mut errors = FieldErrors::default();
    // Held to the rule on invisible characters below, once the stored name is known.
    let as_sent = |raw: &str| super::names::parse_name_over(raw, Some(raw.trim()));
    let first = errors.check("first_name", as_sent(&form.first_name));
    let last = errors.check("last_name", as_sent(&form.last_name));
    // Held to "not before today" below, once the stored day is known.
    let until = errors.check(
        "access_until",
        super::access_until::parse_any_day(&form.access_until),
    );
    let (Some(first), Some(last), Some(until)) = (first, last, until) else {
        return Err(RuleError::Invalid(errors));
    };
    in_org_tx(conn, actor, |conn| {
        let target = load_target(conn, actor, user_id)?;
        check_target_rank(conn, actor, &target)?;
        let (stored, today) = (target.membership.access_until, crate::db::now().date());
        if super::access_until::newly_passed(until, stored, today) {
            return Err(RuleError::invalid(
                "access_until",
                super::access_until::PASSED,
            ));
        }
        let role = load_role(conn, actor, &form.role_id)?;
        for (field, name, stored) in [
            ("first_name", &first, &target.user.first_name),
            ("last_name", &last, &target.user.last_name),
        ] {
            if super::names::newly_hides_text(name, Some(stored)) {
                return Err(RuleError::invalid(field, super::names::HIDES_TEXT));
            }
        }
        let name_changed = first != target.user.first_name || last != target.user.last_name;
        let role_changed = role.id != target.role.id;
        let until_changed = until != target.membership.access_until;
        if !name_changed && !role_changed && !until_changed {
            return Ok(false);
        }
        if role_changed {
            check_own_role_change(actor, &target, &role)?;
        }
        if role_changed
            && target.user.id == actor.user_id
            && policy::own_membership(OwnMembership::ChangeRole) == Verdict::NeedsOwnConfirmation
            && form.confirm_own_role != "yes"
        {
            return Err(RuleError::ConfirmOwnRole {
                from: target.role.name.clone(),
                to: role.name.clone(),
            });
        }
        if until_changed && !policy::access_within(actor.access_until, until) {
            return Err(RuleError::invalid(
                "access_until",
                &beyond_own_access(actor),
            ));
        }
        if name_changed
            && !policy::may_rename_account(
                target.user.id == actor.user_id,
                org_owns_account_held(conn, &target.user)?,
            )
        {
            return Err(RuleError::invalid("first_name", NAME_IS_THEIRS));
        }
        if name_changed {
            users::set_name(conn, user_id, &first, &last)?;
            memberships::set_sort_name(conn, user_id, &sort_key(&first, &last))?;
        }
        // A shorter end of access takes an admin away as surely as a demotion, later.
        keeping_an_admin::<_, RuleError>(conn, actor, |conn| {
            if role_changed {
                memberships::set_role(conn, &actor.org_id, user_id, &role.id)?;
            }
            if until_changed {
                memberships::set_access_until(conn, &actor.org_id, user_id, until)?;
            }
            Ok(())
        })?;
        let day = |u: Option<chrono::NaiveDateTime>| {
            u.map(|u| super::access_until::last_day(u).to_string())
        };
        // A role changed on the profile reads in the trail as one changed from the list:
        // a search for who was made admin must find it, whichever form did it.
        if role_changed {
            record_role_change(conn, actor, &target, &role, origin)?;
        }
        if name_changed || until_changed {
            audit::record(
                conn,
                &event("member.updated", actor, &target, origin).details(json!({
                    "old_name": target.user.display_name(),
                    "new_name": super::names::full_name(&first, &last),
                    "old_access_until": day(target.membership.access_until),
                    "access_until": day(until),
                })),
            )?;
        }
        Ok(true)
    })
}

/// Marks the membership inactive and ends all of the person's sessions at once.
pub fn deactivate(
    conn: &mut DbConnection,
    actor: &Actor,
    user_id: &str,
    origin: &Origin,
) -> Result<(), RuleError> {
    change_member(conn, actor, user_id, origin, deactivate_in_tx)
}

pub(crate) fn deactivate_in_tx(
    conn: &mut DbConnection,
    actor: &Actor,
    user_id: &str,
    origin: &Origin,
) -> Result<(), RuleError> {
    let target = deactivatable(conn, actor, user_id)?;
    // Access to this organization ends on the member's next request, which checks the
    // membership; their sessions stay, because other organizations are not ours to end.
    keeping_an_admin::<_, RuleError>(conn, actor, |conn| {
        Ok(memberships::set_status(
            conn,
            &actor.org_id,
            user_id,
            "inactive",
        )?)
    })?;
    audit::record(conn, &event("member.deactivated", actor, &target, origin))?;
    Ok(())
}

/// The member, if the actor may deactivate them now: what the confirmation page offers
/// and what the change itself checks again.
pub fn deactivatable(
    conn: &mut DbConnection,
    actor: &Actor,
    user_id: &str,
) -> Result<MemberRow, RuleError> {
    require(actor, Permission::UsersManage)?;
    let target = load_target(conn, actor, user_id)?;
    if target.user.id == actor.user_id
        && policy::own_membership(OwnMembership::Deactivate) == Verdict::Refused
    {
        return Err(RuleError::Conflict(format!(
            "You cannot deactivate yourself. {OWN_MEMBERSHIP}"
        )));
    }
    if !target.membership.is_active() {
        return Err(RuleError::Conflict(format!(
            "{} is already inactive.",
            target.user.email
        )));
    }
    check_target_rank(conn, actor, &target)?;
    Ok(target)
}

/// Re-activates a membership; sessions ended by the deactivation stay ended.
pub fn activate(
    conn: &mut DbConnection,
    actor: &Actor,
    user_id: &str,
    origin: &Origin,
) -> Result<(), RuleError> {
    change_member(conn, actor, user_id, origin, activate_in_tx)
}

pub(crate) fn activate_in_tx(
    conn: &mut DbConnection,
    actor: &Actor,
    user_id: &str,
    origin: &Origin,
) -> Result<(), RuleError> {
    let target = load_target(conn, actor, user_id)?;
    if target.membership.is_active() {
        return Err(RuleError::Conflict(format!(
            "{} is already active.",
            target.user.email
        )));
    }
    check_target_rank(conn, actor, &target)?;
    // A last day already over would end the membership again on the member's next page.
    // Giving access back past it is a decision of its own (a contractor's end is not lifted
    // by a routine re-activation, nor by an identity provider's sync): the day is changed
    // on the profile first.
    if let Some(day) = target
        .membership
        .access_until
        .filter(|day| *day <= actor.now)
    {
        return Err(RuleError::Conflict(format!(
            "{}'s access ended after {}. Give them a new last day, or none, on their profile, then activate them.",
            target.user.email,
            super::access_until::last_day(day)
        )));
    }
    // Activating gives access again: not past the actor's own last day.
    if !policy::access_within(actor.access_until, target.membership.access_until) {
        return Err(RuleError::Forbidden(beyond_own_access(actor)));
    }
    memberships::set_status(conn, &actor.org_id, user_id, "active")?;
    audit::record(conn, &event("member.activated", actor, &target, origin))?;
    Ok(())
}

/// The member, if the actor may make them an admin now.
pub fn promotable(
    conn: &mut DbConnection,
    actor: &Actor,
    user_id: &str,
) -> Result<MemberRow, RuleError> {
    require(actor, Permission::UsersManage)?;
    let admin = roles::find_by_key(conn, &actor.org_id, ADMIN)?.ok_or(RuleError::NotFound)?;
    let target = load_target(conn, actor, user_id)?;
    if !actor.standing().may_grant(Standing::of_role(&admin)) {
        return Err(RuleError::Forbidden(GRANT_ABOVE_OWN_RANK.into()));
    }
    check_target_rank(conn, actor, &target)?;
    check_own_role_change(actor, &target, &admin)?;
    if target.role.id == admin.id {
        return Err(RuleError::Conflict(format!(
            "{} is already an admin.",
            target.user.email
        )));
    }
    Ok(target)
}

/// Gives the member the built-in Admin role.
pub fn make_admin(
    conn: &mut DbConnection,
    actor: &Actor,
    user_id: &str,
    origin: &Origin,
) -> Result<(), RuleError> {
    require(actor, Permission::UsersManage)?;
    in_org_tx(conn, actor, |conn| {
        let admin = roles::find_by_key(conn, &actor.org_id, ADMIN)?.ok_or(RuleError::NotFound)?;
        set_role_in_tx(conn, actor, user_id, &admin, origin)
    })
}

/// Changes a member's role in place (the Users tab's inline form). Answers the role's
/// name, or `None` when the member already had it (nothing changed, nothing recorded).
/// One's own role changes only on the profile, which asks first.
pub fn change_role(
    conn: &mut DbConnection,
    actor: &Actor,
    user_id: &str,
    role_id: &str,
    origin: &Origin,
) -> Result<Option<String>, RuleError> {
    require(actor, Permission::UsersManage)?;
    if user_id == actor.user_id {
        return Err(RuleError::Conflict(
            "Change your own role from your profile, where you confirm it.".into(),
        ));
    }
    in_org_tx(conn, actor, |conn| {
        let target = load_target(conn, actor, user_id)?;
        let role = load_role(conn, actor, role_id)?;
        if target.role.id == role.id {
            check_target_rank(conn, actor, &target)?;
            return Ok(None);
        }
        set_role_in_tx(conn, actor, user_id, &role, origin)?;
        Ok(Some(role.name))
    })
}

fn set_role_in_tx(
    conn: &mut DbConnection,
    actor: &Actor,
    user_id: &str,
    role: &Role,
    origin: &Origin,
) -> Result<(), RuleError> {
    let target = load_target(conn, actor, user_id)?;
    if !actor.standing().may_grant(Standing::of_role(role)) {
        return Err(RuleError::Forbidden(GRANT_ABOVE_OWN_RANK.into()));
    }
    check_target_rank(conn, actor, &target)?;
    check_own_role_change(actor, &target, role)?;
    if target.role.id == role.id {
        return Err(RuleError::Conflict(format!(
            "{} already has the {} role.",
            target.user.email, role.name
        )));
    }
    keeping_an_admin::<_, RuleError>(conn, actor, |conn| {
        Ok(memberships::set_role(
            conn,
            &actor.org_id,
            user_id,
            &role.id,
        )?)
    })?;
    Ok(record_role_change(conn, actor, &target, role, origin)?)
}

/// `member.made_admin` for a promotion to Admin, `member.role_changed` otherwise.
fn record_role_change(
    conn: &mut DbConnection,
    actor: &Actor,
    target: &MemberRow,
    role: &Role,
    origin: &Origin,
) -> diesel::QueryResult<()> {
    let action = if role.key == ADMIN {
        "member.made_admin"
    } else {
        "member.role_changed"
    };
    audit::record(
        conn,
        &event(action, actor, target, origin)
            .details(json!({ "old_role": target.role.name, "new_role": role.name })),
    )
}

/// What the delete confirmation page shows.
pub struct RemovalPlan {
    pub target: MemberRow,
    pub owned_groups: Vec<String>,
    /// The names of the pools they own, for an actor who manages every pool.
    pub owned_pools: Vec<String>,
    /// How many pools they own whose names the actor is not shown.
    pub unnamed_pools: usize,
    /// How many invitations they sent are still open: removing them cancels those.
    pub open_invitations: usize,
}

impl RemovalPlan {
    pub fn needs_successor(&self) -> bool {
        !self.owned_groups.is_empty() || !self.owned_pools.is_empty() || self.unnamed_pools > 0
    }
}

/// Removing a member takes `users.manage`; leaving takes nothing: anyone may leave an
/// organization they no longer want to be in (its last admin excepted, by the rule that
/// keeps one).
fn require_to_remove(actor: &Actor, user_id: &str) -> Result<(), RuleError> {
    if user_id == actor.user_id {
        return Ok(());
    }
    require(actor, Permission::UsersManage)
}

pub fn removal_plan(
    conn: &mut DbConnection,
    actor: &Actor,
    user_id: &str,
) -> Result<RemovalPlan, RuleError> {
    require_to_remove(actor, user_id)?;
    let target = load_target(conn, actor, user_id)?;
    // The page names what the member owns: only for someone the actor may remove.
    check_target_rank(conn, actor, &target)?;
    let owned_groups = groups::owned_by(conn, &actor.org_id, user_id)?
        .into_iter()
        .map(|g| g.name)
        .collect();
    let mut owned_pools: Vec<String> = pools::owned_by(conn, &actor.org_id, user_id)?
        .into_iter()
        .map(|p| p.name)
        .collect();
    // A pool's name reaches only those who may open it; someone who may remove members
    // without managing pools is told how many there are.
    let mut unnamed_pools = 0;
    if !actor.standing().may(Permission::PoolsManage) {
        unnamed_pools = owned_pools.len();
        owned_pools.clear();
    }
    // Said to whoever may see the Invited tab, or to the one leaving; to others it is not
    // theirs to count.
    let open_invitations =
        if user_id == actor.user_id || actor.standing().may(Permission::UsersInvite) {
            withdrawals::ending_with_sender(conn, &actor.org_id, user_id)?.len()
        } else {
            0
        };
    Ok(RemovalPlan {
        target,
        owned_groups,
        owned_pools,
        unnamed_pools,
        open_invitations,
    })
}

#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct RemoveForm {
    #[serde(default)]
    pub confirm_email: String,
    #[serde(default)]
    pub successor_id: String,
}

/// Removes the member from the organization (the account survives): their group and
/// pool memberships go, what they own passes to the successor; their next request here is
/// refused (access is checked on every request, so their sessions may stay, for other
/// organizations).
/// Answers the removed member's email.
pub fn remove(
    conn: &mut DbConnection,
    actor: &Actor,
    user_id: &str,
    form: &RemoveForm,
    origin: &Origin,
) -> Result<String, RuleError> {
    require_to_remove(actor, user_id)?;
    in_org_tx(conn, actor, |conn| {
        let target = load_target(conn, actor, user_id)?;
        if form.confirm_email.trim().to_lowercase() != target.user.email {
            return Err(RuleError::invalid(
                "confirm_email",
                "Type the member's email address exactly to confirm.",
            ));
        }
        let successor = match form.successor_id.trim() {
            "" => None,
            id => Some(id),
        };
        // Someone leaving who may not read the members list cannot pick a successor:
        // what they own (a label, granting nothing) is left to nobody rather than keep
        // them in an organization they want to leave.
        let handover = if user_id == actor.user_id && !actor.standing().may(Permission::UsersRead) {
            Handover::MakerOrNobody(successor)
        } else {
            Handover::Chosen(successor)
        };
        remove_in_tx(conn, actor, &target, handover, origin)?;
        Ok(target.user.email)
    })
}

/// Removes the member without a typed confirmation, inside a transaction the caller holds
/// on the organization: how a SCIM `DELETE` removes, after checking its `If-Match` in the
/// same transaction. What the member owns passes to `maker_id` (the token's maker), or
/// to nobody: an identity provider has nobody to name, and refusing left the leaver an
/// active member, with every retry refused, once they had made so much as a sub-pool.
pub(crate) fn remove_unconfirmed_in_tx(
    conn: &mut DbConnection,
    actor: &Actor,
    user_id: &str,
    maker_id: Option<&str>,
    origin: &Origin,
) -> Result<(), RuleError> {
    require(actor, Permission::UsersManage)?;
    let target = load_target(conn, actor, user_id)?;
    remove_in_tx(
        conn,
        actor,
        &target,
        Handover::MakerOrNobody(maker_id),
        origin,
    )
}

/// Who takes over what a removed member owns.
#[derive(Clone, Copy)]
enum Handover<'a> {
    /// The member chosen on the removal page: required when they own anything.
    Chosen(Option<&'a str>),
    /// The token's maker for an identity provider's removal, or nobody (a command-line
    /// token has no maker, or the maker is the one leaving): never a reason to refuse.
    MakerOrNobody(Option<&'a str>),
}

fn remove_in_tx(
    conn: &mut DbConnection,
    actor: &Actor,
    target: &MemberRow,
    handover: Handover,
    origin: &Origin,
) -> Result<(), RuleError> {
    check_target_rank(conn, actor, target)?;
    let user_id = target.user.id.as_str();
    let owns_groups = !groups::owned_by(conn, &actor.org_id, user_id)?.is_empty();
    let owns_pools = !pools::owned_by(conn, &actor.org_id, user_id)?.is_empty();
    let mut successor_email = None;
    let (mut groups_moved, mut pools_moved) = (0, 0);
    if owns_groups || owns_pools {
        let successor = match handover {
            Handover::Chosen(id) | Handover::MakerOrNobody(id) => id,
        };
        // Someone who can sign in and act here: a disabled account or one whose access
        // has ended would hold the groups and pools where nobody can reach them.
        let successor = match successor {
            Some(id) => memberships::find(conn, &actor.org_id, id)?.filter(|s| {
                s.membership.is_active()
                    && s.user.is_active()
                    && !s.membership.access_ended_by(db::now())
                    && s.user.id != user_id
            }),
            None => None,
        };
        let new_owner = match (successor, handover) {
            (Some(s), _) => Some(s),
            (None, Handover::MakerOrNobody(_)) => None,
            (None, Handover::Chosen(None)) => {
                return Err(RuleError::invalid(
                    "successor_id",
                    "This member owns groups or pools: choose who takes them over.",
                ));
            }
            (None, Handover::Chosen(Some(_))) => {
                return Err(RuleError::invalid(
                    "successor_id",
                    "Choose another active member of this organization.",
                ));
            }
        };
        let to = new_owner.as_ref().map(|s| s.user.id.as_str());
        groups_moved = groups::transfer_ownership(conn, &actor.org_id, user_id, to)?;
        pools_moved = pools::transfer_ownership(conn, &actor.org_id, user_id, to)?;
        // Handed to nobody (an identity provider's removal without a maker to take them)
        // is said, not left as a missing successor beside a count of what moved.
        successor_email = Some(new_owner.map_or_else(|| "nobody".to_string(), |s| s.user.email));
    }
    keeping_an_admin::<_, RuleError>(conn, actor, |conn| {
        groups::remove_member_everywhere(conn, &actor.org_id, user_id)?;
        pools::remove_member_everywhere(conn, &actor.org_id, user_id)?;
        Ok(memberships::delete(conn, &actor.org_id, user_id)?)
    })?;
    // Acceptance would refuse them now (their inviter may grant nothing here), yet they
    // would sit in the Invited tab as Pending: they end with the membership that sent
    // them, and the trail says why.
    let sent = withdrawals::ending_with_sender(conn, &actor.org_id, user_id)?;
    let why = if user_id == actor.user_id {
        "its inviter left the organization"
    } else {
        "its inviter was removed from the organization"
    };
    let by = (actor.user_id.as_str(), actor.email.as_str());
    let invitations_cancelled = withdrawals::withdraw(conn, &actor.org_id, &sent, by, why, origin)?;
    audit::record(
        conn,
        &event("member.removed", actor, target, origin).details(json!({
            "role": target.role.name,
            "successor": successor_email,
            "groups_transferred": groups_moved,
            "pools_transferred": pools_moved,
            "invitations_cancelled": invitations_cancelled,
        })),
    )?;
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BulkAction {
    Deactivate,
    Activate,
    Remove,
    SetRole,
    AddToGroup,
}

impl BulkAction {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "deactivate" => BulkAction::Deactivate,
            "activate" => BulkAction::Activate,
            "remove" => BulkAction::Remove,
            "set-role" => BulkAction::SetRole,
            "add-to-group" => BulkAction::AddToGroup,
            _ => return None,
        })
    }

    /// Whether the action passes over the actor's own membership: every one that could
    /// lock them out does. Adding oneself to a group cannot.
    pub fn skips_actor(self) -> bool {
        let own = match self {
            BulkAction::AddToGroup => OwnMembership::BulkJoinGroup,
            _ => OwnMembership::BulkChange,
        };
        policy::own_membership(own) == Verdict::Refused
    }

    pub fn label(self) -> &'static str {
        match self {
            BulkAction::Deactivate => "Deactivate",
            BulkAction::Activate => "Activate",
            BulkAction::Remove => "Remove from organization",
            BulkAction::SetRole => "Change role",
            BulkAction::AddToGroup => "Add to group",
        }
    }
}

#[derive(Debug, Clone)]
pub struct BulkOutcome {
    pub user_id: String,
    pub email: String,
    pub done: bool,
    pub reason: String,
}

/// At most this many members per bulk request: one transaction must stay short.
pub const BULK_LIMIT: usize = 1000;

/// Applies one action to each chosen member in one transaction. Each member is tried in
/// a savepoint, so one refusal (the last admin, a rank above the actor's) skips that
/// member only and says why.
pub fn bulk(
    conn: &mut DbConnection,
    actor: &Actor,
    action: BulkAction,
    user_ids: &[String],
    role_id: Option<&str>,
    group_id: Option<&str>,
    origin: &Origin,
) -> Result<Vec<BulkOutcome>, RuleError> {
    check_selection(actor, user_ids)?;
    in_org_tx(conn, actor, |conn| {
        let (role, group) = bulk_parameters(conn, actor, action, role_id, group_id)?;
        let mut outcomes = Vec::with_capacity(user_ids.len());
        let mut seen = std::collections::HashSet::new();
        for user_id in user_ids {
            if !seen.insert(user_id.as_str()) {
                continue;
            }
            if *user_id == actor.user_id && action.skips_actor() {
                outcomes.push(BulkOutcome {
                    user_id: user_id.clone(),
                    email: actor.email.clone(),
                    done: false,
                    reason: OWN_MEMBERSHIP_IN_BULK.into(),
                });
                continue;
            }
            // An id from outside the organization reads only "not found": nothing about
            // another organization's member is told.
            let Some(email) =
                memberships::find(conn, &actor.org_id, user_id)?.map(|r| r.user.email)
            else {
                outcomes.push(BulkOutcome {
                    user_id: user_id.clone(),
                    email: NOT_FOUND.into(),
                    done: false,
                    reason: NOT_FOUND.into(),
                });
                continue;
            };
            let result = conn.transaction(|conn| match action {
                BulkAction::Deactivate => deactivate_in_tx(conn, actor, user_id, origin),
                BulkAction::Activate => activate_in_tx(conn, actor, user_id, origin),
                BulkAction::Remove => {
                    let target = load_target(conn, actor, user_id)?;
                    remove_in_tx(conn, actor, &target, Handover::Chosen(None), origin)
                }
                BulkAction::SetRole => set_role_in_tx(
                    conn,
                    actor,
                    user_id,
                    role.as_ref().expect("role loaded"),
                    origin,
                ),
                BulkAction::AddToGroup => add_to_group_in_tx(
                    conn,
                    actor,
                    user_id,
                    group.as_ref().expect("group loaded"),
                    origin,
                ),
            });
            outcomes.push(match result {
                Ok(()) => BulkOutcome {
                    user_id: user_id.clone(),
                    email,
                    done: true,
                    reason: String::new(),
                },
                Err(RuleError::Db(e)) => return Err(RuleError::Db(e)),
                Err(e) => BulkOutcome {
                    user_id: user_id.clone(),
                    email,
                    done: false,
                    reason: skip_reason(&e),
                },
            });
        }
        Ok(outcomes)
    })
}

fn check_selection(actor: &Actor, user_ids: &[String]) -> Result<(), RuleError> {
    require(actor, Permission::UsersManage)?;
    if user_ids.is_empty() {
        return Err(RuleError::invalid(
            "user_ids",
            "Select at least one member.",
        ));
    }
    if user_ids.len() > BULK_LIMIT {
        return Err(RuleError::invalid(
            "user_ids",
            "Select at most 1,000 members at a time.",
        ));
    }
    Ok(())
}

/// The role or group a bulk action gives, checked against the actor's rights.
fn bulk_parameters(
    conn: &mut DbConnection,
    actor: &Actor,
    action: BulkAction,
    role_id: Option<&str>,
    group_id: Option<&str>,
) -> Result<(Option<Role>, Option<groups::Group>), RuleError> {
    let role = match action {
        BulkAction::SetRole => Some(load_role(
            conn,
            actor,
            role_id
                .filter(|r| !r.is_empty())
                .ok_or_else(|| RuleError::invalid("role_id", "Choose the role to give."))?,
        )?),
        _ => None,
    };
    let group = match action {
        BulkAction::AddToGroup => {
            require(actor, Permission::GroupsManage)?;
            let id = group_id
                .filter(|g| !g.is_empty())
                .ok_or_else(|| RuleError::invalid("group_id", "Choose the group."))?;
            Some(groups::find(conn, &actor.org_id, id)?.ok_or_else(|| {
                RuleError::invalid("group_id", "Choose one of the organization's groups.")
            })?)
        }
        _ => None,
    };
    Ok((role, group))
}

/// What a bulk action is about to do, for its confirmation page.
pub struct BulkPreview {
    /// The chosen members of this organization: (id, email, is the actor).
    pub members: Vec<(String, String, bool)>,
    /// Chosen ids that are not members here; nothing about them is told.
    pub unknown: usize,
    /// "Manager" for a role change, the group's name for add-to-group.
    pub target: Option<String>,
}

pub fn bulk_preview(
    conn: &mut DbConnection,
    actor: &Actor,
    action: BulkAction,
    user_ids: &[String],
    role_id: Option<&str>,
    group_id: Option<&str>,
) -> Result<BulkPreview, RuleError> {
    check_selection(actor, user_ids)?;
    let (role, group) = bulk_parameters(conn, actor, action, role_id, group_id)?;
    let mut seen = std::collections::HashSet::new();
    let mut preview = BulkPreview {
        members: Vec::new(),
        unknown: 0,
        target: role.map(|r| r.name).or(group.map(|g| g.name)),
    };
    for user_id in user_ids {
        if !seen.insert(user_id.as_str()) {
            continue;
        }
        match memberships::find(conn, &actor.org_id, user_id)? {
            Some(row) => preview.members.push((
                row.user.id.clone(),
                row.user.email,
                row.user.id == actor.user_id && action.skips_actor(),
            )),
            None => preview.unknown += 1,
        }
    }
    Ok(preview)
}

fn skip_reason(e: &RuleError) -> String {
    match e {
        RuleError::NotFound => NOT_FOUND.into(),
        RuleError::Invalid(errors) => errors
            .get("successor_id")
            .map(|_| {
                "Owns groups or pools: remove them one at a time to choose a successor.".to_string()
            })
            .unwrap_or_else(|| e.to_string()),
        other => other.to_string(),
    }
}

fn add_to_group_in_tx(
    conn: &mut DbConnection,
    actor: &Actor,
    user_id: &str,
    group: &groups::Group,
    origin: &Origin,
) -> Result<(), RuleError> {
    let target = load_target(conn, actor, user_id)?;
    if groups::is_member(conn, &group.id, user_id)? {
        return Err(RuleError::Conflict(format!("Already in {}.", group.name)));
    }
    let lent = lent_by(conn, group)?;
    if group.role_id.is_some() {
        let granted = lent.as_ref().ok_or(RuleError::NotFound)?;
        if !actor.standing().may_grant(Standing::of_role(granted)) {
            return Err(RuleError::Forbidden(GRANT_ABOVE_OWN_RANK.into()));
        }
        // Joining a group is taking the role it grants, for as long as one stays in it.
        check_own_role_change(actor, &target, granted)?;
    }
    groups::add_member(conn, &actor.org_id, &group.id, user_id)?;
    let joined = (group, lent.as_ref());
    audit::record(
        conn,
        &group_member_event("group.member_added", actor, &target, joined, origin),
    )?;
    Ok(())
}
