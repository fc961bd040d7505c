//! proxy-cache against the real binary: Miss then Hit, what bypasses the cache, Cache-Control,
//! TTLs and Age, the key's parts (query, headers, URI case, consumer), the Admin API's purge
//! endpoints, large streamed bodies, and entries never outliving the config they were stored
//! under (Admin API changes and reloads).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use serde_json::{Value, json};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(10);

fn config(up: &Upstream) -> String {
    format!(
        r#"_format_version: "3.0"
services:
- name: s
  url: http://{}
  routes:
  - name: basic
    hosts: [basic.test]
    plugins:
    - name: proxy-cache
      config: {{strategy: memory}}
  - name: short
    hosts: [short.test]
    plugins:
    - name: proxy-cache
      config: {{strategy: memory, cache_ttl: 1}}
  - name: stale
    hosts: [stale.test]
    plugins:
    - name: proxy-cache
      config: {{strategy: memory, cache_ttl: 1, storage_ttl: 60}}
  - name: cc
    hosts: [cc.test]
    plugins:
    - name: proxy-cache
      config: {{strategy: memory, cache_control: true}}
  - name: vary
    hosts: [vary.test]
    plugins:
    - name: proxy-cache
      config:
        strategy: memory
        vary_headers: [X-Tenant]
        vary_query_params: [page]
  - name: ignorecase
    hosts: [ignorecase.test]
    plugins:
    - name: proxy-cache
      config: {{strategy: memory, ignore_uri_case: true}}
  - name: casesensitive
    hosts: [casesensitive.test]
    plugins:
    - name: proxy-cache
      config: {{strategy: memory}}
  - name: quiet
    hosts: [quiet.test]
    plugins:
    - name: proxy-cache
      config:
        strategy: memory
        response_headers: {{age: false, X-Cache-Status: false, X-Cache-Key: false}}
  - name: posts
    hosts: [posts.test]
    plugins:
    - name: proxy-cache
      config:
        strategy: memory
        request_method: [GET, POST]
        response_code: [200, 418]
        content_type: ["text/html; charset=utf-8", application/json]
  - name: users
    hosts: [users.test]
    plugins:
    - name: key-auth
    - name: proxy-cache
      config: {{strategy: memory}}
consumers:
- username: bob
  keyauth_credentials: [{{key: bob-key}}]
- username: alice
  keyauth_credentials: [{{key: alice-key}}]
"#,
        up.addr
    )
}

/// A GET to `path` on the route of `host`, with extra headers.
async fn req(gw: &Gateway, host: &str, path: &str, headers: &[(&str, &str)]) -> Reply {
    let mut all = vec![("host", host)];
    all.extend_from_slice(headers);
    get(&client(), &gw.url(path), &all).await
}

fn status(r: &Reply) -> &str {
    r.header("x-cache-status").unwrap_or("<none>")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn miss_then_hit_with_kong_headers() {
    let up = Upstream::start("u");
    let gw = Gateway::with_config(&config(&up)).start();

    let miss = req(&gw, "basic.test", "/get", &[]).await;
    assert_eq!(miss.status, 200);
    assert_eq!(status(&miss), "Miss");
    let key = miss.header("x-cache-key").unwrap().to_string();
    assert_eq!(key.len(), 64, "{key}");
    assert!(key.bytes().all(|b| b.is_ascii_hexdigit()));
    assert!(miss.header("age").is_none());
    assert!(miss.header("x-kong-upstream-latency").is_some());
    assert_eq!(up.hits(), 1);

    let hit = req(&gw, "basic.test", "/get", &[]).await;
    assert_eq!(hit.status, 200);
    assert_eq!(status(&hit), "Hit");
    assert_eq!(hit.header("x-cache-key"), Some(key.as_str()));
    assert_eq!(hit.body, miss.body, "the cached body");
    assert_eq!(hit.header("content-type"), Some("application/json"));
    assert_eq!(hit.header("x-upstream-name"), Some("u"));
    let age: u64 = hit.header("age").unwrap().parse().unwrap();
    assert!(age <= 1, "{age}");
    // A cached response stands for a proxied one (Kong's KONG_PROXIED).
    assert!(hit.header("x-kong-upstream-latency").is_some());
    assert!(hit.header("x-kong-proxy-latency").is_some());
    assert!(hit.header("x-kong-response-latency").is_none());
    assert!(hit.header("via").unwrap().contains("silverback"));
    let miss_id = miss.header("x-kong-request-id").unwrap();
    assert_ne!(hit.header("x-kong-request-id"), Some(miss_id));
    assert_eq!(
        hit.header("content-length"),
        Some(hit.body.len().to_string().as_str())
    );
    assert_eq!(up.hits(), 1, "the upstream saw one request");

    // Age grows with the entry.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let later = req(&gw, "basic.test", "/get", &[]).await;
    assert_eq!(status(&later), "Hit");
    let age: u64 = later.header("age").unwrap().parse().unwrap();
    assert!(age >= 1, "{age}");

    // The query is part of the key, in any order.
    let a = req(&gw, "basic.test", "/get?a=1&b=2", &[]).await;
    assert_eq!(status(&a), "Miss");
    let b = req(&gw, "basic.test", "/get?b=2&a=1", &[]).await;
    assert_eq!(status(&b), "Hit");
    let flags = req(&gw, "basic.test", "/get?a&b", &[]).await;
    assert_eq!(status(&flags), "Miss");

    // HEAD is cached on its own.
    let head = send(
        &client(),
        "HEAD",
        &gw.url("/get"),
        &[("host", "basic.test")],
        "",
    )
    .await;
    assert_eq!(status(&head), "Miss");
    let head = send(
        &client(),
        "HEAD",
        &gw.url("/get"),
        &[("host", "basic.test")],
        "",
    )
    .await;
    assert_eq!(status(&head), "Hit");
    assert!(head.body.is_empty());

    // Diagnostic headers can be turned off; Kong-Debug brings them back.
    let q = req(&gw, "quiet.test", "/get", &[]).await;
    assert!(q.header("x-cache-status").is_none() && q.header("x-cache-key").is_none());
    let q = req(&gw, "quiet.test", "/get", &[]).await;
    assert!(q.header("x-cache-status").is_none());
    assert!(q.header("age").is_none() && q.header("x-cache-key").is_none());
    let q = req(&gw, "quiet.test", "/get", &[("kong-debug", "1")]).await;
    assert_eq!(status(&q), "Hit");
    assert!(q.header("age").is_some() && q.header("x-cache-key").is_some());
}

/// A reply without a body (HEAD) is stored before the client has it: the request the client
/// sends next, at once, on a new connection, is a Hit every time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_head_reply_is_stored_before_the_client_has_it() {
    let up = Upstream::start("u");
    let gw = Gateway::with_config(&config(&up)).start();
    for i in 0..100 {
        let path = gw.url(&format!("/get?n={i}"));
        let host = [("host", "basic.test")];
        let first = send(&client(), "HEAD", &path, &host, "").await;
        assert_eq!(status(&first), "Miss", "round {i}");
        let second = send(&client(), "HEAD", &path, &host, "").await;
        assert_eq!(status(&second), "Hit", "round {i}");
    }
    assert_eq!(up.hits(), 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uncacheable_requests_and_responses_bypass() {
    let up = Upstream::start("u");
    let gw = Gateway::with_config(&config(&up)).start();
    let c = client();

    // A method not in request_method.
    for _ in 0..2 {
        let r = send(&c, "POST", &gw.url("/post"), &[("host", "basic.test")], "x").await;
        assert_eq!(r.status, 200);
        assert_eq!(status(&r), "Bypass");
        assert!(r.header("x-cache-key").is_none());
    }
    // A status not in response_code.
    for _ in 0..2 {
        let r = req(&gw, "basic.test", "/status/418", &[]).await;
        assert_eq!(r.status, 418);
        assert_eq!(status(&r), "Bypass");
    }
    // A content type not in content_type.
    let xml = [("x-set-response-header", "content-type=application/xml")];
    for _ in 0..2 {
        let r = req(&gw, "basic.test", "/xml", &xml).await;
        assert_eq!(status(&r), "Bypass");
    }
    assert_eq!(up.hits(), 6, "nothing was served from the cache");

    // Non-default methods, statuses and content types with parameters are cached.
    let r = send(&c, "POST", &gw.url("/post"), &[("host", "posts.test")], "x").await;
    assert_eq!(status(&r), "Miss");
    let r = send(&c, "POST", &gw.url("/post"), &[("host", "posts.test")], "x").await;
    assert_eq!(status(&r), "Hit");
    let teapot = req(&gw, "posts.test", "/status/418", &[]).await;
    assert_eq!((teapot.status, status(&teapot)), (418, "Miss"));
    let teapot = req(&gw, "posts.test", "/status/418", &[]).await;
    assert_eq!((teapot.status, status(&teapot)), (418, "Hit"));
    let html = [(
        "x-set-response-header",
        "content-type=text/html; charset=utf-8",
    )];
    let r = req(&gw, "posts.test", "/html", &html).await;
    assert_eq!(status(&r), "Miss");
    let r = req(&gw, "posts.test", "/html", &html).await;
    assert_eq!(status(&r), "Hit");
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    // Without the parameter the configured type does not match.
    let plain_html = [("x-set-response-header", "content-type=text/html")];
    let r = req(&gw, "posts.test", "/html2", &plain_html).await;
    assert_eq!(status(&r), "Bypass");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_control_is_honoured_when_enabled() {
    let up = Upstream::start("u");
    let gw = Gateway::with_config(&config(&up)).start();
    let cc = |v: &'static str| ("x-set-response-header", v);

    // Without cache_control, a response's no-store does not matter.
    let r = req(&gw, "basic.test", "/ns", &[cc("cache-control=no-store")]).await;
    assert_eq!(status(&r), "Miss");
    let r = req(&gw, "basic.test", "/ns", &[cc("cache-control=no-store")]).await;
    assert_eq!(status(&r), "Hit");

    // max-age makes a response cacheable; nothing at all does not.
    let r = req(&gw, "cc.test", "/nothing", &[]).await;
    assert_eq!(status(&r), "Bypass");
    let r = req(
        &gw,
        "cc.test",
        "/max-age",
        &[cc("cache-control=max-age=60")],
    )
    .await;
    assert_eq!(status(&r), "Miss");
    let r = req(
        &gw,
        "cc.test",
        "/max-age",
        &[cc("cache-control=max-age=60")],
    )
    .await;
    assert_eq!(status(&r), "Hit");
    let r = req(
        &gw,
        "cc.test",
        "/s-maxage",
        &[cc("cache-control=s-maxage=60")],
    )
    .await;
    assert_eq!(status(&r), "Miss");
    let expires = httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(600));
    let header = format!("expires={expires}");
    let r = req(
        &gw,
        "cc.test",
        "/expires",
        &[("x-set-response-header", &header)],
    )
    .await;
    assert_eq!(status(&r), "Miss");
    let r = req(
        &gw,
        "cc.test",
        "/expires",
        &[("x-set-response-header", &header)],
    )
    .await;
    assert_eq!(status(&r), "Hit");

    // Responses that forbid shared caching, or are already stale.
    for value in [
        "cache-control=no-store, max-age=60",
        "cache-control=no-cache, max-age=60",
        "cache-control=private, max-age=60",
        "cache-control=max-age=0",
    ] {
        for _ in 0..2 {
            let r = req(
                &gw,
                "cc.test",
                "/refused",
                &[("x-set-response-header", value)],
            )
            .await;
            assert_eq!(status(&r), "Bypass", "{value}");
        }
    }

    // Requests that refuse a cached answer.
    let fresh = [cc("cache-control=max-age=60")];
    for directive in ["no-cache", "no-store"] {
        let r = req(
            &gw,
            "cc.test",
            "/max-age",
            &[fresh[0], ("cache-control", directive)],
        )
        .await;
        assert_eq!(status(&r), "Bypass", "{directive}");
    }
    // A client's max-age older than the entry: Refresh, then Hit again.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let r = req(
        &gw,
        "cc.test",
        "/max-age",
        &[fresh[0], ("cache-control", "max-age=0")],
    )
    .await;
    assert_eq!(status(&r), "Refresh");
    let r = req(&gw, "cc.test", "/max-age", &fresh).await;
    assert_eq!(status(&r), "Hit");
    // min-fresh asks for more freshness than is left.
    let r = req(
        &gw,
        "cc.test",
        "/max-age",
        &[fresh[0], ("cache-control", "min-fresh=120")],
    )
    .await;
    assert_eq!(status(&r), "Refresh");
    // only-if-cached on an entry that is not there: 504 without reaching the upstream.
    let before = up.hits();
    let r = req(
        &gw,
        "cc.test",
        "/absent",
        &[("cache-control", "only-if-cached")],
    )
    .await;
    assert_eq!(r.status, 504);
    assert_eq!(up.hits(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttl_expiry_and_refresh_of_stale_entries() {
    let up = Upstream::start("u");
    let gw = Gateway::with_config(&config(&up)).start();

    let r = req(&gw, "short.test", "/t", &[]).await;
    assert_eq!(status(&r), "Miss");
    let r = req(&gw, "short.test", "/t", &[]).await;
    assert_eq!(status(&r), "Hit");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let r = req(&gw, "short.test", "/t", &[]).await;
    assert_eq!(status(&r), "Miss", "expired after cache_ttl");
    let r = req(&gw, "short.test", "/t", &[]).await;
    assert_eq!(status(&r), "Hit");

    // Kept longer than it is fresh (storage_ttl): Refresh, then Hit.
    let r = req(&gw, "stale.test", "/t", &[]).await;
    assert_eq!(status(&r), "Miss");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let r = req(&gw, "stale.test", "/t", &[]).await;
    assert_eq!(status(&r), "Refresh");
    let r = req(&gw, "stale.test", "/t", &[]).await;
    assert_eq!(status(&r), "Hit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_varies_on_headers_query_case_and_consumer() {
    let up = Upstream::start("u");
    let gw = Gateway::with_config(&config(&up)).start();

    // vary_headers: each tenant its own entry; other headers do not matter.
    let a = req(&gw, "vary.test", "/v", &[("x-tenant", "a")]).await;
    assert_eq!(status(&a), "Miss");
    let b = req(&gw, "vary.test", "/v", &[("x-tenant", "b")]).await;
    assert_eq!(status(&b), "Miss");
    assert_ne!(a.header("x-cache-key"), b.header("x-cache-key"));
    let a2 = req(
        &gw,
        "vary.test",
        "/v",
        &[("x-tenant", "a"), ("x-other", "1")],
    )
    .await;
    assert_eq!(status(&a2), "Hit");
    assert_eq!(echo(&a2).header("x-tenant"), Some("a"));

    // vary_query_params: only `page` counts.
    let p1 = req(&gw, "vary.test", "/q?page=1&x=1", &[]).await;
    assert_eq!(status(&p1), "Miss");
    let p1 = req(&gw, "vary.test", "/q?x=2&page=1", &[]).await;
    assert_eq!(status(&p1), "Hit");
    let p2 = req(&gw, "vary.test", "/q?page=2&x=1", &[]).await;
    assert_eq!(status(&p2), "Miss");

    // ignore_uri_case.
    let lower = req(&gw, "ignorecase.test", "/Some/Path", &[]).await;
    assert_eq!(status(&lower), "Miss");
    let upper = req(&gw, "ignorecase.test", "/some/PATH", &[]).await;
    assert_eq!(status(&upper), "Hit");
    assert_eq!(lower.header("x-cache-key"), upper.header("x-cache-key"));
    let one = req(&gw, "casesensitive.test", "/Some/Path", &[]).await;
    let other = req(&gw, "casesensitive.test", "/some/PATH", &[]).await;
    assert_eq!((status(&one), status(&other)), ("Miss", "Miss"));

    // Each consumer its own entry; an unauthenticated request never reaches the cache.
    let anon = req(&gw, "users.test", "/u", &[]).await;
    assert_eq!(anon.status, 401);
    assert!(anon.header("x-cache-status").is_none());
    let bob = req(&gw, "users.test", "/u", &[("apikey", "bob-key")]).await;
    assert_eq!(status(&bob), "Miss");
    let alice = req(&gw, "users.test", "/u", &[("apikey", "alice-key")]).await;
    assert_eq!(status(&alice), "Miss");
    let bob = req(&gw, "users.test", "/u", &[("apikey", "bob-key")]).await;
    assert_eq!(status(&bob), "Hit");
    assert_eq!(echo(&bob).header("x-consumer-username"), Some("bob"));

    // Routes never share entries.
    let r1 = req(&gw, "basic.test", "/same", &[]).await;
    let r2 = req(&gw, "casesensitive.test", "/same", &[]).await;
    assert_ne!(r1.header("x-cache-key"), r2.header("x-cache-key"));
}

async fn plugin_id(gw: &Gateway, route: &str) -> String {
    let r = gw
        .admin("GET", &format!("/routes/{route}/plugins"), Value::Null)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "proxy-cache")
        .map(|p| p["id"].as_str().unwrap().to_string())
        .expect("a proxy-cache plugin")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purge_endpoints() {
    let up = Upstream::start("u");
    let gw = Gateway::with_config(&config(&up)).start();
    let pid = plugin_id(&gw, "basic").await;

    let miss = req(&gw, "basic.test", "/p", &[]).await;
    assert_eq!(status(&miss), "Miss");
    let key = miss.header("x-cache-key").unwrap().to_string();
    assert_eq!(status(&req(&gw, "basic.test", "/p", &[]).await), "Hit");

    // The entry as Kong shows it.
    for path in [
        format!("/proxy-cache/{key}"),
        format!("/proxy-cache/{pid}/caches/{key}"),
    ] {
        let r = gw.admin("GET", &path, Value::Null).await;
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        let entry = r.json();
        assert_eq!(entry["status"], 200);
        assert_eq!(entry["headers"]["X-Cache-Key"], key.as_str());
        assert_eq!(entry["headers"]["X-Cache-Status"], "Miss");
        assert_eq!(entry["body"].as_str().unwrap().as_bytes(), &miss.body[..]);
        assert_eq!(entry["body_len"], miss.body.len());
        assert_eq!(entry["ttl"], 300);
        assert_eq!(entry["version"], 1);
        assert!(entry["timestamp"].as_i64().unwrap() > 1_600_000_000);
    }

    // Purge by plugin and key, then by key alone.
    let r = gw
        .admin(
            "DELETE",
            &format!("/proxy-cache/{pid}/caches/{key}"),
            Value::Null,
        )
        .await;
    assert_eq!(r.status, 204);
    assert!(r.body.is_empty());
    let r = gw
        .admin(
            "GET",
            &format!("/proxy-cache/{pid}/caches/{key}"),
            Value::Null,
        )
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(status(&req(&gw, "basic.test", "/p", &[]).await), "Miss");
    let r = gw
        .admin("DELETE", &format!("/proxy-cache/{key}"), Value::Null)
        .await;
    assert_eq!(r.status, 204);
    assert_eq!(status(&req(&gw, "basic.test", "/p", &[]).await), "Miss");
    let r = gw
        .admin("DELETE", &format!("/proxy-cache/{key}"), Value::Null)
        .await;
    assert_eq!(r.status, 204, "the Miss stored it again");
    let r = gw
        .admin("DELETE", &format!("/proxy-cache/{key}"), Value::Null)
        .await;
    assert_eq!(r.status, 404);
    let r = gw
        .admin("GET", &format!("/proxy-cache/{key}"), Value::Null)
        .await;
    assert_eq!(r.status, 404);

    // Unknown keys and ids that are not proxy-cache plugins.
    let r = gw
        .admin(
            "DELETE",
            &format!("/proxy-cache/{pid}/caches/123"),
            Value::Null,
        )
        .await;
    assert_eq!(r.status, 404);
    let route = gw.admin("GET", "/routes/basic", Value::Null).await.json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = gw
        .admin(
            "DELETE",
            &format!("/proxy-cache/{route}/caches/123"),
            Value::Null,
        )
        .await;
    assert_eq!(r.status, 404);

    // Purge everything.
    assert_eq!(status(&req(&gw, "basic.test", "/p", &[]).await), "Miss");
    assert_eq!(status(&req(&gw, "vary.test", "/p", &[]).await), "Miss");
    assert_eq!(status(&req(&gw, "basic.test", "/p", &[]).await), "Hit");
    let r = gw.admin("DELETE", "/proxy-cache", Value::Null).await;
    assert_eq!(r.status, 204);
    assert_eq!(status(&req(&gw, "basic.test", "/p", &[]).await), "Miss");
    assert_eq!(status(&req(&gw, "vary.test", "/p", &[]).await), "Miss");
    // Other methods are not allowed.
    let r = gw.admin("GET", "/proxy-cache", Value::Null).await;
    assert_eq!(r.status, 405);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purge_endpoints_without_proxy_cache_plugins() {
    let up = Upstream::start("u");
    let yaml = format!(
        "_format_version: \"3.0\"\nservices:\n{}  routes:\n  - paths: [/]\n",
        service_yaml("s", &up)
    );
    let gw = Gateway::with_config(&yaml).start();
    let r = gw.admin("DELETE", "/proxy-cache", Value::Null).await;
    assert_eq!(r.status, 204);
    let r = gw
        .admin(
            "GET",
            &format!("/proxy-cache/{}", "a".repeat(64)),
            Value::Null,
        )
        .await;
    assert_eq!(r.status, 404);
    let r = gw.admin("DELETE", "/proxy-cache/abc", Value::Null).await;
    assert_eq!(r.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_larger_than_the_cache_stream_through_uncached() {
    let up = Upstream::start("u");
    let yaml = format!(
        r#"_format_version: "3.0"
services:
- name: s
  url: http://{}
  routes:
  - paths: [/]
    plugins:
    - name: proxy-cache
      config: {{strategy: memory, content_type: [text/plain]}}
"#,
        up.addr
    );
    let gw = Gateway::with_config(&yaml)
        .setting("mem_cache_size", "1m")
        .start();
    let plain = [("x-set-response-header", "content-type=text/plain")];

    // Small streamed body: cached, and its Content-Length kept on the Miss.
    let small = get(&client(), &gw.url("/big/200000"), &plain).await;
    assert_eq!(status(&small), "Miss");
    assert_eq!(small.header("content-length"), Some("200000"));
    assert_eq!(small.body.len(), 200_000);
    let small = get(&client(), &gw.url("/big/200000"), &plain).await;
    assert_eq!(status(&small), "Hit");
    assert_eq!(small.body.len(), 200_000);

    // Chunked, of unknown length: cached too.
    let chunked = [plain[0], ("x-no-length", "1")];
    let r = get(&client(), &gw.url("/big/300000"), &chunked).await;
    assert_eq!(status(&r), "Miss");
    assert!(r.header("content-length").is_none());
    let r = get(&client(), &gw.url("/big/300000"), &chunked).await;
    assert_eq!(status(&r), "Hit");
    assert_eq!(r.body.len(), 300_000);

    // Larger than the whole cache, declared or found out while streaming: passed through
    // whole, never stored.
    let hits = up.hits();
    for headers in [&plain[..], &chunked[..], &plain[..], &chunked[..]] {
        let big = get(&client(), &gw.url("/big/3000000"), headers).await;
        assert_eq!(big.status, 200);
        assert_eq!(status(&big), "Miss");
        assert_eq!(big.body.len(), 3_000_000);
        assert!(big.body.iter().all(|b| *b == b'x'));
    }
    assert_eq!(up.hits(), hits + 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_api_changes_never_serve_old_entries() {
    let up = Upstream::start("u");
    let gw = Gateway::with_database().start();
    let ok = |r: &Reply, what: &str| assert!(r.status < 300, "{what}: {} {}", r.status, r.text());
    let r = gw
        .admin(
            "POST",
            "/services",
            json!({"name": "s", "url": format!("http://{}", up.addr)}),
        )
        .await;
    ok(&r, "service");
    let r = gw
        .admin(
            "POST",
            "/services/s/routes",
            json!({"name": "r", "paths": ["/c"]}),
        )
        .await;
    ok(&r, "route");
    let r = gw
        .admin(
            "POST",
            "/routes/r/plugins",
            json!({"name": "proxy-cache", "config": {"strategy": "memory"}}),
        )
        .await;
    ok(&r, "plugin");
    let pid = r.json()["id"].as_str().unwrap().to_string();
    eventually(WAIT, "the route serves through the cache", || async {
        req(&gw, "x.test", "/c", &[]).await.header("x-cache-status") == Some("Miss")
    })
    .await;
    assert_eq!(status(&req(&gw, "x.test", "/c", &[]).await), "Hit");

    // A route change: the next request is a Miss.
    let r = gw
        .admin("PATCH", "/routes/r", json!({"paths": ["/c", "/d"]}))
        .await;
    ok(&r, "patch route");
    eventually(WAIT, "the route change is live", || async {
        req(&gw, "x.test", "/d", &[]).await.status == 200
    })
    .await;
    assert_eq!(status(&req(&gw, "x.test", "/c", &[]).await), "Miss");
    assert_eq!(status(&req(&gw, "x.test", "/c", &[]).await), "Hit");

    // A plugin change: the first request that sees it is a Miss.
    let r = gw
        .admin(
            "PATCH",
            &format!("/plugins/{pid}"),
            json!({"config": {"response_headers": {"X-Cache-Key": false}}}),
        )
        .await;
    ok(&r, "patch plugin");
    eventually(WAIT, "the plugin change is live", || async {
        let r = req(&gw, "x.test", "/c", &[]).await;
        if r.header("x-cache-key").is_some() {
            assert_eq!(status(&r), "Hit", "old config, old entry");
            return false;
        }
        assert_eq!(status(&r), "Miss", "new config, never the old entry");
        true
    })
    .await;
    assert_eq!(status(&req(&gw, "x.test", "/c", &[]).await), "Hit");

    // A service change too.
    let r = gw
        .admin(
            "PATCH",
            "/services/s",
            json!({"read_timeout": 30000, "tags": ["t"]}),
        )
        .await;
    ok(&r, "patch service");
    eventually(WAIT, "the service change is live", || async {
        status(&req(&gw, "x.test", "/c", &[]).await) == "Miss"
    })
    .await;
    assert_eq!(status(&req(&gw, "x.test", "/c", &[]).await), "Hit");
}

fn reload_config(up: &Upstream, ttl: u32, paths: &str, extra: &str) -> String {
    format!(
        r#"_format_version: "3.0"
services:
- name: s
  url: http://{}
  routes:
  - name: r
    paths: {paths}
    plugins:
    - name: proxy-cache
      config: {{strategy: memory, cache_ttl: {ttl}}}
{extra}"#,
        up.addr
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reloads_never_serve_old_entries() {
    let up = Upstream::start("u");
    let gw = Gateway::with_config(&reload_config(&up, 300, "[/r]", "")).start();
    assert_eq!(status(&req(&gw, "x.test", "/r", &[]).await), "Miss");
    assert_eq!(status(&req(&gw, "x.test", "/r", &[]).await), "Hit");

    // A change elsewhere keeps the entries of an unchanged route and plugin.
    let hash = gw.config_hash().await;
    let other = format!("- name: other\n  url: http://{}\n", up.addr);
    let (code, out) = gw.reload_with(&reload_config(&up, 300, "[/r]", &other));
    assert_eq!(code, 0, "{out}");
    let hash = gw.wait_hash_change(&hash, WAIT).await;
    assert_eq!(status(&req(&gw, "x.test", "/r", &[]).await), "Hit");

    // The plugin's config changed: Miss.
    let (code, out) = gw.reload_with(&reload_config(&up, 299, "[/r]", &other));
    assert_eq!(code, 0, "{out}");
    let hash = gw.wait_hash_change(&hash, WAIT).await;
    assert_eq!(status(&req(&gw, "x.test", "/r", &[]).await), "Miss");
    assert_eq!(status(&req(&gw, "x.test", "/r", &[]).await), "Hit");

    // The route changed: Miss.
    let (code, out) = gw.reload_with(&reload_config(&up, 299, "[/r, /r2]", &other));
    assert_eq!(code, 0, "{out}");
    gw.wait_hash_change(&hash, WAIT).await;
    assert_eq!(status(&req(&gw, "x.test", "/r", &[]).await), "Miss");
    assert_eq!(status(&req(&gw, "x.test", "/r", &[]).await), "Hit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_memory_strategy_is_accepted() {
    let gw = Gateway::with_database().start();
    let r = gw
        .admin(
            "POST",
            "/plugins",
            json!({"name": "proxy-cache", "config": {"strategy": "redis"}}),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(
        r.json()["fields"]["config"]["strategy"],
        "expected one of: memory"
    );
    let r = gw
        .admin(
            "POST",
            "/plugins",
            json!({"name": "proxy-cache", "config": {}}),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(
        r.json()["fields"]["config"]["strategy"],
        "required field missing"
    );
    let r = gw
        .admin(
            "POST",
            "/plugins",
            json!({"name": "proxy-cache", "config": {"strategy": "memory", "response_code": []}}),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json()["fields"]["config"]["response_code"],
        "length must be at least 1"
    );
    let r = gw
        .admin(
            "POST",
            "/plugins",
            json!({"name": "proxy-cache", "config": {"strategy": "memory"}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let config = &r.json()["config"];
    assert_eq!(config["response_code"], json!([200, 301, 404]));
    assert_eq!(config["request_method"], json!(["GET", "HEAD"]));
    assert_eq!(
        config["content_type"],
        json!(["text/plain", "application/json"])
    );
    assert_eq!(config["cache_ttl"], 300);
    assert_eq!(config["memory"]["dictionary_name"], "kong_db_cache");
    assert_eq!(
        config["response_headers"],
        json!({"age": true, "X-Cache-Status": true, "X-Cache-Key": true})
    );
}
