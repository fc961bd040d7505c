//! What the balancer knows about one address of a target, shared by every snapshot and DNS
//! answer that has it: its health, the requests in flight to it (least-connections) and the
//! decaying average of its response times (latency). All atomics: workers update it while
//! proxying, without locks.

use crate::health::Health;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Kong's decay time of the latency average: a sample counts half after about 7 s.
const DECAY_SECONDS: f64 = 10.0;

static EPOCH: LazyLock<Instant> = LazyLock::new(Instant::now);

/// Microseconds since the process started, never 0 (0 means "never").
pub(crate) fn now_micros() -> u64 {
    u64::try_from(EPOCH.elapsed().as_micros())
        .unwrap_or(u64::MAX)
        .max(1)
}

#[derive(Debug, Default)]
pub struct AddressState {
    pub health: Health,
    in_flight: AtomicU32,
    /// Seconds, as f64 bits.
    ewma: AtomicU64,
    /// When `ewma` was last updated ([`now_micros`]); 0 = never.
    touched: AtomicU64,
}

impl AddressState {
    /// Requests proxied to this address right now (counted for least-connections upstreams).
    pub fn in_flight(&self) -> u32 {
        self.in_flight.load(Ordering::Relaxed)
    }

    pub(crate) fn begin(&self) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn end(&self) {
        let _ = self
            .in_flight
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
    }

    /// The response-time average decayed to `now`: an address not heard from for a while
    /// drifts back to 0 and gets tried again.
    pub(crate) fn ewma_at(&self, now: u64) -> f64 {
        let ewma = f64::from_bits(self.ewma.load(Ordering::Relaxed));
        let touched = self.touched.load(Ordering::Relaxed);
        if touched == 0 {
            return 0.0;
        }
        ewma * decay(now.saturating_sub(touched))
    }

    /// Folds one response time into the average (Kong's `afterBalance`).
    pub(crate) fn record(&self, rtt: Duration) {
        let now = now_micros();
        let touched = self.touched.load(Ordering::Relaxed);
        let weight = if touched == 0 {
            0.0
        } else {
            decay(now.saturating_sub(touched))
        };
        let ewma = f64::from_bits(self.ewma.load(Ordering::Relaxed));
        let next = ewma * weight + rtt.as_secs_f64() * (1.0 - weight);
        self.ewma.store(next.to_bits(), Ordering::Relaxed);
        self.touched.store(now, Ordering::Relaxed);
    }

    /// Whether a response time was ever recorded.
    pub(crate) fn has_ewma(&self) -> bool {
        self.touched.load(Ordering::Relaxed) != 0
    }

    /// Kong's slow start: a new address starts at the others' average instead of 0, so it is
    /// not flooded while its own numbers come in.
    pub(crate) fn seed_ewma(&self, value: f64) {
        if self
            .touched
            .compare_exchange(0, now_micros(), Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
        {
            self.ewma.store(value.to_bits(), Ordering::Relaxed);
        }
    }
}

fn decay(elapsed_micros: u64) -> f64 {
    (-(elapsed_micros as f64 / 1e6) / DECAY_SECONDS).exp()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_average_follows_samples_and_decays() {
        let s = AddressState::default();
        assert_eq!(s.ewma_at(now_micros()), 0.0);
        s.record(Duration::from_millis(100));
        let now = now_micros();
        assert!((s.ewma_at(now) - 0.1).abs() < 0.01);
        // Ten seconds later the sample counts for about a third.
        let later = now + 10_000_000;
        assert!((s.ewma_at(later) - 0.1 / std::f64::consts::E).abs() < 0.005);
        s.begin();
        s.begin();
        s.end();
        assert_eq!(s.in_flight(), 1);
        s.end();
        s.end();
        assert_eq!(s.in_flight(), 0);
    }
}
