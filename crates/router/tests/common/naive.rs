//! A naive reference matcher (every route split and sorted by Kong's priority, the first part
//! whose every field matches wins) and proptest generators of routes and requests over a small
//! alphabet, so that overlaps and ties are frequent.

use super::{Req, net};
use proptest::prelude::*;
use regex::Regex;
use silverback_router::{NetMatch, RouteSpec, normalize_path};
use uuid::Uuid;

// ------------------------------------------------------------------ naive reference

struct Part {
    route: usize,
    id: Uuid,
    priority: u64,
    paths: Vec<String>,
}

fn split(route: &RouteSpec) -> Vec<(Uuid, Vec<String>)> {
    let key = |p: &String| {
        if p.starts_with('~') {
            None
        } else {
            Some(p.len())
        }
    };
    let mut groups: Vec<(Option<usize>, Vec<String>)> = Vec::new();
    for p in &route.paths {
        match groups.iter_mut().find(|(k, _)| *k == key(p)) {
            Some((_, g)) => g.push(p.clone()),
            None => groups.push((key(p), vec![p.clone()])),
        }
    }
    if groups.len() <= 1 {
        return vec![(route.id, groups.pop().map(|g| g.1).unwrap_or_default())];
    }
    let ns = Uuid::parse_str("7f145bf9-0dce-4f91-98eb-debbce4b9f6b").unwrap();
    groups
        .into_iter()
        .enumerate()
        .map(|(i, (_, g))| {
            (
                Uuid::new_v5(&ns, format!("{}#{}", route.id, i + 1).as_bytes()),
                g,
            )
        })
        .collect()
}

/// Kong's `get_priority` as it actually runs (see `priority.rs`): the match weight, header count
/// and `regex_priority` shifts are 32-bit, so this ORs all of them in 32 bits (as Kong does when
/// no 64-bit operand is present) and sign-extends the `int32` result once, which equals
/// sign-extending each operand; only the plain-host and regex bits are 64-bit.
fn priority(r: &RouteSpec, paths: &[String]) -> u64 {
    let weight = [
        !r.sources.is_empty(),
        !r.destinations.is_empty(),
        !r.methods.is_empty(),
        !r.hosts.is_empty(),
        !r.headers.is_empty(),
        !r.snis.is_empty(),
        !paths.is_empty(),
    ]
    .into_iter()
    .filter(|b| *b)
    .count() as u32;
    let plain = !r.hosts.is_empty() && r.hosts.iter().all(|h| !h.contains('*'));
    let regex = paths.first().is_some_and(|p| p.starts_with('~'));
    let len = if regex {
        0
    } else {
        paths.first().map_or(0, |p| p.len() as u32)
    };
    let rp = if regex { r.regex_priority as u32 } else { 0 };
    let low: u32 =
        (weight << 29) | ((r.headers.len().min(255) as u32) << 20) | (rp << 19) | (len & 0x7FFFF);
    (low as i32 as i64 as u64) | (u64::from(plain) << 60) | (u64::from(regex) << 51)
}

fn name_matches(pattern: &str, name: &str) -> bool {
    let pattern = pattern.to_ascii_lowercase();
    if let Some(s) = pattern.strip_prefix('*') {
        name.ends_with(s)
    } else if let Some(p) = pattern.strip_suffix('*') {
        name.starts_with(p)
    } else {
        name == pattern
    }
}

fn host_matches(route_host: &str, req: &Req) -> bool {
    // The alphabet has no IPv6 literals, so splitting at ':' is enough here.
    let (name, port) = match req.host.split_once(':') {
        Some((n, p)) => (n.to_ascii_lowercase(), p.parse().unwrap()),
        None => (req.host.to_ascii_lowercase(), req.dst.port()),
    };
    if name.is_empty() {
        return false;
    }
    match route_host.split_once(':') {
        Some((h, p)) => p.parse::<u16>().unwrap() == port && name_matches(h, &name),
        None => name_matches(route_host, &name),
    }
}

fn nets_match(list: &[NetMatch], addr: std::net::SocketAddr) -> bool {
    list.is_empty()
        || list.iter().any(|n| {
            n.ip.is_none_or(|ip| ip.contains(&addr.ip())) && n.port.is_none_or(|p| p == addr.port())
        })
}

fn headers_match(r: &RouteSpec, req: &Req) -> bool {
    r.headers.iter().all(|(name, values)| {
        let name = name.to_ascii_lowercase().replace('_', "-");
        req.headers.get_all(name.as_str()).iter().any(|v| {
            let v = v.to_str().unwrap().to_lowercase();
            values.iter().any(|want| match want.strip_prefix("~*") {
                Some(re) => Regex::new(&re.to_ascii_lowercase()).unwrap().is_match(&v),
                None => want.to_ascii_lowercase() == v,
            })
        })
    })
}

/// (matched_len, positional captures) of the first path that matches, in configured order.
fn path_match(paths: &[String], path: &str) -> Option<(usize, Option<Vec<Option<String>>>)> {
    if paths.is_empty() {
        return Some((0, None));
    }
    paths.iter().find_map(|p| match p.strip_prefix('~') {
        None => path.starts_with(p.as_str()).then_some((p.len(), None)),
        Some(body) => {
            let re = Regex::new(&format!("^{}", body.replace("?<", "?P<"))).unwrap();
            let caps = re.captures(path)?;
            let all: Vec<Option<String>> = caps
                .iter()
                .map(|m| m.map(|m| m.as_str().to_string()))
                .collect();
            let any_group = all.iter().skip(1).any(Option::is_some);
            Some((caps[0].len(), any_group.then_some(all)))
        }
    })
}

pub type Outcome = Option<(usize, usize, Option<Vec<Option<String>>>)>;

pub fn naive(routes: &[RouteSpec], req: &Req) -> Outcome {
    let path = normalize_path(&req.path);
    let mut parts: Vec<Part> = routes
        .iter()
        .enumerate()
        .flat_map(|(i, r)| {
            split(r).into_iter().map(move |(id, paths)| Part {
                route: i,
                id,
                priority: priority(r, &paths),
                paths,
            })
        })
        .collect();
    parts.sort_by(|a, b| {
        (b.priority, b.id)
            .cmp(&(a.priority, a.id))
            .then(a.route.cmp(&b.route))
    });
    parts.iter().find_map(|part| {
        let r = &routes[part.route];
        let ok = (r.methods.is_empty() || r.methods.contains(&req.method))
            && (r.hosts.is_empty() || r.hosts.iter().any(|h| host_matches(h, req)))
            && (r.snis.is_empty()
                || !req.https
                || req.sni.as_deref().is_some_and(|s| {
                    r.snis.iter().any(|p| {
                        let p = p.strip_suffix('.').unwrap_or(p);
                        name_matches(p, &s.to_ascii_lowercase())
                    })
                }))
            && nets_match(&r.sources, req.src)
            && nets_match(&r.destinations, req.dst)
            && headers_match(r, req);
        if !ok {
            return None;
        }
        let (len, caps) = path_match(&part.paths, &path)?;
        Some((part.route, len, caps))
    })
}

// ------------------------------------------------------------------ generators

pub fn pick<T: Clone + std::fmt::Debug + 'static>(
    items: Vec<T>,
    max: usize,
) -> impl Strategy<Value = Vec<T>> {
    prop::collection::vec(prop::sample::select(items), 0..=max)
}

pub fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

pub fn route_strategy() -> impl Strategy<Value = RouteSpec> {
    let methods = pick(s(&["GET", "POST"]), 2);
    let hosts = pick(
        s(&[
            "a.com",
            "b.com",
            "*.a.com",
            "a.*",
            "x.a.com",
            "a.com:8080",
            "*.com:9000",
            "A.com",
            "*a.com",
        ]),
        3,
    );
    let paths = pick(
        s(&[
            "/",
            "/a",
            "/ab",
            "/a/b",
            "/b",
            "/b/c",
            "~/a",
            "~/a/(?<x>[a-z]+)",
            "~/(a|b)/c",
            "~/a(b)?$",
            "~/[ab]+$",
            "~/b|/a/b",
            "~/a/(?P<y>b)(c)?",
            r"~/a/\d+$",
            "~/(?i)A/B",
        ]),
        3,
    );
    let headers = pick(
        vec![
            ("x-v".to_string(), s(&["1"])),
            ("X-V".to_string(), s(&["2", r"~*^V\d"])),
            ("x_t".to_string(), s(&["a"])),
        ],
        2,
    );
    let snis = pick(s(&["a.com", "*.a.com", "a.*", "b.com."]), 2);
    let sources = pick(
        vec![
            net(Some("10.0.0.0/8"), None),
            net(None, Some(1000)),
            net(Some("10.0.0.1"), Some(2000)),
        ],
        2,
    );
    let destinations = pick(
        vec![
            net(Some("192.168.0.0/16"), Some(8080)),
            net(None, Some(9000)),
            net(Some("127.0.0.1"), None),
        ],
        2,
    );
    (
        (any::<u128>(), methods, hosts, paths),
        (
            headers,
            snis,
            sources,
            destinations,
            prop::sample::select(vec![-1i64, 0, 1, 2]),
        ),
    )
        .prop_map(
            |((id, methods, hosts, paths), (headers, snis, sources, destinations, rp))| RouteSpec {
                id: Uuid::from_u128(id),
                methods,
                hosts,
                paths,
                headers,
                snis,
                sources,
                destinations,
                regex_priority: rp,
            },
        )
}

pub fn request_strategy() -> impl Strategy<Value = Req> {
    let base = (
        prop::sample::select(s(&["GET", "POST", "PUT"])),
        prop::sample::select(s(&[
            "",
            "a.com",
            "x.a.com",
            "y.x.a.com",
            "b.com",
            "a.org",
            "A.COM",
            "a.com:8080",
            "x.a.com:9000",
            "b.com:9000",
            "ba.com",
        ])),
        prop::sample::select(s(&[
            "/",
            "/a",
            "/ab",
            "/a/b",
            "/a/b/c",
            "/a/bc",
            "/b/c",
            "/%61/b",
            "/a/../b",
            "/abab",
            "/a/xyz",
            "//a",
            "/x/a/b",
            "/a/12",
            "/a/%D9%A3",
            "/A/b",
        ])),
    );
    let extra = (
        any::<bool>(),
        prop::sample::select(vec![
            None,
            Some("a.com"),
            Some("y.a.com"),
            Some("a.net"),
            Some("b.com"),
        ]),
        pick(
            vec![
                ("x-v", "1"),
                ("x-v", "2"),
                ("X-V", "v3"),
                ("x-v", "V9"),
                ("x-t", "a"),
                ("x-t", "A"),
            ],
            3,
        ),
        prop::sample::select(s(&["10.0.0.1:2000", "10.1.2.3:1000", "11.0.0.1:1000"])),
        prop::sample::select(s(&["192.168.0.1:8080", "192.168.0.1:9000", "127.0.0.1:80"])),
    );
    (base, extra).prop_map(|((method, host, path), (https, sni, headers, src, dst))| {
        let mut r = Req::new(&method, &host, &path).src(&src).dst(&dst);
        if https {
            r = r.https(sni);
        }
        for (n, v) in headers {
            r = r.header(n, v);
        }
        r
    })
}
