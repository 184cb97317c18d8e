//! What platform administrators do across organizations: create organizations and
//! accounts, disable and re-enable accounts, add accounts to organizations. Operators
//! only read; the routes refuse their POSTs before anything here runs.

use serde_json::json;

use super::FieldErrors;
use super::RuleError;
use super::email::Email;
use super::invitations;
use super::names::parse_name;
use super::policy;
use super::roles::ADMIN;
use crate::audit::{self, Event, Origin};
use crate::db::organizations::{self, Organization};
use crate::db::users::{self, User};
use crate::db::{self, DbConnection, groups, memberships, roles, sessions};

/// The platform administrator acting.
#[derive(Debug, Clone)]
pub struct PlatformActor {
    pub user_id: String,
    pub email: String,
    /// The base of links in the emails this actor's changes send.
    pub public_url: String,
    /// How long the link of an invitation this actor's changes send stays valid.
    pub invitation_ttl: chrono::Duration,
    /// The app's clock when the request came in.
    pub now: chrono::NaiveDateTime,
}

/// In one transaction holding the platform's lock, for an actor who is still an active
/// platform admin. The actor was read as the request came in: one disabled or stepped
/// down meanwhile (two admins disabling each other at once, say, which would leave the
/// platform without an admin) changes nothing.
fn in_platform_tx<T>(
    conn: &mut DbConnection,
    actor: &PlatformActor,
    f: impl FnOnce(&mut DbConnection) -> Result<T, RuleError>,
) -> Result<T, RuleError> {
    db::write_tx(conn, |conn| {
        still_runs_the_platform(conn, actor)?;
        f(conn)
    })
}

/// Takes the platform's lock, then checks the actor is still an active platform admin.
pub(crate) fn still_runs_the_platform(
    conn: &mut DbConnection,
    actor: &PlatformActor,
) -> Result<(), RuleError> {
    db::platform_lock(conn)?;
    let holds = users::find(conn, &actor.user_id)?
        .is_some_and(|u| u.is_active() && policy::platform_may_change(&u.platform_role));
    if holds {
        Ok(())
    } else {
        Err(RuleError::Forbidden(
            super::members::STANDING_CHANGED.into(),
        ))
    }
}

/// Queues the account-setup email in the caller's transaction, so the account and its
/// email exist together or not at all.
fn queue_setup_email(
    conn: &mut DbConnection,
    actor: &PlatformActor,
    user: &User,
    org_name: &str,
    token: &str,
) -> Result<(), RuleError> {
    let now = db::now();
    let expires_at = now + chrono::Duration::hours(super::setup::ACCOUNT_LINK_TTL_HOURS);
    let email = crate::mail::templates::AccountSetupEmail {
        admin_name: actor.email.clone(),
        org_name: org_name.to_string(),
        link: format!("{}/setup/{token}", actor.public_url),
        expires_at,
    }
    .render()
    .map_err(|e| RuleError::Db(diesel::result::Error::SerializationError(e.into())))?;
    let to = (&user.email, Some(user.id.as_str()));
    crate::mail::outbox::queue_link(conn, to.0, &email, to.1, now, Some(expires_at))?;
    Ok(())
}

fn invalid(field: &'static str, message: &str) -> RuleError {
    RuleError::invalid(field, message)
}

#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct OrgForm {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub slug: String,
    #[serde(default)]
    pub admin_email: String,
}

pub struct CreatedOrg {
    pub org: Organization,
    pub admin_email: String,
    pub first_admin: FirstAdmin,
}

/// How the first admin came to the new organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FirstAdmin {
    /// A new account, which still needs a password: the setup link's token.
    NewAccount { setup_token: String },
    /// An existing account joined at once (`policy::new_org_may_attach`).
    Joined,
    /// An existing account was invited by email and joins when its owner accepts.
    Invited,
}

pub fn create_org(
    conn: &mut DbConnection,
    actor: &PlatformActor,
    form: &OrgForm,
    origin: &Origin,
) -> Result<CreatedOrg, RuleError> {
    let mut errors = FieldErrors::default();
    let name = errors.check("name", super::setup::parse_org_name(&form.name));
    let slug_raw = if form.slug.trim().is_empty() {
        super::slug::from_name(&form.name)
    } else {
        form.slug.clone()
    };
    let slug = errors.check("slug", super::slug::parse(&slug_raw));
    let email = errors.check("admin_email", Email::parse_new(&form.admin_email));
    let (Some(name), Some(slug), Some(email)) = (name, slug, email) else {
        return Err(RuleError::Invalid(errors));
    };
    in_platform_tx(conn, actor, |conn| {
        if organizations::slug_taken(conn, &slug)? {
            return Err(invalid(
                "slug",
                "Another organization already uses this slug.",
            ));
        }
        // One request, one event: the organization and its first admin are recorded
        // together as `org.created`, the admin in its details.
        let org = super::orgs::insert(conn, &slug, &name)?;
        let admin = roles::find_by_key(conn, &org.id, ADMIN)?.ok_or(RuleError::NotFound)?;
        let (user, first_admin) = match users::find_by_email_held(conn, email.as_str())? {
            Some(user) => {
                let attach = policy::new_org_may_attach(
                    user.id == actor.user_id,
                    user.password_hash.is_some(),
                );
                (
                    user,
                    if attach {
                        FirstAdmin::Joined
                    } else {
                        FirstAdmin::Invited
                    },
                )
            }
            None => {
                let user = insert_account(conn, &email, "", "")?;
                let setup_token = super::setup::issue_account_link(conn, &user.id)?;
                queue_setup_email(conn, actor, &user, &name, &setup_token)?;
                (user, FirstAdmin::NewAccount { setup_token })
            }
        };
        let invitation_id = if first_admin == FirstAdmin::Invited {
            Some(invite_by_mail(conn, actor, &org, &admin, &user, origin)?)
        } else {
            memberships::insert(conn, &org.id, &user, &admin.id)?;
            None
        };
        audit::record(
            conn,
            &super::orgs::created_event(&org, origin)
                .actor(&actor.user_id, &actor.email)
                .details(json!({
                    "slug": org.slug,
                    "first_admin": user.email,
                    "first_admin_id": user.id,
                    "role": admin.name,
                    "new_account": matches!(first_admin, FirstAdmin::NewAccount { .. }),
                    "invitation_id": invitation_id,
                })),
        )?;
        Ok(CreatedOrg {
            org,
            admin_email: user.email,
            first_admin,
        })
    })
}

fn insert_account(
    conn: &mut DbConnection,
    email: &Email,
    first: &str,
    last: &str,
) -> Result<User, RuleError> {
    // No password yet: the setup link sets it.
    super::new_account::create(conn, email.as_str(), (first, last), None, "none")?
        .ok_or_else(|| RuleError::Conflict("An account with that email already exists.".into()))
}

#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct UserForm {
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub first_name: String,
    #[serde(default)]
    pub last_name: String,
    /// Slug or id of the organization the account joins.
    #[serde(default)]
    pub org: String,
    #[serde(default)]
    pub role_id: String,
    #[serde(default)]
    pub group_ids: Vec<String>,
}

pub struct CreatedUser {
    pub user: User,
    pub org: Organization,
    pub setup_token: String,
}

fn find_org(conn: &mut DbConnection, raw: &str) -> Result<Organization, RuleError> {
    let raw = raw.trim();
    let org = match organizations::find_by_slug(conn, raw)? {
        Some(org) => Some(org),
        None => organizations::find(conn, raw)?,
    };
    org.ok_or_else(|| invalid("org", "Choose an existing organization."))
}

fn find_role(
    conn: &mut DbConnection,
    org: &Organization,
    raw: &str,
) -> Result<roles::Role, RuleError> {
    let raw = raw.trim();
    match roles::find(conn, &org.id, raw)? {
        Some(r) => Ok(r),
        None => roles::find_by_key(conn, &org.id, raw)?
            .ok_or_else(|| invalid("role_id", "Choose one of the organization's roles.")),
    }
}

/// Creates an account without a password, makes it a member of one organization (with
/// a role and groups) and answers a one-time account-setup link.
pub fn create_user(
    conn: &mut DbConnection,
    actor: &PlatformActor,
    form: &UserForm,
    origin: &Origin,
) -> Result<CreatedUser, RuleError> {
    let mut errors = FieldErrors::default();
    let email = errors.check("email", Email::parse_new(&form.email));
    let first = errors.check("first_name", parse_name(&form.first_name));
    let last = errors.check("last_name", parse_name(&form.last_name));
    let (Some(email), Some(first), Some(last)) = (email, first, last) else {
        return Err(RuleError::Invalid(errors));
    };
    in_platform_tx(conn, actor, |conn| {
        let org = find_org(conn, &form.org)?;
        organizations::lock(conn, &org.id)?;
        let role = find_role(conn, &org, &form.role_id)?;
        if users::find_by_email(conn, email.as_str())?.is_some() {
            return Err(invalid(
                "email",
                "An account with this email already exists: add it to the organization instead.",
            ));
        }
        let mut group_list = Vec::new();
        for gid in form.group_ids.iter().filter(|g| !g.trim().is_empty()) {
            let group = groups::find(conn, &org.id, gid.trim())?
                .ok_or_else(|| invalid("group_ids", "Choose groups of that organization."))?;
            group_list.push(group);
        }
        // Before the account: an acceptance of one of these invitations takes the
        // invitation, then inserts the address, and the two must not wait on each other.
        invitations::withdraw_for_member(
            conn,
            &org.id,
            email.as_str(),
            (&actor.user_id, &actor.email),
            origin,
        )?;
        let user = insert_account(conn, &email, &first, &last)?;
        memberships::insert(conn, &org.id, &user, &role.id)?;
        for g in &group_list {
            groups::add_member(conn, &org.id, &g.id, &user.id)?;
        }
        let setup_token = super::setup::issue_account_link(conn, &user.id)?;
        queue_setup_email(conn, actor, &user, &org.name, &setup_token)?;
        audit::record(
            conn,
            &Event::new("admin.user_created", origin)
                .org(&org.id)
                .actor(&actor.user_id, &actor.email)
                .target("user", &user.id, &user.email)
                .details(json!({
                    "role": role.name,
                    "groups": group_list.iter().map(|g| g.name.clone()).collect::<Vec<_>>(),
                    "name": super::names::full_name(&first, &last),
                })),
        )?;
        Ok(CreatedUser {
            user,
            org,
            setup_token,
        })
    })
}

/// The account, if the actor may disable it now.
pub fn disableable(
    conn: &mut DbConnection,
    actor: &PlatformActor,
    user_id: &str,
) -> Result<User, RuleError> {
    let user = users::find(conn, user_id)?.ok_or(RuleError::NotFound)?;
    if user.id == actor.user_id {
        return Err(RuleError::Conflict(
            "You cannot disable your own account.".into(),
        ));
    }
    if user.status == "disabled" {
        return Err(RuleError::Conflict(format!(
            "{} is already disabled.",
            user.email
        )));
    }
    Ok(user)
}

/// Disables (`false`) or re-enables (`true`) an account everywhere. Disabling ends all
/// of its sessions at once; sign-in refuses disabled accounts.
pub fn set_enabled(
    conn: &mut DbConnection,
    actor: &PlatformActor,
    user_id: &str,
    enabled: bool,
    origin: &Origin,
) -> Result<String, RuleError> {
    if !enabled && user_id == actor.user_id {
        return Err(RuleError::Conflict(
            "You cannot disable your own account.".into(),
        ));
    }
    in_platform_tx(conn, actor, |conn| {
        let user = users::find(conn, user_id)?.ok_or(RuleError::NotFound)?;
        let status = if enabled { "active" } else { "disabled" };
        if user.status == status {
            return Err(RuleError::Conflict(format!(
                "{} is already {}.",
                user.email,
                if enabled { "enabled" } else { "disabled" }
            )));
        }
        // Every organization this account administers is locked first, as org-side
        // changes lock it, so a disable and a step-down cannot both leave it without an
        // active admin.
        let mut orgs = memberships::all_orgs_of_user(conn, &user.id)?;
        // In the order the expiry job locks them (by id), so the two never wait on
        // each other.
        orgs.sort_unstable_by(|a, b| a.id.cmp(&b.id));
        for org in &orgs {
            organizations::lock(conn, &org.id)?;
        }
        if !enabled {
            // Before the account's row: a reset in flight takes its link, then the
            // account, and the two must not wait on each other.
            super::password_reset::end_unused_links(conn, &user.id)?;
        }
        users::set_status(conn, &user.id, status)?;
        if !enabled {
            for org in &orgs {
                match super::members::ensure_admin_remains(conn, &org.id) {
                    Err(RuleError::LastAdmin) => {
                        return Err(RuleError::Conflict(format!(
                            "{} is the last active admin of {}: make someone else an admin there first.",
                            user.email, org.name
                        )));
                    }
                    other => other?,
                }
            }
        }
        let ended = if enabled {
            0
        } else {
            sessions::delete_for_user(conn, &user.id)?
        };
        audit::record(
            conn,
            &Event::new(
                if enabled {
                    "admin.user_enabled"
                } else {
                    "admin.user_disabled"
                },
                origin,
            )
            .actor(&actor.user_id, &actor.email)
            .target("user", &user.id, &user.email)
            .details(json!({ "sessions_ended": ended })),
        )?;
        Ok(user.email)
    })
}

#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct MembershipForm {
    #[serde(default)]
    pub org: String,
    #[serde(default)]
    pub role_id: String,
    /// The account list as it was, to return to (see `redirect::back_to`).
    #[serde(default)]
    pub next: Option<String>,
}

/// What adding an account to an organization came to.
pub struct Added {
    pub email: String,
    pub org_name: String,
    /// The account was sent an invitation by email instead (`policy::new_org_may_attach`).
    pub invited: bool,
}

/// Sends `user` an invitation to `org` with `role`, by email, in the caller's transaction;
/// answers its id.
fn invite_by_mail(
    conn: &mut DbConnection,
    actor: &PlatformActor,
    org: &Organization,
    role: &roles::Role,
    user: &User,
    origin: &Origin,
) -> Result<String, RuleError> {
    let inviter = users::find(conn, &actor.user_id)?.ok_or(RuleError::NotFound)?;
    // An address has one open invitation at most: the organization's own gives way, and
    // its admins see by whom and why.
    invitations::withdraw_open(
        conn,
        &org.id,
        &user.email,
        (&actor.user_id, &actor.email),
        "replaced by a platform admin's invitation",
        origin,
    )?;
    let invitation = invitations::PlatformInvitation {
        org,
        role,
        email: &user.email,
        inviter: &inviter,
        ttl: actor.invitation_ttl,
        public_url: &actor.public_url,
    };
    invitations::invite_from_platform(conn, invitation).map_err(|e| match e {
        invitations::InvitationError::Db(e) => RuleError::Db(e),
        other => RuleError::Db(diesel::result::Error::SerializationError(other.into())),
    })
}

/// Adds an existing account to an organization with a role: at once when
/// `policy::new_org_may_attach` allows, else by an invitation mailed to it.
pub fn add_membership(
    conn: &mut DbConnection,
    actor: &PlatformActor,
    user_id: &str,
    form: &MembershipForm,
    origin: &Origin,
) -> Result<Added, RuleError> {
    in_platform_tx(conn, actor, |conn| {
        let org = find_org(conn, &form.org)?;
        organizations::lock(conn, &org.id)?;
        // Held, as an organization that owns the account alone may re-address it.
        users::lock(conn, user_id)?;
        let user = users::find(conn, user_id)?.ok_or(RuleError::NotFound)?;
        let role = find_role(conn, &org, &form.role_id)?;
        if memberships::find(conn, &org.id, &user.id)?.is_some() {
            return Err(RuleError::Conflict(format!(
                "{} is already a member of {}.",
                user.email, org.name
            )));
        }
        let joined =
            policy::new_org_may_attach(user.id == actor.user_id, user.password_hash.is_some());
        let invitation_id = if joined {
            memberships::insert(conn, &org.id, &user, &role.id)?;
            invitations::withdraw_for_member(
                conn,
                &org.id,
                &user.email,
                (&actor.user_id, &actor.email),
                origin,
            )?;
            None
        } else {
            Some(invite_by_mail(conn, actor, &org, &role, &user, origin)?)
        };
        audit::record(
            conn,
            &Event::new("admin.membership_added", origin)
                .org(&org.id)
                .actor(&actor.user_id, &actor.email)
                .target("user", &user.id, &user.email)
                .details(json!({ "role": role.name, "invitation_id": invitation_id })),
        )?;
        Ok(Added {
            email: user.email,
            org_name: org.name,
            invited: !joined,
        })
    })
}

/// One of an account's memberships, as the platform user page lists it.
pub struct MembershipView {
    pub org: Organization,
    pub role: roles::Role,
    pub status: String,
    /// The organization's roles, to change this membership's role.
    pub roles: Vec<roles::Role>,
}

/// Everything the platform admin's page for one account shows.
pub struct UserDetail {
    pub user: users::User,
    pub memberships: Vec<MembershipView>,
    pub sessions: i64,
}

pub fn user_detail(conn: &mut DbConnection, user_id: &str) -> Result<UserDetail, RuleError> {
    let user = users::find(conn, user_id)?.ok_or(RuleError::NotFound)?;
    let mut views = Vec::new();
    for org in memberships::all_orgs_of_user(conn, user_id)? {
        let Some(row) = memberships::find(conn, &org.id, user_id)? else {
            continue;
        };
        views.push(MembershipView {
            roles: roles::list(conn, &org.id)?,
            org,
            role: row.role,
            status: row.membership.status,
        });
    }
    let sessions = sessions::count_for_user(conn, user_id, db::now())?;
    Ok(UserDetail {
        user,
        memberships: views,
        sessions,
    })
}

fn membership_in(
    conn: &mut DbConnection,
    org_slug: &str,
    user_id: &str,
) -> Result<(Organization, memberships::MemberRow), RuleError> {
    let org = organizations::find_by_slug(conn, org_slug)?.ok_or(RuleError::NotFound)?;
    organizations::lock(conn, &org.id)?;
    let row = memberships::find(conn, &org.id, user_id)?.ok_or(RuleError::NotFound)?;
    Ok((org, row))
}

/// Re-activates a membership from outside the organization: how a platform admin
/// rescues an organization whose every admin lost access.
pub fn activate_membership(
    conn: &mut DbConnection,
    actor: &PlatformActor,
    user_id: &str,
    org_slug: &str,
    origin: &Origin,
) -> Result<(String, String), RuleError> {
    in_platform_tx(conn, actor, |conn| {
        let (org, row) = membership_in(conn, org_slug, user_id)?;
        if row.membership.is_active() {
            return Err(RuleError::Conflict(format!(
                "{} is already active in {}.",
                row.user.email, org.name
            )));
        }
        memberships::set_status(conn, &org.id, user_id, "active")?;
        let mut activated = Event::new("admin.membership_activated", origin)
            .org(&org.id)
            .actor(&actor.user_id, &actor.email)
            .target("user", &row.user.id, &row.user.email);
        // As in the organization's own re-activation: a day already over would end the
        // rescued membership again at once.
        if let Some(day) = row.membership.access_until.filter(|day| *day <= actor.now) {
            memberships::set_access_until(conn, &org.id, user_id, None)?;
            activated = activated.details(
                json!({ "old_access_until": super::access_until::last_day(day).to_string() }),
            );
        }
        audit::record(conn, &activated)?;
        Ok((row.user.email, org.name))
    })
}

/// Changes a membership's role from outside the organization; the organization still
/// keeps an active admin.
pub fn set_membership_role(
    conn: &mut DbConnection,
    actor: &PlatformActor,
    user_id: &str,
    org_slug: &str,
    role_id: &str,
    origin: &Origin,
) -> Result<(String, String), RuleError> {
    in_platform_tx(conn, actor, |conn| {
        let (org, row) = membership_in(conn, org_slug, user_id)?;
        let role = find_role(conn, &org, role_id)?;
        if role.id == row.role.id {
            return Err(RuleError::Conflict(format!(
                "{} already has the {} role in {}.",
                row.user.email, role.name, org.name
            )));
        }
        memberships::set_role(conn, &org.id, user_id, &role.id)?;
        super::members::ensure_admin_remains(conn, &org.id)?;
        audit::record(
            conn,
            &Event::new("admin.membership_role_changed", origin)
                .org(&org.id)
                .actor(&actor.user_id, &actor.email)
                .target("user", &row.user.id, &row.user.email)
                .details(json!({ "old_role": row.role.name, "new_role": role.name })),
        )?;
        Ok((row.user.email, role.name))
    })
}

/// Ends every session of the account, wherever it signed in.
pub fn end_sessions(
    conn: &mut DbConnection,
    actor: &PlatformActor,
    user_id: &str,
    origin: &Origin,
) -> Result<(String, usize), RuleError> {
    in_platform_tx(conn, actor, |conn| {
        let user = users::find(conn, user_id)?.ok_or(RuleError::NotFound)?;
        // Links first, as a reset in flight takes them: it ends sessions last.
        super::password_reset::end_unused_links(conn, &user.id)?;
        let ended = sessions::delete_for_user(conn, &user.id)?;
        audit::record(
            conn,
            &Event::new("admin.sessions_ended", origin)
                .actor(&actor.user_id, &actor.email)
                .target("user", &user.id, &user.email)
                .details(json!({ "sessions_ended": ended })),
        )?;
        Ok((user.email, ended))
    })
}

/// One account in the platform's list, with the organizations it is a member of.
pub struct AccountRow {
    pub user: User,
    /// "Acme (Admin), Beta (Member, deactivated)".
    pub orgs: String,
}

/// A page of the platform's accounts, by email.
pub struct AccountList {
    pub rows: Vec<AccountRow>,
    /// The last email shown, when more accounts follow.
    pub next_after: Option<String>,
    /// The organizations an account can be added to (the first `orgs_shown`).
    pub orgs: Vec<Organization>,
    /// What the new-account form offers: the organization it creates the account in,
    /// with that organization's roles and groups.
    pub new_account: Option<NewAccountChoices>,
}

pub struct NewAccountChoices {
    pub org: Organization,
    pub roles: Vec<roles::Role>,
    pub groups: Vec<groups::Group>,
}

/// What the account list shows.
#[derive(Debug, Clone, Default)]
pub struct AccountQuery {
    /// The start of an email ([`email_prefix`]).
    pub prefix: Option<String>,
    /// The last email of the page before.
    pub after: Option<String>,
    /// The organization (slug or id) the new-account form is for; the first when blank
    /// or unknown.
    pub new_in: String,
}

/// Longest search term read: longer than any email, short enough to cost nothing.
const MAX_SEARCH_CHARS: usize = 254;

/// The search box as the account list reads it: the start of an email, lower-cased as
/// emails are stored; `None` when blank.
pub fn email_prefix(raw: Option<&str>) -> Option<String> {
    let term = super::member_search::normalized_term(raw?, MAX_SEARCH_CHARS);
    (!term.is_empty()).then_some(term)
}

/// Up to `page_size` accounts whose email starts with the query's prefix (all when
/// `None`) and sorts after its cursor, with what the new-account form offers.
pub fn account_list(
    conn: &mut DbConnection,
    query: &AccountQuery,
    page_size: i64,
    orgs_shown: i64,
) -> diesel::QueryResult<AccountList> {
    let mut list = users::list_page(
        conn,
        query.prefix.as_deref(),
        query.after.as_deref(),
        page_size + 1,
    )?;
    let has_next = list.len() as i64 > page_size;
    list.truncate(page_size as usize);
    let ids: Vec<String> = list.iter().map(|u| u.id.clone()).collect();
    let mut by_user = std::collections::HashMap::<String, Vec<String>>::new();
    for (user_id, org, role, status) in memberships::orgs_of_users(conn, &ids)? {
        let label = if status == "active" {
            format!("{org} ({role})")
        } else {
            format!("{org} ({role}, {status})")
        };
        by_user.entry(user_id).or_default().push(label);
    }
    let orgs = organizations::list(conn, orgs_shown)?;
    let new_org = match find_org(conn, &query.new_in) {
        Ok(org) => Some(org),
        Err(RuleError::Db(e)) => return Err(e),
        Err(_) => orgs.first().cloned(),
    };
    let new_account = match new_org {
        Some(org) => Some(NewAccountChoices {
            roles: roles::list(conn, &org.id)?,
            groups: groups::list(conn, &org.id)?,
            org,
        }),
        None => None,
    };
    Ok(AccountList {
        next_after: has_next
            .then(|| list.last())
            .flatten()
            .map(|u| u.email.clone()),
        rows: list
            .into_iter()
            .map(|user| AccountRow {
                orgs: by_user.remove(&user.id).unwrap_or_default().join(", "),
                user,
            })
            .collect(),
        orgs,
        new_account,
    })
}
