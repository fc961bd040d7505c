//! Where the per-request metrics live: process-wide series of atomic counters, found by their
//! label values. A worker finds a series through its own thread-local cache, so a request
//! takes no lock and pays one relaxed atomic add per number it records; the global table (and
//! its mutex) is touched only the first time a worker meets a label set, and by scrapes.
//! Series, like Kong's, live until the process ends and survive config changes.

use rustc_hash::FxHashMap;
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};

/// Kong 3.x has workspaces; this gateway serves the default one.
pub const WORKSPACE: &str = "default";

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
    crate::locked(&REGISTRY)
}

/// The series one (service, route, consumer) records into, as a worker knows them: each
/// fetched from the registry the first time it is used.
#[derive(Default)]
struct Slot {
    latencies: Option<Arc<Latencies>>,
    bandwidth: Option<Arc<Bandwidth>>,
    /// By status code and whether the service answered; a route sees few distinct ones.
    requests: Vec<(u16, bool, Arc<Requests>)>,
}

/// A worker's shortcuts to the series it has met, by encoded (service, route, consumer).
#[derive(Default)]
struct Local {
    key: Vec<u8>,
    slots: FxHashMap<Box<[u8]>, Slot>,
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

/// Finds or creates the series of `labels` in one table.
fn global<T: Default>(table: fn(&mut Registry) -> &mut Table<T>, labels: &[&str]) -> Arc<T> {
    let mut key = Vec::new();
    encode(&mut key, labels);
    table(&mut registry()).get_or_insert(&key, labels)
}

/// What one request adds, as its plugin's options choose.
#[derive(Debug, Clone, Copy)]
pub struct Observation<'a> {
    pub service: &'a str,
    pub route: &'a str,
    /// Empty unless `per_consumer`.
    pub consumer: &'a str,
    /// Status code and whether the service made the response (`status_code_metrics`).
    pub status: Option<(http::StatusCode, bool)>,
    /// Bytes in and out (`bandwidth_metrics`).
    pub bandwidth: Option<(u64, u64)>,
    /// Request, upstream and kong latencies in ms (`latency_metrics`).
    pub latencies: Option<(u64, Option<u64>, u64)>,
}

/// Adds one request: a hash lookup in the worker's cache, then relaxed atomic adds.
pub fn record(o: &Observation<'_>) {
    LOCAL.with(|cell| match cell.try_borrow_mut() {
        Ok(mut local) => {
            let local = &mut *local;
            encode(&mut local.key, &[o.service, o.route, o.consumer]);
            let slot = match local.slots.get_mut(local.key.as_slice()) {
                Some(slot) => slot,
                None => local.slots.entry(local.key.as_slice().into()).or_default(),
            };
            add(slot, o);
        }
        // Only if recording re-entered itself: record without the cache.
        Err(_) => add(&mut Slot::default(), o),
    });
}

fn add(slot: &mut Slot, o: &Observation<'_>) {
    if let Some((ingress, egress)) = o.bandwidth {
        let b = slot.bandwidth.get_or_insert_with(|| {
            global(
                |r| &mut r.bandwidth,
                &[o.service, o.route, WORKSPACE, o.consumer],
            )
        });
        // Kong adds positive sizes only, so a direction appears once it has bytes.
        if ingress > 0 {
            b.ingress.fetch_add(ingress, Relaxed);
        }
        if egress > 0 {
            b.egress.fetch_add(egress, Relaxed);
        }
    }
    if let Some((status, from_service)) = o.status {
        let code = status.as_u16();
        let known = slot
            .requests
            .iter()
            .find(|(c, s, _)| *c == code && *s == from_service);
        let n = match known {
            Some((_, _, n)) => n.clone(),
            None => {
                let source = if from_service { "service" } else { "kong" };
                let labels = [
                    o.service,
                    o.route,
                    status.as_str(),
                    source,
                    WORKSPACE,
                    o.consumer,
                ];
                let n = global(|r| &mut r.requests, &labels);
                slot.requests.push((code, from_service, n.clone()));
                n
            }
        };
        n.0.fetch_add(1, Relaxed);
    }
    if let Some((request, upstream, kong)) = o.latencies {
        let h = slot
            .latencies
            .get_or_insert_with(|| global(|r| &mut r.latencies, &[o.service, o.route, WORKSPACE]));
        h.request.observe(request);
        if let Some(up) = upstream {
            h.upstream.observe(up);
        }
        h.kong.observe(kong);
    }
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
        let o = Observation {
            service: "svc-series-test",
            route: "route-series-test",
            consumer: "",
            status: Some((http::StatusCode::OK, true)),
            bandwidth: Some((3, 0)),
            latencies: None,
        };
        record(&o);
        record(&o);
        std::thread::spawn(move || {
            record(&Observation {
                bandwidth: Some((4, 0)),
                ..o
            })
        })
        .join()
        .ok();
        let reg = registry();
        let mine = |l: &[String]| l.first().map(String::as_str) == Some("svc-series-test");
        let bw: Vec<u64> = reg
            .bandwidth
            .series()
            .filter(|(l, _)| mine(l))
            .map(|(_, b)| b.ingress.load(Relaxed))
            .collect();
        assert_eq!(bw, [10]);
        let codes: Vec<(String, u64)> = reg
            .requests
            .series()
            .filter(|(l, _)| mine(l))
            .map(|(l, n)| (l.join("|"), n.0.load(Relaxed)))
            .collect();
        assert_eq!(
            codes,
            [(
                "svc-series-test|route-series-test|200|service|default|".to_string(),
                3
            )]
        );
        assert!(!reg.latencies.series().any(|(l, _)| mine(l)));
    }
}
