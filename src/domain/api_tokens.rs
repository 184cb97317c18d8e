//! An organization's API tokens (issue 15, item 1): the credential an identity provider
//! uses on the SCIM server.
//!
//! - Only Admins (`org.manage`) create, list and revoke them.
//! - A token is `pcs_` + 32 random bytes from the OS (URL-safe base64): the prefix lets
//!   secret scanners recognize a leaked one. Only its SHA-256 is stored; it is shown once.
//! - Scopes come from a fixed set: `scim` (read and write) and `read` (read only).
//! - The token carries a role: the role SCIM gives the members it creates, and the rank
//!   the token acts with. It is at most the creating Admin's own rank.
//! - Expiry: 365 days unless chosen otherwise; "never" is allowed, and the page warns.
//! - Using a token records "last used" at most once a minute.
//! - The token acts as a service actor, recorded in the audit trail as `token:<name>`.

use chrono::{Duration, NaiveDateTime};
use serde::Deserialize;
use serde_json::json;

use super::members::Actor;
use super::policy::Standing;
use super::roles::{Permission, PermissionSet};
use super::two_factor_policy::{Demand, demand_for};
use super::{FieldErrors, RuleError, timefmt, tokens};
use crate::audit::{self, Event, Origin};
use crate::db::api_tokens::{self, ApiToken};
use crate::db::roles::{self, Role};
use crate::db::{self, DbConnection, organizations};

pub const PREFIX: &str = "pcs_";
pub const DEFAULT_EXPIRY_DAYS: i64 = 365;
/// Ten years: beyond that, "never" says it honestly.
pub const MAX_EXPIRY_DAYS: i64 = 3650;
pub const MAX_NAME_CHARS: usize = 100;
/// "Last used" is written at most this often per token.
pub const TOUCH_INTERVAL_SECS: i64 = 60;
pub const ACTION_CREATED: &str = "api_token.created";
pub const ACTION_REVOKED: &str = "api_token.revoked";

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    /// Provision members and groups over SCIM: read and write.
    Scim,
    /// Read members and groups over SCIM only.
    Read,
}

impl Scope {
    pub const ALL: [Scope; 2] = [Scope::Scim, Scope::Read];

    pub fn parse(s: &str) -> Option<Scope> {
        match s.trim() {
            "scim" => Some(Scope::Scim),
            "read" => Some(Scope::Read),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Scim => "scim",
            Scope::Read => "read",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Scope::Scim => "SCIM provisioning (read and write)",
            Scope::Read => "Read only",
        }
    }
}

/// A comma list as stored, read leniently: an unknown word grants nothing.
pub fn parse_scopes(list: &str) -> Vec<Scope> {
    let mut scopes: Vec<Scope> = list.split(',').filter_map(Scope::parse).collect();
    scopes.sort();
    scopes.dedup();
    scopes
}

fn scopes_text(scopes: &[Scope]) -> String {
    scopes
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

/// The create form: `name`, `scopes` (repeated), `expires_days` (a number or `never`),
/// `role_id` (the role SCIM gives the members it creates).
#[derive(Clone, Default, Deserialize)]
pub struct CreateForm {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub scopes: Vec<String>,
    #[serde(default)]
    pub expires_days: String,
    #[serde(default)]
    pub role_id: String,
    /// This rendering of the form, so that sending it again makes no second token.
    #[serde(default)]
    pub form_id: String,
    /// The maker's password, asked past a recent sign-in (checked by the web layer, which
    /// holds the session).
    #[serde(default)]
    pub password: String,
}

/// The form's name, scopes and expiry, or what to correct next to each field.
pub fn read_form(form: &CreateForm) -> Result<(String, Vec<Scope>, Option<i64>), FieldErrors> {
    let mut errors = FieldErrors::default();
    let name = form.name.trim().to_string();
    if name.is_empty() {
        errors.add("name", "Enter a name that says where the token is used.");
    } else if name.chars().count() > MAX_NAME_CHARS {
        errors.add("name", "The name is at most 100 characters.");
    } else if super::names::hides_text(&name) {
        errors.add("name", super::names::HIDES_TEXT);
    }
    let mut scopes = Vec::new();
    for s in &form.scopes {
        match Scope::parse(s) {
            Some(scope) if !scopes.contains(&scope) => scopes.push(scope),
            Some(_) => {}
            None => errors.add("scopes", "Choose scopes from the list."),
        }
    }
    scopes.sort();
    if form.scopes.is_empty() {
        errors.add("scopes", "Choose at least one scope.");
    }
    let expiry = form.expires_days.trim();
    let days = match expiry {
        "" => Some(Some(DEFAULT_EXPIRY_DAYS)),
        "never" => Some(None),
        n => match n.parse::<i64>() {
            Ok(d) if (1..=MAX_EXPIRY_DAYS).contains(&d) => Some(Some(d)),
            _ => {
                errors.add(
                    "expires_days",
                    "The expiry is a whole number of days from 1 to 3650, or never.",
                );
                None
            }
        },
    };
    match days {
        Some(days) if errors.is_empty() => Ok((name, scopes, days)),
        _ => Err(errors),
    }
}

/// A token just made: the secret, shown once, and what was stored.
#[derive(Debug, Clone)]
pub struct Created {
    pub secret: String,
    pub token: ApiToken,
}

/// Whether a member standing at `maker` may make, or act through, a token with `scopes`.
/// A scim token is the organization's identity provider: it names accounts (email,
/// userName, externalId), and the provider gives the accounts it finds by those names
/// what it pushes, an admin group included. A maker who could not grant every role could
/// name an account they hold the password of (one whose invitation they accepted from
/// their own mailbox) `ceo@`, then watch the provider raise it; so only a maker who is
/// shown accept links (`policy::sees_accept_links`) may.
fn may_connect_identity_provider(
    conn: &mut DbConnection,
    org_id: &str,
    maker: &Standing,
    scopes: &[Scope],
) -> diesel::QueryResult<bool> {
    if !scopes.contains(&Scope::Scim) {
        return Ok(true);
    }
    let roles = roles::list(conn, org_id)?;
    Ok(super::policy::sees_accept_links(maker, &roles))
}

/// A fresh secret: the prefix and 32 random bytes from the OS.
pub fn generate() -> String {
    format!("{PREFIX}{}", tokens::generate())
}

/// Makes a token, with its audit event, in one transaction. The role must be one of the
/// organization's and rank no higher than the actor's.
pub fn create(
    conn: &mut DbConnection,
    actor: &Actor,
    form: &CreateForm,
    now: NaiveDateTime,
    origin: &Origin,
) -> Result<Created, RuleError> {
    super::members::require(actor, Permission::OrgManage)?;
    let (name, scopes, days) = read_form(form).map_err(RuleError::Invalid)?;
    if !super::policy::access_within(actor.access_until, days.map(|d| now + Duration::days(d))) {
        let why = super::members::beyond_own_access(actor);
        return Err(RuleError::invalid("expires_days", &why));
    }
    // Under the organization's lock, as a role's deletion counts the tokens that hold it.
    super::members::in_org_tx(conn, actor, |conn| {
        let role = roles::find(conn, &actor.org_id, form.role_id.trim())?.ok_or_else(|| {
            RuleError::invalid("role_id", "Choose one of the organization's roles.")
        })?;
        if !actor.standing().may_grant(Standing::of_role(&role)) {
            return Err(RuleError::invalid(
                "role_id",
                "Choose a role that ranks no higher than your own.",
            ));
        }
        // The token acts with more than its role when it writes: it may not hold more
        // than the member making it.
        let token = Standing {
            perms: holds(&scopes, role.permission_set()),
            rank: role.rank,
        };
        if !actor.standing().may_grant(token) {
            return Err(RuleError::invalid(
                "scopes",
                "A token with the scim scope manages members and groups: only a member who holds users.manage and groups.manage may make one.",
            ));
        }
        if !may_connect_identity_provider(conn, &actor.org_id, &actor.standing(), &scopes)? {
            return Err(RuleError::invalid(
                "scopes",
                "A token with the scim scope connects the organization's identity provider, which may give any role to the accounts it finds: only a member who may grant every role here may make one.",
            ));
        }
        name_free(conn, &actor.org_id, &name, now)?;
        let creator = (Some(actor.user_id.as_str()), actor.email.as_str());
        insert_token(
            conn,
            &actor.org_id,
            &name,
            &scopes,
            &role,
            days,
            creator,
            now,
            origin,
        )
    })
}

/// The audit trail names a token's actions by its name: two working tokens of one name
/// would act as one there.
fn name_free(
    conn: &mut DbConnection,
    org_id: &str,
    name: &str,
    now: NaiveDateTime,
) -> Result<(), RuleError> {
    if api_tokens::live_name_taken(conn, org_id, name, now)? {
        return Err(RuleError::invalid(
            "name",
            "A token that is neither revoked nor expired has this name: choose another, or revoke that one first, so that the audit trail tells their actions apart.",
        ));
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn insert_token(
    conn: &mut DbConnection,
    org_id: &str,
    name: &str,
    scopes: &[Scope],
    role: &Role,
    days: Option<i64>,
    (created_by, created_by_email): (Option<&str>, &str),
    now: NaiveDateTime,
    origin: &Origin,
) -> Result<Created, RuleError> {
    let secret = generate();
    let token = ApiToken {
        id: db::new_id(),
        org_id: org_id.to_string(),
        name: name.to_string(),
        scopes: scopes_text(scopes),
        role_id: role.id.clone(),
        token_hash: tokens::hash(&secret),
        created_by: created_by.map(str::to_string),
        created_by_email: created_by_email.to_string(),
        created_at: now,
        last_used_at: None,
        expires_at: days.map(|d| now + Duration::days(d)),
        revoked_at: None,
    };
    api_tokens::insert(conn, &token)?;
    let mut event = Event::new(ACTION_CREATED, origin)
        .org(org_id)
        .target("api_token", &token.id, &token.name)
        .details(json!({
            "scopes": token.scopes,
            "role": role.name,
            "expires_at": token.expires_at.map(timefmt::iso_time),
            "via": if created_by.is_some() { "web" } else { "cli" },
        }));
    if let Some(id) = created_by {
        event = event.actor(id, created_by_email);
    }
    audit::record(conn, &event)?;
    Ok(Created { secret, token })
}

/// The command line's token (`portcullis create-api-token`): for the organization
/// `org_slug`, with the role named `role_name` (Admin when none is named), never
/// expiring unless `expires_days` says otherwise.
pub fn create_from_cli(
    conn: &mut DbConnection,
    org_slug: &str,
    name: &str,
    scopes: &[String],
    role_name: Option<&str>,
    expires_days: Option<i64>,
) -> Result<Created, RuleError> {
    let form = CreateForm {
        name: name.into(),
        scopes: scopes.to_vec(),
        expires_days: expires_days.map_or("never".into(), |d| d.to_string()),
        ..CreateForm::default()
    };
    let (name, scopes, days) = read_form(&form).map_err(RuleError::Invalid)?;
    db::write_tx(conn, |conn| {
        let org = organizations::find_by_slug(conn, org_slug)?.ok_or(RuleError::NotFound)?;
        // As a role's deletion counts the tokens that hold it under this lock.
        organizations::lock(conn, &org.id)?;
        // Least privilege when nobody chose: every member SCIM creates gets this role.
        let wanted = role_name.unwrap_or("Member");
        let role = roles::list(conn, &org.id)?
            .into_iter()
            .find(|r| r.name.eq_ignore_ascii_case(wanted) || r.key.eq_ignore_ascii_case(wanted))
            .ok_or_else(|| RuleError::invalid("role_id", "No role of that name."))?;
        let now = db::now();
        name_free(conn, &org.id, &name, now)?;
        let origin = Origin::default();
        insert_token(
            conn,
            &org.id,
            &name,
            &scopes,
            &role,
            days,
            (None, COMMAND_LINE),
            now,
            &origin,
        )
    })
}

/// Revokes one of the organization's tokens, with its audit event. Another
/// organization's token, an unknown one and one already revoked are "not found".
pub fn revoke(
    conn: &mut DbConnection,
    actor: &Actor,
    id: &str,
    now: NaiveDateTime,
    origin: &Origin,
) -> Result<String, RuleError> {
    super::members::require(actor, Permission::OrgManage)?;
    super::members::in_org_tx(conn, actor, |conn| {
        let token = api_tokens::find(conn, &actor.org_id, id)?.ok_or(RuleError::NotFound)?;
        if !api_tokens::revoke(conn, &actor.org_id, id, now)? {
            return Err(RuleError::NotFound);
        }
        audit::record(
            conn,
            &Event::new(ACTION_REVOKED, origin)
                .org(&actor.org_id)
                .actor(&actor.user_id, &actor.email)
                .target("api_token", &token.id, &token.name),
        )?;
        Ok(token.name)
    })
}

/// A token's state as the list shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Active,
    Expired,
    Revoked,
    /// Live, but its maker no longer holds what it holds (`maker_still_holds`): it acts
    /// again if they do.
    Suspended,
    /// Its maker left the organization after making it: it never acts again, even if
    /// they are invited back.
    Orphaned,
}

impl State {
    pub fn of(token: &ApiToken, now: NaiveDateTime) -> State {
        if token.revoked_at.is_some() {
            State::Revoked
        } else if token.expires_at.is_some_and(|e| e <= now) {
            State::Expired
        } else {
            State::Active
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            State::Active => "active",
            State::Expired => "expired",
            State::Revoked => "revoked",
            State::Suspended => "suspended",
            State::Orphaned => "orphaned",
        }
    }
}

/// One row of the list.
#[derive(Debug, Clone)]
pub struct TokenRow {
    pub id: String,
    pub name: String,
    pub scopes: String,
    pub role: String,
    pub created_by: String,
    pub created: String,
    pub last_used: String,
    pub expires: String,
    pub never_expires: bool,
    pub state: State,
}

pub fn list(
    conn: &mut DbConnection,
    actor: &Actor,
    now: NaiveDateTime,
) -> Result<Vec<TokenRow>, RuleError> {
    super::members::require(actor, Permission::OrgManage)?;
    let mut rows = Vec::new();
    for (t, role) in api_tokens::list(conn, &actor.org_id)? {
        let state = match State::of(&t, now) {
            State::Active if maker_still_holds(conn, &t, &role, now)?.is_none() => {
                match maker_left(conn, &t)? {
                    true => State::Orphaned,
                    false => State::Suspended,
                }
            }
            state => state,
        };
        rows.push((t, role, state));
    }
    Ok(rows
        .into_iter()
        .map(|(t, role, state)| TokenRow {
            state,
            id: t.id,
            name: t.name,
            scopes: t.scopes.replace(',', ", "),
            role: role.name,
            created_by: t.created_by_email,
            created: timefmt::date(t.created_at),
            last_used: t
                .last_used_at
                .map_or("Never".into(), |at| timefmt::relative(now, at)),
            expires: t.expires_at.map_or("Never".into(), timefmt::date),
            never_expires: t.expires_at.is_none(),
        })
        .collect())
}

/// Whether the token's maker left the organization after making it: they are no member
/// now, or their membership began after the token was made (`maker_still_holds`).
fn maker_left(conn: &mut DbConnection, token: &ApiToken) -> diesel::QueryResult<bool> {
    let Some(maker) = &token.created_by else {
        return Ok(false);
    };
    Ok(
        match crate::db::memberships::find(conn, &token.org_id, maker)? {
            None => true,
            Some(row) => made_before(&row.membership, token),
        },
    )
}

/// Whether the token was made before the membership began (by more than instances'
/// clocks may disagree), under an earlier membership since ended.
fn made_before(membership: &crate::db::memberships::Membership, token: &ApiToken) -> bool {
    membership.created_at > token.created_at + super::policy::CLOCK_SKEW
}

/// The roles a token made by this actor may carry: those the actor may grant.
pub fn grantable_roles(conn: &mut DbConnection, actor: &Actor) -> Result<Vec<Role>, RuleError> {
    super::members::require(actor, Permission::OrgManage)?;
    let standing = actor.standing();
    Ok(super::policy::grantable(
        &standing,
        roles::list(conn, &actor.org_id)?,
    ))
}

/// Who is calling with a valid token: the organization is the tenant.
#[derive(Debug, Clone)]
pub struct TokenActor {
    pub token_id: String,
    pub name: String,
    pub org_id: String,
    pub scopes: Vec<Scope>,
    /// The role given to members the token creates.
    pub role_id: String,
    pub role_rank: i64,
    pub role_permissions: PermissionSet,
    /// When the access of the member who made the token ends, if it does: the members it
    /// provisions get the same end.
    pub maker_access_until: Option<NaiveDateTime>,
    /// The member who made it (none for a command-line token): what they may not do for
    /// themselves, the token may not do for them.
    pub maker_id: Option<String>,
    /// The app's clock when the request came in.
    pub now: NaiveDateTime,
}

impl TokenActor {
    pub fn may_write(&self) -> bool {
        self.scopes.contains(&Scope::Scim)
    }

    /// How the audit trail names it.
    pub fn label(&self) -> String {
        format!("token:{}", self.name)
    }

    /// The token as the member rules see an actor (`holds`), at its role's rank.
    pub fn as_actor(&self) -> Actor {
        let perms = holds(&self.scopes, self.role_permissions);
        Actor {
            user_id: self.token_id.clone(),
            email: self.label(),
            org_id: self.org_id.clone(),
            rank: self.role_rank,
            perms,
            access_until: self.maker_access_until,
            now: self.now,
        }
    }
}

/// What a token holds. A writing token holds its role and manages members and groups
/// besides: it hands out its own role (and what lies within it), never more. A reading
/// token only reads.
fn holds(scopes: &[Scope], role: PermissionSet) -> PermissionSet {
    if scopes.contains(&Scope::Scim) {
        PermissionSet::of(&[
            Permission::UsersRead,
            Permission::UsersInvite,
            Permission::UsersManage,
            Permission::GroupsManage,
        ])
        .union(role)
    } else {
        PermissionSet::of(&[Permission::UsersRead])
    }
}

/// Why a presented token was refused: all read alike to the caller (401).
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("The bearer token is missing, unknown, revoked or expired.")]
    Invalid,
    #[error(transparent)]
    Db(#[from] diesel::result::Error),
}

/// Who made a token on the command line (no member: an operator of the host).
const COMMAND_LINE: &str = "command line";

/// A token made on the portal acts only while the member who made it is an active member
/// who still holds everything it holds: removed, deactivated or demoted, they must not go
/// on provisioning (and re-addressing accounts) through it; nor when they no longer hold
/// `org.manage`, which making a token takes. A command-line token has no
/// maker to ask; one whose maker's account was deleted (`created_by` is then empty, the
/// address kept) acts no more.
/// Nor does one whose maker the organization's two-factor policy now holds to enrolment.
/// Answers `None` when the token may not act, else when its maker's own access ends (the
/// members it provisions get no later end: `policy::access_within`).
fn maker_still_holds(
    conn: &mut DbConnection,
    token: &ApiToken,
    role: &Role,
    now: NaiveDateTime,
) -> diesel::QueryResult<Option<Option<NaiveDateTime>>> {
    let Some(maker) = &token.created_by else {
        return Ok((token.created_by_email == COMMAND_LINE).then_some(None));
    };
    let Some(row) = crate::db::memberships::find(conn, &token.org_id, maker)? else {
        return Ok(None);
    };
    // Made under an earlier membership of the maker's, since removed: being invited back
    // does not bring back the credentials the old membership made (deactivation, which
    // keeps the membership, only suspends them).
    if made_before(&row.membership, token) {
        return Ok(None);
    }
    if row.membership.status != "active"
        || !row.user.is_active()
        || row.membership.access_ended_by(now)
    {
        return Ok(None);
    }
    let group_roles = crate::db::memberships::group_roles(conn, &token.org_id, maker)?;
    let held = Standing {
        perms: holds(&parse_scopes(&token.scopes), role.permission_set()),
        rank: role.rank,
    };
    let standing = Standing::of_member(&row.role, &group_roles);
    // Making a token needs `org.manage`; a token re-addresses accounts, which nothing
    // short of it does on the portal, so it acts only while its maker still holds it.
    if !standing.may(Permission::OrgManage) || !standing.may_grant(held) {
        return Ok(None);
    }
    if !may_connect_identity_provider(conn, &token.org_id, &standing, &parse_scopes(&token.scopes))?
    {
        return Ok(None);
    }
    // Past the organization's two-factor deadline nothing of it is served to a maker who
    // has not enrolled: not through a token they made either.
    let policy = crate::db::org_two_factor::find(conn, &token.org_id)?;
    let demand = demand_for(conn, policy.as_ref(), maker, standing.perms.is_admin(), now)?;
    if matches!(demand, Demand::Blocked { .. }) {
        return Ok(None);
    }
    Ok(Some(row.membership.access_until))
}

/// Whether the token still acts, read again under the organization's lock: its request
/// was authenticated as it came in, and may have waited for the lock behind its maker's
/// demotion or removal.
pub fn still_acts(conn: &mut DbConnection, actor: &TokenActor) -> diesel::QueryResult<bool> {
    let Some(token) = api_tokens::find(conn, &actor.org_id, &actor.token_id)? else {
        return Ok(false);
    };
    let Some(role) = roles::find(conn, &actor.org_id, &token.role_id)? else {
        return Ok(false);
    };
    // Its role narrowed meanwhile, it acts with what it holds now.
    let held_now = Standing {
        perms: holds(&parse_scopes(&token.scopes), role.permission_set()),
        rank: role.rank,
    };
    // And within the maker's last day as it is now: a day set, or moved earlier, while the
    // request waited must not be handed out past (to members it creates, or by
    // re-addressing a lasting one). One lifted or moved later leaves the request its own.
    let Some(maker_until) = maker_still_holds(conn, &token, &role, actor.now)? else {
        return Ok(false);
    };
    Ok(State::of(&token, actor.now) == State::Active
        && held_now.holds_at_least(actor.as_actor().standing())
        && super::policy::access_within(maker_until, actor.maker_access_until))
}

/// A maker past their last day whom the expiry job has not come by yet: the calendar is
/// applied now, as their own next page would, and the token asked again (it acts on only
/// if they are the last admin, whose day is dropped instead).
fn apply_makers_calendar(
    conn: &mut DbConnection,
    token: &ApiToken,
    role: &Role,
    now: NaiveDateTime,
) -> Result<Option<Option<NaiveDateTime>>, TokenError> {
    let Some(maker) = &token.created_by else {
        return Ok(None);
    };
    let due = crate::db::memberships::find(conn, &token.org_id, maker)?.is_some_and(|row| {
        row.membership.status == "active" && row.membership.access_ended_by(now)
    });
    if !due {
        return Ok(None);
    }
    match super::expiry::expire_member(conn, &token.org_id, maker, now, &Origin::default()) {
        Ok(_) => Ok(maker_still_holds(conn, token, role, now)?),
        Err(RuleError::Db(e)) => Err(TokenError::Db(e)),
        Err(_) => Ok(None),
    }
}

/// The token behind a presented secret, if it is live and its maker still holds it;
/// records its use at most once a minute.
pub fn authenticate(
    conn: &mut DbConnection,
    presented: &str,
    now: NaiveDateTime,
) -> Result<TokenActor, TokenError> {
    if !presented.starts_with(PREFIX) || presented.len() > 200 {
        return Err(TokenError::Invalid);
    }
    let hash = tokens::hash(presented);
    let (token, role) = api_tokens::find_by_hash(conn, &hash)?.ok_or(TokenError::Invalid)?;
    if !tokens::constant_time_eq(&token.token_hash, &hash)
        || State::of(&token, now) != State::Active
    {
        return Err(TokenError::Invalid);
    }
    let mut held = maker_still_holds(conn, &token, &role, now)?;
    if held.is_none() {
        held = apply_makers_calendar(conn, &token, &role, now)?;
    }
    let Some(maker_access_until) = held else {
        return Err(TokenError::Invalid);
    };
    api_tokens::touch(
        conn,
        &token.id,
        now,
        now - Duration::seconds(TOUCH_INTERVAL_SECS),
    )?;
    Ok(TokenActor {
        scopes: parse_scopes(&token.scopes),
        token_id: token.id,
        name: token.name,
        org_id: token.org_id,
        role_rank: role.rank,
        role_permissions: role.permission_set(),
        role_id: role.id,
        maker_access_until,
        maker_id: token.created_by,
        now,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(name: &str, scopes: &[&str], days: &str) -> CreateForm {
        CreateForm {
            name: name.into(),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            expires_days: days.into(),
            role_id: "r".into(),
            ..CreateForm::default()
        }
    }

    #[test]
    fn a_token_is_prefixed_and_long() {
        let t = generate();
        assert!(t.starts_with("pcs_"));
        assert_eq!(t.len(), 4 + 43);
        assert_ne!(t, generate());
    }

    #[test]
    fn the_form_defaults_to_a_year_and_allows_never() {
        assert_eq!(
            read_form(&form(" Okta ", &["scim"], "")),
            Ok(("Okta".into(), vec![Scope::Scim], Some(365)))
        );
        assert_eq!(
            read_form(&form("Entra", &["read", "scim", "read"], "never")),
            Ok(("Entra".into(), vec![Scope::Scim, Scope::Read], None))
        );
        assert_eq!(
            read_form(&form("x", &["read"], "30")).map(|r| r.2),
            Ok(Some(30))
        );
    }

    #[test]
    fn the_form_refuses_a_missing_name_unknown_scopes_and_odd_expiries() {
        let e = read_form(&form("  ", &["scim"], "")).unwrap_err();
        assert!(e.get("name").is_some());
        let e = read_form(&form("x", &[], "")).unwrap_err();
        assert!(e.get("scopes").is_some());
        let e = read_form(&form("x", &["admin"], "")).unwrap_err();
        assert!(e.get("scopes").is_some());
        for days in ["0", "-3", "3651", "1.5", "soon"] {
            let e = read_form(&form("x", &["scim"], days)).unwrap_err();
            assert!(e.get("expires_days").is_some(), "{days}");
        }
    }

    #[test]
    fn a_token_is_live_until_revoked_or_expired() {
        let at = |h: u32| {
            chrono::NaiveDate::from_ymd_opt(2026, 12, 1)
                .unwrap()
                .and_hms_opt(h, 0, 0)
                .unwrap()
        };
        let mut t = ApiToken {
            id: "t".into(),
            org_id: "o".into(),
            name: "n".into(),
            scopes: "scim".into(),
            role_id: "r".into(),
            token_hash: "h".into(),
            created_by: None,
            created_by_email: String::new(),
            created_at: at(1),
            last_used_at: None,
            expires_at: None,
            revoked_at: None,
        };
        assert_eq!(State::of(&t, at(5)), State::Active);
        t.expires_at = Some(at(4));
        assert_eq!(State::of(&t, at(3)), State::Active);
        assert_eq!(State::of(&t, at(4)), State::Expired);
        t.revoked_at = Some(at(2));
        assert_eq!(State::of(&t, at(3)), State::Revoked);
    }

    #[test]
    fn a_read_token_acts_with_read_permission_only_and_is_named_as_a_token() {
        let mut actor = TokenActor {
            token_id: "t".into(),
            name: "Okta".into(),
            org_id: "o".into(),
            scopes: vec![Scope::Read],
            role_id: "r".into(),
            role_rank: 20,
            role_permissions: PermissionSet::of(&[Permission::UsersRead, Permission::PoolsOperate]),
            maker_access_until: None,
            maker_id: None,
            now: crate::db::now(),
        };
        let a = actor.as_actor();
        assert_eq!(a.email, "token:Okta");
        assert!(a.perms.contains(Permission::UsersRead));
        assert!(!a.perms.contains(Permission::UsersManage));
        assert!(!a.perms.contains(Permission::PoolsOperate));
        actor.scopes = vec![Scope::Scim];
        let a = actor.as_actor();
        assert!(a.perms.contains(Permission::UsersManage));
        // It may hand out its own role, Engineer, whose `pools.operate` it holds.
        assert!(a.perms.contains(Permission::PoolsOperate));
        assert!(!a.perms.contains(Permission::OrgManage));
        assert_eq!(a.rank, 20);
    }

    /// The audit trail names a token's actions by its name: a second working token of
    /// that name (in any case) is refused, and the name is free again once it is revoked.
    #[test]
    fn two_working_tokens_never_share_a_name() {
        let db = crate::domain::testing::with_admin("hash");
        let conn = &mut db.pool.get().unwrap();
        let slug = db.admin.org.slug.clone();
        let make = |conn: &mut DbConnection, name: &str| {
            create_from_cli(conn, &slug, name, &["read".to_string()], None, None)
        };
        let first = make(conn, "Okta").unwrap();
        match make(conn, "okta") {
            Err(RuleError::Invalid(errors)) => assert!(errors.get("name").is_some()),
            other => panic!(
                "a second Okta was not refused: {:?}",
                other.map(|c| c.token.id)
            ),
        }
        make(conn, "Entra").unwrap();
        api_tokens::revoke(conn, &first.token.org_id, &first.token.id, crate::db::now()).unwrap();
        make(conn, "Okta").unwrap();
    }

    /// A request authenticated before its maker was given a last day, then run after
    /// (it waited for the organization's lock): it must not act with "no last day".
    #[test]
    fn a_token_read_before_its_maker_got_a_last_day_acts_no_more() {
        let db = crate::domain::testing::with_admin("hash");
        let conn = &mut db.pool.get().unwrap();
        let (org, boss) = (db.admin.org.id.clone(), db.admin.user.clone());
        let admin_role = roles::list(conn, &org)
            .unwrap()
            .into_iter()
            .find(|r| r.key == super::super::roles::ADMIN)
            .unwrap();
        let now = crate::db::now();
        let actor = Actor {
            user_id: boss.id.clone(),
            email: boss.email.clone(),
            org_id: org.clone(),
            rank: admin_role.rank,
            perms: admin_role.permission_set(),
            access_until: None,
            now,
        };
        let mut form = form("Okta", &["scim"], "30");
        form.role_id = admin_role.id.clone();
        let made = create(conn, &actor, &form, now, &Origin::default()).unwrap();
        let token = authenticate(conn, &made.secret, now).unwrap();
        assert!(still_acts(conn, &token).unwrap());

        let last_day = now + Duration::days(1);
        crate::db::memberships::set_access_until(conn, &org, &boss.id, Some(last_day)).unwrap();
        assert!(!still_acts(conn, &token).unwrap());
        let fresh = authenticate(conn, &made.secret, now).unwrap();
        assert_eq!(fresh.maker_access_until, Some(last_day));
        assert!(still_acts(conn, &fresh).unwrap());
        // The day lifted meanwhile: the request acts, with the day it read.
        crate::db::memberships::set_access_until(conn, &org, &boss.id, None).unwrap();
        assert!(still_acts(conn, &fresh).unwrap());
    }
}
