//! redirect's config (Kong 3.9+ `kong/plugins/redirect/schema.lua`).

use serde::Deserialize;
use serde_json::Value;
use silverback_model::schema::{Field, Record};

#[derive(Debug, Clone, Deserialize)]
pub struct RedirectConfig {
    pub status_code: u16,
    pub location: String,
    pub keep_incoming_path: bool,
}

/// Kong's `typedefs.url`: an absolute URL with a scheme and a host.
fn absolute_url(v: &Value) -> Result<(), String> {
    let s = v.as_str().unwrap_or_default();
    match super::split_url(s) {
        Some(parts) if !parts.authority.is_empty() => Ok(()),
        _ => Err("missing host in url".into()),
    }
}

pub fn config() -> Record {
    Record::new(vec![
        (
            "status_code",
            Field::integer().required().default(301).between(100, 599),
        ),
        ("location", Field::string().required().custom(absolute_url)),
        ("keep_incoming_path", Field::boolean().default(false)),
    ])
}
