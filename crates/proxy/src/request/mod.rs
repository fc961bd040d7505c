//! The life of one proxied request: route, check protocol rules, build the upstream request,
//! send it (with retries), and relay the response with Kong's headers.

pub mod forwarded;
pub mod headers;

use crate::body::{self, BufferError, RequestBody, ResponseBody};
use crate::error::ProxyError;
use crate::response;
use crate::snapshot::{CompiledRoute, CompiledService, ServiceTarget, Snapshot};
use crate::state::Shared;
use crate::upstream::{self, AttemptError, Timeouts, pool::PoolKey};
use headers::*;
use http::header::{CONTENT_LENGTH, HOST, VIA};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, Uri, Version};
use http_body::Body;
use hyper::body::Incoming;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

/// What a request knows about the connection it came on.
#[derive(Debug)]
pub struct ConnInfo {
    pub shared: Arc<Shared>,
    pub worker: usize,
    pub peer: SocketAddr,
    pub local: SocketAddr,
    pub tls: bool,
    pub sni: Option<String>,
    /// Whether the peer is in `trusted_ips` (its X-Forwarded-* headers are believed).
    pub peer_trusted: bool,
    /// Header values computed once per connection.
    pub peer_ip: HeaderValue,
    pub local_port: HeaderValue,
}

impl ConnInfo {
    pub fn new(shared: Arc<Shared>, worker: usize, peer: SocketAddr, local: SocketAddr) -> Self {
        ConnInfo {
            peer_trusted: shared.settings.trust.is_trusted(peer.ip()),
            peer_ip: ip_value(peer.ip().to_canonical()),
            local_port: HeaderValue::from(local.port()),
            shared,
            worker,
            peer,
            local,
            tls: false,
            sni: None,
        }
    }
}

/// Entry point from the server: never fails; errors become Kong's responses.
pub async fn handle(
    req: Request<Incoming>,
    conn: Arc<ConnInfo>,
) -> Result<Response<ResponseBody>, Infallible> {
    let started = Instant::now();
    let stats = conn.shared.worker(conn.worker);
    stats.requests.fetch_add(1, Ordering::Relaxed);
    stats.in_flight.fetch_add(1, Ordering::Relaxed);
    let request_id = new_request_id();
    let snapshot = conn.shared.snapshot();
    let (parts, body) = req.into_parts();
    let negotiation = Negotiation::of(&parts.headers);
    let resp = match proxy(&snapshot, &conn, parts, body, &request_id, started).await {
        Ok(r) => r,
        Err(err) => gateway_error(&conn, &err, &negotiation, &request_id, started),
    };
    stats.in_flight.fetch_sub(1, Ordering::Relaxed);
    Ok(resp)
}

/// The request headers that choose an error body's type, kept before the headers move on.
pub(crate) struct Negotiation {
    pub accept: Option<HeaderValue>,
    pub content_type: Option<HeaderValue>,
}

impl Negotiation {
    fn of(h: &HeaderMap) -> Self {
        Negotiation {
            accept: h.get(http::header::ACCEPT).cloned(),
            content_type: h.get(http::header::CONTENT_TYPE).cloned(),
        }
    }
}

fn gateway_error(
    conn: &ConnInfo,
    err: &ProxyError,
    neg: &Negotiation,
    request_id: &HeaderValue,
    started: Instant,
) -> Response<ResponseBody> {
    let rid = request_id.to_str().unwrap_or_default();
    if err.is_upstream_failure() {
        tracing::error!(request_id = rid, error = %err, "proxy error");
    }
    let settings = &conn.shared.settings;
    let mut resp = response::for_error(err, neg, rid, settings.error_default_type);
    add_gateway_headers(conn, resp.headers_mut(), request_id, started);
    resp
}

/// Headers on responses the gateway makes itself.
fn add_gateway_headers(
    conn: &ConnInfo,
    h: &mut HeaderMap,
    request_id: &HeaderValue,
    started: Instant,
) {
    let s = &conn.shared.settings;
    if s.headers.server {
        h.insert(http::header::SERVER, s.server.clone());
    }
    if s.headers.response_latency {
        h.insert(
            X_KONG_RESPONSE_LATENCY,
            int_value(started.elapsed().as_millis() as u64),
        );
    }
    if s.headers.request_id {
        h.insert(X_KONG_REQUEST_ID, request_id.clone());
    }
}

/// 32 hex digits, as Kong's request ids.
fn new_request_id() -> HeaderValue {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let n: u128 = rand::random();
    let mut buf = [0u8; 32];
    for (i, b) in buf.iter_mut().enumerate() {
        *b = HEX[((n >> (124 - i * 4)) & 0xf) as usize];
    }
    HeaderValue::from_bytes(&buf).unwrap_or_else(|_| HeaderValue::from_static("0"))
}

/// The Host of a request: `:authority` for HTTP/2, else the Host header.
fn request_host(parts: &http::request::Parts) -> &str {
    parts
        .uri
        .authority()
        .map(|a| a.as_str())
        .or_else(|| parts.headers.get(HOST).and_then(|h| h.to_str().ok()))
        .unwrap_or("")
}

/// nginx's `$host`: lower-case host name without the port.
fn host_without_port(host: &str) -> String {
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']')
            .next()
            .map_or(host.to_string(), |h| format!("[{h}]"))
    } else {
        host.rsplit_once(':')
            .filter(|(_, p)| p.bytes().all(|b| b.is_ascii_digit()))
            .map_or(host, |(h, _)| h)
            .to_string()
    };
    name.to_ascii_lowercase()
}

use http::header::HeaderName;

async fn proxy(
    snapshot: &Snapshot,
    conn: &ConnInfo,
    parts: http::request::Parts,
    body: Incoming,
    request_id: &HeaderValue,
    started: Instant,
) -> Result<Response<ResponseBody>, ProxyError> {
    let settings = &conn.shared.settings;
    let client_ip = settings.trust.client_ip(conn.peer.ip(), &parts.headers);
    let raw_host = request_host(&parts);
    let route_req = silverback_router::Request {
        method: parts.method.as_str(),
        host: raw_host,
        path: parts.uri.path(),
        https: conn.tls,
        headers: &parts.headers,
        sni: conn.sni.as_deref(),
        src: SocketAddr::new(client_ip, conn.peer.port()),
        dst: conn.local,
    };
    let m = snapshot
        .router
        .find(&route_req)
        .ok_or(ProxyError::NoRoute)?;
    let route = snapshot.routes.get(m.route).ok_or(ProxyError::NoRoute)?;

    // X-Forwarded-* values: the client's own only when it is a trusted proxy.
    let from_client = |name: &HeaderName| {
        if conn.peer_trusted {
            parts.headers.get(name).cloned()
        } else {
            None
        }
    };
    let fwd_proto = from_client(&X_FORWARDED_PROTO)
        .unwrap_or_else(|| HeaderValue::from_static(if conn.tls { "https" } else { "http" }));
    let fwd_host = match from_client(&X_FORWARDED_HOST) {
        Some(h) => h,
        None => host_value(raw_host, parts.headers.get(HOST)),
    };
    if route.https_only && fwd_proto.as_bytes() != b"https" {
        return https_required(route, &fwd_host, &parts.uri);
    }
    let service = route.service.clone().ok_or(ProxyError::NoService)?;
    let fwd_port = from_client(&X_FORWARDED_PORT).unwrap_or_else(|| conn.local_port.clone());
    let fwd_path = match from_client(&X_FORWARDED_PATH) {
        Some(p) => p,
        None => HeaderValue::from_str(parts.uri.path())
            .map_err(|e| ProxyError::BadRequest(e.to_string()))?,
    };
    let fwd_prefix = from_client(&X_FORWARDED_PREFIX).or_else(|| {
        let prefix = m.path.get(..m.matched_len).unwrap_or_default();
        (route.strip_path && !prefix.is_empty() && prefix != "/")
            .then(|| HeaderValue::from_str(prefix).ok())
            .flatten()
    });

    let upstream_path = silverback_router::upstream_path(
        route.strip_path,
        route.path_handling,
        service.path.as_deref(),
        &m.path,
        m.matched_len,
    );
    let uri = upstream_uri(&parts.uri, &upstream_path)?;

    let client_host = parts.headers.get(HOST).cloned().or_else(|| {
        parts
            .uri
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
    });
    let version = parts.version;
    let method = parts.method;
    let mut headers = Outgoing::new(parts.headers);
    let client_ip_value = if client_ip == conn.peer.ip().to_canonical() {
        conn.peer_ip.clone()
    } else {
        ip_value(client_ip)
    };
    // Kong appends the connecting peer to a received X-Forwarded-For, else sends the client.
    if headers.contains(&X_FORWARDED_FOR) {
        headers.append_list(X_FORWARDED_FOR, conn.peer_ip.as_bytes());
    } else {
        headers.set_new(X_FORWARDED_FOR, client_ip_value.clone());
    }
    headers.set_new(X_FORWARDED_PROTO, fwd_proto);
    headers.set_new(X_FORWARDED_HOST, fwd_host);
    headers.set_new(X_FORWARDED_PORT, fwd_port);
    headers.set_new(X_FORWARDED_PATH, fwd_path);
    match fwd_prefix {
        Some(p) => headers.set_new(X_FORWARDED_PREFIX, p),
        None => headers.remove(&X_FORWARDED_PREFIX),
    }
    headers.set_new(X_REAL_IP, client_ip_value);
    let via = if version == Version::HTTP_2 {
        &settings.via_h2
    } else {
        &settings.via_h1
    };
    if headers.contains(&VIA) {
        headers.append_list(VIA, via.as_bytes());
    } else {
        headers.set_new(VIA, via.clone());
    }
    if settings.headers_upstream.request_id {
        headers.set_new(X_KONG_REQUEST_ID, request_id.clone());
    } else {
        headers.remove(&X_KONG_REQUEST_ID);
    }

    let req_body = read_body(body, route, settings).await?;
    match req_body.known_len() {
        Some(0) if method_has_no_body(&method) => headers.remove(&CONTENT_LENGTH),
        Some(n) => headers.set(CONTENT_LENGTH, int_value(n)),
        None => {}
    }
    let head = UpstreamHead {
        method,
        uri,
        headers,
        preserved_host: if route.preserve_host {
            client_host
        } else {
            None
        },
    };
    let sent_at = Instant::now();
    let resp = send_with_retries(conn, &service, &head, req_body).await?;
    let upstream_latency = sent_at.elapsed();
    Ok(finish_response(
        conn,
        route,
        resp,
        request_id,
        sent_at.duration_since(started),
        upstream_latency,
    ))
}

fn method_has_no_body(m: &Method) -> bool {
    matches!(
        *m,
        Method::GET | Method::HEAD | Method::DELETE | Method::OPTIONS
    )
}

/// An address as a header value.
pub(crate) fn ip_value(ip: IpAddr) -> HeaderValue {
    HeaderValue::from_str(&ip.to_string()).unwrap_or_else(|_| HeaderValue::from_static("unknown"))
}

/// The origin-form URI sent upstream: the request's own when the path is unchanged (no copy).
fn upstream_uri(original: &Uri, upstream_path: &str) -> Result<Uri, ProxyError> {
    let escaped = silverback_router::escape_path(upstream_path);
    if escaped == original.path()
        && let Some(pq) = original.path_and_query()
    {
        return Ok(Uri::from(pq.clone()));
    }
    let text = match original.query() {
        Some(q) => format!("{escaped}?{q}"),
        None => escaped.into_owned(),
    };
    text.parse()
        .map_err(|e| ProxyError::BadRequest(format!("upstream uri: {e}")))
}

/// nginx's `$host` as a header value: lower case, without the port. The Host header itself is
/// reused when it already has that form.
fn host_value(raw_host: &str, host_header: Option<&HeaderValue>) -> HeaderValue {
    let plain = !raw_host.is_empty()
        && !raw_host.contains(':')
        && !raw_host.bytes().any(|b| b.is_ascii_uppercase());
    if plain && let Some(h) = host_header.filter(|h| h.as_bytes() == raw_host.as_bytes()) {
        return h.clone();
    }
    HeaderValue::from_str(&host_without_port(raw_host))
        .unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// `protocols: [https]` reached over http: 426, or the configured redirect.
fn https_required(
    route: &CompiledRoute,
    fwd_host: &HeaderValue,
    uri: &Uri,
) -> Result<Response<ResponseBody>, ProxyError> {
    let fwd_host = fwd_host.to_str().unwrap_or_default();
    let code = route.https_redirect_status_code;
    if code == 426 {
        return Err(ProxyError::HttpsRequired);
    }
    let status = StatusCode::from_u16(code).map_err(|e| ProxyError::Internal(e.to_string()))?;
    let path_and_query = uri.path_and_query().map_or("/", |p| p.as_str());
    Ok(response::redirect(
        status,
        &format!("https://{fwd_host}{path_and_query}"),
    ))
}

async fn read_body(
    body: Incoming,
    route: &CompiledRoute,
    settings: &crate::state::ProxySettings,
) -> Result<RequestBody, ProxyError> {
    if body.is_end_stream() {
        return Ok(RequestBody::Empty);
    }
    let max = settings.client_max_body_size;
    if max > 0 && body.size_hint().lower() > max {
        return Err(ProxyError::BodyTooLarge);
    }
    if !route.request_buffering {
        return Ok(RequestBody::Stream(body));
    }
    body::buffer(
        body,
        settings.client_body_buffer_size,
        max,
        &settings.temp_dir,
    )
    .await
    .map_err(|e| match e {
        BufferError::TooLarge => ProxyError::BodyTooLarge,
        BufferError::Client(e) => ProxyError::ClientBody(e.to_string()),
        BufferError::Io(e) => ProxyError::Internal(format!("buffering request body: {e}")),
    })
}

/// The parts of the upstream request that do not change between attempts.
struct UpstreamHead {
    method: Method,
    uri: Uri,
    headers: Outgoing,
    preserved_host: Option<HeaderValue>,
}

/// Up to `retries + 1` attempts, each to a newly picked target, on connection failures and
/// timeouts. A request that may already have reached the upstream is only retried when its
/// method is idempotent and its body can be replayed, as nginx does.
async fn send_with_retries(
    conn: &ConnInfo,
    service: &CompiledService,
    head: &UpstreamHead,
    body: RequestBody,
) -> Result<upstream::h1::Response, ProxyError> {
    let settings = &conn.shared.settings;
    let timeouts = Timeouts {
        connect: service.connect_timeout,
        write: service.write_timeout,
        read: service.read_timeout,
    };
    let attempts = service.retries.saturating_add(1);
    let idempotent = head.method.is_idempotent();
    let target = head.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut tried: Vec<usize> = Vec::new();
    let mut body = Some(body);
    let mut last_err = None;
    for attempt in 0..attempts {
        let (addr, host_header, picked) = pick_target(conn, service, &tried).await?;
        let Some(this_body) = body.take() else { break };
        let next_body = if attempt + 1 < attempts {
            this_body.replay()
        } else {
            None
        };
        let host = head.preserved_host.as_ref().or(host_header.as_ref());
        let req = upstream::h1::Head {
            method: &head.method,
            target,
            host,
            headers: &head.headers,
        };
        let key = PoolKey { addr };
        match upstream::send(&key, &settings.keepalive, &timeouts, req, this_body).await {
            Ok(resp) => return Ok(resp),
            Err((e, sent)) => {
                tracing::warn!(
                    upstream = %addr,
                    attempt = attempt + 1,
                    error = %e,
                    "upstream attempt failed"
                );
                if let AttemptError::ClientBody(reason) = e {
                    return Err(ProxyError::ClientBody(reason));
                }
                if let Some(t) = picked {
                    tried.push(t);
                }
                last_err = Some(e);
                if (sent && !idempotent) || next_body.is_none() {
                    break;
                }
                body = next_body;
            }
        }
    }
    Err(match last_err {
        Some(AttemptError::Timeout { write }) => {
            ProxyError::Timeout(if write { "write" } else { "read" })
        }
        Some(AttemptError::ConnectTimeout) => ProxyError::Timeout("connect"),
        Some(AttemptError::Connect(e)) => ProxyError::Connect(e.to_string()),
        Some(AttemptError::Io(e)) => ProxyError::Upstream(e.to_string()),
        Some(AttemptError::Upstream(e)) => ProxyError::Upstream(e),
        Some(AttemptError::ClientBody(e)) => ProxyError::ClientBody(e),
        None => ProxyError::Internal("no attempt made".into()),
    })
}

/// Where the next attempt goes: a balanced target of the upstream, or the service host.
async fn pick_target(
    conn: &ConnInfo,
    service: &CompiledService,
    tried: &[usize],
) -> Result<(SocketAddr, Option<HeaderValue>, Option<usize>), ProxyError> {
    let dns = &conn.shared.dns;
    let resolve_err = |e: silverback_balancer::DnsError| ProxyError::NameResolution(e.to_string());
    match &service.target {
        ServiceTarget::Upstream(b) => {
            let (i, t) = b.pick(tried).ok_or(ProxyError::NoPeer)?;
            let ip = match t.ip {
                Some(ip) => ip,
                None => dns.resolve(&t.host).await.map_err(resolve_err)?,
            };
            let host = service.host_headers.get(i).cloned().flatten();
            Ok((SocketAddr::new(ip, t.port), host, Some(i)))
        }
        ServiceTarget::Host => {
            let ip = match service.host_ip {
                Some(ip) => ip,
                None => dns.resolve(&service.host).await.map_err(resolve_err)?,
            };
            let host = service.host_headers.first().cloned().flatten();
            Ok((SocketAddr::new(ip, service.port), host, None))
        }
    }
}

/// The client's response: the upstream's head with hop-by-hop headers removed and Kong's added.
fn finish_response(
    conn: &ConnInfo,
    route: &CompiledRoute,
    resp: upstream::h1::Response,
    request_id: &HeaderValue,
    proxy_latency: std::time::Duration,
    upstream_latency: std::time::Duration,
) -> Response<ResponseBody> {
    let s = &conn.shared.settings;
    let status = resp.status;
    let mut h = resp.headers;
    strip_hop_by_hop(&mut h);
    if s.headers.via {
        if h.contains_key(VIA) {
            append_list(&mut h, VIA, s.via_h1.as_bytes());
        } else {
            h.insert(VIA, s.via_h1.clone());
        }
    }
    if s.headers.upstream_latency {
        h.insert(
            X_KONG_UPSTREAM_LATENCY,
            int_value(upstream_latency.as_millis() as u64),
        );
    }
    if s.headers.proxy_latency {
        h.insert(
            X_KONG_PROXY_LATENCY,
            int_value(proxy_latency.as_millis() as u64),
        );
    }
    if s.headers.upstream_status {
        h.insert(
            X_KONG_UPSTREAM_STATUS,
            int_value(u64::from(status.as_u16())),
        );
    }
    if s.headers.request_id {
        h.insert(X_KONG_REQUEST_ID, request_id.clone());
    }
    // Whole bodies are sent as read; others stream (response_buffering only changes how much
    // nginx reads ahead, which this relay does not need).
    let _ = route.response_buffering;
    let body = match resp.body {
        upstream::h1::ResponseBody::Complete(b) if b.is_empty() => ResponseBody::Empty,
        upstream::h1::ResponseBody::Complete(b) => ResponseBody::Full(Some(b)),
        upstream::h1::ResponseBody::Stream(b) => ResponseBody::Upstream(b),
    };
    let mut out = Response::new(body);
    *out.status_mut() = status;
    *out.headers_mut() = h;
    out
}
