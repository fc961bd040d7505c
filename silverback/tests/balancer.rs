//! Upstream balancing through the real binary over several real servers: weighted round-robin
//! distribution, consistent hashing (stability when a target goes, every `hash_on` source,
//! the hashing cookie), least-connections and latency with a slow target, and retries that
//! move to another target.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::time::Duration;

/// The upstream server that answered.
fn served_by(r: &Reply) -> String {
    assert_eq!(r.status, 200, "{}", r.text());
    r.header("x-upstream-name").unwrap_or("none").to_string()
}

/// `n` GETs of `path` spread over `conns` keepalive connections; answers counted per server.
async fn spread(proxy: SocketAddr, path: &str, n: usize, conns: usize) -> HashMap<String, usize> {
    let mut tasks = Vec::new();
    for c in 0..conns {
        let path = path.to_string();
        let share = n / conns + usize::from(c < n % conns);
        tasks.push(tokio::spawn(async move {
            let mut conn = OneConn::open(proxy).await;
            let mut seen: HashMap<String, usize> = HashMap::new();
            for _ in 0..share {
                *seen.entry(served_by(&conn.get(&path).await)).or_default() += 1;
            }
            seen
        }));
    }
    let mut total = HashMap::new();
    for t in tasks {
        for (k, v) in t.await.unwrap() {
            *total.entry(k).or_default() += v;
        }
    }
    total
}

fn targets_yaml(ups: &[&Upstream], weights: &[u32]) -> String {
    ups.iter()
        .zip(weights)
        .map(|(u, w)| format!("  - target: {}\n    weight: {w}\n", u.addr))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_robin_follows_weights_within_3_percent() {
    let a = Upstream::start("a");
    let b = Upstream::start("b");
    let c = Upstream::start("c");
    let off = Upstream::start("off");
    let cfg = format!(
        "_format_version: \"3.0\"\nservices:\n- name: s\n  host: pool\n  routes:\n  - paths: [/]\nupstreams:\n- name: pool\n  targets:\n{}",
        targets_yaml(&[&a, &b, &c, &off], &[100, 200, 300, 0])
    );
    let gw = Gateway::with_config(&cfg).start();
    let n = 10_000;
    let counts = spread(gw.proxy, "/", n, 4).await;
    assert_eq!(off.hits(), 0, "a weight-0 target takes no traffic");
    for (name, weight) in [("a", 1.0), ("b", 2.0), ("c", 3.0)] {
        let expected = n as f64 * weight / 6.0;
        let got = counts.get(name).copied().unwrap_or(0) as f64;
        assert!(
            (got - expected).abs() <= expected * 0.03,
            "{name}: {got} requests, expected {expected} ± 3%: {counts:?}"
        );
    }
}

fn hashing_config(ups: &[Upstream]) -> String {
    let targets: Vec<&Upstream> = ups.iter().collect();
    format!(
        "_format_version: \"3.0\"\nservices:\n- name: s\n  host: ring\n  routes:\n  - paths: [/]\nupstreams:\n- name: ring\n  hash_on: header\n  hash_on_header: x-key\n  targets:\n{}",
        targets_yaml(&targets, &vec![100; ups.len()])
    )
}

async fn key_map(gw: &Gateway, keys: usize) -> HashMap<usize, String> {
    let mut conn = OneConn::open(gw.proxy).await;
    let mut map = HashMap::new();
    for k in 0..keys {
        let key = format!("user-{k}");
        let r = conn.send("GET", "/", &[("x-key", &key)], "").await;
        map.insert(k, served_by(&r));
    }
    map
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consistent_hashing_moves_only_the_removed_targets_keys() {
    let ups: Vec<Upstream> = (0..10).map(|i| Upstream::start(&format!("t{i}"))).collect();
    let gw = Gateway::with_config(&hashing_config(&ups)).start();
    let keys = 1000;
    let before = key_map(&gw, keys).await;
    let used: HashSet<&String> = before.values().collect();
    assert_eq!(used.len(), 10, "every target owns keys");
    // The same keys land on the same targets again.
    assert_eq!(key_map(&gw, keys).await, before);

    let hash = gw.config_hash().await;
    let removed = ups[3].name.clone();
    let mut remaining = ups;
    let gone = remaining.remove(3);
    let (code, out) = gw.reload_with(&hashing_config(&remaining));
    assert_eq!(code, 0, "{out}");
    gw.wait_hash_change(&hash, Duration::from_secs(10)).await;
    let after = key_map(&gw, keys).await;
    drop(gone);

    let others: Vec<usize> = (0..keys).filter(|k| before[k] != removed).collect();
    let kept = others.iter().filter(|k| before[k] == after[k]).count();
    assert!(
        kept * 100 >= others.len() * 95,
        "only {kept} of {} keys stayed in place",
        others.len()
    );
    assert_eq!(
        kept,
        others.len(),
        "keys of the remaining targets never move"
    );
    for k in (0..keys).filter(|k| before[k] == removed) {
        assert_ne!(after[&k], removed);
    }
}

/// Sends each key three times through `send`: every key sticks to one server, and the keys
/// do not all land on the same one.
async fn sticks_and_spreads<F, Fut>(what: &str, keys: usize, mut send: F)
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = Reply>,
{
    let mut servers = HashSet::new();
    for k in 0..keys {
        let first = served_by(&send(k).await);
        for _ in 0..2 {
            assert_eq!(served_by(&send(k).await), first, "{what}: key {k} moved");
        }
        servers.insert(first);
    }
    assert!(servers.len() > 1, "{what}: every key on {servers:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_hash_on_source_sticks() {
    let ups: Vec<Upstream> = (0..4).map(|i| Upstream::start(&format!("h{i}"))).collect();
    let refs: Vec<&Upstream> = ups.iter().collect();
    let targets = targets_yaml(&refs, &[100; 4]);
    let upstream =
        |name: &str, hashing: &str| format!("- name: {name}\n  {hashing}\n  targets:\n{targets}");
    let consumers: String = (0..20)
        .map(|i| format!("- username: c{i}\n  keyauth_credentials:\n  - key: key{i}\n"))
        .collect();
    let cfg = format!(
        r#"_format_version: "3.0"
services:
- name: header
  host: by-header
  routes: [{{paths: [/header]}}]
- name: cookie
  host: by-cookie
  routes: [{{paths: [/cookie]}}]
- name: ip
  host: by-ip
  routes: [{{paths: [/ip]}}]
- name: path
  host: by-path
  routes: [{{paths: [/path]}}]
- name: query
  host: by-query
  routes: [{{paths: [/query]}}]
- name: capture
  host: by-capture
  routes: [{{paths: ["~/capture/(?<user>[^/]+)$"]}}]
- name: consumer
  host: by-consumer
  routes: [{{paths: [/consumer]}}]
  plugins: [{{name: key-auth}}]
- name: fallback
  host: by-fallback
  routes: [{{paths: [/fallback]}}]
consumers:
{consumers}upstreams:
{}{}{}{}{}{}{}{}"#,
        upstream("by-header", "hash_on: header\n  hash_on_header: X-User"),
        upstream(
            "by-cookie",
            "hash_on: cookie\n  hash_on_cookie: sticky\n  hash_on_cookie_path: /cookie"
        ),
        upstream("by-ip", "hash_on: ip"),
        upstream("by-path", "hash_on: path"),
        upstream("by-query", "hash_on: query_arg\n  hash_on_query_arg: user"),
        upstream(
            "by-capture",
            "hash_on: uri_capture\n  hash_on_uri_capture: user"
        ),
        upstream("by-consumer", "hash_on: consumer"),
        upstream(
            "by-fallback",
            "hash_on: header\n  hash_on_header: x-user\n  hash_fallback: query_arg\n  hash_fallback_query_arg: user"
        ),
    );
    let gw = Gateway::with_config(&cfg)
        .setting("trusted_ips", "127.0.0.1/32")
        .setting("real_ip_header", "X-Forwarded-For")
        .start();
    let conn = std::sync::Arc::new(tokio::sync::Mutex::new(OneConn::open(gw.proxy).await));
    let get = |path: String, headers: Vec<(String, String)>| {
        let conn = conn.clone();
        async move {
            let h: Vec<(&str, &str)> = headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            conn.lock().await.send("GET", &path, &h, "").await
        }
    };
    let user = |k: usize| vec![("x-user".to_string(), format!("u{k}"))];
    sticks_and_spreads("header", 30, |k| get("/header".into(), user(k))).await;
    sticks_and_spreads("ip", 30, |k| {
        get(
            "/ip".into(),
            vec![("x-forwarded-for".into(), format!("10.0.0.{k}"))],
        )
    })
    .await;
    sticks_and_spreads("path", 30, |k| get(format!("/path/p{k}"), vec![])).await;
    sticks_and_spreads("query_arg", 30, |k| {
        get(format!("/query?user=u{k}&x={k}"), vec![])
    })
    .await;
    sticks_and_spreads("uri_capture", 30, |k| get(format!("/capture/u{k}"), vec![])).await;
    sticks_and_spreads("consumer", 20, |k| {
        get(
            "/consumer".into(),
            vec![("apikey".into(), format!("key{k}"))],
        )
    })
    .await;
    // Fallback: the query argument when the header is missing; the header wins when present.
    sticks_and_spreads("fallback", 30, |k| {
        get(format!("/fallback?user=u{k}"), vec![])
    })
    .await;
    for k in 0..10 {
        let by_header = served_by(&get("/fallback".into(), user(k)).await);
        let both = served_by(&get(format!("/fallback?user=other{k}"), user(k)).await);
        assert_eq!(by_header, both, "the header wins over the fallback");
    }

    // Cookie: made up and set when missing, then followed.
    let first = get("/cookie".into(), vec![]).await;
    let set = first
        .header("set-cookie")
        .expect("hashing cookie set")
        .to_string();
    assert!(set.starts_with("sticky="), "{set}");
    assert!(
        set.ends_with("; Path=/cookie; Same-Site=Lax; HttpOnly"),
        "{set}"
    );
    let value = set.split(';').next().unwrap().to_string();
    for _ in 0..3 {
        let r = get("/cookie".into(), vec![("cookie".into(), value.clone())]).await;
        assert!(r.header("set-cookie").is_none());
        assert_eq!(served_by(&r), served_by(&first));
    }
    sticks_and_spreads("cookie", 30, |k| {
        get(
            "/cookie".into(),
            vec![("cookie".into(), format!("a=1; sticky=s{k}"))],
        )
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn least_connections_avoids_a_slow_target() {
    let fast1 = Upstream::start("fast1");
    let fast2 = Upstream::start("fast2");
    let slow = Upstream::start("slow");
    slow.set_delay(Duration::from_millis(200));
    let cfg = format!(
        "_format_version: \"3.0\"\nservices:\n- name: s\n  host: pool\n  routes:\n  - paths: [/]\nupstreams:\n- name: pool\n  algorithm: least-connections\n  targets:\n{}",
        targets_yaml(&[&fast1, &fast2, &slow], &[100, 100, 100])
    );
    let gw = Gateway::with_config(&cfg).start();
    let counts = spread(gw.proxy, "/", 300, 6).await;
    let slow_share = counts.get("slow").copied().unwrap_or(0);
    assert!(
        slow_share * 100 <= 300 * 10,
        "the slow target got {slow_share} of 300 requests: {counts:?}"
    );
    assert!(
        counts.get("fast1").copied().unwrap_or(0) > 100,
        "{counts:?}"
    );
    assert!(
        counts.get("fast2").copied().unwrap_or(0) > 100,
        "{counts:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_prefers_the_fast_target() {
    let fast = Upstream::start("fast");
    let slow = Upstream::start("slow");
    slow.set_delay(Duration::from_millis(100));
    let cfg = format!(
        "_format_version: \"3.0\"\nservices:\n- name: s\n  host: pool\n  routes:\n  - paths: [/]\nupstreams:\n- name: pool\n  algorithm: latency\n  targets:\n{}",
        targets_yaml(&[&fast, &slow], &[100, 100])
    );
    let gw = Gateway::with_config(&cfg).start();
    let counts = spread(gw.proxy, "/", 100, 1).await;
    let slow_share = counts.get("slow").copied().unwrap_or(0);
    assert!(
        (1..=3).contains(&slow_share),
        "the slow target is measured once, then avoided: {counts:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_goes_to_another_target_when_hashing() {
    let good = Upstream::start("good");
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_addr = dead.local_addr().unwrap();
    drop(dead);
    let cfg = format!(
        "_format_version: \"3.0\"\nservices:\n- name: s\n  host: ring\n  retries: 1\n  routes:\n  - paths: [/]\nupstreams:\n- name: ring\n  hash_on: header\n  hash_on_header: x-key\n  targets:\n  - target: {dead_addr}\n  - target: {}\n",
        good.addr
    );
    let gw = Gateway::with_config(&cfg).start();
    let mut conn = OneConn::open(gw.proxy).await;
    for k in 0..40 {
        let r = conn
            .send("GET", "/", &[("x-key", &format!("k{k}"))], "")
            .await;
        assert_eq!(served_by(&r), "good");
    }
    assert_eq!(good.hits(), 40);
}
