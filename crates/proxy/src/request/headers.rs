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

/// Headers of a client request that are never forwarded: hop-by-hop ones, and `Expect` (the
/// gateway answers `100 Continue` itself).
fn never_forwarded(name: &HeaderName) -> bool {
    is_hop_by_hop(name) || *name == http::header::EXPECT
}

/// Whether a header is hop-by-hop (RFC 9110 §7.6.1) and never forwarded as is.
pub fn is_hop_by_hop(name: &HeaderName) -> bool {
    *name == CONNECTION
        || *name == TE
        || *name == TRAILER
        || *name == TRANSFER_ENCODING
        || *name == UPGRADE
        || *name == KEEP_ALIVE
        || *name == PROXY_CONNECTION
}

/// The upstream request's headers as an overlay on the client's: the client's map is kept as
/// parsed and only the differences are recorded, so forwarding needs no re-hashing. Hop-by-hop
/// headers (and those the client's `Connection` names) are never sent.
#[derive(Debug, Default)]
pub struct Outgoing {
    client: HeaderMap,
    set: Vec<(HeaderName, HeaderValue)>,
    removed: smallvec::SmallVec<[HeaderName; 2]>,
}

impl Outgoing {
    pub fn new(client: HeaderMap) -> Self {
        let mut out = Outgoing {
            client,
            // The proxy sets about ten headers; one allocation, and the struct stays small to move.
            set: Vec::with_capacity(12),
            removed: smallvec::SmallVec::new(),
        };
        let listed: smallvec::SmallVec<[HeaderName; 4]> = out
            .client
            .get_all(CONNECTION)
            .iter()
            .flat_map(|v| v.to_str().unwrap_or_default().split(','))
            .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
            .filter(|n| !is_hop_by_hop(n))
            .collect();
        out.removed.extend(listed);
        out
    }

    /// The value the upstream will see for `name`.
    pub fn get(&self, name: &HeaderName) -> Option<&HeaderValue> {
        if let Some((_, v)) = self.set.iter().find(|(n, _)| n == name) {
            return Some(v);
        }
        if never_forwarded(name) || self.removed.contains(name) {
            return None;
        }
        self.client.get(name)
    }

    /// Adds a header the proxy sets and has not set before (no search for an earlier value).
    pub fn set_new(&mut self, name: HeaderName, value: HeaderValue) {
        debug_assert!(!self.set.iter().any(|(n, _)| *n == name));
        self.set.push((name, value));
    }

    /// Sets a header, replacing every value the client sent for it.
    pub fn set(&mut self, name: HeaderName, value: HeaderValue) {
        match self.set.iter_mut().find(|(n, _)| *n == name) {
            Some(slot) => slot.1 = value,
            None => self.set.push((name, value)),
        }
    }

    /// Appends `, value` to the header's current value, or sets it.
    pub fn append_list(&mut self, name: HeaderName, value: &[u8]) {
        let joined = match self.get(&name) {
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
            self.set(name, v);
        }
    }

    pub fn remove(&mut self, name: &HeaderName) {
        self.set.retain(|(n, _)| n != name);
        if !self.removed.contains(name) && self.client.contains_key(name) {
            self.removed.push(name.clone());
        }
    }

    pub fn contains(&self, name: &HeaderName) -> bool {
        self.get(name).is_some()
    }

    /// Every header as it goes on the wire: the client's that survive, then the set ones.
    pub fn for_each(&self, mut f: impl FnMut(&HeaderName, &HeaderValue)) {
        for (name, value) in &self.client {
            if never_forwarded(name)
                || self.removed.contains(name)
                || self.set.iter().any(|(n, _)| n == name)
            {
                continue;
            }
            f(name, value);
        }
        for (name, value) in &self.set {
            f(name, value);
        }
    }
}

/// Removes hop-by-hop headers (RFC 9110 §7.6.1), including those named in `Connection`.
pub fn strip_hop_by_hop(h: &mut HeaderMap) {
    // Remove only what is there: each removal re-hashes the name.
    let present: smallvec::SmallVec<[HeaderName; 4]> =
        h.keys().filter(|n| is_hop_by_hop(n)).cloned().collect();
    if present.is_empty() {
        return;
    }
    if let Some(conn) = h.get(CONNECTION) {
        let named: Vec<HeaderName> = conn
            .to_str()
            .unwrap_or_default()
            .split(',')
            .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
            .filter(|n| !is_hop_by_hop(n))
            .collect();
        for n in named {
            h.remove(n);
        }
    }
    for n in present {
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

#[cfg(test)]
mod outgoing_tests {
    use super::*;

    #[test]
    fn overlay_replaces_drops_and_appends() {
        let mut client = HeaderMap::new();
        client.insert(CONNECTION, HeaderValue::from_static("keep-alive, X-Secret"));
        client.insert("x-secret", HeaderValue::from_static("1"));
        client.insert("x-keep", HeaderValue::from_static("k"));
        client.insert(X_FORWARDED_FOR, HeaderValue::from_static("1.1.1.1"));
        client.insert(X_REAL_IP, HeaderValue::from_static("spoof"));
        let mut out = Outgoing::new(client);
        out.append_list(X_FORWARDED_FOR, b"2.2.2.2");
        out.set(X_REAL_IP, HeaderValue::from_static("2.2.2.2"));
        out.remove(&HeaderName::from_static("x-keep"));
        let mut wire = Vec::new();
        out.for_each(|n, v| wire.push(format!("{}: {}", n, v.to_str().unwrap())));
        assert_eq!(
            wire,
            vec!["x-forwarded-for: 1.1.1.1, 2.2.2.2", "x-real-ip: 2.2.2.2"]
        );
        assert!(out.get(&CONNECTION).is_none());
    }
}
