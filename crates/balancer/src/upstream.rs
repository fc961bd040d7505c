//! A balancer per upstream entity, compiled with the config snapshot: its targets, algorithm,
//! hashing rule and health checks, and the [`Entries`] it currently picks from. Reused by the
//! next snapshot when neither the upstream nor its targets changed.

use crate::address::AddressState;
use crate::entries::{Address, Algorithm, Entries, Resolution};
use crate::hash::HashRule;
use crate::health::{Checks, Outcome};
use crate::registry::Registry;
use crate::resolve::{self, Expansion};
use arc_swap::ArcSwap;
use http::HeaderValue;
use silverback_model::entities::{DEFAULT_TARGET_PORT, Target, Upstream};
use silverback_model::typedefs::normalize_host;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::watch;
use uuid::Uuid;

/// A target as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetSpec {
    pub id: Uuid,
    /// As stored: `host:port`.
    pub target: String,
    /// Host name or IP (IPv6 without brackets).
    pub host: String,
    pub port: u16,
    pub weight: u32,
    /// The address when `host` is an IP literal (no DNS needed).
    pub ip: Option<IpAddr>,
}

/// Why no address could be picked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PickError {
    /// No address is available, or too few for the upstream's health threshold.
    NoPeer,
    /// Target names are still being resolved for the first time.
    Resolving,
}

pub struct Balancer {
    pub id: Uuid,
    pub name: String,
    pub algorithm: Algorithm,
    hash: Option<HashRule>,
    slots: u32,
    host_header: Option<String>,
    use_srv_name: bool,
    targets: Vec<TargetSpec>,
    pub checks: Checks,
    entries: ArcSwap<Entries>,
    pub(crate) registry: Arc<Registry>,
    /// Becomes true once every target name was looked up once.
    resolved: watch::Sender<bool>,
    /// The DNS and health check tasks, stopped when a snapshot without this balancer is
    /// installed.
    tasks: Mutex<Vec<tokio::task::AbortHandle>>,
}

impl std::fmt::Debug for Balancer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Balancer")
            .field("name", &self.name)
            .field("algorithm", &self.algorithm)
            .field("targets", &self.targets)
            .finish()
    }
}

impl Balancer {
    /// Targets with weight 0 are kept (the health endpoints show them) but never picked, as in
    /// Kong. Names already in the DNS cache are expanded at once; the others when the balancer
    /// is started.
    pub fn new(upstream: &Upstream, targets: &[&Target], registry: &Arc<Registry>) -> Self {
        let targets: Vec<TargetSpec> = targets
            .iter()
            .filter_map(|t| {
                let hp = normalize_host(&t.target).ok()?;
                Some(TargetSpec {
                    id: t.id,
                    target: t.target.clone(),
                    ip: hp.host.parse().ok(),
                    host: hp.host,
                    port: hp.port.unwrap_or(DEFAULT_TARGET_PORT),
                    weight: t.weight,
                })
            })
            .collect();
        let mut balancer = Balancer {
            id: upstream.id,
            name: upstream.name.clone(),
            algorithm: Algorithm::from_name(&upstream.algorithm),
            hash: HashRule::of(upstream),
            slots: upstream.slots,
            host_header: upstream.host_header.clone(),
            use_srv_name: upstream.use_srv_name,
            checks: Checks::from_json(&upstream.healthchecks),
            entries: ArcSwap::from_pointee(Entries::new(
                Algorithm::RoundRobin,
                0,
                Vec::new(),
                Vec::new(),
            )),
            registry: registry.clone(),
            resolved: watch::channel(false).0,
            tasks: Mutex::new(Vec::new()),
            targets,
        };
        let expansions: Vec<Expansion> = balancer
            .targets
            .iter()
            .map(|t| resolve::expand_cached(registry.dns(), t))
            .collect();
        if !expansions
            .iter()
            .any(|e| e.resolution == Resolution::Pending)
        {
            balancer.resolved.send_replace(true);
        }
        balancer.entries = ArcSwap::from_pointee(balancer.build_entries(&expansions));
        balancer
    }

    pub fn targets(&self) -> &[TargetSpec] {
        &self.targets
    }

    /// The hashing rule, for consistent-hashing upstreams.
    pub fn hash_rule(&self) -> Option<&HashRule> {
        self.hash
            .as_ref()
            .filter(|_| self.algorithm == Algorithm::ConsistentHashing)
    }

    /// The addresses picked from right now.
    pub fn entries(&self) -> Arc<Entries> {
        self.entries.load_full()
    }

    pub(crate) fn has_names(&self) -> bool {
        self.targets.iter().any(|t| t.ip.is_none())
    }

    /// Replaces the entries when DNS answers changed the addresses.
    pub(crate) fn update(&self, expansions: &[Expansion]) {
        let current = self.entries.load();
        let same = current.resolutions.len() == expansions.len()
            && current
                .resolutions
                .iter()
                .zip(expansions)
                .all(|(r, e)| *r == e.resolution)
            && current
                .addresses
                .iter()
                .map(|a| (a.target, a.addr, a.weight))
                .eq(expansions
                    .iter()
                    .enumerate()
                    .flat_map(|(i, e)| e.addresses.iter().map(move |x| (i, x.addr, x.weight))));
        if !same {
            self.entries.store(Arc::new(self.build_entries(expansions)));
        }
        if !expansions
            .iter()
            .any(|e| e.resolution == Resolution::Pending)
        {
            self.resolved
                .send_if_modified(|r| !std::mem::replace(r, true));
        }
    }

    fn build_entries(&self, expansions: &[Expansion]) -> Entries {
        let mut addresses = Vec::new();
        for (i, (t, e)) in self.targets.iter().zip(expansions).enumerate() {
            for x in &e.addresses {
                let name = self.host_name(t, x.srv_name.as_deref());
                addresses.push(Address {
                    target: i,
                    addr: x.addr,
                    weight: x.weight,
                    host_headers: self.host_headers(&name, x.addr.port()),
                    state: self.registry.state(self.id, &t.target, x.addr),
                });
            }
        }
        let resolutions = expansions.iter().map(|e| e.resolution.clone()).collect();
        Entries::new(self.algorithm, self.slots, addresses, resolutions)
    }

    /// The host a target's requests carry: the upstream's `host_header`, else the target's name
    /// (or, with `use_srv_name`, the SRV record's target), else its IP.
    fn host_name(&self, t: &TargetSpec, srv_name: Option<&str>) -> String {
        if let Some(h) = &self.host_header {
            return h.clone();
        }
        match srv_name {
            Some(srv) if self.use_srv_name => srv.to_string(),
            _ => t.host.clone(),
        }
    }

    /// Kong's `set_host_header`: the port is added unless it is the scheme's default. A
    /// `host_header` with its own port is sent as it is.
    fn host_headers(&self, name: &str, port: u16) -> [Option<HeaderValue>; 2] {
        let has_port = self
            .host_header
            .as_deref()
            .is_some_and(|h| h.contains(':') && !h.starts_with('['));
        if has_port {
            let v = HeaderValue::from_str(name).ok();
            return [v.clone(), v];
        }
        let host = if name.contains(':') && !name.starts_with('[') {
            format!("[{name}]")
        } else {
            name.to_string()
        };
        let with_port = HeaderValue::from_str(&format!("{host}:{port}")).ok();
        let bare = || HeaderValue::from_str(&host).ok();
        [
            if port == 80 {
                bare()
            } else {
                with_port.clone()
            },
            if port == 443 { bare() } else { with_port },
        ]
    }

    /// The next address for a request: `hash` is its hashing value (consistent-hashing),
    /// `tried` the addresses earlier attempts failed on, avoided when another is available.
    pub fn pick(&self, hash: u32, tried: &[SocketAddr]) -> Result<Peer<'_>, PickError> {
        let entries = self.entries.load_full();
        if entries.addresses.is_empty() && !*self.resolved.borrow() {
            return Err(PickError::Resolving);
        }
        if self.checks.threshold > 0.0 && !entries.healthy(self.checks.threshold) {
            return Err(PickError::NoPeer);
        }
        let index = entries
            .pick(self.algorithm, hash, tried)
            .ok_or(PickError::NoPeer)?;
        let address = entries.addresses.get(index).ok_or(PickError::NoPeer)?;
        let addr = address.addr;
        let counted = self.algorithm == Algorithm::LeastConnections;
        if counted {
            address.state.begin();
        }
        Ok(Peer {
            balancer: self,
            entries,
            index,
            addr,
            counted,
        })
    }

    /// Waits (up to `timeout`) until every target name was looked up once.
    pub async fn wait_resolved(&self, timeout: Duration) {
        let mut rx = self.resolved.subscribe();
        let _ = tokio::time::timeout(timeout, rx.wait_for(|r| *r)).await;
    }

    /// What active probes send as Host for a target's addresses: the upstream's
    /// `host_header`, else the target's host.
    pub(crate) fn probe_host(&self, target: usize) -> String {
        match (&self.host_header, self.targets.get(target)) {
            (Some(h), _) => h.clone(),
            (None, Some(t)) => t.host.clone(),
            (None, None) => String::new(),
        }
    }

    /// The Admin API's `PUT /upstreams/{u}/targets/{t}/healthy|unhealthy`: every address of
    /// the target, or only `address` (`ip:port`). Kong's messages for what cannot be set.
    pub fn set_health(
        &self,
        target: &str,
        address: Option<SocketAddr>,
        healthy: bool,
    ) -> Result<(), String> {
        if !self.checks.in_use() {
            return Err(format!("no healthchecker found for {}", self.name));
        }
        let index = self
            .targets
            .iter()
            .position(|t| t.target == target)
            .ok_or_else(|| format!("target not found for {target}"))?;
        let entries = self.entries();
        let mut found = false;
        for a in entries
            .addresses
            .iter()
            .filter(|a| a.target == index && address.is_none_or(|x| x == a.addr))
        {
            found = true;
            if a.state.health.set(healthy) {
                tracing::warn!(
                    upstream = %self.name,
                    address = %a.addr,
                    "[healthchecks] address set {} through the Admin API",
                    if healthy { "healthy" } else { "unhealthy" }
                );
            }
        }
        match (found, address) {
            (true, _) => Ok(()),
            (false, Some(a)) => Err(format!("target not found for {a}")),
            (false, None) => Err(format!("target not found for {target}")),
        }
    }

    /// Starts the balancer's background work on the control runtime: keeping target names
    /// resolved, and active health checks.
    pub(crate) fn start(self: &Arc<Self>) {
        let mut tasks = self.tasks.lock().unwrap_or_else(PoisonError::into_inner);
        let runtime = self.registry.dns().runtime();
        if self.has_names() {
            let task = runtime.spawn(resolve::keep_resolved(Arc::downgrade(self)));
            tasks.push(task.abort_handle());
        }
        if self.checks.active_enabled() {
            let task = runtime.spawn(crate::health::active::run(Arc::downgrade(self)));
            tasks.push(task.abort_handle());
        }
    }

    /// Stops the background work (the balancer left the config, or was replaced).
    pub(crate) fn stop(&self) {
        let mut tasks = self.tasks.lock().unwrap_or_else(PoisonError::into_inner);
        for t in tasks.drain(..) {
            t.abort();
        }
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A picked address, for one attempt. Dropping it ends the attempt for least-connections.
pub struct Peer<'b> {
    balancer: &'b Balancer,
    entries: Arc<Entries>,
    index: usize,
    pub addr: SocketAddr,
    counted: bool,
}

impl<'b> Peer<'b> {
    fn address(&self) -> Option<&Address> {
        self.entries.addresses.get(self.index)
    }

    fn state(&self) -> Option<&Arc<AddressState>> {
        self.address().map(|a| &a.state)
    }

    /// Kong's `balancer_data.hostname`: the upstream's `host_header`, else the target's host.
    pub fn host_name(&self) -> &'b str {
        let balancer: &'b Balancer = self.balancer;
        if let Some(h) = &balancer.host_header {
            return h;
        }
        self.address()
            .and_then(|a| balancer.targets.get(a.target))
            .map_or("", |t| t.host.as_str())
    }

    /// The Host header for this address; `tls_default`: the service's scheme defaults to 443.
    pub fn host_header(&self, tls_default: bool) -> Option<HeaderValue> {
        self.address()
            .and_then(|a| a.host_headers.get(usize::from(tls_default)).cloned())
            .flatten()
    }

    /// Passive health checks: what the attempt on this address showed.
    pub fn report(&self, outcome: Outcome) {
        if !self.balancer.checks.in_use() {
            return;
        }
        let Some(state) = self.state() else { return };
        if let Some(up) = state.health.report(&self.balancer.checks.passive, outcome) {
            tracing::warn!(
                upstream = %self.balancer.name,
                address = %self.addr,
                ?outcome,
                "[healthchecks] passive check: address is {}",
                if up { "healthy" } else { "unhealthy" }
            );
        }
    }

    /// The latency algorithm's sample: how long the address took to answer.
    pub fn record_latency(&self, rtt: Duration) {
        if self.balancer.algorithm == Algorithm::Latency
            && let Some(state) = self.state()
        {
            state.record(rtt);
        }
    }
}

impl Drop for Peer<'_> {
    fn drop(&mut self) {
        if self.counted
            && let Some(state) = self.state()
        {
            state.end();
        }
    }
}
