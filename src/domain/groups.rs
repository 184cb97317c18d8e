//! Groups: named sets of members of one organization, optionally granting a role. A
//! group only ever holds members of its own organization, nobody makes a group grant a
//! role above their own, and a change that would leave the organization without an
//! active admin (when that admin is one through a group) is refused.

use std::collections::{HashMap, HashSet};

use serde_json::json;

use super::FieldErrors;
use super::RuleError;
use super::member_picker::{Picker, PickerPage};
use super::members::{
    Actor, CHOOSE_A_MEMBER, check_own_role_change, group_member_event, in_org_tx, keeping_an_admin,
    lent_by, load_target, require,
};
use super::policy::Standing;
use super::roles::Permission;
use crate::audit::{self, Event, Origin};
use crate::db::groups::{self, Group};
use crate::db::users::User;
use crate::db::{DbConnection, memberships, roles};

const GRANT_ABOVE_OWN_RANK: &str =
    "You cannot grant a role that ranks above your own or holds a permission you do not hold.";

const MEMBERS_SHOWN: i64 = 500;
const OWNER: (&str, &str) = ("owner_id", "Owner");

pub struct GroupRow {
    pub group: Group,
    pub role_name: String,
    pub owner: String,
    pub members: i64,
}

/// The Groups page: every group, and the choices of the create form.
pub struct GroupsList {
    pub rows: Vec<GroupRow>,
    /// The roles the actor may have a group grant.
    pub roles: Vec<roles::Role>,
    /// Who owns the new group: the actor unless they choose someone else.
    pub owner_picker: Picker,
}

/// `owner_id`: the owner a form being shown again had chosen.
pub fn load_list(
    conn: &mut DbConnection,
    actor: &Actor,
    at: &PickerPage,
    owner_id: Option<&str>,
) -> diesel::QueryResult<GroupsList> {
    let org_id = actor.org_id.as_str();
    let counts: HashMap<String, i64> = groups::member_counts(conn, org_id)?.into_iter().collect();
    let all_roles = roles::list(conn, org_id)?;
    let role_names: HashMap<&str, &str> = all_roles
        .iter()
        .map(|r| (r.id.as_str(), r.name.as_str()))
        .collect();
    let groups = groups::list(conn, org_id)?;
    let owner_ids: Vec<String> = groups.iter().filter_map(|g| g.owner_id.clone()).collect();
    let emails: HashMap<String, String> = memberships::emails_of(conn, org_id, &owner_ids)?
        .into_iter()
        .collect();
    let rows = groups
        .into_iter()
        .map(|g| GroupRow {
            role_name: g
                .role_id
                .as_deref()
                .and_then(|id| role_names.get(id).copied())
                .unwrap_or("")
                .to_string(),
            owner: g
                .owner_id
                .as_ref()
                .and_then(|id| emails.get(id).cloned())
                .unwrap_or_default(),
            members: counts.get(&g.id).copied().unwrap_or(0),
            group: g,
        })
        .collect();
    let owner = owner_id.unwrap_or(&actor.user_id);
    Ok(GroupsList {
        rows,
        roles: super::policy::grantable(&actor.standing(), all_roles),
        owner_picker: Picker::load(conn, actor, OWNER, at, owner, &[])?,
    })
}

/// A group's page: its members, and the choices of its forms.
pub struct GroupView {
    pub group: Group,
    /// The group grants a role above the actor's: they may read it, not change it.
    pub beyond_reach: bool,
    pub members: Vec<User>,
    pub roles: Vec<roles::Role>,
    /// Finds an active member not in the group yet.
    pub add_picker: Picker,
    pub owner_picker: Picker,
}

impl GroupView {
    /// The edit form as the group stands.
    pub fn form(&self) -> GroupForm {
        GroupForm {
            name: self.group.name.clone(),
            description: self.group.description.clone(),
            role_id: self.group.role_id.clone().unwrap_or_default(),
            owner_id: self.group.owner_id.clone().unwrap_or_default(),
        }
    }
}

/// `owner_id`: the owner a form being shown again had chosen.
pub fn load_view(
    conn: &mut DbConnection,
    actor: &Actor,
    group_id: &str,
    at: &PickerPage,
    owner_id: Option<&str>,
) -> Result<GroupView, RuleError> {
    let org_id = actor.org_id.as_str();
    let group = groups::find(conn, org_id, group_id)?.ok_or(RuleError::NotFound)?;
    let members = groups::members(conn, org_id, &group.id, MEMBERS_SHOWN)?;
    let in_group: Vec<String> = members.iter().map(|m| m.id.clone()).collect();
    let all_roles = roles::list(conn, org_id)?;
    let owner = owner_id.or(group.owner_id.as_deref()).unwrap_or("");
    Ok(GroupView {
        beyond_reach: beyond_reach(conn, actor, &group)?,
        add_picker: Picker::load(conn, actor, ("user_id", "Add a member"), at, "", &in_group)?,
        owner_picker: Picker::load(conn, actor, OWNER, at, owner, &[])?,
        roles: super::policy::grantable(&actor.standing(), all_roles),
        group,
        members,
    })
}

#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct GroupForm {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub role_id: String,
    #[serde(default)]
    pub owner_id: String,
}

/// The plain checks that need no database: a name and a short description.
pub fn validate(form: &GroupForm) -> Result<(String, String), FieldErrors> {
    let mut errors = FieldErrors::default();
    let name = form.name.trim();
    if name.is_empty() {
        errors.add("name", "Enter a name for the group.");
    } else if name.chars().count() > 100 || name.chars().any(char::is_control) {
        errors.add("name", "Use at most 100 printable characters.");
    }
    let description = form.description.trim();
    if description.chars().count() > 500 {
        errors.add("description", "Use at most 500 characters.");
    }
    if errors.is_empty() {
        Ok((name.to_string(), description.to_string()))
    } else {
        Err(errors)
    }
}

struct Checked {
    name: String,
    description: String,
    role: Option<roles::Role>,
    owner_id: String,
}

fn check(
    conn: &mut DbConnection,
    actor: &Actor,
    form: &GroupForm,
    existing: Option<&Group>,
) -> Result<Checked, RuleError> {
    let (name, description) = validate(form).map_err(RuleError::Invalid)?;
    if super::names::newly_hides_text(&name, existing.map(|g| g.name.as_str())) {
        return Err(RuleError::invalid("name", super::names::HIDES_TEXT));
    }
    let except = existing.map(|g| g.id.as_str());
    if groups::name_taken(conn, &actor.org_id, &name, except)? {
        return Err(RuleError::invalid(
            "name",
            "A group with this name already exists in this organization.",
        ));
    }
    let role = match form.role_id.trim() {
        "" => None,
        id => {
            let role = roles::find(conn, &actor.org_id, id)?.ok_or_else(|| {
                RuleError::invalid("role_id", "Choose one of the organization's roles.")
            })?;
            if !actor.standing().may_grant(Standing::of_role(&role)) {
                return Err(RuleError::invalid("role_id", GRANT_ABOVE_OWN_RANK));
            }
            Some(role)
        }
    };
    let owner_id = match form.owner_id.trim() {
        "" => actor.user_id.clone(),
        id => memberships::find(conn, &actor.org_id, id)?
            .map(|m| m.user.id)
            .ok_or_else(|| {
                RuleError::invalid("owner_id", "Choose a member of this organization.")
            })?,
    };
    Ok(Checked {
        name,
        description,
        role,
        owner_id,
    })
}

fn event(action: &'static str, actor: &Actor, group: (&str, &str), origin: &Origin) -> Event {
    Event::new(action, origin)
        .org(&actor.org_id)
        .actor(&actor.user_id, &actor.email)
        .target("group", group.0, group.1)
}

pub fn create(
    conn: &mut DbConnection,
    actor: &Actor,
    form: &GroupForm,
    origin: &Origin,
) -> Result<String, RuleError> {
    require(actor, Permission::GroupsManage)?;
    in_org_tx(conn, actor, |conn| {
        let c = check(conn, actor, form, None)?;
        let id = groups::insert(
            conn,
            &actor.org_id,
            &c.name,
            &c.description,
            c.role.as_ref().map(|r| r.id.as_str()),
            Some(&c.owner_id),
        )?;
        audit::record(
            conn,
            &event("group.created", actor, (&id, &c.name), origin).details(json!({
                "description": c.description,
                "role": c.role.as_ref().map(|r| r.name.clone()),
                "owner_id": c.owner_id,
            })),
        )?;
        Ok(id)
    })
}

/// The group, if it is this organization's and the actor may manage it: a group that
/// grants a role above the actor's is out of their reach.
fn load(conn: &mut DbConnection, actor: &Actor, group_id: &str) -> Result<Group, RuleError> {
    let group = groups::find(conn, &actor.org_id, group_id)?.ok_or(RuleError::NotFound)?;
    if beyond_reach(conn, actor, &group)? {
        return Err(RuleError::Forbidden(GRANT_ABOVE_OWN_RANK.into()));
    }
    Ok(group)
}

/// The group grants a role the actor may not give: changing it, or who is in it, is
/// out of their reach.
fn beyond_reach(
    conn: &mut DbConnection,
    actor: &Actor,
    group: &Group,
) -> diesel::QueryResult<bool> {
    let Some(role_id) = &group.role_id else {
        return Ok(false);
    };
    let role = roles::find(conn, &actor.org_id, role_id)?;
    Ok(role.is_some_and(|r| !actor.standing().may_grant(Standing::of_role(&r))))
}

/// Of these groups, the ids of those the actor may change and add people to or take
/// them out of: with `groups.manage`, every group but those beyond their reach.
pub fn manageable_ids(
    conn: &mut DbConnection,
    actor: &Actor,
    groups: &[Group],
) -> diesel::QueryResult<HashSet<String>> {
    if !actor.standing().may(Permission::GroupsManage) {
        return Ok(HashSet::new());
    }
    // The organization's roles read once, not once a group.
    let roles = roles::list(conn, &actor.org_id)?;
    Ok(manageable_among(actor, &roles, groups))
}

/// [`manageable_ids`] with the organization's roles already at hand (the Users tab reads
/// them for its role filter): no query of its own.
pub fn manageable_among(actor: &Actor, roles: &[roles::Role], groups: &[Group]) -> HashSet<String> {
    if !actor.standing().may(Permission::GroupsManage) {
        return HashSet::new();
    }
    let out_of_reach = |role_id: &String| {
        roles
            .iter()
            .find(|r| &r.id == role_id)
            .is_some_and(|r| !actor.standing().may_grant(Standing::of_role(r)))
    };
    groups
        .iter()
        .filter(|g| !g.role_id.as_ref().is_some_and(out_of_reach))
        .map(|g| g.id.clone())
        .collect()
}

pub fn update(
    conn: &mut DbConnection,
    actor: &Actor,
    group_id: &str,
    form: &GroupForm,
    origin: &Origin,
) -> Result<(), RuleError> {
    require(actor, Permission::GroupsManage)?;
    in_org_tx(conn, actor, |conn| {
        let group = load(conn, actor, group_id)?;
        let c = check(conn, actor, form, Some(&group))?;
        let role_id = c.role.as_ref().map(|r| r.id.clone());
        if let Some(role) = &c.role
            && role_id != group.role_id
            && groups::is_member(conn, &group.id, &actor.user_id)?
        {
            let own = load_target(conn, actor, &actor.user_id)?;
            check_own_role_change(actor, &own, role)?;
        }
        keeping_an_admin::<_, RuleError>(conn, actor, |conn| {
            Ok(groups::update(
                conn,
                &actor.org_id,
                &group.id,
                &c.name,
                &c.description,
                role_id.as_deref(),
                Some(&c.owner_id),
            )?)
        })?;
        // What it was, by name as well: a role deleted later leaves only its id.
        let old_role = lent_by(conn, &group)?.map(|r| r.name);
        audit::record(
            conn,
            &event("group.updated", actor, (&group.id, &c.name), origin).details(json!({
                "old_name": group.name,
                "old_description": group.description,
                "description": c.description,
                "old_role_id": group.role_id,
                "old_role": old_role,
                "role": c.role.as_ref().map(|r| r.name.clone()),
                "old_owner_id": group.owner_id,
                "owner_id": c.owner_id,
            })),
        )?;
        Ok(())
    })
}

/// The group, if the actor may delete it (shown on the page that asks first).
pub fn deletable(
    conn: &mut DbConnection,
    actor: &Actor,
    group_id: &str,
) -> Result<Group, RuleError> {
    require(actor, Permission::GroupsManage)?;
    load(conn, actor, group_id)
}

pub fn delete(
    conn: &mut DbConnection,
    actor: &Actor,
    group_id: &str,
    origin: &Origin,
) -> Result<String, RuleError> {
    // Refused before the transaction: on SQLite it takes the whole database's write lock.
    require(actor, Permission::GroupsManage)?;
    in_org_tx(conn, actor, |conn| {
        delete_in_tx(conn, actor, group_id, origin)
    })
}

/// Deletes the group inside a transaction the caller holds on the organization.
pub(crate) fn delete_in_tx(
    conn: &mut DbConnection,
    actor: &Actor,
    group_id: &str,
    origin: &Origin,
) -> Result<String, RuleError> {
    require(actor, Permission::GroupsManage)?;
    let group = load(conn, actor, group_id)?;
    // What the deletion took away: the role the group lent, and from how many.
    let lent = match &group.role_id {
        Some(id) => roles::find(conn, &actor.org_id, id)?.map(|r| r.name),
        None => None,
    };
    let members = keeping_an_admin::<_, RuleError>(conn, actor, |conn| {
        Ok(groups::delete(conn, &actor.org_id, &group.id)?)
    })?;
    audit::record(
        conn,
        &event("group.deleted", actor, (&group.id, &group.name), origin).details(json!({
            "description": group.description,
            "role": lent,
            "role_id": group.role_id,
            "members": members,
        })),
    )?;
    Ok(group.name)
}

pub fn add_member(
    conn: &mut DbConnection,
    actor: &Actor,
    group_id: &str,
    user_id: &str,
    origin: &Origin,
) -> Result<String, RuleError> {
    require(actor, Permission::GroupsManage)?;
    if group_id.trim().is_empty() {
        return Err(RuleError::invalid("group_id", "Choose a group."));
    }
    if user_id.trim().is_empty() {
        return Err(RuleError::invalid("user_id", CHOOSE_A_MEMBER));
    }
    in_org_tx(conn, actor, |conn| {
        let group = load(conn, actor, group_id)?;
        // Only members of the group's own organization: anyone else is "not found".
        let target = load_target(conn, actor, user_id.trim())?;
        if groups::is_member(conn, &group.id, &target.user.id)? {
            return Err(RuleError::Conflict(format!(
                "{} is already in {}.",
                target.user.email, group.name
            )));
        }
        // Joining a group is taking the role it grants, for as long as one stays in it:
        // a role a group lends is not kept by joining another group one made.
        let lent = lent_by(conn, &group)?;
        if let Some(granted) = &lent {
            check_own_role_change(actor, &target, granted)?;
        }
        groups::add_member(conn, &actor.org_id, &group.id, &target.user.id)?;
        let joined = (&group, lent.as_ref());
        audit::record(
            conn,
            &group_member_event("group.member_added", actor, &target, joined, origin),
        )?;
        Ok(target.user.email)
    })
}

pub fn remove_member(
    conn: &mut DbConnection,
    actor: &Actor,
    group_id: &str,
    user_id: &str,
    origin: &Origin,
) -> Result<String, RuleError> {
    require(actor, Permission::GroupsManage)?;
    in_org_tx(conn, actor, |conn| {
        let group = load(conn, actor, group_id)?;
        let target = load_target(conn, actor, user_id)?;
        keeping_an_admin::<_, RuleError>(conn, actor, |conn| {
            if groups::remove_member(conn, &actor.org_id, &group.id, &target.user.id)? == 0 {
                return Err(RuleError::NotFound);
            }
            Ok(())
        })?;
        let lent = lent_by(conn, &group)?;
        let left = (&group, lent.as_ref());
        audit::record(
            conn,
            &group_member_event("group.member_removed", actor, &target, left, origin),
        )?;
        Ok(target.user.email)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_group_needs_a_name() {
        let form = GroupForm {
            name: "  ".into(),
            ..Default::default()
        };
        assert!(validate(&form).unwrap_err().get("name").is_some());
        let form = GroupForm {
            name: " Ops ".into(),
            description: " night shift ".into(),
            ..Default::default()
        };
        assert_eq!(
            validate(&form).unwrap(),
            ("Ops".to_string(), "night shift".to_string())
        );
    }
}
