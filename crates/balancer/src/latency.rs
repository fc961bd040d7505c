//! Latency: the address with the lowest decaying average of response times for its weight
//! (Kong's EWMA balancer, after Finagle's). The averages live in each address's shared state;
//! the proxy feeds them after every response.

use crate::address::now_micros;
use crate::entries::Address;

/// The usable address with the lowest `ewma / weight`, scanning from `start` so that ties
/// (addresses not measured yet) go round.
pub(crate) fn pick(
    addresses: &[Address],
    start: usize,
    usable: impl Fn(&Address) -> bool,
) -> Option<usize> {
    let now = now_micros();
    let n = addresses.len();
    let mut best: Option<(usize, f64)> = None;
    for k in 0..n {
        let i = (start + k) % n;
        let Some(a) = addresses.get(i).filter(|a| usable(a)) else {
            continue;
        };
        let score = a.state.ewma_at(now) / f64::from(a.weight.max(1));
        if best.is_none_or(|(_, b)| score < b) {
            best = Some((i, score));
        }
    }
    best.map(|(i, _)| i)
}

/// Kong's slow start: addresses without a measurement start at the average of the others.
pub(crate) fn seed(addresses: &[Address]) {
    let now = now_micros();
    let measured: Vec<f64> = addresses
        .iter()
        .filter(|a| a.state.has_ewma())
        .map(|a| a.state.ewma_at(now))
        .collect();
    if measured.is_empty() || measured.len() == addresses.len() {
        return;
    }
    let average = measured.iter().sum::<f64>() / measured.len() as f64;
    for a in addresses.iter().filter(|a| !a.state.has_ewma()) {
        a.state.seed_ewma(average);
    }
}
