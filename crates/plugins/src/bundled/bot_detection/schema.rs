//! bot-detection's config (Kong 3.x `kong/plugins/bot-detection/schema.lua`).

use serde::Deserialize;
use serde_json::Value;
use silverback_model::schema::{Field, Record};

#[derive(Debug, Clone, Deserialize)]
pub struct BotDetectionConfig {
    pub allow: Vec<String>,
    pub deny: Vec<String>,
}

/// Kong's `is_regex` validator, with the engine the handler uses.
fn is_regex(v: &Value) -> Result<(), String> {
    let s = v.as_str().unwrap_or_default();
    super::compile(s)
        .map(|_| ())
        .map_err(|_| format!("not a valid regex: {s}"))
}

pub fn config() -> Record {
    let regex = || Field::string().custom(is_regex);
    Record::new(vec![
        (
            "allow",
            Field::array(regex()).default(Value::Array(Vec::new())),
        ),
        (
            "deny",
            Field::array(regex()).default(Value::Array(Vec::new())),
        ),
    ])
}
