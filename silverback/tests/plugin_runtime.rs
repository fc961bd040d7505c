//! The plugin runtime's rules, shown with the traffic plugins against the real binary: Kong's
//! scope precedence (global < service < route < consumer), priority order (ip-restriction and
//! bot-detection refuse before request-termination runs; cors answers preflights first),
//! exits passing through header_filter (cors headers on a request-termination answer), and
//! global plugins on requests no route matched.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;

fn config(up: &Upstream) -> String {
    format!(
        r#"_format_version: "3.0"
consumers:
- username: anon
plugins:
- name: request-termination
  config: {{status_code: 410, message: global}}
- name: cors
  config: {{origins: ["http://example.com"]}}
- name: bot-detection
- name: request-termination
  consumer: anon
  config: {{status_code: 402, message: consumer}}
services:
- name: plain
  url: http://{addr}
  routes:
  - name: global-only
    paths: [/global]
- name: svc
  url: http://{addr}
  plugins:
  - name: request-termination
    config: {{status_code: 418, message: service}}
  routes:
  - name: service-level
    paths: [/service]
  - name: route-level
    paths: [/route]
    plugins:
    - name: request-termination
      config: {{status_code: 409, message: route}}
  - name: authed
    paths: [/authed]
    plugins:
    - name: key-auth
      config: {{anonymous: anon}}
  - name: denied
    paths: [/denied]
    plugins:
    - name: ip-restriction
      config: {{deny: [127.0.0.1]}}
"#,
        addr = up.addr
    )
}

fn assert_answer(r: &Reply, status: u16, message: &str) {
    assert_eq!(r.status, status, "{}", r.text());
    assert_eq!(r.json()["message"], message, "{}", r.text());
}

/// Kong's cors headers for the configured origin: every response got them in header_filter.
fn assert_cors(r: &Reply) {
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("http://example.com"),
        "status {}",
        r.status
    );
    assert_eq!(r.header("vary"), Some("Origin"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scope_precedence_priorities_and_header_filter_on_exits() {
    let up = Upstream::start("u");
    let gw = Gateway::with_config(&config(&up)).start();
    let c = client();
    let origin = [("origin", "http://example.com")];

    // Scope precedence: global < service < route; each exit still gets the global cors
    // headers (exits pass through header_filter).
    let r = get(&c, &gw.url("/global"), &origin).await;
    assert_answer(&r, 410, "global");
    assert_cors(&r);
    let r = get(&c, &gw.url("/service"), &origin).await;
    assert_answer(&r, 418, "service");
    assert_cors(&r);
    let r = get(&c, &gw.url("/route"), &origin).await;
    assert_answer(&r, 409, "route");
    assert_cors(&r);

    // Once key-auth (priority 1250) set the consumer, the consumer's own configuration wins
    // over the service's.
    let r = get(&c, &gw.url("/authed"), &origin).await;
    assert_answer(&r, 402, "consumer");
    assert_cors(&r);

    // Priority: ip-restriction (990) refuses before request-termination (2) runs.
    let r = get(&c, &gw.url("/denied"), &origin).await;
    assert_answer(&r, 403, "IP address not allowed: 127.0.0.1");
    assert_cors(&r);
    // bot-detection (2500) runs first of all.
    let r = get(&c, &gw.url("/route"), &[("user-agent", "Googlebot/2.1")]).await;
    assert_answer(&r, 403, "Forbidden");
    assert_cors(&r);
    // cors (2000) answers a preflight before request-termination would.
    let r = send(
        &c,
        "OPTIONS",
        &gw.url("/route"),
        &[
            ("origin", "http://example.com"),
            ("access-control-request-method", "GET"),
        ],
        "",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.header("access-control-allow-methods").is_some());
    assert_cors(&r);

    // No route matched: the gateway's 404 still goes through the global plugins'
    // header_filter.
    let r = get(&c, &gw.url("/nowhere"), &origin).await;
    assert_answer(&r, 404, "no Route matched with those values");
    assert_cors(&r);
    assert_eq!(up.hits(), 0, "every request was answered by the gateway");
}
