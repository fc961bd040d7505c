//! A scriptable upstream server for the tests. Behaviour is chosen by the request path:
//! `.../status/<code>` answers that status, `.../delay/<ms>` waits first, `.../hang` never
//! answers, `.../big/<n>` streams n bytes (chunked with `x-no-length`), `.../bigjson/<n>`
//! streams a JSON object of about n bytes without Content-Length, `.../sink` counts the body
//! without keeping it; any
//! other path echoes the request back as JSON, with the peer address the request came from (so
//! tests can tell upstream connections apart). A request header `x-set-response-header:
//! name=value` makes the echo (and `/big`) add that header to its response. A server can be
//! made slow ([`Upstream::set_delay`]) or to answer every request with one status
//! ([`Upstream::set_status`]) while it runs.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

/// What the echo endpoint saw.
#[derive(Debug, Deserialize)]
pub struct Echo {
    pub method: String,
    /// Path and query as received.
    pub uri: String,
    pub headers: BTreeMap<String, String>,
    pub body: String,
    pub body_len: usize,
    pub version: String,
    pub upstream: String,
    /// The address the request arrived from (the gateway's side of the upstream connection).
    #[serde(default)]
    pub peer: String,
}

impl Echo {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

pub struct Upstream {
    pub addr: SocketAddr,
    pub name: String,
    pub hits: Arc<AtomicUsize>,
    /// TCP connections accepted so far.
    pub conns: Arc<AtomicUsize>,
    behaviour: Arc<Behaviour>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// What every request to a server gets, changeable while it runs.
#[derive(Default)]
struct Behaviour {
    delay_ms: AtomicU64,
    /// 0: the status the path asks for.
    status: AtomicU16,
}

impl Upstream {
    /// Starts on an ephemeral loopback port.
    pub fn start(name: &str) -> Upstream {
        Self::start_on("127.0.0.1:0".parse().unwrap(), name)
    }

    pub fn start_on(addr: SocketAddr, name: &str) -> Upstream {
        Self::try_start_on(addr, name).unwrap_or_else(|e| panic!("bind {addr}: {e}"))
    }

    /// Like `start_on`, but reports a failure to bind (e.g. a privileged port).
    pub fn try_start_on(addr: SocketAddr, name: &str) -> std::io::Result<Upstream> {
        Self::serve(addr, name, None)
    }

    /// The same behaviour over TLS with the given server configuration (a failed handshake
    /// closes the connection).
    pub fn start_tls(name: &str, config: Arc<rustls::ServerConfig>) -> Upstream {
        Self::serve("127.0.0.1:0".parse().unwrap(), name, Some(config)).unwrap()
    }

    fn serve(
        addr: SocketAddr,
        name: &str,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> std::io::Result<Upstream> {
        let tls = tls.map(tokio_rustls::TlsAcceptor::from);
        let std_listener = std::net::TcpListener::bind(addr)?;
        std_listener.set_nonblocking(true)?;
        let addr = std_listener.local_addr()?;
        let hits = Arc::new(AtomicUsize::new(0));
        let conns = Arc::new(AtomicUsize::new(0));
        let conns_c = conns.clone();
        let behaviour = Arc::new(Behaviour::default());
        let behaviour_c = behaviour.clone();
        let (tx, mut rx) = tokio::sync::oneshot::channel::<()>();
        let name_s = name.to_string();
        let hits_c = hits.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(std_listener).unwrap();
                loop {
                    let (stream, peer) = tokio::select! {
                        r = listener.accept() => match r { Ok(x) => x, Err(_) => continue },
                        _ = &mut rx => break,
                    };
                    conns_c.fetch_add(1, Ordering::Relaxed);
                    let name = name_s.clone();
                    let hits = hits_c.clone();
                    let tls = tls.clone();
                    let behaviour = behaviour_c.clone();
                    tokio::spawn(async move {
                        let svc = service_fn(move |req| {
                            hits.fetch_add(1, Ordering::Relaxed);
                            respond(req, name.clone(), peer, behaviour.clone())
                        });
                        let builder =
                            hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                        match tls {
                            None => {
                                let _ = builder.serve_connection(TokioIo::new(stream), svc).await;
                            }
                            Some(acceptor) => {
                                if let Ok(s) = acceptor.accept(stream).await {
                                    let _ = builder.serve_connection(TokioIo::new(s), svc).await;
                                }
                            }
                        }
                    });
                }
            });
        });
        Ok(Upstream {
            addr,
            name: name.to_string(),
            hits,
            conns,
            behaviour,
            stop: Some(tx),
            thread: Some(thread),
        })
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::Relaxed)
    }

    /// TCP connections accepted so far.
    pub fn conns(&self) -> usize {
        self.conns.load(Ordering::Relaxed)
    }

    /// Makes every request wait this long before it is answered.
    pub fn set_delay(&self, delay: Duration) {
        self.behaviour
            .delay_ms
            .store(delay.as_millis() as u64, Ordering::Relaxed);
    }

    /// Makes every echoed request answer this status (`None`: the one its path asks for).
    pub fn set_status(&self, status: Option<u16>) {
        self.behaviour
            .status
            .store(status.unwrap_or(0), Ordering::Relaxed);
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

type Body = http_body_util::combinators::BoxBody<Bytes, Infallible>;

fn full(b: impl Into<Bytes>) -> Body {
    Full::new(b.into()).boxed()
}

fn segment_after<'a>(path: &'a str, key: &str) -> Option<&'a str> {
    let idx = path.find(key)?;
    path[idx + key.len()..].split(['/', '?']).next()
}

fn header_str(req: &Request<Incoming>, name: &str) -> Option<String> {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

async fn respond(
    req: Request<Incoming>,
    name: String,
    peer: SocketAddr,
    behaviour: Arc<Behaviour>,
) -> Result<Response<Body>, Infallible> {
    let delay = behaviour.delay_ms.load(Ordering::Relaxed);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    let path = req.uri().path().to_string();
    if let Some(ms) = segment_after(&path, "/delay/").and_then(|s| s.parse::<u64>().ok()) {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    if path.contains("/hang") {
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
    if let Some(n) = segment_after(&path, "/big/").and_then(|s| s.parse::<u64>().ok()) {
        let chunk = Bytes::from(vec![b'x'; 64 * 1024]);
        let chunks = n / chunk.len() as u64;
        let rest = (n % chunk.len() as u64) as usize;
        let stream = futures_stream(chunk, chunks, rest);
        let mut resp = Response::new(StreamBody::new(stream).boxed());
        // `x-no-length`: sent chunked, its size unknown until the end.
        if header_str(&req, "x-no-length").is_none() {
            resp.headers_mut()
                .insert("content-length", n.to_string().parse().unwrap());
        }
        resp.headers_mut()
            .insert("x-upstream-name", name.parse().unwrap());
        if let Some((k, v)) = header_str(&req, "x-set-response-header")
            .as_deref()
            .and_then(|s| s.split_once('='))
        {
            resp.headers_mut().insert(
                hyper::header::HeaderName::from_bytes(k.trim().as_bytes()).unwrap(),
                v.trim().parse().unwrap(),
            );
        }
        return Ok(resp);
    }
    if let Some(n) = segment_after(&path, "/bigjson/").and_then(|s| s.parse::<u64>().ok()) {
        // About n bytes of JSON object, streamed chunked: {"pad":"xx…","end":true}.
        let chunk = Bytes::from(vec![b'x'; 64 * 1024]);
        let pad = n.saturating_sub(32);
        let chunks = pad / chunk.len() as u64;
        let rest = (pad % chunk.len() as u64) as usize;
        let mut parts = vec![Bytes::from_static(b"{\"pad\":\"")];
        parts.extend((0..chunks).map(|_| chunk.clone()));
        parts.push(chunk.slice(..rest));
        parts.push(Bytes::from_static(b"\",\"end\":true}"));
        let stream = Parts(parts.into_iter());
        let mut resp = Response::new(StreamBody::new(stream).boxed());
        resp.headers_mut()
            .insert("content-type", "application/json".parse().unwrap());
        return Ok(resp);
    }
    if path.contains("/sink") {
        // What framed the body: the sink reports it along with the byte count.
        let content_length = header_str(&req, "content-length");
        let transfer_encoding = header_str(&req, "transfer-encoding");
        let mut body = req.into_body();
        let mut n: u64 = 0;
        while let Some(Ok(f)) = body.frame().await {
            if let Ok(d) = f.into_data() {
                n += d.len() as u64;
            }
        }
        let reply = serde_json::json!({
            "received": n,
            "content_length": content_length,
            "transfer_encoding": transfer_encoding,
            "peer": peer.to_string(),
        });
        let mut resp = Response::new(full(reply.to_string()));
        resp.headers_mut()
            .insert("x-upstream-name", name.parse().unwrap());
        return Ok(resp);
    }
    let status = match behaviour.status.load(Ordering::Relaxed) {
        0 => segment_after(&path, "/status/")
            .and_then(|s| s.parse::<u16>().ok())
            .unwrap_or(200),
        forced => forced,
    };
    let extra_header = header_str(&req, "x-set-response-header");
    let method = req.method().to_string();
    let uri = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let version = format!("{:?}", req.version());
    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    for (k, v) in req.headers() {
        let v = v.to_str().unwrap_or("<bin>").to_string();
        headers
            .entry(k.as_str().to_string())
            .and_modify(|e| {
                e.push_str(", ");
                e.push_str(&v)
            })
            .or_insert(v);
    }
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let echo = serde_json::json!({
        "method": method,
        "uri": uri,
        "headers": headers,
        "body": String::from_utf8_lossy(&body[..body.len().min(4096)]),
        "body_len": body.len(),
        "version": version,
        "upstream": name,
        "peer": peer.to_string(),
    });
    let mut resp = Response::new(full(echo.to_string()));
    *resp.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
    let h = resp.headers_mut();
    h.insert("content-type", "application/json".parse().unwrap());
    h.insert("x-upstream-name", name.parse().unwrap());
    h.insert("connection", "keep-alive, x-hop".parse().unwrap());
    h.insert("x-hop", "must-not-reach-client".parse().unwrap());
    h.insert("keep-alive", "timeout=60".parse().unwrap());
    if let Some((k, v)) = extra_header.as_deref().and_then(|s| s.split_once('=')) {
        h.insert(
            hyper::header::HeaderName::from_bytes(k.trim().as_bytes()).unwrap(),
            v.trim().parse().unwrap(),
        );
    }
    Ok(resp)
}

fn futures_stream(
    chunk: Bytes,
    chunks: u64,
    rest: usize,
) -> impl futures_core::Stream<Item = Result<Frame<Bytes>, Infallible>> + Send {
    struct S {
        chunk: Bytes,
        left: u64,
        rest: usize,
    }
    impl futures_core::Stream for S {
        type Item = Result<Frame<Bytes>, Infallible>;
        fn poll_next(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Self::Item>> {
            if self.left > 0 {
                self.left -= 1;
                return std::task::Poll::Ready(Some(Ok(Frame::data(self.chunk.clone()))));
            }
            if self.rest > 0 {
                let r = self.chunk.slice(..self.rest);
                self.rest = 0;
                return std::task::Poll::Ready(Some(Ok(Frame::data(r))));
            }
            std::task::Poll::Ready(None)
        }
    }
    S {
        chunk,
        left: chunks,
        rest,
    }
}

/// A body of these pieces, one frame each.
struct Parts(std::vec::IntoIter<Bytes>);

impl futures_core::Stream for Parts {
    type Item = Result<Frame<Bytes>, Infallible>;
    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        std::task::Poll::Ready(self.0.next().map(|b| Ok(Frame::data(b))))
    }
}
