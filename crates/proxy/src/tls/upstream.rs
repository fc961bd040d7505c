//! TLS to upstreams (`https`, `grpcs` and `tls` services): one rustls client configuration per
//! distinct set of a service's protocol (its ALPN), `tls_verify`, `tls_verify_depth`,
//! `ca_certificates` and `client_certificate`,
//! compiled with the snapshot and kept across snapshots while those inputs do not change (so
//! pooled connections and resumable sessions survive unrelated config changes).
//!
//! As in Kong, certificates are verified only when `tls_verify` is true, or unset with
//! `nginx_proxy_proxy_ssl_verify = on`; the trust store is the service's `ca_certificates`, else
//! `lua_ssl_trusted_certificate`; the chain may hold at most `tls_verify_depth` intermediates
//! (nginx's `proxy_ssl_verify_depth`, 1 by default).

use super::TlsError;
use super::certs::read_pem;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::sign::CertifiedKey;
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore};
use silverback_config::TlsSettings;
use silverback_model::Config;
use silverback_model::entities::Service;
use silverback_model::entities::{Certificate, certified_key, parse_chain};
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, OnceLock};
use uuid::Uuid;

/// nginx's default `proxy_ssl_verify_depth`.
const DEFAULT_DEPTH: u32 = 1;

/// A compiled upstream TLS configuration.
#[derive(Debug)]
pub struct UpstreamTls {
    /// Identifies the inputs: pooled connections are only reused under the same one.
    pub id: u64,
    pub config: Arc<ClientConfig>,
}

/// Process-wide upstream TLS settings, from the node's settings.
struct Defaults {
    verify: bool,
    roots: Arc<RootCertStore>,
    client: Option<Arc<CertifiedKey>>,
}

static DEFAULTS: OnceLock<Defaults> = OnceLock::new();

/// Loads the trust store (`lua_ssl_trusted_certificate`) and `client_ssl_cert`; once, before
/// the first snapshot is compiled.
pub fn init(settings: &TlsSettings) -> Result<(), TlsError> {
    let mut roots = RootCertStore::empty();
    for source in &settings.trusted_certificates {
        if source == "system" {
            roots.add_parsable_certificates(
                silverback_model::tls::system_ca_certificates()
                    .iter()
                    .cloned(),
            );
        } else {
            let pem = read_pem(source)?;
            let chain = parse_chain(&pem).map_err(|reason| TlsError::Pair {
                what: "lua_ssl_trusted_certificate".into(),
                reason,
            })?;
            roots.add_parsable_certificates(chain);
        }
    }
    let client = match &settings.client_ssl_cert {
        Some(pair) => super::certs::load_pairs(std::slice::from_ref(pair), "client_ssl_cert")?
            .into_iter()
            .next(),
        None => None,
    };
    let _ = DEFAULTS.set(Defaults {
        verify: settings.upstream_ssl_verify,
        roots: Arc::new(roots),
        client,
    });
    Ok(())
}

fn defaults() -> &'static Defaults {
    DEFAULTS.get_or_init(|| Defaults {
        verify: false,
        roots: Arc::new(RootCertStore::empty()),
        client: None,
    })
}

/// What a service's TLS configuration is made of, hashed into its id.
struct Inputs<'a> {
    /// Offered by ALPN: `http/1.1` to https services, `h2` to grpcs ones, nothing on streams.
    alpn: &'static [u8],
    verify: bool,
    depth: u32,
    /// PEM of each CA certificate, in the service's order.
    cas: Option<Vec<&'a str>>,
    client: Option<(&'a str, &'a str)>,
}

impl Inputs<'_> {
    fn id(&self) -> u64 {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.alpn.hash(&mut h);
        self.verify.hash(&mut h);
        self.depth.hash(&mut h);
        self.cas.hash(&mut h);
        self.client.hash(&mut h);
        h.finish()
    }
}

/// Whether a service of this protocol is reached over TLS.
pub fn is_tls_protocol(protocol: &str) -> bool {
    matches!(protocol, "https" | "grpcs" | "tls")
}

/// Compiles (or reuses from `previous`) the TLS configuration of an https, grpcs or tls service.
/// `upstream_client_certificate` is the certificate of the upstream the service points at, used
/// when the service has none (Kong's fallback). Missing CA or certificate rows were refused by
/// validation; one that cannot be used is logged and left out, so the handshake fails the way
/// Kong's does.
pub fn for_service(
    service: &Service,
    upstream_client_certificate: Option<Uuid>,
    config: &Config,
    certificates: &HashMap<Uuid, Certificate>,
    previous: &HashMap<u64, Arc<UpstreamTls>>,
) -> Arc<UpstreamTls> {
    let d = defaults();
    let cas = service.ca_certificates.as_ref().map(|ids| {
        ids.iter()
            .filter_map(|id| {
                let row = config
                    .rows("ca_certificates")
                    .iter()
                    .find(|r| r.id() == Some(*id));
                let pem = row.and_then(|r| r.get("cert")).and_then(|v| v.as_str());
                if pem.is_none() {
                    tracing::error!(service = %service.id, ca_certificate = %id, "unknown CA certificate");
                }
                pem
            })
            .collect::<Vec<_>>()
    });
    let client = service
        .client_certificate
        .as_ref()
        .map(|fk| fk.id)
        .or(upstream_client_certificate)
        .and_then(|id| certificates.get(&id))
        .map(|c| (c.cert.as_str(), c.key.as_str()));
    let inputs = Inputs {
        alpn: match service.protocol.as_str() {
            "grpcs" => b"h2",
            "tls" => b"",
            _ => b"http/1.1",
        },
        verify: service.tls_verify.unwrap_or(d.verify),
        depth: service.tls_verify_depth.unwrap_or(DEFAULT_DEPTH),
        cas,
        client,
    };
    let id = inputs.id();
    if let Some(reused) = previous.get(&id) {
        return reused.clone();
    }
    Arc::new(UpstreamTls {
        id,
        config: client_config(&inputs, d),
    })
}

fn client_config(inputs: &Inputs<'_>, d: &Defaults) -> Arc<ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let algs = provider.signature_verification_algorithms;
    let verifier: Arc<dyn ServerCertVerifier> = if inputs.verify {
        let roots = match &inputs.cas {
            Some(pems) => {
                let mut roots = RootCertStore::empty();
                for pem in pems {
                    if let Ok(chain) = parse_chain(pem) {
                        roots.add_parsable_certificates(chain);
                    }
                }
                Arc::new(roots)
            }
            None => d.roots.clone(),
        };
        Arc::new(Verifier {
            roots,
            depth: inputs.depth as usize,
            algs,
        })
    } else {
        Arc::new(silverback_model::tls::AnyServerCert::new(&provider))
    };
    let builder =
        match ClientConfig::builder_with_provider(provider).with_safe_default_protocol_versions() {
            Ok(b) => b.dangerous().with_custom_certificate_verifier(verifier),
            Err(e) => unreachable!("ring supports the default protocol versions: {e}"),
        };
    let client = match inputs.client {
        Some((cert, key)) => match certified_key(cert, key) {
            Ok(k) => Some(Arc::new(k)),
            Err(e) => {
                tracing::error!(error = %e, "unable to apply upstream client TLS certificate");
                None
            }
        },
        None => d.client.clone(),
    };
    let mut config = match client {
        Some(key) => builder.with_client_cert_resolver(Arc::new(ClientCert(key))),
        None => builder.with_no_client_auth(),
    };
    if !inputs.alpn.is_empty() {
        config.alpn_protocols = vec![inputs.alpn.to_vec()];
    }
    Arc::new(config)
}

/// The certificate presented when an upstream asks for one (mTLS).
#[derive(Debug)]
struct ClientCert(Arc<CertifiedKey>);

impl rustls::client::ResolvesClientCert for ClientCert {
    fn resolve(&self, _: &[&[u8]], _: &[rustls::SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// Checks the chain against the trust store with nginx's depth limit, and the name.
#[derive(Debug)]
struct Verifier {
    roots: Arc<RootCertStore>,
    /// Most intermediates allowed between the certificate and a trust anchor.
    depth: usize,
    algs: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let cert = webpki::EndEntityCert::try_from(end_entity).map_err(pki_error)?;
        let depth = self.depth;
        let within_depth = |path: &webpki::VerifiedPath<'_>| {
            if path.intermediate_certificates().count() > depth {
                Err(webpki::Error::MaximumPathDepthExceeded)
            } else {
                Ok(())
            }
        };
        cert.verify_for_usage(
            self.algs.all,
            &self.roots.roots,
            intermediates,
            now,
            webpki::KeyUsage::server_auth(),
            None,
            Some(&within_depth),
        )
        .map_err(pki_error)?;
        cert.verify_is_valid_for_subject_name(server_name)
            .map_err(pki_error)?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algs)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algs.supported_schemes()
    }
}

fn pki_error(e: webpki::Error) -> rustls::Error {
    use webpki::Error as W;
    let c = match e {
        W::CertExpired { .. } | W::InvalidCertValidity => CertificateError::Expired,
        W::CertNotValidYet { .. } => CertificateError::NotValidYet,
        W::UnknownIssuer => CertificateError::UnknownIssuer,
        W::CertNotValidForName(_) => CertificateError::NotValidForName,
        W::InvalidSignatureForPublicKey => CertificateError::BadSignature,
        W::BadDer | W::BadDerTime | W::TrailingData(_) => CertificateError::BadEncoding,
        other => CertificateError::Other(rustls::OtherError(Arc::new(other))),
    };
    rustls::Error::InvalidCertificate(c)
}

/// The reason a handshake failed, in words for the log line.
pub fn describe(e: &std::io::Error) -> String {
    let Some(tls) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) else {
        return e.to_string();
    };
    match tls {
        rustls::Error::InvalidCertificate(c) => match c {
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                "certificate has expired".into()
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                "certificate is not yet valid".into()
            }
            CertificateError::UnknownIssuer => {
                "unable to get local issuer certificate (unknown CA)".into()
            }
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                "certificate does not match the upstream host name".into()
            }
            CertificateError::BadSignature => "certificate signature failure".into(),
            CertificateError::Other(o) if o.0.to_string().contains("MaximumPathDepthExceeded") => {
                "certificate chain too long (tls_verify_depth)".into()
            }
            other => format!("invalid certificate: {other:?}"),
        },
        rustls::Error::AlertReceived(a) => format!("the upstream refused the handshake ({a:?})"),
        other => other.to_string(),
    }
}
