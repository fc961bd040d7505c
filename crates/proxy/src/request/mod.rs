//! The life of one proxied request: route, check protocol rules, build the upstream request,
//! send it (with retries), and relay the response with Kong's headers.
//!
//! The pipeline works on [`ClientRequest`] and answers a [`Reply`], whichever protocol the client
//! used: our HTTP/1.1 server hands requests over as parsed; hyper-served (HTTP/2) ones are
//! converted by [`handle_hyper`].

pub mod forwarded;
pub mod headers;
pub(crate) mod plugins;
pub(crate) mod send;

use crate::body::{self, BufferError, ClientBodyError, ClientStream, RequestBody, ResponseBody};
use crate::error::ProxyError;
use crate::http::Fields;
use crate::response;
use crate::snapshot::{CompiledRoute, CompiledService, Snapshot};
use crate::state::Shared;
use crate::upstream;
use headers::*;
use http::header::{CONTENT_LENGTH, HeaderName, VIA};
use http::uri::PathAndQuery;
use http::{HeaderValue, Method, StatusCode, Version};
use http_body::Body;
use plugins::Plugged;
use send::{UpstreamHead, send_with_retries};
use silverback_balancer::HashRequest;
use silverback_plugins::pdk::ResponseSource;
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

/// A client request, whatever protocol it came over.
pub struct ClientRequest<'a> {
    pub method: Method,
    /// The request target as sent (path not yet normalized).
    pub target: PathAndQuery,
    /// The same target's bytes, to forward parts of it without copying.
    pub raw_target: bytes::Bytes,
    pub version: Version,
    /// `:authority` (HTTP/2) or the authority of an absolute-form target; else the Host field.
    pub authority: Option<HeaderValue>,
    /// Fields as received, hop-by-hop ones already dropped.
    pub fields: Fields,
    pub body: RequestBody<'a>,
    /// An HTTP/1.1 WebSocket handshake (`Upgrade: websocket`), which may turn the connection
    /// into a tunnel.
    pub websocket: bool,
}

/// The response to send to the client.
pub struct Reply {
    pub status: StatusCode,
    pub fields: Fields,
    pub body: ResponseBody,
}

impl Reply {
    /// As a hyper response (HTTP/2 clients).
    pub fn into_http(self) -> http::Response<ResponseBody> {
        let mut resp = http::Response::new(self.body);
        *resp.status_mut() = self.status;
        *resp.headers_mut() = self.fields.to_map();
        resp
    }
}

/// Runs one request through the proxy; never fails: errors become Kong's responses.
pub async fn handle(mut req: ClientRequest<'_>, conn: &ConnInfo) -> Reply {
    let started = Instant::now();
    let stats = conn.shared.worker(conn.worker);
    stats.requests.fetch_add(1, Ordering::Relaxed);
    stats.in_flight.fetch_add(1, Ordering::Relaxed);
    let request_id = new_request_id();
    let snapshot = conn.shared.snapshot();
    let mut plugged = None;
    let (reply, source) = match proxy(
        &snapshot,
        conn,
        &mut req,
        &request_id,
        started,
        &mut plugged,
    )
    .await
    {
        Ok(r) => r,
        Err(err) => {
            let mut reply = gateway_error(conn, &err, &req.fields, &request_id, started);
            if req.version == Version::HTTP_2 {
                crate::grpc::error_form(&mut reply, &err, &req.fields);
            }
            (reply, ResponseSource::Error)
        }
    };
    if let Some(log) = &conn.shared.settings.access_log {
        access_log_entry(log, conn, &req, &reply, plugged.as_ref());
    }
    let reply = match plugged {
        Some(mut p) => {
            // The response phases read the request's headers too (Kong's `kong.request`).
            p.ctx.request.headers = std::mem::take(&mut req.fields);
            plugins::respond(conn, reply, source, p)
        }
        // No route (or no access phase): global plugins still see the response.
        None if !snapshot.plugins.global.is_empty() => {
            let client_ip = client_ip(conn, &req);
            let ctx = plugins::new_ctx(&snapshot, conn, &mut req, client_ip, &request_id, started);
            let run = snapshot.plugins.global.without_access();
            plugins::respond(conn, reply, source, Plugged { ctx, run })
        }
        None => reply,
    };
    stats.in_flight.fetch_sub(1, Ordering::Relaxed);
    reply
}

/// Hands the request's access log line to the writer (only cheap clones here). Credentials an
/// authentication plugin read from the query are redacted as in the log plugins' records.
fn access_log_entry(
    log: &crate::access_log::AccessLog,
    conn: &ConnInfo,
    req: &ClientRequest<'_>,
    reply: &Reply,
    plugged: Option<&Plugged>,
) {
    let secrets = plugged.map(|p| p.ctx.secret_names()).unwrap_or_default();
    let target = if secrets.is_empty() {
        req.target.clone()
    } else {
        let redacted = silverback_plugins::pdk::serialize::redact_query(req.target.as_str(), |n| {
            secrets.iter().any(|s| s.eq_ignore_ascii_case(n))
        });
        PathAndQuery::from_maybe_shared(bytes::Bytes::from(redacted.into_owned()))
            .unwrap_or_else(|_| PathAndQuery::from_static("/"))
    };
    log.record(crate::access_log::AccessEntry {
        client: client_ip(conn, req),
        time: std::time::SystemTime::now(),
        method: req.method.clone(),
        target,
        version: req.version,
        status: reply.status.as_u16(),
        body_bytes: http_body::Body::size_hint(&reply.body).exact(),
        referer: req.fields.get_value("referer"),
        user_agent: req.fields.get_value("user-agent"),
    });
}

/// The client's address, after `trusted_ips` and `real_ip_header`.
fn client_ip(conn: &ConnInfo, req: &ClientRequest<'_>) -> IpAddr {
    let trust = &conn.shared.settings.trust;
    trust.client_ip(conn.peer.ip(), req.fields.get_all(&trust.real_ip_header))
}

/// Entry point for hyper-served connections (HTTP/2).
pub async fn handle_hyper(
    req: http::Request<hyper::body::Incoming>,
    conn: Arc<ConnInfo>,
) -> Result<http::Response<ResponseBody>, Infallible> {
    let (parts, body) = req.into_parts();
    let target = parts
        .uri
        .path_and_query()
        .cloned()
        .unwrap_or_else(|| PathAndQuery::from_static("/"));
    let authority = parts
        .uri
        .authority()
        .and_then(|a| HeaderValue::from_str(a.as_str()).ok());
    let mut fields = Fields::from_map(parts.headers);
    for name in [
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "expect",
    ] {
        fields.remove(name);
    }
    let body = if body.is_end_stream() {
        RequestBody::Empty
    } else {
        RequestBody::Stream(ClientStream::Hyper {
            body,
            seen: 0,
            max: conn.shared.settings.client_max_body_size,
        })
    };
    let req = ClientRequest {
        method: parts.method,
        raw_target: bytes::Bytes::copy_from_slice(target.as_str().as_bytes()),
        target,
        version: parts.version,
        authority,
        fields,
        body,
        websocket: false,
    };
    Ok(handle(req, &conn).await.into_http())
}

/// 400 for a request the server could not parse.
pub fn bad_request(conn: &ConnInfo, message: &'static str) -> Reply {
    gateway_error(
        conn,
        &ProxyError::BadRequest(message.into()),
        &Fields::default(),
        &new_request_id(),
        Instant::now(),
    )
}

fn gateway_error(
    conn: &ConnInfo,
    err: &ProxyError,
    request_fields: &Fields,
    request_id: &HeaderValue,
    started: Instant,
) -> Reply {
    let rid = request_id.to_str().unwrap_or_default();
    if err.is_upstream_failure() {
        tracing::error!(request_id = rid, error = %err, "proxy error");
    }
    let settings = &conn.shared.settings;
    let mut reply = response::for_error(err, request_fields, rid, settings.error_default_type);
    add_gateway_headers(conn, &mut reply.fields, request_id, started);
    reply
}

/// Headers on responses the gateway makes itself.
pub(crate) fn add_gateway_headers(
    conn: &ConnInfo,
    f: &mut Fields,
    request_id: &HeaderValue,
    started: Instant,
) {
    let s = &conn.shared.settings;
    if s.headers.server {
        f.set_new(http::header::SERVER, s.server.clone());
    }
    if s.headers.response_latency {
        f.set_new(
            X_KONG_RESPONSE_LATENCY,
            int_value(started.elapsed().as_millis() as u64),
        );
    }
    if s.headers.request_id {
        f.set_new(X_KONG_REQUEST_ID, request_id.clone());
    }
}

thread_local! {
    /// Per-worker id generator, seeded from the OS: ids must be unique, not secret.
    static ID_STATE: std::cell::Cell<u64> = std::cell::Cell::new(rand::random::<u64>() | 1);
}

/// 128 random bits from wyrand (two 64-bit steps).
fn random_u128() -> u128 {
    ID_STATE.with(|s| {
        let next = || {
            let x = s.get().wrapping_add(0xa076_1d64_78bd_642f);
            s.set(x);
            let t = u128::from(x) * u128::from(x ^ 0xe703_7ed1_a0b4_28db);
            ((t >> 64) as u64) ^ (t as u64)
        };
        (u128::from(next()) << 64) | u128::from(next())
    })
}

/// 32 hex digits, as Kong's request ids.
fn new_request_id() -> HeaderValue {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let n = random_u128();
    let mut buf = [0u8; 32];
    for (i, b) in buf.iter_mut().enumerate() {
        *b = HEX[((n >> (124 - i * 4)) & 0xf) as usize];
    }
    HeaderValue::from_bytes(&buf).unwrap_or_else(|_| HeaderValue::from_static("0"))
}

/// The Host without its port, as received (`None` for a bracket left open).
fn host_name(host: &str) -> Option<&str> {
    if host.starts_with('[') {
        host.find(']').map(|i| &host[..=i])
    } else {
        Some(
            host.rsplit_once(':')
                .filter(|(_, p)| p.bytes().all(|b| b.is_ascii_digit()))
                .map_or(host, |(h, _)| h),
        )
    }
}

/// nginx's `$host`: lower-case host name without the port.
fn host_without_port(host: &str) -> String {
    match host_name(host) {
        Some(name) => name.to_ascii_lowercase(),
        None => format!("{host}]").to_ascii_lowercase(),
    }
}

async fn proxy(
    snapshot: &Snapshot,
    conn: &ConnInfo,
    req: &mut ClientRequest<'_>,
    request_id: &HeaderValue,
    started: Instant,
    plugged: &mut Option<Plugged>,
) -> Result<(Reply, ResponseSource), ProxyError> {
    let settings = &conn.shared.settings;
    let client_ip = client_ip(conn, req);
    let client_host = match &req.authority {
        Some(a) => Some(a.clone()),
        None => req.fields.get_value("host"),
    };
    let raw_host = client_host
        .as_ref()
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let route_req = silverback_router::Request {
        method: req.method.as_str(),
        host: raw_host,
        path: req.target.path(),
        https: conn.tls,
        headers: &req.fields,
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
            req.fields
                .get(name.as_str())
                .and_then(|v| HeaderValue::from_bytes(v).ok())
        } else {
            None
        }
    };
    let fwd_proto = from_client(&X_FORWARDED_PROTO)
        .unwrap_or_else(|| HeaderValue::from_static(if conn.tls { "https" } else { "http" }));
    let fwd_host = match from_client(&X_FORWARDED_HOST) {
        Some(h) => h,
        None => host_value(raw_host, client_host.as_ref()),
    };
    if route.https_only && fwd_proto.as_bytes() != b"https" {
        let reply = https_required(conn, route, &fwd_host, &req.target, request_id, started)?;
        return Ok((reply, ResponseSource::Exit));
    }
    if route.grpc
        && let Some(mut reply) = crate::grpc::route_rules(
            req.version,
            &req.fields,
            route.grpc_plain,
            fwd_proto.as_bytes() == b"https",
        )?
    {
        add_gateway_headers(conn, &mut reply.fields, request_id, started);
        return Ok((reply, ResponseSource::Exit));
    }
    let fwd_port = from_client(&X_FORWARDED_PORT).unwrap_or_else(|| conn.local_port.clone());
    let fwd_path = match from_client(&X_FORWARDED_PATH) {
        Some(p) => p,
        None => req
            .raw_target
            .get(..req.target.path().len())
            .map(|_| req.raw_target.slice(..req.target.path().len()))
            .and_then(|b| HeaderValue::from_maybe_shared(b).ok())
            .ok_or_else(|| ProxyError::BadRequest("request path".into()))?,
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
        route.service.as_ref().and_then(|s| s.path.as_deref()),
        &m.path,
        m.matched_len,
    );
    let captures = m.captures;
    // The normalized path, for upstreams that hash on it (what plugins do to the upstream
    // path does not change it, as nginx's `$uri`).
    let hash_path = route
        .service
        .as_ref()
        .filter(|s| s.hash_rule().is_some())
        .map(|_| m.path.to_string());

    // A plugin's limit on the body still to be read: its answer once the limit is crossed,
    // in the format the client's Accept asks for.
    let mut over_limit: Option<(silverback_plugins::Exit, Option<HeaderValue>)> = None;
    // What plugins changed about the upstream request beyond its fields, query and body.
    let mut overrides = plugins::Overrides::default();
    if !route.chain.is_empty() {
        let reads_body = route.chain.reads_body_of(&req.fields);
        if reads_body {
            let body = std::mem::replace(&mut req.body, RequestBody::Empty);
            req.body = read_body(body, true, settings).await?;
        }
        let mut ctx = plugins::new_ctx(snapshot, conn, req, client_ip, request_id, started);
        // Plugins that did not ask for the body see it as unread, whatever its form.
        if reads_body {
            ctx.request
                .set_read_body(plugins::body_for_plugins(&req.body));
        }
        plugins::enter_route(&mut ctx, route, captures.as_ref());
        let (run, mut exit) = route.chain.access(&mut ctx).await;
        if exit.is_none()
            && let Some(limit) = ctx.request.take_body_limit()
        {
            let body = std::mem::replace(&mut req.body, RequestBody::Empty);
            match body.limited(limit.max) {
                Some(b) => {
                    req.body = b;
                    over_limit = Some((limit.exit, ctx.request.headers.get_value("accept")));
                }
                None => exit = Some(limit.exit),
            }
        }
        // The reply is made while the context still holds the request's headers.
        let reply = exit.map(|exit| plugins::exit_reply(conn, exit, &ctx, started));
        overrides = plugins::give_back(&mut ctx, req, run.serializes());
        *plugged = Some(Plugged { ctx, run });
        if let Some(reply) = reply {
            return Ok((reply, ResponseSource::Exit));
        }
    }
    // Crossing the limit while the body is read: the plugin's answer, not a gateway error.
    let limit_exit = |err: ProxyError| match (err, &over_limit) {
        (ProxyError::BodyOverLimit, Some((exit, accept))) => {
            let accept = accept.as_ref().and_then(|a| a.to_str().ok());
            Ok((
                plugins::exit_reply_for(conn, exit.clone(), accept, request_id, started),
                ResponseSource::Exit,
            ))
        }
        (err, _) => Err(err),
    };
    // Kong runs plugins on a route without a service (request-termination, say) first.
    let service = route.service.clone().ok_or(ProxyError::NoService)?;
    let target = upstream_target(
        &req.target,
        overrides.path.as_deref().unwrap_or(&upstream_path),
    )?;
    // Hashed after the access phase (the consumer is known, plugins changed the headers) and
    // before the proxy adds its own headers, as Kong does.
    let hash = service.hash_rule().map(|rule| {
        let ctx = plugged.as_ref().map(|p| &p.ctx);
        rule.value(&HashRequest {
            consumer: ctx.and_then(|c| c.consumer.as_ref()).map(|c| c.id),
            credential: ctx.and_then(|c| c.credential.as_ref()).map(|c| c.id),
            client_ip,
            headers: &req.fields,
            path: hash_path.as_deref().unwrap_or_default(),
            query: req.target.query(),
            captures: captures.as_ref(),
        })
    });

    let fields = &mut req.fields;
    let client_ip_value = if client_ip == conn.peer.ip().to_canonical() {
        conn.peer_ip.clone()
    } else {
        ip_value(client_ip)
    };
    // Kong appends the connecting peer to a received X-Forwarded-For, else sends the client.
    if fields.contains("x-forwarded-for") {
        fields.append_list(X_FORWARDED_FOR, conn.peer_ip.as_bytes());
    } else {
        fields.set_new(X_FORWARDED_FOR, client_ip_value.clone());
    }
    // The client's own copies of the fields the proxy sets go in one pass.
    fields.remove_many(&[
        "x-forwarded-proto",
        "x-forwarded-host",
        "x-forwarded-port",
        "x-forwarded-path",
        "x-forwarded-prefix",
        "x-real-ip",
        "x-kong-request-id",
    ]);
    fields.set_new(X_FORWARDED_PROTO, fwd_proto);
    fields.set_new(X_FORWARDED_HOST, fwd_host);
    fields.set_new(X_FORWARDED_PORT, fwd_port);
    fields.set_new(X_FORWARDED_PATH, fwd_path);
    if let Some(p) = fwd_prefix {
        fields.set_new(X_FORWARDED_PREFIX, p);
    }
    fields.set_new(X_REAL_IP, client_ip_value);
    let via = if req.version == Version::HTTP_2 {
        &settings.via_h2
    } else {
        &settings.via_h1
    };
    if fields.contains("via") {
        fields.append_list(VIA, via.as_bytes());
    } else {
        fields.set_new(VIA, via.clone());
    }
    if settings.headers_upstream.request_id {
        fields.set_new(X_KONG_REQUEST_ID, request_id.clone());
    }
    if req.websocket {
        crate::websocket::ask_upstream(fields);
    }

    let body = std::mem::replace(&mut req.body, RequestBody::Empty);
    // gRPC streams (nginx's grpc_pass does not buffer); HTTP/1 bodies to an HTTP/2 upstream
    // are read first, since the upstream connection sends them from its own task.
    let buffering = if service.grpc {
        req.version != Version::HTTP_2
    } else {
        route.request_buffering
    };
    let body = match read_body(body, buffering, settings).await {
        Ok(b) => b,
        Err(e) => return limit_exit(e),
    };
    match body.known_len() {
        Some(0) if method_has_no_body(&req.method) => fields.remove("content-length"),
        Some(n) => fields.set(CONTENT_LENGTH, int_value(n)),
        None => {}
    }
    let head = UpstreamHead {
        method: &req.method,
        target: &target,
        fields: &req.fields,
        upgrade: req.websocket,
        // A Host a plugin set wins over `preserve_host` and the service's, as in Kong.
        preserved_host: overrides.host.as_ref().or(if route.preserve_host {
            client_host.as_ref()
        } else {
            None
        }),
    };
    let sent_at = Instant::now();
    if let Some(p) = plugged.as_mut() {
        p.ctx.served.kong_latency = Some(sent_at.duration_since(started));
    }
    // The upstream URI and the tries are only for log records and traces: other chains skip
    // them.
    let recording = plugged.as_mut().filter(|p| p.run.records_tries());
    let tries = recording.map(|p| {
        p.ctx.served.upstream_uri = Some(target.clone());
        &mut p.ctx.served
    });
    let rid = request_id.to_str().unwrap_or_default();
    let hash_key = hash.as_ref().map_or(0, |h| h.hash);
    let sent = if service.grpc {
        crate::grpc::send(
            conn,
            &service,
            &req.method,
            &req.target,
            &req.fields,
            head.preserved_host,
            body,
            hash_key,
            started,
            tries,
        )
        .await
    } else {
        send_with_retries(conn, &service, &head, body, hash_key, started, rid, tries)
            .await
            .map(|resp| h1_parts(resp, &service))
    };
    let (status, fields, body) = match sent {
        Ok(r) => r,
        Err(e) => return limit_exit(e),
    };
    let upstream_latency = sent_at.elapsed();
    if let Some(p) = plugged.as_mut() {
        p.ctx.served.upstream_latency = Some(upstream_latency);
        p.ctx.served.upstream_status = Some(status.as_u16());
    }
    let via = if service.grpc {
        &settings.via_h2
    } else {
        &settings.via_h1
    };
    let mut reply = finish_response(
        conn,
        Reply {
            status,
            fields,
            body,
        },
        via,
        request_id,
        sent_at.duration_since(started),
        upstream_latency,
    );
    if let Some(cookie) = hash.and_then(|h| h.set_cookie) {
        set_cookie(&mut reply.fields, &cookie);
    }
    Ok((reply, ResponseSource::Service))
}

/// Adds the hashing cookie the balancer made up, replacing a `Set-Cookie` of the same name
/// from the upstream (Kong's `set_cookie`).
fn set_cookie(fields: &mut Fields, cookie: &str) {
    let Ok(value) = HeaderValue::from_str(cookie) else {
        return;
    };
    let prefix = cookie.split('=').next().unwrap_or_default();
    let same_name = |v: &[u8]| {
        v.strip_prefix(prefix.as_bytes())
            .is_some_and(|rest| rest.first() == Some(&b'='))
    };
    if fields.get_all("set-cookie").any(same_name) {
        let others: Vec<HeaderValue> = fields
            .get_all("set-cookie")
            .filter(|v| !same_name(v))
            .filter_map(|v| HeaderValue::from_bytes(v).ok())
            .collect();
        fields.remove("set-cookie");
        for v in others {
            fields.append(http::header::SET_COOKIE, v);
        }
    }
    fields.append(http::header::SET_COOKIE, value);
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

/// The target sent upstream: the request's own when the path is unchanged (no copy), else the
/// upstream path (escaped as Kong does) with the request's query, which plugins may have changed.
fn upstream_target(
    original: &PathAndQuery,
    upstream_path: &str,
) -> Result<PathAndQuery, ProxyError> {
    let escaped = silverback_router::escape_path(upstream_path);
    if escaped == original.path() {
        return Ok(original.clone());
    }
    let text = match original.query() {
        Some(q) => format!("{escaped}?{q}"),
        None => escaped.into_owned(),
    };
    PathAndQuery::from_maybe_shared(bytes::Bytes::from(text))
        .map_err(|e| ProxyError::BadRequest(format!("upstream uri: {e}")))
}

/// nginx's `$host` as a header value: lower case, without the port. The Host header itself is
/// reused when it already has that form, and copied once when only a port is to go.
fn host_value(raw_host: &str, host_header: Option<&HeaderValue>) -> HeaderValue {
    let value = match host_name(raw_host) {
        Some(name) if !name.bytes().any(|b| b.is_ascii_uppercase()) => {
            if name.len() == raw_host.len()
                && let Some(h) = host_header.filter(|h| h.as_bytes() == raw_host.as_bytes())
            {
                return h.clone();
            }
            HeaderValue::from_str(name)
        }
        _ => HeaderValue::from_str(&host_without_port(raw_host)),
    };
    value.unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// `protocols: [https]` reached over http: 426, or the configured redirect.
fn https_required(
    conn: &ConnInfo,
    route: &CompiledRoute,
    fwd_host: &HeaderValue,
    target: &PathAndQuery,
    request_id: &HeaderValue,
    started: Instant,
) -> Result<Reply, ProxyError> {
    let code = route.https_redirect_status_code;
    if code == 426 {
        return Err(ProxyError::HttpsRequired);
    }
    let status = StatusCode::from_u16(code).map_err(|e| ProxyError::Internal(e.to_string()))?;
    let fwd_host = fwd_host.to_str().unwrap_or_default();
    let mut reply = response::redirect(status, &format!("https://{fwd_host}{}", target.as_str()));
    add_gateway_headers(conn, &mut reply.fields, request_id, started);
    Ok(reply)
}

/// Buffers a streamed request body when `buffering` (the route's `request_buffering`, or a
/// plugin that reads the body) asks for it.
async fn read_body<'a>(
    body: RequestBody<'a>,
    buffering: bool,
    settings: &crate::state::ProxySettings,
) -> Result<RequestBody<'a>, ProxyError> {
    let RequestBody::Stream(stream) = body else {
        return Ok(body);
    };
    let max = settings.client_max_body_size;
    if max > 0 && stream.size_hint().lower() > max {
        return Err(ProxyError::BodyTooLarge);
    }
    if !buffering {
        return Ok(RequestBody::Stream(stream));
    }
    body::buffer(
        stream,
        settings.client_body_buffer_size,
        max,
        &settings.temp_dir,
    )
    .await
    .map_err(|e| match e {
        BufferError::Client(ClientBodyError::TooLarge) => ProxyError::BodyTooLarge,
        BufferError::Client(ClientBodyError::OverLimit) => ProxyError::BodyOverLimit,
        BufferError::Client(e) => ProxyError::ClientBody(e.to_string()),
        BufferError::Io(e) => ProxyError::Internal(format!("buffering request body: {e}")),
    })
}

/// An HTTP/1.1 upstream response as a reply's parts (hop-by-hop fields were dropped while its
/// head was parsed); a `101` becomes a tunnel with the service's timeouts.
fn h1_parts(
    resp: upstream::h1::Response,
    service: &CompiledService,
) -> (StatusCode, Fields, ResponseBody) {
    let mut fields = resp.fields;
    let body = match resp.body {
        upstream::h1::ResponseBody::Complete(b) if b.is_empty() => ResponseBody::Empty,
        upstream::h1::ResponseBody::Complete(b) => ResponseBody::Full(Some(b)),
        upstream::h1::ResponseBody::Stream(b) => ResponseBody::Upstream(b),
        upstream::h1::ResponseBody::Upgraded(upstream) => {
            crate::websocket::answer_client(&mut fields);
            let idle = crate::tunnel::Idle {
                read: service.read_timeout,
                write: service.write_timeout,
            };
            ResponseBody::Upgrade(Box::new(crate::websocket::Tunnel { upstream, idle }))
        }
    };
    (resp.status, fields, body)
}

/// The client's reply: the upstream's head with Kong's headers added.
fn finish_response(
    conn: &ConnInfo,
    mut reply: Reply,
    via: &HeaderValue,
    request_id: &HeaderValue,
    proxy_latency: std::time::Duration,
    upstream_latency: std::time::Duration,
) -> Reply {
    let s = &conn.shared.settings;
    let f = &mut reply.fields;
    if s.headers.via {
        if f.contains("via") {
            f.append_list(VIA, via.as_bytes());
        } else {
            f.set_new(VIA, via.clone());
        }
    }
    // Kong (3.8+) names itself when the upstream does not.
    if s.headers.server && !f.contains("server") {
        f.set_new(http::header::SERVER, s.server.clone());
    }
    if s.headers.upstream_latency {
        f.set_new(
            X_KONG_UPSTREAM_LATENCY,
            int_value(upstream_latency.as_millis() as u64),
        );
    }
    if s.headers.proxy_latency {
        f.set_new(
            X_KONG_PROXY_LATENCY,
            int_value(proxy_latency.as_millis() as u64),
        );
    }
    if s.headers.upstream_status {
        f.set_new(
            X_KONG_UPSTREAM_STATUS,
            int_value(u64::from(reply.status.as_u16())),
        );
    }
    if s.headers.request_id {
        f.set(X_KONG_REQUEST_ID, request_id.clone());
    }
    reply
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_value_is_nginx_host() {
        for (raw, want) in [
            ("shop.test", "shop.test"),
            ("shop.test:8000", "shop.test"),
            ("Shop.Test:8000", "shop.test"),
            ("SHOP.test", "shop.test"),
            ("[::1]:8000", "[::1]"),
            ("[::1]", "[::1]"),
            ("[::1", "[::1]"),
            ("127.0.0.1:19010", "127.0.0.1"),
            ("a:b", "a:b"),
            ("", ""),
        ] {
            let header = HeaderValue::from_str(raw).unwrap();
            assert_eq!(host_value(raw, Some(&header)), want, "{raw}");
            assert_eq!(host_value(raw, None), want, "{raw}");
            assert_eq!(host_without_port(raw), want, "{raw}");
        }
    }
}
