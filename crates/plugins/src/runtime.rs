//! State plugins write while serving requests, kept outside the config snapshot: writing an
//! OAuth 2.0 token must not rebuild the router, and tokens must outlive the process where the
//! store is durable.
//!
//! The node hands a [`Runtime`] to the proxy, which gives it to every request's [`crate::Ctx`].
//! Its stores are object-safe traits the node implements over its config store (SQLite: the
//! rows survive a restart); [`MemoryOAuth2Store`] serves DB-less nodes and tests (tokens live
//! as long as the process).

pub use crate::bundled::proxy_cache::{CachedResponse, ResponseCache, dictionary_of};
use crate::handler::PluginError;
use crate::locked;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// A store operation's future.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, PluginError>> + Send + 'a>>;

/// Seconds since the epoch.
pub fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// An `oauth2_authorization_codes` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationCode {
    pub id: Uuid,
    pub created_at: i64,
    pub service: Option<Uuid>,
    pub credential: Uuid,
    pub code: String,
    pub authenticated_userid: Option<String>,
    pub scope: Option<String>,
    pub challenge: Option<String>,
    pub challenge_method: Option<String>,
    pub plugin: Option<Uuid>,
    /// Seconds after `created_at` the code is gone (Kong: 300).
    pub ttl: Option<i64>,
}

/// An `oauth2_tokens` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub id: Uuid,
    pub created_at: i64,
    pub service: Option<Uuid>,
    pub credential: Uuid,
    pub expires_in: i64,
    pub access_token: String,
    pub refresh_token: Option<String>,
    pub authenticated_userid: Option<String>,
    pub scope: Option<String>,
    /// Seconds after `created_at` the row (and its refresh token) is gone (Kong's
    /// `refresh_token_ttl`).
    pub ttl: Option<i64>,
}

/// Kong's largest relative `ttl`; larger values are absolute times (as exports write them).
const MAX_RELATIVE_TTL: i64 = 100_000_000;

fn row_gone(created_at: i64, ttl: Option<i64>, now: i64) -> bool {
    match ttl {
        None | Some(0) => false,
        Some(t) if t > MAX_RELATIVE_TTL => now >= t,
        Some(t) => now >= created_at.saturating_add(t),
    }
}

impl AuthorizationCode {
    /// Whether the row outlived its `ttl` (a store that does not purge still has it).
    pub fn is_gone(&self, now: i64) -> bool {
        row_gone(self.created_at, self.ttl, now)
    }
}

impl Token {
    /// Whether the row outlived its `ttl`: neither token works any more.
    pub fn is_gone(&self, now: i64) -> bool {
        row_gone(self.created_at, self.ttl, now)
    }

    /// Whether the access token expired (`expires_in` 0: never), Kong's rule
    /// `now - created_at > expires_in`.
    pub fn is_expired(&self, now: i64) -> bool {
        self.expires_in > 0 && now - self.created_at > self.expires_in
    }
}

/// Where the oauth2 plugin keeps its codes and tokens. Object-safe: the node implements it
/// over its config store.
pub trait OAuth2Store: Send + Sync + 'static {
    fn insert_code(&self, code: AuthorizationCode) -> StoreFuture<'_, ()>;
    fn code(&self, code: &str) -> StoreFuture<'_, Option<AuthorizationCode>>;
    fn delete_code(&self, id: Uuid) -> StoreFuture<'_, ()>;
    fn insert_token(&self, token: Token) -> StoreFuture<'_, ()>;
    /// Replaces the token with this id (a refresh with `reuse_refresh_token`).
    fn update_token(&self, token: Token) -> StoreFuture<'_, ()>;
    fn token_by_access(&self, access_token: &str) -> StoreFuture<'_, Option<Token>>;
    fn token_by_refresh(&self, refresh_token: &str) -> StoreFuture<'_, Option<Token>>;
    fn delete_token(&self, id: Uuid) -> StoreFuture<'_, ()>;
}

/// Codes and tokens in memory (DB-less nodes, tests): lost when the process ends.
#[derive(Debug, Default)]
pub struct MemoryOAuth2Store {
    codes: Mutex<HashMap<String, AuthorizationCode>>,
    tokens: Mutex<HashMap<Uuid, Token>>,
}

fn ready<'a, T: Send + 'a>(v: T) -> StoreFuture<'a, T> {
    Box::pin(std::future::ready(Ok(v)))
}

impl MemoryOAuth2Store {
    /// Drops expired codes and tokens; called on inserts so the maps do not grow forever.
    fn purge(&self, now: i64) {
        locked(&self.codes).retain(|_, c| !c.is_gone(now));
        locked(&self.tokens).retain(|_, t| !t.is_gone(now));
    }
}

impl OAuth2Store for MemoryOAuth2Store {
    fn insert_code(&self, code: AuthorizationCode) -> StoreFuture<'_, ()> {
        self.purge(now_secs());
        locked(&self.codes).insert(code.code.clone(), code);
        ready(())
    }

    fn code(&self, code: &str) -> StoreFuture<'_, Option<AuthorizationCode>> {
        ready(locked(&self.codes).get(code).cloned())
    }

    fn delete_code(&self, id: Uuid) -> StoreFuture<'_, ()> {
        locked(&self.codes).retain(|_, c| c.id != id);
        ready(())
    }

    fn insert_token(&self, token: Token) -> StoreFuture<'_, ()> {
        self.purge(now_secs());
        locked(&self.tokens).insert(token.id, token);
        ready(())
    }

    fn update_token(&self, token: Token) -> StoreFuture<'_, ()> {
        locked(&self.tokens).insert(token.id, token);
        ready(())
    }

    fn token_by_access(&self, access_token: &str) -> StoreFuture<'_, Option<Token>> {
        let t = locked(&self.tokens)
            .values()
            .find(|t| t.access_token == access_token)
            .cloned();
        ready(t)
    }

    fn token_by_refresh(&self, refresh_token: &str) -> StoreFuture<'_, Option<Token>> {
        let t = locked(&self.tokens)
            .values()
            .find(|t| t.refresh_token.as_deref() == Some(refresh_token))
            .cloned();
        ready(t)
    }

    fn delete_token(&self, id: Uuid) -> StoreFuture<'_, ()> {
        locked(&self.tokens).remove(&id);
        ready(())
    }
}

/// How long a token looked up in the store is served from memory. Deletions made through this
/// node (the plugin's own, Admin API writes) evict at once; this bounds how long a change made
/// behind the node's back (another process writing the same database) goes unseen.
pub const TOKEN_CACHE_TTL: Duration = Duration::from_secs(10);
/// Most tokens kept in memory; past it, stale entries go, then everything.
const TOKEN_CACHE_MAX: usize = 10_000;

#[derive(Default)]
struct TokenCache {
    by_access: HashMap<String, (Arc<Token>, Instant)>,
    access_of: HashMap<Uuid, String>,
}

impl TokenCache {
    fn put(&mut self, token: Arc<Token>, now: Instant) {
        if self.by_access.len() >= TOKEN_CACHE_MAX {
            self.by_access
                .retain(|_, (_, at)| now.duration_since(*at) < TOKEN_CACHE_TTL);
            if self.by_access.len() >= TOKEN_CACHE_MAX {
                self.by_access.clear();
            }
            let live: std::collections::HashSet<Uuid> =
                self.by_access.values().map(|(t, _)| t.id).collect();
            self.access_of.retain(|id, _| live.contains(id));
        }
        if let Some(old) = self.access_of.insert(token.id, token.access_token.clone()) {
            self.by_access.remove(&old);
        }
        self.by_access
            .insert(token.access_token.clone(), (token, now));
    }

    fn forget(&mut self, id: Uuid) {
        if let Some(access) = self.access_of.remove(&id) {
            self.by_access.remove(&access);
        }
    }
}

/// The oauth2 plugin's view of its store: writes go through, access-token lookups (every
/// proxied request) are cached for [`TOKEN_CACHE_TTL`].
pub struct OAuth2Tokens {
    store: Arc<dyn OAuth2Store>,
    cache: Mutex<TokenCache>,
}

impl std::fmt::Debug for OAuth2Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuth2Tokens").finish_non_exhaustive()
    }
}

impl OAuth2Tokens {
    pub fn new(store: Arc<dyn OAuth2Store>) -> Self {
        OAuth2Tokens {
            store,
            cache: Mutex::new(TokenCache::default()),
        }
    }

    /// The store behind the cache (codes and refresh tokens are read from it directly).
    pub fn store(&self) -> &dyn OAuth2Store {
        &*self.store
    }

    /// A token by its access token: from the cache when fresh, else from the store. Rows past
    /// their `ttl` are not returned.
    pub async fn by_access(&self, access_token: &str) -> Result<Option<Arc<Token>>, PluginError> {
        let now = Instant::now();
        let cached = locked(&self.cache)
            .by_access
            .get(access_token)
            .filter(|(_, at)| now.duration_since(*at) < TOKEN_CACHE_TTL)
            .map(|(t, _)| t.clone());
        let token = match cached {
            Some(t) => t,
            None => match self.store.token_by_access(access_token).await? {
                Some(t) => {
                    let t = Arc::new(t);
                    locked(&self.cache).put(t.clone(), Instant::now());
                    t
                }
                None => return Ok(None),
            },
        };
        if token.is_gone(now_secs()) {
            self.forget(token.id);
            return Ok(None);
        }
        Ok(Some(token))
    }

    pub async fn insert(&self, token: Token) -> Result<(), PluginError> {
        self.store.insert_token(token.clone()).await?;
        locked(&self.cache).put(Arc::new(token), Instant::now());
        Ok(())
    }

    pub async fn update(&self, token: Token) -> Result<(), PluginError> {
        self.forget(token.id);
        self.store.update_token(token.clone()).await?;
        locked(&self.cache).put(Arc::new(token), Instant::now());
        Ok(())
    }

    pub async fn delete(&self, id: Uuid) -> Result<(), PluginError> {
        self.forget(id);
        self.store.delete_token(id).await
    }

    /// Evicts a token (deleted or changed elsewhere, e.g. through the Admin API).
    pub fn forget(&self, id: Uuid) {
        locked(&self.cache).forget(id);
    }

    /// Evicts every token (a change whose rows are not known one by one).
    pub fn forget_all(&self) {
        let mut c = locked(&self.cache);
        c.by_access.clear();
        c.access_of.clear();
    }
}

/// Which plugin's counters (Kong's `ratelimiting_metrics` or `response_ratelimiting_metrics`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricsTable {
    RateLimiting,
    ResponseRateLimiting,
}

/// One `cluster` policy counter: Kong's primary key of a metrics row, and when the row can go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metric {
    pub identifier: String,
    /// `minute`; response-ratelimiting: `<limit name>_minute`.
    pub period: String,
    /// The window start, seconds.
    pub period_date: i64,
    /// The nil UUID when the plugin is not scoped to a service.
    pub service_id: Uuid,
    pub route_id: Uuid,
    /// Seconds since the epoch after which the row is not needed.
    pub expires_at: i64,
}

/// Where the `cluster` policy keeps its counters. Object-safe: the node implements it over
/// its config store.
pub trait CounterStore: Send + Sync + 'static {
    /// Adds 1 to every counter unless one has reached its limit, atomically: each counter's
    /// value before, and the index of the first full one (nothing was counted then).
    fn take(
        &self,
        table: MetricsTable,
        metrics: Vec<(Metric, u64)>,
    ) -> StoreFuture<'_, (Vec<u64>, Option<usize>)>;
    /// The counters' values.
    fn usage(&self, table: MetricsTable, metrics: Vec<Metric>) -> StoreFuture<'_, Vec<u64>>;
    /// Adds `value` to every counter.
    fn add(&self, table: MetricsTable, metrics: Vec<Metric>, value: u64) -> StoreFuture<'_, ()>;
}

/// The runtime state every request's context can reach.
pub struct Runtime {
    pub oauth2: OAuth2Tokens,
    /// proxy-cache's memory strategy: the node's cached responses, shared by every worker and
    /// config snapshot, and purged through the Admin API.
    pub proxy_cache: ResponseCache,
    /// The `cluster` policy's counters; none when DB-less (Kong refuses the policy there).
    pub counters: Option<Arc<dyn CounterStore>>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("oauth2", &self.oauth2)
            .field("proxy_cache", &self.proxy_cache)
            .field("counters", &self.counters.is_some())
            .finish()
    }
}

impl Runtime {
    pub fn new(oauth2: Arc<dyn OAuth2Store>) -> Self {
        Runtime {
            oauth2: OAuth2Tokens::new(oauth2),
            proxy_cache: ResponseCache::default(),
            counters: None,
        }
    }

    /// Bounds proxy-cache's memory strategy to `bytes` (Kong's `mem_cache_size`).
    pub fn with_response_cache_size(mut self, bytes: u64) -> Self {
        self.proxy_cache = ResponseCache::new(bytes);
        self
    }

    /// With the `cluster` policy's counters in `store`.
    pub fn with_counters(mut self, store: Arc<dyn CounterStore>) -> Self {
        self.counters = Some(store);
        self
    }

    /// In-memory stores only (DB-less nodes, tests).
    pub fn in_memory() -> Self {
        Runtime::new(Arc::new(MemoryOAuth2Store::default()))
    }

    /// The process-wide in-memory runtime contexts start with until the proxy gives them its
    /// own.
    pub fn shared_default() -> Arc<Runtime> {
        static DEFAULT: LazyLock<Arc<Runtime>> = LazyLock::new(|| Arc::new(Runtime::in_memory()));
        DEFAULT.clone()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn token(id: u128, access: &str, created_at: i64, ttl: Option<i64>) -> Token {
        Token {
            id: Uuid::from_u128(id),
            created_at,
            service: None,
            credential: Uuid::from_u128(99),
            expires_in: 10,
            access_token: access.into(),
            refresh_token: Some(format!("r-{access}")),
            authenticated_userid: None,
            scope: None,
            ttl,
        }
    }

    #[tokio::test]
    async fn cache_serves_evicts_and_hides_gone_rows() {
        let store = Arc::new(MemoryOAuth2Store::default());
        let tokens = OAuth2Tokens::new(store.clone());
        let now = now_secs();
        tokens.insert(token(1, "a", now, None)).await.unwrap();
        assert!(tokens.by_access("a").await.unwrap().is_some());
        // Deleted behind the cache's back: still served until evicted.
        store.delete_token(Uuid::from_u128(1)).await.unwrap();
        assert!(tokens.by_access("a").await.unwrap().is_some());
        tokens.forget(Uuid::from_u128(1));
        assert!(tokens.by_access("a").await.unwrap().is_none());
        // A row past its ttl is gone.
        tokens
            .insert(token(2, "b", now - 100, Some(50)))
            .await
            .unwrap();
        assert!(tokens.by_access("b").await.unwrap().is_none());
        // Updating replaces the cached access token.
        tokens.insert(token(3, "c", now, None)).await.unwrap();
        tokens.update(token(3, "d", now, None)).await.unwrap();
        assert!(tokens.by_access("c").await.unwrap().is_none());
        assert!(tokens.by_access("d").await.unwrap().is_some());
        assert!(
            store
                .token_by_refresh("r-d")
                .await
                .unwrap()
                .is_some_and(|t| !t.is_expired(now))
        );
    }
}
