//! TLS client pieces every outbound connection shares (services, log plugins' endpoints,
//! https health probes): the system's CA certificates, read once, and the verifier Kong's
//! defaults call for wherever it does not check certificates.

use rustls::DigitallySignedStruct;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use std::sync::LazyLock;

static SYSTEM_CA_CERTIFICATES: LazyLock<Vec<CertificateDer<'static>>> = LazyLock::new(|| {
    let found = rustls_native_certs::load_native_certs();
    for e in &found.errors {
        tracing::warn!(error = %e, "reading the system CA store");
    }
    if found.certs.is_empty() {
        tracing::warn!(
            "no trusted CA certificates found on this system: TLS servers cannot be verified"
        );
    }
    found.certs
});

/// The system's trusted CA certificates (read on first use, then shared).
pub fn system_ca_certificates() -> &'static [CertificateDer<'static>] {
    &SYSTEM_CA_CERTIFICATES
}

/// Accepts any server certificate; the handshake's signatures are still checked.
#[derive(Debug)]
pub struct AnyServerCert(WebPkiSupportedAlgorithms);

impl AnyServerCert {
    pub fn new(provider: &rustls::crypto::CryptoProvider) -> AnyServerCert {
        AnyServerCert(provider.signature_verification_algorithms)
    }
}

impl ServerCertVerifier for AnyServerCert {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.supported_schemes()
    }
}
