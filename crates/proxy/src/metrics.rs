//! `/metrics` (the prometheus plugin's endpoint on the status and Admin APIs): the node's own
//! numbers (connections, requests, datastore, node info, upstream targets) gathered at scrape
//! time, with the per-request series the plugin recorded.

use crate::state::Shared;
use silverback_balancer::AddressHealth;
use silverback_plugins::prometheus::{self, Connections, Health, Node, Switches, TargetHealth};

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
            Some(upstream_health(&snapshot))
        } else {
            None
        },
    };
    let mut out = prometheus::render(&node);
    // Log entries the log plugins had to drop, so a failing destination or a full disk shows.
    out.push_str(&silverback_plugins::logs::dropped_exposition());
    out
}

/// Every address of every upstream's targets, with its health; a target without addresses
/// (its name does not resolve) is `dns_error`.
fn upstream_health(snapshot: &crate::Snapshot) -> Vec<TargetHealth> {
    let mut out = Vec::new();
    for b in &snapshot.balancers {
        for t in b.status() {
            if t.addresses.is_empty() {
                out.push(TargetHealth {
                    upstream: b.name.clone(),
                    target: t.target.target.clone(),
                    address: String::new(),
                    health: Health::DnsError,
                });
            }
            for a in &t.addresses {
                out.push(TargetHealth {
                    upstream: b.name.clone(),
                    target: t.target.target.clone(),
                    address: a.addr.to_string(),
                    health: match a.health {
                        AddressHealth::HealthchecksOff => Health::HealthchecksOff,
                        AddressHealth::Healthy => Health::Healthy,
                        AddressHealth::Unhealthy => Health::Unhealthy,
                    },
                });
            }
        }
    }
    out
}
