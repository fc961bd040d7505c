//! HTTP/2 to upstreams (gRPC services): h2c with prior knowledge to grpc services, h2 over TLS
//! to grpcs ones, over hyper's client; one multiplexed connection per upstream address (and TLS
//! settings and name) and worker, opened on first use and replaced once it closes. Bodies stream both ways; trailers come back as the response body's last
//! frame.

use super::pool::PoolKey;
use super::{AttemptError, Connected, Timeouts, TlsTarget};
use crate::body::BoxError;
use crate::worker::LocalExec;
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::Sleep;

/// A request body on its way to an HTTP/2 upstream (it outlives the request's task, since the
/// connection's task sends it).
pub type H2RequestBody = Pin<Box<dyn Body<Data = Bytes, Error = BoxError>>>;

type Sender = SendRequest<H2RequestBody>;

thread_local! {
    /// This worker's connections, by upstream address and TLS settings.
    static CONNS: RefCell<HashMap<PoolKey, Sender, rustc_hash::FxBuildHasher>> =
        RefCell::new(HashMap::default());
}

/// The worker's connection for `key`, or a new one (TCP, TLS when `tls` is given, and the
/// HTTP/2 handshake, all within the connect timeout).
async fn connection(
    key: &PoolKey,
    tls: Option<&TlsTarget>,
    connect_timeout: Duration,
) -> Result<Sender, AttemptError> {
    let open = CONNS.with(|c| c.borrow().get(key).filter(|s| !s.is_closed()).cloned());
    if let Some(sender) = open {
        return Ok(sender);
    }
    let connecting = async {
        match super::connect(key.addr, connect_timeout, tls).await? {
            Connected::Plain(tcp) => handshake(TokioIo::new(tcp), key).await,
            Connected::Tls(t) => handshake(TokioIo::new(*t), key).await,
        }
    };
    let sender = tokio::time::timeout(connect_timeout, connecting)
        .await
        .map_err(|_| AttemptError::ConnectTimeout)??;
    CONNS.with(|c| c.borrow_mut().insert(key.clone(), sender.clone()));
    Ok(sender)
}

/// The HTTP/2 handshake; the connection then runs in its own task on this worker.
async fn handshake<T>(io: T, key: &PoolKey) -> Result<Sender, AttemptError>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + 'static,
{
    let (sender, conn) = hyper::client::conn::http2::Builder::new(LocalExec)
        .timer(TokioTimer::new())
        .handshake::<_, H2RequestBody>(io)
        .await
        .map_err(|e| AttemptError::Connect(io::Error::other(e)))?;
    let addr = key.addr;
    tokio::task::spawn_local(async move {
        if let Err(e) = conn.await {
            tracing::debug!(upstream = %addr, error = %e, "HTTP/2 upstream connection ended");
        }
    });
    Ok(sender)
}

/// Forgets a connection that could not take a request.
fn forget(key: &PoolKey) {
    CONNS.with(|c| c.borrow_mut().remove(key));
}

/// Sends one request and waits (up to the read timeout) for the response head. On failure,
/// the request comes back when it was never handed to the connection, so it may be retried.
pub async fn send(
    key: &PoolKey,
    tls: Option<&TlsTarget>,
    t: &Timeouts,
    req: http::Request<H2RequestBody>,
) -> Result<http::Response<Incoming>, (AttemptError, Option<http::Request<H2RequestBody>>)> {
    let mut sender = match connection(key, tls, t.connect).await {
        Ok(s) => s,
        Err(e) => return Err((e, Some(req))),
    };
    match tokio::time::timeout(t.read, sender.try_send_request(req)).await {
        Err(_) => Err((AttemptError::Timeout { write: false }, None)),
        Ok(Ok(resp)) => Ok(resp),
        Ok(Err(mut e)) => {
            let unsent = e.take_message();
            if unsent.is_some() {
                forget(key);
            }
            let err = io::Error::other(e.into_error());
            Err((AttemptError::Io(err), unsent))
        }
    }
}

/// An HTTP/2 response body relayed to the client, failing when the upstream sends nothing for
/// the read timeout (nginx's `grpc_read_timeout` between two reads).
pub struct H2Body {
    inner: Incoming,
    read_timeout: Duration,
    timer: Option<Pin<Box<Sleep>>>,
}

impl H2Body {
    pub fn new(inner: Incoming, read_timeout: Duration) -> H2Body {
        H2Body {
            inner,
            read_timeout,
            timer: None,
        }
    }
}

impl Body for H2Body {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                this.timer = None;
                Poll::Ready(frame.map(|f| f.map_err(Into::into)))
            }
            Poll::Pending => {
                let timeout = this.read_timeout;
                let timer = this
                    .timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                if timer.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Some(Err("upstream timed out sending the body".into())));
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
