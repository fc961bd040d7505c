//! correlation-id's config (Kong 3.x `kong/plugins/correlation-id/schema.lua`).

use serde::Deserialize;
use silverback_model::schema::{Field, Record};

#[derive(Debug, Clone, Deserialize)]
pub struct CorrelationIdConfig {
    pub header_name: Option<String>,
    pub generator: String,
    pub echo_downstream: bool,
}

pub fn config() -> Record {
    Record::new(vec![
        ("header_name", Field::string().default("Kong-Request-ID")),
        (
            "generator",
            Field::string().required().default("uuid#counter").one_of([
                "uuid",
                "uuid#counter",
                "tracker",
            ]),
        ),
        (
            "echo_downstream",
            Field::boolean().required().default(false),
        ),
    ])
}
