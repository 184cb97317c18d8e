//! The "access until" day of a membership or invitation, as forms read it and pages
//! show it. The day a person picks is stored as the moment access ends: the start of the
//! next day, UTC. "Until 5 March" means through the whole of 5 March.

use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime};

/// The latest year a last day may fall in: its end, the next day, stays within four digits.
const LAST_YEAR: i32 = 9998;

/// Members whose access ends within this many days are flagged as expiring.
pub const SOON_DAYS: i64 = 7;

/// The "access until" field: blank is no end; otherwise a `YYYY-MM-DD` day from
/// `today` on, answered as the moment access ends.
pub fn parse_access_until(
    raw: &str,
    today: NaiveDate,
) -> Result<Option<NaiveDateTime>, &'static str> {
    let until = parse_any_day(raw)?;
    if newly_passed(until, None, today) {
        return Err(PASSED);
    }
    Ok(until)
}

/// What a form says at a last day that has passed.
pub const PASSED: &str = "Choose today or a later day: that day has passed.";

/// Whether `until`, given in place of `stored`, is a last day before `today`. The stored
/// day, sent back unchanged by a form that edits something else (a name, a role), is not:
/// a member whose access ended is still edited without moving the day it ended.
pub fn newly_passed(
    until: Option<NaiveDateTime>,
    stored: Option<NaiveDateTime>,
    today: NaiveDate,
) -> bool {
    until != stored && until.is_some_and(|u| last_day(u) < today)
}

/// The "access until" field read as [`parse_access_until`] does, but a day that has
/// passed is taken: the caller holds it to [`newly_passed`] once it knows the stored one.
pub fn parse_any_day(raw: &str) -> Result<Option<NaiveDateTime>, &'static str> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    let day = NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        .map_err(|_| "Enter a date such as 2027-03-05, or leave it empty for no end.")?;
    // Stored moments compare as text on SQLite: a five-digit year ("+10000-…") sorts
    // before every four-digit one, so it would read as long over, to the expiry job and
    // the last-admin rule alike.
    if day.year() > LAST_YEAR {
        return Err("Choose a day before the year 9999, or leave it empty for no end.");
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
    fn only_a_day_that_changes_is_held_to_today() {
        let today = day("2027-04-01");
        let ended = parse_any_day("2027-03-05").unwrap();
        assert!(!newly_passed(ended, ended, today), "the stored day, kept");
        assert!(newly_passed(ended, None, today), "a past day, newly given");
        let other = parse_any_day("2027-03-04").unwrap();
        assert!(
            newly_passed(other, ended, today),
            "moved to another past day"
        );
        assert!(!newly_passed(None, ended, today), "no end");
        let later = parse_any_day("2027-04-01").unwrap();
        assert!(!newly_passed(later, ended, today), "today");
    }

    #[test]
    fn blank_is_no_end_and_past_or_garbled_days_are_refused() {
        let today = day("2027-03-01");
        assert_eq!(parse_access_until("  ", today), Ok(None));
        assert!(parse_access_until("2027-02-28", today).is_err());
        assert!(parse_access_until("5 March", today).is_err());
        assert!(parse_access_until("2027-02-30", today).is_err());
        assert!(parse_access_until("9998-12-31", today).unwrap().is_some());
        assert!(parse_access_until("+10000-01-01", today).is_err());
        assert!(parse_access_until("9999-01-01", today).is_err());
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
