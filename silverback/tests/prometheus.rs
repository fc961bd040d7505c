//! prometheus against the real binary: exact counters and histogram counts after known traffic
//! over two routes, two consumers and several statuses; each option on and off; node metrics
//! without traffic; the same text on the status and Admin APIs; and the output checked by
//! `promtool check metrics` and by Python's `prometheus_client` parser.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

const ALL_ON: &str = "{per_consumer: true, status_code_metrics: true, latency_metrics: true, \
                      bandwidth_metrics: true, upstream_health_metrics: true}";

fn traffic_config(up: &Upstream) -> String {
    format!(
        r#"_format_version: "3.0"
consumers:
- username: alice
  keyauth_credentials: [{{key: alice-key}}]
- username: bob
  keyauth_credentials: [{{key: bob-key}}]
upstreams:
- name: pool
  targets: [{{target: "{up}"}}, {{target: "127.0.0.1:1"}}]
services:
- name: s
  url: http://{up}
  routes:
  - name: one
    paths: [/one]
  - name: two
    paths: [/two]
    plugins:
    - name: key-auth
  - name: stop
    paths: [/stop]
    plugins:
    - name: request-termination
      config: {{status_code: 418}}
plugins:
- name: prometheus
  config: {ALL_ON}
"#,
        up = up.addr
    )
}

async fn scrape(url: &str) -> String {
    let r = get(&client(), url, &[]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("text/plain; charset=UTF-8"));
    r.text()
}

/// The value of the sample written exactly as `series` (name and labels).
fn value(text: &str, series: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.parse().unwrap_or_else(|_| panic!("{series}: {v}")))
}

fn requests(route: &str, code: u16, source: &str, consumer: &str) -> String {
    format!(
        r#"kong_http_requests_total{{service="s",route="{route}",code="{code}",source="{source}",workspace="default",consumer="{consumer}"}}"#
    )
}

fn hist(name: &str, suffix: &str, route: &str, le: Option<&str>) -> String {
    let le = le.map(|b| format!(r#",le="{b}""#)).unwrap_or_default();
    format!(r#"kong_{name}_{suffix}{{service="s",route="{route}",workspace="default"{le}}}"#)
}

/// Sends the known traffic: 12 requests over routes one, two (alice, bob, no key) and stop.
async fn send_traffic(gw: &Gateway) {
    let c = client();
    for _ in 0..3 {
        assert_eq!(get(&c, &gw.url("/one"), &[]).await.status, 200);
    }
    for _ in 0..2 {
        assert_eq!(get(&c, &gw.url("/one/status/404"), &[]).await.status, 404);
    }
    for _ in 0..2 {
        let r = get(&c, &gw.url("/two"), &[("apikey", "alice-key")]).await;
        assert_eq!(r.status, 200);
    }
    let r = get(&c, &gw.url("/two"), &[("apikey", "bob-key")]).await;
    assert_eq!(r.status, 200);
    assert_eq!(get(&c, &gw.url("/two"), &[]).await.status, 401);
    for _ in 0..2 {
        assert_eq!(get(&c, &gw.url("/stop"), &[]).await.status, 418);
    }
    assert_eq!(get(&c, &gw.url("/nothing-here"), &[]).await.status, 404);
}

/// Waits until the last request's log phase has run (it runs once its body is sent).
async fn scrape_after_traffic(url: &str) -> String {
    let series = requests("stop", 418, "kong", "");
    eventually(Duration::from_secs(5), "last request recorded", || async {
        value(&scrape(url).await, &series) == Some(2)
    })
    .await;
    scrape(url).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_statuses_consumers_and_latencies_exactly() {
    let up = Upstream::start("u");
    let gw = Gateway::with_config(&traffic_config(&up)).start();
    send_traffic(&gw).await;
    let text = scrape_after_traffic(&gw.status_url("/metrics")).await;

    let expected = [
        (requests("one", 200, "service", ""), 3),
        (requests("one", 404, "service", ""), 2),
        (requests("two", 200, "service", "alice"), 2),
        (requests("two", 200, "service", "bob"), 1),
        (requests("two", 401, "kong", ""), 1),
        (requests("stop", 418, "kong", ""), 2),
    ];
    for (series, n) in &expected {
        assert_eq!(value(&text, series), Some(*n), "{series}\n{text}");
    }
    // Exactly those series: the unmatched request is not counted (Kong needs a route).
    let counted: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("kong_http_requests_total{"))
        .collect();
    assert_eq!(counted.len(), expected.len(), "{text}");

    // Request and kong latency: every request of a route; upstream: only proxied ones.
    for (route, all, proxied) in [("one", 5, 5), ("two", 4, 3), ("stop", 2, 0)] {
        for name in ["request_latency_ms", "kong_latency_ms"] {
            assert_eq!(value(&text, &hist(name, "count", route, None)), Some(all));
            assert_eq!(
                value(&text, &hist(name, "bucket", route, Some("+Inf"))),
                Some(all)
            );
        }
        let upstream = value(&text, &hist("upstream_latency_ms", "count", route, None));
        assert_eq!(upstream, (proxied > 0).then_some(proxied), "{route}");
    }
    // Kong's buckets, in order, cumulative.
    let bounds: Vec<String> = text
        .lines()
        .filter_map(|l| {
            l.strip_prefix(
                r#"kong_kong_latency_ms_bucket{service="s",route="one",workspace="default",le=""#,
            )
        })
        .map(|l| l.split('"').next().unwrap().to_string())
        .collect();
    assert_eq!(
        bounds,
        [
            "1", "2", "5", "7", "10", "15", "20", "30", "50", "75", "100", "200", "500", "750",
            "1000", "3000", "6000", "+Inf"
        ]
    );
    let ups: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix(r#"kong_request_latency_ms_bucket{service="s",route="one",workspace="default",le=""#))
        .map(|l| l.split('"').next().unwrap())
        .collect();
    assert_eq!(
        ups,
        [
            "25", "50", "80", "100", "250", "400", "700", "1000", "2000", "5000", "10000", "30000",
            "60000", "+Inf"
        ]
    );
    let mut last = 0;
    for l in text
        .lines()
        .filter(|l| l.starts_with(r#"kong_request_latency_ms_bucket{service="s",route="one""#))
    {
        let n: u64 = l.rsplit(' ').next().unwrap().parse().unwrap();
        assert!(n >= last, "not cumulative: {l}");
        last = n;
    }

    // Bandwidth by consumer, both directions.
    for consumer in ["alice", "bob"] {
        for direction in ["ingress", "egress"] {
            let series = format!(
                r#"kong_bandwidth_bytes{{service="s",route="two",direction="{direction}",workspace="default",consumer="{consumer}"}}"#
            );
            assert!(value(&text, &series).unwrap() > 0, "{series}");
        }
    }

    // Upstream targets, with health checks off.
    for (target, on) in [(up.addr.to_string(), 1), ("127.0.0.1:1".to_string(), 1)] {
        for (state, v) in [
            ("healthchecks_off", on),
            ("healthy", 0),
            ("unhealthy", 0),
            ("dns_error", 0),
        ] {
            let series = format!(
                r#"kong_upstream_target_health{{upstream="pool",target="{target}",address="{target}",state="{state}",subsystem="http"}}"#
            );
            assert_eq!(value(&text, &series), Some(v), "{series}\n{text}");
        }
    }
    assert_eq!(value(&text, "kong_nginx_metric_errors_total"), Some(0));
    assert_eq!(value(&text, "kong_datastore_reachable"), Some(1));

    // The Admin API serves the same metrics.
    let admin = scrape(&gw.admin_url("/metrics")).await;
    for (series, n) in &expected {
        assert_eq!(value(&admin, series), Some(*n), "{series}");
    }
}

/// Each option records only its own metrics; per_consumer only fills the consumer label.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_option_gates_its_metrics() {
    let up = Upstream::start("u");
    let route = |name: &str, config: &str| {
        format!(
            "  - name: {name}\n    paths: [/{name}]\n    plugins:\n    - name: key-auth\n    - name: prometheus\n      config: {config}\n"
        )
    };
    let yaml = format!(
        "_format_version: \"3.0\"\nconsumers:\n- username: alice\n  keyauth_credentials: [{{key: k}}]\nservices:\n- name: s\n  url: http://{}\n  routes:\n{}{}{}{}{}{}",
        up.addr,
        route("codes", "{status_code_metrics: true}"),
        route("percons", "{status_code_metrics: true, per_consumer: true}"),
        route("lat", "{latency_metrics: true}"),
        route("bw", "{bandwidth_metrics: true, per_consumer: true}"),
        route("none", "{}"),
        "  - name: bare\n    paths: [/bare]\n",
    ) + &format!(
        "- url: http://{}\n  routes:\n  - paths: [/anon]\n    plugins:\n    - name: prometheus\n      config: {{status_code_metrics: true}}\n",
        up.addr
    );
    let gw = Gateway::with_config(&yaml).start();
    let c = client();
    for r in ["anon", "none", "bare", "codes", "percons", "lat", "bw"] {
        let reply = get(&c, &gw.url(&format!("/{r}")), &[("apikey", "k")]).await;
        assert_eq!(reply.status, 200);
    }
    let url = gw.status_url("/metrics");
    let bw = r#"kong_bandwidth_bytes{service="s",route="bw",direction="egress",workspace="default",consumer="alice"}"#;
    eventually(Duration::from_secs(5), "bandwidth recorded", || async {
        value(&scrape(&url).await, bw).is_some()
    })
    .await;
    // The earlier requests were logged before bw's was sent (same connection, in order).
    let text = scrape(&url).await;
    assert_eq!(
        value(&text, &requests("codes", 200, "service", "")),
        Some(1)
    );
    assert_eq!(
        value(&text, &requests("percons", 200, "service", "alice")),
        Some(1)
    );
    assert_eq!(
        value(&text, &hist("request_latency_ms", "count", "lat", None)),
        Some(1)
    );
    assert_eq!(
        value(&text, &hist("upstream_latency_ms", "count", "lat", None)),
        Some(1)
    );
    assert_eq!(
        value(&text, &hist("kong_latency_ms", "count", "lat", None)),
        Some(1)
    );
    for (route, family) in [
        ("codes", "kong_request_latency_ms"),
        ("codes", "kong_bandwidth_bytes"),
        ("lat", "kong_http_requests_total"),
        ("lat", "kong_bandwidth_bytes"),
        ("bw", "kong_http_requests_total"),
        ("bw", "kong_request_latency_ms"),
    ] {
        let needle = format!(r#"route="{route}""#);
        assert!(
            !text
                .lines()
                .any(|l| l.starts_with(family) && l.contains(&needle)),
            "{family} has {route}:\n{text}"
        );
    }
    for route in ["none", "bare"] {
        let needle = format!(r#"route="{route}""#);
        assert!(!text.contains(&needle), "{route} recorded:\n{text}");
    }
    // Without names, Kong labels with the service host and the route id.
    let routes = gw
        .admin("GET", "/routes?size=1000", Value::Null)
        .await
        .json();
    let anon = routes["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["paths"] == json!(["/anon"]))
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let series = format!(
        r#"kong_http_requests_total{{service="127.0.0.1",route="{anon}",code="200",source="service",workspace="default",consumer=""}}"#
    );
    assert_eq!(value(&text, &series), Some(1), "{text}");
    // No plugin asks for upstream health.
    assert!(!text.contains("kong_upstream_target_health"));
}

/// Node metrics are there without traffic and without the plugin; per-request families only
/// while a prometheus plugin is enabled (Kong's on-demand export).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_metrics_always_request_metrics_while_enabled() {
    let up = Upstream::start("u");
    let gw = Gateway::with_database().start();
    let svc = gw
        .admin(
            "POST",
            "/services",
            json!({"name": "s", "url": format!("http://{}", up.addr)}),
        )
        .await;
    assert_eq!(svc.status, 201, "{}", svc.text());
    let r = gw
        .admin(
            "POST",
            "/services/s/routes",
            json!({"name": "r", "paths": ["/r"]}),
        )
        .await;
    assert_eq!(r.status, 201);
    let url = gw.status_url("/metrics");

    let text = scrape(&url).await;
    let node_id = gw.admin("GET", "/", Value::Null).await.json()["node_id"]
        .as_str()
        .unwrap()
        .to_string();
    let info = format!(r#"kong_node_info{{node_id="{node_id}",version="3.10.0"}}"#);
    assert_eq!(value(&text, &info), Some(1), "{text}");
    assert_eq!(value(&text, "kong_datastore_reachable"), Some(1));
    for state in [
        "accepted", "active", "handled", "reading", "total", "waiting", "writing",
    ] {
        let series = format!(
            r#"kong_nginx_connections_total{{node_id="{node_id}",subsystem="http",state="{state}"}}"#
        );
        assert!(value(&text, &series).is_some(), "{series}\n{text}");
    }
    assert!(
        value(
            &text,
            &format!(r#"kong_nginx_requests_total{{node_id="{node_id}",subsystem="http"}}"#)
        )
        .is_some()
    );
    assert!(!text.contains("kong_nginx_metric_errors_total"), "{text}");

    let p = gw
        .admin(
            "POST",
            "/plugins",
            json!({"name": "prometheus", "config": {"status_code_metrics": true}}),
        )
        .await;
    assert_eq!(p.status, 201, "{}", p.text());
    assert_eq!(p.json()["config"]["latency_metrics"], json!(false));
    let id = p.json()["id"].as_str().unwrap().to_string();
    let series = r#"kong_http_requests_total{service="s",route="r",code="200",source="service",workspace="default",consumer=""}"#;
    let c = client();
    eventually(
        Duration::from_secs(5),
        "plugin live and recording",
        || async {
            let _ = get(&c, &gw.url("/r"), &[]).await;
            value(&scrape(&url).await, series).is_some()
        },
    )
    .await;
    assert_eq!(
        value(&scrape(&url).await, "kong_nginx_metric_errors_total"),
        Some(0)
    );

    let off = gw
        .admin(
            "PATCH",
            &format!("/plugins/{id}"),
            json!({"enabled": false}),
        )
        .await;
    assert_eq!(off.status, 200);
    eventually(Duration::from_secs(5), "request metrics hidden", || async {
        !scrape(&url).await.contains("kong_http_requests_total")
    })
    .await;
    let text = scrape(&url).await;
    assert!(value(&text, &info).is_some());
}

/// Bytes in and out, exactly as they crossed the client connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bandwidth_counts_bytes_on_the_wire() {
    let up = Upstream::start("u");
    let yaml = format!(
        "_format_version: \"3.0\"\nservices:\n- name: s\n  url: http://{}\n  routes:\n  - name: bw\n    paths: [/bw]\n    plugins:\n    - name: prometheus\n      config: {{bandwidth_metrics: true}}\n",
        up.addr
    );
    let gw = Gateway::with_config(&yaml).start();
    let request = b"POST /bw HTTP/1.1\r\nHost: example.test\r\nContent-Length: 5\r\n\r\nhello";
    let (mut sent, mut received) = (0u64, 0u64);
    for _ in 0..3 {
        let (s, r) = raw_exchange(&gw, request);
        sent += s;
        received += r;
    }
    let url = gw.status_url("/metrics");
    let series = |d: &str| {
        format!(
            r#"kong_bandwidth_bytes{{service="s",route="bw",direction="{d}",workspace="default",consumer=""}}"#
        )
    };
    eventually(Duration::from_secs(5), "all three recorded", || async {
        value(&scrape(&url).await, &series("egress")) == Some(received)
    })
    .await;
    assert_eq!(value(&scrape(&url).await, &series("ingress")), Some(sent));
}

/// One request on a new connection; the bytes sent and the bytes of the whole response.
fn raw_exchange(gw: &Gateway, request: &[u8]) -> (u64, u64) {
    let addr = gw.url("").trim_start_matches("http://").to_string();
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.write_all(request).unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = s.read(&mut chunk).unwrap();
        assert!(n > 0, "connection closed early");
        buf.extend_from_slice(&chunk[..n]);
        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .map(|v| v.trim().parse().unwrap())
            .expect("content-length");
        if buf.len() >= end + 4 + len {
            assert_eq!(buf.len(), end + 4 + len);
            return (request.len() as u64, buf.len() as u64);
        }
    }
}

/// promtool and an independent parser accept the text, histograms included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_passes_promtool_and_prometheus_client() {
    let up = Upstream::start("u");
    let gw = Gateway::with_config(&traffic_config(&up)).start();
    send_traffic(&gw).await;
    let text = scrape_after_traffic(&gw.status_url("/metrics")).await;

    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus) runs");
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = promtool.wait_with_output().unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // Exit 1 is a format error; 3 means only lint problems. Kong's metric names break three
    // naming conventions promtool lints for (a counter without `_total`, gauges with it, `ms`
    // in names); they are kept for compatibility. Any other problem fails.
    assert!(
        matches!(out.status.code(), Some(0 | 3)),
        "promtool rejected the text:\n{report}\n{text}"
    );
    let kong_names = [
        "kong_bandwidth_bytes counter metrics should have \"_total\" suffix",
        "kong_nginx_connections_total non-counter metrics should not have \"_total\" suffix",
        "kong_nginx_requests_total non-counter metrics should not have \"_total\" suffix",
        "kong_kong_latency_ms metric names should not contain abbreviated units",
        "kong_request_latency_ms metric names should not contain abbreviated units",
        "kong_upstream_latency_ms metric names should not contain abbreviated units",
    ];
    let unexpected: Vec<&str> = report
        .lines()
        .filter(|l| !l.trim().is_empty() && !kong_names.contains(l))
        .collect();
    assert!(unexpected.is_empty(), "promtool:\n{report}\n{text}");

    // Python's prometheus_client, from the Debian package python3-prometheus-client.
    let python = if std::path::Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    };
    let script = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = {}
for fam in text_string_to_metric_families(sys.stdin.read()):
    out[fam.name] = {"type": fam.type, "samples": [[s.name, s.labels, s.value] for s in fam.samples]}
print(json.dumps(out))
"#;
    let mut py = Command::new(python)
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    py.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = py.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "prometheus_client failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let families: Value = serde_json::from_slice(&out.stdout).unwrap();
    // The parser drops `_total` from counter family names.
    assert_eq!(families["kong_http_requests"]["type"], "counter");
    assert_eq!(families["kong_request_latency_ms"]["type"], "histogram");
    assert_eq!(families["kong_datastore_reachable"]["type"], "gauge");
    let samples = families["kong_http_requests"]["samples"]
        .as_array()
        .unwrap();
    let alice = samples
        .iter()
        .find(|s| s[1]["consumer"] == "alice")
        .expect("alice's series");
    assert_eq!(alice[0], "kong_http_requests_total");
    assert_eq!(alice[1]["route"], "two");
    assert_eq!(alice[2], json!(2.0));
    let count = families["kong_request_latency_ms"]["samples"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s[0] == "kong_request_latency_ms_count" && s[1]["route"] == "one")
        .expect("count of route one");
    assert_eq!(count[2], json!(5.0));
}
