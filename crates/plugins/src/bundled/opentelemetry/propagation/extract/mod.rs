//! Kong's extractors, one per format: each reads its headers, ignores what does not parse
//! (with Kong's warning), and returns the context in Kong's internal id sizes.

mod b3;

use super::{Extracted, Format, SpanId, TraceId, hex_size, id_from_hex, single};
use silverback_http::Fields;

/// The context of the first format in `order` the request carries, and that format.
pub(crate) fn extract(headers: &Fields, order: &[Format]) -> (Extracted, Option<Format>) {
    for &format in order {
        if let Some(ctx) = extract_one(headers, format)
            && !ctx.is_empty()
        {
            return (ctx, Some(format));
        }
    }
    (Extracted::default(), None)
}

fn extract_one(h: &Fields, format: Format) -> Option<Extracted> {
    match format {
        Format::W3c => w3c(h),
        Format::B3 | Format::B3Single => b3::b3(h),
        Format::Jaeger => jaeger(h),
        Format::Ot => ot(h),
        Format::Datadog => datadog(h),
        Format::Aws => aws(h),
        Format::Gcp => gcp(h),
        Format::Instana => instana(h),
    }
}

fn warn(what: &str) -> Option<Extracted> {
    tracing::warn!("{what}; ignoring.");
    None
}

fn is_hex(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A hex id header whose length is one of `sizes`; a malformed one is logged (as Kong words
/// it) and sets `invalid`.
fn hex_id<'h>(h: &'h Fields, name: &str, sizes: &[usize], invalid: &mut bool) -> Option<&'h str> {
    match single(h, name) {
        Some(v) if sizes.contains(&v.len()) && is_hex(v) => Some(v),
        Some(_) => {
            tracing::warn!("{name} header invalid; ignoring.");
            *invalid = true;
            None
        }
        None => None,
    }
}

fn all_zero(s: &str) -> bool {
    s.bytes().all(|b| b == b'0')
}

/// A hex trace id with its size as received.
fn trace_id(hex: &str) -> (Option<TraceId>, Option<usize>) {
    (id_from_hex(hex), Some(hex_size(hex.len())))
}

fn span_id(hex: &str) -> Option<SpanId> {
    id_from_hex(hex)
}

/// `traceparent: 00-<trace id>-<parent id>-<flags>`.
fn w3c(h: &Fields) -> Option<Extracted> {
    let value = single(h, "traceparent").filter(|v| !v.is_empty())?;
    let parts: Vec<&str> = value.split('-').collect();
    let [version, trace, parent, flags] = parts.as_slice() else {
        return warn("invalid W3C traceparent header");
    };
    if ![version, trace, parent, flags].iter().all(|p| is_hex(p)) {
        return warn("invalid W3C traceparent header");
    }
    if *version != "00" {
        return warn("invalid W3C Trace Context version");
    }
    if trace.len() != 32 || all_zero(trace) {
        return warn("invalid W3C trace context trace ID");
    }
    if parent.len() != 16 || all_zero(parent) {
        return warn("invalid W3C trace context parent ID");
    }
    if flags.len() != 2 {
        return warn("invalid W3C trace context flags");
    }
    let flags = u8::from_str_radix(flags, 16).ok()?;
    let (trace_id, trace_id_size) = trace_id(trace);
    Some(Extracted {
        trace_id,
        trace_id_size,
        span_id: span_id(parent),
        should_sample: Some(flags % 2 == 1),
        w3c_flags: Some(flags),
        ..Extracted::default()
    })
}

/// `uber-trace-id: <trace>:<span>:<parent>:<flags>`.
fn jaeger(h: &Fields) -> Option<Extracted> {
    let value = single(h, "uber-trace-id").filter(|v| !v.is_empty())?;
    let parts: Vec<&str> = value.split(':').collect();
    let [trace, span, parent, flags] = parts.as_slice() else {
        return warn("invalid jaeger uber-trace-id header");
    };
    if ![trace, span, parent, flags].iter().all(|p| is_hex(p)) {
        return warn("invalid jaeger uber-trace-id header");
    }
    if trace.len() > 32 || all_zero(trace) {
        return warn("invalid jaeger trace ID");
    }
    if parent.len() != 16 && !all_zero(parent) {
        tracing::warn!("invalid jaeger parent ID; ignoring.");
    }
    if span.len() > 16 || all_zero(span) {
        return warn("invalid jaeger span ID");
    }
    if !matches!(flags.len(), 1 | 2) {
        return warn("invalid jaeger flags");
    }
    let flags = u8::from_str_radix(flags, 16).ok()?;
    let (trace_id, trace_id_size) = trace_id(trace);
    Some(Extracted {
        trace_id,
        trace_id_size,
        span_id: span_id(span),
        parent_id: span_id(parent),
        reuse_span_id: true,
        should_sample: Some(flags % 2 == 1),
        ..Extracted::default()
    })
}

/// `ot-tracer-traceid`, `ot-tracer-spanid`, `ot-tracer-sampled`.
fn ot(h: &Fields) -> Option<Extracted> {
    let names = ["ot-tracer-sampled", "ot-tracer-traceid", "ot-tracer-spanid"];
    if !names.iter().any(|n| h.contains(n)) {
        return None;
    }
    let should_sample = match single(h, "ot-tracer-sampled") {
        Some("1" | "true") => Some(true),
        Some("0" | "false") => Some(false),
        Some(_) => {
            tracing::warn!("ot-tracer-sampled header invalid; ignoring.");
            None
        }
        None => None,
    };
    let mut invalid = false;
    let mut id = |name: &str, sizes: &[usize]| hex_id(h, name, sizes, &mut invalid);
    let trace = id("ot-tracer-traceid", &[16, 32]);
    let span = id("ot-tracer-spanid", &[16]);
    let mut ctx = Extracted {
        should_sample,
        ..Extracted::default()
    };
    if let Some(t) = trace.filter(|_| !invalid) {
        (ctx.trace_id, ctx.trace_id_size) = trace_id(t);
        ctx.span_id = span.and_then(span_id);
    }
    Some(ctx)
}

/// A decimal id (Datadog, GCP) as bytes: its low 128 bits, and how many bytes it takes.
fn decimal(digits: &str) -> (u128, usize) {
    let mut overflow = false;
    let v = digits.bytes().fold(0u128, |acc, d| {
        let (m, o1) = acc.overflowing_mul(10);
        let (s, o2) = m.overflowing_add(u128::from(d - b'0'));
        overflow |= o1 || o2;
        s
    });
    let size = if overflow {
        17
    } else {
        ((128 - v.leading_zeros()) as usize).div_ceil(8)
    };
    (v, size)
}

fn digits(v: &str) -> Option<&str> {
    let t = v.trim();
    (!t.is_empty() && t.bytes().all(|b| b.is_ascii_digit())).then_some(t)
}

/// `x-datadog-trace-id`, `x-datadog-parent-id` (decimal), `x-datadog-sampling-priority`.
fn datadog(h: &Fields) -> Option<Extracted> {
    let names = [
        "x-datadog-trace-id",
        "x-datadog-parent-id",
        "x-datadog-sampling-priority",
    ];
    if !names.iter().any(|n| h.contains(n)) {
        return None;
    }
    let should_sample = match single(h, "x-datadog-sampling-priority") {
        Some("1" | "2") => Some(true),
        Some("0" | "-1") => Some(false),
        Some(_) => return warn("x-datadog-sampling-priority header invalid"),
        None => None,
    };
    let id = |name: &str| {
        let v = single(h, name)?;
        let d = digits(v);
        if d.is_none() {
            tracing::warn!("{name} header invalid; ignoring.");
        }
        d
    };
    let trace = id("x-datadog-trace-id");
    let parent = id("x-datadog-parent-id");
    let mut ctx = Extracted {
        should_sample,
        ..Extracted::default()
    };
    if let Some(t) = trace {
        let (v, size) = decimal(t);
        ctx.trace_id = Some(v.to_be_bytes());
        ctx.trace_id_size = Some(size);
        ctx.span_id = parent.map(|p| (decimal(p).0 as u64).to_be_bytes());
    }
    Some(ctx)
}

/// `x-amzn-trace-id: Root=1-<8 hex>-<24 hex>;Parent=<16 hex>;Sampled=<0|1>`.
fn aws(h: &Fields) -> Option<Extracted> {
    let value = single(h, "x-amzn-trace-id")?;
    let mut ctx = Extracted::default();
    for pair in value.split(';') {
        let Some((key, v)) = pair.split_once('=') else {
            continue;
        };
        let v = v.trim();
        match key.trim() {
            "Root" => {
                let parts: Vec<&str> = v.split('-').collect();
                let [version, time, unique] = parts.as_slice() else {
                    return warn("invalid aws header trace id");
                };
                if v.len() != 35
                    || *version != "1"
                    || time.len() != 8
                    || unique.len() != 24
                    || !is_hex(time)
                    || !is_hex(unique)
                {
                    return warn("invalid aws header trace id");
                }
                let (id, size) = trace_id(&format!("{time}{unique}"));
                ctx.trace_id = id;
                ctx.trace_id_size = size;
            }
            "Parent" => {
                if v.len() != 16 || !is_hex(v) {
                    return warn("invalid aws header parent id");
                }
                ctx.span_id = span_id(v);
            }
            "Sampled" => match v {
                "0" => ctx.should_sample = Some(false),
                "1" => ctx.should_sample = Some(true),
                _ => return warn("invalid aws header sampled flag"),
            },
            _ => {}
        }
    }
    Some(ctx)
}

/// `x-cloud-trace-context: <32 hex>/<decimal span>[;o=<flag>]`.
fn gcp(h: &Fields) -> Option<Extracted> {
    let value = single(h, "x-cloud-trace-context")?;
    let parsed = value.split_once('/').and_then(|(trace, rest)| {
        let (span, option) = match rest.split_once(';') {
            Some((s, o)) => (s, Some(o.strip_prefix("o=")?)),
            None => (rest, None),
        };
        let trace_ok = trace.len() == 32
            && trace
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        let span_ok = (1..=20).contains(&span.len()) && span.bytes().all(|b| b.is_ascii_digit());
        let option_ok =
            option.is_none_or(|o| o.len() == 1 && o.bytes().all(|b| b.is_ascii_digit()));
        (trace_ok && span_ok && option_ok).then_some((trace, span, option))
    });
    let Some((trace, span, option)) = parsed else {
        return warn("invalid GCP header");
    };
    let (trace_id, trace_id_size) = trace_id(trace);
    Some(Extracted {
        trace_id,
        trace_id_size,
        span_id: Some((decimal(span).0 as u64).to_be_bytes()),
        should_sample: Some(option == Some("1")),
        ..Extracted::default()
    })
}

/// `x-instana-t` (trace), `x-instana-s` (span), `x-instana-l` (level: `1` samples).
fn instana(h: &Fields) -> Option<Extracted> {
    let hex_prefix = |v: &str| -> Option<String> {
        let p: String = v.chars().take_while(char::is_ascii_hexdigit).collect();
        (!p.is_empty()).then_some(p)
    };
    let trace = hex_prefix(single(h, "x-instana-t")?);
    if !trace.as_ref().is_some_and(|t| matches!(t.len(), 16 | 32)) {
        tracing::warn!("x-instana-t header invalid; ignoring.");
    }
    let span = hex_prefix(single(h, "x-instana-s")?);
    if span.is_none() {
        tracing::warn!("x-instana-s header invalid; ignoring.");
    }
    let level = single(h, "x-instana-l").and_then(|l| l.get(..1));
    let mut ctx = Extracted {
        should_sample: Some(level == Some("1")),
        span_id: span.as_deref().and_then(span_id),
        ..Extracted::default()
    };
    if let Some(t) = trace.as_deref() {
        (ctx.trace_id, ctx.trace_id_size) = trace_id(t);
    }
    Some(ctx)
}

#[cfg(test)]
mod tests;
