//! Resending and cancelling an invitation: either way its old link dies.

use chrono::{Duration, NaiveDateTime};
use serde_json::json;

use super::{
    AddressResult, Env, InvitationError, Link, Outcome, group_grant, may_place, queue_email,
};
use crate::audit;
use crate::db::invitations::{self as rows, Invitation};
use crate::db::roles::{self, Role};
use crate::db::{self, DbConnection, email_outbox};
use crate::domain::policy::{Standing, access_within};
use crate::domain::roles::Permission;
use crate::domain::tokens;

/// Why an invitation already there was not sent again from the invite form.
const BEYOND_OWN: &str = "it grants what you may not (its role, a group or a pool beyond your own)";

/// An invitation is sent at most this often.
const RESEND_INTERVAL: Duration = Duration::seconds(60);

const ABOVE_OWN_GRANTS: &str = "You cannot renew this invitation: its role, a group or a pool it grants ranks above your own role or holds a permission you do not hold, or its end of access is later than your own.";
const ACCESS_ENDED: &str = "Access through this invitation has ended: its last day has passed, so it cannot be sent again. Cancel it, then invite the person again with a later last day, or none.";
const ABOVE_OWN_CANCEL: &str = "You cannot cancel this invitation: its role, a group or a pool it grants ranks above your own role or holds a permission you do not hold.";

/// Renewing an invitation re-issues everything it grants, so the person renewing must
/// be able to send it: its role, the roles of its groups and the roles of its pools, and
/// an end of access within their own.
fn renewable_by(
    conn: &mut DbConnection,
    env: &Env,
    invitation: &Invitation,
    role: &Role,
) -> Result<bool, InvitationError> {
    Ok(
        access_within(env.inviter.access_until, invitation.access_until)
            && within_grants(conn, env, invitation, role)?,
    )
}

/// Whether the actor may grant everything the invitation grants. Cancelling asks only
/// this: it hands nothing out, so the actor's own end of access does not matter.
fn within_grants(
    conn: &mut DbConnection,
    env: &Env,
    invitation: &Invitation,
    role: &Role,
) -> Result<bool, InvitationError> {
    if !env.inviter.may_grant(Standing::of_role(role)) {
        return Ok(false);
    }
    let group_ids = rows::group_ids(conn, &invitation.id)?;
    let groups_ok = rows::org_groups(conn, &env.org.id)?
        .iter()
        .filter(|g| group_ids.contains(&g.id))
        .all(|g| group_grant(g).is_none_or(|granted| env.inviter.may_grant(granted)));
    if !groups_ok {
        return Ok(false);
    }
    let pool_grants = rows::pool_grants(conn, &invitation.id)?;
    let pool_ids: Vec<String> = pool_grants.iter().map(|(pool, _)| pool.clone()).collect();
    let inviter = (env.inviter.user.id.as_str(), &env.inviter.standing);
    if !may_place(conn, &env.org.id, inviter, (&group_ids, &pool_ids))? {
        return Ok(false);
    }
    for (_, pool_role) in pool_grants {
        if let Some(pool_role) = pool_role {
            let granted =
                roles::find(conn, &env.org.id, &pool_role)?.ok_or(InvitationError::NotFound)?;
            if !env.inviter.may_grant(Standing::of_role(&granted)) {
                return Ok(false);
            }
        }
    }
    Ok(true)
}

/// New token, new expiry, old link dead, email queued; `None` when it was sent within
/// the last minute.
fn renew(
    conn: &mut DbConnection,
    env: &Env,
    invitation: &Invitation,
    role: &Role,
    now: NaiveDateTime,
    (via, renamed): (&str, Option<(&str, &str)>),
) -> Result<Option<String>, InvitationError> {
    if super::access_has_ended(invitation, now) {
        return Err(InvitationError::BeyondGrants(ACCESS_ENDED));
    }
    if !renewable_by(conn, env, invitation, role)? {
        return Err(InvitationError::BeyondGrants(ABOVE_OWN_GRANTS));
    }
    let token = tokens::generate();
    let expires_at = super::link_expiry(now, env.ttl, invitation.access_until);
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
    // Invited again to correct the name: the accept form offers the new one.
    if let Some((first, last)) = renamed {
        rows::set_names(conn, &invitation.id, first, last)?;
    }
    // An unsent earlier email carries the dead link: only the new one goes out.
    email_outbox::delete_unsent_for(conn, &invitation.id)?;
    let link = Link {
        token: &token,
        expires_at,
        access_until: invitation.access_until,
    };
    let to = (invitation.email.as_str(), invitation.id.as_str());
    queue_email(conn, env.sender(), to, role, link, true)?;
    audit::record(
        conn,
        &env.event("invitation.resent", &invitation.id, &invitation.email)
            .details(json!({
                "role": role.key,
                "send_count": invitation.send_count + 1,
                "expires_at": expires_at.and_utc().to_rfc3339(),
                "via": via,
                // The one who resends becomes its inviter, whose standing it is then
                // accepted on: who it was before is kept here.
                "previous_inviter_id": invitation.invited_by,
                "renamed": renamed.map(|(first, last)| json!({
                    "first_name": first,
                    "last_name": last,
                    "was": [invitation.first_name, invitation.last_name],
                })),
            })),
    )?;
    Ok(Some(token))
}

/// An address of the invite form that already has a pending invitation: renewed when
/// the inviter may renew it and it was not sent within the last minute.
pub(super) fn renew_on_invite(
    conn: &mut DbConnection,
    env: &Env,
    existing: &Invitation,
    role: &Role,
    (now, names): (NaiveDateTime, (&str, &str)),
) -> Result<AddressResult, InvitationError> {
    let refusal = if super::access_has_ended(existing, now) {
        Some(
            "the access it offers has ended, so it was not sent again: cancel it, then invite again",
        )
    } else if !renewable_by(conn, env, existing, role)? {
        Some(BEYOND_OWN)
    } else {
        None
    };
    let (outcome, link) = match refusal {
        // What an invitation offers is for those who may open the Invited tab.
        Some(_) if !env.inviter.sees_invitations() => (Outcome::Withheld, None),
        Some(why) => (Outcome::NotResent(why), None),
        None => {
            // A name typed replaces the one the invitation has; none typed keeps it.
            let kept = (existing.first_name.as_str(), existing.last_name.as_str());
            let typed = names != ("", "");
            let renamed = (typed && names != kept).then_some(names);
            match renew(conn, env, existing, role, now, ("invite form", renamed))? {
                Some(token) => (Outcome::Resent, Some(env.link(&token))),
                None => (
                    Outcome::NotResent(
                        "it was sent less than a minute ago, so it was not sent again",
                    ),
                    None,
                ),
            }
        }
    };
    let invitation_id = (outcome != Outcome::Withheld).then(|| existing.id.clone());
    Ok(AddressResult {
        email: existing.email.clone(),
        outcome,
        invitation_id,
        link,
    })
}

/// The Resend button. Answers the invitation's address and its new link.
pub fn resend(
    conn: &mut DbConnection,
    env: &Env,
    invitation_id: &str,
) -> Result<AddressResult, InvitationError> {
    db::write_tx(conn, |conn| {
        env.hold_org(conn)?;
        let invitation = open_invitation(conn, env, invitation_id)?;
        let role = roles::find(conn, &env.org.id, &invitation.role_id)?
            .ok_or(InvitationError::NotFound)?;
        env.within_hourly_limit(conn, 1)?;
        let token = renew(
            conn,
            env,
            &invitation,
            &role,
            db::now(),
            ("resend button", None),
        )?
        .ok_or(InvitationError::TooSoon)?;
        let mut resent = [AddressResult {
            email: invitation.email.clone(),
            outcome: Outcome::Resent,
            invitation_id: Some(invitation.id.clone()),
            link: Some(env.link(&token)),
        }];
        env.withhold_links(conn, &mut resent)?;
        let [resent] = resent;
        Ok(resent)
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

/// The invitation, if it is still open (pending or expired): what resend acts on.
fn open_invitation(
    conn: &mut DbConnection,
    env: &Env,
    invitation_id: &str,
) -> Result<Invitation, InvitationError> {
    let invitation =
        rows::find_in_org(conn, &env.org.id, invitation_id)?.ok_or(InvitationError::NotFound)?;
    check_open(&invitation)?;
    Ok(invitation)
}

/// The open invitation, if the inviter may cancel it: what the cancel confirmation shows
/// and what cancel acts on. Only someone who could have sent it may withdraw it, or a
/// Manager could quietly void the invitations an Admin sends to other admins.
pub fn cancellable(
    conn: &mut DbConnection,
    env: &Env,
    invitation_id: &str,
) -> Result<Invitation, InvitationError> {
    let invitation = open_invitation(conn, env, invitation_id)?;
    let role =
        roles::find(conn, &env.org.id, &invitation.role_id)?.ok_or(InvitationError::NotFound)?;
    if !within_grants(conn, env, &invitation, &role)? {
        return Err(InvitationError::BeyondGrants(ABOVE_OWN_CANCEL));
    }
    Ok(invitation)
}

/// Cancels a pending (or expired) invitation: its link dies and its unsent email goes.
pub fn cancel(
    conn: &mut DbConnection,
    env: &Env,
    invitation_id: &str,
) -> Result<Invitation, InvitationError> {
    db::write_tx(conn, |conn| {
        env.hold_org(conn)?;
        let invitation = cancellable(conn, env, invitation_id)?;
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

/// Cancels an open invitation the invite form offers something else in place of: only
/// for someone who may cancel it with its Cancel button (`users.invite`, and everything
/// it grants within their own), and not within a minute of its last email, as a resend.
/// Answers why not when it does not.
pub(super) fn cancel_to_replace(
    conn: &mut DbConnection,
    env: &Env,
    existing: &Invitation,
    role: &Role,
    now: NaiveDateTime,
) -> Result<Result<(), &'static str>, InvitationError> {
    if !env.inviter.standing.may(Permission::UsersInvite) {
        return Ok(Err(
            "it offers something else, and replacing it takes someone who may cancel it",
        ));
    }
    if !within_grants(conn, env, existing, role)? {
        return Ok(Err(BEYOND_OWN));
    }
    if existing.last_sent_at > now - RESEND_INTERVAL {
        return Ok(Err(
            "it was sent less than a minute ago, so it was not replaced",
        ));
    }
    if !rows::cancel(conn, &existing.id)? {
        return Ok(Err("it changed meanwhile, so it was not replaced"));
    }
    email_outbox::delete_unsent_for(conn, &existing.id)?;
    audit::record(
        conn,
        &env.event("invitation.cancelled", &existing.id, &existing.email)
            .details(json!({ "why": "replaced by a new invitation with another offer" })),
    )?;
    Ok(Ok(()))
}

/// Withdraws the open invitations to `email` in the organization, each with its
/// `invitation.cancelled` event saying `why`; `by` is the (id, email) recorded as the
/// actor.
pub fn withdraw_open(
    conn: &mut DbConnection,
    org_id: &str,
    email: &str,
    by: (&str, &str),
    why: &str,
    origin: &crate::audit::Origin,
) -> diesel::QueryResult<usize> {
    let open = rows::pending_for_emails(conn, org_id, &[email])?;
    crate::domain::withdrawals::withdraw(conn, org_id, &open, by, why, origin)
}

/// [`withdraw_open`] for an address the organization has just made a member another way
/// (SCIM, a platform admin). An invitation is for someone not yet a member: one left open
/// would let its holder join again, with its role, groups and pools, after their removal.
pub fn withdraw_for_member(
    conn: &mut DbConnection,
    org_id: &str,
    email: &str,
    by: (&str, &str),
    origin: &crate::audit::Origin,
) -> diesel::QueryResult<usize> {
    withdraw_open(conn, org_id, email, by, "made a member another way", origin)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::Origin;
    use crate::domain::invitations::check_link;
    use crate::domain::invitations::fixture::{age_all, count, fixture, token_of};
    use crate::domain::invitations::invite;
    use crate::domain::roles::MEMBER;

    #[test]
    fn resend_and_cancel_kill_the_old_link() {
        let f = fixture();
        let env = f.env(&f.admin);
        let conn = &mut f.db.pool.get().unwrap();
        let report = invite(conn, &env, &f.form("p@example.com", MEMBER)).unwrap();
        let id = report.results[0].invitation_id.clone().unwrap();
        let old = token_of(&report.results[0]);
        assert!(matches!(
            resend(conn, &env, &id),
            Err(InvitationError::TooSoon)
        ));

        age_all(conn, Duration::minutes(2));
        let resent = resend(conn, &env, &id).unwrap();
        let new = token_of(&resent);
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
}
