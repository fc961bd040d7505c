//! The spans of one request as Kong's instrumentations make them: the request's `kong` span
//! (kind SERVER) and, with the `balancer` instrumentation, a `kong.balancer` span (kind
//! CLIENT) per upstream attempt, children of it.

use super::otlp::{AttrValue, Span, SpanKind};
use super::propagation::{SpanId, TraceId};
use crate::pdk::Ctx;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A request's trace, decided in `access` (or, when that did not run, when first needed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Trace {
    pub trace_id: TraceId,
    pub root_span_id: SpanId,
    /// The caller's span, from the incoming trace headers.
    pub root_parent: Option<SpanId>,
    /// The span id sent upstream for the last attempt's `kong.balancer` span (Kong creates it
    /// before the attempt so plugins can propagate it).
    pub balancer_span_id: Option<SpanId>,
    pub sampled: bool,
    /// The request's start, in nanoseconds since the Unix epoch.
    pub start_unix_nano: u64,
}

pub(crate) fn random_trace_id() -> TraceId {
    rand::random()
}

pub(crate) fn random_span_id() -> SpanId {
    rand::random()
}

/// When the request started, in Unix nanoseconds.
pub(crate) fn start_unix_nano(ctx: &Ctx) -> u64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    nanos(now.saturating_sub(ctx.started.elapsed()))
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

fn text(s: impl Into<String>) -> AttrValue {
    AttrValue::Str(s.into())
}

/// The request's spans; the root ends when the response was sent (the `log` phase).
pub(crate) fn request_spans(ctx: &Ctx, trace: &Trace, balancer: bool) -> Vec<Span> {
    let start = trace.start_unix_nano;
    let end = start.saturating_add(nanos(ctx.served.request_latency));
    let mut spans = Vec::with_capacity(1 + ctx.served.tries.len());
    spans.push(Span {
        trace_id: trace.trace_id,
        span_id: trace.root_span_id,
        parent_span_id: trace.root_parent,
        name: "kong",
        kind: SpanKind::Server,
        start_unix_nano: start,
        end_unix_nano: end.max(start),
        attributes: root_attributes(ctx),
        error: false,
    });
    if !balancer {
        return spans;
    }
    let count = ctx.served.tries.len();
    for (i, t) in ctx.served.tries.iter().enumerate() {
        let last = i + 1 == count;
        let try_start = start.saturating_add(nanos(t.started));
        // The last attempt, when it got an answer, is the span whose id went upstream; it
        // ends with the response. A failed attempt ends when it failed.
        let precreated = trace
            .balancer_span_id
            .filter(|_| last && t.failed_status.is_none());
        let try_end = match (precreated, t.ended) {
            (Some(_), _) => end,
            (None, Some(ended)) => start.saturating_add(nanos(ended)),
            (None, None) => try_start,
        };
        let mut attributes = vec![
            ("try_count", AttrValue::Double((i + 1) as f64)),
            ("net.peer.ip", text(t.addr.ip().to_canonical().to_string())),
            ("net.peer.port", AttrValue::Double(f64::from(t.addr.port()))),
        ];
        if let Some(code) = t.failed_status {
            attributes.push(("http.status_code", AttrValue::Int(i64::from(code))));
        }
        if let Some(name) = &ctx.served.upstream_host_name {
            attributes.push(("net.peer.name", text(&**name)));
        }
        spans.push(Span {
            trace_id: trace.trace_id,
            span_id: precreated.unwrap_or_else(random_span_id),
            parent_span_id: Some(trace.root_span_id),
            name: "kong.balancer",
            kind: SpanKind::Client,
            start_unix_nano: try_start,
            end_unix_nano: try_end.max(try_start),
            attributes,
            error: t.failed_status.is_some(),
        });
    }
    spans
}

/// Kong's attributes of the request span (`instrumentation.request` and
/// `runloop_before_header_filter`).
fn root_attributes(ctx: &Ctx) -> Vec<(&'static str, AttrValue)> {
    let req = &ctx.request;
    let host = crate::pdk::serialize::host_of(ctx);
    let scheme = req.scheme.as_str();
    let flavor = match req.version {
        http::Version::HTTP_10 => "1.0",
        http::Version::HTTP_2 => "2.0",
        http::Version::HTTP_3 => "3.0",
        _ => "1.1",
    };
    let route_path = ctx
        .route
        .as_ref()
        .and_then(|r| r.row.map().get("paths"))
        .and_then(|p| p.get(0))
        .and_then(|p| p.as_str())
        .unwrap_or_default();
    vec![
        ("http.method", text(req.method.as_str())),
        (
            "http.url",
            text(format!("{scheme}://{host}{}", req.target().as_str())),
        ),
        ("http.host", text(host)),
        ("http.scheme", text(scheme)),
        ("http.flavor", text(flavor)),
        (
            "http.client_ip",
            text(ctx.client_ip.to_canonical().to_string()),
        ),
        ("net.peer.ip", text(ctx.peer_ip.to_canonical().to_string())),
        ("kong.request.id", text(ctx.request_id())),
        (
            "http.status_code",
            AttrValue::Int(i64::from(ctx.response.status.as_u16())),
        ),
        ("http.route", text(route_path)),
    ]
}
