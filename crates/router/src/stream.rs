//! Kong's stream router (routes of protocols tcp, tls, tls_passthrough and udp): a connection is
//! matched by its client address (`sources`), the local address it reached (`destinations`)
//! and, when the client sent one in a TLS ClientHello, its server name (`snis`).
//!
//! As Kong's `traditional_compatible` flavor does (ATC expressions from `transform.lua`):
//!
//! - `snis` only constrain TLS connections (`net.protocol != "tls" || tls.sni ...`), and a
//!   connection counts as TLS when a server name was read;
//! - every non-empty field must match, and within `sources` / `destinations` any element may
//!   (an element matches when its ip, exact or CIDR, and its port both match where set);
//! - routes are tried by Kong's stream priority (SNIs, or sources and destinations together,
//!   first; then the kind of source conditions, then destination ones: exact IP over port over
//!   CIDR), ties going to the higher route id.
//!
//! Stream routes are few and a connection is routed once, so the matcher is a sorted list.

use crate::host::{NamePattern, parse_sni};
use crate::matcher::{net_matches, net_rule};
use crate::{NetMatch, RouteSpec};
use std::net::SocketAddr;

/// What the stream router needs from a connection.
#[derive(Debug, Clone, Copy)]
pub struct StreamRequest<'a> {
    /// The client's address.
    pub src: SocketAddr,
    /// The local address the connection reached.
    pub dst: SocketAddr,
    /// The server name of the TLS ClientHello, when the connection starts with one that has it.
    pub sni: Option<&'a str>,
}

#[derive(Debug)]
struct StreamMatcher {
    /// Index into the specs given to [`StreamRouter::build`].
    route: usize,
    snis: Vec<NamePattern>,
    sources: Option<Vec<NetMatch>>,
    destinations: Option<Vec<NetMatch>>,
}

impl StreamMatcher {
    fn matches(&self, req: &StreamRequest<'_>, sni: Option<&str>) -> bool {
        if !self.snis.is_empty()
            && let Some(sni) = sni
            && !self.snis.iter().any(|p| p.matches(sni))
        {
            return false;
        }
        let net_ok = |rule: &Option<Vec<NetMatch>>, addr: SocketAddr| {
            rule.as_ref()
                .is_none_or(|list| net_matches(list, (addr.ip().to_canonical(), addr.port())))
        };
        net_ok(&self.sources, req.src) && net_ok(&self.destinations, req.dst)
    }
}

/// The compiled stream routes of one config, in the order they are tried.
#[derive(Debug, Default)]
pub struct StreamRouter {
    matchers: Vec<StreamMatcher>,
}

impl StreamRouter {
    /// Compiles stream routes; the indexes [`StreamRouter::find`] returns are positions in
    /// `specs`. Only `id`, `snis`, `sources` and `destinations` are read.
    pub fn build(specs: &[RouteSpec]) -> StreamRouter {
        let mut ranked: Vec<(u64, uuid::Uuid, StreamMatcher)> = specs
            .iter()
            .enumerate()
            .map(|(route, spec)| {
                let matcher = StreamMatcher {
                    route,
                    snis: spec.snis.iter().map(|s| parse_sni(s)).collect(),
                    sources: net_rule(&spec.sources),
                    destinations: net_rule(&spec.destinations),
                };
                (priority(spec), spec.id, matcher)
            })
            .collect();
        ranked.sort_by_key(|r| std::cmp::Reverse((r.0, r.1)));
        StreamRouter {
            matchers: ranked.into_iter().map(|(_, _, m)| m).collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.matchers.is_empty()
    }

    /// The route Kong would pick for the connection, as an index into the build specs.
    pub fn find(&self, req: &StreamRequest<'_>) -> Option<usize> {
        let lower;
        let sni = match req.sni {
            Some(s) if s.bytes().any(|b| b.is_ascii_uppercase()) => {
                lower = s.to_ascii_lowercase();
                Some(lower.as_str())
            }
            other => other,
        };
        self.matchers
            .iter()
            .find(|m| m.matches(req, sni))
            .map(|m| m.route)
    }
}

/// Kong's `stream_get_priority`: bit 61 for SNIs (or sources and destinations together), then
/// per side a weight of exact IP (8), port (4) and CIDR (1), sources above destinations.
fn priority(spec: &RouteSpec) -> u64 {
    const SNI_BIT: u64 = 1 << 61;
    fn weight(list: &[NetMatch]) -> u64 {
        list.iter().fold(0, |w, n| {
            let ip = match n.ip {
                // (Kong looks for a `/` in the text: a `/32` counts as CIDR there, as a single
                // address here.)
                Some(net) if net.prefix_len() == net.max_prefix_len() => 1 << 3,
                Some(_) => 1,
                None => 0,
            };
            w | ip | if n.port.is_some() { 1 << 2 } else { 0 }
        })
    }
    let both_nets = !spec.sources.is_empty() && !spec.destinations.is_empty();
    let sni = if !spec.snis.is_empty() || both_nets {
        SNI_BIT
    } else {
        0
    };
    sni | (weight(&spec.sources) << 4) | weight(&spec.destinations)
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn net(ip: Option<&str>, port: Option<u16>) -> NetMatch {
        NetMatch {
            ip: ip.map(|i| {
                i.parse::<ipnet::IpNet>()
                    .unwrap_or_else(|_| i.parse::<std::net::IpAddr>().unwrap().into())
            }),
            port,
        }
    }

    fn spec(n: u128, f: impl FnOnce(&mut RouteSpec)) -> RouteSpec {
        let mut s = RouteSpec {
            id: Uuid::from_u128(n),
            ..Default::default()
        };
        f(&mut s);
        s
    }

    fn req<'a>(src: &str, dst: &str, sni: Option<&'a str>) -> StreamRequest<'a> {
        StreamRequest {
            src: src.parse().unwrap(),
            dst: dst.parse().unwrap(),
            sni,
        }
    }

    #[test]
    fn sources_destinations_and_snis() {
        let mut specs = vec![
            spec(1, |s| s.destinations = vec![net(None, Some(9000))]),
            spec(2, |s| s.sources = vec![net(Some("10.0.0.0/8"), None)]),
            spec(4, |s| {
                s.sources = vec![net(Some("127.0.0.2"), None)];
                s.destinations = vec![net(Some("127.0.0.1"), Some(9001))];
            }),
        ];
        let r = StreamRouter::build(&specs);
        assert_eq!(
            r.find(&req("10.1.2.3:5000", "127.0.0.1:8000", None)),
            Some(1)
        );
        assert_eq!(
            r.find(&req("1.1.1.1:5000", "127.0.0.1:9000", None)),
            Some(0)
        );
        assert_eq!(
            r.find(&req("127.0.0.2:1", "127.0.0.1:9001", Some("x.test"))),
            Some(2)
        );
        assert_eq!(r.find(&req("1.1.1.1:5000", "127.0.0.1:8000", None)), None);
        // SNI routes outrank the others, but only constrain connections that sent one: as in
        // Kong, one catches every plain connection.
        specs.push(spec(3, |s| s.snis = vec!["*.example.com".into()]));
        let r = StreamRouter::build(&specs);
        let tls = |sni| r.find(&req("1.1.1.1:5000", "127.0.0.1:9000", Some(sni)));
        assert_eq!(tls("A.Example.com"), Some(3));
        assert_eq!(tls("other.test"), Some(0));
        assert_eq!(
            r.find(&req("1.1.1.1:5000", "127.0.0.1:8000", Some("x.test"))),
            None
        );
        assert_eq!(
            r.find(&req("1.1.1.1:5000", "127.0.0.1:8000", None)),
            Some(3)
        );
    }

    #[test]
    fn priority_like_kong() {
        let exact = spec(1, |s| s.destinations = vec![net(Some("127.0.0.1"), None)]);
        let port = spec(2, |s| s.destinations = vec![net(None, Some(1))]);
        let cidr = spec(3, |s| s.destinations = vec![net(Some("127.0.0.0/8"), None)]);
        let src = spec(4, |s| s.sources = vec![net(Some("127.0.0.0/8"), None)]);
        let sni = spec(5, |s| s.snis = vec!["a".into()]);
        assert_eq!(priority(&exact), 8);
        assert_eq!(priority(&port), 4);
        assert_eq!(priority(&cidr), 1);
        assert_eq!(priority(&src), 16);
        assert_eq!(priority(&sni), 1 << 61);
    }
}
