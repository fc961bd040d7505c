//! Least-connections: the address with the fewest requests in flight for its weight. The counts
//! live in each address's shared state and are updated with atomics by every worker; the
//! balancer's [`Peer`](crate::Peer) takes one when picked and gives it back when dropped.

use crate::entries::Address;

/// The usable address with the lowest `(in flight + 1) / weight` (the `+ 1` lets the heaviest
/// address win among idle ones, as in Kong). The scan starts at `start` so that ties go round
/// the addresses instead of always to the first.
pub(crate) fn pick(
    addresses: &[Address],
    start: usize,
    usable: impl Fn(&Address) -> bool,
) -> Option<usize> {
    let n = addresses.len();
    let mut best: Option<(usize, u64, u64)> = None;
    for k in 0..n {
        let i = (start + k) % n;
        let Some(a) = addresses.get(i).filter(|a| usable(a)) else {
            continue;
        };
        let load = u64::from(a.state.in_flight()) + 1;
        let weight = u64::from(a.weight);
        // load / weight < best_load / best_weight, without division.
        let better = match best {
            None => true,
            Some((_, bl, bw)) => load * bw < bl * weight,
        };
        if better {
            best = Some((i, load, weight));
        }
    }
    best.map(|(i, _, _)| i)
}
