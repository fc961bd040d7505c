//! A balancer's health as Kong reports it: per target (`GET /upstreams/{u}/health`, the
//! prometheus `upstream_target_health` metric) and for the whole balancer
//! (`?balancer_health=1`), in Kong's JSON shapes.

use crate::entries::{Entries, Resolution};
use crate::upstream::{Balancer, TargetSpec};
use serde_json::{Value, json};
use std::net::SocketAddr;

/// An address's health as the Admin API names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressHealth {
    /// The upstream has no health checks (or the target weight 0).
    HealthchecksOff,
    Healthy,
    Unhealthy,
}

impl AddressHealth {
    pub fn as_str(self) -> &'static str {
        match self {
            AddressHealth::HealthchecksOff => "HEALTHCHECKS_OFF",
            AddressHealth::Healthy => "HEALTHY",
            AddressHealth::Unhealthy => "UNHEALTHY",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressStatus {
    pub addr: SocketAddr,
    pub weight: u32,
    pub available: bool,
    pub health: AddressHealth,
}

/// One target with its addresses.
#[derive(Debug, Clone)]
pub struct TargetStatus {
    pub target: TargetSpec,
    pub resolution: Resolution,
    pub addresses: Vec<AddressStatus>,
}

impl TargetStatus {
    /// Kong's target `health`: healthy when any address is, `DNS_ERROR` without addresses.
    pub fn health(&self) -> &'static str {
        if self.addresses.is_empty() {
            return "DNS_ERROR";
        }
        let mut health = AddressHealth::HealthchecksOff;
        for a in &self.addresses {
            match a.health {
                AddressHealth::Healthy => return "HEALTHY",
                AddressHealth::Unhealthy => health = AddressHealth::Unhealthy,
                AddressHealth::HealthchecksOff => {}
            }
        }
        health.as_str()
    }

    fn weights(&self) -> (u64, u64) {
        self.addresses.iter().fold((0, 0), |(t, u), a| {
            let w = u64::from(a.weight);
            (t + w, if a.available { u } else { u + w })
        })
    }

    /// Kong's `getTargetStatus`, with each address's `health` (`healthy: true|false` with
    /// `balancer_view`, as in `?balancer_health=1`).
    pub fn to_json(&self, balancer_view: bool) -> Value {
        let (total, unavailable) = self.weights();
        let addresses: Vec<Value> = self
            .addresses
            .iter()
            .map(|a| {
                let mut v = json!({
                    "ip": a.addr.ip().to_string(),
                    "port": a.addr.port(),
                    "weight": a.weight,
                });
                if balancer_view {
                    v["healthy"] = a.available.into();
                } else {
                    v["health"] = a.health.as_str().into();
                }
                v
            })
            .collect();
        let dns = match &self.resolution {
            Resolution::Pending => "unknown".to_string(),
            Resolution::Records(kind) => kind.to_string(),
            Resolution::Failed(e) => e.clone(),
        };
        json!({
            "host": self.target.host,
            "port": self.target.port,
            "dns": dns,
            "nodeWeight": self.target.weight,
            "weight": {
                "total": total,
                "unavailable": unavailable,
                "available": total - unavailable,
            },
            "addresses": addresses,
        })
    }
}

impl Balancer {
    /// Every target with its addresses' health.
    pub fn status(&self) -> Vec<TargetStatus> {
        let entries: std::sync::Arc<Entries> = self.entries();
        let checks_on = self.checks.in_use();
        self.targets()
            .iter()
            .enumerate()
            .map(|(i, t)| TargetStatus {
                target: t.clone(),
                resolution: entries
                    .resolutions
                    .get(i)
                    .cloned()
                    .unwrap_or(Resolution::Pending),
                addresses: entries
                    .addresses
                    .iter()
                    .filter(|a| a.target == i)
                    .map(|a| {
                        let available = a.state.health.is_available();
                        AddressStatus {
                            addr: a.addr,
                            weight: a.weight,
                            available,
                            health: match (checks_on && t.weight > 0, available) {
                                (false, _) => AddressHealth::HealthchecksOff,
                                (true, true) => AddressHealth::Healthy,
                                (true, false) => AddressHealth::Unhealthy,
                            },
                        }
                    })
                    .collect(),
            })
            .collect()
    }

    /// Kong's `get_balancer_health`: `health` is `HEALTHCHECKS_OFF` without health checks,
    /// `balancer_health` whether enough weight is available for the `threshold`.
    pub fn balancer_health(&self) -> Value {
        let entries = self.entries();
        let healthy = entries.healthy(self.checks.threshold);
        let (total, available) = entries.weights();
        let word = if healthy { "HEALTHY" } else { "UNHEALTHY" };
        let hosts: Vec<Value> = self.status().iter().map(|t| t.to_json(true)).collect();
        json!({
            "health": if self.checks.in_use() { word } else { "HEALTHCHECKS_OFF" },
            "balancer_health": word,
            "id": self.id.to_string(),
            "details": {
                "healthy": healthy,
                "weight": {
                    "total": total,
                    "unavailable": total - available,
                    "available": available,
                },
                "hosts": hosts,
            },
        })
    }
}
