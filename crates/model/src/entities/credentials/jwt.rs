//! `jwt_secrets` (jwt): a key (matched against the token's `iss`, or the configured claim), an
//! HMAC secret, or the public key for the asymmetric algorithms.

use super::consumer_field;
use crate::entities::{EntitySchema, ForeignKey};
use crate::schema::{EntityCheck, Field, Matcher, Record};
use crate::typedefs;
use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;
use x509_parser::prelude::FromDer;

/// Kong's `algorithm` choices.
pub const ALGORITHMS: [&str; 13] = [
    "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256",
    "PS384", "PS512", "EdDSA",
];

/// Algorithms for which Kong requires a valid `rsa_public_key`. Kong leaves the ES family
/// out of this check (its jwt plugin still needs the key to verify them).
pub const PUBLIC_KEY_REQUIRED: [&str; 7] = [
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "EdDSA",
];

#[derive(Debug, Clone, Deserialize)]
pub struct JwtSecret {
    pub id: Uuid,
    pub created_at: Option<i64>,
    pub consumer: ForeignKey,
    pub key: String,
    pub secret: Option<String>,
    pub rsa_public_key: Option<String>,
    pub algorithm: String,
    pub tags: Option<Vec<String>>,
}

/// A PEM key as OpenSSL's `pkey.new` accepts it: a public key (SubjectPublicKeyInfo or PKCS#1
/// RSA) or a private key; anything else is Kong's "invalid key".
pub fn check_public_key(v: &Value) -> Result<(), String> {
    let invalid = || "invalid key".to_string();
    let pem = v.as_str().unwrap_or_default();
    let (_, block) =
        x509_parser::pem::parse_x509_pem(pem.trim_start().as_bytes()).map_err(|_| invalid())?;
    match block.label.as_str() {
        "PUBLIC KEY" => {
            let (_, spki) = x509_parser::x509::SubjectPublicKeyInfo::from_der(&block.contents)
                .map_err(|_| invalid())?;
            spki.parsed().map(|_| ()).map_err(|_| invalid())
        }
        "RSA PUBLIC KEY" => x509_parser::public_key::RSAPublicKey::from_der(&block.contents)
            .map(|_| ())
            .map_err(|_| invalid()),
        label if label.ends_with("PRIVATE KEY") => crate::entities::certificates::parse_key(pem)
            .map(|_| ())
            .map_err(|_| invalid()),
        _ => Err(invalid()),
    }
}

pub(crate) fn schema() -> EntitySchema {
    EntitySchema {
        name: "jwt_secrets",
        endpoint_key: Some("key"),
        cache_key: &["key"],
        record: Record::new(vec![
            ("id", Field::id()),
            ("created_at", Field::timestamp_s()),
            ("consumer", consumer_field()),
            ("key", Field::string().unique().auto()),
            ("secret", Field::string().auto().sensitive()),
            ("rsa_public_key", Field::string()),
            (
                "algorithm",
                Field::string().default("HS256").one_of(ALGORITHMS),
            ),
            ("tags", typedefs::tags()),
        ])
        .with_checks(vec![EntityCheck::Conditional {
            if_field: "algorithm",
            if_match: Matcher::OneOf(PUBLIC_KEY_REQUIRED.iter().map(|&a| a.into()).collect()),
            then_field: "rsa_public_key",
            then_match: Matcher::Validated(check_public_key),
            then_err: None,
        }]),
        before: None,
        after: None,
        db_export: true,
        transform: None,
    }
}
