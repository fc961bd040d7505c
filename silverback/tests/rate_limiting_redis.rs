//! rate-limiting with the redis policy against the real binary and a real Redis: one combined
//! limit across two gateway processes, Kong's keys and expiry, window rollover, and
//! `fault_tolerant` with a Redis that goes away and comes back.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A value no other test run uses, for identifiers and header values.
fn unique() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{}-{nanos}", std::process::id())
}

fn redis_cli(port: u16, db: u32, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-n",
            &db.to_string(),
        ])
        .args(args)
        .output()
        .expect("redis-cli");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn routes(up: &Upstream, port: u16, db: u32, extra: &str) -> String {
    format!(
        r#"_format_version: "3.0"
services:
- name: s
  url: http://{}
  routes:
  - name: burst
    paths: [/burst]
    plugins:
    - name: rate-limiting
      config:
        hour: 25
        limit_by: header
        header_name: x-run
        policy: redis
        redis: {{host: 127.0.0.1, port: {port}, database: {db}}}
  - name: second
    paths: [/second]
    plugins:
    - name: rate-limiting
      config:
        second: 2
        minute: 100
        limit_by: header
        header_name: x-run
        policy: redis
        redis: {{host: 127.0.0.1, port: {port}, database: {db}}}
{extra}"#,
        up.addr
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_gateways_sharing_redis_enforce_one_limit_exactly() {
    let up = Upstream::start("u");
    let config = routes(&up, 6379, 3, "");
    let a = Gateway::with_config(&config)
        .setting("worker_threads", "2")
        .start();
    let b = Gateway::with_config(&config)
        .setting("worker_threads", "2")
        .start();
    let run = unique();
    let mut tasks = Vec::new();
    for i in 0..120 {
        let url = if i % 2 == 0 {
            a.url("/burst")
        } else {
            b.url("/burst")
        };
        let run = run.clone();
        tasks.push(tokio::spawn(async move {
            get(&client(), &url, &[("x-run", &run)]).await.status
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
    assert_eq!((ok, limited), (25, 95));

    // Kong's key and expiry: ratelimit:<route>:<service>:<identifier>:<window ms>:hour,
    // refused requests not counted.
    let keys = redis_cli(
        6379,
        3,
        &["--scan", "--pattern", &format!("ratelimit:*:{run}:*")],
    );
    let keys: Vec<&str> = keys.lines().collect();
    assert_eq!(keys.len(), 1, "{keys:?}");
    let parts: Vec<&str> = keys[0].split(':').collect();
    assert_eq!(parts.len(), 6, "{}", keys[0]);
    // A route's plugin: Kong keys by the plugin's own route and service (none here).
    assert_ne!(parts[1], "00000000-0000-0000-0000-000000000000");
    assert_eq!(parts[2], "00000000-0000-0000-0000-000000000000");
    assert_eq!(parts[3], run);
    assert_eq!(parts[5], "hour");
    let window: i64 = parts[4].parse().unwrap();
    assert_eq!(window % 3_600_000, 0, "window start in ms: {window}");
    assert_eq!(redis_cli(6379, 3, &["GET", keys[0]]), "25");
    let ttl: i64 = redis_cli(6379, 3, &["TTL", keys[0]]).parse().unwrap();
    assert!((1..=3600).contains(&ttl), "{ttl}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_and_a_second_window_that_rolls_over() {
    let up = Upstream::start("u");
    let gw = Gateway::with_config(&routes(&up, 6379, 4, "")).start();
    let c = client();
    let run = unique();
    // Not at the end of a minute (the minute counter is checked too), and just after a second
    // begins, so three requests fall in one window.
    let into_minute = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        % 60;
    if into_minute >= 56 {
        tokio::time::sleep(Duration::from_secs(60 - into_minute)).await;
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    tokio::time::sleep(Duration::from_nanos(
        1_000_000_000 - u64::from(now.subsec_nanos()) + 20_000_000,
    ))
    .await;
    for remaining in [1, 0] {
        let r = get(&c, &gw.url("/second"), &[("x-run", &run)]).await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.header("x-ratelimit-limit-second"), Some("2"));
        assert_eq!(
            r.header("x-ratelimit-remaining-second"),
            Some(remaining.to_string().as_str())
        );
        assert_eq!(r.header("x-ratelimit-limit-minute"), Some("100"));
        assert_eq!(r.header("ratelimit-limit"), Some("2"));
        assert_eq!(r.header("ratelimit-reset"), Some("1"));
    }
    let r = get(&c, &gw.url("/second"), &[("x-run", &run)]).await;
    assert_eq!(r.status, 429);
    assert_eq!(r.json()["message"], "API rate limit exceeded");
    assert_eq!(r.header("retry-after"), Some("1"));
    assert_eq!(r.header("x-ratelimit-remaining-minute"), Some("98"));
    // The next second is a new window.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let r = get(&c, &gw.url("/second"), &[("x-run", &run)]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-ratelimit-remaining-second"), Some("1"));
    assert_eq!(r.header("x-ratelimit-remaining-minute"), Some("97"));
}

/// A Redis of the test's own, on a port it picked, that it can stop and start again; with
/// `tls`, it speaks TLS only (a self-signed certificate) and wants a password.
struct OwnRedis {
    port: u16,
    child: Option<Child>,
    tls: Option<TempDir>,
}

const TLS_PASSWORD: &str = "s3cret-pw";

impl OwnRedis {
    fn start() -> OwnRedis {
        Self::start_with(false)
    }

    fn start_with(tls: bool) -> OwnRedis {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let tls = tls.then(|| {
            let dir = TempDir::new("redis-tls");
            let ok = Command::new("openssl")
                .args([
                    "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                ])
                .args(["-subj", "/CN=localhost", "-keyout"])
                .arg(dir.path().join("key.pem"))
                .arg("-out")
                .arg(dir.path().join("cert.pem"))
                .stderr(Stdio::null())
                .status()
                .expect("openssl")
                .success();
            assert!(ok, "openssl req");
            dir
        });
        let mut r = OwnRedis {
            port,
            child: None,
            tls,
        };
        r.restart();
        r
    }

    fn ping(&self) -> String {
        let mut cmd = Command::new("redis-cli");
        cmd.args(["-h", "127.0.0.1", "-p", &self.port.to_string()]);
        if self.tls.is_some() {
            cmd.args([
                "--tls",
                "--insecure",
                "--no-auth-warning",
                "-a",
                TLS_PASSWORD,
            ]);
        }
        let out = cmd.arg("PING").output().expect("redis-cli");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    fn restart(&mut self) {
        let mut cmd = Command::new("redis-server");
        cmd.args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]);
        match &self.tls {
            None => {
                cmd.args(["--port", &self.port.to_string()]);
            }
            Some(dir) => {
                let file = |f: &str| dir.path().join(f).display().to_string();
                cmd.args(["--port", "0", "--tls-port", &self.port.to_string()])
                    .args(["--tls-cert-file", &file("cert.pem")])
                    .args(["--tls-key-file", &file("key.pem")])
                    .args(["--tls-ca-cert-file", &file("cert.pem")])
                    .args(["--tls-auth-clients", "no", "--requirepass", TLS_PASSWORD]);
            }
        }
        let child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.ping() != "PONG" {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_and_password() {
    let redis = OwnRedis::start_with(true);
    let up = Upstream::start("u");
    let route = |name: &str, verify: bool| {
        format!(
            r#"  - name: {name}
    paths: [/{name}]
    plugins:
    - name: rate-limiting
      config:
        minute: 2
        limit_by: ip
        fault_tolerant: false
        policy: redis
        redis: {{host: 127.0.0.1, port: {port}, password: {TLS_PASSWORD}, ssl: true, ssl_verify: {verify}, timeout: 1000}}
"#,
            port = redis.port
        )
    };
    let config = format!(
        "_format_version: \"3.0\"\nservices:\n- name: s\n  url: http://{}\n  routes:\n{}{}",
        up.addr,
        route("insecure", false),
        route("verified", true)
    );
    let gw = Gateway::with_config(&config).start();
    let c = client();
    for remaining in ["1", "0"] {
        let r = get(&c, &gw.url("/insecure"), &[]).await;
        assert_eq!(r.status, 200, "{}\n{}", r.text(), gw.log_text());
        assert_eq!(r.header("x-ratelimit-remaining-minute"), Some(remaining));
    }
    assert_eq!(get(&c, &gw.url("/insecure"), &[]).await.status, 429);
    // A self-signed certificate does not pass verification: Redis is unusable, and with
    // fault_tolerant off that is a 500.
    let r = get(&c, &gw.url("/verified"), &[]).await;
    assert_eq!(r.status, 500, "{}", r.text());
    assert!(!gw.log_text().contains(TLS_PASSWORD), "{}", gw.log_text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_tolerant_passes_or_fails_while_redis_is_down_and_counting_resumes() {
    let mut redis = OwnRedis::start();
    let up = Upstream::start("u");
    let config = format!(
        r#"_format_version: "3.0"
services:
- name: s
  url: http://{}
  routes:
  - name: tolerant
    paths: [/tolerant]
    plugins:
    - name: rate-limiting
      config:
        hour: 1000
        limit_by: ip
        policy: redis
        redis: {{host: 127.0.0.1, port: {port}, timeout: 500}}
  - name: strict
    paths: [/strict]
    plugins:
    - name: rate-limiting
      config:
        hour: 1000
        limit_by: ip
        fault_tolerant: false
        policy: redis
        redis: {{host: 127.0.0.1, port: {port}, timeout: 500}}
"#,
        up.addr,
        port = redis.port
    );
    let gw = Gateway::with_config(&config).start();
    let c = client();
    for path in ["/tolerant", "/strict"] {
        let r = get(&c, &gw.url(path), &[]).await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.header("x-ratelimit-remaining-hour"), Some("999"));
    }

    redis.kill();
    for _ in 0..10 {
        let started = Instant::now();
        let r = get(&c, &gw.url("/tolerant"), &[]).await;
        assert_eq!(r.status, 200, "{}", r.text());
        // Kong proxies without rate-limit headers.
        assert!(r.header("x-ratelimit-limit-hour").is_none());
        assert!(r.header("ratelimit-remaining").is_none());
        let r = get(&c, &gw.url("/strict"), &[]).await;
        assert_eq!(r.status, 500, "{}", r.text());
        assert_eq!(r.json()["message"], "An unexpected error occurred");
        // Failing fast: never more than the configured timeout.
        assert!(
            started.elapsed() < Duration::from_millis(1500),
            "{:?}",
            started.elapsed()
        );
    }
    let outage_lines = |log: &str| {
        log.lines()
            .filter(|l| l.contains("redis unreachable"))
            .count()
    };
    assert_eq!(outage_lines(&gw.log_text()), 1, "{}", gw.log_text());

    redis.restart();
    // Counting resumes by itself; the new Redis starts from zero.
    eventually(Duration::from_secs(10), "counting resumes", || async {
        get(&c, &gw.url("/tolerant"), &[])
            .await
            .header("x-ratelimit-remaining-hour")
            == Some("999")
    })
    .await;
    let r = get(&c, &gw.url("/strict"), &[]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("x-ratelimit-remaining-hour"), Some("999"));
    let r = get(&c, &gw.url("/tolerant"), &[]).await;
    assert_eq!(r.header("x-ratelimit-remaining-hour"), Some("998"));
    assert_eq!(outage_lines(&gw.log_text()), 1, "{}", gw.log_text());
    assert!(gw.log_text().contains("redis reachable again"));
}
