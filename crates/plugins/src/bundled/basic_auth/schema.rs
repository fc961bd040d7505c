//! basic-auth's config (Kong 3.x `kong/plugins/basic-auth/schema.lua`).

use serde::Deserialize;
use silverback_model::schema::{Field, Record};

#[derive(Debug, Clone, Deserialize)]
pub struct BasicAuthConfig {
    pub anonymous: Option<String>,
    pub hide_credentials: bool,
    pub realm: String,
}

pub fn config() -> Record {
    Record::new(vec![
        ("anonymous", Field::string()),
        (
            "hide_credentials",
            Field::boolean().required().default(false),
        ),
        ("realm", Field::string().required().default("service")),
    ])
}
