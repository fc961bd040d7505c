//! The admin token: when configured, every request must present it in `Kong-Admin-Token` or
//! `Authorization: Bearer <token>`. Kong OSS has no such check (it relies on binding the Admin
//! API to loopback); Silverback adds it so the API can be exposed safely.

use http::HeaderMap;

/// Compares without stopping at the first difference, so the time taken does not reveal how
/// much of a guess was right. The length is not secret.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    let n = a.len().max(b.len());
    for i in 0..n {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0xff);
        diff |= usize::from(x ^ y);
    }
    std::hint::black_box(diff) == 0
}

/// The token a request carries, if any.
fn presented(headers: &HeaderMap) -> Option<&[u8]> {
    if let Some(v) = headers.get("kong-admin-token") {
        return Some(v.as_bytes());
    }
    let auth = headers.get(http::header::AUTHORIZATION)?.as_bytes();
    let (scheme, rest) = auth.split_at(auth.len().min(7));
    scheme
        .eq_ignore_ascii_case(b"bearer ")
        .then(|| rest.trim_ascii())
}

/// Whether the request may proceed.
pub fn allowed(token: Option<&str>, headers: &HeaderMap) -> bool {
    let Some(token) = token else {
        return true;
    };
    match presented(headers) {
        Some(given) => constant_time_eq(given, token.as_bytes()),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, http::HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn token_checks() {
        assert!(allowed(None, &headers(&[])));
        assert!(!allowed(Some("s3cret"), &headers(&[])));
        assert!(allowed(
            Some("s3cret"),
            &headers(&[("kong-admin-token", "s3cret")])
        ));
        assert!(!allowed(
            Some("s3cret"),
            &headers(&[("kong-admin-token", "s3cre")])
        ));
        assert!(allowed(
            Some("s3cret"),
            &headers(&[("authorization", "Bearer s3cret")])
        ));
        assert!(allowed(
            Some("s3cret"),
            &headers(&[("authorization", "bearer s3cret")])
        ));
        assert!(!allowed(
            Some("s3cret"),
            &headers(&[("authorization", "Basic s3cret")])
        ));
        assert!(!allowed(
            Some("s3cret"),
            &headers(&[("authorization", "Bearer s3cretX")])
        ));
        assert!(constant_time_eq(b"", b""));
        assert!(!constant_time_eq(b"a", b""));
    }
}
