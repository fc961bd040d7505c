//! TLS settings with Kong's names: the listeners' certificates, protocol versions and cipher
//! suites, session resumption, and how upstream certificates are verified.

use crate::values;
use crate::{RawSettings, Secret};

/// A certificate and its key, as given: a file path or the PEM text itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertSource {
    pub cert: String,
    pub key: Secret,
}

/// The TLS protocol versions Silverback can serve (rustls has no TLS 1.0 or 1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TlsVersions {
    pub tls12: bool,
    pub tls13: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// `ssl_cert` / `ssl_cert_key`: the proxy's default certificates (one RSA and one ECDSA at
    /// most); empty = the self-signed pair generated under the prefix.
    pub ssl_cert: Vec<CertSource>,
    pub admin_ssl_cert: Vec<CertSource>,
    pub status_ssl_cert: Vec<CertSource>,
    /// From `ssl_cipher_suite` (or `ssl_protocols` when the suite is `custom`).
    pub versions: TlsVersions,
    /// OpenSSL names of the TLS 1.2 suites offered; `None` = every suite rustls has.
    pub ciphers: Option<Vec<String>>,
    pub prefer_server_ciphers: bool,
    pub session_tickets: bool,
    /// Bytes of `ssl_session_cache_size`; nginx keeps about 4000 sessions per megabyte.
    pub session_cache_size: u64,
    /// `client_ssl`: present `client_ssl_cert` to upstreams whose service has no
    /// `client_certificate`.
    pub client_ssl_cert: Option<CertSource>,
    /// `lua_ssl_trusted_certificate`: `system` and/or PEM files (paths or PEM text).
    pub trusted_certificates: Vec<String>,
    /// `nginx_proxy_proxy_ssl_verify`: verify upstream certificates when a service leaves
    /// `tls_verify` unset.
    pub upstream_ssl_verify: bool,
}

/// Mozilla's intermediate list, as Kong's `ssl_cipher_suite = intermediate` (the DHE suites
/// are left out by the mapping: rustls has none).
const INTERMEDIATE: &str = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:\
ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:\
ECDHE-RSA-CHACHA20-POLY1305:DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:\
DHE-RSA-CHACHA20-POLY1305";

fn parse_versions(v: &str) -> Result<TlsVersions, String> {
    let mut out = TlsVersions {
        tls12: false,
        tls13: false,
    };
    for word in v.split_whitespace() {
        match word {
            "TLSv1.2" => out.tls12 = true,
            "TLSv1.3" => out.tls13 = true,
            "TLSv1" | "TLSv1.1" => {}
            other => return Err(format!("'{other}' is not one of TLSv1.2, TLSv1.3")),
        }
    }
    if !out.tls12 && !out.tls13 {
        return Err("must include TLSv1.2 or TLSv1.3 (TLSv1 and TLSv1.1 are not available)".into());
    }
    Ok(out)
}

fn parse_ciphers(v: &str) -> Option<Vec<String>> {
    let list: Vec<String> = v
        .split(':')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    (!list.is_empty()).then_some(list)
}

/// Pairs a comma-separated certificate list with its key list.
fn cert_pairs(certs: &str, keys: &str) -> Result<Vec<CertSource>, String> {
    let certs = values::parse_list(certs);
    let keys = values::parse_list(keys);
    if certs.len() != keys.len() {
        return Err(format!(
            "{} certificate(s) but {} key(s): each certificate needs its key",
            certs.len(),
            keys.len()
        ));
    }
    if certs.len() > 2 {
        return Err("at most two certificates (one RSA, one ECDSA)".into());
    }
    Ok(certs
        .into_iter()
        .zip(keys)
        .map(|(cert, key)| CertSource {
            cert,
            key: Secret::new(key),
        })
        .collect())
}

/// PEM text given inline keeps its commas out of the list syntax: one value only.
fn cert_pairs_or_pem(certs: &str, keys: &str) -> Result<Vec<CertSource>, String> {
    if certs.contains("-----BEGIN") || keys.contains("-----BEGIN") {
        if certs.trim().is_empty() || keys.trim().is_empty() {
            return Err("a certificate needs its key".into());
        }
        return Ok(vec![CertSource {
            cert: certs.to_string(),
            key: Secret::new(keys),
        }]);
    }
    cert_pairs(certs, keys)
}

impl RawSettings {
    pub(crate) fn parse_tls(&self, check: &mut dyn FnMut(&str, Result<(), String>)) -> TlsSettings {
        let mut s = TlsSettings {
            ssl_cert: Vec::new(),
            admin_ssl_cert: Vec::new(),
            status_ssl_cert: Vec::new(),
            versions: TlsVersions {
                tls12: true,
                tls13: true,
            },
            ciphers: None,
            prefer_server_ciphers: false,
            session_tickets: true,
            session_cache_size: 10 << 20,
            client_ssl_cert: None,
            trusted_certificates: Vec::new(),
            upstream_ssl_verify: false,
        };
        for (prefix, slot) in [
            ("ssl", &mut s.ssl_cert),
            ("admin_ssl", &mut s.admin_ssl_cert),
            ("status_ssl", &mut s.status_ssl_cert),
        ] {
            let certs = self.get(&format!("{prefix}_cert"));
            let keys = self.get(&format!("{prefix}_cert_key"));
            check(
                &format!("{prefix}_cert"),
                cert_pairs_or_pem(certs, keys).map(|v| *slot = v),
            );
        }
        let suite = self.get("ssl_cipher_suite").trim();
        match suite {
            "modern" => {
                s.versions = TlsVersions {
                    tls12: false,
                    tls13: true,
                };
            }
            "intermediate" => s.ciphers = parse_ciphers(INTERMEDIATE),
            "old" => s.prefer_server_ciphers = true,
            "fips" => {
                s.versions = TlsVersions {
                    tls12: true,
                    tls13: false,
                };
                s.prefer_server_ciphers = true;
            }
            "custom" => {
                check(
                    "ssl_protocols",
                    parse_versions(self.get("ssl_protocols")).map(|v| s.versions = v),
                );
                s.ciphers = parse_ciphers(self.get("ssl_ciphers"));
                check(
                    "ssl_prefer_server_ciphers",
                    values::parse_bool(self.get("ssl_prefer_server_ciphers"))
                        .map(|v| s.prefer_server_ciphers = v),
                );
            }
            other => check(
                "ssl_cipher_suite",
                Err(format!(
                    "Undefined cipher suite {other} (modern, intermediate, old, fips or custom)"
                )),
            ),
        }
        check(
            "ssl_session_tickets",
            values::parse_bool(self.get("ssl_session_tickets")).map(|v| s.session_tickets = v),
        );
        check(
            "ssl_session_cache_size",
            values::parse_size(self.get("ssl_session_cache_size"))
                .map(|v| s.session_cache_size = v),
        );
        let client_ssl = values::parse_bool(self.get("client_ssl"));
        check(
            "client_ssl",
            client_ssl.as_ref().map(|_| ()).map_err(Clone::clone),
        );
        if client_ssl == Ok(true) {
            let pairs =
                cert_pairs_or_pem(self.get("client_ssl_cert"), self.get("client_ssl_cert_key"));
            match pairs {
                Ok(p) if p.len() == 1 => s.client_ssl_cert = p.into_iter().next(),
                Ok(_) => check(
                    "client_ssl_cert",
                    Err("client_ssl is on: client_ssl_cert and client_ssl_cert_key are required (one pair)".into()),
                ),
                Err(e) => check("client_ssl_cert", Err(e)),
            }
        }
        let trusted = self.get("lua_ssl_trusted_certificate");
        s.trusted_certificates = if trusted.contains("-----BEGIN") {
            vec![trusted.to_string()]
        } else {
            values::parse_list(trusted)
        };
        check(
            "nginx_proxy_proxy_ssl_verify",
            values::parse_bool(self.get("nginx_proxy_proxy_ssl_verify"))
                .map(|v| s.upstream_ssl_verify = v),
        );
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tls(pairs: &[(&str, &str)]) -> Result<TlsSettings, Vec<String>> {
        let mut raw = RawSettings::defaults();
        for (k, v) in pairs {
            raw = raw.with_override(k, v);
        }
        let mut errors = Vec::new();
        let s = raw.parse_tls(&mut |name, r| {
            if let Err(e) = r {
                errors.push(format!("{name}: {e}"));
            }
        });
        if errors.is_empty() {
            Ok(s)
        } else {
            Err(errors)
        }
    }

    #[test]
    fn kong_defaults() {
        let s = tls(&[]).unwrap();
        assert!(s.versions.tls12 && s.versions.tls13);
        assert!(s.ssl_cert.is_empty());
        assert!(s.ciphers.as_ref().unwrap().len() == 9);
        assert!(!s.prefer_server_ciphers);
        assert!(s.session_tickets);
        assert_eq!(s.session_cache_size, 10 << 20);
        assert_eq!(s.trusted_certificates, vec!["system".to_string()]);
        assert!(!s.upstream_ssl_verify);
        assert!(s.client_ssl_cert.is_none());
    }

    #[test]
    fn suites_and_protocols() {
        let s = tls(&[("ssl_cipher_suite", "modern")]).unwrap();
        assert!(!s.versions.tls12 && s.versions.tls13);
        // ssl_protocols only counts with the custom suite, as in Kong.
        let s = tls(&[("ssl_protocols", "TLSv1.3")]).unwrap();
        assert!(s.versions.tls12);
        let s = tls(&[
            ("ssl_cipher_suite", "custom"),
            ("ssl_protocols", "TLSv1.2"),
            ("ssl_ciphers", "ECDHE-RSA-AES128-GCM-SHA256"),
        ])
        .unwrap();
        assert!(s.versions.tls12 && !s.versions.tls13);
        assert_eq!(s.ciphers.unwrap(), vec!["ECDHE-RSA-AES128-GCM-SHA256"]);
        assert!(tls(&[("ssl_cipher_suite", "custom"), ("ssl_protocols", "TLSv1")]).is_err());
        assert!(tls(&[("ssl_cipher_suite", "weird")]).is_err());
    }

    #[test]
    fn certificate_pairs() {
        let s = tls(&[
            ("ssl_cert", "/a.crt, /b.crt"),
            ("ssl_cert_key", "/a.key,/b.key"),
        ])
        .unwrap();
        assert_eq!(s.ssl_cert.len(), 2);
        assert_eq!(s.ssl_cert[1].cert, "/b.crt");
        assert_eq!(s.ssl_cert[1].key.expose(), "/b.key");
        assert!(tls(&[("ssl_cert", "/a.crt")]).is_err());
        let pem = "-----BEGIN CERTIFICATE-----\nMII,x\n-----END CERTIFICATE-----";
        let s = tls(&[("admin_ssl_cert", pem), ("admin_ssl_cert_key", "/k")]).unwrap();
        assert_eq!(s.admin_ssl_cert[0].cert, pem);
        assert!(tls(&[("client_ssl", "on")]).is_err());
        let s = tls(&[
            ("client_ssl", "on"),
            ("client_ssl_cert", "/c"),
            ("client_ssl_cert_key", "/k"),
        ])
        .unwrap();
        assert_eq!(s.client_ssl_cert.unwrap().cert, "/c");
    }
}
