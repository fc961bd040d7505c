//! request-transformer's config (Kong 3.x `kong/plugins/request-transformer/schema.lua`).

use super::template::Template;
use serde::Deserialize;
use serde_json::{Value, json};
use silverback_model::schema::{Field, Record};
use silverback_model::typedefs;

/// One of `remove`, `rename`, `replace`, `add`, `append`.
#[derive(Debug, Clone, Deserialize)]
pub struct Lists {
    pub body: Vec<String>,
    pub headers: Vec<String>,
    pub querystring: Vec<String>,
    /// Only in `replace`.
    #[serde(default)]
    pub uri: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RequestTransformerConfig {
    pub http_method: Option<String>,
    pub remove: Lists,
    pub rename: Lists,
    pub replace: Lists,
    pub add: Lists,
    pub append: Lists,
}

/// `name:value` as Kong splits it (`^([^:]+):*(.-)$`): the name ends at the first colon, the
/// colons after it are skipped. `None` when there is no name.
pub fn split_pair(entry: &str) -> Option<(&str, &str)> {
    let end = entry.find(':').unwrap_or(entry.len());
    if end == 0 {
        return None;
    }
    let name = &entry[..end];
    let value = entry[end..].trim_start_matches(':');
    Some((name, value))
}

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

/// Kong's `check_for_value`: a value must follow the name, and it must be a template that
/// compiles.
fn check_for_value(v: &Value) -> Result<(), String> {
    let entry = text(v);
    let (name, value) = split_pair(entry).unwrap_or(("", ""));
    if value.is_empty() {
        return Err(format!("key '{name}' has no value"));
    }
    match Template::compile(value).error() {
        Some(e) => Err(format!(
            "value '{value}' is not in supported format, error:{e}"
        )),
        None => Ok(()),
    }
}

fn valid_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Kong's `match = "^[^:]+:.*$"`.
fn has_colon_pair(entry: &str) -> Result<(), String> {
    match entry.find(':') {
        Some(i) if i > 0 => Ok(()),
        _ => Err(format!("invalid value: {entry}")),
    }
}

/// The name part must be a header name.
fn validate_header(v: &Value) -> Result<(), String> {
    let name = split_pair(text(v)).map_or("", |(n, _)| n);
    if valid_header_name(name) {
        Ok(())
    } else {
        Err(format!("'{name}' is not a valid header"))
    }
}

fn validate_header_pair(v: &Value) -> Result<(), String> {
    has_colon_pair(text(v))?;
    validate_header(v)
}

/// `old:new`: both must be header names.
fn validate_header_rename(v: &Value) -> Result<(), String> {
    has_colon_pair(text(v))?;
    validate_header(v)?;
    let value = split_pair(text(v)).map_or("", |(_, v)| v);
    if valid_header_name(value) {
        Ok(())
    } else {
        Err(format!("'{value}' is not a valid header"))
    }
}

fn array(element: Field) -> Field {
    Field::array(element).required().default(json!([]))
}

fn lists(headers: Field, values: Field, uri: bool) -> Field {
    let mut fields = vec![
        ("body", array(values.clone())),
        ("headers", array(headers)),
        ("querystring", array(values)),
    ];
    if uri {
        fields.push(("uri", Field::string()));
    }
    Field::record(Record::new(fields)).required()
}

pub fn config() -> Record {
    let colon_values = Field::string().custom(check_for_value);
    Record::new(vec![
        (
            "http_method",
            Field::string().custom(typedefs::validate_http_method),
        ),
        (
            "remove",
            lists(
                Field::string().custom(validate_header),
                Field::string(),
                false,
            ),
        ),
        (
            "rename",
            lists(
                Field::string().custom(validate_header_rename),
                colon_values.clone(),
                false,
            ),
        ),
        (
            "replace",
            lists(
                Field::string().custom(validate_header_pair),
                colon_values.clone(),
                true,
            ),
        ),
        (
            "add",
            lists(
                Field::string().custom(validate_header_pair),
                colon_values.clone(),
                false,
            ),
        ),
        (
            "append",
            lists(
                Field::string().custom(validate_header_pair),
                colon_values,
                false,
            ),
        ),
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
        assert_eq!(
            ok["replace"],
            json!({"body": [], "headers": [], "querystring": [], "uri": null})
        );
        assert_eq!(ok["http_method"], Value::Null);
        assert_eq!(
            validate(json!({"http_method": "HELLO!"})).unwrap_err(),
            json!({"http_method": "invalid value: HELLO!"})
        );
        assert!(validate(json!({"remove": {"headers": ["just_a_key"], "body": ["just_a_key"], "querystring": ["just_a_key"]}})).is_ok());
        assert_eq!(
            validate(json!({"add": {"headers": ["just_a_key"]}})).unwrap_err(),
            json!({"add": {"headers": ["invalid value: just_a_key"]}})
        );
        assert_eq!(
            validate(json!({"add": {"querystring": ["uri_param2:"]}})).unwrap_err(),
            json!({"add": {"querystring": ["key 'uri_param2' has no value"]}})
        );
        assert!(validate(json!({"add": {"querystring": ["a:$(uri_captures user2)"]}})).is_err());
        assert!(
            validate(json!({"add": {"querystring": ["a:$(uri_captures.user1)", "b:value"]}}))
                .is_ok()
        );
        assert_eq!(
            validate(json!({"rename": {"headers": ["a:b c"]}})).unwrap_err(),
            json!({"rename": {"headers": ["'b c' is not a valid header"]}})
        );
        assert_eq!(
            validate(json!({"append": {"headers": ["x y:1"]}})).unwrap_err(),
            json!({"append": {"headers": ["'x y' is not a valid header"]}})
        );
    }

    #[test]
    fn pairs_split_like_kong() {
        assert_eq!(split_pair("h2:value:2"), Some(("h2", "value:2")));
        assert_eq!(split_pair("a::b"), Some(("a", "b")));
        assert_eq!(split_pair("key"), Some(("key", "")));
        assert_eq!(split_pair(":x"), None);
    }
}
