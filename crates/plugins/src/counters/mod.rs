//! Rate-limit counters shared by rate-limiting and response-ratelimiting: one API over Kong's
//! three policies.
//!
//! - `local` ([`local`]): in this process, checked and incremented under a lock; synchronous,
//!   so a route with the local policy never allocates a future or touches Redis code.
//! - `redis` ([`redis`]): a Lua script against a shared Redis, which runs it alone, so several
//!   gateways enforce one combined limit exactly; the requests that arrive during one round
//!   trip share the next script call; connections pooled per Redis config. With
//!   rate-limiting's `sync_rate` ([`redis_sync`]): counted in this process and synced with
//!   Redis in the background, so requests never wait on it.
//! - `cluster` ([`cluster`]): rows in the node's config store, through
//!   [`crate::runtime::CounterStore`].
//!
//! Every policy offers the same three operations: [`Policy::take`] (count one request in every
//! period unless one of them is full: all or nothing), `usage` (read) and `add` (count without
//! checking, for response-ratelimiting's increments from the upstream).

pub mod cluster;
pub mod local;
pub mod redis;
pub mod redis_sync;
pub mod schema;
mod shards;

use crate::runtime::Runtime;
use smallvec::SmallVec;
use std::sync::Arc;
use uuid::Uuid;

pub use redis::{RedisConfig, RedisPool};
pub use redis_sync::RedisSync;

/// Kong's period names, shortest first; a period is an index into this.
pub const PERIODS: [&str; 6] = ["second", "minute", "hour", "day", "month", "year"];

/// Which plugin counts: it decides the Redis key prefix and the store table, so the two
/// plugins never share counters (as in Kong).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Counting {
    /// rate-limiting: `ratelimit:<route>:<service>:<identifier>:<date>:<period>`.
    Requests,
    /// response-ratelimiting: `response-ratelimit:<route>:<service>:<identifier>:<date>:<name>:<period>`.
    Responses,
}

/// Whose counters: the plugin instance's route and service (Kong's `conf.route_id` /
/// `conf.service_id`: a service-scoped or global plugin counts all its routes together), the
/// identifier and, for response-ratelimiting, the limit's name.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    pub counting: Counting,
    pub route: Option<Uuid>,
    pub service: Option<Uuid>,
    pub identifier: &'a str,
    pub name: Option<&'a str>,
}

#[cfg(test)]
impl<'a> Scope<'a> {
    /// rate-limiting's counters of `identifier` for a global plugin.
    pub(crate) fn requests(identifier: &'a str) -> Scope<'a> {
        Scope {
            counting: Counting::Requests,
            route: None,
            service: None,
            identifier,
            name: None,
        }
    }
}

/// The route and service a plugin instance is scoped to, from the `route_id` / `service_id`
/// its built config carries (see `scope::handler_config`).
pub fn plugin_scope(config: &serde_json::Value) -> (Option<Uuid>, Option<Uuid>) {
    let id = |key: &str| {
        config
            .get(key)
            .and_then(|v| v.as_str())
            .and_then(|s| Uuid::try_parse(s).ok())
    };
    (id("route_id"), id("service_id"))
}

/// A limit: a period (index into [`PERIODS`]) and how many it allows.
pub type Limit = (u8, u64);

/// What [`Policy::take`] found: per limit, in the order given, the usage before this request;
/// and the first limit that was full (nothing was counted then).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Taken {
    pub used: SmallVec<[u64; 6]>,
    pub refused: Option<usize>,
}

/// Why a counter could not be read or written.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CounterError {
    /// Redis is known to be down; the pool reconnects in the background.
    #[error("redis at {0} is unavailable")]
    Unavailable(String),
    #[error("redis at {at}: {reason}")]
    Redis { at: String, reason: String },
    #[error("cluster counters: {0}")]
    Store(String),
}

/// A configured policy, built with the plugin instance.
#[derive(Clone)]
pub enum Policy {
    Local,
    Redis(Arc<RedisPool>),
    /// The redis policy with a `sync_rate`.
    RedisSync(Arc<RedisSync>),
    Cluster,
}

impl std::fmt::Debug for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Policy::Local => f.write_str("local"),
            Policy::Redis(p) => write!(f, "redis({})", p.address()),
            Policy::RedisSync(s) => write!(f, "{s:?}"),
            Policy::Cluster => f.write_str("cluster"),
        }
    }
}

impl Policy {
    /// The policy a validated config names (`policy`, its `redis` record and, for
    /// rate-limiting, `sync_rate`: -1, Kong's default, counts in Redis on every request).
    pub fn from_config(config: &serde_json::Value) -> Result<Policy, String> {
        match config.get("policy").and_then(|p| p.as_str()) {
            Some("redis") => {
                let redis = config.get("redis").cloned().unwrap_or_default();
                let conf: RedisConfig =
                    serde_json::from_value(redis).map_err(|e| format!("redis: {e}"))?;
                let sync_rate = config.get("sync_rate").and_then(serde_json::Value::as_f64);
                match sync_rate.filter(|rate| *rate > 0.0) {
                    Some(rate) => Ok(Policy::RedisSync(RedisSync::shared(conf, rate)?)),
                    None => Ok(Policy::Redis(RedisPool::shared(conf)?)),
                }
            }
            Some("cluster") => Ok(Policy::Cluster),
            _ => Ok(Policy::Local),
        }
    }

    /// Counts one request in every limit's current window unless one is full (then counts
    /// nothing). `now` in seconds.
    pub async fn take(
        &self,
        runtime: &Runtime,
        scope: Scope<'_>,
        limits: &[Limit],
        now: i64,
    ) -> Result<Taken, CounterError> {
        match self {
            Policy::Local => Ok(local::take(scope, limits, now)),
            Policy::Redis(pool) => pool.take(scope, limits, now).await,
            Policy::RedisSync(sync) => sync.take(scope, limits, now),
            Policy::Cluster => cluster::take(runtime, scope, limits, now).await,
        }
    }

    /// The usage of each period's current window.
    pub async fn usage(
        &self,
        runtime: &Runtime,
        scope: Scope<'_>,
        periods: &[u8],
        now: i64,
    ) -> Result<SmallVec<[u64; 6]>, CounterError> {
        match self {
            Policy::Local => Ok(local::usage(scope, periods, now)),
            Policy::Redis(pool) => pool.usage(scope, periods, now).await,
            Policy::RedisSync(sync) => sync.usage(scope, periods, now),
            Policy::Cluster => cluster::usage(runtime, scope, periods, now).await,
        }
    }

    /// Adds `value` to each period's current window, without a limit.
    pub async fn add(
        &self,
        runtime: &Runtime,
        scope: Scope<'_>,
        periods: &[u8],
        now: i64,
        value: u64,
    ) -> Result<(), CounterError> {
        match self {
            Policy::Local => {
                local::add(scope, periods, now, value);
                Ok(())
            }
            Policy::Redis(pool) => pool.add(scope, periods, now, value).await,
            Policy::RedisSync(sync) => sync.add(scope, periods, now, value),
            Policy::Cluster => cluster::add(runtime, scope, periods, now, value).await,
        }
    }
}

/// Kong's `EXPIRATION`: how long a window lasts, in seconds (months and years nominal).
pub fn period_len(period: u8) -> i64 {
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
pub fn window_start(period: u8, now: i64) -> i64 {
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

/// A period's name (`second` ... `year`).
pub fn period_name(period: u8) -> &'static str {
    PERIODS.get(usize::from(period)).copied().unwrap_or("year")
}

const EMPTY_UUID: Uuid = Uuid::nil();

/// Kong's Redis key for a counter (`get_local_key` of both plugins' policies): the window
/// start in milliseconds, a missing route or service as the nil UUID.
pub fn key(scope: &Scope<'_>, period: u8, window: i64) -> String {
    // Built by hand, not with format!: the redis policy makes one per period per request.
    let mut uuid = Uuid::encode_buffer();
    let date = window * 1000;
    let period = period_name(period);
    let name = match scope.counting {
        Counting::Responses => scope.name,
        Counting::Requests => None,
    };
    let prefix = match name {
        Some(_) => "response-ratelimit:",
        None => "ratelimit:",
    };
    let mut key = String::with_capacity(
        prefix.len() + 2 * 37 + scope.identifier.len() + 21 + name.map_or(0, |n| n.len() + 1) + 7,
    );
    key.push_str(prefix);
    for id in [scope.route, scope.service] {
        key.push_str(
            id.unwrap_or(EMPTY_UUID)
                .hyphenated()
                .encode_lower(&mut uuid),
        );
        key.push(':');
    }
    key.push_str(scope.identifier);
    key.push(':');
    key.push_str(itoa::Buffer::new().format(date));
    key.push(':');
    if let Some(name) = name {
        key.push_str(name);
        key.push(':');
    }
    key.push_str(period);
    key
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
    fn kong_keys() {
        let route = Uuid::from_u128(1);
        let scope = Scope {
            counting: Counting::Requests,
            route: Some(route),
            service: None,
            identifier: "127.0.0.1",
            name: None,
        };
        assert_eq!(
            key(&scope, 1, 1_795_931_160),
            format!(
                "ratelimit:{route}:00000000-0000-0000-0000-000000000000:127.0.0.1:1795931160000:minute"
            )
        );
        let scope = Scope {
            counting: Counting::Responses,
            name: Some("videos"),
            ..scope
        };
        assert_eq!(
            key(&scope, 0, 5),
            format!(
                "response-ratelimit:{route}:00000000-0000-0000-0000-000000000000:127.0.0.1:5000:videos:second"
            )
        );
    }
}
