//! Timestamps read from SQLite without chrono's format parser.
//!
//! SQLite keeps a timestamp as text, and diesel reads it by trying chrono format strings
//! one after another. A profile of the Users tab at c=32 found a tenth of the page's CPU
//! in that parser: fifty rows, three timestamps each, plus the session's and the
//! membership's. What this portal writes is always `YYYY-MM-DD HH:MM:SS[.ffffff]`
//! (diesel's own encoding), which is read here by position; anything else still goes
//! through diesel's parser. PostgreSQL sends timestamps as binary and is read as before.
//!
//! Use on a `Queryable` field: `#[diesel(deserialize_as = Stamp)]` for a `NaiveDateTime`,
//! `#[diesel(deserialize_as = MaybeStamp)]` for an `Option<NaiveDateTime>`.

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use diesel::backend::Backend;
use diesel::deserialize::{self, FromSql};
use diesel::pg::Pg;
use diesel::sql_types::{Nullable, Timestamp};
use diesel::sqlite::{Sqlite, SqliteType};

use super::MultiBackend;

#[derive(Debug, Clone, Copy, PartialEq, Eq, diesel::deserialize::FromSqlRow)]
pub struct Stamp(pub NaiveDateTime);

impl From<Stamp> for NaiveDateTime {
    fn from(stamp: Stamp) -> Self {
        stamp.0
    }
}

impl FromSql<Timestamp, Sqlite> for Stamp {
    fn from_sql(mut value: <Sqlite as Backend>::RawValue<'_>) -> deserialize::Result<Self> {
        if value.value_type() == Some(SqliteType::Text)
            && let Some(parsed) = parse(value.read_text())
        {
            return Ok(Stamp(parsed));
        }
        // Another shape (a julian day, an ISO `T`): diesel's parser accepts them all.
        <NaiveDateTime as FromSql<Timestamp, Sqlite>>::from_sql(value).map(Stamp)
    }
}

impl FromSql<Timestamp, Pg> for Stamp {
    fn from_sql(value: <Pg as Backend>::RawValue<'_>) -> deserialize::Result<Self> {
        <NaiveDateTime as FromSql<Timestamp, Pg>>::from_sql(value).map(Stamp)
    }
}

impl FromSql<Timestamp, MultiBackend> for Stamp {
    fn from_sql(value: <MultiBackend as Backend>::RawValue<'_>) -> deserialize::Result<Self> {
        value.from_sql::<Self, Timestamp>()
    }
}

/// A nullable timestamp, read as [`Stamp`] reads one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, diesel::deserialize::FromSqlRow)]
pub struct MaybeStamp(pub Option<NaiveDateTime>);

impl From<MaybeStamp> for Option<NaiveDateTime> {
    fn from(stamp: MaybeStamp) -> Self {
        stamp.0
    }
}

impl<DB: Backend> FromSql<Nullable<Timestamp>, DB> for MaybeStamp
where
    Stamp: FromSql<Timestamp, DB>,
{
    fn from_sql(value: DB::RawValue<'_>) -> deserialize::Result<Self> {
        <Stamp as FromSql<Timestamp, DB>>::from_sql(value).map(|s| MaybeStamp(Some(s.0)))
    }

    fn from_nullable_sql(value: Option<DB::RawValue<'_>>) -> deserialize::Result<Self> {
        match value {
            Some(value) => Self::from_sql(value),
            None => Ok(MaybeStamp(None)),
        }
    }
}

/// `YYYY-MM-DD HH:MM:SS` with an optional fraction of up to nine digits; `None` for
/// anything else, including dates and times that do not exist.
fn parse(text: &str) -> Option<NaiveDateTime> {
    let b = text.as_bytes();
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || b[10] != b' ' || b[13] != b':' {
        return None;
    }
    if b[16] != b':' {
        return None;
    }
    let year = digits(&b[0..4])?;
    let date = NaiveDate::from_ymd_opt(year as i32, digits(&b[5..7])?, digits(&b[8..10])?)?;
    let (hour, minute, second) = (
        digits(&b[11..13])?,
        digits(&b[14..16])?,
        digits(&b[17..19])?,
    );
    let nanos = match &b[19..] {
        [] => 0,
        [b'.', fraction @ ..] if (1..=9).contains(&fraction.len()) => {
            digits(fraction)? * 10u32.pow(9 - fraction.len() as u32)
        }
        _ => return None,
    };
    let time = NaiveTime::from_hms_nano_opt(hour, minute, second, nanos)?;
    Some(NaiveDateTime::new(date, time))
}

fn digits(b: &[u8]) -> Option<u32> {
    b.iter().try_fold(0u32, |n, &c| {
        c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chrono(text: &str) -> Option<NaiveDateTime> {
        NaiveDateTime::parse_from_str(text, "%F %T%.f").ok()
    }

    #[test]
    fn reads_what_diesel_writes_as_chrono_does() {
        let written = [
            "2026-12-02 04:05:06",
            "2026-12-02 04:05:06.123456",
            "2026-12-02 04:05:06.1",
            "2024-02-29 23:59:59.999999999",
            "1970-01-01 00:00:00",
            "9999-12-31 23:59:59",
        ];
        for text in written {
            assert_eq!(parse(text), chrono(text), "{text}");
            assert!(parse(text).is_some(), "{text}");
        }
        let now = crate::db::now();
        let text = now.format("%F %T%.f").to_string();
        assert_eq!(parse(&text), Some(now));
    }

    #[test]
    fn leaves_other_shapes_to_diesel() {
        for text in [
            "2026-12-02T04:05:06",
            "2026-12-02 04:05",
            "2026-02-30 04:05:06",
            "2026-12-02 24:00:00",
            "2026-12-02 04:05:06.",
            "2026-12-02 04:05:06.1234567890",
            "2026-12-02 04:05:06+01:00",
            "2026-1a-02 04:05:06",
            "",
        ] {
            assert_eq!(parse(text), None, "{text}");
        }
    }
}
