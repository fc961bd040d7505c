//! Sending a request to a grpc/grpcs service: over HTTP/2 (`upstream::h2`), with the request
//! path as the client sent it (nginx's `grpc_pass` has no upstream URI), `:authority` set as
//! Kong sets the Host, and `te: trailers`. A request is retried on another target only while it
//! has not been handed to a connection (its body streams, so it cannot be replayed).

use crate::body::{RequestBody, ResponseBody};
use crate::error::ProxyError;
use crate::http::Fields;
use crate::request::ConnInfo;
use crate::request::send::pick_target;
use crate::snapshot::CompiledService;
use crate::upstream::h2::{self, H2Body, H2RequestBody};
use crate::upstream::{AttemptError, Timeouts};
use http::header::{HOST, TE};
use http::uri::PathAndQuery;
use http::{HeaderValue, Method, StatusCode};

/// Proxies one gRPC call; the response head, and its body (data, then trailers) to relay.
pub(crate) async fn send(
    conn: &ConnInfo,
    service: &CompiledService,
    method: &Method,
    target: &PathAndQuery,
    fields: &Fields,
    preserved_host: Option<&HeaderValue>,
    body: RequestBody<'_>,
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
        // Consistent hashing has no request value here: gRPC calls go by the ring's first address.
        let crate::request::send::Picked {
            addr,
            host: host_header,
            ..
        } = pick_target(conn, service, 0, &tried).await?;
        let Some(body) = request.take() else { break };
        let authority = match preserved_host.or(host_header.as_ref()) {
            Some(h) => String::from_utf8_lossy(h.as_bytes()).into_owned(),
            None => addr.to_string(),
        };
        let uri = format!("http://{authority}{}", target.as_str());
        let mut req = http::Request::new(body);
        *req.method_mut() = method.clone();
        *req.uri_mut() = uri
            .parse()
            .map_err(|e| ProxyError::BadRequest(format!("upstream uri: {e}")))?;
        *req.version_mut() = http::Version::HTTP_2;
        *req.headers_mut() = headers.clone();
        match h2::send(addr, &timeouts, req).await {
            Ok(resp) => {
                let (parts, incoming) = resp.into_parts();
                let body = ResponseBody::H2(Box::new(H2Body::new(incoming, timeouts.read)));
                return Ok((parts.status, Fields::from_map(parts.headers), body));
            }
            Err((e, unsent)) => {
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
        Some(e) => ProxyError::Upstream(e.to_string()),
        None => ProxyError::Internal("no attempt made".into()),
    })
}
