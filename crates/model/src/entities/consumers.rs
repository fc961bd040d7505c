//! `consumers`: the identities that authentication plugins attach to a request.

use super::EntitySchema;
use crate::schema::{EntityCheck, Field, Record};
use crate::typedefs;
use serde::Deserialize;
use uuid::Uuid;

#[derive(Debug, Clone, Deserialize)]
pub struct Consumer {
    pub id: Uuid,
    pub username: Option<String>,
    pub custom_id: Option<String>,
    pub tags: Option<Vec<String>>,
}

pub(super) fn schema() -> EntitySchema {
    EntitySchema {
        name: "consumers",
        endpoint_key: Some("username"),
        cache_key: &[],
        record: Record::new(vec![
            ("id", Field::id()),
            ("created_at", Field::timestamp_s()),
            ("updated_at", Field::timestamp_s()),
            ("username", Field::string().unique()),
            ("custom_id", Field::string().unique()),
            ("tags", typedefs::tags()),
        ])
        .with_checks(vec![EntityCheck::AtLeastOneOf(vec![
            "custom_id",
            "username",
        ])]),
        before: None,
        after: None,
        db_export: true,
        transform: None,
    }
}
