//! Building the index: radix trees in one arena, serialized into the blob.
//!
//! A rebuild after a small change builds the whole index again, so this avoids per-node work
//! beyond the bare minimum: node labels borrow key bytes from the place table (see
//! `place.rs`), children and entries are linked lists in two flat vectors (no allocation per
//! node), entries arrive in rank order (no sorting) and host maps are filled once, then patched
//! in place with blob offsets.

use super::place::Places;
use super::{Blob, ENTRY_BYTES, Entry, FxMap, Index, Roots};
use smallvec::SmallVec;

/// End of a linked list.
const NONE: u32 = u32::MAX;

/// A radix tree node. Children are a list sorted by the first byte of their labels.
struct Node<'a> {
    label: &'a [u8],
    /// `label[0]` (0 for the root), so scanning siblings does not touch their labels.
    first: u8,
    first_child: u32,
    next_sibling: u32,
    /// Entries, a list in `Arena::entries` in insertion (= rank) order.
    first_entry: u32,
    last_entry: u32,
    entry_count: u32,
}

impl<'a> Node<'a> {
    fn new(label: &'a [u8]) -> Self {
        Node {
            label,
            first: label.first().copied().unwrap_or(0),
            first_child: NONE,
            next_sibling: NONE,
            first_entry: NONE,
            last_entry: NONE,
            entry_count: 0,
        }
    }
}

/// Every bucket's radix tree over path bytes.
#[derive(Default)]
struct Arena<'a> {
    nodes: Vec<Node<'a>>,
    /// (entry, next in its node's list).
    entries: Vec<(Entry, u32)>,
}

fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn idx(n: u32) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

impl<'a> Arena<'a> {
    /// A new empty tree; returns its root.
    fn tree(&mut self) -> u32 {
        self.nodes.push(Node::new(b""));
        to_u32(self.nodes.len() - 1)
    }

    fn node(&mut self, node: Node<'a>) -> u32 {
        self.nodes.push(node);
        to_u32(self.nodes.len() - 1)
    }

    fn push_entry(&mut self, node: u32, entry: Entry) {
        let id = to_u32(self.entries.len());
        self.entries.push((entry, NONE));
        let n = &mut self.nodes[idx(node)];
        match n.last_entry {
            NONE => n.first_entry = id,
            last => self.entries[idx(last)].1 = id,
        }
        n.last_entry = id;
        n.entry_count += 1;
    }

    /// Adds `entry` at the node of `key` in the tree rooted at `root`.
    fn insert(&mut self, root: u32, key: &'a [u8], entry: Entry) {
        let mut node = root;
        let mut rest = key;
        loop {
            let Some(&first) = rest.first() else {
                self.push_entry(node, entry);
                return;
            };
            // The child starting with `first`, or where it would go.
            let mut prev = NONE;
            let mut child = self.nodes[idx(node)].first_child;
            while child != NONE && self.nodes[idx(child)].first < first {
                prev = child;
                child = self.nodes[idx(child)].next_sibling;
            }
            let replace_link = |arena: &mut Self, new: u32| match prev {
                NONE => arena.nodes[idx(node)].first_child = new,
                p => arena.nodes[idx(p)].next_sibling = new,
            };
            if child == NONE || self.nodes[idx(child)].first != first {
                let leaf = self.node(Node {
                    next_sibling: child,
                    ..Node::new(rest)
                });
                replace_link(self, leaf);
                self.push_entry(leaf, entry);
                return;
            }
            let label = self.nodes[idx(child)].label;
            let common = label.iter().zip(rest).take_while(|(a, b)| a == b).count();
            if common < label.len() {
                // Split the child: a new middle node takes the common part.
                let next_sibling = self.nodes[idx(child)].next_sibling;
                let mid = self.node(Node {
                    first_child: child,
                    next_sibling,
                    ..Node::new(&label[..common])
                });
                let c = &mut self.nodes[idx(child)];
                c.label = &label[common..];
                c.first = c.label.first().copied().unwrap_or(0);
                c.next_sibling = NONE;
                replace_link(self, mid);
                node = mid;
            } else {
                node = child;
            }
            rest = &rest[common..];
        }
    }

    /// The size of every tree serialized (see [`Blob`]): growing the blob instead would copy
    /// it over and over and fault in new pages each time.
    fn blob_len(&self) -> usize {
        // Every node but the roots is a child: one byte and one offset in its parent.
        let roots = self.nodes.iter().filter(|n| n.label.is_empty()).count();
        let labels: usize = self.nodes.iter().map(|n| 12 + n.label.len()).sum();
        labels + 5 * (self.nodes.len() - roots) + ENTRY_BYTES * self.entries.len()
    }

    fn children(&self, node: u32) -> impl Iterator<Item = u32> + '_ {
        std::iter::successors(
            Some(self.nodes[idx(node)].first_child).filter(|&c| c != NONE),
            |&c| Some(self.nodes[idx(c)].next_sibling).filter(|&s| s != NONE),
        )
    }
}

impl Blob {
    /// Appends the tree at `root` (depth-first, parent before children) and returns its root's
    /// offset. `stack` is scratch space.
    fn append(&mut self, arena: &Arena<'_>, root: u32, stack: &mut Vec<(u32, usize)>) -> u32 {
        let start = to_u32(self.bytes.len());
        // (node, where to patch its offset into its parent's child table; 0 for the root)
        stack.push((root, 0));
        while let Some((id, patch_at)) = stack.pop() {
            let at = to_u32(self.bytes.len()).to_le_bytes();
            if patch_at != 0 {
                self.bytes[patch_at..patch_at + 4].copy_from_slice(&at);
            }
            let node = &arena.nodes[idx(id)];
            let child_count = arena.children(id).count();
            for n in [node.label.len(), child_count, idx(node.entry_count)] {
                self.bytes.extend_from_slice(&to_u32(n).to_le_bytes());
            }
            self.bytes.extend_from_slice(node.label);
            self.bytes
                .extend(arena.children(id).map(|c| arena.nodes[idx(c)].first));
            let offsets_at = self.bytes.len();
            self.bytes.resize(offsets_at + 4 * child_count, 0);
            let mut e = node.first_entry;
            while e != NONE {
                let (entry, next) = arena.entries[idx(e)];
                self.bytes.extend_from_slice(&entry.0.to_le_bytes());
                e = next;
            }
            let first = stack.len();
            stack.extend(
                arena
                    .children(id)
                    .zip(0..)
                    .map(|(c, i)| (c, offsets_at + 4 * i)),
            );
            // Popped in child order.
            stack[first..].reverse();
        }
        start
    }
}

/// The bucket of `port` in `slot` (`None`: any port), created if new.
fn bucket(slot: &mut Roots, port: Option<u16>, arena: &mut Arena<'_>) -> u32 {
    match port {
        None => *slot.any.get_or_insert_with(|| arena.tree()),
        Some(p) => match slot.ports.iter().find(|(q, _)| *q == p) {
            Some(&(_, b)) => b,
            None => {
                let b = arena.tree();
                slot.ports.push((p, b));
                b
            }
        },
    }
}

/// The bucket of `port` under `name` in `map`, created if new (hashing `name` once, and
/// allocating a key only for a new name).
fn named_bucket(
    map: &mut FxMap<Box<str>, Roots>,
    name: &str,
    port: Option<u16>,
    arena: &mut Arena<'_>,
) -> u32 {
    if let Some(slot) = map.get_mut(name) {
        return bucket(slot, port, arena);
    }
    let mut slot = Roots::default();
    let b = bucket(&mut slot, port, arena);
    map.insert(name.into(), slot);
    b
}

impl Index {
    /// Builds the index of the matchers whose place records (see `place.rs`) are `places`, in
    /// rank order. `like` is an index of a similar set (the previous router's), to size tables.
    pub(crate) fn build(places: &Places, like: &Index) -> Index {
        let mut arena = Arena {
            nodes: Vec::with_capacity(places.len() * 2),
            entries: Vec::with_capacity(places.len() * 2),
        };
        let sized = |m: &FxMap<Box<str>, Roots>| {
            FxMap::with_capacity_and_hasher(m.len(), Default::default())
        };
        let mut index = Index {
            exact: sized(&like.exact),
            suffix: sized(&like.suffix),
            prefix: sized(&like.prefix),
            ..Index::default()
        };
        let mut hostless: Option<u32> = None;
        for (record, rank) in places.records().zip(0u32..) {
            let mut buckets: SmallVec<[u32; 4]> = SmallVec::new();
            if !record.has_hosts() {
                buckets.push(*hostless.get_or_insert_with(|| arena.tree()));
            }
            for host in record.hosts() {
                let name = host.name;
                let b = match host.kind {
                    0 => named_bucket(&mut index.exact, name, host.port, &mut arena),
                    1 if name.starts_with('.') => {
                        named_bucket(&mut index.suffix, name, host.port, &mut arena)
                    }
                    2 if name.ends_with('.') => {
                        named_bucket(&mut index.prefix, name, host.port, &mut arena)
                    }
                    _ => {
                        let other = host.pattern();
                        let pos = match index.odd.iter().position(|(n, _)| *n == other) {
                            Some(pos) => pos,
                            None => {
                                index.odd.push((other, Roots::default()));
                                index.odd.len() - 1
                            }
                        };
                        let Some((_, slot)) = index.odd.get_mut(pos) else {
                            continue;
                        };
                        bucket(slot, host.port, &mut arena)
                    }
                };
                if !buckets.contains(&b) {
                    buckets.push(b);
                }
            }
            // Entries go in rank order, so every node's list is sorted as it is filled.
            for b in buckets {
                for (key, sub) in record.keys().zip(0u32..) {
                    arena.insert(b, key, Entry::new(rank, sub));
                }
            }
        }

        // Trees are the nodes with empty labels that `Arena::tree` made: serialize each, then
        // turn bucket ids into blob offsets.
        let mut blob = Blob {
            bytes: Vec::with_capacity(arena.blob_len()),
        };
        let mut offsets = vec![NONE; arena.nodes.len()];
        let mut stack = Vec::new();
        let mut root_of = |b: u32| -> u32 {
            let o = &mut offsets[idx(b)];
            if *o == NONE {
                *o = blob.append(&arena, b, &mut stack);
            }
            *o
        };
        index.hostless = hostless.map(&mut root_of);
        let mut patch = |roots: &mut Roots| {
            roots.any = roots.any.map(&mut root_of);
            for (_, b) in &mut roots.ports {
                *b = root_of(*b);
            }
        };
        index.exact.values_mut().for_each(&mut patch);
        index.suffix.values_mut().for_each(&mut patch);
        index.prefix.values_mut().for_each(&mut patch);
        index.odd.iter_mut().for_each(|(_, r)| patch(r));
        index.blob = blob;
        index
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::{Lists, first_entry};

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
        let mut arena = Arena::default();
        let _other = arena.tree();
        let t = arena.tree();
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
            arena.insert(t, key.as_bytes(), Entry::new(rank as u32, 0));
        }
        let mut blob = Blob::default();
        blob.bytes.extend_from_slice(b"padding");
        let root = blob.append(&arena, t, &mut Vec::new());
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
}
