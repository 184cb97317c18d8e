//! Cancelling open invitations that another change made pointless or dead, each with its
//! `invitation.cancelled` event saying why. Both the invitation rules and the member
//! rules call it, so it leans on neither.

use serde_json::json;

use crate::audit::{self, Origin};
use crate::db::invitations::{self as rows, Invitation};
use crate::db::{DbConnection, email_outbox};

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
