//! The `local` policy: counters in this process, shared by every worker thread and kept across
//! config changes. A request is counted only if every period still has room, checked and
//! incremented under the counter's lock, so N concurrent clients never get more than the limit
//! through (Kong's local policy reads, then increments later, and can let a burst over).

use super::{Limit, Scope, Taken, period_len, window_start};
use smallvec::SmallVec;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, RandomState};
use std::sync::{LazyLock, Mutex, MutexGuard};
use uuid::Uuid;

/// Which counter: the scope Kong keys local counters by, the identifier, the period and the
/// start of its current window.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    counting: super::Counting,
    route: Option<Uuid>,
    service: Option<Uuid>,
    identifier: Box<str>,
    name: Option<Box<str>>,
    period: u8,
    window: i64,
}

impl Key {
    fn new(scope: &Scope<'_>, period: u8, now: i64) -> Key {
        Key {
            counting: scope.counting,
            route: scope.route,
            service: scope.service,
            identifier: scope.identifier.into(),
            name: scope.name.map(Into::into),
            period,
            window: window_start(period, now),
        }
    }
}

const SHARDS: usize = 64;
/// A shard drops counters of past windows once it holds this many.
const SWEEP_AT: usize = 4096;

struct Counters {
    hasher: RandomState,
    shards: Vec<Mutex<HashMap<Key, u64>>>,
}

static COUNTERS: LazyLock<Counters> = LazyLock::new(|| Counters {
    hasher: RandomState::new(),
    shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
});

impl Counters {
    fn shard(&self, key: &Key) -> MutexGuard<'_, HashMap<Key, u64>> {
        let i = (self.hasher.hash_one(key) as usize) % SHARDS;
        self.shards[i]
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The counter for `key`, dropping past windows when the shard has grown large.
    fn entry<'a>(shard: &'a mut HashMap<Key, u64>, key: &Key) -> &'a mut u64 {
        if shard.len() >= SWEEP_AT && !shard.contains_key(key) {
            let now = key.window;
            shard.retain(|k, _| k.window + period_len(k.period) > now);
        }
        shard.entry(key.clone()).or_insert(0)
    }

    /// Counts one request against `limit` unless the window is full; returns the usage
    /// before this request and whether it was counted.
    fn try_take(&self, key: &Key, limit: u64) -> (u64, bool) {
        let mut shard = self.shard(key);
        let count = Self::entry(&mut shard, key);
        let used = *count;
        if used < limit {
            *count += 1;
            (used, true)
        } else {
            (used, false)
        }
    }

    /// Gives back a request counted in a period when another period refused it.
    fn give_back(&self, key: &Key) {
        if let Some(c) = self.shard(key).get_mut(key) {
            *c = c.saturating_sub(1);
        }
    }

    fn get(&self, key: &Key) -> u64 {
        self.shard(key).get(key).copied().unwrap_or(0)
    }

    fn add(&self, key: &Key, value: u64) {
        let mut shard = self.shard(key);
        let count = Self::entry(&mut shard, key);
        *count = count.saturating_add(value);
    }
}

/// Counts one request in every limit's window unless one is full, then gives back what was
/// already counted.
pub fn take(scope: Scope<'_>, limits: &[Limit], now: i64) -> Taken {
    let mut taken = Taken::default();
    let mut counted: SmallVec<[Key; 6]> = SmallVec::new();
    for (i, &(period, limit)) in limits.iter().enumerate() {
        let key = Key::new(&scope, period, now);
        let (used, ok) = COUNTERS.try_take(&key, limit);
        taken.used.push(used);
        if ok {
            counted.push(key);
        } else if taken.refused.is_none() {
            taken.refused = Some(i);
        }
    }
    if taken.refused.is_some() {
        for key in &counted {
            COUNTERS.give_back(key);
        }
    }
    taken
}

pub fn usage(scope: Scope<'_>, periods: &[u8], now: i64) -> SmallVec<[u64; 6]> {
    periods
        .iter()
        .map(|&p| COUNTERS.get(&Key::new(&scope, p, now)))
        .collect()
}

pub fn add(scope: Scope<'_>, periods: &[u8], now: i64, value: u64) {
    for &p in periods {
        COUNTERS.add(&Key::new(&scope, p, now), value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::counters::Counting;

    fn scope(identifier: &str) -> Scope<'_> {
        Scope {
            counting: Counting::Requests,
            route: None,
            service: None,
            identifier,
            name: None,
        }
    }

    #[test]
    fn never_more_than_the_limit_across_threads() {
        let taken: u64 = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| {
                    s.spawn(|| {
                        (0..1000)
                            .filter(|_| take(scope("threads"), &[(1, 777)], 0).refused.is_none())
                            .count() as u64
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap_or(0)).sum()
        });
        assert_eq!(taken, 777);
    }

    #[test]
    fn a_refusing_period_gives_the_others_back() {
        let limits = [(0, 10), (1, 2)];
        assert_eq!(take(scope("give-back"), &limits, 0).refused, None);
        assert_eq!(take(scope("give-back"), &limits, 0).refused, None);
        let refused = take(scope("give-back"), &limits, 0);
        assert_eq!(refused.refused, Some(1));
        assert_eq!(refused.used.as_slice(), &[2, 2]);
        assert_eq!(usage(scope("give-back"), &[0, 1], 0).as_slice(), &[2, 2]);
        add(scope("give-back"), &[0], 0, 5);
        assert_eq!(usage(scope("give-back"), &[0], 0).as_slice(), &[7]);
    }
}
