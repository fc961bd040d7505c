//! Consumer credentials: the entities Kong's authentication plugins define in their `daos.lua`
//! (key-auth, basic-auth, jwt, hmac-auth, acl, oauth2), one module each, plus the secret
//! handling they share: Kong's random keys, password hashing and verification.
//!
//! For the plugins that authenticate requests:
//! - typed rows: [`KeyAuthCredential`], [`BasicAuthCredential`], [`JwtSecret`],
//!   [`HmacAuthCredential`], [`Acl`], [`OAuth2Credential`], listed by the matching
//!   [`crate::Config`] methods (oauth2 codes and tokens are runtime state: the plugins crate's
//!   `runtime` module types them);
//! - [`verify_password`] for basic-auth passwords (argon2id PHC strings as Silverback stores
//!   them, or Kong's `sha1(password .. consumer_id)` hex kept from an import), and
//!   [`verify_client_secret`] for oauth2 client secrets (plain or hashed);
//! - [`expires_at`] for credentials with a `ttl`.

pub mod acls;
pub mod basicauth;
pub mod hmacauth;
pub mod jwt;
pub mod keyauth;
pub mod oauth2;

pub use acls::Acl;
pub use basicauth::BasicAuthCredential;
pub use hmacauth::HmacAuthCredential;
pub use jwt::JwtSecret;
pub use keyauth::KeyAuthCredential;
pub use oauth2::OAuth2Credential;

use crate::schema::{Field, FieldErrors, Map};
use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use serde_json::Value;
use sha1::Digest;
use subtle::ConstantTimeEq;
use uuid::Uuid;

/// Kong's largest `ttl` given through the Admin API (`DAO_MAX_TTL`); larger values are the
/// absolute expiry times Kong's exports write.
pub const MAX_TTL: i64 = 100_000_000;

/// Hashes a secret with argon2id (default parameters, a random 16-byte salt from the operating
/// system) into a PHC string (`$argon2id$v=19$m=...,t=...,p=...$salt$hash`).
pub fn hash_password(password: &str) -> Result<String, String> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| format!("cannot hash the secret: {e}"))
}

/// Whether `stored` is an argon2 PHC string (a hash Silverback wrote).
pub fn is_argon2_hash(stored: &str) -> bool {
    stored.starts_with("$argon2")
}

/// Kong's basic-auth hash: lower-case hex of `sha1(password .. consumer_id)`.
pub fn kong_sha1(password: &str, consumer_id: Uuid) -> String {
    let mut h = sha1::Sha1::new();
    h.update(password.as_bytes());
    h.update(consumer_id.to_string().as_bytes());
    crate::hex(&h.finalize())
}

/// Checks a basic-auth password against its stored form: an argon2 PHC string (how Silverback
/// stores passwords) or Kong's 40-hex-digit `sha1(password .. consumer_id)` (kept from a
/// declarative file or import with `_transform: false`). Comparisons are constant-time; any
/// other stored form never matches.
pub fn verify_password(stored: &str, candidate: &str, consumer_id: Uuid) -> bool {
    if is_argon2_hash(stored) {
        return Argon2::default()
            .verify_password(candidate.as_bytes(), stored)
            .is_ok();
    }
    if stored.len() == 40 && stored.bytes().all(|b| b.is_ascii_hexdigit()) {
        let computed = kong_sha1(candidate, consumer_id);
        return bool::from(
            computed
                .as_bytes()
                .ct_eq(stored.to_ascii_lowercase().as_bytes()),
        );
    }
    false
}

/// Checks an oauth2 client secret: against the argon2 hash when the credential has
/// `hash_secret`, else as plain text, in constant time.
pub fn verify_client_secret(stored: &str, hash_secret: bool, candidate: &str) -> bool {
    if hash_secret || is_argon2_hash(stored) {
        return is_argon2_hash(stored)
            && Argon2::default()
                .verify_password(candidate.as_bytes(), stored)
                .is_ok();
    }
    bool::from(stored.as_bytes().ct_eq(candidate.as_bytes()))
}

/// When a credential with this `created_at` and `ttl` expires (seconds since the epoch), or
/// `None` when it never does. A `ttl` up to [`MAX_TTL`] counts from `created_at` (as given to
/// the Admin API); a larger one is already an absolute time (as Kong's exports write it).
pub fn expires_at(created_at: Option<i64>, ttl: Option<i64>) -> Option<i64> {
    match ttl {
        None | Some(0) => None,
        Some(t) if t > MAX_TTL => Some(t),
        Some(t) => Some(created_at.unwrap_or(0).saturating_add(t)),
    }
}

/// The `ttl` field of credentials Kong declares with `ttl = true`.
pub(crate) fn ttl_field() -> Field {
    Field::integer().custom(|v| match v.as_i64() {
        Some(n) if n >= 0 => Ok(()),
        _ => Err("value must be greater than or equal to 0".into()),
    })
}

/// The consumer reference every credential has.
pub(crate) fn consumer_field() -> Field {
    Field::foreign_cascade("consumers").required()
}

/// Replaces `field` with its argon2 hash, reporting failure on the field.
pub(crate) fn hash_field(map: &mut Map, field: &str, errors: &mut FieldErrors) {
    let Some(Value::String(plain)) = map.get(field) else {
        return;
    };
    match hash_password(plain) {
        Ok(h) => {
            map.insert(field.into(), Value::String(h));
        }
        Err(e) => errors.field(field, e),
    }
}

#[cfg(test)]
mod tests;
