//! Consistent hashing (ketama): every address owns points on a 32-bit ring, as many as its
//! share of the weight calls for (160 each when weights are equal), placed by hashing the
//! address itself, so a point never depends on the other addresses. A request's hash picks one
//! of the upstream's `slots`; each slot is precomputed to the first point clockwise from it, so
//! a pick is a table lookup. Removing an address only moves the slots its points owned.

use xxhash_rust::xxh32::xxh32;

/// Points per address when all weights are equal (Kong's `SERVER_POINTS`).
const POINTS_PER_ADDRESS: u64 = 160;

/// The hash of a request's hashing value (or of a point's name).
pub fn hash(value: &[u8]) -> u32 {
    xxh32(value, 0)
}

#[derive(Debug)]
pub struct Ring {
    /// Sorted by position: (position, address index).
    points: Vec<(u32, u32)>,
    /// Per slot, the index in `points` of the first point at or after the slot's position.
    slots: Vec<u32>,
}

impl Ring {
    /// `addresses`: each address's name (`ip:port`) and weight; weight 0 gets no point.
    pub fn new(addresses: &[(String, u32)], slots: u32) -> Ring {
        let total: u64 = addresses.iter().map(|(_, w)| u64::from(*w)).sum();
        let live = addresses.iter().filter(|(_, w)| *w > 0).count() as u64;
        let mut points = Vec::new();
        for (i, (name, weight)) in addresses.iter().enumerate() {
            if *weight == 0 {
                continue;
            }
            let share = (u64::from(*weight) * live * POINTS_PER_ADDRESS)
                .checked_div(total)
                .unwrap_or(0)
                .max(1);
            let mut key = String::with_capacity(name.len() + 6);
            for n in 0..share {
                key.clear();
                key.push_str(name);
                key.push(' ');
                key.push_str(&n.to_string());
                points.push((hash(key.as_bytes()), i as u32));
            }
        }
        // Ties (two points on one position) go to the lower name, whatever the order given.
        points.sort_unstable_by(|a, b| {
            a.0.cmp(&b.0).then_with(|| {
                let name = |p: &(u32, u32)| addresses.get(p.1 as usize).map(|(n, _)| n.as_str());
                name(a).cmp(&name(b))
            })
        });
        let count = u64::from(slots.max(1));
        let slots = if points.is_empty() {
            Vec::new()
        } else {
            (0..count)
                .map(|s| {
                    let position = ((s << 32) / count) as u32;
                    let i = points.partition_point(|p| p.0 < position);
                    (i % points.len()) as u32
                })
                .collect()
        };
        Ring { points, slots }
    }

    /// Address indices from the one owning `hash` clockwise round the ring (each point once;
    /// an address shows up as often as it has points).
    pub fn walk(&self, hash: u32) -> impl Iterator<Item = usize> + '_ {
        let start = if self.slots.is_empty() {
            0
        } else {
            self.slots
                .get(hash as usize % self.slots.len())
                .copied()
                .unwrap_or(0) as usize
        };
        let n = self.points.len();
        (0..n).filter_map(move |k| self.points.get((start + k) % n).map(|p| p.1 as usize))
    }

    /// The address owning `hash`.
    #[cfg(test)]
    pub fn owner(&self, hash: u32) -> Option<usize> {
        self.walk(hash).next()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(names: &[String], slots: u32) -> Ring {
        let addrs: Vec<(String, u32)> = names.iter().map(|n| (n.clone(), 100)).collect();
        Ring::new(&addrs, slots)
    }

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("10.0.0.{i}:8000")).collect()
    }

    #[test]
    fn removing_one_of_ten_moves_only_its_keys() {
        let all = names(10);
        let before = ring(&all, 10_000);
        let mut fewer = all.clone();
        let removed = fewer.remove(3);
        let after = ring(&fewer, 10_000);
        let mut kept = 0;
        let mut others = 0;
        for k in 0..20_000u32 {
            let h = hash(format!("key-{k}").as_bytes());
            let was = &all[before.owner(h).unwrap()];
            let now = &fewer[after.owner(h).unwrap()];
            assert_ne!(now, &removed);
            if was != &removed {
                others += 1;
                assert_eq!(was, now, "key {k} moved between remaining targets");
                kept += 1;
            }
        }
        // The removed address held about a tenth of the keys.
        assert!(others > 16_000 && others < 20_000, "{others}");
        assert_eq!(kept, others);
    }

    #[test]
    fn weights_are_respected() {
        let addrs = vec![("a:1".to_string(), 100), ("b:1".to_string(), 300)];
        let r = Ring::new(&addrs, 65_536);
        let mut counts = [0u32; 2];
        for k in 0..40_000u32 {
            counts[r.owner(hash(&k.to_be_bytes())).unwrap()] += 1;
        }
        let share = f64::from(counts[1]) / 40_000.0;
        assert!((share - 0.75).abs() < 0.05, "{counts:?}");
    }

    #[test]
    fn the_order_of_addresses_does_not_matter() {
        let mut a = names(5);
        let r1 = ring(&a, 1000);
        a.reverse();
        let r2 = ring(&a, 1000);
        for k in 0..1000u32 {
            let h = hash(&k.to_le_bytes());
            assert_eq!(4 - r1.owner(h).unwrap(), r2.owner(h).unwrap());
        }
        assert!(Ring::new(&[("x:1".into(), 0)], 10).owner(1).is_none());
    }
}
