//! rate-limiting with the redis policy against the real binary and a real Redis: one combined
//! limit across two gateway processes, Kong's keys and expiry, window rollover, and
//! `fault_tolerant` with a Redis that goes away and comes back; then the same with `sync_rate`
//! (counted in each gateway, synced in the background): what nodes see of each other, the
//! bound on how far a limit can be overshot, and requests that never wait on a slow or
//! stopped Redis.
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

/// A config of one service in front of `up` with the given route entries.
fn service_with_routes(up: &Upstream, routes: &[String]) -> String {
    format!(
        "_format_version: \"3.0\"\nservices:\n- name: s\n  url: http://{}\n  routes:\n{}",
        up.addr,
        routes.concat()
    )
}

/// Two gateways with two workers each on `config`.
fn two_gateways(config: &str) -> (Gateway, Gateway) {
    let start = || {
        Gateway::with_config(config)
            .setting("worker_threads", "2")
            .start()
    };
    (start(), start())
}

/// `n` concurrent requests with `x-run: run`, alternately on `a` and `b`; how many were
/// admitted and how many refused.
async fn burst(a: &Gateway, b: &Gateway, path: &str, run: &str, n: usize) -> (u64, u64) {
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let url = if i % 2 == 0 { a.url(path) } else { b.url(path) };
            let run = run.to_string();
            tokio::spawn(async move { get(&client(), &url, &[("x-run", &run)]).await.status })
        })
        .collect();
    let (mut ok, mut limited) = (0, 0);
    for t in tasks {
        match t.await.unwrap() {
            200 => ok += 1,
            429 => limited += 1,
            s => panic!("unexpected {s}"),
        }
    }
    (ok, limited)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_gateways_sharing_redis_enforce_one_limit_exactly() {
    let up = Upstream::start("u");
    let (a, b) = two_gateways(&routes(&up, 6379, 3, ""));
    let run = unique();
    let (ok, limited) = burst(&a, &b, "/burst", &run, 120).await;
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

/// Many concurrent requests through one gateway, whose takes share script calls: exactly the
/// limit pass, and each admitted one saw its own count (the remaining values are limit - 1
/// down to 0, each once), as counting them one at a time gives.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_requests_on_one_gateway_are_counted_one_at_a_time() {
    clear_of_hour_end(15).await;
    let up = Upstream::start("u");
    let route = r#"  - name: many
    paths: [/many]
    plugins:
    - name: rate-limiting
      config:
        hour: 40
        limit_by: header
        header_name: x-run
        policy: redis
        redis: {host: 127.0.0.1, port: 6379, database: 3}
"#;
    let gw = Gateway::with_config(&service_with_routes(&up, &[route.to_string()]))
        .setting("worker_threads", "2")
        .start();
    let run = unique();
    let tasks: Vec<_> = (0..300)
        .map(|_| {
            let (url, run) = (gw.url("/many"), run.clone());
            tokio::spawn(async move {
                let r = get(&client(), &url, &[("x-run", &run)]).await;
                let remaining: u64 = r
                    .header("x-ratelimit-remaining-hour")
                    .expect("remaining")
                    .parse()
                    .unwrap();
                (r.status, remaining)
            })
        })
        .collect();
    let mut remaining_admitted = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            (200, remaining) => remaining_admitted.push(remaining),
            (429, remaining) => assert_eq!(remaining, 0),
            (s, _) => panic!("unexpected {s}"),
        }
    }
    remaining_admitted.sort_unstable();
    assert_eq!(remaining_admitted, (0..40).collect::<Vec<u64>>());
    assert_eq!(redis_total(6379, 3, &run), 40);
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

    /// Sends a signal to redis-server (STOP: it keeps its connections and answers nothing).
    fn signal(&self, sig: &str) {
        let pid = self.child.as_ref().expect("running").id();
        let ok = Command::new("kill")
            .args([&format!("-{sig}"), &pid.to_string()])
            .status()
            .expect("kill")
            .success();
        assert!(ok, "kill -{sig} {pid}");
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
        if self.child.is_some() {
            self.signal("CONT");
        }
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
    let config = service_with_routes(&up, &[route("insecure", false), route("verified", true)]);
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

// ---- sync_rate: counted in each gateway, synced with Redis in the background ----

/// The value of the one counter whose key holds `identifier` (0 when there is none yet).
fn redis_total(port: u16, db: u32, identifier: &str) -> u64 {
    let keys = redis_cli(
        port,
        db,
        &[
            "--scan",
            "--pattern",
            &format!("ratelimit:*:{identifier}:*"),
        ],
    );
    let keys: Vec<&str> = keys.lines().collect();
    match keys.as_slice() {
        [] => 0,
        [key] => redis_cli(port, db, &["GET", key]).parse().unwrap(),
        keys => panic!("one counter expected: {keys:?}"),
    }
}

/// Waits until Redis holds `want` for the counter of `identifier`.
async fn synced(port: u16, db: u32, identifier: &str, want: u64) {
    eventually(
        Duration::from_secs(5),
        &format!("{identifier}: {want} in redis"),
        || async { redis_total(port, db, identifier) == want },
    )
    .await;
}

/// Not within `margin` seconds of the end of the current hour, so that a test's requests
/// fall in one hour window.
async fn clear_of_hour_end(margin: u64) {
    let into = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        % 3600;
    if into + margin >= 3600 {
        tokio::time::sleep(Duration::from_secs(3600 - into + 1)).await;
    }
}

/// A route counting `hour` requests per `x-run` header in the given Redis, synced every
/// 0.1 s, with extra config lines.
fn sync_route(name: &str, hour: u64, port: u16, db: u32, extra: &str) -> String {
    format!(
        r#"  - name: {name}
    paths: [/{name}]
    plugins:
    - name: rate-limiting
      config:
        hour: {hour}
        limit_by: header
        header_name: x-run
        policy: redis
        sync_rate: 0.1
        redis: {{host: 127.0.0.1, port: {port}, database: {db}, timeout: 1000}}
{extra}"#
    )
}

/// Requests alternate between two gateways, and each is waited for until its gateway has
/// synced it. A gateway then knows every request up to its own previous one (its last sync
/// read the total back) but not the other gateway's latest: `remaining` lags one request
/// behind, and the limit (6) is overshot by exactly one. In general a node decides on what
/// it knew at its last sync plus its own increments since, so n nodes overshoot by what the
/// others admitted since then; here that is one request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_rate_gateways_see_each_others_requests_and_overshoot_by_at_most_one() {
    clear_of_hour_end(15).await;
    let up = Upstream::start("u");
    let config = service_with_routes(&up, &[sync_route("sync", 6, 6379, 5, "")]);
    let a = Gateway::with_config(&config).start();
    let b = Gateway::with_config(&config).start();
    let c = client();
    let run = unique();
    // Request k (from 1) on a (odd) or b (even): a node that never synced this counter knows
    // only its own request; later a node's remaining is 6 - 1 - (requests up to k - 2).
    let expected = [
        Some("5"),
        Some("5"),
        Some("4"),
        Some("3"),
        Some("2"),
        Some("1"),
        Some("0"),
        None,
        None,
    ];
    let mut admitted = 0;
    for (k, want) in expected.into_iter().enumerate() {
        let (gw, node) = if k % 2 == 0 { (&a, "a") } else { (&b, "b") };
        let r = get(&c, &gw.url("/sync"), &[("x-run", &run)]).await;
        let k = k + 1;
        match want {
            Some(remaining) => {
                assert_eq!(r.status, 200, "request {k} on {node}: {}", r.text());
                assert_eq!(
                    r.header("x-ratelimit-remaining-hour"),
                    Some(remaining),
                    "request {k} on {node}"
                );
                admitted += 1;
                synced(6379, 5, &run, admitted).await;
            }
            None => {
                assert_eq!(r.status, 429, "request {k} on {node}: {}", r.text());
                assert_eq!(r.header("x-ratelimit-remaining-hour"), Some("0"));
            }
        }
    }
    // Refused requests are counted nowhere, admitted ones once.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(redis_total(6379, 5, &run), 7);
}

/// A concurrent burst on two gateways before either has synced. The bound asserted is
/// limit <= admitted <= 2 x limit, and it cannot fail by chance: a node's view of a counter
/// (the total at its last sync plus its own increments since) never exceeds the requests
/// really admitted, so a node refuses only once the limit is really reached, and it always
/// includes the node's own requests, so no node admits more than the limit by itself.
/// Once both have synced, each admits at most one more (the request that makes it sync
/// after the other's) and then refuses.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sync_rate_burst_on_two_gateways_stays_between_one_and_two_limits() {
    clear_of_hour_end(15).await;
    let up = Upstream::start("u");
    let (a, b) = two_gateways(&service_with_routes(
        &up,
        &[sync_route("burst", 10, 6379, 5, "")],
    ));
    let run = unique();
    let (admitted, _) = burst(&a, &b, "/burst", &run, 60).await;
    assert!((10..=20).contains(&admitted), "{admitted} admitted");
    synced(6379, 5, &run, admitted).await;

    let c = client();
    let mut more = 0;
    for round in 0..2 {
        for gw in [&a, &b] {
            let r = get(&c, &gw.url("/burst"), &[("x-run", &run)]).await;
            match (round, r.status) {
                (0, 200) => more += 1,
                (_, 429) => {}
                (_, s) => panic!("round {round}: unexpected {s}"),
            }
            synced(6379, 5, &run, admitted + more).await;
        }
    }
    assert!(admitted + more <= 20, "{admitted} + {more} admitted");
}

/// Redis stopped (SIGSTOP: connections open, no answers) while requests keep coming: none
/// waits on it (each answers well within Redis's 1 s timeout, as a synchronous policy could
/// not), fault_tolerant lets them through, once a sync has failed the strict route answers
/// 500, the outage is logged once. When Redis answers again the sync that timed out, sent
/// again, counts once: each counter ends at exactly the requests counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_rate_requests_never_wait_on_a_stopped_redis_and_count_once() {
    clear_of_hour_end(30).await;
    let redis = OwnRedis::start();
    let up = Upstream::start("u");
    let config = service_with_routes(
        &up,
        &[
            sync_route("tolerant", 1000, redis.port, 0, ""),
            sync_route(
                "strict",
                1000,
                redis.port,
                0,
                "        fault_tolerant: false\n",
            ),
        ],
    );
    let gw = Gateway::with_config(&config).start();
    let c = client();
    let tolerant = |c: &HttpClient| {
        let (c, url) = (c.clone(), gw.url("/tolerant"));
        async move { get(&c, &url, &[("x-run", "tolerant")]).await }
    };
    let strict = |c: &HttpClient| {
        let (c, url) = (c.clone(), gw.url("/strict"));
        async move { get(&c, &url, &[("x-run", "strict")]).await }
    };
    assert_eq!(tolerant(&c).await.status, 200);
    assert_eq!(strict(&c).await.status, 200);
    synced(redis.port, 0, "tolerant", 1).await;
    synced(redis.port, 0, "strict", 1).await;
    let (mut counted_tolerant, mut counted_strict) = (1, 1);

    redis.signal("STOP");
    let stopped = Instant::now();
    let mut strict_failed = 0;
    let mut tolerant_uncounted = 0;
    while stopped.elapsed() < Duration::from_secs(3) {
        let started = Instant::now();
        let r = tolerant(&c).await;
        assert_eq!(r.status, 200, "{}", r.text());
        if r.header("x-ratelimit-remaining-hour").is_some() {
            counted_tolerant += 1;
        } else {
            tolerant_uncounted += 1;
        }
        let r = strict(&c).await;
        match r.status {
            200 => counted_strict += 1,
            500 => {
                assert_eq!(r.json()["message"], "An unexpected error occurred");
                strict_failed += 1;
            }
            s => panic!("unexpected {s}: {}", r.text()),
        }
        assert!(
            started.elapsed() < Duration::from_millis(300),
            "two requests took {:?}",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The first sync fails after the 1 s timeout; from then on Redis counts as down.
    assert!(strict_failed > 0, "the strict route never failed");
    assert!(tolerant_uncounted > 0, "tolerant requests always counted");
    let outage_lines = |log: &str| {
        log.lines()
            .filter(|l| l.contains("redis unreachable"))
            .count()
    };
    assert_eq!(outage_lines(&gw.log_text()), 1, "{}", gw.log_text());

    redis.signal("CONT");
    let resumed = Instant::now();
    while strict(&c).await.status != 200 {
        assert!(
            resumed.elapsed() < Duration::from_secs(10),
            "counting did not resume"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    counted_strict += 1;
    synced(redis.port, 0, "tolerant", counted_tolerant).await;
    synced(redis.port, 0, "strict", counted_strict).await;
    // The copies of the timed-out sync that Redis ran late did not count again.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(redis_total(redis.port, 0, "tolerant"), counted_tolerant);
    assert_eq!(redis_total(redis.port, 0, "strict"), counted_strict);
}

/// Redis killed and started again, empty: requests counted before a sync noticed the outage
/// are not lost, they reach the new Redis; requests in between pass uncounted (fault_tolerant)
/// and never wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_rate_keeps_increments_across_a_redis_restart() {
    clear_of_hour_end(30).await;
    let mut redis = OwnRedis::start();
    let up = Upstream::start("u");
    let route =
        sync_route("kept", 1000, redis.port, 0, "").replace("sync_rate: 0.1", "sync_rate: 1");
    let gw = Gateway::with_config(&service_with_routes(&up, &[route])).start();
    let c = client();
    let url = gw.url("/kept");
    let kept = || get(&c, &url, &[("x-run", "kept")]);
    assert_eq!(kept().await.status, 200);
    synced(redis.port, 0, "kept", 1).await;

    redis.kill();
    // Nothing was left to sync, so no sync has failed yet: these are counted here.
    let mut counted = 0;
    for _ in 0..2 {
        let r = kept().await;
        assert_eq!(r.status, 200);
        if r.header("x-ratelimit-remaining-hour").is_some() {
            counted += 1;
        }
    }
    assert!(
        counted > 0,
        "no request counted before the outage was noticed"
    );
    // Within about a second the sync fails: requests pass uncounted, quickly.
    let killed = Instant::now();
    loop {
        let started = Instant::now();
        let r = kept().await;
        assert!(
            started.elapsed() < Duration::from_millis(300),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(r.status, 200);
        if r.header("x-ratelimit-remaining-hour").is_none() {
            break;
        }
        counted += 1;
        assert!(
            killed.elapsed() < Duration::from_secs(5),
            "the outage was not noticed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    redis.restart();
    synced(redis.port, 0, "kept", counted).await;
}
