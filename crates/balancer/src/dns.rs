//! Asynchronous DNS with a TTL-respecting cache shared by all workers.
//!
//! Lookups run on the control runtime (one resolver, one set of sockets); workers read the cache
//! and only wait for a lookup on a miss or after expiry. When a refresh fails, the last answer is
//! served (stale) rather than failing requests.

use hickory_resolver::TokioResolver;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use tokio::runtime::Handle;

#[derive(Debug, Clone, thiserror::Error)]
pub enum DnsError {
    #[error("name resolution failed for '{host}': {reason}")]
    Failed { host: String, reason: String },
}

#[derive(Debug)]
struct Entry {
    addrs: Vec<IpAddr>,
    valid_until: Instant,
    next: AtomicUsize,
}

impl Entry {
    fn pick(&self) -> Option<IpAddr> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        self.addrs.get(n % self.addrs.len().max(1)).copied()
    }
}

/// The shared resolver and cache.
pub struct Dns {
    resolver: TokioResolver,
    runtime: Handle,
    cache: RwLock<HashMap<String, Arc<Entry>>>,
}

/// How long a failed or empty answer is remembered before trying again.
const MIN_TTL: Duration = Duration::from_secs(1);

impl Dns {
    /// A resolver from the system configuration (/etc/resolv.conf, /etc/hosts) whose lookups run
    /// on `runtime`.
    pub fn system(runtime: Handle) -> Result<Self, DnsError> {
        let _guard = runtime.enter();
        let resolver = TokioResolver::builder_tokio()
            .and_then(|b| b.build())
            .map_err(|e| DnsError::Failed {
                host: String::new(),
                reason: format!("cannot configure resolver: {e}"),
            })?;
        Ok(Dns {
            resolver,
            runtime,
            cache: RwLock::new(HashMap::new()),
        })
    }

    /// One address for `host` (IP literals are returned as they are); answers with several
    /// addresses are used in turn.
    pub async fn resolve(&self, host: &str) -> Result<IpAddr, DnsError> {
        if let Ok(ip) = host.trim_start_matches('[').trim_end_matches(']').parse() {
            return Ok(ip);
        }
        let cached = self.cache.read().ok().and_then(|c| c.get(host).cloned());
        if let Some(e) = &cached
            && e.valid_until > Instant::now()
            && let Some(ip) = e.pick()
        {
            return Ok(ip);
        }
        match self.lookup(host).await {
            Ok(entry) => {
                let ip = entry.pick();
                if let Ok(mut c) = self.cache.write() {
                    c.insert(host.to_string(), entry);
                }
                ip.ok_or_else(|| DnsError::Failed {
                    host: host.into(),
                    reason: "no addresses".into(),
                })
            }
            Err(e) => match cached.as_ref().and_then(|c| c.pick()) {
                Some(stale) => {
                    tracing::warn!(host, error = %e, "DNS refresh failed; using the previous answer");
                    Ok(stale)
                }
                None => Err(e),
            },
        }
    }

    async fn lookup(&self, host: &str) -> Result<Arc<Entry>, DnsError> {
        let resolver = self.resolver.clone();
        let name = host.to_string();
        let fail = |reason: String| DnsError::Failed {
            host: host.to_string(),
            reason,
        };
        let answer = self
            .runtime
            .spawn(async move { resolver.lookup_ip(name.as_str()).await })
            .await
            .map_err(|e| fail(e.to_string()))?
            .map_err(|e| fail(e.to_string()))?;
        let addrs: Vec<IpAddr> = answer.iter().collect();
        if addrs.is_empty() {
            return Err(fail("no addresses".into()));
        }
        let valid_until = answer.valid_until().max(Instant::now() + MIN_TTL);
        Ok(Arc::new(Entry {
            addrs,
            valid_until,
            next: AtomicUsize::new(0),
        }))
    }
}
