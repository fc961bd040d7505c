//! Blocking connections for the log plugins' queue threads: TCP, optionally wrapped in TLS.
//! As in Kong (`ssl_verify = false` in http-log, `sslhandshake(..., false)` in tcp-log) the
//! log server's certificate is not verified.

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, StreamOwned};
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

/// A connection to a log server.
pub(crate) enum Conn {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Conn::Plain(s) => s.read(buf),
            Conn::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Conn::Plain(s) => s.write(buf),
            Conn::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Conn::Plain(s) => s.flush(),
            Conn::Tls(s) => s.flush(),
        }
    }
}

impl Conn {
    /// Sets the write (`send`) and read timeouts of an established connection.
    pub fn set_timeouts(&self, send: Duration, read: Duration) -> std::io::Result<()> {
        let sock = match self {
            Conn::Plain(s) => s,
            Conn::Tls(s) => &s.sock,
        };
        let min = Duration::from_millis(1);
        sock.set_write_timeout(Some(send.max(min)))?;
        sock.set_read_timeout(Some(read.max(min)))
    }

    /// Whether the server closed a kept-alive connection (a write to it would seem to succeed
    /// and the entry be lost).
    pub fn is_closed(&self) -> bool {
        let sock = match self {
            Conn::Plain(s) => s,
            Conn::Tls(s) => &s.sock,
        };
        if sock.set_nonblocking(true).is_err() {
            return true;
        }
        let mut byte = [0u8; 1];
        let closed = match sock.peek(&mut byte) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
        };
        closed || sock.set_nonblocking(false).is_err()
    }
}

/// How a TLS connection checks the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verify {
    /// Any certificate (Kong's log plugins).
    Nothing,
    /// A certificate chaining to the system's trusted roots for the host (Kong's default
    /// `lua_ssl_trusted_certificate = system` with verification on, as lua-resty-http does).
    SystemRoots,
}

/// Connects to `host:port` within `timeout` (also the read and write timeout); with `tls`,
/// does a TLS handshake sending `sni` (or the host when it is a name), without verifying the
/// server's certificate.
pub(crate) fn connect(
    host: &str,
    port: u16,
    timeout: Duration,
    tls: Option<Option<&str>>,
) -> Result<Conn, String> {
    connect_verifying(host, port, timeout, tls, Verify::Nothing)
}

/// [`connect`], checking the server's certificate as `verify` says.
pub(crate) fn connect_verifying(
    host: &str,
    port: u16,
    timeout: Duration,
    tls: Option<Option<&str>>,
    verify: Verify,
) -> Result<Conn, String> {
    let timeout = timeout.max(Duration::from_millis(1));
    let addrs = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host}: {e}"))?;
    let mut last = format!("{host} has no address");
    let mut stream = None;
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last = format!("failed to connect to {host}:{port}: {e}"),
        }
    }
    let stream = stream.ok_or(last)?;
    stream
        .set_read_timeout(Some(timeout))
        .and_then(|()| stream.set_write_timeout(Some(timeout)))
        .map_err(|e| e.to_string())?;
    let _ = stream.set_nodelay(true);
    let Some(sni) = tls else {
        return Ok(Conn::Plain(stream));
    };
    let name = sni.unwrap_or(host);
    let server_name = ServerName::try_from(name.to_string())
        .map_err(|e| format!("invalid TLS server name {name}: {e}"))?;
    let config = match verify {
        Verify::Nothing => TLS_CONFIG.clone()?,
        Verify::SystemRoots => VERIFYING_TLS_CONFIG.clone()?,
    };
    let conn = ClientConnection::new(config, server_name).map_err(|e| format!("TLS: {e}"))?;
    let mut tls = StreamOwned::new(conn, stream);
    // Handshake now, so a failure is reported as a connection failure.
    while tls.conn.is_handshaking() {
        tls.conn
            .complete_io(&mut tls.sock)
            .map_err(|e| format!("TLS handshake with {host}:{port} failed: {e}"))?;
    }
    Ok(Conn::Tls(Box::new(tls)))
}

static TLS_CONFIG: LazyLock<Result<Arc<ClientConfig>, String>> = LazyLock::new(|| {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = Arc::new(silverback_model::tls::AnyServerCert::new(&provider));
    ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map(|b| {
            Arc::new(
                b.dangerous()
                    .with_custom_certificate_verifier(verifier)
                    .with_no_client_auth(),
            )
        })
        .map_err(|e| format!("TLS: {e}"))
});

static VERIFYING_TLS_CONFIG: LazyLock<Result<Arc<ClientConfig>, String>> = LazyLock::new(|| {
    let mut roots = rustls::RootCertStore::empty();
    roots.add_parsable_certificates(
        silverback_model::tls::system_ca_certificates()
            .iter()
            .cloned(),
    );
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map(|b| Arc::new(b.with_root_certificates(roots).with_no_client_auth()))
        .map_err(|e| format!("TLS: {e}"))
});
