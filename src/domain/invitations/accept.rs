//! Accepting an invitation: checking a link, then joining with a new account or the
//! signed-in one.

use serde_json::json;

use super::display_name;
use crate::audit::{self, Event, Origin};
use crate::db::invitations::{self as rows, Invitation};
use crate::db::organizations::{self, Organization};
use crate::db::roles::{self, Role};
use crate::db::users::{self, User};
use crate::db::{self, DbConnection, audit_events, email_outbox, groups, memberships, pools};
use crate::domain::FieldErrors;
use crate::domain::names::parse_name_over;
use crate::domain::new_account;
use crate::domain::password::validate_new;
use crate::domain::policy::Standing;
use crate::domain::pools::invited_pool_role;
use crate::domain::tokens;
use crate::domain::two_factor_policy::{Demand, demand_for};

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
/// replaced by a resend, cancelled, used, expired (which is also audited), offering
/// access that has ended, pointing at a disabled account, or sent by someone who may no
/// longer grant it (also audited).
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
    // Sent before links died with the access they offer, a link may outlive it.
    let dies_at = super::link_dies_at(invitation.expires_at, invitation.access_until);
    if dies_at <= now {
        // Once per link (a resend makes a new one): whoever holds it must not grow the
        // trail at will.
        const USED: &str = "invitation.expired_link_used";
        let (org, id, sent) = (&invitation.org_id, &invitation.id, invitation.last_sent_at);
        if !audit_events::recorded_for(conn, org, id, USED, sent)? {
            audit::record(
                conn,
                &Event::new(USED, origin)
                    .org(&invitation.org_id)
                    .target("invitation", &invitation.id, &invitation.email)
                    .details(json!({
                        "expired_at": dies_at.and_utc().to_rfc3339(),
                    })),
            )?;
        }
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
    // Said when the link is opened, not after a name and a password were typed for it.
    let group_ids = rows::group_ids(conn, &invitation.id)?;
    if !still_grantable(conn, &invitation, &role, &group_ids)? {
        record_refusal(conn, token, origin)?;
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

/// Where a used link leads the account that used it (opened again from the email, or
/// pressed twice): the organization it joined, by slug, while it is an active member
/// there whose access has not ended. Anyone else, and any other dead link, gets `None`:
/// the one page for dead links.
pub fn joined_through(
    conn: &mut DbConnection,
    token: &str,
    user_id: &str,
) -> diesel::QueryResult<Option<String>> {
    let Some(invitation) = rows::find_by_token_hash(conn, &tokens::hash(token))? else {
        return Ok(None);
    };
    if invitation.status != rows::ACCEPTED
        || invitation.accepted_user_id.as_deref() != Some(user_id)
    {
        return Ok(None);
    }
    let still_in = memberships::find(conn, &invitation.org_id, user_id)?
        .is_some_and(|m| m.membership.is_active() && !m.membership.access_ended_by(db::now()));
    if !still_in {
        return Ok(None);
    }
    Ok(organizations::find(conn, &invitation.org_id)?.map(|org| org.slug))
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

/// The new account's form; `invited` is the name the invitation was sent with, which the
/// form offers: sent back as it was, it keeps what it was stored with.
pub fn validate_account(
    form: &AcceptForm,
    invited: &Invitation,
) -> Result<NewAccount, FieldErrors> {
    let mut errors = FieldErrors::default();
    let first_name = errors.check(
        "first_name",
        parse_name_over(&form.first_name, Some(&invited.first_name)),
    );
    let last_name = errors.check(
        "last_name",
        parse_name_over(&form.last_name, Some(&invited.last_name)),
    );
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
        // The organization first, as every change there takes it: the inviter's standing
        // is then read after any demotion that was under way, and the invitation and the
        // account are taken in the order SCIM takes them.
        organizations::lock(conn, &invitation.org_id)?;
        if !rows::consume(conn, &hash, now)? {
            return Err(AcceptError::InvalidLink);
        }
        let name = (account.first_name.as_str(), account.last_name.as_str());
        let user = new_account::create(conn, &invitation.email, name, Some(password_hash), "none")?
            .ok_or(AcceptError::AccountExists)?;
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
        // As in `accept_with_new_account`: the organization before the account.
        organizations::lock(conn, &invitation.org_id)?;
        // The account as it is now, held: the one read with the request may have been
        // re-addressed since by an organization that owned it alone (then the address
        // is no longer its own, and whoever reads the new mailbox would hold this
        // membership too).
        users::lock(conn, &user.id)?;
        let user = users::find(conn, &user.id)?
            .filter(User::is_active)
            .ok_or(AcceptError::WrongAccount)?;
        if invitation.email != user.email {
            return Err(AcceptError::WrongAccount);
        }
        if !rows::consume(conn, &hash, now)? {
            return Err(AcceptError::InvalidLink);
        }
        join(conn, &invitation, &user, false, origin)
    })
}

/// Records that the invitation behind `token` was refused at acceptance because its
/// inviter may no longer grant what it offers. The acceptance rolled back, so this is
/// written on its own: the organization's admins learn why the person was turned away
/// (the invitation stays pending on the Invited tab). Once an hour per invitation, so a
/// link tried again and again, even all at once, writes one event.
pub fn record_refusal(
    conn: &mut DbConnection,
    token: &str,
    origin: &Origin,
) -> diesel::QueryResult<()> {
    const ACTION: &str = "invitation.refused";
    let since = db::now() - chrono::Duration::hours(1);
    // Said already this hour: a read, so a link opened again and again (a mail scanner,
    // a forwarded mail) writes nothing and holds no lock.
    if let Some(invitation) = rows::find_by_token_hash(conn, &tokens::hash(token))?
        && audit_events::recorded_about(conn, &invitation.org_id, ACTION, &invitation.id, since)?
    {
        return Ok(());
    }
    db::write_tx(conn, |conn| {
        let Some(invitation) = rows::find_by_token_hash(conn, &tokens::hash(token))?
            .filter(|invitation| invitation.status == rows::PENDING)
        else {
            return Ok(());
        };
        // One at a time, so simultaneous tries cannot all find no event yet.
        organizations::lock(conn, &invitation.org_id)?;
        if audit_events::recorded_about(conn, &invitation.org_id, ACTION, &invitation.id, since)? {
            return Ok(());
        }
        audit::record(
            conn,
            &Event::new(ACTION, origin)
                .org(&invitation.org_id)
                .target("invitation", &invitation.id, &invitation.email)
                .details(json!({
                    "why": "its inviter may no longer grant what it offers",
                    "invited_by": invitation.invited_by,
                })),
        )
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
    if super::access_has_ended(invitation, db::now()) {
        return Err(AcceptError::InvalidLink);
    }
    let group_ids = rows::group_ids(conn, &invitation.id)?;
    if !still_grantable(conn, invitation, &role, &group_ids)? {
        return Err(AcceptError::NoLongerGrantable);
    }
    rows::set_accepted_user(conn, &invitation.id, &user.id)?;
    let already_member = rows::is_member(conn, &org.id, &user.id)?;
    if !already_member {
        memberships::insert(conn, &org.id, user, &role.id)?;
        if invitation.access_until.is_some() {
            memberships::set_access_until(conn, &org.id, &user.id, invitation.access_until)?;
        }
    }
    // A member already (made one another way while the link was open) gets nothing more
    // from it: the groups and pools were offered with a role they do not hold here.
    let (group_ids, pool_grants) = if already_member {
        (Vec::new(), Vec::new())
    } else {
        (group_ids, rows::pool_grants(conn, &invitation.id)?)
    };
    for group_id in &group_ids {
        if !groups::is_member(conn, group_id, &user.id)? {
            groups::add_member(conn, &org.id, group_id, &user.id)?;
        }
    }
    for (pool_id, pool_role) in &pool_grants {
        // Invitations sent before pool roles were held to Manager are held to it here.
        let stored = match pool_role {
            Some(id) => roles::find(conn, &org.id, id)?.unwrap_or_else(|| role.clone()),
            None => role.clone(),
        };
        let pool_role = invited_pool_role(conn, &org.id, &stored)?;
        if !pools::is_member(conn, pool_id, &user.id)? {
            pools::add_member(conn, &org.id, pool_id, &user.id, &pool_role)?;
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
/// as a pool Manager over every pool the invitation joins, then without groups), not held
/// to two-factor enrolment, ranked at least as high as the role and every group role the
/// invitation grants.
fn still_grantable(
    conn: &mut DbConnection,
    invitation: &Invitation,
    role: &Role,
    group_ids: &[String],
) -> diesel::QueryResult<bool> {
    let Some(inviter_id) = &invitation.invited_by else {
        return Ok(false);
    };
    let pool_ids: Vec<String> = rows::pool_grants(conn, &invitation.id)?
        .into_iter()
        .map(|(pool, _)| pool)
        .collect();
    // Sent from the platform's pages by a platform admin: a role, nothing else. Their
    // authority there is the platform's, whatever role (if any) they hold here.
    let platform_shaped =
        group_ids.is_empty() && pool_ids.is_empty() && invitation.access_until.is_none();
    if platform_shaped && crate::domain::withdrawals::is_platform_admin(conn, inviter_id)? {
        return Ok(true);
    }
    let Some((inviter_role, inviter_until, inviter_joined)) =
        rows::active_member_role(conn, &invitation.org_id, inviter_id)?
    else {
        return Ok(false);
    };
    // Sent under an earlier membership of the inviter's, since removed: a new one (they
    // were invited back) does not bring back what the old one sent.
    if inviter_joined > invitation.last_sent_at + crate::domain::policy::CLOCK_SKEW {
        return Ok(false);
    }
    if !crate::domain::policy::access_within(inviter_until, invitation.access_until) {
        return Ok(false);
    }
    let group_roles = memberships::group_roles(conn, &invitation.org_id, inviter_id)?;
    let inviter = Standing::of_member(&inviter_role, &group_roles);
    // Past the organization's two-factor deadline an inviter who has not enrolled may do
    // nothing in it: not through a link sent before, as not through a token they made.
    let policy = crate::db::org_two_factor::find(conn, &invitation.org_id)?;
    let is_admin = inviter.perms.is_admin();
    let demand = demand_for(conn, policy.as_ref(), inviter_id, is_admin, db::now())?;
    if matches!(demand, Demand::Blocked { .. }) {
        return Ok(false);
    }
    let places = (group_ids, pool_ids.as_slice());
    if !super::may_place(conn, &invitation.org_id, (inviter_id, &inviter), places)? {
        return Ok(false);
    }
    let groups = rows::org_groups(conn, &invitation.org_id)?;
    let mut granted: Vec<Standing> = groups
        .iter()
        .filter(|g| group_ids.contains(&g.id))
        .filter_map(super::group_grant)
        .collect();
    for (_, pool_role) in rows::pool_grants(conn, &invitation.id)? {
        if let Some(pool_role) = pool_role {
            match roles::find(conn, &invitation.org_id, &pool_role)? {
                Some(r) => granted.push(Standing::of_role(&r)),
                None => return Ok(false),
            }
        }
    }
    granted.push(Standing::of_role(role));
    Ok(inviter.may_grant_all(granted))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::invitations::fixture::{count, fixture};
    use crate::domain::roles::MEMBER;

    #[test]
    fn acceptance_consumes_the_link_once_and_joins() {
        let f = fixture();
        let conn = &mut f.db.pool.get().unwrap();
        let token = f.invite_one(conn, "new@example.com", MEMBER);
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

    /// Made a member another way while the link was open (before SCIM and the platform
    /// withdrew such invitations, or in a race with them): the link grants no groups.
    #[test]
    fn a_member_already_gets_no_groups_from_a_link() {
        let f = fixture();
        let conn = &mut f.db.pool.get().unwrap();
        let admins = groups::insert(
            conn,
            &f.org.id,
            "Owners",
            "",
            Some(&f.role("admin").id),
            None,
        )
        .unwrap();
        let mut form = f.form("twice@example.com", MEMBER);
        form.group_ids = vec![admins.clone()];
        let report = crate::domain::invitations::invite(conn, &f.env(&f.admin), &form).unwrap();
        let token = crate::domain::invitations::fixture::token_of(&report.results[0]);
        let user = new_account::create(conn, "twice@example.com", ("T", "W"), Some("h"), "none")
            .unwrap()
            .unwrap();
        memberships::insert(conn, &f.org.id, &user, &f.role(MEMBER).id).unwrap();

        accept_as(conn, &token, &user, &Origin::default()).unwrap();
        assert!(!groups::is_member(conn, &admins, &user.id).unwrap());
        assert_eq!(count(conn, "group_members"), 0);
    }

    #[test]
    fn an_inviter_who_lost_the_right_cannot_be_accepted() {
        let f = fixture();
        let mut pooled = f.db.pool.get().unwrap();
        let conn: &mut crate::db::DbConnection = &mut pooled;
        let token = f.invite_one(conn, "late@example.com", MEMBER);
        // The inviter is demoted to Member, who may not invite, and runs the platform no
        // more (a platform admin's role-only invitation carries the platform's authority).
        use crate::db::schema::{memberships as m, users as u};
        use diesel::prelude::*;
        diesel::update(m::table)
            .set(m::role_id.eq(f.role(MEMBER).id))
            .execute(conn)
            .unwrap();
        diesel::update(u::table)
            .set(u::platform_role.eq("none"))
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
        assert!(
            check_link(conn, &token, &Origin::default())
                .unwrap()
                .is_none(),
            "the link is dead as soon as it is opened"
        );
    }

    /// Checked again on joining: the last day may end between opening the link and
    /// pressing its button.
    #[test]
    fn access_that_ended_grants_nothing_even_past_the_link_check() {
        let f = fixture();
        let mut pooled = f.db.pool.get().unwrap();
        let conn: &mut crate::db::DbConnection = &mut pooled;
        let token = f.invite_one(conn, "brief@example.com", MEMBER);
        use crate::db::schema::invitations as i;
        use diesel::prelude::*;
        diesel::update(i::table)
            .set(i::access_until.eq(Some(db::now() - chrono::Duration::seconds(1))))
            .execute(conn)
            .unwrap();
        let account = NewAccount {
            first_name: "Brief".into(),
            last_name: "Stay".into(),
        };
        assert!(matches!(
            accept_with_new_account(conn, &token, &account, "hash", &Origin::default()),
            Err(AcceptError::InvalidLink)
        ));
        assert_eq!(count(conn, "users"), 1, "nothing was created");
    }

    #[test]
    fn a_signed_in_account_must_match_the_invited_address() {
        let f = fixture();
        let conn = &mut f.db.pool.get().unwrap();
        let token = f.invite_one(conn, "someone@example.com", MEMBER);
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
