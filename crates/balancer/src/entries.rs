//! The addresses a balancer picks from right now (its targets, DNS names expanded into one
//! entry per address) with the algorithm's structure built over them. Replaced as a whole when
//! DNS answers change; health is read from each address's shared state at pick time, so a
//! health change needs no rebuild.

use crate::address::AddressState;
use crate::consistent_hashing::Ring;
use crate::round_robin::Wheel;
use crate::{latency, least_connections};
use http::HeaderValue;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Kong's `algorithm`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    RoundRobin,
    ConsistentHashing,
    LeastConnections,
    Latency,
}

impl Algorithm {
    pub fn from_name(name: &str) -> Algorithm {
        match name {
            "consistent-hashing" => Algorithm::ConsistentHashing,
            "least-connections" => Algorithm::LeastConnections,
            "latency" => Algorithm::Latency,
            _ => Algorithm::RoundRobin,
        }
    }
}

/// One address of one target.
#[derive(Debug)]
pub struct Address {
    /// Index of its target in the balancer's targets.
    pub target: usize,
    pub addr: SocketAddr,
    pub weight: u32,
    /// The Host header for services whose scheme defaults to port 80 (`[0]`: http, grpc) or
    /// 443 (`[1]`: https, grpcs): the port is added unless it is that default.
    pub host_headers: [Option<HeaderValue>; 2],
    pub state: Arc<AddressState>,
}

/// How a target's host turned into addresses, as the health endpoints report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// Not asked yet (a name whose first lookup is under way).
    Pending,
    /// The record type that answered (`A` for an IPv4 literal, `AAAA` for IPv6).
    Records(&'static str),
    /// The lookup failed: no addresses.
    Failed(String),
}

enum Structure {
    Wheel(Wheel),
    Ring(Ring),
    /// Least-connections and latency look at every address; the cursor spreads ties.
    Scan(AtomicUsize),
}

pub struct Entries {
    pub addresses: Vec<Address>,
    /// Per target of the balancer.
    pub resolutions: Vec<Resolution>,
    structure: Structure,
}

impl std::fmt::Debug for Entries {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entries")
            .field("addresses", &self.addresses)
            .field("resolutions", &self.resolutions)
            .finish()
    }
}

impl Entries {
    pub fn new(
        algorithm: Algorithm,
        slots: u32,
        addresses: Vec<Address>,
        resolutions: Vec<Resolution>,
    ) -> Entries {
        let structure = match algorithm {
            Algorithm::RoundRobin => {
                let weights: Vec<u32> = addresses.iter().map(|a| a.weight).collect();
                Structure::Wheel(Wheel::new(&weights))
            }
            Algorithm::ConsistentHashing => {
                let named: Vec<(String, u32)> = addresses
                    .iter()
                    .map(|a| (a.addr.to_string(), a.weight))
                    .collect();
                Structure::Ring(Ring::new(&named, slots))
            }
            Algorithm::Latency => {
                latency::seed(&addresses);
                Structure::Scan(AtomicUsize::new(0))
            }
            Algorithm::LeastConnections => Structure::Scan(AtomicUsize::new(0)),
        };
        Entries {
            addresses,
            resolutions,
            structure,
        }
    }

    /// Sum of the addresses' weights, and of the available ones'.
    pub fn weights(&self) -> (u64, u64) {
        self.addresses.iter().fold((0, 0), |(total, up), a| {
            let w = u64::from(a.weight);
            let available = if a.state.health.is_available() { w } else { 0 };
            (total + w, up + available)
        })
    }

    /// Kong's balancer health: more than `threshold` percent of the weight is available (and
    /// there is weight at all).
    pub fn healthy(&self, threshold: f64) -> bool {
        let (total, available) = self.weights();
        total > 0 && (available as f64 * 100.0 / total as f64) > threshold
    }

    /// The next address by the algorithm among available ones, avoiding those in `tried`
    /// when another one is available.
    pub fn pick(&self, algorithm: Algorithm, hash: u32, tried: &[SocketAddr]) -> Option<usize> {
        let first = self.pick_where(algorithm, hash, |a| !tried.contains(&a.addr));
        if first.is_some() || tried.is_empty() {
            return first;
        }
        self.pick_where(algorithm, hash, |_| true)
    }

    fn pick_where(
        &self,
        algorithm: Algorithm,
        hash: u32,
        allowed: impl Fn(&Address) -> bool,
    ) -> Option<usize> {
        let usable = |a: &Address| a.weight > 0 && a.state.health.is_available() && allowed(a);
        match &self.structure {
            Structure::Wheel(wheel) => {
                for _ in 0..wheel.len() {
                    let i = wheel.next()?;
                    if self.addresses.get(i).is_some_and(usable) {
                        return Some(i);
                    }
                }
                None
            }
            Structure::Ring(ring) => ring
                .walk(hash)
                .find(|i| self.addresses.get(*i).is_some_and(usable)),
            Structure::Scan(cursor) => {
                let start = cursor.fetch_add(1, Ordering::Relaxed);
                match algorithm {
                    Algorithm::Latency => latency::pick(&self.addresses, start, usable),
                    _ => least_connections::pick(&self.addresses, start, usable),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(algorithm: Algorithm, weights: &[u32]) -> Entries {
        let addresses = weights
            .iter()
            .enumerate()
            .map(|(i, w)| Address {
                target: i,
                addr: SocketAddr::from(([10, 0, 0, i as u8], 8000)),
                weight: *w,
                host_headers: [None, None],
                state: Arc::new(AddressState::default()),
            })
            .collect();
        Entries::new(algorithm, 1000, addresses, Vec::new())
    }

    const ALL: [Algorithm; 4] = [
        Algorithm::RoundRobin,
        Algorithm::ConsistentHashing,
        Algorithm::LeastConnections,
        Algorithm::Latency,
    ];

    #[test]
    fn every_algorithm_skips_unavailable_and_weightless_addresses() {
        for algorithm in ALL {
            let e = entries(algorithm, &[100, 100, 0]);
            e.addresses[0].state.health.set(false);
            for h in 0..50u32 {
                assert_eq!(e.pick(algorithm, h * 7919, &[]), Some(1), "{algorithm:?}");
            }
            e.addresses[1].state.health.set(false);
            assert_eq!(e.pick(algorithm, 1, &[]), None, "{algorithm:?}");
        }
    }

    #[test]
    fn every_algorithm_avoids_tried_addresses_while_it_can() {
        for algorithm in ALL {
            let e = entries(algorithm, &[100, 100]);
            for h in 0..50u32 {
                let first = e.pick(algorithm, h, &[]).unwrap();
                let tried = [e.addresses[first].addr];
                let retry = e.pick(algorithm, h, &tried).unwrap();
                assert_ne!(retry, first, "{algorithm:?}");
                // Everything tried: any available address again.
                let all = [e.addresses[0].addr, e.addresses[1].addr];
                assert!(e.pick(algorithm, h, &all).is_some());
            }
        }
    }

    #[test]
    fn the_threshold_counts_available_weight() {
        let e = entries(Algorithm::RoundRobin, &[100, 300]);
        assert!(e.healthy(0.0) && e.healthy(74.0));
        e.addresses[1].state.health.set(false);
        assert_eq!(e.weights(), (400, 100));
        assert!(e.healthy(24.0));
        assert!(!e.healthy(25.0));
        assert!(!entries(Algorithm::RoundRobin, &[]).healthy(0.0));
    }

    #[test]
    fn least_connections_weighs_requests_in_flight() {
        let e = entries(Algorithm::LeastConnections, &[100, 200]);
        // Idle: the heavier one first.
        assert_eq!(e.pick(Algorithm::LeastConnections, 0, &[]), Some(1));
        e.addresses[1].state.begin();
        // (1 + 1) / 200 == (0 + 1) / 100: a tie either way; one more tips it.
        e.addresses[1].state.begin();
        assert_eq!(e.pick(Algorithm::LeastConnections, 0, &[]), Some(0));
    }
}
