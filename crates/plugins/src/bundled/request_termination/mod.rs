//! request-termination: answers every request (or those carrying a trigger) with a fixed
//! response, or echoes the request back, without reaching the upstream.

mod schema;

use crate::handler::{Handler, Phase, Phases};
use crate::pdk::{ArgValue, BodyArgs, Ctx, Exit, ExitBody, QueryValue};
use crate::registry::PluginDef;
use bytes::Bytes;
use http::{HeaderValue, StatusCode};
use schema::RequestTerminationConfig;
use serde_json::{Map, Value, json};
use std::sync::{Arc, LazyLock};

pub(crate) const NAME: &str = "request-termination";

pub(crate) fn definition() -> PluginDef {
    PluginDef {
        name: NAME,
        priority: 2,
        protocols: &["grpc", "grpcs", "http", "https"],
        no_consumer: false,
        no_route: false,
        no_service: false,
        config: schema::config,
        phases: Phases::ACCESS,
        build,
        index: None,
    }
}

/// Kong's messages for the statuses it knows, used when `message` is not set.
fn default_message(status: u16) -> Option<&'static str> {
    Some(match status {
        401 => "Unauthorized",
        404 => "Not found",
        405 => "Method not allowed",
        500 => "An unexpected error occurred",
        502 => "Bad Gateway",
        503 => "Service unavailable",
        _ => return None,
    })
}

fn build(config: &Value) -> Result<Arc<dyn Handler>, String> {
    let conf: RequestTerminationConfig =
        serde_json::from_value(config.clone()).map_err(|e| e.to_string())?;
    let status = StatusCode::from_u16(conf.status_code).map_err(|e| e.to_string())?;
    let message = conf
        .message
        .clone()
        .or_else(|| default_message(conf.status_code).map(str::to_string));
    let content_type = conf
        .content_type
        .as_deref()
        .map(HeaderValue::from_str)
        .transpose()
        .map_err(|e| e.to_string())?;
    // The fixed answer, made once.
    let fixed = match (&conf.body, &message) {
        (Some(body), _) => Exit {
            status,
            body: ExitBody::Raw {
                body: Bytes::from(body.clone()),
                content_type,
            },
            headers: Vec::new(),
        },
        (None, Some(m)) => Exit::message(status, m.clone()),
        (None, None) => Exit::empty(status),
    };
    Ok(Arc::new(RequestTermination {
        // nginx finds `x_trigger` as the header `x-trigger`.
        trigger_header: conf.trigger.as_ref().map(|t| crate::pdk::header_key(t)),
        status,
        message,
        fixed,
        conf,
    }))
}

struct RequestTermination {
    conf: RequestTerminationConfig,
    trigger_header: Option<String>,
    status: StatusCode,
    message: Option<String>,
    fixed: Exit,
}

impl RequestTermination {
    /// Whether the trigger (when configured) is in the request's headers or query.
    fn triggered(&self, ctx: &Ctx) -> bool {
        let (Some(trigger), Some(header)) = (&self.conf.trigger, &self.trigger_header) else {
            return true;
        };
        ctx.request.header_count(header) > 0
            || ctx.request.query_arg(trigger) != QueryValue::Missing
    }

    /// Kong's echo body: the request as the gateway saw it, and the route and service.
    fn echo(&self, ctx: &Ctx) -> Value {
        let req = &ctx.request;
        let mut headers = Map::new();
        req.headers.for_each(|name, value| {
            let name = String::from_utf8_lossy(name).to_ascii_lowercase();
            let value = Value::String(String::from_utf8_lossy(value).into_owned());
            match headers.get_mut(&name) {
                None => {
                    headers.insert(name, value);
                }
                Some(Value::Array(a)) => a.push(value),
                Some(first) => *first = Value::Array(vec![first.take(), value]),
            }
        });
        let mut query = Map::new();
        for (k, v) in req.query_args() {
            let v = v.map_or(Value::Bool(true), Value::String);
            match query.get_mut(&k) {
                None => {
                    query.insert(k, v);
                }
                Some(Value::Array(a)) => a.push(v),
                Some(first) => *first = Value::Array(vec![first.take(), v]),
            }
        }
        let authority = req
            .authority
            .as_ref()
            .and_then(|a| a.to_str().ok())
            .or_else(|| req.header("host"))
            .unwrap_or_default();
        let (host, port) = split_host_port(authority);
        let port = port.unwrap_or(match req.scheme {
            crate::pdk::Scheme::Http => 80,
            crate::pdk::Scheme::Https => 443,
        });
        let raw_body = req
            .raw_body()
            .map(|b| String::from_utf8_lossy(b).into_owned());
        let mut request = json!({
            "scheme": req.scheme.as_str(),
            "host": host.to_ascii_lowercase(),
            "port": port,
            "headers": headers,
            "query": query,
            "method": req.method.as_str(),
            "path": req.path(),
            "uri_captures": {
                "named": ctx.uri_captures.named.iter()
                    .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                    .collect::<Map<String, Value>>(),
                "unnamed": ctx.uri_captures.positional.iter().skip(1)
                    .map(|c| c.clone().map_or(Value::Bool(false), Value::String))
                    .collect::<Vec<_>>(),
            },
        });
        if let Ok(args) = req.body_args() {
            request["body"] = body_args_json(&args);
        }
        if let Some(raw) = raw_body {
            request["raw_body"] = Value::String(raw);
        }
        let mut out = json!({
            "kong": {
                "node_id": Value::Null,
                "worker_pid": std::process::id(),
                "hostname": HOSTNAME.clone(),
            },
            "request": request,
        });
        if let Some(m) = &self.message {
            out["message"] = Value::String(m.clone());
        }
        if let Some(r) = &ctx.route {
            out["matched_route"] = Value::Object(r.row.map().clone());
        }
        if let Some(s) = &ctx.service {
            out["matched_service"] = Value::Object(s.row.map().clone());
        }
        out
    }
}

/// The body's arguments as Kong's `kong.request.get_body()` returns them.
fn body_args_json(args: &BodyArgs) -> Value {
    match args {
        BodyArgs::Json(o) => Value::Object(o.clone()),
        BodyArgs::Form(pairs) | BodyArgs::Multipart { parts: pairs, .. } => {
            let mut m = Map::new();
            for (k, _) in pairs {
                if m.contains_key(k) {
                    continue;
                }
                let v = match args.get(k) {
                    ArgValue::Text(t) => Value::String(t.to_string()),
                    _ => Value::Array(
                        pairs
                            .iter()
                            .filter(|(n, _)| n == k)
                            .map(|(_, v)| Value::String(v.clone()))
                            .collect(),
                    ),
                };
                m.insert(k.clone(), v);
            }
            Value::Object(m)
        }
    }
}

/// `host[:port]` / `[v6][:port]`.
fn split_host_port(authority: &str) -> (&str, Option<u16>) {
    if let Some(rest) = authority.strip_prefix('[') {
        return match rest.split_once(']') {
            Some((h, p)) => (h, p.strip_prefix(':').and_then(|p| p.parse().ok())),
            None => (authority, None),
        };
    }
    match authority.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => (h, p.parse().ok()),
        _ => (authority, None),
    }
}

static HOSTNAME: LazyLock<Value> = LazyLock::new(|| {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map_or(Value::Null, Value::String)
});

impl Handler for RequestTermination {
    fn access<'a>(&'a self, ctx: &'a mut Ctx) -> Phase<'a> {
        if !self.triggered(ctx) {
            return Phase::CONTINUE;
        }
        if self.conf.echo {
            return Exit::json(self.status, self.echo(ctx)).into();
        }
        self.fixed.clone().into()
    }

    fn reads_body(&self) -> bool {
        self.conf.echo
    }
}
