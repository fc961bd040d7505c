//! http-log: sends each request's log record as JSON to an HTTP endpoint, in batches
//! (`queue.max_batch_size` entries as one JSON array), retrying with backoff while the endpoint
//! is down. Delivery runs on the destination's queue thread (`log_sink.rs`); the request only
//! serializes and enqueues.

mod schema;

use super::log_http::{Endpoint, HttpPost, Timeouts};
use super::log_sink::{Deliver, QueueParams, Sink};
use crate::handler::{Handler, Phases};
use crate::pdk::Ctx;
use crate::registry::PluginDef;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

pub(crate) const NAME: &str = "http-log";

pub(crate) fn definition() -> PluginDef {
    PluginDef {
        name: NAME,
        priority: 12,
        protocols: &["grpc", "grpcs", "http", "https"],
        no_consumer: false,
        no_route: false,
        no_service: false,
        config: schema::config,
        phases: Phases {
            log: true,
            serialize: true,
            ..Phases::default()
        },
        build,
        index: None,
    }
}

struct HttpLog {
    sink: Arc<Sink>,
}

fn build(config: &Value) -> Result<Arc<dyn Handler>, String> {
    let text = |name: &str| config.get(name).and_then(Value::as_str).unwrap_or_default();
    let millis = |name: &str, default: f64| {
        let ms = config.get(name).and_then(Value::as_f64).unwrap_or(default);
        Duration::from_secs_f64(ms.max(0.0) / 1000.0)
    };
    let endpoint = Endpoint::parse(text("http_endpoint"))?;
    let mut params = QueueParams::from_config(config.get("queue"));
    // Kong maps the deprecated fields onto the queue when the queue keeps its defaults.
    if let Some(n) = config.get("queue_size").and_then(Value::as_u64)
        && params.max_batch_size == 1
    {
        params.max_batch_size = n.max(1) as usize;
    }
    if let Some(s) = config.get("flush_timeout").and_then(Value::as_f64)
        && params.max_coalescing_delay == Duration::from_secs(1)
    {
        params.max_coalescing_delay = Duration::from_secs_f64(s.max(0.0));
    }
    let headers: Vec<(String, String)> = config
        .get("headers")
        .and_then(Value::as_object)
        .map(|h| {
            h.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                .collect()
        })
        .unwrap_or_default();
    let mut post = HttpPost::new(text("method"), text("content_type"), endpoint);
    post.timeouts = Timeouts::all(millis("timeout", 10000.0));
    post.keepalive = millis("keepalive", 60000.0);
    post.headers = headers;
    let deliver = JsonDeliver {
        post,
        batched: params.max_batch_size > 1,
    };
    // Instances with the same endpoint and delivery settings share one queue, as Kong's
    // queue name does.
    let key = serde_json::json!([
        config.get("http_endpoint"),
        config.get("method"),
        config.get("content_type"),
        config.get("timeout"),
        config.get("keepalive"),
        config.get("headers"),
    ])
    .to_string();
    let sink = Sink::shared(NAME, key, params, || Box::new(deliver))?;
    Ok(Arc::new(HttpLog { sink }))
}

impl Handler for HttpLog {
    fn log(&self, ctx: &Ctx) {
        self.sink.push_record(ctx, false);
    }
}

/// Posts a batch as one JSON array (`max_batch_size` > 1), else each record as an object.
struct JsonDeliver {
    post: HttpPost,
    batched: bool,
}

impl Deliver for JsonDeliver {
    fn deliver(&mut self, batch: &[Vec<u8>]) -> Result<(), String> {
        if !self.batched
            && let [one] = batch
        {
            return self.post.send(one);
        }
        let mut out = Vec::with_capacity(batch.iter().map(|e| e.len() + 1).sum::<usize>() + 2);
        out.push(b'[');
        for (i, e) in batch.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(e);
        }
        out.push(b']');
        self.post.send(&out)
    }
}
