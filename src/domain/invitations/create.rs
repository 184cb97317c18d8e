//! The invite form: what it offers, and inviting many addresses at once with a result for
//! each.

use std::collections::{HashMap, HashSet};

use chrono::NaiveDateTime;
use serde_json::json;

use super::{
    AddressResult, Env, InvitationError, Link, Outcome, Sender, group_grant, may_place_in_groups,
    may_place_in_pools, queue_email, renew,
};
use crate::audit;
use crate::db::invitations::{self as rows, Choice, NewInvitation};
use crate::db::organizations::Organization;
use crate::db::roles::{self, Role};
use crate::db::users::User;
use crate::db::{self, DbConnection};
use crate::domain::FieldErrors;
use crate::domain::access_until;
use crate::domain::email::Email;
use crate::domain::names::parse_name;
use crate::domain::policy::{Standing, access_within, grantable};
use crate::domain::pools::{PoolChoice, invited_pool_role};
use crate::domain::roles::{MEMBER, Permission};
use crate::domain::tokens;

/// Most addresses one submit may carry.
pub const MAX_ADDRESSES: usize = 500;

/// Most groups, and most pools, one invitation may name: each is a row per invitation and
/// a line in its audit event, times up to `MAX_ADDRESSES` invitations a submit.
pub const MAX_CHOSEN: usize = 25;

const POOLS_ONLY: &str = "As a pool manager you invite people into your own pools: choose at least one of them, and no groups.";

/// What the invite form sends. Every field may be absent; `group_ids` and `pool_ids`
/// repeat, one per box ticked.
#[derive(Debug, Clone, Default, serde::Deserialize, serde::Serialize)]
pub struct InviteForm {
    #[serde(default)]
    pub emails: String,
    #[serde(default)]
    pub role_id: String,
    #[serde(default, deserialize_with = "non_empty")]
    pub group_ids: Vec<String>,
    #[serde(default, deserialize_with = "non_empty")]
    pub pool_ids: Vec<String>,
    #[serde(default)]
    pub first_name: String,
    #[serde(default)]
    pub last_name: String,
    /// The last day of access the membership gets (`YYYY-MM-DD`), or empty for no end.
    #[serde(default)]
    pub access_until: String,
}

/// An empty value (`pool_ids=`) chooses nothing.
fn non_empty<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let mut ids = <Vec<String> as serde::Deserialize>::deserialize(d)?;
    ids.retain(|id| !id.is_empty());
    Ok(ids)
}

/// Splits what was typed into addresses: commas, semicolons, spaces and new lines all
/// separate. Repeats (in any case) count once. A list pasted from a mail program names
/// people too (`Ada Lovelace <ada@x.io>, "Hopper, Grace" <grace@y.io>`): the address is
/// what the angle brackets hold, and the name around it, quoted or not, is left out.
fn split_addresses(raw: &str) -> Vec<String> {
    let mut seen = HashSet::new();
    pasted_entries(raw)
        .into_iter()
        .flat_map(|entry| entry.addresses())
        .filter(|s| seen.insert(s.to_lowercase()))
        .collect()
}

/// One entry of a pasted list, between separators that sit outside quotes and brackets.
#[derive(Default)]
struct Entry {
    /// Text outside quotes and angle brackets.
    plain: String,
    /// What each pair of angle brackets held.
    bracketed: Vec<String>,
    /// What each pair of quotes held.
    quoted: Vec<String>,
}

impl Entry {
    fn addresses(self) -> Vec<String> {
        let words = || self.plain.split_whitespace().map(str::to_string);
        if self.bracketed.is_empty() {
            // `"ada@x.io"`, quoted alone, is still the address typed.
            let quoted = self.quoted.iter().filter(|q| q.contains('@'));
            return words()
                .chain(quoted.map(|q| q.trim().to_string()))
                .collect();
        }
        // Beside an `<address>`, words without an `@` are its name. Quoted text that holds
        // a bracket, or an address and a separator, is rather part of the list a stray
        // quote took in: it is judged as typed (and refused), never silently dropped.
        let swallowed = self.quoted.iter().filter(|q| {
            q.contains(['<', '\n', '\r'])
                || q.matches('@').count() > 1
                || (q.contains('@') && q.contains([',', ';']))
        });
        let bracketed = self.bracketed.iter().map(|b| b.trim().to_string());
        bracketed
            .chain(words().filter(|w| w.contains('@')))
            .chain(swallowed.map(|q| q.trim().to_string()))
            .filter(|a| !a.is_empty())
            .collect()
    }
}

/// Whether a `<` is closed: by a `>` before any separator or other `<`, within the
/// length of an address.
fn bracket_closes(after: &str) -> bool {
    after
        .chars()
        .take(MAX_BRACKETED)
        .find(|c| matches!(c, '>' | '<' | ',' | ';' | '\n' | '\r'))
        == Some('>')
}

/// Longer than any address (254) with room for spaces: what one pair of brackets holds.
const MAX_BRACKETED: usize = 320;

fn pasted_entries(raw: &str) -> Vec<Entry> {
    let (mut entries, mut entry) = (Vec::new(), Entry::default());
    let mut open: Option<(char, String)> = None;
    // A quote or bracket that nothing later closes is a stray character, not an opening:
    // it must not take in the rest of the list.
    let last_quote = raw.rfind('"');
    for (at, c) in raw.char_indices() {
        let closed_later = match c {
            '"' => last_quote.is_some_and(|last| last > at),
            '<' => bracket_closes(&raw[at + 1..]),
            _ => false,
        };
        match (&mut open, c) {
            (Some(('"', held)), '"') | (Some(('<', held)), '>') => {
                let held = std::mem::take(held);
                // What stood either side of it stays apart.
                entry.plain.push(' ');
                match open.take() {
                    Some(('"', _)) => entry.quoted.push(held),
                    _ => entry.bracketed.push(held),
                }
            }
            (Some((_, held)), c) => held.push(c),
            (None, '"' | '<') if closed_later => open = Some((c, String::new())),
            (None, ',' | ';' | '\n' | '\r') => entries.push(std::mem::take(&mut entry)),
            (None, c) => entry.plain.push(c),
        }
    }
    // Left open at the end: what it held was typed, and is judged as typed.
    if let Some((mark, held)) = open {
        entry.plain.push(mark);
        entry.plain.push_str(&held);
    }
    entries.push(entry);
    entries
}

/// What the invite form offers the member.
#[derive(Debug, Clone)]
pub struct InviteChoices {
    /// The roles the member may grant.
    pub roles: Vec<Role>,
    pub groups: Vec<Choice>,
    /// In tree order, with each pool's parents.
    pub pools: Vec<PoolChoice>,
    /// A pool Manager inviting: at least one of `pools` must be chosen.
    pub pools_only: bool,
    /// The member may place invitees in groups (`groups.manage`, inviting organization-wide).
    pub offers_groups: bool,
}

impl InviteChoices {
    /// The role a blank form starts on: Member, or else the lowest the member may grant.
    pub fn default_role(&self) -> String {
        self.roles
            .iter()
            .find(|r| r.key == MEMBER)
            .or(self.roles.last())
            .map(|r| r.id.clone())
            .unwrap_or_default()
    }
}

/// Where a member may invite: `None` organization-wide (`users.invite`); `Some(pools)`
/// a pool Manager, limited to the pools of their subtrees and no groups.
type Scope = Option<HashSet<String>>;

fn scope(
    conn: &mut DbConnection,
    org_id: &str,
    user_id: &str,
    own: &Standing,
) -> Result<Scope, InvitationError> {
    if own.may(Permission::UsersInvite) {
        return Ok(None);
    }
    let pools = crate::domain::pools::invitable_pools(conn, org_id, user_id)?;
    if pools.is_empty() {
        return Err(InvitationError::NotAllowed);
    }
    Ok(Some(pools))
}

fn choices_within(
    conn: &mut DbConnection,
    (org_id, user_id): (&str, &str),
    own: &Standing,
    scope: &Scope,
) -> diesel::QueryResult<InviteChoices> {
    let offers_groups = own.may(Permission::GroupsManage) && scope.is_none();
    let mut choices = InviteChoices {
        roles: grantable(own, roles::list(conn, org_id)?),
        // Only the groups whose role they may hand out (`check_grants` refuses the rest).
        groups: match offers_groups {
            true => rows::org_groups(conn, org_id)?
                .into_iter()
                .filter(|g| group_grant(g).is_none_or(|granted| own.may_grant(granted)))
                .collect(),
            false => Vec::new(),
        },
        pools: Vec::new(),
        pools_only: scope.is_some(),
        offers_groups,
    };
    // Inviting organization-wide places nobody in a pool by itself: without
    // `pools.manage`, only the pools a pool role lets them invite into are offered, and
    // no other pool's name is shown, not even as a parent of one of theirs.
    let placeable = match scope {
        Some(pools) => Some(pools.clone()),
        None if own.may(Permission::PoolsManage) => None,
        None => Some(crate::domain::pools::invitable_pools(
            conn, org_id, user_id,
        )?),
    };
    let all = crate::db::pools::list(conn, org_id)?;
    choices.pools = crate::domain::pools::choices_among(&all, placeable.as_ref());
    Ok(choices)
}

/// What the blank invite form offers the member; refused to a member who may not invite.
pub fn form_choices(
    conn: &mut DbConnection,
    org_id: &str,
    user_id: &str,
    own: &Standing,
) -> Result<InviteChoices, InvitationError> {
    let scope = scope(conn, org_id, user_id, own)?;
    Ok(choices_within(conn, (org_id, user_id), own, &scope)?)
}

/// The answer to a submitted invite form.
#[derive(Debug)]
pub enum Submission {
    Sent(InviteReport),
    /// Nobody was invited: the form goes back with these errors and these choices.
    Refused {
        choices: InviteChoices,
        errors: FieldErrors,
    },
}

/// The invite form's submit: [`invite`], within what the member may invite into.
pub fn submit(
    conn: &mut DbConnection,
    env: &Env,
    own: &Standing,
    form: &InviteForm,
) -> Result<Submission, InvitationError> {
    let scope = scope(conn, &env.org.id, &env.inviter.user.id, own)?;
    let refused = |conn: &mut DbConnection, errors| -> Result<Submission, InvitationError> {
        Ok(Submission::Refused {
            choices: choices_within(conn, (&env.org.id, &env.inviter.user.id), own, &scope)?,
            errors,
        })
    };
    if let Some(pools) = &scope {
        let inside = !form.pool_ids.is_empty() && form.pool_ids.iter().all(|p| pools.contains(p));
        if !inside || !form.group_ids.is_empty() {
            // Said at the pools, with the addresses kept: the form offers only their pools.
            let mut errors = FieldErrors::default();
            errors.add("pool_ids", POOLS_ONLY);
            return refused(conn, errors);
        }
    }
    match invite(conn, env, form) {
        Err(InvitationError::Invalid(errors)) => refused(conn, errors),
        // Nothing was written: the form comes back as typed, with each reason.
        Ok(report) if report.results.iter().all(|r| r.outcome.key() == "invalid") => {
            let mut errors = FieldErrors::default();
            errors.add("emails", report.invalid_reasons());
            refused(conn, errors)
        }
        other => other.map(Submission::Sent),
    }
}

#[derive(Debug, Clone)]
pub struct InviteReport {
    pub role_name: String,
    pub results: Vec<AddressResult>,
}

/// How an invite went as a whole, for the colour of its summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    /// Every address got its invitation.
    Success,
    /// Some did, some did not.
    Warning,
    /// Nobody got one.
    Error,
}

impl Tone {
    /// The flash class suffix: `flash-success`, `flash-warning`, `flash-error`.
    pub fn class(self) -> &'static str {
        match self {
            Tone::Success => "success",
            Tone::Warning => "warning",
            Tone::Error => "error",
        }
    }
}

impl InviteReport {
    pub fn tone(&self) -> Tone {
        let sent = self.count("invited") + self.count("resent") + self.count("replaced");
        match sent {
            0 => Tone::Error,
            n if n == self.results.len() => Tone::Success,
            _ => Tone::Warning,
        }
    }

    /// The invalid addresses as typed, one per line, to fix and send again.
    pub fn invalid_addresses(&self) -> String {
        self.invalid()
            .map(|r| r.email.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Why each invalid address was refused, one after another: the message by the field.
    pub fn invalid_reasons(&self) -> String {
        let reasons: Vec<String> = self
            .invalid()
            .map(|r| match &r.outcome {
                Outcome::Invalid(why) => format!("“{}”: {why}", r.email),
                _ => unreachable!("filtered to invalid addresses"),
            })
            .collect();
        let noun = if reasons.len() == 1 {
            "This address is"
        } else {
            "These addresses are"
        };
        format!(
            "{noun} not valid; correct them and send again. {}",
            reasons.join("; ")
        )
    }

    fn invalid(&self) -> impl Iterator<Item = &AddressResult> {
        self.results.iter().filter(|r| r.outcome.key() == "invalid")
    }

    pub fn count(&self, key: &str) -> usize {
        self.results
            .iter()
            .filter(|r| r.outcome.key() == key)
            .count()
    }
}

/// The ids once each, in the order given.
fn distinct(ids: &[String]) -> Vec<String> {
    let mut seen = HashSet::new();
    ids.iter().filter(|id| seen.insert(*id)).cloned().collect()
}

/// Checks the parts of the form that need no database.
fn check_form(
    form: &InviteForm,
    errors: &mut FieldErrors,
) -> (Vec<String>, String, String, Option<NaiveDateTime>) {
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
    let today = db::now().date();
    let until = errors
        .check(
            "access_until",
            access_until::parse_access_until(&form.access_until, today),
        )
        .flatten();
    (addresses, first, last, until)
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
        Some(role) if !env.inviter.may_grant(Standing::of_role(&role)) => {
            errors.add(
                "role_id",
                format!(
                    "You cannot invite people as {}: it is above your own role, or holds a permission you do not hold.",
                    role.name
                ),
            );
            None
        }
        Some(role) => Some(role),
    };
    for (field, ids, what) in [
        ("group_ids", &form.group_ids, "groups"),
        ("pool_ids", &form.pool_ids, "pools"),
    ] {
        if distinct(ids).len() > MAX_CHOSEN {
            errors.add(
                field,
                format!("Choose at most {MAX_CHOSEN} {what} for one invitation."),
            );
            return Ok(role);
        }
    }
    if !may_place_in_groups(&env.inviter.standing, &form.group_ids) {
        errors.add(
            "group_ids",
            "You can only add people to groups if you may manage groups.",
        );
        // Nor, then, learn which of the ids sent are groups, and what they grant.
        return Ok(role);
    }
    let groups = rows::org_groups(conn, &env.org.id)?;
    for id in &form.group_ids {
        match groups.iter().find(|g| &g.id == id) {
            None => errors.add("group_ids", "A chosen group does not exist."),
            Some(group)
                if group_grant(group).is_some_and(|granted| !env.inviter.may_grant(granted)) =>
            {
                errors.add(
                    "group_ids",
                    format!(
                        "The group {} grants a role above your own (a higher rank, or a permission you do not hold).",
                        group.name
                    ),
                )
            }
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
    } else if !may_place_in_pools(
        conn,
        &env.org.id,
        &env.inviter.user.id,
        &env.inviter.standing,
        &form.pool_ids,
    )? {
        errors.add(
            "pool_ids",
            "You can only invite people into pools you manage.",
        );
    }
    Ok(role)
}

/// Why an end of access was refused: it ends after the inviter's own.
fn beyond_inviters_access(env: &Env) -> String {
    let day = access_until::field_value(env.inviter.access_until);
    format!(
        "Your own access ends after {day}: people you invite can have access until that day at most."
    )
}

/// What every new invitation of one submit grants.
struct Offer<'a> {
    role: &'a Role,
    first_name: &'a str,
    last_name: &'a str,
    group_ids: &'a [String],
    pool_ids: &'a [String],
    access_until: Option<NaiveDateTime>,
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
    let (addresses, first_name, last_name, access_until) = check_form(form, &mut errors);
    if errors.get("access_until").is_none()
        && !access_within(env.inviter.access_until, access_until)
    {
        errors.add("access_until", beyond_inviters_access(env));
    }
    let group_ids = distinct(&form.group_ids);
    let pool_ids = distinct(&form.pool_ids);
    db::write_tx(conn, |conn| {
        // Serializes invitations per organization, so two admins inviting the same
        // address at once cannot both pass the "already invited" check.
        env.hold_org(conn)?;
        let role = check_grants(conn, env, form, &mut errors)?;
        let role = match role {
            Some(role) if errors.is_empty() => role,
            _ => return Err(InvitationError::Invalid(errors)),
        };
        let wanted: HashSet<String> = addresses
            .iter()
            .filter_map(|raw| Email::parse_new(raw).ok())
            .map(|email| email.as_str().to_string())
            .collect();
        // Members' addresses are mailed nothing: they use none of the hour's number. Only
        // for an inviter who may read members, or the limit's message would tell the
        // others which addresses are members.
        let wanted: Vec<&str> = wanted.iter().map(String::as_str).collect();
        let members = if env.inviter.sees_members() {
            rows::member_emails(conn, &env.org.id, &wanted)?.len()
        } else {
            0
        };
        match env.within_hourly_limit(conn, wanted.len().saturating_sub(members)) {
            Err(InvitationError::HourlyLimit(why)) => {
                errors.add("emails", why);
                return Err(InvitationError::Invalid(errors));
            }
            other => other?,
        }
        let offer = Offer {
            role: &role,
            first_name: &first_name,
            last_name: &last_name,
            group_ids: &group_ids,
            pool_ids: &pool_ids,
            access_until,
        };
        let mut results = invite_each(conn, env, addresses, &offer)?;
        env.withhold_links(conn, &mut results)?;
        Ok(InviteReport {
            role_name: role.name.clone(),
            results,
        })
    })
}

/// One result per address: invalid, already a member, already invited (then renewed if
/// it may be), or invited now.
fn invite_each(
    conn: &mut DbConnection,
    env: &Env,
    addresses: Vec<String>,
    offer: &Offer,
) -> Result<Vec<AddressResult>, InvitationError> {
    let now = db::now();
    let parsed: Vec<(String, Result<Email, String>)> = addresses
        .into_iter()
        .map(|raw| {
            let parsed = Email::parse_new(&raw).map_err(|e| e.to_string());
            (raw, parsed)
        })
        .collect();
    let valid: Vec<&str> = parsed
        .iter()
        .filter_map(|(_, p)| p.as_ref().ok().map(Email::as_str))
        .collect();
    let members = rows::member_emails(conn, &env.org.id, &valid)?;
    let pending = rows::pending_for_emails(conn, &env.org.id, &valid)?;
    let mut roles_by_id = HashMap::new();
    let mut results = Vec::with_capacity(parsed.len());
    let mut seen = HashSet::new();
    for (raw, parsed) in parsed {
        let email = match parsed {
            Err(why) => {
                results.push(AddressResult::unsent(raw, Outcome::Invalid(why)));
                continue;
            }
            // Two spellings of one address ("A@x.io", "a@x.io") count once.
            Ok(email) if !seen.insert(email.as_str().to_string()) => continue,
            Ok(email) => email,
        };
        let result = if members.iter().any(|m| m == email.as_str()) {
            // Who is a member is for those who may open the Users tab.
            let outcome = if env.inviter.sees_members() {
                Outcome::AlreadyMember
            } else {
                Outcome::Withheld
            };
            AddressResult::unsent(email.to_string(), outcome)
        } else if let Some(existing) = pending.iter().find(|i| i.email == email.as_str()) {
            let role = role_by_id(conn, env, &mut roles_by_id, &existing.role_id)?;
            if !offers_differ(conn, existing, offer)? {
                let names = (offer.first_name, offer.last_name);
                renew::renew_on_invite(conn, env, existing, &role, (now, names))?
            } else if let Err(why) = renew::cancel_to_replace(conn, env, existing, &role, now)? {
                if !env.inviter.sees_invitations() {
                    AddressResult::unsent(email.to_string(), Outcome::Withheld)
                } else {
                    AddressResult {
                        email: email.to_string(),
                        outcome: Outcome::NotResent(why),
                        invitation_id: Some(existing.id.clone()),
                        link: None,
                    }
                }
            } else {
                let (id, token) = create_one(conn, env, &email, offer, now)?;
                AddressResult {
                    email: email.to_string(),
                    outcome: Outcome::Replaced,
                    invitation_id: Some(id),
                    link: Some(env.link(&token)),
                }
            }
        } else {
            let (id, token) = create_one(conn, env, &email, offer, now)?;
            AddressResult {
                email: email.to_string(),
                outcome: Outcome::Invited,
                invitation_id: Some(id),
                link: Some(env.link(&token)),
            }
        };
        results.push(result);
    }
    Ok(results)
}

/// Whether the form offers something else than the open invitation does: another role,
/// other groups or pools, or another last day. Renewing would then send the old offer
/// again under a results page that names the new one.
fn offers_differ(
    conn: &mut DbConnection,
    existing: &rows::Invitation,
    offer: &Offer,
) -> Result<bool, InvitationError> {
    if existing.role_id != offer.role.id || existing.access_until != offer.access_until {
        return Ok(true);
    }
    let sorted = |ids: &[String]| {
        let mut ids = ids.to_vec();
        ids.sort();
        ids.dedup();
        ids
    };
    let groups = rows::group_ids(conn, &existing.id)?;
    let pools: Vec<String> = rows::pool_grants(conn, &existing.id)?
        .into_iter()
        .map(|(pool, _)| pool)
        .collect();
    Ok(sorted(&groups) != sorted(offer.group_ids) || sorted(&pools) != sorted(offer.pool_ids))
}

/// A role of the organization, read once per submit.
fn role_by_id(
    conn: &mut DbConnection,
    env: &Env,
    cache: &mut HashMap<String, Role>,
    id: &str,
) -> Result<Role, InvitationError> {
    if let Some(role) = cache.get(id) {
        return Ok(role.clone());
    }
    let role = roles::find(conn, &env.org.id, id)?.ok_or(InvitationError::NotFound)?;
    cache.insert(id.to_string(), role.clone());
    Ok(role)
}

fn create_one(
    conn: &mut DbConnection,
    env: &Env,
    email: &Email,
    offer: &Offer,
    now: NaiveDateTime,
) -> Result<(String, String), InvitationError> {
    let id = db::new_id();
    let token = tokens::generate();
    let expires_at = super::link_expiry(now, env.ttl, offer.access_until);
    rows::insert(
        conn,
        &NewInvitation {
            id: &id,
            org_id: &env.org.id,
            email: email.as_str(),
            first_name: offer.first_name,
            last_name: offer.last_name,
            role_id: &offer.role.id,
            token_hash: &tokens::hash(&token),
            status: rows::PENDING,
            invited_by: Some(&env.inviter.user.id),
            created_at: now,
            expires_at,
            last_sent_at: now,
            send_count: 1,
            access_until: offer.access_until,
        },
    )?;
    for group_id in offer.group_ids {
        rows::add_group(conn, &id, group_id)?;
    }
    if !offer.pool_ids.is_empty() {
        let pool_role = invited_pool_role(conn, &env.org.id, offer.role)?;
        for pool_id in offer.pool_ids {
            rows::add_pool(conn, &id, pool_id, &pool_role)?;
        }
    }
    let link = Link {
        token: &token,
        expires_at,
        access_until: offer.access_until,
    };
    queue_email(
        conn,
        env.sender(),
        (email.as_str(), &id),
        offer.role,
        link,
        false,
    )?;
    audit::record(
        conn,
        &env.event("invitation.created", &id, email.as_str())
            .details(json!({
                "role": offer.role.key,
                "expires_at": expires_at.and_utc().to_rfc3339(),
                "groups": offer.group_ids,
                "pools": offer.pool_ids,
                "access_until": offer.access_until.map(|u| access_until::last_day(u).to_string()),
            })),
    )?;
    Ok((id, token))
}

/// An account that already exists, offered a role by a platform admin: the first admin
/// of an organization they created, or a membership they add from the account's page.
pub struct PlatformInvitation<'a> {
    pub org: &'a Organization,
    pub role: &'a Role,
    pub email: &'a str,
    /// The platform admin, whom the email names and whose grant acceptance checks.
    pub inviter: &'a User,
    pub ttl: chrono::Duration,
    pub public_url: &'a str,
}

/// Invites an existing account by a link mailed to its address, so that its mailbox, not
/// whoever chose its password, decides whether it runs the organization. Answers the
/// invitation's id; the caller records the event that creates the organization.
pub fn invite_from_platform(
    conn: &mut DbConnection,
    first: PlatformInvitation,
) -> Result<String, InvitationError> {
    let now = db::now();
    // An earlier one (lapsed, say) gives way: an address has one open invitation at most,
    // and only the newest link works. The caller's event names the new one.
    for earlier in rows::pending_for_emails(conn, &first.org.id, &[first.email])? {
        rows::cancel(conn, &earlier.id)?;
        crate::db::email_outbox::delete_unsent_for(conn, &earlier.id)?;
    }
    let id = db::new_id();
    let token = tokens::generate();
    let expires_at = now + first.ttl;
    rows::insert(
        conn,
        &NewInvitation {
            id: &id,
            org_id: &first.org.id,
            email: first.email,
            first_name: "",
            last_name: "",
            role_id: &first.role.id,
            token_hash: &tokens::hash(&token),
            status: rows::PENDING,
            invited_by: Some(&first.inviter.id),
            created_at: now,
            expires_at,
            last_sent_at: now,
            send_count: 1,
            access_until: None,
        },
    )?;
    let sender = Sender {
        org_name: &first.org.name,
        inviter_name: super::display_name(first.inviter),
        public_url: first.public_url,
    };
    let link = Link {
        token: &token,
        expires_at,
        access_until: None,
    };
    queue_email(conn, sender, (first.email, &id), first.role, link, false)?;
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::invitations::Inviter;
    use crate::domain::invitations::fixture::{Fixture, age_all, count, fixture, token_of};
    use crate::domain::roles::{ADMIN, MANAGER};
    use chrono::Duration;

    #[test]
    fn addresses_split_on_commas_spaces_and_new_lines_once_each() {
        assert_eq!(
            split_addresses(" a@x.io, b@x.io\nc@x.io;d@x.io\t\r\nA@X.io ,, "),
            vec!["a@x.io", "b@x.io", "c@x.io", "d@x.io"]
        );
        assert!(split_addresses(" \n , ").is_empty());
    }

    #[test]
    fn a_list_pasted_from_a_mail_program_gives_its_addresses() {
        assert_eq!(
            split_addresses(
                "Ada Lovelace <ada@x.io>, \"Hopper, Grace\" <grace@y.io>; <linus@z.io>\n\
                 \"kim@w.io\", Bob <BOB@y.io> carol@v.io, ada@X.io"
            ),
            vec![
                "ada@x.io",
                "grace@y.io",
                "linus@z.io",
                "kim@w.io",
                "BOB@y.io",
                "carol@v.io"
            ]
        );
        // Words alone are still judged (and refused) as addresses; an unclosed bracket
        // leaves what was typed as it was.
        assert_eq!(split_addresses("ada lovelace"), vec!["ada", "lovelace"]);
        assert_eq!(split_addresses("Ada <ada@x.io"), vec!["Ada", "<ada@x.io"]);
        // A stray quote takes in nothing after it...
        assert_eq!(
            split_addresses("Ada\" <ada@x.io>, bob@y.io, carol@z.io"),
            vec!["ada@x.io", "bob@y.io", "carol@z.io"]
        );
        // ...and what two of them took in is refused where it can be seen, not dropped.
        assert_eq!(
            split_addresses("Carol\" <c@z.io>, \"Dan <d@w.io>"),
            vec!["d@w.io", "<c@z.io>,"]
        );
        assert_eq!(
            split_addresses("a@x.io\"\nb@y.io\n\"Carol\" <c@z.io>"),
            vec!["c@z.io", "a@x.io", "b@y.io"]
        );
        // A stray `<` takes in nothing past the next separator.
        assert_eq!(
            split_addresses("Ada <a@x.io, Bob <b@y.io>, c@z.io"),
            vec!["Ada", "<a@x.io", "b@y.io", "c@z.io"]
        );
    }

    #[test]
    fn chosen_ids_count_once() {
        let ids: Vec<String> = ["g1", "g2", "g1"].map(String::from).to_vec();
        assert_eq!(distinct(&ids), vec!["g1", "g2"]);
    }

    #[test]
    fn repeated_form_fields_are_all_kept() {
        let form: InviteForm = serde_html_form::from_bytes(
            b"emails=a%40x.io+b%40x.io&role_id=r&group_ids=g1&group_ids=g2&pool_ids=&first_name=Ada",
        )
        .unwrap();
        assert_eq!(form.emails, "a@x.io b@x.io");
        assert_eq!(form.group_ids, vec!["g1", "g2"]);
        assert!(form.pool_ids.is_empty());
        assert_eq!(form.first_name, "Ada");
        let blank: InviteForm = serde_html_form::from_bytes(b"").unwrap();
        assert!(blank.emails.is_empty() && blank.group_ids.is_empty());
    }

    #[test]
    fn each_address_gets_its_own_result() {
        let f = fixture();
        let env = f.env(&f.admin);
        let conn = &mut f.db.pool.get().unwrap();
        let first = invite(conn, &env, &f.form("old@example.com", MEMBER)).unwrap();
        assert_eq!(first.results[0].outcome, Outcome::Invited);

        // Old enough to be resent.
        age_all(conn, Duration::minutes(5));

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
            token_of(&first.results[0]),
            token_of(&report.results[2]),
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
    fn the_summary_tone_follows_the_outcome() {
        let f = fixture();
        let env = f.env(&f.admin);
        let conn = &mut f.db.pool.get().unwrap();
        let mixed = invite(conn, &env, &f.form("ok@example.com, nope, bad@", MEMBER)).unwrap();
        assert_eq!(mixed.tone(), Tone::Warning);
        assert_eq!(mixed.invalid_addresses(), "nope\nbad@");
        let reasons = mixed.invalid_reasons();
        assert!(
            reasons.contains("“nope”") && reasons.contains("“bad@”"),
            "{reasons}"
        );
        let fine = invite(conn, &env, &f.form("fine@example.com", MEMBER)).unwrap();
        assert_eq!(fine.tone(), Tone::Success);
        // Already a member: nobody invited, so not green.
        let member = invite(conn, &env, &f.form(&f.admin.user.email, MEMBER)).unwrap();
        assert_eq!(member.tone(), Tone::Error);
    }

    #[test]
    fn only_invalid_addresses_send_the_form_back_with_each_reason() {
        let f = fixture();
        let env = f.env(&f.admin);
        let own = crate::domain::policy::Standing {
            perms: crate::domain::roles::PermissionSet::all(),
            rank: 100,
        };
        let conn = &mut f.db.pool.get().unwrap();
        let events = count(conn, "audit_events");
        let Submission::Refused { errors, .. } =
            submit(conn, &env, &own, &f.form("nope x@", MEMBER)).unwrap()
        else {
            panic!("nothing valid: the form comes back");
        };
        let message = errors.get("emails").unwrap();
        assert!(
            message.contains("“nope”") && message.contains("“x@”"),
            "{message}"
        );
        assert_eq!(count(conn, "audit_events"), events);
        assert_eq!(count(conn, "invitations"), 0);
    }

    #[test]
    fn form_problems_invite_nobody() {
        let f = fixture();
        let env = f.env(&f.admin);
        let conn = &mut f.db.pool.get().unwrap();
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
        let f: Fixture = fixture();
        let role = f.role(MANAGER);
        let manager = Inviter {
            user: f.admin.user.clone(),
            standing: Standing::of_role(&role),
            role,
            access_until: None,
            now: db::now(),
        };
        let env = f.env(&manager);
        let conn = &mut f.db.pool.get().unwrap();
        let Err(InvitationError::Invalid(errors)) =
            invite(conn, &env, &f.form("x@example.com", ADMIN))
        else {
            panic!("an admin invitation from a manager must fail");
        };
        assert!(errors.get("role_id").unwrap().contains("above your own"));
        assert!(invite(conn, &env, &f.form("x@example.com", MANAGER)).is_ok());
    }
}
