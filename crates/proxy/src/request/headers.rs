//! Header names the proxy sets, and hop-by-hop header removal.

use http::header::{CONNECTION, HeaderName, TE, TRAILER, TRANSFER_ENCODING, UPGRADE};
use http::{HeaderMap, HeaderValue};

pub const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
pub const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
pub const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
pub const X_FORWARDED_PORT: HeaderName = HeaderName::from_static("x-forwarded-port");
pub const X_FORWARDED_PATH: HeaderName = HeaderName::from_static("x-forwarded-path");
pub const X_FORWARDED_PREFIX: HeaderName = HeaderName::from_static("x-forwarded-prefix");
pub const X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");
pub const X_KONG_REQUEST_ID: HeaderName = HeaderName::from_static("x-kong-request-id");
pub const X_KONG_UPSTREAM_LATENCY: HeaderName = HeaderName::from_static("x-kong-upstream-latency");
pub const X_KONG_PROXY_LATENCY: HeaderName = HeaderName::from_static("x-kong-proxy-latency");
pub const X_KONG_RESPONSE_LATENCY: HeaderName = HeaderName::from_static("x-kong-response-latency");
pub const X_KONG_UPSTREAM_STATUS: HeaderName = HeaderName::from_static("x-kong-upstream-status");
const KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
const PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");

/// Removes hop-by-hop headers (RFC 9110 §7.6.1), including those named in `Connection`.
pub fn strip_hop_by_hop(h: &mut HeaderMap) {
    if let Some(conn) = h.get(CONNECTION) {
        let named: Vec<HeaderName> = conn
            .to_str()
            .unwrap_or_default()
            .split(',')
            .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
            .collect();
        for n in named {
            h.remove(n);
        }
    }
    for n in [
        CONNECTION,
        KEEP_ALIVE,
        PROXY_CONNECTION,
        TE,
        TRAILER,
        TRANSFER_ENCODING,
        UPGRADE,
    ] {
        h.remove(n);
    }
}

/// Appends `, value` to an existing header or sets it.
pub fn append_list(h: &mut HeaderMap, name: HeaderName, value: &[u8]) {
    let joined = match h.get(&name) {
        Some(prev) => {
            let mut v = Vec::with_capacity(prev.len() + 2 + value.len());
            v.extend_from_slice(prev.as_bytes());
            v.extend_from_slice(b", ");
            v.extend_from_slice(value);
            HeaderValue::from_bytes(&v)
        }
        None => HeaderValue::from_bytes(value),
    };
    if let Ok(v) = joined {
        h.insert(name, v);
    }
}

/// Small integers (latencies in ms, statuses) as ready header values: cloning one does not
/// allocate.
static SMALL_INTS: std::sync::LazyLock<Vec<HeaderValue>> =
    std::sync::LazyLock::new(|| (0..1024u64).map(HeaderValue::from).collect());

/// An integer header value.
pub fn int_value(n: u64) -> HeaderValue {
    usize::try_from(n)
        .ok()
        .and_then(|i| SMALL_INTS.get(i))
        .cloned()
        .unwrap_or_else(|| HeaderValue::from(n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removes_hop_by_hop_and_listed() {
        let mut h = HeaderMap::new();
        h.insert(CONNECTION, HeaderValue::from_static("keep-alive, X-Secret"));
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert(TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
        h.insert("x-kept", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key("x-kept"));
    }

    #[test]
    fn appends() {
        let mut h = HeaderMap::new();
        append_list(&mut h, X_FORWARDED_FOR, b"1.1.1.1");
        append_list(&mut h, X_FORWARDED_FOR, b"2.2.2.2");
        assert_eq!(h[X_FORWARDED_FOR], "1.1.1.1, 2.2.2.2");
    }
}
