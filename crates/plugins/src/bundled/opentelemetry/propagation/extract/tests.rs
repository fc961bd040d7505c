//! Kong's extractors on the headers its own specs use, and on broken ones.

use super::*;

fn headers(pairs: &[(&str, &str)]) -> Fields {
    let mut map = http::HeaderMap::new();
    for (k, v) in pairs {
        map.append(
            http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            http::HeaderValue::from_str(v).unwrap(),
        );
    }
    Fields::from_map(map)
}

const TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
const SPAN: &str = "b7ad6b7169203331";
const PARENT: &str = "00f067aa0ba902b7";

fn all() -> Vec<Format> {
    super::super::LEGACY_EXTRACT.to_vec()
}

fn trace_bytes(hex: &str) -> TraceId {
    id_from_hex(hex).unwrap()
}

fn span_bytes(hex: &str) -> SpanId {
    id_from_hex(hex).unwrap()
}

#[test]
fn w3c_traceparent() {
    let h = headers(&[("traceparent", &format!("00-{TRACE}-{SPAN}-01"))]);
    let (ctx, from) = extract(&h, &all());
    assert_eq!(from, Some(Format::W3c));
    assert_eq!(ctx.trace_id, Some(trace_bytes(TRACE)));
    assert_eq!(ctx.span_id, Some(span_bytes(SPAN)));
    assert_eq!(ctx.should_sample, Some(true));
    assert_eq!(ctx.w3c_flags, Some(1));
    for bad in [
        format!("01-{TRACE}-{SPAN}-01"),
        format!("00-{}-{SPAN}-01", "0".repeat(32)),
        format!("00-{TRACE}-{}-01", "0".repeat(16)),
        format!("00-{TRACE}-{SPAN}-1"),
        format!("00-{TRACE}x-{SPAN}-01"),
        format!("00-{TRACE}-{SPAN}"),
    ] {
        let h = headers(&[("traceparent", &bad)]);
        assert_eq!(extract(&h, &[Format::W3c]).1, None, "{bad}");
    }
    let h = headers(&[("traceparent", &format!("00-{TRACE}-{SPAN}-00"))]);
    assert_eq!(extract(&h, &[Format::W3c]).0.should_sample, Some(false));
}

#[test]
fn b3_multi_and_single() {
    let h = headers(&[
        ("x-b3-traceid", TRACE),
        ("x-b3-spanid", SPAN),
        ("x-b3-parentspanid", PARENT),
        ("x-b3-sampled", "1"),
    ]);
    let (ctx, from) = extract(&h, &all());
    assert_eq!(from, Some(Format::B3));
    assert_eq!(ctx.trace_id, Some(trace_bytes(TRACE)));
    assert_eq!(ctx.trace_id_size, Some(16));
    assert_eq!(ctx.span_id, Some(span_bytes(SPAN)));
    assert_eq!(ctx.parent_id, Some(span_bytes(PARENT)));
    assert_eq!(ctx.should_sample, Some(true));
    assert!(!ctx.single_header);

    // A 64-bit trace id is padded and remembered as 8 bytes.
    let h = headers(&[("b3", &format!("{SPAN}-{SPAN}-d-{PARENT}"))]);
    let (ctx, _) = extract(&h, &all());
    assert!(ctx.single_header);
    assert_eq!(ctx.trace_id_size, Some(8));
    assert_eq!(ctx.trace_id.unwrap()[..8], [0; 8]);
    assert_eq!(ctx.flags.as_deref(), Some("1"));
    assert_eq!(ctx.should_sample, Some(true));
    assert_eq!(ctx.parent_id, Some(span_bytes(PARENT)));

    let h = headers(&[("b3", &format!("{TRACE}-{SPAN}"))]);
    let (ctx, _) = extract(&h, &all());
    assert_eq!(ctx.trace_id, Some(trace_bytes(TRACE)));
    assert_eq!(ctx.should_sample, None);

    // Only a sampling decision: the context has no ids but still counts as B3.
    let h = headers(&[("b3", "0")]);
    let (ctx, from) = extract(&h, &all());
    assert_eq!(from, Some(Format::B3));
    assert_eq!((ctx.trace_id, ctx.should_sample), (None, Some(false)));

    // From tracestate.
    let h = headers(&[("tracestate", &format!("b3={TRACE}-{SPAN}-1"))]);
    assert_eq!(extract(&h, &all()).0.trace_id, Some(trace_bytes(TRACE)));

    // Invalid single header: the multi headers still count.
    let h = headers(&[
        ("b3", "nonsense"),
        ("x-b3-traceid", TRACE),
        ("x-b3-spanid", SPAN),
    ]);
    assert_eq!(extract(&h, &all()).0.trace_id, Some(trace_bytes(TRACE)));
    // Invalid multi trace id: no ids at all.
    let h = headers(&[("x-b3-traceid", "abc"), ("x-b3-spanid", SPAN)]);
    assert_eq!(extract(&h, &all()).0.span_id, None);
}

#[test]
fn b3_single_parent_quirk_follows_kongs_pattern() {
    // Without a sampling state, a parent starting with 0 or 1 loses that digit to it (Kong's
    // pattern), which makes the parent invalid.
    let h = headers(&[("b3", &format!("{TRACE}-{SPAN}-{PARENT}"))]);
    let (ctx, _) = extract(&h, &[Format::B3]);
    assert_eq!(ctx.trace_id, None);
    assert_eq!(ctx.should_sample, None);
}

#[test]
fn jaeger_and_ot() {
    let h = headers(&[("uber-trace-id", &format!("{TRACE}:{SPAN}:{PARENT}:1"))]);
    let (ctx, from) = extract(&h, &all());
    assert_eq!(from, Some(Format::Jaeger));
    assert_eq!(ctx.trace_id, Some(trace_bytes(TRACE)));
    assert_eq!(ctx.span_id, Some(span_bytes(SPAN)));
    assert_eq!(ctx.parent_id, Some(span_bytes(PARENT)));
    assert_eq!(ctx.should_sample, Some(true));
    let h = headers(&[("uber-trace-id", &format!("{TRACE}:0:0:1"))]);
    assert_eq!(extract(&h, &all()).1, None);

    let h = headers(&[
        ("ot-tracer-traceid", SPAN),
        ("ot-tracer-spanid", PARENT),
        ("ot-tracer-sampled", "0"),
    ]);
    let (ctx, from) = extract(&h, &all());
    assert_eq!(from, Some(Format::Ot));
    assert_eq!(ctx.trace_id_size, Some(8));
    assert_eq!(ctx.span_id, Some(span_bytes(PARENT)));
    assert_eq!(ctx.should_sample, Some(false));
}

#[test]
fn datadog_aws_gcp_instana() {
    let h = headers(&[
        ("x-datadog-trace-id", "1234567890123456789"),
        ("x-datadog-parent-id", "987654321"),
        ("x-datadog-sampling-priority", "2"),
    ]);
    let (ctx, from) = extract(&h, &all());
    assert_eq!(from, Some(Format::Datadog));
    assert_eq!(
        ctx.trace_id,
        Some(u128::from(1_234_567_890_123_456_789u64).to_be_bytes())
    );
    assert_eq!(ctx.span_id, Some(987_654_321u64.to_be_bytes()));
    assert_eq!(ctx.should_sample, Some(true));
    let h = headers(&[("x-datadog-sampling-priority", "x")]);
    assert_eq!(extract(&h, &all()).1, None);

    let h = headers(&[(
        "x-amzn-trace-id",
        "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
    )]);
    let (ctx, from) = extract(&h, &all());
    assert_eq!(from, Some(Format::Aws));
    assert_eq!(
        ctx.trace_id,
        Some(trace_bytes("5759e988bd862e3fe1be46a994272793"))
    );
    assert_eq!(ctx.span_id, Some(span_bytes("53995c3f42cd8ad8")));
    assert_eq!(ctx.should_sample, Some(true));

    let h = headers(&[("x-cloud-trace-context", &format!("{TRACE}/123;o=1"))]);
    let (ctx, from) = extract(&h, &all());
    assert_eq!(from, Some(Format::Gcp));
    assert_eq!(ctx.trace_id, Some(trace_bytes(TRACE)));
    assert_eq!(ctx.span_id, Some(123u64.to_be_bytes()));
    assert_eq!(ctx.should_sample, Some(true));
    let h = headers(&[("x-cloud-trace-context", &format!("{TRACE}/abc"))]);
    assert_eq!(extract(&h, &all()).1, None);

    let h = headers(&[
        ("x-instana-t", SPAN),
        ("x-instana-s", PARENT),
        ("x-instana-l", "1,correlationType=web"),
    ]);
    let (ctx, from) = extract(&h, &all());
    assert_eq!(from, Some(Format::Instana));
    assert_eq!(ctx.span_id, Some(span_bytes(PARENT)));
    assert_eq!(ctx.should_sample, Some(true));
}

#[test]
fn order_and_no_headers() {
    let h = headers(&[
        ("traceparent", &format!("00-{TRACE}-{SPAN}-01")),
        ("uber-trace-id", &format!("{PARENT}:{PARENT}:0:1")),
    ]);
    assert_eq!(
        extract(&h, &[Format::Jaeger, Format::W3c]).1,
        Some(Format::Jaeger)
    );
    assert_eq!(
        extract(&h, &[Format::W3c, Format::Jaeger]).1,
        Some(Format::W3c)
    );
    assert_eq!(extract(&headers(&[]), &all()), (Extracted::default(), None));
    // A header sent twice is ignored, as Kong's extractors ignore a list.
    let tp = format!("00-{TRACE}-{SPAN}-01");
    let h = headers(&[("traceparent", &tp), ("traceparent", &tp)]);
    assert_eq!(extract(&h, &[Format::W3c]).1, None);
}
