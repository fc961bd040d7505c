//! opentelemetry: traces requests as Kong 3.10's plugin does. In `access` it extracts the
//! caller's trace context (`propagation.extract`, or the legacy `header_type`), decides
//! sampling (`sampling_rate`, else `tracing_sampling_rate`; a caller that did not sample is
//! followed) and injects the context toward the upstream, the upstream span as parent. In
//! `header_filter` it may add the trace id to the response; in `log` the request's spans
//! (`spans.rs`) are encoded as OTLP protobuf (`otlp.rs`) and queued, so export to
//! `traces_endpoint` happens in batches on the queue's thread (`log_sink.rs`), never on the
//! request path. Which spans exist follows the node's `tracing_instrumentations`: with `off`
//! (Kong's default) the plugin only propagates.

mod export;
pub mod instrumentation;
mod otlp;
mod propagation;
mod schema;
mod spans;

use super::log_http::{Endpoint, HttpPost, Timeouts};
use super::log_sink::{QueueParams, Sink};
use super::log_transport::Verify;
use crate::handler::{Handler, Phase, Phases, PluginError};
use crate::pdk::Ctx;
use crate::registry::PluginDef;
use http::{HeaderName, HeaderValue};
use instrumentation::Instrumentation;
use propagation::{Outgoing, Propagation};
use serde_json::Value;
use spans::Trace;
use std::sync::Arc;
use std::time::Duration;

pub(crate) const NAME: &str = "opentelemetry";

pub(crate) fn definition() -> PluginDef {
    PluginDef {
        name: NAME,
        priority: 14,
        protocols: &["grpc", "grpcs", "http", "https"],
        no_consumer: false,
        no_route: false,
        no_service: false,
        config: schema::config,
        phases: Phases {
            access: true,
            header_filter: true,
            log: true,
            tries: true,
            ..Phases::default()
        },
        build,
        index: None,
    }
}

struct OpenTelemetry {
    /// `None` without `traces_endpoint` (a logs-only configuration: nothing to do here).
    sink: Option<Arc<Sink>>,
    propagation: Propagation,
    sampling_rate: Option<f64>,
    header_for_trace_id: Option<HeaderName>,
    instrumentation: Arc<Instrumentation>,
}

fn build(config: &Value) -> Result<Arc<dyn Handler>, String> {
    build_with(config, instrumentation::current())
}

fn build_with(config: &Value, inst: Arc<Instrumentation>) -> Result<Arc<dyn Handler>, String> {
    let text = |name: &str| config.get(name).and_then(Value::as_str);
    let millis = |name: &str, default: u64| {
        Duration::from_millis(config.get(name).and_then(Value::as_u64).unwrap_or(default))
    };
    let pairs = |name: &str| -> Vec<(String, String)> {
        config
            .get(name)
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                    .collect()
            })
            .unwrap_or_default()
    };
    let sink = match text("traces_endpoint") {
        None => None,
        Some(url) => {
            let mut post = HttpPost::new("POST", "application/x-protobuf", Endpoint::parse(url)?);
            post.timeouts = Timeouts {
                connect: millis("connect_timeout", 1000),
                send: millis("send_timeout", 5000),
                read: millis("read_timeout", 5000),
            };
            post.headers = pairs("headers");
            post.accepts = |status| status == 200;
            // lua-resty-http verifies the collector's certificate by default.
            post.verify = Verify::SystemRoots;
            let deliver = export::OtlpDeliver {
                post,
                resource: export::resource(&inst.node_id, &pairs("resource_attributes")),
            };
            let params = queue_params(config);
            // Instances exporting the same way share one queue, which outlives reloads.
            let key = serde_json::json!([
                url,
                config.get("headers"),
                config.get("resource_attributes"),
                config.get("connect_timeout"),
                config.get("send_timeout"),
                config.get("read_timeout"),
                inst.node_id,
            ])
            .to_string();
            Some(Sink::shared(NAME, key, params, || Box::new(deliver))?)
        }
    };
    let header_for_trace_id = match text("http_response_header_for_traceid") {
        Some(h) => Some(HeaderName::from_bytes(h.as_bytes()).map_err(|e| e.to_string())?),
        None => None,
    };
    Ok(Arc::new(OpenTelemetry {
        sink,
        propagation: Propagation::from_config(config),
        sampling_rate: config.get("sampling_rate").and_then(Value::as_f64),
        header_for_trace_id,
        instrumentation: inst,
    }))
}

/// The queue, with Kong's mapping of the deprecated `batch_span_count` and
/// `batch_flush_delay` (used when set to other than their old defaults, 200 and 3).
fn queue_params(config: &Value) -> QueueParams {
    let mut params = QueueParams::from_config(config.get("queue"));
    if let Some(n) = config
        .get("batch_span_count")
        .and_then(Value::as_u64)
        .filter(|n| *n != 200)
    {
        params.max_batch_size = n.max(1) as usize;
    }
    if let Some(s) = config
        .get("batch_flush_delay")
        .and_then(Value::as_u64)
        .filter(|s| *s != 3)
    {
        params.max_coalescing_delay = Duration::from_secs(s);
    }
    params
}

impl OpenTelemetry {
    /// A trace for a request whose `access` phase did not run here (an earlier plugin
    /// answered): a new trace, sampled by `tracing_sampling_rate` as Kong's request span is.
    fn unpropagated_trace(&self, ctx: &Ctx) -> Trace {
        let trace_id = spans::random_trace_id();
        Trace {
            trace_id,
            root_span_id: spans::random_span_id(),
            root_parent: None,
            balancer_span_id: None,
            sampled: instrumentation::sample(&trace_id, self.instrumentation.sampling_rate),
            start_unix_nano: spans::start_unix_nano(ctx),
        }
    }

    /// Extraction, the sampling decision and injection (Kong's `get_inject_ctx`).
    fn propagate(&self, ctx: &mut Ctx) -> Trace {
        let inst = &self.instrumentation;
        let (incoming, from) =
            propagation::extract(&ctx.request.headers, &self.propagation.extract);
        let trace_id = incoming.trace_id.unwrap_or_else(spans::random_trace_id);
        let root_span_id = spans::random_span_id();
        let root_parent = incoming.span_id.or(incoming.parent_id);
        let balancer_span_id = inst.balancer.then(spans::random_span_id);
        // With no instrumentation the request has no span: it only propagates, unsampled.
        let sampled = inst.request
            && incoming.should_sample != Some(false)
            && instrumentation::sample(&trace_id, self.sampling_rate.unwrap_or(inst.sampling_rate));
        let outgoing = Outgoing {
            trace_id,
            trace_id_size: incoming.trace_id_size,
            span_id: balancer_span_id.unwrap_or(root_span_id),
            parent_id: if balancer_span_id.is_some() {
                Some(root_span_id)
            } else {
                root_parent
            },
            should_sample: sampled,
            flags: incoming.flags,
            single_header: incoming.single_header,
        };
        propagation::inject(&mut ctx.request, &self.propagation, from, &outgoing);
        Trace {
            trace_id,
            root_span_id,
            root_parent,
            balancer_span_id,
            sampled,
            start_unix_nano: spans::start_unix_nano(ctx),
        }
    }
}

impl Handler for OpenTelemetry {
    fn access<'a>(&'a self, ctx: &'a mut Ctx) -> Phase<'a> {
        if self.sink.is_some() {
            let trace = self.propagate(ctx);
            ctx.set_data(trace);
        }
        Phase::CONTINUE
    }

    fn header_filter(&self, ctx: &mut Ctx) -> Result<(), PluginError> {
        let Some(name) = self
            .header_for_trace_id
            .as_ref()
            .filter(|_| self.sink.is_some())
        else {
            return Ok(());
        };
        if ctx.data::<Trace>().is_none() {
            // Kong's request span has a trace id only when instrumentation is on.
            if !self.instrumentation.request {
                return Ok(());
            }
            let trace = self.unpropagated_trace(ctx);
            ctx.set_data(trace);
        }
        if let Some(trace) = ctx.data::<Trace>()
            && let Ok(value) = HeaderValue::from_str(&propagation::to_hex(&trace.trace_id))
        {
            ctx.response.headers.append(name.clone(), value);
        }
        Ok(())
    }

    fn log(&self, ctx: &Ctx) {
        let Some(sink) = &self.sink else { return };
        if !self.instrumentation.request {
            return;
        }
        let fresh;
        let trace = match ctx.data::<Trace>() {
            Some(t) => t,
            None => {
                fresh = self.unpropagated_trace(ctx);
                &fresh
            }
        };
        if !trace.sampled {
            return;
        }
        for span in spans::request_spans(ctx, trace, self.instrumentation.balancer) {
            sink.push(otlp::encode_span(&span));
        }
    }
}

#[cfg(test)]
mod tests;
