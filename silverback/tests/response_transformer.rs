//! response-transformer against the real binary: header steps, JSON body steps with
//! `json_types`, non-JSON bodies untouched, Content-Length right, a large JSON body held and
//! changed, and a large non-JSON body streamed through with bounded memory.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use serde_json::{Value, json};

fn config(up: &Upstream) -> String {
    format!(
        r#"_format_version: "3.0"
services:
- name: s
  url: http://{}
  routes:
  - name: headers
    paths: [/headers]
    plugins:
    - name: response-transformer
      config:
        remove: {{headers: [x-upstream-name]}}
        rename: {{headers: ["x-old:x-new"]}}
        replace: {{headers: ["content-type:application/vnd.test+json", "x-absent:no"]}}
        add: {{headers: ["x-added:a", "content-type:ignored"]}}
        append: {{headers: ["x-added:b"]}}
  - name: json
    paths: [/json]
    plugins:
    - name: response-transformer
      config:
        remove: {{json: [peer]}}
        rename: {{json: ["method:verb"]}}
        replace: {{json: ["version:replaced", "absent:no"]}}
        add:
          json: ["p1:v1", "n:-1", "flag:true", "quoted:\"v\""]
          json_types: [string, number, boolean]
        append: {{json: ["upstream:second"]}}
  - name: stream
    paths: [/stream]
    plugins:
    - name: response-transformer
      config:
        remove: {{json: [pad]}}
        add: {{json: ["p1:v1"]}}
"#,
        up.addr
    )
}

/// The body length the client got agrees with the framing the gateway sent.
fn assert_framing(r: &Reply) {
    match r.header("content-length") {
        Some(n) => assert_eq!(n, r.body.len().to_string(), "Content-Length"),
        None => assert_eq!(r.header("transfer-encoding"), Some("chunked")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_steps() {
    let up = Upstream::start("u");
    let gw = Gateway::with_config(&config(&up)).start();
    let r = get(
        &client(),
        &gw.url("/headers"),
        &[("x-set-response-header", "x-old=o")],
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-upstream-name"), None);
    assert_eq!(r.header("x-old"), None);
    assert_eq!(r.header("x-new"), Some("o"));
    assert_eq!(r.header("content-type"), Some("application/vnd.test+json"));
    assert_eq!(r.header("x-absent"), None);
    let added: Vec<_> = r.headers.get_all("x-added").iter().collect();
    assert_eq!(added, ["a", "b"]);
    // No JSON step configured: the body and its length are the upstream's.
    assert!(r.header("content-length").is_some());
    assert_framing(&r);
    assert_eq!(r.json()["upstream"], "u");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_steps_with_types() {
    let up = Upstream::start("u");
    let gw = Gateway::with_config(&config(&up)).start();
    let r = get(&client(), &gw.url("/json"), &[]).await;
    assert_eq!(r.status, 200);
    assert_framing(&r);
    let v = r.json();
    assert!(v.get("peer").is_none(), "{v}");
    assert!(v.get("method").is_none(), "{v}");
    assert_eq!(v["verb"], "GET");
    assert_eq!(v["version"], "replaced");
    assert!(v.get("absent").is_none(), "{v}");
    assert_eq!(v["p1"], "v1");
    assert_eq!(v["n"], -1);
    assert_eq!(v["flag"], true);
    assert_eq!(v["quoted"], "\"v\"");
    assert_eq!(v["upstream"], json!(["u", "second"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_json_bodies_are_untouched() {
    let up = Upstream::start("u");
    let gw = Gateway::with_config(&config(&up)).start();
    let r = get(
        &client(),
        &gw.url("/json"),
        &[("x-set-response-header", "content-type=text/plain")],
    )
    .await;
    assert_eq!(r.status, 200);
    let v: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["method"], "GET");
    assert!(v.get("p1").is_none());
    assert_eq!(
        r.header("content-length"),
        Some(r.body.len().to_string().as_str())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_json_body_is_held_and_changed() {
    let up = Upstream::start("u");
    let gw = Gateway::with_config(&config(&up)).start();
    let r = get(&client(), &gw.url("/stream/bigjson/3000000"), &[]).await;
    assert_eq!(r.status, 200);
    assert_framing(&r);
    assert_eq!(r.json(), json!({"end": true, "p1": "v1"}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_non_json_body_streams_through() {
    const SIZE: u64 = 256 * 1024 * 1024;
    let up = Upstream::start("u");
    let gw = Gateway::with_config(&config(&up)).start();
    // Warm up, so start-up allocations are not counted.
    let (status, _, _) = download(gw.proxy, "/stream/big/1000").await;
    assert_eq!(status, 200);
    let (_, before) = gw.memory_kib();
    let watch = gw.watch_memory();
    let (status, headers, n) = download(gw.proxy, &format!("/stream/big/{SIZE}")).await;
    let peak = watch.finish();
    assert_eq!(status, 200);
    assert_eq!(n, SIZE);
    assert_eq!(
        headers.get("content-length").and_then(|v| v.to_str().ok()),
        Some(SIZE.to_string().as_str())
    );
    let grew = peak.saturating_sub(before);
    assert!(
        grew < 64 * 1024,
        "memory grew by {grew} KiB while streaming {SIZE} bytes"
    );
}
