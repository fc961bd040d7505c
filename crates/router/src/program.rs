//! A compact copy of a path regex's NFA, searched with a bounded backtracker.
//!
//! Why: a route table holds hundreds of regexes and the one a request needs is almost always
//! cache-cold. regex-automata's engines reach their data through several pointer hops (the
//! regex, its NFA, the states, each sparse state's boxed transitions, a cache), each one a
//! dependent cache miss. A [`Program`] is one contiguous block, laid out depth-first from the
//! start state, so the states an ASCII path walks through sit in a few adjacent cache lines
//! that [`Program::touch`] fetches in parallel before the search.
//!
//! The search is regex-automata's `BoundedBacktracker` algorithm run on the same NFA (same
//! exploration order, same visited set, same capture bookkeeping, same empty-match rule), so
//! it reports the same match and the same group spans. It only handles anchored searches whose
//! visited set is not too large; the caller falls back to regex-automata otherwise.

use regex_automata::nfa::thompson::{NFA, State};
use regex_automata::util::look::{Look, LookMatcher};
use regex_automata::util::primitives::{NonMaxUsize, StateID};
use smallvec::SmallVec;

/// State kinds, in the low [`KIND_BITS`] of a state's first word; the rest of that word is the
/// state's dense index (its row in the visited set).
const BYTE_RANGE: u32 = 0; // [head, lo | hi << 8, next]
const SPARSE: u32 = 1; // [head, n, (lo | hi << 8, next) x n], ranges sorted and disjoint
const LOOK: u32 = 2; // [head, look repr, next]
const UNION: u32 = 3; // [head, n, alternative x n], in priority order
const BINARY_UNION: u32 = 4; // [head, preferred, other]
const CAPTURE: u32 = 5; // [head, slot, next]
const FAIL: u32 = 6; // [head]
const MATCH: u32 = 7; // [head]
const KIND_BITS: u32 = 4;
const KIND_MASK: u32 = (1 << KIND_BITS) - 1;

/// Header words before the literal and the states.
const FLAGS: usize = 0; // bit 0: UTF-8 empty-match rule; bits 8..16: line terminator
const LITERAL_LEN: usize = 1;
const STATE_COUNT: usize = 2;
const START: usize = 3;
const HEADER: usize = 4;
const UTF8_EMPTY: u32 = 1;

/// Visited sets up to this many bits live on the stack.
const INLINE_VISITED_WORDS: usize = 32;
/// Larger searches than this (bits) are left to regex-automata (it would switch to the PikeVM).
const MAX_VISITED_BITS: usize = 256 * 1024 * 8;

/// How many leading cache lines [`Program::touch`] loads.
const TOUCH_LINES: usize = 8;

/// A compiled path regex: `literal` followed by an anchored NFA.
#[derive(Debug)]
pub(crate) struct Program {
    words: Box<[u32]>,
}

/// A backtracking frame: explore `pc` at `at`, or undo a capture slot on the way back.
#[derive(Debug, Clone, Copy)]
enum Frame {
    Step {
        pc: u32,
        at: usize,
    },
    Restore {
        slot: u32,
        offset: Option<NonMaxUsize>,
    },
}

/// Where the successors of a state are, in priority order.
fn successors(state: &State) -> SmallVec<[StateID; 4]> {
    match state {
        State::ByteRange { trans } => smallvec::smallvec![trans.next],
        State::Sparse(sparse) => sparse.transitions.iter().map(|t| t.next).collect(),
        State::Dense(dense) => dense
            .transitions
            .iter()
            .copied()
            .filter(|&s| s != StateID::ZERO)
            .collect(),
        State::Look { next, .. } | State::Capture { next, .. } => smallvec::smallvec![*next],
        State::Union { alternates } => alternates.iter().copied().collect(),
        State::BinaryUnion { alt1, alt2 } => smallvec::smallvec![*alt1, *alt2],
        State::Fail | State::Match { .. } => SmallVec::new(),
    }
}

/// A dense state's byte ranges (a zero target means no transition).
fn dense_ranges(transitions: &[StateID]) -> Vec<(u8, u8, StateID)> {
    let mut out: Vec<(u8, u8, StateID)> = Vec::new();
    for (b, &next) in (0..=255u8).zip(transitions) {
        if next == StateID::ZERO {
            continue;
        }
        match out.last_mut() {
            Some((_, hi, last)) if *last == next && hi.checked_add(1) == Some(b) => *hi = b,
            _ => out.push((b, b, next)),
        }
    }
    out
}

fn range_word(lo: u8, hi: u8) -> u32 {
    u32::from(lo) | (u32::from(hi) << 8)
}

impl Program {
    /// Compiles `nfa` (searched anchored from its anchored start state) behind `literal`, the
    /// bytes a path must start with before the NFA runs. `None` when the NFA is too large to
    /// encode.
    pub(crate) fn new(nfa: &NFA, literal: &[u8]) -> Option<Program> {
        let states = nfa.states();
        // Depth-first order from the start, preferred successor first: the path a typical
        // (ASCII) request takes comes out contiguous. Unreachable states are dropped.
        let mut order: Vec<usize> = Vec::new();
        let mut seen = vec![false; states.len()];
        let mut stack = vec![nfa.start_anchored()];
        while let Some(sid) = stack.pop() {
            let i = sid.as_usize();
            if std::mem::replace(seen.get_mut(i)?, true) {
                continue;
            }
            order.push(i);
            let state = states.get(i)?;
            stack.extend(successors(state).into_iter().rev());
        }
        let size = |state: &State| -> usize {
            match state {
                State::ByteRange { .. }
                | State::Look { .. }
                | State::BinaryUnion { .. }
                | State::Capture { .. } => 3,
                State::Sparse(sparse) => 2 + 2 * sparse.transitions.len(),
                State::Dense(dense) => 2 + 2 * dense_ranges(&dense.transitions).len(),
                State::Union { alternates } => 2 + alternates.len(),
                State::Fail | State::Match { .. } => 1,
            }
        };
        let literal_words = literal.len().div_ceil(4);
        let mut pc = vec![u32::MAX; states.len()];
        let mut at = HEADER + literal_words;
        for &i in &order {
            *pc.get_mut(i)? = u32::try_from(at).ok()?;
            at += size(states.get(i)?);
        }
        let target = |sid: StateID| -> Option<u32> { pc.get(sid.as_usize()).copied() };

        let mut words: Vec<u32> = Vec::with_capacity(at);
        let mut flags = u32::from(nfa.look_matcher().get_line_terminator()) << 8;
        if nfa.has_empty() && nfa.is_utf8() {
            flags |= UTF8_EMPTY;
        }
        words.push(flags);
        words.push(u32::try_from(literal.len()).ok()?);
        words.push(u32::try_from(order.len()).ok()?);
        words.push(target(nfa.start_anchored())?);
        for chunk in literal.chunks(4) {
            let mut w = [0u8; 4];
            w.get_mut(..chunk.len())?.copy_from_slice(chunk);
            words.push(u32::from_le_bytes(w));
        }
        for (index, &i) in order.iter().enumerate() {
            let index = u32::try_from(index).ok()?;
            if index >= 1 << (32 - KIND_BITS) {
                return None;
            }
            let head = |kind: u32| kind | (index << KIND_BITS);
            match states.get(i)? {
                State::ByteRange { trans } => words.extend([
                    head(BYTE_RANGE),
                    range_word(trans.start, trans.end),
                    target(trans.next)?,
                ]),
                State::Sparse(sparse) => {
                    words.push(head(SPARSE));
                    words.push(u32::try_from(sparse.transitions.len()).ok()?);
                    for t in &*sparse.transitions {
                        words.extend([range_word(t.start, t.end), target(t.next)?]);
                    }
                }
                State::Dense(dense) => {
                    let ranges = dense_ranges(&dense.transitions);
                    words.push(head(SPARSE));
                    words.push(u32::try_from(ranges.len()).ok()?);
                    for (lo, hi, next) in ranges {
                        words.extend([range_word(lo, hi), target(next)?]);
                    }
                }
                State::Look { look, next } => {
                    words.extend([head(LOOK), look.as_repr(), target(*next)?]);
                }
                State::Union { alternates } => {
                    words.push(head(UNION));
                    words.push(u32::try_from(alternates.len()).ok()?);
                    for &alt in &**alternates {
                        words.push(target(alt)?);
                    }
                }
                State::BinaryUnion { alt1, alt2 } => {
                    words.extend([head(BINARY_UNION), target(*alt1)?, target(*alt2)?]);
                }
                State::Capture { next, slot, .. } => {
                    let slot = u32::try_from(slot.as_usize()).ok()?;
                    words.extend([head(CAPTURE), slot, target(*next)?]);
                }
                State::Fail => words.push(head(FAIL)),
                State::Match { .. } => words.push(head(MATCH)),
            }
        }
        Some(Program {
            words: words.into_boxed_slice(),
        })
    }

    /// Loads the first cache lines of the program (independent loads, so their misses overlap)
    /// and returns a value to feed to `black_box`.
    pub(crate) fn touch(&self) -> u32 {
        self.words
            .iter()
            .step_by(16)
            .take(TOUCH_LINES)
            .fold(0, |acc, w| acc ^ w)
    }

    fn word(&self, at: usize) -> Option<u32> {
        self.words.get(at).copied()
    }

    fn pc_word(&self, pc: u32, offset: u32) -> Option<u32> {
        self.word(usize::try_from(pc.checked_add(offset)?).ok()?)
    }

    /// Matches `hay` from its start: the literal, then the NFA, anchored. Fills `slots` (the
    /// NFA's slots, group 0 first; group 0's start is where the NFA started) and returns the
    /// match end. Outer `None`: the search is too large for this engine, use another.
    pub(crate) fn search(
        &self,
        hay: &[u8],
        slots: &mut [Option<NonMaxUsize>],
    ) -> Option<Option<usize>> {
        let literal_len = usize::try_from(self.word(LITERAL_LEN)?).ok()?;
        let states = usize::try_from(self.word(STATE_COUNT)?).ok()?;
        let start = literal_len;
        let Some(span) = hay.len().checked_sub(start) else {
            return Some(None);
        };
        let literal = self
            .words
            .get(HEADER..HEADER + literal_len.div_ceil(4))?
            .iter()
            .flat_map(|w| w.to_le_bytes());
        if !hay
            .iter()
            .zip(literal)
            .take(literal_len)
            .all(|(a, b)| *a == b)
        {
            return Some(None);
        }
        let stride = span.checked_add(1)?;
        let bits = states.checked_mul(stride)?;
        if bits > MAX_VISITED_BITS {
            return None;
        }
        let mut search = Search {
            prog: self,
            hay,
            start,
            stride,
            lookm: {
                let mut m = LookMatcher::new();
                m.set_line_terminator(self.word(FLAGS)?.to_le_bytes()[1]);
                m
            },
            visited: smallvec::smallvec![0; bits.div_ceil(64)],
            stack: SmallVec::new(),
        };
        slots.iter_mut().for_each(|s| *s = None);
        let end = search.run(self.word(START)?, slots);
        let utf8_empty = self.word(FLAGS)? & UTF8_EMPTY != 0;
        Some(match end {
            // An anchored match ending inside a code point is no match (regex-automata's
            // empty-match rule in UTF-8 mode).
            Some(end) if utf8_empty && !is_char_boundary(hay, end) => None,
            other => other,
        })
    }
}

fn is_char_boundary(hay: &[u8], at: usize) -> bool {
    match hay.get(at) {
        None => at == hay.len(),
        Some(&b) => b <= 0x7F || b >= 0xC0,
    }
}

struct Search<'a> {
    prog: &'a Program,
    hay: &'a [u8],
    start: usize,
    stride: usize,
    lookm: LookMatcher,
    visited: SmallVec<[u64; INLINE_VISITED_WORDS]>,
    stack: SmallVec<[Frame; 16]>,
}

impl Search<'_> {
    fn run(&mut self, start_pc: u32, slots: &mut [Option<NonMaxUsize>]) -> Option<usize> {
        self.stack.push(Frame::Step {
            pc: start_pc,
            at: self.start,
        });
        while let Some(frame) = self.stack.pop() {
            match frame {
                Frame::Step { pc, at } => {
                    if let Some(end) = self.step(pc, at, slots) {
                        return Some(end);
                    }
                }
                Frame::Restore { slot, offset } => {
                    if let Some(s) = usize::try_from(slot).ok().and_then(|i| slots.get_mut(i)) {
                        *s = offset;
                    }
                }
            }
        }
        None
    }

    /// Follows `pc` at `at` until a failure (`None`) or a match (its end).
    fn step(
        &mut self,
        mut pc: u32,
        mut at: usize,
        slots: &mut [Option<NonMaxUsize>],
    ) -> Option<usize> {
        let prog = self.prog;
        loop {
            let head = prog.pc_word(pc, 0)?;
            // Each (state, position) is explored at most once: a second visit would fail again.
            let index = usize::try_from(head >> KIND_BITS).ok()?;
            let bit = index * self.stride + (at - self.start);
            let word = self.visited.get_mut(bit / 64)?;
            let mask = 1u64 << (bit % 64);
            if *word & mask != 0 {
                return None;
            }
            *word |= mask;
            match head & KIND_MASK {
                BYTE_RANGE => {
                    let b = *self.hay.get(at)?;
                    let range = prog.pc_word(pc, 1)?;
                    if b < (range & 0xFF) as u8 || b > (range >> 8) as u8 {
                        return None;
                    }
                    pc = prog.pc_word(pc, 2)?;
                    at += 1;
                }
                SPARSE => {
                    let b = *self.hay.get(at)?;
                    let n = prog.pc_word(pc, 1)?;
                    let mut next = None;
                    for k in 0..n {
                        let range = prog.pc_word(pc, 2 + 2 * k)?;
                        if b < (range & 0xFF) as u8 {
                            break;
                        }
                        if b <= (range >> 8) as u8 {
                            next = Some(prog.pc_word(pc, 3 + 2 * k)?);
                            break;
                        }
                    }
                    pc = next?;
                    at += 1;
                }
                LOOK => {
                    let look = Look::from_repr(prog.pc_word(pc, 1)?)?;
                    if !self.lookm.matches(look, self.hay, at) {
                        return None;
                    }
                    pc = prog.pc_word(pc, 2)?;
                }
                UNION => {
                    let n = prog.pc_word(pc, 1)?;
                    if n == 0 {
                        return None;
                    }
                    for k in (1..n).rev() {
                        let alt = prog.pc_word(pc, 2 + k)?;
                        self.stack.push(Frame::Step { pc: alt, at });
                    }
                    pc = prog.pc_word(pc, 2)?;
                }
                BINARY_UNION => {
                    let other = prog.pc_word(pc, 2)?;
                    self.stack.push(Frame::Step { pc: other, at });
                    pc = prog.pc_word(pc, 1)?;
                }
                CAPTURE => {
                    let slot = prog.pc_word(pc, 1)?;
                    if let Some(s) = usize::try_from(slot).ok().and_then(|i| slots.get_mut(i)) {
                        self.stack.push(Frame::Restore { slot, offset: *s });
                        *s = NonMaxUsize::new(at);
                    }
                    pc = prog.pc_word(pc, 2)?;
                }
                MATCH => return Some(at),
                _ => return None,
            }
        }
    }
}
