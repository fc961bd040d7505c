//! Bodies flowing through the proxy, streamed with bounded memory.
//!
//! Requests are buffered when the route asks for it (Kong's `request_buffering`, the default):
//! small bodies in memory, larger ones in an unlinked temp file, so that they can be replayed on
//! retries and sent upstream with a Content-Length. Otherwise they stream through.

use crate::http::server::ClientBody;
use crate::upstream::h1::H1Body;
use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use tokio::io::AsyncWriteExt;
use tokio::task::JoinHandle;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Size of reads from a spilled request body.
const FILE_CHUNK: usize = 64 * 1024;

/// Why the client's request body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ClientBodyError {
    #[error("request body larger than client_max_body_size")]
    TooLarge,
    /// Over a limit a plugin set (request-size-limiting).
    #[error("request body larger than a plugin's limit")]
    OverLimit,
    #[error("client stopped sending the request body")]
    Timeout,
    #[error("reading the request body: {0}")]
    Read(String),
}

/// The client's body while it streams in: over our HTTP/1 server, or over hyper (HTTP/2).
pub enum ClientStream<'a> {
    H1(ClientBody<'a>),
    Hyper {
        body: Incoming,
        seen: u64,
        /// `client_max_body_size`; 0 = unlimited.
        max: u64,
    },
    /// A body a plugin limited: counted as it streams, failing with
    /// [`ClientBodyError::OverLimit`] at the first byte past `max` (nothing more is read).
    Limited {
        inner: Box<ClientStream<'a>>,
        seen: u64,
        max: u64,
    },
}

impl Body for ClientStream<'_> {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            ClientStream::H1(b) => Pin::new(b).poll_frame(cx),
            ClientStream::Hyper { body, seen, max } => {
                let frame = ready!(Pin::new(body).poll_frame(cx));
                if let Some(Ok(f)) = &frame
                    && let Some(d) = f.data_ref()
                {
                    *seen += d.len() as u64;
                    if *max > 0 && *seen > *max {
                        return Poll::Ready(Some(Err(ClientBodyError::TooLarge.into())));
                    }
                }
                Poll::Ready(
                    frame.map(|f| f.map_err(|e| ClientBodyError::Read(e.to_string()).into())),
                )
            }
            ClientStream::Limited { inner, seen, max } => {
                if *seen > *max {
                    return Poll::Ready(Some(Err(ClientBodyError::OverLimit.into())));
                }
                let frame = ready!(Pin::new(&mut **inner).poll_frame(cx));
                if let Some(Ok(f)) = &frame
                    && let Some(d) = f.data_ref()
                {
                    *seen += d.len() as u64;
                    if *seen > *max {
                        return Poll::Ready(Some(Err(ClientBodyError::OverLimit.into())));
                    }
                }
                Poll::Ready(frame)
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ClientStream::H1(b) => b.is_end_stream(),
            ClientStream::Hyper { body, .. } => body.is_end_stream(),
            ClientStream::Limited { inner, .. } => inner.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ClientStream::H1(b) => b.size_hint(),
            ClientStream::Hyper { body, .. } => body.size_hint(),
            ClientStream::Limited { inner, .. } => inner.size_hint(),
        }
    }
}

/// The body sent to an upstream.
pub enum RequestBody<'a> {
    Empty,
    Full(Option<Bytes>),
    /// A spilled body, read by position so that attempts do not share a file offset.
    File(FileBody),
    /// Streaming from the client; cannot be replayed.
    Stream(ClientStream<'a>),
}

impl std::fmt::Debug for RequestBody<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RequestBody::Empty => f.write_str("Empty"),
            RequestBody::Full(b) => write!(f, "Full({:?})", b.as_ref().map(Bytes::len)),
            RequestBody::File(fb) => write!(f, "File({})", fb.len),
            RequestBody::Stream(..) => f.write_str("Stream"),
        }
    }
}

impl<'a> RequestBody<'a> {
    /// The body under a plugin's limit: `None` when it is known to be over it already; a
    /// streaming body is counted as it is read.
    pub fn limited(self, max: u64) -> Option<RequestBody<'a>> {
        match self {
            RequestBody::Stream(s) if s.size_hint().lower() > max => None,
            RequestBody::Stream(s) => Some(RequestBody::Stream(ClientStream::Limited {
                inner: Box::new(s),
                seen: 0,
                max,
            })),
            other => other.known_len().is_none_or(|n| n <= max).then_some(other),
        }
    }

    /// A fresh copy for another attempt, when the body is buffered.
    pub fn replay(&self) -> Option<RequestBody<'a>> {
        match self {
            RequestBody::Empty => Some(RequestBody::Empty),
            RequestBody::Full(b) => Some(RequestBody::Full(b.clone())),
            RequestBody::File(fb) => {
                Some(RequestBody::File(FileBody::new(fb.file.clone(), fb.len)))
            }
            RequestBody::Stream(..) => None,
        }
    }

    /// The same body, no longer tied to the client connection's buffers: for an upstream
    /// connection that sends it from another task (HTTP/2). `None` for a body still streaming
    /// off our HTTP/1 server.
    pub fn detach(self) -> Option<RequestBody<'static>> {
        fn stream(s: ClientStream<'_>) -> Option<ClientStream<'static>> {
            Some(match s {
                ClientStream::H1(_) => return None,
                ClientStream::Hyper { body, seen, max } => ClientStream::Hyper { body, seen, max },
                ClientStream::Limited { inner, seen, max } => ClientStream::Limited {
                    inner: Box::new(stream(*inner)?),
                    seen,
                    max,
                },
            })
        }
        Some(match self {
            RequestBody::Empty => RequestBody::Empty,
            RequestBody::Full(b) => RequestBody::Full(b),
            RequestBody::File(f) => RequestBody::File(f),
            RequestBody::Stream(s) => RequestBody::Stream(stream(s)?),
        })
    }

    /// Whether the client waits for `100 Continue` before it sends the body.
    pub fn expects_continue(&self) -> bool {
        matches!(self, RequestBody::Stream(ClientStream::H1(b)) if b.expects_continue())
    }

    /// The exact length when known up front (buffered bodies).
    pub fn known_len(&self) -> Option<u64> {
        match self {
            RequestBody::Empty => Some(0),
            RequestBody::Full(b) => Some(b.as_ref().map_or(0, |b| b.len() as u64)),
            RequestBody::File(fb) => Some(fb.len),
            RequestBody::Stream(..) => None,
        }
    }
}

impl Body for RequestBody<'_> {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            RequestBody::Empty => Poll::Ready(None),
            RequestBody::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            RequestBody::File(fb) => fb.poll_chunk(cx),
            RequestBody::Stream(s) => Pin::new(s).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            RequestBody::Empty => true,
            RequestBody::Full(b) => b.is_none(),
            RequestBody::File(fb) => fb.offset >= fb.len,
            RequestBody::Stream(s) => s.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            RequestBody::Stream(s) => s.size_hint(),
            RequestBody::File(fb) => SizeHint::with_exact(fb.len - fb.offset.min(fb.len)),
            other => other
                .known_len()
                .map_or_else(SizeHint::default, SizeHint::with_exact),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BufferError {
    #[error(transparent)]
    Client(ClientBodyError),
    #[error("request body temp file: {0}")]
    Io(#[from] std::io::Error),
}

/// The client-side cause of a body error, when there is one.
pub fn client_error(e: &BoxError) -> Option<&ClientBodyError> {
    e.downcast_ref::<ClientBodyError>()
}

/// Reads the whole client body: in memory up to `memory_limit`, then into an unlinked temp file
/// in `temp_dir`. `max_size` 0 means unlimited.
pub async fn buffer<'a>(
    mut body: ClientStream<'a>,
    memory_limit: usize,
    max_size: u64,
    temp_dir: &Path,
) -> Result<RequestBody<'a>, BufferError> {
    use http_body_util::BodyExt;
    let mut mem = BytesMut::new();
    let mut first: Option<Bytes> = None;
    let mut spill: Option<(std::fs::File, tokio::fs::File)> = None;
    let mut total: u64 = 0;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            BufferError::Client(match client_error(&e) {
                Some(ClientBodyError::TooLarge) => ClientBodyError::TooLarge,
                Some(ClientBodyError::Timeout) => ClientBodyError::Timeout,
                Some(ClientBodyError::OverLimit) => ClientBodyError::OverLimit,
                _ => ClientBodyError::Read(e.to_string()),
            })
        })?;
        let Ok(data) = frame.into_data() else {
            continue; // trailers are not forwarded on buffered bodies
        };
        total += data.len() as u64;
        if max_size > 0 && total > max_size {
            return Err(BufferError::Client(ClientBodyError::TooLarge));
        }
        if let Some((_, f)) = spill.as_mut() {
            f.write_all(&data).await?;
            continue;
        }
        if first.is_none() && mem.is_empty() {
            // Most bodies arrive in one chunk: keep it without copying.
            first = Some(data);
            continue;
        }
        if let Some(f) = first.take() {
            mem.extend_from_slice(&f);
        }
        mem.extend_from_slice(&data);
        if mem.len() > memory_limit {
            let (std_file, mut file) = temp_file(temp_dir).await?;
            file.write_all(&mem).await?;
            mem = BytesMut::new();
            spill = Some((std_file, file));
        }
    }
    if let Some((std_file, mut file)) = spill {
        file.flush().await?;
        return Ok(RequestBody::File(FileBody::new(Arc::new(std_file), total)));
    }
    if let Some(f) = first {
        if f.len() > memory_limit {
            let (std_file, mut file) = temp_file(temp_dir).await?;
            file.write_all(&f).await?;
            file.flush().await?;
            return Ok(RequestBody::File(FileBody::new(Arc::new(std_file), total)));
        }
        return Ok(RequestBody::Full(Some(f)));
    }
    if mem.is_empty() {
        Ok(RequestBody::Empty)
    } else {
        Ok(RequestBody::Full(Some(mem.freeze())))
    }
}

/// A temp file that is already unlinked: nothing is left behind, even after a crash.
async fn temp_file(dir: &Path) -> std::io::Result<(std::fs::File, tokio::fs::File)> {
    let name = dir.join(format!("body-{:032x}", rand::random::<u128>()));
    let file = tokio::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&name)
        .await?;
    tokio::fs::remove_file(&name).await?;
    let std_file = file.into_std().await;
    let writer = tokio::fs::File::from_std(std_file.try_clone()?);
    Ok((std_file, writer))
}

/// The body sent to the client: a relayed upstream body or one the gateway made.
pub enum ResponseBody {
    Empty,
    Full(Option<Bytes>),
    /// Boxed: only large, streamed bodies take this form.
    Upstream(Box<H1Body>),
    /// Passing through plugins' `body_filter` and `log`.
    Hooked(Box<crate::request::plugins::Hooked>),
    /// No body: a `101` whose connections are joined once its head is sent.
    Upgrade(Box<crate::websocket::Tunnel>),
    /// From an HTTP/2 upstream (gRPC), trailers included.
    H2(Box<crate::upstream::h2::H2Body>),
}

impl ResponseBody {
    pub fn full(b: impl Into<Bytes>) -> Self {
        ResponseBody::Full(Some(b.into()))
    }

    /// Tells a body whose request is logged how long the response head written before it was.
    pub(crate) fn head_sent(&mut self, len: usize) {
        if let ResponseBody::Hooked(h) = self {
            h.head_sent(len);
        }
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            ResponseBody::Empty | ResponseBody::Upgrade(_) => Poll::Ready(None),
            ResponseBody::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            ResponseBody::Upstream(u) => Pin::new(u).poll_frame(cx),
            ResponseBody::Hooked(h) => h.poll_frame(cx),
            ResponseBody::H2(b) => Pin::new(&mut **b).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ResponseBody::Empty | ResponseBody::Upgrade(_) => true,
            ResponseBody::Full(b) => b.is_none(),
            ResponseBody::Upstream(u) => u.is_end_stream(),
            ResponseBody::Hooked(h) => h.is_end_stream(),
            ResponseBody::H2(b) => b.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ResponseBody::Empty | ResponseBody::Upgrade(_) => SizeHint::with_exact(0),
            ResponseBody::Full(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            ResponseBody::Upstream(u) => u.size_hint(),
            ResponseBody::Hooked(h) => h.size_hint(),
            ResponseBody::H2(b) => b.size_hint(),
        }
    }
}

/// A spilled request body, read in chunks off the worker thread.
pub struct FileBody {
    file: Arc<std::fs::File>,
    len: u64,
    offset: u64,
    pending: Option<JoinHandle<std::io::Result<Vec<u8>>>>,
}

impl FileBody {
    fn new(file: Arc<std::fs::File>, len: u64) -> Self {
        FileBody {
            file,
            len,
            offset: 0,
            pending: None,
        }
    }

    fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if self.offset >= self.len {
            return Poll::Ready(None);
        }
        let job = self.pending.get_or_insert_with(|| {
            let file = self.file.clone();
            let offset = self.offset;
            let want = (self.len - offset).min(FILE_CHUNK as u64) as usize;
            tokio::task::spawn_blocking(move || {
                use std::os::unix::fs::FileExt;
                let mut buf = vec![0u8; want];
                let n = file.read_at(&mut buf, offset)?;
                buf.truncate(n);
                Ok(buf)
            })
        });
        let result = ready!(Pin::new(job).poll(cx));
        self.pending = None;
        let chunk = match result {
            Ok(Ok(c)) if !c.is_empty() => c,
            Ok(Ok(_)) => {
                return Poll::Ready(Some(Err("request body temp file ended early".into())));
            }
            Ok(Err(e)) => return Poll::Ready(Some(Err(e.into()))),
            Err(e) => return Poll::Ready(Some(Err(e.into()))),
        };
        self.offset += chunk.len() as u64;
        Poll::Ready(Some(Ok(Frame::data(Bytes::from(chunk)))))
    }
}
