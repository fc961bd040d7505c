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
