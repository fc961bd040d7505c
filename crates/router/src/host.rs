//! Host and SNI patterns: parsing route values, splitting request `Host` values, matching.
//!
//! Host names and SNIs are compared ASCII-case-insensitively: route values are lower-cased at
//! build time and request values at match time (into a stack buffer, so no allocation).

use std::borrow::Cow;

/// How a route host / SNI compares with the request value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum NamePattern {
    /// `example.com`: equality.
    Exact(Box<str>),
    /// `*.example.com`: the request value ends with `.example.com` (any depth).
    Suffix(Box<str>),
    /// `example.*`: the request value starts with `example.`.
    Prefix(Box<str>),
}

impl NamePattern {
    /// `name` must already be lower-case.
    pub(crate) fn matches(&self, name: &str) -> bool {
        match self {
            NamePattern::Exact(h) => &**h == name,
            NamePattern::Suffix(s) => name.ends_with(&**s),
            NamePattern::Prefix(p) => name.starts_with(&**p),
        }
    }

    /// `*x` becomes a suffix, `x*` a prefix (a leading `*` wins, as in Kong), otherwise exact.
    fn from_wildcard(value: &str) -> NamePattern {
        if let Some(rest) = value.strip_prefix('*') {
            NamePattern::Suffix(rest.into())
        } else if let Some(rest) = value.strip_suffix('*') {
            NamePattern::Prefix(rest.into())
        } else {
            NamePattern::Exact(value.into())
        }
    }
}

/// A route `hosts` element: a name pattern plus an optional required port.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct HostPattern {
    pub(crate) name: NamePattern,
    pub(crate) port: Option<u16>,
}

impl HostPattern {
    /// Parses `example.com`, `*.example.com:8000`, `example.*`, `[::1]:8000`, ...
    pub(crate) fn parse(value: &str) -> HostPattern {
        let (name, port) = split_host_port(value);
        HostPattern {
            name: NamePattern::from_wildcard(&name.to_ascii_lowercase()),
            port,
        }
    }

    /// `name` must be lower-case; `port` is the request's effective port.
    #[cfg(test)]
    pub(crate) fn matches(&self, name: &str, port: u16) -> bool {
        self.port.is_none_or(|p| p == port) && self.name.matches(name)
    }
}

/// Parses a route `snis` element like Kong: `*.x` suffix, `x.*` prefix, otherwise exact; a
/// trailing dot (FQDN form) is dropped except for prefix patterns.
pub(crate) fn parse_sni(value: &str) -> NamePattern {
    let lower = value.to_ascii_lowercase();
    let suffix = lower.starts_with('*');
    if !suffix && let Some(prefix) = lower.strip_suffix('*') {
        return NamePattern::Prefix(prefix.into());
    }
    let trimmed = match lower.strip_suffix('.') {
        Some(t) if lower.len() > 1 => t,
        _ => lower.as_str(),
    };
    match trimmed.strip_prefix('*') {
        Some(rest) if suffix => NamePattern::Suffix(rest.into()),
        _ => NamePattern::Exact(trimmed.into()),
    }
}

/// Splits a `Host` value (request header or route host) into name and port.
///
/// `[v6]:port` and `[v6]` lose their brackets; a value with several colons and no brackets is a
/// bare IPv6 literal without port; `name:` counts as no port. A port that is not a decimal
/// `u16` leaves the whole value as the name (like Kong's `tonumber` failing).
pub(crate) fn split_host_port(value: &str) -> (&str, Option<u16>) {
    if let Some(rest) = value.strip_prefix('[')
        && let Some((inside, after)) = rest.split_once(']')
    {
        return match after.strip_prefix(':') {
            None if after.is_empty() => (inside, None),
            Some("") => (inside, None),
            Some(port) => match parse_port(port) {
                Some(p) => (inside, Some(p)),
                None => (value, None),
            },
            None => (value, None),
        };
    }
    match value.split_once(':') {
        Some((name, port)) if !port.contains(':') => {
            if port.is_empty() {
                (name, None)
            } else {
                match parse_port(port) {
                    Some(p) => (name, Some(p)),
                    None => (value, None),
                }
            }
        }
        _ => (value, None),
    }
}

fn parse_port(s: &str) -> Option<u16> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// True when `name` has ASCII upper-case letters (then it needs [`lower_into`]).
pub(crate) fn has_upper(name: &str) -> bool {
    name.bytes().any(|b| b.is_ascii_uppercase())
}

/// Lower-cases an ASCII host into `buf` without allocating; an owned copy when it does not fit.
pub(crate) fn lower_into<'b>(name: &str, buf: &'b mut [u8]) -> Cow<'b, str> {
    match buf.get_mut(..name.len()) {
        Some(dst) => {
            dst.copy_from_slice(name.as_bytes());
            dst.make_ascii_lowercase();
            // ASCII lower-casing keeps UTF-8 valid, so this never falls back.
            match std::str::from_utf8(dst) {
                Ok(s) => Cow::Borrowed(s),
                Err(_) => Cow::Owned(name.to_ascii_lowercase()),
            }
        }
        None => Cow::Owned(name.to_ascii_lowercase()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_host_and_port() {
        let cases: &[(&str, (&str, Option<u16>))] = &[
            ("", ("", None)),
            ("localhost", ("localhost", None)),
            ("localhost:", ("localhost", None)),
            ("localhost:80", ("localhost", Some(80))),
            ("localhost:23h", ("localhost:23h", None)),
            ("localhost:99999", ("localhost:99999", None)),
            ("::1", ("::1", None)),
            ("[::1]", ("::1", None)),
            ("[::1]:", ("::1", None)),
            ("[::1]:8000", ("::1", Some(8000))),
            ("[::1]:80b", ("[::1]:80b", None)),
            ("*.example.com:123", ("*.example.com", Some(123))),
        ];
        for (input, want) in cases {
            assert_eq!(split_host_port(input), *want, "{input}");
        }
    }

    #[test]
    fn parses_route_hosts() {
        let p = HostPattern::parse("*.Example.com:8000");
        assert_eq!(p.name, NamePattern::Suffix(".example.com".into()));
        assert_eq!(p.port, Some(8000));
        assert_eq!(
            HostPattern::parse("example.*").name,
            NamePattern::Prefix("example.".into())
        );
        assert_eq!(
            HostPattern::parse("[::1]").name,
            NamePattern::Exact("::1".into())
        );
        assert!(HostPattern::parse("*.a.com").matches("x.y.a.com", 1));
        assert!(!HostPattern::parse("*.a.com").matches("a.com", 1));
        assert!(!HostPattern::parse("a.com:81").matches("a.com", 80));
    }

    #[test]
    fn parses_snis() {
        assert_eq!(
            parse_sni("Example.com."),
            NamePattern::Exact("example.com".into())
        );
        assert_eq!(
            parse_sni("*.example.com."),
            NamePattern::Suffix(".example.com".into())
        );
        assert_eq!(
            parse_sni("example.*"),
            NamePattern::Prefix("example.".into())
        );
        assert_eq!(parse_sni("x.*."), NamePattern::Exact("x.*".into()));
        assert_eq!(parse_sni("."), NamePattern::Exact(".".into()));
    }

    #[test]
    fn lowercases_without_allocating() {
        let mut buf = [0u8; 8];
        assert!(!has_upper("a.com") && has_upper("a.Com"));
        assert!(matches!(
            lower_into("A.COM", &mut buf),
            Cow::Borrowed("a.com")
        ));
        assert!(matches!(
            lower_into("A-LONG-HOST.COM", &mut buf),
            Cow::Owned(_)
        ));
        assert_eq!(lower_into("A-LONG-HOST.COM", &mut buf), "a-long-host.com");
    }
}
