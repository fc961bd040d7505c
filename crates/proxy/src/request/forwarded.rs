//! Who the client is (real IP behind trusted proxies) and the X-Forwarded-* headers Kong sends
//! upstream.

use ipnet::IpNet;
use std::net::IpAddr;

/// Trust settings (Kong's `trusted_ips`, `real_ip_header`, `real_ip_recursive`).
#[derive(Debug, Clone)]
pub struct Trust {
    pub trusted_ips: Vec<IpNet>,
    /// Lower-cased header name.
    pub real_ip_header: String,
    pub real_ip_recursive: bool,
}

impl Trust {
    pub fn is_trusted(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.trusted_ips.iter().any(|n| n.contains(&ip))
    }

    /// The client address as nginx's realip module computes it: the peer itself unless it is
    /// trusted and sent a real-IP header. `values` are that header's values.
    pub fn client_ip<'a>(&self, peer: IpAddr, values: impl Iterator<Item = &'a [u8]>) -> IpAddr {
        let peer = canonical(peer);
        if self.trusted_ips.is_empty() || !self.is_trusted(peer) {
            return peer;
        }
        let values = values.filter_map(|v| std::str::from_utf8(v).ok());
        let addrs: Vec<IpAddr> = values
            .flat_map(|v| v.split(','))
            .filter_map(|s| parse_ip(s.trim()))
            .collect();
        if addrs.is_empty() {
            return peer;
        }
        if self.real_ip_recursive {
            // The right-most address that is not a trusted proxy.
            addrs
                .iter()
                .rev()
                .find(|a| !self.is_trusted(**a))
                .or(addrs.first())
                .copied()
                .unwrap_or(peer)
        } else {
            addrs.last().copied().unwrap_or(peer)
        }
    }
}

/// IPv4-mapped IPv6 addresses are IPv4 for trust checks and headers.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// An address as it may appear in X-Forwarded-For (`1.2.3.4`, `1.2.3.4:5`, `[::1]:5`, `::1`).
fn parse_ip(s: &str) -> Option<IpAddr> {
    if let Ok(ip) = s.parse() {
        return Some(ip);
    }
    if let Ok(sa) = s.parse::<std::net::SocketAddr>() {
        return Some(sa.ip());
    }
    s.rsplit_once(':').and_then(|(h, _)| h.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trust(nets: &[&str], header: &str, recursive: bool) -> Trust {
        Trust {
            trusted_ips: nets.iter().map(|n| n.parse().unwrap()).collect(),
            real_ip_header: header.to_ascii_lowercase(),
            real_ip_recursive: recursive,
        }
    }

    fn headers(_name: &'static str, v: &'static str) -> Vec<&'static [u8]> {
        vec![v.as_bytes()]
    }

    #[test]
    fn untrusted_peer_is_the_client() {
        let t = trust(&["10.0.0.0/8"], "X-Real-IP", false);
        let peer: IpAddr = "192.168.1.5".parse().unwrap();
        assert_eq!(
            t.client_ip(peer, headers("x-real-ip", "1.1.1.1").into_iter()),
            peer
        );
    }

    #[test]
    fn trusted_peer_real_ip_header() {
        let t = trust(&["10.0.0.0/8"], "X-Real-IP", false);
        let peer: IpAddr = "10.1.1.1".parse().unwrap();
        assert_eq!(
            t.client_ip(peer, headers("x-real-ip", "1.1.1.1").into_iter()),
            "1.1.1.1".parse::<IpAddr>().unwrap()
        );
        assert_eq!(t.client_ip(peer, std::iter::empty()), peer);
    }

    #[test]
    fn forwarded_for_recursive_and_not() {
        let h = headers("x-forwarded-for", "9.9.9.9, 8.8.8.8, 10.0.0.2");
        let peer: IpAddr = "10.0.0.1".parse().unwrap();
        let plain = trust(&["10.0.0.0/8"], "X-Forwarded-For", false);
        assert_eq!(
            plain.client_ip(peer, h.iter().copied()),
            "10.0.0.2".parse::<IpAddr>().unwrap()
        );
        let rec = trust(&["10.0.0.0/8"], "X-Forwarded-For", true);
        assert_eq!(
            rec.client_ip(peer, h.iter().copied()),
            "8.8.8.8".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn mapped_v4_is_v4() {
        let t = trust(&["127.0.0.1/32"], "X-Real-IP", false);
        assert!(t.is_trusted("::ffff:127.0.0.1".parse().unwrap()));
    }
}
