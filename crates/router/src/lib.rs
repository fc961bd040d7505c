//! Kong's `traditional_compatible` router: matches a request to a route.
//!
//! A [`Router`] is compiled once per config snapshot from [`RouteSpec`]s and is immutable
//! afterwards; matching does not allocate on the common path (only a path that needs
//! normalizing or a regex path with captures does).
//!
//! The router only decides *which* route matches. Protocol enforcement (426 / https redirect,
//! gRPC checks) happens in the proxy, as in Kong, where a `protocols: [https]` route still matches
//! a plain-http request so the gateway can answer 426 or redirect.
//!
//! How it works: [`Router::build`] splits routes by path group and computes priorities (the
//! rules of Kong's `transform.lua`), compiles each part into a matcher, orders matchers by
//! (priority, UUID) descending and places them in an index (host buckets, each with a radix
//! tree over path prefixes and regex literal prefixes). [`Router::find`] normalizes the path,
//! gathers the candidates from the buckets of the request host and from the host-less bucket,
//! and verifies them in rank order, so the first one that passes is the one Kong would pick.
//! Regex paths are filtered by their literal prefix (the index) and the byte after it (the
//! matcher's head) before any engine runs, and are searched with a compact backtracker whose
//! program is one contiguous block (`program.rs`): a regex is almost always cache-cold when a
//! request needs it, so what it costs is mostly the cache lines it touches.
//!
//! Priorities are what Kong's `get_priority` actually computes, not the layout its comment
//! documents: its match-weight, header-count and `regex_priority` shifts are 32-bit (see
//! `priority.rs`). So a plain-hosts-only route, then a regex path, outrank any route with up to
//! three fields set; a route with four or more fields, or a regex path with `regex_priority`
//! -1..=-4096, sorts above all of them.
//!
//! Where this router knowingly differs from Kong 3.x (all edge cases, see the item docs):
//!
//! - A priority field that the 32-bit shift makes negative (match weight 4..=7, or such a
//!   `regex_priority`) is sign-extended, as in Kong with `get_priority` JIT-compiled. Run by
//!   LuaJIT's interpreter (Kong's bundled LuaJIT, x86-64), such a field becomes bit 63 alone, so
//!   the order *among* those routes can differ there.
//! - Host names and SNIs compare case-insensitively (Kong compares them as sent).
//! - `[v6]:port` hosts are split into address and port (Kong only splits `name:port`).
//! - [`normalize_path`] encodes a stray `%` as `%25` so that normalization is idempotent, and
//!   keeps triplets that would decode to invalid UTF-8 encoded (Kong then fails with a 404, and
//!   so does [`Router::find`]).

mod build;
mod host;
mod index;
mod matcher;
mod normalize;
mod path_compiler;
mod priority;
mod program;
mod stream;
mod upstream;
mod validate;

pub use build::BuildStats;
pub use normalize::{escape_path, normalize_path};
pub use stream::{StreamRequest, StreamRouter};
pub use upstream::{PathHandling, upstream_path};
pub use validate::check_path;

use build::{Slot, SpecTable};
use index::{Entry, Index, Lists, Places, first_accepted};
use matcher::{PathHit, RequestCtx, method_bit};
use smallvec::SmallVec;
use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::Arc;
use uuid::Uuid;

/// A route as the router sees it: only the fields that take part in matching.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouteSpec {
    /// Route id; the final tie-break between routes of equal priority (higher id first, as Kong).
    pub id: Uuid,
    /// Exact, case-sensitive method names.
    pub methods: Vec<String>,
    /// `example.com`, `*.example.com`, `example.*`, optionally with `:port`.
    pub hosts: Vec<String>,
    /// `/prefix` or `~regex` (Kong 3.0 syntax; format 1.1 files are converted before this point).
    pub paths: Vec<String>,
    /// Header name → accepted values; a value starting with `~*` is a case-insensitive regex.
    pub headers: Vec<(String, Vec<String>)>,
    /// Only checked on https requests.
    pub snis: Vec<String>,
    /// Client address conditions; any element may match.
    pub sources: Vec<NetMatch>,
    /// Local address conditions; any element may match.
    pub destinations: Vec<NetMatch>,
    /// Orders regex paths among otherwise-equal routes, higher first for 0..=4095; ignored for
    /// prefixes. Kong keeps only its low 13 bits, and -1..=-4096 sort above every other route
    /// (see the crate docs).
    pub regex_priority: i64,
}

/// One `sources` / `destinations` element.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetMatch {
    /// A single address (`/32`, `/128`) or a CIDR range.
    pub ip: Option<ipnet::IpNet>,
    pub port: Option<u16>,
}

/// What the router needs from a request.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// As sent, e.g. `GET`.
    pub method: &'a str,
    /// The Host header (or `:authority`) as sent, possibly with a port; empty when absent.
    pub host: &'a str,
    /// The raw request path, without the query string, not yet normalized.
    pub path: &'a str,
    /// `true` when the client connection is TLS.
    pub https: bool,
    pub headers: &'a dyn Headers,
    /// The TLS server name, when the client sent one.
    pub sni: Option<&'a str>,
    /// The client address (after real-IP processing).
    pub src: SocketAddr,
    /// The local address the request arrived on.
    pub dst: SocketAddr,
}

/// Read access to request headers, for routes that match on them.
pub trait Headers {
    /// Whether any value line of the header satisfies `pred`. `name` is lower case; the lookup
    /// is case-insensitive.
    fn any_value(&self, name: &str, pred: &mut dyn FnMut(&[u8]) -> bool) -> bool;
}

impl Headers for http::HeaderMap {
    fn any_value(&self, name: &str, pred: &mut dyn FnMut(&[u8]) -> bool) -> bool {
        self.get_all(name).iter().any(|v| pred(v.as_bytes()))
    }
}

impl Headers for silverback_http::Fields {
    fn any_value(&self, name: &str, pred: &mut dyn FnMut(&[u8]) -> bool) -> bool {
        self.get_all(name).any(pred)
    }
}

impl std::fmt::Debug for dyn Headers + '_ {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Headers")
    }
}

/// Why [`Router::build`] rejected a configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    /// A `~` path that the regex engine cannot compile (syntax error, or a feature Rust's
    /// `regex` lacks such as look-around or backreferences).
    #[error("route #{index} ({id}): invalid regex path '{path}': {reason}")]
    InvalidPath {
        index: usize,
        id: Uuid,
        path: String,
        reason: String,
    },
    /// A `~*` header value that does not compile.
    #[error("route #{index} ({id}): header '{name}': invalid regex value '{value}': {reason}")]
    InvalidHeaderRegex {
        index: usize,
        id: Uuid,
        name: String,
        value: String,
        reason: String,
    },
    /// A header with an empty list of values (Kong rejects the route's expression).
    #[error("route #{index} ({id}): header '{name}' has no values")]
    EmptyHeaderValues {
        index: usize,
        id: Uuid,
        name: String,
    },
    /// More route parts than the index can number.
    #[error("too many routes: {0}")]
    TooManyRoutes(usize),
}

/// Regex path captures, as Kong exposes them to plugins (`uri_captures`): positional groups
/// (0 is the whole match) and named groups. Holds a copy of the matched text; group spans and
/// names are shared, so building one costs a single allocation for up to five groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Captures {
    /// The whole match; spans are relative to it.
    text: String,
    /// Per group, its byte range in `text`; `None` when the group did not take part.
    spans: SmallVec<[Option<(u32, u32)>; 6]>,
    names: Arc<[Option<Box<str>>]>,
}

impl Captures {
    /// Builds captures from group spans in `haystack` (group 0 first). Kong only exposes
    /// captures when a group besides the whole match took part.
    fn from_spans(
        haystack: &str,
        spans: impl Iterator<Item = Option<(usize, usize)>>,
        names: &Arc<[Option<Box<str>>]>,
    ) -> Option<Self> {
        let spans: SmallVec<[Option<(usize, usize)>; 6]> = spans.collect();
        if spans.iter().skip(1).all(Option::is_none) {
            return None;
        }
        let (base, end) = (*spans.first()?)?;
        let relative = |(s, e): (usize, usize)| -> Option<(u32, u32)> {
            Some((
                u32::try_from(s.checked_sub(base)?).ok()?,
                u32::try_from(e.checked_sub(base)?).ok()?,
            ))
        };
        Some(Captures {
            text: haystack.get(base..end)?.to_string(),
            spans: spans.iter().map(|s| s.and_then(relative)).collect(),
            names: Arc::clone(names),
        })
    }

    /// Number of positional slots, including 0 (the whole match).
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// Never true for captures returned by the router (slot 0 always exists).
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Group `i` (0 = whole match); `None` when it did not take part or does not exist.
    pub fn get(&self, i: usize) -> Option<&str> {
        let (start, end) = (*self.spans.get(i)?)?;
        self.text
            .get(usize::try_from(start).ok()?..usize::try_from(end).ok()?)
    }

    /// A named group, when it took part.
    pub fn name(&self, name: &str) -> Option<&str> {
        let i = self.names.iter().position(|n| n.as_deref() == Some(name))?;
        self.get(i)
    }

    /// Every positional slot in order, `None` for groups that did not take part.
    pub fn positional(&self) -> impl Iterator<Item = Option<&str>> + '_ {
        (0..self.spans.len()).map(|i| self.get(i))
    }

    /// Named groups that took part, in pattern order.
    pub fn named(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.names
            .iter()
            .enumerate()
            .filter_map(|(i, n)| Some((n.as_deref()?, self.get(i)?)))
    }
}

/// The route selected for a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match<'a> {
    /// Index into the slice given to [`Router::build`] (split routes report the original).
    pub route: usize,
    /// Bytes of [`path`](Self::path) consumed by the matching prefix, or the length of the
    /// regex's whole match; `0` when the route has no paths. Feed it to [`upstream_path`].
    pub matched_len: usize,
    /// The normalized request path the route was matched against.
    pub path: Cow<'a, str>,
    /// Only for a regex path where at least one group took part (Kong's rule).
    pub captures: Option<Captures>,
}

/// An immutable, compiled set of routes. Cheap to share across threads.
///
/// Built with [`Router::build`], or with [`Router::rebuild`] from a previous router after a
/// change, which only compiles the routes that changed.
#[derive(Debug)]
pub struct Router {
    /// Sorted by rank: index `i` is tried before `i + 1`.
    slots: Vec<Slot>,
    /// Per regex path, a matcher's regexes adjacent from its `Head::aux`: its byte filter as
    /// (1 + index in `next_sets`, or 0 for none; offset of the byte).
    filters: Vec<(u16, u16)>,
    /// The byte sets that regex filters refer to (a handful, shared by all regexes).
    next_sets: Vec<validate::ByteSet>,
    index: Index,
    /// What [`Router::rebuild`] reads instead of the matchers (see `build/mod.rs`): the specs
    /// in configuration order, and per rank the index's input and (priority, UUID).
    specs: SpecTable,
    places: Places,
    order: Vec<(u64, u128)>,
    stats: BuildStats,
}

impl Router {
    /// Number of routes the router was built from.
    pub fn len(&self) -> usize {
        self.specs.len()
    }

    /// True when built from no routes.
    pub fn is_empty(&self) -> bool {
        self.specs.len() == 0
    }

    /// Selects the route Kong would select for `req`, or `None` (Kong answers 404).
    ///
    /// Does not allocate unless the path needs normalizing, the host has upper-case letters
    /// beyond the inline buffer, a header regex sees upper-case input, or a regex path with
    /// groups matches.
    pub fn find<'a>(&self, req: &Request<'a>) -> Option<Match<'a>> {
        let (path, valid) = normalize::normalize_checked(req.path);
        if !valid {
            // Kong's router errors on a path that decodes to invalid UTF-8: 404.
            return None;
        }
        let (host, host_port) = host::split_host_port(req.host);
        // Stack buffers, only initialized when a value has upper-case letters.
        let mut host_buf;
        let host = if host::has_upper(host) {
            host_buf = [0u8; 256];
            host::lower_into(host, &mut host_buf)
        } else {
            Cow::Borrowed(host)
        };
        let mut sni_buf;
        let sni = match req.sni {
            Some(s) if host::has_upper(s) => {
                sni_buf = [0u8; 256];
                Some(host::lower_into(s, &mut sni_buf))
            }
            Some(s) => Some(Cow::Borrowed(s)),
            None => None,
        };
        let port = host_port.unwrap_or_else(|| req.dst.port());
        let ctx = RequestCtx::new(req, &host, port, sni.as_deref(), &path);

        let mut lists = Lists::new();
        self.index.collect(ctx.host, ctx.port, ctx.path, &mut lists);
        let method = method_bit(req.method);
        let (route, hit) = first_accepted(&mut lists, |entry| {
            let slot = self.slots.get(usize::try_from(entry.rank()).ok()?)?;
            let head = &slot.head;
            match head.quick(method) {
                Some(false) => None,
                // Prefix and path-less entries are already matched by the index.
                Some(true) => Some((
                    head.route,
                    PathHit {
                        matched_len: usize::try_from(head.aux).ok()?,
                        captures: None,
                    },
                )),
                None => self.verify(slot, entry, &ctx, method),
            }
        })?;
        Some(Match {
            route: usize::try_from(route).ok()?,
            matched_len: hit.matched_len,
            path,
            captures: hit.captures,
        })
    }

    /// Decides a candidate that its head alone could not: the byte filter of a regex path,
    /// the full matcher's fields when needed, then the regex.
    fn verify(
        &self,
        slot: &Slot,
        entry: Entry,
        ctx: &RequestCtx<'_>,
        method: u16,
    ) -> Option<(u32, PathHit)> {
        let head = &slot.head;
        if head.regex && !self.next_byte_ok(head.next_set, head.next_at, ctx.path) {
            return None;
        }
        if head.needs_fields(method) && !slot.matcher.check_fields(ctx) {
            return None;
        }
        let aux = usize::try_from(head.aux).ok()?;
        if !head.regex {
            // Prefix and path-less entries are already matched by the index.
            let hit = PathHit {
                matched_len: aux,
                captures: None,
            };
            return Some((head.route, hit));
        }
        let sub = usize::try_from(entry.sub()).ok()?;
        let rx = slot.matcher.regex(sub)?;
        // (The index placed the entry under the regex's literal prefix.)
        let &(set, at) = self.filters.get(aux.checked_add(sub)?)?;
        if !self.next_byte_ok(set, at, ctx.path) {
            return None;
        }
        let (matched_len, captures) = rx.search(ctx.path)?;
        let hit = PathHit {
            matched_len,
            captures,
        };
        Some((head.route, hit))
    }

    /// A regex byte filter: `set` is 0 (none) or 1 + an index in `next_sets`.
    fn next_byte_ok(&self, set: u16, at: u16, path: &str) -> bool {
        let Some(i) = usize::from(set).checked_sub(1) else {
            return true;
        };
        match (self.next_sets.get(i), path.as_bytes().get(usize::from(at))) {
            (Some(set), Some(&b)) => set.contains(b),
            _ => false,
        }
    }
}
