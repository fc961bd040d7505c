//! What a plugin implements: handlers for the phases a request lives through, in order:
//! `rewrite` (before routing; global plugins only), `access` (after routing, in priority order,
//! where authentication happens), `header_filter` (the response head), `body_filter` (each
//! response chunk) and `log` (after the response was sent). Responses the gateway or a plugin
//! makes (401, 429 ...) still go through `header_filter`, `body_filter` and `log`.

use crate::pdk::{Ctx, Exit};
use bytes::Bytes;
use std::future::Future;
use std::pin::Pin;

/// A plugin failure: the request gets a 500 with its request id and the reason is logged.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("{0}")]
    Internal(String),
    /// A store or cache the plugin needs did not answer.
    #[error("{what}: {reason}")]
    Backend { what: &'static str, reason: String },
}

impl PluginError {
    pub fn internal(reason: impl Into<String>) -> Self {
        PluginError::Internal(reason.into())
    }
}

/// What the request does after an `access` or `rewrite` handler.
#[derive(Debug)]
pub enum Flow {
    Continue,
    /// Answer the client with this response (Kong's `kong.response.exit`); later access
    /// handlers do not run, response phases still do.
    Exit(Exit),
}

pub type Outcome = Result<Flow, PluginError>;

/// A phase handler's result: ready at once (no allocation: the common case), or a future for
/// handlers that wait on I/O (a store or Redis).
pub enum Phase<'a> {
    Ready(Outcome),
    Pending(Pin<Box<dyn Future<Output = Outcome> + Send + 'a>>),
}

impl Phase<'_> {
    pub const CONTINUE: Phase<'static> = Phase::Ready(Ok(Flow::Continue));

    pub fn exit(exit: Exit) -> Self {
        Phase::Ready(Ok(Flow::Exit(exit)))
    }
}

impl From<Outcome> for Phase<'_> {
    fn from(o: Outcome) -> Self {
        Phase::Ready(o)
    }
}

impl From<Exit> for Phase<'_> {
    fn from(e: Exit) -> Self {
        Phase::exit(e)
    }
}

/// The phases a plugin type implements, so a chain runs (and a request pays for) only those.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Phases {
    pub rewrite: bool,
    pub access: bool,
    pub header_filter: bool,
    pub body_filter: bool,
    pub log: bool,
    /// `log` builds Kong's log record (`pdk::serialize`), which needs the response head as
    /// sent: the proxy keeps a copy of it only for chains with such a plugin.
    pub serialize: bool,
    /// `log` reads the upstream attempts with their timing and host (tracing): the proxy
    /// records them for chains with such a plugin (and for those that serialize).
    pub tries: bool,
}

impl Phases {
    pub const ACCESS: Phases = Phases {
        rewrite: false,
        access: true,
        header_filter: false,
        body_filter: false,
        log: false,
        serialize: false,
        tries: false,
    };

    pub fn union(self, o: Phases) -> Phases {
        Phases {
            rewrite: self.rewrite || o.rewrite,
            access: self.access || o.access,
            header_filter: self.header_filter || o.header_filter,
            body_filter: self.body_filter || o.body_filter,
            log: self.log || o.log,
            serialize: self.serialize || o.serialize,
            tries: self.tries || o.tries,
        }
    }
}

/// A configured plugin instance, built once per config snapshot from its validated config.
/// Every method has a default that does nothing; [`Phases`] in the plugin's definition says
/// which ones it overrides.
pub trait Handler: Send + Sync + 'static {
    fn rewrite<'a>(&'a self, _ctx: &'a mut Ctx) -> Phase<'a> {
        Phase::CONTINUE
    }

    fn access<'a>(&'a self, _ctx: &'a mut Ctx) -> Phase<'a> {
        Phase::CONTINUE
    }

    fn header_filter(&self, _ctx: &mut Ctx) -> Result<(), PluginError> {
        Ok(())
    }

    /// Called for each chunk of the response body; the last call has `eof` set, with the last
    /// chunk when the body knew it was the last, else with an empty chunk after it.
    /// The response keeps its Content-Length framing unless `header_filter` cleared
    /// Content-Length: a plugin that changes the body's length must do so, as in Kong.
    fn body_filter(
        &self,
        _ctx: &mut Ctx,
        _chunk: &mut Bytes,
        _eof: bool,
    ) -> Result<(), PluginError> {
        Ok(())
    }

    fn log(&self, _ctx: &Ctx) {}

    /// Whether this instance reads the request body in `access` (then the proxy reads it into
    /// memory first, up to `client_body_buffer_size`).
    fn reads_body(&self) -> bool {
        false
    }

    /// Asked only when [`Handler::reads_body`] is true: whether this request's body is one the
    /// instance reads (its content type, say), so other bodies keep streaming.
    fn reads_body_of(&self, _headers: &silverback_http::Fields) -> bool {
        true
    }
}
