//! The status API (`status_listen`): Kong's `/status` body and `/status/ready`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use serde_json::Value;

fn config(up: &Upstream, tag: &str) -> String {
    format!(
        "_format_version: \"3.0\"\nservices:\n- name: s\n  url: http://{}\n  tags: [{tag}]\n  routes:\n  - paths: [/]\n",
        up.addr
    )
}

fn is_hash(h: &str) -> bool {
    h.len() == 32
        && h.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_has_kongs_shape_and_counts_requests() {
    let up = Upstream::start("u");
    let gw = Gateway::with_config(&config(&up, "a")).start();
    let s = gw.status_json().await;
    let server = &s["server"];
    for field in [
        "connections_accepted",
        "connections_handled",
        "connections_active",
        "connections_reading",
        "connections_writing",
        "connections_waiting",
        "total_requests",
    ] {
        assert!(
            server[field].is_u64(),
            "server.{field} is a non-negative integer: {s}"
        );
    }
    assert_eq!(server["total_requests"], 0, "nothing proxied yet: {s}");
    assert_eq!(server["connections_accepted"], 0, "{s}");
    let hash = s["configuration_hash"].as_str().unwrap();
    assert!(is_hash(hash), "{hash}");
    assert_ne!(hash, "00000000000000000000000000000000");

    // 7 proxied requests on one client connection.
    let mut conn = OneConn::open(gw.proxy).await;
    for _ in 0..7 {
        assert_eq!(conn.get("/x").await.status, 200);
    }
    // And 3 that match no route, on another gateway.
    let cfg_without_root = Gateway::with_config("_format_version: \"3.0\"\n").start();
    let mut other_conn = OneConn::open(cfg_without_root.proxy).await;
    for _ in 0..3 {
        assert_eq!(other_conn.get("/x").await.status, 404);
    }
    let s = gw.status_json().await;
    assert_eq!(s["server"]["total_requests"], 7, "{s}");
    assert_eq!(s["server"]["connections_accepted"], 1, "{s}");
    assert_eq!(
        s["server"]["connections_handled"],
        s["server"]["connections_accepted"]
    );
    // The client keeps its connection open (keep-alive): it is active and, with no request in
    // flight, waiting.
    assert_eq!(s["server"]["connections_active"], 1, "{s}");
    assert_eq!(s["server"]["connections_waiting"], 1, "{s}");
    assert_eq!(s["server"]["connections_writing"], 0, "{s}");
    let other = cfg_without_root.status_json().await;
    assert_eq!(
        other["server"]["total_requests"], 3,
        "unrouted requests count too: {other}"
    );
    assert_eq!(
        other["configuration_hash"], "00000000000000000000000000000000",
        "an empty config has Kong's all-zero hash: {other}"
    );
    // Status requests themselves are not proxy requests.
    let again = gw.status_json().await;
    assert_eq!(again["server"]["total_requests"], 7, "{again}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_flight_requests_are_writing() {
    let up = Upstream::start("u");
    let gw = Gateway::with_config(&config(&up, "a")).start();
    let url = gw.url("/delay/1500");
    let slow = tokio::spawn(async move { get(&client(), &url, &[]).await.status });
    eventually(
        std::time::Duration::from_secs(5),
        "the slow request shows as in flight",
        || async { gw.status_json().await["server"]["connections_writing"] == 1 },
    )
    .await;
    let s = gw.status_json().await;
    assert_eq!(s["server"]["connections_active"], 1, "{s}");
    assert_eq!(s["server"]["connections_waiting"], 0, "{s}");
    assert_eq!(slow.await.unwrap(), 200);
    let s = gw.status_json().await;
    assert_eq!(s["server"]["connections_writing"], 0, "{s}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configuration_hash_is_stable_across_restarts_and_follows_the_file() {
    let up = Upstream::start("u");
    let a = config(&up, "a");
    let b = config(&up, "b");
    let hash_of = |cfg: String| async move {
        let mut gw = Gateway::with_config(&cfg).start();
        let h = gw.config_hash().await;
        assert!(gw.stop().success());
        h
    };
    let a1 = hash_of(a.clone()).await;
    let a2 = hash_of(a.clone()).await;
    let b1 = hash_of(b).await;
    assert!(is_hash(&a1), "{a1}");
    assert_eq!(a1, a2, "same file, same hash after a restart");
    assert_ne!(
        a1, b1,
        "a different file (one tag changed) has another hash"
    );
    // Formatting and comments are not part of the config.
    let reformatted = format!(
        "# a comment\n{}\n\n",
        a.replace("paths: [/]", "paths:\n    - /")
    );
    assert_eq!(hash_of(reformatted).await, a1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_only_with_a_loaded_config() {
    let empty = Gateway::without_config().start();
    let r = get(&client(), &empty.status_url("/status/ready"), &[]).await;
    assert_eq!(r.status, 503, "{}", r.text());
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .contains("no configuration")
    );
    let s: Value = empty.status_json().await;
    assert_eq!(s["configuration_hash"], "00000000000000000000000000000000");

    let up = Upstream::start("u");
    let loaded = Gateway::with_config(&config(&up, "a")).start();
    let r = get(&client(), &loaded.status_url("/status/ready"), &[]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        r.header("content-type")
            .unwrap()
            .starts_with("application/json")
    );

    // Other paths and methods on the status listener.
    let r = get(&client(), &loaded.status_url("/nope"), &[]).await;
    assert_eq!(r.status, 404);
    let r = send(&client(), "POST", &loaded.status_url("/status"), &[], "").await;
    assert_eq!(r.status, 405);
}

/// Kong (DB-less) is not ready while the loaded declarative config is empty: its hash is the
/// all-zero one and `/status/ready` answers 503 "no configuration available (empty configuration
/// present)" (kong/status/ready.lua).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_is_503_for_an_empty_declarative_config() {
    let gw = Gateway::with_config("_format_version: \"3.0\"\n").start();
    assert_eq!(gw.config_hash().await, "00000000000000000000000000000000");
    let r = get(&client(), &gw.status_url("/status/ready"), &[]).await;
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(
        r.json()["message"],
        "no configuration available (empty configuration present)"
    );
}
