//! HTTP/2 with prior knowledge (h2c) on the plain proxy port: requests are proxied to HTTP/1.1
//! upstreams with the same headers as HTTP/1.1 requests, and streams on one connection run
//! concurrently.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use bytes::Bytes;
use common::*;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use std::time::{Duration, Instant};

fn config(up: &Upstream) -> String {
    format!(
        "_format_version: \"3.0\"\nservices:\n- name: s\n  url: http://{}\n  routes:\n  - paths: [/api]\n  - paths: [/keep]\n    strip_path: false\n    preserve_host: true\n  - paths: [/stream]\n    strip_path: false\n    request_buffering: false\n",
        up.addr
    )
}

type H2 = hyper::client::conn::http2::SendRequest<Full<Bytes>>;

/// Sends one request on an h2 connection and reads the whole response.
async fn h2_send(h2: &H2, method: &str, url: &str, body: &str) -> (Reply, hyper::Version) {
    let mut h2 = h2.clone();
    h2.ready().await.unwrap();
    let req = Request::builder()
        .method(method)
        .uri(url)
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap();
    let resp = h2
        .send_request(req)
        .await
        .unwrap_or_else(|e| panic!("{method} {url} over h2: {e:?}"));
    let version = resp.version();
    (Reply::read(resp).await, version)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2c_requests_are_proxied_with_kong_headers() {
    let up = Upstream::start("u");
    let gw = Gateway::with_config(&config(&up)).start();
    let h2: H2 = h2_connect(gw.proxy).await;
    let authority = format!("shop.example:{}", gw.proxy.port());
    let (r, version) = h2_send(
        &h2,
        "GET",
        &format!("http://{authority}/api/items?page=2"),
        "",
    )
    .await;
    assert_eq!(version, hyper::Version::HTTP_2);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("x-upstream-name"), Some("u"));
    let e = echo(&r);
    assert_eq!(e.method, "GET");
    assert_eq!(
        e.uri, "/items?page=2",
        "strip_path applies as over HTTP/1.1"
    );
    assert_eq!(e.version, "HTTP/1.1", "upstreams are spoken to in HTTP/1.1");
    assert_eq!(
        e.header("host"),
        Some(up.addr.to_string().as_str()),
        "preserve_host false: the service's host:port"
    );
    assert_eq!(e.header("x-forwarded-proto"), Some("http"));
    assert_eq!(
        e.header("x-forwarded-host"),
        Some("shop.example"),
        "from :authority, without the port"
    );
    assert_eq!(
        e.header("x-forwarded-port"),
        Some(gw.proxy.port().to_string().as_str())
    );
    assert_eq!(e.header("x-forwarded-for"), Some("127.0.0.1"));
    assert_eq!(e.header("x-real-ip"), Some("127.0.0.1"));
    assert_eq!(e.header("x-forwarded-path"), Some("/api/items"));
    assert_eq!(e.header("x-forwarded-prefix"), Some("/api"));
    let via = e.header("via").unwrap();
    assert!(
        via.starts_with("2 silverback/"),
        "inbound Via names the client's protocol version: {via}"
    );
    let rid = e.header("x-kong-request-id").unwrap();
    assert_eq!(rid.len(), 32);
    assert!(rid.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(
        r.header("x-kong-request-id"),
        Some(rid),
        "same id both ways"
    );
    // Response side: Kong's headers, and no HTTP/1.1 connection headers (forbidden in h2).
    assert!(r.header("via").unwrap().starts_with("1.1 silverback/"));
    assert!(r.header("x-kong-upstream-latency").is_some());
    assert!(r.header("x-kong-proxy-latency").is_some());
    assert!(r.header("x-hop").is_none());
    assert!(r.header("keep-alive").is_none());
    assert!(r.header("connection").is_none());

    // Upstream statuses are relayed.
    let (r, _) = h2_send(
        &h2,
        "GET",
        &format!("http://{authority}/api/status/418"),
        "",
    )
    .await;
    assert_eq!(r.status, 418);

    // A body sent over h2 arrives whole, with the length the gateway counted.
    let (r, _) = h2_send(
        &h2,
        "POST",
        &format!("http://{authority}/api/post"),
        "hello over h2",
    )
    .await;
    let e = echo(&r);
    assert_eq!(e.method, "POST");
    assert_eq!(e.body, "hello over h2");
    assert_eq!(e.header("content-length"), Some("13"));

    // preserve_host: the client's :authority is the upstream Host.
    let (r, _) = h2_send(&h2, "GET", &format!("http://{authority}/keep/x"), "").await;
    assert_eq!(echo(&r).header("host"), Some(authority.as_str()));

    // Gateway-made responses over h2.
    let (r, _) = h2_send(&h2, "GET", &format!("http://{authority}/nowhere"), "").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["message"], "no Route matched with those values");
    assert_eq!(
        r.json()["request_id"].as_str(),
        r.header("x-kong-request-id")
    );
    assert!(r.header("server").unwrap().starts_with("silverback/"));

    let status = gw.status_json().await;
    assert_eq!(
        status["server"]["connections_accepted"], 1,
        "everything went over one connection: {status}"
    );
    assert_eq!(status["server"]["total_requests"], 5, "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_streams_on_one_connection() {
    let up = Upstream::start("u");
    let gw = Gateway::with_config(&config(&up)).start();
    let h2: H2 = h2_connect(gw.proxy).await;
    let base = format!("http://{}", gw.proxy);
    let n = 20;
    let delay_ms = 300;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..n {
        let h2 = h2.clone();
        let url = format!("{base}/api/delay/{delay_ms}/n{i}");
        tasks.push(tokio::spawn(async move {
            let (r, _) = h2_send(&h2, "GET", &url, "").await;
            (i, r)
        }));
    }
    let mut ids = std::collections::HashSet::new();
    for t in tasks {
        let (i, r) = t.await.unwrap();
        assert_eq!(r.status, 200, "stream {i}: {}", r.text());
        let e = echo(&r);
        assert_eq!(
            e.uri,
            format!("/delay/{delay_ms}/n{i}"),
            "stream {i} got its own response"
        );
        let rid = r.header("x-kong-request-id").unwrap().to_string();
        assert_eq!(e.header("x-kong-request-id"), Some(rid.as_str()));
        assert!(ids.insert(rid), "request ids are unique");
    }
    let took = started.elapsed();
    // One after the other they would take n * 300 ms = 6 s.
    assert!(
        took < Duration::from_millis(delay_ms * 8),
        "{n} streams of {delay_ms} ms took {took:?}: not concurrent"
    );
    assert_eq!(up.hits(), n as usize);
    let status = gw.status_json().await;
    assert_eq!(status["server"]["connections_accepted"], 1, "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_bodies_both_ways_over_h2() {
    let up = Upstream::start("u");
    let gw = Gateway::with_config(&config(&up)).start();
    let n: u64 = 32 << 20;

    // Download: flow control on the client side, streaming from the upstream.
    let mut h2 = h2_connect::<http_body_util::Empty<Bytes>>(gw.proxy).await;
    let req = Request::builder()
        .uri(format!("http://{}/api/big/{n}", gw.proxy))
        .body(http_body_util::Empty::new())
        .unwrap();
    let resp = h2.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()
            .get("content-length")
            .and_then(|v| v.to_str().ok()),
        Some(n.to_string().as_str())
    );
    assert_eq!(count_body(resp.into_body()).await.unwrap(), n);

    // Upload, streamed (request_buffering off): an h2 body has no chunked framing of its own.
    let mut h2 = h2_connect::<RepeatBody>(gw.proxy).await;
    let req = Request::builder()
        .method("POST")
        .uri(format!("http://{}/stream/sink", gw.proxy))
        .body(RepeatBody::new(n, 64 * 1024, false))
        .unwrap();
    let resp = h2.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["received"], n, "{v}");
    assert_eq!(
        v["transfer_encoding"], "chunked",
        "a body of unknown length goes upstream chunked: {v}"
    );

    // Upload, buffered (the default): sent upstream with a Content-Length.
    let req = Request::builder()
        .method("POST")
        .uri(format!("http://{}/api/sink", gw.proxy))
        .body(RepeatBody::new(n, 64 * 1024, false))
        .unwrap();
    let resp = h2.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["received"], n, "{v}");
    assert_eq!(v["content_length"], n.to_string(), "{v}");
}
