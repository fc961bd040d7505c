//! request-termination against the real binary: Kong's default messages, custom bodies and
//! content types, trigger and echo, defaults and config errors through the Admin API.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use bytes::Bytes;
use common::*;
use serde_json::{Value, json};

fn config(up: &Upstream) -> String {
    format!(
        r#"_format_version: "3.0"
services:
- name: s
  url: http://{}
  routes:
  - name: open
    paths: [/open]
  - name: default
    paths: [/default]
    plugins:
    - name: request-termination
  - name: notfound
    paths: [/notfound]
    plugins:
    - name: request-termination
      config: {{status_code: 404}}
  - name: custom
    paths: [/custom]
    plugins:
    - name: request-termination
      config: {{status_code: 406, message: Invalid}}
  - name: html
    paths: [/html]
    plugins:
    - name: request-termination
      config: {{status_code: 451, content_type: text/html, body: "<h1>gone</h1>"}}
  - name: raw
    paths: [/raw]
    plugins:
    - name: request-termination
      config: {{body: "down"}}
  - name: nomessage
    paths: [/nomessage]
    plugins:
    - name: request-termination
      config: {{status_code: 418}}
  - name: echo
    paths: ["~/echo/(?<what>[a-z]+)"]
    plugins:
    - name: request-termination
      config: {{status_code: 404, echo: true}}
  - name: trigger
    paths: [/trigger]
    plugins:
    - name: request-termination
      config: {{trigger: gimme_an_echo, echo: true, status_code: 404}}
- name: nowhere
  url: http://127.0.0.1:1
routes:
- name: serviceless
  paths: [/serviceless]
  plugins:
  - name: request-termination
"#,
        up.addr
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statuses_messages_and_bodies_like_kong() {
    let up = Upstream::start("u");
    let gw = Gateway::with_config(&config(&up)).start();
    let c = client();

    assert_eq!(get(&c, &gw.url("/open"), &[]).await.status, 200);
    let r = get(&c, &gw.url("/default"), &[]).await;
    assert_eq!(r.status, 503);
    assert_eq!(r.json(), json!({"message": "Service unavailable"}));
    assert!(
        r.header("content-type")
            .unwrap()
            .starts_with("application/json")
    );
    assert!(r.header("server").is_some() && r.header("x-kong-request-id").is_some());
    // Also on a route without a service: plugins run before the service is needed.
    let r = get(&c, &gw.url("/serviceless"), &[]).await;
    assert_eq!(
        (r.status, r.json()),
        (503, json!({"message": "Service unavailable"}))
    );

    let r = get(&c, &gw.url("/notfound"), &[]).await;
    assert_eq!((r.status, r.json()), (404, json!({"message": "Not found"})));
    let r = get(&c, &gw.url("/custom"), &[]).await;
    assert_eq!((r.status, r.json()), (406, json!({"message": "Invalid"})));

    let r = get(&c, &gw.url("/html"), &[]).await;
    assert_eq!(r.status, 451);
    assert_eq!(r.text(), "<h1>gone</h1>");
    assert_eq!(r.header("content-type"), Some("text/html"));
    let r = get(&c, &gw.url("/raw"), &[]).await;
    assert_eq!((r.status, r.text().as_str()), (503, "down"));
    assert_eq!(r.header("content-type"), None);

    // A status Kong has no message for: no body at all.
    let r = get(&c, &gw.url("/nomessage"), &[]).await;
    assert_eq!(r.status, 418);
    assert!(r.body.is_empty(), "{}", r.text());
    assert_eq!(up.hits(), 1, "only /open reached the upstream");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_and_trigger() {
    let up = Upstream::start("u");
    let gw = Gateway::with_config(&config(&up)).start();
    let c = client();

    let r = send(
        &c,
        "POST",
        &gw.url("/echo/status?hello=there&flag&d=1&d=2"),
        &[
            ("x-multi", "a"),
            ("x-multi", "b"),
            ("content-type", "application/json"),
        ],
        Bytes::from_static(br#"{"k":"v"}"#),
    )
    .await;
    assert_eq!(r.status, 404, "{}", r.text());
    let e = r.json();
    assert_eq!(e["message"], "Not found");
    let req = &e["request"];
    assert_eq!(req["method"], "POST");
    assert_eq!(req["path"], "/echo/status");
    assert_eq!(req["scheme"], "http");
    assert_eq!(req["host"], "127.0.0.1");
    assert_eq!(req["port"], json!(gw.proxy.port()));
    assert_eq!(
        req["query"],
        json!({"hello": "there", "flag": true, "d": ["1", "2"]})
    );
    assert_eq!(req["headers"]["x-multi"], json!(["a", "b"]));
    assert_eq!(req["body"], json!({"k": "v"}));
    assert_eq!(req["raw_body"], r#"{"k":"v"}"#);
    assert_eq!(req["uri_captures"]["named"], json!({"what": "status"}));
    assert_eq!(req["uri_captures"]["unnamed"], json!(["status"]));
    assert_eq!(e["matched_route"]["name"], "echo");
    assert_eq!(e["matched_service"]["name"], "s");
    assert!(e["kong"]["worker_pid"].is_number());

    // With a trigger, only requests carrying it (header or query) are terminated.
    let r = get(&c, &gw.url("/trigger"), &[]).await;
    assert_eq!(r.status, 200, "no trigger: proxied");
    assert_eq!(echo(&r).uri, "/", "the upstream answered");
    let r = get(&c, &gw.url("/trigger"), &[("gimme-an-echo", "yes")]).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["request"]["headers"]["gimme-an-echo"], "yes");
    let r = get(&c, &gw.url("/trigger?gimme_an_echo"), &[]).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["request"]["query"]["gimme_an_echo"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_api_defaults_and_kongs_errors() {
    let gw = Gateway::with_database().start();
    let r = gw
        .admin("POST", "/plugins", json!({"name": "request-termination"}))
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(
        r.json()["config"],
        json!({
            "status_code": 503,
            "message": null,
            "content_type": null,
            "body": null,
            "echo": false,
            "trigger": null
        })
    );
    assert_eq!(
        r.json()["protocols"],
        json!(["grpc", "grpcs", "http", "https"])
    );

    let bad = |config: Value| {
        let gw = &gw;
        async move {
            let r = gw
                .admin(
                    "POST",
                    "/plugins",
                    json!({"name": "request-termination", "config": config}),
                )
                .await;
            assert_eq!(r.status, 400, "{}", r.text());
            assert_eq!(r.json()["code"], 2);
            r.json()
        }
    };
    let e = bad(json!({"status_code": 99})).await;
    assert_eq!(
        e["fields"]["config"]["status_code"],
        "value should be between 100 and 599"
    );
    let e = bad(json!({"status_code": "abcd"})).await;
    assert_eq!(e["fields"]["config"]["status_code"], "expected an integer");
    let e = bad(json!({"message": "error", "body": "test"})).await;
    assert_eq!(
        e["fields"]["config"],
        "message cannot be used with content_type or body"
    );
    assert_eq!(
        e["message"],
        "schema violation (config: message cannot be used with content_type or body)"
    );
    let e = bad(json!({"content_type": "text/html"})).await;
    assert_eq!(e["fields"]["config"], "content_type requires a body");
    let e = bad(json!({"echo": true, "content_type": "text/html", "body": "x"})).await;
    assert_eq!(
        e["fields"]["config"],
        "echo cannot be used with content_type and body"
    );
    let e = bad(json!({"trigger": "bad header"})).await;
    assert_eq!(
        e["fields"]["config"]["trigger"],
        "bad header name 'bad header', allowed characters are A-Z, a-z, 0-9, '_', and '-'"
    );
}
