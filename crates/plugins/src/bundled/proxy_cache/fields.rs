//! Which response fields are stored with an entry, which a Hit sends back, and how the
//! Admin API spells them.

use bytes::Bytes;
use http::HeaderName;

pub const X_CACHE_STATUS: HeaderName = HeaderName::from_static("x-cache-status");
pub const X_CACHE_KEY: HeaderName = HeaderName::from_static("x-cache-key");
pub const AGE: HeaderName = HeaderName::from_static("age");

/// Fields the gateway adds to proxied responses itself: they describe one exchange, so they
/// are neither stored nor replayed (Kong adds them after the plugins' `header_filter`).
pub fn is_gateway_field(name: &[u8]) -> bool {
    [
        "via",
        "x-kong-request-id",
        "x-kong-upstream-latency",
        "x-kong-proxy-latency",
        "x-kong-response-latency",
        "x-kong-upstream-status",
    ]
    .iter()
    .any(|n| name.eq_ignore_ascii_case(n.as_bytes()))
}

/// Stored fields that a Hit does not send back: hop-by-hop ones, the length (the body sets
/// it), rate-limit counters and the previous diagnostic headers.
pub fn is_replayed(name: &[u8]) -> bool {
    let lower = name.to_ascii_lowercase();
    let hop_by_hop = [
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "content-length",
        "age",
        "x-cache-status",
        "x-cache-key",
    ]
    .iter()
    .any(|n| lower == n.as_bytes());
    !hop_by_hop && !lower.windows(19).any(|w| w == b"ratelimit-remaining")
}

/// Our own fields with Kong's spelling (as Kong's Admin API shows stored headers).
pub fn display_name(name: &[u8]) -> Bytes {
    if name.eq_ignore_ascii_case(b"x-cache-status") {
        Bytes::from_static(b"X-Cache-Status")
    } else if name.eq_ignore_ascii_case(b"x-cache-key") {
        Bytes::from_static(b"X-Cache-Key")
    } else {
        Bytes::copy_from_slice(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hits_replay_end_to_end_fields_only() {
        assert!(is_replayed(b"Content-Type"));
        assert!(is_replayed(b"Set-Cookie"));
        for name in [
            &b"Content-Length"[..],
            b"Transfer-Encoding",
            b"Connection",
            b"Age",
            b"X-Cache-Status",
            b"x-cache-key",
            b"X-RateLimit-Remaining-Minute",
            b"RateLimit-Remaining",
        ] {
            assert!(!is_replayed(name), "{}", String::from_utf8_lossy(name));
        }
        assert!(is_gateway_field(b"X-Kong-Request-Id") && is_gateway_field(b"via"));
        assert!(!is_gateway_field(b"server"));
        assert_eq!(display_name(b"x-cache-key"), "X-Cache-Key");
        assert_eq!(display_name(b"content-type"), "content-type");
    }
}
