//! A lean HTTP/1.1 client for upstream requests.
//!
//! The request is written and the response read inside the request's own task: no connection
//! task, no channels between them (hyper's client needs both), and a small response that arrived
//! with its head is answered without another read. Response fields stay in the bytes they
//! arrived in; the body is decoded as the client reads it and the connection goes back to the
//! pool at its end.

use super::pool::{self, Limits, PoolKey};
use super::{AttemptError, ClientFailure, Timeouts, TlsTarget};
use crate::body::{BoxError, ClientBodyError, RequestBody, client_error};
use crate::http::Fields;
use crate::http::fields::{self, Known};
use crate::http::framing::{self, Decoder, Framing, Step};
use crate::http::timer::LazyTimer;
use crate::transport::{Stream, TlsStream};
use bytes::{Bytes, BytesMut};
use http::{Method, StatusCode, Version};
use http_body::{Body, Frame, SizeHint};
use std::future::Future;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::Instant;
use tokio::time::Sleep;

/// Largest response head accepted (nginx's proxy_buffer_size is far smaller).
const MAX_HEAD: usize = 128 * 1024;
/// Read buffer size for responses.
const READ_CHUNK: usize = 16 * 1024;
/// Below this much free room the read buffer is renewed. Reserving a whole READ_CHUNK before
/// every read would allocate per request, since responses keep slices of the old buffer.
const READ_MIN_ROOM: usize = 2 * 1024;
/// Responses up to this size are read whole before answering (nginx's proxy buffers), so the
/// upstream connection returns to the pool at once.
pub const SMALL_BODY: u64 = 64 * 1024;

/// An upstream connection with its read buffer.
pub struct Conn {
    io: Stream,
    buf: BytesMut,
    head: Vec<u8>,
    /// Response wait timeout, kept armed across the connection's requests.
    timer: LazyTimer,
    /// Requests sent on it so far.
    pub uses: u64,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn").field("uses", &self.uses).finish()
    }
}

impl Conn {
    /// Boxed: a connection outlives many requests and is moved between them and the pool.
    /// With `tls`, the TLS handshake is part of connecting (and of its timeout), as in nginx.
    pub async fn connect(
        addr: std::net::SocketAddr,
        timeout: Duration,
        tls: Option<&TlsTarget>,
    ) -> Result<Box<Conn>, AttemptError> {
        let io = match super::connect(addr, timeout, tls).await? {
            super::Connected::Plain(tcp) => Stream::Plain(tcp),
            super::Connected::Tls(t) => {
                let (tcp, conn) = t.into_inner();
                Stream::Tls(Box::new(TlsStream::new(tcp, conn)))
            }
        };
        Ok(Box::new(Conn {
            io,
            buf: BytesMut::with_capacity(READ_CHUNK),
            head: Vec::with_capacity(1024),
            timer: LazyTimer::new(),
            uses: 0,
        }))
    }

    /// The socket and the bytes already read past the last response head.
    pub(crate) fn into_parts(self) -> (crate::transport::Stream, BytesMut) {
        (self.io, self.buf)
    }

    /// Whether an idle connection can carry another request. Nothing may have arrived on it
    /// while idle: readable means the upstream closed it (or sent garbage). When the event loop
    /// has seen no event, this costs no system call.
    pub fn is_reusable(&mut self) -> bool {
        if !self.buf.is_empty() {
            return false;
        }
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        match self.io.poll_read_ready(&mut cx) {
            Poll::Pending => true,
            Poll::Ready(Err(_)) => false,
            Poll::Ready(Ok(())) => match &self.io {
                Stream::Plain(tcp) => {
                    let mut probe = [0u8; 1];
                    matches!(tcp.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
                }
                // Records without data (TLS 1.3 session tickets) may have come: still usable.
                Stream::Tls(_) => {
                    self.buf.reserve(READ_MIN_ROOM);
                    matches!(self.io.try_read_buf(&mut self.buf), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
                }
            },
        }
    }
}

/// The request line and fields to send.
pub struct Head<'a> {
    pub method: &'a Method,
    /// Origin-form target: path and query.
    pub target: &'a str,
    /// Replaces the client's Host field when set.
    pub host: Option<&'a http::HeaderValue>,
    pub fields: &'a Fields,
    /// A WebSocket handshake: a `101` answer hands the connection over.
    pub upgrade: bool,
}

/// A response head and its body.
pub struct Response {
    pub status: StatusCode,
    pub version: Version,
    pub fields: Fields,
    pub body: ResponseBody,
}

/// The response body: already complete (small bodies) or read as the client goes.
pub enum ResponseBody {
    Complete(Bytes),
    /// Boxed: only large, streamed bodies take this form.
    Stream(Box<H1Body>),
    /// A `101` to an upgrade request: the connection now carries another protocol.
    Upgraded(Box<Conn>),
}

/// Sends the request and reads the response head. The bool in the error tells whether any of
/// the request may have reached the upstream.
pub async fn round_trip(
    mut conn: Box<Conn>,
    reused: bool,
    key: &PoolKey,
    limits: &Limits,
    t: &Timeouts,
    head: Head<'_>,
    body: RequestBody<'_>,
) -> Result<Response, (AttemptError, bool)> {
    conn.uses += 1;
    let head_only = *head.method == Method::HEAD;
    let chunked = encode_head(&mut conn.head, &head, &body);
    if let Err(e) = write_request(&mut conn, body, chunked, t).await {
        let client_side = matches!(e, AttemptError::ClientBody(_));
        // A reused connection that fails while writing was closed by the upstream before it
        // could read anything.
        return Err((e, client_side || !reused));
    }
    let deadline = Instant::now() + t.read;
    let (status, version, mut fields, known) = loop {
        let parsed = read_head(&mut conn, deadline)
            .await
            .map_err(|e| (e, true))?;
        // Interim responses (100 Continue, 103 Early Hints) are not relayed.
        if parsed.0.is_informational() && parsed.0 != StatusCode::SWITCHING_PROTOCOLS {
            continue;
        }
        break parsed;
    };
    if status == StatusCode::SWITCHING_PROTOCOLS {
        if !head.upgrade {
            return Err((
                AttemptError::Upstream("protocol upgrade the client did not ask for".into()),
                true,
            ));
        }
        return Ok(Response {
            status,
            version,
            fields,
            body: ResponseBody::Upgraded(conn),
        });
    }
    let framing = response_framing(status, &fields, &known, head_only).map_err(|e| (e, true))?;
    let (keep_alive, lists_fields) = connection(version, &fields, &known);
    let keep_alive = keep_alive && framing != Framing::Close;
    if lists_fields {
        drop_listed_fields(&mut fields);
    }
    let mut body = H1Body {
        conn: Some(conn),
        decoder: Decoder::new(framing),
        keep_alive,
        key: key.clone(),
        limits: *limits,
        read_timeout: t.read,
        timer: None,
    };
    if let Framing::Length(n) = framing
        && n <= SMALL_BODY
    {
        let bytes = body.read_whole(n, deadline).await.map_err(|e| (e, true))?;
        return Ok(Response {
            status,
            version,
            fields,
            body: ResponseBody::Complete(bytes),
        });
    }
    Ok(Response {
        status,
        version,
        fields,
        body: ResponseBody::Stream(Box::new(body)),
    })
}

/// Serializes the request head; returns whether the body goes out chunked.
fn encode_head(out: &mut Vec<u8>, head: &Head<'_>, body: &RequestBody<'_>) -> bool {
    out.clear();
    out.extend_from_slice(head.method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(head.target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    if let Some(host) = head.host {
        out.extend_from_slice(b"host: ");
        out.extend_from_slice(host.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    let mut has_length = false;
    head.fields.for_each(|name, value| {
        if head.host.is_some() && name.eq_ignore_ascii_case(b"host") {
            return;
        }
        has_length |= name.eq_ignore_ascii_case(b"content-length");
        out.extend_from_slice(name);
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    });
    let chunked = matches!(body, RequestBody::Stream(_)) && !has_length;
    if chunked {
        out.extend_from_slice(b"transfer-encoding: chunked\r\n");
    }
    out.extend_from_slice(b"\r\n");
    chunked
}

/// The client side of a body failure, kept apart so the proxy can answer 413 or 400 instead of
/// blaming the upstream.
fn client_failure(e: &BoxError) -> Option<ClientFailure> {
    client_error(e).map(|c| ClientFailure {
        too_large: matches!(c, ClientBodyError::TooLarge),
        over_limit: matches!(c, ClientBodyError::OverLimit),
        message: c.to_string(),
    })
}

async fn write_request(
    conn: &mut Conn,
    body: RequestBody<'_>,
    chunked: bool,
    t: &Timeouts,
) -> Result<(), AttemptError> {
    let Conn { io, head, .. } = conn;
    match body {
        RequestBody::Empty => write_all(io, &[head], t.write).await,
        RequestBody::Full(b) => {
            let b = b.unwrap_or_default();
            if b.len() <= crate::transport::COALESCE_MAX {
                head.extend_from_slice(&b);
                write_all(io, &[head], t.write).await
            } else {
                write_all(io, &[head, &b], t.write).await
            }
        }
        mut streaming => {
            write_all(io, &[head], t.write).await?;
            use http_body_util::BodyExt;
            loop {
                let frame = match tokio::time::timeout(t.write, streaming.frame()).await {
                    Err(_) => return Err(AttemptError::Timeout { write: true }),
                    Ok(None) => break,
                    Ok(Some(Err(e))) => {
                        return Err(match client_failure(&e) {
                            Some(c) => AttemptError::ClientBody(c),
                            None => AttemptError::Io(io::Error::other(e)),
                        });
                    }
                    Ok(Some(Ok(f))) => f,
                };
                let Ok(data) = frame.into_data() else {
                    continue;
                };
                if data.is_empty() {
                    continue;
                }
                if chunked {
                    let mut size = [0u8; 18];
                    let size = framing::chunk_size_line(&mut size, data.len());
                    write_all(io, &[size, &data, b"\r\n"], t.write).await?;
                } else {
                    write_all(io, &[&data], t.write).await?;
                }
            }
            if chunked {
                write_all(io, &[b"0\r\n\r\n"], t.write).await?;
            }
            Ok(())
        }
    }
}

/// Writes all slices; tries without waiting first, so the usual case needs no timer.
async fn write_all(
    io: &mut Stream,
    parts: &[&[u8]],
    timeout: Duration,
) -> Result<(), AttemptError> {
    let total: usize = parts.iter().map(|p| p.len()).sum();
    let mut written = 0;
    {
        let slices: smallvec::SmallVec<[IoSlice<'_>; 4]> =
            parts.iter().map(|p| IoSlice::new(p)).collect();
        match io.try_write_vectored(&slices) {
            Ok(n) => written = n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(AttemptError::Io(e)),
        }
    }
    if written == total && !io.is_tls() {
        return Ok(());
    }
    let rest = async {
        let mut skip = written;
        for p in parts {
            if skip >= p.len() {
                skip -= p.len();
                continue;
            }
            let mut left = &p[skip..];
            while !left.is_empty() {
                match io.try_write(left) {
                    Ok(n) => left = &left[n..],
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => io.writable().await?,
                    Err(e) => return Err(e),
                }
            }
            skip = 0;
        }
        io.flush().await
    };
    match tokio::time::timeout(timeout, rest).await {
        Err(_) => Err(AttemptError::Timeout { write: true }),
        Ok(Err(e)) => Err(AttemptError::Io(e)),
        Ok(Ok(())) => Ok(()),
    }
}

/// Reads into the connection buffer once data is there; `Ok(0)` at end of stream.
///
/// A read that returns less than the buffer could take drained the socket, so its readiness is
/// cleared right away (as nginx does): the next read waits for the event loop instead of
/// spending a system call to learn that nothing is there.
async fn read_more(conn: &mut Conn, deadline: Instant) -> Result<usize, AttemptError> {
    if conn.buf.capacity() - conn.buf.len() < READ_MIN_ROOM {
        conn.buf.reserve(READ_CHUNK);
    }
    let Conn { io, buf, timer, .. } = conn;
    timer.set(deadline);
    loop {
        let ready = std::future::poll_fn(|cx| {
            if let Poll::Ready(r) = io.poll_read_ready(cx) {
                return Poll::Ready(Some(r));
            }
            timer.poll_expired(cx).map(|()| None)
        })
        .await;
        match ready {
            None => return Err(AttemptError::Timeout { write: false }),
            Some(Err(e)) => return Err(AttemptError::Io(e)),
            Some(Ok(())) => {}
        }
        match io.read_draining(buf) {
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(AttemptError::Io(e)),
        }
    }
}

async fn read_head(conn: &mut Conn, deadline: Instant) -> Result<Parsed, AttemptError> {
    loop {
        if !conn.buf.is_empty()
            && let Some(parsed) = parse_head(&mut conn.buf)?
        {
            return Ok(parsed);
        }
        if conn.buf.len() > MAX_HEAD {
            return Err(AttemptError::Upstream("response head too large".into()));
        }
        if read_more(conn, deadline).await? == 0 {
            return Err(AttemptError::Upstream(if conn.buf.is_empty() {
                "upstream closed the connection without a response".into()
            } else {
                "upstream closed the connection in the response head".into()
            }));
        }
    }
}

/// A parsed response head.
type Parsed = (StatusCode, Version, Fields, Known);

/// Parses a complete head at the start of `buf` and removes it; `None` when incomplete.
fn parse_head(buf: &mut BytesMut) -> Result<Option<Parsed>, AttemptError> {
    // Uninitialized header slots: initializing 100 of them per response showed in profiles.
    let mut storage = [std::mem::MaybeUninit::<httparse::Header<'_>>::uninit(); 100];
    let mut resp = httparse::Response::new(&mut []);
    let len = match httparse::ParserConfig::default().parse_response_with_uninit_headers(
        &mut resp,
        buf,
        &mut storage,
    ) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => {
            return Err(AttemptError::Upstream(format!(
                "invalid response head: {e}"
            )));
        }
    };
    let status = StatusCode::from_u16(resp.code.unwrap_or(0))
        .map_err(|_| AttemptError::Upstream("invalid status code".into()))?;
    let version = if resp.version == Some(0) {
        Version::HTTP_10
    } else {
        Version::HTTP_11
    };
    // Fields are kept as offsets into the head's bytes (no copy); hop-by-hop ones are marked
    // removed while scanning, so they are never relayed.
    let (spans, known) = fields::scan(buf.as_ptr(), resp.headers);
    let head = buf.split_to(len).freeze();
    let fields = Fields::from_scan(head, spans);
    Ok(Some((status, version, fields, known)))
}

fn response_framing(
    status: StatusCode,
    fields: &Fields,
    known: &Known,
    head_only: bool,
) -> Result<Framing, AttemptError> {
    if head_only
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
        || status.is_informational()
    {
        return Ok(Framing::Length(0));
    }
    if known.conflicting_length && known.transfer_encoding.is_none() {
        return Err(AttemptError::Upstream(
            "conflicting Content-Length values".into(),
        ));
    }
    framing::from_fields(
        known.transfer_encoding.and_then(|i| fields.value_at(i)),
        known
            .content_length
            .and_then(|i| fields.value_at(i))
            .into_iter(),
        false,
    )
    .map_err(|e| AttemptError::Upstream(e.to_string()))
}

/// Whether the connection stays open after this response, and whether its Connection field
/// names other fields (hop-by-hop too).
fn connection(version: Version, fields: &Fields, known: &Known) -> (bool, bool) {
    let (mut close, mut keep_alive, mut lists) = (false, false, false);
    let mut add = |v: &[u8]| {
        for t in v.split(|b| *b == b',').map(<[u8]>::trim_ascii) {
            if t.eq_ignore_ascii_case(b"close") {
                close = true;
            } else if t.eq_ignore_ascii_case(b"keep-alive") {
                keep_alive = true;
            } else if !t.is_empty() {
                lists = true;
            }
        }
    };
    if known.more_connection {
        let mut i = 0;
        while let Some(v) = fields.value_at(i) {
            if fields
                .name_at(i)
                .is_some_and(|n| n.eq_ignore_ascii_case(b"connection"))
            {
                add(v);
            }
            i += 1;
        }
    } else if let Some(v) = known.connection.and_then(|i| fields.value_at(i)) {
        add(v);
    }
    let reuse = if version == Version::HTTP_10 {
        keep_alive
    } else {
        !close
    };
    (reuse, lists)
}

/// Drops the fields a Connection field names (rare).
fn drop_listed_fields(fields: &mut Fields) {
    let mut listed: smallvec::SmallVec<[Vec<u8>; 2]> = smallvec::SmallVec::new();
    let mut i = 0;
    while let Some(v) = fields.value_at(i) {
        if fields
            .name_at(i)
            .is_some_and(|n| n.eq_ignore_ascii_case(b"connection"))
        {
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

/// A response body read from the upstream connection as the client consumes it.
pub struct H1Body {
    conn: Option<Box<Conn>>,
    decoder: Decoder,
    keep_alive: bool,
    key: PoolKey,
    limits: Limits,
    read_timeout: Duration,
    timer: Option<Pin<Box<Sleep>>>,
}

impl H1Body {
    /// Reads a body of known small length entirely, then releases the connection.
    async fn read_whole(&mut self, n: u64, deadline: Instant) -> Result<Bytes, AttemptError> {
        let n = n as usize;
        let Some(conn) = self.conn.as_mut() else {
            return Ok(Bytes::new());
        };
        while conn.buf.len() < n {
            if read_more(conn, deadline).await? == 0 {
                return Err(AttemptError::Upstream(
                    "upstream closed the connection in the body".into(),
                ));
            }
        }
        let bytes = conn.buf.split_to(n).freeze();
        self.decoder = Decoder::new(Framing::Length(0));
        self.finish();
        Ok(bytes)
    }

    /// The body is over: a clean keep-alive connection goes back to the pool.
    fn finish(&mut self) {
        if let Some(conn) = self.conn.take()
            && self.keep_alive
            && conn.buf.is_empty()
        {
            pool::checkin(self.key.clone(), conn, &self.limits);
        }
    }

    fn fail(&mut self, e: BoxError) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.conn = None;
        Poll::Ready(Some(Err(e)))
    }
}

impl Body for H1Body {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        loop {
            let Some(conn) = this.conn.as_mut() else {
                return Poll::Ready(None);
            };
            match this.decoder.decode(&mut conn.buf) {
                Ok(Step::Data(data)) => {
                    this.timer = None;
                    if this.decoder.is_done() {
                        this.finish();
                    }
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Ok(Step::End) => {
                    this.finish();
                    return Poll::Ready(None);
                }
                Ok(Step::NeedMore) => {}
                Err(e) => return this.fail(e.into()),
            }
            if conn.buf.capacity() - conn.buf.len() < READ_MIN_ROOM {
                conn.buf.reserve(READ_CHUNK);
            }
            match conn.io.try_read_buf(&mut conn.buf) {
                Ok(0) => {
                    return match this.decoder.eof() {
                        Ok(_) => {
                            // Close-delimited: the connection is done for.
                            this.conn = None;
                            Poll::Ready(None)
                        }
                        Err(e) => this.fail(e.into()),
                    };
                }
                Ok(_) => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    match conn.io.poll_read_ready(cx) {
                        Poll::Ready(Ok(())) => continue,
                        Poll::Ready(Err(e)) => return this.fail(e.into()),
                        Poll::Pending => {}
                    }
                    let timeout = this.read_timeout;
                    let timer = this
                        .timer
                        .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                    if timer.as_mut().poll(cx).is_ready() {
                        return this.fail("upstream timed out sending the body".into());
                    }
                    return Poll::Pending;
                }
                Err(e) => return this.fail(e.into()),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_head_without_copying_values() {
        let mut buf = BytesMut::from(
            &b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: 1\r\nX-A: 2\r\nKeep-Alive: 5\r\n\r\nhello"[..],
        );
        let (status, version, fields, known) = parse_head(&mut buf).unwrap().unwrap();
        assert_eq!(status, 200);
        assert_eq!(version, Version::HTTP_11);
        assert_eq!(fields.get_all("x-a").count(), 2);
        assert!(
            fields.get("keep-alive").is_none(),
            "hop-by-hop dropped while parsing"
        );
        assert_eq!(&buf[..], b"hello");
        assert_eq!(
            response_framing(status, &fields, &known, false).unwrap(),
            Framing::Length(5)
        );
        assert_eq!(
            response_framing(status, &fields, &known, true).unwrap(),
            Framing::Length(0)
        );
        let mut partial = BytesMut::from(&b"HTTP/1.1 200 OK\r\nContent-"[..]);
        assert!(parse_head(&mut partial).unwrap().is_none());
    }

    #[test]
    fn keep_alive_rules() {
        let parse = |t: &'static [u8]| parse_head(&mut BytesMut::from(t)).unwrap().unwrap();
        let (_, v, f, k) = parse(b"HTTP/1.1 200 OK\r\nConnection: Close\r\n\r\n");
        assert!(!connection(v, &f, &k).0);
        let (_, v, f, k) = parse(b"HTTP/1.1 200 OK\r\n\r\n");
        assert!(connection(v, &f, &k).0);
        let (_, v, f, k) = parse(b"HTTP/1.0 200 OK\r\n\r\n");
        assert!(!connection(v, &f, &k).0);
        let (_, v, mut f, k) = parse(b"HTTP/1.1 200 OK\r\nConnection: x-hop\r\nX-Hop: 1\r\n\r\n");
        assert_eq!(connection(v, &f, &k), (true, true));
        drop_listed_fields(&mut f);
        assert!(f.get("x-hop").is_none());
    }

    #[test]
    fn encodes_head_with_host_first() {
        let mut buf =
            BytesMut::from(&b"GET / HTTP/1.1\r\nHost: client.example\r\nX-A: 1\r\n\r\n"[..]);
        let mut slots = [httparse::EMPTY_HEADER; 4];
        let mut req = httparse::Request::new(&mut slots);
        let n = match req.parse(&buf).unwrap() {
            httparse::Status::Complete(n) => n,
            httparse::Status::Partial => panic!("partial"),
        };
        let base = buf.as_ptr() as usize;
        let spans: Vec<_> = req
            .headers
            .iter()
            .map(|h| {
                (
                    h.name.as_ptr() as usize - base,
                    h.name.len(),
                    h.value.as_ptr() as usize - base,
                    h.value.len(),
                )
            })
            .collect();
        let raw = buf.split_to(n).freeze();
        let fields = Fields::from_parsed(
            raw.clone(),
            spans
                .iter()
                .map(|&(a, b, c, d)| (&raw[a..a + b], &raw[c..c + d])),
        );
        let host = http::HeaderValue::from_static("upstream:8080");
        let head = Head {
            method: &Method::GET,
            target: "/p?q=1",
            host: Some(&host),
            fields: &fields,
            upgrade: false,
        };
        let mut out = Vec::new();
        assert!(!encode_head(&mut out, &head, &RequestBody::Empty));
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "GET /p?q=1 HTTP/1.1\r\nhost: upstream:8080\r\nX-A: 1\r\n\r\n"
        );
    }
}
