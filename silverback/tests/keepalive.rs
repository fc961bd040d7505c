//! Upstream keepalive: connection reuse and Kong's `upstream_keepalive_*` limits, observed from
//! the upstream's side (which client ports the requests arrive from).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use std::collections::BTreeMap;
use std::time::Duration;

fn config(up: &Upstream) -> String {
    format!(
        "_format_version: \"3.0\"\nservices:\n- name: s\n  url: http://{}\n  routes:\n  - paths: [/]\n",
        up.addr
    )
}

/// Sends `n` sequential GETs to `path` and returns how many times each upstream peer was seen.
async fn peers_of(gw: &Gateway, path: &str, n: usize) -> BTreeMap<String, usize> {
    let cl = client();
    let mut seen = BTreeMap::new();
    for i in 0..n {
        let r = get(&cl, &gw.url(path), &[]).await;
        assert_eq!(r.status, 200, "request {i}: {}", r.text());
        *seen.entry(echo(&r).peer).or_insert(0) += 1;
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequential_requests_reuse_upstream_connections() {
    let up = Upstream::start("u");
    let gw = Gateway::with_config(&config(&up)).start();
    let seen = peers_of(&gw, "/echo", 50).await;
    assert_eq!(up.hits(), 50);
    // Each of the 2 workers keeps its own pool: at most one connection per worker.
    assert!(
        seen.len() <= 2,
        "50 sequential requests used {} upstream connections: {seen:?}",
        seen.len()
    );
    assert!(
        up.conns() <= 2,
        "upstream accepted {} connections",
        up.conns()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamed_responses_return_their_connection_to_the_pool() {
    let up = Upstream::start("u");
    let gw = Gateway::with_config(&config(&up)).start();
    // Larger than the gateway's whole-read threshold (64 KiB): relayed as a stream, and the
    // connection is only reusable once the body has been read to its end.
    for _ in 0..10 {
        let (status, _, n) = download(gw.proxy, "/big/300000").await;
        assert_eq!(status, 200);
        assert_eq!(n, 300_000);
    }
    let after = peers_of(&gw, "/echo", 5).await;
    assert!(
        up.conns() <= 2,
        "10 streamed + 5 small responses used {} upstream connections ({after:?})",
        up.conns()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abandoned_response_body_does_not_poison_the_pool() {
    let up = Upstream::start("u");
    let gw = Gateway::with_config(&config(&up)).start();
    for round in 0..5 {
        // The client reads one frame of a 10 MiB body and hangs up.
        let mut send = h1_connect::<http_body_util::Empty<bytes::Bytes>>(gw.proxy).await;
        let req = hyper::Request::builder()
            .uri("/big/10485760")
            .header("host", "x")
            .body(http_body_util::Empty::new())
            .unwrap();
        let resp = send.send_request(req).await.unwrap();
        assert_eq!(resp.status(), 200);
        let mut body = resp.into_body();
        use http_body_util::BodyExt;
        let first = body.frame().await.unwrap().unwrap();
        assert!(first.is_data());
        drop(body);
        drop(send);
        // Whatever connection the gateway picks next must carry a clean response.
        let r = get(&client(), &gw.url("/echo/after"), &[]).await;
        assert_eq!(r.status, 200, "round {round}: {}", r.text());
        assert_eq!(echo(&r).uri, "/echo/after", "round {round}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_size_zero_disables_keepalive() {
    let up = Upstream::start("u");
    let gw = Gateway::with_config(&config(&up))
        .setting("upstream_keepalive_pool_size", "0")
        .start();
    let seen = peers_of(&gw, "/echo", 20).await;
    assert_eq!(
        seen.len(),
        20,
        "every request needs its own connection: {seen:?}"
    );
    assert_eq!(up.conns(), 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_requests_caps_requests_per_connection() {
    let up = Upstream::start("u");
    let gw = Gateway::with_config(&config(&up))
        .setting("upstream_keepalive_max_requests", "3")
        .start();
    let seen = peers_of(&gw, "/echo", 30).await;
    let most = seen.values().copied().max().unwrap();
    assert_eq!(
        most, 3,
        "connections carry at most 3 requests, and are reused up to that: {seen:?}"
    );
    // 30 requests at 3 per connection: 10 connections, 11 when split over both workers.
    assert!(
        (10..=11).contains(&up.conns()),
        "{} upstream connections: {seen:?}",
        up.conns()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_timeout_closes_pooled_connections() {
    let up = Upstream::start("u");
    let gw = Gateway::with_config(&config(&up))
        .setting("upstream_keepalive_idle_timeout", "1")
        .setting("worker_threads", "1")
        .start();
    let cl = client();
    let first = echo(&get(&cl, &gw.url("/a"), &[]).await).peer;
    let again = echo(&get(&cl, &gw.url("/b"), &[]).await).peer;
    assert_eq!(first, again, "reused while fresh");
    // The limit is in whole seconds; this wait is the behaviour under test.
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let later = echo(&get(&cl, &gw.url("/c"), &[]).await).peer;
    assert_ne!(
        first, later,
        "a connection idle past the timeout is not reused"
    );
    assert_eq!(up.conns(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_close_from_the_upstream_is_honoured() {
    let up = Upstream::start("u");
    let gw = Gateway::with_config(&config(&up)).start();
    let cl = client();
    let close = [("x-set-response-header", "connection=close")];
    for i in 0..5 {
        let r = get(&cl, &gw.url("/echo"), &close).await;
        assert_eq!(r.status, 200, "request {i}: {}", r.text());
        assert!(r.header("connection").is_none(), "hop-by-hop, not relayed");
    }
    assert_eq!(
        up.conns(),
        5,
        "a connection the upstream closes is not reused"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pooled_connections_closed_by_a_restarted_upstream_are_not_used() {
    let up = Upstream::start("u");
    let addr = up.addr;
    let gw = Gateway::with_config(&config(&up))
        .setting("worker_threads", "1")
        .start();
    let cl = client();
    for _ in 0..3 {
        assert_eq!(send(&cl, "POST", &gw.url("/x"), &[], "a").await.status, 200);
    }
    // The upstream goes away (closing the idle pooled connection) and comes back on the same
    // port. A POST is not retried once sent, so the gateway must not send it on the dead one.
    drop(up);
    let up = Upstream::start_on(addr, "again");
    for i in 0..3 {
        let r = send(&cl, "POST", &gw.url("/x"), &[], "a").await;
        assert_eq!(r.status, 200, "POST {i}: {}", r.text());
        assert_eq!(echo(&r).upstream, "again");
    }
    assert_eq!(up.conns(), 1);
}
