//! `ca_certificates`: trusted CAs for verifying upstream certificates.

use super::{Context, EntitySchema};
use crate::schema::{EntityCheck, Field, FieldErrors, Map, Record, Validator};
use crate::typedefs;
use serde::Deserialize;
use serde_json::Value;
use sha2::Digest;
use uuid::Uuid;

#[derive(Debug, Clone, Deserialize)]
pub struct CaCertificate {
    pub id: Uuid,
    pub cert: String,
    pub cert_digest: Option<String>,
    pub tags: Option<Vec<String>>,
}

const CERT_TAG: &str = "-----BEGIN CERTIFICATE-----";

fn check_ca(m: &Map) -> Result<(), String> {
    let pem = m.get("cert").and_then(Value::as_str).unwrap_or_default();
    if pem.matches(CERT_TAG).count() > 1 {
        return Err("please submit only one certificate at a time".into());
    }
    let chain = super::certificates::parse_chain(pem)?;
    let der = chain.first().ok_or("no certificate found")?;
    let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(|e| e.to_string())?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    if cert.validity().not_after.timestamp() < now {
        return Err("certificate expired, \"Not After\" time is in the past".into());
    }
    let is_ca = cert
        .basic_constraints()
        .ok()
        .flatten()
        .is_some_and(|bc| bc.value.ca);
    if !is_ca {
        return Err(
            "certificate does not appear to be a CA because it is missing the \"CA\" basic constraint"
                .into(),
        );
    }
    Ok(())
}

pub(super) fn schema() -> EntitySchema {
    EntitySchema {
        name: "ca_certificates",
        endpoint_key: None,
        cache_key: &[],
        record: Record::new(vec![
            ("id", Field::id()),
            ("created_at", Field::timestamp_s()),
            ("updated_at", Field::timestamp_s()),
            (
                "cert",
                Field::string().required().custom(super::check_certificate),
            ),
            ("cert_digest", Field::string().unique()),
            ("tags", typedefs::tags()),
        ])
        .with_checks(vec![EntityCheck::Custom {
            fields: vec!["cert"],
            check: check_ca,
        }]),
        before: None,
        after: Some(set_digest),
        db_export: true,
        transform: None,
    }
}

/// Kong stores the hex SHA-256 of the DER certificate as `cert_digest`.
fn set_digest(_: &Validator, _: &Context<'_>, map: &mut Map, errors: &mut FieldErrors) {
    if errors.has("cert") {
        return;
    }
    let pem = map.get("cert").and_then(Value::as_str).unwrap_or_default();
    if let Ok(chain) = super::certificates::parse_chain(pem)
        && let Some(der) = chain.first()
    {
        let digest = sha2::Sha256::digest(der.as_ref());
        map.insert("cert_digest".into(), crate::hex(&digest).into());
    }
}
