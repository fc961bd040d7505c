//! The `redis` policy: counters in a Redis shared by every gateway node. What is sent to
//! Redis (the counting scripts) is in `scripts.rs`; how concurrent requests share one script
//! call in `batch.rs`; this is the connection it goes over.
//!
//! One [`RedisPool`] per distinct Redis config, shared by every plugin instance and config
//! snapshot that names it. Its main connection, made off the request path, carries reads,
//! unchecked increments and `sync_rate` syncs, and is what says whether Redis is up; requests'
//! takes go over one connection per thread (see `batch.rs`). When Redis stops answering, the
//! pool says so once per [`OUTAGE_LOG_EVERY`], requests fail at once (the plugin's
//! `fault_tolerant` decides what that means) and a background task reconnects; counting
//! resumes by itself.

use super::CounterError;
use crate::locked;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, ConnectionAddr, ConnectionInfo, RedisConnectionInfo};
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, Weak};
use std::time::{Duration, Instant};
use tokio::runtime::Handle;
use tokio::sync::watch;

mod batch;
mod scripts;

pub(super) use scripts::{Increment, Once, numbers_taken};

/// An outage is logged when it starts, then at most this often while it lasts.
pub const OUTAGE_LOG_EVERY: Duration = Duration::from_secs(60);
/// Reconnection attempts start this far apart and back off to [`RECONNECT_MAX`].
const RECONNECT_MIN: Duration = Duration::from_millis(50);
const RECONNECT_MAX: Duration = Duration::from_secs(1);

/// Kong's `redis` record (`kong/tools/redis/schema.lua`), as a validated config holds it.
/// Two configs with the same fields share one pool.
#[derive(Clone, Deserialize, PartialEq, Eq, Hash)]
pub struct RedisConfig {
    pub host: Option<String>,
    pub port: Option<u16>,
    pub timeout: Option<u64>,
    #[serde(default)]
    pub connect_timeout: Option<u64>,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub database: Option<i64>,
    #[serde(default)]
    pub ssl: Option<bool>,
    #[serde(default)]
    pub ssl_verify: Option<bool>,
    #[serde(default)]
    pub server_name: Option<String>,
}

impl std::fmt::Debug for RedisConfig {
    // The password never reaches a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("database", &self.database)
            .field("ssl", &self.ssl)
            .finish_non_exhaustive()
    }
}

const DEFAULT_TIMEOUT_MS: u64 = 2000;

#[derive(Clone)]
enum State {
    /// Never connected yet: requests wait (up to the timeout) for the first connection.
    Connecting,
    /// Connected; the number tells connections apart, so a late failure on a replaced
    /// connection does not take down its successor.
    Up(MultiplexedConnection, u64),
    /// Lost; requests fail at once until the background task reconnects.
    Down,
}

pub struct RedisPool {
    /// `host:port/db`, for logs and errors (no credentials).
    address: String,
    info: ConnectionInfo,
    timeout: Duration,
    connect_timeout: Duration,
    state: watch::Sender<State>,
    reconnecting: AtomicBool,
    generation: AtomicU64,
    outage_log: Throttle,
    /// Where the main connection and the reconnect task live (the control runtime when the
    /// pool was made while building a snapshot), so no proxy worker drives them.
    runtime: Option<Handle>,
    /// Per thread: requests' takes waiting for the next round trip, and the connection they
    /// go over.
    lanes: Box<[Mutex<batch::Lane>]>,
}

static POOLS: LazyLock<Mutex<HashMap<RedisConfig, Weak<RedisPool>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// Lets a log line through at most once per [`OUTAGE_LOG_EVERY`].
#[derive(Default)]
pub(super) struct Throttle(Mutex<Option<Instant>>);

impl Throttle {
    /// Whether a line may be logged now (noting that it is).
    pub(super) fn due(&self) -> bool {
        let mut last = locked(&self.0);
        let now = Instant::now();
        let due = last.is_none_or(|at| now.duration_since(at) >= OUTAGE_LOG_EVERY);
        if due {
            *last = Some(now);
        }
        due
    }

    /// Forgets the last line; says whether there was one.
    fn reset(&self) -> bool {
        locked(&self.0).take().is_some()
    }
}

impl RedisPool {
    /// The pool for `config`: the one already serving an equal config, else a new one that
    /// starts connecting at once (in the background).
    pub fn shared(config: RedisConfig) -> Result<Arc<RedisPool>, String> {
        let mut pools = locked(&POOLS);
        if let Some(pool) = pools.get(&config).and_then(Weak::upgrade) {
            return Ok(pool);
        }
        pools.retain(|_, p| p.strong_count() > 0);
        let pool = Arc::new(RedisPool::new(&config)?);
        pools.insert(config, Arc::downgrade(&pool));
        drop(pools);
        pool.ensure_connecting();
        Ok(pool)
    }

    fn new(c: &RedisConfig) -> Result<RedisPool, String> {
        let host = c.host.clone().ok_or("redis.host: required field missing")?;
        let port = c.port.unwrap_or(6379);
        let database = c.database.unwrap_or(0);
        let addr = if c.ssl.unwrap_or(false) {
            ConnectionAddr::TcpTls {
                host: host.clone(),
                port,
                insecure: !c.ssl_verify.unwrap_or(false),
                tls_params: None,
            }
        } else {
            ConnectionAddr::Tcp(host.clone(), port)
        };
        let mut redis = RedisConnectionInfo::default().set_db(database);
        if let Some(password) = c.password.as_deref().filter(|p| !p.is_empty()) {
            redis = redis.set_password(password);
            if let Some(username) = c.username.as_deref().filter(|u| !u.is_empty()) {
                redis = redis.set_username(username);
            }
        }
        let info = redis::IntoConnectionInfo::into_connection_info(addr)
            .map_err(|e| e.to_string())?
            .set_redis_settings(redis.set_skip_set_lib_name());
        // Kong's `timeout` bounds every command. Connecting takes the shorter of it and the
        // Enterprise `connect_timeout` (both always present once defaults are filled).
        let timeout = Duration::from_millis(c.timeout.unwrap_or(DEFAULT_TIMEOUT_MS).max(1));
        let connect_timeout = c
            .connect_timeout
            .map_or(timeout, |ms| Duration::from_millis(ms.max(1)).min(timeout));
        let (state, _) = watch::channel(State::Connecting);
        Ok(RedisPool {
            address: format!("{host}:{port}/{database}"),
            info,
            timeout,
            connect_timeout,
            state,
            reconnecting: AtomicBool::new(false),
            generation: AtomicU64::new(0),
            outage_log: Throttle::default(),
            runtime: Handle::try_current().ok(),
            lanes: batch::lanes(),
        })
    }

    /// `host:port/database`.
    pub fn address(&self) -> &str {
        &self.address
    }

    fn unavailable(&self) -> CounterError {
        CounterError::Unavailable(self.address.clone())
    }

    /// Runs `task` where the pool's connections live (the control runtime in a node); false
    /// when there is no runtime yet (a config checked outside a node).
    pub(super) fn spawn<F>(&self, task: F) -> bool
    where
        F: Future<Output = ()> + Send + 'static,
    {
        match self.runtime.clone().or_else(|| Handle::try_current().ok()) {
            Some(runtime) => {
                runtime.spawn(task);
                true
            }
            None => false,
        }
    }

    /// Starts the reconnecting task unless one runs.
    fn ensure_connecting(self: &Arc<Self>) {
        if self.reconnecting.swap(true, Ordering::AcqRel) {
            return;
        }
        if !self.spawn(reconnect(Arc::downgrade(self))) {
            // The first request retries.
            self.reconnecting.store(false, Ordering::Release);
        }
    }

    /// A connection Redis has answered on: a stopped Redis still completes TCP handshakes
    /// (the kernel does), which must not count as Redis being back.
    async fn connect(&self) -> Result<MultiplexedConnection, redis::RedisError> {
        let client = Client::open(self.info.clone())?;
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.connect_timeout))
            .set_response_timeout(Some(self.timeout));
        let mut conn = client
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        redis::cmd("PING").query_async::<()>(&mut conn).await?;
        Ok(conn)
    }

    /// Logs an outage unless one was logged within [`OUTAGE_LOG_EVERY`].
    fn log_outage(&self, error: &dyn std::fmt::Display) {
        if self.outage_log.due() {
            tracing::error!(
                redis = %self.address,
                error = %error,
                "redis unreachable: rate-limiting counters unavailable until it returns (fault_tolerant decides whether requests pass)"
            );
        }
    }

    /// The connection was lost: fail until the background task has a new one.
    fn lost(self: &Arc<Self>, generation: u64, error: &dyn std::fmt::Display) {
        let current = self.state.send_if_modified(|s| {
            let current = matches!(s, State::Up(_, g) if *g == generation);
            if current {
                *s = State::Down;
            }
            current
        });
        if current {
            self.log_outage(error);
            self.ensure_connecting();
        }
    }

    /// A connection to run a command on: at once when up, failing at once when down, waiting
    /// up to the timeout for the first connection.
    async fn connection(self: &Arc<Self>) -> Result<(MultiplexedConnection, u64), CounterError> {
        let current = self.state.borrow().clone();
        match current {
            State::Up(conn, generation) => Ok((conn, generation)),
            State::Down => {
                self.ensure_connecting();
                Err(self.unavailable())
            }
            State::Connecting => {
                self.ensure_connecting();
                let mut rx = self.state.subscribe();
                let ready = tokio::time::timeout(
                    self.timeout,
                    rx.wait_for(|s| !matches!(s, State::Connecting)),
                )
                .await;
                match ready {
                    Ok(Ok(s)) => match &*s {
                        State::Up(conn, generation) => Ok((conn.clone(), *generation)),
                        _ => Err(self.unavailable()),
                    },
                    _ => Err(self.unavailable()),
                }
            }
        }
    }

    /// Runs one command, bounded by the timeout; a connection-level failure marks the pool
    /// down.
    pub(super) async fn run<T, F>(self: &Arc<Self>, f: F) -> Result<T, CounterError>
    where
        F: AsyncFnOnce(&mut MultiplexedConnection) -> redis::RedisResult<T>,
    {
        let connection = self.connection().await?;
        self.run_on(connection, f).await
    }

    /// Runs one command on `connection` (made in pool generation `generation`), as [`run`].
    ///
    /// [`run`]: RedisPool::run
    pub(super) async fn run_on<T, F>(
        self: &Arc<Self>,
        (mut conn, generation): (MultiplexedConnection, u64),
        f: F,
    ) -> Result<T, CounterError>
    where
        F: AsyncFnOnce(&mut MultiplexedConnection) -> redis::RedisResult<T>,
    {
        match tokio::time::timeout(self.timeout, f(&mut conn)).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e))
                if e.is_io_error()
                    || e.is_connection_dropped()
                    || e.is_connection_refusal()
                    || e.is_timeout()
                    || e.is_unrecoverable_error() =>
            {
                self.lost(generation, &e);
                Err(self.unavailable())
            }
            Ok(Err(e)) => Err(CounterError::Redis {
                at: self.address.clone(),
                reason: e.to_string(),
            }),
            Err(_) => {
                self.lost(
                    generation,
                    &format_args!("no answer within {:?}", self.timeout),
                );
                Err(self.unavailable())
            }
        }
    }

    /// Asks Redis whether it answers (used while nothing else is being sent).
    pub(super) async fn ping(self: &Arc<Self>) -> Result<(), CounterError> {
        self.run(async |conn| redis::cmd("PING").query_async::<String>(conn).await)
            .await
            .map(drop)
    }
}

/// Connects until it succeeds or the pool is dropped, logging failures at most once per
/// [`OUTAGE_LOG_EVERY`].
async fn reconnect(pool: Weak<RedisPool>) {
    let mut delay = RECONNECT_MIN;
    loop {
        let Some(p) = pool.upgrade() else { return };
        match p.connect().await {
            Ok(conn) => {
                let was_down = p.outage_log.reset();
                let generation = p.generation.fetch_add(1, Ordering::Relaxed);
                p.state.send_replace(State::Up(conn, generation));
                p.reconnecting.store(false, Ordering::Release);
                if was_down {
                    tracing::warn!(redis = %p.address, "redis reachable again: counting resumed");
                }
                return;
            }
            Err(e) => {
                p.state.send_if_modified(|s| {
                    let first = matches!(s, State::Connecting | State::Up(..));
                    if first {
                        *s = State::Down;
                    }
                    first
                });
                p.log_outage(&e);
            }
        }
        drop(p);
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(RECONNECT_MAX);
    }
}
