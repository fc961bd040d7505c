//! Properties of `normalize_path` and `escape_path` over random paths from a small alphabet
//! rich in dots, slashes and percent triplets.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;
use silverback_router::{escape_path, normalize_path};

const TOKENS: &[&str] = &[
    "/", "/", "/", ".", "..", "a", "b", "~", "é", "%2e", "%2E", "%2F", "%2f", "%41", "%61", "%25",
    "%3A", "%3a", "%C3%A9", "%c3", "%FF", "%", "%4", "%zz", " ", "%20",
];

fn path() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(TOKENS), 0..14).prop_map(|t| t.concat())
}

const RESERVED: &[u8] = b"!*'();:@&=+$,/?%#[]";

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    #[test]
    fn normalize_is_idempotent(p in path()) {
        let once = normalize_path(&p).into_owned();
        let twice = normalize_path(&once);
        prop_assert_eq!(&once, &*twice);
    }

    #[test]
    fn normalize_leaves_no_empty_or_dot_segments(p in path()) {
        let n = normalize_path(&p);
        prop_assert!(!n.contains("//"), "{:?} -> {:?}", p, n);
        prop_assert!(!n.contains("/./") && !n.ends_with("/."), "{:?} -> {:?}", p, n);
        prop_assert!(!n.contains("/../") && !n.ends_with("/.."), "{:?} -> {:?}", p, n);
        prop_assert!(n != "." && n != "..");
    }

    #[test]
    fn only_reserved_or_non_utf8_triplets_remain(p in path()) {
        let n = normalize_path(&p);
        let b = n.as_bytes();
        for (i, _) in n.match_indices('%') {
            let hex = b.get(i + 1..i + 3).expect("every % starts a triplet");
            let upper_hex = |h: &u8| h.is_ascii_digit() || (b'A'..=b'F').contains(h);
            prop_assert!(hex.iter().all(upper_hex), "{:?}", n);
            let v = u8::from_str_radix(std::str::from_utf8(hex).unwrap(), 16).unwrap();
            prop_assert!(RESERVED.contains(&v) || v >= 0x80, "{:?} keeps %{:02X}", n, v);
        }
    }

    #[test]
    fn decodes_unreserved_keeps_slash(a in "[a-z]{0,5}", b in "[a-z]{0,5}") {
        let norm = |s: String| normalize_path(&s).into_owned();
        prop_assert_eq!(norm(format!("/{a}%41{b}")), format!("/{a}A{b}"));
        prop_assert_eq!(norm(format!("/{a}%2F{b}")), format!("/{a}%2F{b}"));
        prop_assert_eq!(norm(format!("/{a}%2f{b}")), format!("/{a}%2F{b}"));
    }

    #[test]
    fn normalized_then_escaped_is_safe_and_stable(p in path()) {
        let n = normalize_path(&p);
        let e = escape_path(&n);
        prop_assert!(e.bytes().all(|c| c.is_ascii_graphic()), "{:?}", e);
        prop_assert_eq!(&*escape_path(&e), &*e);
    }
}
