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

use std::num::NonZeroUsize;
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use chrono::NaiveDateTime;
use lru::LruCache;

/// How long a place is kept: an import pages on within seconds.
const KEPT_FOR: Duration = Duration::from_secs(600);

/// Places kept across all tokens; the least recently used goes first.
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

    fn recall(&self, token_id: &str, skip: i64) -> Option<Place> {
        let key = (token_id.to_string(), skip);
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

    fn remember(&self, token_id: &str, skip: i64, after: Place) {
        let kept = Kept {
            after,
            at: Instant::now(),
        };
        self.places().put((token_id.to_string(), skip), kept);
    }
}

static CURSORS: LazyLock<Cursors> = LazyLock::new(|| Cursors::new(KEPT, KEPT_FOR));

/// The member a page starting `skip` members in continues after, when a page this token
/// asked for ended there within `KEPT_FOR`.
pub fn recall(token_id: &str, skip: i64) -> Option<Place> {
    CURSORS.recall(token_id, skip)
}

/// Notes that the token's page ending `skip` members in ended on the member at `after`.
pub fn remember(token_id: &str, skip: i64, after: Place) {
    CURSORS.remember(token_id, skip, after)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn place(id: &str) -> Place {
        (crate::db::now(), id.to_string())
    }

    #[test]
    fn a_place_is_recalled_per_token_and_position_until_it_goes_stale() {
        let cursors = Cursors::new(KEPT, KEPT_FOR);
        assert_eq!(cursors.recall("token", 100), None);
        let after = place("u100");
        cursors.remember("token", 100, after.clone());
        assert_eq!(cursors.recall("token", 100), Some(after));
        assert_eq!(cursors.recall("other", 100), None, "another token's");
        assert_eq!(cursors.recall("token", 200), None, "another position");

        let stale = Cursors::new(KEPT, Duration::ZERO);
        stale.remember("token", 100, place("u100"));
        assert_eq!(stale.recall("token", 100), None);
    }

    #[test]
    fn the_least_recently_used_place_goes_first() {
        let cursors = Cursors::new(2, KEPT_FOR);
        cursors.remember("token", 100, place("a"));
        cursors.remember("token", 200, place("b"));
        assert!(cursors.recall("token", 100).is_some());
        cursors.remember("token", 300, place("c"));
        assert!(cursors.recall("token", 200).is_none());
        assert!(cursors.recall("token", 100).is_some());
    }
}
