//! `targets`: the backends of an upstream, with their weights.

use super::{EntitySchema, ForeignKey};
use crate::schema::{Field, Record};
use crate::typedefs;
use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

#[derive(Debug, Clone, Deserialize)]
pub struct Target {
    pub id: Uuid,
    pub upstream: ForeignKey,
    pub target: String,
    pub weight: u32,
    pub tags: Option<Vec<String>>,
}

/// Kong's default port for targets given without one.
pub const DEFAULT_TARGET_PORT: u16 = 8000;

fn validate_target(v: &Value) -> Result<(), String> {
    let t = v.as_str().unwrap_or_default();
    typedefs::normalize_host(t)
        .map(|_| ())
        .map_err(|_| format!("Invalid target ('{t}'); not a valid hostname or ip address"))
}

pub(super) fn schema() -> EntitySchema {
    EntitySchema {
        name: "targets",
        endpoint_key: Some("target"),
        cache_key: &["upstream", "target"],
        record: Record::new(vec![
            ("id", Field::id()),
            ("created_at", Field::timestamp_ms()),
            ("updated_at", Field::timestamp_ms()),
            ("upstream", Field::foreign_cascade("upstreams").required()),
            ("target", Field::string().required().custom(validate_target)),
            ("weight", Field::integer().default(100).between(0, 65535)),
            ("tags", typedefs::tags()),
        ]),
        before: Some(add_default_port),
        after: None,
        db_export: true,
        transform: None,
    }
}

/// Kong stores targets with an explicit port (`host` → `host:8000`).
fn add_default_port(
    _: &crate::schema::Validator,
    _: &super::Context<'_>,
    map: &mut crate::schema::Map,
    _: &mut crate::schema::FieldErrors,
) {
    let Some(t) = map.get("target").and_then(Value::as_str) else {
        return;
    };
    if let Ok(hp) = typedefs::normalize_host(t)
        && hp.port.is_none()
    {
        let host = if hp.host.contains(':') {
            format!("[{}]", hp.host)
        } else {
            hp.host
        };
        map.insert(
            "target".into(),
            format!("{host}:{DEFAULT_TARGET_PORT}").into(),
        );
    }
}
