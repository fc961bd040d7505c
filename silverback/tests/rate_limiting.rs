//! rate-limiting (local policy; redis and cluster in rate_limiting_redis.rs and
//! rate_limiting_cluster.rs) against the real binary: Kong's headers and 429, every
//! limit_by, exact limits under concurrency across worker threads, and config validation.
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
  - name: minute
    paths: [/minute]
    plugins:
    - name: rate-limiting
      config: {{minute: 3, hour: 100, limit_by: ip}}
  - name: by-header
    paths: [/by-header]
    plugins:
    - name: rate-limiting
      config: {{hour: 1, limit_by: header, header_name: x-team}}
  - name: hidden
    paths: [/hidden]
    plugins:
    - name: rate-limiting
      config: {{hour: 1, hide_client_headers: true, error_code: 503, error_message: slow down}}
  - name: burst
    paths: [/burst]
    plugins:
    - name: rate-limiting
      config: {{hour: 20}}
"#,
        up.addr
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kongs_headers_then_429_with_retry_after() {
    let up = Upstream::start("u");
    let gw = Gateway::with_config(&config(&up)).start();
    let c = client();
    for remaining in [2, 1, 0] {
        let r = get(&c, &gw.url("/minute"), &[]).await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.header("x-ratelimit-limit-minute"), Some("3"));
        assert_eq!(
            r.header("x-ratelimit-remaining-minute"),
            Some(remaining.to_string().as_str())
        );
        assert_eq!(r.header("x-ratelimit-limit-hour"), Some("100"));
        // The period closest to its limit speaks for RateLimit-*.
        assert_eq!(r.header("ratelimit-limit"), Some("3"));
        assert_eq!(
            r.header("ratelimit-remaining"),
            Some(remaining.to_string().as_str())
        );
        let reset: i64 = r.header("ratelimit-reset").unwrap().parse().unwrap();
        assert!((1..=60).contains(&reset), "{reset}");
    }
    let r = get(&c, &gw.url("/minute"), &[]).await;
    assert_eq!(r.status, 429);
    assert_eq!(r.json()["message"], "API rate limit exceeded");
    assert_eq!(r.header("x-ratelimit-remaining-minute"), Some("0"));
    assert_eq!(r.header("ratelimit-remaining"), Some("0"));
    let retry: i64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    // Refused requests are not counted against the longer period.
    assert_eq!(r.header("x-ratelimit-remaining-hour"), Some("97"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limit_by_header_and_hidden_headers() {
    let up = Upstream::start("u");
    let gw = Gateway::with_config(&config(&up)).start();
    let c = client();
    for team in ["a", "b"] {
        let r = get(&c, &gw.url("/by-header"), &[("x-team", team)]).await;
        assert_eq!(r.status, 200, "team {team} has its own counter");
    }
    assert_eq!(
        get(&c, &gw.url("/by-header"), &[("x-team", "a")])
            .await
            .status,
        429
    );
    // No header: counted by client IP, a counter of its own.
    assert_eq!(get(&c, &gw.url("/by-header"), &[]).await.status, 200);

    let r = get(&c, &gw.url("/hidden"), &[]).await;
    assert_eq!(r.status, 200);
    assert!(r.header("x-ratelimit-limit-hour").is_none());
    assert!(r.header("ratelimit-limit").is_none());
    let r = get(&c, &gw.url("/hidden"), &[]).await;
    assert_eq!(r.status, 503);
    assert_eq!(r.json()["message"], "slow down");
    assert!(r.header("retry-after").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_clients_never_get_more_than_the_limit() {
    let up = Upstream::start("u");
    let gw = Gateway::with_config(&config(&up))
        .setting("worker_threads", "4")
        .start();
    let mut tasks = Vec::new();
    for _ in 0..100 {
        let url = gw.url("/burst");
        tasks.push(tokio::spawn(async move {
            // A connection per request: the load spreads over the worker threads.
            get(&client(), &url, &[]).await.status
        }));
    }
    let mut ok = 0;
    let mut limited = 0;
    for t in tasks {
        match t.await.unwrap() {
            200 => ok += 1,
            429 => limited += 1,
            s => panic!("unexpected {s}"),
        }
    }
    assert_eq!((ok, limited), (20, 80));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configs_are_validated_with_kongs_messages() {
    let gw = Gateway::with_database().start();
    let r = gw
        .admin(
            "POST",
            "/plugins",
            json!({"name": "rate-limiting", "config": {}}),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(
        r.text()
            .contains("at least one of these fields must be non-empty"),
        "{}",
        r.text()
    );
    let r = gw
        .admin(
            "POST",
            "/plugins",
            json!({"name": "rate-limiting", "config": {"minute": 10, "hour": 5}}),
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(
        r.text()
            .contains("The limit for hour(5.0) cannot be lower than the limit for minute(10.0)"),
        "{}",
        r.text()
    );
    let r = gw
        .admin(
            "POST",
            "/plugins",
            json!({"name": "rate-limiting", "config": {"minute": 10, "policy": "redis"}}),
        )
        .await;
    // Kong's entity check: the redis policy needs redis.host.
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json()["fields"]["config.redis.host"],
        "required field missing",
        "{}",
        r.text()
    );
    let r = gw
        .admin(
            "POST",
            "/plugins",
            json!({"name": "rate-limiting", "config": {"minute": 10, "sync_rate": 1}}),
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(
        r.text()
            .contains("sync_rate can only be used with the redis policy"),
        "{}",
        r.text()
    );
    // The deprecated flat fields still set the redis record.
    let r = gw
        .admin(
            "POST",
            "/plugins",
            json!({"name": "rate-limiting", "config": {"minute": 10, "policy": "redis",
                "redis_host": "127.0.0.1", "redis_database": 3, "sync_rate": 0.5}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["config"]["redis"]["host"], "127.0.0.1");
    assert_eq!(r.json()["config"]["redis"]["database"], 3);
    assert!(r.json()["config"].get("redis_host").is_none());
    let id = r.json()["id"].as_str().unwrap().to_string();
    assert_eq!(
        gw.admin("DELETE", &format!("/plugins/{id}"), json!(null))
            .await
            .status,
        204
    );
    let r = gw
        .admin(
            "POST",
            "/plugins",
            json!({"name": "rate-limiting", "config": {"minute": 10}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let config = &r.json()["config"];
    assert_eq!(config["limit_by"], "consumer");
    assert_eq!(config["policy"], "local");
    assert_eq!(config["error_code"], 429);
    assert_eq!(config["redis"]["port"], 6379);
    assert_eq!(config["sync_rate"], -1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_plugin_counts_all_its_routes_together() {
    let up = Upstream::start("u");
    let config = format!(
        r#"_format_version: "3.0"
services:
- name: s
  url: http://{}
  plugins:
  - name: rate-limiting
    config: {{hour: 3, limit_by: ip}}
  routes:
  - name: one
    paths: [/one]
  - name: two
    paths: [/two]
"#,
        up.addr
    );
    let gw = Gateway::with_config(&config).start();
    let c = client();
    // Kong keys the counter by the plugin's service and no route: one counter for both.
    for (path, remaining) in [("/one", "2"), ("/two", "1"), ("/one", "0")] {
        let r = get(&c, &gw.url(path), &[]).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.header("x-ratelimit-remaining-hour"), Some(remaining));
    }
    assert_eq!(get(&c, &gw.url("/two"), &[]).await.status, 429);
}
