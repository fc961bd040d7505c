//! Where the request pipeline meets plugins: the per-request context is made from the client
//! request, the chain runs its phases, and its results (changed request, exits, response
//! changes, body hooks) are applied.

use super::headers::{X_KONG_PROXY_LATENCY, X_KONG_REQUEST_ID, X_KONG_UPSTREAM_LATENCY, int_value};
use super::{ClientRequest, ConnInfo, Reply, add_gateway_headers};
use crate::body::ResponseBody;
use crate::http::Fields;
use crate::response;
use crate::snapshot::{CompiledRoute, Snapshot};
use bytes::Bytes;
use http::header::{CONTENT_TYPE, SERVER, VIA};
use http::{HeaderValue, StatusCode};
use http_body::{Body, Frame, SizeHint};
use silverback_plugins::pdk::{
    Body as PluginBody, Exit, ExitBody, Request, Response, ResponseSource, Scheme, UriCaptures,
};
use silverback_plugins::{Ctx, Run};
use std::net::IpAddr;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Instant;

/// A request's plugin context and the plugins it ran, kept for the response phases.
pub(crate) struct Plugged {
    pub ctx: Ctx,
    pub run: Run,
}

/// The context for a request, taking over its fields (given back by [`give_back`]).
pub(crate) fn new_ctx(
    snapshot: &Snapshot,
    conn: &ConnInfo,
    req: &mut ClientRequest<'_>,
    client_ip: IpAddr,
    request_id: &HeaderValue,
    started: Instant,
) -> Ctx {
    // An HTTP/1 body without Content-Length is chunked.
    let chunked = req.version != http::Version::HTTP_2
        && !matches!(req.body, crate::body::RequestBody::Empty)
        && !req.fields.contains("content-length");
    let expects_continue = req.body.expects_continue();
    let request_size = request_size(&req.fields);
    let mut request = Request::new(
        req.method.clone(),
        if conn.tls {
            Scheme::Https
        } else {
            Scheme::Http
        },
        req.version,
        req.authority.clone(),
        std::mem::take(&mut req.fields),
        req.target.clone(),
    );
    request.chunked = chunked;
    request.expects_continue = expects_continue;
    let mut ctx = Ctx::new(
        request,
        client_ip,
        conn.peer.ip(),
        request_id.clone(),
        started,
        snapshot.plugins.directory.clone(),
    );
    ctx.runtime = conn.shared.runtime();
    ctx.client_trusted = conn.shared.settings.trust.is_trusted(client_ip);
    ctx.server_addr = Some(conn.local);
    ctx.served.request_size = request_size;
    ctx
}

/// nginx's `$request_length` as far as it is known before the body is read: the head as
/// received and the declared body length.
fn request_size(fields: &crate::http::Fields) -> u64 {
    let declared = fields
        .get_str("content-length")
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(0);
    fields.received_len() as u64 + declared
}

/// Route, service and captures, once the route is known.
pub(crate) fn enter_route(
    ctx: &mut Ctx,
    route: &CompiledRoute,
    captures: Option<&silverback_router::Captures>,
) {
    ctx.route = Some(route.entity.clone());
    ctx.service = route.service.as_ref().map(|s| s.entity.clone());
    if let Some(c) = captures {
        ctx.uri_captures = UriCaptures {
            positional: c.positional().map(|v| v.map(str::to_string)).collect(),
            named: c
                .named()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
        };
    }
}

/// What plugins changed about the upstream request that is not part of [`ClientRequest`].
#[derive(Debug, Default)]
pub(crate) struct Overrides {
    /// Replaces the path routing made (Kong's `kong.service.request.set_path`), unescaped.
    pub path: Option<String>,
    /// The Host to send, whatever `preserve_host` says.
    pub host: Option<HeaderValue>,
}

/// Gives the request back its (possibly changed) method, fields, target and body; returns
/// the rest of what plugins changed. With `keep_headers` (a log plugin will serialize the
/// request), a copy of the fields stays for the log record.
pub(crate) fn give_back(
    ctx: &mut Ctx,
    req: &mut ClientRequest<'_>,
    keep_headers: bool,
) -> Overrides {
    req.fields = std::mem::take(&mut ctx.request.headers);
    if keep_headers {
        ctx.served.request_headers = Some(req.fields.clone());
    }
    if ctx.request.method != req.method {
        req.method = ctx.request.method.clone();
    }
    if let Some(t) = ctx.request.changed_target() {
        req.target = t.clone();
    }
    if let Some(b) = ctx.request.changed_body() {
        req.body = crate::body::RequestBody::Full(Some(b.clone()));
    }
    Overrides {
        path: ctx.request.upstream_path().map(str::to_string),
        host: ctx.request.upstream_host().cloned(),
    }
}

/// What the plugins see of a body the proxy buffered for them.
pub(crate) fn body_for_plugins(body: &crate::body::RequestBody<'_>) -> PluginBody {
    match body {
        crate::body::RequestBody::Empty => PluginBody::Read(Bytes::new()),
        crate::body::RequestBody::Full(b) => PluginBody::Read(b.clone().unwrap_or_default()),
        _ => PluginBody::TooLarge,
    }
}

/// The reply for a plugin's exit, with the gateway's own headers, or those of a proxied
/// response when the exit stands for the upstream's (a cached response).
pub(crate) fn exit_reply(conn: &ConnInfo, exit: Exit, ctx: &Ctx, started: Instant) -> Reply {
    let exit = if ctx.request.version == http::Version::HTTP_2
        && crate::grpc::is_grpc_type(ctx.request.header("content-type"))
    {
        crate::grpc::exit_form(exit)
    } else {
        exit
    };
    if ctx.proxied {
        let mut reply = exit_body(exit, None, &ctx.request_id);
        add_proxied_headers(conn, &mut reply.fields, &ctx.request_id, started);
        return reply;
    }
    exit_reply_for(
        conn,
        exit,
        ctx.request.header("accept"),
        &ctx.request_id,
        started,
    )
}

/// The reply for a plugin's exit, its error format chosen by `accept`.
pub(crate) fn exit_reply_for(
    conn: &ConnInfo,
    exit: Exit,
    accept: Option<&str>,
    request_id: &HeaderValue,
    started: Instant,
) -> Reply {
    let mut reply = exit_body(exit, accept, request_id);
    add_gateway_headers(conn, &mut reply.fields, request_id, started);
    reply
}

/// An exit's status, body and headers (a header named more than once keeps every value).
fn exit_body(exit: Exit, accept: Option<&str>, request_id: &HeaderValue) -> Reply {
    let mut reply = match exit.body {
        ExitBody::Error(message) => {
            let mime = response::negotiate(accept);
            response::text(
                exit.status,
                mime,
                response::error_body(mime, &message, request_id.to_str().unwrap_or_default()),
            )
        }
        ExitBody::Json(v) => {
            let mut r = response::text(exit.status, response::JSON, v.to_string());
            r.fields
                .set(CONTENT_TYPE, HeaderValue::from_static(response::JSON));
            r
        }
        ExitBody::Raw { body, content_type } => {
            let mut r = Reply {
                status: exit.status,
                fields: Default::default(),
                body: ResponseBody::full(body),
            };
            if let Some(ct) = content_type {
                r.fields.set_new(CONTENT_TYPE, ct);
            }
            r
        }
        ExitBody::Empty => Reply {
            status: exit.status,
            fields: Default::default(),
            body: ResponseBody::Empty,
        },
    };
    for (i, (name, value)) in exit.headers.iter().enumerate() {
        if exit.headers.iter().take(i).any(|(n, _)| n == name) {
            reply.fields.append(name.clone(), value.clone());
        } else {
            reply.fields.set(name.clone(), value.clone());
        }
    }
    reply
}

/// Kong's headers for a proxied response (`KONG_PROXIED`) that did not reach the upstream:
/// no time was spent waiting on it.
fn add_proxied_headers(
    conn: &ConnInfo,
    f: &mut Fields,
    request_id: &HeaderValue,
    started: Instant,
) {
    let s = &conn.shared.settings;
    // The upstream protocol's version, as on proxied responses.
    if s.headers.via {
        f.set(VIA, s.via_h1.clone());
    }
    if s.headers.server && !f.contains("server") {
        f.set_new(SERVER, s.server.clone());
    }
    if s.headers.upstream_latency {
        f.set(X_KONG_UPSTREAM_LATENCY, int_value(0));
    }
    if s.headers.proxy_latency {
        f.set(
            X_KONG_PROXY_LATENCY,
            int_value(started.elapsed().as_millis() as u64),
        );
    }
    if s.headers.request_id {
        f.set(X_KONG_REQUEST_ID, request_id.clone());
    }
}

/// Runs the response phases over a reply: `header_filter` now, `body_filter` and `log` as the
/// body goes out.
pub(crate) fn respond(
    conn: &ConnInfo,
    mut reply: Reply,
    source: ResponseSource,
    plugged: Plugged,
) -> Reply {
    let Plugged { mut ctx, run } = plugged;
    // A body of known length keeps its length through `body_filter` unless a plugin clears
    // Content-Length in `header_filter` (as Kong's body-changing plugins do), so a body the
    // gateway made carries one for them to clear, as nginx's does. (An upstream's head is
    // left as it came.)
    if run.has_body_filter() && source != ResponseSource::Service {
        add_content_length(&mut reply);
    }
    if run.has_header_filter() {
        ctx.response = Response {
            status: reply.status,
            headers: std::mem::take(&mut reply.fields),
            source,
        };
        match run.header_filter(&mut ctx) {
            None => {
                reply.status = ctx.response.status;
                reply.fields = std::mem::take(&mut ctx.response.headers);
            }
            Some(exit) => {
                ctx.proxied = false;
                reply = exit_reply(conn, exit, &ctx, ctx.started);
                ctx.response.status = StatusCode::INTERNAL_SERVER_ERROR;
            }
        }
    } else {
        ctx.response.status = reply.status;
        ctx.response.source = source;
    }
    // Log plugins record the response head as sent.
    if run.serializes() {
        ctx.response.headers = reply.fields.clone();
    }
    // Not sent upstream: the gateway or a plugin made this response (Kong's
    // KONG_RESPONSE_LATENCY).
    if ctx.served.kong_latency.is_none() {
        ctx.served.kong_latency = Some(ctx.started.elapsed());
    }
    if run.needs_body_hooks() {
        let length = (reply.fields.contains("content-length"))
            .then(|| reply.body.size_hint().exact())
            .flatten();
        let inner = std::mem::replace(&mut reply.body, ResponseBody::Empty);
        reply.body = ResponseBody::Hooked(Box::new(Hooked {
            inner,
            ctx,
            run,
            length,
            ended: false,
            logged: false,
        }));
    }
    reply
}

/// Sets Content-Length on a reply whose body size is known but not in its fields (the
/// gateway's own replies), so plugins see it as Kong's do.
fn add_content_length(reply: &mut Reply) {
    let status = reply.status;
    if status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
        || reply.fields.contains("content-length")
    {
        return;
    }
    if let Some(n) = reply.body.size_hint().exact() {
        reply
            .fields
            .set_new(http::header::CONTENT_LENGTH, int_value(n));
    }
}

/// A response body that runs `body_filter` on each chunk and `log` once it ends (or is
/// dropped: a client that goes away still gets its request logged).
pub struct Hooked {
    inner: ResponseBody,
    ctx: Ctx,
    run: Run,
    /// The length the body keeps through `body_filter` (Content-Length left in place).
    length: Option<u64>,
    /// `body_filter` saw `eof` (with the last chunk, when the body knew it was the last).
    ended: bool,
    logged: bool,
}

impl Hooked {
    fn log(&mut self) {
        if !self.logged {
            self.logged = true;
            self.ctx.served.request_latency = self.ctx.started.elapsed();
            self.run.log(&mut self.ctx);
        }
    }

    pub(crate) fn poll_frame(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, crate::body::BoxError>>> {
        if self.logged {
            return Poll::Ready(None);
        }
        // A chunk a plugin holds back (to buffer the body) is not sent as an empty frame.
        loop {
            return match ready!(Pin::new(&mut self.inner).poll_frame(cx)) {
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(mut data) => {
                        // The last chunk carries `eof` when the body can tell: a plugin then
                        // finishes before the client has it all (and may send its next request).
                        let eof = self.inner.is_end_stream();
                        self.ended = eof;
                        let had_data = !data.is_empty();
                        self.run.body_filter(&mut self.ctx, &mut data, eof);
                        if had_data && data.is_empty() && !eof {
                            continue;
                        }
                        self.ctx.served.response_size += data.len() as u64;
                        Poll::Ready(Some(Ok(Frame::data(data))))
                    }
                    Err(other) => Poll::Ready(Some(Ok(other))),
                },
                Some(Err(e)) => {
                    self.log();
                    Poll::Ready(Some(Err(e)))
                }
                None => {
                    let mut last = Bytes::new();
                    if !self.ended {
                        self.ended = true;
                        self.run.body_filter(&mut self.ctx, &mut last, true);
                    }
                    self.ctx.served.response_size += last.len() as u64;
                    self.log();
                    Poll::Ready((!last.is_empty()).then(|| Ok(Frame::data(last))))
                }
            };
        }
    }

    pub(crate) fn is_end_stream(&self) -> bool {
        self.logged
    }

    /// The body the hooks wrap (a `101`'s tunnel is taken out of it).
    pub(crate) fn inner_mut(&mut self) -> &mut ResponseBody {
        &mut self.inner
    }

    /// Counts the response head the server wrote for this body.
    pub(crate) fn head_sent(&mut self, len: usize) {
        self.ctx.served.response_size += len as u64;
    }

    pub(crate) fn size_hint(&self) -> SizeHint {
        match self.length {
            Some(n) => SizeHint::with_exact(n),
            None if self.run.has_body_filter() => SizeHint::default(),
            None => self.inner.size_hint(),
        }
    }
}

impl Drop for Hooked {
    fn drop(&mut self) {
        // A reply without a body to send (HEAD, 304) is never polled: its (empty) body still
        // ends. One the client left in the middle of does not.
        if !self.ended && !self.logged && self.inner.is_end_stream() {
            self.ended = true;
            let mut last = Bytes::new();
            self.run.body_filter(&mut self.ctx, &mut last, true);
        }
        self.log();
    }
}
