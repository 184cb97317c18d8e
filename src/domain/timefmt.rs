//! How times read on pages: relative for recency, exact on hover.

use chrono::{Datelike, NaiveDateTime, Timelike};

// By hand rather than with chrono's `format`, whose format strings are parsed anew at
// every call, or with `format!`, whose padded integers went through the formatter's
// general path: a Users tab writes 150 of these, and they were a twelfth of its CPU.
/// "2026-11-23 14:05 UTC"
pub fn exact(t: NaiveDateTime) -> String {
    let mut out = date(t);
    out.push(' ');
    push_two_digits(&mut out, t.hour());
    out.push(':');
    push_two_digits(&mut out, t.minute());
    out.push_str(" UTC");
    out
}

/// "2026-11-23"
pub fn date(t: NaiveDateTime) -> String {
    let Ok(year @ 0..=9999) = u32::try_from(t.year()) else {
        // chrono's `%Y` signs years of more than four digits.
        return t.format("%Y-%m-%d").to_string();
    };
    // Room for `exact`'s time and zone too.
    let mut out = String::with_capacity("2026-11-23 14:05 UTC".len());
    push_two_digits(&mut out, year / 100);
    push_two_digits(&mut out, year % 100);
    out.push('-');
    push_two_digits(&mut out, t.month());
    out.push('-');
    push_two_digits(&mut out, t.day());
    out
}

/// `n` (under 100) as two digits, zero first.
fn push_two_digits(out: &mut String, n: u32) {
    debug_assert!(n < 100);
    out.push(char::from(b'0' + (n / 10) as u8));
    out.push(char::from(b'0' + (n % 10) as u8));
}

/// "2026-11-23 14:05:09 UTC"
pub fn display_time(t: NaiveDateTime) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// "2026-11-23T14:05:09.123456Z", for `<time datetime>`, exports and audit details.
pub fn iso_time(t: NaiveDateTime) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// "just now", "5 minutes ago", "3 days ago", or the date when it is older than a month.
pub fn relative(now: NaiveDateTime, t: NaiveDateTime) -> String {
    let secs = (now - t).num_seconds();
    let plural = |n: i64, unit: &str| {
        if n == 1 {
            format!("1 {unit} ago")
        } else {
            format!("{n} {unit}s ago")
        }
    };
    match secs {
        s if s < 60 => "just now".into(),
        s if s < 3600 => plural(s / 60, "minute"),
        s if s < 86_400 => plural(s / 3600, "hour"),
        s if s < 30 * 86_400 => plural(s / 86_400, "day"),
        _ => date(t),
    }
}

/// An exact count with thousands separators: "1,234,567".
pub fn count(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if n < 0 {
        out.push('-');
    }
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap()
    }

    #[test]
    fn dates_and_exact_times_read_as_chrono_writes_them() {
        for s in [
            "2026-12-02 04:05:06",
            "0001-01-01 00:00:00",
            "9999-12-31 23:59:59",
        ] {
            let t = at(s);
            assert_eq!(date(t), t.format("%Y-%m-%d").to_string());
            assert_eq!(exact(t), t.format("%Y-%m-%d %H:%M UTC").to_string());
        }
        let far = at("2026-01-01 00:00:00").with_year(12026).unwrap();
        assert_eq!(date(far), far.format("%Y-%m-%d").to_string());
        let before = at("2026-01-01 00:00:00").with_year(-7).unwrap();
        assert_eq!(date(before), before.format("%Y-%m-%d").to_string());
    }

    proptest::proptest! {
        #[test]
        fn any_time_reads_as_chrono_writes_it(seconds in -100_000_000_000i64..400_000_000_000i64) {
            let t = chrono::DateTime::from_timestamp(seconds, 0).unwrap().naive_utc();
            proptest::prop_assert_eq!(date(t), t.format("%Y-%m-%d").to_string());
            proptest::prop_assert_eq!(exact(t), t.format("%Y-%m-%d %H:%M UTC").to_string());
        }
    }

    #[test]
    fn relative_times() {
        let now = at("2026-11-23 12:00:00");
        assert_eq!(relative(now, at("2026-11-23 11:59:30")), "just now");
        assert_eq!(relative(now, at("2026-11-23 11:59:00")), "1 minute ago");
        assert_eq!(relative(now, at("2026-11-23 09:00:00")), "3 hours ago");
        assert_eq!(relative(now, at("2026-11-20 12:00:00")), "3 days ago");
        assert_eq!(relative(now, at("2026-01-02 12:00:00")), "2026-01-02");
    }

    #[test]
    fn counts_are_exact_and_grouped_by_thousands() {
        assert_eq!(count(0), "0");
        assert_eq!(count(7), "7");
        assert_eq!(count(999), "999");
        assert_eq!(count(1234), "1,234");
        assert_eq!(count(10_000), "10,000");
        assert_eq!(count(10_050), "10,050");
        assert_eq!(count(123_456), "123,456");
        assert_eq!(count(1_000_000), "1,000,000");
        assert_eq!(count(-1234), "-1,234");
    }
}
