//! Health of upstream addresses, as Kong's balancer keeps it with lua-resty-healthcheck: the
//! upstream's `healthchecks` settings ([`Checks`]), the per-address state machine ([`Health`])
//! fed by passive reports from the proxy and by active probes ([`active`]).
//!
//! The state machine: an address is healthy, mostly healthy, mostly unhealthy or unhealthy.
//! A success clears the failure counters, a failure (HTTP status, TCP failure or timeout, each
//! counted apart) clears the success counter; a counter reaching its limit flips the address to
//! healthy or unhealthy and clears every counter. The first report against the current state
//! moves a healthy address to "mostly healthy" (still used) and an unhealthy one to "mostly
//! unhealthy" (still skipped). A limit of 0 turns that counter off. Everything is atomics: the
//! proxy reports after every attempt without locking.

pub(crate) mod active;
mod checks;
mod probe;

pub use checks::{Checks, Limits, ProbeKind, StatusSet};

use std::sync::atomic::{AtomicU8, AtomicU32, Ordering};

/// What one attempt or probe told about an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The address answered with this HTTP status.
    Status(u16),
    /// A TCP connection was accepted (active `tcp` checks).
    Connected,
    /// Connecting, sending or reading failed.
    TcpFailure,
    /// Connecting, sending or reading timed out.
    Timeout,
}

/// lua-resty-healthcheck's four internal states; the first two take traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Status {
    Healthy = 0,
    MostlyHealthy = 1,
    MostlyUnhealthy = 2,
    Unhealthy = 3,
}

impl Status {
    fn from_u8(v: u8) -> Status {
        match v {
            0 => Status::Healthy,
            1 => Status::MostlyHealthy,
            2 => Status::MostlyUnhealthy,
            _ => Status::Unhealthy,
        }
    }

    pub fn is_available(self) -> bool {
        matches!(self, Status::Healthy | Status::MostlyHealthy)
    }
}

/// The four counters, packed in one word so a report is one compare-and-swap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Counter {
    Success = 0,
    Http = 1,
    Tcp = 2,
    Timeout = 3,
}

/// One address's health.
#[derive(Debug, Default)]
pub struct Health {
    status: AtomicU8,
    counters: AtomicU32,
}

impl Health {
    pub fn status(&self) -> Status {
        Status::from_u8(self.status.load(Ordering::Acquire))
    }

    /// Whether the balancer may send requests to this address.
    pub fn is_available(&self) -> bool {
        self.status().is_available()
    }

    /// Sets the state outright (the Admin API's `/healthy` and `/unhealthy`), clearing the
    /// counters. Returns whether the address changed between available and not.
    pub fn set(&self, healthy: bool) -> bool {
        self.counters.store(0, Ordering::Release);
        let next = if healthy {
            Status::Healthy
        } else {
            Status::Unhealthy
        };
        let before = Status::from_u8(self.status.swap(next as u8, Ordering::AcqRel));
        before.is_available() != healthy
    }

    /// Counts one report against `limits`; returns the new availability when it changed.
    pub fn report(&self, limits: &Limits, outcome: Outcome) -> Option<bool> {
        match outcome {
            Outcome::Status(s) if limits.healthy_statuses.contains(s) => {
                self.count(Counter::Success, limits.successes)
            }
            Outcome::Status(s) if limits.unhealthy_statuses.contains(s) => {
                self.count(Counter::Http, limits.http_failures)
            }
            Outcome::Status(_) => None,
            Outcome::Connected => self.count(Counter::Success, limits.successes),
            Outcome::TcpFailure => self.count(Counter::Tcp, limits.tcp_failures),
            Outcome::Timeout => self.count(Counter::Timeout, limits.timeouts),
        }
    }

    fn count(&self, counter: Counter, limit: u8) -> Option<bool> {
        if limit == 0 {
            return None;
        }
        let success = counter == Counter::Success;
        let current = self.status();
        // Nothing to count: successes of a healthy address, failures of an unhealthy one.
        if (success && current == Status::Healthy) || (!success && current == Status::Unhealthy) {
            return None;
        }
        let shift = counter as u32 * 8;
        let mut old = self.counters.load(Ordering::Acquire);
        let reached = loop {
            let n = ((old >> shift) & 0xff).saturating_add(1).min(0xff);
            // A success clears the failure counters; a failure clears the success counter.
            let kept = if success {
                0
            } else {
                old & !0xff & !(0xff << shift)
            };
            let reached = n >= u32::from(limit);
            let new = if reached { 0 } else { kept | (n << shift) };
            match self
                .counters
                .compare_exchange_weak(old, new, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => break reached,
                Err(seen) => old = seen,
            }
        };
        let next = match (reached, success, current) {
            (true, true, _) => Status::Healthy,
            (true, false, _) => Status::Unhealthy,
            (false, false, Status::Healthy) => Status::MostlyHealthy,
            (false, true, Status::Unhealthy) => Status::MostlyUnhealthy,
            (false, _, s) => s,
        };
        if next == current {
            return None;
        }
        let before = Status::from_u8(self.status.swap(next as u8, Ordering::AcqRel));
        (before.is_available() != next.is_available()).then_some(next.is_available())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            healthy_statuses: StatusSet::of(&[200, 302]),
            successes: 2,
            unhealthy_statuses: StatusSet::of(&[500, 503]),
            http_failures: 3,
            tcp_failures: 2,
            timeouts: 1,
        }
    }

    #[test]
    fn failures_trip_and_successes_restore() {
        let h = Health::default();
        let l = limits();
        assert_eq!(h.report(&l, Outcome::Status(500)), None);
        assert_eq!(h.status(), Status::MostlyHealthy);
        assert!(h.is_available());
        assert_eq!(h.report(&l, Outcome::Status(500)), None);
        assert_eq!(h.report(&l, Outcome::Status(500)), Some(false));
        assert_eq!(h.status(), Status::Unhealthy);
        // Failures of an unhealthy address are not counted.
        assert_eq!(h.report(&l, Outcome::TcpFailure), None);
        assert_eq!(h.report(&l, Outcome::Status(200)), None);
        assert_eq!(h.status(), Status::MostlyUnhealthy);
        assert!(!h.is_available());
        assert_eq!(h.report(&l, Outcome::Status(302)), Some(true));
        assert_eq!(h.status(), Status::Healthy);
    }

    #[test]
    fn a_success_clears_failures_and_kinds_count_apart() {
        let h = Health::default();
        let l = limits();
        h.report(&l, Outcome::Status(500));
        h.report(&l, Outcome::Status(500));
        h.report(&l, Outcome::Status(200));
        // The HTTP failures were cleared: two more do not trip.
        h.report(&l, Outcome::Status(500));
        assert_eq!(h.report(&l, Outcome::Status(500)), None);
        assert!(h.is_available());
        // One TCP failure does not trip (limit 2), one timeout does (limit 1).
        assert_eq!(h.report(&l, Outcome::TcpFailure), None);
        assert_eq!(h.report(&l, Outcome::Timeout), Some(false));
    }

    #[test]
    fn zero_limits_and_unlisted_statuses_are_ignored() {
        let h = Health::default();
        let l = Limits {
            timeouts: 0,
            ..limits()
        };
        for _ in 0..10 {
            assert_eq!(h.report(&l, Outcome::Timeout), None);
            assert_eq!(h.report(&l, Outcome::Status(404)), None);
        }
        assert_eq!(h.status(), Status::Healthy);
        assert!(h.set(false));
        assert!(!h.set(false));
        assert!(h.set(true));
    }
}
