//! Reusable field types with Kong's validation rules and messages (Kong's `typedefs`).

use crate::schema::{Check, EntityCheck, Field, Record};
use serde_json::Value;
use std::net::IpAddr;

/// Every protocol a service or route may name, sorted as Kong lists them.
pub const PROTOCOLS: [&str; 8] = [
    "grpc",
    "grpcs",
    "http",
    "https",
    "tcp",
    "tls",
    "tls_passthrough",
    "udp",
];
/// The protocols of the http subsystem (Kong's default for plugins).
pub const HTTP_PROTOCOLS: [&str; 4] = ["grpc", "grpcs", "http", "https"];

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

/// A parsed `host[:port]` / `ip[:port]` / `[ipv6][:port]`, as Kong's `normalize_ip`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPort {
    pub host: String,
    pub port: Option<u16>,
    pub is_ip: bool,
}

/// Kong's `normalize_ip`: errors are Kong's texts (`invalid port number`, `invalid hostname: x`).
pub fn normalize_host(addr: &str) -> Result<HostPort, String> {
    let colons = addr.matches(':').count();
    if colons > 1 || addr.starts_with('[') {
        // IPv6, bracketed when a port follows.
        let (ip_text, port) = match addr.strip_prefix('[') {
            Some(rest) => {
                let (ip, after) = rest
                    .split_once(']')
                    .ok_or_else(|| "invalid ipv6 address".to_string())?;
                let port = match after {
                    "" => None,
                    p => Some(parse_port(
                        p.strip_prefix(':')
                            .ok_or_else(|| "invalid ipv6 address".to_string())?,
                    )?),
                };
                (ip, port)
            }
            None => (addr, None),
        };
        let ip: std::net::Ipv6Addr = ip_text
            .parse()
            .map_err(|_| format!("invalid ipv6 address: {addr}"))?;
        return Ok(HostPort {
            host: ip.to_string(),
            port,
            is_ip: true,
        });
    }
    let (name, port) = match addr.rsplit_once(':') {
        Some((n, p)) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
            (n, Some(parse_port(p)?))
        }
        Some(_) => return Err(format!("invalid hostname: {addr}")),
        None => (addr, None),
    };
    if !name.is_empty() && name.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        let ip: std::net::Ipv4Addr = name
            .parse()
            .map_err(|_| format!("invalid ipv4 address: {addr}"))?;
        return Ok(HostPort {
            host: ip.to_string(),
            port,
            is_ip: true,
        });
    }
    let valid_chars = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
    let labels: Vec<&str> = name.split('.').collect();
    let n = labels.len();
    let bad_label = labels
        .iter()
        .enumerate()
        .any(|(i, l)| l.ends_with('-') || (l.is_empty() && i + 1 != n));
    if !valid_chars || bad_label {
        return Err(format!("invalid hostname: {addr}"));
    }
    Ok(HostPort {
        host: name.to_string(),
        port,
        is_ip: false,
    })
}

fn parse_port(p: &str) -> Result<u16, String> {
    p.parse::<u32>()
        .ok()
        .and_then(|n| u16::try_from(n).ok())
        .ok_or_else(|| "invalid port number".to_string())
}

/// A host name or IP without port (services' `host`).
pub fn validate_host(v: &Value) -> Result<(), String> {
    match normalize_host(s(v)) {
        Ok(hp) if hp.port.is_some() => Err("must not have a port".into()),
        Ok(_) => Ok(()),
        Err(e) if e == "invalid port number" => Err("must not have a port".into()),
        Err(_) => Err(format!("invalid value: {}", s(v))),
    }
}

pub fn validate_host_with_optional_port(v: &Value) -> Result<(), String> {
    normalize_host(s(v)).map(|_| ())
}

/// SNI names: host names (one leading or trailing `*` allowed), never IPs or ports.
pub fn validate_wildcard_host(v: &Value) -> Result<(), String> {
    let host = s(v);
    let stars = host.matches('*').count();
    if stars > 0 {
        if !(host.starts_with('*') || host.ends_with('*')) {
            return Err("wildcard must be leftmost or rightmost character".into());
        }
        if stars > 1 {
            return Err("only one wildcard must be specified".into());
        }
    }
    let mock = host.replace('*', "wildcard");
    match normalize_host(&mock) {
        Ok(hp) if hp.is_ip => Err("must not be an IP".into()),
        Ok(hp) if hp.port.is_some() => Err("must not have a port".into()),
        Ok(_) => Ok(()),
        Err(e) if e == "invalid port number" => Err("must not have a port".into()),
        Err(_) => Err(format!("invalid value: {mock}")),
    }
}

/// Route hosts: at most one `*`, as the leftmost or rightmost label; optional port.
pub fn validate_route_host(v: &Value) -> Result<(), String> {
    let host = s(v);
    if host.matches('*').count() > 1 {
        return Err("invalid wildcard: must have at most one wildcard".into());
    }
    if host.contains('*') && !(host.starts_with("*.") || host.ends_with(".*")) {
        return Err("invalid wildcard: must be placed at leftmost or rightmost label".into());
    }
    normalize_host(&host.replace('*', "abc")).map(|_| ())
}

/// Characters allowed in a path (RFC 3986 unreserved, sub-delims, `/`, `:`, `@`, `%`).
fn rfc3986_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~/%:@!$&'()*+,;=".contains(&b)
}

/// Every `%` must start a `%XX` triplet.
fn check_percent_encoding(path: &str) -> Result<(), String> {
    let b = path.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let ok =
                b.len() > i + 2 && b[i + 1].is_ascii_hexdigit() && b[i + 2].is_ascii_hexdigit();
            if !ok {
                let end = (i + 3).min(b.len());
                return Err(format!(
                    "invalid url-encoded value: '{}'",
                    String::from_utf8_lossy(&b[i..end])
                ));
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    Ok(())
}

/// Service paths.
pub fn validate_path(v: &Value) -> Result<(), String> {
    let path = s(v);
    if path.contains("//") {
        return Err("must not have empty segments".into());
    }
    if !path.starts_with('/') || !path.bytes().all(rfc3986_char) {
        return Err(format!(
            "invalid path: '{path}' (characters outside of the reserved list of RFC 3986 found)"
        ));
    }
    check_percent_encoding(path)
}

/// Route paths: `/prefix` (normalized) or `~/regex` (valid for our regex engine).
pub fn validate_router_path(v: &Value) -> Result<(), String> {
    let path = s(v);
    if !(path.starts_with('/') || path.starts_with("~/")) {
        return Err("should start with: / (fixed path) or ~/ (regex path)".into());
    }
    if path.contains("//") {
        return Err("must not have empty segments".into());
    }
    check_percent_encoding(path)?;
    if path.starts_with('~') {
        return silverback_router::check_path(path);
    }
    let normalized = silverback_router::normalize_path(path);
    if normalized != path {
        return Err(format!(
            "non-normalized path, consider use '{normalized}' instead"
        ));
    }
    Ok(())
}

/// Names of services, routes, upstreams' instance names (UTF-8 allowed).
pub fn validate_utf8_name(v: &Value) -> Result<(), String> {
    let name = s(v);
    let ok = name
        .chars()
        .all(|c| !c.is_ascii() || c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '~'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid value '{name}': the only accepted ascii characters are alphanumerics or ., -, _, and ~"
        ))
    }
}

pub fn validate_tag(v: &Value) -> Result<(), String> {
    let tag = s(v);
    let ok = tag
        .chars()
        .all(|c| !c.is_ascii() || (c == ' ' || (c.is_ascii_graphic() && c != ',' && c != '/')));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid tag '{tag}': expected printable ascii (except `,` and `/`) or valid utf-8 sequences"
        ))
    }
}

pub fn validate_header_name(v: &Value) -> Result<(), String> {
    let name = s(v);
    if name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        Ok(())
    } else {
        Err(format!(
            "bad header name '{name}', allowed characters are A-Z, a-z, 0-9, '_', and '-'"
        ))
    }
}

pub fn validate_http_method(v: &Value) -> Result<(), String> {
    let m = s(v);
    if !m.is_empty() && m.bytes().all(|b| b.is_ascii_uppercase()) {
        Ok(())
    } else {
        Err(format!("invalid value: {m}"))
    }
}

pub fn validate_ip_or_cidr(v: &Value) -> Result<(), String> {
    let t = s(v);
    if t.parse::<IpAddr>().is_ok() || t.parse::<ipnet::IpNet>().is_ok() {
        Ok(())
    } else {
        Err(format!("invalid ip or cidr range: '{t}'"))
    }
}

pub fn validate_ip(v: &Value) -> Result<(), String> {
    let t = s(v);
    t.parse::<IpAddr>()
        .map(|_| ())
        .map_err(|_| format!("not an ip address: {t}"))
}

/// SNI host names: no IPs, no ports.
pub fn validate_sni(v: &Value) -> Result<(), String> {
    match normalize_host(s(v)) {
        Ok(hp) if hp.is_ip => Err("must not be an IP".into()),
        Ok(hp) if hp.port.is_some() => Err("must not have a port".into()),
        Ok(_) => Ok(()),
        Err(e) if e == "invalid port number" => Err("must not have a port".into()),
        Err(_) => Err(format!("invalid value: {}", s(v))),
    }
}

/// RFC 7230 token (cookie names).
pub fn validate_http_token(v: &Value) -> Result<(), String> {
    let t = s(v);
    let ok = t
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(
            "contains one or more invalid characters. ASCII control characters (0-31;127), space, tab and the characters ()<>@,;:\\\"/?={}[] are not allowed."
                .to_string(),
        )
    }
}

// === Field builders ===

pub fn protocol() -> Field {
    Field::string().one_of(PROTOCOLS)
}

pub fn host() -> Field {
    Field::string().custom(validate_host)
}

pub fn port() -> Field {
    Field::integer().between(0, 65535)
}

pub fn path() -> Field {
    Field::string()
        .check(Check::StartsWith("/"))
        .custom(validate_path)
}

pub fn utf8_name() -> Field {
    Field::string().unique().custom(validate_utf8_name)
}

pub fn tags() -> Field {
    Field::set(Field::string().required().custom(validate_tag))
}

pub fn header_name() -> Field {
    Field::string().custom(validate_header_name)
}

pub fn wildcard_host() -> Field {
    Field::string().custom(validate_wildcard_host)
}

/// Timeouts in milliseconds that must not be 0.
pub fn nonzero_timeout(default: i64) -> Field {
    Field::integer().between(1, 2_147_483_646).default(default)
}

/// `sources` / `destinations` of routes: `{ip, port}` with at least one of them.
pub fn net_endpoints() -> Field {
    Field::set(Field::record(
        Record::new(vec![
            ("ip", Field::string().custom(validate_ip_or_cidr)),
            ("port", port()),
        ])
        .with_checks(vec![EntityCheck::AtLeastOneOf(vec!["ip", "port"])]),
    ))
}

pub fn headers_map() -> Field {
    Field::map(header_name(), Field::array(Field::string()))
}

/// The `protocols` field of plugins.
pub fn plugin_protocols() -> Field {
    Field::set(protocol())
        .required()
        .default(Value::from(HTTP_PROTOCOLS.to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn hosts() {
        assert!(validate_host(&json!("example.com")).is_ok());
        assert!(validate_host(&json!("10.0.0.1")).is_ok());
        assert_eq!(
            validate_host(&json!("example.com:80")),
            Err("must not have a port".into())
        );
        assert_eq!(
            validate_host(&json!("exa mple")),
            Err("invalid value: exa mple".into())
        );
        assert!(validate_host_with_optional_port(&json!("[::1]:80")).is_ok());
        assert!(validate_route_host(&json!("*.example.com")).is_ok());
        assert!(validate_route_host(&json!("*.example.com:8000")).is_ok());
        // Kong only allows a trailing wildcard at the very end, so not before a port.
        assert!(validate_route_host(&json!("example.*:8000")).is_err());
        assert_eq!(
            validate_route_host(&json!("a.*.com")),
            Err("invalid wildcard: must be placed at leftmost or rightmost label".into())
        );
        assert_eq!(
            validate_route_host(&json!("*.a.*")),
            Err("invalid wildcard: must have at most one wildcard".into())
        );
        assert_eq!(
            validate_wildcard_host(&json!("1.2.3.4")),
            Err("must not be an IP".into())
        );
    }

    #[test]
    fn paths() {
        assert!(validate_path(&json!("/a/b%20c")).is_ok());
        assert_eq!(
            validate_path(&json!("/a//b")),
            Err("must not have empty segments".into())
        );
        assert_eq!(
            validate_path(&json!("/a%2")),
            Err("invalid url-encoded value: '%2'".into())
        );
        assert!(validate_router_path(&json!("/api")).is_ok());
        assert!(validate_router_path(&json!("~/api/(?<id>\\d+)$")).is_ok());
        assert_eq!(
            validate_router_path(&json!("api")),
            Err("should start with: / (fixed path) or ~/ (regex path)".into())
        );
        assert_eq!(
            validate_router_path(&json!("/a/../b")),
            Err("non-normalized path, consider use '/b' instead".into())
        );
        assert!(validate_router_path(&json!("~/(unclosed")).is_err());
    }

    #[test]
    fn names_and_tags() {
        assert!(validate_utf8_name(&json!("my-svc_1.v2~x")).is_ok());
        assert!(validate_utf8_name(&json!("ümlaut")).is_ok());
        assert!(validate_utf8_name(&json!("has space")).is_err());
        assert!(validate_tag(&json!("team a")).is_ok());
        assert!(validate_tag(&json!("a,b")).is_err());
        assert!(validate_header_name(&json!("X-Foo_1")).is_ok());
        assert!(validate_header_name(&json!("X Foo")).is_err());
        assert!(validate_ip_or_cidr(&json!("10.0.0.0/8")).is_ok());
        assert!(validate_ip_or_cidr(&json!("10.0.0.0/33")).is_err());
    }
}
