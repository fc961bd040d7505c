//! Compiling route specs into a [`Router`], from scratch or incrementally.
//!
//! Compiling a route (its regexes above all) is most of the cost of a build, and what it yields,
//! a [`Matcher`] per route part, depends on the route's [`RouteSpec`] alone. So matchers are
//! shared through `Arc`s, and [`Router::rebuild`] keeps the previous router's matchers of every
//! route whose spec is unchanged instead of compiling them again. What depends on the whole set
//! (rank order, dense heads, the regex filter table, the index) is assembled anew every time.
//!
//! A rebuild reads the previous router only through tables that are contiguous and mostly read
//! in order: the spec records (`specs.rs`), the slots and per-rank order keys, the place records
//! the index is built from (`index/place.rs`) and the filter table. Reading the same data from
//! the matchers themselves would cost several cache misses per route, which for 10,000 routes
//! was most of the time of a rebuild.

mod specs;

use crate::index::{FxMap, Index, Places};
use crate::matcher::{Compiler, Head, Matcher};
use crate::validate::ByteSet;
use crate::{BuildError, RouteSpec, Router, priority};
pub(crate) use specs::SpecTable;
use std::cmp::Ordering;
use std::sync::Arc;
use uuid::Uuid;

/// A matcher in rank order: its head (the hot part, see [`Head`]) next to the matcher itself,
/// so a candidate that needs more than its head costs one more cache line, as it did before
/// matchers were shared.
#[derive(Debug)]
pub(crate) struct Slot {
    pub(crate) head: Head,
    pub(crate) matcher: Arc<Matcher>,
}

/// How a router was built: how many routes were compiled, and how many were taken from the
/// router it was rebuilt from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BuildStats {
    pub compiled: usize,
    pub reused: usize,
}

/// End marker for positions.
const NONE: u32 = u32::MAX;

/// Where a ranked matcher comes from.
#[derive(Clone, Copy)]
enum Source<'a> {
    /// The previous router's matcher of this rank.
    Kept(usize),
    New(&'a Arc<Matcher>),
}

/// A matcher waiting for its rank.
struct Ranked<'a> {
    priority: u64,
    id: u128,
    route: u32,
    /// Position before sorting, which has a route's parts in part order.
    seq: u32,
    source: Source<'a>,
}

/// Kong's matcher order: priority, then UUID, both descending. Equal pairs only come from
/// duplicate ids; configuration order decides then, and part order within a route. A total
/// order, so any sort gives the same ranks.
fn rank_order(a: &Ranked<'_>, b: &Ranked<'_>) -> Ordering {
    (b.priority, b.id)
        .cmp(&(a.priority, a.id))
        .then((a.route, a.seq).cmp(&(b.route, b.seq)))
}

impl Router {
    /// Compiles routes into a router. Fails on regexes the engine cannot compile, naming the
    /// route and the offending value.
    pub fn build(routes: &[RouteSpec]) -> Result<Router, BuildError> {
        assemble(routes, &Router::empty())
    }

    /// Compiles `routes` as [`Router::build`] does, reusing what `self` compiled for every
    /// route whose spec is unchanged (same id, equal fields): only new and changed routes are
    /// compiled. The result is the router `Router::build(routes)` gives (same winners, captures
    /// and errors); `self` is left as it is and can keep serving until the new one replaces it.
    ///
    /// Routes are recognized by id wherever they are in `routes`, so additions, removals and
    /// reordering cost nothing beyond the routes they touch. The rest of a build (ranking, the
    /// index) is redone on every call: a few milliseconds for 10,000 routes.
    pub fn rebuild(&self, routes: &[RouteSpec]) -> Result<Router, BuildError> {
        assemble(routes, self)
    }

    /// How this router was built (see [`Router::rebuild`]).
    pub fn stats(&self) -> BuildStats {
        self.stats
    }

    fn empty() -> Router {
        Router {
            slots: Vec::new(),
            filters: Vec::new(),
            next_sets: Vec::new(),
            index: Index::default(),
            specs: SpecTable::default(),
            places: Places::default(),
            order: Vec::new(),
            stats: BuildStats::default(),
        }
    }
}

/// Finds the previous position of a spec.
struct Previous<'p> {
    specs: &'p SpecTable,
    /// First position of each id, made when first needed.
    by_id: Option<FxMap<Uuid, usize>>,
}

impl Previous<'_> {
    /// The previous position of the spec at `at` whose record is `record`, if that spec was
    /// there: the same position first (a typical change leaves the others in place), else the
    /// first previous route with that id.
    fn find(&mut self, at: usize, id: Uuid, record: &[u8]) -> Option<usize> {
        let specs = self.specs;
        if specs.id(at) == Some(id) {
            return (specs.get(at) == Some(record)).then_some(at);
        }
        let by_id = self.by_id.get_or_insert_with(|| {
            let mut map = FxMap::with_capacity_and_hasher(specs.len(), Default::default());
            for i in (0..specs.len()).rev() {
                if let Some(id) = specs.id(i) {
                    map.insert(id, i);
                }
            }
            map
        });
        let i = *by_id.get(&id)?;
        (specs.get(i) == Some(record)).then_some(i)
    }
}

fn assemble(specs: &[RouteSpec], old: &Router) -> Result<Router, BuildError> {
    let too_many = |n: usize| BuildError::TooManyRoutes(n);
    let mut table = SpecTable::with_capacity(specs.len(), old.specs.byte_len() + 4096);
    let mut previous = Previous {
        specs: &old.specs,
        by_id: None,
    };
    // Per previous route: its new position when kept (one position, even for duplicates).
    let mut kept: Vec<u32> = vec![NONE; old.specs.len()];
    let mut fresh: Vec<(u32, Arc<Matcher>)> = Vec::new();
    let mut compiler = None;
    let mut stats = BuildStats::default();
    for (index, spec) in specs.iter().enumerate() {
        let route = u32::try_from(index)
            .ok()
            .filter(|&r| r != NONE)
            .ok_or_else(|| too_many(specs.len()))?;
        table.push(spec);
        if let Some(record) = table.get(index)
            && let Some(i) = previous.find(index, spec.id, record)
            && let Some(slot) = kept.get_mut(i)
            && *slot == NONE
        {
            *slot = route;
            stats.reused += 1;
            continue;
        }
        let compiler = compiler.get_or_insert_with(Compiler::new);
        for part in priority::split(spec) {
            let matcher = Matcher::build(index, spec, &part, compiler)?;
            fresh.push((route, Arc::new(matcher)));
        }
        stats.compiled += 1;
    }

    // The previous rank order still holds among the kept matchers, so they go first, then the
    // new ones in route and part order.
    let mut ranked: Vec<Ranked<'_>> = Vec::with_capacity(old.slots.len() + fresh.len());
    for (rank, (slot, &(priority, id))) in old.slots.iter().zip(&old.order).enumerate() {
        let route = usize::try_from(slot.head.route).ok();
        if let Some(&route) = route.and_then(|r| kept.get(r))
            && route != NONE
        {
            ranked.push(Ranked {
                priority,
                id,
                route,
                seq: 0,
                source: Source::Kept(rank),
            });
        }
    }
    ranked.extend(fresh.iter().map(|(route, m)| Ranked {
        priority: m.priority,
        id: m.id.as_u128(),
        route: *route,
        seq: 0,
        source: Source::New(m),
    }));
    if u32::try_from(ranked.len()).is_err() {
        return Err(too_many(ranked.len()));
    }
    for (r, seq) in ranked.iter_mut().zip(0..) {
        r.seq = seq;
    }
    if old.slots.is_empty() {
        ranked.sort_unstable_by(rank_order);
    } else {
        // Mostly in order already: the stable sort merges the few new ones in linear time.
        ranked.sort_by(rank_order);
    }

    // Taking a kept matcher is an atomic increment of its reference count, on a cache line that
    // is usually cold; x86 serializes atomics, so each of those misses would be waited for in
    // turn. Plain loads first let the misses overlap (ranks mostly keep their order, so this
    // follows the slots in order); the increments then hit the cache.
    for slot in &old.slots {
        std::hint::black_box(Arc::strong_count(&slot.matcher));
    }
    let mut filters = Filters::new(&old.next_sets);
    let mut slots = Vec::with_capacity(ranked.len());
    let mut places = Places::with_capacity(ranked.len(), old.places.byte_len() + 4096);
    let mut order = Vec::with_capacity(ranked.len());
    for r in &ranked {
        let slot = match r.source {
            Source::Kept(rank) => {
                let Some(slot) = old.slots.get(rank) else {
                    continue;
                };
                let mut head = slot.head;
                head.route = r.route;
                if head.regex {
                    let count = old.places.key_count(rank);
                    (head.aux, head.next_set) = filters.copy(&old.filters, head, count);
                }
                places.push_copy(&old.places, rank);
                Slot {
                    head,
                    matcher: Arc::clone(&slot.matcher),
                }
            }
            Source::New(m) => {
                let (first, first_filter) = filters.add(m);
                places.push(&m.hosts, m.keys().into_iter());
                Slot {
                    head: m.head(r.route, first, first_filter),
                    matcher: Arc::clone(m),
                }
            }
        };
        slots.push(slot);
        order.push((r.priority, r.id));
    }
    let index = Index::build(&places, &old.index);
    Ok(Router {
        slots,
        filters: filters.table,
        next_sets: filters.sets,
        index,
        specs: table,
        places,
        order,
        stats,
    })
}

/// The router's regex filter table under construction (see
/// [`crate::validate::PathRegex::filter`]).
struct Filters<'o> {
    /// Per regex, in rank order and a matcher's regexes adjacent: (1 + index in `sets`, or 0
    /// for no filter; the offset of the byte it checks).
    table: Vec<(u16, u16)>,
    /// The distinct byte sets (a handful, shared by all regexes).
    sets: Vec<ByteSet>,
    positions: FxMap<ByteSet, u16>,
    /// The previous router's sets, and what each (1-based) has become here (0: not yet).
    old_sets: &'o [ByteSet],
    renumbered: Vec<u16>,
}

impl<'o> Filters<'o> {
    fn new(old_sets: &'o [ByteSet]) -> Self {
        Filters {
            table: Vec::new(),
            sets: Vec::new(),
            positions: FxMap::default(),
            old_sets,
            renumbered: vec![0; old_sets.len() + 1],
        }
    }

    /// Adds the filters of a new matcher's regexes; returns where the first is and what it is.
    fn add(&mut self, matcher: &Matcher) -> (u32, (u16, u16)) {
        let first = self.table.len();
        for rx in matcher.regexes() {
            let filter = rx.filter().and_then(|(set, at)| Some((self.set(set)?, at)));
            self.table.push(filter.unwrap_or((0, 0)));
        }
        let first_filter = self.table.get(first).copied().unwrap_or((0, 0));
        (u32::try_from(first).unwrap_or(NONE), first_filter)
    }

    /// Copies the `count` filters of a kept regex matcher whose previous head is `head`;
    /// returns its new `aux` and `next_set`.
    fn copy(&mut self, old: &[(u16, u16)], head: Head, count: usize) -> (u32, u16) {
        let first = self.table.len();
        let from = usize::try_from(head.aux).unwrap_or(usize::MAX);
        for k in 0..count {
            let (set, at) = from
                .checked_add(k)
                .and_then(|i| old.get(i))
                .copied()
                .unwrap_or((0, 0));
            let filter = match self.renumber(set) {
                0 => (0, 0),
                set => (set, at),
            };
            self.table.push(filter);
        }
        // The head carries the filter of a single regex (see `Matcher::head`).
        let next_set = match head.next_set {
            0 => 0,
            _ => self.table.get(first).map_or(0, |f| f.0),
        };
        (u32::try_from(first).unwrap_or(NONE), next_set)
    }

    /// The number here of the previous router's set `old` (1-based; 0 stays 0).
    fn renumber(&mut self, old: u16) -> u16 {
        let Some(i) = usize::from(old).checked_sub(1) else {
            return 0;
        };
        match self.renumbered.get(usize::from(old)) {
            Some(&n) if n != 0 => n,
            _ => {
                let n = self
                    .old_sets
                    .get(i)
                    .and_then(|&set| self.set(set))
                    .unwrap_or(0);
                if let Some(slot) = self.renumbered.get_mut(usize::from(old)) {
                    *slot = n;
                }
                n
            }
        }
    }

    /// 1 + the index of `set` in `sets`, added if new; `None` past `u16` range.
    fn set(&mut self, set: ByteSet) -> Option<u16> {
        if let Some(&n) = self.positions.get(&set) {
            return Some(n);
        }
        let n = u16::try_from(self.sets.len() + 1).ok()?;
        self.sets.push(set);
        self.positions.insert(set, n);
        Some(n)
    }
}
