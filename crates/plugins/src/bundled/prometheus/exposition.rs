//! The Prometheus text format of `/metrics`, laid out as Kong's exporter lays it out: metric
//! families in name order, each with its HELP and TYPE lines, samples sorted by their labels
//! (histogram buckets in bound order, then counts, then sums). A family without samples is
//! left out. Node-level metrics are always there; the per-request ones only while a
//! prometheus plugin is configured.

use super::series::{self, HistogramValues};
use std::fmt::Write;
use std::sync::atomic::Ordering::Relaxed;

/// Kong's content type for `/metrics`.
pub const CONTENT_TYPE: &str = "text/plain; charset=UTF-8";

/// What the node knows about itself at scrape time.
#[derive(Debug, Clone, Default)]
pub struct Node {
    pub node_id: String,
    pub version: String,
    pub datastore_reachable: bool,
    pub connections: Connections,
    /// Whether an enabled prometheus plugin is in the config: only then are per-request
    /// metrics exported (Kong's exporter does the same).
    pub plugin_enabled: bool,
    /// Present when a plugin asks for `upstream_health_metrics`.
    pub upstream_health: Option<Vec<TargetHealth>>,
}

/// Client connections and requests, as nginx's stub_status counts them.
#[derive(Debug, Clone, Copy, Default)]
pub struct Connections {
    pub accepted: u64,
    pub active: u64,
    pub handled: u64,
    pub reading: u64,
    pub waiting: u64,
    pub writing: u64,
    pub requests: u64,
}

/// The state of one address of an upstream target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    HealthchecksOff,
    Healthy,
    Unhealthy,
    DnsError,
}

impl Health {
    const ALL: [Health; 4] = [
        Health::HealthchecksOff,
        Health::Healthy,
        Health::Unhealthy,
        Health::DnsError,
    ];

    fn as_str(self) -> &'static str {
        match self {
            Health::HealthchecksOff => "healthchecks_off",
            Health::Healthy => "healthy",
            Health::Unhealthy => "unhealthy",
            Health::DnsError => "dns_error",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetHealth {
    pub upstream: String,
    pub target: String,
    /// `ip:port`, empty when the name did not resolve.
    pub address: String,
    pub health: Health,
}

/// One metric family being assembled: (sort key, sample line) pairs.
struct Family {
    name: &'static str,
    help: &'static str,
    kind: &'static str,
    samples: Vec<(String, String)>,
}

impl Family {
    fn new(name: &'static str, kind: &'static str, help: &'static str) -> Self {
        Family {
            name,
            help,
            kind,
            samples: Vec::new(),
        }
    }

    fn sample(&mut self, labels: &[(&str, &str)], value: u64) {
        let line = format!("{}{}", self.name, label_set(labels, None));
        self.samples.push((line.clone(), format!("{line} {value}")));
    }

    fn histogram(&mut self, labels: &[(&str, &str)], bounds: &[u64], v: &HistogramValues) {
        let le = |i: usize| match bounds.get(i) {
            Some(b) => b.to_string(),
            None => "+Inf".to_string(),
        };
        for (i, n) in v.cumulative.iter().enumerate() {
            let bound = le(i);
            // Kong pads bounds so they sort numerically; the index does the same here.
            let key = format!(
                "{}_bucket{}",
                self.name,
                label_set(labels, Some(&format!("{i:05}")))
            );
            let line = format!("{}_bucket{}", self.name, label_set(labels, Some(&bound)));
            self.samples.push((key, format!("{line} {n}")));
        }
        let set = label_set(labels, None);
        let count = format!("{}_count{set}", self.name);
        let sum = format!("{}_sum{set}", self.name);
        self.samples
            .push((count.clone(), format!("{count} {}", v.count)));
        self.samples.push((sum.clone(), format!("{sum} {}", v.sum)));
    }
}

/// `{a="x",b="y"}` with an optional trailing `le`, values escaped; empty without labels.
fn label_set(labels: &[(&str, &str)], le: Option<&str>) -> String {
    if labels.is_empty() && le.is_none() {
        return String::new();
    }
    let mut s = String::from("{");
    let le = le.map(|v| ("le", v));
    for (i, (name, value)) in labels.iter().copied().chain(le).enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(name);
        s.push_str("=\"");
        for c in value.chars() {
            match c {
                '\\' => s.push_str("\\\\"),
                '"' => s.push_str("\\\""),
                '\n' => s.push_str("\\n"),
                c => s.push(c),
            }
        }
        s.push('"');
    }
    s.push('}');
    s
}

/// The whole `/metrics` body.
pub fn render(node: &Node) -> String {
    let mut families = node_families(node);
    if node.plugin_enabled {
        families.extend(request_families());
    }
    families.retain(|f| !f.samples.is_empty());
    families.sort_by_key(|f| f.name);
    let mut out = String::with_capacity(4096);
    for mut f in families {
        let _ = writeln!(out, "# HELP {} {}", f.name, f.help);
        let _ = writeln!(out, "# TYPE {} {}", f.name, f.kind);
        f.samples.sort_by(|a, b| a.0.cmp(&b.0));
        for (_, line) in f.samples {
            out.push_str(&line);
            out.push('\n');
        }
    }
    out
}

fn node_families(node: &Node) -> Vec<Family> {
    let id = node.node_id.as_str();
    let c = &node.connections;
    let mut connections = Family::new(
        "kong_nginx_connections_total",
        "gauge",
        "Client connections of this node, by state",
    );
    for (state, n) in [
        ("accepted", c.accepted),
        ("active", c.active),
        ("handled", c.handled),
        ("reading", c.reading),
        ("total", c.requests),
        ("waiting", c.waiting),
        ("writing", c.writing),
    ] {
        connections.sample(
            &[("node_id", id), ("subsystem", "http"), ("state", state)],
            n,
        );
    }
    let mut requests = Family::new(
        "kong_nginx_requests_total",
        "gauge",
        "Requests this node has served since it started",
    );
    requests.sample(&[("node_id", id), ("subsystem", "http")], c.requests);
    let mut datastore = Family::new(
        "kong_datastore_reachable",
        "gauge",
        "Whether the datastore answers: 1 when it does, 0 when it does not",
    );
    datastore.sample(&[], u64::from(node.datastore_reachable));
    let mut info = Family::new(
        "kong_node_info",
        "gauge",
        "This node's id and the Kong version it implements",
    );
    info.sample(&[("node_id", id), ("version", &node.version)], 1);
    let mut families = vec![connections, requests, datastore, info];
    if let Some(targets) = &node.upstream_health {
        let mut health = Family::new(
            "kong_upstream_target_health",
            "gauge",
            "State of each upstream target address (healthchecks_off, healthy, unhealthy or \
             dns_error); 1 marks the current state",
        );
        for t in targets {
            for state in Health::ALL {
                health.sample(
                    &[
                        ("upstream", &t.upstream),
                        ("target", &t.target),
                        ("address", &t.address),
                        ("state", state.as_str()),
                        ("subsystem", "http"),
                    ],
                    u64::from(state == t.health),
                );
            }
        }
        families.push(health);
    }
    if node.plugin_enabled {
        // Recording cannot fail here; the counter is kept for dashboards that read it.
        let mut errors = Family::new(
            "kong_nginx_metric_errors_total",
            "counter",
            "Errors met while recording metrics",
        );
        errors.sample(&[], 0);
        families.push(errors);
    }
    families
}

fn request_families() -> Vec<Family> {
    let mut requests = Family::new(
        "kong_http_requests_total",
        "counter",
        "HTTP responses by service, route, status code, source and consumer",
    );
    let mut bandwidth = Family::new(
        "kong_bandwidth_bytes",
        "counter",
        "Bytes received from clients (ingress) and sent to them (egress), by service, route \
         and consumer",
    );
    let mut kong = Family::new(
        "kong_kong_latency_ms",
        "histogram",
        "Time spent in the gateway and its plugins before proxying, in milliseconds, by \
         service and route",
    );
    let mut upstream = Family::new(
        "kong_upstream_latency_ms",
        "histogram",
        "Time the upstream took to send its response head, in milliseconds, by service and \
         route",
    );
    let mut total = Family::new(
        "kong_request_latency_ms",
        "histogram",
        "Time from the first byte of a request to the end of its response, in milliseconds, \
         by service and route",
    );
    let reg = series::registry();
    for (l, n) in reg.requests.series() {
        let [service, route, code, source, workspace, consumer] = label_values(l);
        requests.sample(
            &[
                ("service", service),
                ("route", route),
                ("code", code),
                ("source", source),
                ("workspace", workspace),
                ("consumer", consumer),
            ],
            n.0.load(Relaxed),
        );
    }
    for (l, b) in reg.bandwidth.series() {
        let [service, route, workspace, consumer] = label_values(l);
        for (direction, counter) in [("egress", &b.egress), ("ingress", &b.ingress)] {
            let n = counter.load(Relaxed);
            // Kong only adds positive sizes, so a direction appears once it has bytes.
            if n > 0 {
                bandwidth.sample(
                    &[
                        ("service", service),
                        ("route", route),
                        ("direction", direction),
                        ("workspace", workspace),
                        ("consumer", consumer),
                    ],
                    n,
                );
            }
        }
    }
    for (l, h) in reg.latencies.series() {
        let [service, route, workspace] = label_values(l);
        let labels = [
            ("service", service),
            ("route", route),
            ("workspace", workspace),
        ];
        for (family, histogram) in [
            (&mut kong, &h.kong),
            (&mut upstream, &h.upstream),
            (&mut total, &h.request),
        ] {
            let v = histogram.values();
            if v.count > 0 {
                family.histogram(&labels, histogram.bounds, &v);
            }
        }
    }
    vec![requests, bandwidth, kong, upstream, total]
}

/// A series' label values as a fixed array (empty strings if it has fewer).
fn label_values<const N: usize>(l: &[String]) -> [&str; N] {
    std::array::from_fn(|i| l.get(i).map_or("", String::as_str))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(
            label_set(&[("a", "x\"y\\z\nw")], None),
            r#"{a="x\"y\\z\nw"}"#
        );
        assert_eq!(label_set(&[], None), "");
        assert_eq!(
            label_set(&[("a", "b")], Some("+Inf")),
            r#"{a="b",le="+Inf"}"#
        );
    }

    #[test]
    fn node_metrics_without_plugin() {
        let node = Node {
            node_id: "n1".into(),
            version: "3.10.0".into(),
            datastore_reachable: true,
            connections: Connections {
                accepted: 3,
                active: 1,
                handled: 3,
                writing: 1,
                requests: 7,
                ..Connections::default()
            },
            plugin_enabled: false,
            upstream_health: None,
        };
        let text = render(&node);
        assert!(
            text.contains("# TYPE kong_datastore_reachable gauge\nkong_datastore_reachable 1\n")
        );
        assert!(text.contains(
            "kong_nginx_connections_total{node_id=\"n1\",subsystem=\"http\",state=\"total\"} 7\n"
        ));
        assert!(text.contains("kong_node_info{node_id=\"n1\",version=\"3.10.0\"} 1\n"));
        assert!(!text.contains("kong_nginx_metric_errors_total"));
        assert!(!text.contains("kong_upstream_target_health"));
        // Families in name order.
        let names: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .map(|l| l.split(' ').next().unwrap_or_default())
            .collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        assert_eq!(names, sorted);
    }

    #[test]
    fn histogram_lines_are_cumulative_and_ordered() {
        let mut f = Family::new("m", "histogram", "h");
        let h = series::Histogram::new(&[5, 10]);
        h.observe(3);
        h.observe(7);
        h.observe(70);
        f.histogram(&[("s", "a")], h.bounds, &h.values());
        f.samples.sort_by(|a, b| a.0.cmp(&b.0));
        let lines: Vec<&str> = f.samples.iter().map(|s| s.1.as_str()).collect();
        assert_eq!(
            lines,
            [
                "m_bucket{s=\"a\",le=\"5\"} 1",
                "m_bucket{s=\"a\",le=\"10\"} 2",
                "m_bucket{s=\"a\",le=\"+Inf\"} 3",
                "m_count{s=\"a\"} 3",
                "m_sum{s=\"a\"} 80",
            ]
        );
    }
}
