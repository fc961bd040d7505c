//! rate-limiting: at most N requests per second ... year, counted per consumer, credential, IP,
//! service, header or path, with Kong's headers.

mod local;
mod schema;

use crate::handler::{Handler, Phase, Phases, PluginError};
use crate::pdk::{Ctx, Exit};
use crate::registry::PluginDef;
use http::{HeaderName, HeaderValue, StatusCode};
use local::{COUNTERS, Key, period_len, window_start};
use schema::RateLimitingConfig;
use serde_json::Value;
use std::sync::Arc;

pub(crate) fn definition() -> PluginDef {
    PluginDef {
        name: "rate-limiting",
        priority: 910,
        protocols: &["grpc", "grpcs", "http", "https"],
        no_consumer: false,
        no_route: false,
        no_service: false,
        config: schema::config,
        phases: Phases {
            access: true,
            header_filter: true,
            ..Phases::default()
        },
        build,
        index: None,
    }
}

const X_LIMIT: [&str; 6] = [
    "x-ratelimit-limit-second",
    "x-ratelimit-limit-minute",
    "x-ratelimit-limit-hour",
    "x-ratelimit-limit-day",
    "x-ratelimit-limit-month",
    "x-ratelimit-limit-year",
];
const X_REMAINING: [&str; 6] = [
    "x-ratelimit-remaining-second",
    "x-ratelimit-remaining-minute",
    "x-ratelimit-remaining-hour",
    "x-ratelimit-remaining-day",
    "x-ratelimit-remaining-month",
    "x-ratelimit-remaining-year",
];

enum LimitBy {
    Consumer,
    Credential,
    Ip,
    Service,
    Header(String),
    Path(Option<String>),
}

struct RateLimiting {
    limits: Vec<(usize, u64)>,
    limit_by: LimitBy,
    hide_client_headers: bool,
    status: StatusCode,
    message: String,
}

fn build(config: &Value) -> Result<Arc<dyn Handler>, String> {
    let conf: RateLimitingConfig =
        serde_json::from_value(config.clone()).map_err(|e| e.to_string())?;
    if conf.policy != "local" {
        return Err(format!("policy '{}' is not available", conf.policy));
    }
    let limit_by = match conf.limit_by.as_str() {
        "credential" => LimitBy::Credential,
        "ip" => LimitBy::Ip,
        "service" => LimitBy::Service,
        "header" => LimitBy::Header(
            conf.header_name
                .clone()
                .unwrap_or_default()
                .to_ascii_lowercase(),
        ),
        "path" => LimitBy::Path(conf.path.clone()),
        _ => LimitBy::Consumer,
    };
    Ok(Arc::new(RateLimiting {
        limits: conf.limits(),
        limit_by,
        hide_client_headers: conf.hide_client_headers,
        status: StatusCode::from_u16(conf.error_code as u16).map_err(|e| e.to_string())?,
        message: conf
            .error_message
            .clone()
            .unwrap_or_else(|| "API rate limit exceeded".into()),
    }))
}

/// The headers this request gets, kept for `header_filter`.
struct Headers(Vec<(HeaderName, HeaderValue)>);

impl RateLimiting {
    /// Kong's `get_identifier`: what the limit is counted by, the client IP when that is
    /// missing.
    fn identifier(&self, ctx: &Ctx) -> String {
        let found = match &self.limit_by {
            LimitBy::Consumer => ctx
                .consumer
                .as_ref()
                .map(|c| c.id)
                .or(ctx.credential.as_ref().map(|c| c.id))
                .map(|id| id.to_string()),
            LimitBy::Credential => ctx.credential.as_ref().map(|c| c.id.to_string()),
            LimitBy::Service => ctx.service.as_ref().map(|s| s.id.to_string()),
            LimitBy::Header(name) => ctx.request.header(name).map(str::to_string),
            LimitBy::Path(path) => path
                .as_deref()
                .filter(|p| *p == ctx.request.path())
                .map(str::to_string),
            LimitBy::Ip => None,
        };
        found.unwrap_or_else(|| ctx.client_ip.to_string())
    }
}

fn now() -> (i64, i64) {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    (d.as_secs() as i64, d.as_millis() as i64)
}

fn int(n: i64) -> HeaderValue {
    HeaderValue::from(n)
}

impl Handler for RateLimiting {
    fn access<'a>(&'a self, ctx: &'a mut Ctx) -> Phase<'a> {
        let identifier = self.identifier(ctx);
        let (now_s, now_ms) = now();
        let route = ctx.route.as_ref().map(|r| r.id);
        let service = ctx.service.as_ref().map(|s| s.id);
        // Per period: limit, usage before this request, window start; and which were counted.
        let mut usage = Vec::with_capacity(self.limits.len());
        let mut counted = Vec::with_capacity(self.limits.len());
        let mut stop = None;
        for &(period, limit) in &self.limits {
            let window = window_start(period as u8, now_s);
            let key = Key {
                route,
                service,
                identifier: identifier.clone(),
                period: period as u8,
                window,
            };
            let (used, taken) = COUNTERS.try_take(&key, limit);
            if taken {
                counted.push(key);
            } else {
                stop = Some(period);
            }
            usage.push((period, limit, used, window));
        }
        if stop.is_some() {
            for key in &counted {
                COUNTERS.give_back(key);
            }
        }
        let mut headers = Vec::new();
        let mut reset = 1;
        if !self.hide_client_headers {
            // The period closest to its limit (the longer one on ties) speaks for RateLimit-*.
            let mut best: Option<(u64, i64, u64)> = None;
            for &(period, limit, used, window) in &usage {
                let mut remaining = limit.saturating_sub(used);
                if stop.is_none() || stop == Some(period) {
                    remaining = remaining.saturating_sub(1);
                }
                let len = period_len(period as u8);
                if best.is_none_or(|(r, l, _)| remaining < r || (remaining == r && len > l)) {
                    best = Some((remaining, len, limit));
                    reset = (len - (now_ms - window * 1000) / 1000).max(1);
                }
                headers.push((HeaderName::from_static(X_LIMIT[period]), int(limit as i64)));
                headers.push((
                    HeaderName::from_static(X_REMAINING[period]),
                    int(remaining as i64),
                ));
            }
            if let Some((remaining, _, limit)) = best {
                headers.push((
                    HeaderName::from_static("ratelimit-limit"),
                    int(limit as i64),
                ));
                headers.push((
                    HeaderName::from_static("ratelimit-remaining"),
                    int(remaining as i64),
                ));
                headers.push((HeaderName::from_static("ratelimit-reset"), int(reset)));
            }
        }
        if stop.is_some() {
            let mut exit = Exit::error(self.status, self.message.clone());
            if !self.hide_client_headers {
                exit.headers = headers;
                exit.headers
                    .push((HeaderName::from_static("retry-after"), int(reset)));
            }
            return exit.into();
        }
        if !headers.is_empty() {
            ctx.set_data(Headers(headers));
        }
        Phase::CONTINUE
    }

    fn header_filter(&self, ctx: &mut Ctx) -> Result<(), PluginError> {
        let Some(Headers(headers)) = ctx.data::<Headers>() else {
            return Ok(());
        };
        let headers = headers.clone();
        for (name, value) in headers {
            ctx.response.headers.set(name, value);
        }
        Ok(())
    }
}
