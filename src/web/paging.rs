//! Keyset paging for every list: one page size and one cursor format.
//!
//! A cursor carries the sort key of the last row a page showed, so the next page starts
//! after it without an OFFSET scan. It is URL-safe base64 of JSON: opaque to people,
//! but it holds nothing the page did not show, so it needs no signature. Each list
//! chooses its key type; decoding checks the length first, so a hostile cursor costs
//! nothing.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Rows per page in every list.
pub const PAGE_SIZE: i64 = 50;

/// Longest cursor accepted, in characters: a sort key of a few hundred characters
/// (an email or a name) plus an id, encoded.
const MAX_CURSOR_CHARS: usize = 1024;

/// A position in a list: the key of the last row shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor<K>(pub K);

impl<K: Serialize + DeserializeOwned> Cursor<K> {
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&self.0).unwrap_or_default())
    }

    /// `None` for anything that is not a cursor this list wrote.
    pub fn decode(raw: &str) -> Option<Self> {
        let raw = raw.trim();
        if raw.is_empty() || raw.len() > MAX_CURSOR_CHARS {
            return None;
        }
        let bytes = URL_SAFE_NO_PAD.decode(raw).ok()?;
        let value: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
        // No key a list writes holds a control character or an impossible time, and
        // PostgreSQL refuses a NUL in a bound text, or such a time, outright: such a
        // cursor was made up, so it is no cursor.
        let made_up = |text: &str| text.chars().any(char::is_control) || out_of_range_time(text);
        if any_text(&value, &made_up) {
            return None;
        }
        serde_json::from_value(value).ok().map(Cursor)
    }

    /// The cursor in a query string, if one was given: `Ok(None)` when absent or empty,
    /// `Err(BadCursor)` when present but unreadable (the page says so and starts over).
    pub fn from_param(raw: Option<&str>) -> Result<Option<Self>, BadCursor> {
        match raw.map(str::trim).filter(|r| !r.is_empty()) {
            None => Ok(None),
            Some(raw) => Self::decode(raw).map(Some).ok_or(BadCursor),
        }
    }
}

/// Whether any text anywhere in the cursor's JSON passes `test`.
fn any_text(value: &serde_json::Value, test: &dyn Fn(&str) -> bool) -> bool {
    match value {
        serde_json::Value::String(text) => test(text),
        serde_json::Value::Array(items) => items.iter().any(|item| any_text(item, test)),
        serde_json::Value::Object(fields) => fields.values().any(|field| any_text(field, test)),
        _ => false,
    }
}

/// No time a list writes falls outside 1970..=9999 (`db::never()` is the epoch), while
/// chrono reads any year: PostgreSQL refuses a timestamp before 4713 BC as an error, not
/// as no rows, so such a cursor must be refused before it is bound. chrono's own form is
/// the one serde writes; the Users tab keeps its times as text in a form of its own,
/// which it checks itself (`member_list::cursor_fits`).
fn out_of_range_time(text: &str) -> bool {
    text.parse::<chrono::NaiveDateTime>()
        .is_ok_and(|t| !(1970..=9999).contains(&chrono::Datelike::year(&t)))
}

/// A cursor parameter that no list wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadCursor;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_round_trips() {
        let cursor = Cursor(("ada@example.com".to_string(), "u-1".to_string()));
        assert_eq!(Cursor::decode(&cursor.encode()), Some(cursor));
        let timed = Cursor((1_700_000_000_123_456_i64, "e-9".to_string()));
        assert_eq!(Cursor::decode(&timed.encode()), Some(timed));
    }

    #[test]
    fn tampered_or_foreign_cursors_are_refused() {
        type Key = (String, String);
        assert_eq!(Cursor::<Key>::decode("%%%"), None);
        assert_eq!(Cursor::<Key>::decode("bm90IGpzb24"), None); // "not json"
        // Valid JSON of another list's key shape.
        let other = Cursor((5_i64, "x".to_string())).encode();
        assert_eq!(Cursor::<Key>::decode(&other), None);
        assert_eq!(Cursor::<Key>::decode(&"A".repeat(5000)), None);
        let nul = Cursor(("a\u{0}".to_string(), "x".to_string())).encode();
        assert_eq!(Cursor::<Key>::decode(&nul), None);
        type Timed = (chrono::NaiveDateTime, String);
        let ancient = chrono::NaiveDate::from_ymd_opt(-5000, 1, 1)
            .unwrap()
            .and_hms_opt(0, 0, 0);
        let ancient = Cursor((ancient.unwrap(), "x".to_string())).encode();
        assert_eq!(Cursor::<Timed>::decode(&ancient), None);
        // Text that only looks like a time with a space (a name, say) is not one.
        let name = Cursor(("1969-07-20 20:17:40".to_string(), "x".to_string()));
        assert_eq!(Cursor::<Key>::decode(&name.encode()), Some(name));
        let epoch = Cursor((crate::db::never(), "x".to_string()));
        assert_eq!(Cursor::<Timed>::decode(&epoch.encode()), Some(epoch));
        assert_eq!(Cursor::<Key>::from_param(Some("  ")), Ok(None));
        assert_eq!(Cursor::<Key>::from_param(Some("garbage!!")), Err(BadCursor));
    }
}
