//! request-size-limiting's config (Kong 3.x `kong/plugins/request-size-limiting/schema.lua`).

use serde::Deserialize;
use silverback_model::schema::{Field, Record};

/// Units, the first being the default, with their size in bytes.
pub const SIZE_UNITS: [(&str, u64); 3] =
    [("megabytes", 1 << 20), ("kilobytes", 1 << 10), ("bytes", 1)];

#[derive(Debug, Clone, Deserialize)]
pub struct RequestSizeLimitingConfig {
    pub allowed_payload_size: Option<i64>,
    pub size_unit: String,
    pub require_content_length: bool,
}

pub fn config() -> Record {
    Record::new(vec![
        ("allowed_payload_size", Field::integer().default(128)),
        (
            "size_unit",
            Field::string()
                .required()
                .default(SIZE_UNITS[0].0)
                .one_of(SIZE_UNITS.map(|u| u.0)),
        ),
        (
            "require_content_length",
            Field::boolean().required().default(false),
        ),
    ])
}
