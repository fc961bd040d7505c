//! key-auth's config (Kong 3.x `kong/plugins/key-auth/schema.lua`).

use serde::Deserialize;
use silverback_model::schema::{Field, Record};
use silverback_model::typedefs;

#[derive(Debug, Clone, Deserialize)]
pub struct KeyAuthConfig {
    pub key_names: Vec<String>,
    pub hide_credentials: bool,
    pub anonymous: Option<String>,
    pub key_in_header: bool,
    pub key_in_query: bool,
    pub key_in_body: bool,
    pub run_on_preflight: bool,
    pub realm: Option<String>,
}

pub fn config() -> Record {
    Record::new(vec![
        (
            "key_names",
            Field::array(typedefs::header_name())
                .required()
                .default(vec!["apikey"]),
        ),
        (
            "hide_credentials",
            Field::boolean().required().default(false),
        ),
        ("anonymous", Field::string()),
        ("key_in_header", Field::boolean().required().default(true)),
        ("key_in_query", Field::boolean().required().default(true)),
        ("key_in_body", Field::boolean().required().default(false)),
        (
            "run_on_preflight",
            Field::boolean().required().default(true),
        ),
        ("realm", Field::string()),
    ])
}
