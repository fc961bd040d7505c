//! An upstream's `healthchecks` record (Kong's fields and defaults, already filled in by the
//! schema), compiled once per balancer.

use serde_json::Value;
use std::time::Duration;

/// HTTP statuses 100–999 as a bitmap: one lookup per report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatusSet([u64; 16]);

impl StatusSet {
    pub fn of(statuses: &[u16]) -> Self {
        let mut set = StatusSet::default();
        for s in statuses {
            if let Some(word) = set.0.get_mut(usize::from(*s) / 64) {
                *word |= 1 << (s % 64);
            }
        }
        set
    }

    pub fn contains(&self, status: u16) -> bool {
        self.0
            .get(usize::from(status) / 64)
            .is_some_and(|w| w & (1 << (status % 64)) != 0)
    }

    fn from_json(v: Option<&Value>) -> Self {
        let statuses: Vec<u16> = v
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_u64)
                    .filter_map(|s| u16::try_from(s).ok())
                    .collect()
            })
            .unwrap_or_default();
        StatusSet::of(&statuses)
    }
}

/// The counters of one kind of check (active or passive): which statuses count as successes
/// and failures, and how many of each flip the address.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Limits {
    pub healthy_statuses: StatusSet,
    pub successes: u8,
    pub unhealthy_statuses: StatusSet,
    pub http_failures: u8,
    pub tcp_failures: u8,
    pub timeouts: u8,
}

impl Limits {
    fn from_json(v: &Value) -> Self {
        let counter = |section: &str, name: &str| -> u8 {
            v[section][name]
                .as_u64()
                .map_or(0, |n| u8::try_from(n).unwrap_or(u8::MAX))
        };
        Limits {
            healthy_statuses: StatusSet::from_json(v["healthy"].get("http_statuses")),
            successes: counter("healthy", "successes"),
            unhealthy_statuses: StatusSet::from_json(v["unhealthy"].get("http_statuses")),
            http_failures: counter("unhealthy", "http_failures"),
            tcp_failures: counter("unhealthy", "tcp_failures"),
            timeouts: counter("unhealthy", "timeouts"),
        }
    }
}

/// How active checks probe an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeKind {
    /// Connecting is the check.
    Tcp,
    /// `GET http_path` and the response status.
    Http,
    /// The same over TLS.
    Https,
}

/// Active checks: probes sent by the gateway itself on a timer.
#[derive(Debug, Clone, PartialEq)]
pub struct Active {
    pub kind: ProbeKind,
    pub timeout: Duration,
    pub concurrency: usize,
    pub http_path: String,
    pub https_sni: Option<String>,
    pub https_verify_certificate: bool,
    /// Extra request headers, one pair per value.
    pub headers: Vec<(String, String)>,
    /// How often healthy addresses are probed; zero: never.
    pub healthy_interval: Duration,
    /// How often unhealthy addresses are probed; zero: never.
    pub unhealthy_interval: Duration,
    pub limits: Limits,
}

/// Everything the balancer needs from `healthchecks`.
#[derive(Debug, Clone, PartialEq)]
pub struct Checks {
    pub active: Active,
    /// Passive checks: what proxied responses, timeouts and TCP failures tell.
    pub passive: Limits,
    /// Percentage of the upstream's weight that must be healthy for it to take traffic.
    pub threshold: f64,
}

fn seconds(v: &Value) -> Duration {
    v.as_f64()
        .filter(|s| s.is_finite() && *s > 0.0)
        .map_or(Duration::ZERO, Duration::from_secs_f64)
}

impl Checks {
    /// Reads the record; missing fields count as Kong's "off" values.
    pub fn from_json(v: &Value) -> Self {
        let a = &v["active"];
        let kind = match a["type"].as_str() {
            Some("tcp") => ProbeKind::Tcp,
            Some("https" | "grpcs") => ProbeKind::Https,
            _ => ProbeKind::Http,
        };
        let mut headers = Vec::new();
        if let Some(map) = a["headers"].as_object() {
            for (name, values) in map {
                match values {
                    Value::Array(list) => headers.extend(
                        list.iter()
                            .filter_map(Value::as_str)
                            .map(|val| (name.clone(), val.to_string())),
                    ),
                    Value::String(s) => headers.push((name.clone(), s.clone())),
                    _ => {}
                }
            }
        }
        Checks {
            active: Active {
                kind,
                timeout: seconds(&a["timeout"]),
                concurrency: a["concurrency"]
                    .as_u64()
                    .map_or(10, |c| usize::try_from(c).unwrap_or(usize::MAX))
                    .max(1),
                http_path: a["http_path"].as_str().unwrap_or("/").to_string(),
                https_sni: a["https_sni"].as_str().map(str::to_string),
                https_verify_certificate: a["https_verify_certificate"].as_bool().unwrap_or(true),
                headers,
                healthy_interval: seconds(&a["healthy"]["interval"]),
                unhealthy_interval: seconds(&a["unhealthy"]["interval"]),
                limits: Limits::from_json(a),
            },
            passive: Limits::from_json(&v["passive"]),
            threshold: v["threshold"].as_f64().unwrap_or(0.0),
        }
    }

    /// Whether active probes run at all.
    pub fn active_enabled(&self) -> bool {
        !self.active.healthy_interval.is_zero() || !self.active.unhealthy_interval.is_zero()
    }

    /// Kong's `is_upstream_using_healthcheck`: without it, addresses report
    /// `HEALTHCHECKS_OFF` and the Admin API cannot set their health.
    pub fn in_use(&self) -> bool {
        self.active_enabled()
            || self.passive.tcp_failures > 0
            || self.passive.timeouts > 0
            || self.passive.http_failures > 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn kong_defaults_are_off() {
        let v = json!({
            "active": {"type": "http", "timeout": 1, "concurrency": 10, "http_path": "/",
                "https_verify_certificate": true,
                "healthy": {"interval": 0, "http_statuses": [200, 302], "successes": 0},
                "unhealthy": {"interval": 0, "http_statuses": [429, 404, 500, 501, 502, 503, 504, 505],
                    "tcp_failures": 0, "timeouts": 0, "http_failures": 0}},
            "passive": {"type": "http",
                "healthy": {"http_statuses": [200, 201], "successes": 0},
                "unhealthy": {"http_statuses": [429, 500, 503], "tcp_failures": 0, "timeouts": 0,
                    "http_failures": 0}},
            "threshold": 0
        });
        let c = Checks::from_json(&v);
        assert!(!c.in_use());
        assert_eq!(c.active.timeout, Duration::from_secs(1));
        assert!(c.active.limits.unhealthy_statuses.contains(404));
        assert!(c.passive.unhealthy_statuses.contains(503));
        assert!(!c.passive.unhealthy_statuses.contains(502));
        assert!(c.passive.healthy_statuses.contains(201));
    }

    #[test]
    fn intervals_and_counters_switch_checks_on() {
        let v = json!({
            "active": {"type": "tcp", "healthy": {"interval": 0.5, "successes": 2},
                "unhealthy": {"interval": 0}, "headers": {"x-a": ["1", "2"]}},
            "passive": {"unhealthy": {"tcp_failures": 3}},
            "threshold": 25
        });
        let c = Checks::from_json(&v);
        assert!(c.active_enabled() && c.in_use());
        assert_eq!(c.active.kind, ProbeKind::Tcp);
        assert_eq!(c.active.healthy_interval, Duration::from_millis(500));
        assert_eq!(c.active.limits.successes, 2);
        assert_eq!(c.passive.tcp_failures, 3);
        assert_eq!(c.active.headers.len(), 2);
        assert_eq!(c.threshold, 25.0);
    }
}
