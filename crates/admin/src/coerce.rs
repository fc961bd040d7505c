//! Form values to typed values, driven by the target field's schema (Kong's `infer_value` in
//! `kong/api/arguments.lua`): `""` is null, numbers and booleans are parsed, a single value for
//! an array or set becomes a one-element array, and records, maps and foreign references are
//! walked into. Values that do not parse are left as strings so validation reports them with
//! Kong's message ("expected an integer").
//!
//! A plugin's `config` is typed by that plugin's own schema, found by the plugin name in the
//! body or, for PATCH, in the stored row.

use serde_json::{Map, Value};
use silverback_model::EntitySchema;
use silverback_model::entities::PluginSchemas;
use silverback_model::schema::{Field, Kind, Record};

/// Coerces the form-decoded fields of an entity body in place.
pub fn entity(
    schema: &EntitySchema,
    map: &mut Map<String, Value>,
    plugins: &dyn PluginSchemas,
    stored_plugin_name: Option<&str>,
) {
    record(&schema.record, map);
    if schema.name == "plugins" {
        let name = map
            .get("name")
            .and_then(Value::as_str)
            .map(str::to_string)
            .or_else(|| stored_plugin_name.map(str::to_string));
        if let (Some(name), Some(config)) = (name, map.get_mut("config"))
            && let Some(plugin) = plugins.schema(&name)
        {
            let rec = Field::record(plugin.config.clone());
            infer(&rec, config);
        }
    }
}

/// Coerces the known fields of a record; unknown fields stay for validation to reject.
pub fn record(rec: &Record, map: &mut Map<String, Value>) {
    for (name, value) in map.iter_mut() {
        if let Some(field) = rec.field(name) {
            infer(field, value);
        }
    }
}

/// Kong's `infer_value` for one value.
pub fn infer(field: &Field, value: &mut Value) {
    if value.as_str() == Some("") {
        *value = Value::Null;
        return;
    }
    match &field.kind {
        Kind::Integer | Kind::Number => {
            if let Some(s) = value.as_str()
                && let Some(n) = parse_number(s)
            {
                *value = n;
            }
        }
        Kind::Boolean => match value.as_str() {
            Some("true") => *value = Value::Bool(true),
            Some("false") => *value = Value::Bool(false),
            _ => {}
        },
        Kind::Array(elem) | Kind::Set(elem) => {
            if !value.is_array() {
                *value = Value::Array(vec![value.take()]);
            }
            if let Value::Array(items) = value {
                for item in items.iter_mut() {
                    infer(elem, item);
                }
            }
        }
        Kind::Map { values, .. } => {
            if let Value::Object(m) = value {
                for v in m.values_mut() {
                    infer(values, v);
                }
            }
        }
        Kind::Record(rec) => {
            if let Value::Object(m) = value {
                record(rec, m);
            }
        }
        Kind::Foreign { reference, .. } => {
            if let Value::Object(m) = value
                && let Some(parent) = silverback_model::entities::schema(reference)
            {
                record(&parent.record, m);
            }
        }
        Kind::String | Kind::Json => {}
    }
}

/// Lua's `tonumber` for the decimal forms clients send.
fn parse_number(s: &str) -> Option<Value> {
    let t = s.trim();
    if let Ok(n) = t.parse::<i64>() {
        return Some(Value::from(n));
    }
    let f = t.parse::<f64>().ok().filter(|f| f.is_finite())?;
    serde_json::Number::from_f64(f).map(Value::Number)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use silverback_model::entities::NoPlugins;

    fn coerce(entity: &str, v: Value) -> Value {
        let schema =
            silverback_model::entities::schema(entity).map(|s| (s, v.as_object().cloned()));
        let Some((schema, Some(mut m))) = schema else {
            return Value::Null;
        };
        super::entity(schema, &mut m, &NoPlugins, None);
        Value::Object(m)
    }

    #[test]
    fn scalars_arrays_maps_by_schema() {
        let v = coerce(
            "routes",
            json!({
                "hosts": "a.test",
                "methods": ["GET", "POST"],
                "regex_priority": "10",
                "strip_path": "false",
                "preserve_host": "yes",
                "headers": {"x-foo": "bar"},
                "service": {"id": "abc"},
                "path_handling": "",
                "name": "12",
            }),
        );
        assert_eq!(
            v,
            json!({
                "hosts": ["a.test"],
                "methods": ["GET", "POST"],
                "regex_priority": 10,
                "strip_path": false,
                "preserve_host": "yes",
                "headers": {"x-foo": ["bar"]},
                "service": {"id": "abc"},
                "path_handling": null,
                "name": "12",
            })
        );
    }

    #[test]
    fn nested_records_and_bad_numbers() {
        let v = coerce(
            "upstreams",
            json!({
                "slots": "ten",
                "healthchecks": {"active": {"timeout": "2.5", "healthy": {"http_statuses": ["200", "302"]}}},
            }),
        );
        assert_eq!(v["slots"], "ten");
        assert_eq!(v["healthchecks"]["active"]["timeout"], json!(2.5));
        assert_eq!(
            v["healthchecks"]["active"]["healthy"]["http_statuses"],
            json!([200, 302])
        );
    }
}
