//! Access that ends on a date: an admin gives a membership (or an invitation, which
//! passes it on) an "access until" day; a background job deactivates the membership
//! once that day is over, with the same counters and audit trail as a deactivation by
//! hand; members whose access ends within [`SOON_DAYS`] are flagged on the Users tab.
//!
//! The date a person picks is stored as the moment access ends: the start of the next
//! day, UTC. "Until 5 March" means through the whole of 5 March.

use chrono::{Duration, NaiveDate, NaiveDateTime};
use serde_json::json;

use super::RuleError;
use crate::audit::{self, Event, Origin};
use crate::db::{self, DbConnection, memberships, organizations};

/// Members whose access ends within this many days are flagged as expiring.
pub const SOON_DAYS: i64 = 7;

/// Memberships ended per transaction: short enough to hold the organization locks only
/// briefly, long enough that a thousand expiries are a handful of transactions.
pub const BATCH: i64 = 100;

/// The "access until" field: blank is no end; otherwise a `YYYY-MM-DD` day from
/// `today` on, answered as the moment access ends.
pub fn parse_access_until(
    raw: &str,
    today: NaiveDate,
) -> Result<Option<NaiveDateTime>, &'static str> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    let day = NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        .map_err(|_| "Enter a date such as 2027-03-05, or leave it empty for no end.")?;
    if day < today {
        return Err("Choose today or a later day: that day has passed.");
    }
    Ok(day
        .succ_opt()
        .map(|next| next.and_time(chrono::NaiveTime::MIN)))
}

/// The last day of access, as the date field and the pages show it.
pub fn last_day(until: NaiveDateTime) -> NaiveDate {
    (until - Duration::days(1)).date()
}

/// The last day as a form field holds it (`YYYY-MM-DD`), or empty for no end.
pub fn field_value(until: Option<NaiveDateTime>) -> String {
    until
        .map(|u| last_day(u).format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

/// Whether access that ends at `until` ends within [`SOON_DAYS`] of `now`.
pub fn ends_soon(until: Option<NaiveDateTime>, now: NaiveDateTime) -> bool {
    until.is_some_and(|u| u <= now + Duration::days(SOON_DAYS))
}

/// Deactivates every active membership whose access ended by `now`, [`BATCH`] at a
/// time, each batch in one transaction. Answers how many ended.
///
/// A membership whose end would leave its organization without an active admin stays
/// active (nobody removes the last admin, not even the calendar); it is tried again on
/// the next run, and the run stops when a batch ends nothing, so such a member cannot
/// keep it busy.
pub fn expire_due(conn: &mut DbConnection, now: NaiveDateTime) -> Result<usize, RuleError> {
    let mut total = 0;
    loop {
        let due = memberships::due_for_expiry(conn, now, BATCH)?;
        if due.is_empty() {
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
        // Read again under the lock: an admin may have moved the date or deactivated
        // the member since the list was read.
        let Some(row) = memberships::find(conn, org_id, user_id)? else {
            continue;
        };
        let Some(until) = row.membership.access_until.filter(|u| *u <= now) else {
            continue;
        };
        if memberships::set_status(conn, org_id, user_id, memberships::INACTIVE)? == 0 {
            continue;
        }
        match super::members::ensure_admin_remains(conn, org_id) {
            Err(RuleError::LastAdmin) => {
                memberships::set_status(conn, org_id, user_id, memberships::ACTIVE)?;
                continue;
            }
            other => other?,
        }
        audit::record(
            conn,
            &Event::new("member.access_expired", &Origin::default())
                .org(org_id)
                .target("user", &row.user.id, &row.user.email)
                .details(json!({ "access_until": last_day(until).to_string() })),
        )?;
        ended += 1;
    }
    Ok(ended)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn access_until_a_day_lasts_through_that_day() {
        let today = day("2027-03-01");
        let until = parse_access_until(" 2027-03-05 ", today).unwrap().unwrap();
        assert_eq!(until, day("2027-03-06").and_time(chrono::NaiveTime::MIN));
        assert_eq!(last_day(until), day("2027-03-05"));
        assert_eq!(field_value(Some(until)), "2027-03-05");
        assert_eq!(field_value(None), "");
        assert!(parse_access_until("2027-03-01", today).unwrap().is_some());
    }

    #[test]
    fn blank_is_no_end_and_past_or_garbled_days_are_refused() {
        let today = day("2027-03-01");
        assert_eq!(parse_access_until("  ", today), Ok(None));
        assert!(parse_access_until("2027-02-28", today).is_err());
        assert!(parse_access_until("5 March", today).is_err());
        assert!(parse_access_until("2027-02-30", today).is_err());
    }

    #[test]
    fn access_ending_within_a_week_is_flagged() {
        let now = day("2027-03-01").and_hms_opt(12, 0, 0).unwrap();
        let ends = |d: &str| Some(day(d).and_time(chrono::NaiveTime::MIN));
        assert!(ends_soon(ends("2027-03-08"), now));
        assert!(!ends_soon(ends("2027-03-09"), now));
        assert!(!ends_soon(None, now));
    }
}
