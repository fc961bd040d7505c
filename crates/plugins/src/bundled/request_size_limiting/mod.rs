//! request-size-limiting: refuses request bodies larger than the configured size, by their
//! Content-Length, or, for bodies without one (chunked, HTTP/2 streams), by counting them as
//! they arrive.
//!
//! Kong reads a body without Content-Length completely (to memory, then a temp file) before
//! measuring it. Here the plugin does not read the body: it sets a [`limit`] the proxy
//! enforces while the body streams in after `access`, whether the route buffers the body or
//! streams it upstream. Memory stays bounded by the proxy's own buffering, nothing past the
//! limit is read or stored, and an oversized request is answered as soon as the limit is
//! crossed. A body another plugin already read into memory is measured directly.
//!
//! [`limit`]: crate::pdk::Request::limit_body

mod schema;

use crate::handler::{Handler, Phase, Phases};
use crate::pdk::{Body, Ctx, Exit};
use crate::registry::PluginDef;
use http::StatusCode;
use schema::{RequestSizeLimitingConfig, SIZE_UNITS};
use serde_json::Value;
use std::sync::Arc;

pub(crate) const NAME: &str = "request-size-limiting";

pub(crate) fn definition() -> PluginDef {
    PluginDef {
        name: NAME,
        priority: 951,
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

const EXCEEDED: &str = "Request size limit exceeded";

fn build(config: &Value) -> Result<Arc<dyn Handler>, String> {
    let conf: RequestSizeLimitingConfig =
        serde_json::from_value(config.clone()).map_err(|e| e.to_string())?;
    let unit = SIZE_UNITS
        .iter()
        .find(|u| u.0 == conf.size_unit)
        .map(|u| u.1)
        .ok_or_else(|| format!("unknown size_unit {}", conf.size_unit))?;
    let size = i128::from(conf.allowed_payload_size.unwrap_or(128));
    Ok(Arc::new(RequestSizeLimiting {
        allowed: size * i128::from(unit),
        require_content_length: conf.require_content_length,
    }))
}

struct RequestSizeLimiting {
    /// In bytes; negative refuses every body, as in Kong.
    allowed: i128,
    require_content_length: bool,
}

impl RequestSizeLimiting {
    /// 417 when the client waits for `100 Continue` (it has not sent the body), else 413.
    fn refusal(ctx: &Ctx) -> Exit {
        let expects_continue = ctx.request.expects_continue
            || ctx
                .request
                .header("expect")
                .is_some_and(|e| e.trim().eq_ignore_ascii_case("100-continue"));
        let status = if expects_continue {
            StatusCode::EXPECTATION_FAILED
        } else {
            StatusCode::PAYLOAD_TOO_LARGE
        };
        Exit::error(status, EXCEEDED)
    }

    fn too_large(&self, length: f64) -> bool {
        length > self.allowed as f64
    }
}

/// Lua's `tonumber` on a header value, for the forms clients send.
fn to_number(v: &str) -> Option<f64> {
    let v = v.trim();
    if let Some(hex) = v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        return u64::from_str_radix(hex, 16).ok().map(|n| n as f64);
    }
    v.parse::<f64>().ok().filter(|n| n.is_finite())
}

impl Handler for RequestSizeLimiting {
    fn access<'a>(&'a self, ctx: &'a mut Ctx) -> Phase<'a> {
        if let Some(length) = ctx.request.header("content-length").and_then(to_number) {
            return if self.too_large(length) {
                Self::refusal(ctx).into()
            } else {
                Phase::CONTINUE
            };
        }
        if self.require_content_length && !ctx.request.chunked {
            return Exit::error(
                StatusCode::LENGTH_REQUIRED,
                "A valid Content-Length header is required",
            )
            .into();
        }
        if let Body::Read(b) = ctx.request.body() {
            return if self.too_large(b.len() as f64) {
                Self::refusal(ctx).into()
            } else {
                Phase::CONTINUE
            };
        }
        let exit = Self::refusal(ctx);
        let max = u64::try_from(self.allowed.max(0)).unwrap_or(u64::MAX);
        ctx.request.limit_body(max, exit);
        Phase::CONTINUE
    }
}
