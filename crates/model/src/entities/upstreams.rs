//! `upstreams`: virtual hosts balanced over targets, with health checks.

use super::{Context, EntitySchema, ForeignKey};
use crate::schema::{EntityCheck, Field, FieldErrors, Map, Matcher, Record, Validator};
use crate::typedefs;
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

#[derive(Debug, Clone, Deserialize)]
pub struct Upstream {
    pub id: Uuid,
    pub name: String,
    pub algorithm: String,
    pub hash_on: Option<String>,
    pub hash_fallback: Option<String>,
    pub hash_on_header: Option<String>,
    pub hash_fallback_header: Option<String>,
    pub hash_on_cookie: Option<String>,
    pub hash_on_cookie_path: Option<String>,
    pub hash_on_query_arg: Option<String>,
    pub hash_fallback_query_arg: Option<String>,
    pub hash_on_uri_capture: Option<String>,
    pub hash_fallback_uri_capture: Option<String>,
    pub slots: u32,
    pub healthchecks: Value,
    pub host_header: Option<String>,
    pub client_certificate: Option<ForeignKey>,
    pub use_srv_name: bool,
    pub tags: Option<Vec<String>>,
}

fn validate_upstream_name(v: &Value) -> Result<(), String> {
    let name = v.as_str().unwrap_or_default();
    match typedefs::normalize_host(name) {
        Err(_) => Err(format!("Invalid name ('{name}'); must be a valid hostname")),
        Ok(hp) if hp.is_ip => Err(format!("Invalid name ('{name}'); no ip addresses allowed")),
        Ok(hp) if hp.port.is_some() => Err(format!("Invalid name ('{name}'); no port allowed")),
        Ok(_) => Ok(()),
    }
}

const HASH_SOURCES: [&str; 8] = [
    "none",
    "consumer",
    "ip",
    "header",
    "cookie",
    "path",
    "query_arg",
    "uri_capture",
];

fn hash_on() -> Field {
    Field::string().default("none").one_of(HASH_SOURCES)
}

fn statuses(default: &[i64]) -> Field {
    Field::array(Field::integer().between(100, 999)).default(json!(default))
}

fn seconds(default: f64) -> Field {
    Field::number().default(default).between(0, 65535)
}

fn counter() -> Field {
    Field::integer().default(0).between(0, 255)
}

fn record_with_defaults(fields: Vec<(&'static str, Field)>) -> Field {
    let rec = Record::new(fields);
    let mut defaults = Map::new();
    for (name, f) in &rec.fields {
        if let Some(d) = &f.default {
            defaults.insert(name.to_string(), d.clone());
        }
    }
    Field::record(rec).default(Value::Object(defaults))
}

fn healthchecks() -> Field {
    let check_type = || {
        Field::string()
            .default("http")
            .one_of(["tcp", "http", "https", "grpc", "grpcs"])
    };
    let active = record_with_defaults(vec![
        ("type", check_type()),
        ("timeout", seconds(1.0)),
        (
            "concurrency",
            Field::integer().default(10).between(1, 2_147_483_648),
        ),
        ("http_path", typedefs::path().default("/")),
        ("https_sni", Field::string().custom(typedefs::validate_sni)),
        (
            "https_verify_certificate",
            Field::boolean().required().default(true),
        ),
        ("headers", typedefs::headers_map()),
        (
            "healthy",
            record_with_defaults(vec![
                ("interval", seconds(0.0)),
                ("http_statuses", statuses(&[200, 302])),
                ("successes", counter()),
            ]),
        ),
        (
            "unhealthy",
            record_with_defaults(vec![
                ("interval", seconds(0.0)),
                (
                    "http_statuses",
                    statuses(&[429, 404, 500, 501, 502, 503, 504, 505]),
                ),
                ("tcp_failures", counter()),
                ("timeouts", counter()),
                ("http_failures", counter()),
            ]),
        ),
    ]);
    let passive = record_with_defaults(vec![
        ("type", check_type()),
        (
            "healthy",
            record_with_defaults(vec![
                (
                    "http_statuses",
                    statuses(&[
                        200, 201, 202, 203, 204, 205, 206, 207, 208, 226, 300, 301, 302, 303, 304,
                        305, 306, 307, 308,
                    ]),
                ),
                ("successes", counter()),
            ]),
        ),
        (
            "unhealthy",
            record_with_defaults(vec![
                ("http_statuses", statuses(&[429, 500, 503])),
                ("tcp_failures", counter()),
                ("timeouts", counter()),
                ("http_failures", counter()),
            ]),
        ),
    ]);
    record_with_defaults(vec![
        ("active", active),
        ("passive", passive),
        ("threshold", Field::number().default(0).between(0, 100)),
    ])
}

fn hash_rule(if_value: &str, then_field: &'static str) -> EntityCheck {
    EntityCheck::Conditional {
        if_field: "hash_on",
        if_match: Matcher::Eq(if_value.into()),
        then_field,
        then_match: Matcher::Required,
        then_err: None,
    }
}

fn fallback_rule(if_value: &str, then_field: &'static str) -> EntityCheck {
    EntityCheck::Conditional {
        if_field: "hash_fallback",
        if_match: Matcher::Eq(if_value.into()),
        then_field,
        then_match: Matcher::Required,
        then_err: None,
    }
}

fn fallback_one_of(hash_on: &str, allowed: &[&str]) -> EntityCheck {
    EntityCheck::Conditional {
        if_field: "hash_on",
        if_match: Matcher::Eq(hash_on.into()),
        then_field: "hash_fallback",
        then_match: Matcher::OneOf(allowed.iter().map(|s| Value::from(*s)).collect()),
        then_err: None,
    }
}

pub(super) fn schema() -> EntitySchema {
    let record = Record::new(vec![
        ("id", Field::id()),
        ("created_at", Field::timestamp_s()),
        (
            "name",
            Field::string()
                .required()
                .unique()
                .custom(validate_upstream_name),
        ),
        ("updated_at", Field::timestamp_s()),
        (
            "algorithm",
            Field::string().default("round-robin").one_of([
                "consistent-hashing",
                "least-connections",
                "round-robin",
                "latency",
            ]),
        ),
        ("hash_on", hash_on()),
        ("hash_fallback", hash_on()),
        ("hash_on_header", typedefs::header_name()),
        ("hash_fallback_header", typedefs::header_name()),
        (
            "hash_on_cookie",
            Field::string().custom(typedefs::validate_http_token),
        ),
        ("hash_on_cookie_path", typedefs::path().default("/")),
        (
            "hash_on_query_arg",
            Field::string().check(crate::schema::Check::LenMin(1)),
        ),
        (
            "hash_fallback_query_arg",
            Field::string().check(crate::schema::Check::LenMin(1)),
        ),
        (
            "hash_on_uri_capture",
            Field::string().check(crate::schema::Check::LenMin(1)),
        ),
        (
            "hash_fallback_uri_capture",
            Field::string().check(crate::schema::Check::LenMin(1)),
        ),
        ("slots", Field::integer().default(10000).between(10, 65536)),
        ("healthchecks", healthchecks()),
        ("tags", typedefs::tags()),
        (
            "host_header",
            Field::string().custom(typedefs::validate_host_with_optional_port),
        ),
        ("client_certificate", Field::foreign("certificates")),
        ("use_srv_name", Field::boolean().default(false)),
    ])
    .with_checks(vec![
        hash_rule("header", "hash_on_header"),
        fallback_rule("header", "hash_fallback_header"),
        hash_rule("cookie", "hash_on_cookie"),
        fallback_rule("cookie", "hash_on_cookie"),
        fallback_one_of("none", &["none"]),
        fallback_one_of("cookie", &["none"]),
        fallback_one_of(
            "consumer",
            &[
                "none",
                "ip",
                "header",
                "cookie",
                "path",
                "query_arg",
                "uri_capture",
            ],
        ),
        fallback_one_of(
            "ip",
            &[
                "none",
                "consumer",
                "header",
                "cookie",
                "path",
                "query_arg",
                "uri_capture",
            ],
        ),
        fallback_one_of(
            "path",
            &[
                "none",
                "consumer",
                "header",
                "cookie",
                "query_arg",
                "ip",
                "uri_capture",
            ],
        ),
        EntityCheck::Distinct(vec!["hash_on_header", "hash_fallback_header"]),
        hash_rule("query_arg", "hash_on_query_arg"),
        fallback_rule("query_arg", "hash_fallback_query_arg"),
        EntityCheck::Distinct(vec!["hash_on_query_arg", "hash_fallback_query_arg"]),
        hash_rule("uri_capture", "hash_on_uri_capture"),
        fallback_rule("uri_capture", "hash_fallback_uri_capture"),
        EntityCheck::Distinct(vec!["hash_on_uri_capture", "hash_fallback_uri_capture"]),
    ]);
    EntitySchema {
        name: "upstreams",
        endpoint_key: Some("name"),
        cache_key: &[],
        record,
        before: Some(algorithm_shorthands),
        after: None,
        db_export: true,
        transform: None,
    }
}

/// Kong keeps `algorithm` and `hash_on` consistent: a hashing source implies consistent-hashing,
/// and least-connections / latency clear `hash_on`.
fn algorithm_shorthands(_: &Validator, _: &Context<'_>, map: &mut Map, _: &mut FieldErrors) {
    if let Some(alg) = map.get("algorithm").and_then(Value::as_str)
        && matches!(alg, "least-connections" | "latency")
    {
        map.insert("hash_on".into(), Value::Null);
    }
    match map.get("hash_on").cloned() {
        Some(Value::String(h)) if h == "none" => {
            map.insert("algorithm".into(), "round-robin".into());
        }
        Some(Value::String(_)) => {
            map.insert("algorithm".into(), "consistent-hashing".into());
        }
        Some(Value::Null) if map.get("algorithm").is_some_and(|a| !a.is_null()) => {
            // Cleared by the algorithm shorthand above: Kong stores "none".
            map.insert("hash_on".into(), "none".into());
        }
        _ => {}
    }
}
