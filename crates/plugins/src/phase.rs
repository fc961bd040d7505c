//! The phases a plugin can act in, in the order a request lives through them:
//! `rewrite` (before routing; global plugins only), `access` (after routing and authentication
//! order), `header_filter` (response head), `body_filter` (each response chunk), `log` (after the
//! response was sent). Responses the gateway makes itself (auth failures, rate limits) still go
//! through `header_filter` and `log`.

use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use serde_json::Value;
use std::future::Future;
use std::pin::Pin;

/// A response a plugin makes instead of proxying (Kong's `kong.response.exit`).
#[derive(Debug, Clone)]
pub struct Exit {
    pub status: StatusCode,
    pub headers: HeaderMap,
    /// `None` gives Kong's default body for the status; a JSON body is sent as is.
    pub body: Option<Value>,
}

/// What the request does after a phase handler.
pub enum Flow {
    Continue,
    Exit(Exit),
    /// The handler needs I/O (a store or Redis lookup); the proxy awaits it.
    Wait(Pin<Box<dyn Future<Output = Flow> + Send>>),
}

/// The per-request state plugins read and change.
#[derive(Debug, Default)]
pub struct Ctx {
    /// Headers of the request as they will be sent upstream.
    pub request_headers: HeaderMap,
    /// Named and positional captures of the matched regex path (Kong's `uri_captures`).
    pub uri_captures: Vec<(String, String)>,
    /// Headers of the response as they will be sent to the client (header_filter).
    pub response_headers: HeaderMap,
    pub response_status: u16,
}

/// A configured plugin instance; every method has a default that does nothing.
pub trait Handler: Send + Sync + 'static {
    fn rewrite(&self, _ctx: &mut Ctx) -> Flow {
        Flow::Continue
    }
    fn access(&self, _ctx: &mut Ctx) -> Flow {
        Flow::Continue
    }
    fn header_filter(&self, _ctx: &mut Ctx) {}
    fn body_filter(&self, _ctx: &mut Ctx, _chunk: &mut Bytes, _eof: bool) {}
    fn log(&self, _ctx: &Ctx) {}
}
