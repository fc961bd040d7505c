//! `/metrics` (the prometheus plugin's endpoint on the status and Admin APIs): the node's own
//! numbers (connections, requests, datastore, node info, upstream targets) gathered at scrape
//! time, with the per-request series the plugin recorded.

use crate::state::Shared;
use silverback_model::typedefs::normalize_host;
use silverback_plugins::prometheus::{self, Connections, Health, Node, Switches, TargetHealth};
use std::net::SocketAddr;

/// The `/metrics` body.
pub async fn render(shared: &Shared) -> String {
    let snapshot = shared.snapshot();
    let switches = Switches::of(&snapshot.config);
    let t = shared.totals();
    let active = t.active.max(0) as u64;
    let writing = t.in_flight.max(0) as u64;
    let node = Node {
        node_id: shared.node_id.to_string(),
        version: silverback_model::KONG_VERSION.to_string(),
        datastore_reachable: shared.datastore_reachable().await,
        connections: Connections {
            accepted: t.accepted,
            active,
            handled: t.accepted,
            reading: 0,
            waiting: active.saturating_sub(writing),
            writing,
            requests: t.requests,
        },
        plugin_enabled: switches.enabled,
        upstream_health: if switches.upstream_health {
            Some(upstream_health(shared, &snapshot.config).await)
        } else {
            None
        },
    };
    let mut out = prometheus::render(&node);
    // Log entries the log plugins had to drop, so a failing destination or a full disk shows.
    out.push_str(&silverback_plugins::logs::dropped_exposition());
    out
}

/// Every target of every upstream. Health checks do not run yet, so a target that resolves is
/// `healthchecks_off` and one whose name does not resolve is `dns_error`.
async fn upstream_health(shared: &Shared, config: &silverback_model::Config) -> Vec<TargetHealth> {
    let (Ok(upstreams), Ok(targets)) = (config.upstreams(), config.targets()) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for u in &upstreams {
        for t in targets.iter().filter(|t| t.upstream.id == u.id) {
            let Ok(hp) = normalize_host(&t.target) else {
                continue;
            };
            // Stored targets carry a port; 8000 is Kong's default, as the balancer's.
            let port = hp.port.unwrap_or(8000);
            let ip = match hp.host.parse() {
                Ok(ip) => Some(ip),
                Err(_) => shared.dns.resolve(&hp.host).await.ok(),
            };
            let name = if hp.host.contains(':') {
                format!("[{}]:{port}", hp.host)
            } else {
                format!("{}:{port}", hp.host)
            };
            out.push(match ip {
                Some(ip) => TargetHealth {
                    upstream: u.name.clone(),
                    target: name,
                    address: SocketAddr::new(ip, port).to_string(),
                    health: Health::HealthchecksOff,
                },
                None => TargetHealth {
                    upstream: u.name.clone(),
                    target: name,
                    address: String::new(),
                    health: Health::DnsError,
                },
            });
        }
    }
    out
}
