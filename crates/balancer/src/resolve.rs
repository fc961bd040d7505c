//! Turning targets into addresses: an IP target is one address; a name becomes one address per
//! A/AAAA record (each with the target's weight), or per SRV record of the best priority (port
//! and weight from the record, its name resolved in turn), as Kong's balancer does. A task per
//! balancer keeps the names resolved as their TTLs run out.

use crate::dns::{Answer, Dns, Record, RecordKind};
use crate::entries::Resolution;
use crate::upstream::{Balancer, TargetSpec};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

/// An SRV record of weight 0 still gets a little traffic (Kong's `SRV_0_WEIGHT`).
const SRV_ZERO_WEIGHT: u32 = 1;

/// Never ask again sooner than this, even when an answer already expired (a stale answer is
/// being refreshed in the background).
const MIN_REQUERY: Duration = Duration::from_millis(500);

/// One address of a target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Expanded {
    pub addr: SocketAddr,
    pub weight: u32,
    /// The SRV record's target name this address came from.
    pub srv_name: Option<Arc<str>>,
}

/// A target's addresses and how they were found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Expansion {
    pub resolution: Resolution,
    pub addresses: Vec<Expanded>,
}

impl Expansion {
    fn failed(reason: String) -> Self {
        Expansion {
            resolution: Resolution::Failed(reason),
            addresses: Vec::new(),
        }
    }

    fn ip(t: &TargetSpec, ip: IpAddr) -> Self {
        Expansion {
            resolution: Resolution::Records(if ip.is_ipv4() { "A" } else { "AAAA" }),
            addresses: vec![Expanded {
                addr: SocketAddr::new(ip, t.port),
                weight: t.weight,
                srv_name: None,
            }],
        }
    }
}

/// The SRV records that count: those of the best (lowest) priority.
fn best_srv(answer: &Answer) -> impl Iterator<Item = &crate::dns::Srv> {
    let best = answer
        .records
        .iter()
        .filter_map(|r| match r {
            Record::Srv(s) => Some(s.priority),
            Record::Ip(_) => None,
        })
        .min();
    answer.records.iter().filter_map(move |r| match r {
        Record::Srv(s) if Some(s.priority) == best => Some(s),
        _ => None,
    })
}

/// Builds a target's addresses from its answer; `srv_ips` gives the addresses of SRV targets.
fn from_answer(
    t: &TargetSpec,
    answer: &Answer,
    srv_ips: impl Fn(&str) -> Vec<IpAddr>,
) -> Expansion {
    let mut addresses = Vec::new();
    if answer.kind == RecordKind::Srv {
        for srv in best_srv(answer) {
            let port = if srv.port == 0 { t.port } else { srv.port };
            let weight = match u32::from(srv.weight) {
                0 => SRV_ZERO_WEIGHT,
                w => w,
            };
            let name: Arc<str> = srv.target.as_str().into();
            for ip in srv_ips(&srv.target) {
                addresses.push(Expanded {
                    addr: SocketAddr::new(ip, port),
                    weight,
                    srv_name: Some(name.clone()),
                });
            }
        }
    } else {
        for r in &answer.records {
            if let Record::Ip(ip) = r {
                addresses.push(Expanded {
                    addr: SocketAddr::new(*ip, t.port),
                    weight: t.weight,
                    srv_name: None,
                });
            }
        }
    }
    Expansion {
        resolution: Resolution::Records(answer.kind.as_str()),
        addresses,
    }
}

fn ips_of(answer: &Answer) -> Vec<IpAddr> {
    answer
        .records
        .iter()
        .filter_map(|r| match r {
            Record::Ip(ip) => Some(*ip),
            Record::Srv(_) => None,
        })
        .collect()
}

/// The target's addresses from what the DNS cache holds, without waiting.
pub(crate) fn expand_cached(dns: &Dns, t: &TargetSpec) -> Expansion {
    if let Some(ip) = t.ip {
        return Expansion::ip(t, ip);
    }
    match dns.cached(&t.host) {
        Some(answer) => from_answer(t, &answer, |name| {
            dns.cached(name).map(|a| ips_of(&a)).unwrap_or_default()
        }),
        None => Expansion {
            resolution: Resolution::Pending,
            addresses: Vec::new(),
        },
    }
}

/// The target's addresses, asking DNS as needed; with the time to ask again.
pub(crate) async fn expand(dns: &Dns, t: &TargetSpec) -> (Expansion, Instant) {
    if let Some(ip) = t.ip {
        return (
            Expansion::ip(t, ip),
            Instant::now() + Duration::from_secs(3600),
        );
    }
    let answer = match dns.query(&t.host).await {
        Ok(a) => a,
        Err(e) => {
            tracing::warn!(target = %t.target, error = %e, "querying dns for a target failed");
            return (
                Expansion::failed(e.reason().to_string()),
                dns.retry_after_error(),
            );
        }
    };
    let mut until = answer.valid_until;
    let mut srv_ips: HashMap<String, Vec<IpAddr>> = HashMap::new();
    if answer.kind == RecordKind::Srv {
        for srv in best_srv(&answer) {
            if srv_ips.contains_key(&srv.target) {
                continue;
            }
            let ips = match dns.query(&srv.target).await {
                Ok(a) if a.kind != RecordKind::Srv => {
                    until = until.min(a.valid_until);
                    ips_of(&a)
                }
                Ok(_) => Vec::new(),
                Err(e) => {
                    tracing::warn!(target = %t.target, srv = %srv.target, error = %e, "querying dns for an SRV target failed");
                    until = until.min(dns.retry_after_error());
                    Vec::new()
                }
            };
            srv_ips.insert(srv.target.clone(), ips);
        }
    }
    let expansion = from_answer(t, &answer, |name| {
        srv_ips.get(name).cloned().unwrap_or_default()
    });
    (expansion, until)
}

/// Keeps a balancer's target names resolved until it is stopped or dropped.
pub(crate) async fn keep_resolved(balancer: Weak<Balancer>) {
    loop {
        let Some(b) = balancer.upgrade() else { return };
        let registry = b.registry.clone();
        let dns = registry.dns();
        let mut expansions = Vec::with_capacity(b.targets().len());
        let mut next = Instant::now() + Duration::from_secs(3600);
        for t in b.targets() {
            let (e, until) = expand(dns, t).await;
            expansions.push(e);
            next = next.min(until);
        }
        b.update(&expansions);
        drop(b);
        let wake = next.max(Instant::now() + MIN_REQUERY);
        tokio::time::sleep_until(wake.into()).await;
    }
}
