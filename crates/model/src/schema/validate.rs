//! Filling defaults and validating a record, as Kong's `process_auto_fields("insert")` followed
//! by `validate`.

use super::{ErrorNode, Field, FieldErrors, Kind, Map, Record};
use serde_json::Value;
use std::collections::BTreeMap;

/// Whether missing fields get their defaults (insert, replace) or stay absent (partial checks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Insert,
}

/// Validates records against their schema.
#[derive(Debug, Clone, Copy)]
pub struct Validator {
    /// Seconds since the epoch, for `created_at` / `updated_at` of new entities.
    pub now: i64,
    pub mode: Mode,
}

impl Validator {
    pub fn new(now: i64) -> Self {
        Validator {
            now,
            mode: Mode::Insert,
        }
    }

    /// Fills defaults and auto fields, normalizes values, and validates `map` against `record`.
    /// Errors are added to `errors`; the map is left with every schema field present.
    pub fn process(&self, record: &Record, map: &mut Map, errors: &mut FieldErrors) {
        if let Some(expand) = record.shorthands {
            expand(map);
        }
        for key in map.keys() {
            if record.field(key).is_none() {
                errors.field(key, "unknown field");
            }
        }
        for (name, field) in &record.fields {
            let slot = map.entry(name.to_string()).or_insert(Value::Null);
            if slot.is_null() {
                *slot = self.missing_value(field);
            }
            if let Err(e) = self.validate_field(field, slot) {
                errors.node(name, e);
            }
        }
        // Entity checks see only fields that validated.
        for check in &record.checks {
            check.run(map, errors);
        }
        // Keep fields in schema order, as Kong returns them.
        let mut ordered = Map::with_capacity(map.len());
        for (name, _) in &record.fields {
            if let Some(v) = map.remove(*name) {
                ordered.insert(name.to_string(), v);
            }
        }
        ordered.append(map);
        *map = ordered;
    }

    fn missing_value(&self, field: &Field) -> Value {
        if field.auto {
            if field.uuid {
                return Value::String(uuid::Uuid::new_v4().to_string());
            }
            if field.timestamp {
                return match field.kind {
                    Kind::Number => Value::from(self.now as f64),
                    _ => Value::from(self.now),
                };
            }
            if matches!(field.kind, Kind::String) {
                return Value::String(random_string());
            }
        }
        match &field.default {
            Some(v) => v.clone(),
            // A required record without a default is built from its own fields' defaults.
            None if field.required && matches!(field.kind, Kind::Record(_)) => {
                Value::Object(Map::new())
            }
            None => Value::Null,
        }
    }

    /// Validates one value, normalizing it in place (record defaults, set de-duplication,
    /// integral floats to integers).
    pub fn validate_field(&self, field: &Field, v: &mut Value) -> Result<(), ErrorNode> {
        let fail = |msg: String| Err(ErrorNode::Message(field.err.map_or(msg, str::to_string)));
        if v.is_null() {
            if field.required {
                return Err(ErrorNode::Message("required field missing".into()));
            }
            return Ok(());
        }
        if field
            .checks
            .iter()
            .any(|c| matches!(c, super::Check::EqNull))
        {
            return fail("value must be null".into());
        }
        match &field.kind {
            Kind::String => {
                let Some(s) = v.as_str() else {
                    return fail("expected a string".into());
                };
                // Kong rejects empty strings unless a schema says otherwise.
                let has_len_min = field
                    .checks
                    .iter()
                    .any(|c| matches!(c, super::Check::LenMin(_)));
                if s.is_empty() && !has_len_min {
                    return fail("length must be at least 1".into());
                }
                if field.uuid && uuid::Uuid::try_parse(s).is_err() {
                    return fail("expected a valid UUID".into());
                }
            }
            Kind::Integer => match as_integer(v) {
                Some(n) => *v = Value::from(n),
                None => return fail("expected an integer".into()),
            },
            Kind::Number => {
                if !v.is_number() {
                    return fail("expected a number".into());
                }
                if field.timestamp && v.as_f64().is_some_and(|n| n <= 0.0) {
                    return fail("expected a valid timestamp".into());
                }
            }
            Kind::Boolean => {
                if !v.is_boolean() {
                    return fail("expected a boolean".into());
                }
            }
            Kind::Array(elem) | Kind::Set(elem) => {
                let is_set = matches!(field.kind, Kind::Set(_));
                let Some(items) = v.as_array_mut() else {
                    return fail(
                        if is_set {
                            "expected a set"
                        } else {
                            "expected an array"
                        }
                        .into(),
                    );
                };
                if is_set {
                    dedupe(items);
                }
                let mut errs = BTreeMap::new();
                for (i, item) in items.iter_mut().enumerate() {
                    let mut elem = (**elem).clone();
                    // Elements of a collection cannot be null.
                    elem.required = true;
                    if let Err(e) = self.validate_field(&elem, item) {
                        errs.insert(i, e);
                    }
                }
                if !errs.is_empty() {
                    return Err(ErrorNode::Items(errs));
                }
            }
            Kind::Map { keys, values } => {
                let Some(obj) = v.as_object_mut() else {
                    return fail("expected a map".into());
                };
                let mut errs = FieldErrors::default();
                for (k, val) in obj.iter_mut() {
                    let mut key = Value::String(k.clone());
                    let mut kf = (**keys).clone();
                    kf.required = true;
                    if let Err(e) = self.validate_field(&kf, &mut key) {
                        errs.node(k, e);
                        continue;
                    }
                    let mut vf = (**values).clone();
                    vf.required = true;
                    if let Err(e) = self.validate_field(&vf, val) {
                        errs.node(k, e);
                    }
                }
                if !errs.is_empty() {
                    return Err(ErrorNode::Fields(errs));
                }
            }
            Kind::Record(rec) => {
                let Some(obj) = v.as_object_mut() else {
                    return fail("expected a record".into());
                };
                let mut errs = FieldErrors::default();
                self.process(rec, obj, &mut errs);
                if !errs.is_empty() {
                    return Err(ErrorNode::Fields(errs));
                }
                if let Some(check) = rec.custom
                    && let Err(e) = check(v)
                {
                    return fail(e);
                }
            }
            Kind::Foreign { .. } => {
                // `{"id": "<uuid>"}`; references by name are resolved before validation.
                let id = v.as_object().and_then(|o| o.get("id"));
                match id.and_then(Value::as_str) {
                    Some(s) if uuid::Uuid::try_parse(s).is_ok() => {}
                    Some(_) => {
                        let mut e = FieldErrors::default();
                        e.field("id", "expected a valid UUID");
                        return Err(ErrorNode::Fields(e));
                    }
                    None => {
                        let mut e = FieldErrors::default();
                        e.field("id", "missing primary key");
                        return Err(ErrorNode::Fields(e));
                    }
                }
            }
            Kind::Json => {}
        }
        for check in &field.checks {
            if let Err(e) = check.run(v) {
                return fail(e);
            }
        }
        Ok(())
    }
}

/// Kong's `random_string()`: 32 characters from `[A-Za-z0-9]`, drawn from the thread's CSPRNG
/// (ChaCha seeded by the operating system), about 190 bits.
pub fn random_string() -> String {
    use rand::Rng;
    rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(32)
        .map(char::from)
        .collect()
}

/// Integers may arrive as integral floats (`5.0`), as Lua sees them.
fn as_integer(v: &Value) -> Option<i64> {
    if let Some(n) = v.as_i64() {
        return Some(n);
    }
    let f = v.as_f64()?;
    (f.fract() == 0.0 && f.is_finite() && f.abs() < 9.0e15).then_some(f as i64)
}

fn dedupe(items: &mut Vec<Value>) {
    let mut seen: Vec<Value> = Vec::with_capacity(items.len());
    items.retain(|x| {
        if seen.contains(x) {
            false
        } else {
            seen.push(x.clone());
            true
        }
    });
}

#[cfg(test)]
mod tests {
    use super::super::{Check, EntityCheck};
    use super::*;
    use serde_json::json;

    fn rec() -> Record {
        Record::new(vec![
            ("id", Field::id()),
            ("created_at", Field::timestamp_s()),
            ("name", Field::string()),
            ("port", Field::integer().default(80).between(0, 65535)),
            (
                "protocol",
                Field::string().default("http").one_of(["http", "https"]),
            ),
            ("methods", Field::set(Field::string())),
            (
                "inner",
                Field::record(Record::new(vec![("x", Field::integer().default(1))]))
                    .default(json!({})),
            ),
        ])
        .with_checks(vec![EntityCheck::AtLeastOneOf(vec!["name", "methods"])])
    }

    fn run(input: Value) -> (Map, FieldErrors) {
        let mut m = input.as_object().unwrap().clone();
        let mut e = FieldErrors::default();
        Validator::new(1000).process(&rec(), &mut m, &mut e);
        (m, e)
    }

    #[test]
    fn defaults_and_auto_fields() {
        let (m, e) = run(json!({"name": "a", "methods": ["GET", "GET", "POST"], "port": 8080.0}));
        assert!(e.is_empty(), "{e:?}");
        assert_eq!(m["protocol"], "http");
        assert_eq!(m["port"], json!(8080));
        assert_eq!(m["created_at"], json!(1000));
        assert_eq!(m["methods"], json!(["GET", "POST"]));
        assert_eq!(m["inner"], json!({"x": 1}));
        assert!(uuid::Uuid::try_parse(m["id"].as_str().unwrap()).is_ok());
    }

    #[test]
    fn errors_like_kong() {
        let (_, e) = run(json!({"port": 70000, "protocol": "ftp", "bogus": 1, "name": ""}));
        let j = e.to_json();
        assert_eq!(j["port"], "value should be between 0 and 65535");
        assert_eq!(j["protocol"], "expected one of: http, https");
        assert_eq!(j["bogus"], "unknown field");
        assert_eq!(j["name"], "length must be at least 1");
        assert_eq!(
            j["@entity"],
            json!(["at least one of these fields must be non-empty: 'name', 'methods'"])
        );
        let (_, e) = run(json!({"methods": ["GET", 3], "inner": {"x": "no"}}));
        let j = e.to_json();
        assert_eq!(j["methods"], json!([null, "expected a string"]));
        assert_eq!(j["inner"], json!({"x": "expected an integer"}));
    }

    #[test]
    fn custom_err_overrides() {
        let f = Field::string()
            .check(Check::EqNull)
            .err("cannot set 'x' here");
        let mut v = json!("a");
        assert_eq!(
            Validator::new(0).validate_field(&f, &mut v),
            Err(ErrorNode::Message("cannot set 'x' here".into()))
        );
    }
}
