//! Route splitting and priorities, as Kong's `transform.lua` computes them for the
//! `traditional_compatible` flavor.
//!
//! A route whose paths mix regexes and prefixes, or prefixes of different lengths, becomes one
//! *matcher* per path group, each with its own priority and a derived UUID; matchers are tried
//! in (priority, UUID) descending order.

use crate::RouteSpec;
use uuid::Uuid;

/// Namespace of the UUIDv5 ids Kong gives to the parts of a split route.
const SPLIT_NAMESPACE: Uuid = Uuid::from_u128(0x7f14_5bf9_0dce_4f91_98eb_debb_ce4b_9f6b);

/// Largest header count that still counts towards priority.
const MAX_HEADER_COUNT: usize = 255;

/// Bit 60: every host is plain (no `*`).
pub(crate) const PLAIN_HOST_ONLY_BIT: u64 = 1 << 60;
/// Bit 51: the matcher's paths are regexes.
pub(crate) const REGEX_URL_BIT: u64 = 1 << 51;

/// `~`-prefixed paths are regexes, everything else is a prefix.
pub(crate) fn is_regex(path: &str) -> bool {
    path.starts_with('~')
}

/// One matcher produced from a route: its id and the paths it owns (possibly none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Part<'a> {
    pub(crate) id: Uuid,
    pub(crate) paths: Vec<&'a str>,
}

/// Splits a route's paths like Kong's `split_routes_and_services_by_path`.
///
/// Paths are grouped by "regex" or by prefix length, groups numbered in first-appearance order
/// from 1. With a single group the route keeps its own id; otherwise part `n` gets
/// `UUIDv5(SPLIT_NAMESPACE, "<route id>#<n>")`. (Kong keys the regex group as length 0; an empty
/// prefix path, which Kong's schema forbids anyway, gets its own group here.)
pub(crate) fn split(route: &RouteSpec) -> Vec<Part<'_>> {
    #[derive(PartialEq)]
    enum Key {
        Regex,
        Len(usize),
    }
    let mut keys: Vec<Key> = Vec::new();
    let mut groups: Vec<Vec<&str>> = Vec::new();
    for path in &route.paths {
        let key = if is_regex(path) {
            Key::Regex
        } else {
            Key::Len(path.len())
        };
        match keys.iter().position(|k| *k == key) {
            Some(i) => {
                if let Some(group) = groups.get_mut(i) {
                    group.push(path);
                }
            }
            None => {
                keys.push(key);
                groups.push(vec![path.as_str()]);
            }
        }
    }
    if groups.len() <= 1 {
        return vec![Part {
            id: route.id,
            paths: groups.pop().unwrap_or_default(),
        }];
    }
    let base = route.id.hyphenated().to_string();
    groups
        .into_iter()
        .enumerate()
        .map(|(i, paths)| Part {
            id: Uuid::new_v5(&SPLIT_NAMESPACE, format!("{base}#{}", i + 1).as_bytes()),
            paths,
        })
        .collect()
}

/// `bit.lshift(v, shift)` on a Lua number, as LuaJIT computes it: a 32-bit shift (count taken
/// mod 32) whose `int32` result is then sign-extended to the 64-bit priority.
fn lshift32(v: i32, shift: u32) -> u64 {
    i64::from(v.wrapping_shl(shift)) as u64
}

/// The 64-bit priority of one matcher (`paths` is that matcher's path group), as Kong 3.x's
/// `get_priority` actually computes it, not as its comment documents it.
///
/// The comment documents match weight at bits 61-63, header count at 52-59 and `regex_priority`
/// at 19-50. But Kong's `lshift_uint64` helper hands plain Lua numbers to `bit.lshift`, so those
/// three shifts are 32-bit: `61` and `52` act as `29` and `20`, and a result with bit 31 set is a
/// negative `int32`, sign-extended when `bor` widens it to 64 bits (or, when no operand is
/// 64-bit, when the 32-bit result becomes the ATC router's `uintptr_t`). Only the plain-host (60)
/// and regex (51) bits are real 64-bit constants. Hence, with `w` the match weight (count of
/// non-empty sources, destinations, methods, hosts, headers, snis, paths), `hc` the header count
/// capped at 255 and `rp` the `regex_priority` of a regex matcher (else 0) taken mod 2^32 as an
/// `i32`:
///
/// ```text
/// sx(w << 29) | sx(hc << 20) | sx(rp << 19) | (uri_len & 0x7FFFF)
///     | plain_host_only << 60 | regex << 51          (<< on i32, wrapping; sx: i32 -> 64 bits)
/// ```
///
/// So a weight of 4..=7, or an `rp` whose shifted value is negative (-1..=-4096, 4096..=8191,
/// and so on mod 2^13), sets bits 31..=63 and sorts above everything else; below that the
/// plain-host bit, then the regex bit, outrank any weight up to 3. This is what Kong computes
/// with `get_priority` JIT-compiled, and with any LuaJIT since its late-2025 conversion rework.
/// Interpreted by the LuaJIT Kong bundles (2.1-20250117 and older), a negative `int32` becomes
/// 2^63 on x86-64 (0 on arm64) instead of being sign-extended.
pub(crate) fn priority(route: &RouteSpec, paths: &[&str]) -> u64 {
    let weight = [
        !route.sources.is_empty(),
        !route.destinations.is_empty(),
        !route.methods.is_empty(),
        !route.hosts.is_empty(),
        !route.headers.is_empty(),
        !route.snis.is_empty(),
        !paths.is_empty(),
    ]
    .iter()
    .filter(|set| **set)
    .count() as i32;
    let header_count = route.headers.len().min(MAX_HEADER_COUNT) as i32;
    let plain_host_only = !route.hosts.is_empty() && route.hosts.iter().all(|h| !h.contains('*'));
    let regex = paths.first().is_some_and(|p| is_regex(p));
    // LuaJIT's number-to-int32 conversion: mod 2^32 (exact for |regex_priority| < 2^51).
    let regex_priority = if regex {
        route.regex_priority as u32 as i32
    } else {
        0
    };
    let uri_length = match paths.first() {
        Some(p) if !regex => p.len() as u64,
        _ => 0,
    };

    let mut priority = lshift32(weight, 61)
        | lshift32(header_count, 52)
        | lshift32(regex_priority, 19)
        | (uri_length & 0x7FFFF);
    if plain_host_only {
        priority |= PLAIN_HOST_ONLY_BIT;
    }
    if regex {
        priority |= REGEX_URL_BIT;
    }
    priority
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(f: impl FnOnce(&mut RouteSpec)) -> RouteSpec {
        let mut r = RouteSpec {
            id: Uuid::from_u128(0xe8fb37f1_102d_461e_9c51_6608a6bb8101),
            ..Default::default()
        };
        f(&mut r);
        r
    }

    fn prio(r: &RouteSpec) -> u64 {
        let parts = split(r);
        assert_eq!(parts.len(), 1);
        priority(r, &parts[0].paths)
    }

    fn headers(n: usize) -> Vec<(String, Vec<String>)> {
        (0..n)
            .map(|i| (format!("h{i}"), vec!["v".into()]))
            .collect()
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    /// Expected values printed by Kong's own `get_priority` (`kong/router/transform.lua` at
    /// Kong 3.10, code copied verbatim, `ngx`/`table.*` helpers stubbed) run by OpenResty's
    /// LuaJIT 2.1-20230119 with the loop JIT-compiled, each value stored into a `uint64_t` as the
    /// ATC router's `uintptr_t priority` argument receives it. Rows marked `interp` differ when
    /// the same code runs interpreted on x86-64 (that value is in the comment).
    #[test]
    fn matches_kong_get_priority() {
        let net = || {
            vec![crate::NetMatch {
                ip: Some("10.0.0.1/32".parse().unwrap()),
                port: None,
            }]
        };
        let regex = |rp: i64| {
            route(|r| {
                r.paths = strings(&["~/abc"]);
                r.regex_priority = rp;
            })
        };
        let cases: Vec<(&str, RouteSpec, u64)> = vec![
            ("empty", route(|_| {}), 0),
            (
                "paths=[/abc]",
                route(|r| r.paths = strings(&["/abc"])),
                0x0000_0000_2000_0004,
            ),
            (
                "paths=[/abc,/xyz]",
                route(|r| r.paths = strings(&["/abc", "/xyz"])),
                0x0000_0000_2000_0004,
            ),
            (
                "methods, paths=[/abc]",
                route(|r| {
                    r.methods = strings(&["GET"]);
                    r.paths = strings(&["/abc"]);
                }),
                0x0000_0000_4000_0004,
            ),
            ("paths=[~/abc]", regex(0), 0x0008_0000_2000_0000),
            ("paths=[~/abc] rp=7", regex(7), 0x0008_0000_2038_0000),
            // interp: 0x8008_0000_2000_0000
            ("paths=[~/abc] rp=-1", regex(-1), 0xffff_ffff_fff8_0000),
            // interp: 0x8008_0000_2000_0000
            ("paths=[~/abc] rp=4096", regex(4096), 0xffff_ffff_a000_0000),
            (
                "paths=[~/abc] rp=-4097",
                regex(-4097),
                0x0008_0000_7ff8_0000,
            ),
            ("paths=[~/abc] rp=8192", regex(8192), 0x0008_0000_2000_0000),
            (
                "paths=[~/abc] rp=-2^31",
                regex(-(1 << 31)),
                0x0008_0000_2000_0000,
            ),
            (
                "paths=[~/abc] rp=2^32+5",
                regex((1 << 32) + 5),
                0x0008_0000_2028_0000,
            ),
            (
                "paths=[~/abc] rp=2^40",
                regex(1 << 40),
                0x0008_0000_2000_0000,
            ),
            (
                "paths=[/abc] rp=-1",
                route(|r| {
                    r.paths = strings(&["/abc"]);
                    r.regex_priority = -1;
                }),
                0x0000_0000_2000_0004,
            ),
            (
                "hosts=[a.com]",
                route(|r| r.hosts = strings(&["a.com"])),
                0x1000_0000_2000_0000,
            ),
            (
                "hosts=[*.a.com]",
                route(|r| r.hosts = strings(&["*.a.com"])),
                0x0000_0000_2000_0000,
            ),
            (
                "hosts=[a.com], methods, paths=[/abc]",
                route(|r| {
                    r.hosts = strings(&["a.com"]);
                    r.methods = strings(&["GET"]);
                    r.paths = strings(&["/abc"]);
                }),
                0x1000_0000_6000_0004,
            ),
            (
                "hosts=[*.a.com], paths=[/path1]",
                route(|r| {
                    r.hosts = strings(&["*.a.com"]);
                    r.paths = strings(&["/path1"]);
                }),
                0x0000_0000_4000_0006,
            ),
            (
                "headers x2, paths=[/abc]",
                route(|r| {
                    r.headers = headers(2);
                    r.paths = strings(&["/abc"]);
                }),
                0x0000_0000_4020_0004,
            ),
            (
                "headers x300",
                route(|r| r.headers = headers(300)),
                0x0000_0000_2ff0_0000,
            ),
            (
                "hosts=[*.a.com], methods, headers x1",
                route(|r| {
                    r.hosts = strings(&["*.a.com"]);
                    r.methods = strings(&["GET"]);
                    r.headers = headers(1);
                }),
                0x0000_0000_6010_0000,
            ),
            // interp: 0x8000_0000_0000_0000
            (
                "hosts=[*.a.com], methods, headers x1, paths=[/abc]",
                route(|r| {
                    r.hosts = strings(&["*.a.com"]);
                    r.methods = strings(&["GET"]);
                    r.headers = headers(1);
                    r.paths = strings(&["/abc"]);
                }),
                0xffff_ffff_8010_0004,
            ),
            // interp: 0x9000_0000_0010_0004
            (
                "hosts=[a.com], methods, headers x1, paths=[/abc]",
                route(|r| {
                    r.hosts = strings(&["a.com"]);
                    r.methods = strings(&["GET"]);
                    r.headers = headers(1);
                    r.paths = strings(&["/abc"]);
                }),
                0xffff_ffff_8010_0004,
            ),
            // interp: 0x8000_0000_0000_0000
            (
                "hosts=[*.a.com], methods, headers x2, snis, paths=[/abc]",
                route(|r| {
                    r.hosts = strings(&["*.a.com"]);
                    r.methods = strings(&["GET"]);
                    r.headers = headers(2);
                    r.snis = strings(&["a.com"]);
                    r.paths = strings(&["/abc"]);
                }),
                0xffff_ffff_a020_0004,
            ),
            // interp: 0x8000_0000_0000_0000
            (
                "sources, destinations, methods, hosts=[*.a.com], headers x3, snis",
                route(|r| {
                    r.sources = net();
                    r.destinations = net();
                    r.methods = strings(&["GET"]);
                    r.hosts = strings(&["*.a.com"]);
                    r.headers = headers(3);
                    r.snis = strings(&["a.com"]);
                }),
                0xffff_ffff_c030_0000,
            ),
            // interp: 0x9008_0000_0018_0000
            (
                "all seven, hosts=[a.com], paths=[~/x] rp=3",
                route(|r| {
                    r.sources = net();
                    r.destinations = net();
                    r.methods = strings(&["GET"]);
                    r.hosts = strings(&["a.com"]);
                    r.headers = headers(1);
                    r.snis = strings(&["a.com"]);
                    r.paths = strings(&["~/x"]);
                    r.regex_priority = 3;
                }),
                0xffff_ffff_e018_0000,
            ),
        ];
        for (name, r, want) in &cases {
            assert_eq!(prio(r), *want, "{name}: {:#018x}", prio(r));
        }
    }

    #[test]
    fn thirty_two_bit_shifts_reorder_fields() {
        let methods_prefix = route(|r| {
            r.methods = strings(&["GET"]);
            r.paths = strings(&["/users"]);
        });
        let regex_only = route(|r| r.paths = strings(&["~/users/\\d+"]));
        assert!(
            prio(&regex_only) > prio(&methods_prefix),
            "bit 51 beats bit 30"
        );

        let plain_host_only = route(|r| r.hosts = strings(&["a.com"]));
        let wild_three = route(|r| {
            r.hosts = strings(&["*.a.com"]);
            r.methods = strings(&["GET"]);
            r.paths = strings(&["~/x"]);
        });
        assert!(
            prio(&plain_host_only) > prio(&wild_three),
            "bit 60 beats bits 29-51"
        );

        // Weight 4 (bit 31 after the 32-bit shift) is sign-extended over bits 31..=63.
        let four = route(|r| {
            r.hosts = strings(&["*.a.com"]);
            r.methods = strings(&["GET"]);
            r.headers = headers(1);
            r.paths = strings(&["/"]);
        });
        assert_eq!(prio(&four) >> 31, (1 << 33) - 1);
        assert!(prio(&four) > prio(&route(|r| r.hosts = strings(&["a.com"]))));

        let rx = |rp: i64| {
            prio(&route(|r| {
                r.paths = strings(&["~/a"]);
                r.regex_priority = rp;
            }))
        };
        assert!(rx(-1) > prio(&four), "negative regex_priority sorts first");
        assert!(rx(-1) > rx(1) && rx(1) > rx(0));
        assert!(
            rx(-4096) > rx(4095),
            "-4096 is 4096 mod 2^13: shifted to bit 31"
        );
        assert_eq!(rx(-4097), rx(4095), "only the low 13 bits count");
        assert_eq!(rx(8192), rx(0));
        let prefix = |rp: i64| {
            prio(&route(|r| {
                r.paths = strings(&["/a"]);
                r.regex_priority = rp;
            }))
        };
        assert_eq!(prefix(-5), prefix(0), "ignored for prefixes");
    }

    #[test]
    fn plain_host_only_bit() {
        let plain = route(|r| r.hosts = vec!["a.com".into(), "b.com:80".into()]);
        let wild = route(|r| r.hosts = vec!["a.com".into(), "*.b.com".into()]);
        assert_ne!(prio(&plain) & PLAIN_HOST_ONLY_BIT, 0);
        assert_eq!(prio(&wild) & PLAIN_HOST_ONLY_BIT, 0);
        assert_eq!(prio(&route(|_| {})) & PLAIN_HOST_ONLY_BIT, 0);
        assert!(prio(&plain) > prio(&wild));
    }

    #[test]
    fn header_count_is_capped_and_prefix_length_masked() {
        let many = route(|r| r.headers = headers(300));
        assert_eq!((prio(&many) >> 20) & 0xFF, 255);
        let long = "/".repeat(0x80001);
        let masked = route(|r| r.paths = vec![long.clone()]);
        assert_eq!(prio(&masked) & 0x7FFFF, 1);
    }

    #[test]
    fn split_groups_in_first_appearance_order() {
        let r = route(|r| {
            r.paths = ["~/re.*$", "/long-path", "/one", "/two", "/three", "~/.*"]
                .map(String::from)
                .to_vec()
        });
        let parts = split(&r);
        let paths: Vec<_> = parts.iter().map(|p| p.paths.clone()).collect();
        assert_eq!(
            paths,
            vec![
                vec!["~/re.*$", "~/.*"],
                vec!["/long-path"],
                vec!["/one", "/two"],
                vec!["/three"],
            ]
        );
        let ns = Uuid::parse_str("7f145bf9-0dce-4f91-98eb-debbce4b9f6b").unwrap();
        for (i, part) in parts.iter().enumerate() {
            let name = format!("e8fb37f1-102d-461e-9c51-6608a6bb8101#{}", i + 1);
            assert_eq!(part.id, Uuid::new_v5(&ns, name.as_bytes()));
        }
        assert!(priority(&r, &parts[0].paths) & REGEX_URL_BIT != 0);
        assert_eq!(priority(&r, &parts[1].paths) & 0x7FFFF, 10);
        assert_eq!(priority(&r, &parts[2].paths) & 0x7FFFF, 4);
    }

    #[test]
    fn single_group_keeps_route_id() {
        let r = route(|r| r.paths = vec!["/aa".into(), "/bb".into()]);
        let parts = split(&r);
        assert_eq!(
            parts,
            vec![Part {
                id: r.id,
                paths: vec!["/aa", "/bb"]
            }]
        );
        let none = route(|_| {});
        assert_eq!(
            split(&none),
            vec![Part {
                id: none.id,
                paths: vec![]
            }]
        );
    }
}
