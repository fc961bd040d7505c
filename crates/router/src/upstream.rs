//! The upstream request path, built from the service path and the matched request path the way
//! Kong does (`kong/router/utils.lua` `get_upstream_uri_v0`, and the traditional router's `v1`).

/// A route's `path_handling`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PathHandling {
    /// Kong's default: service path, matched remainder and request path are joined as segments
    /// (a slash is added or removed at the junction), and a trailing slash on the request is
    /// kept.
    #[default]
    V0,
    /// Kong's legacy behaviour (the `traditional` flavor only; Kong's `traditional_compatible`
    /// flavor treats `v1` routes as `v0`): plain string concatenation, except that a doubled
    /// slash at the junction is collapsed.
    V1,
}

/// Drops a leading `.`/`..` segment left over after the matched prefix (`/route./req` matched by
/// `/route` leaves `./req`).
fn sanitize_postfix(postfix: &str) -> &str {
    match postfix {
        "." | ".." => "",
        _ => postfix
            .strip_prefix("./")
            .or_else(|| postfix.strip_prefix("../"))
            .unwrap_or(postfix),
    }
}

/// Computes the path sent upstream, exactly as Kong does.
///
/// - `strip_path`: the route's `strip_path`;
/// - `service_path`: the service's `path` (`None` or empty means `/`);
/// - `normalized_path`: the request path after [`normalize_path`](crate::normalize_path), i.e.
///   [`Match::path`](crate::Match::path);
/// - `matched_len`: [`Match::matched_len`](crate::Match::matched_len); `0` means the route
///   matched without a path (Kong then treats the prefix as `/`).
///
/// The result is not escaped: pass it through [`escape_path`](crate::escape_path) before
/// sending, and append the query string yourself.
pub fn upstream_path(
    strip_path: bool,
    path_handling: PathHandling,
    service_path: Option<&str>,
    normalized_path: &str,
    matched_len: usize,
) -> String {
    let base = service_path.filter(|p| !p.is_empty()).unwrap_or("/");
    let req = normalized_path;
    match path_handling {
        PathHandling::V0 => {
            let prefix_len = if strip_path && matched_len > 0 {
                matched_len
            } else {
                1
            };
            let postfix = sanitize_postfix(req.get(prefix_len..).unwrap_or(""));
            v0(strip_path, base, postfix, req)
        }
        PathHandling::V1 => {
            let postfix = if matched_len > 0 {
                sanitize_postfix(req.get(matched_len..).unwrap_or(""))
            } else {
                req.get(1..).unwrap_or("")
            };
            v1(strip_path, base, postfix, req)
        }
    }
}

fn v0(strip_path: bool, base: &str, postfix: &str, req: &str) -> String {
    let base_without_slash = base.strip_suffix('/');
    match (base_without_slash, strip_path) {
        (Some(trimmed), true) => {
            if postfix.is_empty() {
                if base == "/" || req.ends_with('/') {
                    base.to_string()
                } else {
                    trimmed.to_string()
                }
            } else if postfix.starts_with('/') {
                format!("{trimmed}{postfix}")
            } else {
                format!("{base}{postfix}")
            }
        }
        // Keep the whole request path, joined to the base without doubling the slash.
        (Some(_), false) => format!("{base}{}", req.get(1..).unwrap_or("")),
        (None, true) => {
            if postfix.is_empty() {
                if req.len() > 1 && req.ends_with('/') {
                    format!("{base}/")
                } else {
                    base.to_string()
                }
            } else if postfix.starts_with('/') {
                format!("{base}{postfix}")
            } else {
                format!("{base}/{postfix}")
            }
        }
        (None, false) => {
            if req == "/" {
                base.to_string()
            } else {
                format!("{base}{req}")
            }
        }
    }
}

fn v1(strip_path: bool, base: &str, postfix: &str, req: &str) -> String {
    if !strip_path {
        return format!("{base}{}", req.get(1..).unwrap_or(""));
    }
    match base.strip_suffix('/') {
        Some(trimmed) if postfix.starts_with('/') => format!("{trimmed}{postfix}"),
        _ => format!("{base}{postfix}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitizes_postfix() {
        assert_eq!(sanitize_postfix("."), "");
        assert_eq!(sanitize_postfix(".."), "");
        assert_eq!(sanitize_postfix("./a"), "a");
        assert_eq!(sanitize_postfix("../a"), "a");
        assert_eq!(sanitize_postfix(".a"), ".a");
        assert_eq!(sanitize_postfix(""), "");
    }

    #[test]
    fn strip_examples_from_kong() {
        // "/my-route" stripped from "/my-route/hello/world" with service path "/".
        assert_eq!(
            upstream_path(true, PathHandling::V0, None, "/my-route/hello/world", 9),
            "/hello/world"
        );
        assert_eq!(
            upstream_path(true, PathHandling::V0, None, "/my-route", 9),
            "/"
        );
        assert_eq!(
            upstream_path(false, PathHandling::V0, None, "/my-route/hello", 9),
            "/my-route/hello"
        );
        assert_eq!(
            upstream_path(true, PathHandling::V0, Some("/"), "/endel%2Fst", 11),
            "/"
        );
        assert_eq!(
            upstream_path(true, PathHandling::V0, Some(""), "/a/b", 2),
            "/b"
        );
    }
}
