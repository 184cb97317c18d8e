//! Cancelling open invitations that another change made pointless or dead, each with its
//! `invitation.cancelled` event saying why. Both the invitation rules and the member
//! rules call it, so it leans on neither.

use serde_json::json;

use crate::audit::{self, Origin};
use crate::db::invitations::{self as rows, Invitation};
use crate::db::{DbConnection, email_outbox, users};

/// Cancels each of `open` still pending in the organization: its link dies, its unsent
/// email goes, and the trail says `why`, with `by` (id, email) as the actor. Answers how
/// many it cancelled; one accepted meanwhile is left as it is.
pub fn withdraw(
    conn: &mut DbConnection,
    org_id: &str,
    open: &[Invitation],
    by: (&str, &str),
    why: &str,
    origin: &Origin,
) -> diesel::QueryResult<usize> {
    let mut withdrawn = 0;
    for invitation in open {
        if !rows::cancel(conn, &invitation.id)? {
            continue;
        }
        withdrawn += 1;
        email_outbox::delete_unsent_for(conn, &invitation.id)?;
        audit::record(
            conn,
            &audit::Event::new("invitation.cancelled", origin)
                .org(org_id)
                .actor(by.0, by.1)
                .target("invitation", &invitation.id, &invitation.email)
                .details(json!({ "why": why })),
        )?;
    }
    Ok(withdrawn)
}

/// Whether the invitation came from the platform's pages (a role, nothing else) from a
/// platform admin who is still one: acceptance honours it whatever its sender's
/// membership here, so neither their removal nor their deactivation ends or holds it.
pub fn sent_from_the_platform(
    conn: &mut DbConnection,
    invitation: &Invitation,
) -> diesel::QueryResult<bool> {
    let Some(sender) = &invitation.invited_by else {
        return Ok(false);
    };
    Ok(platform_shaped(conn, invitation)? && is_platform_admin(conn, sender)?)
}

fn platform_shaped(conn: &mut DbConnection, invitation: &Invitation) -> diesel::QueryResult<bool> {
    Ok(invitation.access_until.is_none()
        && rows::group_ids(conn, &invitation.id)?.is_empty()
        && rows::pool_grants(conn, &invitation.id)?.is_empty())
}

/// Whether the account is an active platform admin, who may give any account any role.
pub fn is_platform_admin(conn: &mut DbConnection, user_id: &str) -> diesel::QueryResult<bool> {
    Ok(users::find(conn, user_id)?.is_some_and(|u| {
        u.is_active() && crate::domain::policy::platform_may_change(&u.platform_role)
    }))
}

/// The open invitations this member sent here that end with their membership: all but
/// those [`sent_from_the_platform`] (looked into only for a platform admin's).
pub fn ending_with_sender(
    conn: &mut DbConnection,
    org_id: &str,
    sender_id: &str,
) -> diesel::QueryResult<Vec<Invitation>> {
    let sent = rows::pending_sent_by(conn, org_id, sender_id)?;
    if !is_platform_admin(conn, sender_id)? {
        return Ok(sent);
    }
    let mut ending = Vec::new();
    for invitation in sent {
        if !platform_shaped(conn, &invitation)? {
            ending.push(invitation);
        }
    }
    Ok(ending)
}
