//! Certificates from settings and from the prefix: PEM given as a path or as text, the
//! self-signed defaults generated on first start (as Kong's prefix handler does), and the
//! generation of new pairs (`silverback hybrid gen_cert`).

use super::TlsError;
use rustls::sign::CertifiedKey;
use silverback_config::CertSource;
use silverback_model::entities::certified_key;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// PEM text given inline, or the contents of the file it names.
pub fn read_pem(source: &str) -> Result<String, TlsError> {
    if source.contains("-----BEGIN") {
        return Ok(source.to_string());
    }
    std::fs::read_to_string(source).map_err(|e| TlsError::Read {
        path: source.into(),
        reason: e.to_string(),
    })
}

/// Loads certificate/key pairs given in settings; `what` names the setting in errors.
pub fn load_pairs(pairs: &[CertSource], what: &str) -> Result<Vec<Arc<CertifiedKey>>, TlsError> {
    pairs
        .iter()
        .map(|p| {
            let cert = read_pem(&p.cert)?;
            let key = read_pem(p.key.expose())?;
            certified_key(&cert, &key)
                .map(Arc::new)
                .map_err(|reason| TlsError::Pair {
                    what: what.to_string(),
                    reason,
                })
        })
        .collect()
}

/// Which listener a default certificate is for: Kong names the files after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    Proxy,
    Admin,
    Status,
}

impl Listener {
    fn file_stem(self) -> &'static str {
        match self {
            Listener::Proxy => "kong-default-ecdsa",
            Listener::Admin => "admin-kong-default-ecdsa",
            Listener::Status => "status-kong-default-ecdsa",
        }
    }
}

/// The certificates a listener serves when no SNI entity matches: the configured ones, else
/// a self-signed ECDSA pair kept under `<prefix>/ssl/` (generated once, reused on restarts).
pub fn default_pairs(
    prefix: &Path,
    listener: Listener,
    configured: &[CertSource],
    what: &str,
) -> Result<Vec<Arc<CertifiedKey>>, TlsError> {
    if !configured.is_empty() {
        return load_pairs(configured, what);
    }
    let dir = prefix.join("ssl");
    let cert = dir.join(format!("{}.crt", listener.file_stem()));
    let key = dir.join(format!("{}.key", listener.file_stem()));
    if !cert.exists() || !key.exists() {
        std::fs::create_dir_all(&dir).map_err(|e| write_error(&dir, e))?;
        let (cert_pem, key_pem) = self_signed("localhost", 20 * 365, Curve::P256)?;
        write_private(&key, &key_pem)?;
        std::fs::write(&cert, cert_pem).map_err(|e| write_error(&cert, e))?;
        tracing::info!(cert = %cert.display(), "generated a self-signed default certificate");
    }
    load_pairs(
        &[CertSource {
            cert: cert.display().to_string(),
            key: silverback_config::Secret::new(key.display().to_string()),
        }],
        what,
    )
}

fn write_error(path: &Path, e: std::io::Error) -> TlsError {
    TlsError::Write {
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

/// Writes a private key readable by its owner only.
pub fn write_private(path: &Path, pem: &str) -> Result<(), TlsError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| f.write_all(pem.as_bytes()))
        .map_err(|e| write_error(path, e))
}

#[derive(Debug, Clone, Copy)]
pub enum Curve {
    P256,
    P384,
}

/// A self-signed certificate for `common_name` (also its DNS name), valid from now for
/// `days`: PEM certificate and PEM (PKCS#8) key.
pub fn self_signed(
    common_name: &str,
    days: u32,
    curve: Curve,
) -> Result<(String, String), TlsError> {
    let alg = match curve {
        Curve::P256 => &rcgen::PKCS_ECDSA_P256_SHA256,
        Curve::P384 => &rcgen::PKCS_ECDSA_P384_SHA384,
    };
    let gen_err = |e: rcgen::Error| TlsError::Generate(e.to_string());
    let key = rcgen::KeyPair::generate_for(alg).map_err(gen_err)?;
    let mut params =
        rcgen::CertificateParams::new(vec![common_name.to_string()]).map_err(gen_err)?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, common_name);
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now;
    params.not_after = now + time::Duration::days(i64::from(days));
    params.serial_number = Some(rcgen::SerialNumber::from_slice(&rand::random::<[u8; 16]>()));
    params.extended_key_usages = vec![
        rcgen::ExtendedKeyUsagePurpose::ServerAuth,
        rcgen::ExtendedKeyUsagePurpose::ClientAuth,
    ];
    let cert = params.self_signed(&key).map_err(gen_err)?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// `silverback hybrid gen_cert`: a cluster certificate and key (ECDSA P-384, CN
/// `kong_clustering`, as Kong's), refusing to overwrite either file.
pub fn gen_cluster_cert(cert: &Path, key: &Path, days: u32) -> Result<(), TlsError> {
    for p in [cert, key] {
        if p.exists() {
            return Err(TlsError::Exists(p.to_path_buf()));
        }
    }
    let (cert_pem, key_pem) = self_signed("kong_clustering", days, Curve::P384)?;
    std::fs::write(cert, cert_pem).map_err(|e| write_error(cert, e))?;
    write_private(key, &key_pem)
}

/// Absolute form of a path given on the command line.
pub fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_pairs_load_and_are_kept() {
        let dir = std::env::temp_dir().join(format!("sb-tls-certs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let first = default_pairs(&dir, Listener::Admin, &[], "admin_ssl_cert").unwrap();
        assert_eq!(first.len(), 1);
        let again = default_pairs(&dir, Listener::Admin, &[], "admin_ssl_cert").unwrap();
        assert_eq!(first[0].cert, again[0].cert, "reused, not regenerated");
        let key = dir.join("ssl/admin-kong-default-ecdsa.key");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let cert = dir.join("c.crt");
        let key = dir.join("c.key");
        gen_cluster_cert(&cert, &key, 10).unwrap();
        assert!(matches!(
            gen_cluster_cert(&cert, &key, 10),
            Err(TlsError::Exists(_))
        ));
        let pem = std::fs::read_to_string(&cert).unwrap();
        let key_pem = std::fs::read_to_string(&key).unwrap();
        assert!(certified_key(&pem, &key_pem).is_ok());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
