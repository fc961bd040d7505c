//! Proxy workers: one OS thread per worker, each with its own single-threaded event loop and its
//! own listening sockets (thread-per-core, like nginx workers). Nothing on the request path is
//! shared between workers except the read-only snapshot.

use crate::request::{ConnInfo, handle_hyper};
use crate::state::Shared;
use crate::tls::accept::{Handshaken, handshake};
use crate::transport::Stream;
use crate::upstream::pool;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::LocalSet;

/// How long an idle client connection is kept between requests.
const CLIENT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// How often idle upstream connections past their timeout are closed.
const POOL_SWEEP_EVERY: Duration = Duration::from_secs(5);

/// Runs h2 stream and connection tasks on the worker's own thread.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LocalExec;

impl<F> hyper::rt::Executor<F> for LocalExec
where
    F: Future + 'static,
{
    fn execute(&self, fut: F) {
        tokio::task::spawn_local(fut);
    }
}

/// A worker's listening socket, with the TLS configuration of `ssl` listeners.
#[derive(Debug)]
pub struct Listening {
    pub socket: std::net::TcpListener,
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

/// Starts a worker thread serving the given listeners until `shutdown` turns true; in-flight
/// connections then get `grace` to finish.
pub fn spawn(
    index: usize,
    listeners: Vec<Listening>,
    streams: Vec<crate::stream::StreamListener>,
    shared: Arc<Shared>,
    shutdown: watch::Receiver<bool>,
    grace: Duration,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name(format!("silverback-worker-{index}"))
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    tracing::error!(error = %e, "cannot start worker runtime");
                    return;
                }
            };
            let local = LocalSet::new();
            local.block_on(&rt, run(index, listeners, streams, shared, shutdown, grace));
        })
}

async fn run(
    index: usize,
    listeners: Vec<Listening>,
    streams: Vec<crate::stream::StreamListener>,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
    grace: Duration,
) {
    let (conns_done_tx, mut conns_done) = watch::channel(());
    for Listening { socket, tls } in listeners {
        let listener = match TcpListener::from_std(socket) {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(error = %e, "cannot use listening socket");
                continue;
            }
        };
        let shared = shared.clone();
        let shutdown = shutdown.clone();
        let done = conns_done_tx.clone();
        tokio::task::spawn_local(accept_loop(index, listener, tls, shared, shutdown, done));
    }
    crate::stream::spawn_accept_loops(index, streams, &shared, &shutdown, &conns_done_tx);
    drop(conns_done_tx);
    let limits = shared.settings.keepalive;
    tokio::task::spawn_local(async move {
        let mut tick = tokio::time::interval(POOL_SWEEP_EVERY);
        loop {
            tick.tick().await;
            pool::sweep(&limits);
        }
    });
    let _ = shutdown.wait_for(|stop| *stop).await;
    // Every accept loop and connection holds a sender; wait for all of them to go, within grace.
    let _ =
        tokio::time::timeout(grace, async { while conns_done.changed().await.is_ok() {} }).await;
}

async fn accept_loop(
    index: usize,
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
    done: watch::Sender<()>,
) {
    let local = listener.local_addr().ok();
    while let Some((stream, peer, local)) =
        accept(&listener, local, &mut shutdown, &shared, index).await
    {
        let mut info = ConnInfo::new(shared.clone(), index, peer, local);
        let shutdown = shutdown.clone();
        let done = done.clone();
        let tls = tls.clone();
        let shared = shared.clone();
        tokio::task::spawn_local(async move {
            match tls {
                None => serve(stream, Arc::new(info), shutdown).await,
                Some(config) => {
                    let _ = stream.set_nodelay(true);
                    match handshake(&config, stream).await {
                        Ok((conn, negotiated)) => {
                            info.tls = true;
                            info.sni = negotiated.sni;
                            serve_tls(conn, Arc::new(info), shutdown).await;
                        }
                        Err(e) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                    }
                }
            }
            shared.worker(index).active.fetch_sub(1, Ordering::Relaxed);
            drop(done);
        });
    }
}

/// The next connection on `listener` (with its peer and local addresses), counted as accepted
/// and active in the worker's stats; `None` once shutdown begins. `local` is the listener's
/// address, for sockets that cannot tell their own.
pub(crate) async fn accept(
    listener: &TcpListener,
    local: Option<SocketAddr>,
    shutdown: &mut watch::Receiver<bool>,
    shared: &Shared,
    index: usize,
) -> Option<(TcpStream, SocketAddr, SocketAddr)> {
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = shutdown.wait_for(|s| *s) => return None,
        };
        let (stream, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                // Out of file descriptors and similar: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Some(local) = stream.local_addr().ok().or(local) else {
            continue;
        };
        let stats = shared.worker(index);
        stats.accepted.fetch_add(1, Ordering::Relaxed);
        stats.active.fetch_add(1, Ordering::Relaxed);
        return Some((stream, peer, local));
    }
}

/// The HTTP/2 connection preface a prior-knowledge (h2c) client starts with.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Which protocol a new connection speaks, from its first bytes (peeked, not consumed).
enum Protocol {
    Http1,
    Http2,
    /// Too few bytes to tell: let hyper decide while reading.
    Unknown,
}

async fn sniff(stream: &TcpStream) -> Protocol {
    let mut buf = [0u8; 24];
    match stream.peek(&mut buf).await {
        Ok(n) if n >= H2_PREFACE.len() && buf == H2_PREFACE => Protocol::Http2,
        Ok(n) if n > 0 && H2_PREFACE.starts_with(&buf[..n]) => Protocol::Unknown,
        _ => Protocol::Http1,
    }
}

/// A TLS connection after its handshake: HTTP/1.x through our codec, h2 through hyper.
async fn serve_tls(conn: Handshaken, info: Arc<ConnInfo>, shutdown: watch::Receiver<bool>) {
    match conn {
        Handshaken::Http1(stream) => crate::http::server::serve(stream, info, shutdown).await,
        Handshaken::Http2(tls) => {
            let peer = info.peer;
            if let Err(e) = serve_h2(TokioIo::new(*tls), info, shutdown).await {
                tracing::debug!(%peer, error = %e, "client connection ended with an error");
            }
        }
    }
}

/// Serves an HTTP/2 connection with hyper until it ends or the worker stops.
async fn serve_h2<I>(
    io: I,
    info: Arc<ConnInfo>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), String>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + 'static,
{
    let svc = service_fn(move |req| handle_hyper(req, info.clone()));
    let conn = hyper::server::conn::http2::Builder::new(LocalExec)
        .timer(TokioTimer::new())
        .serve_connection(io, svc);
    tokio::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => r.map_err(|e| e.to_string()),
        _ = shutdown.wait_for(|s| *s) => {
            conn.as_mut().graceful_shutdown();
            conn.await.map_err(|e| e.to_string())
        }
    }
}

async fn serve(stream: TcpStream, info: Arc<ConnInfo>, mut shutdown: watch::Receiver<bool>) {
    let _ = stream.set_nodelay(true);
    let peer: SocketAddr = info.peer;
    let protocol = sniff(&stream).await;
    if let Protocol::Http1 = protocol {
        // Plain HTTP/1.x: our own server codec, the fast path.
        return crate::http::server::serve(Stream::Plain(stream), info, shutdown).await;
    }
    let result = if let Protocol::Http2 = protocol {
        serve_h2(TokioIo::new(stream), info, shutdown).await
    } else {
        let svc = service_fn(move |req| handle_hyper(req, info.clone()));
        let io = TokioIo::new(stream);
        // Too few bytes to tell yet: hyper reads on and decides.
        let mut builder = auto::Builder::new(LocalExec);
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(CLIENT_IDLE_TIMEOUT)
            .keep_alive(true);
        builder.http2().timer(TokioTimer::new());
        let conn = builder.serve_connection_with_upgrades(io, svc);
        tokio::pin!(conn);
        tokio::select! {
            r = conn.as_mut() => r.map_err(|e| e.to_string()),
            _ = shutdown.wait_for(|s| *s) => {
                conn.as_mut().graceful_shutdown();
                conn.await.map_err(|e| e.to_string())
            }
        }
    };
    if let Err(e) = result {
        tracing::debug!(%peer, error = %e, "client connection ended with an error");
    }
}
