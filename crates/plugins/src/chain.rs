//! A route's plugin chain and the runner that takes a request through its phases.
//!
//! A chain is resolved when the snapshot is built ([`crate::Plugins::chain`]): for each plugin
//! name the configuration that wins for the route and service, in priority order, plus the
//! consumer-scoped configurations that would win once an authentication plugin identified the
//! consumer. At request time `access` only looks up the consumer's entry.

use crate::handler::{Flow, Handler, Outcome, Phase, Phases, PluginError};
use crate::pdk::{Ctx, Exit};
use crate::registry::PluginDef;
use bytes::Bytes;
use http::StatusCode;
use smallvec::SmallVec;
use std::collections::HashMap;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use uuid::Uuid;

/// A configured plugin: one `plugins` row, built.
pub struct Instance {
    pub id: Uuid,
    pub def: &'static PluginDef,
    pub handler: Arc<dyn Handler>,
}

impl std::fmt::Debug for Instance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Instance")
            .field("id", &self.id)
            .field("name", &self.def.name)
            .finish()
    }
}

/// One plugin name in a chain.
#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) def: &'static PluginDef,
    /// The configuration that applies without a consumer (route+service, route, service,
    /// global).
    pub(crate) base: Option<Arc<Instance>>,
    /// Consumers whose own configuration wins over `base`.
    pub(crate) by_consumer: HashMap<Uuid, Arc<Instance>>,
}

/// The plugins configured for one route (and its service), in the order they run.
#[derive(Debug, Default)]
pub struct Chain {
    entries: Vec<Entry>,
    phases: Phases,
    reads_body: bool,
}

/// The plugins one request ran through, kept for the response phases.
#[derive(Debug, Default)]
pub struct Run {
    ran: SmallVec<[(usize, Arc<Instance>); 4]>,
    phases: Phases,
}

impl Run {
    pub fn is_empty(&self) -> bool {
        self.ran.is_empty()
    }

    pub fn has_header_filter(&self) -> bool {
        self.phases.header_filter
    }

    pub fn has_body_filter(&self) -> bool {
        self.phases.body_filter
    }

    /// Whether a plugin's `log` builds the log record (then the response head is kept).
    pub fn serializes(&self) -> bool {
        self.phases.serialize
    }

    /// Whether a plugin's `log` reads the upstream attempts (then the proxy records them).
    pub fn records_tries(&self) -> bool {
        self.phases.serialize || self.phases.tries
    }

    /// Whether the response body must go through `body_filter` or the request through `log`.
    pub fn needs_body_hooks(&self) -> bool {
        self.phases.body_filter || self.phases.log
    }
}

/// The reply a failing plugin gets.
fn plugin_failed(def: &PluginDef, ctx: &Ctx, err: &dyn std::fmt::Display) -> Exit {
    tracing::error!(
        plugin = def.name,
        request_id = ctx.request_id(),
        error = %err,
        "plugin failed"
    );
    Exit::error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "An unexpected error occurred",
    )
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".into())
}

/// Polls a plugin's future, turning a panic into an error.
struct Guarded<'a>(Pin<Box<dyn Future<Output = Outcome> + Send + 'a>>);

impl Future for Guarded<'_> {
    type Output = Outcome;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Outcome> {
        match catch_unwind(AssertUnwindSafe(|| self.0.as_mut().poll(cx))) {
            Ok(p) => p,
            Err(p) => Poll::Ready(Err(PluginError::Internal(format!(
                "panicked: {}",
                panic_message(&*p)
            )))),
        }
    }
}

async fn run_phase<'a>(call: impl FnOnce() -> Phase<'a>) -> Outcome {
    match catch_unwind(AssertUnwindSafe(call)) {
        Ok(Phase::Ready(o)) => o,
        Ok(Phase::Pending(f)) => Guarded(f).await,
        Err(p) => Err(PluginError::Internal(format!(
            "panicked: {}",
            panic_message(&*p)
        ))),
    }
}

impl Chain {
    pub(crate) fn new(entries: Vec<Entry>) -> Chain {
        let all = |e: &Entry| {
            e.base
                .iter()
                .chain(e.by_consumer.values())
                .cloned()
                .collect::<Vec<_>>()
        };
        let mut phases = Phases::default();
        let mut reads_body = false;
        for e in &entries {
            phases = phases.union(e.def.phases);
            reads_body |= all(e).iter().any(|i| i.handler.reads_body());
        }
        Chain {
            entries,
            phases,
            reads_body,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether any plugin here reads the request body in `access`.
    pub fn reads_body(&self) -> bool {
        self.reads_body
    }

    /// Whether a plugin here reads this request's body (by its headers). The consumer is not
    /// known yet, so every configuration of the chain is asked.
    pub fn reads_body_of(&self, headers: &silverback_http::Fields) -> bool {
        self.reads_body
            && self.entries.iter().any(|e| {
                e.base
                    .iter()
                    .chain(e.by_consumer.values())
                    .any(|i| i.handler.reads_body() && i.handler.reads_body_of(headers))
            })
    }

    pub fn phases(&self) -> Phases {
        self.phases
    }

    /// Names in run order (for tests and the Admin API).
    pub fn names(&self) -> Vec<&'static str> {
        self.entries.iter().map(|e| e.def.name).collect()
    }

    /// The instance of an entry for the request's consumer.
    fn resolve<'c>(&'c self, e: &'c Entry, ctx: &Ctx) -> Option<&'c Arc<Instance>> {
        if !e.by_consumer.is_empty()
            && let Some(i) = ctx.consumer.as_ref().and_then(|c| e.by_consumer.get(&c.id))
        {
            return Some(i);
        }
        e.base.as_ref()
    }

    /// Kong's `rewrite` phase: only global plugins run, before routing.
    pub async fn rewrite(&self, ctx: &mut Ctx) -> Option<Exit> {
        if !self.phases.rewrite {
            return None;
        }
        for (pos, e) in self.entries.iter().enumerate() {
            let Some(inst) = e.base.as_ref().filter(|_| e.def.phases.rewrite) else {
                continue;
            };
            ctx.enter_plugin(pos, inst.id);
            match run_phase(|| inst.handler.rewrite(ctx)).await {
                Ok(Flow::Continue) => {}
                Ok(Flow::Exit(exit)) => return Some(exit),
                Err(err) => return Some(plugin_failed(inst.def, ctx, &err)),
            }
        }
        None
    }

    /// Kong's `access` phase: each plugin's configuration is looked up with the consumer known
    /// so far (authentication plugins run first: they have the highest priorities). After an
    /// exit, later handlers do not run but their plugins are still collected for the response
    /// phases, as Kong does.
    pub async fn access(&self, ctx: &mut Ctx) -> (Run, Option<Exit>) {
        let mut run = Run::default();
        let mut exit = None;
        for (pos, e) in self.entries.iter().enumerate() {
            let Some(inst) = self.resolve(e, ctx) else {
                continue;
            };
            run.ran.push((pos, inst.clone()));
            run.phases = run.phases.union(e.def.phases);
            if exit.is_some() || !e.def.phases.access {
                continue;
            }
            ctx.enter_plugin(pos, inst.id);
            match run_phase(|| inst.handler.access(ctx)).await {
                Ok(Flow::Continue) => {}
                Ok(Flow::Exit(x)) => exit = Some(x),
                Err(err) => exit = Some(plugin_failed(inst.def, ctx, &err)),
            }
        }
        (run, exit)
    }

    /// The run of a request that reached no access phase (no route matched): global plugins.
    pub fn without_access(&self) -> Run {
        let mut run = Run::default();
        for (pos, e) in self.entries.iter().enumerate() {
            if let Some(inst) = &e.base {
                run.ran.push((pos, inst.clone()));
                run.phases = run.phases.union(e.def.phases);
            }
        }
        run
    }
}

impl Run {
    /// `header_filter` over `ctx.response`. An error replaces the response with a 500 (the
    /// head was not sent yet); the caller gets that exit.
    pub fn header_filter(&self, ctx: &mut Ctx) -> Option<Exit> {
        if !self.phases.header_filter {
            return None;
        }
        for (pos, inst) in &self.ran {
            if !inst.def.phases.header_filter {
                continue;
            }
            ctx.enter_plugin(*pos, inst.id);
            let result = catch_unwind(AssertUnwindSafe(|| inst.handler.header_filter(ctx)))
                .unwrap_or_else(|p| Err(PluginError::Internal(panic_message(&*p))));
            if let Err(err) = result {
                return Some(plugin_failed(inst.def, ctx, &err));
            }
        }
        None
    }

    /// `body_filter` over one chunk (`eof` with the last, possibly empty, one). Errors are
    /// logged: the head is already on its way, so the chunk passes as it is.
    pub fn body_filter(&self, ctx: &mut Ctx, chunk: &mut Bytes, eof: bool) {
        if !self.phases.body_filter {
            return;
        }
        for (pos, inst) in &self.ran {
            if !inst.def.phases.body_filter {
                continue;
            }
            ctx.enter_plugin(*pos, inst.id);
            let result = catch_unwind(AssertUnwindSafe(|| {
                inst.handler.body_filter(ctx, chunk, eof)
            }))
            .unwrap_or_else(|p| Err(PluginError::Internal(panic_message(&*p))));
            if let Err(err) = result {
                plugin_failed(inst.def, ctx, &err);
            }
        }
    }

    /// `log`, once the response was sent (or the client went away).
    pub fn log(&self, ctx: &mut Ctx) {
        if !self.phases.log {
            return;
        }
        for (pos, inst) in &self.ran {
            if !inst.def.phases.log {
                continue;
            }
            ctx.enter_plugin(*pos, inst.id);
            if let Err(p) = catch_unwind(AssertUnwindSafe(|| inst.handler.log(ctx))) {
                plugin_failed(inst.def, ctx, &panic_message(&*p));
            }
        }
    }
}
