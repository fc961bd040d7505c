//! State shared by every worker: the current snapshot, the proxy's settings and counters.

use crate::request::forwarded::Trust;
use crate::snapshot::Snapshot;
use crate::upstream::pool::Limits;
use arc_swap::ArcSwap;
use http::HeaderValue;
use silverback_balancer::{Dns, Registry};
use silverback_config::{HeaderSet, Settings};
use silverback_plugins::Runtime;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// Version string in Via and Server headers.
pub const SERVER_TOKEN: &str = concat!("silverback/", env!("CARGO_PKG_VERSION"));

/// The settings the request path reads, parsed once.
#[derive(Debug)]
pub struct ProxySettings {
    pub trust: Trust,
    pub headers: HeaderSet,
    pub headers_upstream: HeaderSet,
    pub keepalive: Limits,
    pub client_body_buffer_size: usize,
    pub client_max_body_size: u64,
    pub error_default_type: &'static str,
    /// Where large request bodies are spilled.
    pub temp_dir: PathBuf,
    pub server: HeaderValue,
    pub via_h1: HeaderValue,
    pub via_h2: HeaderValue,
    /// `database = off`: readiness needs a non-empty config.
    pub dbless: bool,
    /// Honour `path_handling: v1` (router_flavor = traditional).
    pub path_handling_v1: bool,
    /// `proxy_access_log`, when on.
    pub access_log: Option<crate::access_log::AccessLog>,
}

impl ProxySettings {
    pub fn from_settings(s: &Settings) -> Self {
        ProxySettings {
            trust: Trust {
                trusted_ips: s.trusted_ips.clone(),
                real_ip_header: s.real_ip_header.to_ascii_lowercase(),
                real_ip_recursive: s.real_ip_recursive,
            },
            headers: s.headers,
            headers_upstream: s.headers_upstream,
            keepalive: Limits {
                pool_size: s.upstream_keepalive_pool_size,
                max_requests: s.upstream_keepalive_max_requests,
                idle_timeout: Duration::from_secs(s.upstream_keepalive_idle_timeout),
            },
            client_body_buffer_size: s.client_body_buffer_size as usize,
            client_max_body_size: s.client_max_body_size,
            error_default_type: crate::response::default_type(&s.error_default_type),
            temp_dir: s.prefixed("client_body_temp"),
            server: HeaderValue::from_static(SERVER_TOKEN),
            via_h1: HeaderValue::from_static(concat!("1.1 silverback/", env!("CARGO_PKG_VERSION"))),
            via_h2: HeaderValue::from_static(concat!("2 silverback/", env!("CARGO_PKG_VERSION"))),
            dbless: s.database == silverback_config::Database::Off,
            path_handling_v1: s.router_flavor == silverback_config::RouterFlavor::Traditional,
            access_log: s.proxy_access_log.as_ref().and_then(|path| {
                crate::access_log::AccessLog::open(path.clone())
                    .inspect_err(|e| {
                        tracing::error!(path = %path.display(), error = %e, "cannot open proxy_access_log; access log disabled");
                    })
                    .ok()
            }),
        }
    }
}

/// Counters of one worker, padded so workers never share a cache line.
#[derive(Debug, Default)]
#[repr(align(128))]
pub struct WorkerStats {
    pub accepted: AtomicU64,
    pub active: AtomicI64,
    pub requests: AtomicU64,
    pub in_flight: AtomicI64,
}

/// Totals over all workers, as the status API reports them.
#[derive(Debug, Default, Clone, Copy)]
pub struct StatsTotals {
    pub accepted: u64,
    pub active: i64,
    pub requests: u64,
    pub in_flight: i64,
}

/// Asks the node's datastore whether it answers (`/metrics`' `kong_datastore_reachable`).
pub type DatastoreProbe = Arc<
    dyn Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = bool> + Send>> + Send + Sync,
>;

pub struct Shared {
    snapshot: ArcSwap<Snapshot>,
    /// This node's id (Kong's `kong.node.get_id`), the same in the Admin API and metrics.
    pub node_id: uuid::Uuid,
    pub settings: ProxySettings,
    /// DNS and the balancers' state that outlives snapshots.
    pub registry: Arc<Registry>,
    workers: Box<[WorkerStats]>,
    ready: AtomicBool,
    /// State plugins write at request time (oauth2 tokens), set once by the node.
    runtime: OnceLock<Arc<Runtime>>,
    datastore: OnceLock<DatastoreProbe>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("snapshot", &self.snapshot.load())
            .field("loaded", &self.is_loaded())
            .finish()
    }
}

/// The TLS listeners pick certificates from the current snapshot.
impl crate::tls::server::CurrentCerts for Shared {
    fn find(&self, sni: &str) -> Option<Arc<crate::tls::server::Pairs>> {
        self.snapshot.load().certificates.find(sni).cloned()
    }
}

impl Shared {
    pub fn new(settings: ProxySettings, registry: Arc<Registry>, workers: usize) -> Arc<Self> {
        Arc::new(Shared {
            snapshot: ArcSwap::from_pointee(Snapshot::empty(&registry)),
            node_id: uuid::Uuid::new_v4(),
            settings,
            registry,
            workers: (0..workers.max(1))
                .map(|_| WorkerStats::default())
                .collect(),
            ready: AtomicBool::new(false),
            runtime: OnceLock::new(),
            datastore: OnceLock::new(),
        })
    }

    /// The snapshot a new request runs on; it keeps it until the request ends.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.load_full()
    }

    /// Swaps in a new snapshot and returns the one it replaces; requests in flight finish on
    /// their old one. Balancers the new snapshot brings start their DNS and health check
    /// work; those it dropped stop theirs.
    pub fn install(&self, snap: Snapshot) -> Arc<Snapshot> {
        let next = Arc::new(snap);
        let old = self.snapshot.swap(next.clone());
        self.registry.switch(&old.balancers, &next.balancers);
        self.ready.store(true, Ordering::Release);
        old
    }

    pub fn dns(&self) -> &Dns {
        self.registry.dns()
    }

    /// Gives plugins the node's runtime state (its stores); once, before serving. Without it
    /// requests use an in-memory runtime.
    pub fn set_runtime(&self, runtime: Arc<Runtime>) {
        if self.runtime.set(runtime).is_err() {
            tracing::warn!("plugin runtime already set; keeping the first one");
        }
    }

    pub fn runtime(&self) -> Arc<Runtime> {
        match self.runtime.get() {
            Some(r) => r.clone(),
            None => Runtime::shared_default(),
        }
    }

    /// Sets how to check the datastore; once, before serving. Without it (DB-less) the
    /// datastore counts as reachable, as Kong's `off` strategy does.
    pub fn set_datastore_probe(&self, probe: DatastoreProbe) {
        if self.datastore.set(probe).is_err() {
            tracing::warn!("datastore probe already set; keeping the first one");
        }
    }

    pub async fn datastore_reachable(&self) -> bool {
        match self.datastore.get() {
            Some(probe) => probe().await,
            None => true,
        }
    }

    /// Whether a first config has been loaded.
    pub fn is_loaded(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// Kong's readiness rule: a config must be loaded, and in DB-less mode it must not be
    /// empty (an empty declarative config means the node has nothing to serve yet).
    pub fn readiness(&self, dbless: bool) -> Result<(), &'static str> {
        if !self.is_loaded() {
            return Err("no configuration available (configuration hash is not initialized)");
        }
        if dbless && self.snapshot().config.hash() == silverback_model::EMPTY_CONFIG_HASH {
            return Err("no configuration available (empty configuration present)");
        }
        Ok(())
    }

    pub fn worker(&self, i: usize) -> &WorkerStats {
        &self.workers[i % self.workers.len()]
    }

    pub fn totals(&self) -> StatsTotals {
        let mut t = StatsTotals::default();
        for w in self.workers.iter() {
            t.accepted += w.accepted.load(Ordering::Relaxed);
            t.active += w.active.load(Ordering::Relaxed);
            t.requests += w.requests.load(Ordering::Relaxed);
            t.in_flight += w.in_flight.load(Ordering::Relaxed);
        }
        t
    }
}
