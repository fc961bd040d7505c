//! `snis`: server names that select a certificate on the TLS listeners.

use super::{EntitySchema, ForeignKey};
use crate::schema::{Field, Record};
use crate::typedefs;
use serde::Deserialize;
use uuid::Uuid;

#[derive(Debug, Clone, Deserialize)]
pub struct Sni {
    pub id: Uuid,
    pub name: String,
    pub certificate: ForeignKey,
    pub tags: Option<Vec<String>>,
}

pub(super) fn schema() -> EntitySchema {
    EntitySchema {
        name: "snis",
        endpoint_key: Some("name"),
        cache_key: &[],
        record: Record::new(vec![
            ("id", Field::id()),
            ("name", typedefs::wildcard_host().required().unique()),
            ("created_at", Field::timestamp_s()),
            ("updated_at", Field::timestamp_s()),
            ("tags", typedefs::tags()),
            ("certificate", Field::foreign("certificates").required()),
        ]),
        before: None,
        after: None,
        db_export: true,
        transform: None,
    }
}
