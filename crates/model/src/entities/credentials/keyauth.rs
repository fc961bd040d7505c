//! `keyauth_credentials` (key-auth): an API key per credential, generated when not given.

use super::{consumer_field, ttl_field};
use crate::entities::{EntitySchema, ForeignKey};
use crate::schema::{Field, Record};
use crate::typedefs;
use serde::Deserialize;
use uuid::Uuid;

#[derive(Debug, Clone, Deserialize)]
pub struct KeyAuthCredential {
    pub id: Uuid,
    pub created_at: Option<i64>,
    pub consumer: ForeignKey,
    pub key: String,
    /// Seconds from `created_at` (or an absolute time); see [`super::expires_at`].
    pub ttl: Option<i64>,
    pub tags: Option<Vec<String>>,
}

impl KeyAuthCredential {
    pub fn expires_at(&self) -> Option<i64> {
        super::expires_at(self.created_at, self.ttl)
    }
}

pub(crate) fn schema() -> EntitySchema {
    EntitySchema {
        name: "keyauth_credentials",
        endpoint_key: Some("key"),
        cache_key: &["key"],
        record: Record::new(vec![
            ("id", Field::id()),
            ("created_at", Field::timestamp_s()),
            ("consumer", consumer_field()),
            ("key", Field::string().unique().auto().sensitive()),
            ("tags", typedefs::tags()),
            ("ttl", ttl_field()),
        ]),
        before: None,
        after: None,
        db_export: true,
        transform: None,
    }
}
