//! Behaviour of every matching rule and priority tie-break, mostly mirroring cases from Kong's
//! `spec/01-unit/08-router_spec.lua` (traditional_compatible flavor).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Req, net, route, strings};
use silverback_router::{BuildError, RouteSpec, Router};
use std::borrow::Cow;
use uuid::Uuid;

fn find(routes: &[RouteSpec], req: &Req) -> Option<usize> {
    Router::build(routes)
        .unwrap()
        .find(&req.as_req())
        .map(|m| m.route)
}

// ---------------------------------------------------------------- methods

#[test]
fn methods_are_exact() {
    let routes = [route(1, |r| r.methods = strings(&["GET", "POST"]))];
    assert_eq!(find(&routes, &Req::new("GET", "x", "/")), Some(0));
    assert_eq!(find(&routes, &Req::new("POST", "x", "/")), Some(0));
    assert_eq!(find(&routes, &Req::new("PUT", "x", "/")), None);
    assert_eq!(find(&routes, &Req::new("get", "x", "/")), None);
}

// ---------------------------------------------------------------- hosts

#[test]
fn exact_hosts_are_case_insensitive() {
    let routes = [route(1, |r| {
        r.hosts = strings(&["Domain-1.org", "domain-2.org"])
    })];
    assert_eq!(
        find(&routes, &Req::new("GET", "domain-1.org", "/")),
        Some(0)
    );
    assert_eq!(
        find(&routes, &Req::new("GET", "DOMAIN-2.ORG", "/")),
        Some(0)
    );
    assert_eq!(
        find(&routes, &Req::new("GET", "domain-1.org:80", "/")),
        Some(0)
    );
    assert_eq!(find(&routes, &Req::new("GET", "domain-3.org", "/")), None);
    assert_eq!(
        find(&routes, &Req::new("GET", "", "/")),
        None,
        "no Host header"
    );
}

#[test]
fn wildcard_hosts_any_depth() {
    let routes = [
        route(1, |r| r.hosts = strings(&["*.route.com"])),
        route(2, |r| r.hosts = strings(&["route.*"])),
    ];
    assert_eq!(
        find(&routes, &Req::new("GET", "foo.route.com", "/")),
        Some(0)
    );
    assert_eq!(
        find(&routes, &Req::new("GET", "a.b.c.route.com", "/")),
        Some(0)
    );
    assert_eq!(
        find(&routes, &Req::new("GET", "foo.route.com:123", "/")),
        Some(0)
    );
    assert_eq!(find(&routes, &Req::new("GET", "route.org", "/")), Some(1));
    assert_eq!(
        find(&routes, &Req::new("GET", "route.co.uk:1", "/")),
        Some(1)
    );
    assert_eq!(find(&routes, &Req::new("GET", "myroute.org", "/")), None);
    // "route.com" matches `route.*` only: `*.route.com` needs a label before.
    assert_eq!(find(&routes, &Req::new("GET", "route.com", "/")), Some(1));
    assert_eq!(find(&routes, &Req::new("GET", "fooroute.com", "/")), None);
}

#[test]
fn odd_wildcards_still_work() {
    let routes = [
        route(2, |r| r.hosts = strings(&["*route.com"])),
        route(1, |r| r.hosts = strings(&["*"])),
    ];
    assert_eq!(find(&routes, &Req::new("GET", "myroute.com", "/")), Some(0));
    assert_eq!(find(&routes, &Req::new("GET", "other.net", "/")), Some(1));
    assert_eq!(find(&routes, &Req::new("GET", "", "/")), None);
}

#[test]
fn host_port_uses_host_header_port_then_local_port() {
    let routes = [
        route(1, |r| r.hosts = strings(&["domain-1.org"])),
        route(2, |r| r.hosts = strings(&["domain-1.org:321"])),
        route(3, |r| r.hosts = strings(&["domain-3.org:321"])),
    ];
    // Port-specific route wins (plain host bit equal, weight equal, greater id).
    assert_eq!(
        find(&routes, &Req::new("GET", "domain-1.org:321", "/")),
        Some(1)
    );
    assert_eq!(
        find(&routes, &Req::new("GET", "domain-1.org:123", "/")),
        Some(0)
    );
    assert_eq!(
        find(&routes, &Req::new("GET", "domain-3.org:321", "/")),
        Some(2)
    );
    assert_eq!(
        find(&routes, &Req::new("GET", "domain-3.org:123", "/")),
        None
    );
    // No port in Host: the local (dst) port decides.
    let r = Req::new("GET", "domain-3.org", "/").dst("127.0.0.1:321");
    assert_eq!(find(&routes, &r), Some(2));
    let r = Req::new("GET", "domain-3.org", "/").dst("127.0.0.1:8000");
    assert_eq!(find(&routes, &r), None);
    // A port in Host wins over the local port.
    let r = Req::new("GET", "domain-3.org:8000", "/").dst("127.0.0.1:321");
    assert_eq!(find(&routes, &r), None);
}

#[test]
fn wildcard_host_with_port() {
    let routes = [
        route(1, |r| r.hosts = strings(&["*.route.net"])),
        route(2, |r| r.hosts = strings(&["*.route.net:123"])),
    ];
    assert_eq!(
        find(&routes, &Req::new("GET", "a.route.net:123", "/")),
        Some(1)
    );
    assert_eq!(
        find(&routes, &Req::new("GET", "a.route.net:124", "/")),
        Some(0)
    );
}

#[test]
fn ipv6_literal_hosts() {
    let routes = [
        route(1, |r| r.hosts = strings(&["[::1]:8000"])),
        route(2, |r| r.hosts = strings(&["::2", "[::3]"])),
    ];
    assert_eq!(find(&routes, &Req::new("GET", "[::1]:8000", "/")), Some(0));
    assert_eq!(find(&routes, &Req::new("GET", "[::1]:8001", "/")), None);
    let r = Req::new("GET", "[::1]", "/").dst("[::1]:8000");
    assert_eq!(find(&routes, &r), Some(0));
    assert_eq!(find(&routes, &Req::new("GET", "[::2]:1", "/")), Some(1));
    assert_eq!(find(&routes, &Req::new("GET", "[::3]", "/")), Some(1));
}

// ---------------------------------------------------------------- paths

#[test]
fn prefix_paths_are_prefixes_of_the_normalized_path() {
    let routes = [route(1, |r| r.paths = strings(&["/my-route", "/xx-route"]))];
    let router = Router::build(&routes).unwrap();
    let req = Req::get("/my-route/hello");
    let m = router.find(&req.as_req()).unwrap();
    assert_eq!((m.route, m.matched_len), (0, 9));
    assert!(router.find(&Req::get("/xx-route").as_req()).is_some());
    assert!(router.find(&Req::get("/hello/my-route").as_req()).is_none());
    assert!(router.find(&Req::get("/my-rout").as_req()).is_none());
}

#[test]
fn regex_paths_are_anchored_at_the_start_only() {
    let routes = [route(1, |r| r.paths = strings(&[r"~/users/\d+/profile"]))];
    let router = Router::build(&routes).unwrap();
    let req = Req::get("/users/123/profile/x");
    let m = router.find(&req.as_req()).unwrap();
    assert_eq!(m.matched_len, "/users/123/profile".len());
    assert!(m.captures.is_none(), "no groups, no captures");
    assert!(
        router
            .find(&Req::get("/x/users/123/profile").as_req())
            .is_none()
    );
    assert!(
        router
            .find(&Req::get("/users/abc/profile").as_req())
            .is_none()
    );
}

#[test]
fn top_level_alternation_is_only_anchored_on_the_first_branch() {
    // Kong prepends `^` without grouping, so "/b" is searched anywhere.
    let routes = [route(1, |r| r.paths = strings(&["~/a|/b"]))];
    let router = Router::build(&routes).unwrap();
    let req = Req::get("/x/b/c");
    let m = router.find(&req.as_req()).unwrap();
    assert_eq!(
        m.matched_len, 2,
        "length of the matched text, as Kong slices by it"
    );
    assert!(router.find(&Req::get("/x/a").as_req()).is_none());
}

#[test]
fn captures_positional_and_named() {
    let routes = [route(1, |r| {
        r.paths = strings(&[r"~/users/(?P<user_id>\d+)/profile/?(?<scope>[a-z]*)"])
    })];
    let router = Router::build(&routes).unwrap();
    let req = Req::get("/users/1984/profile/email");
    let m = router.find(&req.as_req()).unwrap();
    let c = m.captures.unwrap();
    assert_eq!(
        c.positional().collect::<Vec<_>>(),
        vec![
            Some("/users/1984/profile/email"),
            Some("1984"),
            Some("email")
        ]
    );
    assert_eq!(c.len(), 3);
    assert_eq!(
        c.named().collect::<Vec<_>>(),
        vec![("user_id", "1984"), ("scope", "email")]
    );
    assert_eq!(c.name("user_id"), Some("1984"));
    assert_eq!(c.name("scope"), Some("email"));
    assert_eq!(c.name("missing"), None);
    let req = Req::get("/users/1984/profile");
    let m = router.find(&req.as_req()).unwrap();
    assert_eq!(m.captures.unwrap().name("scope"), Some(""));
}

#[test]
fn captures_with_optional_groups() {
    let routes = [route(1, |r| {
        r.paths = strings(&[r"~/(users/)?1984/(?<subpath>profile)$"])
    })];
    let router = Router::build(&routes).unwrap();
    let c = router
        .find(&Req::get("/1984/profile").as_req())
        .unwrap()
        .captures
        .unwrap();
    assert_eq!(c.get(0), Some("/1984/profile"));
    assert_eq!(c.get(1), None);
    assert_eq!(c.get(2), Some("profile"));
    assert_eq!(c.get(3), None);
    assert_eq!(c.named().count(), 1);
    // Groups exist but none took part: Kong exposes no captures.
    let routes = [route(1, |r| r.paths = strings(&[r"~/a(/b)?"]))];
    let router = Router::build(&routes).unwrap();
    assert!(
        router
            .find(&Req::get("/a").as_req())
            .unwrap()
            .captures
            .is_none()
    );
    assert!(
        router
            .find(&Req::get("/a/b").as_req())
            .unwrap()
            .captures
            .is_some()
    );
}

#[test]
fn captures_are_taken_from_the_normalized_path() {
    let routes = [route(1, |r| {
        r.paths = strings(&[r"~/users/(?P<fullname>[a-zA-Z\s\d%]+)/profile"])
    })];
    let router = Router::build(&routes).unwrap();
    let req = Req::get("/users/%6aohn%20doe/profile");
    let m = router.find(&req.as_req()).unwrap();
    assert_eq!(m.captures.unwrap().name("fullname"), Some("john doe"));
    assert_eq!(m.path, "/users/john doe/profile");
}

#[test]
fn first_matching_regex_in_configuration_order_supplies_captures() {
    let routes = [route(1, |r| {
        r.paths = strings(&[r"~/a/(?<first>\w+)", r"~/(?<second>a)/"])
    })];
    let router = Router::build(&routes).unwrap();
    let c = router
        .find(&Req::get("/a/b").as_req())
        .unwrap()
        .captures
        .unwrap();
    assert_eq!(c.name("first"), Some("b"));
    let c = router
        .find(&Req::get("/a/").as_req())
        .unwrap()
        .captures
        .unwrap();
    assert_eq!(c.name("second"), Some("a"));
}

#[test]
fn normalization_happens_before_matching() {
    let routes = [
        route(1, |r| r.paths = strings(&["/plain/a.b.c"])),
        route(2, |r| r.paths = strings(&["/plain/a.b%58c"])),
        route(3, |r| r.paths = strings(&[r"~/reg%65x/\d+"])),
        route(4, |r| r.paths = strings(&["~/regex-reserved%2Fabc"])),
        route(5, |r| r.paths = strings(&["/api"])),
    ];
    let router = Router::build(&routes).unwrap();
    let get = |p: &str| router.find(&Req::get(p).as_req()).map(|m| m.route);
    assert_eq!(get("/plain/a.b.c"), Some(0));
    // Route paths are used as configured: the request is decoded, the route is not.
    assert_eq!(get("/plain/a.b%58c"), None);
    assert_eq!(get("/plain/a.bXc"), None);
    assert_eq!(get("/regex/123"), None);
    assert_eq!(get("/regex-reserved/abc"), None);
    assert_eq!(get("/regex-reserved%2Fabc"), Some(3));
    assert_eq!(get("/regex-reserved%2fabc"), Some(3));
    assert_eq!(get("/%61pi/x"), Some(4));
    assert_eq!(get("/x/../api"), Some(4));
    assert_eq!(get("//api"), Some(4));
    assert_eq!(get("/api%2Fx"), Some(4));
    // A path that decodes to invalid UTF-8 fails like Kong's router (404).
    assert_eq!(get("/api/%ff"), None);
}

#[test]
fn match_path_is_borrowed_when_already_normalized() {
    let routes = [route(1, |r| r.paths = strings(&["/api"]))];
    let router = Router::build(&routes).unwrap();
    let req = Req::get("/api/v1");
    let m = router.find(&req.as_req()).unwrap();
    assert!(matches!(m.path, Cow::Borrowed("/api/v1")));
    let req = Req::get("/api/./v1");
    assert_eq!(router.find(&req.as_req()).unwrap().path, "/api/v1");
}

// ---------------------------------------------------------------- headers

#[test]
fn headers_names_and_values_are_case_insensitive() {
    let routes = [route(1, |r| {
        r.headers = vec![("Version".into(), strings(&["V1", "v2"]))]
    })];
    assert_eq!(
        find(&routes, &Req::get("/").header("version", "v1")),
        Some(0)
    );
    assert_eq!(
        find(&routes, &Req::get("/").header("VERSION", "V2")),
        Some(0)
    );
    assert_eq!(find(&routes, &Req::get("/").header("version", "v3")), None);
    assert_eq!(find(&routes, &Req::get("/")), None);
}

#[test]
fn any_header_line_may_match_and_commas_are_not_split() {
    let routes = [route(1, |r| {
        r.headers = vec![("x-v".into(), strings(&["b"]))]
    })];
    let r = Req::get("/").header("x-v", "a").header("x-v", "b");
    assert_eq!(find(&routes, &r), Some(0));
    assert_eq!(find(&routes, &Req::get("/").header("x-v", "a, b")), None);
    let routes = [route(1, |r| {
        r.headers = vec![("x-v".into(), strings(&["a, b"]))]
    })];
    assert_eq!(find(&routes, &Req::get("/").header("x-v", "A, B")), Some(0));
}

#[test]
fn every_header_name_must_match() {
    let routes = [route(1, |r| {
        r.headers = vec![
            ("version".into(), strings(&["v1"])),
            ("location".into(), strings(&["us-east"])),
        ]
    })];
    let both = Req::get("/")
        .header("version", "v1")
        .header("location", "us-east");
    assert_eq!(find(&routes, &both), Some(0));
    assert_eq!(find(&routes, &Req::get("/").header("version", "v1")), None);
}

#[test]
fn header_regex_is_unanchored_and_lowercased() {
    let routes = [route(1, |r| {
        r.headers = vec![("x-v".into(), strings(&[r"~*V\d"]))]
    })];
    assert_eq!(
        find(&routes, &Req::get("/").header("x-v", "xxV9yy")),
        Some(0)
    );
    assert_eq!(find(&routes, &Req::get("/").header("x-v", "v")), None);
    // Kong lower-cases the regex text too: `\D` becomes `\d`.
    let routes = [route(1, |r| {
        r.headers = vec![("x-v".into(), strings(&[r"~*^\D$"]))]
    })];
    assert_eq!(find(&routes, &Req::get("/").header("x-v", "7")), Some(0));
    assert_eq!(find(&routes, &Req::get("/").header("x-v", "a")), None);
}

#[test]
fn header_name_dashes_and_underscores_are_equivalent() {
    let routes = [route(1, |r| {
        r.headers = vec![("X_Tenant".into(), strings(&["a"]))]
    })];
    assert_eq!(
        find(&routes, &Req::get("/").header("x-tenant", "a")),
        Some(0)
    );
}

#[test]
fn empty_header_values_are_rejected() {
    let routes = [route(1, |r| r.headers = vec![("x".into(), vec![])])];
    assert!(matches!(
        Router::build(&routes),
        Err(BuildError::EmptyHeaderValues { index: 0, .. })
    ));
}

// ---------------------------------------------------------------- snis

#[test]
fn snis_only_constrain_https() {
    let routes = [route(1, |r| r.snis = strings(&["www.example.org."]))];
    assert_eq!(
        find(&routes, &Req::get("/")),
        Some(0),
        "plain http ignores snis"
    );
    let ok = Req::get("/").https(Some("www.example.org"));
    assert_eq!(find(&routes, &ok), Some(0));
    let ok = Req::get("/").https(Some("WWW.Example.org"));
    assert_eq!(find(&routes, &ok), Some(0));
    assert_eq!(find(&routes, &Req::get("/").https(Some("other.org"))), None);
    assert_eq!(find(&routes, &Req::get("/").https(None)), None);
}

#[test]
fn wildcard_snis() {
    let routes = [
        route(1, |r| r.snis = strings(&["*.sni.test"])),
        route(2, |r| r.snis = strings(&["sni.*"])),
    ];
    assert_eq!(
        find(&routes, &Req::get("/").https(Some("a.b.sni.test"))),
        Some(0)
    );
    assert_eq!(
        find(&routes, &Req::get("/").https(Some("sni.example"))),
        Some(1)
    );
    assert_eq!(find(&routes, &Req::get("/").https(Some("xsni.test"))), None);
}

// ---------------------------------------------------------------- sources / destinations

#[test]
fn sources_and_destinations() {
    let routes = [
        route(1, |r| {
            r.sources = vec![net(Some("10.0.0.0/8"), None), net(None, Some(1234))]
        }),
        route(2, |r| {
            r.destinations = vec![net(Some("192.168.1.1"), Some(80))]
        }),
    ];
    let r = Req::get("/").src("10.9.9.9:5").dst("1.1.1.1:1");
    assert_eq!(find(&routes, &r), Some(0));
    let r = Req::get("/").src("11.0.0.1:1234").dst("1.1.1.1:1");
    assert_eq!(find(&routes, &r), Some(0));
    let r = Req::get("/").src("11.0.0.1:1").dst("192.168.1.1:80");
    assert_eq!(find(&routes, &r), Some(1));
    let r = Req::get("/").src("11.0.0.1:1").dst("192.168.1.1:81");
    assert_eq!(find(&routes, &r), None);
    // IPv4-mapped IPv6 client addresses are compared as IPv4.
    let r = Req::get("/").src("[::ffff:10.1.2.3]:5").dst("1.1.1.1:1");
    assert_eq!(find(&routes, &r), Some(0));
}

// ---------------------------------------------------------------- priorities

#[test]
fn more_fields_win() {
    let routes = [
        route(9, |r| r.paths = strings(&["/my-route"])),
        route(1, |r| {
            r.paths = strings(&["/my"]);
            r.methods = strings(&["GET"]);
        }),
    ];
    assert_eq!(find(&routes, &Req::get("/my-route")), Some(1));
    // Kong edge case: [host] and [uri] have higher priority than [method].
    let routes = [
        route(1, |r| r.hosts = strings(&["domain-2.org"])),
        route(2, |r| r.methods = strings(&["TRACE"])),
        route(3, |r| r.paths = strings(&["/my-route"])),
    ];
    assert_eq!(
        find(&routes, &Req::new("TRACE", "domain-2.org", "/")),
        Some(0)
    );
    assert_eq!(
        find(&routes, &Req::new("TRACE", "domain.org", "/my-route")),
        Some(2)
    );
}

#[test]
fn plain_host_beats_wildcard_host() {
    let routes = [
        route(9, |r| r.hosts = strings(&["*.route.com"])),
        route(1, |r| r.hosts = strings(&["plain.route.com"])),
        route(8, |r| r.hosts = strings(&["plain.*"])),
    ];
    assert_eq!(
        find(&routes, &Req::new("GET", "plain.route.com", "/")),
        Some(1)
    );
    assert_eq!(
        find(&routes, &Req::new("GET", "foo.route.com", "/")),
        Some(0)
    );
}

#[test]
fn plain_host_alone_beats_wildcard_host_plus_path() {
    // Kong's spec only pairs the first two routes. With the third, Kong's 32-bit match-weight
    // shift (weight 2 at bit 30) loses to the plain-host bit 60.
    let routes = [
        route(1, |r| {
            r.hosts = strings(&["*.route.com"]);
            r.paths = strings(&["/path1"]);
        }),
        route(2, |r| {
            r.hosts = strings(&["plain.route.com"]);
            r.paths = strings(&["/path2"]);
        }),
        route(3, |r| r.hosts = strings(&["plain.route.com"])),
    ];
    assert_eq!(
        find(&routes[..2], &Req::new("GET", "plain.route.com", "/path1")),
        Some(0)
    );
    assert_eq!(
        find(&routes, &Req::new("GET", "plain.route.com", "/path1")),
        Some(2)
    );
    assert_eq!(
        find(&routes, &Req::new("GET", "plain.route.com", "/path2")),
        Some(1)
    );
    assert_eq!(
        find(&routes, &Req::new("GET", "plain.route.com", "/x")),
        Some(2)
    );
}

#[test]
fn more_headers_beat_longer_paths() {
    let routes = [
        route(9, |r| {
            r.headers = vec![("version".into(), strings(&["v1"]))];
            r.paths = strings(&["/my-route/hello"]);
        }),
        route(1, |r| {
            r.headers = vec![
                ("version".into(), strings(&["v1"])),
                ("location".into(), strings(&["us-east"])),
            ];
            r.paths = strings(&["/my-route"]);
        }),
    ];
    let req = Req::get("/my-route/hello")
        .header("version", "v1")
        .header("location", "us-east");
    assert_eq!(find(&routes, &req), Some(1));
}

#[test]
fn regex_beats_prefix_with_up_to_three_fields() {
    let routes = [
        route(9, |r| r.paths = strings(&["/users/123/profile"])),
        route(1, |r| r.paths = strings(&[r"~/users/\d+"])),
    ];
    assert_eq!(find(&routes, &Req::get("/users/123/profile")), Some(1));
    // ... and, as Kong computes it, one with more fields: the regex bit 51 outranks weight 2
    // (bit 30 after Kong's 32-bit shift).
    let routes = [
        route(9, |r| {
            r.paths = strings(&["/users"]);
            r.methods = strings(&["GET"]);
        }),
        route(1, |r| r.paths = strings(&[r"~/users/\d+"])),
    ];
    assert_eq!(find(&routes, &Req::get("/users/123")), Some(1));
    // Four fields set bit 31 after the shift, sign-extended over everything above.
    let routes = [
        route(1, |r| r.paths = strings(&[r"~/users/\d+"])),
        route(2, |r| r.hosts = strings(&["domain.org"])),
        route(3, |r| {
            r.hosts = strings(&["*.org"]);
            r.methods = strings(&["GET"]);
            r.headers = vec![("x".into(), strings(&["1"]))];
            r.paths = strings(&["/users"]);
        }),
    ];
    let req = Req::get("/users/123").header("x", "1");
    assert_eq!(find(&routes, &req), Some(2));
    assert_eq!(find(&routes[..2], &req), Some(1), "plain host beats regex");
}

#[test]
fn regex_priority_orders_regexes() {
    let routes = [
        route(9, |r| {
            r.paths = strings(&["~/a.*"]);
            r.regex_priority = -1;
        }),
        route(1, |r| r.paths = strings(&["~/ab"])),
        route(2, |r| {
            r.paths = strings(&["~/a"]);
            r.regex_priority = 5;
        }),
    ];
    // Kong shifts -1 into the top bits: a negative `regex_priority` sorts first.
    assert_eq!(find(&routes, &Req::get("/ab")), Some(0));
    assert_eq!(find(&routes[..2], &Req::get("/ab")), Some(0));
    // Among non-negative values, higher first.
    assert_eq!(find(&routes[1..], &Req::get("/ab")), Some(1), "5 beats 0");
}

#[test]
fn prefix_matching_ignores_regex_priority() {
    let routes = [
        route(1, |r| {
            r.paths = strings(&["/.*"]);
            r.hosts = strings(&["domain-1.org"]);
        }),
        route(2, |r| {
            r.paths = strings(&["/"]);
            r.hosts = strings(&["domain-2.org"]);
            r.regex_priority = 5;
        }),
        route(3, |r| {
            r.paths = strings(&["/v1"]);
            r.hosts = strings(&["domain-2.org"]);
        }),
    ];
    assert_eq!(
        find(&routes, &Req::new("GET", "domain-2.org", "/v1")),
        Some(2)
    );
}

#[test]
fn longer_prefix_wins() {
    let routes = [
        route(9, |r| r.paths = strings(&["/"])),
        route(8, |r| r.paths = strings(&["/my-route"])),
        route(1, |r| r.paths = strings(&["/my-route/hello"])),
    ];
    assert_eq!(find(&routes, &Req::get("/my-route/hello/world")), Some(2));
    assert_eq!(find(&routes, &Req::get("/my-route/x")), Some(1));
    assert_eq!(find(&routes, &Req::get("/foobar")), Some(0));
}

#[test]
fn uuid_breaks_ties_greater_first() {
    let low = Uuid::from_u128(1);
    let high = Uuid::from_u128(u128::MAX - 1);
    let mk = |id: Uuid| RouteSpec {
        id,
        paths: strings(&["/same"]),
        ..Default::default()
    };
    assert_eq!(find(&[mk(low), mk(high)], &Req::get("/same")), Some(1));
    assert_eq!(find(&[mk(high), mk(low)], &Req::get("/same")), Some(0));
}

#[test]
fn split_routes_get_separate_priorities() {
    // Kong: "[both regex and prefix]".
    let routes = [
        route(1, |r| {
            r.paths = strings(&["~/some/thing/else", "/foo"]);
            r.hosts = strings(&["domain-1.org"]);
        }),
        route(2, |r| {
            r.paths = strings(&["/foo/bar"]);
            r.hosts = strings(&["domain-1.org"]);
        }),
    ];
    assert_eq!(
        find(
            &routes,
            &Req::new("GET", "domain-1.org", "/some/thing/else")
        ),
        Some(0)
    );
    assert_eq!(
        find(&routes, &Req::new("GET", "domain-1.org", "/foo/bar")),
        Some(1)
    );
    assert_eq!(
        find(&routes, &Req::new("GET", "domain-1.org", "/foo/baz")),
        Some(0)
    );
    // Kong: "[overlapping prefixes]".
    let routes = [
        route(1, |r| {
            r.paths = strings(&["/foo", "/foo/bar/baz"]);
            r.hosts = strings(&["domain-1.org"]);
        }),
        route(2, |r| {
            r.paths = strings(&["/foo/bar"]);
            r.hosts = strings(&["domain-1.org"]);
        }),
    ];
    let router = Router::build(&routes).unwrap();
    let get = |p: &str| {
        let req = Req::new("GET", "domain-1.org", p);
        router.find(&req.as_req()).map(|m| (m.route, m.matched_len))
    };
    assert_eq!(get("/foo"), Some((0, 4)));
    assert_eq!(get("/foo/bar"), Some((1, 8)));
    assert_eq!(get("/foo/bar/baz/x"), Some((0, 12)));
}

#[test]
fn half_matches_do_not_supersede_other_routes() {
    let routes = [
        route(1, |r| {
            r.hosts = strings(&["host1.com"]);
            r.paths = strings(&["/v1/path"]);
        }),
        route(2, |r| {
            r.hosts = strings(&["host2.com"]);
            r.paths = strings(&["/"]);
        }),
        route(3, |r| {
            r.hosts = strings(&["host.*"]);
            r.methods = strings(&["GET"]);
        }),
        route(4, |r| {
            r.hosts = strings(&["host.*"]);
            r.methods = strings(&["POST"]);
        }),
    ];
    assert_eq!(
        find(&routes, &Req::new("GET", "host1.com", "/v1/path")),
        Some(0)
    );
    assert_eq!(
        find(&routes, &Req::new("GET", "host2.com", "/v1/path")),
        Some(1)
    );
    assert_eq!(find(&routes, &Req::new("GET", "host.com", "/")), Some(2));
    assert_eq!(find(&routes, &Req::new("POST", "host.com", "/")), Some(3));
}

// ---------------------------------------------------------------- build

#[test]
fn invalid_regex_names_route_and_path() {
    let routes = [
        route(1, |r| r.paths = strings(&["/ok"])),
        route(2, |r| r.paths = strings(&["/x", r"~/(?<=a)b"])),
    ];
    let err = Router::build(&routes).unwrap_err();
    match &err {
        BuildError::InvalidPath {
            index,
            id,
            path,
            reason,
        } => {
            assert_eq!(*index, 1);
            assert_eq!(*id, routes[1].id);
            assert_eq!(path, r"~/(?<=a)b");
            assert!(reason.contains("look-around"), "{reason}");
        }
        other => panic!("unexpected {other:?}"),
    }
    let text = err.to_string();
    assert!(
        text.contains("route #1") && text.contains(r"~/(?<=a)b"),
        "{text}"
    );
    let routes = [route(1, |r| {
        r.headers = vec![("x".into(), strings(&["~*("]))]
    })];
    assert!(matches!(
        Router::build(&routes),
        Err(BuildError::InvalidHeaderRegex { index: 0, .. })
    ));
}

#[test]
fn empty_router_and_len() {
    let router = Router::build(&[]).unwrap();
    assert!(router.is_empty());
    assert_eq!(router.len(), 0);
    assert!(router.find(&Req::get("/").as_req()).is_none());
    let routes = [route(1, |r| r.paths = strings(&["/a", "~/b"]))];
    let router = Router::build(&routes).unwrap();
    assert_eq!(router.len(), 1);
    assert!(!router.is_empty());
}

#[test]
fn catch_all_route_without_fields() {
    let routes = [route(1, |_| {}), route(2, |r| r.paths = strings(&["/a"]))];
    assert_eq!(find(&routes, &Req::get("/a")), Some(1));
    assert_eq!(find(&routes, &Req::get("/b")), Some(0));
}

#[test]
fn router_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Router>();
}
