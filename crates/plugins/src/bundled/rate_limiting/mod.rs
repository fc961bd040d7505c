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
use silverback_http::int_value;
use smallvec::SmallVec;
use std::borrow::Cow;
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

const X_LIMIT: [HeaderName; 6] = [
    HeaderName::from_static("x-ratelimit-limit-second"),
    HeaderName::from_static("x-ratelimit-limit-minute"),
    HeaderName::from_static("x-ratelimit-limit-hour"),
    HeaderName::from_static("x-ratelimit-limit-day"),
    HeaderName::from_static("x-ratelimit-limit-month"),
    HeaderName::from_static("x-ratelimit-limit-year"),
];
const X_REMAINING: [HeaderName; 6] = [
    HeaderName::from_static("x-ratelimit-remaining-second"),
    HeaderName::from_static("x-ratelimit-remaining-minute"),
    HeaderName::from_static("x-ratelimit-remaining-hour"),
    HeaderName::from_static("x-ratelimit-remaining-day"),
    HeaderName::from_static("x-ratelimit-remaining-month"),
    HeaderName::from_static("x-ratelimit-remaining-year"),
];
const RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("ratelimit-limit");
const RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");
const RATELIMIT_RESET: HeaderName = HeaderName::from_static("ratelimit-reset");

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
    /// Each limit as a header value, made once: the limits are the same on every response.
    limit_values: Vec<(u64, HeaderValue)>,
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
    let limits = conf.limits();
    Ok(Arc::new(RateLimiting {
        route,
        service,
        limit_values: limits
            .iter()
            .map(|&(_, limit)| (limit, int_value(limit)))
            .collect(),
        limits,
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

/// What the client is told about its limits, kept from `access` for `header_filter`; plain
/// numbers, so keeping it allocates nothing per limit.
#[derive(Clone, Default)]
struct Verdict {
    /// Per limit: its period, the limit and what remains.
    limits: SmallVec<[(u8, u64, u64); 6]>,
    /// The limit and remainder `RateLimit-*` speak for.
    closest: Option<(u64, u64)>,
    /// Seconds until the closest limit's window ends.
    reset: i64,
}

impl Verdict {
    /// Kong's headers, in Kong's order.
    fn headers<'a>(
        &'a self,
        plugin: &'a RateLimiting,
    ) -> impl Iterator<Item = (HeaderName, HeaderValue)> + 'a {
        let per_limit = self
            .limits
            .iter()
            .flat_map(move |&(period, limit, remaining)| {
                let p = usize::from(period).min(5);
                [
                    (X_LIMIT[p].clone(), plugin.limit_value(limit)),
                    (X_REMAINING[p].clone(), int_value(remaining)),
                ]
            });
        let closest = self
            .closest
            .into_iter()
            .flat_map(move |(limit, remaining)| {
                [
                    (RATELIMIT_LIMIT, plugin.limit_value(limit)),
                    (RATELIMIT_REMAINING, int_value(remaining)),
                    (RATELIMIT_RESET, self.reset_value()),
                ]
            });
        per_limit.chain(closest)
    }

    /// The window's end is never behind.
    fn reset_value(&self) -> HeaderValue {
        int_value(u64::try_from(self.reset).unwrap_or(0))
    }
}

impl RateLimiting {
    fn limit_value(&self, limit: u64) -> HeaderValue {
        match self.limit_values.iter().find(|(l, _)| *l == limit) {
            Some((_, v)) => v.clone(),
            None => int_value(limit),
        }
    }

    /// Kong's `get_identifier`: what the limit is counted by, the client IP when that is
    /// missing. Borrowed from the request where it can be (a consumer's id text is made once
    /// per config).
    fn identifier<'a>(&'a self, ctx: &'a Ctx) -> Cow<'a, str> {
        let owned = |id: uuid::Uuid| Cow::Owned(id.to_string());
        let found = match &self.limit_by {
            LimitBy::Consumer => match &ctx.consumer {
                Some(c) => Some(Cow::Borrowed(c.id_str())),
                None => ctx.credential.as_ref().map(|c| owned(c.id)),
            },
            LimitBy::Credential => ctx.credential.as_ref().map(|c| owned(c.id)),
            LimitBy::Service => ctx.service.as_ref().map(|s| owned(s.id)),
            LimitBy::Header(name) => ctx.request.header(name).map(Cow::Borrowed),
            LimitBy::Path(path) => path
                .as_deref()
                .filter(|p| *p == ctx.request.path())
                .map(Cow::Borrowed),
            LimitBy::Ip => None,
        };
        found.unwrap_or_else(|| Cow::Owned(ctx.client_ip.to_string()))
    }
}

fn now() -> (i64, i64) {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    (d.as_secs() as i64, d.as_millis() as i64)
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
        let mut verdict = Verdict {
            reset: 1,
            ..Verdict::default()
        };
        if !self.hide_client_headers {
            // The period closest to its limit (the longer one on ties) speaks for RateLimit-*.
            let mut closest_len = 0;
            for (i, (&(period, limit), &used)) in self.limits.iter().zip(&taken.used).enumerate() {
                let mut remaining = limit.saturating_sub(used);
                if stop.is_none() || stop == Some(i) {
                    remaining = remaining.saturating_sub(1);
                }
                let len = period_len(period);
                if verdict
                    .closest
                    .is_none_or(|(_, r)| remaining < r || (remaining == r && len > closest_len))
                {
                    verdict.closest = Some((limit, remaining));
                    closest_len = len;
                    let window = counters::window_start(period, now_s);
                    verdict.reset = (len - (now_ms - window * 1000) / 1000).max(1);
                }
                verdict.limits.push((period, limit, remaining));
            }
        }
        if stop.is_some() {
            let mut exit = Exit::error(self.status, self.message.clone());
            if !self.hide_client_headers {
                exit.headers = verdict.headers(self).collect();
                exit.headers.push((
                    HeaderName::from_static("retry-after"),
                    verdict.reset_value(),
                ));
            }
            return Flow::Exit(exit);
        }
        if !verdict.limits.is_empty() {
            ctx.set_data(verdict);
        }
        Flow::Continue
    }
}

impl Handler for RateLimiting {
    fn access<'a>(&'a self, ctx: &'a mut Ctx) -> Phase<'a> {
        let (now_s, now_ms) = now();
        // No future, no allocation beyond the counter keys: the local hot path, and the redis
        // policy with `sync_rate`, which counts here and syncs in the background.
        let counted_here = match &self.policy {
            Policy::Local => {
                let identifier = self.identifier(ctx);
                let scope = self.scope(&identifier);
                Some(Ok(counters::local::take(scope, &self.limits, now_s)))
            }
            Policy::RedisSync(sync) => {
                let identifier = self.identifier(ctx);
                Some(sync.take(self.scope(&identifier), &self.limits, now_s))
            }
            Policy::Redis(_) | Policy::Cluster => None,
        };
        if let Some(taken) = counted_here {
            return Phase::Ready(Ok(self.decide(ctx, taken, now_s, now_ms)));
        }
        Phase::Pending(Box::pin(async move {
            let identifier = self.identifier(ctx);
            let runtime = ctx.runtime.clone();
            let scope = self.scope(&identifier);
            let taken = self.policy.take(&runtime, scope, &self.limits, now_s).await;
            Ok(self.decide(ctx, taken, now_s, now_ms))
        }))
    }

    fn header_filter(&self, ctx: &mut Ctx) -> Result<(), PluginError> {
        let Some(verdict) = ctx.data::<Verdict>().cloned() else {
            return Ok(());
        };
        // The upstream's own copies go in one pass over the response's fields.
        let headers: SmallVec<[(HeaderName, HeaderValue); 8]> = verdict.headers(self).collect();
        let names: SmallVec<[&str; 8]> = headers.iter().map(|(n, _)| n.as_str()).collect();
        let fields = &mut ctx.response.headers;
        fields.remove_many(&names);
        drop(names);
        for (name, value) in headers {
            fields.set_new(name, value);
        }
        Ok(())
    }
}
