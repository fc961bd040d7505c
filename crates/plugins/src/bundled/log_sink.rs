//! What the log plugins share: a bounded queue per destination, drained by one thread that
//! batches entries and delivers them with retries (Kong's `kong.tools.queue`). The request path
//! only serializes and enqueues; a full queue drops the entry and counts it. Queues are shared
//! by every plugin instance with the same destination and outlive config reloads, so a reload
//! does not lose queued entries.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, LazyLock, Mutex, Weak};
use std::time::{Duration, Instant};

/// Sends a batch of serialized entries to a destination. Runs on the queue's own thread, so it
/// may block.
pub(crate) trait Deliver: Send + 'static {
    fn deliver(&mut self, batch: &[Vec<u8>]) -> Result<(), String>;
}

/// Kong's queue parameters (`typedefs.queue`), in their units.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct QueueParams {
    pub max_batch_size: usize,
    pub max_coalescing_delay: Duration,
    pub max_entries: usize,
    pub max_bytes: Option<usize>,
    pub max_retry_time: Duration,
    pub initial_retry_delay: Duration,
    pub max_retry_delay: Duration,
}

impl QueueParams {
    /// One entry at a time, no retry: for destinations where a retry cannot help (a full disk).
    pub fn immediate() -> Self {
        QueueParams {
            max_batch_size: 1,
            max_coalescing_delay: Duration::ZERO,
            max_entries: 10_000,
            max_bytes: None,
            max_retry_time: Duration::ZERO,
            initial_retry_delay: Duration::from_millis(10),
            max_retry_delay: Duration::from_millis(10),
        }
    }

    /// From a plugin config's `queue` record (absent fields take Kong's defaults).
    pub fn from_config(q: Option<&serde_json::Value>) -> Self {
        let num = |name: &str, default: f64| {
            q.and_then(|q| q.get(name))
                .and_then(serde_json::Value::as_f64)
                .unwrap_or(default)
        };
        let secs = |name: &str, default: f64| Duration::from_secs_f64(num(name, default).max(0.0));
        QueueParams {
            max_batch_size: num("max_batch_size", 1.0).max(1.0) as usize,
            max_coalescing_delay: secs("max_coalescing_delay", 1.0),
            max_entries: num("max_entries", 10_000.0).max(1.0) as usize,
            max_bytes: q
                .and_then(|q| q.get("max_bytes"))
                .and_then(serde_json::Value::as_u64)
                .map(|b| b as usize),
            max_retry_time: secs("max_retry_time", 60.0),
            initial_retry_delay: secs("initial_retry_delay", 0.01),
            max_retry_delay: secs("max_retry_delay", 60.0),
        }
    }
}

/// Entries each log plugin dropped (queue full, destination failing past its retry time, disk
/// full), by plugin name, for `/metrics`.
type DropCounters = Vec<(&'static str, Arc<AtomicU64>)>;

static DROPPED: LazyLock<Mutex<DropCounters>> = LazyLock::new(|| Mutex::new(Vec::new()));

fn drop_counter(plugin: &'static str) -> Arc<AtomicU64> {
    let mut all = crate::locked(&DROPPED);
    if let Some((_, c)) = all.iter().find(|(p, _)| *p == plugin) {
        return c.clone();
    }
    let c = Arc::new(AtomicU64::new(0));
    all.push((plugin, c.clone()));
    c
}

/// Entries queued or being delivered, over every queue (for a stop that waits for them).
static PENDING: AtomicUsize = AtomicUsize::new(0);

/// Waits until every queued entry was delivered (or dropped), at most `timeout`; returns how
/// many are still pending. Called by the node when it stops, after in-flight requests ended.
pub fn wait_drained(timeout: Duration) -> usize {
    let deadline = Instant::now() + timeout;
    loop {
        let pending = PENDING.load(Relaxed);
        if pending == 0 || Instant::now() >= deadline {
            return pending;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Dropped entries per plugin name.
pub fn dropped_counts() -> Vec<(&'static str, u64)> {
    let all = crate::locked(&DROPPED);
    all.iter().map(|(p, c)| (*p, c.load(Relaxed))).collect()
}

/// The `/metrics` lines for dropped log entries (nothing until a log plugin was configured).
pub fn dropped_exposition() -> String {
    let counts = dropped_counts();
    if counts.is_empty() {
        return String::new();
    }
    let mut out = String::from(
        "# HELP silverback_log_entries_dropped_total Log entries a log plugin could not \
         deliver (queue full, destination down past its retry time, disk full)\n\
         # TYPE silverback_log_entries_dropped_total counter\n",
    );
    for (plugin, n) in counts {
        out.push_str(&format!(
            "silverback_log_entries_dropped_total{{plugin=\"{plugin}\"}} {n}\n"
        ));
    }
    out
}

/// A destination's queue. Dropping the last handle lets its thread deliver what is queued and
/// end.
pub(crate) struct Sink {
    tx: SyncSender<Vec<u8>>,
    queued_bytes: Arc<AtomicUsize>,
    max_bytes: Option<usize>,
    dropped: Arc<AtomicU64>,
    plugin: &'static str,
}

static SINKS: LazyLock<Mutex<HashMap<String, Weak<Sink>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

impl Sink {
    /// The queue for `key` (a destination and the settings that shape delivery), started with
    /// `deliver` unless one is already running.
    pub fn shared(
        plugin: &'static str,
        key: String,
        params: QueueParams,
        deliver: impl FnOnce() -> Box<dyn Deliver>,
    ) -> Result<Arc<Sink>, String> {
        let mut sinks = crate::locked(&SINKS);
        sinks.retain(|_, s| s.strong_count() > 0);
        let key = format!("{plugin}|{key}|{params:?}");
        if let Some(s) = sinks.get(&key).and_then(Weak::upgrade) {
            return Ok(s);
        }
        let (tx, rx) = sync_channel(params.max_entries);
        let queued_bytes = Arc::new(AtomicUsize::new(0));
        let dropped = drop_counter(plugin);
        let worker = Worker {
            rx,
            deliver: deliver(),
            params: params.clone(),
            queued_bytes: queued_bytes.clone(),
            dropped: dropped.clone(),
            plugin,
        };
        std::thread::Builder::new()
            .name(format!("{plugin}-queue"))
            .spawn(move || worker.run())
            .map_err(|e| format!("cannot start the {plugin} queue: {e}"))?;
        let sink = Arc::new(Sink {
            tx,
            queued_bytes,
            max_bytes: params.max_bytes,
            dropped,
            plugin,
        });
        sinks.insert(key, Arc::downgrade(&sink));
        Ok(sink)
    }

    /// Queues the request's log record as JSON, a line of its own with `newline` (Kong's
    /// stream and file loggers); a record that does not serialize is logged and skipped.
    pub fn push_record(&self, ctx: &crate::pdk::Ctx, newline: bool) {
        match serde_json::to_vec(&crate::pdk::serialize::serialize(ctx)) {
            Ok(mut entry) => {
                if newline {
                    entry.push(b'\n');
                }
                self.push(entry);
            }
            Err(e) => {
                tracing::error!(plugin = self.plugin, request_id = ctx.request_id(), error = %e, "cannot serialize log entry")
            }
        }
    }

    /// Queues an entry without waiting; a full queue drops it (counted, and logged).
    pub fn push(&self, entry: Vec<u8>) {
        let len = entry.len();
        if let Some(max) = self.max_bytes
            && self.queued_bytes.load(Relaxed) + len > max
        {
            self.drop_entry("queue is over max_bytes");
            return;
        }
        self.queued_bytes.fetch_add(len, Relaxed);
        PENDING.fetch_add(1, Relaxed);
        if let Err(e) = self.tx.try_send(entry) {
            self.queued_bytes.fetch_sub(len, Relaxed);
            PENDING.fetch_sub(1, Relaxed);
            self.drop_entry(match e {
                TrySendError::Full(_) => "queue is full (max_entries)",
                TrySendError::Disconnected(_) => "queue has stopped",
            });
        }
    }

    fn drop_entry(&self, why: &str) {
        let n = self.dropped.fetch_add(1, Relaxed) + 1;
        // A line per drop would flood the log when a destination is down.
        if n.is_power_of_two() {
            tracing::warn!(
                plugin = self.plugin,
                dropped = n,
                "log entry dropped: {why}"
            );
        }
    }
}

struct Worker {
    rx: Receiver<Vec<u8>>,
    deliver: Box<dyn Deliver>,
    params: QueueParams,
    queued_bytes: Arc<AtomicUsize>,
    dropped: Arc<AtomicU64>,
    plugin: &'static str,
}

impl Worker {
    fn run(mut self) {
        let mut open = true;
        while open {
            let Ok(first) = self.rx.recv() else { break };
            let mut batch = vec![first];
            let deadline = Instant::now() + self.params.max_coalescing_delay;
            while batch.len() < self.params.max_batch_size {
                let wait = deadline.saturating_duration_since(Instant::now());
                match self.rx.recv_timeout(wait) {
                    Ok(e) => batch.push(e),
                    Err(RecvTimeoutError::Timeout) => break,
                    Err(RecvTimeoutError::Disconnected) => {
                        open = false;
                        break;
                    }
                }
            }
            self.send(&batch);
            let bytes: usize = batch.iter().map(Vec::len).sum();
            self.queued_bytes.fetch_sub(bytes, Relaxed);
            PENDING.fetch_sub(batch.len(), Relaxed);
        }
    }

    /// Delivers a batch, retrying with exponential backoff until `max_retry_time` has passed;
    /// then the batch is dropped.
    fn send(&mut self, batch: &[Vec<u8>]) {
        let start = Instant::now();
        let mut delay = self.params.initial_retry_delay;
        loop {
            let err = match self.deliver.deliver(batch) {
                Ok(()) => return,
                Err(e) => e,
            };
            if start.elapsed() + delay > self.params.max_retry_time {
                let before = self.dropped.fetch_add(batch.len() as u64, Relaxed);
                let n = before + batch.len() as u64;
                // Every drop would flood the log while a destination is down or a disk full:
                // log the first and then at powers of two.
                if before > 0 && (before + 1..=n).all(|k| !k.is_power_of_two()) {
                    return;
                }
                tracing::error!(
                    plugin = self.plugin,
                    entries = batch.len(),
                    dropped = n,
                    error = %err,
                    "could not deliver log entries, dropped them"
                );
                return;
            }
            tracing::warn!(plugin = self.plugin, error = %err, retry_in = ?delay, "log delivery failed");
            std::thread::sleep(delay);
            delay = (delay * 2).min(self.params.max_retry_delay);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    struct Flaky {
        fail_first: usize,
        out: mpsc::Sender<Vec<Vec<u8>>>,
    }

    impl Deliver for Flaky {
        fn deliver(&mut self, batch: &[Vec<u8>]) -> Result<(), String> {
            if self.fail_first > 0 {
                self.fail_first -= 1;
                return Err("down".into());
            }
            let _ = self.out.send(batch.to_vec());
            Ok(())
        }
    }

    fn params() -> QueueParams {
        QueueParams {
            max_batch_size: 3,
            max_coalescing_delay: Duration::from_millis(200),
            max_entries: 10,
            max_bytes: None,
            max_retry_time: Duration::from_secs(5),
            initial_retry_delay: Duration::from_millis(5),
            max_retry_delay: Duration::from_millis(20),
        }
    }

    #[test]
    fn batches_retries_and_delivers() {
        let (out, got) = mpsc::channel();
        let sink = Sink::shared("test-a", "k".into(), params(), || {
            Box::new(Flaky { fail_first: 2, out })
        })
        .unwrap();
        for i in 0..4u8 {
            sink.push(vec![i]);
        }
        let first = got.recv_timeout(Duration::from_secs(5)).unwrap();
        assert_eq!(first, vec![vec![0], vec![1], vec![2]]);
        let second = got.recv_timeout(Duration::from_secs(5)).unwrap();
        assert_eq!(second, vec![vec![3]]);
    }

    #[test]
    fn same_destination_shares_a_queue_and_full_queues_drop() {
        let (out, _got) = mpsc::channel();
        let mut p = params();
        p.max_entries = 1;
        p.max_retry_time = Duration::from_secs(60);
        p.initial_retry_delay = Duration::from_secs(60);
        let a = Sink::shared("test-b", "k".into(), p.clone(), || {
            Box::new(Flaky {
                fail_first: usize::MAX,
                out,
            })
        })
        .unwrap();
        let b = Sink::shared("test-b", "k".into(), p, || unreachable!()).unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        for _ in 0..10 {
            a.push(vec![1]);
        }
        let dropped = dropped_counts()
            .into_iter()
            .find(|(n, _)| *n == "test-b")
            .map(|(_, n)| n);
        // At most a batch in the worker's hands and one queued: the rest dropped.
        assert!(dropped.is_some_and(|n| n >= 6), "{dropped:?}");
    }
}
