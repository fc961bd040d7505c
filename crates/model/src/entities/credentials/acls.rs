//! `acls` (acl): the groups a consumer belongs to, one row per (consumer, group).

use super::consumer_field;
use crate::entities::{EntitySchema, ForeignKey};
use crate::schema::{Field, Record};
use crate::typedefs;
use serde::Deserialize;
use uuid::Uuid;

#[derive(Debug, Clone, Deserialize)]
pub struct Acl {
    pub id: Uuid,
    pub created_at: Option<i64>,
    pub consumer: ForeignKey,
    pub group: String,
    pub tags: Option<Vec<String>>,
}

pub(crate) fn schema() -> EntitySchema {
    EntitySchema {
        name: "acls",
        endpoint_key: None,
        cache_key: &["consumer", "group"],
        record: Record::new(vec![
            ("id", Field::id()),
            ("created_at", Field::timestamp_s()),
            ("consumer", consumer_field()),
            ("group", Field::string().required()),
            ("tags", typedefs::tags()),
        ]),
        before: None,
        after: None,
        db_export: true,
        transform: None,
    }
}
