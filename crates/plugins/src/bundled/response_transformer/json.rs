//! The JSON body step, as Kong's `body_transformer.lua`: remove, rename, replace, add, append
//! over the members of a JSON object, values typed by `json_types` (string by default).

use serde_json::{Map, Number, Value};

/// A configured `name:value`; the value already made into JSON (`None`: no value, or a
/// `number` that is not one).
#[derive(Debug, Clone)]
pub struct Entry {
    pub name: String,
    pub value: Option<Value>,
}

#[derive(Debug, Default)]
pub struct JsonSteps {
    pub remove: Vec<String>,
    /// `old` to `new`.
    pub rename: Vec<(String, String)>,
    pub replace: Vec<Entry>,
    pub add: Vec<Entry>,
    pub append: Vec<Entry>,
}

impl JsonSteps {
    pub fn is_empty(&self) -> bool {
        self.remove.is_empty()
            && self.rename.is_empty()
            && self.replace.is_empty()
            && self.add.is_empty()
            && self.append.is_empty()
    }

    /// The transformed body; `None` when it is not a JSON object (it then passes as it is).
    pub fn apply(&self, body: &[u8]) -> Option<Vec<u8>> {
        let Ok(Value::Object(mut o)) = serde_json::from_slice::<Value>(body) else {
            return None;
        };
        for name in &self.remove {
            o.shift_remove(name);
        }
        for (old, new) in &self.rename {
            if let Some(v) = o.shift_remove(old) {
                o.insert(new.clone(), v);
            }
        }
        for e in &self.replace {
            if let Some(v) = &e.value
                && truthy(o.get(&e.name))
            {
                o.insert(e.name.clone(), v.clone());
            }
        }
        for e in &self.add {
            if let Some(v) = &e.value
                && !truthy(o.get(&e.name))
            {
                o.insert(e.name.clone(), v.clone());
            }
        }
        for e in &self.append {
            if let Some(v) = &e.value {
                append(&mut o, &e.name, v.clone());
            }
        }
        serde_json::to_vec(&Value::Object(o)).ok()
    }
}

/// Lua truthiness of a member (`null` decodes to a truthy value in Kong).
fn truthy(v: Option<&Value>) -> bool {
    !matches!(v, None | Some(Value::Bool(false)))
}

/// Kong's `append_value`: a string becomes a list with the new value, a list grows, anything
/// else is replaced by a list of the new value.
fn append(o: &mut Map<String, Value>, name: &str, v: Value) {
    let next = match o.shift_remove(name) {
        Some(Value::String(s)) => Value::Array(vec![Value::String(s), v]),
        Some(Value::Array(mut a)) => {
            a.push(v);
            Value::Array(a)
        }
        // Lua's table.insert on an object table adds the key 1.
        Some(Value::Object(mut m)) => {
            m.insert("1".into(), v);
            Value::Object(m)
        }
        _ => Value::Array(vec![v]),
    };
    o.insert(name.to_string(), next);
}

/// A configured value as Kong makes it: JSON-escaped as cjson does, then `\"` and `\/`
/// unescaped (Kong's guard against double encoding), then cast to its `json_types` type.
pub fn json_value(value: &str, json_type: Option<&str>) -> Option<Value> {
    let mut escaped = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '"' => escaped.push_str("\\\""),
            '\\' => escaped.push_str("\\\\"),
            '/' => escaped.push_str("\\/"),
            '\n' => escaped.push_str("\\n"),
            '\r' => escaped.push_str("\\r"),
            '\t' => escaped.push_str("\\t"),
            '\u{8}' => escaped.push_str("\\b"),
            '\u{c}' => escaped.push_str("\\f"),
            c if u32::from(c) < 0x20 || c == '\u{7f}' => {
                escaped.push_str(&format!("\\u{:04x}", u32::from(c)));
            }
            c => escaped.push(c),
        }
    }
    let v = escaped.replace("\\\"", "\"").replace("\\/", "/");
    match json_type {
        Some("number") => {
            let n = crate::bundled::request_transformer::parse_number(&v)?;
            if n == n.trunc() && n.abs() < 9.007_199_254_740_992e15 {
                Some(Value::from(n as i64))
            } else {
                Number::from_f64(n).map(Value::Number)
            }
        }
        Some("boolean") => Some(Value::Bool(v == "true")),
        _ => Some(Value::String(v)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entry(name: &str, value: &str, ty: Option<&str>) -> Entry {
        Entry {
            name: name.into(),
            value: json_value(value, ty),
        }
    }

    #[test]
    fn values_typed_like_kong() {
        assert_eq!(json_value("v1", None), Some(json!("v1")));
        assert_eq!(json_value("\"v1\"", Some("string")), Some(json!("\"v1\"")));
        assert_eq!(
            json_value("/hello/world", None),
            Some(json!("/hello/world"))
        );
        assert_eq!(json_value("a\\b", None), Some(json!("a\\\\b")));
        assert_eq!(json_value("-1", Some("number")), Some(json!(-1)));
        assert_eq!(json_value("1.5", Some("number")), Some(json!(1.5)));
        assert_eq!(json_value("v2", Some("number")), None);
        assert_eq!(json_value("true", Some("boolean")), Some(json!(true)));
        assert_eq!(json_value("v5", Some("boolean")), Some(json!(false)));
    }

    #[test]
    fn steps_in_kongs_order() {
        let steps = JsonSteps {
            remove: vec!["gone".into()],
            rename: vec![("old".into(), "new".into())],
            replace: vec![entry("rep", "v", None), entry("falsy", "no", None)],
            add: vec![
                entry("p1", "v1", None),
                entry("falsy", "yes", None),
                entry("rep", "no", None),
            ],
            append: vec![entry("list", "b", None), entry("n", "-1", Some("number"))],
        };
        let out = steps
            .apply(br#"{"gone":1,"old":null,"rep":"r","falsy":false,"list":"a","a":[]}"#)
            .unwrap();
        assert_eq!(
            serde_json::from_slice::<Value>(&out).unwrap(),
            json!({"rep": "v", "falsy": "yes", "a": [], "new": null, "p1": "v1",
                   "list": ["a", "b"], "n": [-1]})
        );
        assert!(steps.apply(b"not json").is_none());
        assert!(steps.apply(b"[1]").is_none());
    }
}
