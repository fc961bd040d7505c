//! The gateway's own logs against the real binary: `proxy_access_log` lines in nginx's
//! combined format (off by default, reopened on SIGUSR1, credentials redacted), and errors
//! logged on one line with the request id.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use std::time::Duration;

fn config(up: &Upstream) -> String {
    format!(
        r#"_format_version: "3.0"
consumers:
- username: alice
  keyauth_credentials:
  - key: alice-secret-key
services:
- name: s
  url: http://{}
  routes:
  - name: open
    paths: [/open]
  - name: keyed
    paths: [/keyed]
    plugins:
    - name: key-auth
- name: down
  url: http://127.0.0.1:9
  retries: 0
  routes:
  - name: down
    paths: [/down]
"#,
        up.addr
    )
}

async fn wait_lines(path: &std::path::Path, n: usize) -> Vec<String> {
    eventually(Duration::from_secs(10), "access log lines", || async {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .count()
            >= n
    })
    .await;
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn combined_lines_reopen_and_redaction() {
    let up = Upstream::start("up");
    let gw = Gateway::with_config(&config(&up))
        .setting("proxy_access_log", "logs/access.log")
        .start();
    let path = gw.prefix().join("logs/access.log");
    let c = client();
    let r = get(
        &c,
        &gw.url("/open/x?y=1"),
        &[
            ("user-agent", "grep-me/1.0"),
            ("referer", "http://ref.example/"),
        ],
    )
    .await;
    assert_eq!(r.status, 200);
    let r = get(&c, &gw.url("/keyed?apikey=alice-secret-key"), &[]).await;
    assert_eq!(r.status, 200);
    let r = get(&c, &gw.url("/nothing-here"), &[]).await;
    assert_eq!(r.status, 404);
    let lines = wait_lines(&path, 3).await;
    assert_eq!(lines.len(), 3, "{lines:?}");
    let body_len = r.body.len();
    assert!(lines[0].starts_with("127.0.0.1 - - ["), "{}", lines[0]);
    assert!(
        lines[0].contains("] \"GET /open/x?y=1 HTTP/1.1\" 200 "),
        "{}",
        lines[0]
    );
    assert!(
        lines[0].ends_with("\"http://ref.example/\" \"grep-me/1.0\""),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].contains("\"GET /keyed?apikey=REDACTED HTTP/1.1\" 200 "),
        "{}",
        lines[1]
    );
    assert!(!lines.concat().contains("alice-secret-key"));
    assert!(
        lines[2].contains(&format!(
            "\"GET /nothing-here HTTP/1.1\" 404 {body_len} \"-\" \"-\""
        )),
        "{}",
        lines[2]
    );

    // logrotate: move, SIGUSR1, new lines in a new file.
    let moved = gw.prefix().join("logs/access.log.1");
    std::fs::rename(&path, &moved).unwrap();
    gw.signal("USR1");
    eventually(Duration::from_secs(5), "SIGUSR1 handled", || async {
        gw.log_text().contains("reopening log files")
    })
    .await;
    assert_eq!(get(&c, &gw.url("/open/after"), &[]).await.status, 200);
    let lines = wait_lines(&path, 1).await;
    assert_eq!(lines.len(), 1);
    assert!(lines[0].contains("GET /open/after "), "{}", lines[0]);
    assert_eq!(std::fs::read_to_string(&moved).unwrap().lines().count(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn off_by_default_and_errors_carry_the_request_id() {
    let up = Upstream::start("up");
    let gw = Gateway::with_config(&config(&up)).start();
    let c = client();
    assert_eq!(get(&c, &gw.url("/open"), &[]).await.status, 200);
    let r = get(&c, &gw.url("/down"), &[]).await;
    assert_eq!(r.status, 502);
    let rid = r.header("x-kong-request-id").unwrap().to_string();
    eventually(Duration::from_secs(5), "the error is logged", || async {
        gw.log_text().contains("proxy error")
    })
    .await;
    let log = gw.log_text();
    let errors: Vec<&str> = log.lines().filter(|l| l.contains("proxy error")).collect();
    assert_eq!(errors.len(), 1, "{log}");
    assert!(errors[0].contains(&rid), "{}", errors[0]);
    let attempt = log
        .lines()
        .find(|l| l.contains("upstream attempt failed"))
        .unwrap();
    assert!(attempt.contains(&rid), "{attempt}");
    assert!(!gw.prefix().join("logs/access.log").exists());
}
