//! The redis policy with `sync_rate` > 0 (Kong's periodic sync): a request is counted in this
//! process and decided on what the process knows, and every `sync_rate` seconds one task pushes
//! the new increments to Redis and reads back the totals, which hold every node's increments.
//!
//! A request never waits on Redis. It is decided, per counter, on the total Redis gave back
//! at this node's last sync of that counter plus this node's increments since, which never
//! exceeds the requests really admitted and always includes this node's own: a node refuses
//! only once a limit is really reached, and no node alone admits more than the limit, so n
//! nodes never admit more than n limits. What a node misses is what the others admitted
//! after its last sync of the counter: a counter is synced after every interval in which the
//! node counted on it, so while the node is busy on a counter it lags by about one interval
//! (and after a pause on it, or on its first request, by that much more).
//!
//! Kong (`policies/init.lua`) reads a counter from Redis on the first request after each sync
//! and drops its unsynced increments when a sync fails. Here the sync reads the totals back,
//! so requests keep not waiting, and a failed sync's increments are sent again, numbered so
//! that Redis applies them once even when a sync that timed out had reached it. Until a sync
//! succeeds again, requests get [`CounterError::Unavailable`]: `fault_tolerant` decides, as
//! with the synchronous policy (proxied uncounted, or Kong's 500).
//!
//! One task per distinct Redis config and `sync_rate`, shared by every plugin instance and
//! config snapshot that names them; it syncs one last time when the last of them goes.

use super::redis::{Increment, Once, Throttle, numbers_taken};
use super::shards::{Key, Shards, Tally};
use super::{CounterError, Limit, RedisConfig, RedisPool, Scope, Taken, period_len};
use smallvec::SmallVec;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, Mutex, Weak};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::MissedTickBehavior;

/// A `sync_rate` beyond a year is a year: longer than any window, and a timer that fits.
const MAX_SYNC_RATE: Duration = Duration::from_secs(31_536_000);

/// One counter as this node knows it.
#[derive(Debug, Default)]
struct Synced {
    /// The total Redis returned at the last sync (this node's increments up to it included).
    total: u64,
    /// Increments on their way to Redis in the sync under way.
    sending: u64,
    /// Increments counted since.
    unsent: u64,
}

impl Tally for Synced {
    fn used(&self) -> u64 {
        self.total
            .saturating_add(self.sending)
            .saturating_add(self.unsent)
    }
    fn add(&mut self, n: u64) {
        self.unsent = self.unsent.saturating_add(n);
    }
    fn give_back(&mut self) {
        self.unsent = self.unsent.saturating_sub(1);
    }
}

struct Inner {
    pool: Arc<RedisPool>,
    every: Duration,
    counters: Shards<Synced>,
    /// The last sync failed; cleared by the next one that succeeds.
    failing: AtomicBool,
    /// The sync task was started.
    started: AtomicBool,
    /// Tells the task the last user is gone.
    stop: Notify,
    /// Failures other than Redis being unreachable (which the pool logs), at most once per
    /// interval.
    error_log: Throttle,
}

/// The counters of the plugin instances that share a Redis config and a `sync_rate`.
pub struct RedisSync {
    inner: Arc<Inner>,
}

/// The counters in use, by Redis config and `sync_rate`.
type Syncs = HashMap<(RedisConfig, Duration), Weak<RedisSync>>;

static SYNCS: LazyLock<Mutex<Syncs>> = LazyLock::new(|| Mutex::new(HashMap::new()));

impl RedisSync {
    /// The counters for `config` synced every `sync_rate` seconds: those already serving the
    /// same pair, else new ones whose sync task starts at once.
    pub fn shared(config: RedisConfig, sync_rate: f64) -> Result<Arc<RedisSync>, String> {
        let every = Duration::try_from_secs_f64(sync_rate)
            .map_err(|e| format!("sync_rate: {e}"))?
            .min(MAX_SYNC_RATE);
        let mut syncs = crate::locked(&SYNCS);
        let id = (config, every);
        if let Some(sync) = syncs.get(&id).and_then(Weak::upgrade) {
            return Ok(sync);
        }
        syncs.retain(|_, s| s.strong_count() > 0);
        let sync = Arc::new(RedisSync {
            inner: Arc::new(Inner {
                pool: RedisPool::shared(id.0.clone())?,
                every,
                counters: Shards::default(),
                failing: AtomicBool::new(false),
                started: AtomicBool::new(false),
                stop: Notify::new(),
                error_log: Throttle::default(),
            }),
        });
        syncs.insert(id, Arc::downgrade(&sync));
        drop(syncs);
        sync.ensure_started();
        Ok(sync)
    }

    /// `host:port/database` of the Redis.
    pub fn address(&self) -> &str {
        self.inner.pool.address()
    }

    /// Starts the sync task unless it runs (no runtime yet when the config was only checked).
    fn ensure_started(&self) {
        if self.inner.started.load(Ordering::Acquire)
            || self.inner.started.swap(true, Ordering::AcqRel)
        {
            return;
        }
        if !self.inner.pool.spawn(sync_every(self.inner.clone())) {
            self.inner.started.store(false, Ordering::Release);
        }
    }

    /// Fails while syncs fail, so that `fault_tolerant` decides as when Redis is asked
    /// directly.
    fn available(&self) -> Result<(), CounterError> {
        self.ensure_started();
        if self.inner.failing.load(Ordering::Acquire) {
            Err(CounterError::Unavailable(self.address().to_string()))
        } else {
            Ok(())
        }
    }

    pub fn take(
        &self,
        scope: Scope<'_>,
        limits: &[Limit],
        now: i64,
    ) -> Result<Taken, CounterError> {
        self.available()?;
        Ok(self.inner.counters.take(scope, limits, now))
    }

    pub fn usage(
        &self,
        scope: Scope<'_>,
        periods: &[u8],
        now: i64,
    ) -> Result<SmallVec<[u64; 6]>, CounterError> {
        self.available()?;
        Ok(self.inner.counters.usage(scope, periods, now))
    }

    pub fn add(
        &self,
        scope: Scope<'_>,
        periods: &[u8],
        now: i64,
        value: u64,
    ) -> Result<(), CounterError> {
        self.available()?;
        self.inner.counters.add(scope, periods, now, value);
        Ok(())
    }
}

impl Drop for RedisSync {
    fn drop(&mut self) {
        // The task syncs what is left and ends (a stored permit if it is mid-sync).
        self.inner.stop.notify_one();
    }
}

/// Increments on their way to Redis: sent again as they are (same numbers) until Redis
/// takes them, so they count once.
struct Batch {
    first: u64,
    keys: Vec<Key>,
    increments: Vec<Increment>,
}

/// The sync task's own state.
struct Syncer {
    inner: Arc<Inner>,
    /// Where Redis remembers the last batch number it applied from this task.
    marker: String,
    next: u64,
    /// A batch whose sync failed.
    retry: Option<Batch>,
}

/// Syncs every interval (the next one starting an interval after the last ended when a sync
/// ran long), and once more when the last user is gone.
async fn sync_every(inner: Arc<Inner>) {
    let mut ticks = tokio::time::interval(inner.every);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    ticks.tick().await;
    let mut syncer = Syncer {
        marker: format!("ratelimit:sync:{}", uuid::Uuid::new_v4()),
        inner,
        next: 1,
        retry: None,
    };
    loop {
        tokio::select! {
            _ = ticks.tick() => syncer.sync().await,
            () = syncer.inner.stop.notified() => {
                // A failed batch first, then what was counted since.
                syncer.sync().await;
                if syncer.retry.is_none() {
                    syncer.sync().await;
                }
                return;
            }
        }
    }
}

impl Syncer {
    /// Moves every counter's unsent increments into a new batch; drops the counters of
    /// windows that have ended (their last increments go in this batch).
    fn collect(&mut self) -> Option<Batch> {
        let now = crate::runtime::now_secs();
        let mut keys = Vec::new();
        let mut increments = Vec::new();
        self.inner.counters.each_shard(|shard| {
            shard.retain(|key, c| {
                if c.unsent > 0 {
                    c.sending = c.unsent;
                    c.unsent = 0;
                    increments.push(Increment {
                        key: key.redis_key(),
                        by: c.sending,
                        expire: period_len(key.period),
                    });
                    keys.push(key.clone());
                }
                !key.ended(now)
            });
        });
        if increments.is_empty() {
            return None;
        }
        let first = self.next;
        self.next += numbers_taken(increments.len());
        Some(Batch {
            first,
            keys,
            increments,
        })
    }

    /// Pushes the failed batch again, else the increments counted since the last sync, and
    /// takes the totals back.
    async fn sync(&mut self) {
        let inner = self.inner.clone();
        let Some(batch) = self.retry.take().or_else(|| self.collect()) else {
            if inner.failing.load(Ordering::Acquire) {
                // Nothing to send while failing (requests are not counted then): ask whether
                // Redis is back.
                if inner.pool.ping().await.is_ok() {
                    inner.failing.store(false, Ordering::Release);
                }
            }
            return;
        };
        let once = Once {
            marker: &self.marker,
            first: batch.first,
        };
        match inner.pool.increment(&batch.increments, Some(once)).await {
            Ok(totals) => {
                for (key, total) in batch.keys.iter().zip(totals) {
                    inner.counters.with(key, |c| {
                        c.total = total;
                        c.sending = 0;
                    });
                }
                inner.failing.store(false, Ordering::Release);
            }
            Err(e) => {
                inner.failing.store(true, Ordering::Release);
                if !matches!(e, CounterError::Unavailable(_)) && inner.error_log.due() {
                    tracing::error!(
                        redis = %inner.pool.address(),
                        error = %e,
                        "failed to sync rate-limiting counters to redis; the increments are kept for the next sync"
                    );
                }
                self.retry = Some(batch);
            }
        }
    }
}

impl std::fmt::Debug for RedisSync {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "redis({}, sync_rate {:?})",
            self.address(),
            self.inner.every
        )
    }
}

#[cfg(test)]
mod tests {
    //! Against the Redis at 127.0.0.1:6379, as the integration tests; a database per test,
    //! so that no test shares a pool (bound to its test's runtime) with another.
    use super::*;
    use crate::counters::{key, window_start};

    fn config(database: i64) -> RedisConfig {
        serde_json::from_value(serde_json::json!({
            "host": "127.0.0.1", "port": 6379, "database": database, "timeout": 2000
        }))
        .unwrap()
    }

    #[tokio::test]
    async fn a_numbered_batch_sent_again_counts_once() {
        let pool = RedisPool::shared(config(6)).unwrap();
        let run = uuid::Uuid::new_v4();
        // Over one script call's worth of counters: the pipelined path.
        let increments: Vec<Increment> = (0..1000)
            .map(|i| Increment {
                key: format!("ratelimit:test:{run}:{i}"),
                by: i + 1,
                expire: 60,
            })
            .collect();
        let marker = format!("ratelimit:sync:{run}");
        let once = |first| {
            Some(Once {
                marker: &marker,
                first,
            })
        };
        let expected: Vec<u64> = (1..=1000).collect();
        assert_eq!(
            pool.increment(&increments, once(1)).await.unwrap(),
            expected
        );
        // Sent again (a sync that timed out after Redis ran it): read, not counted.
        assert_eq!(
            pool.increment(&increments, once(1)).await.unwrap(),
            expected
        );
        let next = 1 + numbers_taken(increments.len());
        assert_eq!(next, 3);
        let doubled: Vec<u64> = expected.iter().map(|n| n * 2).collect();
        assert_eq!(
            pool.increment(&increments, once(next)).await.unwrap(),
            doubled
        );
        // Unnumbered increments (response-ratelimiting's) always count.
        let one = &increments[..1];
        assert_eq!(pool.increment(one, None).await.unwrap(), vec![3]);
        assert_eq!(pool.increment(one, None).await.unwrap(), vec![4]);
        let ttl: i64 = pool
            .run(async |c| redis::cmd("TTL").arg(&one[0].key).query_async(c).await)
            .await
            .unwrap();
        assert!((1..=60).contains(&ttl), "{ttl}");
    }

    #[tokio::test]
    async fn a_sync_pushes_the_increments_and_reads_the_totals_back() {
        // An hour between the background task's syncs: this test syncs by hand.
        let sync = RedisSync::shared(config(7), 3600.0).unwrap();
        let mut syncer = Syncer {
            inner: sync.inner.clone(),
            marker: format!("ratelimit:sync:{}", uuid::Uuid::new_v4()),
            next: 1,
            retry: None,
        };
        let run = uuid::Uuid::new_v4().to_string();
        let now = crate::runtime::now_secs();
        let limits = [(3, 10)];
        for used in 0..3 {
            let taken = sync.take(Scope::requests(&run), &limits, now).unwrap();
            assert_eq!(taken.used.as_slice(), &[used]);
        }
        // Another node counted 5 in the meantime.
        let redis_key = key(&Scope::requests(&run), 3, window_start(3, now));
        let other = Increment {
            key: redis_key.clone(),
            by: 5,
            expire: 86_400,
        };
        sync.inner.pool.increment(&[other], None).await.unwrap();
        syncer.sync().await;
        assert!(!sync.inner.failing.load(Ordering::Acquire));
        assert_eq!(syncer.next, 2);
        // 3 here + 5 there, then this request.
        let taken = sync.take(Scope::requests(&run), &limits, now).unwrap();
        assert_eq!(taken.used.as_slice(), &[8]);
        let taken = sync.take(Scope::requests(&run), &limits, now).unwrap();
        assert_eq!(taken.used.as_slice(), &[9]);
        let taken = sync.take(Scope::requests(&run), &limits, now).unwrap();
        assert_eq!(taken.refused, Some(0));
        syncer.sync().await;
        let total: u64 = sync
            .inner
            .pool
            .run(async |c| redis::cmd("GET").arg(&redis_key).query_async(c).await)
            .await
            .unwrap();
        assert_eq!(total, 10);
        // Nothing unsent: the next sync sends nothing.
        syncer.sync().await;
        assert_eq!(syncer.next, 3);
    }
}
