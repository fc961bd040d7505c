//! response-ratelimiting against the real binary, with the local and redis policies: the
//! upstream's X-Kong-Limit header adds to the counters, Kong's headers both ways, the 429 once
//! a limit is used up, and block_on_first_violation.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use std::time::Duration;

/// Route names carry `tag`, so each run counts under route ids of its own.
fn config(up: &Upstream, db: u32, tag: &str) -> String {
    let redis = format!("policy: redis, redis: {{host: 127.0.0.1, port: 6379, database: {db}}}");
    let mut yaml = format!(
        "_format_version: \"3.0\"\nservices:\n- name: s\n  url: http://{}\n  routes:\n",
        up.addr
    );
    for (name, extra) in [
        ("local", "policy: local"),
        (
            "local-block",
            "policy: local, block_on_first_violation: true",
        ),
        ("redis", redis.as_str()),
        (
            "redis-block",
            &format!("{redis}, block_on_first_violation: true"),
        ),
    ] {
        yaml.push_str(&format!(
            "  - name: {name}-{tag}\n    paths: [/{name}]\n    plugins:\n    - name: response-ratelimiting\n      config: {{{extra}, limits: {{videos: {{minute: 3, hour: 100}}, images: {{minute: 10}}}}}}\n"
        ));
    }
    yaml
}

const LIMIT: &str = "x-set-response-header";

fn unique() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{}-{nanos}", std::process::id())
}

/// The tests count in minute windows: start early in one so a run never straddles two.
async fn early_in_a_minute() {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let into = now.as_secs() % 60;
    if into >= 50 {
        tokio::time::sleep(Duration::from_secs(60 - into)).await;
    }
}

/// Waits until the counters reflect the last response (redis counts from a task after the
/// response, as Kong counts from a timer).
async fn settle(redis: bool) {
    if redis {
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

async fn counters_from_the_upstream_header(gw: &Gateway, up: &Upstream, route: &str) {
    let redis = route.starts_with("/redis");
    let c = client();
    let r = get(
        &c,
        &gw.url(route),
        &[(LIMIT, "x-kong-limit=videos=2, images=1")],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let seen = echo(&r);
    assert_eq!(seen.header("x-ratelimit-remaining-videos"), Some("3"));
    assert_eq!(seen.header("x-ratelimit-remaining-images"), Some("10"));
    assert_eq!(r.header("x-ratelimit-limit-videos-minute"), Some("3"));
    assert_eq!(r.header("x-ratelimit-remaining-videos-minute"), Some("1"));
    assert_eq!(r.header("x-ratelimit-limit-videos-hour"), Some("100"));
    assert_eq!(r.header("x-ratelimit-remaining-videos-hour"), Some("98"));
    assert_eq!(r.header("x-ratelimit-limit-images-minute"), Some("10"));
    assert_eq!(r.header("x-ratelimit-remaining-images-minute"), Some("9"));
    assert!(
        r.header("x-kong-limit").is_none(),
        "the counting header is removed"
    );
    settle(redis).await;

    let r = get(&c, &gw.url(route), &[(LIMIT, "x-kong-limit=videos=1")]).await;
    assert_eq!(r.status, 200);
    assert_eq!(echo(&r).header("x-ratelimit-remaining-videos"), Some("1"));
    assert_eq!(r.header("x-ratelimit-remaining-videos-minute"), Some("0"));
    assert_eq!(r.header("x-ratelimit-remaining-images-minute"), Some("9"));
    settle(redis).await;

    // Used up: a response that would add to it becomes a 429 (its body is the upstream's, as
    // Kong changes only the status from header_filter).
    let hits = up.hits();
    let r = get(&c, &gw.url(route), &[(LIMIT, "x-kong-limit=videos=1")]).await;
    assert_eq!(r.status, 429, "{}", r.text());
    assert!(r.header("x-kong-limit").is_none());
    assert_eq!(r.header("x-ratelimit-remaining-videos-minute"), Some("0"));
    assert_eq!(
        up.hits(),
        hits + 1,
        "without block_on_first_violation the upstream is asked"
    );
    settle(redis).await;
    // A response that does not count passes; the other limit still has room.
    let r = get(&c, &gw.url(route), &[(LIMIT, "x-kong-limit=images=1")]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-ratelimit-remaining-images-minute"), Some("8"));
    assert_eq!(r.header("x-ratelimit-remaining-videos-hour"), Some("97"));
}

async fn blocked_on_first_violation(gw: &Gateway, up: &Upstream, route: &str) {
    let redis = route.starts_with("/redis");
    let c = client();
    let r = get(&c, &gw.url(route), &[(LIMIT, "x-kong-limit=videos=3")]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-ratelimit-remaining-videos-minute"), Some("0"));
    settle(redis).await;
    let hits = up.hits();
    let r = get(&c, &gw.url(route), &[]).await;
    assert_eq!(r.status, 429);
    assert_eq!(r.json()["message"], "API rate limit exceeded for 'videos'");
    assert_eq!(up.hits(), hits, "refused before the upstream");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_policy() {
    let up = Upstream::start("u");
    let gw = Gateway::with_config(&config(&up, 6, &unique())).start();
    early_in_a_minute().await;
    counters_from_the_upstream_header(&gw, &up, "/local").await;
    blocked_on_first_violation(&gw, &up, "/local-block").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_policy() {
    let up = Upstream::start("u");
    // A database of its own; route ids of its own keep earlier runs' counters out.
    let db = 7;
    let tag = unique();
    let gw = Gateway::with_config(&config(&up, db, &tag)).start();
    early_in_a_minute().await;
    counters_from_the_upstream_header(&gw, &up, "/redis").await;
    blocked_on_first_violation(&gw, &up, "/redis-block").await;
    let keys = std::process::Command::new("redis-cli")
        .args([
            "-n",
            &db.to_string(),
            "--scan",
            "--pattern",
            "response-ratelimit:*",
        ])
        .output()
        .unwrap();
    let keys = String::from_utf8_lossy(&keys.stdout).to_string();
    assert!(
        keys.lines()
            .any(|k| k.ends_with(":videos:minute") && k.contains(":127.0.0.1:")),
        "{keys}"
    );
}
