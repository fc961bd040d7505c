//! UDP stream routes (`stream_listen = ... udp`), served as nginx's stream proxy serves them: the
//! datagrams of one client address form a session, routed once by the udp routes (`sources`,
//! `destinations`) to a target of the service, through a socket of its own. Replies come back
//! to the client from the listening address. A session ends after the service's `read_timeout`
//! without a datagram either way.

use super::StreamRoute;
use crate::request::ConnInfo;
use crate::request::send::pick_target;
use crate::state::Shared;
use bytes::Bytes;
use silverback_router::StreamRequest;
use std::cell::RefCell;
use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::rc::Rc;
use std::sync::Arc;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, watch};

/// Largest datagram relayed (UDP's own limit).
const MAX_DATAGRAM: usize = 65_535;
/// Datagrams a session holds while its upstream socket is busy; more are dropped, as UDP may.
const SESSION_QUEUE: usize = 256;

/// The live sessions of one listening socket, by client address.
type Sessions = Rc<RefCell<HashMap<SocketAddr, mpsc::Sender<Bytes>>>>;

thread_local! {
    /// Where a worker's sessions receive their upstreams' replies, one at a time (a reply is
    /// passed on without waiting), so a session costs no buffer of its own.
    static REPLY_BUF: RefCell<Vec<u8>> = RefCell::new(vec![0u8; MAX_DATAGRAM]);
}

/// Starts serving one UDP listening socket on the worker (from inside its event loop).
pub(super) fn spawn(
    index: usize,
    socket: std::net::UdpSocket,
    shared: &Arc<Shared>,
    shutdown: &watch::Receiver<bool>,
    done: &watch::Sender<()>,
) {
    let socket = match UdpSocket::from_std(socket) {
        Ok(s) => Rc::new(s),
        Err(e) => {
            tracing::error!(error = %e, "cannot use udp stream socket");
            return;
        }
    };
    tokio::task::spawn_local(receive_loop(
        index,
        socket,
        shared.clone(),
        shutdown.clone(),
        done.clone(),
    ));
}

/// Reads client datagrams until shutdown and hands each to its session, opening sessions for
/// new clients.
async fn receive_loop(
    index: usize,
    socket: Rc<UdpSocket>,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
    done: watch::Sender<()>,
) {
    let Ok(local) = socket.local_addr() else {
        return;
    };
    let sessions: Sessions = Rc::default();
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let (n, client) = tokio::select! {
            r = socket.recv_from(&mut buf) => match r {
                Ok(x) => x,
                Err(e) => {
                    // An ICMP error for an earlier reply, or similar: the socket stays usable.
                    tracing::debug!(error = %e, "udp receive failed");
                    continue;
                }
            },
            _ = shutdown.wait_for(|s| *s) => return,
        };
        let datagram = Bytes::copy_from_slice(&buf[..n]);
        let open = sessions.borrow().get(&client).cloned();
        let datagram = match open {
            Some(tx) => match tx.try_send(datagram) {
                Ok(()) | Err(mpsc::error::TrySendError::Full(_)) => continue,
                // The session just ended: this datagram starts a new one.
                Err(mpsc::error::TrySendError::Closed(d)) => d,
            },
            None => datagram,
        };
        let snapshot = shared.snapshot();
        let request = StreamRequest {
            src: client,
            dst: local,
            sni: None,
        };
        let Some(route) = snapshot.streams.udp.find(&request).cloned() else {
            tracing::error!(peer = %client, "no Route found with those values");
            continue;
        };
        let (tx, rx) = mpsc::channel(SESSION_QUEUE);
        let _ = tx.try_send(datagram);
        sessions.borrow_mut().insert(client, tx);
        let info = ConnInfo::new(shared.clone(), index, client, local);
        let (socket, sessions, done) = (socket.clone(), sessions.clone(), done.clone());
        tokio::task::spawn_local(async move {
            // The session's receiver is gone once it returns, which marks it ended.
            session(&info, &route, &socket, rx).await;
            let mut open = sessions.borrow_mut();
            if open.get(&info.peer).is_some_and(|tx| tx.is_closed()) {
                open.remove(&info.peer);
            }
            drop(done);
        });
    }
}

/// Relays one client's datagrams to a target of the route's service and the replies back,
/// until the session goes idle.
async fn session(
    info: &ConnInfo,
    route: &StreamRoute,
    listener: &UdpSocket,
    mut from_client: mpsc::Receiver<Bytes>,
) {
    let Some(service) = &route.service else {
        tracing::error!(route = %route.id, "no Service found with those values");
        return;
    };
    let hash = super::forward::stream_hash(info, service);
    // The target is held while the session lasts: least-connections counts it.
    let picked = match pick_target(info, service, hash, &[]).await {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(service = %service.id, error = %e, "udp proxy failed");
            return;
        }
    };
    let target = picked.addr;
    let upstream = match connect(target).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(upstream = %target, error = %e, "udp upstream socket failed");
            return;
        }
    };
    let idle = service.read_timeout;
    loop {
        tokio::select! {
            d = from_client.recv() => match d {
                Some(d) => {
                    if let Err(e) = upstream.send(&d).await {
                        tracing::debug!(upstream = %target, error = %e, "udp send failed");
                    }
                }
                None => break,
            },
            r = upstream.readable() => match r {
                Ok(()) => relay_replies(&upstream, listener, info.peer),
                Err(e) => tracing::debug!(upstream = %target, error = %e, "udp receive failed"),
            },
            _ = tokio::time::sleep(idle) => break,
        }
    }
    tracing::debug!(peer = %info.peer, upstream = %target, "udp session ended");
}

/// Passes the replies waiting on `upstream` to the client. A reply the listening socket cannot
/// take at once is dropped, as UDP may.
fn relay_replies(upstream: &UdpSocket, listener: &UdpSocket, client: SocketAddr) {
    REPLY_BUF.with_borrow_mut(|buf| {
        loop {
            match upstream.try_recv(buf) {
                Ok(n) => {
                    if let Err(e) = listener.try_send_to(&buf[..n], client) {
                        tracing::debug!(peer = %client, error = %e, "udp reply dropped");
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                // ICMP port unreachable from the target, typically; the session lives on until
                // it is idle.
                Err(e) => {
                    tracing::debug!(peer = %client, error = %e, "udp receive failed");
                    return;
                }
            }
        }
    });
}

/// A socket of the target's address family, connected to it.
async fn connect(target: SocketAddr) -> std::io::Result<UdpSocket> {
    let any: SocketAddr = if target.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = UdpSocket::bind(any).await?;
    socket.connect(target).await?;
    Ok(socket)
}
