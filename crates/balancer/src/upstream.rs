//! A balancer per upstream entity, compiled with the config snapshot.

use crate::round_robin::Wheel;
use silverback_model::entities::{Target, Upstream};
use silverback_model::typedefs::normalize_host;

/// A target as the proxy connects to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetAddr {
    /// Host name or IP (IPv6 without brackets).
    pub host: String,
    pub port: u16,
    /// The address when `host` is an IP literal (no DNS needed).
    pub ip: Option<std::net::IpAddr>,
}

/// Picks targets of one upstream (weighted round-robin).
#[derive(Debug)]
pub struct Balancer {
    pub name: String,
    pub host_header: Option<String>,
    targets: Vec<TargetAddr>,
    wheel: Wheel,
}

impl Balancer {
    /// Targets with weight 0 are kept out of rotation, as in Kong.
    pub fn new(upstream: &Upstream, targets: &[&Target]) -> Self {
        let parsed: Vec<(TargetAddr, u32)> = targets
            .iter()
            .filter_map(|t| {
                let hp = normalize_host(&t.target).ok()?;
                Some((
                    TargetAddr {
                        ip: hp.host.parse().ok(),
                        host: hp.host,
                        port: hp.port.unwrap_or(8000),
                    },
                    t.weight,
                ))
            })
            .collect();
        let weights: Vec<u32> = parsed.iter().map(|(_, w)| *w).collect();
        Balancer {
            name: upstream.name.clone(),
            host_header: upstream.host_header.clone(),
            targets: parsed.into_iter().map(|(t, _)| t).collect(),
            wheel: Wheel::new(&weights),
        }
    }

    /// Every target, indexed as [`pick`](Self::pick) reports them.
    pub fn targets(&self) -> &[TargetAddr] {
        &self.targets
    }

    pub fn has_targets(&self) -> bool {
        !self.wheel.is_empty()
    }

    /// The next target, avoiding the ones already tried when another exists.
    pub fn pick(&self, tried: &[usize]) -> Option<(usize, &TargetAddr)> {
        let mut first = None;
        for _ in 0..self.targets.len().max(1) {
            let i = self.wheel.next()?;
            if !tried.contains(&i) {
                return self.targets.get(i).map(|t| (i, t));
            }
            first.get_or_insert(i);
        }
        first.and_then(|i| self.targets.get(i).map(|t| (i, t)))
    }
}
