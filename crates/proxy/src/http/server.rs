//! The HTTP/1.1 server side of the proxy: reads requests off a client connection, runs each
//! through the pipeline inside the connection's own task and writes the reply.
//!
//! Owning this codec (rather than going through hyper's dispatcher) lets a request's head stay
//! in the bytes it arrived in until it is forwarded, and a small reply go out in one write.
//! HTTP/2 connections are served by hyper (see `worker`).

use super::date;
use super::fields::{self, Fields, Known};
use super::framing::{self, Decoder, Framing, Step};
use super::timer::LazyTimer;
use crate::body::{BoxError, ClientBodyError, ClientStream, RequestBody, ResponseBody};
use crate::request::{self, ClientRequest, ConnInfo, Reply};
use crate::transport::Stream;
use bytes::{Bytes, BytesMut};
use http::uri::PathAndQuery;
use http::{HeaderValue, Method, StatusCode, Version};
use http_body::{Body, Frame, SizeHint};
use std::cell::Cell;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::{Instant, Sleep};

/// Initial read buffer of a connection.
const READ_BUF: usize = 8 * 1024;
/// Below this much free room the read buffer is renewed.
const READ_MIN_ROOM: usize = 1024;
/// Largest request head (request line and fields); beyond it the client gets 400, as nginx's
/// "Request Header Or Cookie Too Large".
const MAX_HEAD: usize = 64 * 1024;
/// Idle time allowed between requests, and while a head or body is being received
/// (nginx's keepalive_timeout, client_header_timeout, client_body_timeout: 60 s in Kong).
const CLIENT_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest pause while the client reads the reply (nginx's send_timeout).
const SEND_TIMEOUT: Duration = Duration::from_secs(60);

const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// A request head as parsed.
struct Head {
    method: Method,
    version: Version,
    target: PathAndQuery,
    raw_target: Bytes,
    authority: Option<HeaderValue>,
    fields: Fields,
    known: Known,
}

enum HeadError {
    /// The client closed an idle connection, or went silent: close without a reply.
    Closed,
    /// Malformed: answer 400 and close.
    Bad(&'static str),
    TooLarge,
}

/// Serves requests on one client connection until it closes, an error occurs or the worker
/// shuts down (in-flight requests finish first).
pub async fn serve(stream: Stream, conn: Arc<ConnInfo>, shutdown: watch::Receiver<bool>) {
    serve_requests(&stream, conn, shutdown).await;
    stream.close();
}

async fn serve_requests(stream: &Stream, conn: Arc<ConnInfo>, shutdown: watch::Receiver<bool>) {
    let mut rbuf = BytesMut::with_capacity(READ_BUF);
    let mut out: Vec<u8> = Vec::with_capacity(1024);
    let mut timer = LazyTimer::new();
    // One shutdown waiter for the connection's life (registered once, not per request).
    let mut stop_rx = shutdown.clone();
    let stop = async move {
        let _ = stop_rx.wait_for(|s| *s).await;
    };
    tokio::pin!(stop);
    loop {
        // The request first: when it is already there, the shutdown waiter is not polled.
        let head = tokio::select! {
            biased;
            h = read_head(stream, &mut rbuf, &mut timer) => h,
            _ = &mut stop, if rbuf.is_empty() => return,
        };
        let head = match head {
            Ok(h) => h,
            Err(HeadError::Closed) => return,
            Err(e) => {
                let message = match e {
                    HeadError::TooLarge => "Request header or cookie too large",
                    HeadError::Bad(m) => m,
                    HeadError::Closed => return,
                };
                tracing::debug!(peer = %conn.peer, message, "bad request");
                let reply = request::bad_request(&conn, message);
                let _ = write_reply(stream, &mut out, reply, false, false, Version::HTTP_11).await;
                return;
            }
        };
        let Head {
            method,
            version,
            raw_target,
            target,
            authority,
            mut fields,
            known,
        } = head;
        let Ok(framing) = request_framing(&fields, &known) else {
            let reply = request::bad_request(&conn, "Bad request");
            let _ = write_reply(stream, &mut out, reply, false, false, version).await;
            return;
        };
        let connection = Connection::of(&fields, &known);
        let mut keep_alive = if version == Version::HTTP_10 {
            connection.keep_alive
        } else {
            !connection.close
        };
        let expects_continue = version == Version::HTTP_11
            && known
                .expect
                .and_then(|i| fields.value_at(i))
                .is_some_and(|v| v.eq_ignore_ascii_case(b"100-continue"));
        if connection.lists_fields {
            drop_listed_fields(&mut fields, &known);
        }
        let head_only = method == Method::HEAD;
        let consumed = Cell::new(framing == Framing::Length(0));
        let body = if framing == Framing::Length(0) {
            RequestBody::Empty
        } else {
            RequestBody::Stream(ClientStream::H1(ClientBody {
                io: stream,
                buf: &mut rbuf,
                decoder: Decoder::new(framing),
                continue_left: if expects_continue { CONTINUE.len() } else { 0 },
                max: conn.shared.settings.client_max_body_size,
                timer: None,
                consumed: &consumed,
            }))
        };
        let websocket = known.upgrade.is_some()
            && crate::websocket::is_websocket(known.upgrade.and_then(|i| fields.value_at(i)));
        let req = ClientRequest {
            method,
            raw_target,
            target,
            version,
            authority,
            fields,
            body,
            websocket,
        };
        let mut reply = request::handle(req, &conn).await;
        if websocket
            && reply.status == StatusCode::SWITCHING_PROTOCOLS
            && let Some(tunnel) = reply.body.take_tunnel()
        {
            // The plugins' hooks stay until the tunnel ends, so `log` runs then.
            let hooks = std::mem::replace(&mut reply.body, ResponseBody::Empty);
            if write_reply(stream, &mut out, reply, false, true, version)
                .await
                .is_ok()
            {
                crate::websocket::relay(crate::transport::AsyncIo(stream), rbuf, tunnel).await;
            }
            drop(hooks);
            return;
        }
        // A body left unread would be taken for the next request: close instead.
        keep_alive &= consumed.get() && !*shutdown.borrow();
        match write_reply(stream, &mut out, reply, head_only, keep_alive, version).await {
            Ok(()) if keep_alive => {}
            _ => return,
        }
    }
}

/// The framing of a request body. Both Transfer-Encoding and Content-Length, or two different
/// lengths, is how request smuggling starts: refused, as nginx does.
fn request_framing(fields: &Fields, known: &Known) -> Result<Framing, ()> {
    if known.conflicting_length {
        return Err(());
    }
    match (known.transfer_encoding, known.content_length) {
        (Some(_), Some(_)) => Err(()),
        (None, None) => Ok(Framing::Length(0)),
        (te, cl) => framing::from_fields(
            te.and_then(|i| fields.value_at(i)),
            cl.and_then(|i| fields.value_at(i)).into_iter(),
            true,
        )
        .map_err(|_| ()),
    }
}

/// The tokens of the request's Connection field(s).
#[derive(Debug, Default)]
struct Connection {
    close: bool,
    keep_alive: bool,
    /// Names other fields (which are then hop-by-hop too).
    lists_fields: bool,
}

impl Connection {
    fn of(fields: &Fields, known: &Known) -> Connection {
        let mut c = Connection::default();
        let mut add = |v: &[u8]| {
            for t in v.split(|b| *b == b',').map(<[u8]>::trim_ascii) {
                if t.eq_ignore_ascii_case(b"close") {
                    c.close = true;
                } else if t.eq_ignore_ascii_case(b"keep-alive") {
                    c.keep_alive = true;
                } else if !t.is_empty() && !t.eq_ignore_ascii_case(b"upgrade") {
                    c.lists_fields = true;
                }
            }
        };
        if known.more_connection {
            (0..)
                .map_while(|i| fields.value_at(i).map(|v| (i, v)))
                .filter(|(i, _)| {
                    fields
                        .name_at(*i)
                        .is_some_and(|n| n.eq_ignore_ascii_case(b"connection"))
                })
                .for_each(|(_, v)| add(v));
        } else if let Some(v) = known.connection.and_then(|i| fields.value_at(i)) {
            add(v);
        }
        c
    }
}

/// Drops the fields a Connection field names (rare: the common tokens are handled apart).
fn drop_listed_fields(fields: &mut Fields, known: &Known) {
    let mut listed: smallvec::SmallVec<[Vec<u8>; 2]> = smallvec::SmallVec::new();
    let mut i = 0;
    while let Some(v) = fields.value_at(i) {
        let is_connection = fields
            .name_at(i)
            .is_some_and(|n| n.eq_ignore_ascii_case(b"connection"));
        if is_connection && (known.more_connection || Some(i) == known.connection) {
            listed.extend(
                v.split(|b| *b == b',')
                    .map(|t| t.trim_ascii().to_ascii_lowercase())
                    .filter(|t| !t.is_empty()),
            );
        }
        i += 1;
    }
    fields.drop_received(|name| listed.iter().any(|l| name.eq_ignore_ascii_case(l)));
}

/// Reads more bytes once they are there; `Ok(0)` at end of stream. A short read clears the
/// readiness (the socket is drained), so the next read waits for the event loop instead of
/// spending a system call on EAGAIN.
async fn read_some(
    io: &Stream,
    buf: &mut BytesMut,
    timer: &mut LazyTimer,
    timeout: Duration,
) -> io::Result<usize> {
    if buf.capacity() - buf.len() < READ_MIN_ROOM {
        buf.reserve(READ_BUF);
    }
    timer.set(Instant::now() + timeout);
    loop {
        std::future::poll_fn(|cx| {
            if let Poll::Ready(r) = io.poll_read_ready(cx) {
                return Poll::Ready(r);
            }
            timer
                .poll_expired(cx)
                .map(|()| Err(io::Error::from(io::ErrorKind::TimedOut)))
        })
        .await?;
        match io.read_draining(buf) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            r => return r,
        }
    }
}

async fn read_head(
    io: &Stream,
    buf: &mut BytesMut,
    timer: &mut LazyTimer,
) -> Result<Head, HeadError> {
    loop {
        if !buf.is_empty() {
            match parse_head(buf)? {
                Some(h) => return Ok(h),
                None if buf.len() > MAX_HEAD => return Err(HeadError::TooLarge),
                None => {}
            }
        }
        match read_some(io, buf, timer, CLIENT_TIMEOUT).await {
            Ok(0) if buf.is_empty() => return Err(HeadError::Closed),
            Ok(0) => return Err(HeadError::Closed),
            Ok(_) => {}
            Err(_) => return Err(HeadError::Closed),
        }
    }
}

/// Parses a complete request head at the start of `buf` and takes it out; `None` when more is
/// needed.
fn parse_head(buf: &mut BytesMut) -> Result<Option<Head>, HeadError> {
    // Tolerate empty lines before a request line (RFC 9112 §2.2).
    while buf.starts_with(b"\r\n") {
        let _ = buf.split_to(2);
    }
    let mut slots = [std::mem::MaybeUninit::<httparse::Header<'_>>::uninit(); 100];
    let mut req = httparse::Request::new(&mut []);
    let len = match req.parse_with_uninit_headers(buf, &mut slots) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooLarge),
        Err(_) => return Err(HeadError::Bad("Bad request")),
    };
    let method = Method::from_bytes(req.method.unwrap_or_default().as_bytes())
        .map_err(|_| HeadError::Bad("Bad request"))?;
    let version = match req.version {
        Some(0) => Version::HTTP_10,
        _ => Version::HTTP_11,
    };
    let base = buf.as_ptr() as usize;
    let path = req.path.unwrap_or_default();
    let target_span = (path.as_ptr() as usize - base, path.len());
    let (spans, known) = fields::scan(buf.as_ptr(), req.headers);
    let raw = buf.split_to(len).freeze();
    let target = raw.slice(target_span.0..target_span.0 + target_span.1);
    let fields = Fields::from_scan(raw, spans);
    let raw_target = target.clone();
    let (target, authority) = request_target(target)?;
    // For an absolute-form target, the forwarded bytes are its path and query only.
    let raw_target = if authority.is_some() {
        Bytes::copy_from_slice(target.as_str().as_bytes())
    } else {
        raw_target
    };
    Ok(Some(Head {
        method,
        version,
        raw_target,
        target,
        authority,
        fields,
        known,
    }))
}

/// Origin-form (`/path?q`), absolute-form (`http://host/path`) or `*`.
fn request_target(target: Bytes) -> Result<(PathAndQuery, Option<HeaderValue>), HeadError> {
    let bad = || HeadError::Bad("Bad request");
    if target.first() == Some(&b'/') || &target[..] == b"*" {
        return Ok((
            PathAndQuery::from_maybe_shared(target).map_err(|_| bad())?,
            None,
        ));
    }
    let uri: http::Uri = http::Uri::from_maybe_shared(target).map_err(|_| bad())?;
    // Only absolute-form (with a scheme); authority-form is for CONNECT, which is not proxied.
    if uri.scheme().is_none() {
        return Err(bad());
    }
    let authority = uri
        .authority()
        .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
        .ok_or_else(bad)?;
    let pq = uri
        .path_and_query()
        .cloned()
        .unwrap_or_else(|| PathAndQuery::from_static("/"));
    Ok((pq, Some(authority)))
}

/// The request body read off the client connection as the upstream side takes it.
pub struct ClientBody<'a> {
    io: &'a Stream,
    buf: &'a mut BytesMut,
    decoder: Decoder,
    /// Bytes of the `100 Continue` line still to send before the first read.
    continue_left: usize,
    /// `client_max_body_size`; 0 = unlimited.
    max: u64,
    timer: Option<Pin<Box<Sleep>>>,
    /// Set once the whole body was read, so the connection may serve another request.
    consumed: &'a Cell<bool>,
}

impl ClientBody<'_> {
    /// `Expect: 100-continue` and nothing read yet.
    pub fn expects_continue(&self) -> bool {
        self.continue_left > 0
    }

    fn fail(&mut self, e: ClientBodyError) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        Poll::Ready(Some(Err(Box::new(e))))
    }
}

impl Body for ClientBody<'_> {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        loop {
            match this.decoder.decode(this.buf) {
                Ok(Step::Data(b)) => {
                    this.timer = None;
                    if this.max > 0 && this.decoder.seen > this.max {
                        return this.fail(ClientBodyError::TooLarge);
                    }
                    if this.decoder.is_done() {
                        this.consumed.set(true);
                    }
                    return Poll::Ready(Some(Ok(Frame::data(b))));
                }
                Ok(Step::End) => {
                    this.consumed.set(true);
                    return Poll::Ready(None);
                }
                Ok(Step::NeedMore) => {}
                Err(e) => return this.fail(ClientBodyError::Read(e.to_string())),
            }
            if this.continue_left > 0 {
                let sent = CONTINUE.len() - this.continue_left;
                match this.io.try_write(&CONTINUE[sent..]) {
                    Ok(n) => this.continue_left -= n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        if this.io.poll_write_ready(cx).is_pending() {
                            return Poll::Pending;
                        }
                    }
                    Err(e) => return this.fail(ClientBodyError::Read(e.to_string())),
                }
                continue;
            }
            if this.buf.capacity() - this.buf.len() < READ_MIN_ROOM {
                this.buf.reserve(READ_BUF);
            }
            match this.io.try_read_buf(this.buf) {
                Ok(0) => {
                    return match this.decoder.eof() {
                        Ok(_) => Poll::Ready(None),
                        Err(e) => this.fail(ClientBodyError::Read(e.to_string())),
                    };
                }
                Ok(_) => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    match this.io.poll_read_ready(cx) {
                        Poll::Ready(Ok(())) => continue,
                        Poll::Ready(Err(e)) => {
                            return this.fail(ClientBodyError::Read(e.to_string()));
                        }
                        Poll::Pending => {}
                    }
                    let timer = this
                        .timer
                        .get_or_insert_with(|| Box::pin(tokio::time::sleep(CLIENT_TIMEOUT)));
                    if timer.as_mut().poll(cx).is_ready() {
                        return this.fail(ClientBodyError::Timeout);
                    }
                    return Poll::Pending;
                }
                Err(e) => return this.fail(ClientBodyError::Read(e.to_string())),
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.decoder.is_done()
    }

    fn size_hint(&self) -> SizeHint {
        self.decoder
            .remaining_exact()
            .map_or_else(SizeHint::default, SizeHint::with_exact)
    }
}

use std::future::Future;

/// Writes the reply; `keep_alive` false adds `Connection: close`.
async fn write_reply(
    io: &Stream,
    out: &mut Vec<u8>,
    reply: Reply,
    head_only: bool,
    keep_alive: bool,
    version: Version,
) -> io::Result<()> {
    let Reply {
        status,
        fields,
        mut body,
    } = reply;
    let no_body = head_only
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED;
    out.clear();
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    let mut has_date = false;
    let mut has_length = false;
    fields.for_each(|name, value| {
        let is_length = name.eq_ignore_ascii_case(b"content-length");
        if (!no_body && is_length) || name.eq_ignore_ascii_case(b"transfer-encoding") {
            // The framing written below is the one that matches the body actually sent.
            return;
        }
        has_length |= is_length;
        has_date |= name.eq_ignore_ascii_case(b"date");
        out.extend_from_slice(name);
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    });
    if !has_date {
        out.extend_from_slice(b"date: ");
        out.extend_from_slice(date::now().as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    let mut keep_alive = keep_alive;
    let mut chunked = false;
    if no_body {
        if !has_length
            && head_only
            && let Some(n) = body.size_hint().exact()
        {
            write_length(out, n);
        }
    } else {
        match body.size_hint().exact() {
            Some(n) => write_length(out, n),
            None if version == Version::HTTP_11 => {
                out.extend_from_slice(b"transfer-encoding: chunked\r\n");
                chunked = true;
            }
            // An HTTP/1.0 client learns the end from the connection closing.
            None => keep_alive = false,
        }
    }
    if !keep_alive {
        out.extend_from_slice(b"connection: close\r\n");
    } else if version == Version::HTTP_10 {
        out.extend_from_slice(b"connection: keep-alive\r\n");
    }
    out.extend_from_slice(b"\r\n");
    body.head_sent(out.len());
    if no_body {
        // The body's end hooks (a cache storing a HEAD reply, `log`) run before the client
        // has the reply and can send its next request.
        drop(body);
        return write_all(io, &[out]).await;
    }
    // The head goes out with the first piece of body, so a small reply is one write (and,
    // copied behind the head, one buffer: send(2) costs less than writev(2)).
    use http_body_util::BodyExt;
    let mut head_sent = false;
    loop {
        let frame = match &mut body {
            ResponseBody::Full(b) => b.take().map(|b| Ok(Frame::data(b))),
            _ => tokio::time::timeout(SEND_TIMEOUT, body.frame())
                .await
                .map_err(|_| io::Error::from(io::ErrorKind::TimedOut))?,
        };
        let data = match frame {
            None => break,
            Some(Err(e)) => return Err(io::Error::other(e)),
            Some(Ok(f)) => match f.into_data() {
                Ok(d) if !d.is_empty() => d,
                _ => continue,
            },
        };
        let mut size = [0u8; 18];
        let size: &[u8] = if chunked {
            framing::chunk_size_line(&mut size, data.len())
        } else {
            &[]
        };
        let trailer: &[u8] = if chunked { b"\r\n" } else { b"" };
        if head_sent {
            write_all(io, &[size, &data, trailer]).await?;
        } else if data.len() <= crate::transport::COALESCE_MAX {
            out.extend_from_slice(size);
            out.extend_from_slice(&data);
            out.extend_from_slice(trailer);
            write_all(io, &[out]).await?;
        } else {
            write_all(io, &[out, size, &data, trailer]).await?;
        }
        head_sent = true;
    }
    let end: &[u8] = if chunked { b"0\r\n\r\n" } else { b"" };
    if head_sent {
        write_all(io, &[end]).await
    } else {
        out.extend_from_slice(end);
        write_all(io, &[out]).await
    }
}

fn write_length(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(b"content-length: ");
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// Waits until TLS records the socket did not take yet are sent (nothing to wait for on a
/// plain socket).
async fn flushed(io: &Stream) -> io::Result<()> {
    if !io.is_tls() {
        return Ok(());
    }
    tokio::time::timeout(SEND_TIMEOUT, io.flush())
        .await
        .map_err(|_| io::Error::from(io::ErrorKind::TimedOut))?
}

/// Writes every slice, trying without waiting first so the usual case takes one system call.
pub(crate) async fn write_all(io: &Stream, parts: &[&[u8]]) -> io::Result<()> {
    let total: usize = parts.iter().map(|p| p.len()).sum();
    let mut written = 0;
    loop {
        let mut slices: smallvec::SmallVec<[IoSlice<'_>; 4]> = smallvec::SmallVec::new();
        let mut skip = written;
        for p in parts {
            if skip >= p.len() {
                skip -= p.len();
                continue;
            }
            slices.push(IoSlice::new(&p[skip..]));
            skip = 0;
        }
        if slices.is_empty() {
            return flushed(io).await;
        }
        match io.try_write_vectored(&slices) {
            Ok(n) => {
                written += n;
                if written >= total {
                    return flushed(io).await;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                tokio::time::timeout(SEND_TIMEOUT, io.writable())
                    .await
                    .map_err(|_| io::Error::from(io::ErrorKind::TimedOut))??;
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_origin_and_absolute_targets() {
        let mut buf = BytesMut::from(
            &b"GET /a/b?q=1 HTTP/1.1\r\nHost: x.test\r\nX-A: 1\r\n\r\nGET /next HTTP/1.1\r\n"[..],
        );
        let Ok(Some(h)) = parse_head(&mut buf) else {
            panic!("not parsed")
        };
        assert_eq!(h.method, Method::GET);
        assert_eq!(h.target.path(), "/a/b");
        assert_eq!(h.target.query(), Some("q=1"));
        assert_eq!(h.fields.get("host"), Some(&b"x.test"[..]));
        assert!(
            buf.starts_with(b"GET /next"),
            "pipelined request stays buffered"
        );

        let mut abs = BytesMut::from(&b"GET http://api.test:8080/p HTTP/1.1\r\n\r\n"[..]);
        let Ok(Some(h)) = parse_head(&mut abs) else {
            panic!("not parsed")
        };
        assert_eq!(h.target.path(), "/p");
        assert_eq!(h.authority.unwrap(), "api.test:8080");

        let mut bad = BytesMut::from(&b"GET nope HTTP/1.1\r\n\r\n"[..]);
        assert!(matches!(parse_head(&mut bad), Err(HeadError::Bad(_))));
        let mut partial = BytesMut::from(&b"GET / HTTP/1.1\r\nHost: x"[..]);
        assert!(matches!(parse_head(&mut partial), Ok(None)));
    }

    fn head(text: &'static [u8]) -> Head {
        let mut buf = BytesMut::from(text);
        match parse_head(&mut buf) {
            Ok(Some(h)) => h,
            _ => panic!("not parsed"),
        }
    }

    #[test]
    fn connection_and_framing_rules() {
        let h = head(b"GET / HTTP/1.1\r\nConnection: Close\r\n\r\n");
        assert!(Connection::of(&h.fields, &h.known).close);
        assert!(
            h.fields.get("connection").is_none(),
            "hop-by-hop, never forwarded"
        );
        let h = head(b"GET / HTTP/1.0\r\nConnection: keep-alive, X-Drop\r\nX-Drop: 1\r\n\r\n");
        let c = Connection::of(&h.fields, &h.known);
        assert!(c.keep_alive && c.lists_fields);
        let mut fields = h.fields.clone();
        drop_listed_fields(&mut fields, &h.known);
        assert!(fields.get("x-drop").is_none());
        let h = head(b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\n");
        assert_eq!(request_framing(&h.fields, &h.known), Ok(Framing::Length(5)));
        let h = head(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
        assert_eq!(request_framing(&h.fields, &h.known), Ok(Framing::Chunked));
        let smuggle =
            head(b"POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n");
        assert!(request_framing(&smuggle.fields, &smuggle.known).is_err());
        let twice = head(b"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n");
        assert!(request_framing(&twice.fields, &twice.known).is_err());
        let gzip = head(b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n");
        assert!(request_framing(&gzip.fields, &gzip.known).is_err());
    }
}
