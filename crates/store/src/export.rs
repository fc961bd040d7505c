//! A whole config as a declarative document, the way Kong's `kong config db_export` writes it:
//! `_format_version: "3.0"`, `_transform: false`, then one flat list per entity type (parents
//! first), every field kept (nulls and timestamps included), references written as the bare id
//! (`service: <uuid>`). Loading that file gives back the same rows and ids.

use serde_json::Value;
use silverback_model::Config;
use silverback_model::schema::Map;

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The YAML written would not read back as the same document (a bug, never written out).
    #[error("the exported YAML does not read back as the config: {0}")]
    NotReadBack(String),
}

/// Kong's export document for `config`.
pub fn declarative(config: &Config) -> Value {
    let mut doc = Map::new();
    doc.insert("_format_version".into(), "3.0".into());
    // Credentials in the file are stored values, not input to hash again.
    doc.insert("_transform".into(), false.into());
    for (entity, rows) in config.iter() {
        if rows.is_empty() {
            continue;
        }
        let schema = silverback_model::entities::schema(entity);
        // Runtime state (oauth2 tokens and codes) is not configuration: Kong's `db_export`.
        if schema.is_some_and(|s| !s.db_export) {
            continue;
        }
        let list = rows
            .iter()
            .map(|row| {
                let mut row = row.map().clone();
                for (field, _, _) in schema.iter().flat_map(|s| s.foreign_fields()) {
                    if let Some(id) = row.get(field).and_then(|f| f.get("id")).cloned() {
                        row.insert(field.into(), id);
                    }
                }
                Value::Object(row)
            })
            .collect();
        doc.insert(entity.into(), Value::Array(list));
    }
    Value::Object(doc)
}

/// `doc` as block-style YAML. Every string is double-quoted (JSON escapes are valid YAML), so
/// no value can be misread (`"on"`, `"8000"`, `"null"`); the text is parsed back before it is
/// returned and must give `doc` again.
pub fn to_yaml(doc: &Value) -> Result<String, ExportError> {
    let mut out = String::new();
    match doc {
        Value::Object(m) if !m.is_empty() => block_map(&mut out, m, 0, false),
        other => {
            out.push_str(&scalar(other));
            out.push('\n');
        }
    }
    let back = silverback_model::declarative::parse_text(&out)
        .map_err(|e| ExportError::NotReadBack(e.to_string()))?;
    if &back != doc {
        return Err(ExportError::NotReadBack(
            "a value changed in the round trip".into(),
        ));
    }
    Ok(out)
}

fn pad(out: &mut String, indent: usize) {
    out.extend(std::iter::repeat_n(' ', indent));
}

/// A map's entries at `indent`; with `inline`, the first one continues the current line (after
/// a sequence's `- `).
fn block_map(out: &mut String, m: &Map, indent: usize, inline: bool) {
    for (i, (k, v)) in m.iter().enumerate() {
        if !(inline && i == 0) {
            pad(out, indent);
        }
        out.push_str(&key(k));
        out.push(':');
        after_key(out, v, indent);
    }
}

fn after_key(out: &mut String, v: &Value, indent: usize) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            out.push('\n');
            block_map(out, m, indent + 2, false);
        }
        Value::Array(a) if !a.is_empty() => {
            out.push('\n');
            block_seq(out, a, indent);
        }
        other => {
            out.push(' ');
            out.push_str(&scalar(other));
            out.push('\n');
        }
    }
}

fn block_seq(out: &mut String, a: &[Value], indent: usize) {
    for item in a {
        pad(out, indent);
        out.push('-');
        match item {
            Value::Object(m) if !m.is_empty() => {
                out.push(' ');
                block_map(out, m, indent + 2, true);
            }
            Value::Array(inner) if !inner.is_empty() => {
                out.push('\n');
                block_seq(out, inner, indent + 2);
            }
            other => {
                out.push(' ');
                out.push_str(&scalar(other));
                out.push('\n');
            }
        }
    }
}

fn scalar(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => quoted(s),
        Value::Array(_) => "[]".into(),
        Value::Object(_) => "{}".into(),
    }
}

fn quoted(s: &str) -> String {
    Value::String(s.to_string()).to_string()
}

/// Keys stay plain when nothing could misread them.
fn key(k: &str) -> String {
    const WORDS: [&str; 13] = [
        "y", "n", "yes", "no", "on", "off", "true", "false", "null", "~", "=", "<<", "",
    ];
    let plain = k
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        && !WORDS.contains(&k.to_ascii_lowercase().as_str());
    if plain { k.to_string() } else { quoted(k) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tricky_values_round_trip() {
        let doc = json!({
            "_format_version": "3.0",
            "services": [{
                "name": "on", "host": "8000", "path": "null", "tags": ["yes", "~", "a: b", "- c", "#d", "é\n\t\"q\""],
                "port": 80, "enabled": true, "tls_verify": null, "ratio": 0.5,
                "empty_list": [], "empty_map": {}, "nested": {"y": 1, "x:y": [[1, 2], []]},
            }],
        });
        let text = to_yaml(&doc).unwrap();
        assert!(
            text.starts_with("_format_version: \"3.0\"\nservices:\n- name: \"on\"\n"),
            "{text}"
        );
        assert_eq!(
            silverback_model::declarative::parse_text(&text).unwrap(),
            doc
        );
    }
}
