//! TLS listeners: the rustls server configuration built from Kong's `ssl_*` settings, and the
//! certificate resolver that picks, per handshake, the certificate of the SNI the client sent.
//!
//! The certificates and snis entities are compiled into a [`CertStore`] with every snapshot,
//! so a certificate written through the Admin API (or a reload) is served by the next
//! handshake; the resolver reads the current snapshot without a lock.

use super::TlsError;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{SignatureAlgorithm, SignatureScheme, SupportedCipherSuite};
use silverback_config::TlsSettings;
use std::collections::HashMap;
use std::sync::Arc;

/// A certificate entity's pairs by key type: ECDSA goes to clients that accept it, RSA to the
/// others (Kong's `cert` / `cert_alt`).
#[derive(Debug, Default, Clone)]
pub struct Pairs {
    pub ecdsa: Option<Arc<CertifiedKey>>,
    pub other: Option<Arc<CertifiedKey>>,
}

impl Pairs {
    pub fn from_keys(keys: impl IntoIterator<Item = Arc<CertifiedKey>>) -> Pairs {
        let mut p = Pairs::default();
        for k in keys {
            if k.key.algorithm() == SignatureAlgorithm::ECDSA && p.ecdsa.is_none() {
                p.ecdsa = Some(k);
            } else if p.other.is_none() {
                p.other = Some(k);
            } else {
                p.ecdsa.get_or_insert(k);
            }
        }
        p
    }

    fn pick(&self, hello: &ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let ecdsa_ok = hello.signature_schemes().iter().any(|s| {
            matches!(
                s,
                SignatureScheme::ECDSA_NISTP256_SHA256
                    | SignatureScheme::ECDSA_NISTP384_SHA384
                    | SignatureScheme::ECDSA_NISTP521_SHA512
            )
        });
        match (&self.ecdsa, &self.other) {
            (Some(e), _) if ecdsa_ok => Some(e.clone()),
            (_, Some(o)) => Some(o.clone()),
            (Some(e), None) => Some(e.clone()),
            (None, None) => None,
        }
    }
}

/// The certificates of a config, by SNI name (lower case; wildcards as written: `*.x.y`,
/// `x.*`, and `*` for every name).
#[derive(Debug, Default)]
pub struct CertStore {
    by_name: HashMap<String, Arc<Pairs>>,
}

impl CertStore {
    pub fn new(by_name: HashMap<String, Arc<Pairs>>) -> CertStore {
        CertStore { by_name }
    }

    /// Kong's lookup: the exact name, then `*.` + the name without its first label (names of
    /// three labels or more), then the name with its last label replaced by `*`, then `*`.
    pub fn find(&self, sni: &str) -> Option<&Arc<Pairs>> {
        if self.by_name.is_empty() {
            return None;
        }
        let sni = sni.trim_end_matches('.').to_ascii_lowercase();
        if let Some(p) = self.by_name.get(&sni) {
            return Some(p);
        }
        if let Some((_, rest)) = sni.split_once('.')
            && rest.contains('.')
            && let Some(p) = self.by_name.get(&format!("*.{rest}"))
        {
            return Some(p);
        }
        if let Some((head, _)) = sni.rsplit_once('.')
            && let Some(p) = self.by_name.get(&format!("{head}.*"))
        {
            return Some(p);
        }
        self.by_name.get("*")
    }

    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }
}

/// Where the resolver finds the current certificates.
pub trait CurrentCerts: Send + Sync + std::fmt::Debug {
    /// The pairs of the entity the current config has for `sni`.
    fn find(&self, sni: &str) -> Option<Arc<Pairs>>;
}

/// Picks a handshake's certificate: the SNI's from the current config, else the default.
#[derive(Debug)]
pub struct SniResolver {
    current: Option<Arc<dyn CurrentCerts>>,
    default: Pairs,
}

impl SniResolver {
    /// `current` is `None` for listeners without certificate entities (Admin, status).
    pub fn new(current: Option<Arc<dyn CurrentCerts>>, default: Pairs) -> SniResolver {
        SniResolver { current, default }
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        if let (Some(current), Some(sni)) = (&self.current, hello.server_name())
            && let Some(found) = current.find(sni).and_then(|p| p.pick(&hello))
        {
            return Some(found);
        }
        self.default.pick(&hello)
    }
}

/// rustls's TLS 1.2 suites by their OpenSSL names.
fn tls12_suite(name: &str) -> Option<SupportedCipherSuite> {
    use rustls::crypto::ring::cipher_suite as cs;
    Some(match name {
        "ECDHE-ECDSA-AES128-GCM-SHA256" => cs::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        "ECDHE-ECDSA-AES256-GCM-SHA384" => cs::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        "ECDHE-ECDSA-CHACHA20-POLY1305" => cs::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
        "ECDHE-RSA-AES128-GCM-SHA256" => cs::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        "ECDHE-RSA-AES256-GCM-SHA384" => cs::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        "ECDHE-RSA-CHACHA20-POLY1305" => cs::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
        _ => return None,
    })
}

/// The crypto provider with the suites the settings allow, in their order.
pub fn provider(settings: &TlsSettings) -> Result<Arc<CryptoProvider>, TlsError> {
    let mut p = rustls::crypto::ring::default_provider();
    let tls13: Vec<SupportedCipherSuite> = p
        .cipher_suites
        .iter()
        .filter(|s| matches!(s, SupportedCipherSuite::Tls13(_)))
        .copied()
        .collect();
    let tls12: Vec<SupportedCipherSuite> = match &settings.ciphers {
        None => p
            .cipher_suites
            .iter()
            .filter(|s| matches!(s, SupportedCipherSuite::Tls12(_)))
            .copied()
            .collect(),
        Some(names) => names.iter().filter_map(|n| tls12_suite(n)).collect(),
    };
    if settings.versions.tls12 && !settings.versions.tls13 && tls12.is_empty() {
        return Err(TlsError::Settings(
            "ssl_ciphers: none of the listed suites is available (rustls implements the ECDHE GCM and CHACHA20 suites)".into(),
        ));
    }
    p.cipher_suites = if settings.versions.tls12 {
        tls13.into_iter().chain(tls12).collect()
    } else {
        tls13
    };
    Ok(Arc::new(p))
}

/// What a listener offers by ALPN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alpn {
    /// HTTP/1.1 only.
    Http1,
    /// h2 first, then HTTP/1.1 (the listen line's `http2` flag).
    Http2,
    /// Nothing: stream listeners carry whatever the client speaks.
    None,
}

impl Alpn {
    /// The offer of an HTTP listener, by its `http2` flag.
    pub fn http(http2: bool) -> Alpn {
        if http2 { Alpn::Http2 } else { Alpn::Http1 }
    }
}

/// A listener's server configuration.
pub fn server_config(
    settings: &TlsSettings,
    resolver: Arc<SniResolver>,
    alpn: Alpn,
    sessions: &Sessions,
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let mut versions: Vec<&'static rustls::SupportedProtocolVersion> = Vec::new();
    if settings.versions.tls13 {
        versions.push(&rustls::version::TLS13);
    }
    if settings.versions.tls12 {
        versions.push(&rustls::version::TLS12);
    }
    let mut config = rustls::ServerConfig::builder_with_provider(provider(settings)?)
        .with_protocol_versions(&versions)
        .map_err(|e| TlsError::Settings(e.to_string()))?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    config.ignore_client_order = settings.prefer_server_ciphers;
    config.alpn_protocols = match alpn {
        Alpn::Http2 => vec![b"h2".to_vec(), b"http/1.1".to_vec()],
        Alpn::Http1 => vec![b"http/1.1".to_vec()],
        Alpn::None => Vec::new(),
    };
    config.session_storage = sessions.cache.clone();
    if let Some(t) = &sessions.ticketer {
        config.ticketer = t.clone();
    }
    // TLS 1.3 resumes with tickets either way: stateless ones, or ids into the session cache.
    config.send_tls13_tickets = if sessions.ticketer.is_some() || sessions.cached {
        2
    } else {
        0
    };
    Ok(Arc::new(config))
}

/// Session resumption state shared by every listener of a kind: a session cache (stateful
/// resumption) and a ticket key (stateless), as nginx's `ssl_session_cache` and tickets.
#[derive(Clone)]
pub struct Sessions {
    cache: Arc<dyn rustls::server::StoresServerSessions>,
    cached: bool,
    ticketer: Option<Arc<dyn rustls::server::ProducesTickets>>,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions")
            .field("tickets", &self.ticketer.is_some())
            .finish()
    }
}

impl Sessions {
    pub fn new(settings: &TlsSettings) -> Result<Sessions, TlsError> {
        // nginx stores about 4000 sessions per megabyte of ssl_session_cache.
        let entries = (settings.session_cache_size / 256).min(1 << 22) as usize;
        let cache: Arc<dyn rustls::server::StoresServerSessions> = if entries == 0 {
            Arc::new(rustls::server::NoServerSessionStorage {})
        } else {
            rustls::server::ServerSessionMemoryCache::new(entries)
        };
        let ticketer = if settings.session_tickets {
            Some(
                rustls::crypto::ring::Ticketer::new()
                    .map_err(|e| TlsError::Settings(format!("session tickets: {e}")))?,
            )
        } else {
            None
        };
        Ok(Sessions {
            cache,
            cached: entries > 0,
            ticketer,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(names: &[&str]) -> CertStore {
        let pairs = Arc::new(Pairs::default());
        CertStore::new(
            names
                .iter()
                .map(|n| (n.to_string(), pairs.clone()))
                .collect(),
        )
    }

    #[test]
    fn kong_sni_lookup_order() {
        let s = store(&["a.example.com", "*.example.com", "www.example.*"]);
        assert!(s.find("A.Example.com").is_some());
        assert!(s.find("b.example.com").is_some(), "prefix wildcard");
        assert!(s.find("x.b.example.com").is_none(), "one label only");
        assert!(s.find("example.com").is_none(), "needs three labels");
        assert!(s.find("www.example.org").is_some(), "suffix wildcard");
        assert!(s.find("mail.example.org").is_none());
        let with_star = store(&["*"]);
        assert!(with_star.find("anything.test").is_some());
    }

    #[test]
    fn suites_follow_settings() {
        let mut settings = silverback_config::Settings::load(None, Vec::<(String, String)>::new())
            .unwrap()
            .tls;
        let p = provider(&settings).unwrap();
        // 3 TLS 1.3 suites and the 6 ECDHE suites of the intermediate list.
        assert_eq!(p.cipher_suites.len(), 9);
        settings.ciphers = Some(vec!["DHE-RSA-AES128-GCM-SHA256".into()]);
        settings.versions.tls13 = false;
        assert!(provider(&settings).is_err());
    }
}
