//! udp-log against the real binary: one JSON datagram per request at a real UDP server.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::collector::UdpCollector;
use common::*;
use serde_json::{Value, json};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_datagram_per_request() {
    let up = Upstream::start("up");
    let logs = UdpCollector::start();
    let yaml = format!(
        r#"_format_version: "3.0"
services:
- name: s
  url: http://{}
  routes:
  - name: r
    paths: [/logged]
    plugins:
    - name: udp-log
      config: {{host: 127.0.0.1, port: {}}}
"#,
        up.addr,
        logs.addr.port()
    );
    let gw = Gateway::with_config(&yaml).start();
    let c = client();
    let r = get(&c, &gw.url("/logged?x=1"), &[("cookie", "sid=very-secret")]).await;
    assert_eq!(r.status, 200);
    let r = get(&c, &gw.url("/nowhere"), &[]).await;
    assert_eq!(r.status, 404);
    let got = logs.received.wait_for(1, Duration::from_secs(10));
    assert_eq!(got.len(), 1, "one datagram for the logged route only");
    let rec: Value = serde_json::from_slice(&got[0]).unwrap();
    assert_eq!(rec["request"]["uri"], "/logged?x=1");
    assert_eq!(rec["request"]["querystring"], json!({"x": "1"}));
    assert_eq!(rec["request"]["headers"]["cookie"], "REDACTED");
    assert_eq!(rec["upstream_status"], "200");
    assert_eq!(rec["service"]["name"], "s");
    assert!(!String::from_utf8_lossy(&got[0]).contains("very-secret"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_global_plugin_logs_unmatched_requests() {
    let up = Upstream::start("up");
    let logs = UdpCollector::start();
    let yaml = format!(
        r#"_format_version: "3.0"
plugins:
- name: udp-log
  config: {{host: 127.0.0.1, port: {}}}
services:
- name: s
  url: http://{}
  routes:
  - name: r
    paths: [/r]
"#,
        logs.addr.port(),
        up.addr,
    );
    let gw = Gateway::with_config(&yaml).start();
    let c = client();
    assert_eq!(get(&c, &gw.url("/nowhere"), &[]).await.status, 404);
    let got = logs.received.wait_for(1, Duration::from_secs(10));
    assert_eq!(got.len(), 1);
    let rec: Value = serde_json::from_slice(&got[0]).unwrap();
    assert_eq!(rec["request"]["uri"], "/nowhere");
    assert_eq!(rec["response"]["status"], 404);
    assert!(rec.get("route").is_none() && rec.get("service").is_none());
    assert_eq!(rec["upstream_uri"], "");
}
