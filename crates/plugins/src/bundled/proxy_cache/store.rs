//! The memory strategy: cached responses in one bounded in-memory LRU shared by every worker
//! thread, config snapshot and proxy-cache instance of the node, and by the Admin API's purge
//! endpoints. It stands for Kong's `lua_shared_dict` (by default `kong_db_cache`, sized by
//! `mem_cache_size`): entries weigh what their body and headers take, and the least recently
//! used go first once the total would pass the bound.
//!
//! Kong keeps one dictionary per `memory.dictionary_name`; here each name is a namespace of
//! the same store (the key carries it), under one bound.

use bytes::Bytes;
use moka::policy::EvictionPolicy;
use moka::sync::Cache;
use serde_json::{Map, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Kong's `mem_cache_size` default.
pub const DEFAULT_CAPACITY: u64 = 128 * 1024 * 1024;

/// Kong's `CACHE_VERSION`: the format of a stored entry.
const FORMAT_VERSION: u32 = 1;

/// Bytes an entry costs beyond its body and headers (bookkeeping, key, allocations).
const ENTRY_OVERHEAD: usize = 256;

/// A stored response, as Kong stores it (`GET /proxy-cache/...` shows these fields).
#[derive(Debug, Clone)]
pub struct CachedResponse {
    pub status: u16,
    /// Header fields in the order and spelling the client got them with the Miss.
    pub headers: Vec<(Bytes, Bytes)>,
    pub body: Bytes,
    /// When it was stored, in seconds since the epoch.
    pub timestamp: i64,
    /// Seconds it is fresh for (`cache_ttl`, or what Cache-Control said).
    pub ttl: f64,
    /// The request body, when the request's was read (Kong keeps it for logging plugins).
    pub req_body: Option<Bytes>,
    /// How long the store keeps it (`storage_ttl`, else `ttl`); `None`: until evicted.
    pub keep_for: Option<Duration>,
}

/// Bytes the headers take.
pub fn headers_weight(headers: &[(Bytes, Bytes)]) -> usize {
    headers.iter().map(|(n, v)| n.len() + v.len() + 4).sum()
}

impl CachedResponse {
    fn weight(&self, key: &Key) -> u32 {
        let total = self.body.len()
            + headers_weight(&self.headers)
            + self.req_body.as_ref().map_or(0, Bytes::len)
            + key.0.len()
            + key.1.len()
            + ENTRY_OVERHEAD;
        u32::try_from(total).unwrap_or(u32::MAX)
    }

    /// The entry as Kong's Admin API shows it: repeated header names become arrays, bodies
    /// are text.
    pub fn to_json(&self) -> Value {
        let mut headers = Map::new();
        for (name, value) in &self.headers {
            let name = String::from_utf8_lossy(name).into_owned();
            let value = Value::String(String::from_utf8_lossy(value).into_owned());
            match headers.get_mut(&name) {
                Some(Value::Array(list)) => list.push(value),
                Some(first) => *first = Value::Array(vec![first.take(), value]),
                None => {
                    headers.insert(name, value);
                }
            }
        }
        let ttl = if self.ttl.fract() == 0.0 {
            Value::from(self.ttl as i64)
        } else {
            Value::from(self.ttl)
        };
        serde_json::json!({
            "status": self.status,
            "headers": headers,
            "body": String::from_utf8_lossy(&self.body),
            "body_len": self.body.len(),
            "timestamp": self.timestamp,
            "ttl": ttl,
            "version": FORMAT_VERSION,
            "req_body": self.req_body.as_ref().map(|b| String::from_utf8_lossy(b).into_owned()),
        })
    }
}

/// (dictionary name, cache key).
type Key = (Arc<str>, Arc<str>);

struct KeepFor;

impl moka::Expiry<Key, Arc<CachedResponse>> for KeepFor {
    fn expire_after_create(
        &self,
        _: &Key,
        value: &Arc<CachedResponse>,
        _: Instant,
    ) -> Option<Duration> {
        value.keep_for
    }

    fn expire_after_update(
        &self,
        _: &Key,
        value: &Arc<CachedResponse>,
        _: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        value.keep_for
    }
}

/// The node's response cache.
pub struct ResponseCache {
    entries: Cache<Key, Arc<CachedResponse>>,
    capacity: u64,
}

impl std::fmt::Debug for ResponseCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseCache")
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

impl Default for ResponseCache {
    fn default() -> Self {
        ResponseCache::new(DEFAULT_CAPACITY)
    }
}

impl ResponseCache {
    /// A cache holding at most `capacity` bytes of responses.
    pub fn new(capacity: u64) -> Self {
        let entries = Cache::builder()
            .max_capacity(capacity)
            .weigher(|k: &Key, v: &Arc<CachedResponse>| v.weight(k))
            .eviction_policy(EvictionPolicy::lru())
            .expire_after(KeepFor)
            .support_invalidation_closures()
            .build();
        ResponseCache { entries, capacity }
    }

    /// The bound, in bytes: a response whose body and headers alone pass it is not kept.
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// Whether an entry of `size` bytes (body and headers) can be held at all.
    pub fn fits(&self, size: usize) -> bool {
        (size + ENTRY_OVERHEAD) as u64 <= self.capacity
    }

    pub fn get(&self, dictionary: &Arc<str>, key: &Arc<str>) -> Option<Arc<CachedResponse>> {
        self.entries.get(&(dictionary.clone(), key.clone()))
    }

    /// Looks a key up by text (Admin API).
    pub fn get_str(&self, dictionary: &str, key: &str) -> Option<Arc<CachedResponse>> {
        self.get(&Arc::from(dictionary), &Arc::from(key))
    }

    pub fn insert(&self, dictionary: Arc<str>, key: Arc<str>, response: CachedResponse) {
        self.entries.insert((dictionary, key), Arc::new(response));
    }

    /// Removes one entry; whether it was there.
    pub fn purge(&self, dictionary: &str, key: &str) -> bool {
        self.entries
            .remove(&(Arc::from(dictionary), Arc::from(key)))
            .is_some()
    }

    /// Removes every entry of a dictionary.
    pub fn flush(&self, dictionary: &str) {
        let dictionary: Arc<str> = Arc::from(dictionary);
        if self
            .entries
            .invalidate_entries_if(move |k, _| k.0 == dictionary)
            .is_err()
        {
            self.entries.invalidate_all();
        }
    }

    /// Entries currently held (after pending maintenance; for tests and diagnostics).
    pub fn len(&self) -> u64 {
        self.entries.run_pending_tasks();
        self.entries.entry_count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(body: &'static str, keep_for: Option<Duration>) -> CachedResponse {
        CachedResponse {
            status: 200,
            headers: vec![
                (
                    Bytes::from_static(b"Set-Cookie"),
                    Bytes::from_static(b"a=1"),
                ),
                (
                    Bytes::from_static(b"Set-Cookie"),
                    Bytes::from_static(b"b=2"),
                ),
                (Bytes::from_static(b"X-Cache-Key"), Bytes::from_static(b"k")),
            ],
            body: Bytes::from_static(body.as_bytes()),
            timestamp: 1,
            ttl: 300.0,
            req_body: None,
            keep_for,
        }
    }

    #[test]
    fn entries_by_dictionary_and_key() {
        let c = ResponseCache::new(1 << 20);
        let (d, k): (Arc<str>, Arc<str>) = (Arc::from("kong_db_cache"), Arc::from("k"));
        c.insert(d.clone(), k.clone(), response("body", None));
        assert_eq!(c.get(&d, &k).unwrap().body, "body");
        assert!(c.get_str("other", "k").is_none());
        assert!(c.purge("kong_db_cache", "k"));
        assert!(!c.purge("kong_db_cache", "k"));
        c.insert(d.clone(), k.clone(), response("body", None));
        c.insert(Arc::from("other"), k.clone(), response("body", None));
        c.flush("kong_db_cache");
        assert!(c.get(&d, &k).is_none());
        assert!(c.get_str("other", "k").is_some());
    }

    #[test]
    fn entries_expire_after_their_storage_ttl() {
        let c = ResponseCache::new(1 << 20);
        let (d, k): (Arc<str>, Arc<str>) = (Arc::from("d"), Arc::from("k"));
        c.insert(
            d.clone(),
            k.clone(),
            response("x", Some(Duration::from_millis(50))),
        );
        assert!(c.get(&d, &k).is_some());
        std::thread::sleep(Duration::from_millis(120));
        assert!(c.get(&d, &k).is_none());
    }

    #[test]
    fn the_bound_evicts_least_recently_used() {
        let big = "x".repeat(400);
        let c = ResponseCache::new(2000);
        let d: Arc<str> = Arc::from("d");
        for i in 0..10 {
            let mut r = response("", None);
            r.body = Bytes::from(big.clone());
            c.insert(d.clone(), Arc::from(i.to_string()), r);
        }
        assert!(c.len() <= 2, "{} entries of ~700 bytes in 2000", c.len());
        assert!(c.get_str("d", "9").is_some());
        assert!(!c.fits(2000));
    }

    #[test]
    fn admin_view_groups_repeated_headers() {
        let v = response("hello", None).to_json();
        assert_eq!(
            v["headers"]["Set-Cookie"],
            serde_json::json!(["a=1", "b=2"])
        );
        assert_eq!(v["headers"]["X-Cache-Key"], "k");
        assert_eq!(v["body"], "hello");
        assert_eq!(v["body_len"], 5);
        assert_eq!(v["ttl"], 300);
        assert_eq!(v["version"], 1);
        assert_eq!(v["req_body"], Value::Null);
    }
}
