//! The path regex compiler of one build: compiles a regex's engines once per distinct pattern
//! shape.
//!
//! Why: routes often share a regex shape and differ in their literal prefix only
//! (`~/users/(?<id>\d+)$`, `~/orders/(?<id>\d+)$`), and the engines are compiled from the
//! pattern without its leading literal (see `validate.rs`). Compiling a Thompson NFA is the
//! larger part of compiling a path regex (a Unicode class such as `\d` alone is dozens of
//! states), so equal remainders share one NFA and the engines built on it.

use crate::index::FxMap;
use regex_automata::nfa::thompson::backtrack::BoundedBacktracker;
use regex_automata::nfa::thompson::pikevm::PikeVM;
use regex_automata::nfa::thompson::{self, NFA, WhichCaptures};
use regex_syntax::hir::{Class, Hir, HirKind};
use std::hash::{BuildHasher, Hash, Hasher};

/// The NFA configuration `regex::Regex::new` (i.e. `meta::Regex`) uses.
fn nfa_config() -> thompson::Config {
    thompson::Config::new()
        .utf8(true)
        .nfa_size_limit(Some(NFA_SIZE_LIMIT))
        .shrink(false)
        .which_captures(WhichCaptures::All)
}

pub(crate) const NFA_SIZE_LIMIT: usize = 10 * (1 << 20);

/// The engines of a path regex, all on one NFA (cheap to clone: the NFA is shared).
#[derive(Debug, Clone)]
pub(crate) struct Engines {
    pub(crate) nfa: NFA,
    pub(crate) backtrack: BoundedBacktracker,
    pub(crate) pikevm: PikeVM,
}

pub(crate) struct PathCompiler {
    /// One for every regex: a fresh compiler allocates a 10,000-entry UTF-8 state map (zeroed,
    /// then freed) for its first Unicode class, which used to be most of the cost of a path
    /// regex; a reused one only bumps a version number.
    nfa: thompson::Compiler,
    /// Engines by pattern (without its leading literal), under a structural hash of it.
    engines: FxMap<u64, Vec<(Hir, Engines)>>,
}

impl PathCompiler {
    pub(crate) fn new() -> Self {
        let mut nfa = thompson::Compiler::new();
        nfa.configure(nfa_config());
        PathCompiler {
            nfa,
            engines: FxMap::default(),
        }
    }

    /// The engines for `hir`, compiled or shared; the error is the compiler's.
    pub(crate) fn engines(&mut self, hir: &Hir) -> Result<Engines, String> {
        let mut hasher = self.engines.hasher().build_hasher();
        hash_hir(hir, &mut hasher);
        let key = hasher.finish();
        if let Some((_, engines)) = self
            .engines
            .get(&key)
            .and_then(|list| list.iter().find(|(h, _)| h == hir))
        {
            return Ok(engines.clone());
        }
        let nfa = self.nfa.build_from_hir(hir).map_err(|e| e.to_string())?;
        let backtrack = BoundedBacktracker::builder()
            .build_from_nfa(nfa.clone())
            .map_err(|e| e.to_string())?;
        let pikevm = PikeVM::builder()
            .build_from_nfa(nfa.clone())
            .map_err(|e| e.to_string())?;
        let engines = Engines {
            nfa,
            backtrack,
            pikevm,
        };
        self.engines
            .entry(key)
            .or_default()
            .push((hir.clone(), engines.clone()));
        Ok(engines)
    }
}

/// Hashes the structure of `hir` (equal HIRs hash equally; a match is confirmed with `==`).
fn hash_hir(hir: &Hir, h: &mut impl Hasher) {
    match hir.kind() {
        HirKind::Empty => h.write_u8(0),
        HirKind::Literal(lit) => {
            h.write_u8(1);
            lit.0.hash(h);
        }
        HirKind::Class(Class::Unicode(cls)) => {
            h.write_u8(2);
            for r in cls.ranges() {
                h.write_u32(u32::from(r.start()));
                h.write_u32(u32::from(r.end()));
            }
        }
        HirKind::Class(Class::Bytes(cls)) => {
            h.write_u8(3);
            for r in cls.ranges() {
                h.write_u8(r.start());
                h.write_u8(r.end());
            }
        }
        HirKind::Look(look) => {
            h.write_u8(4);
            h.write_u32(look.as_repr());
        }
        HirKind::Repetition(rep) => {
            h.write_u8(5);
            (rep.min, rep.max, rep.greedy).hash(h);
            hash_hir(&rep.sub, h);
        }
        HirKind::Capture(cap) => {
            h.write_u8(6);
            (cap.index, &cap.name).hash(h);
            hash_hir(&cap.sub, h);
        }
        HirKind::Concat(items) | HirKind::Alternation(items) => {
            h.write_u8(if matches!(hir.kind(), HirKind::Concat(_)) {
                7
            } else {
                8
            });
            h.write_usize(items.len());
            for item in items {
                hash_hir(item, h);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::{compile_path_regex_with, translate_path_regex};

    #[test]
    fn shapes_after_the_literal_share_engines() {
        let mut c = PathCompiler::new();
        let a = compile_path_regex_with(&mut c, r"~/users/(?<id>\d+)$").unwrap();
        let b = compile_path_regex_with(&mut c, r"~/orders/(?<id>\d+)$").unwrap();
        let other = compile_path_regex_with(&mut c, r"~/orders/(?<id>\d*)$").unwrap();
        assert_eq!(c.engines.values().map(Vec::len).sum::<usize>(), 2);
        assert_eq!(a.search("/users/12").map(|m| m.0), Some(9));
        assert_eq!(b.search("/users/12"), None);
        assert_eq!(b.search("/orders/7").map(|m| m.0), Some(9));
        assert_eq!(other.search("/orders/").map(|m| m.0), Some(8));
        assert_eq!(b.search("/orders/"), None);
    }

    #[test]
    fn equal_patterns_hash_equally() {
        let hash = |p: &str| {
            let hir = regex_syntax::parse(&translate_path_regex(p)).unwrap();
            let mut h = std::collections::hash_map::DefaultHasher::new();
            hash_hir(&hir, &mut h);
            h.finish()
        };
        assert_eq!(hash(r"~/a/(\d+)"), hash(r"~/a/(\d+)"));
        assert_ne!(hash(r"~/a/(\d+)"), hash(r"~/a/(\d*)"));
        assert_ne!(hash(r"~/a/(?<x>b)"), hash(r"~/a/(?<y>b)"));
    }
}
