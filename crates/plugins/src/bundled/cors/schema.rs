//! cors's config (Kong 3.x `kong/plugins/cors/schema.lua`).

use serde::Deserialize;
use serde_json::Value;
use silverback_model::schema::{Field, Record};

pub const METHODS: [&str; 9] = [
    "GET", "HEAD", "PUT", "PATCH", "POST", "DELETE", "OPTIONS", "TRACE", "CONNECT",
];

#[derive(Debug, Clone, Deserialize)]
pub struct CorsConfig {
    pub origins: Option<Vec<String>>,
    pub headers: Option<Vec<String>>,
    pub exposed_headers: Option<Vec<String>>,
    pub methods: Option<Vec<String>>,
    pub max_age: Option<f64>,
    pub credentials: bool,
    pub private_network: bool,
    pub preflight_continue: bool,
    pub allow_origin_absent: bool,
}

/// `*`, or a pattern the handler can compile.
fn asterisk_or_regex(v: &Value) -> Result<(), String> {
    let s = v.as_str().unwrap_or_default();
    if s == "*" || regex::Regex::new(s).is_ok() {
        Ok(())
    } else {
        Err(format!("'{s}' is not a valid regex"))
    }
}

pub fn config() -> Record {
    Record::new(vec![
        (
            "origins",
            Field::array(Field::string().custom(asterisk_or_regex)),
        ),
        ("headers", Field::array(Field::string())),
        ("exposed_headers", Field::array(Field::string())),
        (
            "methods",
            Field::array(Field::string().one_of(METHODS)).default(METHODS.to_vec()),
        ),
        ("max_age", Field::number()),
        ("credentials", Field::boolean().required().default(false)),
        (
            "private_network",
            Field::boolean().required().default(false),
        ),
        (
            "preflight_continue",
            Field::boolean().required().default(false),
        ),
        (
            "allow_origin_absent",
            Field::boolean().required().default(true),
        ),
    ])
}
