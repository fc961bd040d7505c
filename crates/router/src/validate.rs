//! Route path validation and regex path compilation.
//!
//! [`check_path`] lets the config layer reject bad paths at load time with Kong-like messages;
//! [`compile_path_regex`] is what the router builds from a `~` path.

use crate::Captures;
use crate::normalize::normalize_path;
use crate::path_compiler::{Engines, NFA_SIZE_LIMIT, PathCompiler};
use crate::program::Program;
use regex_automata::nfa::thompson::backtrack::{self, BoundedBacktracker};
use regex_automata::nfa::thompson::pikevm::PikeVM;
use regex_automata::util::primitives::NonMaxUsize;
use regex_automata::util::syntax;
use regex_automata::{Anchored, Input, meta};
use regex_syntax::hir::{Class, Hir, HirKind, Look};
use smallvec::SmallVec;
use std::cell::RefCell;
use std::sync::Arc;

/// A compiled `~` path. It depends on the path text alone (no router state), so a rebuilt router
/// shares it with the router it was rebuilt from. The fields a match needs fill one cache line;
/// the rest is boxed.
#[derive(Debug)]
#[repr(align(64))]
pub(crate) struct PathRegex {
    /// The compact engine; `None` for an unanchored pattern (a top-level `|`).
    program: Option<Program>,
    /// Group names by group index (index 0, the whole match, has none); shared with every
    /// [`Captures`] produced.
    names: Arc<[Option<Box<str>>]>,
    cold: Box<ColdRegex>,
}

/// The parts of a [`PathRegex`] used at build time or by the fallback engines.
#[derive(Debug)]
struct ColdRegex {
    /// Length of the plain literal (outside any group) right after the pattern's leading `^`,
    /// which the engines were compiled without: they search `path[skip..]` anchored. 0 when the
    /// pattern has no such literal; the engines then run the whole pattern.
    skip: usize,
    /// The same NFA under regex-automata's bounded backtracker, for what [`Program`] does not
    /// handle (unanchored patterns, long paths)...
    backtrack: BoundedBacktracker,
    /// ...and under the PikeVM when the path is too long for the backtracker too.
    pikevm: PikeVM,
    /// Bytes every match must start with (the regex is anchored), used to place the regex in the
    /// path index so it only runs for requests sharing that prefix. May be empty.
    literal_prefix: Vec<u8>,
    /// Bytes that can follow the literal prefix in a match, when known: a cheap exact filter
    /// that rejects most non-matching candidates without running the regex.
    next_bytes: Option<ByteSet>,
}

thread_local! {
    /// Backtracker scratch space for the fallback searches on this thread.
    static BACKTRACK_CACHE: RefCell<Option<backtrack::Cache>> = const { RefCell::new(None) };
}

impl PathRegex {
    pub(crate) fn literal_prefix(&self) -> &[u8] {
        &self.cold.literal_prefix
    }

    /// The byte filter: the path byte at the returned offset (the literal prefix length) must be
    /// in the set. `None` when no such filter is known.
    pub(crate) fn filter(&self) -> Option<(ByteSet, u16)> {
        let at = u16::try_from(self.cold.literal_prefix.len()).ok()?;
        Some((self.cold.next_bytes?, at))
    }

    /// Matches the regex against the normalized path: the length of the whole match and, when
    /// a group took part, the captures. Kong anchors the regex at the start of the path.
    pub(crate) fn search(&self, path: &str) -> Option<(usize, Option<Captures>)> {
        // Start fetching the (cold) program and group names together.
        std::hint::black_box((
            self.program.as_ref().map_or(0, Program::touch),
            self.names.first().is_some_and(Option::is_some),
        ));
        let mut slots: SmallVec<[Option<NonMaxUsize>; 16]> =
            smallvec::smallvec![None; 2 * self.names.len()];
        let found = self
            .program
            .as_ref()
            .and_then(|p| p.search(path.as_bytes(), &mut slots));
        let whole = match found {
            // The program starts at the path's start, literal included.
            Some(end) => (0, end?),
            None => self.cold.search_slots(path, &mut slots)?,
        };
        // Kong slices the request path by the *length* of the matched text.
        let len = whole.1.checked_sub(whole.0)?;
        if self.names.len() < 2 {
            return Some((len, None));
        }
        let slot = |i: usize| Some(slots.get(i).copied()??.get());
        let span = |i: usize| Some((slot(2 * i)?, slot(2 * i + 1)?));
        let spans = std::iter::once(Some(whole)).chain((1..self.names.len()).map(span));
        Some((len, Captures::from_spans(path, spans, &self.names)))
    }
}

impl ColdRegex {
    /// The regex-automata search: fills `slots`, returns the whole match's span.
    fn search_slots(
        &self,
        path: &str,
        slots: &mut [Option<NonMaxUsize>],
    ) -> Option<(usize, usize)> {
        if !path.as_bytes().starts_with(&self.literal_prefix) {
            return None;
        }
        let input = if self.skip > 0 {
            Input::new(path).range(self.skip..).anchored(Anchored::Yes)
        } else {
            Input::new(path)
        };
        let found = BACKTRACK_CACHE.with(|cell| {
            let mut guard = cell.try_borrow_mut().ok()?;
            let cache = guard.get_or_insert_with(|| self.backtrack.create_cache());
            self.backtrack.reset_cache(cache);
            self.backtrack.try_search_slots(cache, &input, slots).ok()
        });
        match found {
            Some(found) => found?,
            // Too long for the backtracker.
            None => self
                .pikevm
                .search_slots(&mut self.pikevm.create_cache(), &input, slots)?,
        };
        let slot = |i: usize| Some(slots.get(i).copied()??.get());
        // With a skipped literal the match starts at the path's start.
        let start = if self.skip > 0 { 0 } else { slot(0)? };
        Some((start, slot(1)?))
    }
}

/// The regex text the router compiles for a `~` path: the `~` is dropped, `^` is prepended
/// (Kong anchors at the start only, without grouping, so a top-level `|` leaves later
/// alternatives unanchored exactly as in Kong) and every `?<` becomes `?P<` as Kong does.
pub(crate) fn translate_path_regex(path: &str) -> String {
    let body = path.strip_prefix('~').unwrap_or(path);
    format!("^{}", body.replace("?<", "?P<"))
}

/// Builds a path regex exactly as `regex::Regex::new` would (leftmost-first, Unicode, UTF-8,
/// same size limit), without its DFAs (never searched with: they only cost build time). Used to
/// validate paths and to word errors; matching uses [`compile_path_regex`], which takes the
/// same steps (parse, Thompson NFA with the same configuration), so it fails exactly when this
/// does and finds the same matches.
pub(crate) fn build_path_regex(pattern: &str) -> Result<meta::Regex, Box<meta::BuildError>> {
    let config = meta::Config::new()
        .nfa_size_limit(Some(NFA_SIZE_LIMIT))
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

/// The syntax `regex::Regex::new` uses.
fn syntax_config() -> syntax::Config {
    syntax::Config::new().utf8(true)
}

/// Splits `^literal rest` into the literal's bytes and `rest` (without the `^`), to be searched
/// anchored right after the literal. `None` when the pattern does not start that way (a
/// literal inside a group does not count: its span has to be captured).
fn split_leading_literal(hir: &Hir) -> Option<(Vec<u8>, Hir)> {
    let HirKind::Concat(items) = hir.kind() else {
        return None;
    };
    let (first, rest) = items.split_first()?;
    if !matches!(first.kind(), HirKind::Look(Look::Start)) {
        return None;
    }
    let mut literal = Vec::new();
    let mut rest = rest;
    while let Some((item, tail)) = rest.split_first() {
        let HirKind::Literal(lit) = item.kind() else {
            break;
        };
        literal.extend_from_slice(&lit.0);
        rest = tail;
    }
    (!literal.is_empty()).then(|| (literal, Hir::concat(rest.to_vec())))
}

/// Compiles a `~` path with a compiler of its own; the error is a one-line description.
#[cfg(test)]
pub(crate) fn compile_path_regex(path: &str) -> Result<PathRegex, String> {
    compile_path_regex_with(&mut PathCompiler::new(), path)
}

/// Compiles a `~` path with the build's `compiler`; the error is a one-line description.
pub(crate) fn compile_path_regex_with(
    compiler: &mut PathCompiler,
    path: &str,
) -> Result<PathRegex, String> {
    let pattern = translate_path_regex(path);
    // Errors are reported as `regex::Regex::new` (i.e. `meta::Regex`) reports them; the steps
    // below are the ones it takes, so they fail exactly when it does.
    let failure = |other: String| match build_path_regex(&pattern) {
        Err(e) => regex_failure(path, &e),
        Ok(_) => other,
    };
    let hir = syntax::parse_with(&pattern, &syntax_config()).map_err(|e| failure(e.to_string()))?;
    let (literal_prefix, next_bytes) = literal_prefix(&hir);
    let (literal, hir) = split_leading_literal(&hir).unwrap_or((Vec::new(), hir));
    let skip = literal.len();
    let Engines {
        nfa,
        backtrack,
        pikevm,
    } = compiler.engines(&hir).map_err(failure)?;
    let program = if skip > 0 || nfa.is_always_start_anchored() {
        Program::new(&nfa, &literal)
    } else {
        None
    };
    let names = nfa
        .group_info()
        .pattern_names(regex_automata::PatternID::ZERO)
        .map(|n| n.map(Box::from))
        .collect();
    Ok(PathRegex {
        program,
        names,
        cold: Box::new(ColdRegex {
            skip,
            backtrack,
            pikevm,
            literal_prefix,
            next_bytes,
        }),
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
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
    use proptest::prelude::*;

    /// A match as the router reports it: whole-match length, positional captures and named
    /// captures (`None` when no group took part).
    type Found = (usize, Option<(Vec<Option<String>>, Vec<(String, String)>)>);

    /// What the router reported before the compact engine: `regex::Regex` (the same engine and
    /// configuration as the `meta::Regex` it used) with Kong's rule for exposing captures.
    fn reference(path_rx: &str, path: &str) -> Option<Found> {
        let re = regex::Regex::new(&translate_path_regex(path_rx)).unwrap();
        let caps = re.captures(path)?;
        let len = caps.get(0)?.len();
        if caps.iter().skip(1).all(|c| c.is_none()) {
            return Some((len, None));
        }
        let positional = caps
            .iter()
            .map(|c| c.map(|m| m.as_str().to_string()))
            .collect();
        let named = re
            .capture_names()
            .flatten()
            .filter_map(|n| Some((n.to_string(), caps.name(n)?.as_str().to_string())))
            .collect();
        Some((len, Some((positional, named))))
    }

    fn ours(rx: &PathRegex, path: &str) -> Option<Found> {
        let (len, caps) = rx.search(path)?;
        let caps = caps.map(|c| {
            let positional = c.positional().map(|s| s.map(str::to_string)).collect();
            let named = c
                .named()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect();
            (positional, named)
        });
        Some((len, caps))
    }

    fn assert_same(path_rx: &str, paths: &[&str]) {
        let rx = compile_path_regex(path_rx).unwrap();
        for path in paths {
            assert_eq!(
                ours(&rx, path),
                reference(path_rx, path),
                "{path_rx} on {path:?}"
            );
        }
    }

    #[test]
    fn one_pass_and_backtracking_regexes_capture_as_before() {
        use regex_automata::dfa::onepass;
        let one_pass = r"~/v1/items/(?<id>\d+)/(?<section>[a-z]+)$";
        let not_one_pass = r"~/files/(?<dir>.*)/(?<name>[^/]*?)(\.(?<ext>[a-z]+))?$";
        assert!(onepass::DFA::new(&translate_path_regex(one_pass)).is_ok());
        assert!(onepass::DFA::new(&translate_path_regex(not_one_pass)).is_err());
        for rx in [one_pass, not_one_pass] {
            assert!(compile_path_regex(rx).unwrap().program.is_some(), "{rx}");
        }
        assert_same(
            one_pass,
            &[
                "/v1/items/42/details",
                "/v1/items/42/details/",
                "/v1/items/٤٢/details",
                "/v1/items//details",
                "/v1/items/42",
                "/v1/item",
                "/v2/items/42/details",
            ],
        );
        assert_same(
            not_one_pass,
            &[
                "/files/a/b/c.tar.gz",
                "/files/a/b/README",
                "/files//x.",
                "/files/",
                "/files/é/ü.md",
                "/file",
            ],
        );
        let rx = compile_path_regex(one_pass).unwrap();
        let (len, caps) = rx.search("/v1/items/42/details").unwrap();
        assert_eq!(len, 20);
        let caps = caps.unwrap();
        assert_eq!(caps.get(0), Some("/v1/items/42/details"));
        assert_eq!(caps.name("id"), Some("42"));
        assert_eq!(caps.get(2), Some("details"));
    }

    #[test]
    fn engine_edge_cases_match_as_before() {
        let cases: &[(&str, &[&str])] = &[
            // No group: no captures.
            (r"~/a/\d+$", &["/a/1", "/a/x", "/a/1/"]),
            // A group that does not take part: no captures.
            ("~/a(b)?", &["/a", "/ab", "/abb"]),
            // Top-level alternation: later alternatives are unanchored (regex-automata path).
            ("~/b|/a/(b)", &["/b", "/x/a/b", "/a/b", "/c"]),
            // Literal inside the first group, so nothing is skipped.
            ("~(/v1)/x", &["/v1/x", "/v1/y"]),
            ("~/a/(?i)B(c)", &["/a/bC", "/a/Bc", "/a/b"]),
            (r"~/a\b(x)?", &["/a", "/a/", "/ab", "/ax"]),
            ("~/a/(x*)", &["/a/", "/a/xx", "/a/é"]),
            ("~/(é+)(ü)?/", &["/éé/", "/éü/", "/e/"]),
            ("~/((a)|(b))+$", &["/abab", "/ba", "/"]),
            ("~/a/(.{2,3}?)(.*)", &["/a/xyz", "/a/x", "/a/éüö"]),
            ("~/x/(?:(a)|a(b))c", &["/x/abc", "/x/ac"]),
            (r"~/(?m)a$\n?", &["/a", "/a\n"]),
        ];
        for (rx, paths) in cases {
            assert_same(rx, paths);
        }
        // Paths too long for the compact engine's visited set fall back to regex-automata.
        let long = format!("/a/{}", "x".repeat(300_000));
        assert_same("~/a/(.*)$", &[&long]);
        assert_same("~/a/(x+)(y?)", &[&long]);
    }

    /// A small regex grammar over the alphabet the paths use.
    fn regex_piece() -> impl Strategy<Value = String> {
        let leaf = prop_oneof![
            Just("a".to_string()),
            Just("b".to_string()),
            Just("/".to_string()),
            Just("é".to_string()),
            Just("[a-b]".to_string()),
            Just(r"\d".to_string()),
            Just(r"\w".to_string()),
            Just(".".to_string()),
            Just("$".to_string()),
            Just(r"\b".to_string()),
            Just(String::new()),
        ];
        leaf.prop_recursive(4, 24, 3, |inner| {
            prop_oneof![
                (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a}{b}")),
                (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("(?:{a}|{b})")),
                inner.clone().prop_map(|a| format!("({a})")),
                inner.clone().prop_map(|a| format!("(?:{a})*")),
                inner.clone().prop_map(|a| format!("(?:{a})+?")),
                inner.clone().prop_map(|a| format!("(?:{a})?")),
                inner.prop_map(|a| format!("(?:{a}){{1,2}}")),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]
        #[test]
        fn compact_engine_matches_regex(
            prefix in "(/[ab]{0,2}){0,2}",
            body in regex_piece(),
            alt in proptest::option::weighted(0.2, regex_piece()),
            paths in proptest::collection::vec("[/ab1é]{0,10}", 1..8),
        ) {
            let mut path_rx = format!("~{prefix}{body}");
            if let Some(alt) = alt {
                path_rx = format!("{path_rx}|{alt}");
            }
            let rx = compile_path_regex(&path_rx).unwrap();
            for path in &paths {
                let path = format!("{prefix}{path}");
                prop_assert_eq!(ours(&rx, &path), reference(&path_rx, &path), "{} on {:?}", path_rx, path);
            }
        }
    }

    #[test]
    fn translates_like_kong() {
        assert_eq!(translate_path_regex("~/a(?<x>b)"), "^/a(?P<x>b)");
        assert_eq!(translate_path_regex("~/a|/b"), "^/a|/b");
    }

    #[test]
    fn extracts_literal_prefixes() {
        let p = |s: &str| compile_path_regex(s).unwrap().cold.literal_prefix;
        let next = |s: &str| compile_path_regex(s).unwrap().cold.next_bytes;
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
