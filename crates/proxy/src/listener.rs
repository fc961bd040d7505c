//! Binding listening sockets: one per worker and address, with SO_REUSEPORT so the kernel spreads
//! connections over the workers (as nginx's `reuseport`).

use socket2::{Domain, Protocol, Socket, Type};
use std::net::SocketAddr;

#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr}: {source}")]
pub struct BindError {
    pub addr: SocketAddr,
    pub source: std::io::Error,
}

/// Binds `count` sockets to the same address. Port 0 is resolved once, so all workers share the
/// port the first socket got.
pub fn bind_reuseport(
    addr: SocketAddr,
    count: usize,
    backlog: u32,
) -> Result<Vec<std::net::TcpListener>, BindError> {
    bind_many(
        addr,
        count,
        |a| bind_one(a, backlog),
        std::net::TcpListener::local_addr,
    )
}

/// Binds `count` UDP sockets to the same address (the kernel keeps each client's datagrams on
/// one of them), as [`bind_reuseport`] does for TCP.
pub fn bind_udp_reuseport(
    addr: SocketAddr,
    count: usize,
) -> Result<Vec<std::net::UdpSocket>, BindError> {
    bind_many(
        addr,
        count,
        |a| Ok(reuseport_socket(a, Type::DGRAM, Protocol::UDP)?.into()),
        std::net::UdpSocket::local_addr,
    )
}

/// One non-blocking listening socket.
pub fn bind_one(addr: SocketAddr, backlog: u32) -> std::io::Result<std::net::TcpListener> {
    let socket = reuseport_socket(addr, Type::STREAM, Protocol::TCP)?;
    socket.listen(i32::try_from(backlog).unwrap_or(i32::MAX))?;
    Ok(socket.into())
}

/// `count` sockets made by `bind` at `addr`; after the first, at the address it got.
fn bind_many<T>(
    addr: SocketAddr,
    count: usize,
    bind: impl Fn(SocketAddr) -> std::io::Result<T>,
    local_addr: impl Fn(&T) -> std::io::Result<SocketAddr>,
) -> Result<Vec<T>, BindError> {
    let mut out = Vec::with_capacity(count);
    let mut actual = addr;
    for _ in 0..count.max(1) {
        let s = bind(actual).map_err(|source| BindError { addr, source })?;
        actual = local_addr(&s).map_err(|source| BindError { addr, source })?;
        out.push(s);
    }
    Ok(out)
}

/// A non-blocking socket bound to `addr` with SO_REUSEADDR and SO_REUSEPORT (IPv6 only for an
/// IPv6 address, so `[::]` and `0.0.0.0` can both be bound).
fn reuseport_socket(addr: SocketAddr, kind: Type, protocol: Protocol) -> std::io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), kind, Some(protocol))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    Ok(socket)
}
