//! http-log against the real binary: one Kong-shaped record per request at a real HTTP log
//! server, secrets redacted, batches as JSON arrays, Basic auth from the endpoint's user info,
//! delivery after the endpoint comes back, and Kong's config errors.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::collector::HttpCollector;
use common::*;
use serde_json::{Value, json};
use std::time::Duration;

fn config(up: &Upstream, endpoint: &str, extra: &str) -> String {
    format!(
        r#"_format_version: "3.0"
consumers:
- username: alice
  keyauth_credentials:
  - key: alice-secret-key
services:
- name: s
  url: http://{}/base
  routes:
  - name: r
    paths: [/logged]
    plugins:
    - name: http-log
      config:
        http_endpoint: "{endpoint}"
{extra}
  - name: keyed
    paths: [/keyed]
    plugins:
    - name: key-auth
    - name: http-log
      config:
        http_endpoint: "{endpoint}"
{extra}
  - name: jwt
    paths: [/jwt]
    plugins:
    - name: jwt
    - name: http-log
      config:
        http_endpoint: "{endpoint}"
{extra}
"#,
        up.addr
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_record_per_request_in_kongs_shape() {
    let up = Upstream::start("up");
    let logs = HttpCollector::start();
    let endpoint = format!("http://logger:s3cret@{}/ingest?ignored=1", logs.addr);
    let gw = Gateway::with_config(&config(&up, &endpoint, "")).start();
    let c = client();
    let r = get(
        &c,
        &gw.url("/logged/x?a=1&a=2&flag"),
        &[
            ("authorization", "Bearer top-secret"),
            ("cookie", "session=cookie-secret"),
            ("x-custom", "visible"),
        ],
    )
    .await;
    assert_eq!(r.status, 200);
    let got = logs.received.wait_for(1, Duration::from_secs(10));
    assert_eq!(got.len(), 1, "exactly one record per request");
    let entry = &got[0];
    assert_eq!(entry.method, "POST");
    assert_eq!(entry.path, "/ingest");
    assert_eq!(entry.headers["content-type"], "application/json");
    // Kong sends the endpoint's user info as Basic auth.
    assert_eq!(entry.headers["authorization"], "Basic bG9nZ2VyOnMzY3JldA==");
    let rec = entry.json();
    let req = &rec["request"];
    assert_eq!(req["method"], "GET");
    assert_eq!(req["uri"], "/logged/x?a=1&a=2&flag");
    assert_eq!(
        req["url"],
        format!("http://127.0.0.1:{}/logged/x?a=1&a=2&flag", gw.proxy.port())
    );
    assert_eq!(req["querystring"], json!({"a": ["1", "2"], "flag": true}));
    assert_eq!(req["headers"]["authorization"], "REDACTED");
    assert_eq!(req["headers"]["cookie"], "REDACTED");
    assert_eq!(req["headers"]["x-custom"], "visible");
    // The headers as the client and plugins left them, not the proxy's own additions.
    for added in ["x-forwarded-for", "x-real-ip", "via", "x-kong-request-id"] {
        assert!(
            req["headers"].get(added).is_none(),
            "{added} in {}",
            req["headers"]
        );
    }
    assert_eq!(req["id"], r.header("x-kong-request-id").unwrap());
    assert!(req["size"].as_u64().unwrap() > 0);
    assert_eq!(rec["upstream_uri"], "/base/x?a=1&a=2&flag");
    assert_eq!(rec["upstream_status"], "200");
    assert_eq!(rec["response"]["status"], 200);
    assert!(rec["response"]["size"].as_u64().unwrap() > 0);
    assert_eq!(
        rec["response"]["headers"]["content-type"],
        r.header("content-type").unwrap()
    );
    for k in ["kong", "proxy", "request", "receive"] {
        assert!(rec["latencies"][k].as_i64().unwrap() >= 0, "latency {k}");
    }
    assert_eq!(rec["tries"][0]["ip"], "127.0.0.1");
    assert_eq!(rec["tries"][0]["port"], up.addr.port());
    assert_eq!(rec["route"]["name"], "r");
    assert_eq!(rec["service"]["name"], "s");
    assert_eq!(rec["client_ip"], "127.0.0.1");
    assert_eq!(rec["source"], "service");
    let started = rec["started_at"].as_u64().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    assert!(started <= now && now - started < 60_000, "{started} {now}");
    assert!(rec.get("consumer").is_none());
    let text = String::from_utf8_lossy(&entry.body);
    assert!(!text.contains("top-secret") && !text.contains("cookie-secret"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_redacted_and_consumer_logged() {
    let up = Upstream::start("up");
    let logs = HttpCollector::start();
    let endpoint = format!("http://{}/", logs.addr);
    let gw = Gateway::with_config(&config(&up, &endpoint, "")).start();
    let c = client();
    let r = get(&c, &gw.url("/keyed?apikey=alice-secret-key"), &[]).await;
    assert_eq!(r.status, 200);
    let r = get(&c, &gw.url("/keyed"), &[("apikey", "alice-secret-key")]).await;
    assert_eq!(r.status, 200);
    // Rejected requests are logged too.
    let r = get(&c, &gw.url("/keyed"), &[("apikey", "wrong-key")]).await;
    assert_eq!(r.status, 401);
    let mut got = logs.received.wait_for(3, Duration::from_secs(10));
    assert_eq!(got.len(), 3);
    for e in &got {
        let text = String::from_utf8_lossy(&e.body);
        assert!(
            !text.contains("alice-secret-key") && !text.contains("wrong-key"),
            "{text}"
        );
    }
    // Requests on different connections may reach the log phase in any order.
    got.sort_by_key(|e| {
        let rec = e.json();
        (
            rec["response"]["status"].as_u64(),
            rec["request"]["uri"].as_str().map(str::to_string),
        )
    });
    let (passed, rejected) = got.split_at(2);
    for e in passed {
        let rec = e.json();
        assert_eq!(rec["consumer"]["username"], "alice", "{rec}");
        // key-auth's headers are part of the request, as in Kong.
        assert_eq!(rec["request"]["headers"]["x-consumer-username"], "alice");
        assert!(rec["authenticated_entity"]["id"].is_string());
        assert_eq!(
            rec["authenticated_entity"]["consumer_id"],
            rec["consumer"]["id"]
        );
    }
    let (by_header, by_query) = (passed[0].json(), passed[1].json());
    assert_eq!(by_query["request"]["uri"], "/keyed?apikey=REDACTED");
    assert_eq!(by_query["request"]["querystring"]["apikey"], "REDACTED");
    assert_eq!(by_header["request"]["headers"]["apikey"], "REDACTED");
    let rejected = rejected[0].json();
    assert_eq!(rejected["response"]["status"], 401);
    assert_eq!(rejected["source"], "exit");
    assert_eq!(rejected["upstream_uri"], "");
    assert_eq!(rejected["latencies"]["proxy"], -1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_are_json_arrays() {
    let up = Upstream::start("up");
    let logs = HttpCollector::start();
    let endpoint = format!("http://{}/batch", logs.addr);
    let extra = "        queue: {max_batch_size: 3, max_coalescing_delay: 2}";
    let gw = Gateway::with_config(&config(&up, &endpoint, extra)).start();
    let c = client();
    for i in 0..3 {
        let r = get(&c, &gw.url(&format!("/logged/{i}")), &[]).await;
        assert_eq!(r.status, 200);
    }
    let got = logs.received.wait_for(1, Duration::from_secs(10));
    assert_eq!(got.len(), 1, "three entries in one batch");
    let batch = got[0].json();
    let mut uris: Vec<&str> = batch
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["request"]["uri"].as_str().unwrap())
        .collect();
    // Requests on different connections may reach the log phase in any order.
    uris.sort();
    assert_eq!(uris, ["/logged/0", "/logged/1", "/logged/2"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivers_after_the_endpoint_recovers() {
    let up = Upstream::start("up");
    // A port with nothing listening yet.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let endpoint = format!("http://{addr}/late");
    let extra =
        "        queue: {max_retry_time: 60, initial_retry_delay: 0.05, max_retry_delay: 0.2}";
    let gw = Gateway::with_config(&config(&up, &endpoint, extra)).start();
    let c = client();
    for i in 0..2 {
        let r = get(&c, &gw.url(&format!("/logged/{i}")), &[]).await;
        assert_eq!(
            r.status, 200,
            "the proxy answers while the log server is down"
        );
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    let logs = HttpCollector::start_on(addr);
    let got = logs.received.wait_for(2, Duration::from_secs(15));
    let mut uris: Vec<String> = got
        .iter()
        .map(|e| e.json()["request"]["uri"].as_str().unwrap().to_string())
        .collect();
    uris.sort();
    assert_eq!(uris, ["/logged/0", "/logged/1"]);
    assert!(gw.log_text().contains("log delivery failed"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kong_config_errors() {
    let gw = Gateway::with_database().start();
    let post = |config: Value| gw.post_plugin("http-log", config);
    let r = post(json!({})).await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json()["fields"]["config"]["http_endpoint"],
        "required field missing"
    );
    let r =
        post(json!({"http_endpoint": "http://u:p@h/", "headers": {"Authorization": "x"}})).await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains(
        "specifying both an 'Authorization' header and user info in 'http_endpoint' is not allowed"
    ));
    let r = post(json!({"http_endpoint": "http://h/", "headers": {"Host": "x"}})).await;
    assert_eq!(r.status, 400);
    assert!(
        r.text().contains("cannot contain 'Host' header"),
        "{}",
        r.text()
    );
    let r = post(json!({"http_endpoint": "http://h/", "custom_fields_by_lua": {"a": "return 1"}}))
        .await;
    assert_eq!(r.status, 400);
    assert!(
        r.text().contains("custom_fields_by_lua is not supported"),
        "{}",
        r.text()
    );
    let r = post(json!({"http_endpoint": "http://h/"})).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let conf = &r.json()["config"];
    assert_eq!(conf["method"], "POST");
    assert_eq!(conf["content_type"], "application/json");
    assert_eq!(conf["timeout"], 10000);
    assert_eq!(conf["keepalive"], 60000);
    assert_eq!(conf["queue"]["max_batch_size"], 1);
    assert_eq!(conf["queue"]["max_entries"], 10000);
    assert_eq!(conf["queue"]["initial_retry_delay"], 0.01);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_entries_are_delivered_before_stop() {
    let up = Upstream::start("up");
    let logs = HttpCollector::start();
    let endpoint = format!("http://{}/", logs.addr);
    // Entries wait up to 2 s to be batched: a stop right after the requests must wait for them.
    let extra = "        queue: {max_batch_size: 100, max_coalescing_delay: 2}";
    let mut gw = Gateway::with_config(&config(&up, &endpoint, extra)).start();
    let c = client();
    for i in 0..5 {
        assert_eq!(
            get(&c, &gw.url(&format!("/logged/{i}")), &[]).await.status,
            200
        );
    }
    assert!(logs.received.all().is_empty());
    assert!(gw.stop().success());
    let got = logs.received.all();
    assert_eq!(
        got.len(),
        1,
        "one batch, delivered before the process ended"
    );
    assert_eq!(got[0].json().as_array().unwrap().len(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_keeps_queued_entries() {
    let up = Upstream::start("up");
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let endpoint = format!("http://{addr}/");
    let retry = "        queue: {initial_retry_delay: 0.05, max_retry_delay: 0.2}";
    let gw = Gateway::with_config(&config(&up, &endpoint, retry)).start();
    let c = client();
    assert_eq!(get(&c, &gw.url("/logged/before"), &[]).await.status, 200);
    // The plugin's config changes: a new queue, while the old one still holds the entry.
    let changed = format!("{retry}\n        timeout: 5000");
    let old_hash = gw.config_hash().await;
    let (code, out) = gw.reload_with(&config(&up, &endpoint, &changed));
    assert_eq!(code, 0, "{out}");
    gw.wait_hash_change(&old_hash, Duration::from_secs(10))
        .await;
    assert_eq!(get(&c, &gw.url("/logged/after"), &[]).await.status, 200);
    let logs = HttpCollector::start_on(addr);
    let got = logs.received.wait_for(2, Duration::from_secs(15));
    let mut uris: Vec<String> = got
        .iter()
        .map(|e| e.json()["request"]["uri"].as_str().unwrap().to_string())
        .collect();
    uris.sort();
    assert_eq!(uris, ["/logged/after", "/logged/before"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt_tokens_redacted() {
    let up = Upstream::start("up");
    let logs = HttpCollector::start();
    let endpoint = format!("http://{}/", logs.addr);
    let gw = Gateway::with_config(&config(&up, &endpoint, "")).start();
    let c = client();
    let r = get(
        &c,
        &gw.url("/jwt?jwt=eyJhbGciOiJIUzI1NiJ9.e30.token-secret&x=1"),
        &[],
    )
    .await;
    assert_eq!(r.status, 401);
    let got = logs.received.wait_for(1, Duration::from_secs(10));
    let rec = got[0].json();
    assert_eq!(rec["request"]["querystring"]["jwt"], "REDACTED");
    assert_eq!(rec["request"]["uri"], "/jwt?jwt=REDACTED&x=1");
    assert!(!String::from_utf8_lossy(&got[0].body).contains("token-secret"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_endpoint() {
    let up = Upstream::start("up");
    let logs = HttpCollector::start_tls();
    // A self-signed certificate for another name: Kong does not verify it either.
    let endpoint = format!("https://{}/secure", logs.addr);
    let gw = Gateway::with_config(&config(&up, &endpoint, "")).start();
    let c = client();
    for i in 0..2 {
        assert_eq!(
            get(&c, &gw.url(&format!("/logged/{i}")), &[]).await.status,
            200
        );
    }
    let got = logs.received.wait_for(2, Duration::from_secs(10));
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].path, "/secure");
    let mut uris: Vec<String> = got
        .iter()
        .map(|e| e.json()["request"]["uri"].as_str().unwrap().to_string())
        .collect();
    uris.sort();
    assert_eq!(uris, ["/logged/0", "/logged/1"]);
}
