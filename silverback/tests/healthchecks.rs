//! Health checks through the real binary: passive checks tripping on proxied responses and TCP
//! failures, active HTTP, HTTPS and TCP probes taking addresses out and back in, the
//! upstream's health threshold, health kept across config changes, Kong's health endpoints on
//! the Admin API, the prometheus health metric, and a target killed under steady load without
//! a client-visible error.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::collector::HttpCollector;
use common::*;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(10);

fn config(targets: &[SocketAddr], upstream_extra: &str, service_extra: &str) -> String {
    let targets: String = targets
        .iter()
        .map(|t| format!("  - target: {t}\n"))
        .collect();
    format!(
        "_format_version: \"3.0\"\nservices:\n- name: s\n  host: pool\n{service_extra}  routes:\n  - paths: [/]\nupstreams:\n- name: pool\n{upstream_extra}  targets:\n{targets}"
    )
}

/// The upstream server that answered, whatever the status.
fn served_by(r: &Reply) -> String {
    r.header("x-upstream-name").unwrap_or("none").to_string()
}

/// Target → health, from `GET /upstreams/pool/health`.
async fn target_health(gw: &Gateway) -> HashMap<String, String> {
    let r = gw.admin("GET", "/upstreams/pool/health", Value::Null).await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["target"].as_str().unwrap().to_string(),
                t["health"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

async fn wait_health(gw: &Gateway, target: SocketAddr, want: &str) {
    let key = target.to_string();
    eventually(WAIT, &format!("{key} becomes {want}"), || async {
        target_health(gw).await.get(&key).map(String::as_str) == Some(want)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passive_checks_trip_and_the_admin_api_restores() {
    let a = Upstream::start("a");
    let b = Upstream::start("b");
    let checks = r#"  healthchecks: {"passive": {"unhealthy": {"http_failures": 2, "http_statuses": [500]}}}
"#;
    let cfg = format!(
        "{}plugins:\n- name: prometheus\n  config: {{upstream_health_metrics: true}}\n",
        config(&[a.addr, b.addr], checks, "")
    );
    let gw = Gateway::with_config(&cfg).start();
    let mut conn = OneConn::open(gw.proxy).await;
    assert_eq!(target_health(&gw).await[&a.addr.to_string()], "HEALTHY");

    a.set_status(Some(500));
    // Two 500s from `a` (relayed to the client, as Kong does) take it out.
    let mut from_a = 0;
    while from_a < 2 {
        let r = conn.get("/").await;
        if served_by(&r) == "a" {
            assert_eq!(r.status, 500);
            from_a += 1;
        }
    }
    for _ in 0..10 {
        let r = conn.get("/").await;
        assert_eq!((r.status, served_by(&r).as_str()), (200, "b"));
    }
    let health = target_health(&gw).await;
    assert_eq!(health[&a.addr.to_string()], "UNHEALTHY");
    assert_eq!(health[&b.addr.to_string()], "HEALTHY");

    // Kong's shapes: the target row with `health` and `data`, and the node id.
    let r = gw.admin("GET", "/upstreams/pool/health", Value::Null).await;
    let body = r.json();
    assert_eq!(body["next"], Value::Null);
    assert!(body["node_id"].is_string());
    let row = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["target"] == a.addr.to_string())
        .unwrap()
        .clone();
    assert_eq!(row["weight"], 100);
    assert_eq!(row["upstream"]["id"].as_str().map(str::len), Some(36));
    assert_eq!(row["data"]["dns"], "A");
    assert_eq!(row["data"]["port"], a.addr.port());
    assert_eq!(
        row["data"]["weight"],
        json!({"total": 100, "unavailable": 100, "available": 0})
    );
    assert_eq!(
        row["data"]["addresses"],
        json!([{"ip": "127.0.0.1", "port": a.addr.port(), "weight": 100, "health": "UNHEALTHY"}])
    );
    let r = gw
        .admin(
            "GET",
            "/upstreams/pool/health?balancer_health=1",
            Value::Null,
        )
        .await;
    let data = &r.json()["data"];
    assert_eq!(data["health"], "HEALTHY");
    assert_eq!(data["balancer_health"], "HEALTHY");
    assert_eq!(data["details"]["healthy"], true);
    assert_eq!(
        data["details"]["weight"],
        json!({"total": 200, "unavailable": 100, "available": 100})
    );
    assert_eq!(data["details"]["hosts"].as_array().unwrap().len(), 2);
    assert!(data["details"]["hosts"][0]["addresses"][0]["healthy"].is_boolean());

    // The prometheus metric reports the same.
    let metrics = get(&client(), &gw.status_url("/metrics"), &[]).await.text();
    let line = format!(
        r#"kong_upstream_target_health{{upstream="pool",target="{0}",address="{0}",state="unhealthy",subsystem="http"}} 1"#,
        a.addr
    );
    assert!(metrics.contains(&line), "{line} not in:\n{metrics}");

    // The Admin API brings it back (PUT, and the address form), and can take it out.
    a.set_status(None);
    let path = format!("/upstreams/pool/targets/{}/healthy", a.addr);
    assert_eq!(gw.admin("PUT", &path, Value::Null).await.status, 204);
    assert_eq!(target_health(&gw).await[&a.addr.to_string()], "HEALTHY");
    let served: Vec<String> = {
        let mut v = Vec::new();
        for _ in 0..4 {
            v.push(served_by(&conn.get("/").await));
        }
        v
    };
    assert!(served.contains(&"a".to_string()), "{served:?}");
    let path = format!("/upstreams/pool/targets/{0}/{0}/unhealthy", a.addr);
    assert_eq!(gw.admin("PUT", &path, Value::Null).await.status, 204);
    for _ in 0..6 {
        assert_eq!(served_by(&conn.get("/").await), "b");
    }
    // Unknown targets are 404, unknown addresses 400 with the reason.
    let r = gw
        .admin(
            "PUT",
            "/upstreams/pool/targets/10.9.9.9:1/healthy",
            Value::Null,
        )
        .await;
    assert_eq!(r.status, 404);
    let path = format!("/upstreams/pool/targets/{}/10.9.9.9:1/healthy", a.addr);
    let r = gw.admin("PUT", &path, Value::Null).await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.json()["message"].as_str().unwrap().contains("10.9.9.9:1"));
    let r = gw.admin("GET", "/upstreams/nope/health", Value::Null).await;
    assert_eq!(r.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_health_checks_targets_report_healthchecks_off() {
    let a = Upstream::start("a");
    let gw = Gateway::with_config(&config(&[a.addr], "", "")).start();
    assert_eq!(
        target_health(&gw).await[&a.addr.to_string()],
        "HEALTHCHECKS_OFF"
    );
    let r = gw
        .admin(
            "GET",
            "/upstreams/pool/health?balancer_health=1",
            Value::Null,
        )
        .await;
    assert_eq!(r.json()["data"]["health"], "HEALTHCHECKS_OFF");
    assert_eq!(r.json()["data"]["balancer_health"], "HEALTHY");
    let path = format!("/upstreams/pool/targets/{}/unhealthy", a.addr);
    let r = gw.admin("PUT", &path, Value::Null).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["message"], "no healthchecker found for pool");
    // Also DB-less: the target list is served from the declarative config.
    let r = gw
        .admin("GET", "/upstreams/pool/targets/all", Value::Null)
        .await;
    assert_eq!(r.json()["data"][0]["target"], a.addr.to_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn active_http_checks_take_addresses_out_and_back() {
    let a = Upstream::start("a");
    let b = Upstream::start("b");
    let checks = r#"  healthchecks: {"active": {"http_path": "/status/200", "timeout": 0.3, "healthy": {"interval": 0.1, "successes": 2}, "unhealthy": {"interval": 0.1, "http_failures": 2, "timeouts": 2}}}
"#;
    let gw = Gateway::with_config(&config(&[a.addr, b.addr], checks, "")).start();
    let mut conn = OneConn::open(gw.proxy).await;

    a.set_status(Some(503));
    wait_health(&gw, a.addr, "UNHEALTHY").await;
    a.set_status(None);
    for _ in 0..6 {
        assert_eq!(served_by(&conn.get("/").await), "b");
    }
    wait_health(&gw, a.addr, "HEALTHY").await;
    let mut seen_a = false;
    for _ in 0..6 {
        seen_a |= served_by(&conn.get("/").await) == "a";
    }
    assert!(seen_a, "a is back in rotation");

    // Timeouts count too.
    b.set_delay(Duration::from_millis(1000));
    wait_health(&gw, b.addr, "UNHEALTHY").await;
    b.set_delay(Duration::ZERO);
    wait_health(&gw, b.addr, "HEALTHY").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn active_probes_send_the_path_host_and_headers_over_http_and_https() {
    let plain = HttpCollector::start();
    let tls = HttpCollector::start_tls();
    let cfg = format!(
        r#"_format_version: "3.0"
upstreams:
- name: plain.test
  healthchecks: {{"active": {{"http_path": "/probe", "headers": {{"x-probe": ["1"]}}, "healthy": {{"interval": 0.1, "successes": 1}}}}}}
  targets: [{{target: "{}"}}]
- name: secure.test
  host_header: api.secure.test
  healthchecks: {{"active": {{"type": "https", "https_verify_certificate": false, "http_path": "/tls", "healthy": {{"interval": 0.1, "successes": 1}}, "unhealthy": {{"interval": 0.1}}}}}}
  targets: [{{target: "{}"}}]
"#,
        plain.addr, tls.addr
    );
    let gw = Gateway::with_config(&cfg).start();
    let probe = &plain.received.wait_for(1, WAIT)[0];
    assert_eq!(
        (probe.method.as_str(), probe.path.as_str()),
        ("GET", "/probe")
    );
    assert_eq!(probe.headers["host"], "127.0.0.1");
    assert_eq!(probe.headers["x-probe"], "1");

    // An unhealthy https target comes back once a probe over TLS answers 200.
    let path = format!("/upstreams/secure.test/targets/{}/unhealthy", tls.addr);
    assert_eq!(gw.admin("PUT", &path, Value::Null).await.status, 204);
    let tls_target = tls.addr.to_string();
    eventually(WAIT, "the https target is healthy again", || async {
        let r = gw
            .admin("GET", "/upstreams/secure.test/health", Value::Null)
            .await;
        r.json()["data"][0]["health"] == "HEALTHY" && r.json()["data"][0]["target"] == tls_target
    })
    .await;
    let probe = tls.received.all().into_iter().next().unwrap();
    assert_eq!(probe.path, "/tls");
    assert_eq!(probe.headers["host"], "api.secure.test");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn active_tcp_checks_and_the_threshold() {
    let a = Upstream::start("a");
    let b = Upstream::start("b");
    let checks = r#"  healthchecks: {"threshold": 60, "active": {"type": "tcp", "healthy": {"interval": 0.1, "successes": 1}, "unhealthy": {"interval": 0.1, "tcp_failures": 1}}}
"#;
    let (a_addr, b_addr) = (a.addr, b.addr);
    let gw = Gateway::with_config(&config(&[a_addr, b_addr], checks, "")).start();
    let mut conn = OneConn::open(gw.proxy).await;
    assert_eq!(conn.get("/").await.status, 200);

    // With one of two targets down, 50% of the weight is left: not above 60%, so the whole
    // upstream is unhealthy, as in Kong.
    drop(a);
    wait_health(&gw, a_addr, "UNHEALTHY").await;
    let r = conn.get("/").await;
    assert_eq!(r.status, 503);
    assert_eq!(
        r.json()["message"],
        "failure to get a peer from the ring-balancer"
    );
    let r = gw
        .admin(
            "GET",
            "/upstreams/pool/health?balancer_health=1",
            Value::Null,
        )
        .await;
    assert_eq!(r.json()["data"]["balancer_health"], "UNHEALTHY");
    assert_eq!(r.json()["data"]["health"], "UNHEALTHY");

    let _a = Upstream::start_on(a_addr, "a");
    wait_health(&gw, a_addr, "HEALTHY").await;
    assert_eq!(conn.get("/").await.status, 200);
    drop(b);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_is_kept_across_config_changes() {
    let a = Upstream::start("a");
    let b = Upstream::start("b");
    let c = Upstream::start("c");
    let checks = r#"  healthchecks: {"passive": {"unhealthy": {"tcp_failures": 1}}}
"#;
    let gw = Gateway::with_config(&config(&[a.addr, b.addr], checks, "")).start();
    let path = format!("/upstreams/pool/targets/{}/unhealthy", a.addr);
    assert_eq!(gw.admin("PUT", &path, Value::Null).await.status, 204);

    // A change elsewhere keeps the balancer; a change to its targets rebuilds it, and the
    // unchanged target keeps its health.
    for cfg in [
        format!(
            "{}- name: other.test\n",
            config(&[a.addr, b.addr], checks, "")
        ),
        config(&[a.addr, b.addr, c.addr], checks, ""),
    ] {
        let hash = gw.config_hash().await;
        let (code, out) = gw.reload_with(&cfg);
        assert_eq!(code, 0, "{out}");
        gw.wait_hash_change(&hash, WAIT).await;
        let health = target_health(&gw).await;
        assert_eq!(health[&a.addr.to_string()], "UNHEALTHY", "{health:?}");
        assert_eq!(health[&b.addr.to_string()], "HEALTHY");
    }
    assert_eq!(target_health(&gw).await[&c.addr.to_string()], "HEALTHY");
    let mut conn = OneConn::open(gw.proxy).await;
    for _ in 0..9 {
        assert_ne!(served_by(&conn.get("/").await), "a");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_a_target_under_load_is_invisible_to_clients() {
    let a = Upstream::start("a");
    let b = Upstream::start("b");
    let victim = Upstream::start("victim");
    let victim_addr = victim.addr;
    let checks = r#"  healthchecks: {"passive": {"unhealthy": {"tcp_failures": 2, "timeouts": 2}}, "active": {"timeout": 0.5, "unhealthy": {"interval": 0.1}, "healthy": {"successes": 2}}}
"#;
    let gw = Gateway::with_config(&config(&[a.addr, b.addr, victim_addr], checks, "")).start();

    let stop = Arc::new(AtomicBool::new(false));
    let errors = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let mut clients = Vec::new();
    for _ in 0..4 {
        let (stop, errors, done, proxy) = (stop.clone(), errors.clone(), done.clone(), gw.proxy);
        clients.push(tokio::spawn(async move {
            let mut conn = OneConn::open(proxy).await;
            while !stop.load(Ordering::Relaxed) {
                let r = conn.get("/").await;
                if r.status != 200 {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let wait_requests = |n: usize| {
        let done = done.clone();
        async move {
            let target = done.load(Ordering::Relaxed) + n;
            eventually(WAIT, "load keeps flowing", || async {
                done.load(Ordering::Relaxed) >= target
            })
            .await;
        }
    };
    wait_requests(200).await;
    assert!(victim.hits() > 0);

    drop(victim);
    wait_health(&gw, victim_addr, "UNHEALTHY").await;
    wait_requests(500).await;

    let back = Upstream::start_on(victim_addr, "victim");
    wait_health(&gw, victim_addr, "HEALTHY").await;
    eventually(WAIT, "the restarted target takes traffic again", || async {
        back.hits() > 20
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.await.unwrap();
    }
    assert_eq!(
        errors.load(Ordering::Relaxed),
        0,
        "clients saw errors while a target died:\n{}",
        gw.log_text()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_endpoints_with_the_database() {
    let a = Upstream::start("a");
    let b = Upstream::start("b");
    let gw = Gateway::with_database().start();
    let r = gw
        .admin(
            "POST",
            "/upstreams",
            json!({"name": "pool", "healthchecks": {"passive": {"unhealthy": {"tcp_failures": 3}}}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    for t in [a.addr, b.addr] {
        let r = gw
            .admin(
                "POST",
                "/upstreams/pool/targets",
                json!({"target": t.to_string()}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text());
    }
    eventually(WAIT, "both targets are in the balancer", || async {
        let h = target_health(&gw).await;
        h.len() == 2 && h.values().all(|v| v == "HEALTHY")
    })
    .await;
    // By target id as well as by `host:port`; POST as older clients send it.
    let id = gw
        .admin(
            "GET",
            &format!("/upstreams/pool/targets/{}", a.addr),
            Value::Null,
        )
        .await
        .json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let path = format!("/upstreams/pool/targets/{id}/unhealthy");
    assert_eq!(gw.admin("POST", &path, Value::Null).await.status, 204);
    assert_eq!(target_health(&gw).await[&a.addr.to_string()], "UNHEALTHY");
    let r = gw
        .admin("GET", "/upstreams/pool/health?size=1", Value::Null)
        .await;
    let body = r.json();
    assert_eq!(body["data"].as_array().unwrap().len(), 1);
    assert!(
        body["next"]
            .as_str()
            .unwrap()
            .starts_with("/upstreams/pool/health?offset="),
        "{body}"
    );
}
