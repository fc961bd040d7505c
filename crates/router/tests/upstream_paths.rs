//! Upstream path construction, data-driven from Kong's
//! `spec/fixtures/router_path_handling_tests.lua` (used by `spec/01-unit/08-router_spec.lua`,
//! "#slash handling"): each row is routed through a real [`Router`] (as a prefix route, as
//! host-only when there is no route path, and again as a regex route `~/[0]?<path>`), and
//! [`upstream_path`] must give Kong's expected path. `v1` rows use the expectations Kong's
//! `traditional` flavor is tested with.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Req, route, strings};
use silverback_router::PathHandling::{self, V0, V1};
use silverback_router::{Router, upstream_path};

/// service path, route path, strip_path values, path_handling values, request path, expected.
struct Row(
    &'static str,
    Option<&'static str>,
    &'static [bool],
    &'static [PathHandling],
    &'static str,
    &'static str,
);

#[rustfmt::skip]
const ROWS: &[Row] = &[
    Row("/", Some("/"), &[false, true], &[V0, V1], "/", "/"),
    Row("/", Some("/"), &[false, true], &[V0, V1], "/route", "/route"),
    Row("/", Some("/"), &[false, true], &[V0, V1], "/route/", "/route/"),
    Row("/", Some("/"), &[false, true], &[V0, V1], "/routereq", "/routereq"),
    Row("/", Some("/"), &[false, true], &[V0, V1], "/route/req", "/route/req"),
    Row("/", Some("/route"), &[false], &[V0, V1], "/route", "/route"),
    Row("/", Some("/route"), &[false], &[V0, V1], "/route/", "/route/"),
    Row("/", Some("/route"), &[false], &[V0, V1], "/routereq", "/routereq"),
    Row("/", Some("/route"), &[true], &[V0, V1], "/route", "/"),
    Row("/", Some("/route"), &[true], &[V0, V1], "/route/", "/"),
    Row("/", Some("/route"), &[true], &[V0, V1], "/routereq", "/req"),
    Row("/", Some("/route/"), &[false], &[V0, V1], "/route/", "/route/"),
    Row("/", Some("/route/"), &[false], &[V0, V1], "/route/req", "/route/req"),
    Row("/", Some("/route/"), &[true], &[V0, V1], "/route/", "/"),
    Row("/", Some("/route/"), &[true], &[V0, V1], "/route/req", "/req"),
    Row("/srv", Some("/rou"), &[false], &[V0], "/roureq", "/srv/roureq"),
    Row("/srv", Some("/rou"), &[false], &[V1], "/roureq", "/srvroureq"),
    Row("/srv", Some("/rou"), &[true], &[V0], "/roureq", "/srv/req"),
    Row("/srv", Some("/rou"), &[true], &[V1], "/roureq", "/srvreq"),
    Row("/srv/", Some("/rou"), &[false], &[V0, V1], "/rou", "/srv/rou"),
    Row("/srv/", Some("/rou"), &[true], &[V0], "/rou", "/srv"),
    Row("/srv/", Some("/rou"), &[true], &[V1], "/rou", "/srv/"),
    Row("/service", Some("/"), &[false, true], &[V0, V1], "/", "/service"),
    Row("/service", Some("/"), &[false, true], &[V0], "/route", "/service/route"),
    Row("/service", Some("/"), &[false, true], &[V1], "/route", "/serviceroute"),
    Row("/service", Some("/"), &[false, true], &[V0], "/route/", "/service/route/"),
    Row("/service", Some("/"), &[false, true], &[V1], "/route/", "/serviceroute/"),
    Row("/service", Some("/"), &[false, true], &[V0], "/routereq", "/service/routereq"),
    Row("/service", Some("/"), &[false, true], &[V1], "/routereq", "/serviceroutereq"),
    Row("/service", Some("/"), &[false, true], &[V0], "/route/req", "/service/route/req"),
    Row("/service", Some("/"), &[false, true], &[V1], "/route/req", "/serviceroute/req"),
    Row("/service", Some("/route"), &[false], &[V0], "/route", "/service/route"),
    Row("/service", Some("/route"), &[false], &[V1], "/route", "/serviceroute"),
    Row("/service", Some("/route"), &[false], &[V0], "/route/", "/service/route/"),
    Row("/service", Some("/route"), &[false], &[V1], "/route/", "/serviceroute/"),
    Row("/service", Some("/route"), &[false], &[V0], "/routereq", "/service/routereq"),
    Row("/service", Some("/route"), &[false], &[V1], "/routereq", "/serviceroutereq"),
    Row("/service", Some("/route"), &[true], &[V0, V1], "/route", "/service"),
    Row("/service", Some("/route"), &[true], &[V0, V1], "/route/", "/service/"),
    Row("/service", Some("/route"), &[true], &[V0], "/routereq", "/service/req"),
    Row("/service", Some("/route"), &[true], &[V1], "/routereq", "/servicereq"),
    Row("/service", Some("/route/"), &[false], &[V0], "/route/", "/service/route/"),
    Row("/service", Some("/route/"), &[false], &[V1], "/route/", "/serviceroute/"),
    Row("/service", Some("/route/"), &[false], &[V0], "/route/req", "/service/route/req"),
    Row("/service", Some("/route/"), &[false], &[V1], "/route/req", "/serviceroute/req"),
    Row("/service", Some("/route/"), &[true], &[V0], "/route/", "/service/"),
    Row("/service", Some("/route/"), &[true], &[V1], "/route/", "/service"),
    Row("/service", Some("/route/"), &[true], &[V0], "/route/req", "/service/req"),
    Row("/service", Some("/route/"), &[true], &[V1], "/route/req", "/servicereq"),
    Row("/service/", Some("/"), &[false, true], &[V0], "/route/", "/service/route/"),
    Row("/service/", Some("/"), &[false, true], &[V1], "/route/", "/service/route/"),
    Row("/service/", Some("/"), &[false, true], &[V0, V1], "/", "/service/"),
    Row("/service/", Some("/"), &[false, true], &[V0, V1], "/route", "/service/route"),
    Row("/service/", Some("/"), &[false, true], &[V0, V1], "/routereq", "/service/routereq"),
    Row("/service/", Some("/"), &[false, true], &[V0, V1], "/route/req", "/service/route/req"),
    Row("/service/", Some("/route"), &[false], &[V0, V1], "/route", "/service/route"),
    Row("/service/", Some("/route"), &[false], &[V0, V1], "/route/", "/service/route/"),
    Row("/service/", Some("/route"), &[false], &[V0, V1], "/routereq", "/service/routereq"),
    Row("/service/", Some("/route"), &[true], &[V0], "/route", "/service"),
    Row("/service/", Some("/route"), &[true], &[V1], "/route", "/service/"),
    Row("/service/", Some("/route"), &[true], &[V0, V1], "/route/", "/service/"),
    Row("/service/", Some("/route"), &[true], &[V0, V1], "/routereq", "/service/req"),
    Row("/service/", Some("/route/"), &[false], &[V0, V1], "/route/", "/service/route/"),
    Row("/service/", Some("/route/"), &[false], &[V0, V1], "/route/req", "/service/route/req"),
    Row("/service/", Some("/route/"), &[true], &[V0, V1], "/route/", "/service/"),
    Row("/service/", Some("/route/"), &[true], &[V0, V1], "/route/req", "/service/req"),
    Row("/", None, &[false, true], &[V0, V1], "/", "/"),
    Row("/", None, &[false, true], &[V0, V1], "/route", "/route"),
    Row("/", None, &[false, true], &[V0, V1], "/route/", "/route/"),
    Row("/service", None, &[false, true], &[V0, V1], "/", "/service"),
    Row("/service", None, &[false, true], &[V0], "/route", "/service/route"),
    Row("/service", None, &[false, true], &[V1], "/route", "/serviceroute"),
    Row("/service", None, &[false, true], &[V0], "/route/", "/service/route/"),
    Row("/service", None, &[false, true], &[V1], "/route/", "/serviceroute/"),
    Row("/service/", None, &[false, true], &[V0, V1], "/", "/service/"),
    Row("/service/", None, &[false, true], &[V0, V1], "/route", "/service/route"),
    Row("/service/", None, &[false, true], &[V0, V1], "/route/", "/service/route/"),
    Row("/service", Some("/route"), &[true], &[V0], "/route./req", "/service/req"),
    Row("/service", Some("/route"), &[true], &[V1], "/route./req", "/servicereq"),
    Row("/service/", Some("/route"), &[true], &[V0, V1], "/route./req", "/service/req"),
    Row("/service", Some("/route"), &[true], &[V0], "/route%2E/req", "/service/req"),
    Row("/service", Some("/route"), &[true], &[V1], "/route%2E/req", "/servicereq"),
    Row("/service/", Some("/route"), &[true], &[V0, V1], "/route%2E/req", "/service/req"),
    Row("/service", Some("/route"), &[true], &[V0], "/route%2e/req", "/service/req"),
    Row("/service", Some("/route"), &[true], &[V1], "/route%2e/req", "/servicereq"),
    Row("/service/", Some("/route"), &[true], &[V0, V1], "/route%2e/req", "/service/req"),
    Row("/service", Some("/route"), &[true], &[V0], "/route../req", "/service/req"),
    Row("/service", Some("/route"), &[true], &[V1], "/route../req", "/servicereq"),
    Row("/service/", Some("/route"), &[true], &[V0, V1], "/route../req", "/service/req"),
    Row("/service", Some("/route"), &[true], &[V0], "/route%2E%2E/req", "/service/req"),
    Row("/service", Some("/route"), &[true], &[V1], "/route%2E%2E/req", "/servicereq"),
    Row("/service/", Some("/route"), &[true], &[V0, V1], "/route%2E%2E/req", "/service/req"),
    Row("/service", Some("/route"), &[true], &[V0], "/route%2e%2E/req", "/service/req"),
    Row("/service", Some("/route"), &[true], &[V1], "/route%2e%2E/req", "/servicereq"),
    Row("/service/", Some("/route"), &[true], &[V0, V1], "/route%2e%2E/req", "/service/req"),
    Row("/service", Some("/route"), &[false], &[V0], "/route./req", "/service/route./req"),
    Row("/service", Some("/route"), &[false], &[V1], "/route./req", "/serviceroute./req"),
    Row("/service/", Some("/route"), &[false], &[V0, V1], "/route./req", "/service/route./req"),
    Row("/service", Some("/route"), &[false], &[V0], "/route%2E/req", "/service/route./req"),
    Row("/service", Some("/route"), &[false], &[V1], "/route%2E/req", "/serviceroute./req"),
    Row("/service/", Some("/route"), &[false], &[V0, V1], "/route%2E/req", "/service/route./req"),
    Row("/service", Some("/route"), &[false], &[V0], "/route%2e/req", "/service/route./req"),
    Row("/service", Some("/route"), &[false], &[V1], "/route%2e/req", "/serviceroute./req"),
    Row("/service/", Some("/route"), &[false], &[V0, V1], "/route%2e/req", "/service/route./req"),
    Row("/service", Some("/route"), &[false], &[V0], "/route../req", "/service/route../req"),
    Row("/service", Some("/route"), &[false], &[V1], "/route../req", "/serviceroute../req"),
    Row("/service/", Some("/route"), &[false], &[V0, V1], "/route../req", "/service/route../req"),
    Row("/service", Some("/route"), &[false], &[V0], "/route%2E%2E/req", "/service/route../req"),
    Row("/service", Some("/route"), &[false], &[V1], "/route%2E%2E/req", "/serviceroute../req"),
    Row("/service/", Some("/route"), &[false], &[V0, V1], "/route%2E%2E/req", "/service/route../req"),
    Row("/service", Some("/route"), &[false], &[V0], "/route%2e%2E/req", "/service/route../req"),
    Row("/service", Some("/route"), &[false], &[V1], "/route%2e%2E/req", "/serviceroute../req"),
    Row("/service/", Some("/route"), &[false], &[V0, V1], "/route%2e%2E/req", "/service/route../req"),
];

/// Routes `request` through a single-route router and builds the upstream path.
fn run(
    service: &str,
    route_path: Option<&str>,
    strip: bool,
    ph: PathHandling,
    request: &str,
) -> String {
    let routes = [route(1, |r| {
        r.hosts = strings(&["localbin.com"]);
        r.paths = route_path.map(|p| vec![p.to_string()]).unwrap_or_default();
    })];
    let router = Router::build(&routes).unwrap();
    let req = Req::new("GET", "localbin.com", request);
    let m = router
        .find(&req.as_req())
        .unwrap_or_else(|| panic!("no match for {request} with {route_path:?}"));
    upstream_path(strip, ph, Some(service), &m.path, m.matched_len)
}

#[test]
fn kong_path_handling_table() {
    let mut cases = 0;
    let mut failures = Vec::new();
    for (i, Row(service, route_path, strips, handlings, request, expected)) in
        ROWS.iter().enumerate()
    {
        for &strip in *strips {
            for &ph in *handlings {
                let mut variants = vec![("plain", *route_path)];
                let regex = route_path.map(|p| format!("~/[0]?{}", &p[1..]));
                if regex.is_some() {
                    variants.push(("regex", regex.as_deref()));
                }
                for (kind, path) in variants {
                    cases += 1;
                    let got = run(service, path, strip, ph, request);
                    if got != *expected {
                        failures.push(format!(
                            "row {} ({kind}) service={service} route={path:?} strip={strip} {ph:?} \
                             req={request}: got {got}, want {expected}",
                            i + 1
                        ));
                    }
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {cases} failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(cases > 300, "table expansion ran {cases} cases");
}

#[test]
fn default_service_path_is_root() {
    assert_eq!(upstream_path(true, V0, None, "/route/req", 6), "/req");
    assert_eq!(
        upstream_path(false, V0, None, "/route/req", 6),
        "/route/req"
    );
    assert_eq!(upstream_path(true, V1, None, "/routereq", 6), "/req");
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    fn segs(max: usize) -> impl Strategy<Value = String> {
        prop::collection::vec("[a-z]{1,3}", 0..max)
            .prop_map(|s| s.iter().map(|x| format!("/{x}")).collect::<String>())
    }

    fn service() -> impl Strategy<Value = String> {
        (segs(3), any::<bool>()).prop_map(|(s, slash)| match (s.is_empty(), slash) {
            (true, _) => "/".to_string(),
            (false, true) => format!("{s}/"),
            (false, false) => s,
        })
    }

    proptest! {
        /// Without strip_path the whole request path is kept after the service path, joined by
        /// exactly one slash (v0), and no empty segment is ever produced.
        #[test]
        fn unstripped_v0_keeps_request_path(
            svc in service(),
            req in segs(4),
            trailing in any::<bool>(),
        ) {
            let req = match (req.is_empty(), trailing) {
                (true, _) => "/".to_string(),
                (false, true) => format!("{req}/"),
                (false, false) => req,
            };
            let out = upstream_path(false, V0, Some(&svc), &req, 0);
            prop_assert!(!out.contains("//"), "{} + {} -> {}", svc, req, out);
            if req != "/" {
                prop_assert!(out.ends_with(&req[1..]));
            }
            prop_assert!(out.starts_with(svc.trim_end_matches('/')));
        }

        /// Stripping a matched prefix at a segment boundary yields service path + rest, with no
        /// empty segment, and the request's trailing slash survives (v0).
        #[test]
        fn stripped_v0_joins_rest(
            svc in service(),
            prefix in segs(3),
            rest in segs(3),
            trailing in any::<bool>(),
        ) {
            let prefix = if prefix.is_empty() { "/p".to_string() } else { prefix };
            let req = format!("{prefix}{rest}{}", if trailing { "/" } else { "" });
            let out = upstream_path(true, V0, Some(&svc), &req, prefix.len());
            prop_assert!(!out.contains("//"), "{} {} -> {}", svc, req, out);
            let base = svc.trim_end_matches('/');
            let tail = format!("{rest}{}", if trailing { "/" } else { "" });
            let want = match (tail.is_empty(), svc.as_str()) {
                (true, "/") => "/".to_string(),
                // Nothing left: Kong drops the service's trailing slash.
                (true, _) => base.to_string(),
                (false, _) => format!("{base}{tail}"),
            };
            prop_assert_eq!(out, want, "{} {}", svc, req);
        }
    }
}
