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
//! contiguous record (see [`Blob`]), so visiting a node touches one or two cache lines.

use crate::host::{HostPattern, NamePattern};
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

/// Build-time radix tree node.
#[derive(Debug, Default)]
struct Node {
    label: Vec<u8>,
    /// (first byte of child label, child node), sorted by byte.
    children: Vec<(u8, usize)>,
    entries: Vec<Entry>,
}

/// Build-time radix tree over path bytes; node 0 is the root.
#[derive(Debug)]
struct Tree {
    nodes: Vec<Node>,
}

impl Tree {
    fn new() -> Self {
        Tree {
            nodes: vec![Node::default()],
        }
    }

    fn insert(&mut self, key: &[u8], entry: Entry) {
        let mut node = 0usize;
        let mut rest = key;
        loop {
            let Some(&first) = rest.first() else {
                self.nodes[node].entries.push(entry);
                return;
            };
            let found = self.nodes[node]
                .children
                .binary_search_by_key(&first, |c| c.0);
            let slot = match found {
                Ok(slot) => slot,
                Err(slot) => {
                    self.nodes.push(Node {
                        label: rest.to_vec(),
                        children: Vec::new(),
                        entries: vec![entry],
                    });
                    let child = self.nodes.len() - 1;
                    self.nodes[node].children.insert(slot, (first, child));
                    return;
                }
            };
            let child = self.nodes[node].children[slot].1;
            let label = &self.nodes[child].label;
            let common = label.iter().zip(rest).take_while(|(a, b)| a == b).count();
            if common < label.len() {
                // Split the child: a new middle node takes the common part.
                let tail = label[common..].to_vec();
                let head = label[..common].to_vec();
                let tail_first = tail[0];
                self.nodes[child].label = tail;
                self.nodes.push(Node {
                    label: head,
                    children: vec![(tail_first, child)],
                    entries: Vec::new(),
                });
                let mid = self.nodes.len() - 1;
                self.nodes[node].children[slot].1 = mid;
                node = mid;
            } else {
                node = child;
            }
            rest = &rest[common..];
        }
    }
}

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
    /// Appends `tree` (depth-first, parent before children) and returns its root's offset.
    fn append(&mut self, tree: &mut Tree) -> u32 {
        let root = to_u32(self.bytes.len());
        // (node id, where to patch the node's offset into its parent's child table)
        let mut stack: Vec<(usize, Option<usize>)> = vec![(0, None)];
        while let Some((id, patch_at)) = stack.pop() {
            let start = self.bytes.len();
            if let Some(at) = patch_at {
                self.bytes[at..at + 4].copy_from_slice(&to_u32(start).to_le_bytes());
            }
            let node = std::mem::take(&mut tree.nodes[id]);
            let mut entries = node.entries;
            entries.sort_unstable();
            entries.dedup();
            for n in [node.label.len(), node.children.len(), entries.len()] {
                self.put_u32(n);
            }
            self.bytes.extend_from_slice(&node.label);
            self.bytes.extend(node.children.iter().map(|c| c.0));
            let offsets_at = self.bytes.len();
            self.bytes.resize(offsets_at + 4 * node.children.len(), 0);
            for e in &entries {
                self.bytes.extend_from_slice(&e.0.to_le_bytes());
            }
            for (i, &(_, child)) in node.children.iter().enumerate().rev() {
                stack.push((child, Some(offsets_at + 4 * i)));
            }
        }
        root
    }

    fn put_u32(&mut self, n: usize) {
        self.bytes.extend_from_slice(&to_u32(n).to_le_bytes());
    }

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

fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
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

type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// Buckets (tree roots in the blob) for one host name: any port, and specific ports.
#[derive(Debug, Default)]
struct HostSlot {
    any: Option<usize>,
    ports: Vec<(u16, usize)>,
}

impl HostSlot {
    fn bucket(&mut self, port: Option<u16>, trees: &mut Vec<Tree>) -> usize {
        let mut create = || {
            trees.push(Tree::new());
            trees.len() - 1
        };
        match port {
            None => *self.any.get_or_insert_with(create),
            Some(p) => match self.ports.iter().find(|(q, _)| *q == p) {
                Some(&(_, b)) => b,
                None => {
                    let b = create();
                    self.ports.push((p, b));
                    b
                }
            },
        }
    }
}

/// `HostSlot` after building: bucket ids replaced by blob offsets.
#[derive(Debug, Default)]
struct Roots {
    any: Option<u32>,
    ports: Box<[(u16, u32)]>,
}

impl Roots {
    fn visit(&self, port: u16, mut f: impl FnMut(u32)) {
        if let Some(r) = self.any {
            f(r);
        }
        for &(p, r) in &*self.ports {
            if p == port {
                f(r);
            }
        }
    }
}

/// What the index needs to know about a matcher to place it.
pub(crate) struct Placement<'a> {
    pub(crate) rank: u32,
    pub(crate) hosts: &'a [HostPattern],
    /// (key bytes, sub) pairs: prefixes, regex literal prefixes, or `[(b"", 0)]` for no path.
    pub(crate) keys: Vec<(&'a [u8], u32)>,
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
    pub(crate) fn build<'a>(placements: impl IntoIterator<Item = Placement<'a>>) -> Index {
        let mut trees: Vec<Tree> = Vec::new();
        let mut hostless: Option<usize> = None;
        let mut exact: FxMap<Box<str>, HostSlot> = FxMap::default();
        let mut suffix: FxMap<Box<str>, HostSlot> = FxMap::default();
        let mut prefix: FxMap<Box<str>, HostSlot> = FxMap::default();
        let mut odd: Vec<(NamePattern, HostSlot)> = Vec::new();
        for p in placements {
            let mut buckets: SmallVec<[usize; 4]> = SmallVec::new();
            if p.hosts.is_empty() {
                buckets.push(*hostless.get_or_insert_with(|| {
                    trees.push(Tree::new());
                    trees.len() - 1
                }));
            }
            for host in p.hosts {
                let slot = match &host.name {
                    NamePattern::Exact(h) => exact.entry(h.clone()).or_default(),
                    NamePattern::Suffix(s) if s.starts_with('.') => {
                        suffix.entry(s.clone()).or_default()
                    }
                    NamePattern::Prefix(s) if s.ends_with('.') => {
                        prefix.entry(s.clone()).or_default()
                    }
                    other => {
                        let pos = match odd.iter().position(|(n, _)| n == other) {
                            Some(pos) => pos,
                            None => {
                                odd.push((other.clone(), HostSlot::default()));
                                odd.len() - 1
                            }
                        };
                        &mut odd[pos].1
                    }
                };
                let b = slot.bucket(host.port, &mut trees);
                if !buckets.contains(&b) {
                    buckets.push(b);
                }
            }
            for b in buckets {
                for &(key, sub) in &p.keys {
                    trees[b].insert(key, Entry::new(p.rank, sub));
                }
            }
        }

        let mut blob = Blob::default();
        let roots: Vec<u32> = trees.iter_mut().map(|t| blob.append(t)).collect();
        let finish = |slot: HostSlot| Roots {
            any: slot.any.map(|b| roots[b]),
            ports: slot.ports.iter().map(|&(p, b)| (p, roots[b])).collect(),
        };
        let finish_map = |m: FxMap<Box<str>, HostSlot>| -> FxMap<Box<str>, Roots> {
            m.into_iter().map(|(k, v)| (k, finish(v))).collect()
        };
        Index {
            hostless: hostless.map(|b| roots[b]),
            exact: finish_map(exact),
            suffix: finish_map(suffix),
            prefix: finish_map(prefix),
            odd: odd.into_iter().map(|(n, s)| (n, finish(s))).collect(),
            blob,
        }
    }

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

    fn ranks(lists: &Lists<'_>) -> Vec<u32> {
        let mut v: Vec<u32> = lists
            .iter()
            .flat_map(|l| {
                l.chunks(ENTRY_BYTES)
                    .filter_map(first_entry)
                    .map(Entry::rank)
            })
            .collect();
        v.sort_unstable();
        v
    }

    #[test]
    fn radix_tree_collects_every_prefix_on_the_path() {
        let mut t = Tree::new();
        let keys = [
            "/",
            "/api",
            "/apix",
            "/api/v1",
            "/b",
            "",
            "/api/v1/users",
            "/api",
        ];
        for (rank, key) in keys.iter().enumerate() {
            t.insert(key.as_bytes(), Entry::new(rank as u32, 0));
        }
        let mut blob = Blob::default();
        blob.bytes.extend_from_slice(b"padding");
        let root = blob.append(&mut t);
        let get = |p: &str| {
            let mut out = Lists::new();
            let _ = blob.collect(root, p.as_bytes(), &mut out);
            ranks(&out)
        };
        assert_eq!(get("/api/v1/users/7"), vec![0, 1, 3, 5, 6, 7]);
        assert_eq!(get("/apixyz"), vec![0, 1, 2, 5, 7]);
        assert_eq!(get("/ap"), vec![0, 5]);
        assert_eq!(get("/b"), vec![0, 4, 5]);
        assert_eq!(get(""), vec![5]);
    }

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
