//! proxy-cache: serves responses from memory instead of the upstream (Kong's `proxy-cache`
//! with its `memory` strategy).
//!
//! A cacheable request looks its key up in `access`: a fresh entry is answered right there
//! (an exit with the stored status, headers and body: Hit); otherwise the request is proxied
//! (Miss, or Refresh for a stale entry) and `header_filter` decides whether the response may
//! be stored. If so, `body_filter` keeps a copy of the chunks as they stream to the client,
//! giving up on bodies larger than the cache can hold, and stores the whole at the end.

mod fields;
mod key;
mod rules;
mod schema;
mod store;

pub use store::{CachedResponse, ResponseCache};

use crate::handler::{Handler, Phase, Phases, PluginError};
use crate::pdk::{Ctx, Exit, ExitBody, header_key};
use crate::registry::PluginDef;
use crate::runtime::now_secs;
use bytes::{Bytes, BytesMut};
use fields::{AGE, X_CACHE_KEY, X_CACHE_STATUS, display_name, is_gateway_field, is_replayed};
use http::{HeaderName, HeaderValue, StatusCode};
use rules::{Directives, MediaType};
use schema::{DEFAULT_DICTIONARY, ProxyCacheConfig, ResponseHeadersConfig};
use serde_json::Value;
use sha2::{Digest, Sha256};
use silverback_http::int_value;
use std::sync::Arc;
use std::time::Duration;

pub(crate) const NAME: &str = "proxy-cache";

pub(crate) fn definition() -> PluginDef {
    PluginDef {
        name: NAME,
        priority: 100,
        protocols: &[
            "grpc",
            "grpcs",
            "http",
            "https",
            "tcp",
            "tls",
            "tls_passthrough",
            "udp",
        ],
        no_consumer: false,
        no_route: false,
        no_service: false,
        config: schema::config,
        phases: Phases {
            access: true,
            header_filter: true,
            body_filter: true,
            ..Phases::default()
        },
        build,
        index: None,
    }
}

/// The dictionary (namespace of the node's cache) a proxy-cache config stores into.
pub fn dictionary_of(config: &Value) -> &str {
    config
        .pointer("/memory/dictionary_name")
        .and_then(Value::as_str)
        .unwrap_or(DEFAULT_DICTIONARY)
}

#[derive(Debug)]
struct ProxyCache {
    response_codes: Vec<u16>,
    methods: Vec<String>,
    /// The configured types that parse (Kong skips the others).
    content_types: Vec<MediaType>,
    cache_ttl: u64,
    storage_ttl: Option<u64>,
    cache_control: bool,
    ignore_uri_case: bool,
    dictionary: Arc<str>,
    vary_query_params: Option<Vec<String>>,
    vary_headers: Option<Vec<String>>,
    show: ResponseHeadersConfig,
    /// A digest of the config: part of every key, so a changed config never serves entries
    /// stored under the old one (see `key.rs`).
    fingerprint: [u8; 32],
}

fn build(config: &Value) -> Result<Arc<dyn Handler>, String> {
    let conf: ProxyCacheConfig =
        serde_json::from_value(config.clone()).map_err(|e| e.to_string())?;
    if conf.strategy != "memory" {
        return Err(format!("unsupported strategy '{}'", conf.strategy));
    }
    Ok(Arc::new(ProxyCache {
        response_codes: conf.response_code,
        methods: conf.request_method,
        content_types: conf
            .content_type
            .iter()
            .filter_map(|t| MediaType::parse(t))
            .collect(),
        cache_ttl: conf.cache_ttl.unwrap_or(300),
        storage_ttl: conf.storage_ttl,
        cache_control: conf.cache_control,
        ignore_uri_case: conf.ignore_uri_case.unwrap_or(false),
        dictionary: Arc::from(
            conf.memory
                .map_or(DEFAULT_DICTIONARY.to_string(), |m| m.dictionary_name),
        ),
        vary_query_params: conf.vary_query_params,
        vary_headers: conf.vary_headers,
        show: conf.response_headers.unwrap_or_default(),
        fingerprint: Sha256::digest(config.to_string().as_bytes()).into(),
    }))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CacheStatus {
    Miss,
    Hit,
    Refresh,
    Bypass,
}

impl CacheStatus {
    fn value(self) -> HeaderValue {
        HeaderValue::from_static(match self {
            CacheStatus::Miss => "Miss",
            CacheStatus::Hit => "Hit",
            CacheStatus::Refresh => "Refresh",
            CacheStatus::Bypass => "Bypass",
        })
    }
}

/// Where storing the response stands.
#[derive(Debug)]
enum Storing {
    No,
    /// Proxied; `header_filter` decides.
    Pending {
        req_body: Option<Bytes>,
    },
    /// The response is cacheable: its chunks are kept as they pass.
    Collecting(Box<Collected>),
}

#[derive(Debug)]
struct Collected {
    status: u16,
    headers: Vec<(Bytes, Bytes)>,
    headers_size: usize,
    ttl: f64,
    chunks: Vec<Bytes>,
    size: usize,
    req_body: Option<Bytes>,
}

/// What one request's `access` left for the response phases (Kong's `kong.ctx.plugin`).
#[derive(Debug)]
struct State {
    key: Option<Arc<str>>,
    status: Option<CacheStatus>,
    storing: Storing,
    /// The request asked for the diagnostic headers (`Kong-Debug`).
    debug: bool,
}

impl ProxyCache {
    /// The request's key (see `key.rs`).
    fn cache_key(&self, ctx: &Ctx) -> String {
        let consumer = ctx.consumer.as_ref().map(|c| c.id.to_string());
        let route = ctx.route.as_ref().map(|r| r.id.to_string());
        let prefix = key::prefix(consumer.as_deref(), route.as_deref());
        let path = ctx.request.path();
        let uri = if self.ignore_uri_case {
            path.to_lowercase()
        } else {
            path.to_string()
        };
        let params = key::params_key(&ctx.request.query_args(), self.vary_query_params.as_deref());
        let headers = key::headers_key(self.vary_headers.as_deref(), |name| {
            ctx.request
                .headers
                .get_all(&header_key(name))
                .filter_map(|v| std::str::from_utf8(v).ok().map(str::to_string))
                .collect()
        });
        let plugin = ctx.plugin_id().map(|id| *id.as_bytes()).unwrap_or_default();
        fn digest(row: Option<&silverback_model::Row>) -> &[u8; 16] {
            row.map_or(&[0u8; 16], |r| r.digest())
        }
        let version: [&[u8]; 5] = [
            &self.fingerprint,
            &plugin,
            digest(ctx.route.as_ref().map(|r| &*r.row)),
            digest(ctx.service.as_ref().map(|s| &*s.row)),
            digest(ctx.consumer.as_ref().map(|c| &*c.row)),
        ];
        key::build(&key::KeyParts {
            prefix: &prefix,
            method: ctx.request.method.as_str(),
            uri: &uri,
            params: &params,
            headers: &headers,
            version: &version,
        })
    }

    /// Kong's `cacheable_request`. (Kong also names `ngx.var.authorization` here, a variable
    /// nginx does not have: requests with credentials are cached like any other.)
    fn cacheable_request(&self, ctx: &Ctx, cc: &Directives) -> bool {
        let method = ctx.request.method.as_str();
        self.methods.iter().any(|m| m == method)
            && !(self.cache_control && (cc.no_store || cc.no_cache))
    }

    /// Kong's `cacheable_response`: the seconds the response stays fresh, or `None`.
    fn cacheable_response(&self, ctx: &Ctx, now: i64) -> Option<f64> {
        let response = &ctx.response;
        if !self.response_codes.contains(&response.status.as_u16()) {
            return None;
        }
        let mut types = response.headers.get_all("content-type");
        let content_type = match (types.next(), types.next()) {
            (Some(t), None) if !t.is_empty() => t,
            _ => return None,
        };
        let actual = std::str::from_utf8(content_type)
            .ok()
            .and_then(MediaType::parse);
        if !self
            .content_types
            .iter()
            .any(|t| t.accepts(actual.as_ref()))
        {
            return None;
        }
        if !self.cache_control {
            return Some(self.cache_ttl as f64);
        }
        let cc = Directives::parse(response.headers.get_all("cache-control"));
        if cc.private || cc.no_store || cc.no_cache {
            return None;
        }
        let ttl = cc.resource_ttl(response.headers.get_all("expires").last(), now);
        (ttl > 0.0).then_some(ttl)
    }

    /// Kong's freshness rules for a stored entry; `false`: refresh it from the upstream.
    fn fresh(&self, entry: &CachedResponse, cc: &Directives, now: i64) -> bool {
        let age = (now - entry.timestamp) as f64;
        if !self.cache_control {
            return age <= self.cache_ttl as f64;
        }
        !(cc.max_age.is_some_and(|max| age > max)
            || cc.max_stale.is_some_and(|max| age - entry.ttl > max)
            || cc.min_fresh.is_some_and(|min| entry.ttl - age < min))
    }

    /// The answer for a Hit: the stored response with fresh diagnostic headers.
    fn hit(&self, entry: &CachedResponse, key: &str, debug: bool, now: i64) -> Exit {
        let mut headers = Vec::with_capacity(entry.headers.len() + 3);
        for (name, value) in &entry.headers {
            if !is_replayed(name) {
                continue;
            }
            if let (Ok(n), Ok(v)) = (
                HeaderName::from_bytes(name),
                HeaderValue::from_maybe_shared(value.clone()),
            ) {
                headers.push((n, v));
            }
        }
        if debug || self.show.age {
            headers.push((AGE, int_value((now - entry.timestamp).max(0) as u64)));
        }
        if debug || self.show.x_cache_status {
            headers.push((X_CACHE_STATUS, CacheStatus::Hit.value()));
        }
        if (debug || self.show.x_cache_key)
            && let Ok(v) = HeaderValue::from_str(key)
        {
            headers.push((X_CACHE_KEY, v));
        }
        Exit {
            status: StatusCode::from_u16(entry.status).unwrap_or(StatusCode::OK),
            body: ExitBody::Raw {
                body: entry.body.clone(),
                content_type: None,
            },
            headers,
        }
    }

    fn store(&self, ctx: &Ctx, key: Arc<str>, c: Collected) {
        let body = match c.chunks.len() {
            1 => c.chunks.into_iter().next().unwrap_or_default(),
            _ => {
                let mut all = BytesMut::with_capacity(c.size);
                for chunk in &c.chunks {
                    all.extend_from_slice(chunk);
                }
                all.freeze()
            }
        };
        // Kong's `storage_ttl or (cache_control and resource ttl) or cache_ttl`; 0 keeps the
        // entry until it is evicted, as a shared dict does.
        let keep_for = match self.storage_ttl {
            Some(0) => None,
            Some(s) => Some(Duration::from_secs(s)),
            None => Some(Duration::from_secs_f64(c.ttl)),
        };
        ctx.runtime.proxy_cache.insert(
            self.dictionary.clone(),
            key,
            CachedResponse {
                status: c.status,
                headers: c.headers,
                body,
                timestamp: now_secs(),
                ttl: c.ttl,
                req_body: c.req_body,
                keep_for,
            },
        );
    }
}

impl Handler for ProxyCache {
    fn access<'a>(&'a self, ctx: &'a mut Ctx) -> Phase<'a> {
        let debug = ctx.request.headers.contains("kong-debug");
        let cc = if self.cache_control {
            Directives::parse(ctx.request.headers.get_all("cache-control"))
        } else {
            Directives::default()
        };
        let mut state = State {
            key: None,
            status: Some(CacheStatus::Bypass),
            storing: Storing::No,
            debug,
        };
        if !self.cacheable_request(ctx, &cc) {
            ctx.set_data(state);
            return Phase::CONTINUE;
        }
        let key: Arc<str> = Arc::from(self.cache_key(ctx));
        state.key = Some(key.clone());
        let now = now_secs();
        let pending = |ctx: &Ctx| Storing::Pending {
            req_body: ctx.request.raw_body().cloned(),
        };
        match ctx.runtime.proxy_cache.get(&self.dictionary, &key) {
            None if self.cache_control && cc.only_if_cached => {
                state.status = None;
                ctx.set_data(state);
                return Phase::exit(Exit::empty(StatusCode::GATEWAY_TIMEOUT));
            }
            None => {
                state.status = Some(CacheStatus::Miss);
                state.storing = pending(ctx);
            }
            Some(entry) if !self.fresh(&entry, &cc, now) => {
                state.status = Some(CacheStatus::Refresh);
                state.storing = pending(ctx);
            }
            Some(entry) => {
                let exit = self.hit(&entry, &key, debug, now);
                state.status = Some(CacheStatus::Hit);
                ctx.set_data(state);
                ctx.proxied = true;
                return Phase::exit(exit);
            }
        }
        ctx.set_data(state);
        Phase::CONTINUE
    }

    fn header_filter(&self, ctx: &mut Ctx) -> Result<(), PluginError> {
        let now = now_secs();
        let cacheable = match ctx.data::<State>() {
            None => return Ok(()),
            Some(s) if s.status == Some(CacheStatus::Hit) => return Ok(()),
            Some(s) if matches!(s.storing, Storing::Pending { .. }) => {
                Some(self.cacheable_response(ctx, now))
            }
            Some(_) => None,
        };
        let Some(state) = ctx.data_mut::<State>() else {
            return Ok(());
        };
        let ttl = match cacheable {
            Some(None) => {
                state.status = Some(CacheStatus::Bypass);
                state.storing = Storing::No;
                None
            }
            other => other.flatten(),
        };
        let status = state.status;
        let key = state.key.clone();
        let debug = state.debug;
        let headers = &mut ctx.response.headers;
        if let Some(s) = status.filter(|_| debug || self.show.x_cache_status) {
            headers.set(X_CACHE_STATUS, s.value());
        }
        if let Some(k) = key.filter(|_| debug || self.show.x_cache_key)
            && let Ok(v) = HeaderValue::from_str(&k)
        {
            headers.set(X_CACHE_KEY, v);
        }
        let Some(ttl) = ttl else { return Ok(()) };
        // The head as the client gets it, without what the gateway adds per exchange.
        let mut stored = Vec::new();
        headers.for_each(|name, value| {
            if !is_gateway_field(name) {
                stored.push((display_name(name), Bytes::copy_from_slice(value)));
            }
        });
        let headers_size = store::headers_weight(&stored);
        // A declared length that cannot fit: not worth collecting any of it. (A HEAD
        // response declares the length of a body it does not have.)
        let declared = headers
            .get_str("content-length")
            .filter(|_| ctx.request.method != http::Method::HEAD)
            .and_then(|l| l.trim().parse::<usize>().ok())
            .unwrap_or(0);
        let fits = ctx
            .runtime
            .proxy_cache
            .fits(headers_size.saturating_add(declared));
        let status = ctx.response.status.as_u16();
        let Some(state) = ctx.data_mut::<State>() else {
            return Ok(());
        };
        let req_body = match std::mem::replace(&mut state.storing, Storing::No) {
            Storing::Pending { req_body } => req_body,
            _ => None,
        };
        if fits {
            state.storing = Storing::Collecting(Box::new(Collected {
                status,
                headers: stored,
                headers_size,
                ttl,
                chunks: Vec::new(),
                size: 0,
                req_body,
            }));
        }
        Ok(())
    }

    fn body_filter(&self, ctx: &mut Ctx, chunk: &mut Bytes, eof: bool) -> Result<(), PluginError> {
        let Some(state) = ctx.data_mut::<State>() else {
            return Ok(());
        };
        let Storing::Collecting(c) = &mut state.storing else {
            return Ok(());
        };
        if !chunk.is_empty() {
            c.size += chunk.len();
            c.chunks.push(chunk.clone());
        }
        let size = c.size + c.headers_size;
        if !ctx.runtime.proxy_cache.fits(size) {
            // Larger than the whole cache: let it stream on without keeping a copy.
            tracing::debug!(
                request_id = ctx.request_id(),
                bytes = size,
                "proxy-cache: response too large to cache"
            );
            if let Some(state) = ctx.data_mut::<State>() {
                state.storing = Storing::No;
            }
            return Ok(());
        }
        if !eof {
            return Ok(());
        }
        let Some(state) = ctx.data_mut::<State>() else {
            return Ok(());
        };
        let (Storing::Collecting(c), Some(key)) = (
            std::mem::replace(&mut state.storing, Storing::No),
            state.key.clone(),
        ) else {
            return Ok(());
        };
        self.store(ctx, key, *c);
        Ok(())
    }
}
