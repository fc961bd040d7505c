//! tcp-log against the real binary: one JSON line per request at a real TCP server, over TLS
//! with the configured SNI, one kept-alive connection for many requests, and the proxy still
//! answering when the log server is gone.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::collector::{TcpCollector, TlsCollector};
use common::*;
use serde_json::Value;
use std::time::Duration;

fn config(up: &Upstream, plugin_config: &str) -> String {
    format!(
        r#"_format_version: "3.0"
services:
- name: s
  url: http://{}
  routes:
  - name: r
    paths: [/logged]
    plugins:
    - name: tcp-log
      config: {plugin_config}
"#,
        up.addr
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_line_per_request() {
    let up = Upstream::start("up");
    let logs = TcpCollector::start();
    let conf = format!("{{host: 127.0.0.1, port: {}}}", logs.addr.port());
    let gw = Gateway::with_config(&config(&up, &conf)).start();
    let c = client();
    for i in 0..3 {
        let r = get(
            &c,
            &gw.url(&format!("/logged/{i}")),
            &[("authorization", "Basic c2VjcmV0")],
        )
        .await;
        assert_eq!(r.status, 200);
    }
    let lines = logs.received.wait_for(3, Duration::from_secs(10));
    assert_eq!(lines.len(), 3, "exactly one line per request");
    let mut uris = Vec::new();
    for line in &lines {
        let rec: Value = serde_json::from_str(line).unwrap();
        uris.push(rec["request"]["uri"].as_str().unwrap().to_string());
        assert_eq!(rec["request"]["headers"]["authorization"], "REDACTED");
        assert_eq!(rec["response"]["status"], 200);
        assert_eq!(rec["route"]["name"], "r");
    }
    // Requests on different connections may reach the log phase in any order.
    uris.sort();
    assert_eq!(uris, ["/logged/0", "/logged/1", "/logged/2"]);
    assert!(!lines.concat().contains("c2VjcmV0"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_sni() {
    let up = Upstream::start("up");
    let logs = TlsCollector::start();
    let conf = format!(
        "{{host: 127.0.0.1, port: {}, tls: true, tls_sni: logs.example.test}}",
        logs.addr.port()
    );
    let gw = Gateway::with_config(&config(&up, &conf)).start();
    let c = client();
    for _ in 0..2 {
        assert_eq!(get(&c, &gw.url("/logged"), &[]).await.status, 200);
    }
    let lines = logs.received.wait_for(2, Duration::from_secs(10));
    assert_eq!(lines.len(), 2);
    let rec: Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(rec["request"]["uri"], "/logged");
    // One kept-alive connection, with the configured SNI.
    assert_eq!(logs.snis.all(), [Some("logs.example.test".to_string())]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_answers_when_the_log_server_is_down() {
    let up = Upstream::start("up");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let conf = format!("{{host: 127.0.0.1, port: {port}, timeout: 200}}");
    let gw = Gateway::with_config(&config(&up, &conf)).start();
    let c = client();
    for _ in 0..3 {
        assert_eq!(get(&c, &gw.url("/logged"), &[]).await.status, 200);
    }
    eventually(Duration::from_secs(5), "the failure is logged", || async {
        gw.log_text().contains("could not deliver log entries")
    })
    .await;
    let metrics = get(&c, &gw.status_url("/metrics"), &[]).await.text();
    assert!(
        metrics.contains("silverback_log_entries_dropped_total{plugin=\"tcp-log\"}"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_keepalive_connection_is_replaced() {
    let up = Upstream::start("up");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // The first connection is read for one line and then closed by the server.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for (n, stream) in listener.incoming().flatten().enumerate() {
            let mut lines = std::io::BufReader::new(stream).lines();
            if n == 0 {
                tx.send(lines.next().unwrap().unwrap()).unwrap();
                continue; // dropped: closed
            }
            for l in lines.map_while(Result::ok) {
                tx.send(l).unwrap();
            }
        }
    });
    let conf = format!("{{host: 127.0.0.1, port: {port}}}");
    let gw = Gateway::with_config(&config(&up, &conf)).start();
    let c = client();
    assert_eq!(get(&c, &gw.url("/logged/1"), &[]).await.status, 200);
    let first = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(first.contains("/logged/1"));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(get(&c, &gw.url("/logged/2"), &[]).await.status, 200);
    let second = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(second.contains("/logged/2"), "{second}");
}
