//! The specs a router was built from, kept for [`crate::Router::rebuild`] as one canonical byte
//! encoding per route, all in one buffer.
//!
//! Why bytes rather than the `RouteSpec`s: a rebuild compares every new spec with the old one,
//! and comparing with `RouteSpec`s means chasing a pointer per string through memory that has
//! long gone cold, thousands of cache misses. Encoding the new spec (which the caller has just
//! made, so it is in cache) and comparing it with a contiguous record reads the old table
//! sequentially. The new encodings form the new router's table, so nothing is wasted.
//!
//! The encoding is injective: every string, list and optional value is length- or
//! tag-prefixed, so two specs have equal records exactly when they are equal (`==`).

use crate::{NetMatch, RouteSpec};
use std::net::IpAddr;
use uuid::Uuid;

#[derive(Debug, Default)]
pub(crate) struct SpecTable {
    bytes: Vec<u8>,
    /// End of record `i` in `bytes` (it starts where record `i - 1` ends).
    ends: Vec<usize>,
}

impl SpecTable {
    pub(crate) fn with_capacity(routes: usize, bytes: usize) -> Self {
        SpecTable {
            bytes: Vec::with_capacity(bytes),
            ends: Vec::with_capacity(routes),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.ends.len()
    }

    pub(crate) fn byte_len(&self) -> usize {
        self.bytes.len()
    }

    /// Record `i`: the route id's 16 bytes, then the rest of the spec.
    pub(crate) fn get(&self, i: usize) -> Option<&[u8]> {
        let start = match i.checked_sub(1) {
            Some(prev) => *self.ends.get(prev)?,
            None => 0,
        };
        self.bytes.get(start..*self.ends.get(i)?)
    }

    pub(crate) fn id(&self, i: usize) -> Option<Uuid> {
        Some(Uuid::from_bytes(self.get(i)?.get(..16)?.try_into().ok()?))
    }

    /// Appends the record of `spec`.
    pub(crate) fn push(&mut self, spec: &RouteSpec) {
        let b = &mut self.bytes;
        b.extend_from_slice(spec.id.as_bytes());
        b.extend_from_slice(&spec.regex_priority.to_le_bytes());
        for list in [&spec.methods, &spec.hosts, &spec.paths, &spec.snis] {
            strings(b, list);
        }
        len(b, spec.headers.len());
        for (name, values) in &spec.headers {
            string(b, name);
            strings(b, values);
        }
        for list in [&spec.sources, &spec.destinations] {
            len(b, list.len());
            for n in list {
                net(b, n);
            }
        }
        self.ends.push(self.bytes.len());
    }
}

fn len(b: &mut Vec<u8>, n: usize) {
    b.extend_from_slice(&(n as u64).to_le_bytes());
}

fn string(b: &mut Vec<u8>, s: &str) {
    len(b, s.len());
    b.extend_from_slice(s.as_bytes());
}

fn strings(b: &mut Vec<u8>, list: &[String]) {
    len(b, list.len());
    for s in list {
        string(b, s);
    }
}

/// Address and prefix length as given, as `IpNet`'s `==` compares them (not normalized).
fn net(b: &mut Vec<u8>, n: &NetMatch) {
    match n.ip {
        None => b.push(0),
        Some(ip) => {
            match ip.addr() {
                IpAddr::V4(a) => {
                    b.push(4);
                    b.extend_from_slice(&a.octets());
                }
                IpAddr::V6(a) => {
                    b.push(6);
                    b.extend_from_slice(&a.octets());
                }
            }
            b.push(ip.prefix_len());
        }
    }
    match n.port {
        None => b.push(0),
        Some(p) => {
            b.push(1);
            b.extend_from_slice(&p.to_le_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(spec: &RouteSpec) -> Vec<u8> {
        let mut t = SpecTable::default();
        t.push(spec);
        t.get(0).unwrap().to_vec()
    }

    fn net(ip: Option<&str>, port: Option<u16>) -> NetMatch {
        NetMatch {
            ip: ip.map(|i| i.parse().unwrap()),
            port,
        }
    }

    /// Specs that differ in one field, or only in how values are split into strings or lists,
    /// must have different records; equal specs equal records.
    #[test]
    fn records_are_equal_exactly_when_specs_are() {
        let base = RouteSpec {
            id: Uuid::from_u128(7),
            hosts: vec!["a.com".into()],
            paths: vec!["/a".into()],
            ..Default::default()
        };
        let variants: Vec<RouteSpec> = vec![
            base.clone(),
            RouteSpec {
                id: Uuid::from_u128(8),
                ..base.clone()
            },
            RouteSpec {
                hosts: vec!["a.co".into(), "m".into()],
                ..base.clone()
            },
            RouteSpec {
                hosts: vec![],
                methods: vec!["a.com".into()],
                ..base.clone()
            },
            RouteSpec {
                paths: vec!["/a".into(), "".into()],
                ..base.clone()
            },
            RouteSpec {
                snis: vec!["".into()],
                ..base.clone()
            },
            RouteSpec {
                regex_priority: -1,
                ..base.clone()
            },
            RouteSpec {
                headers: vec![("x".into(), vec!["1".into(), "2".into()])],
                ..base.clone()
            },
            RouteSpec {
                headers: vec![("x".into(), vec!["1".into()]), ("2".into(), vec![])],
                ..base.clone()
            },
            RouteSpec {
                sources: vec![net(Some("10.0.0.1/8"), None)],
                ..base.clone()
            },
            RouteSpec {
                sources: vec![net(Some("10.0.0.0/8"), None)],
                ..base.clone()
            },
            RouteSpec {
                sources: vec![net(Some("10.0.0.0/16"), None)],
                ..base.clone()
            },
            RouteSpec {
                sources: vec![net(Some("::a00:0/104"), None)],
                ..base.clone()
            },
            RouteSpec {
                sources: vec![net(None, Some(80))],
                ..base.clone()
            },
            RouteSpec {
                destinations: vec![net(None, Some(80))],
                ..base.clone()
            },
            RouteSpec {
                destinations: vec![net(None, None)],
                ..base.clone()
            },
        ];
        for (i, a) in variants.iter().enumerate() {
            for (j, b) in variants.iter().enumerate() {
                assert_eq!(record(a) == record(b), a == b, "{i} vs {j}");
                assert_eq!(a == b, i == j, "{i} vs {j}");
            }
        }
        assert_eq!(record(&base.clone()), record(&base));
    }

    #[test]
    fn records_are_found_by_position() {
        let mut t = SpecTable::default();
        let a = RouteSpec {
            id: Uuid::from_u128(1),
            ..Default::default()
        };
        let b = RouteSpec {
            id: Uuid::from_u128(2),
            paths: vec!["/x".into()],
            ..Default::default()
        };
        t.push(&a);
        t.push(&b);
        assert_eq!(t.len(), 2);
        assert_eq!(t.id(1), Some(b.id));
        assert_eq!(t.get(0), Some(&record(&a)[..]));
        assert_eq!(t.get(1), Some(&record(&b)[..]));
        assert_eq!(t.get(2), None);
    }
}
