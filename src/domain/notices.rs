//! Emails that tell an account's owner how its protection changed, queued in the
//! transaction that changes it (so a change that rolls back tells nobody).

use diesel::QueryResult;

use crate::db::{self, DbConnection};
use crate::mail::templates::{SecurityChange, SecurityChangeEmail};

/// Queues the notice of `change` to the account at `email`; `public_url` is where its
/// links point.
pub fn tell_owner(
    conn: &mut DbConnection,
    email: &str,
    name: &str,
    change: SecurityChange,
    public_url: &str,
) -> QueryResult<()> {
    let base = public_url.trim_end_matches('/');
    let now = db::now();
    let notice = SecurityChangeEmail {
        name: name.to_string(),
        change,
        at: now,
        account_url: format!("{base}/account"),
        reset_url: format!("{base}/forgot-password"),
    }
    .render()
    .map_err(|e| diesel::result::Error::SerializationError(e.into()))?;
    crate::mail::outbox::queue(conn, email, &notice, None, now)?;
    Ok(())
}
