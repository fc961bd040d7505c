//! Concurrent takes on one pool share round trips (group commit). A request queues its take
//! in its thread's lane; the one that finds no flusher running spawns one on its own runtime,
//! which sends everything queued as one `TAKE` call over the lane's own connection, answers
//! each request, and goes again while more queued in the meantime. A lone request goes at
//! once; under load a batch is what arrived during the previous round trip. Answers are what
//! counting the requests one at a time gives.
//!
//! Lanes are per thread so that a proxy worker (one thread, its own runtime) queues, sends,
//! reads the reply and answers without waking any other thread: the connection's driver task
//! runs on the runtime that made it, the worker's own.

use super::RedisPool;
use super::scripts::{Counted, Group};
use crate::counters::{CounterError, Limit, Scope, Taken, key, window_start};
use crate::locked;
use redis::aio::MultiplexedConnection;
use smallvec::SmallVec;
use std::sync::{Arc, Mutex};
use tokio::runtime;
use tokio::sync::oneshot;

/// Requests per round trip at most (the rest go in the next), so that one script never keeps
/// Redis, which runs it alone, busy for long.
const BATCH_MAX: usize = 512;

/// A queued take: one counter per limit, the limits, and where its answer goes.
struct Pending {
    keys: SmallVec<[String; 6]>,
    limits: SmallVec<[Limit; 6]>,
    reply: oneshot::Sender<Result<Taken, CounterError>>,
}

/// Lanes per pool: threads beyond this many share lanes (correct, just less private).
const LANES: usize = 16;

static NEXT_LANE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

thread_local! {
    /// This thread's lane in every pool.
    static LANE: usize = NEXT_LANE.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % LANES;
}

#[derive(Default)]
pub(super) struct Lane {
    pending: Vec<Pending>,
    /// A flusher runs and will see whatever is queued.
    flushing: bool,
    /// The lane's connection, the pool generation it was made in (one made before the pool
    /// last lost Redis is not used again) and the runtime that drives it (a lane used from
    /// another runtime, or after its runtime shut down, makes its own).
    connection: Option<(MultiplexedConnection, u64, Option<runtime::Id>)>,
}

/// The lanes of one pool.
pub(super) fn lanes() -> Box<[Mutex<Lane>]> {
    (0..LANES).map(|_| Mutex::default()).collect()
}

impl RedisPool {
    /// Counts one request in every limit's window unless one is full (then nowhere), in the
    /// next round trip, with whatever else is queued by then.
    pub async fn take(
        self: &Arc<Self>,
        scope: Scope<'_>,
        limits: &[Limit],
        now: i64,
    ) -> Result<Taken, CounterError> {
        let (reply, answer) = oneshot::channel();
        let pending = Pending {
            keys: limits
                .iter()
                .map(|&(period, _)| key(&scope, period, window_start(period, now)))
                .collect(),
            limits: limits.into(),
            reply,
        };
        let lane = LANE.with(|lane| *lane);
        let start = {
            let mut queue = locked(self.lane(lane));
            queue.pending.push(pending);
            !std::mem::replace(&mut queue.flushing, true)
        };
        if start {
            // On this thread's runtime, with the lane's connection made there.
            tokio::spawn(flush(self.clone(), lane));
        }
        // No answer: the flusher was dropped (its runtime shut down).
        answer.await.unwrap_or_else(|_| Err(self.unavailable()))
    }

    fn lane(&self, lane: usize) -> &Mutex<Lane> {
        // In range: a lane number is below LANES, the number of lanes.
        &self.lanes[lane % self.lanes.len()]
    }

    /// The lane's connection, made on this runtime when the lane has none from the pool's
    /// current generation. Fails at once while the pool knows Redis is down.
    async fn lane_connection(
        self: &Arc<Self>,
        lane: usize,
    ) -> Result<(MultiplexedConnection, u64), CounterError> {
        let (_, generation) = self.connection().await?;
        let here = runtime::Handle::try_current().ok().map(|h| h.id());
        if let Some((conn, g, driver)) = &locked(self.lane(lane)).connection
            && *g == generation
            && *driver == here
        {
            return Ok((conn.clone(), generation));
        }
        match tokio::time::timeout(self.timeout, self.connect()).await {
            Ok(Ok(conn)) => {
                locked(self.lane(lane)).connection = Some((conn.clone(), generation, here));
                Ok((conn, generation))
            }
            Ok(Err(e)) => {
                self.lost(generation, &e);
                Err(self.unavailable())
            }
            Err(_) => {
                let waited = format_args!("no connection within {:?}", self.timeout);
                self.lost(generation, &waited);
                Err(self.unavailable())
            }
        }
    }

    /// Counts a batch in one round trip and answers each of its requests.
    async fn take_batch(self: &Arc<Self>, lane: usize, batch: &mut Vec<Pending>) {
        // A request that went away while queued is not counted.
        batch.retain(|p| !p.reply.is_closed());
        if batch.is_empty() {
            return;
        }
        // Requests on the same counters with the same limits form a group; a request's place
        // is its group and its rank there, in arrival order.
        let mut groups: Vec<Group<'_>> = Vec::new();
        let mut places: Vec<(usize, u64)> = Vec::with_capacity(batch.len());
        // Seeded hashing: the keys hold client-chosen identifiers.
        let mut index: hashbrown::HashMap<(&[String], &[Limit]), usize> =
            hashbrown::HashMap::default();
        for p in batch.iter() {
            let g = *index
                .entry((p.keys.as_slice(), p.limits.as_slice()))
                .or_insert_with(|| {
                    groups.push(Group {
                        keys: &p.keys,
                        limits: &p.limits,
                        n: 0,
                    });
                    groups.len() - 1
                });
            places.push((g, groups[g].n as u64));
            groups[g].n += 1;
        }
        let counted = match self.lane_connection(lane).await {
            Ok(connection) => self.count(connection, &groups).await,
            Err(e) => Err(e),
        };
        drop((groups, index));
        let requests = batch.drain(..).zip(places);
        match counted {
            Ok(counted) => {
                for (p, (g, rank)) in requests {
                    let answer = counted
                        .get(g)
                        .and_then(|c| answer(c, &p.limits, rank))
                        .ok_or_else(|| CounterError::Redis {
                            at: self.address.clone(),
                            reason: "impossible counts from the counting script".into(),
                        });
                    // The request may be gone (its client left).
                    let _ = p.reply.send(answer);
                }
            }
            Err(e) => {
                for (p, _) in requests {
                    let _ = p.reply.send(Err(e.clone()));
                }
            }
        }
    }
}

/// Sends what is queued, a batch per round trip, until nothing is.
async fn flush(pool: Arc<RedisPool>, lane: usize) {
    let mut running = Running {
        pool: &pool,
        lane,
        done: false,
    };
    let mut batch = Vec::new();
    loop {
        {
            let mut queue = locked(pool.lane(lane));
            if queue.pending.is_empty() {
                // Under the lock: a request queued after this starts a flusher of its own.
                queue.flushing = false;
                running.done = true;
                return;
            }
            if queue.pending.len() <= BATCH_MAX {
                std::mem::swap(&mut queue.pending, &mut batch);
            } else {
                batch.extend(queue.pending.drain(..BATCH_MAX));
            }
        }
        pool.take_batch(lane, &mut batch).await;
    }
}

/// A flusher dropped before it finished (its runtime shut down) fails what is queued, whose
/// requests would otherwise wait forever, and lets the next request start a flusher. The
/// batch it was sending fails with it: those answers' senders go with the future.
struct Running<'a> {
    pool: &'a RedisPool,
    lane: usize,
    done: bool,
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let stranded = {
            let mut queue = locked(self.pool.lane(self.lane));
            queue.flushing = false;
            std::mem::take(&mut queue.pending)
        };
        drop(stranded);
    }
}

/// The answer to the request of rank `rank` (from 0, in arrival order) in a group `TAKE`
/// counted: what counting the group's requests one at a time gives. The first `admitted`
/// were counted, each on top of those before it; the rest were refused by the first period
/// they found full. None for counts `TAKE` cannot give.
fn answer(counted: &Counted, limits: &[Limit], rank: u64) -> Option<Taken> {
    let before = rank.min(counted.admitted);
    let used: SmallVec<[u64; 6]> = counted.usage.iter().map(|u| u + before).collect();
    if rank < counted.admitted {
        return Some(Taken {
            used,
            refused: None,
        });
    }
    let refused = used
        .iter()
        .zip(limits)
        .position(|(&u, &(_, limit))| u >= limit)?;
    Some(Taken {
        used,
        refused: Some(refused),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use smallvec::smallvec;

    fn counted(usage: &[u64], admitted: u64) -> Counted {
        Counted {
            usage: usage.into(),
            admitted,
        }
    }

    fn answers(c: &Counted, limits: &[Limit], n: u64) -> Vec<Option<Taken>> {
        (0..n).map(|rank| answer(c, limits, rank)).collect()
    }

    fn admitted(used: &[u64]) -> Option<Taken> {
        Some(Taken {
            used: used.into(),
            refused: None,
        })
    }

    fn refused(used: &[u64], by: usize) -> Option<Taken> {
        Some(Taken {
            used: used.into(),
            refused: Some(by),
        })
    }

    #[test]
    fn a_group_within_its_limit_is_admitted_one_after_another() {
        // 3 requests, second limit 10 with 4 used, minute limit 100 with 50 used.
        let limits = [(0, 10), (1, 100)];
        let c = counted(&[4, 50], 3);
        assert_eq!(
            answers(&c, &limits, 3),
            [admitted(&[4, 50]), admitted(&[5, 51]), admitted(&[6, 52])]
        );
    }

    #[test]
    fn past_the_room_left_requests_are_refused_by_the_first_full_period() {
        // Hour 5 (3 used) has room for 2, second 10 (0 used) for 10: 2 of 4 admitted, the
        // rest refused by the hour (index 1), seeing the 2 admitted ones.
        let limits = [(0, 10), (2, 5)];
        let c = counted(&[0, 3], 2);
        assert_eq!(
            answers(&c, &limits, 4),
            [
                admitted(&[0, 3]),
                admitted(&[1, 4]),
                refused(&[2, 5], 1),
                refused(&[2, 5], 1),
            ]
        );
        // Both periods fill at once: the first one refuses.
        let limits = [(0, 2), (1, 2)];
        let c = counted(&[0, 0], 2);
        assert_eq!(answers(&c, &limits, 3)[2], refused(&[2, 2], 0));
    }

    #[test]
    fn a_period_already_over_its_limit_refuses_the_whole_group() {
        // The minute is over its limit (another source added to it): nothing admitted, the
        // second's usage unchanged, the minute refuses.
        let limits = [(0, 10), (1, 20)];
        let c = counted(&[3, 25], 0);
        assert_eq!(
            answers(&c, &limits, 2),
            [refused(&[3, 25], 1), refused(&[3, 25], 1)]
        );
    }

    #[test]
    fn counts_serial_taking_cannot_give_are_no_answer() {
        // Refused with room left everywhere.
        assert_eq!(answer(&counted(&[1], 1), &[(0, 10)], 1), None);
        // A well-formed group still answers.
        let taken = answer(&counted(&[9], 1), &[(0, 10)], 0);
        assert_eq!(
            taken,
            Some(Taken {
                used: smallvec![9],
                refused: None
            })
        );
    }

    // Against the Redis at 127.0.0.1:6379, as the integration tests; a database of its own,
    // so that no other test shares this pool (bound to this test's runtime).
    #[tokio::test]
    async fn concurrent_takes_share_a_script_call_and_count_one_at_a_time() {
        let config = serde_json::json!({"host": "127.0.0.1", "port": 6379, "database": 8});
        let pool = RedisPool::shared(serde_json::from_value(config).unwrap()).unwrap();
        let run = uuid::Uuid::new_v4().to_string();
        let now = 1_795_931_190;
        let spawn = |limits: &'static [Limit], identifier: String| {
            let pool = pool.clone();
            tokio::spawn(async move {
                pool.take(Scope::requests(&identifier), limits, now)
                    .await
                    .unwrap()
            })
        };
        // Queued together on this one-thread runtime before the flusher first runs.
        let tasks: Vec<_> = (0..50)
            .map(|_| spawn(&[(2, 30), (3, 1000)], run.clone()))
            .collect();
        let mut taken = Vec::new();
        for t in tasks {
            taken.push(t.await.unwrap());
        }
        let (admitted, refused): (Vec<_>, Vec<_>) =
            taken.into_iter().partition(|t| t.refused.is_none());
        let mut used: Vec<_> = admitted.iter().map(|t| t.used.to_vec()).collect();
        used.sort();
        assert_eq!(used, (0..30).map(|j| vec![j, j]).collect::<Vec<_>>());
        for t in &refused {
            assert_eq!(t.used.as_slice(), &[30, 30]);
            assert_eq!(t.refused, Some(0));
        }
        let scope = Scope::requests(&run);
        let counters = [(2, 30), (3, 30)]
            .map(|(period, want)| (key(&scope, period, window_start(period, now)), want));
        for (key, want) in &counters {
            let total: u64 = pool
                .run(async |c| redis::cmd("GET").arg(key).query_async(c).await)
                .await
                .unwrap();
            assert_eq!(total, *want, "{key}");
        }
        let ttl: i64 = pool
            .run(async |c| redis::cmd("TTL").arg(&counters[0].0).query_async(c).await)
            .await
            .unwrap();
        assert!((1..=3600).contains(&ttl), "{ttl}");

        // Two groups on one counter with different limits (an old and a new config): each
        // group sees what the one before it admitted, as requests taken one at a time would.
        let other = format!("{run}-other");
        let tasks: Vec<_> = (0..20)
            .map(|i| {
                let limits: &'static [Limit] = if i % 2 == 0 { &[(2, 5)] } else { &[(2, 8)] };
                spawn(limits, other.clone())
            })
            .collect();
        let mut admitted = 0;
        for t in tasks {
            admitted += u64::from(t.await.unwrap().refused.is_none());
        }
        assert_eq!(admitted, 8);
    }

    // A lane outlives the runtime that used it (a thread can run one runtime after another;
    // threads beyond the number of lanes share them). A flusher dropped with its runtime must
    // not leave the lane waiting for it, and the lane's connection, whose driver task died with
    // that runtime, must not be used from the next one.
    #[test]
    fn a_lane_keeps_counting_after_its_runtime_shuts_down() {
        const LIMITS: &[Limit] = &[(2, 1000)];
        let now = 1_795_931_190;
        let run = uuid::Uuid::new_v4().to_string();
        let current = || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
        };
        let control = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let config = serde_json::json!({"host": "127.0.0.1", "port": 6379, "database": 9});
        let pool = control.block_on(async {
            RedisPool::shared(serde_json::from_value(config).unwrap()).unwrap()
        });

        let first = current();
        first.block_on(async {
            // Makes this thread's lane connection, on this runtime.
            let taken = pool.take(Scope::requests(&run), LIMITS, now).await;
            assert_eq!(taken.unwrap().refused, None);
            // Then leaves takes queued or in flight when the runtime goes.
            for _ in 0..20 {
                let (pool, run) = (pool.clone(), run.clone());
                tokio::spawn(async move {
                    let _ = pool.take(Scope::requests(&run), LIMITS, now).await;
                });
            }
            tokio::task::yield_now().await;
            tokio::task::yield_now().await;
        });
        drop(first);

        let second = current();
        let taken = second.block_on(async {
            let take = pool.take(Scope::requests(&run), LIMITS, now);
            tokio::time::timeout(std::time::Duration::from_secs(5), take).await
        });
        let taken = taken.expect("the take waited for a flusher that is gone");
        assert_eq!(taken.unwrap().refused, None);
    }
}
