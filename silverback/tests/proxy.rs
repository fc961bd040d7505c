//! The real binary proxying to real upstream servers: routing, path joining, forwarded headers,
//! Kong's error responses, timeouts and retries.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;

fn svc(name: &str, up: &Upstream, extra: &str, routes: &str) -> String {
    format!(
        "- name: {name}\n  url: http://{}{extra}\n  routes:\n{routes}",
        up.addr
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_by_path_host_method_and_header() {
    let a = Upstream::start("a");
    let b = Upstream::start("b");
    let c = Upstream::start("c");
    let d = Upstream::start("d");
    let cfg = format!(
        "_format_version: \"3.0\"\nservices:\n{}{}{}{}",
        svc("sa", &a, "", "  - paths: [/api]\n"),
        svc(
            "sb",
            &b,
            "",
            "  - paths: [/api]\n    hosts: [example.com]\n"
        ),
        svc(
            "sc",
            &c,
            "",
            "  - paths: [/api]\n    hosts: [example.com]\n    methods: [POST]\n"
        ),
        svc(
            "sd",
            &d,
            "",
            "  - hosts: [\"*.wild.test\"]\n    headers: {x-version: [\"v2\"]}\n"
        ),
    );
    let gw = Gateway::with_config(&cfg).start();
    let cl = client();
    let up = |r: &Reply| r.header("x-upstream-name").unwrap_or("none").to_string();

    assert_eq!(up(&get(&cl, &gw.url("/api/x"), &[]).await), "a");
    assert_eq!(
        up(&get(&cl, &gw.url("/api/x"), &[("host", "example.com")]).await),
        "b"
    );
    let post = send(
        &cl,
        "POST",
        &gw.url("/api"),
        &[("host", "example.com")],
        "x",
    )
    .await;
    assert_eq!(up(&post), "c", "more matching fields win");
    let wild = get(
        &cl,
        &gw.url("/anything"),
        &[("host", "deep.sub.wild.test"), ("x-version", "V2")],
    )
    .await;
    assert_eq!(
        up(&wild),
        "d",
        "wildcard host any depth, header value case-insensitive"
    );
    let no_header = get(&cl, &gw.url("/anything"), &[("host", "deep.sub.wild.test")]).await;
    assert_eq!(no_header.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regex_paths_priority_and_prefix_length() {
    let long = Upstream::start("long");
    let short = Upstream::start("short");
    let re_lo = Upstream::start("re-lo");
    let re_hi = Upstream::start("re-hi");
    let cfg = format!(
        "_format_version: \"3.0\"\nservices:\n{}{}{}{}",
        svc("l", &long, "", "  - paths: [/v1/users]\n"),
        svc("s", &short, "", "  - paths: [/v1]\n"),
        svc(
            "rl",
            &re_lo,
            "",
            "  - paths: [\"~/v1/items/\\\\d+$\"]\n    regex_priority: 1\n"
        ),
        svc(
            "rh",
            &re_hi,
            "",
            "  - paths: [\"~/v1/items/(?<id>\\\\d+)\"]\n    regex_priority: 5\n"
        ),
    );
    let gw = Gateway::with_config(&cfg).start();
    let cl = client();
    let up = |r: Reply| r.header("x-upstream-name").unwrap_or("none").to_string();
    assert_eq!(up(get(&cl, &gw.url("/v1/users/7"), &[]).await), "long");
    assert_eq!(up(get(&cl, &gw.url("/v1/other"), &[]).await), "short");
    assert_eq!(
        up(get(&cl, &gw.url("/v1/items/42"), &[]).await),
        "re-hi",
        "regex before prefix, higher regex_priority first"
    );
    assert_eq!(up(get(&cl, &gw.url("/v1/items/abc"), &[]).await), "short");
    // Normalization happens before matching: dot segments and percent-encoded unreserved chars.
    assert_eq!(up(get(&cl, &gw.url("/x/../v1/%75sers"), &[]).await), "long");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strip_path_preserve_host_and_path_joining() {
    let up = Upstream::start("u");
    // (service path, route path, strip_path, request, expected upstream uri)
    let cases: &[(&str, &str, bool, &str, &str)] = &[
        ("", "/a", true, "/a/b?q=1", "/b?q=1"),
        ("", "/a", true, "/a", "/"),
        ("/base", "/a", true, "/a/b", "/base/b"),
        ("/base/", "/a", true, "/a/b", "/base/b"),
        ("/base", "/a", true, "/a", "/base"),
        ("/base", "/a", true, "/a/", "/base/"),
        ("/base", "/a", false, "/a/b", "/base/a/b"),
        ("/base/", "/a", false, "/a/b", "/base/a/b"),
        ("", "/a", false, "/a/b", "/a/b"),
        ("/s", "/", true, "/x/y", "/s/x/y"),
    ];
    let mut services = String::new();
    for (i, (spath, rpath, strip, _, _)) in cases.iter().enumerate() {
        services.push_str(&format!(
            "- name: s{i}\n  url: http://{}{spath}\n  routes:\n  - hosts: [c{i}.test]\n    paths: [\"{rpath}\"]\n    strip_path: {strip}\n",
            up.addr
        ));
    }
    services.push_str(&format!(
        "- name: keep\n  url: http://{}\n  routes:\n  - hosts: [keep.test]\n    preserve_host: true\n- name: nokeep\n  url: http://{}\n  routes:\n  - hosts: [nokeep.test]\n",
        up.addr, up.addr
    ));
    let gw =
        Gateway::with_config(&format!("_format_version: \"3.0\"\nservices:\n{services}")).start();
    let cl = client();
    for (i, (_, _, _, req, want)) in cases.iter().enumerate() {
        let host = format!("c{i}.test");
        let r = get(&cl, &gw.url(req), &[("host", &host)]).await;
        assert_eq!(r.status, 200, "case {i}: {}", r.text());
        assert_eq!(echo(&r).uri, *want, "case {i}: {req}");
    }
    let kept = echo(&get(&cl, &gw.url("/"), &[("host", "keep.test:8080")]).await);
    assert_eq!(kept.header("host"), Some("keep.test:8080"));
    let replaced = echo(&get(&cl, &gw.url("/"), &[("host", "nokeep.test")]).await);
    assert_eq!(replaced.header("host"), Some(up.addr.to_string().as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_headers_and_hop_by_hop() {
    let up = Upstream::start("u");
    let cfg = format!(
        "_format_version: \"3.0\"\nservices:\n- name: s\n  url: http://{}\n  routes:\n  - paths: [/pre]\n",
        up.addr
    );
    let gw = Gateway::with_config(&cfg).start();
    let cl = client();
    let r = get(
        &cl,
        &gw.url("/pre/x?y=1"),
        &[
            ("host", "Shop.Example.com:9999"),
            ("x-forwarded-for", "203.0.113.9"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "spoofed"),
            ("connection", "keep-alive, x-private"),
            ("x-private", "secret"),
            ("te", "trailers"),
        ],
    )
    .await;
    let e = echo(&r);
    // The peer (127.0.0.1) is not trusted: client-sent X-Forwarded-* are replaced.
    assert_eq!(e.header("x-forwarded-for"), Some("203.0.113.9, 127.0.0.1"));
    assert_eq!(e.header("x-forwarded-proto"), Some("http"));
    assert_eq!(e.header("x-forwarded-host"), Some("shop.example.com"));
    assert_eq!(
        e.header("x-forwarded-port"),
        Some(gw.proxy.port().to_string().as_str())
    );
    assert_eq!(e.header("x-forwarded-path"), Some("/pre/x"));
    assert_eq!(e.header("x-forwarded-prefix"), Some("/pre"));
    assert_eq!(e.header("x-real-ip"), Some("127.0.0.1"));
    assert!(e.header("via").unwrap().starts_with("1.1 silverback/"));
    let rid = e.header("x-kong-request-id").unwrap();
    assert_eq!(rid.len(), 32);
    assert_eq!(
        r.header("x-kong-request-id"),
        Some(rid),
        "same id both ways"
    );
    assert!(
        e.header("x-private").is_none(),
        "headers named in Connection are hop-by-hop"
    );
    assert!(e.header("te").is_none());
    // Response side: hop-by-hop from the upstream removed, Kong's headers added.
    assert!(r.header("x-hop").is_none());
    assert!(r.header("keep-alive").is_none());
    assert!(r.header("via").unwrap().contains("silverback/"));
    assert!(r.header("x-kong-upstream-latency").is_some());
    assert!(r.header("x-kong-proxy-latency").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trusted_proxies_forwarded_values_are_kept() {
    let up = Upstream::start("u");
    let cfg = format!(
        "_format_version: \"3.0\"\nservices:\n- name: s\n  url: http://{}\n  routes:\n  - paths: [/]\n",
        up.addr
    );
    let gw = Gateway::with_config(&cfg)
        .setting("trusted_ips", "127.0.0.0/8")
        .setting("real_ip_header", "X-Forwarded-For")
        .start();
    let e = echo(
        &get(
            &client(),
            &gw.url("/x"),
            &[
                ("x-forwarded-for", "198.51.100.7"),
                ("x-forwarded-proto", "https"),
                ("x-forwarded-host", "public.example"),
                ("x-forwarded-port", "443"),
                ("x-forwarded-prefix", "/edge"),
            ],
        )
        .await,
    );
    assert_eq!(e.header("x-real-ip"), Some("198.51.100.7"));
    assert_eq!(e.header("x-forwarded-for"), Some("198.51.100.7, 127.0.0.1"));
    assert_eq!(e.header("x-forwarded-proto"), Some("https"));
    assert_eq!(e.header("x-forwarded-host"), Some("public.example"));
    assert_eq!(e.header("x-forwarded-port"), Some("443"));
    assert_eq!(e.header("x-forwarded-prefix"), Some("/edge"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kong_error_responses() {
    let cfg = "_format_version: \"3.0\"\nroutes:\n- name: orphan\n  paths: [/orphan]\nservices:\n- name: dead\n  url: http://127.0.0.1:1\n  retries: 1\n  routes:\n  - paths: [/dead]\n- name: secure\n  url: http://127.0.0.1:1\n  routes:\n  - paths: [/secure]\n    protocols: [https]\n  - paths: [/moved]\n    protocols: [https]\n    https_redirect_status_code: 301\n";
    let gw = Gateway::with_config(cfg).start();
    let cl = client();

    let r = get(&cl, &gw.url("/nowhere"), &[]).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["message"], "no Route matched with those values");
    assert_eq!(r.json()["request_id"].as_str().unwrap().len(), 32);
    assert!(
        r.header("content-type")
            .unwrap()
            .starts_with("application/json")
    );
    assert!(r.header("server").unwrap().starts_with("silverback/"));
    let html = get(&cl, &gw.url("/nowhere"), &[("accept", "text/html")]).await;
    assert!(
        html.text()
            .contains("<p>no Route matched with those values.</p>")
    );
    let plain = get(&cl, &gw.url("/nowhere"), &[("accept", "text/plain")]).await;
    assert!(
        plain
            .text()
            .starts_with("no Route matched with those values\nrequest_id: ")
    );

    let r = get(&cl, &gw.url("/orphan"), &[]).await;
    assert_eq!(r.status, 503);
    assert_eq!(r.json()["message"], "no Service found with those values");

    let r = get(&cl, &gw.url("/dead"), &[("accept", "application/json")]).await;
    assert_eq!(r.status, 502);
    assert_eq!(
        r.json()["message"],
        "An invalid response was received from the upstream server"
    );
    // Upstream failures fall back to error_default_type (text/plain) without Accept.
    let r = get(&cl, &gw.url("/dead"), &[]).await;
    assert!(
        r.header("content-type").unwrap().starts_with("text/plain"),
        "{:?}",
        r.headers
    );

    let r = get(&cl, &gw.url("/secure"), &[]).await;
    assert_eq!(r.status, 426);
    assert_eq!(r.json()["message"], "Please use HTTPS protocol");
    assert_eq!(r.header("upgrade"), Some("TLS/1.2, HTTP/1.1"));
    let r = get(&cl, &gw.url("/moved?a=1"), &[("host", "shop.test")]).await;
    assert_eq!(r.status, 301);
    assert_eq!(r.header("location"), Some("https://shop.test/moved?a=1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_timeout_gives_504() {
    let up = Upstream::start("slow");
    let cfg = format!(
        "_format_version: \"3.0\"\nservices:\n- name: s\n  url: http://{}\n  read_timeout: 300\n  retries: 0\n  routes:\n  - paths: [/]\n",
        up.addr
    );
    let gw = Gateway::with_config(&cfg).start();
    let started = std::time::Instant::now();
    let r = get(
        &client(),
        &gw.url("/hang"),
        &[("accept", "application/json")],
    )
    .await;
    assert_eq!(r.status, 504);
    assert_eq!(r.json()["message"], "The upstream server is timing out");
    let took = started.elapsed();
    assert!(took >= std::time::Duration::from_millis(280), "{took:?}");
    assert!(took < std::time::Duration::from_secs(5), "{took:?}");
    // A response slower than the timeout, then a fast one, on the same service.
    let ok = get(&client(), &gw.url("/delay/50"), &[]).await;
    assert_eq!(ok.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_move_to_the_next_target() {
    let good = Upstream::start("good");
    // A port with nothing listening: connections are refused.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_addr = dead.local_addr().unwrap();
    drop(dead);
    let cfg = format!(
        "_format_version: \"3.0\"\nservices:\n- name: s\n  host: pool.internal\n  retries: 3\n  routes:\n  - paths: [/]\nupstreams:\n- name: pool.internal\n  targets:\n  - target: {dead_addr}\n  - target: {}\n",
        good.addr
    );
    let gw = Gateway::with_config(&cfg).start();
    let cl = client();
    for _ in 0..10 {
        let r = get(&cl, &gw.url("/x"), &[]).await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.header("x-upstream-name"), Some("good"));
    }
    assert_eq!(good.hits(), 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_are_bounded_and_not_repeated_for_post_after_send() {
    let up = Upstream::start("slow");
    let cfg = format!(
        "_format_version: \"3.0\"\nservices:\n- name: s\n  url: http://{}\n  read_timeout: 200\n  retries: 2\n  routes:\n  - paths: [/]\n",
        up.addr
    );
    let gw = Gateway::with_config(&cfg).start();
    let cl = client();
    let r = get(&cl, &gw.url("/hang"), &[]).await;
    assert_eq!(r.status, 504);
    assert_eq!(up.hits(), 3, "GET is retried: retries + 1 attempts");
    let r = send(&cl, "POST", &gw.url("/hang"), &[], "body").await;
    assert_eq!(r.status, 504);
    assert_eq!(
        up.hits(),
        4,
        "a POST that reached the upstream is not retried"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_buffering_and_expect_continue() {
    let up = Upstream::start("u");
    let cfg = format!(
        "_format_version: \"3.0\"\nservices:\n- name: s\n  url: http://{}\n  routes:\n  - paths: [/buffered]\n    strip_path: false\n  - paths: [/streamed]\n    strip_path: false\n    request_buffering: false\n",
        up.addr
    );
    let gw = Gateway::with_config(&cfg).start();
    let cl = client();
    let body = "x".repeat(100_000);
    let r = send(
        &cl,
        "POST",
        &gw.url("/buffered"),
        &[("expect", "100-continue")],
        body.clone(),
    )
    .await;
    let e = echo(&r);
    assert_eq!(e.body_len, 100_000);
    assert_eq!(e.header("content-length"), Some("100000"));
    assert!(e.header("expect").is_none());
    let r = send(&cl, "POST", &gw.url("/streamed"), &[], body).await;
    assert_eq!(echo(&r).body_len, 100_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn path_handling_v1_only_under_the_traditional_flavor() {
    let up = Upstream::start("u");
    let cfg = format!(
        "_format_version: \"3.0\"\nservices:\n- name: s\n  url: http://{}/s/\n  routes:\n  - paths: [/a]\n    path_handling: v1\n",
        up.addr
    );
    // traditional_compatible (the default) treats v1 as v0, as Kong does.
    let gw = Gateway::with_config(&cfg).start();
    assert_eq!(echo(&get(&client(), &gw.url("/a"), &[]).await).uri, "/s");
    let traditional = Gateway::with_config(&cfg)
        .setting("router_flavor", "traditional")
        .start();
    assert_eq!(
        echo(&get(&client(), &traditional.url("/a"), &[]).await).uri,
        "/s/"
    );
}
