//! Asynchronous DNS with a TTL-respecting cache shared by all workers.
//!
//! Lookups run on the control runtime (one resolver, one set of sockets); workers read the cache
//! and only wait for a lookup on a miss or after expiry. When a refresh fails, the last answer is
//! served (stale) rather than failing requests.

use hickory_resolver::TokioResolver;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use tokio::runtime::Handle;

#[derive(Debug, Clone, thiserror::Error)]
pub enum DnsError {
    #[error("name resolution failed for '{host}': {reason}")]
    Failed { host: String, reason: String },
}

/// The record type an answer holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordKind {
    A,
    Aaaa,
    Srv,
}

impl RecordKind {
    /// The name Kong's health endpoint shows under `dns`.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::A => "A",
            RecordKind::Aaaa => "AAAA",
            RecordKind::Srv => "SRV",
        }
    }
}

/// An SRV record: a name to resolve, with its port and weight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Srv {
    pub target: String,
    pub port: u16,
    pub weight: u16,
    pub priority: u16,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    Ip(IpAddr),
    Srv(Srv),
}

/// The records of one name, of one type.
#[derive(Debug)]
pub struct Answer {
    pub kind: RecordKind,
    pub records: Vec<Record>,
    pub valid_until: Instant,
    next: AtomicUsize,
}

impl Answer {
    fn new(kind: RecordKind, records: Vec<Record>, valid_until: Instant) -> Self {
        Answer {
            kind,
            records,
            valid_until,
            next: AtomicUsize::new(0),
        }
    }

    /// The addresses of an A or AAAA answer, in turn.
    fn next_ip(&self) -> Option<IpAddr> {
        let ips: Vec<IpAddr> = self
            .records
            .iter()
            .filter_map(|r| match r {
                Record::Ip(ip) => Some(*ip),
                Record::Srv(_) => None,
            })
            .collect();
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        ips.get(n % ips.len().max(1)).copied()
    }
}

/// The shared resolver and cache.
pub struct Dns {
    resolver: TokioResolver,
    runtime: Handle,
    cache: RwLock<HashMap<String, Arc<Answer>>>,
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

    /// The runtime lookups and other background work run on.
    pub fn runtime(&self) -> &Handle {
        &self.runtime
    }

    /// When to ask again for a name whose lookup failed.
    pub fn retry_after_error(&self) -> Instant {
        Instant::now() + MIN_TTL
    }

    /// The cached answer for `name`, fresh or not, without waiting.
    pub fn cached(&self, name: &str) -> Option<Arc<Answer>> {
        self.cache.read().ok().and_then(|c| c.get(name).cloned())
    }

    /// The answer for `name`: the cached one while valid, else a new lookup; when that fails,
    /// the previous answer.
    pub async fn query(&self, name: &str) -> Result<Arc<Answer>, DnsError> {
        let cached = self.cached(name);
        if let Some(a) = &cached
            && a.valid_until > Instant::now()
        {
            return Ok(a.clone());
        }
        match self.lookup(name).await {
            Ok(answer) => {
                if let Ok(mut c) = self.cache.write() {
                    c.insert(name.to_string(), answer.clone());
                }
                Ok(answer)
            }
            Err(e) => match cached {
                Some(stale) => {
                    tracing::warn!(host = name, error = %e, "DNS refresh failed; using the previous answer");
                    Ok(stale)
                }
                None => Err(e),
            },
        }
    }

    /// One address for a service host (IP literals are returned as they are); answers with
    /// several addresses are used in turn.
    pub async fn to_ip(&self, host: &str, port: u16) -> Result<SocketAddr, DnsError> {
        if let Ok(ip) = host.trim_start_matches('[').trim_end_matches(']').parse() {
            return Ok(SocketAddr::new(ip, port));
        }
        let answer = self.query(host).await?;
        answer
            .next_ip()
            .map(|ip| SocketAddr::new(ip, port))
            .ok_or_else(|| DnsError::Failed {
                host: host.into(),
                reason: "no addresses".into(),
            })
    }

    async fn lookup(&self, host: &str) -> Result<Arc<Answer>, DnsError> {
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
        let addrs: Vec<Record> = answer.iter().map(Record::Ip).collect();
        if addrs.is_empty() {
            return Err(fail("no addresses".into()));
        }
        let kind = match addrs.first() {
            Some(Record::Ip(IpAddr::V6(_))) => RecordKind::Aaaa,
            _ => RecordKind::A,
        };
        let valid_until = answer.valid_until().max(Instant::now() + MIN_TTL);
        Ok(Arc::new(Answer::new(kind, addrs, valid_until)))
    }
}
