//! Header names the proxy sets, and hop-by-hop header removal.

use crate::http::Fields;
use http::HeaderValue;
use http::header::HeaderName;

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

/// Hop-by-hop fields (RFC 9110 §7.6.1), never forwarded as they are.
const HOP_BY_HOP: [&[u8]; 7] = [
    b"connection",
    b"keep-alive",
    b"proxy-connection",
    b"te",
    b"trailer",
    b"transfer-encoding",
    b"upgrade",
];

/// Whether a field name (any case) is hop-by-hop.
pub fn is_hop_by_hop_name(name: &[u8]) -> bool {
    HOP_BY_HOP.iter().any(|h| name.eq_ignore_ascii_case(h))
}

/// Drops hop-by-hop fields of a received message, and those its `Connection` field names.
pub fn strip_hop_by_hop(f: &mut Fields) {
    let listed: smallvec::SmallVec<[Vec<u8>; 2]> = f
        .get_all("connection")
        .flat_map(|v| v.split(|b| *b == b','))
        .map(|t| t.trim_ascii().to_ascii_lowercase())
        .filter(|t| !t.is_empty() && !is_hop_by_hop_name(t) && t != b"close")
        .collect();
    f.drop_received(|name| {
        is_hop_by_hop_name(name) || listed.iter().any(|l| name.eq_ignore_ascii_case(l))
    });
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
    use bytes::Bytes;

    #[test]
    fn removes_hop_by_hop_and_listed() {
        let text = "Connection: keep-alive, X-Secret\r\nX-Secret: 1\r\nKeep-Alive: timeout=5\r\nTransfer-Encoding: chunked\r\nX-Kept: 1\r\n";
        let raw = Bytes::from_static(text.as_bytes());
        let mut spans = Vec::new();
        let mut pos = 0;
        for line in text.split_inclusive("\r\n") {
            let (n, v) = line.trim_end().split_once(": ").unwrap();
            spans.push((
                &raw[pos..pos + n.len()],
                &raw[pos + n.len() + 2..pos + n.len() + 2 + v.len()],
            ));
            pos += line.len();
        }
        let mut f = Fields::from_parsed(raw.clone(), spans.into_iter());
        strip_hop_by_hop(&mut f);
        let mut left = Vec::new();
        f.for_each(|n, _| left.push(String::from_utf8_lossy(n).to_string()));
        assert_eq!(left, vec!["X-Kept"]);
    }

    #[test]
    fn small_ints_are_shared() {
        assert_eq!(int_value(42), "42");
        assert_eq!(int_value(123_456), "123456");
    }
}
