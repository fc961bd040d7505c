//! Sending a request to a grpc/grpcs service: over HTTP/2 (`upstream::h2`; over TLS to grpcs
//! services, with the service's TLS settings as https services have them), with the request
//! path as the client sent it (nginx's `grpc_pass` has no upstream URI), `:authority` set as
//! Kong sets the Host, and `te: trailers`. A request is retried on another target only while it
//! has not been handed to a connection (its body streams, so it cannot be replayed).

use crate::body::{RequestBody, ResponseBody};
use crate::error::ProxyError;
use crate::http::Fields;
use crate::request::ConnInfo;
use crate::request::send::{Picked, connection_key, pick_target};
use crate::snapshot::CompiledService;
use crate::upstream::h2::{self, H2Body, H2RequestBody};
use crate::upstream::{AttemptError, Timeouts};
use http::header::{HOST, TE};
use http::uri::PathAndQuery;
use http::{HeaderValue, Method, StatusCode};

/// Proxies one gRPC call; the response head, and its body (data, then trailers) to relay.
/// `hash` is the balancer's hash of the request (consistent hashing), `served` collects the
/// attempts for the log plugins.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn send(
    conn: &ConnInfo,
    service: &CompiledService,
    method: &Method,
    target: &PathAndQuery,
    fields: &Fields,
    preserved_host: Option<&HeaderValue>,
    body: RequestBody<'_>,
    hash: u32,
    started: std::time::Instant,
    mut served: Option<&mut silverback_plugins::pdk::Served>,
) -> Result<(StatusCode, Fields, ResponseBody), ProxyError> {
    let body: H2RequestBody = match body.detach() {
        Some(b) => Box::pin(b),
        // The pipeline buffers HTTP/1 bodies for HTTP/2 upstreams.
        None => return Err(ProxyError::Internal("unbuffered HTTP/1 body".into())),
    };
    let mut headers = fields.to_map();
    headers.remove(HOST);
    headers.insert(TE, HeaderValue::from_static("trailers"));
    let mut request = Some(body);
    let timeouts = Timeouts {
        connect: service.connect_timeout,
        write: service.write_timeout,
        read: service.read_timeout,
    };
    let mut tried = Vec::new();
    let mut last_err = None;
    for attempt in 0..service.retries.saturating_add(1) {
        let picked: Picked<'_> = pick_target(conn, service, hash, &tried).await?;
        let addr = picked.addr;
        let Some(body) = request.take() else { break };
        let host = preserved_host.or(picked.host.as_ref());
        let authority = match host {
            Some(h) => String::from_utf8_lossy(h.as_bytes()).into_owned(),
            None => addr.to_string(),
        };
        let (tls, key) = connection_key(service, host, addr);
        let scheme = if tls.is_some() { "https" } else { "http" };
        let uri = format!("{scheme}://{authority}{}", target.as_str());
        let mut req = http::Request::new(body);
        *req.method_mut() = method.clone();
        *req.uri_mut() = uri
            .parse()
            .map_err(|e| ProxyError::BadRequest(format!("upstream uri: {e}")))?;
        *req.version_mut() = http::Version::HTTP_2;
        *req.headers_mut() = headers.clone();
        if let Some(s) = served.as_deref_mut() {
            picked.record_try(s, started);
        }
        let sent_at = picked.peer.as_ref().map(|_| std::time::Instant::now());
        match h2::send(&key, tls.as_ref(), &timeouts, req).await {
            Ok(resp) => {
                picked.report_status(resp.status().as_u16(), sent_at);
                let (parts, incoming) = resp.into_parts();
                let body = ResponseBody::H2(Box::new(H2Body::new(incoming, timeouts.read)));
                return Ok((parts.status, Fields::from_map(parts.headers), body));
            }
            Err((e, unsent)) => {
                let timeout = picked.report_failure(&e);
                if let Some(last) = served.as_deref_mut().and_then(|s| s.tries.last_mut()) {
                    last.failed_status = Some(if timeout { 504 } else { 502 });
                    last.ended = Some(started.elapsed());
                }
                tracing::warn!(
                    upstream = %addr,
                    attempt = attempt + 1,
                    error = %e,
                    "gRPC upstream attempt failed"
                );
                tried.push(addr);
                request = unsent.map(|r| r.into_body());
                last_err = Some(e);
            }
        }
    }
    Err(match last_err {
        Some(AttemptError::Timeout { .. }) => ProxyError::Timeout("read"),
        Some(AttemptError::ConnectTimeout) => ProxyError::Timeout("connect"),
        Some(AttemptError::Connect(e)) => ProxyError::Connect(e.to_string()),
        Some(e @ AttemptError::Tls(_)) => ProxyError::Connect(e.to_string()),
        Some(e) => ProxyError::Upstream(e.to_string()),
        None => ProxyError::Internal("no attempt made".into()),
    })
}
