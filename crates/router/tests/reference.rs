//! The indexed router must pick exactly what a naive matcher picks: split every route, sort all
//! parts by (priority, UUID) descending, and return the first part whose every field matches.
//! Routes and requests come from a small alphabet so that overlaps and ties are frequent.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::naive::{naive, request_strategy, route_strategy};
use proptest::prelude::*;
use silverback_router::Router;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1500))]

    #[test]
    fn index_agrees_with_naive_matcher(
        routes in prop::collection::vec(route_strategy(), 0..14),
        requests in prop::collection::vec(request_strategy(), 1..24),
    ) {
        let router = Router::build(&routes).unwrap();
        for req in &requests {
            let want = naive(&routes, req);
            let got = router.find(&req.as_req()).map(|m| {
                let caps = m
                    .captures
                    .map(|c| c.positional().map(|g| g.map(String::from)).collect());
                (m.route, m.matched_len, caps)
            });
            prop_assert_eq!(got, want, "request {:?}", req);
        }
    }
}
