//! request-size-limiting against the real binary: bodies refused by Content-Length (413, or
//! 417 when the client waits for 100 Continue), bodies without one counted as they stream in
//! (buffered and streamed routes, HTTP/1.1 chunked and HTTP/2), require_content_length (411),
//! units, defaults and config errors through the Admin API.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use bytes::Bytes;
use common::*;
use http_body_util::BodyExt;
use serde_json::json;

fn config(up: &Upstream) -> String {
    format!(
        r#"_format_version: "3.0"
services:
- name: s
  url: http://{}
  routes:
  - name: kb
    paths: [/kb]
    strip_path: false
    plugins:
    - name: request-size-limiting
      config: {{allowed_payload_size: 1, size_unit: kilobytes}}
  - name: streamed
    paths: [/streamed]
    strip_path: false
    request_buffering: false
    plugins:
    - name: request-size-limiting
      config: {{allowed_payload_size: 1000, size_unit: bytes}}
  - name: mb
    paths: [/mb]
    strip_path: false
    plugins:
    - name: request-size-limiting
      config: {{allowed_payload_size: 1}}
  - name: required
    paths: [/required]
    strip_path: false
    plugins:
    - name: request-size-limiting
      config: {{allowed_payload_size: 1, size_unit: kilobytes, require_content_length: true}}
"#,
        up.addr
    )
}

fn assert_exceeded(r: &Reply, status: u16) {
    assert_eq!(r.status, status, "{}", r.text());
    assert_eq!(r.json()["message"], "Request size limit exceeded");
    assert_eq!(
        r.json()["request_id"].as_str(),
        r.header("x-kong-request-id")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn by_content_length() {
    let up = Upstream::start("u");
    let gw = Gateway::with_config(&config(&up)).start();
    let c = client();
    let body = |n: usize| Bytes::from(vec![b'x'; n]);

    let r = send(&c, "POST", &gw.url("/kb/sink"), &[], body(1024)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["received"], 1024);
    assert_exceeded(
        &send(&c, "POST", &gw.url("/kb/sink"), &[], body(1025)).await,
        413,
    );
    assert_exceeded(
        &send(
            &c,
            "POST",
            &gw.url("/kb/sink"),
            &[("expect", "100-continue")],
            body(4096),
        )
        .await,
        417,
    );
    // megabytes is the default unit.
    let r = send(&c, "POST", &gw.url("/mb/sink"), &[], body(1 << 20)).await;
    assert_eq!(r.status, 200);
    assert_exceeded(
        &send(&c, "POST", &gw.url("/mb/sink"), &[], body((1 << 20) + 1)).await,
        413,
    );
    // Only the refused requests stayed away from the upstream.
    assert_eq!(up.hits(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_content_length_bodies_are_counted_as_they_stream() {
    let up = Upstream::start("u");
    let gw = Gateway::with_config(&config(&up)).start();

    // HTTP/1.1 chunked, buffered route.
    let r = upload(gw.proxy, "/kb/sink", 1024, false).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["received"], 1024);
    assert_exceeded(&upload(gw.proxy, "/kb/sink", 64 * 1024, false).await, 413);
    // Streamed route (request_buffering off): refused all the same.
    let r = upload(gw.proxy, "/streamed/sink", 1000, false).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["transfer_encoding"], "chunked");
    assert_exceeded(
        &upload(gw.proxy, "/streamed/sink", 64 * 1024, false).await,
        413,
    );
    // HTTP/2 without content-length.
    let mut h2 = h2_connect::<RepeatBody>(gw.proxy).await;
    for (total, status) in [(1000u64, 200u16), (64 * 1024, 413)] {
        let req = hyper::Request::builder()
            .method("POST")
            .uri(format!("http://{}/streamed/sink", gw.proxy))
            .body(RepeatBody::new(total, 16 * 1024, false))
            .unwrap();
        let resp = h2.send_request(req).await.unwrap();
        assert_eq!(resp.status().as_u16(), status);
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        if status == 413 {
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(v["message"], "Request size limit exceeded");
        }
    }

    // require_content_length: chunked bodies are measured; other bodies need a length.
    let r = upload(gw.proxy, "/required/sink", 512, false).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_exceeded(
        &upload(gw.proxy, "/required/sink", 64 * 1024, false).await,
        413,
    );
    let r = send(
        &client(),
        "GET",
        &gw.url("/required/sink"),
        &[],
        Bytes::new(),
    )
    .await;
    assert_eq!(r.status, 411, "{}", r.text());
    assert_eq!(
        r.json()["message"],
        "A valid Content-Length header is required"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_api_defaults_and_kongs_errors() {
    let gw = Gateway::with_database().start();
    let r = gw
        .admin("POST", "/plugins", json!({"name": "request-size-limiting"}))
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(
        r.json()["config"],
        json!({"allowed_payload_size": 128, "size_unit": "megabytes", "require_content_length": false})
    );
    let r = gw
        .admin(
            "POST",
            "/plugins",
            json!({"name": "request-size-limiting", "config": {"allowed_payload_size": 1.5, "size_unit": "gigabytes"}}),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(
        r.json()["fields"]["config"],
        json!({
            "allowed_payload_size": "expected an integer",
            "size_unit": "expected one of: megabytes, kilobytes, bytes"
        })
    );
}
