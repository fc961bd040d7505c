//! response-ratelimiting: limits counted by the upstream. The upstream's `X-Kong-Limit:
//! videos=2, images=1` response header (Kong's `header_name`) adds to the named counters;
//! a request whose limit is already used up is refused before it reaches the upstream only
//! with `block_on_first_violation`, otherwise its response becomes a 429 when it would add to
//! a full counter. Counters are the ones rate-limiting uses ([`crate::counters`]), under
//! Kong's own keys.

mod schema;

use super::rate_limiting::{counters_failed, log_counter_error};
use crate::counters::{self, Counting, Limit, Policy, Scope};
use crate::handler::{Flow, Handler, Phase, Phases, PluginError};
use crate::pdk::{Ctx, Exit};
use crate::registry::PluginDef;
use http::{HeaderName, HeaderValue, StatusCode};
use serde_json::Value;
use silverback_http::int_value;
use smallvec::SmallVec;
use std::sync::Arc;

pub(crate) fn definition() -> PluginDef {
    PluginDef {
        name: "response-ratelimiting",
        priority: 900,
        protocols: &["grpc", "grpcs", "http", "https"],
        no_consumer: false,
        no_route: false,
        no_service: false,
        config: schema::config,
        phases: Phases {
            access: true,
            header_filter: true,
            log: true,
            ..Phases::default()
        },
        build,
        index: None,
    }
}

/// One named limit, with its header names made once.
struct NamedLimit {
    name: String,
    limits: Vec<Limit>,
    /// `X-RateLimit-Remaining-<name>`, sent upstream.
    upstream_remaining: Option<HeaderName>,
    /// Per period: `X-RateLimit-Limit-<name>-<period>` and `X-RateLimit-Remaining-...`.
    client_headers: Vec<Option<(HeaderName, HeaderName)>>,
}

#[derive(PartialEq, Eq)]
enum LimitBy {
    Consumer,
    Credential,
    Ip,
}

struct ResponseRateLimiting {
    /// The plugin's own route and service, which key its counters (Kong's).
    route: Option<uuid::Uuid>,
    service: Option<uuid::Uuid>,
    header_name: String,
    limit_by: LimitBy,
    policy: Policy,
    fault_tolerant: bool,
    block_on_first_violation: bool,
    hide_client_headers: bool,
    limits: Vec<NamedLimit>,
}

fn header(name: String) -> Option<HeaderName> {
    HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes()).ok()
}

fn build(config: &Value) -> Result<Arc<dyn Handler>, String> {
    let text = |f: &str| config.get(f).and_then(Value::as_str).unwrap_or_default();
    let flag = |f: &str| config.get(f).and_then(Value::as_bool).unwrap_or(false);
    let mut limits = Vec::new();
    for (name, periods) in config
        .get("limits")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        let limits_of: Vec<Limit> = counters::PERIODS
            .iter()
            .enumerate()
            .filter_map(|(i, p)| {
                let l = periods.get(*p)?.as_f64()?;
                Some((i as u8, l.floor() as u64))
            })
            .collect();
        let client_headers = limits_of
            .iter()
            .map(|&(p, _)| {
                let period = counters::period_name(p);
                Some((
                    header(format!("x-ratelimit-limit-{name}-{period}"))?,
                    header(format!("x-ratelimit-remaining-{name}-{period}"))?,
                ))
            })
            .collect();
        limits.push(NamedLimit {
            name: name.clone(),
            limits: limits_of,
            upstream_remaining: header(format!("x-ratelimit-remaining-{name}")),
            client_headers,
        });
    }
    let (route, service) = counters::plugin_scope(config);
    Ok(Arc::new(ResponseRateLimiting {
        route,
        service,
        // Looked up in the response, which wants lower-case names.
        header_name: text("header_name").to_ascii_lowercase(),
        limit_by: match text("limit_by") {
            "credential" => LimitBy::Credential,
            "ip" => LimitBy::Ip,
            _ => LimitBy::Consumer,
        },
        policy: Policy::from_config(config)?,
        fault_tolerant: flag("fault_tolerant"),
        block_on_first_violation: flag("block_on_first_violation"),
        hide_client_headers: flag("hide_client_headers"),
        limits,
    }))
}

/// What access found, for the response phases: per named limit, per period, the usage.
struct State {
    identifier: String,
    now: i64,
    usage: Vec<SmallVec<[u64; 6]>>,
    /// Per named limit, what the upstream's header adds (set in header_filter).
    increments: Vec<u64>,
    /// The response became a 429: nothing is counted.
    stopped: bool,
}

fn now() -> i64 {
    crate::runtime::now_secs()
}

impl ResponseRateLimiting {
    /// Kong's `get_identifier`: consumer (or credential), credential, else the client IP.
    fn identifier(&self, ctx: &Ctx) -> String {
        let found = match self.limit_by {
            LimitBy::Consumer => ctx
                .consumer
                .as_ref()
                .map(|c| c.id)
                .or(ctx.credential.as_ref().map(|c| c.id)),
            LimitBy::Credential => ctx.credential.as_ref().map(|c| c.id),
            LimitBy::Ip => None,
        };
        found.map_or_else(|| ctx.client_ip.to_string(), |id| id.to_string())
    }

    fn scope<'a>(&self, identifier: &'a str, limit: &'a NamedLimit) -> Scope<'a> {
        Scope {
            counting: Counting::Responses,
            route: self.route,
            service: self.service,
            identifier,
            name: Some(&limit.name),
        }
    }

    fn periods(limit: &NamedLimit) -> SmallVec<[u8; 6]> {
        limit.limits.iter().map(|&(p, _)| p).collect()
    }

    /// Kong's access step once usage is known: refuse with `block_on_first_violation`, tell
    /// the upstream what remains per limit.
    fn admit(&self, ctx: &mut Ctx, state: State) -> Flow {
        for (limit, used) in self.limits.iter().zip(&state.usage) {
            let mut least: Option<i64> = None;
            for (&(_, max), &used) in limit.limits.iter().zip(used) {
                let remaining = max as i64 - used as i64;
                // Kong compares with 0; a counter pushed past its limit by a large increment
                // is as used up.
                if self.block_on_first_violation && remaining <= 0 {
                    return Flow::Exit(Exit::error(
                        StatusCode::TOO_MANY_REQUESTS,
                        format!("API rate limit exceeded for '{}'", limit.name),
                    ));
                }
                least = Some(least.map_or(remaining, |l| l.min(remaining)));
            }
            if let (Some(name), Some(least)) = (&limit.upstream_remaining, least) {
                ctx.request
                    .set_header(name.clone(), HeaderValue::from(least));
            }
        }
        ctx.set_data(state);
        Flow::Continue
    }

    /// The upstream header's increments for the configured limits (`name=n, other=m`).
    fn increments(&self, value: &str) -> Vec<u64> {
        let mut out = vec![0; self.limits.len()];
        for part in value.split(',') {
            let mut kv = part.split('=');
            let (Some(name), Some(n), None) = (kv.next(), kv.next(), kv.next()) else {
                continue;
            };
            let name = name.trim();
            if let Some(i) = self.limits.iter().position(|l| l.name == name)
                && let Ok(n) = n.trim().parse::<u64>()
                && let Some(slot) = out.get_mut(i)
            {
                *slot = n;
            }
        }
        out
    }
}

impl Handler for ResponseRateLimiting {
    fn access<'a>(&'a self, ctx: &'a mut Ctx) -> Phase<'a> {
        if self.limits.is_empty() {
            return Phase::CONTINUE;
        }
        let identifier = self.identifier(ctx);
        let now = now();
        if let Policy::Local = self.policy {
            let usage = self
                .limits
                .iter()
                .map(|l| counters::local::usage(self.scope(&identifier, l), &Self::periods(l), now))
                .collect();
            let state = State {
                identifier,
                now,
                usage,
                increments: Vec::new(),
                stopped: false,
            };
            return Phase::Ready(Ok(self.admit(ctx, state)));
        }
        Phase::Pending(Box::pin(async move {
            let runtime = ctx.runtime.clone();
            let mut usage = Vec::with_capacity(self.limits.len());
            for l in &self.limits {
                let scope = self.scope(&identifier, l);
                match self
                    .policy
                    .usage(&runtime, scope, &Self::periods(l), now)
                    .await
                {
                    Ok(u) => usage.push(u),
                    Err(e) => {
                        log_counter_error("response-ratelimiting", ctx, &e);
                        return Ok(if self.fault_tolerant {
                            Flow::Continue
                        } else {
                            Flow::Exit(counters_failed())
                        });
                    }
                }
            }
            let state = State {
                identifier,
                now,
                usage,
                increments: Vec::new(),
                stopped: false,
            };
            Ok(self.admit(ctx, state))
        }))
    }

    fn header_filter(&self, ctx: &mut Ctx) -> Result<(), PluginError> {
        if self.limits.is_empty() {
            return Ok(());
        }
        // Every field of the header counts (Kong reads them all).
        let mut increments = vec![0; self.limits.len()];
        for value in ctx.response.headers.get_all(&self.header_name) {
            let Ok(value) = std::str::from_utf8(value) else {
                continue;
            };
            for (total, n) in increments.iter_mut().zip(self.increments(value)) {
                if n > 0 {
                    *total = n;
                }
            }
        }
        let mut headers = Vec::new();
        let mut stop = false;
        {
            // As Kong: without usage (counters unreachable, fault tolerant) the response
            // passes untouched.
            let Some(state) = ctx.data::<State>() else {
                return Ok(());
            };
            for ((limit, used), &inc) in self.limits.iter().zip(&state.usage).zip(&increments) {
                for ((&(_, max), &used), names) in
                    limit.limits.iter().zip(used).zip(&limit.client_headers)
                {
                    let remaining = max as i64 - used as i64;
                    if !self.hide_client_headers
                        && let Some((limit_name, remaining_name)) = names
                    {
                        headers.push((limit_name.clone(), int_value(max)));
                        headers.push((
                            remaining_name.clone(),
                            int_value((remaining - inc as i64).max(0) as u64),
                        ));
                    }
                    if inc > 0 && remaining <= 0 {
                        stop = true;
                    }
                }
            }
        }
        for (name, value) in headers {
            ctx.response.headers.set(name, value);
        }
        ctx.response.headers.remove(&self.header_name);
        if stop {
            // Kong's `kong.response.exit(429)` from header_filter changes the status only; the
            // upstream's body still follows.
            ctx.response.status = StatusCode::TOO_MANY_REQUESTS;
        }
        if let Some(state) = ctx.data_mut::<State>() {
            state.increments = increments;
            state.stopped = stop;
        }
        Ok(())
    }

    fn log(&self, ctx: &Ctx) {
        let Some(state) = ctx.data::<State>() else {
            return;
        };
        if state.stopped || state.increments.iter().all(|&i| i == 0) {
            return;
        }
        let (route, service) = (self.route, self.service);
        let adds: Vec<(String, SmallVec<[u8; 6]>, u64)> = self
            .limits
            .iter()
            .zip(&state.increments)
            .filter(|(_, inc)| **inc > 0)
            .map(|(l, &inc)| (l.name.clone(), Self::periods(l), inc))
            .collect();
        let identifier = state.identifier.clone();
        let now = state.now;
        if let Policy::Local = self.policy {
            for (name, periods, inc) in &adds {
                let scope = Scope {
                    counting: Counting::Responses,
                    route,
                    service,
                    identifier: &identifier,
                    name: Some(name),
                };
                counters::local::add(scope, periods, now, *inc);
            }
            return;
        }
        // Kong increments from a timer after the response; so do we, off the response.
        let policy = self.policy.clone();
        let runtime = ctx.runtime.clone();
        let request_id = ctx.request_id().to_string();
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        handle.spawn(async move {
            for (name, periods, inc) in &adds {
                let scope = Scope {
                    counting: Counting::Responses,
                    route,
                    service,
                    identifier: &identifier,
                    name: Some(name),
                };
                if let Err(e) = policy.add(&runtime, scope, periods, now, *inc).await
                    && !matches!(e, counters::CounterError::Unavailable(_))
                {
                    tracing::error!(plugin = "response-ratelimiting", request_id, error = %e, "could not increment counters");
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_upstream_header_counts_only_configured_limits() {
        let handler = build(&json!({
            "header_name": "x-kong-limit", "limit_by": "ip", "policy": "local",
            "fault_tolerant": true, "block_on_first_violation": false,
            "hide_client_headers": false,
            "limits": {"videos": {"minute": 10}, "images": {"second": 1, "hour": 5}}
        }))
        .map(|_| ());
        assert!(handler.is_ok());
        let rl = ResponseRateLimiting {
            route: None,
            service: None,
            header_name: "x-kong-limit".into(),
            limit_by: LimitBy::Ip,
            policy: Policy::Local,
            fault_tolerant: true,
            block_on_first_violation: false,
            hide_client_headers: false,
            limits: ["videos", "images"]
                .map(|n| NamedLimit {
                    name: n.into(),
                    limits: vec![(1, 10)],
                    upstream_remaining: None,
                    client_headers: Vec::new(),
                })
                .into(),
        };
        assert_eq!(rl.increments("videos=2, images = 3, other=9"), vec![2, 3]);
        assert_eq!(rl.increments("videos=x, images=1=2"), vec![0, 0]);
    }
}
