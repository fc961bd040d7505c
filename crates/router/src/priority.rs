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
const MAX_HEADER_COUNT: u64 = 255;

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

/// Encodes `regex_priority` into the 32-bit field at bits 19..=50.
///
/// Kong shifts the raw value left by 19 bits. For negative values that sets the top bits (the
/// route would jump above everything) and large values spill into the header-count and
/// match-weight bits. We instead clamp to `i32` and add 2^31, which keeps the documented intent:
/// among otherwise-equal regex matchers a higher `regex_priority` wins, negatives sort below 0.
fn regex_priority_field(regex_priority: i64) -> u64 {
    let clamped = regex_priority.clamp(i64::from(i32::MIN), i64::from(i32::MAX));
    u64::try_from(clamped - i64::from(i32::MIN)).unwrap_or(0)
}

/// The 64-bit priority of one matcher (`paths` is that matcher's path group), laid out as in
/// Kong's `get_priority`:
///
/// | bits  | meaning                                                                 |
/// |-------|-------------------------------------------------------------------------|
/// | 61-63 | match weight: count of non-empty fields (see below)                    |
/// | 60    | hosts non-empty and none has a `*`                                      |
/// | 52-59 | number of header names (capped at 255)                                  |
/// | 51    | the paths are regexes                                                   |
/// | 19-50 | `regex_priority` (regex matchers only; see [`regex_priority_field`])    |
/// | 0-18  | prefix length (prefix matchers only, masked to 19 bits)                 |
///
/// The match weight counts the non-empty fields among sources, destinations, methods, hosts,
/// headers, snis and paths.
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
    .count();
    let weight = u64::try_from(weight).unwrap_or(7);

    let plain_host_only = !route.hosts.is_empty() && route.hosts.iter().all(|h| !h.contains('*'));
    let header_count = u64::try_from(route.headers.len())
        .unwrap_or(MAX_HEADER_COUNT)
        .min(MAX_HEADER_COUNT);

    let regex = paths.first().is_some_and(|p| is_regex(p));
    let uri_length = match paths.first() {
        Some(p) if !regex => u64::try_from(p.len()).unwrap_or(0),
        _ => 0,
    };

    let mut priority = (weight << 61) | (header_count << 52) | (uri_length & 0x7FFFF);
    if plain_host_only {
        priority |= PLAIN_HOST_ONLY_BIT;
    }
    if regex {
        priority |= REGEX_URL_BIT | (regex_priority_field(route.regex_priority) << 19);
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

    #[test]
    fn match_weight_counts_non_empty_fields() {
        assert_eq!(prio(&route(|_| {})) >> 61, 0);
        assert_eq!(prio(&route(|r| r.methods = vec!["GET".into()])) >> 61, 1);
        let all = route(|r| {
            r.methods = vec!["GET".into()];
            r.hosts = vec!["a.com".into()];
            r.paths = vec!["/a".into()];
            r.headers = vec![("x".into(), vec!["1".into()])];
            r.snis = vec!["a.com".into()];
            r.sources = vec![crate::NetMatch {
                ip: None,
                port: Some(1),
            }];
            r.destinations = vec![crate::NetMatch {
                ip: None,
                port: Some(2),
            }];
        });
        assert_eq!(prio(&all) >> 61, 7);
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
    fn header_count_field_is_capped() {
        let two = route(|r| r.headers = vec![("a".into(), vec![]), ("b".into(), vec![])]);
        assert_eq!((prio(&two) >> 52) & 0xFF, 2);
        let many = route(|r| {
            r.headers = (0..300).map(|i| (format!("h{i}"), vec![])).collect();
        });
        assert_eq!((prio(&many) >> 52) & 0xFF, 255);
        assert_eq!(prio(&many) >> 61, 1);
    }

    #[test]
    fn prefix_length_and_regex_bits() {
        let p = route(|r| r.paths = vec!["/abc".into()]);
        assert_eq!(prio(&p), (1 << 61) | 4);
        let rx = route(|r| r.paths = vec!["~/abc".into()]);
        assert_eq!(prio(&rx), (1 << 61) | REGEX_URL_BIT | (1 << 31 << 19));
        assert!(prio(&rx) > prio(&p));
        let long = "/".repeat(0x80001);
        let masked = route(|r| r.paths = vec![long.clone()]);
        assert_eq!(prio(&masked) & 0x7FFFF, 1);
    }

    #[test]
    fn regex_priority_orders_regex_matchers_only() {
        let rx = |rp: i64| {
            prio(&route(|r| {
                r.paths = vec!["~/a".into()];
                r.regex_priority = rp;
            }))
        };
        assert!(rx(-1) < rx(0));
        assert!(rx(0) < rx(1));
        assert!(rx(i64::MIN) < rx(-1));
        assert!(rx(1) < rx(i64::MAX));
        assert!(
            rx(i64::MAX) < rx(0) | (1 << 52),
            "never spills into the header count"
        );
        let prefix = |rp: i64| {
            prio(&route(|r| {
                r.paths = vec!["/a".into()];
                r.regex_priority = rp;
            }))
        };
        assert_eq!(prefix(5), prefix(0));
        assert_eq!(prefix(-5), prefix(0));
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
