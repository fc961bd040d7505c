//! What the redis policy sends to Redis, as Lua scripts (EVALSHA, EVAL when Redis does not
//! know one yet); Redis runs a script alone, so nodes sharing a Redis enforce one combined
//! limit exactly. `TAKE` counts a batch of requests (`batch.rs` gathers them): per group of
//! requests on the same counters, as many as every period still has room for, in all periods
//! or none, with Kong's keys and expiry (`EXPIRE <period length>` when a counter is created); a
//! refused request counts nowhere. `INCRBY` increments without a check and returns the totals:
//! response-ratelimiting's, and `sync_rate`'s batches.

use super::RedisPool;
use crate::counters::{CounterError, Limit, Scope, key, period_len, window_start};
use redis::aio::MultiplexedConnection;
use smallvec::SmallVec;
use std::sync::{Arc, LazyLock};

static TAKE: LazyLock<redis::Script> = LazyLock::new(|| {
    // KEYS: each group's counters, one per period. ARGV per group: its number of periods, its
    // number of requests n, then per period the limit and the expiry. Per group, in order:
    // admits k = min(n, the least room left in any period), at least 0, adds k to every
    // counter, and returns the usages before, then k.
    redis::Script::new(
        r"
local result = {}
local key, arg = 0, 1
while arg <= #ARGV do
  local periods = tonumber(ARGV[arg])
  local k = tonumber(ARGV[arg + 1])
  for i = 1, periods do
    local used = tonumber(redis.call('GET', KEYS[key + i]) or '0')
    result[#result + 1] = used
    k = math.min(k, tonumber(ARGV[arg + 2 * i]) - used)
  end
  if k > 0 then
    for i = 1, periods do
      if redis.call('INCRBY', KEYS[key + i], k) == k then
        redis.call('EXPIRE', KEYS[key + i], ARGV[arg + 2 * i + 1])
      end
    end
  else
    k = 0
  end
  result[#result + 1] = k
  key = key + periods
  arg = arg + 2 + 2 * periods
end
return result
",
    )
});

static INCRBY: LazyLock<redis::Script> = LazyLock::new(|| {
    // KEYS: a marker, then the counters. ARGV: a batch number, then per counter its increment
    // and the expiry it gets when the increment creates it. Returns the counters' totals.
    // Batch 0 is always applied. A numbered batch is applied only when its number is above
    // the marker's, which it then becomes (for an hour): a batch sent again after a timeout
    // that Redis had run after all only reads the totals.
    redis::Script::new(
        r"
local batch = tonumber(ARGV[1])
local fresh = batch == 0 or batch > tonumber(redis.call('GET', KEYS[1]) or '0')
local totals = {}
for i = 2, #KEYS do
  if fresh then
    totals[i - 1] = redis.call('INCRBY', KEYS[i], ARGV[2 * i - 2])
    if redis.call('TTL', KEYS[i]) == -1 then
      redis.call('EXPIRE', KEYS[i], ARGV[2 * i - 1])
    end
  else
    totals[i - 1] = tonumber(redis.call('GET', KEYS[i]) or '0')
  end
end
if fresh and batch > 0 then
  redis.call('SET', KEYS[1], batch, 'EX', 3600)
end
return totals
",
    )
});

/// Counters per script call when many are incremented at once, so that one call never
/// keeps Redis (which runs a script alone) busy for long.
const INCRBY_CHUNK: usize = 512;

/// One counter to increment: its key, by how much, and the expiry (seconds) it gets when
/// the increment creates it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(in crate::counters) struct Increment {
    pub key: String,
    pub by: u64,
    pub expire: i64,
}

/// Increments to apply at most once however often they are sent: the script calls they
/// take (one per [`INCRBY_CHUNK`] counters) are numbered from `first`, and Redis keeps the
/// last number applied under `marker`. Numbers only grow.
#[derive(Debug, Clone, Copy)]
pub(in crate::counters) struct Once<'a> {
    pub marker: &'a str,
    pub first: u64,
}

/// How many numbers a [`Once`] batch of `n` increments takes.
pub(in crate::counters) fn numbers_taken(n: usize) -> u64 {
    n.div_ceil(INCRBY_CHUNK) as u64
}

/// Requests on the same counters (`keys`, one per limit) with the same limits: `n` of them.
pub(super) struct Group<'a> {
    pub keys: &'a [String],
    pub limits: &'a [Limit],
    pub n: usize,
}

/// What `TAKE` did for a group: each counter's usage before it, and how many of its
/// requests it admitted (counted in every period).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Counted {
    pub usage: SmallVec<[u64; 6]>,
    pub admitted: u64,
}

impl RedisPool {
    /// Counts a batch's groups in one `TAKE` call over `connection` (a lane's, with its
    /// generation): per group, in order, what it did.
    pub(super) async fn count(
        self: &Arc<Self>,
        connection: (MultiplexedConnection, u64),
        groups: &[Group<'_>],
    ) -> Result<Vec<Counted>, CounterError> {
        let mut invocation = TAKE.prepare_invoke();
        for group in groups {
            invocation.arg(group.limits.len()).arg(group.n);
            for (key, &(period, limit)) in group.keys.iter().zip(group.limits) {
                invocation.key(key).arg(limit).arg(period_len(period));
            }
        }
        let reply: Vec<u64> = self
            .run_on(connection, async |conn| invocation.invoke_async(conn).await)
            .await?;
        let mut reply = reply.into_iter();
        let counted: Option<Vec<Counted>> = groups
            .iter()
            .map(|group| {
                let usage: SmallVec<_> = reply.by_ref().take(group.limits.len()).collect();
                let admitted = reply.next()?;
                (usage.len() == group.limits.len() && admitted <= group.n as u64)
                    .then_some(Counted { usage, admitted })
            })
            .collect();
        match counted {
            Some(counted) if reply.next().is_none() => Ok(counted),
            _ => Err(CounterError::Redis {
                at: self.address.clone(),
                reason: "unexpected reply from the counting script".into(),
            }),
        }
    }

    pub async fn usage(
        self: &Arc<Self>,
        scope: Scope<'_>,
        periods: &[u8],
        now: i64,
    ) -> Result<SmallVec<[u64; 6]>, CounterError> {
        let mut cmd = redis::cmd("MGET");
        for &period in periods {
            cmd.arg(key(&scope, period, window_start(period, now)));
        }
        let values: Vec<Option<u64>> = self.run(async |conn| cmd.query_async(conn).await).await?;
        Ok(values.into_iter().map(Option::unwrap_or_default).collect())
    }

    pub async fn add(
        self: &Arc<Self>,
        scope: Scope<'_>,
        periods: &[u8],
        now: i64,
        value: u64,
    ) -> Result<(), CounterError> {
        let increments: Vec<Increment> = periods
            .iter()
            .map(|&period| Increment {
                key: key(&scope, period, window_start(period, now)),
                by: value,
                expire: period_len(period),
            })
            .collect();
        self.increment(&increments, None).await.map(drop)
    }

    /// Adds each increment to its counter and returns the counters' totals, in one round
    /// trip however many there are; with `once`, at most once (see [`Once`]).
    pub(in crate::counters) async fn increment(
        self: &Arc<Self>,
        increments: &[Increment],
        once: Option<Once<'_>>,
    ) -> Result<Vec<u64>, CounterError> {
        let calls: Vec<_> = increments
            .chunks(INCRBY_CHUNK)
            .zip(0..)
            .map(|(chunk, i)| {
                let mut call = INCRBY.prepare_invoke();
                // Batch 0 never reads its marker.
                call.key(once.map_or("ratelimit:unnumbered", |o| o.marker))
                    .arg(once.map_or(0, |o| o.first + i));
                for inc in chunk {
                    call.key(&inc.key).arg(inc.by).arg(inc.expire);
                }
                call
            })
            .collect();
        let totals: Vec<u64> = match calls.as_slice() {
            [] => Vec::new(),
            // EVALSHA, loading the script when Redis does not know it.
            [call] => self.run(async |conn| call.invoke_async(conn).await).await?,
            // Pipelined: the script is loaded first, so no call can miss it.
            calls => {
                let mut pipe = redis::pipe();
                pipe.load_script(&INCRBY).ignore();
                for call in calls {
                    pipe.invoke_script(call);
                }
                let totals: Vec<Vec<u64>> =
                    self.run(async |conn| pipe.query_async(conn).await).await?;
                totals.into_iter().flatten().collect()
            }
        };
        if totals.len() != increments.len() {
            return Err(CounterError::Redis {
                at: self.address.clone(),
                reason: format!(
                    "{} totals for {} counters from the counting script",
                    totals.len(),
                    increments.len()
                ),
            });
        }
        Ok(totals)
    }
}
