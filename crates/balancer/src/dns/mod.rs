//! DNS for service hosts and target names, as Kong's DNS client does it: the hosts file first,
//! then the record types of `dns_order` in turn (`LAST` being the type that answered last time
//! for the name), answers cached for their TTL (or `dns_valid_ttl`) and served stale while one
//! background query refreshes them, failures remembered for `dns_not_found_ttl` or
//! `dns_error_ttl`. A name that stopped existing ("name error") replaces a stale answer; other
//! failures keep it.
//!
//! Queries run on the control runtime (one resolver, one set of sockets); workers read the
//! cache and only wait on a miss, together with every other request for the same name.

mod cache;
mod hosts;
mod query;

use cache::{Cache, Entry};
use hickory_resolver::TokioResolver;
use hosts::Hosts;
use query::Failure;
use silverback_config::{DnsOrder, DnsSettings};
use std::borrow::Cow;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};
use tokio::runtime::Handle;
use tokio::sync::watch;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DnsError {
    #[error("name resolution failed for '{host}': {reason}")]
    Failed { host: String, reason: String },
}

impl DnsError {
    fn new(host: &str, reason: impl Into<String>) -> Self {
        DnsError::Failed {
            host: host.to_string(),
            reason: reason.into(),
        }
    }

    /// What went wrong, in Kong's words (`dns server error: 3 name error` ...).
    pub fn reason(&self) -> &str {
        match self {
            DnsError::Failed { reason, .. } => reason,
        }
    }
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
    /// Rotates service requests over the records.
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
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        match self.records.get(n % self.records.len().max(1))? {
            Record::Ip(ip) => Some(*ip),
            Record::Srv(_) => None,
        }
    }

    /// An SRV record of the best priority, in proportion to the weights (0 counts as 1).
    fn next_srv(&self) -> Option<&Srv> {
        let best = self
            .records
            .iter()
            .filter_map(|r| match r {
                Record::Srv(s) => Some(s),
                Record::Ip(_) => None,
            })
            .map(|s| s.priority)
            .min()?;
        let candidates = || {
            self.records.iter().filter_map(move |r| match r {
                Record::Srv(s) if s.priority == best => Some(s),
                _ => None,
            })
        };
        let total: usize = candidates().map(|s| usize::from(s.weight.max(1))).sum();
        let mut n = self.next.fetch_add(1, Ordering::Relaxed) % total.max(1);
        candidates().find(|s| {
            let w = usize::from(s.weight.max(1));
            if n < w {
                return true;
            }
            n -= w;
            false
        })
    }
}

/// A lookup under way: its result, once there.
type Pending = watch::Receiver<Option<Result<Arc<Answer>, DnsError>>>;

/// The shared resolver and cache.
pub struct Dns {
    inner: Arc<Inner>,
}

struct Inner {
    resolver: TokioResolver,
    runtime: Handle,
    settings: DnsSettings,
    hosts: Hosts,
    cache: Cache,
    /// The record type that answered last, per name (`LAST` in `dns_order`).
    last: RwLock<HashMap<String, RecordKind>>,
    /// Lookups under way, which later askers wait for.
    inflight: Mutex<HashMap<String, Pending>>,
}

impl Dns {
    /// A resolver with Kong's `dns_*` settings whose queries run on `runtime`.
    pub fn new(settings: &DnsSettings, runtime: Handle) -> Result<Self, DnsError> {
        let resolver = {
            let _guard = runtime.enter();
            query::resolver(&settings.resolvers).map_err(|e| DnsError::new("", e))?
        };
        Ok(Dns {
            inner: Arc::new(Inner {
                resolver,
                runtime,
                hosts: Hosts::read(&settings.hostsfile),
                cache: Cache::new(settings.cache_size),
                settings: settings.clone(),
                last: RwLock::new(HashMap::new()),
                inflight: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// The system's configuration with Kong's defaults.
    pub fn system(runtime: Handle) -> Result<Self, DnsError> {
        Self::new(&DnsSettings::default(), runtime)
    }

    /// The runtime queries and other background work run on.
    pub fn runtime(&self) -> &Handle {
        &self.inner.runtime
    }

    /// When to ask again for a name whose lookup failed.
    pub fn retry_after_error(&self) -> Instant {
        let s = &self.inner.settings;
        Instant::now()
            + s.error_ttl
                .min(s.not_found_ttl)
                .max(Duration::from_millis(100))
    }

    /// The answer for `name` the hosts file or the cache holds (fresh or stale), without
    /// waiting.
    pub fn cached(&self, name: &str) -> Option<Arc<Answer>> {
        let name = normalize(name);
        if let Some(a) = self.inner.in_hosts(&name) {
            return Some(a);
        }
        self.inner.cache.get(&name)?.result.clone().ok()
    }

    /// The answer for `name`: the hosts file's, the cached one while valid (or stale, while it
    /// is refreshed in the background), else a query.
    pub async fn query(&self, name: &str) -> Result<Arc<Answer>, DnsError> {
        let name = normalize(name);
        // Names of the hosts file never enter the cache: looking there first costs them one
        // miss and saves every other name a lookup.
        let now = Instant::now();
        if let Some(e) = self.inner.cache.get(&name) {
            if now < e.expires {
                return e.result.clone();
            }
            if let Ok(stale) = &e.result
                && now < e.stale_until
            {
                if e.start_refresh() {
                    self.refresh(name.into_owned(), e.clone());
                }
                return Ok(stale.clone());
            }
        }
        if let Some(a) = self.inner.in_hosts(&name) {
            return Ok(a);
        }
        self.resolve(name.into_owned()).await
    }

    /// One address for a service host (Kong's `toip`): IP literals as they are; A and AAAA
    /// answers in turn; an SRV answer gives a record by weight, whose port replaces `port`
    /// and whose name is resolved in turn.
    pub async fn to_ip(&self, host: &str, port: u16) -> Result<SocketAddr, DnsError> {
        if let Ok(ip) = host.trim_start_matches('[').trim_end_matches(']').parse() {
            return Ok(SocketAddr::new(ip, port));
        }
        let answer = self.query(host).await?;
        if answer.kind != RecordKind::Srv {
            return answer
                .next_ip()
                .map(|ip| SocketAddr::new(ip, port))
                .ok_or_else(|| DnsError::new(host, "dns client error: 101 empty record received"));
        }
        let srv = answer
            .next_srv()
            .ok_or_else(|| DnsError::new(host, "dns client error: 101 empty record received"))?;
        let port = if srv.port == 0 { port } else { srv.port };
        let target = self.query(&srv.target).await?;
        match target.next_ip() {
            Some(ip) if target.kind != RecordKind::Srv => Ok(SocketAddr::new(ip, port)),
            _ => Err(DnsError::new(
                &srv.target,
                "dns client error: an SRV record must name an address",
            )),
        }
    }

    /// Looks `name` up now; askers of a name being looked up wait for that lookup.
    async fn resolve(&self, name: String) -> Result<Arc<Answer>, DnsError> {
        let inner = self.inner.clone();
        let mut rx = {
            let mut inflight = inner
                .inflight
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            match inflight.get(&name) {
                Some(rx) => rx.clone(),
                None => {
                    let (tx, rx) = watch::channel(None);
                    inflight.insert(name.clone(), rx.clone());
                    let lookup = inner.clone();
                    inner.runtime.spawn(async move {
                        let result = lookup.lookup_and_store(&name).await;
                        lookup
                            .inflight
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .remove(&name);
                        let _ = tx.send(Some(result));
                    });
                    rx
                }
            }
        };
        match rx.wait_for(Option::is_some).await {
            Ok(r) => r
                .clone()
                .unwrap_or_else(|| Err(DnsError::new("", "lookup lost"))),
            Err(_) => Err(DnsError::new("", "lookup aborted")),
        }
    }

    /// Refreshes a stale answer in the background; a failure keeps it, unless the name is
    /// gone.
    fn refresh(&self, name: String, stale: Arc<Entry>) {
        let inner = self.inner.clone();
        self.inner.runtime.spawn(async move {
            match inner.lookup(&name).await {
                Ok(answer) => {
                    let _ = inner.store(&name, Ok(answer));
                }
                Err(f @ Failure::NameError(_)) => {
                    let _ = inner.store(&name, Err(f));
                }
                Err(f) => {
                    let reason = match &f {
                        Failure::NameError(r) | Failure::NotFound(r) | Failure::Error(r) => {
                            r.clone()
                        }
                    };
                    tracing::warn!(
                        host = name,
                        error = reason,
                        "DNS refresh failed; using the previous answer"
                    );
                    stale.refresh_failed(inner.settings.error_ttl);
                }
            }
        });
    }
}

impl Inner {
    /// The hosts file's entry for `name`, in `dns_order` (A before AAAA by default).
    fn in_hosts(&self, name: &str) -> Option<Arc<Answer>> {
        self.settings.order.iter().find_map(|o| {
            let kind = match o {
                DnsOrder::A => RecordKind::A,
                DnsOrder::Aaaa => RecordKind::Aaaa,
                _ => return None,
            };
            self.hosts.get(name, kind).cloned()
        })
    }

    /// Asks each record type of `dns_order` in turn; the first with records answers. A server
    /// failure on any type makes the whole lookup a failure rather than "not found"; a name
    /// error on any type means the name does not exist.
    async fn lookup(&self, name: &str) -> Result<Arc<Answer>, Failure> {
        let last = self
            .last
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .copied();
        let mut tried: Vec<RecordKind> = Vec::with_capacity(3);
        let mut failure: Option<Failure> = None;
        for o in &self.settings.order {
            let kind = match o {
                DnsOrder::Last => match last {
                    Some(k) => k,
                    None => continue,
                },
                DnsOrder::Srv => RecordKind::Srv,
                DnsOrder::A => RecordKind::A,
                DnsOrder::Aaaa => RecordKind::Aaaa,
                // CNAMEs are followed within the other lookups.
                DnsOrder::Cname => continue,
            };
            if tried.contains(&kind) {
                continue;
            }
            tried.push(kind);
            match query::records(&self.resolver, name, kind).await {
                Ok((records, ttl)) => {
                    self.last
                        .write()
                        .unwrap_or_else(PoisonError::into_inner)
                        .insert(name.to_string(), kind);
                    let ttl = self.settings.valid_ttl.unwrap_or(ttl);
                    return Ok(Arc::new(Answer::new(kind, records, Instant::now() + ttl)));
                }
                Err(f) => {
                    let rank = |f: &Failure| match f {
                        Failure::NotFound(_) => 0,
                        Failure::NameError(_) => 1,
                        Failure::Error(_) => 2,
                    };
                    if failure.as_ref().is_none_or(|old| rank(&f) >= rank(old)) {
                        failure = Some(f);
                    }
                }
            }
        }
        Err(failure.unwrap_or_else(|| Failure::NotFound("no record type to query".into())))
    }

    async fn lookup_and_store(&self, name: &str) -> Result<Arc<Answer>, DnsError> {
        let result = self.lookup(name).await;
        self.store(name, result)
    }

    /// Caches a result: answers for their TTL, failures for Kong's negative TTLs.
    fn store(
        &self,
        name: &str,
        result: Result<Arc<Answer>, Failure>,
    ) -> Result<Arc<Answer>, DnsError> {
        let s = &self.settings;
        let (result, expires) = match result {
            Ok(a) => {
                let until = a.valid_until;
                (Ok(a), until)
            }
            Err(Failure::NotFound(r) | Failure::NameError(r)) => (
                Err(DnsError::new(name, r)),
                Instant::now() + s.not_found_ttl,
            ),
            Err(Failure::Error(r)) => (Err(DnsError::new(name, r)), Instant::now() + s.error_ttl),
        };
        self.cache
            .insert(name, Entry::new(result.clone(), expires, s.stale_ttl));
        result
    }
}

/// Names are case-insensitive and may end with the root's dot.
fn normalize(name: &str) -> Cow<'_, str> {
    let trimmed = name.strip_suffix('.').unwrap_or(name);
    if trimmed.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(trimmed.to_ascii_lowercase())
    } else {
        Cow::Borrowed(trimmed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn srv(target: &str, weight: u16, priority: u16) -> Record {
        Record::Srv(Srv {
            target: target.into(),
            port: 1,
            weight,
            priority,
        })
    }

    #[test]
    fn srv_records_are_picked_by_weight_among_the_best_priority() {
        let a = Answer::new(
            RecordKind::Srv,
            vec![srv("a", 1, 10), srv("b", 3, 10), srv("backup", 100, 20)],
            Instant::now(),
        );
        let mut counts = HashMap::new();
        for _ in 0..400 {
            *counts
                .entry(a.next_srv().unwrap().target.clone())
                .or_insert(0) += 1;
        }
        assert_eq!(counts.get("a"), Some(&100));
        assert_eq!(counts.get("b"), Some(&300));
        assert!(!counts.contains_key("backup"));
    }

    #[test]
    fn names_are_normalized() {
        assert_eq!(normalize("Api.Example.COM."), "api.example.com");
        assert!(matches!(normalize("plain.test"), Cow::Borrowed(_)));
    }
}
