//! The `local` policy: counters in this process, shared by every worker thread and kept across
//! config changes. A request is counted only if every period still has room, checked and
//! incremented under the counter's lock, so N concurrent clients never get more than the limit
//! through (Kong's local policy reads, then increments later, and can let a burst over).

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, RandomState};
use std::sync::{LazyLock, Mutex};
use uuid::Uuid;

/// Which counter: the scope Kong keys local counters by, the identifier, the period and the
/// start of its current window.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct Key {
    pub route: Option<Uuid>,
    pub service: Option<Uuid>,
    pub identifier: String,
    pub period: u8,
    pub window: i64,
}

const SHARDS: usize = 64;
/// A shard drops counters of past windows once it holds this many.
const SWEEP_AT: usize = 4096;

struct Shard {
    counts: HashMap<Key, u64>,
}

pub(super) struct Counters {
    hasher: RandomState,
    shards: Vec<Mutex<Shard>>,
}

pub(super) static COUNTERS: LazyLock<Counters> = LazyLock::new(|| Counters {
    hasher: RandomState::new(),
    shards: (0..SHARDS)
        .map(|_| {
            Mutex::new(Shard {
                counts: HashMap::new(),
            })
        })
        .collect(),
});

impl Counters {
    fn shard(&self, key: &Key) -> &Mutex<Shard> {
        let i = (self.hasher.hash_one(key) as usize) % SHARDS;
        &self.shards[i]
    }

    /// Counts one request against `limit` unless the window is full; returns the usage
    /// before this request and whether it was counted.
    pub fn try_take(&self, key: &Key, limit: u64) -> (u64, bool) {
        let mut shard = self
            .shard(key)
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if shard.counts.len() >= SWEEP_AT && !shard.counts.contains_key(key) {
            let now = key.window;
            shard
                .counts
                .retain(|k, _| k.window + period_len(k.period) > now);
        }
        let count = shard.counts.entry(key.clone()).or_insert(0);
        let used = *count;
        if used < limit {
            *count += 1;
            (used, true)
        } else {
            (used, false)
        }
    }

    /// Gives back a request counted in a period when another period refused it.
    pub fn give_back(&self, key: &Key) {
        let mut shard = self
            .shard(key)
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(c) = shard.counts.get_mut(key) {
            *c = c.saturating_sub(1);
        }
    }
}

/// Kong's `EXPIRATION`: how long a window lasts, in seconds (months and years nominal).
pub(super) fn period_len(period: u8) -> i64 {
    match period {
        0 => 1,
        1 => 60,
        2 => 3600,
        3 => 86_400,
        4 => 2_592_000,
        _ => 31_536_000,
    }
}

/// The start of the current window of `period` at `now` (seconds, UTC), as Kong's
/// `timestamp.get_timestamps`: calendar months and years.
pub(super) fn window_start(period: u8, now: i64) -> i64 {
    match period {
        0..=3 => now - now.rem_euclid(period_len(period)),
        _ => {
            let days = now.div_euclid(86_400);
            let (y, m, _) = civil_from_days(days);
            let month = if period == 4 { m } else { 1 };
            days_from_civil(y, month, 1) * 86_400
        }
    }
}

/// Howard Hinnant's days-from-civil, for the proleptic Gregorian calendar.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar_windows() {
        // 2026-11-29T05:46:30Z
        let now = 1_795_931_190;
        assert_eq!(window_start(1, now), 1_795_931_160);
        assert_eq!(window_start(3, now), 1_795_910_400);
        assert_eq!(window_start(4, now), 1_793_491_200); // 2026-11-01
        assert_eq!(window_start(5, now), 1_767_225_600); // 2026-01-01
        assert_eq!(civil_from_days(days_from_civil(2024, 2, 29)), (2024, 2, 29));
    }

    #[test]
    fn never_more_than_the_limit_across_threads() {
        let key = Key {
            route: None,
            service: None,
            identifier: "threads".into(),
            period: 1,
            window: 0,
        };
        let taken: u64 = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| {
                    s.spawn(|| (0..1000).filter(|_| COUNTERS.try_take(&key, 777).1).count() as u64)
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap_or(0)).sum()
        });
        assert_eq!(taken, 777);
    }
}
