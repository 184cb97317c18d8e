//! SCIM Groups: the organization's groups. `displayName` is the group's name (unique in
//! the organization); `members` are members of the organization, added and removed with
//! the same audit events as on the group's page. A group made over SCIM grants no role
//! and has no owner; one that grants a role above the token's is out of its reach.

use std::collections::HashSet;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{Call, ScimError, check_version, get_ci, in_org};
use crate::audit::{self, Event};
use crate::db::groups::{self, Group};
use crate::db::{DbConnection, memberships, roles, scim};
use crate::domain::members::{self, Actor};
use crate::domain::policy::{Standing, may_take_role};
use crate::domain::roles::Permission;
use crate::domain::scim::filter::{CompareOp, Filter};
use crate::domain::scim::patch::{Op, PatchOp, apply_patch};
use crate::domain::timefmt;

pub const SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const MAX_NAME_CHARS: usize = 100;
/// One request adds at most this many members, whatever the group's size: one transaction
/// must stay short. (Removals are not held to it: an identity provider empties a group in
/// one request and would not split it.)
pub const MAX_MEMBERS: usize = 1000;
/// Members taken out of a group by one statement: the group's count changes once for
/// them all (`groups::remove_members`).
const REMOVED_AT_ONCE: usize = 500;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupInput {
    pub display_name: String,
    pub external_id: Option<String>,
    /// User ids: what the group's members become (none when the body names none, as a
    /// replacement clears what it leaves out).
    pub members: Vec<String>,
}

/// A name the group is given (on creation, or a new one): none of the invisible
/// characters that would let it pass for another. Checked only when it is new, so a
/// group named before this rule still takes its members' changes.
fn new_name(display_name: &str) -> Result<(), ScimError> {
    if crate::domain::names::hides_text(display_name) {
        return Err(ScimError::InvalidValue(
            "displayName cannot contain invisible characters, such as a zero-width space or a mark that reverses text."
                .into(),
        ));
    }
    Ok(())
}

pub fn read_input(body: &Value) -> Result<GroupInput, ScimError> {
    if !body.is_object() {
        return Err(ScimError::InvalidSyntax(
            "The body must be a JSON object.".into(),
        ));
    }
    let display_name = match get_ci(body, "displayName") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_string(),
        _ => return Err(ScimError::InvalidValue("displayName is required.".into())),
    };
    if display_name.chars().count() > MAX_NAME_CHARS || display_name.chars().any(char::is_control) {
        return Err(ScimError::InvalidValue(
            "displayName is at most 100 printable characters.".into(),
        ));
    }
    let external_id = match get_ci(body, "externalId") {
        None | Some(Value::Null) => None,
        // PostgreSQL refuses a NUL in text: a control character is refused here, as a 400.
        Some(Value::String(s)) if s.chars().count() <= 255 && !s.chars().any(char::is_control) => {
            Some(s.trim().to_string()).filter(|s| !s.is_empty())
        }
        Some(_) => {
            return Err(ScimError::InvalidValue(
                "externalId must be a string of at most 255 printable characters.".into(),
            ));
        }
    };
    let members = match get_ci(body, "members") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(list)) => {
            let mut seen = HashSet::with_capacity(list.len());
            let mut ids = Vec::with_capacity(list.len());
            for m in list {
                let id = get_ci(m, "value")
                    .and_then(Value::as_str)
                    .filter(|id| !id.chars().any(char::is_control))
                    .ok_or_else(|| {
                        ScimError::InvalidValue("Each member needs a value (a User id).".into())
                    })?;
                if seen.insert(id) {
                    ids.push(id.to_string());
                }
            }
            ids
        }
        Some(_) => return Err(ScimError::InvalidValue("members must be a list.".into())),
    };
    Ok(GroupInput {
        display_name,
        external_id,
        members,
    })
}

/// Whether a representation lists the group's members. Identity providers read groups
/// with `excludedAttributes=members` (Entra always, Okta for large groups): such a read
/// builds no member objects, which for a group of a million would be hundreds of MB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Members {
    Listed,
    LeftOut,
}

/// The group's version (its ETag): a digest of its id, name, externalId, how many times
/// its members changed (`Group::members_version`, counted by the database) and when it
/// last changed (`meta.lastModified`), so it is the same whether or not the
/// representation lists the members, and reading it costs no member: Entra reads every
/// group without them, and a group of a million took a million ids to digest. The time
/// keeps a count that went back (a database restored from a backup) from giving a later
/// state the version an earlier one had.
fn version(group: &Group, external_id: Option<&str>) -> String {
    let mut digest = Sha256::new();
    let mut part = |text: &str| {
        digest.update((text.len() as u64).to_le_bytes());
        digest.update(text.as_bytes());
    };
    part(&group.id);
    part(&group.name);
    part(external_id.unwrap_or(""));
    part(&group.members_version.to_string());
    part(&group.updated_at.map(timefmt::iso_time).unwrap_or_default());
    let hash = hex::encode(digest.finalize());
    format!("W/\"{}\"", &hash[..16])
}

/// The group as SCIM shows it, with `member_ids` listed when given.
pub fn to_json(
    group: &Group,
    external_id: Option<&str>,
    member_ids: Option<&[String]>,
    base: &str,
) -> Value {
    let mut resource = json!({
        "schemas": [SCHEMA],
        "id": group.id,
        "displayName": group.name,
    });
    if let Some(member_ids) = member_ids {
        // No `display`: clients compare members as they sent them (value, $ref, type).
        resource["members"] = member_ids
            .iter()
            .map(|id| {
                json!({
                    "value": id,
                    "type": "User",
                    "$ref": format!("{base}/Users/{id}"),
                })
            })
            .collect();
    }
    if let Some(external_id) = external_id {
        resource["externalId"] = json!(external_id);
    }
    resource["meta"] = json!({
        "resourceType": "Group",
        "created": timefmt::iso_time(group.created_at),
        "lastModified": timefmt::iso_time(group.updated_at.unwrap_or(group.created_at)),
        "location": format!("{base}/Groups/{}", group.id),
        "version": version(group, external_id),
    });
    resource
}

pub fn get(
    conn: &mut DbConnection,
    call: &Call,
    id: &str,
    members: Members,
) -> Result<Value, ScimError> {
    let org_id = &call.token.org_id;
    let (group, external_id) = scim::group(conn, org_id, id)?.ok_or(ScimError::NotFound)?;
    let member_ids = listed_members(conn, org_id, &group, members)?;
    Ok(to_json(
        &group,
        external_id.as_deref(),
        member_ids.as_deref(),
        &call.base,
    ))
}

/// The group's member ids, where the representation lists them.
fn listed_members(
    conn: &mut DbConnection,
    org_id: &str,
    group: &Group,
    members: Members,
) -> Result<Option<Vec<String>>, ScimError> {
    Ok(match members {
        Members::Listed => Some(scim::group_member_ids(conn, org_id, &group.id)?),
        Members::LeftOut => None,
    })
}

/// One page of the organization's Groups that `filter` matches (all without one), in a
/// stable order, from `start_index` (1-based), at most `count`: the total and the page.
pub fn list(
    conn: &mut DbConnection,
    call: &Call,
    filter: Option<&Filter>,
    start_index: i64,
    count: i64,
    members: Members,
) -> Result<(i64, Vec<Value>), ScimError> {
    let org_id = call.token.org_id.clone();
    let skip = start_index.max(1) - 1;
    let Some(filter) = filter else {
        let total = scim::count_groups(conn, &org_id)?;
        return Ok((total, page(conn, call, None, skip, count, members)?));
    };
    // A filter on the members needs them, whatever the response then leaves out.
    let members = if filter.mentions("members") {
        Members::Listed
    } else {
        members
    };
    // displayName is unique: `displayName eq "x"` is one lookup.
    let name = match filter {
        Filter::Compare {
            path,
            op: CompareOp::Eq,
            value,
        } if path.is("displayName") => value.as_str(),
        _ => None,
    };
    let (mut total, mut out, mut offset) = (0i64, Vec::new(), 0i64);
    loop {
        if offset > call.scan_limit {
            return Err(ScimError::TooMany(format!(
                "This filter would have the server read more than {} groups. Filter by displayName (eq), or list without a filter, page by page.",
                call.scan_limit
            )));
        }
        let found = page(conn, call, name, offset, SCAN_CHUNK, members)?;
        let read = found.len() as i64;
        for resource in found {
            if filter.matches(&resource) {
                if total >= skip && (out.len() as i64) < count {
                    out.push(resource);
                }
                total += 1;
            }
        }
        if read < SCAN_CHUNK {
            break;
        }
        offset += read;
    }
    Ok((total, out))
}

const SCAN_CHUNK: i64 = 200;

fn page(
    conn: &mut DbConnection,
    call: &Call,
    name: Option<&str>,
    offset: i64,
    limit: i64,
    members: Members,
) -> Result<Vec<Value>, ScimError> {
    let org_id = &call.token.org_id;
    let mut out = Vec::new();
    for (group, external_id) in scim::groups(conn, org_id, name, offset, limit)? {
        let member_ids = listed_members(conn, org_id, &group, members)?;
        out.push(to_json(
            &group,
            external_id.as_deref(),
            member_ids.as_deref(),
            &call.base,
        ));
    }
    Ok(out)
}

fn writer(call: &Call) -> Result<Actor, ScimError> {
    let actor = call.token.as_actor();
    members::require(&actor, Permission::GroupsManage)?;
    Ok(actor)
}

fn taken(name: &str) -> ScimError {
    ScimError::Uniqueness(format!(
        "A group named {name:?} already exists in this organization."
    ))
}

fn event(action: &'static str, call: &Call, actor: &Actor, group: (&str, &str)) -> Event {
    Event::new(action, &call.origin)
        .org(&call.token.org_id)
        .actor(&actor.user_id, &actor.email)
        .target("group", group.0, group.1)
}

pub fn create(conn: &mut DbConnection, call: &Call, body: &Value) -> Result<Value, ScimError> {
    let actor = writer(call)?;
    let input = read_input(body)?;
    new_name(&input.display_name)?;
    let org_id = call.token.org_id.clone();
    let id = in_org(conn, call, |conn| {
        if groups::name_taken(conn, &org_id, &input.display_name, None)? {
            return Err(taken(&input.display_name));
        }
        let id = groups::insert(conn, &org_id, &input.display_name, "", None, None)?;
        scim::set_group_external_id(conn, &org_id, &id, input.external_id.as_deref())?;
        audit::record(
            conn,
            &event("group.created", call, &actor, (&id, &input.display_name))
                .details(json!({ "via": "scim", "external_id": input.external_id })),
        )?;
        let group = groups::find(conn, &org_id, &id)?.ok_or(ScimError::NotFound)?;
        set_members(conn, call, &actor, &group, &input.members)?;
        Ok(id)
    })?;
    get(conn, call, &id, Members::Listed)
}

/// The group, if the token may manage it: not one granting a role above its own.
fn load(conn: &mut DbConnection, call: &Call, actor: &Actor, id: &str) -> Result<Group, ScimError> {
    let group = groups::find(conn, &call.token.org_id, id)?.ok_or(ScimError::NotFound)?;
    if let Some(role_id) = &group.role_id
        && let Some(role) = roles::find(conn, &call.token.org_id, role_id)?
        && !actor.standing().may_grant(Standing::of_role(&role))
    {
        return Err(ScimError::Forbidden(
            "This group grants a role above the token's own.".into(),
        ));
    }
    Ok(group)
}

pub fn replace(
    conn: &mut DbConnection,
    call: &Call,
    id: &str,
    if_match: Option<&str>,
    body: &Value,
) -> Result<Value, ScimError> {
    let input = read_input(body)?;
    update(conn, call, id, if_match, |_| Ok(input))
}

/// What a PATCH answers.
pub enum Patched {
    /// The group as it is after the operations.
    Whole(Value),
    /// After a change of members alone to a group too large to answer with whole (204 No
    /// Content): the group without its members, for its new version.
    MembersLeftOut(Value),
}

/// Applies a PATCH request's operations (all or none) in one transaction.
pub fn patch(
    conn: &mut DbConnection,
    call: &Call,
    id: &str,
    if_match: Option<&str>,
    ops: &[PatchOp],
) -> Result<Patched, ScimError> {
    if let Some(changes) = member_changes(ops) {
        return change_members(conn, call, id, if_match, &changes);
    }
    update(conn, call, id, if_match, |current| {
        let mut patched = current.clone();
        apply_patch(&mut patched, ops)?;
        read_input(&patched)
    })
    .map(Patched::Whole)
}

/// A group of more members than this answers a PATCH of its members with 204 No Content
/// (RFC 7644 §3.5.2 allows it): the whole group is what a 200 would carry.
pub const MEMBERS_ANSWERED: i64 = 1000;

/// What a PATCH does when all it does is add or remove members it names, as Entra and Okta
/// send it (`add` to `members` with a list, `remove` of `members[value eq "…"]` or of
/// `members` with a list). `None` for anything else, which goes through the whole
/// representation, as does every error: this path must never accept what that one
/// refuses, nor read another id from a request than it does.
fn member_changes(ops: &[PatchOp]) -> Option<MemberChanges> {
    let mut changes = MemberChanges::default();
    for op in ops {
        let path = op.path.as_ref()?;
        if !(path.attr.is("members") && path.attr.in_core_schema() && path.sub.is_none()) {
            return None;
        }
        let value = op.value.as_ref().filter(|v| !v.is_null());
        match (op.op, &path.filter, value) {
            (Op::Add, None, Some(listed)) => {
                for id in listed_ids(listed)? {
                    changes.add(id);
                }
            }
            (Op::Remove, None, Some(listed)) => {
                for id in listed_ids(listed)? {
                    changes.remove(id);
                }
            }
            (
                Op::Remove,
                Some(Filter::Compare {
                    path: by,
                    op: CompareOp::Eq,
                    value: Value::String(id),
                }),
                None,
            ) if by.is("value") && by.schema.is_none() => changes.remove(id),
            _ => return None,
        }
    }
    Some(changes)
}

/// The ids a member PATCH names and where each ends, as applying its operations in turn
/// to the group as JSON would leave them.
#[derive(Debug, Default, PartialEq, Eq)]
struct MemberChanges {
    /// id → whether it ends in the group, and when it was last put there: the whole
    /// representation appends an id added while out, and keeps its first place while in.
    ends: std::collections::HashMap<String, (bool, usize)>,
    added: usize,
}

impl MemberChanges {
    fn add(&mut self, id: &str) {
        let next = self.added;
        let entry = self.ends.entry(id.to_owned()).or_insert((false, next));
        if !entry.0 {
            *entry = (true, next);
            self.added += 1;
        }
    }

    fn remove(&mut self, id: &str) {
        self.ends.entry(id.to_owned()).or_insert((false, 0)).0 = false;
    }

    fn named(&self) -> Vec<&str> {
        self.ends.keys().map(String::as_str).collect()
    }

    /// Those of `present` that go, in id order, as the whole representation takes them.
    fn leaving<'a>(&'a self, present: &HashSet<String>) -> Vec<&'a str> {
        let mut out: Vec<&str> = self
            .ends
            .iter()
            .filter(|(id, (stays, _))| !stays && present.contains(*id))
            .map(|(id, _)| id.as_str())
            .collect();
        out.sort_unstable();
        out
    }

    /// Those not in `present` that come, in the order they were added.
    fn joining<'a>(&'a self, present: &HashSet<String>) -> Vec<&'a str> {
        let mut out: Vec<(&str, usize)> = self
            .ends
            .iter()
            .filter(|(id, (stays, _))| *stays && !present.contains(*id))
            .map(|(id, (_, at))| (id.as_str(), *at))
            .collect();
        out.sort_unstable_by_key(|(_, at)| *at);
        out.into_iter().map(|(id, _)| id).collect()
    }
}

/// Keys a member object may carry on this path, each once in any case (Entra sends
/// `"$ref": null`); any other key, which the whole representation would check, sends the
/// request there.
const MEMBER_KEYS: [&str; 4] = ["value", "display", "type", "$ref"];

/// The ids of a non-empty list of member objects, each with a string `value` and nothing
/// but [`MEMBER_KEYS`]; `None` if anything else is listed (a lone object, which the whole
/// representation refuses when the group is empty, included).
fn listed_ids(listed: &Value) -> Option<Vec<&str>> {
    let Value::Array(items) = listed else {
        return None;
    };
    if items.is_empty() {
        return None;
    }
    items
        .iter()
        .map(|item| {
            let object = item.as_object()?;
            let mut seen = [false; MEMBER_KEYS.len()];
            for (key, value) in object {
                let at = MEMBER_KEYS
                    .iter()
                    .position(|k| k.eq_ignore_ascii_case(key))?;
                if seen[at] || !(value.is_string() || (at > 0 && value.is_null())) {
                    return None;
                }
                seen[at] = true;
            }
            get_ci(item, "value")
                .and_then(Value::as_str)
                .filter(|id| !id.chars().any(char::is_control))
        })
        .collect()
}

/// Adds and removes the named members, reading only whether each one named is in the
/// group: a group of a million takes a member without its membership being read.
fn change_members(
    conn: &mut DbConnection,
    call: &Call,
    id: &str,
    if_match: Option<&str>,
    changes: &MemberChanges,
) -> Result<Patched, ScimError> {
    let actor = writer(call)?;
    let org_id = call.token.org_id.clone();
    in_org(conn, call, |conn| {
        let group = load(conn, call, &actor, id)?;
        if if_match.is_some() {
            check_version(&get(conn, call, id, Members::LeftOut)?, if_match)?;
        }
        let mut present = HashSet::new();
        for named in changes.named().chunks(500) {
            present.extend(scim::group_members_among(conn, &org_id, &group.id, named)?);
        }
        let (leaving, joining) = (changes.leaving(&present), changes.joining(&present));
        apply_member_changes(conn, call, &actor, &group, &leaving, &joining)?;
        // Read before the organization is let go: the version answered is the one this
        // change made, not one a later writer's made.
        if scim::group_has_more_members_than(conn, &org_id, id, MEMBERS_ANSWERED)? {
            return get(conn, call, id, Members::LeftOut).map(Patched::MembersLeftOut);
        }
        get(conn, call, id, Members::Listed).map(Patched::Whole)
    })
}

/// Changes the group to what `change` makes of its current representation, in one
/// transaction holding the organization.
pub fn update(
    conn: &mut DbConnection,
    call: &Call,
    id: &str,
    if_match: Option<&str>,
    change: impl FnOnce(&Value) -> Result<GroupInput, ScimError>,
) -> Result<Value, ScimError> {
    let actor = writer(call)?;
    let org_id = call.token.org_id.clone();
    in_org(conn, call, |conn| {
        let group = load(conn, call, &actor, id)?;
        let current = get(conn, call, id, Members::Listed)?;
        check_version(&current, if_match)?;
        let input = change(&current)?;
        let old_external = get_ci(&current, "externalId").and_then(Value::as_str);
        if input.display_name != group.name {
            new_name(&input.display_name)?;
        }
        if input.display_name != group.name || input.external_id.as_deref() != old_external {
            if groups::name_taken(conn, &org_id, &input.display_name, Some(&group.id))? {
                return Err(taken(&input.display_name));
            }
            groups::update(
                conn,
                &org_id,
                &group.id,
                &input.display_name,
                &group.description,
                group.role_id.as_deref(),
                group.owner_id.as_deref(),
            )?;
            scim::set_group_external_id(conn, &org_id, &group.id, input.external_id.as_deref())?;
            audit::record(
                conn,
                &event(
                    "group.updated",
                    call,
                    &actor,
                    (&group.id, &input.display_name),
                )
                .details(json!({
                    "old_name": group.name,
                    "external_id": input.external_id,
                    "via": "scim",
                })),
            )?;
        }
        set_members(conn, call, &actor, &group, &input.members)?;
        Ok(())
    })?;
    get(conn, call, id, Members::Listed)
}

/// Makes the group's members exactly `wanted` (user ids of the organization's members):
/// one audit event per member added or removed. An id that is not a member here is an
/// invalid value, whatever organization it may belong to.
fn set_members(
    conn: &mut DbConnection,
    call: &Call,
    actor: &Actor,
    group: &Group,
    wanted: &[String],
) -> Result<(), ScimError> {
    let org_id = &call.token.org_id;
    let mut current = scim::group_member_ids(conn, org_id, &group.id)?;
    // In byte order, as the fast path takes them (PostgreSQL's collation may not be).
    current.sort_unstable();
    let wanted_set: HashSet<&str> = wanted.iter().map(String::as_str).collect();
    let current_set: HashSet<&str> = current.iter().map(String::as_str).collect();
    let leaving: Vec<&str> = current
        .iter()
        .map(String::as_str)
        .filter(|id| !wanted_set.contains(id))
        .collect();
    let joining: Vec<&str> = wanted
        .iter()
        .map(String::as_str)
        .filter(|id| !current_set.contains(id))
        .collect();
    apply_member_changes(conn, call, actor, group, &leaving, &joining)
}

/// Takes `leaving` out of the group and puts `joining` in, one audit event each, unless
/// that would take away the admins who outlast the token's maker or add more than
/// [`MAX_MEMBERS`].
fn apply_member_changes(
    conn: &mut DbConnection,
    call: &Call,
    actor: &Actor,
    group: &Group,
    leaving: &[&str],
    joining: &[&str],
) -> Result<(), ScimError> {
    let org_id = &call.token.org_id;
    if joining.len() > MAX_MEMBERS {
        return Err(ScimError::InvalidValue(format!(
            "One request adds at most {MAX_MEMBERS} members; this one would add {}. Send the rest in further requests.",
            joining.len()
        )));
    }
    // An identity provider's change is the token maker's change: it may not take away
    // the admins who outlast them (`members::keeping_an_admin`).
    members::keeping_an_admin(conn, actor, |conn| {
        let granted = members::lent_by(conn, group)?;
        for chunk in leaving.chunks(REMOVED_AT_ONCE) {
            let targets = chunk
                .iter()
                .map(|id| members::load_target(conn, actor, id))
                .collect::<Result<Vec<_>, _>>()?;
            groups::remove_members(conn, org_id, &group.id, chunk)?;
            for target in &targets {
                audit::record(
                    conn,
                    &members::group_member_event(
                        "group.member_removed",
                        actor,
                        target,
                        (group, granted.as_ref()),
                        &call.origin,
                    ),
                )?;
            }
        }
        for &id in joining {
            let target = memberships::find(conn, org_id, id)?.ok_or_else(|| {
                ScimError::InvalidValue(format!("{id:?} is not a member of this organization."))
            })?;
            // The token's maker joins a group through it only as they could themselves.
            if let Some(granted) = &granted
                && call.token.maker_id.as_deref() == Some(id)
                && !may_take_role(Standing::of_role(&target.role), Standing::of_role(granted))
            {
                return Err(ScimError::Forbidden(
                    "The token's maker cannot be put in a group that grants a role above their own."
                        .into(),
                ));
            }
            groups::add_member(conn, org_id, &group.id, id)?;
            audit::record(
                conn,
                &members::group_member_event(
                    "group.member_added",
                    actor,
                    &target,
                    (group, granted.as_ref()),
                    &call.origin,
                ),
            )?;
        }
        Ok::<(), ScimError>(())
    })
}

/// Deletes the group, unless `if_match` names another version than the current one.
pub fn delete(
    conn: &mut DbConnection,
    call: &Call,
    id: &str,
    if_match: Option<&str>,
) -> Result<(), ScimError> {
    let actor = writer(call)?;
    // The version is checked in the removal's own transaction: a PUT landing between the
    // check and the removal would otherwise be removed unseen.
    in_org(conn, call, |conn| {
        if if_match.is_some() {
            check_version(&get(conn, call, id, Members::LeftOut)?, if_match)?;
        }
        crate::domain::groups::delete_in_tx(conn, &actor, id, &call.origin)?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ops(list: Value) -> Vec<PatchOp> {
        crate::domain::scim::patch::parse_patch(&json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": list,
        }))
        .unwrap()
    }

    #[test]
    fn the_member_changes_identity_providers_send_are_read_without_the_group() {
        let changes = member_changes(&ops(json!([
            {"op": "Add", "path": "members", "value": [{"value": "x"}, {"value": "m", "display": "M", "$ref": null}]},
            {"op": "Remove", "path": "members[value eq \"m\"]"},
            {"op": "add", "path": "members", "value": [{"VALUE": "y", "type": "User"}, {"value": "m"}, {"value": "x"}]},
            {"op": "remove", "path": "urn:ietf:params:scim:schemas:core:2.0:Group:members", "value": [{"value": "a"}, {"value": "b"}]},
            {"op": "add", "path": "members", "value": [{"value": "b"}]},
        ])))
        .expect("a change of members alone");
        let present: HashSet<String> = ["a", "b", "c"].map(String::from).into();
        // As the whole representation would: removals in id order, then additions where
        // they were appended (m after y: it was taken out and put back), b kept.
        assert_eq!(changes.leaving(&present), ["a"]);
        assert_eq!(changes.joining(&present), ["x", "y", "m"]);
        let mut named = changes.named();
        named.sort_unstable();
        assert_eq!(named, ["a", "b", "m", "x", "y"]);
        // Everything else goes through the whole representation, with its checks.
        for other in [
            json!([{"op": "replace", "path": "members", "value": [{"value": "a"}]}]),
            json!([{"op": "remove", "path": "members"}]),
            json!([{"op": "add", "path": "members", "value": []}]),
            json!([{"op": "add", "path": "members", "value": {"value": "a"}}]),
            json!([{"op": "add", "path": "members", "value": [{"display": "a"}]}]),
            json!([{"op": "add", "path": "members", "value": [{"value": 7}]}]),
            json!([{"op": "add", "path": "members", "value": [{"value": "a\u{7}"}]}]),
            json!([{"op": "remove", "path": "members[value ne \"a\"]"}]),
            json!([{"op": "remove", "path": "members[display eq \"a\"]"}]),
            json!([{"op": "remove", "path": "members[value eq \"a\"].display"}]),
            json!([{"op": "add", "path": "members", "value": [{"value": "a"}]},
                   {"op": "replace", "path": "displayName", "value": "Ops"}]),
            json!([{"op": "add", "value": {"members": [{"value": "a"}]}}]),
            // Keys the whole representation checks (a boolean `primary`), or reads in its
            // own way (two spellings of `value`).
            json!([{"op": "add", "path": "members", "value": [{"value": "a", "primary": "maybe"}]}]),
            json!([{"op": "remove", "path": "members", "value": [{"valuE": "b", "value": "a"}]}]),
            json!([{"op": "add", "path": "members", "value": [{"value": "a", "display": 7}]}]),
            json!([{"op": "add", "path": "members", "value": ["a"]}]),
        ] {
            assert_eq!(member_changes(&ops(other.clone())), None, "{other}");
        }
    }

    #[test]
    fn a_groups_version_is_the_same_with_its_members_left_out_and_tells_each_change() {
        let group = Group {
            id: "g1".into(),
            org_id: "o1".into(),
            name: "Ops".into(),
            description: String::new(),
            role_id: None,
            owner_id: None,
            created_at: chrono::DateTime::from_timestamp(0, 0).unwrap().naive_utc(),
            updated_at: None,
            members_version: 7,
        };
        let ids = ["u1".to_string(), "u2".to_string()];
        let version = |group: &Group, external: Option<&str>| {
            to_json(group, external, None, "https://p/scim/v2")["meta"]["version"]
                .as_str()
                .unwrap()
                .to_string()
        };
        let full = to_json(&group, None, Some(&ids), "b");
        assert_eq!(full["members"].as_array().unwrap().len(), 2);
        let lean = to_json(&group, None, None, "b");
        assert!(lean.get("members").is_none());
        let base = version(&group, None);
        assert_eq!(full["meta"]["version"], base.as_str());
        let renamed = Group {
            name: "Ops2".into(),
            ..group.clone()
        };
        let changed = Group {
            members_version: 8,
            ..group.clone()
        };
        let touched = Group {
            updated_at: Some(group.created_at + chrono::Duration::microseconds(1)),
            ..group.clone()
        };
        for (other, external) in [
            (&renamed, None),
            (&changed, None),
            (&touched, None),
            (&group, Some("x")),
        ] {
            assert_ne!(version(other, external), base, "{other:?} {external:?}");
        }
    }

    #[test]
    fn a_group_needs_a_display_name_and_members_need_values() {
        let g = read_input(&json!({
            "displayName": " Ops ",
            "members": [{"value": "u1"}, {"value": "u2"}, {"value": "u1"}],
        }))
        .unwrap();
        assert_eq!(g.display_name, "Ops");
        assert_eq!(g.members, vec!["u1".to_string(), "u2".to_string()]);
        assert!(
            read_input(&json!({"displayName": "x"}))
                .unwrap()
                .members
                .is_empty()
        );
        for body in [
            json!({}),
            json!({"displayName": ""}),
            json!({"displayName": "x", "members": [{"display": "a"}]}),
            json!({"displayName": "x", "members": "u1"}),
        ] {
            assert_eq!(
                read_input(&body).unwrap_err().scim_type(),
                Some("invalidValue"),
                "{body}"
            );
        }
    }
}
