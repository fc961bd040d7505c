//! ip-restriction against the real binary: allow and deny lists (IPv4, IPv6, CIDR), Kong's
//! message and custom status/message, the client address after trusted_ips / real_ip_header,
//! defaults and config errors through the Admin API.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use serde_json::json;

fn config(up: &Upstream) -> String {
    format!(
        r#"_format_version: "3.0"
services:
- name: s
  url: http://{}
  routes:
  - name: deny
    paths: [/deny]
    plugins:
    - name: ip-restriction
      config: {{deny: [127.0.0.1]}}
  - name: allow-other
    paths: [/allow-other]
    plugins:
    - name: ip-restriction
      config: {{allow: [10.0.0.0/8, "2001:db8::/32"]}}
  - name: allow-local
    paths: [/allow-local]
    plugins:
    - name: ip-restriction
      config: {{allow: [127.0.0.0/8]}}
  - name: custom
    paths: [/custom]
    plugins:
    - name: ip-restriction
      config: {{deny: [127.0.0.0/24], status: 401, message: Forbidden}}
  - name: both
    paths: [/both]
    plugins:
    - name: ip-restriction
      config: {{allow: [127.0.0.0/8], deny: [127.0.0.1]}}
  - name: v6
    paths: [/v6]
    plugins:
    - name: ip-restriction
      config: {{deny: ["::1", "2001:db8::/32"]}}
"#,
        up.addr
    )
}

fn assert_refused(r: &Reply, status: u16, message: &str) {
    assert_eq!(r.status, status, "{}", r.text());
    assert_eq!(r.json()["message"], message);
    assert_eq!(
        r.json()["request_id"].as_str(),
        r.header("x-kong-request-id")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allow_and_deny_by_the_peer_address() {
    let up = Upstream::start("u");
    let gw = Gateway::with_config(&config(&up)).start();
    let c = client();
    let local = "IP address not allowed: 127.0.0.1";
    assert_refused(&get(&c, &gw.url("/deny"), &[]).await, 403, local);
    assert_refused(&get(&c, &gw.url("/allow-other"), &[]).await, 403, local);
    assert_eq!(get(&c, &gw.url("/allow-local"), &[]).await.status, 200);
    assert_refused(&get(&c, &gw.url("/custom"), &[]).await, 401, "Forbidden");
    // Deny wins over allow.
    assert_refused(&get(&c, &gw.url("/both"), &[]).await, 403, local);
    assert_eq!(get(&c, &gw.url("/v6"), &[]).await.status, 200);
    // Not trusted: a client's X-Real-IP is not believed.
    let r = get(&c, &gw.url("/allow-other"), &[("x-real-ip", "10.1.2.3")]).await;
    assert_refused(&r, 403, local);
    // The error speaks the client's format.
    let r = get(&c, &gw.url("/deny"), &[("accept", "text/plain")]).await;
    assert_eq!(r.status, 403);
    assert!(r.text().starts_with(local), "{}", r.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_address_from_trusted_proxies() {
    let up = Upstream::start("u");
    let gw = Gateway::with_config(&config(&up))
        .setting("trusted_ips", "127.0.0.0/8")
        .start();
    let c = client();
    let via = |ip: &'static str| [("x-real-ip", ip)];
    assert_eq!(
        get(&c, &gw.url("/allow-other"), &via("10.1.2.3"))
            .await
            .status,
        200
    );
    assert_refused(
        &get(&c, &gw.url("/allow-local"), &via("10.1.2.3")).await,
        403,
        "IP address not allowed: 10.1.2.3",
    );
    assert_eq!(
        get(&c, &gw.url("/deny"), &via("10.1.2.3")).await.status,
        200
    );
    assert_refused(
        &get(&c, &gw.url("/v6"), &via("2001:db8::5")).await,
        403,
        "IP address not allowed: 2001:db8::5",
    );
    assert_eq!(
        get(&c, &gw.url("/allow-other"), &via("2001:db8::5"))
            .await
            .status,
        200
    );

    // real_ip_header names another header.
    let gw = Gateway::with_config(&config(&up))
        .setting("trusted_ips", "127.0.0.0/8")
        .setting("real_ip_header", "X-Forwarded-For")
        .start();
    let r = get(
        &c,
        &gw.url("/allow-other"),
        &[("x-forwarded-for", "10.9.9.9")],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = get(&c, &gw.url("/allow-other"), &via("10.1.2.3")).await;
    assert_refused(&r, 403, "IP address not allowed: 127.0.0.1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_api_defaults_and_kongs_errors() {
    let gw = Gateway::with_database().start();
    let r = gw
        .admin(
            "POST",
            "/plugins",
            json!({"name": "ip-restriction", "config": {"allow": ["10.0.0.1", "::1/128"]}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(
        r.json()["config"],
        json!({"allow": ["10.0.0.1", "::1/128"], "deny": null, "status": null, "message": null})
    );

    let r = gw
        .admin("POST", "/plugins", json!({"name": "ip-restriction"}))
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(
        r.json()["fields"]["@entity"],
        json!(["at least one of these fields must be non-empty: 'config.allow', 'config.deny'"])
    );
    let r = gw
        .admin(
            "POST",
            "/plugins",
            json!({"name": "ip-restriction", "config": {"allow": ["127.0.0.1/32", "hello"], "deny": 12}}),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(
        r.json()["fields"]["config"],
        json!({"allow": [null, "invalid ip or cidr range: 'hello'"], "deny": "expected an array"})
    );
    let r = gw
        .admin(
            "POST",
            "/plugins",
            json!({"name": "ip-restriction", "config": {"deny": ["0.0.0.0/33", "::/129"]}}),
        )
        .await;
    assert_eq!(
        r.json()["fields"]["config"]["deny"],
        json!([
            "invalid ip or cidr range: '0.0.0.0/33'",
            "invalid ip or cidr range: '::/129'"
        ])
    );
}
