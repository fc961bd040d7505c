//! Smooth weighted round-robin, precomputed into a wheel so that picking is one atomic add.

use std::sync::atomic::{AtomicUsize, Ordering};

/// The order in which weighted entries are picked, spread out (no bursts to one entry).
#[derive(Debug)]
pub struct Wheel {
    slots: Vec<u32>,
    cursor: AtomicUsize,
}

/// Largest wheel built; beyond it weights are scaled down (ratios kept to within rounding).
const MAX_SLOTS: u64 = 1 << 16;

impl Wheel {
    /// Builds the wheel from weights; entries of weight 0 never appear.
    pub fn new(weights: &[u32]) -> Self {
        let g = weights.iter().copied().filter(|w| *w > 0).fold(0, gcd);
        let mut w: Vec<u64> = weights
            .iter()
            .map(|x| u64::from(x.checked_div(g).unwrap_or(0)))
            .collect();
        let total: u64 = w.iter().sum();
        if total > MAX_SLOTS {
            for x in w.iter_mut().filter(|x| **x > 0) {
                *x = (*x * MAX_SLOTS / total).max(1);
            }
        }
        let total: u64 = w.iter().sum();
        // nginx's smooth weighted round-robin, run once for a whole cycle.
        let mut current = vec![0i64; w.len()];
        let mut slots = Vec::with_capacity(total as usize);
        for _ in 0..total {
            let mut best = 0;
            for (i, wi) in w.iter().enumerate() {
                current[i] += *wi as i64;
                if current[i] > current[best] {
                    best = i;
                }
            }
            current[best] -= total as i64;
            slots.push(best as u32);
        }
        Wheel {
            slots,
            cursor: AtomicUsize::new(0),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Slots in one turn of the wheel.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// The next entry index.
    pub fn next(&self) -> Option<usize> {
        if self.slots.is_empty() {
            return None;
        }
        let n = self.cursor.fetch_add(1, Ordering::Relaxed);
        self.slots.get(n % self.slots.len()).map(|i| *i as usize)
    }
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 { a } else { gcd(b, a % b) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_are_respected_and_smooth() {
        let w = Wheel::new(&[5, 1, 1]);
        let picks: Vec<usize> = (0..7).map(|_| w.next().unwrap()).collect();
        assert_eq!(picks.iter().filter(|&&i| i == 0).count(), 5);
        // Smooth: never more than 3 of the heavy entry in a row (nginx gives a a b a c a a).
        assert_eq!(picks, vec![0, 0, 1, 0, 2, 0, 0]);
        let w = Wheel::new(&[0, 3]);
        assert!((0..10).all(|_| w.next() == Some(1)));
        assert!(Wheel::new(&[0, 0]).next().is_none());
    }

    #[test]
    fn large_weights_are_scaled() {
        let w = Wheel::new(&[65535, 65535, 1, 40000]);
        assert!(w.slots.len() as u64 <= MAX_SLOTS + 4);
        let n = 100_000;
        let mut counts = [0usize; 4];
        for _ in 0..n {
            counts[w.next().unwrap()] += 1;
        }
        let ratio = counts[0] as f64 / counts[3] as f64;
        assert!((ratio - 65535.0 / 40000.0).abs() < 0.01, "{counts:?}");
        assert!(counts[2] > 0);
    }
}
