//! Kong's DNS settings (`dns_resolver`, `dns_hostsfile`, `dns_order`, the TTLs,
//! `dns_cache_size`), parsed for the resolver. `dns_no_sync` is accepted without effect:
//! concurrent queries for one name are always shared.

use crate::values;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// A record type in `dns_order`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DnsOrder {
    /// The type of the last successful lookup of the name.
    Last,
    Srv,
    A,
    Aaaa,
    Cname,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DnsSettings {
    /// Name servers replacing resolv.conf's; empty: resolv.conf's.
    pub resolvers: Vec<SocketAddr>,
    pub hostsfile: PathBuf,
    pub order: Vec<DnsOrder>,
    /// Replaces every answer's TTL when set.
    pub valid_ttl: Option<Duration>,
    /// How long an expired answer is still served while it is refreshed.
    pub stale_ttl: Duration,
    /// How long "no such name" and empty answers are remembered.
    pub not_found_ttl: Duration,
    /// How long other failures (server errors, timeouts) are remembered.
    pub error_ttl: Duration,
    /// Most names kept in the cache.
    pub cache_size: usize,
}

impl Default for DnsSettings {
    fn default() -> Self {
        DnsSettings {
            resolvers: Vec::new(),
            hostsfile: PathBuf::from("/etc/hosts"),
            order: vec![DnsOrder::Last, DnsOrder::Srv, DnsOrder::A, DnsOrder::Cname],
            valid_ttl: None,
            stale_ttl: Duration::from_secs(3600),
            not_found_ttl: Duration::from_secs(30),
            error_ttl: Duration::from_secs(1),
            cache_size: 10_000,
        }
    }
}

/// `ip[:port]` (IPv6 in brackets when a port follows); port 53 by default.
pub(crate) fn parse_resolvers(v: &str) -> Result<Vec<SocketAddr>, String> {
    values::parse_list(v)
        .iter()
        .map(|item| {
            item.parse::<SocketAddr>()
                .or_else(|_| {
                    item.trim_start_matches('[')
                        .trim_end_matches(']')
                        .parse()
                        .map(|ip| SocketAddr::new(ip, 53))
                })
                .map_err(|_| format!("'{item}' is not an ip[:port] name server address"))
        })
        .collect()
}

pub(crate) fn parse_order(v: &str) -> Result<Vec<DnsOrder>, String> {
    let order: Vec<DnsOrder> = values::parse_list(v)
        .iter()
        .map(|item| match item.to_ascii_uppercase().as_str() {
            "LAST" => Ok(DnsOrder::Last),
            "SRV" => Ok(DnsOrder::Srv),
            "A" => Ok(DnsOrder::A),
            "AAAA" => Ok(DnsOrder::Aaaa),
            "CNAME" => Ok(DnsOrder::Cname),
            _ => Err(format!("'{item}' is not one of LAST, SRV, A, AAAA, CNAME")),
        })
        .collect::<Result<_, _>>()?;
    if order.is_empty() {
        return Err("must list at least one record type".into());
    }
    Ok(order)
}

/// Seconds, fractions allowed.
pub(crate) fn parse_seconds(v: &str) -> Result<Duration, String> {
    v.trim()
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64)
        .ok_or_else(|| format!("'{v}' is not a number of seconds"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolvers_order_and_seconds() {
        assert_eq!(
            parse_resolvers("10.0.0.1, 127.0.0.1:5353, [::1]:53, ::2").unwrap(),
            vec![
                "10.0.0.1:53".parse().unwrap(),
                "127.0.0.1:5353".parse().unwrap(),
                "[::1]:53".parse().unwrap(),
                "[::2]:53".parse().unwrap(),
            ]
        );
        assert!(parse_resolvers("dns.example").is_err());
        assert_eq!(
            parse_order("last,srv,A,AAAA").unwrap(),
            vec![DnsOrder::Last, DnsOrder::Srv, DnsOrder::A, DnsOrder::Aaaa]
        );
        assert!(parse_order("MX").is_err());
        assert!(parse_order("").is_err());
        assert_eq!(parse_seconds("0.25").unwrap(), Duration::from_millis(250));
        assert!(parse_seconds("-1").is_err());
    }
}
