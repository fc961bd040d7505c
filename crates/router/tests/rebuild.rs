//! `Router::rebuild` must give the router `Router::build` gives for the same specs, whatever the
//! history: random sequences of changes (routes added, removed, replaced, one field changed,
//! moved, ids duplicated) are applied, each router rebuilt from the previous rebuilt one, and
//! every rebuilt router must answer a set of requests exactly as a fresh build and the naive
//! matcher do. Also checks that the rebuild reused what it could: it compiled exactly the routes
//! whose spec is new.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::naive::{naive, request_strategy, route_strategy};
use common::{Req, route, strings};
use proptest::prelude::*;
use proptest::sample::Index;
use silverback_router::{BuildError, BuildStats, RouteSpec, Router};

#[derive(Debug, Clone)]
enum Op {
    /// A new route (new id) inserted at a position.
    Add(Index, RouteSpec),
    Remove(Index),
    /// A route replaced by another with the same id.
    Replace(Index, RouteSpec),
    /// One field of a route (see `set_field`) taken from another random route.
    Tweak(Index, u8, RouteSpec),
    /// A small change inside one field of a route (see `mutate`), such as one header value or
    /// a CIDR's prefix length, which whole-field tweaks from the alphabet never make.
    Mutate(Index, u8, u8),
    /// Two routes exchange places.
    Swap(Index, Index),
    /// A route inserted with the id of an existing one (Kong forbids it; the router copes).
    DuplicateId(Index, Index, RouteSpec),
    /// No change at all.
    Same,
}

fn op_strategy() -> impl Strategy<Value = Op> {
    let idx = any::<Index>;
    prop_oneof![
        3 => (idx(), route_strategy()).prop_map(|(i, r)| Op::Add(i, r)),
        2 => idx().prop_map(Op::Remove),
        2 => (idx(), route_strategy()).prop_map(|(i, r)| Op::Replace(i, r)),
        4 => (idx(), 0u8..8, route_strategy()).prop_map(|(i, f, r)| Op::Tweak(i, f, r)),
        4 => (idx(), 0u8..8, any::<u8>()).prop_map(|(i, f, k)| Op::Mutate(i, f, k)),
        1 => (idx(), idx()).prop_map(|(i, j)| Op::Swap(i, j)),
        1 => (idx(), idx(), route_strategy()).prop_map(|(i, j, r)| Op::DuplicateId(i, j, r)),
        1 => Just(Op::Same),
    ]
}

/// Copies field `field` of `from` into `to`.
fn set_field(to: &mut RouteSpec, field: u8, from: &RouteSpec) {
    match field {
        0 => to.methods = from.methods.clone(),
        1 => to.hosts = from.hosts.clone(),
        2 => to.paths = from.paths.clone(),
        3 => to.headers = from.headers.clone(),
        4 => to.snis = from.snis.clone(),
        5 => to.sources = from.sources.clone(),
        6 => to.destinations = from.destinations.clone(),
        _ => to.regex_priority = from.regex_priority,
    }
}

/// Changes field `field` of `r` a little; `k` picks how.
fn mutate(r: &mut RouteSpec, field: u8, k: u8) {
    let pick = |items: &[&str]| items[usize::from(k) % items.len()].to_string();
    match field {
        0 => match r.methods.pop() {
            Some(_) if k.is_multiple_of(2) => {}
            _ => r.methods.push(pick(&["GET", "POST", "PUT"])),
        },
        1 => match r.hosts.first_mut() {
            Some(h) if k.is_multiple_of(2) && !h.contains(':') => h.push_str(":8080"),
            _ => r.hosts.push(pick(&["a.com", "*.a.com", "b.com"])),
        },
        2 => match r.paths.first_mut() {
            Some(p) if k.is_multiple_of(2) => p.push('b'),
            _ => r.paths.push(pick(&["/a", "~/a/(?<x>[a-z]+)$", "~/[ab]+$"])),
        },
        3 => match r.headers.first_mut() {
            Some((_, values)) if k.is_multiple_of(3) => values.push(pick(&["1", "v3", "~*^v"])),
            Some((_, values)) if k % 3 == 1 && !values.is_empty() => {
                values[0] = pick(&["1", "2", "a", "~*^V\\d"])
            }
            _ => r.headers.push(("x-v".into(), vec![pick(&["2", "1"])])),
        },
        4 => r.snis.push(pick(&["a.com", "*.a.com"])),
        5 | 6 => {
            let list = if field == 5 {
                &mut r.sources
            } else {
                &mut r.destinations
            };
            match list.first_mut() {
                Some(n) if n.ip.is_some() => {
                    let ip = n.ip.unwrap();
                    let len = [8, 16, 24, 32][usize::from(k) % 4];
                    n.ip =
                        Some(ipnet::IpNet::new(ip.addr(), len.min(ip.max_prefix_len())).unwrap());
                }
                Some(n) => n.port = Some(n.port.map_or(1000, |p| p ^ 1)),
                None => list.push(common::net(Some("10.0.0.0/8"), Some(1000))),
            }
        }
        _ => r.regex_priority += [1, -1, 4096, -4096][usize::from(k) % 4],
    }
}

fn apply(op: &Op, specs: &mut Vec<RouteSpec>) {
    let n = specs.len();
    match op {
        Op::Add(i, r) => specs.insert(i.index(n + 1), r.clone()),
        Op::Same => {}
        _ if n == 0 => {}
        Op::Remove(i) => {
            specs.remove(i.index(n));
        }
        Op::Replace(i, r) => {
            let at = i.index(n);
            specs[at] = RouteSpec {
                id: specs[at].id,
                ..r.clone()
            };
        }
        Op::Tweak(i, field, r) => set_field(&mut specs[i.index(n)], *field, r),
        Op::Mutate(i, field, k) => mutate(&mut specs[i.index(n)], *field, *k),
        Op::Swap(i, j) => specs.swap(i.index(n), j.index(n)),
        Op::DuplicateId(i, j, r) => {
            let id = specs[j.index(n)].id;
            specs.insert(i.index(n + 1), RouteSpec { id, ..r.clone() });
        }
    }
}

fn unique_ids(specs: &[RouteSpec]) -> bool {
    let mut ids: Vec<_> = specs.iter().map(|s| s.id).collect();
    ids.sort();
    ids.windows(2).all(|w| w[0] != w[1])
}

/// Specs in `after` with no equal spec in `before`: what a rebuild must compile.
fn new_specs(before: &[RouteSpec], after: &[RouteSpec]) -> usize {
    after.iter().filter(|s| !before.contains(s)).count()
}

/// The rebuilt router answers every request as a fresh build and the naive matcher do.
fn same_answers(
    rebuilt: &Router,
    specs: &[RouteSpec],
    requests: &[Req],
) -> Result<(), TestCaseError> {
    let fresh = Router::build(specs).unwrap();
    prop_assert_eq!(rebuilt.len(), specs.len());
    for req in requests {
        let got = rebuilt.find(&req.as_req());
        prop_assert_eq!(&got, &fresh.find(&req.as_req()), "request {:?}", req);
        let got = got.map(|m| {
            let caps = m
                .captures
                .map(|c| c.positional().map(|g| g.map(String::from)).collect());
            (m.route, m.matched_len, caps)
        });
        prop_assert_eq!(got, naive(specs, req), "request {:?}", req);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn rebuild_agrees_with_build(
        initial in prop::collection::vec(route_strategy(), 0..12),
        ops in prop::collection::vec(op_strategy(), 1..8),
        requests in prop::collection::vec(request_strategy(), 1..16),
    ) {
        let mut specs = initial;
        let mut router = Router::build(&specs).unwrap();
        prop_assert_eq!(router.stats(), BuildStats { compiled: specs.len(), reused: 0 });
        for op in &ops {
            let before = specs.clone();
            apply(op, &mut specs);
            let rebuilt = router.rebuild(&specs).unwrap();
            same_answers(&rebuilt, &specs, &requests)?;
            let stats = rebuilt.stats();
            prop_assert_eq!(stats.compiled + stats.reused, specs.len());
            if unique_ids(&before) && unique_ids(&specs) {
                prop_assert_eq!(stats.compiled, new_specs(&before, &specs), "after {:?}", op);
            }
            // The previous router is untouched.
            same_answers(&router, &before, &requests)?;
            router = rebuilt;
        }
    }
}

#[test]
fn rebuild_reports_errors_as_build_does() {
    let good = |n: u128| {
        route(n, |r| {
            r.paths = strings(&[r"~/a/(?<id>\d+)$"]);
            r.headers = vec![("x".into(), strings(&["~*^v\\d$"]))];
        })
    };
    let specs: Vec<RouteSpec> = (0..4).map(good).collect();
    let router = Router::build(&specs).unwrap();
    let mut bad = specs.clone();
    bad[2].paths = strings(&["~/a/(?<=x)"]);
    bad[3].headers = vec![("x".into(), strings(&["~*("]))];
    let want = Router::build(&bad).unwrap_err();
    assert!(
        matches!(want, BuildError::InvalidPath { index: 2, .. }),
        "{want}"
    );
    assert_eq!(router.rebuild(&bad).unwrap_err(), want);
    bad.remove(2);
    let want = Router::build(&bad).unwrap_err();
    assert!(
        matches!(want, BuildError::InvalidHeaderRegex { index: 2, .. }),
        "{want}"
    );
    assert_eq!(router.rebuild(&bad).unwrap_err(), want);
    // A failed rebuild leaves the router as it was.
    let req = Req::get("/a/7").header("x", "V1");
    assert_eq!(router.find(&req.as_req()).map(|m| m.route), Some(3));
}

/// Many routes, most kept through a few changes: the shape the bench times.
#[test]
fn rebuild_keeps_answers_over_many_routes() {
    let mut specs: Vec<RouteSpec> = (0..300u128)
        .map(|n| {
            route(n, |r| {
                let seg = ["a", "b", "ab"][(n % 3) as usize];
                r.paths = match n % 4 {
                    0 => vec![format!(r"~/{seg}/(?<n>\d+)/{}$", n % 7)],
                    1 => vec![format!("/{seg}/{}", n % 11), format!("/{seg}{n}")],
                    _ => vec![format!("/{seg}/{}", n % 13)],
                };
                if n % 5 == 0 {
                    r.hosts = vec![format!("h{}.com", n % 6)];
                }
                if n % 6 == 0 {
                    r.methods = strings(&["GET"]);
                }
                r.regex_priority = (n % 3) as i64;
            })
        })
        .collect();
    let requests: Vec<Req> = (0..200)
        .map(|i| {
            let seg = ["a", "b", "ab", "c"][i % 4];
            let mut r = Req::new(
                ["GET", "POST"][i % 2],
                &format!("h{}.com", i % 7),
                &format!("/{seg}/{}/{}", i % 13, i % 7),
            );
            if i % 3 == 0 {
                r = Req::new("GET", "", &format!("/{seg}{i}"));
            }
            r
        })
        .collect();
    let mut router = Router::build(&specs).unwrap();
    type Edit<'a> = &'a dyn Fn(&mut Vec<RouteSpec>);
    // (routes the rebuild must compile, the change)
    let edits: [(usize, Edit<'_>); 5] = [
        (1, &|s| s[10].paths = strings(&["~/a/(?<n>\\d+)/3$"])),
        (1, &|s| {
            s.insert(5, route(1000, |r| r.paths = strings(&["/a"])))
        }),
        (0, &|s| {
            s.remove(40);
        }),
        (1, &|s| s[100].regex_priority = -1),
        (0, &|s| s.swap(1, 299)),
    ];
    for (compiled, edit) in edits {
        edit(&mut specs);
        let rebuilt = router.rebuild(&specs).unwrap();
        assert_eq!(
            rebuilt.stats(),
            BuildStats {
                compiled,
                reused: specs.len() - compiled
            }
        );
        let fresh = Router::build(&specs).unwrap();
        for req in &requests {
            assert_eq!(
                rebuilt.find(&req.as_req()),
                fresh.find(&req.as_req()),
                "{req:?}"
            );
        }
        router = rebuilt;
    }
}
