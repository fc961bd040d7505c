//! Router benchmark: builds a realistic 10,000-route configuration and measures build time and
//! per-call `find` latency over a randomized mix of hits and misses.
//!
//! Routes: ~45% exact hosts (about 2,500 names, some routes with two), ~15% wildcard hosts
//! (`*.x.tld` and `word.*`), ~40% host-less; prefix paths of depth 1-4 (10% of routes with a
//! second prefix), ~8% regex paths with named captures and a `regex_priority`, a few path-less
//! host routes; 25% with a method, 8% with a header (some `~*` regexes), 2% with a source CIDR.
//! Requests: 200,000 drawn from route hosts / unknown hosts / no host and from route paths /
//! random prefixes / garbage, with random methods and an optional header.
//!
//! Rebuilds: `Router::rebuild` from the built router after one change at a random position (a
//! route replaced by another random route with the same id, one added, one removed, or none),
//! median and max of 30; the last rebuilt router of each kind is checked against a fresh build.
//!
//! Run with `cargo bench -p silverback-router`. Each `find` is timed individually with
//! `Instant` (overhead printed, and included in the figures), over 3 rounds in which the route
//! table is mostly cache-cold for each request; a cache-warm figure (same request repeated) is
//! printed too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use http::{HeaderMap, HeaderValue};
use silverback_router::{NetMatch, Request, RouteSpec, Router};
use std::hint::black_box;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use uuid::Uuid;

const ROUTES: usize = 10_000;
const REQUESTS: usize = 200_000;
const ROUNDS: usize = 3;
/// Rebuilds timed per kind of change.
const REBUILDS: usize = 30;

/// SplitMix64: a small deterministic generator so runs are comparable.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

#[rustfmt::skip]
const WORDS: &[&str] = &[
    "api", "users", "orders", "items", "v1", "v2", "v3", "accounts", "billing", "search", "admin",
    "status", "health", "profile", "cart", "checkout", "catalog", "media", "files", "reports",
    "events", "auth", "login", "tokens", "inventory", "shipping", "reviews", "tags", "teams",
    "projects",
];
const TLDS: &[&str] = &["com", "net", "org", "io"];
const REQUEST_METHODS: [&str; 6] = ["GET", "GET", "GET", "POST", "PUT", "DELETE"];

fn segment(rng: &mut Rng) -> String {
    let w = rng.pick(WORDS);
    if rng.chance(40) {
        format!("{w}{}", rng.below(200))
    } else {
        (*w).to_string()
    }
}

fn prefix_path(rng: &mut Rng) -> String {
    let depth = 1 + rng.below(4);
    (0..depth).map(|_| format!("/{}", segment(rng))).collect()
}

fn host_name(rng: &mut Rng, i: usize) -> String {
    format!("svc{}.{}.{}", i % 2500, rng.pick(WORDS), rng.pick(TLDS))
}

/// A generated route plus a request path/host that should reach it (not guaranteed: a
/// higher-priority route may win).
struct Generated {
    routes: Vec<RouteSpec>,
    hosts: Vec<String>,
    paths: Vec<String>,
}

/// One random route of the mix described above, with a host and a path that should reach it.
fn generate_route(rng: &mut Rng, i: usize) -> (RouteSpec, Option<String>, Option<String>) {
    let mut r = RouteSpec {
        id: Uuid::from_u64_pair(rng.next(), rng.next()),
        ..Default::default()
    };
    let mut host = None;
    let mut path = None;
    // Hosts: 45% exact, 15% wildcard, 40% host-less.
    match rng.below(100) {
        0..45 => {
            let h = host_name(rng, i);
            host = Some(h.clone());
            if rng.chance(10) {
                r.hosts = vec![h, host_name(rng, i + 1)];
            } else {
                r.hosts = vec![h];
            }
        }
        45..60 => {
            let base = format!("{}.{}", rng.pick(WORDS), rng.pick(TLDS));
            if rng.chance(70) {
                host = Some(format!("t{}.{base}", rng.below(50)));
                r.hosts = vec![format!("*.{base}")];
            } else {
                host = Some(format!("{}.{base}", rng.pick(WORDS)));
                r.hosts = vec![format!("{}.*", rng.pick(WORDS))];
            }
        }
        _ => {}
    }
    // Paths: ~8% regex with captures, ~85% prefix (sometimes two), ~7% none (host routes
    // only: a route with neither host nor path would catch everything).
    let roll = rng.below(100);
    let roll = if r.hosts.is_empty() && roll >= 93 {
        50
    } else {
        roll
    };
    match roll {
        0..8 => {
            let base = prefix_path(rng);
            path = Some(format!("{base}/{}/details", rng.below(100_000)));
            r.paths = vec![format!(r"~{base}/(?<id>\d+)/(?<section>[a-z]+)$")];
            r.regex_priority = rng.below(3) as i64;
        }
        8..93 => {
            let p = prefix_path(rng);
            path = Some(format!("{p}/{}", segment(rng)));
            r.paths = vec![p];
            if rng.chance(10) {
                r.paths.push(prefix_path(rng));
            }
        }
        _ => {}
    }
    if rng.chance(25) {
        r.methods = vec![rng.pick(&["GET", "POST", "PUT", "DELETE"]).to_string()];
    }
    if rng.chance(8) {
        let v = if rng.chance(30) {
            r"~*^v\d+$".to_string()
        } else {
            format!("v{}", rng.below(4))
        };
        r.headers = vec![("x-version".into(), vec![v])];
    }
    if rng.chance(2) {
        r.sources = vec![NetMatch {
            ip: Some("10.0.0.0/8".parse().unwrap()),
            port: None,
        }];
    }
    (r, host, path)
}

fn generate(rng: &mut Rng) -> Generated {
    let mut routes = Vec::with_capacity(ROUTES);
    let mut hosts = Vec::new();
    let mut paths = Vec::new();
    for i in 0..ROUTES {
        let (r, host, path) = generate_route(rng, i);
        hosts.extend(host);
        paths.extend(path);
        routes.push(r);
    }
    Generated {
        routes,
        hosts,
        paths,
    }
}

/// The kinds of Admin API change timed for `Router::rebuild`.
#[derive(Clone, Copy, PartialEq)]
enum Change {
    Unchanged,
    Modify,
    Add,
    Remove,
}

/// `routes` after one change at a random position: a route replaced by a new random one with
/// the same id, a new route inserted, or a route removed.
fn change(rng: &mut Rng, routes: &[RouteSpec], kind: Change) -> Vec<RouteSpec> {
    let mut out = routes.to_vec();
    let at = rng.below(routes.len());
    match kind {
        Change::Unchanged => {}
        Change::Modify => {
            let (mut r, _, _) = generate_route(rng, at);
            r.id = out[at].id;
            out[at] = r;
        }
        Change::Add => out.insert(at, generate_route(rng, at).0),
        Change::Remove => {
            out.remove(at);
        }
    }
    out
}

/// Times `base.rebuild` after one change of `kind`, `n` times (a new change each time); checks
/// that the last rebuilt router answers `reqs` as a router built from scratch does.
fn time_rebuilds(
    rng: &mut Rng,
    base: &Router,
    routes: &[RouteSpec],
    kind: Change,
    n: usize,
    reqs: &[OwnedReq],
) -> Vec<Duration> {
    let src: SocketAddr = "10.1.2.3:40000".parse().unwrap();
    let dst: SocketAddr = "10.0.0.10:8000".parse().unwrap();
    let mut times = Vec::with_capacity(n);
    for i in 0..n {
        let specs = change(rng, routes, kind);
        let t = Instant::now();
        let rebuilt = base.rebuild(black_box(&specs)).expect("rebuild");
        times.push(t.elapsed());
        let stats = rebuilt.stats();
        let compiled = usize::from(matches!(kind, Change::Modify | Change::Add));
        assert_eq!(stats.compiled, compiled);
        if i + 1 == n {
            let fresh = Router::build(&specs).expect("build");
            for r in reqs {
                let got = rebuilt.find(&r.as_req(src, dst));
                let want = fresh.find(&r.as_req(src, dst));
                assert_eq!(got, want, "rebuilt router differs on {} {}", r.host, r.path);
            }
        }
        drop(black_box(rebuilt));
    }
    times.sort();
    times
}

struct OwnedReq {
    method: &'static str,
    host: String,
    path: String,
    headers: HeaderMap,
}

fn requests(rng: &mut Rng, g: &Generated) -> Vec<OwnedReq> {
    (0..REQUESTS)
        .map(|_| {
            let host = match rng.below(100) {
                0..70 => rng.pick(&g.hosts).clone(),
                70..85 => format!("unknown{}.example.com", rng.below(1000)),
                _ => String::new(),
            };
            let path = match rng.below(100) {
                0..75 => rng.pick(&g.paths).clone(),
                75..90 => prefix_path(rng),
                _ => format!("/nothing/{}/here", rng.below(1000)),
            };
            let mut headers = HeaderMap::new();
            headers.insert("user-agent", HeaderValue::from_static("bench/1.0"));
            if rng.chance(20) {
                headers.insert("x-version", HeaderValue::from_static("v2"));
            }
            OwnedReq {
                method: REQUEST_METHODS[rng.below(REQUEST_METHODS.len())],
                host,
                path,
                headers,
            }
        })
        .collect()
}

impl OwnedReq {
    fn as_req(&self, src: SocketAddr, dst: SocketAddr) -> Request<'_> {
        Request {
            method: self.method,
            host: &self.host,
            path: &self.path,
            https: false,
            headers: &self.headers,
            sni: None,
            src,
            dst,
        }
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx]
}

fn fmt(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns >= 1_000_000 {
        format!("{:.1} ms", ns as f64 / 1e6)
    } else if ns >= 1_000 {
        format!("{:.2} µs", ns as f64 / 1e3)
    } else {
        format!("{ns} ns")
    }
}

fn main() {
    let mut rng = Rng(0x5eed_2024);
    let g = generate(&mut rng);
    // Loops for a profiler (`perf record ... <bench binary> profile-build`).
    if std::env::args().any(|a| a == "profile-build") {
        for _ in 0..40 {
            black_box(Router::build(black_box(&g.routes)).expect("build"));
        }
        return;
    }
    if std::env::args().any(|a| a == "profile-rebuild") {
        let base = Router::build(&g.routes).expect("build");
        for _ in 0..400 {
            let specs = change(&mut rng, &g.routes, Change::Modify);
            black_box(base.rebuild(black_box(&specs)).expect("rebuild"));
        }
        return;
    }
    let regex = g
        .routes
        .iter()
        .filter(|r| r.paths.iter().any(|p| p.starts_with('~')))
        .count();
    let hostless = g.routes.iter().filter(|r| r.hosts.is_empty()).count();

    let mut builds = Vec::new();
    let mut router = None;
    for _ in 0..5 {
        let t = Instant::now();
        let r = Router::build(&g.routes).expect("build");
        builds.push(t.elapsed());
        router = Some(r);
    }
    let router = router.unwrap();
    builds.sort();

    let reqs = requests(&mut rng, &g);
    let src: SocketAddr = "10.1.2.3:40000".parse().unwrap();
    let dst: SocketAddr = "10.0.0.10:8000".parse().unwrap();
    // Warm-up, and the hit rate.
    let hits = reqs
        .iter()
        .filter(|r| router.find(&r.as_req(src, dst)).is_some())
        .count();

    let mut overhead: Vec<Duration> = (0..100_000)
        .map(|_| {
            let t = Instant::now();
            black_box(());
            t.elapsed()
        })
        .collect();
    overhead.sort();

    let mut samples = Vec::with_capacity(REQUESTS * ROUNDS);
    let mut total = Duration::ZERO;
    for _ in 0..ROUNDS {
        let start = Instant::now();
        for r in &reqs {
            let req = r.as_req(src, dst);
            // The proxy has just parsed the request, so its bytes are in cache: touch them.
            black_box(r.host.bytes().chain(r.path.bytes()).fold(0u8, |a, b| a ^ b));
            black_box(r.headers.get("x-version"));
            let t = Instant::now();
            let m = router.find(black_box(&req));
            let e = t.elapsed();
            black_box(m);
            samples.push(e);
        }
        total += start.elapsed();
    }
    samples.sort();

    // Cache-warm cost: the same request repeated, best of 5, for a sample of requests. The gap
    // to the figures above is the cost of cache misses on a cold route table.
    let mut warm: Vec<Duration> = reqs
        .iter()
        .take(50_000)
        .map(|r| {
            let req = r.as_req(src, dst);
            (0..5)
                .map(|_| {
                    let t = Instant::now();
                    black_box(router.find(black_box(&req)));
                    t.elapsed()
                })
                .min()
                .unwrap()
        })
        .collect();
    warm.sort();

    let check = &reqs[..20_000];
    let rebuilds: Vec<(&str, Vec<Duration>)> = [
        ("unchanged", Change::Unchanged),
        ("1 modified", Change::Modify),
        ("1 added", Change::Add),
        ("1 removed", Change::Remove),
    ]
    .into_iter()
    .map(|(name, kind)| {
        let times = time_rebuilds(&mut rng, &router, &g.routes, kind, REBUILDS, check);
        (name, times)
    })
    .collect();

    println!();
    println!("silverback-router: {ROUTES} routes ({regex} regex, {hostless} host-less)");
    println!("{:<28} {:>12}", "metric", "value");
    println!("{:<28} {:>12}", "build (min of 5)", fmt(builds[0]));
    println!("{:<28} {:>12}", "build (median of 5)", fmt(builds[2]));
    for (name, times) in &rebuilds {
        let label = format!("rebuild, {name}");
        let p50 = fmt(percentile(times, 0.5));
        let max = fmt(*times.last().unwrap());
        println!("{label:<28} {:>12}", format!("{p50} (max {max})"));
    }
    println!(
        "{:<28} {:>12}",
        "requests (hit rate)",
        format!(
            "{} ({:.0}%)",
            REQUESTS,
            100.0 * hits as f64 / REQUESTS as f64
        )
    );
    println!("{:<28} {:>12}", "find p50", fmt(percentile(&samples, 0.50)));
    println!("{:<28} {:>12}", "find p90", fmt(percentile(&samples, 0.90)));
    println!("{:<28} {:>12}", "find p99", fmt(percentile(&samples, 0.99)));
    println!(
        "{:<28} {:>12}",
        "find p99.9",
        fmt(percentile(&samples, 0.999))
    );
    println!("{:<28} {:>12}", "find max", fmt(*samples.last().unwrap()));
    println!(
        "{:<28} {:>12}",
        "find warm p50 (best of 5)",
        fmt(percentile(&warm, 0.50))
    );
    println!(
        "{:<28} {:>12}",
        "find warm p99 (best of 5)",
        fmt(percentile(&warm, 0.99))
    );
    println!(
        "{:<28} {:>12}",
        "find mean (loop incl. timer)",
        fmt(total / (REQUESTS * ROUNDS) as u32)
    );
    println!(
        "{:<28} {:>12}",
        "timer overhead p50",
        fmt(percentile(&overhead, 0.50))
    );
    println!(
        "{:<28} {:>12}",
        "timer overhead p99.9",
        fmt(percentile(&overhead, 0.999))
    );
}
