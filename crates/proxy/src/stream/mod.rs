//! The stream proxy (`stream_listen`): TCP connections routed by Kong's stream routes
//! (protocols tcp, tls, tls_passthrough) to a service, whose bytes are then relayed both ways,
//! and UDP datagrams routed by udp routes ([`udp`]).
//!
//! A plain listener routes on the connection's addresses. An `ssl` listener first reads the
//! TLS ClientHello's server name without consuming it (`sni.rs`), routes with it too, and then,
//! as Kong's preread server does, relays the encrypted bytes untouched for a tls_passthrough
//! route, or terminates TLS for a tls route with the certificate the proxy's `snis` select.

mod forward;
pub mod sni;
mod udp;

use crate::request::ConnInfo;
use crate::snapshot::CompiledService;
use crate::state::Shared;
use silverback_model::entities::Route;
use silverback_router::{RouteSpec, StreamRequest, StreamRouter};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use uuid::Uuid;

/// How long a client on an `ssl` stream listener has to send its ClientHello (nginx's
/// `preread_timeout`).
const PREREAD_TIMEOUT: Duration = Duration::from_secs(30);

/// One `stream_listen` socket of a worker.
#[derive(Debug)]
pub struct StreamListener {
    pub socket: StreamSocket,
    /// The `ssl` flag: connections start with a TLS ClientHello. The configuration terminates
    /// TLS for tls routes.
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

/// A TCP listening socket, or a UDP one (the `udp` flag).
#[derive(Debug)]
pub enum StreamSocket {
    Tcp(std::net::TcpListener),
    Udp(std::net::UdpSocket),
}

/// A stream route as the proxy uses it.
#[derive(Debug, Clone)]
pub struct StreamRoute {
    pub id: Uuid,
    pub name: Option<Arc<str>>,
    /// `tls_passthrough` in protocols: relay the TLS bytes as they are.
    pub passthrough: bool,
    /// `tls` in protocols: terminate TLS, then proxy the plain bytes.
    pub terminate: bool,
    pub service: Option<Arc<CompiledService>>,
}

/// Stream routes and the router that picks among them.
#[derive(Debug, Default)]
pub struct RouteTable {
    pub router: StreamRouter,
    /// Indexed as the router's results.
    pub routes: Vec<StreamRoute>,
}

impl RouteTable {
    /// The route for a connection (or a UDP client), with its service.
    pub fn find(&self, request: &StreamRequest<'_>) -> Option<&StreamRoute> {
        self.router.find(request).and_then(|i| self.routes.get(i))
    }
}

/// The compiled stream routes of a snapshot: TCP listeners see the tcp, tls and
/// tls_passthrough routes, UDP listeners the udp ones.
#[derive(Debug, Default)]
pub struct StreamRoutes {
    pub tcp: RouteTable,
    pub udp: RouteTable,
}

/// Collects stream routes while a snapshot is compiled.
#[derive(Debug, Default)]
pub(crate) struct StreamRoutesBuilder {
    tcp: (Vec<RouteSpec>, Vec<StreamRoute>),
    udp: (Vec<RouteSpec>, Vec<StreamRoute>),
}

impl StreamRoutesBuilder {
    pub(crate) fn add(
        &mut self,
        spec: RouteSpec,
        r: &Route,
        service: Option<Arc<CompiledService>>,
    ) {
        let route = StreamRoute {
            id: r.id,
            name: r.name.as_deref().map(Into::into),
            passthrough: r.has_protocol("tls_passthrough"),
            terminate: r.has_protocol("tls"),
            service,
        };
        let on_tcp = ["tcp", "tls", "tls_passthrough"]
            .iter()
            .any(|p| r.has_protocol(p));
        if r.has_protocol("udp") {
            if on_tcp {
                self.tcp.0.push(spec.clone());
                self.tcp.1.push(route.clone());
            }
            self.udp.0.push(spec);
            self.udp.1.push(route);
        } else {
            self.tcp.0.push(spec);
            self.tcp.1.push(route);
        }
    }

    pub(crate) fn build(self) -> StreamRoutes {
        let table = |(specs, routes): (Vec<RouteSpec>, Vec<StreamRoute>)| RouteTable {
            router: StreamRouter::build(&specs),
            routes,
        };
        StreamRoutes {
            tcp: table(self.tcp),
            udp: table(self.udp),
        }
    }
}

/// Starts accepting on a worker's stream listeners (from inside its event loop).
pub(crate) fn spawn_accept_loops(
    index: usize,
    listeners: Vec<StreamListener>,
    shared: &Arc<Shared>,
    shutdown: &watch::Receiver<bool>,
    done: &watch::Sender<()>,
) {
    for l in listeners {
        let socket = match l.socket {
            StreamSocket::Tcp(s) => s,
            StreamSocket::Udp(s) => {
                udp::spawn(index, s, shared, shutdown, done);
                continue;
            }
        };
        match TcpListener::from_std(socket) {
            Ok(listener) => {
                tokio::task::spawn_local(accept_loop(
                    index,
                    listener,
                    l.tls,
                    shared.clone(),
                    shutdown.clone(),
                    done.clone(),
                ));
            }
            Err(e) => tracing::error!(error = %e, "cannot use stream listening socket"),
        }
    }
}

/// Accepts stream connections on one listener until shutdown; each is served in its own task on
/// the worker's thread.
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
        crate::worker::accept(&listener, local, &mut shutdown, &shared, index).await
    {
        let info = ConnInfo::new(shared.clone(), index, peer, local);
        let done = done.clone();
        let tls = tls.clone();
        tokio::task::spawn_local(async move {
            serve(stream, &info, tls.as_ref()).await;
            info.shared
                .worker(index)
                .active
                .fetch_sub(1, Ordering::Relaxed);
            drop(done);
        });
    }
}

/// Routes one connection and proxies it.
async fn serve(stream: TcpStream, info: &ConnInfo, tls: Option<&Arc<rustls::ServerConfig>>) {
    let _ = stream.set_nodelay(true);
    let sni = if tls.is_some() {
        match sni::peek_sni(&stream, PREREAD_TIMEOUT).await {
            sni::Hello::Tls(name) => name,
            _ => None,
        }
    } else {
        None
    };
    let snapshot = info.shared.snapshot();
    let request = StreamRequest {
        src: info.peer,
        dst: info.local,
        sni: sni.as_deref(),
    };
    let Some(route) = snapshot.streams.tcp.find(&request) else {
        tracing::error!(peer = %info.peer, sni = sni.as_deref(), "no Route found with those values");
        return;
    };
    let Some(service) = route.service.clone() else {
        tracing::error!(route = %route.id, "no Service found with those values");
        return;
    };
    match tls {
        Some(config) if !route.passthrough => {
            if route.terminate {
                return terminate(stream, info, &service, config).await;
            }
            tracing::error!(route = %route.id, "unexpected protocols in matched Route");
        }
        _ => forward::forward(stream, info, &service).await,
    }
}

/// TLS termination for `tls` routes on an `ssl` stream listener: the handshake (certificate by
/// SNI, as on the HTTPS listeners), then the decrypted bytes go to the service.
async fn terminate(
    stream: TcpStream,
    info: &ConnInfo,
    service: &CompiledService,
    config: &Arc<rustls::ServerConfig>,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(config.clone());
    let handshake = tokio::time::timeout(
        crate::tls::accept::HANDSHAKE_TIMEOUT,
        acceptor.accept(stream),
    );
    match handshake.await {
        Ok(Ok(tls)) => forward::forward(tls, info, service).await,
        Ok(Err(e)) => tracing::debug!(peer = %info.peer, error = %e, "TLS handshake failed"),
        Err(_) => tracing::debug!(peer = %info.peer, "TLS handshake timed out"),
    }
}

/// Binds every `stream_listen` address once per worker (`ssl` ones with `tls`, the proxy's
/// server configuration for streams). Returns the sockets per worker and the bound addresses,
/// in the configured order.
pub fn bind(
    listen: &[silverback_config::Listen],
    workers: usize,
    tls: Option<&Arc<rustls::ServerConfig>>,
) -> Result<(Vec<Vec<StreamListener>>, Vec<SocketAddr>), crate::listener::BindError> {
    let mut per_worker: Vec<Vec<StreamListener>> = (0..workers).map(|_| Vec::new()).collect();
    let mut addrs = Vec::new();
    for l in listen {
        let socks: Vec<StreamSocket> = if l.udp {
            crate::listener::bind_udp_reuseport(l.addr, workers)?
                .into_iter()
                .map(StreamSocket::Udp)
                .collect()
        } else {
            crate::listener::bind_reuseport(l.addr, workers, l.backlog.unwrap_or(16384))?
                .into_iter()
                .map(StreamSocket::Tcp)
                .collect()
        };
        let first = socks.first().and_then(|s| match s {
            StreamSocket::Tcp(t) => t.local_addr().ok(),
            StreamSocket::Udp(u) => u.local_addr().ok(),
        });
        addrs.extend(first);
        for (slot, socket) in per_worker.iter_mut().zip(socks) {
            slot.push(StreamListener {
                socket,
                tls: tls.filter(|_| l.ssl && !l.udp).cloned(),
            });
        }
    }
    Ok((per_worker, addrs))
}
