//! `certificates`: certificate/key pairs served on TLS listeners and used for upstream mTLS.

use super::{Context, EntitySchema};
use crate::schema::{EntityCheck, Field, FieldErrors, Map, Record, Validator};
use crate::typedefs;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

#[derive(Debug, Clone, Deserialize)]
pub struct Certificate {
    pub id: Uuid,
    pub cert: String,
    pub key: String,
    pub cert_alt: Option<String>,
    pub key_alt: Option<String>,
    pub tags: Option<Vec<String>>,
}

/// Parses a PEM certificate chain (leaf first).
pub fn parse_chain(pem: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let chain: Vec<_> = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    if chain.is_empty() {
        return Err("no certificate found".into());
    }
    Ok(chain)
}

pub fn parse_key(pem: &str) -> Result<PrivateKeyDer<'static>, String> {
    PrivateKeyDer::from_pem_slice(pem.as_bytes()).map_err(|e| e.to_string())
}

pub fn check_certificate(v: &Value) -> Result<(), String> {
    let pem = v.as_str().unwrap_or_default();
    let chain = parse_chain(pem).map_err(|e| format!("invalid certificate: {e}"))?;
    for der in &chain {
        x509_parser::parse_x509_certificate(der)
            .map_err(|e| format!("invalid certificate: {e}"))?;
    }
    Ok(())
}

pub fn check_key(v: &Value) -> Result<(), String> {
    let key = parse_key(v.as_str().unwrap_or_default()).map_err(|e| format!("invalid key: {e}"))?;
    rustls::crypto::ring::sign::any_supported_type(&key)
        .map(|_| ())
        .map_err(|e| format!("invalid key: {e}"))
}

/// The signing key for a certificate/key pair, checked to belong together.
pub fn certified_key(cert: &str, key: &str) -> Result<rustls::sign::CertifiedKey, String> {
    let chain = parse_chain(cert)?;
    let key = parse_key(key)?;
    let provider = rustls::crypto::ring::default_provider();
    rustls::sign::CertifiedKey::from_der(chain, key, &provider).map_err(|e| e.to_string())
}

fn key_type(cert: &str, key: &str) -> Option<rustls::SignatureAlgorithm> {
    certified_key(cert, key).ok().map(|ck| ck.key.algorithm())
}

fn pair_matches(map: &Map, cert: &str, key: &str, msg: &str) -> Result<(), String> {
    let (Some(c), Some(k)) = (
        map.get(cert).and_then(Value::as_str),
        map.get(key).and_then(Value::as_str),
    ) else {
        return Ok(());
    };
    certified_key(c, k).map(|_| ()).map_err(|_| msg.to_string())
}

pub(super) fn schema() -> EntitySchema {
    let record = Record::new(vec![
        ("id", Field::id()),
        ("created_at", Field::timestamp_s()),
        ("updated_at", Field::timestamp_s()),
        ("cert", Field::string().required().custom(check_certificate)),
        (
            "key",
            Field::string().required().encrypted().custom(check_key),
        ),
        ("cert_alt", Field::string().custom(check_certificate)),
        ("key_alt", Field::string().encrypted().custom(check_key)),
        ("tags", typedefs::tags()),
        ("snis", Field::array(typedefs::wildcard_host()).transient()),
    ])
    .with_checks(vec![
        EntityCheck::MutuallyRequired(vec!["cert_alt", "key_alt"]),
        EntityCheck::Custom {
            fields: vec!["cert", "key"],
            check: |m| pair_matches(m, "cert", "key", "certificate does not match key"),
        },
        EntityCheck::Custom {
            fields: vec!["cert_alt", "key_alt"],
            check: |m| {
                pair_matches(
                    m,
                    "cert_alt",
                    "key_alt",
                    "alternative certificate does not match key",
                )
            },
        },
        EntityCheck::Custom {
            fields: vec!["cert", "key", "cert_alt", "key_alt"],
            check: distinct_key_types,
        },
    ]);
    EntitySchema {
        name: "certificates",
        endpoint_key: None,
        cache_key: &[],
        record,
        before: None,
        after: Some(drop_transient_snis),
        db_export: true,
        transform: None,
    }
}

fn distinct_key_types(m: &Map) -> Result<(), String> {
    let get = |f: &str| m.get(f).and_then(Value::as_str);
    let (Some(c), Some(k), Some(ca), Some(ka)) =
        (get("cert"), get("key"), get("cert_alt"), get("key_alt"))
    else {
        return Ok(());
    };
    match (key_type(c, k), key_type(ca, ka)) {
        (Some(a), Some(b)) if a == b => Err(
            "certificate and alternative certificate need to have different type (e.g. RSA and ECDSA), the provided certificates were both of the same type"
                .into(),
        ),
        _ => Ok(()),
    }
}

/// `snis` only feeds the creation of sni entities; it is not part of the stored certificate.
fn drop_transient_snis(_: &Validator, _: &Context<'_>, map: &mut Map, _: &mut FieldErrors) {
    if map.get("snis").is_some_and(Value::is_null) {
        map.remove("snis");
    }
}
