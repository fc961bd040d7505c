//! redirect against the real binary: Kong's status, Location and body, keep_incoming_path,
//! and config validation.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_with_or_without_the_incoming_path() {
    let up = Upstream::start("u");
    let gw = Gateway::with_config(&format!(
        r#"_format_version: "3.0"
services:
- name: s
  url: http://{}
  routes:
  - name: moved
    paths: [/moved]
    plugins:
    - name: redirect
      config: {{location: "https://new.example.com/landing?from=old"}}
  - name: keep
    paths: [/keep]
    plugins:
    - name: redirect
      config: {{location: "https://new.example.com:8443/ignored?x=1#top", keep_incoming_path: true, status_code: 308}}
"#,
        up.addr
    ))
    .start();
    let c = client();
    let r = get(&c, &gw.url("/moved/a?b=c"), &[]).await;
    assert_eq!(r.status, 301);
    assert_eq!(
        r.header("location"),
        Some("https://new.example.com/landing?from=old")
    );
    assert_eq!(r.text(), "redirecting");

    let r = get(&c, &gw.url("/keep/deep/path?q=1&r=2"), &[]).await;
    assert_eq!(r.status, 308);
    assert_eq!(
        r.header("location"),
        Some("https://new.example.com:8443/keep/deep/path?q=1&r=2#top")
    );
    let r = get(&c, &gw.url("/keep"), &[]).await;
    assert_eq!(
        r.header("location"),
        Some("https://new.example.com:8443/keep#top")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configs_are_validated() {
    let gw = Gateway::with_database().start();
    let r = gw
        .admin(
            "POST",
            "/plugins",
            json!({"name": "redirect", "config": {}}),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(
        r.json()["fields"]["config"]["location"],
        "required field missing"
    );
    let r = gw
        .admin(
            "POST",
            "/plugins",
            json!({"name": "redirect", "config": {"location": "/relative", "status_code": 600}}),
        )
        .await;
    assert_eq!(r.status, 400);
    let fields = &r.json()["fields"]["config"];
    assert_eq!(fields["location"], "missing host in url");
    assert_eq!(fields["status_code"], "value should be between 100 and 599");
    let r = gw
        .admin(
            "POST",
            "/plugins",
            json!({"name": "redirect", "config": {"location": "https://x.test"}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(
        r.json()["config"],
        json!({"status_code": 301, "location": "https://x.test", "keep_incoming_path": false})
    );
}
