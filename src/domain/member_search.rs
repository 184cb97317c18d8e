//! A search term as the Users tab, the member picker and the platform's account list read
//! it: one rule for all, below each (the picker sits under the pools it adds members to,
//! which the Users tab asks what its reader may see).

use crate::db::memberships::Search;

pub const MAX_SEARCH_CHARS: usize = 100;

/// Lower-cased, without control characters, at most [`MAX_SEARCH_CHARS`]; a term under
/// three characters is too short for the trigram index and searches by prefix.
pub fn parse_search(raw: Option<&str>) -> Option<Search> {
    let term = normalized_term(raw?, MAX_SEARCH_CHARS);
    match term.chars().count() {
        0 => None,
        1 | 2 => Some(Search::Prefix(term)),
        _ => Some(Search::Substring(term)),
    }
}

/// What was typed, trimmed, lower-cased (as emails are stored), without control
/// characters, and at most `max` characters long.
pub fn normalized_term(raw: &str, max: usize) -> String {
    raw.trim()
        .to_lowercase()
        .chars()
        .filter(|c| !c.is_control())
        .take(max)
        .collect()
}
