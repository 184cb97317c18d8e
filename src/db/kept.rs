//! A small memory of the process's: at most so many entries, each for so long, the least
//! recently used going first. What the database layer remembers between requests and
//! may forget without changing an answer (common search terms) is kept in one of these.

use std::hash::Hash;
use std::num::NonZeroUsize;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use lru::LruCache;

pub struct Kept<K: Hash + Eq, V: Clone> {
    kept_for: Duration,
    entries: Mutex<LruCache<K, (V, Instant)>>,
}

impl<K: Hash + Eq, V: Clone> Kept<K, V> {
    /// At most `kept` entries, each for `kept_for`.
    pub fn new(kept: usize, kept_for: Duration) -> Self {
        Kept {
            kept_for,
            entries: Mutex::new(LruCache::new(
                NonZeroUsize::new(kept).expect("a positive size"),
            )),
        }
    }

    fn entries(&self) -> MutexGuard<'_, LruCache<K, (V, Instant)>> {
        // Every change under the lock is one call: a panic cannot leave it half made.
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The value kept under `key`, unless it is older than `kept_for` (then it goes).
    pub fn recall(&self, key: &K) -> Option<V> {
        let mut entries = self.entries();
        match entries.get(key) {
            Some((value, at)) if at.elapsed() < self.kept_for => Some(value.clone()),
            Some(_) => {
                entries.pop(key);
                None
            }
            None => None,
        }
    }

    pub fn remember(&self, key: K, value: V) {
        self.entries().put(key, (value, Instant::now()));
    }

    pub fn forget(&self, key: &K) {
        self.entries().pop(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_lasts_its_time_and_the_least_recently_used_goes_first() {
        let kept = Kept::new(2, Duration::from_secs(60));
        kept.remember("a", 1);
        kept.remember("b", 2);
        assert_eq!(kept.recall(&"a"), Some(1));
        kept.remember("c", 3);
        assert_eq!(kept.recall(&"b"), None, "the least recently used");
        assert_eq!(kept.recall(&"a"), Some(1));
        kept.forget(&"a");
        assert_eq!(kept.recall(&"a"), None);

        let lapsed = Kept::new(2, Duration::ZERO);
        lapsed.remember("a", 1);
        assert_eq!(lapsed.recall(&"a"), None);
    }
}
