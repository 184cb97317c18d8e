//! Custom roles: admins compose them from permissions. Built-ins stay as seeded; a role
//! still referred to cannot be deleted; nobody creates a role above their own.

use serde_json::json;

use super::FieldErrors;
use super::RuleError;
use super::members::{Actor, in_org_tx, keeping_an_admin, require};
use super::policy::Standing;
use super::roles::{Permission, PermissionSet, rank_for};
use crate::audit::{self, Event, Origin};
use crate::db::DbConnection;
use crate::db::roles::{self, Role};

/// The organization's roles, strongest first, each with how many members hold it
/// directly (group- and pool-granted roles are not counted: they show on the profile).
pub fn overview(conn: &mut DbConnection, org_id: &str) -> diesel::QueryResult<Vec<(Role, i64)>> {
    let counts: std::collections::HashMap<String, i64> =
        roles::member_counts(conn, org_id)?.into_iter().collect();
    Ok(roles::list(conn, org_id)?
        .into_iter()
        .map(|r| {
            let n = counts.get(&r.id).copied().unwrap_or(0);
            (r, n)
        })
        .collect())
}

#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct RoleForm {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub permissions: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidRole {
    pub name: String,
    pub perms: PermissionSet,
    pub rank: i64,
}

/// Checks a role form against what the actor holds: a name, known permissions, none the
/// actor lacks, and a rank no higher than the actor's.
pub fn validate(
    form: &RoleForm,
    actor_perms: PermissionSet,
    actor_rank: i64,
) -> Result<ValidRole, FieldErrors> {
    let mut errors = FieldErrors::default();
    let name = form.name.trim();
    if name.is_empty() {
        errors.add("name", "Enter a name for the role.");
    } else if name.chars().count() > 60 || name.chars().any(char::is_control) {
        errors.add("name", "Use at most 60 printable characters.");
    }
    let mut perms = Vec::new();
    for raw in &form.permissions {
        match Permission::parse(raw) {
            Some(p) => perms.push(p),
            None => errors.add("permissions", format!("Unknown permission: {raw}")),
        }
    }
    let perms = PermissionSet::of(&perms);
    let actor = super::policy::Standing {
        perms: actor_perms,
        rank: actor_rank,
    };
    let rank = rank_for(perms);
    if !actor.may_define(perms) {
        errors.add(
            "permissions",
            "You cannot grant a permission you do not hold.",
        );
    } else if !actor.may_grant(super::policy::Standing { perms, rank }) {
        errors.add("permissions", "This role would rank above your own.");
    }
    if errors.is_empty() {
        Ok(ValidRole {
            name: name.to_string(),
            perms,
            rank,
        })
    } else {
        Err(errors)
    }
}

fn name_taken(
    conn: &mut DbConnection,
    org_id: &str,
    name: &str,
    except: Option<&str>,
) -> diesel::QueryResult<bool> {
    let wanted = name.to_lowercase();
    Ok(roles::list(conn, org_id)?
        .into_iter()
        .any(|r| Some(r.id.as_str()) != except && r.name.to_lowercase() == wanted))
}

fn event(action: &'static str, actor: &Actor, role_id: &str, name: &str, origin: &Origin) -> Event {
    Event::new(action, origin)
        .org(&actor.org_id)
        .actor(&actor.user_id, &actor.email)
        .target("role", role_id, name)
}

pub fn create(
    conn: &mut DbConnection,
    actor: &Actor,
    form: &RoleForm,
    origin: &Origin,
) -> Result<String, RuleError> {
    require(actor, Permission::OrgManage)?;
    let valid = validate(form, actor.perms, actor.rank).map_err(RuleError::Invalid)?;
    if super::names::newly_hides_text(&valid.name, None) {
        return Err(RuleError::invalid("name", super::names::HIDES_TEXT));
    }
    in_org_tx(conn, actor, |conn| {
        if name_taken(conn, &actor.org_id, &valid.name, None)? {
            return Err(RuleError::invalid(
                "name",
                "A role with this name already exists.",
            ));
        }
        let perms = valid.perms.to_string();
        let id = roles::insert_custom(conn, &actor.org_id, &valid.name, &perms, valid.rank)?;
        audit::record(
            conn,
            &event("role.created", actor, &id, &valid.name, origin)
                .details(json!({ "permissions": perms, "rank": valid.rank })),
        )?;
        Ok(id)
    })
}

fn load_custom(conn: &mut DbConnection, actor: &Actor, role_id: &str) -> Result<Role, RuleError> {
    let role = roles::find(conn, &actor.org_id, role_id)?.ok_or(RuleError::NotFound)?;
    if role.builtin {
        return Err(RuleError::Conflict(format!(
            "{} is a built-in role: it cannot be changed or deleted.",
            role.name
        )));
    }
    // Changing a role changes what every holder holds: it is granting it again.
    if !actor
        .standing()
        .may_grant(super::policy::Standing::of_role(&role))
    {
        return Err(RuleError::Forbidden(
            "You cannot change a role that ranks above your own or holds a permission you do not hold."
                .into(),
        ));
    }
    Ok(role)
}

pub fn update(
    conn: &mut DbConnection,
    actor: &Actor,
    role_id: &str,
    form: &RoleForm,
    origin: &Origin,
) -> Result<(), RuleError> {
    require(actor, Permission::OrgManage)?;
    in_org_tx(conn, actor, |conn| {
        let role = load_custom(conn, actor, role_id)?;
        let valid = validate(form, actor.perms, actor.rank).map_err(RuleError::Invalid)?;
        if super::names::newly_hides_text(&valid.name, Some(&role.name)) {
            return Err(RuleError::invalid("name", super::names::HIDES_TEXT));
        }
        // One's own role grows only within itself, whatever a group lends
        // (`policy::may_take_role`): else a Member lent Admin by a group would widen their
        // own role to Admin's and keep it after leaving the group.
        let own = crate::db::memberships::find(conn, &actor.org_id, &actor.user_id)?;
        let widened = super::policy::Standing {
            perms: valid.perms,
            rank: valid.rank,
        };
        // A role one is lent through a group, or holds in a pool, widens only within
        // one's own role, as joining a group or a pool that grants it would have to be.
        let through_group =
            crate::db::memberships::group_roles(conn, &actor.org_id, &actor.user_id)?
                .iter()
                .any(|r| r.id == role.id)
                || crate::db::pools::roles_of_user(conn, &actor.org_id, &actor.user_id)?
                    .iter()
                    .any(|(_, r)| r.id == role.id);
        let within = match &own {
            Some(own) if own.role.id == role.id => Standing::of_role(&role),
            Some(own) if through_group => Standing::of_role(&own.role),
            _ => widened,
        };
        if !super::policy::may_take_role(within, widened) {
            return Err(RuleError::Forbidden(
                "You cannot widen the role you hold yourself: what a group grants you lasts only while you are in it. Another admin can do it.".into(),
            ));
        }
        if name_taken(conn, &actor.org_id, &valid.name, Some(&role.id))? {
            return Err(RuleError::invalid(
                "name",
                "A role with this name already exists.",
            ));
        }
        let perms = valid.perms.to_string();
        // Taking org.manage away from a role in use may leave nobody in charge.
        keeping_an_admin::<_, RuleError>(conn, actor, |conn| {
            Ok(roles::update_custom(
                conn,
                &actor.org_id,
                &role.id,
                &valid.name,
                &perms,
                valid.rank,
            )?)
        })?;
        audit::record(
            conn,
            &event("role.updated", actor, &role.id, &valid.name, origin).details(json!({
                "old_name": role.name,
                "old_permissions": role.permissions,
                "permissions": perms,
                "old_rank": role.rank,
                "rank": valid.rank,
            })),
        )?;
        Ok(())
    })
}

/// The role, if the actor may delete it (the page that asks first shows it).
/// The role, if the actor may delete it now: asked before the confirmation, so a role in
/// use is refused with its reason there rather than after the person confirmed.
pub fn deletable(conn: &mut DbConnection, actor: &Actor, role_id: &str) -> Result<Role, RuleError> {
    require(actor, Permission::OrgManage)?;
    let role = load_custom(conn, actor, role_id)?;
    refuse_in_use(conn, actor, &role)?;
    Ok(role)
}

fn refuse_in_use(conn: &mut DbConnection, actor: &Actor, role: &Role) -> Result<(), RuleError> {
    let usage = roles::usage(conn, &actor.org_id, &role.id, actor.now)?;
    if usage.in_use() {
        return Err(RuleError::Conflict(format!(
            "{} is in use ({} members, {} groups, {} pool memberships, {} pending invitations, {} API tokens): give them another role, or cancel or revoke them, first.",
            role.name,
            usage.members,
            usage.groups,
            usage.pool_members,
            usage.invitations,
            usage.tokens
        )));
    }
    Ok(())
}

pub fn delete(
    conn: &mut DbConnection,
    actor: &Actor,
    role_id: &str,
    origin: &Origin,
) -> Result<String, RuleError> {
    require(actor, Permission::OrgManage)?;
    in_org_tx(conn, actor, |conn| {
        let role = load_custom(conn, actor, role_id)?;
        refuse_in_use(conn, actor, &role)?;
        let (invitations, tokens) =
            roles::delete_dead_references(conn, &actor.org_id, &role.id, actor.now)?;
        roles::delete_custom(conn, &actor.org_id, &role.id)?;
        audit::record(
            conn,
            &event("role.deleted", actor, &role.id, &role.name, origin).details(json!({
                "permissions": role.permissions,
                "closed_invitations_removed": invitations,
                "dead_tokens_removed": tokens,
            })),
        )?;
        Ok(role.name)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(name: &str, perms: &[&str]) -> RoleForm {
        RoleForm {
            name: name.into(),
            permissions: perms.iter().map(|p| p.to_string()).collect(),
        }
    }

    #[test]
    fn a_role_needs_a_name_and_known_permissions() {
        let all = PermissionSet::all();
        let errors = validate(&form(" ", &["users.read", "bogus"]), all, 100).unwrap_err();
        assert!(errors.get("name").is_some());
        assert!(errors.get("permissions").is_some());
        let ok = validate(&form(" Auditor ", &["audit.read", "users.read"]), all, 100).unwrap();
        assert_eq!(ok.name, "Auditor");
        assert_eq!(ok.rank, 30);
    }

    #[test]
    fn nobody_creates_a_role_above_their_own() {
        let manager = PermissionSet::parse_lenient("users.read,users.manage,audit.read");
        assert!(validate(&form("Boss", &["org.manage"]), manager, 30).is_err());
        assert!(validate(&form("Reader", &["users.read"]), manager, 30).is_ok());
        assert!(validate(&form("Auditor", &["audit.read"]), manager, 20).is_err());
    }
}
