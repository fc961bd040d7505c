//! Schemas rendered the way Kong's `GET /schemas/{entity}` shows them.

use super::{Field, Kind, Record};
use serde_json::{Map, Value, json};

impl Record {
    /// `{"fields": [{"name": {...}}, ...], "entity_checks": [...]}`.
    pub fn describe(&self) -> Value {
        let fields: Vec<Value> = self
            .fields
            .iter()
            .map(|(name, f)| json!({ *name: f.describe() }))
            .collect();
        let mut out = Map::new();
        out.insert("fields".into(), Value::Array(fields));
        let checks: Vec<Value> = self.checks.iter().filter_map(|c| c.describe()).collect();
        if !checks.is_empty() {
            out.insert("entity_checks".into(), Value::Array(checks));
        }
        Value::Object(out)
    }
}

impl Field {
    pub fn describe(&self) -> Value {
        let mut out = Map::new();
        let ty = match &self.kind {
            Kind::String => "string",
            Kind::Integer => "integer",
            Kind::Number => "number",
            Kind::Boolean => "boolean",
            Kind::Array(_) => "array",
            Kind::Set(_) => "set",
            Kind::Map { .. } => "map",
            Kind::Record(_) => "record",
            Kind::Foreign { .. } => "foreign",
            Kind::Json => "json",
        };
        out.insert("type".into(), ty.into());
        match &self.kind {
            Kind::Array(e) | Kind::Set(e) => {
                out.insert("elements".into(), e.describe());
            }
            Kind::Map { keys, values } => {
                out.insert("keys".into(), keys.describe());
                out.insert("values".into(), values.describe());
            }
            Kind::Record(r) => {
                if let Some(Value::Array(fields)) = r.describe().get("fields") {
                    out.insert("fields".into(), Value::Array(fields.clone()));
                }
            }
            Kind::Foreign { reference, cascade } => {
                out.insert("reference".into(), (*reference).into());
                if *cascade {
                    out.insert("on_delete".into(), "cascade".into());
                }
            }
            _ => {}
        }
        let flags = [
            ("required", self.required),
            ("unique", self.unique),
            ("auto", self.auto),
            ("uuid", self.uuid),
            ("timestamp", self.timestamp),
            ("transient", self.transient),
            ("encrypted", self.encrypted),
        ];
        for (name, on) in flags {
            if on {
                out.insert(name.into(), true.into());
            }
        }
        if let Some(d) = &self.default {
            out.insert("default".into(), d.clone());
        }
        for c in &self.checks {
            if let Some((k, v)) = c.describe() {
                out.insert(k.into(), v);
            }
        }
        if let Some(e) = self.err {
            out.insert("err".into(), e.into());
        }
        if let Some(d) = self.description {
            out.insert("description".into(), d.into());
        }
        Value::Object(out)
    }
}
