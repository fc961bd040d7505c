//! response-transformer's config (Kong 3.x `kong/plugins/response-transformer/schema.lua`).

use serde::Deserialize;
use serde_json::{Value, json};
use silverback_model::schema::{Field, Record};

/// One of `remove`, `rename`, `replace`, `add`, `append`.
#[derive(Debug, Clone, Deserialize)]
pub struct Lists {
    pub json: Vec<String>,
    pub headers: Vec<String>,
    /// The type of each `json` entry's value, by position (not in `remove` and `rename`).
    #[serde(default)]
    pub json_types: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ResponseTransformerConfig {
    pub remove: Lists,
    pub rename: Lists,
    pub replace: Lists,
    pub add: Lists,
    pub append: Lists,
}

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

/// Kong's `match = "^[^:]+:.*$"`.
fn colon_pair(v: &Value) -> Result<(), String> {
    match text(v).find(':') {
        Some(i) if i > 0 => Ok(()),
        _ => Err(format!("invalid value: {}", text(v))),
    }
}

fn valid_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// `old:new` header names, both valid.
fn colon_headers(v: &Value) -> Result<(), String> {
    colon_pair(v)?;
    let entry = text(v);
    let (name, value) = entry.split_once(':').unwrap_or((entry, ""));
    let value = value.trim_start_matches(':');
    for n in [name, value] {
        if !valid_header_name(n) {
            return Err(format!("'{n}' is not a valid header"));
        }
    }
    Ok(())
}

fn array(element: Field) -> Field {
    Field::array(element).required().default(json!([]))
}

fn json_types() -> Field {
    array(Field::string().one_of(["boolean", "number", "string"])).description(
        "List of JSON type names. Specify the types of the JSON values returned when appending\nJSON properties. Each string element can be one of: boolean, number, or string.",
    )
}

fn record(fields: Vec<(&'static str, Field)>) -> Field {
    Field::record(Record::new(fields)).required()
}

fn colon_record() -> Field {
    let colon = Field::string().custom(colon_pair);
    record(vec![
        ("json", array(colon.clone())),
        ("json_types", json_types()),
        ("headers", array(colon)),
    ])
}

pub fn config() -> Record {
    Record::new(vec![
        (
            "remove",
            record(vec![
                ("json", array(Field::string())),
                ("headers", array(Field::string())),
            ]),
        ),
        (
            "rename",
            record(vec![
                ("json", array(Field::string().custom(colon_pair))),
                ("headers", array(Field::string().custom(colon_headers))),
            ]),
        ),
        ("replace", colon_record()),
        ("add", colon_record()),
        ("append", colon_record()),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn validate(input: Value) -> Result<Value, Value> {
        crate::registry::validate_config(&config(), input)
    }

    #[test]
    fn defaults_and_messages_like_kong() {
        let ok = validate(json!({})).unwrap();
        assert_eq!(ok["remove"], json!({"json": [], "headers": []}));
        assert_eq!(
            ok["append"],
            json!({"json": [], "json_types": [], "headers": []})
        );
        assert_eq!(
            validate(json!({"add": {"json": ["just_a_key"]}})).unwrap_err(),
            json!({"add": {"json": ["invalid value: just_a_key"]}})
        );
        assert_eq!(
            validate(json!({"add": {"json_types": ["integer"]}})).unwrap_err(),
            json!({"add": {"json_types": ["expected one of: boolean, number, string"]}})
        );
        assert_eq!(
            validate(json!({"rename": {"headers": ["a:b c"]}})).unwrap_err(),
            json!({"rename": {"headers": ["'b c' is not a valid header"]}})
        );
        assert!(validate(json!({"remove": {"json": ["k"], "headers": ["h"]}})).is_ok());
    }
}
