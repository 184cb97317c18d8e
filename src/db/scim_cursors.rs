//! Where an identity provider paging through an organization's Users left off, so that
//! its next page starts from there instead of skipping every member before it again.
//!
//! SCIM pages by position (`startIndex`), which an index can only reach by stepping over
//! everything before it: at a million members, `startIndex=900001` read 900,000 joined
//! rows (1.2–1.8 s), and an import of every member at 100 a page (Okta's) would read
//! about 5 × 10⁹ rows. A page served remembers the member it ended on, under its token and
//! the position the next page starts at; that token's request for that position continues
//! after that member. Each token pages on its own: one identity provider's import does
//! not move another's place. A token belongs to one organization, whose members alone
//! the page reads.
//!
//! What is kept is a place in the order, never a member's data. A place kept while
//! members before it were removed is the member after the last one served, not the one
//! now at that position: the next page then holds what an OFFSET would have skipped, and
//! RFC 7644 §3.4.2.4 leaves consistency across pages to the server. New members sort last
//! (by creation time), so they move no place kept.

use std::sync::LazyLock;
use std::time::Duration;

use chrono::NaiveDateTime;

use super::kept::Kept;

/// How long a place is kept: an import pages on within seconds.
const KEPT_FOR: Duration = Duration::from_secs(600);

/// Places kept across all tokens; the least recently used goes first.
const KEPT: usize = 1024;

/// A member's place in SCIM's stable order: creation time, then user id.
pub type Place = (NaiveDateTime, String);

/// Token id and the position the next page starts at.
static CURSORS: LazyLock<Kept<(String, i64), Place>> = LazyLock::new(|| Kept::new(KEPT, KEPT_FOR));

/// The member a page starting `skip` members in continues after, when a page this token
/// asked for ended there within `KEPT_FOR`.
pub fn recall(token_id: &str, skip: i64) -> Option<Place> {
    CURSORS.recall(&(token_id.to_string(), skip))
}

/// Notes that the token's page ending `skip` members in ended on the member at `after`.
pub fn remember(token_id: &str, skip: i64, after: Place) {
    CURSORS.remember((token_id.to_string(), skip), after)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_place_is_recalled_per_token_and_position() {
        let token = "scim-cursors-test-token";
        assert_eq!(recall(token, 100), None);
        let after = (crate::db::now(), "u100".to_string());
        remember(token, 100, after.clone());
        assert_eq!(recall(token, 100), Some(after));
        assert_eq!(
            recall("scim-cursors-other-token", 100),
            None,
            "another token's"
        );
        assert_eq!(recall(token, 200), None, "another position");
    }
}
