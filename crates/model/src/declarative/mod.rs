//! Kong's declarative configuration (`kong.yml` / JSON, `_format_version` 1.1, 2.1, 3.0).
//!
//! Loading walks the nested document into flat entities, gives every entity a deterministic id,
//! resolves references by name or id, validates each entity against its schema and checks
//! uniqueness. The file is accepted whole or rejected with every error found.

mod errors;
mod ids;
mod walk;
mod yaml;

pub use errors::{DeclarativeError, EntityErrors, InvalidConfig};

use crate::Config;
use crate::entities::Context;
use serde_json::Value;

/// Format versions Kong 3.x reads.
pub const FORMAT_VERSIONS: [&str; 3] = ["1.1", "2.1", "3.0"];

/// Keys allowed at the top level besides entity names.
const META_KEYS: [&str; 5] = [
    "_format_version",
    "_transform",
    "_comment",
    "_ignore",
    "_workspace",
];

/// Parses YAML or JSON text into a document.
pub fn parse_text(text: &str) -> Result<Value, DeclarativeError> {
    let trimmed = text.trim_start();
    if trimmed.starts_with('{') {
        return serde_json::from_str(text)
            .map_err(|e| DeclarativeError::Parse(format!("invalid JSON: {e}")));
    }
    let value =
        yaml::parse(text).map_err(|e| DeclarativeError::Parse(format!("invalid YAML: {e}")))?;
    Ok(if value.is_null() {
        Value::Object(Default::default())
    } else {
        value
    })
}

/// Parses and loads a declarative file's text.
pub fn load_text(text: &str, ctx: &Context<'_>, now: i64) -> Result<Config, DeclarativeError> {
    load(parse_text(text)?, ctx, now)
}

/// Loads a parsed document into a validated config. Top-level errors do not stop the entities
/// from being checked: Kong reports both in one pass.
pub fn load(doc: Value, ctx: &Context<'_>, now: i64) -> Result<Config, DeclarativeError> {
    let Value::Object(mut doc) = doc else {
        return Err(DeclarativeError::Parse(
            "expected an object at the top level".into(),
        ));
    };
    let mut invalid = InvalidConfig::default();
    match doc.get("_format_version") {
        None | Some(Value::Null) => invalid.top("_format_version", "required field missing"),
        Some(Value::String(v)) if FORMAT_VERSIONS.contains(&v.as_str()) => {}
        Some(_) => invalid.top(
            "_format_version",
            &format!("expected one of: {}", FORMAT_VERSIONS.join(", ")),
        ),
    }
    if let Some(t) = doc.get("_transform")
        && !t.is_boolean()
    {
        invalid.top("_transform", "expected a boolean");
    }
    for key in doc.keys() {
        let declarable = crate::entities::schema(key).is_some_and(|s| s.db_export);
        if !META_KEYS.contains(&key.as_str()) && !declarable {
            invalid.top(key, "unknown field");
        }
    }
    // A missing or bad `_format_version` reads paths as 3.0 does.
    let legacy_paths = matches!(
        doc.get("_format_version").and_then(Value::as_str),
        Some("1.1" | "2.1")
    );
    // `_transform: false`: secrets in the file are stored values (an export), not input to hash.
    let transform = doc
        .get("_transform")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    for meta in META_KEYS {
        doc.remove(meta);
    }
    match walk::load_entities(doc, ctx, now, legacy_paths, transform) {
        Ok(config) if invalid.is_empty() => Ok(config),
        Ok(_) => Err(DeclarativeError::Invalid(invalid)),
        Err(DeclarativeError::Invalid(entities)) => {
            invalid.merge(entities);
            Err(DeclarativeError::Invalid(invalid))
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests;
