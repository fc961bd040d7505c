//! `hmacauth_credentials` (hmac-auth): a username and the shared secret requests are signed
//! with (generated when not given). The secret is kept as given: the plugin needs it to compute
//! signatures.

use super::consumer_field;
use crate::entities::{EntitySchema, ForeignKey};
use crate::schema::{Field, Record};
use crate::typedefs;
use serde::Deserialize;
use uuid::Uuid;

#[derive(Debug, Clone, Deserialize)]
pub struct HmacAuthCredential {
    pub id: Uuid,
    pub created_at: Option<i64>,
    pub consumer: ForeignKey,
    pub username: String,
    pub secret: String,
    pub tags: Option<Vec<String>>,
}

pub(crate) fn schema() -> EntitySchema {
    EntitySchema {
        name: "hmacauth_credentials",
        endpoint_key: Some("username"),
        cache_key: &["username"],
        record: Record::new(vec![
            ("id", Field::id()),
            ("created_at", Field::timestamp_s()),
            ("consumer", consumer_field()),
            ("username", Field::string().required().unique()),
            ("secret", Field::string().auto().sensitive()),
            ("tags", typedefs::tags()),
        ]),
        before: None,
        after: None,
        db_export: true,
        transform: None,
    }
}
