//! Reading the Users tab's query string into a validated filter, and the cursor format.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::db::memberships::{Cursor, ListFilter, Search, SortKey};

pub const PAGE_SIZE: i64 = 50;
pub const MAX_SEARCH_CHARS: usize = 100;

#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct ListParams {
    pub q: Option<String>,
    pub status: Option<String>,
    pub role: Option<String>,
    pub sort: Option<String>,
    pub cursor: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ListError {
    #[error("That page link is no longer valid; showing the first page.")]
    BadCursor,
}

/// `sort` is a column name, with a leading `-` for descending order.
pub fn parse_sort(raw: Option<&str>) -> (SortKey, bool) {
    let raw = raw.unwrap_or("email").trim();
    let (descending, name) = match raw.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, raw),
    };
    let key = match name {
        "name" => SortKey::Name,
        "created" => SortKey::Created,
        "last_active" => SortKey::LastActive,
        _ => SortKey::Email,
    };
    (key, descending)
}

pub fn sort_param(key: SortKey, descending: bool) -> String {
    let name = match key {
        SortKey::Email => "email",
        SortKey::Name => "name",
        SortKey::Created => "created",
        SortKey::LastActive => "last_active",
    };
    if descending {
        format!("-{name}")
    } else {
        name.to_string()
    }
}

pub fn parse_search(raw: Option<&str>) -> Option<Search> {
    let term: String = raw?
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_SEARCH_CHARS)
        .collect();
    match term.chars().count() {
        0 => None,
        1 | 2 => Some(Search::Prefix(term)),
        _ => Some(Search::Substring(term)),
    }
}

pub fn encode_cursor(cursor: &Cursor) -> String {
    let json = serde_json::to_string(&(&cursor.key, &cursor.user_id)).unwrap_or_default();
    URL_SAFE_NO_PAD.encode(json)
}

pub fn decode_cursor(raw: &str) -> Result<Cursor, ListError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(raw.trim())
        .map_err(|_| ListError::BadCursor)?;
    let (key, user_id): (String, String) =
        serde_json::from_slice(&bytes).map_err(|_| ListError::BadCursor)?;
    if key.len() > 400 || user_id.len() > 64 {
        return Err(ListError::BadCursor);
    }
    Ok(Cursor { key, user_id })
}

/// Builds the filter; a cursor that cannot be read (or does not fit the sort) is dropped
/// with a message rather than failing the page.
pub fn to_filter(params: &ListParams, role_id: Option<String>) -> (ListFilter, Option<ListError>) {
    let (sort, descending) = parse_sort(params.sort.as_deref());
    let status = match params.status.as_deref() {
        Some("active") => Some("active".to_string()),
        Some("inactive") => Some("inactive".to_string()),
        _ => None,
    };
    let mut problem = None;
    let after = match params.cursor.as_deref().filter(|c| !c.is_empty()) {
        None => None,
        Some(raw) => match decode_cursor(raw) {
            Ok(cursor) if cursor_fits(&cursor, sort) => Some(cursor),
            _ => {
                problem = Some(ListError::BadCursor);
                None
            }
        },
    };
    (
        ListFilter {
            search: parse_search(params.q.as_deref()),
            status,
            role_id,
            sort,
            descending,
            after,
            limit: PAGE_SIZE + 1,
        },
        problem,
    )
}

fn cursor_fits(cursor: &Cursor, sort: SortKey) -> bool {
    match sort {
        SortKey::Created | SortKey::LastActive => chrono::NaiveDateTime::parse_from_str(
            &cursor.key,
            crate::db::memberships::TIMESTAMP_CURSOR_FORMAT,
        )
        .is_ok(),
        SortKey::Email | SortKey::Name => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sort_parameter_round_trips() {
        for (raw, key, desc) in [
            ("email", SortKey::Email, false),
            ("-name", SortKey::Name, true),
            ("created", SortKey::Created, false),
            ("-last_active", SortKey::LastActive, true),
        ] {
            assert_eq!(parse_sort(Some(raw)), (key, desc));
            assert_eq!(sort_param(key, desc), raw);
        }
        assert_eq!(parse_sort(Some("bogus")), (SortKey::Email, false));
        assert_eq!(parse_sort(None), (SortKey::Email, false));
    }

    #[test]
    fn short_searches_are_prefixes_long_ones_substrings() {
        assert!(matches!(parse_search(Some(" Jo ")), Some(Search::Prefix(t)) if t == "jo"));
        assert!(matches!(parse_search(Some("LOVE")), Some(Search::Substring(t)) if t == "love"));
        assert!(parse_search(Some("   ")).is_none());
    }

    #[test]
    fn cursors_round_trip_and_reject_tampering() {
        let cursor = Cursor {
            key: "ada@example.com".into(),
            user_id: "0190-abc".into(),
        };
        assert_eq!(decode_cursor(&encode_cursor(&cursor)).unwrap(), cursor);
        assert_eq!(decode_cursor("%%%"), Err(ListError::BadCursor));
        assert_eq!(decode_cursor("bm90IGpzb24"), Err(ListError::BadCursor));
    }

    #[test]
    fn a_cursor_that_does_not_fit_the_sort_is_dropped() {
        let params = ListParams {
            sort: Some("created".into()),
            cursor: Some(encode_cursor(&Cursor {
                key: "not a time".into(),
                user_id: "x".into(),
            })),
            ..ListParams::default()
        };
        let (filter, problem) = to_filter(&params, None);
        assert!(filter.after.is_none());
        assert_eq!(problem, Some(ListError::BadCursor));
    }
}
