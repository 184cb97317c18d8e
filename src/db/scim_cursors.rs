//! Where an identity provider paging through an organization's Users left off, so that
//! its next page starts from there instead of skipping every member before it again.
//!
//! SCIM pages by position (`startIndex`), which an index can only reach by stepping over
//! everything before it: at a million members, `startIndex=900001` read 900,000 joined
//! rows (1.2–1.8 s), and an import of every member at 100 a page (Okta's) would read
//! about 5 × 10⁹ rows. A page served remembers the member it ended on, under the position
//! the next page starts at; a request for that position continues after that member.
//!
//! What is kept is a place in the order, never a member's data. A place kept while
//! members before it were removed is the member after the last one served, not the one
//! now at that position: the next page then holds what an OFFSET would have skipped, and
//! RFC 7644 §3.4.2.4 leaves consistency across pages to the server. New members sort last
//! (by creation time), so they move no place kept.

use std::num::NonZeroUsize;
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use chrono::NaiveDateTime;
use lru::LruCache;

/// How long a place is kept: an import pages on within seconds.
const KEPT_FOR: Duration = Duration::from_secs(600);

/// Places kept across all organizations; the least recently used goes first.
const KEPT: usize = 1024;

/// A member's place in SCIM's stable order: creation time, then user id.
pub type Place = (NaiveDateTime, String);

struct Kept {
    after: Place,
    at: Instant,
}

type Key = (String, i64);

struct Cursors {
    kept_for: Duration,
    places: Mutex<LruCache<Key, Kept>>,
}

impl Cursors {
    fn new(kept: usize, kept_for: Duration) -> Self {
        Cursors {
            kept_for,
            places: Mutex::new(LruCache::new(
                NonZeroUsize::new(kept).expect("a positive size"),
            )),
        }
    }

    fn places(&self) -> std::sync::MutexGuard<'_, LruCache<Key, Kept>> {
        // Every change under the lock is one call: a panic cannot leave it half made.
        self.places
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn recall(&self, org_id: &str, skip: i64) -> Option<Place> {
        let key = (org_id.to_string(), skip);
        let mut places = self.places();
        match places.get(&key) {
            Some(kept) if kept.at.elapsed() < self.kept_for => Some(kept.after.clone()),
            Some(_) => {
                places.pop(&key);
                None
            }
            None => None,
        }
    }

    fn remember(&self, org_id: &str, skip: i64, after: Place) {
        let kept = Kept {
            after,
            at: Instant::now(),
        };
        self.places().put((org_id.to_string(), skip), kept);
    }
}

static CURSORS: LazyLock<Cursors> = LazyLock::new(|| Cursors::new(KEPT, KEPT_FOR));

/// The member a page starting `skip` members in continues after, when a page of this
/// organization's Users ended there within `KEPT_FOR`.
pub fn recall(org_id: &str, skip: i64) -> Option<Place> {
    CURSORS.recall(org_id, skip)
}

/// Notes that the page ending `skip` members in ended on the member at `after`.
pub fn remember(org_id: &str, skip: i64, after: Place) {
    CURSORS.remember(org_id, skip, after)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn place(id: &str) -> Place {
        (crate::db::now(), id.to_string())
    }

    #[test]
    fn a_place_is_recalled_per_organization_and_position_until_it_goes_stale() {
        let cursors = Cursors::new(KEPT, KEPT_FOR);
        assert_eq!(cursors.recall("org", 100), None);
        let after = place("u100");
        cursors.remember("org", 100, after.clone());
        assert_eq!(cursors.recall("org", 100), Some(after));
        assert_eq!(cursors.recall("other", 100), None, "another organization's");
        assert_eq!(cursors.recall("org", 200), None, "another position");

        let stale = Cursors::new(KEPT, Duration::ZERO);
        stale.remember("org", 100, place("u100"));
        assert_eq!(stale.recall("org", 100), None);
    }

    #[test]
    fn the_least_recently_used_place_goes_first() {
        let cursors = Cursors::new(2, KEPT_FOR);
        cursors.remember("org", 100, place("a"));
        cursors.remember("org", 200, place("b"));
        assert!(cursors.recall("org", 100).is_some());
        cursors.remember("org", 300, place("c"));
        assert!(cursors.recall("org", 200).is_none());
        assert!(cursors.recall("org", 100).is_some());
    }
}
