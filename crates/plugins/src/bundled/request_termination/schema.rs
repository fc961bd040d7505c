//! request-termination's config (Kong 3.x `kong/plugins/request-termination/schema.lua`).

use serde::Deserialize;
use serde_json::Value;
use silverback_model::schema::{Field, Record};
use silverback_model::typedefs;

#[derive(Debug, Clone, Deserialize)]
pub struct RequestTerminationConfig {
    pub status_code: u16,
    pub message: Option<String>,
    pub content_type: Option<String>,
    pub body: Option<String>,
    pub echo: bool,
    pub trigger: Option<String>,
}

pub fn config() -> Record {
    Record::new(vec![
        (
            "status_code",
            Field::integer().required().default(503).between(100, 599),
        ),
        ("message", Field::string()),
        ("content_type", Field::string()),
        ("body", Field::string()),
        ("echo", Field::boolean().required().default(false)),
        ("trigger", typedefs::header_name()),
    ])
    .with_custom(check)
}

/// Kong's `custom_validator`: `message` excludes a raw `body`; `content_type` needs one; `echo`
/// excludes both.
fn check(config: &Value) -> Result<(), String> {
    let present = |name: &str| {
        config
            .get(name)
            .and_then(Value::as_str)
            .is_some_and(|s| !s.is_empty())
    };
    if present("message") && (present("content_type") || present("body")) {
        return Err("message cannot be used with content_type or body".into());
    }
    if present("content_type") && !present("body") {
        return Err("content_type requires a body".into());
    }
    if config.get("echo").and_then(Value::as_bool) == Some(true)
        && (present("content_type") || present("body"))
    {
        return Err("echo cannot be used with content_type and body".into());
    }
    Ok(())
}
