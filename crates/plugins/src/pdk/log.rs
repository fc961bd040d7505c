//! What the proxy knows about a request once it has been served, for the `log` phase (the
//! facts behind Kong's `kong.log.serialize`: sizes, latencies, the upstream request and its
//! attempts). The proxy fills it as the request goes; the route, service, consumer, client
//! address and response status are on [`super::Ctx`] itself. The record log plugins send is
//! built from both in `serialize.rs`.

use http::uri::PathAndQuery;
use std::net::SocketAddr;
use std::time::Duration;

/// Sizes and latencies of a served request.
#[derive(Debug, Clone, Default)]
pub struct Served {
    /// Bytes received from the client: request head and declared body (nginx's
    /// `$request_length`; a chunked request body is not counted).
    pub request_size: u64,
    /// Bytes sent to the client: response head and body (nginx's `$bytes_sent`, without
    /// chunked framing). HTTP/2 heads are not counted.
    pub response_size: u64,
    /// Kong's `latencies.kong`: from the request's start until it was sent upstream, or until
    /// the gateway or a plugin made the response itself.
    pub kong_latency: Option<Duration>,
    /// Kong's `latencies.proxy`: from sending the request upstream until its response head
    /// arrived; `None` when nothing was proxied.
    pub upstream_latency: Option<Duration>,
    /// Kong's `latencies.request`: the whole request, set just before `log` runs.
    pub request_latency: Duration,
    /// The path and query sent upstream (nginx's `$upstream_uri`); `None` when nothing was.
    pub upstream_uri: Option<PathAndQuery>,
    /// The upstream's response status (nginx's `$upstream_status`).
    pub upstream_status: Option<u16>,
    /// Each attempt to reach the upstream, in order (Kong's `balancer_data.tries`).
    pub tries: Vec<Try>,
    /// The name of the host the last attempt went to (Kong's `balancer_data.hostname`: the
    /// service host, or the upstream's `host_header`, else the target's host).
    pub upstream_host_name: Option<std::sync::Arc<str>>,
    /// The request's headers as the access phase left them, before the proxy added its own
    /// (`X-Forwarded-*`, `Via` ...): what Kong's log record shows. Kept only for chains with a
    /// plugin that serializes.
    pub request_headers: Option<silverback_http::Fields>,
}

/// One attempt to reach the upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Try {
    pub addr: SocketAddr,
    /// When the attempt started, after the request did.
    pub started: Duration,
    /// When a failed attempt ended (the failure was known), after the request started.
    pub ended: Option<Duration>,
    /// Set when the attempt failed: nginx's state code for it (502, 504).
    pub failed_status: Option<u16>,
}

/// Whole milliseconds, as Kong's latencies.
pub fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
