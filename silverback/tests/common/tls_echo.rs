//! TLS echo upstreams for stream tests: self-signed certificates made at test time (rcgen), a TLS echo server,
//! and a client that trusts exactly one certificate.

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A self-signed certificate for `name` and its key.
pub struct Cert {
    pub der: CertificateDer<'static>,
    pub key: PrivatePkcs8KeyDer<'static>,
}

impl Cert {
    pub fn self_signed(name: &str) -> Cert {
        let c = rcgen::generate_simple_self_signed(vec![name.to_string()]).unwrap();
        Cert {
            der: c.cert.der().clone(),
            key: PrivatePkcs8KeyDer::from(c.signing_key.serialize_der()),
        }
    }

    pub fn server_config(&self) -> Arc<rustls::ServerConfig> {
        Arc::new(
            rustls::ServerConfig::builder_with_provider(provider())
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(
                    vec![self.der.clone()],
                    PrivateKeyDer::Pkcs8(self.key.clone_key()),
                )
                .unwrap(),
        )
    }

    /// A client that trusts this certificate only.
    pub fn client_config(&self) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.der.clone()).unwrap();
        Arc::new(
            rustls::ClientConfig::builder_with_provider(provider())
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(roots)
                .with_no_client_auth(),
        )
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A TLS server that greets each connection with `<tag>\n` and echoes what it reads.
pub struct TlsEcho {
    pub addr: SocketAddr,
}

impl TlsEcho {
    pub async fn start(tag: &str, cert: &Cert) -> TlsEcho {
        TlsEcho::with_config(tag, cert.server_config()).await
    }

    /// The same with a server configuration of the caller's.
    pub async fn with_config(tag: &str, config: Arc<rustls::ServerConfig>) -> TlsEcho {
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let tag = format!("{tag}\n");
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (acceptor, tag) = (acceptor.clone(), tag.clone());
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(stream).await else {
                        return;
                    };
                    let _ = tls.write_all(tag.as_bytes()).await;
                    let mut buf = [0u8; 4096];
                    while let Ok(n) = tls.read(&mut buf).await {
                        if n == 0 || tls.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                    let _ = tls.shutdown().await;
                });
            }
        });
        TlsEcho { addr }
    }
}

/// Connects to `addr` over TLS with `sni`, trusting `config`'s roots.
pub async fn connect(
    addr: SocketAddr,
    sni: &str,
    config: Arc<rustls::ClientConfig>,
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from(sni.to_string()).map_err(std::io::Error::other)?;
    tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
}
