//! Counters held in this process: a map from (scope, period, window) to a tally, split into
//! locked shards so worker threads rarely wait on each other. The `local` policy keeps its
//! counts here; the redis policy with `sync_rate` keeps its local view of Redis's counts here.

use super::{Counting, Limit, Scope, Taken, period_len, window_start};
use crate::locked;
use hashbrown::{Equivalent, HashMap};
use smallvec::SmallVec;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::{Mutex, MutexGuard};
use uuid::Uuid;

/// Which counter: the scope Kong keys counters by, the identifier, the period and the start
/// of its window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    counting: Counting,
    route: Option<Uuid>,
    service: Option<Uuid>,
    identifier: Box<str>,
    name: Option<Box<str>>,
    pub period: u8,
    pub window: i64,
}

/// A [`Key`] over borrowed strings: counters are looked up with it, so a request allocates
/// a key only when it creates a counter.
#[derive(Clone, Copy)]
struct KeyRef<'a> {
    scope: &'a Scope<'a>,
    period: u8,
    window: i64,
}

impl From<&KeyRef<'_>> for Key {
    fn from(key: &KeyRef<'_>) -> Key {
        Key {
            counting: key.scope.counting,
            route: key.scope.route,
            service: key.scope.service,
            identifier: key.scope.identifier.into(),
            name: key.scope.name.map(Into::into),
            period: key.period,
            window: key.window,
        }
    }
}

/// One hash for a key however it is held, owned or borrowed.
fn hash_key<H: Hasher>(
    state: &mut H,
    (counting, route, service): (Counting, Option<Uuid>, Option<Uuid>),
    identifier: &str,
    name: Option<&str>,
    period: u8,
    window: i64,
) {
    counting.hash(state);
    route.hash(state);
    service.hash(state);
    identifier.hash(state);
    name.hash(state);
    period.hash(state);
    window.hash(state);
}

impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        let scope = (self.counting, self.route, self.service);
        let name = self.name.as_deref();
        hash_key(
            state,
            scope,
            &self.identifier,
            name,
            self.period,
            self.window,
        );
    }
}

impl Hash for KeyRef<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        let s = self.scope;
        let scope = (s.counting, s.route, s.service);
        hash_key(state, scope, s.identifier, s.name, self.period, self.window);
    }
}

impl Equivalent<Key> for KeyRef<'_> {
    fn equivalent(&self, key: &Key) -> bool {
        let s = self.scope;
        key.window == self.window
            && key.period == self.period
            && *key.identifier == *s.identifier
            && key.route == s.route
            && key.service == s.service
            && key.counting == s.counting
            && key.name.as_deref() == s.name
    }
}

impl Key {
    #[cfg(test)]
    pub fn new(scope: &Scope<'_>, period: u8, now: i64) -> Key {
        Key::from(&KeyRef {
            scope,
            period,
            window: window_start(period, now),
        })
    }

    /// Kong's Redis key for this counter.
    pub fn redis_key(&self) -> String {
        let scope = Scope {
            counting: self.counting,
            route: self.route,
            service: self.service,
            identifier: &self.identifier,
            name: self.name.as_deref(),
        };
        super::key(&scope, self.period, self.window)
    }

    /// Whether `now` is past this counter's window (calendar months and years included).
    pub fn ended(&self, now: i64) -> bool {
        window_start(self.period, now) != self.window
    }
}

/// What a counter holds: how much of its window is used, as this process knows it.
pub trait Tally: Default {
    fn used(&self) -> u64;
    fn add(&mut self, n: u64);
    /// Takes back one request counted by `add(1)`, when another period refused it.
    fn give_back(&mut self);
}

impl Tally for u64 {
    fn used(&self) -> u64 {
        *self
    }
    fn add(&mut self, n: u64) {
        *self = self.saturating_add(n);
    }
    fn give_back(&mut self) {
        *self = self.saturating_sub(1);
    }
}

const SHARDS: usize = 64;
/// A shard drops counters of past windows once it holds this many.
const SWEEP_AT: usize = 4096;

/// The shards' maps, with hashbrown's default hasher (foldhash, seeded per process).
type Map<T> = HashMap<Key, T>;

pub struct Shards<T> {
    hasher: hashbrown::DefaultHashBuilder,
    shards: Box<[Mutex<Map<T>>]>,
}

impl<T: Tally> Default for Shards<T> {
    fn default() -> Self {
        let hasher = hashbrown::DefaultHashBuilder::default();
        Shards {
            shards: (0..SHARDS)
                .map(|_| Mutex::new(HashMap::with_hasher(hasher.clone())))
                .collect(),
            hasher,
        }
    }
}

impl<T: Tally> Shards<T> {
    fn shard(&self, key: &impl Hash) -> MutexGuard<'_, Map<T>> {
        // The low bits pick the slot inside the shard's table; the high ones pick the shard.
        let i = (self.hasher.hash_one(key) >> 58) as usize % SHARDS;
        // In range: `shards` has SHARDS entries.
        locked(&self.shards[i])
    }

    /// The counter for `key`, created (and past windows dropped, when the shard has grown
    /// large) when missing.
    fn entry<'a>(shard: &'a mut Map<T>, key: KeyRef<'_>) -> &'a mut T {
        if shard.len() >= SWEEP_AT && !shard.contains_key(&key) {
            let now = key.window;
            shard.retain(|k, _| k.window + period_len(k.period) > now);
        }
        shard.entry_ref(&key).or_default()
    }

    /// Counts one request against `limit` unless the window is full; returns the usage
    /// before this request and whether it was counted.
    fn try_take(&self, key: KeyRef<'_>, limit: u64) -> (u64, bool) {
        let mut shard = self.shard(&key);
        let tally = Self::entry(&mut shard, key);
        let used = tally.used();
        if used < limit {
            tally.add(1);
            (used, true)
        } else {
            (used, false)
        }
    }

    /// Counts one request in every limit's window unless one is full, then gives back what
    /// was already counted.
    pub fn take(&self, scope: Scope<'_>, limits: &[Limit], now: i64) -> Taken {
        let mut taken = Taken::default();
        let mut counted: SmallVec<[KeyRef<'_>; 6]> = SmallVec::new();
        for (i, &(period, limit)) in limits.iter().enumerate() {
            let key = KeyRef {
                scope: &scope,
                period,
                window: window_start(period, now),
            };
            let (used, ok) = self.try_take(key, limit);
            taken.used.push(used);
            if ok {
                counted.push(key);
            } else if taken.refused.is_none() {
                taken.refused = Some(i);
            }
        }
        if taken.refused.is_some() {
            for key in &counted {
                if let Some(t) = self.shard(key).get_mut(key) {
                    t.give_back();
                }
            }
        }
        taken
    }

    pub fn usage(&self, scope: Scope<'_>, periods: &[u8], now: i64) -> SmallVec<[u64; 6]> {
        periods
            .iter()
            .map(|&p| {
                let key = KeyRef {
                    scope: &scope,
                    period: p,
                    window: window_start(p, now),
                };
                self.shard(&key).get(&key).map_or(0, T::used)
            })
            .collect()
    }

    pub fn add(&self, scope: Scope<'_>, periods: &[u8], now: i64, value: u64) {
        for &p in periods {
            let key = KeyRef {
                scope: &scope,
                period: p,
                window: window_start(p, now),
            };
            Self::entry(&mut self.shard(&key), key).add(value);
        }
    }

    /// Runs `f` on each shard in turn, under its lock.
    pub fn each_shard(&self, mut f: impl FnMut(&mut Map<T>)) {
        for shard in &self.shards {
            f(&mut locked(shard));
        }
    }

    /// Runs `f` on the counter for `key`, if there still is one.
    pub fn with(&self, key: &Key, f: impl FnOnce(&mut T)) {
        if let Some(t) = self.shard(key).get_mut(key) {
            f(t);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_more_than_the_limit_across_threads() {
        let counters = Shards::<u64>::default();
        let taken: u64 = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| {
                    s.spawn(|| {
                        (0..1000)
                            .filter(|_| {
                                counters
                                    .take(Scope::requests("threads"), &[(1, 777)], 0)
                                    .refused
                                    .is_none()
                            })
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
        let counters = Shards::<u64>::default();
        let limits = [(0, 10), (1, 2)];
        assert_eq!(
            counters.take(Scope::requests("g"), &limits, 0).refused,
            None
        );
        assert_eq!(
            counters.take(Scope::requests("g"), &limits, 0).refused,
            None
        );
        let refused = counters.take(Scope::requests("g"), &limits, 0);
        assert_eq!(refused.refused, Some(1));
        assert_eq!(refused.used.as_slice(), &[2, 2]);
        assert_eq!(
            counters.usage(Scope::requests("g"), &[0, 1], 0).as_slice(),
            &[2, 2]
        );
        counters.add(Scope::requests("g"), &[0], 0, 5);
        assert_eq!(
            counters.usage(Scope::requests("g"), &[0], 0).as_slice(),
            &[7]
        );
    }

    #[test]
    fn keys_and_windows() {
        let key = Key::new(&Scope::requests("k"), 1, 125);
        assert_eq!(key.window, 120);
        assert!(!key.ended(179));
        assert!(key.ended(180));
        assert_eq!(
            key.redis_key(),
            "ratelimit:00000000-0000-0000-0000-000000000000:00000000-0000-0000-0000-000000000000:k:120000:minute"
        );
    }
}
