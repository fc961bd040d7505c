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
    let mut out = Vec::with_capacity(count);
    let mut actual = addr;
    for _ in 0..count.max(1) {
        let l = bind_one(actual, backlog).map_err(|source| BindError { addr, source })?;
        actual = l
            .local_addr()
            .map_err(|source| BindError { addr, source })?;
        out.push(l);
    }
    Ok(out)
}

/// Binds `count` UDP sockets to the same address (the kernel keeps each client's datagrams on
/// one of them).
pub fn bind_udp_reuseport(
    addr: SocketAddr,
    count: usize,
) -> Result<Vec<std::net::UdpSocket>, BindError> {
    let mut out = Vec::with_capacity(count);
    let mut actual = addr;
    for _ in 0..count.max(1) {
        let bind = || -> std::io::Result<std::net::UdpSocket> {
            let socket = Socket::new(
                Domain::for_address(actual),
                Type::DGRAM,
                Some(Protocol::UDP),
            )?;
            socket.set_reuse_address(true)?;
            socket.set_reuse_port(true)?;
            if actual.is_ipv6() {
                socket.set_only_v6(true)?;
            }
            socket.set_nonblocking(true)?;
            socket.bind(&actual.into())?;
            Ok(socket.into())
        };
        let s = bind().map_err(|source| BindError { addr, source })?;
        actual = s
            .local_addr()
            .map_err(|source| BindError { addr, source })?;
        out.push(s);
    }
    Ok(out)
}

/// One non-blocking listening socket.
pub fn bind_one(addr: SocketAddr, backlog: u32) -> std::io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(i32::try_from(backlog).unwrap_or(i32::MAX))?;
    Ok(socket.into())
}
