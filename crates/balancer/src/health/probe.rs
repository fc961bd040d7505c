//! One active probe, as lua-resty-healthcheck sends it: connect (that is the whole check for
//! `tcp`), then for `http` and `https` a `GET http_path HTTP/1.0` with the target's Host and the
//! configured headers, and the status of the response's first line. Each step has the check's
//! `timeout`.

use super::Outcome;
use super::checks::{Active, ProbeKind};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, RootCertStore};
use std::net::SocketAddr;
use std::sync::{Arc, LazyLock};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

/// Longest status line read.
const MAX_LINE: usize = 1024;

/// Probes `addr`; `host` is what the Host header (and, by default, the TLS SNI) carries.
pub(crate) async fn probe(addr: SocketAddr, host: &str, active: &Active) -> Outcome {
    let stream = match timeout(active.timeout, TcpStream::connect(addr)).await {
        Err(_) => return Outcome::Timeout,
        Ok(Err(_)) => return Outcome::TcpFailure,
        Ok(Ok(s)) => s,
    };
    let _ = stream.set_nodelay(true);
    match active.kind {
        ProbeKind::Tcp => Outcome::Connected,
        ProbeKind::Http => request(stream, host, active).await,
        ProbeKind::Https => {
            let sni = active.https_sni.as_deref().unwrap_or(host);
            let Ok(name) = ServerName::try_from(sni.to_string()) else {
                return Outcome::TcpFailure;
            };
            let config = if active.https_verify_certificate {
                VERIFIED.clone()
            } else {
                UNVERIFIED.clone()
            };
            let Some(config) = config else {
                return Outcome::TcpFailure;
            };
            let connector = tokio_rustls::TlsConnector::from(config);
            match timeout(active.timeout, connector.connect(name, stream)).await {
                Err(_) => Outcome::Timeout,
                Ok(Err(_)) => Outcome::TcpFailure,
                Ok(Ok(tls)) => request(tls, host, active).await,
            }
        }
    }
}

async fn request<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    host: &str,
    active: &Active,
) -> Outcome {
    let mut head = format!("GET {} HTTP/1.0\r\n", active.http_path);
    for (name, value) in &active.headers {
        head.push_str(name);
        head.push_str(": ");
        head.push_str(value);
        head.push_str("\r\n");
    }
    head.push_str("Host: ");
    head.push_str(host);
    head.push_str("\r\n\r\n");
    match timeout(active.timeout, stream.write_all(head.as_bytes())).await {
        Err(_) => return Outcome::Timeout,
        Ok(Err(_)) => return Outcome::TcpFailure,
        Ok(Ok(())) => {}
    }
    let mut line = Vec::with_capacity(256);
    let read = timeout(active.timeout, async {
        let mut chunk = [0u8; 256];
        while line.len() < MAX_LINE && !line.contains(&b'\n') {
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                break;
            }
            line.extend_from_slice(chunk.get(..n).unwrap_or_default());
        }
        Ok::<_, std::io::Error>(())
    })
    .await;
    match read {
        Err(_) => Outcome::Timeout,
        Ok(Err(_)) => Outcome::TcpFailure,
        Ok(Ok(())) => status_of(&line).map_or(Outcome::TcpFailure, Outcome::Status),
    }
}

/// The status of `HTTP/1.x NNN reason`.
fn status_of(line: &[u8]) -> Option<u16> {
    let end = line.iter().position(|b| *b == b'\n').unwrap_or(line.len());
    let text = std::str::from_utf8(line.get(..end)?).ok()?;
    let mut parts = text.split_ascii_whitespace();
    parts.next().filter(|v| v.starts_with("HTTP/"))?;
    parts
        .next()?
        .parse()
        .ok()
        .filter(|s| (100..1000).contains(s))
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Verifies certificates against the system's trust store.
static VERIFIED: LazyLock<Option<Arc<ClientConfig>>> = LazyLock::new(|| {
    let mut roots = RootCertStore::empty();
    roots.add_parsable_certificates(
        silverback_model::tls::system_ca_certificates()
            .iter()
            .cloned(),
    );
    ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .ok()
        .map(|b| Arc::new(b.with_root_certificates(roots).with_no_client_auth()))
});

/// `https_verify_certificate: false`: any certificate is accepted (signatures are still
/// checked).
static UNVERIFIED: LazyLock<Option<Arc<ClientConfig>>> = LazyLock::new(|| {
    let provider = provider();
    let verifier = Arc::new(silverback_model::tls::AnyServerCert::new(&provider));
    ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .ok()
        .map(|b| {
            Arc::new(
                b.dangerous()
                    .with_custom_certificate_verifier(verifier)
                    .with_no_client_auth(),
            )
        })
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines() {
        assert_eq!(status_of(b"HTTP/1.1 200 OK\r\n"), Some(200));
        assert_eq!(status_of(b"HTTP/1.0 503\r\n"), Some(503));
        assert_eq!(status_of(b"SSH-2.0-OpenSSH\r\n"), None);
        assert_eq!(status_of(b""), None);
    }
}
