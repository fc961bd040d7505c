//! The `local` policy: counters in this process, shared by every worker thread and kept across
//! config changes. A request is counted only if every period still has room, checked and
//! incremented under the counter's lock, so N concurrent clients never get more than the limit
//! through (Kong's local policy reads, then increments later, and can let a burst over).

use super::shards::Shards;
use super::{Limit, Scope, Taken};
use smallvec::SmallVec;
use std::sync::LazyLock;

static COUNTERS: LazyLock<Shards<u64>> = LazyLock::new(Shards::default);

pub fn take(scope: Scope<'_>, limits: &[Limit], now: i64) -> Taken {
    COUNTERS.take(scope, limits, now)
}

pub fn usage(scope: Scope<'_>, periods: &[u8], now: i64) -> SmallVec<[u64; 6]> {
    COUNTERS.usage(scope, periods, now)
}

pub fn add(scope: Scope<'_>, periods: &[u8], now: i64, value: u64) {
    COUNTERS.add(scope, periods, now, value);
}
