//! SCIM Users: an organization's members.
//!
//! - The account's email comes from `emails` (the primary, else the work one, else the
//!   first), or from `userName` when `emails` has none. A `userName` that is not that
//!   address (a login name, an Entra UPN) is kept on the membership.
//! - `name.givenName` / `name.familyName` are the account's name, changed only while
//!   the account belongs to this organization alone (as for the portal's own admins).
//! - `active` is the membership's status: false deactivates, true re-activates, through
//!   the portal's own functions (last-admin rule, rank, audit).
//! - `externalId` belongs to the membership. `groups` is read-only.
//! - Create gives the membership the token's role; delete removes it from the
//!   organization as the portal's "Delete" does (the account survives).

use serde_json::{Value, json};

use super::{Call, ScimError, as_bool, check_version, get_ci, in_org, version_of};
use crate::audit::{self, Event};
use crate::db::memberships::{self, MemberRow};
use crate::db::scim::{self, ScimFields};
use crate::db::{DbConnection, password_resets, roles, setup_tokens, users};
use crate::db::{member_counts, organizations, scim_cursors};
use crate::domain::email::Email;
use crate::domain::members::{self, Actor};
use crate::domain::names::sort_key;
use crate::domain::policy::Standing;
use crate::domain::roles::Permission;
use crate::domain::scim::filter::{CompareOp, Filter};
use crate::domain::scim::patch::{PatchOp, apply_patch};
use crate::domain::{invitations, new_account, notices, policy, timefmt};

pub const SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const ACTION_PROVISIONED: &str = "member.provisioned";
const MAX_NAME_CHARS: usize = 100;
const MAX_ID_CHARS: usize = 255;

/// What a request body asks a user to be (POST, PUT, or PATCH once applied).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInput {
    /// As sent, trimmed.
    pub user_name: String,
    /// None: the body names no address (the account keeps its own, or gets a placeholder).
    pub email: Option<Email>,
    pub given_name: String,
    pub family_name: String,
    /// None: not sent (a member is active unless told otherwise).
    pub active: Option<bool>,
    pub external_id: Option<String>,
    /// The attributes the IdP owns, as sent, answered back as sent.
    pub profile: Value,
}

impl UserInput {
    /// What is kept on the membership as userName: nothing when it is the email.
    fn stored_user_name(&self) -> Option<String> {
        let lower = self.user_name.to_lowercase();
        (self.email.as_ref().map(Email::as_str) != Some(lower.as_str()))
            .then(|| self.user_name.clone())
    }

    fn wants_active(&self) -> bool {
        self.active.unwrap_or(true)
    }
}

const MAX_DISPLAY_NAME_CHARS: usize = 256;
/// A real profile (a name, a few addresses) takes a few hundred bytes.
const MAX_PROFILE_BYTES: usize = 8 * 1024;

/// The attributes an IdP owns and gets back as it sent them.
const PROFILE: &[&str] = &[
    "userName",
    "name",
    "displayName",
    "emails",
    "externalId",
    "active",
];

/// The body's IdP-owned attributes under their canonical names, nulls left out.
fn profile_of(body: &Value, active: Option<bool>) -> Value {
    let mut profile = serde_json::Map::new();
    for key in PROFILE {
        match (*key, get_ci(body, key)) {
            (_, None | Some(Value::Null)) => {}
            ("active", Some(_)) => {
                profile.insert("active".into(), json!(active));
            }
            (key, Some(v)) => {
                profile.insert(key.into(), v.clone());
            }
        }
    }
    Value::Object(profile)
}

/// An address for an account whose IdP sent none: unique, and in `.invalid` (RFC 2606)
/// so no mail is ever sent to it. The next address the IdP sends replaces it.
fn placeholder_email() -> String {
    format!("{}@scim.invalid", crate::db::new_id())
}

fn text(value: Option<&Value>, what: &str, max: usize) -> Result<Option<String>, ScimError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => {
            let s = s.trim();
            if s.chars().count() > max || s.chars().any(char::is_control) {
                return Err(ScimError::InvalidValue(format!(
                    "{what} is at most {max} printable characters."
                )));
            }
            Ok(Some(s.to_string()))
        }
        Some(_) => Err(ScimError::InvalidValue(format!("{what} must be a string."))),
    }
}

/// The address among `emails`: the primary one, else the work one, else the first.
fn email_from(emails: Option<&Value>) -> Option<String> {
    let list = emails?.as_array()?;
    let pick = |p: &dyn Fn(&Value) -> bool| {
        list.iter()
            .find(|e| p(e))
            .and_then(|e| get_ci(e, "value"))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    pick(&|e| get_ci(e, "primary").and_then(as_bool) == Some(true))
        .or_else(|| pick(&|e| get_ci(e, "type").and_then(Value::as_str) == Some("work")))
        .or_else(|| pick(&|_| true))
}

/// Reads a full User representation. Attributes left out are cleared (PUT replaces),
/// except `active`, which is true unless sent.
/// The name is shown on the portal's pages and in its mails, as a typed one is: a part the
/// identity provider gives anew (`stored` is what the account holds) hides no text. One
/// already stored is not checked again, so an account named before that rule still
/// takes its other changes.
fn new_name_part(key: &str, part: &str, stored: Option<&str>) -> Result<(), ScimError> {
    if stored != Some(part) && part.chars().any(crate::domain::names::turns_text) {
        return Err(ScimError::InvalidValue(format!(
            "{key} cannot contain invisible characters, such as a zero-width space or a mark that reverses text."
        )));
    }
    Ok(())
}

/// An address the identity provider gives an account anew is held to what any new address
/// is (`Email::parse_new`); one already stored is not checked again, so an account made
/// before that rule still takes its changes (and can be deactivated).
fn new_address(email: &str) -> Result<String, ScimError> {
    Email::parse_new(email)
        .map(|e| e.as_str().to_string())
        .map_err(|e| ScimError::InvalidValue(format!("emails: {e}")))
}

pub fn read_input(body: &Value) -> Result<UserInput, ScimError> {
    if !body.is_object() {
        return Err(ScimError::InvalidSyntax(
            "The body must be a JSON object.".into(),
        ));
    }
    let user_name = text(get_ci(body, "userName"), "userName", 254)?
        .filter(|u| !u.is_empty())
        .ok_or_else(|| ScimError::InvalidValue("userName is required.".into()))?;
    // The address comes from `emails` when it has one (Entra's userName is often a UPN
    // and its mail attribute maps to emails), else from a userName that is an address.
    let email = match email_from(get_ci(body, "emails")) {
        Some(address) => Some(
            Email::parse(&address).map_err(|e| ScimError::InvalidValue(format!("emails: {e}")))?,
        ),
        None => Email::parse(&user_name).ok(),
    };
    let name = get_ci(body, "name");
    let part = |key: &str| -> Result<String, ScimError> {
        Ok(text(name.and_then(|n| get_ci(n, key)), key, MAX_NAME_CHARS)?.unwrap_or_default())
    };
    let active = match get_ci(body, "active") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            as_bool(v)
                .ok_or_else(|| ScimError::InvalidValue("active must be true or false.".into()))?,
        ),
    };
    text(
        get_ci(body, "displayName"),
        "displayName",
        MAX_DISPLAY_NAME_CHARS,
    )?;
    let profile = profile_of(body, active);
    // The profile is kept as sent and read back with every representation: bounded, as
    // a real one always is, so no member's record can grow a list response by megabytes.
    if profile.to_string().len() > MAX_PROFILE_BYTES {
        return Err(ScimError::InvalidValue(format!(
            "The user's attributes take at most {MAX_PROFILE_BYTES} bytes."
        )));
    }
    Ok(UserInput {
        given_name: part("givenName")?,
        family_name: part("familyName")?,
        external_id: text(get_ci(body, "externalId"), "externalId", MAX_ID_CHARS)?
            .filter(|e| !e.is_empty()),
        profile,
        user_name,
        email,
        active,
    })
}

/// The member as a SCIM User.
pub fn to_json(
    row: &MemberRow,
    fields: &ScimFields,
    groups: &[(String, String)],
    base: &str,
) -> Value {
    let user = &row.user;
    let full = user.display_name();
    let mut resource = json!({
        "schemas": [SCHEMA],
        "id": user.id,
        "userName": fields.user_name.clone().unwrap_or_else(|| user.email.clone()),
        "name": {
            "givenName": user.first_name,
            "familyName": user.last_name,
            "formatted": full,
        },
        "displayName": if full.is_empty() { user.email.clone() } else { full },
        "emails": [{ "value": user.email, "type": "work", "primary": true }],
        "active": row.membership.is_active(),
        "groups": groups.iter().map(|(id, name)| json!({
            "value": id,
            "display": name,
            "$ref": format!("{base}/Groups/{id}"),
        })).collect::<Vec<_>>(),
    });
    if let Some(external_id) = &fields.external_id {
        resource["externalId"] = json!(external_id);
    }
    let profile = fields.profile.as_deref().map(serde_json::from_str::<Value>);
    if let Some(Ok(Value::Object(profile))) = profile {
        overlay(&mut resource, &profile, row);
    }
    let version = version_of(&resource);
    resource["meta"] = json!({
        "resourceType": "User",
        "created": timefmt::iso_time(row.membership.created_at),
        "lastModified": timefmt::iso_time(fields.updated_at.unwrap_or(row.membership.created_at)),
        "location": format!("{base}/Users/{}", user.id),
        "version": version,
    });
    resource
}

/// What the IdP sent replaces the derived attributes it owns, so it reads back what it
/// wrote; the account's own name and the membership's status stay authoritative.
fn overlay(resource: &mut Value, profile: &serde_json::Map<String, Value>, row: &MemberRow) {
    let Value::Object(out) = resource else { return };
    for key in ["userName", "name", "displayName", "emails"] {
        match profile.get(key) {
            Some(value) => {
                out.insert(key.into(), value.clone());
            }
            None if key != "userName" => {
                out.remove(key);
            }
            None => {}
        }
    }
    if let Some(Value::Object(name)) = out.get_mut("name") {
        for (key, value) in [
            ("givenName", &row.user.first_name),
            ("familyName", &row.user.last_name),
        ] {
            if let Some(slot) = name.iter_mut().find(|(k, _)| k.eq_ignore_ascii_case(key)) {
                *slot.1 = json!(value);
            }
        }
    }
    // Unset `active` reads as active; a deactivation, from here or the portal, shows.
    if row.membership.is_active() && !profile.contains_key("active") {
        out.remove("active");
    }
}

/// SCIM Users for these members, each with its fields and groups (two queries).
pub fn resources(
    conn: &mut DbConnection,
    org_id: &str,
    rows: &[MemberRow],
    base: &str,
) -> Result<Vec<Value>, ScimError> {
    let ids: Vec<String> = rows.iter().map(|r| r.user.id.clone()).collect();
    let fields = scim::fields_of(conn, org_id, &ids)?;
    let groups = scim::groups_of(conn, org_id, &ids)?;
    Ok(rows
        .iter()
        .map(|row| {
            let f = fields
                .iter()
                .find(|(id, _)| *id == row.user.id)
                .map(|(_, f)| f.clone())
                .unwrap_or_default();
            let g: Vec<(String, String)> = groups
                .iter()
                .filter(|(user, _, _)| *user == row.user.id)
                .map(|(_, id, name)| (id.clone(), name.clone()))
                .collect();
            to_json(row, &f, &g, base)
        })
        .collect())
}

fn load(conn: &mut DbConnection, call: &Call, id: &str) -> Result<MemberRow, ScimError> {
    memberships::find(conn, &call.token.org_id, id)?.ok_or(ScimError::NotFound)
}

pub fn get(conn: &mut DbConnection, call: &Call, id: &str) -> Result<Value, ScimError> {
    let row = load(conn, call, id)?;
    let mut found = resources(conn, &call.token.org_id, &[row], &call.base)?;
    Ok(found.remove(0))
}

/// What a filter pins down that a query can use: a userName it requires, and a
/// membership status. The filter is still applied to every resource found.
#[derive(Debug, Default, PartialEq, Eq)]
struct Narrowed {
    user_name: Option<String>,
    external_id: Option<String>,
    status: Option<&'static str>,
}

fn narrow(filter: &Filter) -> Narrowed {
    match filter {
        Filter::Compare {
            path,
            op: CompareOp::Eq,
            value,
        } if path.is("userName") => Narrowed {
            user_name: value.as_str().map(str::to_string),
            ..Narrowed::default()
        },
        // externalId is compared exactly (caseExact), so the stored value is the one.
        Filter::Compare {
            path,
            op: CompareOp::Eq,
            value,
        } if path.is("externalId") => Narrowed {
            external_id: value.as_str().map(str::to_string),
            ..Narrowed::default()
        },
        Filter::Compare {
            path,
            op: CompareOp::Eq,
            value,
        } if path.is("active") => Narrowed {
            status: as_bool(value).map(|active| {
                if active {
                    memberships::ACTIVE
                } else {
                    memberships::INACTIVE
                }
            }),
            ..Narrowed::default()
        },
        Filter::And(a, b) => {
            let (a, b) = (narrow(a), narrow(b));
            Narrowed {
                user_name: a.user_name.or(b.user_name),
                external_id: a.external_id.or(b.external_id),
                status: a.status.or(b.status),
            }
        }
        _ => Narrowed::default(),
    }
}

/// Members read per query while a filter is applied.
const SCAN_CHUNK: i64 = 500;

/// One page of the organization's Users: those `filter` matches (all without one), in a
/// stable order (by membership creation, then id), from `start_index` (1-based), at most
/// `count`. Answers the total that match and the page.
pub fn list(
    conn: &mut DbConnection,
    call: &Call,
    filter: Option<&Filter>,
    start_index: i64,
    count: i64,
) -> Result<(i64, Vec<Value>), ScimError> {
    let org_id = call.token.org_id.clone();
    let skip = start_index.max(1) - 1;
    let Some(filter) = filter else {
        return every_member(conn, call, skip, count);
    };
    let narrowed = narrow(filter);
    let pinned: Option<Vec<MemberRow>> = match (&narrowed.user_name, &narrowed.external_id) {
        (Some(user_name), _) => Some(
            scim::member_by_user_name(conn, &org_id, user_name)?
                .into_iter()
                .collect(),
        ),
        (None, Some(external_id)) => {
            Some(scim::members_by_external_id(conn, &org_id, external_id)?)
        }
        (None, None) => None,
    };
    if let Some(rows) = pinned {
        let found: Vec<Value> = resources(conn, &org_id, &rows, &call.base)?
            .into_iter()
            .filter(|r| filter.matches(r))
            .collect();
        let total = found.len() as i64;
        let page = found
            .into_iter()
            .skip(skip as usize)
            .take(count as usize)
            .collect();
        return Ok((total, page));
    }
    let scan_limit = call.scan_limit;
    let (mut total, mut page, mut after, mut scanned) = (0i64, Vec::new(), None, 0i64);
    loop {
        let rows = scim::members_after(conn, &org_id, narrowed.status, after, SCAN_CHUNK)?;
        let read = rows.len() as i64;
        scanned += read;
        if scanned > scan_limit {
            return Err(ScimError::TooMany(format!(
                "This filter would have the server read more than {scan_limit} members. Filter by userName or externalId (eq), or list without a filter, page by page."
            )));
        }
        after = rows
            .last()
            .map(|r| (r.membership.created_at, r.user.id.clone()));
        for resource in resources(conn, &org_id, &rows, &call.base)? {
            if filter.matches(&resource) {
                if total >= skip && (page.len() as i64) < count {
                    page.push(resource);
                }
                total += 1;
            }
        }
        if read < SCAN_CHUNK {
            break;
        }
    }
    Ok((total, page))
}

/// One page of all the organization's Users. The total is the membership counters' (one
/// read, exact); the page starts after the member the token's previous page ended on
/// when its identity provider pages on (`scim_cursors`), else after the member before
/// `skip`, found on the index alone.
fn every_member(
    conn: &mut DbConnection,
    call: &Call,
    skip: i64,
    count: i64,
) -> Result<(i64, Vec<Value>), ScimError> {
    let org_id = &call.token.org_id;
    let counts = member_counts::by_status(conn, org_id)?;
    let total = counts.members();
    let after = match skip {
        0 => None,
        _ => match scim_cursors::recall(conn, &call.token.token_id, skip)? {
            Some(place) => Some(place),
            None => scim::place_at(conn, org_id, skip - 1)?,
        },
    };
    if skip > 0 && after.is_none() {
        return Ok((total, Vec::new()));
    }
    let rows = scim::members_after(conn, org_id, None, after, count)?;
    // A short page is the last: nothing comes after it to continue from.
    if let Some(last) = rows.last().filter(|_| rows.len() as i64 == count) {
        let place = (last.membership.created_at, last.user.id.clone());
        scim_cursors::remember(conn, &call.token.token_id, skip + rows.len() as i64, place);
    }
    Ok((total, resources(conn, org_id, &rows, &call.base)?))
}

fn writer(call: &Call) -> Result<Actor, ScimError> {
    let actor = call.token.as_actor();
    members::require(&actor, Permission::UsersManage)?;
    Ok(actor)
}

fn taken(user_name: &str) -> ScimError {
    ScimError::Uniqueness(format!(
        "A member with userName {user_name:?} already exists in this organization."
    ))
}

/// Provisions a member: a new account (without a password: they set one through
/// "Forgot password") or an existing one from another organization that has no password
/// yet, with the token's role. Answers the new User.
pub fn create(conn: &mut DbConnection, call: &Call, body: &Value) -> Result<Value, ScimError> {
    let actor = writer(call)?;
    let input = read_input(body)?;
    let user_id = in_org(conn, call, |conn| create_in_tx(conn, call, &actor, &input))?;
    get(conn, call, &user_id)
}

fn create_in_tx(
    conn: &mut DbConnection,
    call: &Call,
    actor: &Actor,
    input: &UserInput,
) -> Result<String, ScimError> {
    let org_id = &call.token.org_id;
    new_name_part("givenName", &input.given_name, None)?;
    new_name_part("familyName", &input.family_name, None)?;
    let email = match &input.email {
        Some(email) => new_address(email.as_str())?,
        None => placeholder_email(),
    };
    if scim::member_by_user_name(conn, org_id, &input.user_name)?.is_some()
        || scim::member_by_email(conn, org_id, &email)?.is_some()
    {
        return Err(taken(&input.user_name));
    }
    let role = roles::find(conn, org_id, &call.token.role_id)?
        .ok_or_else(|| ScimError::Conflict("The token's role no longer exists.".into()))?;
    if !actor.standing().may_grant(Standing::of_role(&role)) {
        return Err(ScimError::Forbidden(
            "The token cannot grant a role above its own.".into(),
        ));
    }
    // Before the account, in the order an acceptance takes them (the invitation, then
    // the address).
    invitations::withdraw_for_member(
        conn,
        org_id,
        &email,
        (&actor.user_id, &actor.email),
        &call.origin,
    )?;
    let name = (input.given_name.as_str(), input.family_name.as_str());
    let user = match new_account::create(conn, &email, name, None, "none")? {
        Some(user) => user,
        None => {
            // Held, so an organization that owns it alone cannot re-address it while it
            // joins this one.
            let existing = users::find_by_email_held(conn, &email)?.ok_or_else(|| {
                ScimError::Conflict(format!(
                    "The account with the address {email:?} changed meanwhile. Try again."
                ))
            })?;
            if !policy::provisioning_may_attach(existing.password_hash.is_some()) {
                return Err(ScimError::Uniqueness(format!(
                    "An account with the address {email:?} already exists and signs in with a password of its own. \
                     Invite it from the portal: its owner accepts from the email, and userName then finds the member."
                )));
            }
            existing
        }
    };
    memberships::insert(conn, org_id, &user, &role.id)?;
    // A token hands out no access beyond its maker's own (`policy::access_within`).
    if let Some(until) = actor.access_until {
        memberships::set_access_until(conn, org_id, &user.id, Some(until))?;
    }
    if !input.wants_active() {
        memberships::set_status(conn, org_id, &user.id, memberships::INACTIVE)?;
    }
    scim::set_fields(
        conn,
        org_id,
        &user.id,
        &ScimFields {
            external_id: input.external_id.clone(),
            user_name: input.stored_user_name(),
            profile: Some(input.profile.to_string()),
            updated_at: Some(call.now),
        },
    )?;
    audit::record(
        conn,
        &Event::new(ACTION_PROVISIONED, &call.origin)
            .org(org_id)
            .actor(&actor.user_id, &actor.email)
            .target("user", &user.id, &user.email)
            .details(json!({
                "role": role.name,
                "active": input.wants_active(),
                "external_id": input.external_id,
                "via": "scim",
                // Its maker's end of access, which the member takes: the event that later
                // ends the membership has this one to explain it.
                "access_until": actor.access_until.map(|u| crate::domain::access_until::last_day(u).to_string()),
            })),
    )?;
    Ok(user.id)
}

/// Replaces the member's attributes with `body` (PUT).
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

/// Applies a PATCH request's operations (all or none) in one transaction.
pub fn patch(
    conn: &mut DbConnection,
    call: &Call,
    id: &str,
    if_match: Option<&str>,
    ops: &[PatchOp],
) -> Result<Value, ScimError> {
    update(conn, call, id, if_match, |current| {
        let mut patched = current.clone();
        apply_patch(&mut patched, ops)?;
        read_input(&patched)
    })
}

/// Changes the member to what `change` makes of its current representation, in one
/// transaction holding the organization (PATCH and PUT).
pub fn update(
    conn: &mut DbConnection,
    call: &Call,
    id: &str,
    if_match: Option<&str>,
    change: impl FnOnce(&Value) -> Result<UserInput, ScimError>,
) -> Result<Value, ScimError> {
    let actor = writer(call)?;
    in_org(conn, call, |conn| {
        let current = get(conn, call, id)?;
        check_version(&current, if_match)?;
        let input = change(&current)?;
        apply(conn, call, &actor, id, &input)
    })?;
    get(conn, call, id)
}

fn apply(
    conn: &mut DbConnection,
    call: &Call,
    actor: &Actor,
    id: &str,
    input: &UserInput,
) -> Result<(), ScimError> {
    let org_id = &call.token.org_id;
    let target = load(conn, call, id)?;
    members::check_target_rank(conn, actor, &target)?;
    let old_fields = scim::fields_of(conn, org_id, std::slice::from_ref(&target.user.id))?
        .pop()
        .map(|(_, f)| f)
        .unwrap_or_default();
    if let Some(other) = scim::member_by_user_name(conn, org_id, &input.user_name)?
        && other.user.id != target.user.id
    {
        return Err(taken(&input.user_name));
    }
    let mut changed = serde_json::Map::new();
    let email = input
        .email
        .as_ref()
        .map_or(target.user.email.as_str(), Email::as_str);
    if email != target.user.email {
        // Links mailed to the old address (a password reset, an account set-up) must not
        // open the account at its new one: whoever read the old mailbox could otherwise
        // wait for another organization to provision the new address, then set the
        // password of an account that organization took for its own. Killed before the
        // account is held, as a reset in flight takes its link, then the account (a
        // refusal below rolls this back).
        // In turn with a reset request being handled, which then reads the new address.
        crate::db::reset_links_lock(conn, &target.user.id)?;
        password_resets::delete_unused_for_user(conn, &target.user.id)?;
        setup_tokens::delete_unused_for_user(conn, &target.user.id)?;
    }
    let owned = members::org_owns_account_held(conn, &target.user)?;
    if email != target.user.email {
        new_address(email)?;
        if !owned {
            return Err(ScimError::Mutability(
                "This account is not this organization's alone (it belongs to other organizations too, or runs the platform): only its owner can change its email address.".into(),
            ));
        }
        // A new address is the account itself (a password reset to it signs in): a maker
        // whose access ends must not take, through it, an account whose access lasts.
        if !policy::access_within(actor.access_until, target.membership.access_until) {
            return Err(ScimError::Forbidden(format!(
                "This token's maker has access until {} only, and this member's lasts longer: their email address cannot be changed with this token.",
                crate::domain::access_until::field_value(actor.access_until)
            )));
        }
        if users::find_by_email(conn, email)?.is_some() {
            return Err(taken(email));
        }
        scim::set_email(conn, &target.user.id, email)?;
        // The old mailbox hears of it: whoever reads the new one can reset the password.
        let org = organizations::find(conn, org_id)?.ok_or(ScimError::NotFound)?;
        notices::tell_old_address(
            conn,
            &target.user.first_name,
            (&target.user.email, email),
            &org.name,
        )?;
        changed.insert("old_email".into(), json!(target.user.email));
        changed.insert("new_email".into(), json!(email));
    }
    let renamed =
        input.given_name != target.user.first_name || input.family_name != target.user.last_name;
    // An account shared with other organizations keeps its name: it is not ours to edit.
    if renamed && policy::may_rename_account(false, owned) {
        new_name_part(
            "givenName",
            &input.given_name,
            Some(&target.user.first_name),
        )?;
        new_name_part(
            "familyName",
            &input.family_name,
            Some(&target.user.last_name),
        )?;
        users::set_name(conn, &target.user.id, &input.given_name, &input.family_name)?;
        memberships::set_sort_name(
            conn,
            &target.user.id,
            &sort_key(&input.given_name, &input.family_name),
        )?;
        changed.insert("old_name".into(), json!(target.user.display_name()));
        changed.insert(
            "new_name".into(),
            json!(crate::domain::names::full_name(
                &input.given_name,
                &input.family_name
            )),
        );
    }
    let fields = ScimFields {
        external_id: input.external_id.clone(),
        user_name: input.stored_user_name(),
        profile: Some(input.profile.to_string()),
        updated_at: Some(call.now),
    };
    if fields.external_id != old_fields.external_id {
        changed.insert("external_id".into(), json!(fields.external_id));
    }
    if fields.user_name != old_fields.user_name {
        changed.insert("user_name".into(), json!(input.user_name));
    }
    scim::set_fields(conn, org_id, &target.user.id, &fields)?;
    if !changed.is_empty() {
        changed.insert("via".into(), json!("scim"));
        audit::record(
            conn,
            &Event::new("member.updated", &call.origin)
                .org(org_id)
                .actor(&actor.user_id, &actor.email)
                .target("user", &target.user.id, email)
                .details(Value::Object(changed)),
        )?;
    }
    match (target.membership.is_active(), input.wants_active()) {
        (true, false) => members::deactivate_in_tx(conn, actor, id, &call.origin)?,
        (false, true) => members::activate_in_tx(conn, actor, id, &call.origin)?,
        _ => {}
    }
    Ok(())
}

/// Removes the member from the organization, as the portal's "Delete" does.
/// Removes the member from the organization, unless `if_match` names another version than
/// the current one (the member was provisioned again since the client last read it).
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
            check_version(&get(conn, call, id)?, if_match)?;
        }
        load(conn, call, id)?;
        let maker = call.token.maker_id.as_deref();
        members::remove_unconfirmed_in_tx(conn, &actor, id, maker, &call.origin)?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_user_name_is_the_email_when_it_is_one() {
        let input = read_input(&json!({
            "userName": "Ada@Example.com",
            "name": {"givenName": "Ada", "familyName": "Lovelace"},
            "externalId": "00u1",
        }))
        .unwrap();
        assert_eq!(input.email.as_ref().unwrap().as_str(), "ada@example.com");
        assert_eq!(input.stored_user_name(), None);
        assert_eq!(input.active, None);
        assert_eq!(input.profile["userName"], "Ada@Example.com");
        assert!(input.profile.get("active").is_none());
        assert_eq!(input.external_id.as_deref(), Some("00u1"));
    }

    #[test]
    fn a_login_name_takes_the_email_from_emails() {
        let input = read_input(&json!({
            "userName": "ada",
            "emails": [
                {"value": "home@example.com", "type": "home"},
                {"value": "ada@work.example", "type": "work"},
            ],
            "active": "False",
        }))
        .unwrap();
        assert_eq!(input.stored_user_name().as_deref(), Some("ada"));
        assert_eq!(input.email.unwrap().as_str(), "ada@work.example");
        assert_eq!(input.active, Some(false));
        assert_eq!(input.profile["active"], false);
    }

    #[test]
    fn a_login_name_without_emails_is_accepted_without_an_address() {
        let input = read_input(&json!({"userName": "ada"})).unwrap();
        assert_eq!(input.email, None);
        assert_eq!(input.stored_user_name().as_deref(), Some("ada"));
        assert!(placeholder_email().ends_with("@scim.invalid"));
    }

    #[test]
    fn a_body_without_a_usable_user_name_is_an_invalid_value() {
        for body in [
            json!({}),
            json!({"userName": ""}),
            json!({"userName": 5}),
            json!({"userName": "a@b.example", "active": "maybe"}),
        ] {
            let e = read_input(&body).unwrap_err();
            assert_eq!(e.scim_type(), Some("invalidValue"), "{body}");
        }
        assert_eq!(
            read_input(&json!([1])).unwrap_err().scim_type(),
            Some("invalidSyntax")
        );
    }
}
