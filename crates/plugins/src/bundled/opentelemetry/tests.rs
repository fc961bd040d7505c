//! The handler on a request context: what goes upstream, the sampling decision, the response
//! header and the spans.

use super::*;
use crate::directory::Directory;
use crate::pdk::Try;
use serde_json::json;

const TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
const CALLER: &str = "b7ad6b7169203331";

fn inst(request: bool, balancer: bool, rate: f64) -> Arc<Instrumentation> {
    Arc::new(Instrumentation {
        request,
        balancer,
        sampling_rate: rate,
        node_id: "node".into(),
    })
}

fn plugin(extra: Value, inst: Arc<Instrumentation>) -> Arc<dyn Handler> {
    let mut config = json!({
        // Nothing listens there: these tests never wait for a delivery.
        "traces_endpoint": "http://127.0.0.1:9/v1/traces",
        "header_type": "preserve",
        "propagation": {"default_format": "w3c"},
        "http_response_header_for_traceid": "x-trace-id",
    });
    if let (Some(c), Some(e)) = (config.as_object_mut(), extra.as_object()) {
        c.extend(e.clone());
    }
    build_with(&config, inst).unwrap()
}

fn ctx_with(headers: &[(&str, &str)]) -> Ctx {
    let mut ctx = Ctx::for_tests(Arc::new(Directory::default()));
    for (k, v) in headers {
        ctx.request.set_header(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    ctx
}

fn access(p: &Arc<dyn Handler>, ctx: &mut Ctx) {
    assert!(matches!(p.access(ctx), Phase::Ready(Ok(_))));
}

#[test]
fn continues_the_callers_trace_with_the_upstream_span_as_parent() {
    let p = plugin(json!({}), inst(true, true, 1.0));
    let mut ctx = ctx_with(&[("traceparent", &format!("00-{TRACE}-{CALLER}-01"))]);
    access(&p, &mut ctx);
    let trace = ctx.data::<Trace>().unwrap().clone();
    assert_eq!(propagation::to_hex(&trace.trace_id), TRACE);
    assert_eq!(propagation::to_hex(&trace.root_parent.unwrap()), CALLER);
    assert!(trace.sampled);
    let sent = ctx.request.header("traceparent").unwrap();
    let upstream_span = propagation::to_hex(&trace.balancer_span_id.unwrap());
    assert_eq!(sent, format!("00-{TRACE}-{upstream_span}-01"));

    p.header_filter(&mut ctx).unwrap();
    assert_eq!(ctx.response.headers.get_str("x-trace-id"), Some(TRACE));

    ctx.served.tries = vec![
        Try {
            addr: "127.0.0.1:1".parse().unwrap(),
            started: Duration::from_millis(1),
            ended: Some(Duration::from_millis(2)),
            failed_status: Some(502),
        },
        Try {
            addr: "127.0.0.1:2".parse().unwrap(),
            started: Duration::from_millis(3),
            ended: None,
            failed_status: None,
        },
    ];
    ctx.served.request_latency = Duration::from_millis(10);
    let s = spans::request_spans(&ctx, &trace, true);
    assert_eq!(s.len(), 3);
    assert_eq!((s[0].name, s[0].span_id), ("kong", trace.root_span_id));
    assert_eq!(s[0].end_unix_nano - s[0].start_unix_nano, 10_000_000);
    assert!(s[1].error && s[1].span_id != trace.balancer_span_id.unwrap());
    assert_eq!(s[1].end_unix_nano - s[0].start_unix_nano, 2_000_000);
    // The last attempt is the span whose id went upstream, ending with the request.
    assert_eq!(s[2].span_id, trace.balancer_span_id.unwrap());
    assert_eq!(s[2].parent_span_id, Some(trace.root_span_id));
    assert_eq!(s[2].end_unix_nano, s[0].end_unix_nano);
}

#[test]
fn unsampled_callers_and_rate_zero_still_propagate() {
    let p = plugin(json!({"sampling_rate": 1}), inst(true, false, 1.0));
    let mut ctx = ctx_with(&[("traceparent", &format!("00-{TRACE}-{CALLER}-00"))]);
    access(&p, &mut ctx);
    let trace = ctx.data::<Trace>().unwrap().clone();
    assert!(!trace.sampled);
    // Without the balancer instrumentation the request span is the upstream's parent.
    let root = propagation::to_hex(&trace.root_span_id);
    assert_eq!(
        ctx.request.header("traceparent"),
        Some(format!("00-{TRACE}-{root}-00").as_str())
    );

    let p = plugin(json!({"sampling_rate": 0}), inst(true, true, 1.0));
    let mut ctx = ctx_with(&[]);
    access(&p, &mut ctx);
    let sent = ctx.request.header("traceparent").unwrap().to_string();
    assert!(sent.starts_with("00-") && sent.ends_with("-00"), "{sent}");
    assert!(!ctx.data::<Trace>().unwrap().sampled);
}

#[test]
fn instrumentation_off_only_propagates() {
    let p = plugin(json!({"sampling_rate": 1}), inst(false, false, 1.0));
    let mut ctx = ctx_with(&[("x-b3-traceid", TRACE), ("x-b3-spanid", CALLER)]);
    access(&p, &mut ctx);
    assert!(!ctx.data::<Trace>().unwrap().sampled);
    // preserve: B3 in, B3 out.
    assert_eq!(ctx.request.header("x-b3-traceid"), Some(TRACE));
    assert_eq!(ctx.request.header("x-b3-sampled"), Some("0"));
    assert_ne!(ctx.request.header("x-b3-spanid"), Some(CALLER));
}

#[test]
fn configured_formats_and_clear() {
    let p = plugin(
        json!({"propagation": {"extract": ["w3c"], "inject": ["preserve", "datadog"],
                               "clear": ["traceparent"], "default_format": "b3-single"}}),
        inst(true, false, 1.0),
    );
    let mut ctx = ctx_with(&[]);
    access(&p, &mut ctx);
    // Nothing extracted: preserve falls back to default_format.
    assert!(ctx.request.header("b3").is_some());
    assert!(ctx.request.header("x-datadog-trace-id").is_some());
    assert!(ctx.request.header("traceparent").is_none());
}

#[test]
fn deprecated_batch_fields_map_onto_the_queue() {
    let c = json!({"queue": {"max_batch_size": 200, "max_coalescing_delay": 1},
                   "batch_span_count": 10, "batch_flush_delay": 3});
    let q = queue_params(&c);
    assert_eq!(q.max_batch_size, 10);
    assert_eq!(q.max_coalescing_delay, Duration::from_secs(1));
}
