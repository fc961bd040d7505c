//! http-log's config (Kong 3.x `kong/plugins/http-log/schema.lua`).

use super::super::log_http::Endpoint;
use super::super::log_schema;
use serde_json::Value;
use silverback_model::schema::{Field, Record};
use silverback_model::typedefs;

pub fn config() -> Record {
    Record::new(vec![
        (
            "http_endpoint",
            Field::string().required().encrypted().custom(valid_url),
        ),
        (
            "method",
            Field::string()
                .default("POST")
                .one_of(["POST", "PUT", "PATCH"]),
        ),
        (
            "content_type",
            Field::string()
                .default("application/json")
                .one_of(["application/json", "application/json; charset=utf-8"]),
        ),
        ("timeout", Field::number().default(10000)),
        ("keepalive", Field::number().default(60000)),
        ("retry_count", Field::integer()),
        ("queue_size", Field::integer()),
        ("flush_timeout", Field::number()),
        (
            "headers",
            Field::map(
                typedefs::header_name().custom(allowed_header),
                Field::string(),
            ),
        ),
        ("queue", log_schema::queue()),
        ("custom_fields_by_lua", log_schema::custom_fields_by_lua()),
    ])
    .with_custom(no_double_auth)
}

fn valid_url(v: &Value) -> Result<(), String> {
    Endpoint::parse(v.as_str().unwrap_or_default()).map(|_| ())
}

/// Kong's `match_none` on header names: the plugin sets these itself.
fn allowed_header(v: &Value) -> Result<(), String> {
    let name = v.as_str().unwrap_or_default().to_ascii_lowercase();
    match name.as_str() {
        "host" => Err("cannot contain 'Host' header".into()),
        "content-length" => Err("cannot contain 'Content-Length' header".into()),
        "content-type" => Err("cannot contain 'Content-Type' header".into()),
        _ => Ok(()),
    }
}

/// Kong's `custom_validator`: user info in the URL and an Authorization header exclude each
/// other.
fn no_double_auth(config: &Value) -> Result<(), String> {
    let has_userinfo = config
        .get("http_endpoint")
        .and_then(Value::as_str)
        .and_then(|u| Endpoint::parse(u).ok())
        .is_some_and(|e| e.userinfo.is_some());
    let has_auth_header = config
        .get("headers")
        .and_then(Value::as_object)
        .is_some_and(|h| h.keys().any(|k| k.eq_ignore_ascii_case("authorization")));
    if has_userinfo && has_auth_header {
        return Err(
            "specifying both an 'Authorization' header and user info in 'http_endpoint' is not allowed"
                .into(),
        );
    }
    Ok(())
}
