//! The invitation lifecycle: inviting many addresses at once with a result for each,
//! resend, cancel, and acceptance by a new or an existing account.
//!
//! Rules: only the SHA-256 of a token is stored; a resend or a cancel kills the old link;
//! a link is consumed by one conditional UPDATE; nobody invites into a role, or a group
//! granting a role, ranked above their own, and that is checked again at acceptance.

use chrono::{Duration, NaiveDateTime};
use serde_json::json;

use super::FieldErrors;
use super::email::Email;
use super::names::parse_name;
use super::password::validate_new;
use super::policy::Standing;
use super::roles::{Permission, PermissionSet};
use crate::audit::{self, Event, Origin};
use crate::db::invitations::{self as rows, Choice, Invitation, NewInvitation};
use crate::db::organizations::{self, Organization};
use crate::db::roles::{self, Role};
use crate::db::users::{self, NewUser, User};
use crate::db::{self, DbConnection, email_outbox, groups, memberships, pools};
use crate::domain::tokens;
use crate::mail::outbox;
use crate::mail::templates::InvitationEmail;

/// Most addresses one submit may carry.
pub const MAX_ADDRESSES: usize = 500;
/// An invitation is sent at most this often.
pub const RESEND_INTERVAL: Duration = Duration::seconds(60);

#[derive(Debug, thiserror::Error)]
pub enum InvitationError {
    #[error("Please correct the highlighted fields.")]
    Invalid(FieldErrors),
    #[error("not found")]
    NotFound,
    #[error(
        "This invitation was sent less than a minute ago. Wait a minute before sending it again."
    )]
    TooSoon,
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("{0}")]
    Closed(&'static str),
    #[error(transparent)]
    Db(#[from] diesel::result::Error),
    #[error("email template failed: {0}")]
    Render(#[from] askama::Error),
}

/// The member sending invitations, as the rules see them.
#[derive(Debug, Clone)]
pub struct Inviter {
    pub user: User,
    pub role: Role,
    /// The highest rank among the inviter's role and the roles their groups grant.
    pub rank: i64,
}

impl Inviter {
    fn name(&self) -> String {
        display_name(&self.user)
    }

    fn may_grant(&self, rank: i64) -> bool {
        super::policy::Standing {
            perms: PermissionSet::default(),
            rank: self.rank,
        }
        .may_grant(rank)
    }
}

fn display_name(user: &User) -> String {
    let name = user.display_name();
    if name.is_empty() {
        user.email.clone()
    } else {
        name
    }
}

/// What every invitation change needs besides the database.
#[derive(Debug, Clone)]
pub struct Env {
    pub org: Organization,
    pub inviter: Inviter,
    /// How long a fresh link stays valid.
    pub ttl: Duration,
    /// Base of links, without a trailing slash.
    pub public_url: String,
    pub origin: Origin,
}

impl Env {
    fn link(&self, token: &str) -> String {
        format!("{}/invite/{token}", self.public_url)
    }

    fn event(&self, action: &'static str, invitation_id: &str, email: &str) -> Event {
        Event::new(action, &self.origin)
            .org(&self.org.id)
            .actor(&self.inviter.user.id, &self.inviter.user.email)
            .target("invitation", invitation_id, email)
    }
}

/// What the invite form sends.
#[derive(Debug, Clone, Default)]
pub struct InviteForm {
    pub emails: String,
    pub role_id: String,
    pub group_ids: Vec<String>,
    pub pool_ids: Vec<String>,
    pub first_name: String,
    pub last_name: String,
}

impl InviteForm {
    /// Reads an `application/x-www-form-urlencoded` body; `group_ids` and `pool_ids`
    /// repeat, which serde's form decoding does not support.
    pub fn from_urlencoded(body: &[u8]) -> Self {
        let mut form = InviteForm::default();
        for (key, value) in url::form_urlencoded::parse(body) {
            match key.as_ref() {
                "emails" => form.emails = value.into_owned(),
                "role_id" => form.role_id = value.into_owned(),
                "group_ids" if !value.is_empty() => form.group_ids.push(value.into_owned()),
                "pool_ids" if !value.is_empty() => form.pool_ids.push(value.into_owned()),
                "first_name" => form.first_name = value.into_owned(),
                "last_name" => form.last_name = value.into_owned(),
                _ => {}
            }
        }
        form
    }
}

/// Splits what was typed into addresses: commas, semicolons, spaces and new lines all
/// separate. Repeats (in any case) count once.
pub fn split_addresses(raw: &str) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    raw.split(|c: char| c == ',' || c == ';' || c.is_whitespace())
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .filter(|s| seen.insert(s.to_lowercase()))
        .map(str::to_string)
        .collect()
}

/// What happened to one address of an invite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Invited,
    AlreadyMember,
    /// Already invited: the invitation got a new link and expiry, and was sent again.
    Resent,
    /// Already invited, and not sent again, for this reason.
    NotResent(&'static str),
    Invalid(String),
}

impl Outcome {
    /// Stable key for the results table (`data-result`).
    pub fn key(&self) -> &'static str {
        match self {
            Outcome::Invited => "invited",
            Outcome::AlreadyMember => "member",
            Outcome::Resent => "resent",
            Outcome::NotResent(_) => "not_resent",
            Outcome::Invalid(_) => "invalid",
        }
    }

    pub fn label(&self) -> String {
        match self {
            Outcome::Invited => "Invited".into(),
            Outcome::AlreadyMember => "Already a member".into(),
            Outcome::Resent => "Already invited: link resent".into(),
            Outcome::NotResent(why) => format!("Already invited: {why}"),
            Outcome::Invalid(why) => format!("Invalid address: {why}"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct AddressResult {
    /// The address as stored, or as typed when it is invalid.
    pub email: String,
    pub outcome: Outcome,
    pub invitation_id: Option<String>,
    /// The raw accept link: shown once, right now, and never again.
    pub link: Option<String>,
}

#[derive(Debug, Clone)]
pub struct InviteReport {
    pub role_name: String,
    pub results: Vec<AddressResult>,
}

impl InviteReport {
    pub fn count(&self, key: &str) -> usize {
        self.results
            .iter()
            .filter(|r| r.outcome.key() == key)
            .count()
    }

    /// Emails queued by this report.
    pub fn sent(&self) -> usize {
        self.count("invited") + self.count("resent")
    }
}

/// The ids once each, in the order given.
fn distinct(ids: &[String]) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    ids.iter().filter(|id| seen.insert(*id)).cloned().collect()
}

/// Checks the parts of the form that need no database.
fn check_form(form: &InviteForm, errors: &mut FieldErrors) -> (Vec<String>, String, String) {
    let addresses = split_addresses(&form.emails);
    if addresses.is_empty() {
        errors.add("emails", "Enter at least one email address.");
    } else if addresses.len() > MAX_ADDRESSES {
        errors.add(
            "emails",
            format!(
                "Invite at most {MAX_ADDRESSES} addresses at a time; this list has {}.",
                addresses.len()
            ),
        );
    }
    let optional_name = |raw: &str, field: &'static str, errors: &mut FieldErrors| {
        if raw.trim().is_empty() {
            String::new()
        } else {
            errors.check(field, parse_name(raw)).unwrap_or_default()
        }
    };
    let first = optional_name(&form.first_name, "first_name", errors);
    let last = optional_name(&form.last_name, "last_name", errors);
    if (!first.is_empty() || !last.is_empty()) && addresses.len() > 1 {
        errors.add(
            "first_name",
            "A name can only be given when inviting one person.",
        );
    }
    (addresses, first, last)
}

/// Checks what the inviter chose against the organization and the inviter's rank.
fn check_grants(
    conn: &mut DbConnection,
    env: &Env,
    form: &InviteForm,
    errors: &mut FieldErrors,
) -> diesel::QueryResult<Option<Role>> {
    let role = match roles::find(conn, &env.org.id, form.role_id.trim())? {
        None => {
            errors.add("role_id", "Choose a role.");
            None
        }
        Some(role) if !env.inviter.may_grant(role.rank) => {
            errors.add(
                "role_id",
                format!(
                    "You cannot invite people as {}: it is above your own role.",
                    role.name
                ),
            );
            None
        }
        Some(role) => Some(role),
    };
    let groups = rows::org_groups(conn, &env.org.id)?;
    for id in &form.group_ids {
        match groups.iter().find(|g| &g.id == id) {
            None => errors.add("group_ids", "A chosen group does not exist."),
            Some(Choice {
                role_rank: Some(rank),
                name,
                ..
            }) if !env.inviter.may_grant(*rank) => errors.add(
                "group_ids",
                format!("The group {name} grants a role above your own."),
            ),
            Some(_) => {}
        }
    }
    let pools = rows::org_pools(conn, &env.org.id)?;
    if form
        .pool_ids
        .iter()
        .any(|id| !pools.iter().any(|p| &p.id == id))
    {
        errors.add("pool_ids", "A chosen pool does not exist.");
    }
    Ok(role)
}

/// Invites every valid address of the form, in one transaction with its emails and
/// audit events. Invalid addresses are reported, never blocking the valid ones; a form
/// problem (no role, a role above the inviter's, ...) invites nobody.
pub fn invite(
    conn: &mut DbConnection,
    env: &Env,
    form: &InviteForm,
) -> Result<InviteReport, InvitationError> {
    let mut errors = FieldErrors::default();
    let (addresses, first_name, last_name) = check_form(form, &mut errors);
    let group_ids = distinct(&form.group_ids);
    let pool_ids = distinct(&form.pool_ids);
    db::write_tx(conn, |conn| {
        // Serializes invitations per organization, so two admins inviting the same
        // address at once cannot both pass the "already invited" check.
        organizations::lock(conn, &env.org.id)?;
        let role = check_grants(conn, env, form, &mut errors)?;
        let role = match role {
            Some(role) if errors.is_empty() => role,
            _ => return Err(InvitationError::Invalid(errors)),
        };
        let now = db::now();
        let parsed: Vec<(String, Result<Email, String>)> = addresses
            .into_iter()
            .map(|raw| {
                let parsed = Email::parse(&raw).map_err(|e| e.to_string());
                (raw, parsed)
            })
            .collect();
        let valid: Vec<&str> = parsed
            .iter()
            .filter_map(|(_, p)| p.as_ref().ok().map(Email::as_str))
            .collect();
        let members = rows::member_emails(conn, &env.org.id, &valid)?;
        let pending = rows::pending_for_emails(conn, &env.org.id, &valid)?;
        let mut roles_by_id = std::collections::HashMap::new();
        let mut results = Vec::with_capacity(parsed.len());
        let mut seen = std::collections::HashSet::new();
        for (raw, parsed) in parsed {
            let email = match parsed {
                Err(why) => {
                    results.push(AddressResult {
                        email: raw,
                        outcome: Outcome::Invalid(why),
                        invitation_id: None,
                        link: None,
                    });
                    continue;
                }
                // Two spellings of one address ("A@x.io", "a@x.io") count once.
                Ok(email) if !seen.insert(email.as_str().to_string()) => continue,
                Ok(email) => email,
            };
            if members.iter().any(|m| m == email.as_str()) {
                results.push(AddressResult {
                    email: email.to_string(),
                    outcome: Outcome::AlreadyMember,
                    invitation_id: None,
                    link: None,
                });
                continue;
            }
            if let Some(existing) = pending.iter().find(|i| i.email == email.as_str()) {
                let existing_role = match roles_by_id.get(&existing.role_id) {
                    Some(r) => r,
                    None => {
                        let found = roles::find(conn, &env.org.id, &existing.role_id)?
                            .ok_or(InvitationError::NotFound)?;
                        roles_by_id.entry(existing.role_id.clone()).or_insert(found)
                    }
                };
                let existing_role = existing_role.clone();
                let (outcome, link) = if !renewable_by(conn, env, existing, &existing_role)? {
                    (
                        Outcome::NotResent(
                            "it grants a role above your own (its role, a group or a pool)",
                        ),
                        None,
                    )
                } else {
                    match renew(conn, env, existing, &existing_role, now, "invite form")? {
                        Some(token) => (Outcome::Resent, Some(env.link(&token))),
                        None => (
                            Outcome::NotResent(
                                "it was sent less than a minute ago, so it was not sent again",
                            ),
                            None,
                        ),
                    }
                };
                results.push(AddressResult {
                    email: email.to_string(),
                    outcome,
                    invitation_id: Some(existing.id.clone()),
                    link,
                });
                continue;
            }
            let (id, token) = create_one(
                conn,
                env,
                &email,
                &role,
                (&first_name, &last_name),
                (&group_ids, &pool_ids),
                now,
            )?;
            results.push(AddressResult {
                email: email.to_string(),
                outcome: Outcome::Invited,
                invitation_id: Some(id),
                link: Some(env.link(&token)),
            });
        }
        Ok(InviteReport {
            role_name: role.name,
            results,
        })
    })
}

fn create_one(
    conn: &mut DbConnection,
    env: &Env,
    email: &Email,
    role: &Role,
    (first_name, last_name): (&str, &str),
    (group_ids, pool_ids): (&[String], &[String]),
    now: NaiveDateTime,
) -> Result<(String, String), InvitationError> {
    let id = db::new_id();
    let token = tokens::generate();
    let expires_at = now + env.ttl;
    rows::insert(
        conn,
        &NewInvitation {
            id: &id,
            org_id: &env.org.id,
            email: email.as_str(),
            first_name,
            last_name,
            role_id: &role.id,
            token_hash: &tokens::hash(&token),
            status: rows::PENDING,
            invited_by: Some(&env.inviter.user.id),
            created_at: now,
            expires_at,
            last_sent_at: now,
            send_count: 1,
        },
    )?;
    for group_id in group_ids {
        rows::add_group(conn, &id, group_id)?;
    }
    for pool_id in pool_ids {
        rows::add_pool(conn, &id, pool_id, &role.id)?;
    }
    queue_email(
        conn,
        env,
        email.as_str(),
        &id,
        role,
        &token,
        expires_at,
        false,
    )?;
    audit::record(
        conn,
        &env.event("invitation.created", &id, email.as_str())
            .details(json!({
                "role": role.key,
                "expires_at": expires_at.and_utc().to_rfc3339(),
                "groups": group_ids,
                "pools": pool_ids,
            })),
    )?;
    Ok((id, token))
}

#[allow(clippy::too_many_arguments)]
fn queue_email(
    conn: &mut DbConnection,
    env: &Env,
    to: &str,
    invitation_id: &str,
    role: &Role,
    token: &str,
    expires_at: NaiveDateTime,
    reminder: bool,
) -> Result<(), InvitationError> {
    let email = InvitationEmail {
        org_name: env.org.name.clone(),
        inviter_name: env.inviter.name(),
        role_name: role.name.clone(),
        link: env.link(token),
        expires_at,
        reminder,
    }
    .render()?;
    outbox::queue(conn, to, &email, Some(invitation_id), db::now())?;
    Ok(())
}

/// New token, new expiry, old link dead, email queued; `None` when it was sent within
/// the last minute. The caller has checked the inviter may grant `role`.
const ABOVE_OWN_GRANTS: &str = "You cannot renew this invitation: its role, a group or a pool it grants ranks above your own role.";

/// Renewing an invitation re-issues everything it grants, so the person renewing must
/// outrank all of it: its role, the roles of its groups and the roles of its pools.
fn renewable_by(
    conn: &mut DbConnection,
    env: &Env,
    invitation: &Invitation,
    role: &Role,
) -> Result<bool, InvitationError> {
    if !env.inviter.may_grant(role.rank) {
        return Ok(false);
    }
    let group_ids = rows::group_ids(conn, &invitation.id)?;
    let groups_ok = rows::org_groups(conn, &env.org.id)?
        .iter()
        .filter(|g| group_ids.contains(&g.id))
        .all(|g| g.role_rank.is_none_or(|rank| env.inviter.may_grant(rank)));
    if !groups_ok {
        return Ok(false);
    }
    for (_, pool_role) in rows::pool_grants(conn, &invitation.id)? {
        if let Some(pool_role) = pool_role {
            let granted =
                roles::find(conn, &env.org.id, &pool_role)?.ok_or(InvitationError::NotFound)?;
            if !env.inviter.may_grant(granted.rank) {
                return Ok(false);
            }
        }
    }
    Ok(true)
}

fn renew(
    conn: &mut DbConnection,
    env: &Env,
    invitation: &Invitation,
    role: &Role,
    now: NaiveDateTime,
    via: &str,
) -> Result<Option<String>, InvitationError> {
    if !renewable_by(conn, env, invitation, role)? {
        return Err(InvitationError::Forbidden(ABOVE_OWN_GRANTS));
    }
    let token = tokens::generate();
    let expires_at = now + env.ttl;
    if !rows::renew_token(
        conn,
        &invitation.id,
        &tokens::hash(&token),
        &env.inviter.user.id,
        now,
        expires_at,
        now - RESEND_INTERVAL,
    )? {
        return Ok(None);
    }
    // An unsent earlier email carries the dead link: only the new one goes out.
    email_outbox::delete_unsent_for(conn, &invitation.id)?;
    queue_email(
        conn,
        env,
        &invitation.email,
        &invitation.id,
        role,
        &token,
        expires_at,
        true,
    )?;
    audit::record(
        conn,
        &env.event("invitation.resent", &invitation.id, &invitation.email)
            .details(json!({
                "role": role.key,
                "send_count": invitation.send_count + 1,
                "expires_at": expires_at.and_utc().to_rfc3339(),
                "via": via,
            })),
    )?;
    Ok(Some(token))
}

/// The Resend button. Answers the invitation's address and its new link.
pub fn resend(
    conn: &mut DbConnection,
    env: &Env,
    invitation_id: &str,
) -> Result<AddressResult, InvitationError> {
    db::write_tx(conn, |conn| {
        let invitation = rows::find_in_org(conn, &env.org.id, invitation_id)?
            .ok_or(InvitationError::NotFound)?;
        check_open(&invitation)?;
        let role = roles::find(conn, &env.org.id, &invitation.role_id)?
            .ok_or(InvitationError::NotFound)?;
        let token = renew(conn, env, &invitation, &role, db::now(), "resend button")?
            .ok_or(InvitationError::TooSoon)?;
        Ok(AddressResult {
            email: invitation.email.clone(),
            outcome: Outcome::Resent,
            invitation_id: Some(invitation.id.clone()),
            link: Some(env.link(&token)),
        })
    })
}

fn check_open(invitation: &Invitation) -> Result<(), InvitationError> {
    match invitation.status.as_str() {
        rows::ACCEPTED => Err(InvitationError::Closed(
            "This invitation was already accepted.",
        )),
        rows::CANCELLED => Err(InvitationError::Closed(
            "This invitation was cancelled. Invite the person again instead.",
        )),
        _ => Ok(()),
    }
}

/// Cancels a pending (or expired) invitation: its link dies and its unsent email goes.
/// The invitation, if it can still be cancelled: what the confirmation page shows.
pub fn cancellable(
    conn: &mut DbConnection,
    env: &Env,
    invitation_id: &str,
) -> Result<Invitation, InvitationError> {
    let invitation =
        rows::find_in_org(conn, &env.org.id, invitation_id)?.ok_or(InvitationError::NotFound)?;
    check_open(&invitation)?;
    Ok(invitation)
}

pub fn cancel(
    conn: &mut DbConnection,
    env: &Env,
    invitation_id: &str,
) -> Result<Invitation, InvitationError> {
    db::write_tx(conn, |conn| {
        let invitation = rows::find_in_org(conn, &env.org.id, invitation_id)?
            .ok_or(InvitationError::NotFound)?;
        check_open(&invitation)?;
        if !rows::cancel(conn, &invitation.id)? {
            return Err(InvitationError::Closed(
                "This invitation changed meanwhile; reload the page.",
            ));
        }
        email_outbox::delete_unsent_for(conn, &invitation.id)?;
        audit::record(
            conn,
            &env.event("invitation.cancelled", &invitation.id, &invitation.email),
        )?;
        Ok(invitation)
    })
}

/// A live invitation link, as the accept page shows it.
#[derive(Debug, Clone)]
pub struct LinkInfo {
    pub invitation: Invitation,
    pub org: Organization,
    pub role: Role,
    pub inviter_name: String,
    /// The account that already has the invited address, if any.
    pub account: Option<User>,
}

/// Looks a token up. `None` for every kind of dead link, alike: unknown, tampered,
/// replaced by a resend, cancelled, used, expired (which is also audited), or pointing
/// at a disabled account.
pub fn check_link(
    conn: &mut DbConnection,
    token: &str,
    origin: &Origin,
) -> diesel::QueryResult<Option<LinkInfo>> {
    let now = db::now();
    let Some((invitation, account)) = rows::find_with_account(conn, &tokens::hash(token))? else {
        return Ok(None);
    };
    if invitation.status != rows::PENDING {
        return Ok(None);
    }
    if invitation.expires_at <= now {
        audit::record(
            conn,
            &Event::new("invitation.expired_link_used", origin)
                .org(&invitation.org_id)
                .target("invitation", &invitation.id, &invitation.email)
                .details(json!({
                    "expired_at": invitation.expires_at.and_utc().to_rfc3339(),
                })),
        )?;
        return Ok(None);
    }
    let Some(org) = organizations::find(conn, &invitation.org_id)? else {
        return Ok(None);
    };
    let Some(role) = roles::find(conn, &org.id, &invitation.role_id)? else {
        return Ok(None);
    };
    if account.as_ref().is_some_and(|u| !u.is_active()) {
        return Ok(None);
    }
    let inviter_name = match &invitation.invited_by {
        Some(id) => users::find(conn, id)?
            .map(|u| display_name(&u))
            .unwrap_or_default(),
        None => String::new(),
    };
    Ok(Some(LinkInfo {
        invitation,
        org,
        role,
        inviter_name,
        account,
    }))
}

/// What a person without an account sends to accept.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct AcceptForm {
    #[serde(default)]
    pub first_name: String,
    #[serde(default)]
    pub last_name: String,
    #[serde(default)]
    pub password: String,
    #[serde(default)]
    pub password_confirm: String,
}

#[derive(Debug, Clone)]
pub struct NewAccount {
    pub first_name: String,
    pub last_name: String,
}

pub fn validate_account(form: &AcceptForm) -> Result<NewAccount, FieldErrors> {
    let mut errors = FieldErrors::default();
    let first_name = errors.check("first_name", parse_name(&form.first_name));
    let last_name = errors.check("last_name", parse_name(&form.last_name));
    errors.check(
        "password",
        validate_new(&form.password, &form.password_confirm),
    );
    match (first_name, last_name) {
        (Some(first_name), Some(last_name)) if errors.is_empty() => Ok(NewAccount {
            first_name,
            last_name,
        }),
        _ => Err(errors),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AcceptError {
    /// Any dead link; the person sees one generic page.
    #[error("This invitation link is not valid.")]
    InvalidLink,
    /// The inviter may no longer grant what the invitation offers.
    #[error("This invitation can no longer be accepted.")]
    NoLongerGrantable,
    /// Someone created an account with the address meanwhile: sign in instead.
    #[error("An account with this address exists; sign in to accept.")]
    AccountExists,
    #[error("This invitation is for another address.")]
    WrongAccount,
    #[error(transparent)]
    Db(#[from] diesel::result::Error),
}

/// A new account for the invited address (whatever else a form may claim), joined to the
/// organization with everything the invitation grants. All or nothing.
pub fn accept_with_new_account(
    conn: &mut DbConnection,
    token: &str,
    account: &NewAccount,
    password_hash: &str,
    origin: &Origin,
) -> Result<(User, Organization), AcceptError> {
    db::write_tx(conn, |conn| {
        let now = db::now();
        let hash = tokens::hash(token);
        let invitation = rows::find_by_token_hash(conn, &hash)?.ok_or(AcceptError::InvalidLink)?;
        if !rows::consume(conn, &hash, now)? {
            return Err(AcceptError::InvalidLink);
        }
        if users::find_by_email(conn, &invitation.email)?.is_some() {
            return Err(AcceptError::AccountExists);
        }
        let id = db::new_id();
        users::insert(
            conn,
            &NewUser {
                id: &id,
                email: &invitation.email,
                first_name: &account.first_name,
                last_name: &account.last_name,
                password_hash: Some(password_hash),
                platform_role: "none",
                status: "active",
                auth_method: "password",
                created_at: now,
                last_active_at: None,
            },
        )?;
        let user = users::find(conn, &id)?.ok_or(AcceptError::InvalidLink)?;
        let org = join(conn, &invitation, &user, true, origin)?;
        Ok((user, org))
    })
}

/// The signed-in account joins; it must be the invited address.
pub fn accept_as(
    conn: &mut DbConnection,
    token: &str,
    user: &User,
    origin: &Origin,
) -> Result<Organization, AcceptError> {
    db::write_tx(conn, |conn| {
        let now = db::now();
        let hash = tokens::hash(token);
        let invitation = rows::find_by_token_hash(conn, &hash)?.ok_or(AcceptError::InvalidLink)?;
        if invitation.email != user.email {
            return Err(AcceptError::WrongAccount);
        }
        if !rows::consume(conn, &hash, now)? {
            return Err(AcceptError::InvalidLink);
        }
        join(conn, &invitation, user, false, origin)
    })
}

/// Runs after the token was consumed, inside the same transaction.
fn join(
    conn: &mut DbConnection,
    invitation: &Invitation,
    user: &User,
    new_account: bool,
    origin: &Origin,
) -> Result<Organization, AcceptError> {
    let org = organizations::find(conn, &invitation.org_id)?.ok_or(AcceptError::InvalidLink)?;
    let role = roles::find(conn, &org.id, &invitation.role_id)?.ok_or(AcceptError::InvalidLink)?;
    let group_ids = rows::group_ids(conn, &invitation.id)?;
    if !still_grantable(conn, invitation, &role, &group_ids)? {
        return Err(AcceptError::NoLongerGrantable);
    }
    rows::set_accepted_user(conn, &invitation.id, &user.id)?;
    let already_member = rows::is_member(conn, &org.id, &user.id)?;
    if !already_member {
        memberships::insert(conn, &org.id, user, &role.id)?;
    }
    for group_id in &group_ids {
        if !groups::is_member(conn, group_id, &user.id)? {
            groups::add_member(conn, &org.id, group_id, &user.id)?;
        }
    }
    let pool_grants = rows::pool_grants(conn, &invitation.id)?;
    for (pool_id, pool_role) in &pool_grants {
        let pool_role = pool_role.as_deref().unwrap_or(&role.id);
        if !pools::is_member(conn, pool_id, &user.id)? {
            pools::add_member(conn, &org.id, pool_id, &user.id, pool_role)?;
        }
    }
    email_outbox::delete_unsent_for(conn, &invitation.id)?;
    audit::record(
        conn,
        &Event::new("invitation.accepted", origin)
            .org(&org.id)
            .actor(&user.id, &user.email)
            .target("invitation", &invitation.id, &invitation.email)
            .details(json!({
                "role": role.key,
                "new_account": new_account,
                "already_member": already_member,
                "groups": group_ids,
                "pools": pool_grants.iter().map(|(p, _)| p).collect::<Vec<_>>(),
                "invited_by": invitation.invited_by,
            })),
    )?;
    Ok(org)
}

/// The inviter must still be an active member allowed to invite (organization-wide, or
/// as a pool Manager over every pool the invitation joins, then without groups), ranked
/// at least as high as the role and every group role the invitation grants.
fn still_grantable(
    conn: &mut DbConnection,
    invitation: &Invitation,
    role: &Role,
    group_ids: &[String],
) -> diesel::QueryResult<bool> {
    let Some(inviter_id) = &invitation.invited_by else {
        return Ok(false);
    };
    let Some(inviter_role) = rows::active_member_role(conn, &invitation.org_id, inviter_id)? else {
        return Ok(false);
    };
    let group_roles = memberships::group_roles(conn, &invitation.org_id, inviter_id)?;
    let groups_held: Vec<(&str, i64)> = group_roles
        .iter()
        .map(|r| (r.permissions.as_str(), r.rank))
        .collect();
    let inviter = Standing::of(
        (&inviter_role.permissions, inviter_role.rank),
        &groups_held,
        &[],
    );
    let may_invite = inviter.may(Permission::UsersInvite) || {
        let pool_ids: Vec<String> = rows::pool_grants(conn, &invitation.id)?
            .into_iter()
            .map(|(pool, _)| pool)
            .collect();
        let invitable = super::pools::invitable_pools(conn, &invitation.org_id, inviter_id)?;
        group_ids.is_empty()
            && !pool_ids.is_empty()
            && pool_ids.iter().all(|p| invitable.contains(p))
    };
    if !may_invite {
        return Ok(false);
    }
    let groups = rows::org_groups(conn, &invitation.org_id)?;
    let mut granted: Vec<i64> = groups
        .iter()
        .filter(|g| group_ids.contains(&g.id))
        .filter_map(|g| g.role_rank)
        .collect();
    for (_, pool_role) in rows::pool_grants(conn, &invitation.id)? {
        if let Some(pool_role) = pool_role {
            match roles::find(conn, &invitation.org_id, &pool_role)? {
                Some(r) => granted.push(r.rank),
                None => return Ok(false),
            }
        }
    }
    granted.push(role.rank);
    Ok(inviter.may_grant_all(granted))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::{DbTarget, PoolOptions, build_pool};
    use crate::domain::roles::{ADMIN, MANAGER, MEMBER};

    struct Fixture {
        _dir: tempfile::TempDir,
        pool: crate::db::DbPool,
        org: Organization,
        admin: Inviter,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let target = DbTarget::Sqlite(dir.path().join("t.db").to_string_lossy().into_owned());
        let pool = build_pool(&target, PoolOptions::default()).unwrap();
        let mut conn = pool.get().unwrap();
        db::migrate(&mut conn).unwrap();
        let created = crate::domain::setup::create_admin(
            &mut conn,
            &Email::parse("boss@example.com").unwrap(),
            None,
            Some("x"),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let role = roles::find_by_key(&mut conn, &created.org.id, ADMIN)
            .unwrap()
            .unwrap();
        Fixture {
            _dir: dir,
            pool: pool.clone(),
            org: created.org,
            admin: Inviter {
                user: created.user,
                rank: role.rank,
                role,
            },
        }
    }

    impl Fixture {
        fn env(&self, inviter: &Inviter) -> Env {
            Env {
                org: self.org.clone(),
                inviter: inviter.clone(),
                ttl: Duration::hours(72),
                public_url: "https://portal.example.com".into(),
                origin: Origin::default(),
            }
        }

        fn role(&self, key: &str) -> Role {
            roles::find_by_key(&mut self.pool.get().unwrap(), &self.org.id, key)
                .unwrap()
                .unwrap()
        }

        fn form(&self, emails: &str, role: &str) -> InviteForm {
            InviteForm {
                emails: emails.into(),
                role_id: self.role(role).id,
                ..InviteForm::default()
            }
        }

        fn token_of(result: &AddressResult) -> String {
            result
                .link
                .as_ref()
                .unwrap()
                .rsplit('/')
                .next()
                .unwrap()
                .to_string()
        }
    }

    fn count(conn: &mut DbConnection, table: &str) -> i64 {
        #[derive(diesel::QueryableByName)]
        struct N {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        use diesel::RunQueryDsl;
        diesel::sql_query(format!("SELECT COUNT(*) AS n FROM {table}"))
            .get_result::<N>(conn)
            .unwrap()
            .n
    }

    #[test]
    fn addresses_split_on_commas_spaces_and_new_lines_once_each() {
        assert_eq!(
            split_addresses(" a@x.io, b@x.io\nc@x.io;d@x.io\t\r\nA@X.io ,, "),
            vec!["a@x.io", "b@x.io", "c@x.io", "d@x.io"]
        );
        assert!(split_addresses(" \n , ").is_empty());
    }

    #[test]
    fn chosen_ids_count_once() {
        let ids: Vec<String> = ["g1", "g2", "g1"].map(String::from).to_vec();
        assert_eq!(distinct(&ids), vec!["g1", "g2"]);
    }

    #[test]
    fn repeated_form_fields_are_all_kept() {
        let form = InviteForm::from_urlencoded(
            b"emails=a%40x.io+b%40x.io&role_id=r&group_ids=g1&group_ids=g2&pool_ids=&first_name=Ada",
        );
        assert_eq!(form.emails, "a@x.io b@x.io");
        assert_eq!(form.group_ids, vec!["g1", "g2"]);
        assert!(form.pool_ids.is_empty());
        assert_eq!(form.first_name, "Ada");
    }

    #[test]
    fn each_address_gets_its_own_result() {
        let f = fixture();
        let env = f.env(&f.admin);
        let conn = &mut f.pool.get().unwrap();
        let first = invite(conn, &env, &f.form("old@example.com", MEMBER)).unwrap();
        assert_eq!(first.results[0].outcome, Outcome::Invited);

        // Old enough to be resent.
        use crate::db::schema::invitations;
        use diesel::prelude::*;
        diesel::update(invitations::table)
            .set(invitations::last_sent_at.eq(db::now() - Duration::minutes(5)))
            .execute(conn)
            .unwrap();

        let report = invite(
            conn,
            &env,
            &f.form(
                "new@example.com, boss@example.com, OLD@example.com, not-an-address",
                MEMBER,
            ),
        )
        .unwrap();
        let outcomes: Vec<_> = report.results.iter().map(|r| r.outcome.key()).collect();
        assert_eq!(outcomes, vec!["invited", "member", "resent", "invalid"]);
        assert_eq!(report.results[3].email, "not-an-address");
        assert!(report.results[3].outcome.label().contains("needs one @"));
        assert_ne!(
            Fixture::token_of(&first.results[0]),
            Fixture::token_of(&report.results[2]),
            "a resend makes a new link"
        );
        assert_eq!(count(conn, "invitations"), 2);
        // new@'s email and old@'s reminder: old@'s first email, still unsent, carried a
        // dead link and was dropped.
        assert_eq!(count(conn, "email_outbox"), 2);

        // At once again: not resent within the minute.
        let again = invite(conn, &env, &f.form("old@example.com", MEMBER)).unwrap();
        assert_eq!(again.results[0].outcome.key(), "not_resent");
        assert!(again.results[0].link.is_none());
    }

    #[test]
    fn form_problems_invite_nobody() {
        let f = fixture();
        let env = f.env(&f.admin);
        let conn = &mut f.pool.get().unwrap();
        let mut form = f.form("a@example.com b@example.com", MEMBER);
        form.first_name = "Ada".into();
        form.group_ids = vec!["no-such-group".into()];
        let Err(InvitationError::Invalid(errors)) = invite(conn, &env, &form) else {
            panic!("expected form errors");
        };
        assert!(errors.get("first_name").unwrap().contains("one person"));
        assert!(errors.get("group_ids").is_some());
        let none = InviteForm {
            emails: " , ".into(),
            role_id: "nope".into(),
            ..InviteForm::default()
        };
        let Err(InvitationError::Invalid(errors)) = invite(conn, &env, &none) else {
            panic!("expected form errors");
        };
        assert!(errors.get("emails").is_some());
        assert!(errors.get("role_id").is_some());
        let too_many: Vec<String> = (0..=MAX_ADDRESSES)
            .map(|i| format!("u{i}@example.com"))
            .collect();
        let Err(InvitationError::Invalid(errors)) =
            invite(conn, &env, &f.form(&too_many.join(","), MEMBER))
        else {
            panic!("expected form errors");
        };
        assert!(errors.get("emails").unwrap().contains("at most 500"));
        assert_eq!(count(conn, "invitations"), 0);
        assert_eq!(count(conn, "email_outbox"), 0);
    }

    #[test]
    fn nobody_invites_above_their_own_rank() {
        let f = fixture();
        let role = f.role(MANAGER);
        let manager = Inviter {
            user: f.admin.user.clone(),
            rank: role.rank,
            role,
        };
        let env = f.env(&manager);
        let conn = &mut f.pool.get().unwrap();
        let Err(InvitationError::Invalid(errors)) =
            invite(conn, &env, &f.form("x@example.com", ADMIN))
        else {
            panic!("an admin invitation from a manager must fail");
        };
        assert!(errors.get("role_id").unwrap().contains("above your own"));
        assert!(invite(conn, &env, &f.form("x@example.com", MANAGER)).is_ok());
    }

    #[test]
    fn resend_and_cancel_kill_the_old_link() {
        let f = fixture();
        let env = f.env(&f.admin);
        let conn = &mut f.pool.get().unwrap();
        let report = invite(conn, &env, &f.form("p@example.com", MEMBER)).unwrap();
        let id = report.results[0].invitation_id.clone().unwrap();
        let old = Fixture::token_of(&report.results[0]);
        assert!(matches!(
            resend(conn, &env, &id),
            Err(InvitationError::TooSoon)
        ));

        use crate::db::schema::invitations;
        use diesel::prelude::*;
        diesel::update(invitations::table)
            .set(invitations::last_sent_at.eq(db::now() - Duration::minutes(2)))
            .execute(conn)
            .unwrap();
        let resent = resend(conn, &env, &id).unwrap();
        let new = Fixture::token_of(&resent);
        let origin = Origin::default();
        assert!(check_link(conn, &old, &origin).unwrap().is_none());
        assert!(check_link(conn, &new, &origin).unwrap().is_some());

        cancel(conn, &env, &id).unwrap();
        assert!(check_link(conn, &new, &origin).unwrap().is_none());
        assert!(matches!(
            cancel(conn, &env, &id),
            Err(InvitationError::Closed(_))
        ));
        assert_eq!(
            count(conn, "email_outbox"),
            0,
            "unsent emails with dead links go"
        );
    }

    #[test]
    fn acceptance_consumes_the_link_once_and_joins() {
        let f = fixture();
        let env = f.env(&f.admin);
        let conn = &mut f.pool.get().unwrap();
        let report = invite(conn, &env, &f.form("new@example.com", MEMBER)).unwrap();
        let token = Fixture::token_of(&report.results[0]);
        let origin = Origin::default();
        let info = check_link(conn, &token, &origin).unwrap().unwrap();
        assert!(info.account.is_none());
        assert_eq!(info.role.key, MEMBER);
        let account = NewAccount {
            first_name: "New".into(),
            last_name: "Person".into(),
        };
        let (user, org) = accept_with_new_account(conn, &token, &account, "hash", &origin).unwrap();
        assert_eq!(user.email, "new@example.com");
        assert_eq!(org.id, f.org.id);
        assert!(rows::is_member(conn, &org.id, &user.id).unwrap());
        assert!(matches!(
            accept_with_new_account(conn, &token, &account, "hash", &origin),
            Err(AcceptError::InvalidLink)
        ));
        assert!(check_link(conn, &token, &origin).unwrap().is_none());
    }

    #[test]
    fn an_inviter_who_lost_the_right_cannot_be_accepted() {
        let f = fixture();
        let env = f.env(&f.admin);
        let conn = &mut f.pool.get().unwrap();
        let report = invite(conn, &env, &f.form("late@example.com", MEMBER)).unwrap();
        let token = Fixture::token_of(&report.results[0]);
        // The inviter is demoted to Member, who may not invite.
        use crate::db::schema::memberships as m;
        use diesel::prelude::*;
        diesel::update(m::table)
            .set(m::role_id.eq(f.role(MEMBER).id))
            .execute(conn)
            .unwrap();
        let account = NewAccount {
            first_name: "Late".into(),
            last_name: "Comer".into(),
        };
        assert!(matches!(
            accept_with_new_account(conn, &token, &account, "hash", &Origin::default()),
            Err(AcceptError::NoLongerGrantable)
        ));
        assert_eq!(count(conn, "users"), 1, "nothing was created");
    }

    #[test]
    fn a_signed_in_account_must_match_the_invited_address() {
        let f = fixture();
        let env = f.env(&f.admin);
        let conn = &mut f.pool.get().unwrap();
        let report = invite(conn, &env, &f.form("someone@example.com", MEMBER)).unwrap();
        let token = Fixture::token_of(&report.results[0]);
        assert!(matches!(
            accept_as(conn, &token, &f.admin.user, &Origin::default()),
            Err(AcceptError::WrongAccount)
        ));
        assert!(
            check_link(conn, &token, &Origin::default())
                .unwrap()
                .is_some(),
            "the refused attempt did not use the link"
        );
    }
}
