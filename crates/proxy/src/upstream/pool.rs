//! Per-worker keepalive pool of upstream HTTP/1.1 connections.
//!
//! Each worker thread owns its pool (no locks, like nginx's per-worker keepalive cache). A
//! connection is checked out for one request and checked back in when the response body has been
//! read to the end; the pool size, requests per connection and idle time follow Kong's
//! `upstream_keepalive_*` settings.

use super::h1::Conn;
use std::cell::RefCell;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Which connections may be reused for a request.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PoolKey {
    pub addr: SocketAddr,
    /// TLS connections: the configuration's id and the server name, so that plain and TLS
    /// connections, and TLS ones made under other settings or for another name, never mix.
    pub tls: Option<(u64, Box<str>)>,
}

struct Idle {
    conn: Box<Conn>,
    since: Instant,
}

/// Keepalive limits (Kong's `upstream_keepalive_pool_size`, `_max_requests`, `_idle_timeout`).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub pool_size: usize,
    /// 0 = unlimited.
    pub max_requests: u64,
    /// Zero = no limit.
    pub idle_timeout: Duration,
}

#[derive(Default)]
struct Pool {
    /// Keyed by address: FxHash, since the keys are not attacker-chosen and this runs per request.
    idle: HashMap<PoolKey, Vec<Idle>, rustc_hash::FxBuildHasher>,
}

thread_local! {
    static POOL: RefCell<Pool> = RefCell::new(Pool::default());
}

/// Takes an idle connection for `key`, skipping expired ones (the caller checks it is alive).
pub fn checkout(key: &PoolKey, limits: &Limits) -> Option<Box<Conn>> {
    POOL.with(|p| {
        let mut p = p.borrow_mut();
        let list = p.idle.get_mut(key)?;
        let now = Instant::now();
        while let Some(idle) = list.pop() {
            let expired = !limits.idle_timeout.is_zero()
                && now.duration_since(idle.since) >= limits.idle_timeout;
            if !expired {
                return Some(idle.conn);
            }
        }
        None
    })
}

/// Returns a connection after its response was read to the end.
pub fn checkin(key: PoolKey, conn: Box<Conn>, limits: &Limits) {
    if limits.pool_size == 0 || (limits.max_requests > 0 && conn.uses >= limits.max_requests) {
        return;
    }
    POOL.with(|p| {
        let mut p = p.borrow_mut();
        let list = p.idle.entry(key).or_default();
        if list.len() < limits.pool_size {
            list.push(Idle {
                conn,
                since: Instant::now(),
            });
        }
    });
}

/// Closes connections idle for longer than the limit; run periodically by each worker.
pub fn sweep(limits: &Limits) {
    if limits.idle_timeout.is_zero() {
        return;
    }
    let now = Instant::now();
    POOL.with(|p| {
        let mut p = p.borrow_mut();
        p.idle.retain(|_, list| {
            list.retain(|i| now.duration_since(i.since) < limits.idle_timeout);
            !list.is_empty()
        });
    });
}

/// Idle connections held by this worker (for tests and status).
pub fn idle_count() -> usize {
    POOL.with(|p| p.borrow().idle.values().map(Vec::len).sum())
}
