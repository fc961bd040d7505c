//! The lookup index: request host → buckets, and per bucket a radix tree over path bytes.
//!
//! Matchers are numbered by *rank* (0 = tried first: highest priority, then greatest UUID).
//! A bucket holds the matchers reachable through one host pattern (exact, `*.suffix`,
//! `prefix.*`, with or without a port) or through "no host". Inside a bucket, each matcher is
//! stored at the radix-tree node of each of its prefixes, at the node of each regex's literal
//! prefix, or at the root when it has no path. A lookup walks the request path once per visited
//! bucket, collecting the (rank-sorted) entry lists of the nodes it passes; those lists are then
//! merged lazily in rank order and the first entry whose matcher fully verifies wins.
//!
//! For cache efficiency all trees are serialized into one byte blob where each node is a single
//! contiguous record (see [`Blob`]), so visiting a node touches one or two cache lines. Building
//! is in `build.rs`.

mod build;
mod place;

pub(crate) use place::Places;

use crate::host::NamePattern;
use smallvec::SmallVec;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A candidate: matcher rank and which of its paths (prefix or regex index) brought it here.
/// Encoded as `rank << 32 | sub`, so integer order is (rank, sub) order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Entry(u64);

impl Entry {
    pub(crate) fn new(rank: u32, sub: u32) -> Entry {
        Entry((u64::from(rank) << 32) | u64::from(sub))
    }
    pub(crate) fn rank(self) -> u32 {
        (self.0 >> 32) as u32
    }
    pub(crate) fn sub(self) -> u32 {
        self.0 as u32
    }
}

/// Encoded entry lists (8 little-endian bytes per entry) gathered for one request; the inline
/// capacity covers typical lookups without allocating.
pub(crate) type Lists<'i> = SmallVec<[&'i [u8]; 24]>;

const ENTRY_BYTES: usize = 8;

/// All trees, serialized. A node record at offset `o` is:
///
/// ```text
/// u32 label_len | u32 child_count | u32 entry_count | label bytes | child first bytes |
/// u32 child offsets ... | u64 entries ...            (all integers little-endian)
/// ```
///
/// Nodes are written parent first, so a walk moves forward through nearby memory.
#[derive(Debug, Default)]
struct Blob {
    bytes: Vec<u8>,
}

impl Blob {
    fn u32_at(&self, at: usize) -> Option<usize> {
        let b = self.bytes.get(at..at + 4)?;
        let v = u32::from_le_bytes(b.try_into().ok()?);
        usize::try_from(v).ok()
    }

    /// Pushes the entry lists of every node, from `root`, whose full key is a prefix of `path`.
    fn collect<'i>(&'i self, root: u32, path: &[u8], out: &mut Lists<'i>) -> Option<()> {
        let mut at = usize::try_from(root).ok()?;
        let mut rest = path;
        loop {
            let label_len = self.u32_at(at)?;
            let child_count = self.u32_at(at + 4)?;
            let entry_count = self.u32_at(at + 8)?;
            let firsts_at = at + 12 + label_len;
            let offsets_at = firsts_at + child_count;
            let entries_at = offsets_at + 4 * child_count;
            if entry_count > 0 {
                out.push(
                    self.bytes
                        .get(entries_at..entries_at + ENTRY_BYTES * entry_count)?,
                );
            }
            let &b = rest.first()?;
            let firsts = self.bytes.get(firsts_at..offsets_at)?;
            let slot = firsts.binary_search(&b).ok()?;
            let child = self.u32_at(offsets_at + 4 * slot)?;
            let child_label_len = self.u32_at(child)?;
            let label = self.bytes.get(child + 12..child + 12 + child_label_len)?;
            rest = rest.strip_prefix(label)?;
            at = child;
        }
    }
}

/// A fast non-cryptographic hasher for host-name keys (FxHash). Keys come from configuration,
/// so request-chosen lookups cannot grow collision chains.
#[derive(Default, Clone, Copy)]
pub(crate) struct FxHasher(u64);

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x51_7c_c1_b7_27_22_0a_95;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let w = c.try_into().map_or(0, u64::from_le_bytes);
            self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(K);
        }
        for &b in chunks.remainder() {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(K);
        }
    }
    fn write_u8(&mut self, i: u8) {
        self.write(&[i]);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

pub(crate) type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// The buckets of one host name: any port, and specific ports. While the index is built the
/// values are bucket ids, afterwards offsets of tree roots in the blob.
#[derive(Debug, Default)]
struct Roots {
    any: Option<u32>,
    ports: Vec<(u16, u32)>,
}

impl Roots {
    fn visit(&self, port: u16, mut f: impl FnMut(u32)) {
        if let Some(r) = self.any {
            f(r);
        }
        for &(p, r) in &self.ports {
            if p == port {
                f(r);
            }
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct Index {
    blob: Blob,
    hostless: Option<u32>,
    exact: FxMap<Box<str>, Roots>,
    /// `*.example.com` stored as `.example.com`.
    suffix: FxMap<Box<str>, Roots>,
    /// `example.*` stored as `example.`.
    prefix: FxMap<Box<str>, Roots>,
    /// Wildcards not ending/starting at a dot (e.g. `*` or `*example.com`): checked one by one.
    odd: Vec<(NamePattern, Roots)>,
}

impl Index {
    /// Gathers the candidate lists for a request: `host` lower-cased without port (empty when
    /// absent), `port` the effective port, `path` the normalized path.
    pub(crate) fn collect<'i>(&'i self, host: &str, port: u16, path: &str, out: &mut Lists<'i>) {
        let path = path.as_bytes();
        let mut visit = |root: u32| {
            let _ = self.blob.collect(root, path, out);
        };
        if let Some(root) = self.hostless {
            visit(root);
        }
        if host.is_empty() {
            return;
        }
        if let Some(roots) = self.exact.get(host) {
            roots.visit(port, &mut visit);
        }
        let dots = || {
            host.bytes()
                .enumerate()
                .filter(|&(_, c)| c == b'.')
                .map(|(i, _)| i)
        };
        if !self.suffix.is_empty() {
            for i in dots() {
                if let Some(roots) = host.get(i..).and_then(|s| self.suffix.get(s)) {
                    roots.visit(port, &mut visit);
                }
            }
        }
        if !self.prefix.is_empty() {
            for i in dots() {
                if let Some(roots) = host.get(..=i).and_then(|s| self.prefix.get(s)) {
                    roots.visit(port, &mut visit);
                }
            }
        }
        for (pattern, roots) in &self.odd {
            if pattern.matches(host) {
                roots.visit(port, &mut visit);
            }
        }
    }
}

fn first_entry(list: &[u8]) -> Option<Entry> {
    let b = list.get(..ENTRY_BYTES)?;
    Some(Entry(u64::from_le_bytes(b.try_into().ok()?)))
}

/// Pops entries from the gathered lists in ascending (rank, sub) order, skipping duplicates,
/// until `accept` returns a value.
pub(crate) fn first_accepted<T>(
    lists: &mut Lists<'_>,
    mut accept: impl FnMut(Entry) -> Option<T>,
) -> Option<T> {
    let mut last: Option<Entry> = None;
    loop {
        let mut best: Option<(usize, Entry)> = None;
        for (i, list) in lists.iter().enumerate() {
            if let Some(e) = first_entry(list)
                && best.is_none_or(|(_, b)| e < b)
            {
                best = Some((i, e));
            }
        }
        let (i, entry) = best?;
        if let Some(list) = lists.get_mut(i) {
            *list = list.get(ENTRY_BYTES..).unwrap_or_default();
        }
        if last == Some(entry) {
            continue;
        }
        last = Some(entry);
        if let Some(found) = accept(entry) {
            return Some(found);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_order_by_rank_then_sub() {
        assert!(Entry::new(1, 9) < Entry::new(2, 0));
        assert!(Entry::new(1, 0) < Entry::new(1, 1));
        assert_eq!(Entry::new(7, 3).rank(), 7);
        assert_eq!(Entry::new(7, 3).sub(), 3);
    }

    #[test]
    fn merge_yields_ascending_unique_entries() {
        let enc = |v: &[(u32, u32)]| -> Vec<u8> {
            v.iter()
                .flat_map(|&(r, s)| Entry::new(r, s).0.to_le_bytes())
                .collect()
        };
        let a = enc(&[(1, 0), (4, 0)]);
        let b = enc(&[(0, 1), (1, 0), (3, 0)]);
        let mut lists: Lists<'_> = SmallVec::from_slice(&[&a[..], &b[..]]);
        let mut seen = Vec::new();
        let none: Option<()> = first_accepted(&mut lists, |e| {
            seen.push((e.rank(), e.sub()));
            None
        });
        assert!(none.is_none());
        assert_eq!(seen, vec![(0, 1), (1, 0), (3, 0), (4, 0)]);
    }
}
