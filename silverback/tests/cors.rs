//! cors against the real binary: preflights answered by the gateway (or passed on), headers on
//! proxied responses, `*` / exact / regex origins, credentials, Vary, defaults and config
//! errors through the Admin API.
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
  - name: any
    paths: [/any]
    plugins:
    - name: cors
  - name: one
    paths: [/one]
    plugins:
    - name: cors
      config: {{origins: ["http://example.com"], credentials: true, exposed_headers: [X-Total, X-Page]}}
  - name: many
    paths: [/many]
    plugins:
    - name: cors
      config:
        origins: ["http://.*\\.example\\.com", "(.*)\\.foo\\.test", "https://exact.test:8443"]
        headers: [X-A, X-B]
        methods: [GET, POST]
        max_age: 3600
        private_network: true
  - name: star-credentials
    paths: [/star-credentials]
    plugins:
    - name: cors
      config: {{credentials: true}}
  - name: continue
    paths: [/continue]
    plugins:
    - name: cors
      config: {{preflight_continue: true}}
  - name: absent
    paths: [/absent]
    plugins:
    - name: cors
      config: {{origins: ["http://example.com"], allow_origin_absent: false}}
"#,
        up.addr
    )
}

fn preflight<'a>(origin: &'a str, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut h = vec![("origin", origin), ("access-control-request-method", "GET")];
    h.extend_from_slice(extra);
    h
}

fn all(r: &Reply, name: &str) -> Vec<String> {
    r.headers
        .get_all(name)
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preflights_answered_by_the_gateway() {
    let up = Upstream::start("u");
    let gw = Gateway::with_config(&config(&up)).start();
    let c = client();

    let r = send(
        &c,
        "OPTIONS",
        &gw.url("/any"),
        &preflight(
            "http://a.test",
            &[("access-control-request-headers", "X-Foo")],
        ),
        "",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.body.is_empty());
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    assert_eq!(
        r.header("access-control-allow-methods"),
        Some("GET,HEAD,PUT,PATCH,POST,DELETE,OPTIONS,TRACE,CONNECT")
    );
    assert_eq!(r.header("access-control-allow-headers"), Some("X-Foo"));
    assert_eq!(r.header("vary"), None);
    assert_eq!(r.header("access-control-max-age"), None);
    assert_eq!(r.header("access-control-allow-credentials"), None);
    assert!(r.header("x-kong-request-id").is_some());

    let r = send(
        &c,
        "OPTIONS",
        &gw.url("/many"),
        &preflight(
            "http://api.example.com",
            &[
                ("access-control-request-headers", "X-Foo"),
                ("access-control-request-private-network", "true"),
            ],
        ),
        "",
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("http://api.example.com")
    );
    assert_eq!(r.header("access-control-allow-headers"), Some("X-A,X-B"));
    assert_eq!(r.header("access-control-allow-methods"), Some("GET,POST"));
    assert_eq!(r.header("access-control-max-age"), Some("3600"));
    assert_eq!(
        r.header("access-control-allow-private-network"),
        Some("true")
    );
    assert_eq!(r.header("vary"), Some("Origin"));

    // Credentials with one origin.
    let r = send(
        &c,
        "OPTIONS",
        &gw.url("/one"),
        &preflight("http://x.test", &[]),
        "",
    )
    .await;
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("http://example.com")
    );
    assert_eq!(r.header("access-control-allow-credentials"), Some("true"));

    // Not a preflight (no Access-Control-Request-Method): proxied.
    let r = send(
        &c,
        "OPTIONS",
        &gw.url("/any"),
        &[("origin", "http://a.test")],
        "",
    )
    .await;
    assert_eq!(echo(&r).method, "OPTIONS");
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    assert_eq!(up.hits(), 1);

    // preflight_continue: the upstream answers, and no headers are added.
    let r = send(
        &c,
        "OPTIONS",
        &gw.url("/continue"),
        &preflight("http://a.test", &[]),
        "",
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(echo(&r).method, "OPTIONS");
    assert_eq!(r.header("access-control-allow-origin"), None);
    assert_eq!(up.hits(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_on_proxied_responses() {
    let up = Upstream::start("u");
    let gw = Gateway::with_config(&config(&up)).start();
    let c = client();

    let r = get(&c, &gw.url("/any"), &[("origin", "http://a.test")]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    assert_eq!(r.header("vary"), None);
    // No Origin: still sent (allow_origin_absent defaults to true).
    let r = get(&c, &gw.url("/any"), &[]).await;
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));

    // One fixed origin: sent whatever the request's origin; Vary added to the upstream's.
    let r = get(
        &c,
        &gw.url("/one"),
        &[
            ("origin", "http://other.test"),
            ("x-set-response-header", "vary=Accept-Encoding"),
        ],
    )
    .await;
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("http://example.com")
    );
    assert_eq!(r.header("access-control-allow-credentials"), Some("true"));
    assert_eq!(
        r.header("access-control-expose-headers"),
        Some("X-Total,X-Page")
    );
    assert_eq!(all(&r, "vary"), vec!["Accept-Encoding", "Origin"]);

    // Patterns: by host when they have no ':', by whole origin otherwise; default ports drop.
    for (origin, allowed) in [
        ("http://api.example.com", Some("http://api.example.com")),
        ("http://api.example.com:80", Some("http://api.example.com")),
        ("https://api.example.com", None),
        ("http://evil.com", None),
        (
            "https://www.foo.test:9000",
            Some("https://www.foo.test:9000"),
        ),
        ("https://exact.test:8443", Some("https://exact.test:8443")),
        ("https://exact.test", None),
    ] {
        let r = get(&c, &gw.url("/many"), &[("origin", origin)]).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.header("access-control-allow-origin"), allowed, "{origin}");
        assert_eq!(r.header("vary"), Some("Origin"), "{origin}");
        assert_eq!(
            r.header("access-control-allow-methods"),
            None,
            "preflight only"
        );
    }

    // `*` with credentials: the origin is echoed instead (browsers refuse `*` then).
    let r = get(
        &c,
        &gw.url("/star-credentials"),
        &[("origin", "http://a.test")],
    )
    .await;
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("http://a.test")
    );
    assert_eq!(r.header("access-control-allow-credentials"), Some("true"));
    assert_eq!(r.header("vary"), Some("Origin"));

    // allow_origin_absent false: nothing without an Origin.
    let r = get(&c, &gw.url("/absent"), &[]).await;
    assert_eq!(r.header("access-control-allow-origin"), None);
    assert_eq!(r.header("vary"), None);
    let r = get(&c, &gw.url("/absent"), &[("origin", "http://example.com")]).await;
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("http://example.com")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_api_defaults_and_kongs_errors() {
    let gw = Gateway::with_database().start();
    let r = gw.admin("POST", "/plugins", json!({"name": "cors"})).await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(
        r.json()["config"],
        json!({
            "origins": null,
            "headers": null,
            "exposed_headers": null,
            "methods": ["GET", "HEAD", "PUT", "PATCH", "POST", "DELETE", "OPTIONS", "TRACE", "CONNECT"],
            "max_age": null,
            "credentials": false,
            "private_network": false,
            "preflight_continue": false,
            "allow_origin_absent": true
        })
    );
    let r = gw
        .admin(
            "POST",
            "/plugins",
            json!({"name": "cors", "config": {"origins": ["*", "(bad"], "methods": ["GET", "FETCH"], "max_age": "x"}}),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(
        r.json()["fields"]["config"],
        json!({
            "origins": [null, "'(bad' is not a valid regex"],
            "methods": [null, "expected one of: GET, HEAD, PUT, PATCH, POST, DELETE, OPTIONS, TRACE, CONNECT"],
            "max_age": "expected a number"
        })
    );
}
