//! Talking to upstream servers: connecting, sending one attempt with Kong's timeouts, and
//! relaying the response body back while the connection waits to return to the pool.

pub mod h1;
pub mod h2;
pub mod pool;

use crate::body::RequestBody;
use pool::{Limits, PoolKey};
use std::time::Duration;

/// Timeouts of one attempt (the service's, in Kong's terms).
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub connect: Duration,
    /// Longest pause while sending the request body.
    pub write: Duration,
    /// Longest wait for the response head, and between two reads of the response body.
    pub read: Duration,
}

/// Why an attempt failed, and whether the request may have reached the upstream.
#[derive(Debug)]
pub enum AttemptError {
    Connect(std::io::Error),
    ConnectTimeout,
    /// No response head in time; `write` tells which timeout expired.
    Timeout {
        write: bool,
    },
    /// The connection failed while sending or receiving.
    Io(std::io::Error),
    /// The upstream's response is not valid HTTP, or ended early.
    Upstream(String),
    /// The client's request body failed while it was being streamed.
    ClientBody(ClientFailure),
    /// The TLS handshake failed (the reason, for the log).
    Tls(String),
}

/// A failure on the client's side while its body streamed to the upstream.
#[derive(Debug)]
pub struct ClientFailure {
    /// Over `client_max_body_size`: the client gets 413.
    pub too_large: bool,
    /// Over a plugin's limit: the client gets that plugin's answer.
    pub over_limit: bool,
    pub message: String,
}

impl AttemptError {
    /// Whether the request certainly did not reach the upstream (safe to retry any method).
    pub fn before_send(&self) -> bool {
        matches!(
            self,
            AttemptError::Connect(_) | AttemptError::ConnectTimeout | AttemptError::Tls(_)
        )
    }
}

impl std::fmt::Display for AttemptError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AttemptError::Connect(e) => write!(f, "connect failed: {e}"),
            AttemptError::ConnectTimeout => f.write_str("connect timed out"),
            AttemptError::Timeout { write: true } => f.write_str("timed out sending the request"),
            AttemptError::Timeout { write: false } => f.write_str("timed out reading the response"),
            AttemptError::Io(e) => write!(f, "{e}"),
            AttemptError::Upstream(e) => f.write_str(e),
            AttemptError::ClientBody(e) => write!(f, "client body: {}", e.message),
            AttemptError::Tls(e) => write!(f, "TLS handshake failed: {e}"),
        }
    }
}

/// Where a TLS connection goes: the client configuration and the name to send (SNI) and
/// verify.
#[derive(Debug, Clone)]
pub struct TlsTarget {
    pub config: std::sync::Arc<rustls::ClientConfig>,
    pub name: rustls::pki_types::ServerName<'static>,
}

/// A new connection to an upstream, before any protocol runs over it.
pub enum Connected {
    Plain(tokio::net::TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>),
}

/// Connects to `addr`, with the TLS handshake when `tls` is given, all within `timeout` (the
/// handshake is part of connecting, as in nginx). A failed handshake says why, for the log.
pub async fn connect(
    addr: std::net::SocketAddr,
    timeout: Duration,
    tls: Option<&TlsTarget>,
) -> Result<Connected, AttemptError> {
    let connecting = async {
        let tcp = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(AttemptError::Connect)?;
        let _ = tcp.set_nodelay(true);
        let Some(t) = tls else {
            return Ok(Connected::Plain(tcp));
        };
        let tls = tokio_rustls::TlsConnector::from(t.config.clone())
            .connect(t.name.clone(), tcp)
            .await
            .map_err(|e| AttemptError::Tls(crate::tls::upstream::describe(&e)))?;
        Ok(Connected::Tls(Box::new(tls)))
    };
    tokio::time::timeout(timeout, connecting)
        .await
        .unwrap_or(Err(AttemptError::ConnectTimeout))
}

/// Sends one attempt over a pooled connection when a usable one is idle, else a new one.
/// The error says whether the request may have reached the upstream.
pub async fn send(
    key: &PoolKey,
    tls: Option<&TlsTarget>,
    limits: &Limits,
    t: &Timeouts,
    head: h1::Head<'_>,
    body: RequestBody<'_>,
) -> Result<h1::Response, (AttemptError, bool)> {
    let mut pooled = None;
    while let Some(mut c) = pool::checkout(key, limits) {
        if c.is_reusable() {
            pooled = Some(c);
            break;
        }
    }
    let reused = pooled.is_some();
    let conn = match pooled {
        Some(c) => c,
        None => h1::Conn::connect(key.addr, t.connect, tls)
            .await
            .map_err(|e| (e, false))?,
    };
    h1::round_trip(conn, reused, key, limits, t, head, body).await
}
