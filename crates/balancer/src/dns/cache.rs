//! The answers of every name looked up, shared by all workers: an answer is used while its
//! TTL runs, then served stale (up to `dns_stale_ttl`) while one refresh runs in the
//! background; failures are remembered for `dns_not_found_ttl` or `dns_error_ttl`. Reading is
//! a read lock and a map lookup.

use super::{Answer, DnsError};
use crate::address::now_micros;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

#[derive(Debug)]
pub(super) struct Entry {
    pub result: Result<Arc<Answer>, DnsError>,
    /// Until when the result is used as it is.
    pub expires: Instant,
    /// Until when an expired answer may still be served while it is refreshed.
    pub stale_until: Instant,
    refreshing: AtomicBool,
    /// No background refresh before this ([`now_micros`]): set after one failed.
    next_refresh: AtomicU64,
}

impl Entry {
    pub fn new(result: Result<Arc<Answer>, DnsError>, expires: Instant, stale: Duration) -> Self {
        let stale_until = match &result {
            Ok(_) => expires + stale,
            Err(_) => expires,
        };
        Entry {
            result,
            expires,
            stale_until,
            refreshing: AtomicBool::new(false),
            next_refresh: AtomicU64::new(0),
        }
    }

    /// Claims the background refresh of this stale entry: false when one is running or a
    /// failed one is too recent.
    pub fn start_refresh(&self) -> bool {
        now_micros() >= self.next_refresh.load(Ordering::Relaxed)
            && !self.refreshing.swap(true, Ordering::AcqRel)
    }

    /// A refresh failed: the stale answer stays, the next try waits `pause`.
    pub fn refresh_failed(&self, pause: Duration) {
        let pause = u64::try_from(pause.as_micros()).unwrap_or(u64::MAX);
        self.next_refresh
            .store(now_micros().saturating_add(pause), Ordering::Relaxed);
        self.refreshing.store(false, Ordering::Release);
    }
}

#[derive(Debug)]
pub(super) struct Cache {
    entries: RwLock<HashMap<String, Arc<Entry>>>,
    capacity: usize,
}

impl Cache {
    pub fn new(capacity: usize) -> Self {
        Cache {
            entries: RwLock::new(HashMap::new()),
            capacity: capacity.max(1),
        }
    }

    pub fn get(&self, name: &str) -> Option<Arc<Entry>> {
        self.entries
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .cloned()
    }

    /// Stores an entry; when the cache is full, entries past their stale time go first, then
    /// the one that expired longest ago.
    pub fn insert(&self, name: &str, entry: Entry) {
        let mut entries = self.entries.write().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= self.capacity && !entries.contains_key(name) {
            let now = Instant::now();
            entries.retain(|_, e| e.stale_until > now);
            if entries.len() >= self.capacity
                && let Some(oldest) = entries
                    .iter()
                    .min_by_key(|(_, e)| e.stale_until)
                    .map(|(k, _)| k.clone())
            {
                entries.remove(&oldest);
            }
        }
        entries.insert(name.to_string(), Arc::new(entry));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::{Record, RecordKind};

    fn answer() -> Arc<Answer> {
        Arc::new(Answer::new(
            RecordKind::A,
            vec![Record::Ip("10.0.0.1".parse().unwrap())],
            Instant::now(),
        ))
    }

    #[test]
    fn a_full_cache_drops_the_oldest() {
        let c = Cache::new(2);
        let now = Instant::now();
        let stale = Duration::from_secs(10);
        c.insert("a", Entry::new(Ok(answer()), now, stale));
        c.insert(
            "b",
            Entry::new(Ok(answer()), now + Duration::from_secs(5), stale),
        );
        c.insert("c", Entry::new(Ok(answer()), now, stale));
        assert!(c.get("a").is_none());
        assert!(c.get("b").is_some() && c.get("c").is_some());
    }

    #[test]
    fn one_refresh_at_a_time_and_a_pause_after_failure() {
        let e = Entry::new(Ok(answer()), Instant::now(), Duration::from_secs(10));
        assert!(e.start_refresh());
        assert!(!e.start_refresh());
        e.refresh_failed(Duration::from_secs(60));
        assert!(!e.start_refresh());
        e.refresh_failed(Duration::ZERO);
        assert!(e.start_refresh());
    }
}
