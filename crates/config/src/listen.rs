//! Kong's `*_listen` syntax: `addr:port [flag ...], ...` or `off`.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// One listening socket and the flags Kong allows on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listen {
    pub addr: SocketAddr,
    /// Terminate TLS on this socket.
    pub ssl: bool,
    /// Offer HTTP/2 (ALPN `h2` on TLS sockets).
    pub http2: bool,
    /// Expect a PROXY protocol header before the request.
    pub proxy_protocol: bool,
    /// A UDP socket (`stream_listen` only).
    pub udp: bool,
    pub backlog: Option<u32>,
}

impl fmt::Display for Listen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.addr)?;
        if self.ssl {
            f.write_str(" ssl")?;
        }
        if self.http2 {
            f.write_str(" http2")?;
        }
        if self.proxy_protocol {
            f.write_str(" proxy_protocol")?;
        }
        if self.udp {
            f.write_str(" udp")?;
        }
        Ok(())
    }
}

/// Flags Kong accepts that only tune nginx; we accept them so kong.conf files keep working.
const IGNORED_FLAGS: &[&str] = &[
    "reuseport",
    "deferred",
    "bind",
    "ipv6only=on",
    "ipv6only=off",
];

/// Which flags a listener takes: Kong's HTTP listeners (proxy, admin, status) or its stream
/// listeners (`stream_listen`: `udp`, no `http2`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subsystem {
    Http,
    Stream,
}

/// Parses a whole `*_listen` value of an HTTP listener. `off` gives an empty list.
pub fn parse_listen_list(value: &str) -> Result<Vec<Listen>, String> {
    parse_listen_list_for(value, Subsystem::Http)
}

/// Parses a whole `*_listen` value with the flags of `subsystem`. `off` gives an empty list.
pub fn parse_listen_list_for(value: &str, subsystem: Subsystem) -> Result<Vec<Listen>, String> {
    let value = value.trim();
    if value.eq_ignore_ascii_case("off") {
        return Ok(Vec::new());
    }
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|entry| parse_listen(entry, subsystem))
        .collect()
}

fn parse_listen(entry: &str, subsystem: Subsystem) -> Result<Listen, String> {
    let mut words = entry.split_whitespace();
    let addr_text = words
        .next()
        .ok_or_else(|| "empty listen entry".to_string())?;
    let addr = parse_addr(addr_text)?;
    let mut listen = Listen {
        addr,
        ssl: false,
        http2: false,
        proxy_protocol: false,
        udp: false,
        backlog: None,
    };
    let stream = subsystem == Subsystem::Stream;
    for flag in words {
        match flag {
            "ssl" => listen.ssl = true,
            "http2" if !stream => listen.http2 = true,
            "udp" if stream => listen.udp = true,
            "deferred" if stream => {
                return Err(format!("unknown listen flag '{flag}' in '{entry}'"));
            }
            "proxy_protocol" => listen.proxy_protocol = true,
            f if f.starts_with("backlog=") => {
                let n = &f["backlog=".len()..];
                listen.backlog = Some(
                    n.parse()
                        .map_err(|_| format!("invalid backlog value '{n}' in '{entry}'"))?,
                );
            }
            f if IGNORED_FLAGS.contains(&f) || f.starts_with("so_keepalive=") => {}
            f => return Err(format!("unknown listen flag '{f}' in '{entry}'")),
        }
    }
    Ok(listen)
}

/// `1.2.3.4:80`, `[::1]:80`, `*:80`, `localhost:80` or a bare port.
fn parse_addr(text: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let bad = || format!("invalid listen address '{text}' (expected ip:port)");
    let (host, port) = match text.rsplit_once(':') {
        Some((h, p)) => (h, p),
        None => ("0.0.0.0", text),
    };
    let port: u16 = port.parse().map_err(|_| bad())?;
    let ip = match host {
        "*" | "0.0.0.0" => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        "localhost" => IpAddr::V4(Ipv4Addr::LOCALHOST),
        "[::]" => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        _ => return Err(bad()),
    };
    Ok(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kong_default_proxy_listen() {
        let l = parse_listen_list(
            "0.0.0.0:8000 reuseport backlog=16384, 0.0.0.0:8443 http2 ssl reuseport backlog=16384",
        )
        .unwrap();
        assert_eq!(l.len(), 2);
        assert_eq!(l[0].addr, "0.0.0.0:8000".parse().unwrap());
        assert!(!l[0].ssl);
        assert_eq!(l[0].backlog, Some(16384));
        assert!(l[1].ssl && l[1].http2);
    }

    #[test]
    fn off_ipv6_and_errors() {
        assert!(parse_listen_list("off").unwrap().is_empty());
        assert_eq!(
            parse_listen_list("[::1]:9000").unwrap()[0].addr,
            "[::1]:9000".parse().unwrap()
        );
        assert_eq!(
            parse_listen_list("localhost:9000").unwrap()[0].addr,
            "127.0.0.1:9000".parse().unwrap()
        );
        assert!(parse_listen_list("127.0.0.1:99999").is_err());
        assert!(parse_listen_list("127.0.0.1:80 quic").is_err());
        assert!(parse_listen_list("example.com:80").is_err());
    }

    #[test]
    fn stream_flags_are_kongs() {
        let l = parse_listen_list_for(
            "127.0.0.1:7000 reuseport backlog=16384, 127.0.0.1:7001 ssl, 127.0.0.1:7002 udp",
            Subsystem::Stream,
        )
        .unwrap();
        assert_eq!(l.len(), 3);
        assert!(!l[0].ssl && l[1].ssl && l[2].udp);
        assert!(parse_listen_list_for("127.0.0.1:7000 http2", Subsystem::Stream).is_err());
        assert!(parse_listen_list("127.0.0.1:7000 udp").is_err());
        assert!(
            parse_listen_list_for("off", Subsystem::Stream)
                .unwrap()
                .is_empty()
        );
    }
}
