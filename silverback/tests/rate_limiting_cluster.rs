//! rate-limiting with the cluster policy on the embedded store: exact under concurrency,
//! counters that survive a restart, and Kong's refusal of the policy when DB-less.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_clients_get_exactly_the_limit_and_counters_survive_a_restart() {
    let up = Upstream::start("u");
    let mut gw = Gateway::with_database()
        .setting("worker_threads", "2")
        .start();
    let r = gw
        .admin(
            "POST",
            "/services",
            json!({"name": "s", "url": format!("http://{}", up.addr)}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let r = gw
        .admin(
            "POST",
            "/services/s/routes",
            json!({"name": "r", "paths": ["/cluster"]}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let r = gw
        .admin(
            "POST",
            "/routes/r/plugins",
            json!({"name": "rate-limiting", "config": {"hour": 15, "policy": "cluster", "limit_by": "ip"}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["config"]["policy"], "cluster");
    eventually(
        std::time::Duration::from_secs(10),
        "plugin live",
        || async {
            get(&client(), &gw.url("/cluster"), &[])
                .await
                .header("x-ratelimit-limit-hour")
                .is_some()
        },
    )
    .await;

    let mut tasks = Vec::new();
    for _ in 0..60 {
        let url = gw.url("/cluster");
        tasks.push(tokio::spawn(async move {
            let r = get(&client(), &url, &[]).await;
            (
                r.status,
                r.header("x-ratelimit-remaining-hour").map(str::to_string),
            )
        }));
    }
    let mut ok = 0;
    let mut limited = 0;
    let mut remaining = Vec::new();
    for t in tasks {
        let (status, left) = t.await.unwrap();
        match status {
            200 => {
                ok += 1;
                remaining.push(left.unwrap().parse::<u32>().unwrap());
            }
            429 => limited += 1,
            s => panic!("unexpected {s}"),
        }
    }
    // One request went through while waiting for the plugin to be live.
    assert_eq!((ok, limited), (14, 46));
    remaining.sort_unstable();
    assert_eq!(
        remaining,
        (0..14).collect::<Vec<_>>(),
        "each request saw its own count"
    );

    gw.restart();
    let r = get(&client(), &gw.url("/cluster"), &[]).await;
    assert_eq!(r.status, 429, "counters are rows of the database");
    assert_eq!(r.header("x-ratelimit-remaining-hour"), Some("0"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dbless_refuses_the_cluster_policy_as_kong_does() {
    let dir = TempDir::new("rl-cluster");
    let file = dir.path().join("kong.yml");
    std::fs::write(
        &file,
        r#"_format_version: "3.0"
plugins:
- name: rate-limiting
  config: {minute: 5, policy: cluster}
- name: response-ratelimiting
  config: {policy: cluster, limits: {videos: {minute: 5}}}
"#,
    )
    .unwrap();
    let path = file.display().to_string();
    let off = [("SILVERBACK_DATABASE".to_string(), "off".to_string())];
    let (code, out) = run_cli(&["config", "parse", &path], &off);
    assert_eq!(code, 1, "{out}");
    assert_eq!(
        out.matches("policy: expected one of: local, redis").count(),
        2,
        "{out}"
    );
    let sqlite = [("SILVERBACK_DATABASE".to_string(), "sqlite".to_string())];
    let (code, out) = run_cli(&["config", "parse", &path], &sqlite);
    assert_eq!(code, 0, "{out}");

    // A DB-less node refuses it through POST /config too.
    let gw = Gateway::without_config().start();
    let r = gw
        .admin(
            "POST",
            "/config",
            json!({"config": std::fs::read_to_string(&file).unwrap()}),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(
        r.text().contains("expected one of: local, redis"),
        "{}",
        r.text()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn response_ratelimiting_counts_in_the_store() {
    let up = Upstream::start("u");
    let mut gw = Gateway::with_database().start();
    let r = gw
        .admin(
            "POST",
            "/services",
            json!({"name": "s", "url": format!("http://{}", up.addr)}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let r = gw
        .admin(
            "POST",
            "/services/s/routes",
            json!({"name": "r", "paths": ["/videos"]}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let r = gw
        .admin(
            "POST",
            "/routes/r/plugins",
            json!({"name": "response-ratelimiting", "config": {"policy": "cluster", "limit_by": "ip", "limits": {"videos": {"hour": 3}}}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let c = client();
    let count = [("x-set-response-header", "x-kong-limit=videos=3")];
    eventually(
        std::time::Duration::from_secs(10),
        "plugin live",
        || async {
            get(&c, &gw.url("/videos"), &count)
                .await
                .header("x-ratelimit-remaining-videos-hour")
                == Some("0")
        },
    )
    .await;
    // Counted after the response, as Kong counts from a timer.
    eventually(std::time::Duration::from_secs(10), "counted", || async {
        get(&c, &gw.url("/videos"), &[])
            .await
            .header("x-ratelimit-remaining-videos-hour")
            == Some("0")
    })
    .await;
    gw.restart();
    let r = get(&c, &gw.url("/videos"), &count).await;
    assert_eq!(r.status, 429, "the count is a row of the database");
    assert_eq!(r.header("x-ratelimit-remaining-videos-hour"), Some("0"));
    let r = get(&c, &gw.url("/videos"), &[]).await;
    assert_eq!(r.status, 200, "a response that does not count passes");
}
