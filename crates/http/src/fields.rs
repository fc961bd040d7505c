//! Header fields as they arrived, plus the gateway's changes.
//!
//! Received fields stay where the parser found them (offsets into the message head's bytes), so
//! reading, forwarding or dropping one costs no copy and no hashing; fields the gateway sets are
//! kept apart and go out after the received ones. Names compare case-insensitively.

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue};

/// A received field: name and value positions in the head's bytes.
#[derive(Debug, Clone, Copy)]
pub struct Span {
    name: (u32, u16),
    value: (u32, u32),
    removed: bool,
}

/// What the message head says about framing and connection handling, found while its fields
/// are scanned once (no lookups afterwards).
#[derive(Debug, Default, Clone, Copy)]
pub struct Known {
    pub host: Option<usize>,
    pub content_length: Option<usize>,
    /// A second Content-Length with a different value (a framing error).
    pub conflicting_length: bool,
    pub transfer_encoding: Option<usize>,
    pub connection: Option<usize>,
    /// More than one Connection field: the slow path reads them all.
    pub more_connection: bool,
    pub expect: Option<usize>,
    /// The (hop-by-hop, so removed) Upgrade field: a WebSocket handshake names it.
    pub upgrade: Option<usize>,
}

/// Hop-by-hop fields (RFC 9110 §7.6.1) by name, case-insensitively; `Connection` itself is
/// classified separately.
fn is_hop_by_hop(name: &[u8]) -> bool {
    match name.len() {
        2 => name.eq_ignore_ascii_case(b"te"),
        7 => name.eq_ignore_ascii_case(b"upgrade") || name.eq_ignore_ascii_case(b"trailer"),
        10 => name.eq_ignore_ascii_case(b"keep-alive") || name.eq_ignore_ascii_case(b"connection"),
        16 => name.eq_ignore_ascii_case(b"proxy-connection"),
        17 => name.eq_ignore_ascii_case(b"transfer-encoding"),
        _ => false,
    }
}

/// Parsed header slots, as httparse leaves them.
pub type ParsedHeaders<'a> = [httparse::Header<'a>];

/// Records the fields of a parsed head (offsets relative to `base`, the head's first byte),
/// notes the framing-related ones, and marks hop-by-hop ones removed so they are never
/// forwarded (their values stay readable through [`Fields::value_at`]).
pub fn scan(base: *const u8, headers: &ParsedHeaders<'_>) -> (Vec<Span>, Known) {
    let base = base as usize;
    let mut known = Known::default();
    let mut spans = Vec::with_capacity(headers.len());
    for (i, h) in headers.iter().enumerate() {
        let name = h.name.as_bytes();
        let mut span = Span {
            name: ((name.as_ptr() as usize - base) as u32, name.len() as u16),
            value: (
                (h.value.as_ptr() as usize - base) as u32,
                h.value.len() as u32,
            ),
            removed: false,
        };
        match name.len() {
            4 if name.eq_ignore_ascii_case(b"host") => {
                known.host.get_or_insert(i);
            }
            6 if name.eq_ignore_ascii_case(b"expect") => {
                known.expect.get_or_insert(i);
                span.removed = true;
            }
            10 if name.eq_ignore_ascii_case(b"connection") => {
                if known.connection.is_some() {
                    known.more_connection = true;
                }
                known.connection.get_or_insert(i);
                span.removed = true;
            }
            14 if name.eq_ignore_ascii_case(b"content-length") => match known.content_length {
                Some(first) if headers.get(first).map(|f| f.value) != Some(h.value) => {
                    known.conflicting_length = true;
                }
                Some(_) => {}
                None => known.content_length = Some(i),
            },
            17 if name.eq_ignore_ascii_case(b"transfer-encoding") => {
                known.transfer_encoding.get_or_insert(i);
                span.removed = true;
            }
            7 if name.eq_ignore_ascii_case(b"upgrade") => {
                known.upgrade.get_or_insert(i);
                span.removed = true;
            }
            _ => span.removed = is_hop_by_hop(name),
        }
        spans.push(span);
    }
    (spans, known)
}

#[derive(Debug, Default, Clone)]
pub struct Fields {
    raw: Bytes,
    /// On the heap: a Fields value is moved several times per request, and a large inline
    /// array made each move a big copy.
    recv: Vec<Span>,
    added: Vec<(HeaderName, HeaderValue)>,
}

/// A name length as one bit of a set of lengths (lengths 64 apart share a bit).
fn length_bit(len: usize) -> u64 {
    1 << (len % 64)
}

fn slice(raw: &[u8], (start, len): (u32, u32)) -> &[u8] {
    raw.get(start as usize..start as usize + len as usize)
        .unwrap_or_default()
}

impl Fields {
    /// Fields recorded by [`scan`], over the head's bytes.
    pub fn from_scan(raw: Bytes, recv: Vec<Span>) -> Self {
        Fields {
            raw,
            recv,
            added: Vec::new(),
        }
    }

    /// How many bytes the head these fields came in took on the wire (request or status line
    /// included); 0 for fields not read from bytes (HTTP/2).
    pub fn received_len(&self) -> usize {
        self.raw.len()
    }

    /// The name of the received field at `index`, removed or not.
    pub fn name_at(&self, index: usize) -> Option<&[u8]> {
        self.recv.get(index).map(|s| self.recv_name(s))
    }

    /// The value of the received field at `index`, removed or not.
    pub fn value_at(&self, index: usize) -> Option<&[u8]> {
        self.recv.get(index).map(|s| self.recv_value(s))
    }

    /// The value of a field as a header value, sharing the received bytes.
    pub fn get_value(&self, name: &str) -> Option<HeaderValue> {
        let n = name.as_bytes();
        for s in &self.recv {
            if !s.removed
                && usize::from(s.name.1) == n.len()
                && self.recv_name(s).eq_ignore_ascii_case(n)
            {
                let (start, len) = s.value;
                return HeaderValue::from_maybe_shared(
                    self.raw
                        .slice(start as usize..start as usize + len as usize),
                )
                .ok();
            }
        }
        self.added
            .iter()
            .find(|(k, _)| k.as_str().as_bytes() == n)
            .map(|(_, v)| v.clone())
    }

    /// Drops every value of each of these fields, in one pass (names lower case).
    pub fn remove_many(&mut self, names: &[&str]) {
        // Most fields differ in length from every name: one bit test rules them out.
        let lengths = names.iter().fold(0u64, |m, n| m | length_bit(n.len()));
        for i in 0..self.recv.len() {
            let s = self.recv[i];
            let len = usize::from(s.name.1);
            if s.removed || lengths & length_bit(len) == 0 {
                continue;
            }
            let name = self.recv_name(&s);
            if names
                .iter()
                .any(|n| n.len() == len && name.eq_ignore_ascii_case(n.as_bytes()))
            {
                self.recv[i].removed = true;
            }
        }
        if !self.added.is_empty() {
            self.added.retain(|(k, _)| {
                let k = k.as_str();
                lengths & length_bit(k.len()) == 0 || !names.contains(&k)
            });
        }
    }

    fn push(&mut self, name: HeaderName, value: HeaderValue) {
        if self.added.capacity() == 0 {
            // The proxy adds about ten fields per message: one allocation, not four.
            self.added.reserve(12);
        }
        self.added.push((name, value));
    }

    /// Fields parsed out of `raw` (each `(name, value)` a slice of it).
    pub fn from_parsed<'a>(raw: Bytes, parsed: impl Iterator<Item = (&'a [u8], &'a [u8])>) -> Self {
        let base = raw.as_ptr() as usize;
        let recv = parsed
            .map(|(n, v)| Span {
                name: ((n.as_ptr() as usize - base) as u32, n.len() as u16),
                value: ((v.as_ptr() as usize - base) as u32, v.len() as u32),
                removed: false,
            })
            .collect();
        Fields {
            raw,
            recv,
            added: Vec::new(),
        }
    }

    /// Fields of a message that arrived as a map (HTTP/2).
    pub fn from_map(map: HeaderMap) -> Self {
        let mut added = Vec::with_capacity(map.len() + 8);
        let mut last: Option<HeaderName> = None;
        for (name, value) in map {
            // HeaderMap's owning iterator names only the first of repeated fields.
            let name = match name {
                Some(n) => {
                    last = Some(n.clone());
                    n
                }
                None => match &last {
                    Some(n) => n.clone(),
                    None => continue,
                },
            };
            added.push((name, value));
        }
        Fields {
            raw: Bytes::new(),
            recv: Vec::new(),
            added,
        }
    }

    fn recv_name(&self, s: &Span) -> &[u8] {
        slice(&self.raw, (s.name.0, u32::from(s.name.1)))
    }

    fn recv_value(&self, s: &Span) -> &[u8] {
        slice(&self.raw, s.value)
    }

    /// The first value of a field. `name` must be lower case.
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        let n = name.as_bytes();
        for s in &self.recv {
            if !s.removed
                && usize::from(s.name.1) == n.len()
                && self.recv_name(s).eq_ignore_ascii_case(n)
            {
                return Some(self.recv_value(s));
            }
        }
        self.added
            .iter()
            .find(|(k, _)| k.as_str().as_bytes() == n)
            .map(|(_, v)| v.as_bytes())
    }

    pub fn get_str(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(|v| std::str::from_utf8(v).ok())
    }

    /// Every value of a field, in order. `name` must be lower case.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        let n = name.as_bytes();
        self.recv
            .iter()
            .filter(move |s| !s.removed && usize::from(s.name.1) == n.len())
            .filter(move |s| self.recv_name(s).eq_ignore_ascii_case(n))
            .map(move |s| self.recv_value(s))
            .chain(
                self.added
                    .iter()
                    .filter(move |(k, _)| k.as_str().as_bytes() == n)
                    .map(|(_, v)| v.as_bytes()),
            )
    }

    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Drops every value of a field.
    pub fn remove(&mut self, name: &str) {
        let n = name.as_bytes();
        for i in 0..self.recv.len() {
            let s = self.recv[i];
            if !s.removed
                && usize::from(s.name.1) == n.len()
                && self.recv_name(&s).eq_ignore_ascii_case(n)
            {
                self.recv[i].removed = true;
            }
        }
        self.added.retain(|(k, _)| k.as_str().as_bytes() != n);
    }

    /// Replaces every value of a field with one.
    pub fn set(&mut self, name: HeaderName, value: HeaderValue) {
        self.remove(name.as_str());
        self.push(name, value);
    }

    /// Adds a field the message does not have yet (no search for an earlier value).
    pub fn set_new(&mut self, name: HeaderName, value: HeaderValue) {
        self.push(name, value);
    }

    /// Adds one more value.
    pub fn append(&mut self, name: HeaderName, value: HeaderValue) {
        self.push(name, value);
    }

    /// `existing, value` as one value, or just `value`.
    pub fn append_list(&mut self, name: HeaderName, value: &[u8]) {
        let joined = match self.get(name.as_str()) {
            Some(prev) => {
                let mut v = Vec::with_capacity(prev.len() + 2 + value.len());
                v.extend_from_slice(prev);
                v.extend_from_slice(b", ");
                v.extend_from_slice(value);
                HeaderValue::from_maybe_shared(Bytes::from(v))
            }
            None => HeaderValue::from_bytes(value),
        };
        if let Ok(v) = joined {
            self.set(name, v);
        }
    }

    /// Drops received fields for which `drop` says so (hop-by-hop removal).
    pub fn drop_received(&mut self, mut drop: impl FnMut(&[u8]) -> bool) {
        for i in 0..self.recv.len() {
            let s = self.recv[i];
            if !s.removed && drop(self.recv_name(&s)) {
                self.recv[i].removed = true;
            }
        }
    }

    /// Every field as it goes on the wire: received ones first, then the gateway's.
    pub fn for_each(&self, mut f: impl FnMut(&[u8], &[u8])) {
        for s in self.recv.iter().filter(|s| !s.removed) {
            f(self.recv_name(s), self.recv_value(s));
        }
        for (k, v) in &self.added {
            f(k.as_str().as_bytes(), v.as_bytes());
        }
    }

    pub fn is_empty(&self) -> bool {
        self.recv.iter().all(|s| s.removed) && self.added.is_empty()
    }

    /// The fields as a map (for hyper-served connections). Invalid received fields are dropped.
    pub fn to_map(&self) -> HeaderMap {
        let mut map = HeaderMap::with_capacity(self.recv.len() + self.added.len());
        for s in self.recv.iter().filter(|s| !s.removed) {
            let name = HeaderName::from_bytes(self.recv_name(s));
            let (start, len) = s.value;
            let value = HeaderValue::from_maybe_shared(
                self.raw
                    .slice(start as usize..start as usize + len as usize),
            );
            if let (Ok(n), Ok(v)) = (name, value) {
                map.append(n, v);
            }
        }
        for (k, v) in &self.added {
            map.append(k.clone(), v.clone());
        }
        map
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fields from `Name: value` lines, pointing into the text's own bytes.
    fn parsed(text: &'static str) -> Fields {
        let raw = Bytes::from_static(text.as_bytes());
        let mut spans = Vec::new();
        let mut pos = 0;
        for line in text.split_inclusive('\n') {
            if let Some(i) = line.find(": ") {
                let end = pos + line.trim_end_matches('\n').len();
                spans.push((&raw[pos..pos + i], &raw[pos + i + 2..end]));
            }
            pos += line.len();
        }
        Fields::from_parsed(raw.clone(), spans.into_iter())
    }

    /// Every field as `name: value`, in wire order.
    fn wire(f: &Fields) -> Vec<String> {
        let mut lines = Vec::new();
        f.for_each(|n, v| {
            lines.push(format!(
                "{}: {}",
                String::from_utf8_lossy(n),
                String::from_utf8_lossy(v)
            ))
        });
        lines
    }

    #[test]
    fn reads_case_insensitively_and_keeps_order() {
        let f = parsed("Host: a.example\nX-Multi: 1\nx-multi: 2\nAccept: */*\n");
        assert_eq!(f.get("host"), Some(&b"a.example"[..]));
        assert_eq!(
            f.get_all("x-multi").collect::<Vec<_>>(),
            vec![&b"1"[..], &b"2"[..]]
        );
        assert!(f.get("missing").is_none());
    }

    #[test]
    fn set_remove_append_and_wire_order() {
        let mut f = parsed("Host: a\nConnection: close\nX-Forwarded-For: 1.1.1.1\nX-Keep: k\n");
        f.drop_received(|n| n.eq_ignore_ascii_case(b"connection"));
        f.append_list(HeaderName::from_static("x-forwarded-for"), b"2.2.2.2");
        f.set(
            HeaderName::from_static("host"),
            HeaderValue::from_static("b"),
        );
        f.remove("x-keep");
        assert_eq!(
            wire(&f),
            vec!["x-forwarded-for: 1.1.1.1, 2.2.2.2", "host: b"]
        );
        let map = f.to_map();
        assert_eq!(map["host"], "b");
        assert_eq!(map.len(), 2);
    }

    #[test]
    fn remove_many_drops_received_and_added_fields_of_those_names_only() {
        // 64 bytes apart: the same length bit, told apart by the full compare.
        let long = "x-".to_string() + &"l".repeat(64);
        let mut f = parsed("X-A: 1\nx-bb: 2\nX-A: 3\nx-cc: 4\nX-Ab: 5\n");
        f.append(
            HeaderName::from_static("x-bb"),
            HeaderValue::from_static("6"),
        );
        f.append(
            HeaderName::from_static("x-dd"),
            HeaderValue::from_static("7"),
        );
        f.append(
            HeaderName::from_bytes(long.as_bytes()).unwrap(),
            HeaderValue::from_static("8"),
        );
        f.remove_many(&["x-a", "x-bb", "xx"]);
        assert_eq!(
            wire(&f),
            vec![
                "x-cc: 4",
                "X-Ab: 5",
                "x-dd: 7",
                format!("{long}: 8").as_str()
            ]
        );
    }

    #[test]
    fn from_map_keeps_repeated_values() {
        let mut m = HeaderMap::new();
        m.append("x-a", HeaderValue::from_static("1"));
        m.append("x-a", HeaderValue::from_static("2"));
        let f = Fields::from_map(m);
        assert_eq!(f.get_all("x-a").count(), 2);
    }
}
