//! What the index needs to place each matcher (host patterns and path keys), kept per rank in
//! one buffer.
//!
//! Why: the index is rebuilt on every [`crate::Router::rebuild`], and reading hosts and keys
//! from the matchers means a handful of dependent cache misses per matcher (the matcher, its
//! host list, each host name, each prefix), most of the cost of the rebuild. A kept matcher's
//! record is copied from the previous router's table instead, which is read almost
//! sequentially, since ranks mostly keep their order; and the index's radix-tree labels borrow
//! from the new table, which is in cache while the index is built.

use crate::host::{HostPattern, NamePattern};

/// Records in rank order. A record is:
///
/// ```text
/// u32 host count | u32 key count | u32 hosts byte length | hosts | keys
/// host: u8 kind (0 exact, 1 suffix, 2 prefix) | u8 has port | u16 port | u32 len | name
/// key:  u32 len | bytes            (a key's sub is its position)     (integers little-endian)
/// ```
#[derive(Debug, Default)]
pub(crate) struct Places {
    bytes: Vec<u8>,
    /// End of record `i` in `bytes`.
    ends: Vec<usize>,
}

/// One host pattern of a record.
pub(crate) struct PlaceHost<'a> {
    pub(crate) kind: u8,
    pub(crate) port: Option<u16>,
    pub(crate) name: &'a str,
}

impl PlaceHost<'_> {
    pub(crate) fn pattern(&self) -> NamePattern {
        match self.kind {
            1 => NamePattern::Suffix(self.name.into()),
            2 => NamePattern::Prefix(self.name.into()),
            _ => NamePattern::Exact(self.name.into()),
        }
    }
}

fn u32_le(n: usize) -> [u8; 4] {
    u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes()
}

/// Reads a record; every read is bounds-checked (`None` ends it early).
#[derive(Clone)]
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = self.bytes.split_at_checked(n)?;
        self.bytes = rest;
        Some(head)
    }

    fn u32(&mut self) -> Option<usize> {
        let b = self.take(4)?;
        usize::try_from(u32::from_le_bytes(b.try_into().ok()?)).ok()
    }

    fn host(&mut self) -> Option<PlaceHost<'a>> {
        let head = self.take(4)?;
        let (&kind, &has_port) = (head.first()?, head.get(1)?);
        let port = u16::from_le_bytes(head.get(2..4)?.try_into().ok()?);
        let len = self.u32()?;
        Some(PlaceHost {
            kind,
            port: (has_port != 0).then_some(port),
            name: std::str::from_utf8(self.take(len)?).ok()?,
        })
    }

    fn key(&mut self) -> Option<&'a [u8]> {
        let len = self.u32()?;
        self.take(len)
    }
}

/// One record, split into its sections.
pub(crate) struct Record<'a> {
    host_count: usize,
    hosts: &'a [u8],
    key_count: usize,
    keys: &'a [u8],
}

impl<'a> Record<'a> {
    fn parse(bytes: &'a [u8]) -> Option<Self> {
        let mut r = Reader { bytes };
        let host_count = r.u32()?;
        let key_count = r.u32()?;
        let hosts_len = r.u32()?;
        Some(Record {
            host_count,
            hosts: r.take(hosts_len)?,
            key_count,
            keys: r.bytes,
        })
    }

    pub(crate) fn hosts(&self) -> impl Iterator<Item = PlaceHost<'a>> + use<'a> {
        let mut r = Reader { bytes: self.hosts };
        (0..self.host_count).map_while(move |_| r.host())
    }

    pub(crate) fn has_hosts(&self) -> bool {
        self.host_count > 0
    }

    pub(crate) fn keys(&self) -> impl Iterator<Item = &'a [u8]> + use<'a> {
        let mut r = Reader { bytes: self.keys };
        (0..self.key_count).map_while(move |_| r.key())
    }
}

impl Places {
    pub(crate) fn with_capacity(records: usize, bytes: usize) -> Self {
        Places {
            bytes: Vec::with_capacity(bytes),
            ends: Vec::with_capacity(records),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.ends.len()
    }

    pub(crate) fn byte_len(&self) -> usize {
        self.bytes.len()
    }

    fn record(&self, i: usize) -> Option<&[u8]> {
        let start = match i.checked_sub(1) {
            Some(prev) => *self.ends.get(prev)?,
            None => 0,
        };
        self.bytes.get(start..*self.ends.get(i)?)
    }

    /// Appends a record: `keys` are prefixes, regex literal prefixes, or `[b""]` for no path.
    pub(crate) fn push<'k>(&mut self, hosts: &[HostPattern], keys: impl Iterator<Item = &'k [u8]>) {
        let b = &mut self.bytes;
        b.extend_from_slice(&u32_le(hosts.len()));
        // Key count and hosts length, patched below.
        let patch_at = b.len();
        b.extend_from_slice(&[0; 8]);
        let hosts_start = b.len();
        for h in hosts {
            let (kind, name) = match &h.name {
                NamePattern::Exact(n) => (0, n),
                NamePattern::Suffix(n) => (1, n),
                NamePattern::Prefix(n) => (2, n),
            };
            b.extend_from_slice(&[kind, u8::from(h.port.is_some())]);
            b.extend_from_slice(&h.port.unwrap_or(0).to_le_bytes());
            b.extend_from_slice(&u32_le(name.len()));
            b.extend_from_slice(name.as_bytes());
        }
        let hosts_len = b.len() - hosts_start;
        let mut count = 0;
        for key in keys {
            b.extend_from_slice(&u32_le(key.len()));
            b.extend_from_slice(key);
            count += 1;
        }
        if let Some(at) = b.get_mut(patch_at..patch_at + 8) {
            at[..4].copy_from_slice(&u32_le(count));
            at[4..].copy_from_slice(&u32_le(hosts_len));
        }
        self.ends.push(b.len());
    }

    /// Appends a copy of `other`'s record `i`.
    pub(crate) fn push_copy(&mut self, other: &Places, i: usize) {
        if let Some(r) = other.record(i) {
            self.bytes.extend_from_slice(r);
        }
        self.ends.push(self.bytes.len());
    }

    /// How many keys record `i` has (for a regex matcher, its number of regexes).
    pub(crate) fn key_count(&self, i: usize) -> usize {
        self.record(i)
            .and_then(Record::parse)
            .map_or(0, |r| r.key_count)
    }

    /// Every record in order.
    pub(crate) fn records(&self) -> impl Iterator<Item = Record<'_>> {
        (0..self.len()).map(|i| {
            self.record(i).and_then(Record::parse).unwrap_or(Record {
                host_count: 0,
                hosts: &[],
                key_count: 0,
                keys: &[],
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_copy() {
        let hosts = [
            HostPattern::parse("a.com"),
            HostPattern::parse("*.b.com:8080"),
            HostPattern::parse("c.*"),
        ];
        let mut p = Places::default();
        p.push(&hosts, [&b"/x"[..], b""].into_iter());
        p.push(&[], [&b""[..]].into_iter());
        let mut q = Places::default();
        q.push_copy(&p, 1);
        q.push_copy(&p, 0);
        assert_eq!((q.len(), q.key_count(0), q.key_count(1)), (2, 1, 2));
        type Decoded = (Vec<(NamePattern, Option<u16>)>, Vec<Vec<u8>>);
        let records: Vec<Decoded> = q
            .records()
            .map(|r| {
                (
                    r.hosts().map(|h| (h.pattern(), h.port)).collect(),
                    r.keys().map(<[u8]>::to_vec).collect(),
                )
            })
            .collect();
        assert_eq!(records[0], (vec![], vec![vec![]]));
        let want_hosts: Vec<_> = hosts.iter().map(|h| (h.name.clone(), h.port)).collect();
        assert_eq!(records[1], (want_hosts, vec![b"/x".to_vec(), vec![]]));
    }
}
