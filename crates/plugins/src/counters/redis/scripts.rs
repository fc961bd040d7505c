//! The redis policy's counting, one Lua script per call: a request's check-and-count in every
//! period (EVALSHA, EVAL when Redis does not know it yet), which increments every period's
//! counter only when none is full, with Kong's keys and expiry (`EXPIRE <period length>` when
//! a counter is created); Redis runs a script alone, so nodes sharing a Redis enforce one
//! combined limit exactly and a refused request counts nowhere. And increments without a
//! check (response-ratelimiting's).

use super::RedisPool;
use crate::counters::{CounterError, Limit, Scope, Taken, key, period_len, window_start};
use smallvec::SmallVec;
use std::sync::{Arc, LazyLock};

static TAKE: LazyLock<redis::Script> = LazyLock::new(|| {
    // KEYS: one counter per period. ARGV: the limits, then the expiries.
    // Returns the usages before this request, then the 1-based index of the first full
    // period (0: counted everywhere).
    redis::Script::new(
        r"
local n = #KEYS
local result = {}
local refused = 0
for i = 1, n do
  local used = tonumber(redis.call('GET', KEYS[i]) or '0')
  result[i] = used
  if refused == 0 and used >= tonumber(ARGV[i]) then
    refused = i
  end
end
if refused == 0 then
  for i = 1, n do
    if redis.call('INCR', KEYS[i]) == 1 then
      redis.call('EXPIRE', KEYS[i], ARGV[n + i])
    end
  end
end
result[n + 1] = refused
return result
",
    )
});

static ADD: LazyLock<redis::Script> = LazyLock::new(|| {
    // KEYS: counters. ARGV: the value, then the expiries.
    redis::Script::new(
        r"
for i = 1, #KEYS do
  redis.call('INCRBY', KEYS[i], ARGV[1])
  if redis.call('TTL', KEYS[i]) == -1 then
    redis.call('EXPIRE', KEYS[i], ARGV[i + 1])
  end
end
return 0
",
    )
});

impl RedisPool {
    pub async fn take(
        self: &Arc<Self>,
        scope: Scope<'_>,
        limits: &[Limit],
        now: i64,
    ) -> Result<Taken, CounterError> {
        let mut invocation = TAKE.prepare_invoke();
        for &(period, _) in limits {
            invocation.key(key(&scope, period, window_start(period, now)));
        }
        for &(_, limit) in limits {
            invocation.arg(limit);
        }
        for &(period, _) in limits {
            invocation.arg(period_len(period));
        }
        let reply: Vec<u64> = self
            .run(async |conn| invocation.invoke_async(conn).await)
            .await?;
        let (refused, used) = reply.split_last().ok_or_else(|| CounterError::Redis {
            at: self.address.clone(),
            reason: "empty reply from the counting script".into(),
        })?;
        Ok(Taken {
            used: used.iter().copied().collect(),
            refused: (*refused as usize).checked_sub(1),
        })
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
        if periods.is_empty() {
            return Ok(());
        }
        let mut invocation = ADD.prepare_invoke();
        for &period in periods {
            invocation.key(key(&scope, period, window_start(period, now)));
        }
        invocation.arg(value);
        for &period in periods {
            invocation.arg(period_len(period));
        }
        self.run(async |conn| invocation.invoke_async::<i64>(conn).await)
            .await
            .map(drop)
    }
}
