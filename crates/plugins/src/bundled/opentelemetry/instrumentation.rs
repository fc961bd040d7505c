//! The node's tracing settings (Kong's `tracing_instrumentations` and `tracing_sampling_rate`,
//! and the node id for the resource), set once by the node before any plugin is built, and
//! Kong's trace-id-based sampler.

use std::sync::{Arc, RwLock};

/// Which spans a request produces and how many traces are sampled.
#[derive(Debug, Clone, PartialEq)]
pub struct Instrumentation {
    /// Any instrumentation is on: the request gets its `kong` span (else plugins only
    /// propagate trace headers, as Kong with `tracing_instrumentations = off`).
    pub request: bool,
    /// A `kong.balancer` span per upstream try.
    pub balancer: bool,
    /// `tracing_sampling_rate`: used when the plugin's `sampling_rate` is not set.
    pub sampling_rate: f64,
    /// `service.instance.id` of the exported resource.
    pub node_id: String,
}

impl Default for Instrumentation {
    fn default() -> Self {
        Instrumentation {
            request: false,
            balancer: false,
            sampling_rate: 0.01,
            node_id: String::new(),
        }
    }
}

static CURRENT: RwLock<Option<Arc<Instrumentation>>> = RwLock::new(None);

/// Sets the node's tracing settings from `tracing_instrumentations` (`off`, `all` or names)
/// and `tracing_sampling_rate`.
pub fn configure(instrumentations: &[String], sampling_rate: f64, node_id: String) {
    let has = |name: &str| instrumentations.iter().any(|t| t == "all" || t == name);
    let on = !instrumentations.is_empty() && !instrumentations.iter().any(|t| t == "off");
    let settings = Instrumentation {
        request: on,
        balancer: on && has("balancer"),
        sampling_rate,
        node_id,
    };
    *CURRENT.write().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(settings));
}

/// The settings plugin instances are built with.
pub(crate) fn current() -> Arc<Instrumentation> {
    CURRENT
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
        .unwrap_or_default()
}

/// Kong's probability sampler: the trace's first 8 bytes, read as a native (little-endian)
/// unsigned integer, below `rate` × 2^64. So every gateway decides the same for one trace.
pub(crate) fn sample(trace_id: &[u8; 16], rate: f64) -> bool {
    if rate >= 1.0 {
        return true;
    }
    if rate <= 0.0 {
        return false;
    }
    let [a, b, c, d, e, f, g, h, ..] = *trace_id;
    let bound = (rate * 18_446_744_073_709_551_616.0) as u64;
    u64::from_le_bytes([a, b, c, d, e, f, g, h]) < bound
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instrumentation_names() {
        let on = |list: &[&str]| {
            let list: Vec<String> = list.iter().map(|s| s.to_string()).collect();
            configure(&list, 0.5, "n".into());
            let c = current();
            (c.request, c.balancer)
        };
        assert_eq!(on(&["off"]), (false, false));
        assert_eq!(on(&["request"]), (true, false));
        assert_eq!(on(&["router", "balancer"]), (true, true));
        assert_eq!(on(&["all"]), (true, true));
    }

    #[test]
    fn sampler_reads_the_first_eight_bytes() {
        let mut id = [0xffu8; 16];
        assert!(!sample(&id, 0.5));
        assert!(sample(&id, 1.0));
        id[7] = 0x7f; // little-endian: the high byte is the eighth
        assert!(sample(&id, 0.5));
        assert!(!sample(&[0; 16], 0.0));
    }
}
