//! Request-path normalization and escaping, as Kong does before matching and before proxying.
//!
//! [`normalize_path`] mirrors `kong.tools.uri.normalize(uri, true)`: percent-decode every
//! `%XX` triplet except reserved characters (whose hex digits are upper-cased instead), then
//! remove dot segments and merge repeated slashes. [`escape_path`] mirrors
//! `kong.tools.uri.escape`, used on the upstream path before it is sent.

use std::borrow::Cow;

/// Characters that keep their percent-encoding during normalization (RFC 3986 reserved set
/// plus `%`), so that decoding never changes the meaning of the path.
const RESERVED: &[u8] = b"!*'();:@&=+$,/?%#[]";

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Upper-case hex digit for a value below 16.
fn hex_digit(n: u8) -> u8 {
    if n < 10 { b'0' + n } else { b'A' + (n - 10) }
}

fn push_pct(out: &mut Vec<u8>, b: u8) {
    out.extend_from_slice(&[b'%', hex_digit(b >> 4), hex_digit(b & 0x0f)]);
}

/// Kong's `normalize(path, true)`: decode unreserved/other percent triplets, upper-case the
/// hex of reserved ones, remove `.`/`..` segments and merge `//`.
///
/// Returns the input borrowed when nothing changes (the common case), so matching does not
/// allocate. Two deliberate deviations, both only for malformed input:
///
/// - Kong decodes bytes that do not form valid UTF-8 (and its router then fails the request with
///   a 404); a Rust `str` cannot hold them, so such triplets stay percent-encoded (upper-cased).
///   The router treats a path that needed this as matching no route, the same 404 as Kong.
/// - Kong leaves a `%` that starts no valid triplet as is, which makes its normalization not
///   idempotent (`/%4%61` becomes `/%4a`, which a second pass or the upstream decodes to `/J`,
///   a way around prefix routes). Here such a `%` becomes `%25`, so the result is stable.
pub fn normalize_path(raw: &str) -> Cow<'_, str> {
    normalize_checked(raw).0
}

/// [`normalize_path`] plus a flag that is `false` when a decoded triplet was not valid UTF-8.
pub(crate) fn normalize_checked(raw: &str) -> (Cow<'_, str>, bool) {
    if raw.is_empty() || raw == "/" {
        return (Cow::Borrowed(raw), true);
    }
    let (decoded, valid) = if raw.contains('%') {
        percent_decode(raw)
    } else {
        (Cow::Borrowed(raw), true)
    };
    if !needs_dot_removal(&decoded) {
        return (decoded, valid);
    }
    (Cow::Owned(remove_dot_segments(&decoded)), valid)
}

/// Decodes non-reserved `%XX` triplets (hex digits in any case) and upper-cases reserved ones.
fn percent_decode(raw: &str) -> (Cow<'_, str>, bool) {
    let bytes = raw.as_bytes();
    let mut out: Vec<u8> = Vec::with_capacity(bytes.len());
    let mut changed = false;
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%'
            && let (Some(hi), Some(lo)) = (
                bytes.get(i + 1).copied().and_then(hex_value),
                bytes.get(i + 2).copied().and_then(hex_value),
            )
        {
            let v = (hi << 4) | lo;
            if RESERVED.contains(&v) {
                push_pct(&mut out, v);
                // Unchanged when the input hex digits were already upper-case.
                changed |= bytes
                    .get(i + 1..i + 3)
                    .is_some_and(|h| h.iter().any(u8::is_ascii_lowercase));
            } else {
                out.push(v);
                changed = true;
            }
            i += 3;
            continue;
        }
        if b == b'%' {
            // A '%' that starts no triplet is encoded, so no later pass can pair it with decoded
            // hex digits (`%4%61` would otherwise become `%4a`, then `J`).
            out.extend_from_slice(b"%25");
            changed = true;
        } else {
            out.push(b);
        }
        i += 1;
    }
    if !changed {
        return (Cow::Borrowed(raw), true);
    }
    match String::from_utf8(out) {
        Ok(s) => (Cow::Owned(s), true),
        Err(e) => {
            // Decoded bytes that are not UTF-8: keep those bytes encoded. Only decoded bytes can
            // be invalid here because the input itself is a `str`.
            let bytes = e.into_bytes();
            let mut fixed: Vec<u8> = Vec::with_capacity(bytes.len() + 8);
            for chunk in bytes.utf8_chunks() {
                fixed.extend_from_slice(chunk.valid().as_bytes());
                for &b in chunk.invalid() {
                    push_pct(&mut fixed, b);
                }
            }
            let s = String::from_utf8(fixed).unwrap_or_default();
            (Cow::Owned(s), false)
        }
    }
}

/// True when the dot-segment pass would change the path: a `//`, or a segment that is exactly
/// `.` or `..` (including a leading one without a slash). One pass, no allocation.
fn needs_dot_removal(path: &str) -> bool {
    let b = path.as_bytes();
    let mut seg_start = 0;
    for (i, &c) in b.iter().enumerate() {
        if c == b'/' {
            if i > 0 && b.get(i - 1) == Some(&b'/') {
                return true;
            }
            if is_dot_segment(b.get(seg_start..i)) {
                return true;
            }
            seg_start = i + 1;
        }
    }
    is_dot_segment(b.get(seg_start..))
}

fn is_dot_segment(seg: Option<&[u8]>) -> bool {
    matches!(seg, Some(b".") | Some(b".."))
}

/// Kong's dot-segment loop (RFC 3986 §5.2.4 with slash merging). Works on sub-slices of the
/// input; each kept segment includes its leading slash.
fn remove_dot_segments(input: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    let mut rest = input;
    while !rest.is_empty() {
        if rest == "/." {
            rest = "/";
        } else if rest == "/.." {
            rest = "/";
            segments.pop();
        } else if rest == "." || rest == ".." {
            rest = "";
        } else if let Some(r) = rest.strip_prefix("../") {
            rest = r;
        } else if let Some(r) = rest.strip_prefix("./") {
            rest = r;
        } else if rest.starts_with("/./") {
            rest = rest.get(2..).unwrap_or("");
        } else if rest.starts_with("/../") {
            rest = rest.get(3..).unwrap_or("");
            segments.pop();
        } else if rest.starts_with("//") {
            rest = rest.get(1..).unwrap_or("");
        } else {
            // Segment runs up to (not including) the next '/' after the first byte.
            let end = rest
                .as_bytes()
                .iter()
                .skip(1)
                .position(|&b| b == b'/')
                .map_or(rest.len(), |p| p + 1);
            let (seg, tail) = rest.split_at_checked(end).unwrap_or((rest, ""));
            segments.push(seg);
            rest = tail;
        }
    }
    segments.concat()
}

/// Kong's `escape`: percent-encodes every byte outside `!#$&'()*+,/:;=?@[]`, ASCII letters and
/// digits, and `-_.~%`. Applied to the upstream path before proxying so that characters decoded
/// by normalization are sent in a safe form. Borrowed when nothing needs escaping.
pub fn escape_path(path: &str) -> Cow<'_, str> {
    fn allowed(b: u8) -> bool {
        b.is_ascii_alphanumeric() || b"!#$&'()*+,/:;=?@[]-_.~%".contains(&b)
    }
    if path.bytes().all(allowed) {
        return Cow::Borrowed(path);
    }
    let mut out: Vec<u8> = Vec::with_capacity(path.len() + 16);
    for b in path.bytes() {
        if allowed(b) {
            out.push(b);
        } else {
            push_pct(&mut out, b);
        }
    }
    // Only ASCII was produced, so this cannot fail.
    Cow::Owned(String::from_utf8(out).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simple_paths_are_borrowed() {
        for p in ["", "/", "/a/b", "/a/b/", "/index.html", "/a.b/c..d/.e"] {
            assert!(matches!(normalize_path(p), Cow::Borrowed(_)), "{p}");
            assert_eq!(normalize_path(p), p);
        }
    }

    #[test]
    fn decodes_unreserved_and_keeps_reserved() {
        assert_eq!(normalize_path("/%41%62c"), "/Abc");
        assert_eq!(normalize_path("/a%2fb"), "/a%2Fb");
        assert_eq!(normalize_path("/a%2Fb"), "/a%2Fb");
        assert!(matches!(normalize_path("/a%2Fb"), Cow::Borrowed(_)));
        assert_eq!(normalize_path("/%20x"), "/ x");
        assert_eq!(normalize_path("/%c3%a9"), "/é");
        assert_eq!(normalize_path("/%zz%4"), "/%25zz%254");
        assert_eq!(normalize_path("/%4%61"), "/%254a");
        assert_eq!(normalize_path("/100%"), "/100%25");
        assert_eq!(normalize_path("/%25%34%31"), "/%2541");
        assert_eq!(normalize_path("/%3%33"), "/%2533");
        assert_eq!(normalize_path("/users/%6aohn%20doe"), "/users/john doe");
    }

    #[test]
    fn invalid_utf8_triplets_stay_encoded_and_are_flagged() {
        let (p, ok) = normalize_checked("/%ff/x");
        assert_eq!(p, "/%FF/x");
        assert!(!ok);
        let (p, ok) = normalize_checked("/%c3x");
        assert_eq!(p, "/%C3x");
        assert!(!ok);
        assert!(normalize_checked("/%c3%a9").1);
    }

    #[test]
    fn detects_when_dot_removal_is_needed() {
        for p in [
            "/a//b", "//", "/.", "/..", "/a/./b", "/a/../b", ".", "..", "./a", "../a", "a/..",
        ] {
            assert!(needs_dot_removal(p), "{p}");
        }
        for p in ["", "/", "/a", "/a/", "/.a", "/a.", "/...", "/a/.b/c..", "a"] {
            assert!(!needs_dot_removal(p), "{p}");
        }
    }

    #[test]
    fn removes_dot_segments_and_merges_slashes() {
        let cases = [
            ("/a/./b", "/a/b"),
            ("/a/../b", "/b"),
            ("/a/b/..", "/a/"),
            ("/a/b/.", "/a/b/"),
            ("/..", "/"),
            ("/../../a", "/a"),
            ("//a///b//", "/a/b/"),
            ("/a/%2e%2E/b", "/b"),
            ("/route./req", "/route./req"),
            ("/a/.../b", "/a/.../b"),
            ("./a", "a"),
            ("../a", "a"),
            (".", ""),
            ("..", ""),
            ("a/../b", "/b"),
        ];
        for (input, want) in cases {
            assert_eq!(normalize_path(input), want, "{input}");
        }
    }

    #[test]
    fn escape_matches_kong_charset() {
        assert_eq!(
            escape_path("/a-b_c.d~e/%2F?x=1&y=[2]"),
            "/a-b_c.d~e/%2F?x=1&y=[2]"
        );
        assert!(matches!(escape_path("/plain"), Cow::Borrowed(_)));
        assert_eq!(escape_path("/john doe"), "/john%20doe");
        assert_eq!(
            escape_path("/é\"<>\\^`{|}"),
            "/%C3%A9%22%3C%3E%5C%5E%60%7B%7C%7D"
        );
    }
}
