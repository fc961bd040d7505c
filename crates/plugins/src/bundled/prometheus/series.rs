//! Where the per-request metrics live: process-wide series of atomic counters, found by their
//! label values. A worker finds a series through its own thread-local cache, so a request
//! takes no lock and pays one relaxed atomic add per number it records; the global table (and
//! its mutex) is touched only the first time a worker meets a label set, and by scrapes.
//! Series, like Kong's, live until the process ends and survive config changes.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};

/// Kong's buckets for `kong_kong_latency_ms`, in milliseconds.
pub const KONG_LATENCY_BUCKETS: &[u64] = &[
    1, 2, 5, 7, 10, 15, 20, 30, 50, 75, 100, 200, 500, 750, 1000, 3000, 6000,
];
/// Kong's buckets for `kong_upstream_latency_ms` and `kong_request_latency_ms`.
pub const UPSTREAM_LATENCY_BUCKETS: &[u64] = &[
    25, 50, 80, 100, 250, 400, 700, 1000, 2000, 5000, 10000, 30000, 60000,
];

/// Observations per bucket (not cumulative: one add per observation), the last one past every
/// bound, and their sum.
pub struct Histogram {
    pub bounds: &'static [u64],
    counts: Box<[AtomicU64]>,
    sum: AtomicU64,
}

/// A histogram as read at scrape time: cumulative counts per bound, then +Inf.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistogramValues {
    pub cumulative: Vec<u64>,
    pub count: u64,
    pub sum: u64,
}

impl Histogram {
    pub fn new(bounds: &'static [u64]) -> Self {
        Histogram {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicU64::new(0),
        }
    }

    /// Counts `value` in the first bucket whose bound is at least `value` (Prometheus `le`).
    pub fn observe(&self, value: u64) {
        let i = self.bounds.partition_point(|&b| b < value);
        if let Some(c) = self.counts.get(i) {
            c.fetch_add(1, Relaxed);
        }
        self.sum.fetch_add(value, Relaxed);
    }

    pub fn values(&self) -> HistogramValues {
        let mut total = 0;
        let cumulative = self
            .counts
            .iter()
            .map(|c| {
                total += c.load(Relaxed);
                total
            })
            .collect();
        HistogramValues {
            cumulative,
            count: total,
            sum: self.sum.load(Relaxed),
        }
    }
}

/// The latency histograms of one service and route.
pub struct Latencies {
    pub kong: Histogram,
    pub upstream: Histogram,
    pub request: Histogram,
}

impl Default for Latencies {
    fn default() -> Self {
        Latencies {
            kong: Histogram::new(KONG_LATENCY_BUCKETS),
            upstream: Histogram::new(UPSTREAM_LATENCY_BUCKETS),
            request: Histogram::new(UPSTREAM_LATENCY_BUCKETS),
        }
    }
}

/// Bytes of one service, route and consumer.
#[derive(Default)]
pub struct Bandwidth {
    pub ingress: AtomicU64,
    pub egress: AtomicU64,
}

/// Responses of one service, route, status, source and consumer.
#[derive(Default)]
pub struct Requests(pub AtomicU64);

/// One kind of series: label values, in the metric's label order, and the numbers.
pub struct Table<T> {
    index: HashMap<Box<[u8]>, usize>,
    series: Vec<(Box<[String]>, Arc<T>)>,
}

impl<T> Default for Table<T> {
    fn default() -> Self {
        Table {
            index: HashMap::new(),
            series: Vec::new(),
        }
    }
}

impl<T: Default> Table<T> {
    fn get_or_insert(&mut self, key: &[u8], labels: &[&str]) -> Arc<T> {
        if let Some(s) = self.index.get(key).and_then(|&i| self.series.get(i)) {
            return s.1.clone();
        }
        let series = Arc::new(T::default());
        self.index.insert(key.into(), self.series.len());
        self.series.push((
            labels.iter().map(|l| l.to_string()).collect(),
            series.clone(),
        ));
        series
    }
}

impl<T> Table<T> {
    /// Every series: its label values and numbers (shared, read as they are now).
    pub fn series(&self) -> impl Iterator<Item = (&[String], &T)> {
        self.series.iter().map(|(l, s)| (&**l, &**s))
    }
}

/// Every series of the process.
#[derive(Default)]
pub struct Registry {
    pub latencies: Table<Latencies>,
    pub bandwidth: Table<Bandwidth>,
    pub requests: Table<Requests>,
}

static REGISTRY: LazyLock<Mutex<Registry>> = LazyLock::new(Mutex::default);

/// The registry, for a scrape. A worker that meets a new label set meanwhile waits for it.
pub fn registry() -> MutexGuard<'static, Registry> {
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner())
}

/// A worker's shortcuts to one kind of series, by encoded label values.
type Cache<T> = HashMap<Box<[u8]>, Arc<T>>;

/// A worker's shortcuts to the series it has met.
#[derive(Default)]
struct Local {
    key: Vec<u8>,
    latencies: Cache<Latencies>,
    bandwidth: Cache<Bandwidth>,
    requests: Cache<Requests>,
}

thread_local! {
    static LOCAL: RefCell<Local> = RefCell::new(Local::default());
}

/// Label values as one unambiguous key: each value's length, then its bytes.
fn encode(key: &mut Vec<u8>, labels: &[&str]) {
    key.clear();
    for l in labels {
        key.extend_from_slice(&(l.len() as u32).to_le_bytes());
        key.extend_from_slice(l.as_bytes());
    }
}

/// Runs `f` on the series of `labels` in one kind of table, creating it on first use.
fn with<T: Default, R>(
    labels: &[&str],
    local: fn(&mut Local) -> &mut Cache<T>,
    global: fn(&mut Registry) -> &mut Table<T>,
    f: impl FnOnce(&T) -> R,
) -> R {
    LOCAL.with(|cell| {
        let Ok(mut l) = cell.try_borrow_mut() else {
            // Only reachable if recording re-entered itself: record without the cache.
            let mut key = Vec::new();
            encode(&mut key, labels);
            let series = global(&mut registry()).get_or_insert(&key, labels);
            return f(&series);
        };
        let mut key = std::mem::take(&mut l.key);
        encode(&mut key, labels);
        let result = match local(&mut l).get(key.as_slice()) {
            Some(series) => f(series),
            None => {
                let series = global(&mut registry()).get_or_insert(&key, labels);
                let result = f(&series);
                local(&mut l).insert(key.as_slice().into(), series);
                result
            }
        };
        l.key = key;
        result
    })
}

/// Labels: service, route, workspace.
pub fn latencies<R>(labels: &[&str; 3], f: impl FnOnce(&Latencies) -> R) -> R {
    with(labels, |l| &mut l.latencies, |r| &mut r.latencies, f)
}

/// Labels: service, route, workspace, consumer (direction is which counter).
pub fn bandwidth<R>(labels: &[&str; 4], f: impl FnOnce(&Bandwidth) -> R) -> R {
    with(labels, |l| &mut l.bandwidth, |r| &mut r.bandwidth, f)
}

/// Labels: service, route, code, source, workspace, consumer.
pub fn requests<R>(labels: &[&str; 6], f: impl FnOnce(&Requests) -> R) -> R {
    with(labels, |l| &mut l.requests, |r| &mut r.requests, f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_counts_by_upper_bound() {
        let h = Histogram::new(&[1, 5, 10]);
        for v in [0, 1, 2, 5, 6, 10, 11, 500] {
            h.observe(v);
        }
        assert_eq!(
            h.values(),
            HistogramValues {
                cumulative: vec![2, 4, 6, 8],
                count: 8,
                sum: 535,
            }
        );
    }

    #[test]
    fn keys_do_not_collide_across_label_boundaries() {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        encode(&mut a, &["ab", "c"]);
        encode(&mut b, &["a", "bc"]);
        assert_ne!(a, b);
    }

    #[test]
    fn workers_share_one_series_per_label_set() {
        let labels = ["svc-series-test", "route-series-test", "default", ""];
        bandwidth(&labels, |b| b.ingress.fetch_add(3, Relaxed));
        std::thread::spawn(move || bandwidth(&labels, |b| b.ingress.fetch_add(4, Relaxed)))
            .join()
            .ok();
        let total = bandwidth(&labels, |b| b.ingress.load(Relaxed));
        assert_eq!(total, 7);
        let reg = registry();
        let n = reg
            .bandwidth
            .series()
            .filter(|(l, _)| l.first().map(String::as_str) == Some("svc-series-test"))
            .count();
        assert_eq!(n, 1);
    }
}
