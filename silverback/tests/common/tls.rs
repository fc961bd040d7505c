//! TLS for the tests: certificates made with rcgen (a CA and the leaves it signs, ECDSA or RSA;
//! RSA keys come from `openssl genpkey`, which ring cannot do), a rustls client that records
//! what the server presented, and HTTP requests over it.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::Reply;
use bytes::Bytes;
use http_body_util::Full;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

/// A key type for generated certificates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    Ecdsa,
    Rsa,
}

fn key_pair(kind: Key) -> rcgen::KeyPair {
    match kind {
        Key::Ecdsa => rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap(),
        Key::Rsa => {
            let out = std::process::Command::new("openssl")
                .args([
                    "genpkey",
                    "-algorithm",
                    "RSA",
                    "-pkeyopt",
                    "rsa_keygen_bits:2048",
                ])
                .output()
                .expect("openssl genpkey (RSA keys for the tests)");
            let pem = String::from_utf8(out.stdout).unwrap();
            rcgen::KeyPair::from_pem_and_sign_algo(&pem, &rcgen::PKCS_RSA_SHA256).unwrap()
        }
    }
}

/// A certificate and its key, in PEM.
#[derive(Debug, Clone)]
pub struct Pem {
    pub cert: String,
    pub key: String,
}

impl Pem {
    pub fn der(&self) -> CertificateDer<'static> {
        CertificateDer::from_pem_slice(self.cert.as_bytes()).unwrap()
    }
}

/// A certificate authority that signs leaves (and intermediates).
pub struct Ca {
    params: rcgen::CertificateParams,
    key: rcgen::KeyPair,
    pub pem: String,
}

/// Validity of a leaf.
#[derive(Debug, Clone, Copy)]
pub enum Validity {
    Current,
    Expired,
}

/// What a CA (root or intermediate) named `name` is made from.
fn ca_params(name: &str) -> rcgen::CertificateParams {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    params
}

impl Ca {
    pub fn new(name: &str) -> Ca {
        let key = key_pair(Key::Ecdsa);
        let params = ca_params(name);
        let cert = params.self_signed(&key).unwrap();
        Ca {
            pem: cert.pem(),
            params,
            key,
        }
    }

    fn issue(
        &self,
        mut params: rcgen::CertificateParams,
        kind: Key,
    ) -> (String, rcgen::KeyPair, rcgen::CertificateParams) {
        let key = key_pair(kind);
        let issuer = rcgen::Issuer::from_params(&self.params, &self.key);
        params.use_authority_key_identifier_extension = true;
        let cert = params.signed_by(&key, &issuer).unwrap();
        (cert.pem(), key, params)
    }

    /// A leaf for `names` (the first is also its CN).
    pub fn leaf(&self, names: &[&str], kind: Key, validity: Validity) -> Pem {
        let mut params =
            rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, names[0]);
        if let Validity::Expired = validity {
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(2021, 1, 1);
        }
        let (cert, key, _) = self.issue(params, kind);
        Pem {
            cert,
            key: key.serialize_pem(),
        }
    }

    /// An intermediate CA signed by this one.
    pub fn intermediate(&self, name: &str) -> Ca {
        let params = ca_params(name);
        let (pem, key, params) = self.issue(params, Key::Ecdsa);
        Ca { params, key, pem }
    }

    pub fn der(&self) -> CertificateDer<'static> {
        CertificateDer::from_pem_slice(self.pem.as_bytes()).unwrap()
    }
}

/// A server configuration for a test upstream: `chain` (leaf first) with its key, and, for
/// mTLS, the CA client certificates must chain to.
pub fn server_config(
    chain: &[&str],
    key: &str,
    client_ca: Option<&Ca>,
) -> Arc<rustls::ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certs: Vec<CertificateDer<'static>> = chain
        .iter()
        .map(|pem| CertificateDer::from_pem_slice(pem.as_bytes()).unwrap())
        .collect();
    let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap();
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap();
    let builder = match client_ca {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            roots.add(ca.der()).unwrap();
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .unwrap();
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    Arc::new(builder.with_single_cert(certs, key).unwrap())
}

/// What a handshake with the gateway showed.
#[derive(Debug, Default)]
pub struct Seen {
    /// The leaf certificate the server presented.
    pub cert: Option<CertificateDer<'static>>,
}

/// Accepts any server certificate and records it.
#[derive(Debug)]
struct Recorder(Arc<Mutex<Seen>>, rustls::crypto::WebPkiSupportedAlgorithms);

impl ServerCertVerifier for Recorder {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.0.lock().unwrap().cert = Some(end_entity.clone().into_owned());
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(m, c, d, &self.1)
    }

    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(m, c, d, &self.1)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.1.supported_schemes()
    }
}

/// Options of a test client.
#[derive(Debug, Clone)]
pub struct ClientOpts {
    pub alpn: Vec<Vec<u8>>,
    pub versions: Vec<&'static rustls::SupportedProtocolVersion>,
    /// Offer only RSA signature schemes (a client that cannot take ECDSA).
    pub rsa_only: bool,
}

impl Default for ClientOpts {
    fn default() -> Self {
        ClientOpts {
            alpn: vec![b"http/1.1".to_vec()],
            versions: vec![&rustls::version::TLS13, &rustls::version::TLS12],
            rsa_only: false,
        }
    }
}

/// A client configuration that records the server's certificate into `seen`.
pub fn client_config(opts: &ClientOpts, seen: Arc<Mutex<Seen>>) -> Arc<rustls::ClientConfig> {
    let mut provider = rustls::crypto::ring::default_provider();
    if opts.rsa_only {
        let all = provider.signature_verification_algorithms;
        let mapping: Vec<_> = all
            .mapping
            .iter()
            .filter(|(s, _)| {
                matches!(
                    s,
                    SignatureScheme::RSA_PSS_SHA256
                        | SignatureScheme::RSA_PSS_SHA384
                        | SignatureScheme::RSA_PSS_SHA512
                        | SignatureScheme::RSA_PKCS1_SHA256
                        | SignatureScheme::RSA_PKCS1_SHA384
                        | SignatureScheme::RSA_PKCS1_SHA512
                )
            })
            .copied()
            .collect();
        provider.signature_verification_algorithms = rustls::crypto::WebPkiSupportedAlgorithms {
            all: all.all,
            mapping: Box::leak(mapping.into_boxed_slice()),
        };
    }
    let algs = provider.signature_verification_algorithms;
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(&opts.versions)
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Recorder(seen, algs)))
        .with_no_client_auth();
    config.alpn_protocols = opts.alpn.clone();
    Arc::new(config)
}

/// A TLS connection to the gateway and what it negotiated.
pub struct Conn {
    pub stream: tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
    pub seen: Arc<Mutex<Seen>>,
}

impl Conn {
    pub async fn open(
        addr: SocketAddr,
        sni: &str,
        config: Arc<rustls::ClientConfig>,
        seen: Arc<Mutex<Seen>>,
    ) -> Conn {
        Self::try_open(addr, sni, config, seen).await.unwrap()
    }

    pub async fn try_open(
        addr: SocketAddr,
        sni: &str,
        config: Arc<rustls::ClientConfig>,
        seen: Arc<Mutex<Seen>>,
    ) -> std::io::Result<Conn> {
        let tcp = tokio::net::TcpStream::connect(addr).await?;
        let name = ServerName::try_from(sni.to_string()).unwrap();
        let stream = tokio_rustls::TlsConnector::from(config)
            .connect(name, tcp)
            .await?;
        Ok(Conn { stream, seen })
    }

    pub fn cert(&self) -> CertificateDer<'static> {
        self.seen
            .lock()
            .unwrap()
            .cert
            .clone()
            .expect("a server certificate")
    }

    pub fn alpn(&self) -> Option<Vec<u8>> {
        self.stream.get_ref().1.alpn_protocol().map(<[u8]>::to_vec)
    }

    pub fn version(&self) -> Option<rustls::ProtocolVersion> {
        self.stream.get_ref().1.protocol_version()
    }

    pub fn resumed(&self) -> bool {
        matches!(
            self.stream.get_ref().1.handshake_kind(),
            Some(rustls::HandshakeKind::Resumed)
        )
    }

    /// Sends requests on this connection with HTTP/1.1, or h2 when it was negotiated.
    pub async fn http(self) -> Http {
        let h2 = self.alpn().as_deref() == Some(b"h2");
        let io = TokioIo::new(self.stream);
        if h2 {
            let (send, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
                .await
                .unwrap();
            tokio::spawn(conn);
            Http::H2(send)
        } else {
            let (send, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
            tokio::spawn(conn);
            Http::H1(send)
        }
    }
}

pub enum Http {
    H1(hyper::client::conn::http1::SendRequest<Full<Bytes>>),
    H2(hyper::client::conn::http2::SendRequest<Full<Bytes>>),
}

impl Http {
    pub async fn send(
        &mut self,
        method: &str,
        host: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Reply {
        self.send_body(method, host, path, headers, Bytes::new())
            .await
    }

    pub async fn send_body(
        &mut self,
        method: &str,
        host: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> Reply {
        let mut b = hyper::Request::builder().method(method);
        b = match self {
            Http::H1(_) => b.uri(path).header("host", host),
            Http::H2(_) => b.uri(format!("https://{host}{path}")),
        };
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let req = b.body(Full::new(body)).unwrap();
        let resp = match self {
            Http::H1(s) => {
                s.ready().await.unwrap();
                s.send_request(req).await.unwrap()
            }
            Http::H2(s) => {
                s.ready().await.unwrap();
                s.send_request(req).await.unwrap()
            }
        };
        Reply::read(resp).await
    }

    pub async fn get(&mut self, host: &str, path: &str) -> Reply {
        self.send("GET", host, path, &[]).await
    }
}

/// One GET over a fresh TLS connection with `sni`; returns the reply and the certificate the
/// server presented.
pub async fn get(
    addr: SocketAddr,
    sni: &str,
    path: &str,
    opts: &ClientOpts,
) -> (Reply, CertificateDer<'static>) {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let conn = Conn::open(addr, sni, client_config(opts, seen.clone()), seen).await;
    let cert = conn.cert();
    let mut http = conn.http().await;
    (http.get(sni, path).await, cert)
}

/// The common name of a DER certificate (for telling served certificates apart).
pub fn common_name(der: &CertificateDer<'_>) -> String {
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).unwrap();
    cert.subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .unwrap_or_default()
        .to_string()
}

/// The server names test upstreams saw, one per handshake.
pub type SeenNames = Arc<Mutex<Vec<Option<String>>>>;

/// Serves `chain` and records the SNI of every handshake (None: the client sent none).
#[derive(Debug)]
struct RecordSni(
    Arc<rustls::sign::CertifiedKey>,
    Arc<Mutex<Vec<Option<String>>>>,
);

impl rustls::server::ResolvesServerCert for RecordSni {
    fn resolve(
        &self,
        hello: rustls::server::ClientHello<'_>,
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        self.1
            .lock()
            .unwrap()
            .push(hello.server_name().map(str::to_string));
        Some(self.0.clone())
    }
}

/// A test upstream's server configuration that records the server names clients send.
pub fn server_config_recording(
    chain: &[&str],
    key: &str,
) -> (Arc<rustls::ServerConfig>, SeenNames) {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certs: Vec<CertificateDer<'static>> = chain
        .iter()
        .map(|pem| CertificateDer::from_pem_slice(pem.as_bytes()).unwrap())
        .collect();
    let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap();
    let certified = rustls::sign::CertifiedKey::from_der(certs, key, &provider).unwrap();
    let names = Arc::new(Mutex::new(Vec::new()));
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(RecordSni(Arc::new(certified), names.clone())));
    (Arc::new(config), names)
}

/// Indents PEM text for a YAML block scalar at `spaces`.
pub fn yaml_block(pem: &str, spaces: usize) -> String {
    let pad = " ".repeat(spaces);
    let mut out = String::from("|\n");
    for line in pem.trim_end().lines() {
        out.push_str(&pad);
        out.push_str(line);
        out.push('\n');
    }
    out.trim_end().to_string()
}
