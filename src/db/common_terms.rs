//! Terms the text index recently found common in an organization, so that the next
//! search for one (its next page, the same search again) walks the sort index at once
//! instead of asking the text index how many match first. That question is most of a
//! common term's cost: at a million members it read 2,701 matches of `q=ada.hop` out of
//! FTS5 in 4.4 ms, of a 10.5 ms page, before a 5 ms walk.
//!
//! Only the verdict "more than the text-index plan sorts" is kept, never matches: a stale
//! verdict costs time, not rows. The walk tests every entry it reads, a walk that uses up
//! its budget without a page asks the text index (`memberships::run_list_page`), and a
//! verdict is dropped as soon as a walk comes back with less than a page. A search with
//! a filter on the account walks without a budget, so it neither recalls nor keeps one.
//!
//! The memory is the process's, shared by all organizations: one organization searching
//! more than `KEPT` common terms within `KEPT_FOR` pushes out the others' verdicts, which
//! then cost their next search a lookup, as before.

use std::sync::LazyLock;
use std::time::Duration;

use super::kept::Kept;

/// How long a verdict stands: members come and go, and a term that stopped being common
/// would otherwise cost each of its searches a spent walk before the text index.
const KEPT_FOR: Duration = Duration::from_secs(300);

/// Terms kept across all organizations; the least recently used goes first.
const KEPT: usize = 1024;

/// Organization id and term.
type Key = (String, String);

/// About how many members matched the term, as the lookup estimated.
static COMMON: LazyLock<Kept<Key, i64>> = LazyLock::new(|| Kept::new(KEPT, KEPT_FOR));

fn key(org_id: &str, term: &str) -> Key {
    (org_id.to_string(), term.to_string())
}

/// The estimate of matches, when `term` was found common in the organization within
/// `KEPT_FOR`.
pub fn recall(org_id: &str, term: &str) -> Option<i64> {
    COMMON.recall(&key(org_id, term))
}

/// Notes that the text index found about `estimate` matches of `term`, more than it sorts.
pub fn remember(org_id: &str, term: &str, estimate: i64) {
    COMMON.remember(key(org_id, term), estimate)
}

/// Drops the verdict: a walk it sent came back with less than a page.
pub fn forget(org_id: &str, term: &str) {
    COMMON.forget(&key(org_id, term))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_verdict_is_recalled_per_organization_and_term_until_forgotten() {
        // The process's memory is shared with other tests: an organization of its own.
        let org = "common-terms-test-org";
        assert_eq!(recall(org, "hopper"), None);
        remember(org, "hopper", 100_000);
        assert_eq!(recall(org, "hopper"), Some(100_000));
        assert_eq!(
            recall("common-terms-other-org", "hopper"),
            None,
            "another organization's"
        );
        assert_eq!(recall(org, "Hopper"), None, "another term");
        forget(org, "hopper");
        assert_eq!(recall(org, "hopper"), None);
    }
}
