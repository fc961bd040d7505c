//! file-log against the real binary: one JSON line per request, reopening on SIGUSR1 and with
//! `reopen`, a full disk (`/dev/full` answers ENOSPC) and a size cap that drop lines while the
//! proxy keeps answering, rotation, and Kong's config errors.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use serde_json::{Value, json};
use std::path::Path;
use std::time::Duration;

fn config(up: &Upstream, plugin_config: &str) -> String {
    format!(
        r#"_format_version: "3.0"
services:
- name: s
  url: http://{}
  routes:
  - name: r
    paths: [/logged]
    plugins:
    - name: file-log
      config: {plugin_config}
"#,
        up.addr
    )
}

fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

async fn wait_lines(path: &Path, n: usize) -> Vec<Value> {
    eventually(Duration::from_secs(10), "log lines written", || async {
        lines(path).len() >= n
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    lines(path)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_line_per_request_and_reopen_on_sigusr1() {
    let up = Upstream::start("up");
    let dir = TempDir::new("file-log");
    let path = dir.path().join("access.json");
    let moved = dir.path().join("access.json.old");
    let conf = format!("{{path: {}}}", path.display());
    let gw = Gateway::with_config(&config(&up, &conf)).start();
    let c = client();
    let r = get(
        &c,
        &gw.url("/logged/1"),
        &[("proxy-authorization", "Basic c2VjcmV0")],
    )
    .await;
    assert_eq!(r.status, 200);
    let got = wait_lines(&path, 1).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["request"]["uri"], "/logged/1");
    assert_eq!(
        got[0]["request"]["headers"]["proxy-authorization"],
        "REDACTED"
    );
    assert_eq!(
        got[0]["request"]["id"],
        r.header("x-kong-request-id").unwrap()
    );

    // logrotate moves the file: lines go on to the moved file until SIGUSR1.
    std::fs::rename(&path, &moved).unwrap();
    assert_eq!(get(&c, &gw.url("/logged/2"), &[]).await.status, 200);
    let old = wait_lines(&moved, 2).await;
    assert_eq!(old[1]["request"]["uri"], "/logged/2");
    gw.signal("USR1");
    eventually(Duration::from_secs(5), "SIGUSR1 handled", || async {
        gw.log_text().contains("reopening log files")
    })
    .await;
    assert_eq!(get(&c, &gw.url("/logged/3"), &[]).await.status, 200);
    let new = wait_lines(&path, 1).await;
    assert_eq!(new.len(), 1);
    assert_eq!(new[0]["request"]["uri"], "/logged/3");
    assert_eq!(lines(&moved).len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reopen_option_follows_a_moved_file() {
    let up = Upstream::start("up");
    let dir = TempDir::new("file-log-reopen");
    let path = dir.path().join("log.json");
    let conf = format!("{{path: {}, reopen: true}}", path.display());
    let gw = Gateway::with_config(&config(&up, &conf)).start();
    let c = client();
    assert_eq!(get(&c, &gw.url("/logged/1"), &[]).await.status, 200);
    wait_lines(&path, 1).await;
    std::fs::rename(&path, dir.path().join("log.json.1")).unwrap();
    assert_eq!(get(&c, &gw.url("/logged/2"), &[]).await.status, 200);
    let got = wait_lines(&path, 1).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["request"]["uri"], "/logged/2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_disk_drops_lines_and_the_proxy_keeps_answering() {
    let up = Upstream::start("up");
    let conf = "{path: /dev/full}";
    let gw = Gateway::with_config(&config(&up, conf)).start();
    let c = client();
    for _ in 0..20 {
        let r = get(&c, &gw.url("/logged"), &[]).await;
        assert_eq!(r.status, 200);
    }
    eventually(Duration::from_secs(10), "all 20 drops counted", || async {
        get(&c, &gw.status_url("/metrics"), &[])
            .await
            .text()
            .contains("silverback_log_entries_dropped_total{plugin=\"file-log\"} 20")
    })
    .await;
    let log = gw.log_text();
    assert!(log.contains("No space left on device"), "{log}");
    // Logged at the first drop and at powers of two, not once per request.
    let reports = log.matches("could not deliver log entries").count();
    assert!((1..=6).contains(&reports), "{reports} reports");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_and_a_size_cap() {
    let up = Upstream::start("up");
    let dir = TempDir::new("file-log-cap");
    let path = dir.path().join("capped.json");
    let conf = format!(
        "{{path: {}, rotate_size: 3000, max_total_size: 8000}}",
        path.display()
    );
    let gw = Gateway::with_config(&config(&up, &conf)).start();
    let c = client();
    for _ in 0..40 {
        assert_eq!(get(&c, &gw.url("/logged"), &[]).await.status, 200);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut total = 0;
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let len = entry.unwrap().metadata().unwrap().len();
        assert!(len <= 3000, "each file within rotate_size: {len}");
        total += len;
    }
    assert!(total <= 8000, "{total} bytes in all");
    assert!(dir.path().join("capped.json.1").exists());
    // The newest entries are kept.
    assert!(!lines(&path).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kong_config_errors() {
    let gw = Gateway::with_database().start();
    let post = |config: Value| gw.post_plugin("file-log", config);
    let r = post(json!({})).await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json()["fields"]["config"]["path"],
        "required field missing"
    );
    let r = post(json!({"path": "/tmp/f*.log"})).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["fields"]["config"]["path"], "not a valid filename");
    let r = post(json!({"path": "/tmp/x.log", "custom_fields_by_lua": {"f": "return 1"}})).await;
    assert_eq!(r.status, 400);
    assert!(r.text().contains("custom_fields_by_lua is not supported"));
    let r = post(json!({"path": "/tmp/x.log"})).await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["config"]["reopen"], false);
}
