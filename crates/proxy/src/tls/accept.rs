//! The server side of a handshake: an accepted socket becomes either our HTTP/1.1 codec's
//! [`Stream`] or, when the client chose h2 by ALPN, a stream for hyper's HTTP/2 server.

use crate::transport::{Stream, TlsStream};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;

/// How long a client may take to complete the handshake (nginx's client_header_timeout also
/// covers it).
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(60);

/// A connection after its handshake.
pub enum Handshaken {
    /// HTTP/1.x, for our codec.
    Http1(Stream),
    /// h2 was negotiated: hyper's server reads it through tokio-rustls.
    Http2(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

/// What the handshake told about the client.
#[derive(Debug, Default, Clone)]
pub struct Negotiated {
    pub sni: Option<String>,
}

/// Runs the handshake within [`HANDSHAKE_TIMEOUT`].
pub async fn handshake(
    config: &Arc<rustls::ServerConfig>,
    tcp: TcpStream,
) -> std::io::Result<(Handshaken, Negotiated)> {
    let acceptor = tokio_rustls::TlsAcceptor::from(config.clone());
    let tls = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp))
        .await
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
    let (_, conn) = tls.get_ref();
    let negotiated = Negotiated {
        sni: conn.server_name().map(str::to_string),
    };
    if conn.alpn_protocol() == Some(b"h2") {
        return Ok((Handshaken::Http2(Box::new(tls)), negotiated));
    }
    let (tcp, conn) = tls.into_inner();
    Ok((
        Handshaken::Http1(Stream::Tls(Box::new(TlsStream::new(tcp, conn)))),
        negotiated,
    ))
}

/// A finished handshake on a control-plane listener (Admin API, status API).
pub type Incoming = (
    tokio_rustls::server::TlsStream<TcpStream>,
    std::net::SocketAddr,
);

/// Accepts on `listener` and runs each handshake in its own task (a slow client holds up no
/// other), handing over the connections whose handshake succeeded. Runs on the caller's
/// (multi-threaded) runtime until the receiver is dropped.
pub fn spawn_handshakes(
    listener: tokio::net::TcpListener,
    config: Arc<rustls::ServerConfig>,
) -> tokio::sync::mpsc::Receiver<Incoming> {
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    tokio::spawn(async move {
        loop {
            let (tcp, peer) = tokio::select! {
                r = listener.accept() => match r {
                    Ok(x) => x,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                _ = tx.closed() => return,
            };
            let acceptor = acceptor.clone();
            let tx = tx.clone();
            tokio::spawn(async move {
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                    Ok(Ok(tls)) => {
                        let _ = tx.send((tls, peer)).await;
                    }
                    Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                    Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                }
            });
        }
    });
    rx
}

/// The server configuration of a control-plane `ssl` listener: its default certificates only
/// (no SNI entities), h2 by ALPN when the listen line has `http2`.
pub fn control_config(
    settings: &silverback_config::Settings,
    listener: super::certs::Listener,
    http2: bool,
) -> Result<Arc<rustls::ServerConfig>, super::TlsError> {
    use super::certs::Listener;
    let (configured, what) = match listener {
        Listener::Admin => (&settings.tls.admin_ssl_cert, "admin_ssl_cert"),
        Listener::Status => (&settings.tls.status_ssl_cert, "status_ssl_cert"),
        Listener::Proxy => (&settings.tls.ssl_cert, "ssl_cert"),
    };
    let default = super::certs::default_pairs(&settings.prefix, listener, configured, what)?;
    let resolver = Arc::new(super::server::SniResolver::new(
        None,
        super::server::Pairs::from_keys(default),
    ));
    let sessions = super::server::Sessions::new(&settings.tls)?;
    super::server::server_config(
        &settings.tls,
        resolver,
        super::server::Alpn::http(http2),
        &sessions,
    )
}
