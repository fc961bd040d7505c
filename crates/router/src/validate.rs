//! Route path validation and regex path compilation.
//!
//! [`check_path`] lets the config layer reject bad paths at load time with Kong-like messages;
//! [`compile_path_regex`] is what the router builds from a `~` path.

use crate::normalize::normalize_path;
use regex_automata::meta;
use regex_automata::util::syntax;
use regex_syntax::hir::{Class, Hir, HirKind, Look};
use std::sync::Arc;

/// A compiled `~` path.
#[derive(Debug)]
pub(crate) struct PathRegex {
    pub(crate) regex: meta::Regex,
    /// Bytes every match must start with (the regex is anchored), used to place the regex in the
    /// path index so it only runs for requests sharing that prefix. May be empty.
    pub(crate) literal_prefix: Vec<u8>,
    /// Bytes that can follow the literal prefix in a match, when known: a cheap exact filter
    /// that rejects most non-matching candidates without running the regex.
    pub(crate) next_bytes: Option<ByteSet>,
    /// Group names by group index (index 0, the whole match, has none); shared with every
    /// [`Captures`](crate::Captures) produced.
    pub(crate) names: Arc<[Option<Box<str>>]>,
    /// Number of capture slots (two per group, group 0 included).
    pub(crate) slots: usize,
}

/// The regex text the router compiles for a `~` path: the `~` is dropped, `^` is prepended
/// (Kong anchors at the start only, without grouping, so a top-level `|` leaves later
/// alternatives unanchored exactly as in Kong) and every `?<` becomes `?P<` as Kong does.
pub(crate) fn translate_path_regex(path: &str) -> String {
    let body = path.strip_prefix('~').unwrap_or(path);
    format!("^{}", body.replace("?<", "?P<"))
}

/// Builds a path regex with the same syntax and match semantics as `regex::Regex::new`
/// (leftmost-first, Unicode, UTF-8, same size limit), but searching with the bounded
/// backtracker (PikeVM for long inputs) instead of the DFAs.
///
/// Why: a route table holds hundreds of regexes and most are cold when a request needs one. The
/// one-pass and lazy DFAs walk large transition tables (tens of KB per regex with Unicode
/// classes such as `\d`), costing several microseconds in cache misses on a cold regex; the
/// backtracker walks the compact NFA and stays well under a microsecond. Paths are short, so
/// the backtracker's O(states x length) bound is small.
pub(crate) fn build_path_regex(pattern: &str) -> Result<meta::Regex, Box<meta::BuildError>> {
    let config = meta::Config::new()
        .nfa_size_limit(Some(10 * (1 << 20)))
        .match_kind(regex_automata::MatchKind::LeftmostFirst)
        .utf8_empty(true)
        .onepass(false)
        .dfa(false)
        .hybrid(false);
    meta::Builder::new()
        .configure(config)
        .syntax(syntax::Config::new().utf8(true))
        .build(pattern)
        .map_err(Box::new)
}

/// Compiles a `~` path; the error is a one-line description.
pub(crate) fn compile_path_regex(path: &str) -> Result<PathRegex, String> {
    let pattern = translate_path_regex(path);
    let regex = build_path_regex(&pattern).map_err(|e| regex_failure(path, &e))?;
    let (literal_prefix, next_bytes) = regex_syntax::Parser::new()
        .parse(&pattern)
        .map(|hir| literal_prefix(&hir))
        .unwrap_or_default();
    let names = regex
        .group_info()
        .pattern_names(regex_automata::PatternID::ZERO)
        .map(|n| n.map(Box::from))
        .collect();
    Ok(PathRegex {
        slots: regex.group_info().slot_len(),
        regex,
        literal_prefix,
        next_bytes,
        names,
    })
}

/// Explains why a `~` path did not compile. Kong's `?<` to `?P<` rewrite turns a look-behind
/// into a bad group name, so for those the error of the unrewritten pattern (which names the
/// unsupported look-around) is reported instead.
fn regex_failure(path: &str, err: &meta::BuildError) -> String {
    let body = path.strip_prefix('~').unwrap_or(path);
    if (body.contains("(?<=") || body.contains("(?<!"))
        && let Err(raw) = build_path_regex(&format!("^{body}"))
    {
        return describe_build_error(&raw);
    }
    describe_build_error(err)
}

fn describe_build_error(err: &meta::BuildError) -> String {
    if let Some(syntax) = err.syntax_error() {
        return last_line(&syntax.to_string());
    }
    match err.size_limit() {
        Some(limit) => format!("compiled regex exceeds size limit of {limit} bytes"),
        None => err.to_string(),
    }
}

/// Syntax errors are multi-line (pattern, caret line, error); the last line names the problem,
/// e.g. "look-around, including look-ahead and look-behind, is not supported".
fn last_line(text: &str) -> String {
    let last = text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    last.trim().trim_start_matches("error: ").to_string()
}

/// Turns a `regex` crate error (header regexes) into one line.
pub(crate) fn describe_regex_error(e: &regex::Error) -> String {
    match e {
        regex::Error::Syntax(text) => last_line(text),
        other => other.to_string(),
    }
}

/// A set of byte values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct ByteSet([u64; 4]);

impl ByteSet {
    fn add_range(&mut self, lo: u8, hi: u8) {
        for b in lo..=hi {
            self.0[usize::from(b >> 6)] |= 1 << (b & 63);
        }
    }
    pub(crate) fn contains(&self, b: u8) -> bool {
        self.0
            .get(usize::from(b >> 6))
            .is_some_and(|w| w & (1 << (b & 63)) != 0)
    }
    fn union(mut self, other: ByteSet) -> ByteSet {
        for (a, b) in self.0.iter_mut().zip(other.0) {
            *a |= b;
        }
        self
    }
}

/// The UTF-8 lead byte of a char; monotonic in the code point.
fn lead_byte(c: char) -> u8 {
    let mut buf = [0u8; 4];
    c.encode_utf8(&mut buf);
    buf[0]
}

/// Bytes a non-empty match of `hir` can start with; `None` when unknown or when `hir` can match
/// the empty string (then any continuation is possible).
fn first_bytes(hir: &Hir) -> Option<ByteSet> {
    if hir.properties().minimum_len().is_none_or(|n| n == 0) {
        return None;
    }
    let mut set = ByteSet::default();
    match hir.kind() {
        HirKind::Literal(lit) => set.add_range(*lit.0.first()?, *lit.0.first()?),
        HirKind::Class(Class::Unicode(cls)) => {
            for r in cls.ranges() {
                set.add_range(lead_byte(r.start()), lead_byte(r.end()));
            }
        }
        HirKind::Class(Class::Bytes(cls)) => {
            for r in cls.ranges() {
                set.add_range(r.start(), r.end());
            }
        }
        HirKind::Capture(cap) => return first_bytes(&cap.sub),
        HirKind::Repetition(rep) => return first_bytes(&rep.sub),
        HirKind::Concat(items) => return first_bytes(items.first()?),
        HirKind::Alternation(branches) => {
            for b in branches {
                set = set.union(first_bytes(b)?);
            }
        }
        HirKind::Empty | HirKind::Look(_) => return None,
    }
    Some(set)
}

/// Literal bytes that any match must start with (the literal run right after the leading `^`),
/// and the bytes that may follow them.
fn literal_prefix(hir: &Hir) -> (Vec<u8>, Option<ByteSet>) {
    let HirKind::Concat(items) = hir.kind() else {
        return (Vec::new(), None);
    };
    let mut items = items.iter();
    if !matches!(
        items.next().map(Hir::kind),
        Some(HirKind::Look(Look::Start))
    ) {
        return (Vec::new(), None);
    }
    let mut out = Vec::new();
    for item in items {
        match item.kind() {
            HirKind::Literal(lit) => out.extend_from_slice(&lit.0),
            HirKind::Capture(cap) if matches!(cap.sub.kind(), HirKind::Literal(_)) => {
                if let HirKind::Literal(lit) = cap.sub.kind() {
                    out.extend_from_slice(&lit.0);
                }
            }
            _ => return (out, first_bytes(item)),
        }
    }
    (out, None)
}

/// Validates a route path like Kong's schema (`typedefs.router_path`), so the config layer can
/// reject it at load time:
///
/// - it must start with `/` (prefix) or `~/` (regex) and must not contain `//`;
/// - a prefix made only of RFC 3986 characters must be properly percent-encoded;
/// - a prefix must already be in normalized form (see [`normalize_path`](crate::normalize_path));
/// - a regex must compile with the regex engine the router uses (Rust `regex`: no look-around,
///   no backreferences), reported as `invalid regex: '<re>' (<reason>)`.
pub fn check_path(path: &str) -> Result<(), String> {
    if !path.starts_with('/') && !path.starts_with("~/") {
        return Err("should start with: / (fixed path) or ~/ (regex path)".to_string());
    }
    if path.contains("//") {
        return Err("must not have empty segments".to_string());
    }
    if let Some(re) = path.strip_prefix('~') {
        return match build_path_regex(&translate_path_regex(path)) {
            Ok(_) => Ok(()),
            Err(e) => Err(format!(
                "invalid regex: '{re}' ({})",
                regex_failure(path, &e)
            )),
        };
    }
    // Kong checks percent-encoding only when the path is made of RFC 3986 characters.
    let rfc3986 = path
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"._-~/%:@!$&'()*+,;=".contains(&b));
    if rfc3986 {
        let bytes = path.as_bytes();
        let mut i = 0;
        while let Some(&b) = bytes.get(i) {
            if b != b'%' {
                i += 1;
                continue;
            }
            let hex = |k: usize| bytes.get(k).is_some_and(u8::is_ascii_hexdigit);
            if hex(i + 1) && hex(i + 2) {
                i += 3;
                continue;
            }
            let end = (i + 3).min(bytes.len());
            let bad = path.get(i..end).unwrap_or("%");
            return Err(format!("invalid url-encoded value: '{bad}'"));
        }
    }
    let normalized = normalize_path(path);
    if normalized != path {
        return Err(format!(
            "non-normalized path, consider use '{normalized}' instead"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn translates_like_kong() {
        assert_eq!(translate_path_regex("~/a(?<x>b)"), "^/a(?P<x>b)");
        assert_eq!(translate_path_regex("~/a|/b"), "^/a|/b");
    }

    #[test]
    fn extracts_literal_prefixes() {
        let p = |s: &str| compile_path_regex(s).unwrap().literal_prefix;
        let next = |s: &str| compile_path_regex(s).unwrap().next_bytes;
        let digits = next(r"~/users/(?<id>\d+)").unwrap();
        assert!(digits.contains(b'0') && digits.contains(b'9'));
        assert!(!digits.contains(b'a') && !digits.contains(b'/'));
        assert!(digits.contains(0xD9), "Arabic-Indic digits start with 0xD9");
        let alt = next(r"~/x/(ab|c+|[é])").unwrap();
        assert!(alt.contains(b'a') && alt.contains(b'c') && alt.contains(0xC3));
        assert!(!alt.contains(b'b'));
        assert_eq!(next(r"~/x/\d*"), None, "may match empty");
        assert_eq!(next(r"~/x/(\d+)?"), None);
        assert_eq!(next(r"~/x$"), None);
        assert_eq!(next(r"~/x"), None);
        assert_eq!(p(r"~/users/(?<id>\d+)/profile"), b"/users/");
        assert_eq!(p(r"~/users/\d+"), b"/users/");
        assert_eq!(p(r"~/ab*"), b"/a");
        assert_eq!(p(r"~/a|/b"), b"");
        assert_eq!(p(r"~(?i)/abc"), b"/");
        assert_eq!(p(r"~(?i)ab"), b"");
        assert_eq!(p(r"~(/v1)/x"), b"/v1/x");
        assert_eq!(p(r"~/caf\u{e9}/"), "/café/".as_bytes());
    }

    #[test]
    fn check_path_messages() {
        assert!(check_path("/foo").is_ok());
        assert!(check_path(r"~/foo/(?<id>\d+)$").is_ok());
        assert_eq!(
            check_path("foo").unwrap_err(),
            "should start with: / (fixed path) or ~/ (regex path)"
        );
        assert_eq!(
            check_path("/a//b").unwrap_err(),
            "must not have empty segments"
        );
        assert_eq!(
            check_path("/a%2").unwrap_err(),
            "invalid url-encoded value: '%2'"
        );
        assert_eq!(
            check_path("/a/../b").unwrap_err(),
            "non-normalized path, consider use '/b' instead"
        );
        assert_eq!(
            check_path("/%41").unwrap_err(),
            "non-normalized path, consider use '/A' instead"
        );
        let err = check_path(r"~/(?<=a)b").unwrap_err();
        assert!(err.starts_with(r"invalid regex: '/(?<=a)b' ("), "{err}");
        assert!(err.contains("look-around"), "{err}");
        let err = check_path(r"~/(a)\1").unwrap_err();
        assert!(err.contains("backreferences"), "{err}");
        assert!(!err.contains('\n'), "{err}");
    }
}
