//! B3 (Zipkin) extraction: the single `b3` header (or a `b3=` entry of `tracestate`) and the
//! multi-header `X-B3-*` form, combined as Kong's extractor does.

use super::{hex_id, is_hex, span_id, trace_id};
use crate::bundled::opentelemetry::propagation::{Extracted, single};
use silverback_http::Fields;

/// Ids and sampling of one B3 encoding.
#[derive(Default)]
struct B3Parts<'a> {
    trace: Option<&'a str>,
    span: Option<&'a str>,
    parent: Option<&'a str>,
    sampled: Option<bool>,
    flags: Option<String>,
    invalid: bool,
}

const B3_HEADERS: [&str; 7] = [
    "b3",
    "tracestate",
    "x-b3-traceid",
    "x-b3-spanid",
    "x-b3-parentspanid",
    "x-b3-sampled",
    "x-b3-flags",
];

/// B3, single (`b3`, or a `b3=` entry of `tracestate`) or multi-header (`X-B3-*`); the single
/// header wins where both say something.
pub(super) fn b3(h: &Fields) -> Option<Extracted> {
    if !B3_HEADERS.iter().any(|n| h.contains(n)) {
        return None;
    }
    let single_value = single(h, "b3").or_else(|| {
        h.get_all("tracestate")
            .filter_map(|v| std::str::from_utf8(v).ok())
            .find_map(|v| v.strip_prefix("b3=").filter(|rest| !rest.is_empty()))
    });
    let one = single_value.map(b3_single);
    let multi = b3_multi(h);
    let mut sampled = one.as_ref().and_then(|s| s.sampled);
    let mut flags = one.as_ref().and_then(|s| s.flags.clone());
    let (mut trace, mut span, mut parent) = (None, None, None);
    if let Some(s) = one.as_ref().filter(|s| !s.invalid) {
        (trace, span, parent) = (s.trace, s.span, s.parent);
    }
    if sampled.is_none() {
        sampled = multi.sampled;
    }
    flags = flags.or(multi.flags);
    if !multi.invalid {
        trace = trace.or(multi.trace);
        span = span.or(multi.span);
        parent = parent.or(multi.parent);
    }
    let mut ctx = Extracted {
        should_sample: sampled,
        reuse_span_id: true,
        flags,
        single_header: one.is_some(),
        ..Extracted::default()
    };
    if let Some(t) = trace {
        (ctx.trace_id, ctx.trace_id_size) = trace_id(t);
        ctx.span_id = span.and_then(span_id);
        ctx.parent_id = parent.and_then(span_id);
    }
    Some(ctx)
}

/// `b3: <trace>-<span>[-<sampled>[-<parent>]]`, or only the sampling state (`1`, `0`, `d`).
fn b3_single(value: &str) -> B3Parts<'_> {
    match value {
        "1" => {
            return B3Parts {
                sampled: Some(true),
                ..B3Parts::default()
            };
        }
        "d" => {
            return B3Parts {
                sampled: Some(true),
                flags: Some("1".into()),
                ..B3Parts::default()
            };
        }
        "0" => {
            return B3Parts {
                sampled: Some(false),
                ..B3Parts::default()
            };
        }
        _ => {}
    }
    let invalid = || {
        tracing::warn!("b3 single header invalid; ignoring.");
        B3Parts {
            invalid: true,
            ..B3Parts::default()
        }
    };
    // Kong's pattern: hex trace, `-`, 16 hex span, then optional `-`, optional sampling
    // state, optional `-` and the (hex) parent, the separators being optional.
    let Some((trace, rest)) = value.split_once('-') else {
        return invalid();
    };
    let (Some(span), Some(mut rest)) = (rest.get(..16), rest.get(16..)) else {
        return invalid();
    };
    if !is_hex(trace) || !is_hex(span) {
        return invalid();
    }
    rest = rest.strip_prefix('-').unwrap_or(rest);
    let mut sampled = "";
    if let Some(c) = rest.get(..1).filter(|c| matches!(*c, "0" | "1" | "d")) {
        sampled = c;
        rest = rest.get(1..).unwrap_or_default();
    }
    rest = rest.strip_prefix('-').unwrap_or(rest);
    let parent = rest;
    if !parent.bytes().all(|b| b.is_ascii_hexdigit()) {
        return invalid();
    }
    if !matches!(trace.len(), 16 | 32) || !(parent.is_empty() || parent.len() == 16) {
        return invalid();
    }
    B3Parts {
        trace: Some(trace),
        span: Some(span),
        parent: (!parent.is_empty()).then_some(parent),
        sampled: match sampled {
            "1" | "d" => Some(true),
            "0" => Some(false),
            _ => None,
        },
        flags: (sampled == "d").then(|| "1".to_string()),
        invalid: false,
    }
}

fn b3_multi(h: &Fields) -> B3Parts<'_> {
    let mut sampled = match single(h, "x-b3-sampled") {
        Some("1" | "true") => Some(true),
        Some("0" | "false") => Some(false),
        Some(_) => {
            tracing::warn!("x-b3-sampled header invalid; ignoring.");
            None
        }
        None => None,
    };
    let mut flags = None;
    if let Some(debug) = single(h, "x-b3-flags") {
        if debug == "1" {
            sampled = Some(true);
        } else {
            tracing::warn!("x-b3-flags header invalid; ignoring.");
        }
        flags = Some(debug.to_string());
    }
    let mut invalid = false;
    let mut id = |name: &str, sizes: &[usize]| hex_id(h, name, sizes, &mut invalid);
    let trace = id("x-b3-traceid", &[16, 32]);
    let span = id("x-b3-spanid", &[16]);
    let parent = id("x-b3-parentspanid", &[16]);
    B3Parts {
        trace,
        span,
        parent,
        sampled,
        flags,
        invalid,
    }
}
