//! Access that ends on a date: an admin gives a membership (or an invitation, which
//! passes it on) an "access until" day; a background job deactivates the membership
//! once that day is over, with the same counters and audit trail as a deactivation by
//! hand.
//!
//! The day itself, as forms and pages read it, is [`super::access_until`]'s.

use chrono::NaiveDateTime;
use serde_json::json;

use super::RuleError;
use super::access_until::last_day;
use crate::audit::{self, Event, Origin};
use crate::db::{self, DbConnection, memberships, organizations};

/// Memberships ended per transaction: short enough to hold the organization locks only
/// briefly, long enough that a thousand expiries are a handful of transactions.
pub const BATCH: i64 = 100;

/// Deactivates every active membership whose access ended by `now`, [`BATCH`] at a
/// time, each batch in one transaction. Answers how many ended.
///
/// A membership whose end would leave its organization without an active admin stays
/// active (nobody removes the last admin, not even the calendar) and loses its end date
/// (`member.access_kept`); the run stops when a batch ends nothing.
pub fn expire_due(conn: &mut DbConnection, now: NaiveDateTime) -> Result<usize, RuleError> {
    let mut total = 0;
    loop {
        let due = memberships::due_for_expiry(conn, now, BATCH)?;
        if due.is_empty() || db::superseded(conn)? {
            return Ok(total);
        }
        let ended = db::write_tx(conn, |conn| expire_batch(conn, &due, now))?;
        total += ended;
        if ended == 0 {
            return Ok(total);
        }
    }
}

fn expire_batch(
    conn: &mut DbConnection,
    due: &[(String, String)],
    now: NaiveDateTime,
) -> Result<usize, RuleError> {
    // Each organization locked once, in one order, as member changes lock it.
    let mut orgs: Vec<&str> = due.iter().map(|(org, _)| org.as_str()).collect();
    orgs.sort_unstable();
    orgs.dedup();
    for org in orgs {
        organizations::lock(conn, org)?;
    }
    let mut ended = 0;
    for (org_id, user_id) in due {
        if end_if_due(conn, org_id, user_id, now, &Origin::default())? {
            ended += 1;
        }
    }
    Ok(ended)
}

/// Applies the calendar to one member as they arrive, without waiting for the job: a
/// request (or a token of theirs) past their last day first ends their access here, as
/// the job would have, or drops the day if they are the last admin. Answers whether the
/// membership ended.
pub fn expire_member(
    conn: &mut DbConnection,
    org_id: &str,
    user_id: &str,
    now: NaiveDateTime,
    origin: &Origin,
) -> Result<bool, RuleError> {
    db::write_tx(conn, |conn| {
        organizations::lock(conn, org_id)?;
        end_if_due(conn, org_id, user_id, now, origin)
    })
}

/// Ends one membership whose day is over, under its organization's lock. `origin`: the
/// request the member arrived with (none for the job).
fn end_if_due(
    conn: &mut DbConnection,
    org_id: &str,
    user_id: &str,
    now: NaiveDateTime,
    origin: &Origin,
) -> Result<bool, RuleError> {
    // Read again under the lock: an admin may have moved the date or deactivated the
    // member since the list was read.
    let Some(row) = memberships::find(conn, org_id, user_id)? else {
        return Ok(false);
    };
    let Some(until) = row.membership.access_until.filter(|u| *u <= now) else {
        return Ok(false);
    };
    if memberships::set_status(conn, org_id, user_id, memberships::INACTIVE)? == 0 {
        return Ok(false);
    }
    // An admin is the last one when no other is left whose own day is not over: with two
    // admins past their day, the one who arrives is kept, not the one who is gone. Anyone
    // else's end leaves the organization's admins as they were.
    let is_admin = super::members::standing_of(conn, &row)?.perms.is_admin();
    let on_at = is_admin.then_some(now);
    let event = |action| {
        Event::new(action, origin)
            .org(org_id)
            .target("user", &row.user.id, &row.user.email)
            .details(json!({ "access_until": last_day(until).to_string() }))
    };
    match super::members::ensure_admin_remains_on(conn, org_id, on_at) {
        Err(RuleError::LastAdmin) => {
            // The organization keeps its last admin, so the date no longer holds: it
            // goes, or its holder (bound by `policy::access_within` to a day already
            // past) could give nobody any access, and nobody could lift it.
            memberships::set_status(conn, org_id, user_id, memberships::ACTIVE)?;
            memberships::set_access_until(conn, org_id, user_id, None)?;
            audit::record(conn, &event("member.access_kept"))?;
            return Ok(false);
        }
        other => other?,
    }
    audit::record(conn, &event("member.access_expired"))?;
    Ok(true)
}
