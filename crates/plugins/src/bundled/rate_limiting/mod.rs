//! rate-limiting: at most N requests per second ... year, counted per consumer, credential, IP,
//! service, header or path, with Kong's headers. The counters (`local`, `redis`, `cluster`)
//! are in [`crate::counters`], shared with response-ratelimiting.

mod schema;

use crate::counters::{self, CounterError, Counting, Limit, Policy, Scope, Taken, period_len};
use crate::handler::{Flow, Handler, Phase, Phases, PluginError};
use crate::pdk::{Ctx, Exit};
use crate::registry::PluginDef;
use http::{HeaderName, HeaderValue, StatusCode};
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
    /// The plugin's own route and service, which key its counters (Kong's).
    route: Option<uuid::Uuid>,
    service: Option<uuid::Uuid>,
    limits: Vec<Limit>,
    policy: Policy,
    fault_tolerant: bool,
    limit_by: LimitBy,
    hide_client_headers: bool,
    status: StatusCode,
    message: String,
}

fn build(config: &Value) -> Result<Arc<dyn Handler>, String> {
    let conf: RateLimitingConfig =
        serde_json::from_value(config.clone()).map_err(|e| e.to_string())?;
    let policy = Policy::from_config(config)?;
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
    let (route, service) = counters::plugin_scope(config);
    Ok(Arc::new(RateLimiting {
        route,
        service,
        limits: conf.limits(),
        policy,
        fault_tolerant: conf.fault_tolerant,
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

/// Kong's answer when the counters cannot be reached and `fault_tolerant` is off.
pub(crate) fn counters_failed() -> Exit {
    Exit::error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "An unexpected error occurred",
    )
}

/// Logs a counter failure, except an outage the Redis pool already reported.
pub(crate) fn log_counter_error(plugin: &'static str, ctx: &Ctx, e: &CounterError) {
    if !matches!(e, CounterError::Unavailable(_)) {
        tracing::error!(plugin, request_id = ctx.request_id(), error = %e, "failed to get usage");
    }
}

impl RateLimiting {
    fn scope<'a>(&self, identifier: &'a str) -> Scope<'a> {
        Scope {
            counting: Counting::Requests,
            route: self.route,
            service: self.service,
            identifier,
            name: None,
        }
    }

    /// The verdict, or `fault_tolerant`'s when the counters could not be reached.
    fn decide(
        &self,
        ctx: &mut Ctx,
        taken: Result<Taken, CounterError>,
        now_s: i64,
        now_ms: i64,
    ) -> Flow {
        match taken {
            Ok(taken) => self.respond(ctx, &taken, now_s, now_ms),
            Err(e) => {
                log_counter_error("rate-limiting", ctx, &e);
                if self.fault_tolerant {
                    // Kong: proxied without rate-limit headers.
                    Flow::Continue
                } else {
                    Flow::Exit(counters_failed())
                }
            }
        }
    }

    /// Kong's headers and verdict from what the counters said.
    fn respond(&self, ctx: &mut Ctx, taken: &Taken, now_s: i64, now_ms: i64) -> Flow {
        let stop = taken.refused;
        let mut headers = Vec::new();
        let mut reset = 1;
        if !self.hide_client_headers {
            // The period closest to its limit (the longer one on ties) speaks for RateLimit-*.
            let mut best: Option<(u64, i64, u64)> = None;
            for (i, (&(period, limit), &used)) in self.limits.iter().zip(&taken.used).enumerate() {
                let mut remaining = limit.saturating_sub(used);
                if stop.is_none() || stop == Some(i) {
                    remaining = remaining.saturating_sub(1);
                }
                let len = period_len(period);
                if best.is_none_or(|(r, l, _)| remaining < r || (remaining == r && len > l)) {
                    best = Some((remaining, len, limit));
                    let window = counters::window_start(period, now_s);
                    reset = (len - (now_ms - window * 1000) / 1000).max(1);
                }
                let p = usize::from(period).min(5);
                headers.push((HeaderName::from_static(X_LIMIT[p]), int(limit as i64)));
                headers.push((
                    HeaderName::from_static(X_REMAINING[p]),
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
            return Flow::Exit(exit);
        }
        if !headers.is_empty() {
            ctx.set_data(Headers(headers));
        }
        Flow::Continue
    }
}

impl Handler for RateLimiting {
    fn access<'a>(&'a self, ctx: &'a mut Ctx) -> Phase<'a> {
        let identifier = self.identifier(ctx);
        let (now_s, now_ms) = now();
        // No future, no allocation beyond the counter keys: the local hot path, and the redis
        // policy with `sync_rate`, which counts here and syncs in the background.
        let counted_here = match &self.policy {
            Policy::Local => Some(Ok(counters::local::take(
                self.scope(&identifier),
                &self.limits,
                now_s,
            ))),
            Policy::RedisSync(sync) => {
                Some(sync.take(self.scope(&identifier), &self.limits, now_s))
            }
            Policy::Redis(_) | Policy::Cluster => None,
        };
        if let Some(taken) = counted_here {
            return Phase::Ready(Ok(self.decide(ctx, taken, now_s, now_ms)));
        }
        Phase::Pending(Box::pin(async move {
            let runtime = ctx.runtime.clone();
            let scope = self.scope(&identifier);
            let taken = self.policy.take(&runtime, scope, &self.limits, now_s).await;
            Ok(self.decide(ctx, taken, now_s, now_ms))
        }))
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
