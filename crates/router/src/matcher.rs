//! Compiled matchers: one per route part (see [`crate::priority::split`]), holding every
//! condition in a form that is cheap to check against a request.
//!
//! A matcher depends on its route's [`RouteSpec`] alone (not on the route's position or on the
//! other routes), so a rebuilt router shares it, through an `Arc`, with the router it was
//! rebuilt from. Hosts and paths are mostly decided by the index. A dense [`Head`] per matcher
//! (per router: it holds the route's position) settles most candidates (methods, prefix paths,
//! the byte filter of regex paths); [`Matcher::check_fields`] checks the remaining fields, and
//! regex paths run from the matcher's own regexes (see [`crate::program`]).

use crate::host::{HostPattern, NamePattern, parse_sni};
use crate::index::FxMap;
use crate::path_compiler::PathCompiler;
use crate::priority::{Part, is_regex, priority};
use crate::validate::{PathRegex, compile_path_regex_with, describe_regex_error};
use crate::{BuildError, Captures, NetMatch, Request, RouteSpec};
use http::HeaderName;
use regex::Regex;
use std::borrow::Cow;
use std::net::IpAddr;
use uuid::Uuid;

/// State shared by the compilations of one build, to avoid repeating work.
pub(crate) struct Compiler {
    paths: PathCompiler,
    /// `~*` header regexes by lower-cased pattern: configs repeat the same few (a `Regex` clone
    /// shares the compiled program), and each costs tens of microseconds to compile.
    header_regexes: FxMap<String, Regex>,
}

impl Compiler {
    pub(crate) fn new() -> Self {
        Compiler {
            paths: PathCompiler::new(),
            header_regexes: FxMap::default(),
        }
    }

    fn header_regex(&mut self, pattern: String) -> Result<Regex, regex::Error> {
        if let Some(re) = self.header_regexes.get(&pattern) {
            return Ok(re.clone());
        }
        let re = Regex::new(&pattern)?;
        self.header_regexes.insert(pattern, re.clone());
        Ok(re)
    }
}

/// Per-request values shared by all matcher checks, computed once per `find`.
#[derive(Debug)]
pub(crate) struct RequestCtx<'r> {
    pub(crate) method: &'r str,
    pub(crate) headers: &'r dyn crate::Headers,
    pub(crate) https: bool,
    /// Lower-cased SNI.
    pub(crate) sni: Option<&'r str>,
    /// Lower-cased host name without port; empty when the request has no Host.
    pub(crate) host: &'r str,
    /// The Host header's port, or the local port when the Host header has none.
    pub(crate) port: u16,
    /// The normalized path.
    pub(crate) path: &'r str,
    pub(crate) src: (IpAddr, u16),
    pub(crate) dst: (IpAddr, u16),
}

impl<'r> RequestCtx<'r> {
    pub(crate) fn new(
        req: &'r Request<'r>,
        host: &'r str,
        port: u16,
        sni: Option<&'r str>,
        path: &'r str,
    ) -> Self {
        RequestCtx {
            method: req.method,
            headers: req.headers,
            https: req.https,
            sni,
            host,
            port,
            path,
            src: (req.src.ip().to_canonical(), req.src.port()),
            dst: (req.dst.ip().to_canonical(), req.dst.port()),
        }
    }
}

/// Bit per common method, so most method checks are one AND on the compact [`Head`].
pub(crate) fn method_bit(method: &str) -> u16 {
    match method {
        "GET" => 1,
        "POST" => 1 << 1,
        "PUT" => 1 << 2,
        "DELETE" => 1 << 3,
        "PATCH" => 1 << 4,
        "HEAD" => 1 << 5,
        "OPTIONS" => 1 << 6,
        "TRACE" => 1 << 7,
        "CONNECT" => 1 << 8,
        _ => CUSTOM_METHOD,
    }
}

/// Stands for every method without its own bit; those are compared as strings.
pub(crate) const CUSTOM_METHOD: u16 = 1 << 15;

/// The hot part of a matcher, kept in a dense array indexed by rank: enough to accept a typical
/// prefix or path-less candidate, or to reject most regex candidates, without touching the full
/// [`Matcher`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Head {
    /// Index of the original route.
    pub(crate) route: u32,
    /// Prefix or no path: length of the matcher's prefixes (0 for no path). Regex paths: index
    /// of the byte filter of the first of the matcher's regexes in the router's filter table
    /// (the others follow it).
    pub(crate) aux: u32,
    /// OR of [`method_bit`]s; 0 when the route has no methods.
    pub(crate) methods: u16,
    /// For a single regex path, its byte filter (see [`PathRegex::next_set`]); 0: none.
    pub(crate) next_set: u16,
    /// Where that filter applies: the regex's literal prefix length.
    pub(crate) next_at: u16,
    /// Needs [`Matcher::check_fields`]: has SNIs, sources, destinations or headers.
    pub(crate) fields: bool,
    /// The path rule is regexes.
    pub(crate) regex: bool,
}

impl Head {
    /// `Some(true)`: accepted on the head alone; `Some(false)`: rejected; `None`: needs
    /// [`Head::needs_fields`] and/or a regex search.
    pub(crate) fn quick(&self, method_bit: u16) -> Option<bool> {
        if self.methods != 0 {
            if self.methods & method_bit == 0 {
                return Some(false);
            }
            if method_bit == CUSTOM_METHOD {
                return None;
            }
        }
        if self.fields || self.regex {
            None
        } else {
            Some(true)
        }
    }

    /// Whether [`Matcher::check_fields`] has anything to check that the head did not.
    pub(crate) fn needs_fields(&self, method_bit: u16) -> bool {
        self.fields || (self.methods != 0 && method_bit == CUSTOM_METHOD)
    }
}

/// The path condition of a matcher.
#[derive(Debug)]
pub(crate) enum PathRule {
    /// No path configured.
    Any,
    /// Prefixes, all of the same length (the split guarantees it).
    Prefix(Vec<Box<str>>),
    /// Regexes, tried in configuration order: [`Matcher::first_regex`], then these.
    Regex(Box<[PathRegex]>),
}

/// One accepted header value: compared after lower-casing the request value.
#[derive(Debug)]
enum HeaderValueRule {
    /// ASCII-lower-cased configured value, compared for equality.
    Exact(Box<str>),
    /// `~*` value: the ASCII-lower-cased regex, searched unanchored.
    Regex(Regex),
}

#[derive(Debug)]
struct HeaderRule {
    /// `None` when the configured name is not a valid header name: it never matches.
    name: Option<HeaderName>,
    values: Vec<HeaderValueRule>,
}

impl HeaderRule {
    /// Any value line of the header matches any accepted value.
    fn matches(&self, headers: &dyn crate::Headers) -> bool {
        let Some(name) = &self.name else {
            return false;
        };
        headers.any_value(name.as_str(), &mut |value| {
            // Kong fails the whole request (404) on a non-UTF-8 value of a header that some route
            // uses; here only that line fails to match.
            let Ok(text) = std::str::from_utf8(value) else {
                return false;
            };
            let lowered = lowercase_value(text);
            self.values.iter().any(|rule| match rule {
                HeaderValueRule::Exact(v) => **v == *lowered,
                HeaderValueRule::Regex(re) => re.is_match(&lowered),
            })
        })
    }
}

/// Kong lower-cases request header values with Unicode rules before comparing.
fn lowercase_value(text: &str) -> Cow<'_, str> {
    if text.is_ascii() {
        if text.bytes().any(|b| b.is_ascii_uppercase()) {
            Cow::Owned(text.to_ascii_lowercase())
        } else {
            Cow::Borrowed(text)
        }
    } else {
        Cow::Owned(text.to_lowercase())
    }
}

/// What a successful path check yields.
#[derive(Debug)]
pub(crate) struct PathHit {
    pub(crate) matched_len: usize,
    pub(crate) captures: Option<Captures>,
}

/// A compiled route part.
#[derive(Debug)]
pub(crate) struct Matcher {
    /// A regex matcher's first regex, inline: a regex candidate then costs one cache line here
    /// before its program, as an entry of a flat regex table would.
    first_regex: Option<PathRegex>,
    pub(crate) id: Uuid,
    pub(crate) priority: u64,
    pub(crate) hosts: Vec<HostPattern>,
    pub(crate) path: PathRule,
    /// OR of [`method_bit`]s of `methods`.
    method_bits: u16,
    methods: Vec<Box<str>>,
    snis: Vec<NamePattern>,
    /// `None`: no constraint.
    sources: Option<Vec<NetMatch>>,
    destinations: Option<Vec<NetMatch>>,
    headers: Vec<HeaderRule>,
}

/// Kong drops a whole `sources`/`destinations` condition when one element has neither ip nor
/// port (its schema forbids that); an empty list is no condition either.
pub(crate) fn net_rule(list: &[NetMatch]) -> Option<Vec<NetMatch>> {
    if list.is_empty() || list.iter().any(|n| n.ip.is_none() && n.port.is_none()) {
        None
    } else {
        Some(list.to_vec())
    }
}

pub(crate) fn net_matches(list: &[NetMatch], (ip, port): (IpAddr, u16)) -> bool {
    list.iter()
        .any(|n| n.ip.is_none_or(|net| net.contains(&ip)) && n.port.is_none_or(|p| p == port))
}

impl Matcher {
    /// Compiles one part of `route`, which is at position `index` (for errors only).
    pub(crate) fn build(
        index: usize,
        route: &RouteSpec,
        part: &Part<'_>,
        compiler: &mut Compiler,
    ) -> Result<Self, BuildError> {
        let mut first_regex = None;
        let path = if part.paths.is_empty() {
            PathRule::Any
        } else if part.paths.iter().all(|p| is_regex(p)) {
            let mut more = Vec::new();
            for p in &part.paths {
                let compiled =
                    compile_path_regex_with(&mut compiler.paths, p).map_err(|reason| {
                        BuildError::InvalidPath {
                            index,
                            id: route.id,
                            path: (*p).to_string(),
                            reason,
                        }
                    })?;
                if first_regex.is_none() {
                    first_regex = Some(compiled);
                } else {
                    more.push(compiled);
                }
            }
            PathRule::Regex(more.into_boxed_slice())
        } else {
            PathRule::Prefix(part.paths.iter().map(|p| Box::from(*p)).collect())
        };

        let mut headers = Vec::with_capacity(route.headers.len());
        for (name, values) in &route.headers {
            if values.is_empty() {
                return Err(BuildError::EmptyHeaderValues {
                    index,
                    id: route.id,
                    name: name.clone(),
                });
            }
            let mut rules = Vec::with_capacity(values.len());
            for value in values {
                let rule = match value.strip_prefix("~*") {
                    Some(re) => {
                        let re = compiler
                            .header_regex(re.to_ascii_lowercase())
                            .map_err(|e| BuildError::InvalidHeaderRegex {
                                index,
                                id: route.id,
                                name: name.clone(),
                                value: value.clone(),
                                reason: describe_regex_error(&e),
                            })?;
                        HeaderValueRule::Regex(re)
                    }
                    None => HeaderValueRule::Exact(value.to_ascii_lowercase().into()),
                };
                rules.push(rule);
            }
            // Kong reads `http.headers.<name>` with dashes and underscores equivalent.
            let wire_name = name.to_ascii_lowercase().replace('_', "-");
            headers.push(HeaderRule {
                name: HeaderName::from_bytes(wire_name.as_bytes()).ok(),
                values: rules,
            });
        }

        Ok(Matcher {
            first_regex,
            id: part.id,
            priority: priority(route, &part.paths),
            hosts: route.hosts.iter().map(|h| HostPattern::parse(h)).collect(),
            path,
            method_bits: route.methods.iter().fold(0, |acc, m| acc | method_bit(m)),
            methods: route
                .methods
                .iter()
                .map(|m| Box::from(m.as_str()))
                .collect(),
            snis: route.snis.iter().map(|s| parse_sni(s)).collect(),
            sources: net_rule(&route.sources),
            destinations: net_rule(&route.destinations),
            headers,
        })
    }

    /// Regex `sub` of a regex matcher, in configuration order.
    pub(crate) fn regex(&self, sub: usize) -> Option<&PathRegex> {
        match (sub.checked_sub(1), &self.path) {
            (None, _) => self.first_regex.as_ref(),
            (Some(i), PathRule::Regex(more)) => more.get(i),
            _ => None,
        }
    }

    /// A regex matcher's regexes in configuration order; none for other matchers.
    pub(crate) fn regexes(&self) -> impl Iterator<Item = &PathRegex> {
        let more = match &self.path {
            PathRule::Regex(more) => &more[..],
            _ => &[],
        };
        self.first_regex.iter().chain(more)
    }

    /// The index keys of the matcher, in the order of its paths: prefixes, regex literal
    /// prefixes, or `[b""]` for no path.
    pub(crate) fn keys(&self) -> smallvec::SmallVec<[&[u8]; 2]> {
        match &self.path {
            PathRule::Any => smallvec::smallvec![&b""[..]],
            PathRule::Prefix(prefixes) => prefixes.iter().map(|p| p.as_bytes()).collect(),
            PathRule::Regex(_) => self.regexes().map(PathRegex::literal_prefix).collect(),
        }
    }

    /// The compact form used for the first check of a candidate, for route `route`. `filters`
    /// is where the router's filter table will hold the matcher's regex filters (regex matchers
    /// only), `first_filter` the first of them (see [`PathRegex::filter`]).
    pub(crate) fn head(&self, route: u32, filters: u32, first_filter: (u16, u16)) -> Head {
        let regex = matches!(self.path, PathRule::Regex(_));
        let (aux, (next_set, next_at)) = match &self.path {
            PathRule::Any => (0, (0, 0)),
            PathRule::Prefix(p) => (
                p.first()
                    .map_or(0, |p| u32::try_from(p.len()).unwrap_or(u32::MAX)),
                (0, 0),
            ),
            // With several regexes the head cannot filter: any of them may match.
            PathRule::Regex(more) if more.is_empty() => (filters, first_filter),
            PathRule::Regex(_) => (filters, (0, 0)),
        };
        Head {
            route,
            aux,
            methods: self.method_bits,
            next_set,
            next_at,
            fields: !self.snis.is_empty()
                || self.sources.is_some()
                || self.destinations.is_some()
                || !self.headers.is_empty(),
            regex,
        }
    }

    /// Every condition except hosts and paths, cheapest first.
    pub(crate) fn check_fields(&self, ctx: &RequestCtx<'_>) -> bool {
        if !self.methods.is_empty() && !self.methods.iter().any(|m| **m == *ctx.method) {
            return false;
        }
        // SNIs only constrain https requests (Kong: `net.protocol != "https" || sni ...`).
        if !self.snis.is_empty() && ctx.https {
            match ctx.sni {
                Some(sni) if self.snis.iter().any(|p| p.matches(sni)) => {}
                _ => return false,
            }
        }
        if let Some(list) = &self.sources
            && !net_matches(list, ctx.src)
        {
            return false;
        }
        if let Some(list) = &self.destinations
            && !net_matches(list, ctx.dst)
        {
            return false;
        }
        self.headers.iter().all(|h| h.matches(ctx.headers))
    }
}
