//! What the proxy knows about a request once it has been served, for the `log` phase (the
//! facts behind Kong's `kong.log.serialize`: sizes and latencies). The proxy fills it as the
//! request goes; the route, service, consumer, client address and response status are on
//! [`super::Ctx`] itself.

use std::time::Duration;

/// Sizes and latencies of a served request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
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
}

/// Whole milliseconds, as Kong's latencies.
pub fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
