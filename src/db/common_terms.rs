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

use std::num::NonZeroUsize;
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use lru::LruCache;

/// How long a verdict stands: members come and go, and a term that stopped being common
/// would otherwise cost each of its searches a spent walk before the text index.
const KEPT_FOR: Duration = Duration::from_secs(300);

/// Terms kept across all organizations; the least recently used goes first.
const KEPT: usize = 1024;

struct Verdict {
    /// About how many members matched, as the lookup estimated.
    estimate: i64,
    at: Instant,
}

type Key = (String, String);

struct CommonTerms {
    kept_for: Duration,
    verdicts: Mutex<LruCache<Key, Verdict>>,
}

impl CommonTerms {
    fn new(kept: usize, kept_for: Duration) -> Self {
        CommonTerms {
            kept_for,
            verdicts: Mutex::new(LruCache::new(
                NonZeroUsize::new(kept).expect("a positive size"),
            )),
        }
    }

    fn verdicts(&self) -> std::sync::MutexGuard<'_, LruCache<Key, Verdict>> {
        // Every change under the lock is one call: a panic cannot leave it half made.
        self.verdicts
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn recall(&self, org_id: &str, term: &str) -> Option<i64> {
        let key = (org_id.to_string(), term.to_string());
        let mut verdicts = self.verdicts();
        match verdicts.get(&key) {
            Some(verdict) if verdict.at.elapsed() < self.kept_for => Some(verdict.estimate),
            Some(_) => {
                verdicts.pop(&key);
                None
            }
            None => None,
        }
    }

    fn remember(&self, org_id: &str, term: &str, estimate: i64) {
        let verdict = Verdict {
            estimate,
            at: Instant::now(),
        };
        self.verdicts()
            .put((org_id.to_string(), term.to_string()), verdict);
    }

    fn forget(&self, org_id: &str, term: &str) {
        self.verdicts().pop(&(org_id.to_string(), term.to_string()));
    }
}

static COMMON: LazyLock<CommonTerms> = LazyLock::new(|| CommonTerms::new(KEPT, KEPT_FOR));

/// The estimate of matches, when `term` was found common in the organization within
/// `KEPT_FOR`.
pub fn recall(org_id: &str, term: &str) -> Option<i64> {
    COMMON.recall(org_id, term)
}

/// Notes that the text index found about `estimate` matches of `term`, more than it sorts.
pub fn remember(org_id: &str, term: &str, estimate: i64) {
    COMMON.remember(org_id, term, estimate)
}

/// Drops the verdict: a walk it sent came back with less than a page.
pub fn forget(org_id: &str, term: &str) {
    COMMON.forget(org_id, term)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_verdict_is_recalled_per_organization_and_term_until_forgotten() {
        let terms = CommonTerms::new(KEPT, KEPT_FOR);
        assert_eq!(terms.recall("org", "hopper"), None);
        terms.remember("org", "hopper", 100_000);
        assert_eq!(terms.recall("org", "hopper"), Some(100_000));
        assert_eq!(
            terms.recall("other", "hopper"),
            None,
            "another organization's"
        );
        assert_eq!(terms.recall("org", "Hopper"), None, "another term");
        terms.forget("org", "hopper");
        assert_eq!(terms.recall("org", "hopper"), None);
    }

    #[test]
    fn a_verdict_lapses() {
        let terms = CommonTerms::new(KEPT, Duration::ZERO);
        terms.remember("org", "hopper", 100_000);
        assert_eq!(terms.recall("org", "hopper"), None);
    }

    #[test]
    fn only_the_most_recently_used_verdicts_are_kept() {
        let terms = CommonTerms::new(3, KEPT_FOR);
        for term in ["ada", "grace", "hopper"] {
            terms.remember("org", term, 5_000);
        }
        assert_eq!(terms.recall("org", "ada"), Some(5_000));
        terms.remember("org", "lovelace", 5_000);
        assert_eq!(
            terms.recall("org", "grace"),
            None,
            "the least recently used"
        );
        assert_eq!(terms.recall("org", "ada"), Some(5_000));
    }
}
