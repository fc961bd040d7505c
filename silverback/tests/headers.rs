//! The headers the gateway adds (Kong's `headers` and `headers_upstream` settings) and the Host
//! header sent upstream.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use std::net::SocketAddr;

const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Every header the `headers` setting can add to client responses.
const KONG_HEADERS: &[&str] = &[
    "server",
    "via",
    "x-kong-proxy-latency",
    "x-kong-response-latency",
    "x-kong-upstream-latency",
    "x-kong-upstream-status",
    "x-kong-request-id",
];

fn config(up: &Upstream) -> String {
    format!(
        "_format_version: \"3.0\"\nservices:\n- name: s\n  url: http://{}\n  routes:\n  - paths: [/p]\n",
        up.addr
    )
}

/// Asserts that of Kong's headers exactly `want` are present.
fn assert_kong_headers(r: &Reply, want: &[&str], what: &str) {
    assert_kong_headers_but(r, want, &[], what);
}

/// Like `assert_kong_headers`, not looking at the headers in `skip`.
fn assert_kong_headers_but(r: &Reply, want: &[&str], skip: &[&str], what: &str) {
    for h in KONG_HEADERS.iter().filter(|h| !skip.contains(h)) {
        assert_eq!(
            r.header(h).is_some(),
            want.contains(h),
            "{what}: header {h} {} expected; got {:?}",
            if want.contains(h) { "is" } else { "is not" },
            r.headers
        );
    }
}

fn assert_millis(r: &Reply, name: &str) {
    let v = r.header(name).unwrap();
    assert!(
        v.parse::<u64>().is_ok(),
        "{name} is a whole number of ms: {v}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_headers() {
    let up = Upstream::start("u");
    let gw = Gateway::with_config(&config(&up)).start();
    let cl = client();

    let r = get(&cl, &gw.url("/p/x"), &[]).await;
    assert_eq!(r.status, 200);
    // `server` is left out: whether the gateway adds one to proxied responses is checked in
    // `proxied_response_without_server_gets_the_gateways`.
    for h in [
        "via",
        "x-kong-proxy-latency",
        "x-kong-upstream-latency",
        "x-kong-request-id",
    ] {
        assert!(r.header(h).is_some(), "proxied response lacks {h}");
    }
    for h in ["x-kong-response-latency", "x-kong-upstream-status"] {
        assert!(r.header(h).is_none(), "proxied response has {h}");
    }
    assert_eq!(
        r.header("via").unwrap(),
        format!("1.1 silverback/{VERSION}")
    );
    assert_millis(&r, "x-kong-proxy-latency");
    assert_millis(&r, "x-kong-upstream-latency");
    let rid = r.header("x-kong-request-id").unwrap();
    assert_eq!(
        echo(&r).header("x-kong-request-id"),
        Some(rid),
        "headers_upstream defaults to X-Kong-Request-Id"
    );

    // The upstream took 300 ms: that is upstream latency, not proxy latency.
    let r = get(&cl, &gw.url("/p/delay/300"), &[]).await;
    let upstream_ms: u64 = r
        .header("x-kong-upstream-latency")
        .unwrap()
        .parse()
        .unwrap();
    let proxy_ms: u64 = r.header("x-kong-proxy-latency").unwrap().parse().unwrap();
    assert!(upstream_ms >= 290, "upstream latency {upstream_ms} ms");
    assert!(proxy_ms < 290, "proxy latency {proxy_ms} ms");

    // A gateway-made response.
    let r = get(&cl, &gw.url("/nowhere"), &[]).await;
    assert_eq!(r.status, 404);
    assert_kong_headers(
        &r,
        &["server", "x-kong-response-latency", "x-kong-request-id"],
        "404",
    );
    assert_eq!(r.header("server").unwrap(), format!("silverback/{VERSION}"));
    assert_millis(&r, "x-kong-response-latency");
    assert_eq!(
        r.json()["request_id"].as_str(),
        r.header("x-kong-request-id")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_server_and_via_are_kept() {
    let up = Upstream::start("u");
    let gw = Gateway::with_config(&config(&up)).start();
    let cl = client();
    let r = get(
        &cl,
        &gw.url("/p/x"),
        &[("x-set-response-header", "server=origin/1.0")],
    )
    .await;
    assert_eq!(r.header("server"), Some("origin/1.0"), "{:?}", r.headers);
    let r = get(
        &cl,
        &gw.url("/p/x"),
        &[("x-set-response-header", "via=1.0 origin-cache")],
    )
    .await;
    assert_eq!(
        r.header("via").unwrap(),
        format!("1.0 origin-cache, 1.1 silverback/{VERSION}"),
        "the gateway appends itself to the upstream's Via"
    );
    // And on the way in: a client Via is kept, the gateway appended.
    let e = echo(&get(&cl, &gw.url("/p/x"), &[("via", "1.1 edge")]).await);
    assert_eq!(
        e.header("via").unwrap(),
        format!("1.1 edge, 1.1 silverback/{VERSION}")
    );
}

/// Kong 3.8+ (feat "inbound and outbound Via header") gives a proxied response whose upstream
/// sent no Server header `Server: kong/<version>` when server_tokens is enabled (the default);
/// without it nginx would insert its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxied_response_without_server_gets_the_gateways() {
    let up = Upstream::start("u");
    let gw = Gateway::with_config(&config(&up)).start();
    let r = get(&client(), &gw.url("/p/x"), &[]).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("server"),
        Some(format!("silverback/{VERSION}").as_str()),
        "{:?}",
        r.headers
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_off_adds_none() {
    let up = Upstream::start("u");
    let gw = Gateway::with_config(&config(&up))
        .setting("headers", "off")
        .start();
    let cl = client();
    let r = get(&cl, &gw.url("/p/status/201"), &[]).await;
    assert_eq!(r.status, 201);
    assert_kong_headers(&r, &[], "proxied, headers=off");
    // headers_upstream is a separate setting: the upstream still gets the request id.
    assert_eq!(echo(&r).header("x-kong-request-id").unwrap().len(), 32);
    let r = get(&cl, &gw.url("/nowhere"), &[]).await;
    assert_eq!(r.status, 404);
    assert_kong_headers(&r, &[], "404, headers=off");
    // The error body still carries the request id.
    assert_eq!(r.json()["request_id"].as_str().unwrap().len(), 32);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_upstream_status_only() {
    let up = Upstream::start("u");
    let gw = Gateway::with_config(&config(&up))
        .setting("headers", "X-Kong-Upstream-Status")
        .start();
    let cl = client();
    let r = get(&cl, &gw.url("/p/status/418"), &[]).await;
    assert_eq!(r.status, 418);
    assert_kong_headers(&r, &["x-kong-upstream-status"], "proxied");
    assert_eq!(r.header("x-kong-upstream-status"), Some("418"));
    let r = get(&cl, &gw.url("/p/x"), &[]).await;
    assert_eq!(r.header("x-kong-upstream-status"), Some("200"));
    // Only proxied responses have an upstream status.
    let r = get(&cl, &gw.url("/nowhere"), &[]).await;
    assert_eq!(r.status, 404);
    assert_kong_headers(&r, &[], "404");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_groups_and_names_combine() {
    let up = Upstream::start("u");
    let cases: &[(&str, &[&str], &[&str])] = &[
        // (setting, on proxied responses, on gateway-made responses)
        ("server_tokens", &["via"], &["server"]),
        (
            "latency_tokens",
            &["x-kong-proxy-latency", "x-kong-upstream-latency"],
            &["x-kong-response-latency"],
        ),
        (
            "Via, X-Kong-Request-Id, x-kong-response-latency",
            &["via", "x-kong-request-id"],
            &["x-kong-request-id", "x-kong-response-latency"],
        ),
        ("Server", &[], &["server"]),
    ];
    for (setting, proxied, made) in cases {
        let gw = Gateway::with_config(&config(&up))
            .setting("headers", setting)
            .start();
        let cl = client();
        let r = get(&cl, &gw.url("/p/x"), &[]).await;
        assert_eq!(r.status, 200);
        // Server on proxied responses: see `proxied_response_without_server_gets_the_gateways`.
        assert_kong_headers_but(
            &r,
            proxied,
            &["server"],
            &format!("proxied, headers={setting}"),
        );
        let r = get(&cl, &gw.url("/nowhere"), &[]).await;
        assert_kong_headers(&r, made, &format!("404, headers={setting}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_header_names_are_rejected_at_start() {
    let dir = TempDir::new("headers");
    let mut env = base_env(&dir);
    env.push(("SILVERBACK_HEADERS".into(), "X-Kong-Nonsense".into()));
    let (code, out, _) =
        run_cli_timeout(&["start"], &env, None, std::time::Duration::from_secs(15));
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("setting 'headers': 'X-Kong-Nonsense' is not a known header"),
        "{out}"
    );
    env.pop();
    env.push(("SILVERBACK_HEADERS_UPSTREAM".into(), "Via".into()));
    let (code, out, _) =
        run_cli_timeout(&["start"], &env, None, std::time::Duration::from_secs(15));
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("setting 'headers_upstream'"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_upstream_off_drops_the_request_id_upstream() {
    let up = Upstream::start("u");
    let gw = Gateway::with_config(&config(&up))
        .setting("headers_upstream", "off")
        .start();
    let r = get(&client(), &gw.url("/p/x"), &[]).await;
    let e = echo(&r);
    assert!(
        e.header("x-kong-request-id").is_none(),
        "upstream got {:?}",
        e.header("x-kong-request-id")
    );
    // The client still gets it (the `headers` setting).
    assert_eq!(r.header("x-kong-request-id").unwrap().len(), 32);
}

// ---- Host header ----

/// An upstream on port 80 of a loopback address of its own (binding port 80 needs root).
fn upstream_on_port_80(name: &str, salt: u8) -> Option<Upstream> {
    let pid = std::process::id();
    for attempt in 0..20u32 {
        let a = ((pid >> 8) as u8).wrapping_add(attempt as u8);
        let b = (pid as u8).wrapping_add(salt) | 1;
        let addr: SocketAddr = format!("127.80.{a}.{b}:80").parse().unwrap();
        match Upstream::try_start_on(addr, name) {
            Ok(up) => return Some(up),
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                eprintln!("SKIPPED: cannot bind port 80 here: {e}");
                return None;
            }
            Err(_) => continue,
        }
    }
    panic!("no free 127.80.x.y:80 address");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_header_is_the_service_host_and_port() {
    let up = Upstream::start("u");
    let Some(up80) = upstream_on_port_80("u80", 0) else {
        return;
    };
    let cfg = format!(
        "_format_version: \"3.0\"\nservices:\n- name: by-ip\n  url: http://{}\n  routes:\n  - paths: [/ip]\n- name: by-name\n  url: http://localhost:{}\n  routes:\n  - paths: [/name]\n- name: port80\n  url: http://{}\n  routes:\n  - paths: [/eighty]\n- name: kept\n  url: http://localhost:{}\n  routes:\n  - paths: [/kept]\n    preserve_host: true\n",
        up.addr,
        up.addr.port(),
        up80.addr.ip(),
        up.addr.port()
    );
    let gw = Gateway::with_config(&cfg).start();
    let cl = client();
    let host = |r: Reply| echo(&r).header("host").map(str::to_string);
    let client_host = [("host", "client.example:8000")];
    assert_eq!(
        host(get(&cl, &gw.url("/ip"), &client_host).await),
        Some(up.addr.to_string())
    );
    assert_eq!(
        host(get(&cl, &gw.url("/name"), &client_host).await),
        Some(format!("localhost:{}", up.addr.port()))
    );
    let r = get(&cl, &gw.url("/eighty"), &client_host).await;
    assert_eq!(r.header("x-upstream-name"), Some("u80"));
    assert_eq!(
        host(r),
        Some(up80.addr.ip().to_string()),
        "port 80 is the default for http: left out"
    );
    assert_eq!(
        host(get(&cl, &gw.url("/kept"), &client_host).await),
        Some("client.example:8000".to_string())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_header_with_an_upstream_entity() {
    let up = Upstream::start("u");
    let Some(up80) = upstream_on_port_80("u80", 101) else {
        return;
    };
    let cfg = format!(
        "_format_version: \"3.0\"\nservices:\n- name: plain\n  host: plain.pool\n  routes:\n  - paths: [/plain]\n- name: virtual\n  host: virtual.pool\n  routes:\n  - paths: [/virtual]\n  - paths: [/kept]\n    preserve_host: true\n- name: virtual80\n  host: virtual80.pool\n  routes:\n  - paths: [/v80]\nupstreams:\n- name: plain.pool\n  targets:\n  - target: localhost:{port}\n- name: virtual.pool\n  host_header: backend.example\n  targets:\n  - target: localhost:{port}\n- name: virtual80.pool\n  host_header: backend.example\n  targets:\n  - target: {ip80}:80\n",
        port = up.addr.port(),
        ip80 = up80.addr.ip(),
    );
    let gw = Gateway::with_config(&cfg).start();
    let cl = client();
    let host = |r: Reply| echo(&r).header("host").map(str::to_string);
    // No host_header: the target's host and port (not the upstream's name).
    assert_eq!(
        host(get(&cl, &gw.url("/plain"), &[]).await),
        Some(format!("localhost:{}", up.addr.port()))
    );
    // host_header on a target at port 80: just the name.
    let r = get(&cl, &gw.url("/v80"), &[]).await;
    assert_eq!(r.header("x-upstream-name"), Some("u80"));
    assert_eq!(host(r), Some("backend.example".to_string()));
    // preserve_host wins over host_header.
    assert_eq!(
        host(get(&cl, &gw.url("/kept"), &[("host", "client.example")]).await),
        Some("client.example".to_string())
    );
}

/// Kong's `set_host_header` (kong/runloop/balancer/init.lua) takes the upstream's host_header as
/// the host name and still appends the target's port unless it is the scheme's default.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_header_keeps_a_non_default_target_port() {
    let up = Upstream::start("u");
    let cfg = format!(
        "_format_version: \"3.0\"\nservices:\n- name: virtual\n  host: virtual.pool\n  routes:\n  - paths: [/virtual]\nupstreams:\n- name: virtual.pool\n  host_header: backend.example\n  targets:\n  - target: {}\n",
        up.addr
    );
    let gw = Gateway::with_config(&cfg).start();
    let r = get(&client(), &gw.url("/virtual"), &[]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        echo(&r).header("host"),
        Some(format!("backend.example:{}", up.addr.port()).as_str())
    );
}
