//! `basicauth_credentials` (basic-auth): a username and a password, stored hashed.
//!
//! Kong stores `sha1(password .. consumer_id)`; Silverback hashes new passwords with argon2id
//! (PHC string) and keeps a stored value as it is when a declarative file says
//! `_transform: false` (Kong's sha1 form from an export, or a PHC string from ours).
//! [`super::verify_password`] accepts both.

use super::{consumer_field, hash_field, is_argon2_hash};
use crate::entities::{EntitySchema, ForeignKey};
use crate::schema::{Field, FieldErrors, Map, Record};
use crate::typedefs;
use serde::Deserialize;
use uuid::Uuid;

#[derive(Debug, Clone, Deserialize)]
pub struct BasicAuthCredential {
    pub id: Uuid,
    pub created_at: Option<i64>,
    pub consumer: ForeignKey,
    pub username: String,
    /// The stored hash (never the password itself).
    pub password: String,
    pub tags: Option<Vec<String>>,
}

impl BasicAuthCredential {
    /// Whether `candidate` is this credential's password.
    pub fn verify(&self, candidate: &str) -> bool {
        super::verify_password(&self.password, candidate, self.consumer.id)
    }
}

pub(crate) fn schema() -> EntitySchema {
    EntitySchema {
        name: "basicauth_credentials",
        endpoint_key: Some("username"),
        cache_key: &["username"],
        record: Record::new(vec![
            ("id", Field::id()),
            ("created_at", Field::timestamp_s()),
            ("consumer", consumer_field()),
            ("username", Field::string().required().unique()),
            ("password", Field::string().required().encrypted()),
            ("tags", typedefs::tags()),
        ]),
        before: None,
        after: None,
        db_export: true,
        transform: Some(hash_password),
    }
}

/// A password in the write is hashed before it is stored, unless it already is an argon2
/// hash (a dump written back, as decK does): hashing it again would lock the user out.
fn hash_password(map: &mut Map, given: &dyn Fn(&str) -> bool, errors: &mut FieldErrors) {
    let already = map
        .get("password")
        .and_then(serde_json::Value::as_str)
        .is_some_and(is_argon2_hash);
    if given("password") && !already {
        hash_field(map, "password", errors);
    }
}
