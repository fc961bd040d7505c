//! proxy-cache's config (Kong 3.x `kong/plugins/proxy-cache/schema.lua`).

use serde::Deserialize;
use silverback_model::schema::{Check, Field, Record};

/// The backing stores Kong's proxy-cache knows. Only `memory` exists in Kong OSS; anything
/// else is rejected by `one_of`, never silently served from memory.
pub const STRATEGIES: [&str; 1] = ["memory"];

/// Kong's default dictionary: the shared dict sized by `mem_cache_size`.
pub const DEFAULT_DICTIONARY: &str = "kong_db_cache";

#[derive(Debug, Clone, Deserialize)]
pub struct ProxyCacheConfig {
    pub response_code: Vec<u16>,
    pub request_method: Vec<String>,
    pub content_type: Vec<String>,
    pub cache_ttl: Option<u64>,
    pub strategy: String,
    pub cache_control: bool,
    #[serde(default)]
    pub ignore_uri_case: Option<bool>,
    pub storage_ttl: Option<u64>,
    pub memory: Option<MemoryConfig>,
    pub vary_query_params: Option<Vec<String>>,
    pub vary_headers: Option<Vec<String>>,
    pub response_headers: Option<ResponseHeadersConfig>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct MemoryConfig {
    pub dictionary_name: String,
}

/// Which diagnostic headers responses carry (a request with `Kong-Debug` gets them all).
#[derive(Debug, Clone, Deserialize)]
pub struct ResponseHeadersConfig {
    #[serde(default = "yes")]
    pub age: bool,
    #[serde(rename = "X-Cache-Status", default = "yes")]
    pub x_cache_status: bool,
    #[serde(rename = "X-Cache-Key", default = "yes")]
    pub x_cache_key: bool,
}

fn yes() -> bool {
    true
}

impl Default for ResponseHeadersConfig {
    fn default() -> Self {
        ResponseHeadersConfig {
            age: true,
            x_cache_status: true,
            x_cache_key: true,
        }
    }
}

pub fn config() -> Record {
    Record::new(vec![
        (
            "response_code",
            Field::array(Field::integer().between(100, 900))
                .required()
                .default(vec![200, 301, 404])
                .check(Check::LenMin(1))
                .description("Upstream response status code considered cacheable."),
        ),
        (
            "request_method",
            Field::array(Field::string().one_of(["HEAD", "GET", "POST", "PATCH", "PUT"]))
                .required()
                .default(vec!["GET", "HEAD"])
                .description("Downstream request methods considered cacheable."),
        ),
        (
            "content_type",
            Field::array(Field::string())
                .required()
                .default(vec!["text/plain", "application/json"])
                .description(
                    "Upstream response content types considered cacheable. The plugin performs an **exact match** against each specified value.",
                ),
        ),
        (
            "cache_ttl",
            Field::integer()
                .default(300)
                .check(Check::Gt(0.0))
                .description("TTL, in seconds, of cache entities."),
        ),
        (
            "strategy",
            Field::string()
                .required()
                .one_of(STRATEGIES)
                .description("The backing data store in which to hold cache entities."),
        ),
        (
            "cache_control",
            Field::boolean()
                .required()
                .default(false)
                .description("When enabled, respect the Cache-Control behaviors defined in RFC7234."),
        ),
        ("ignore_uri_case", Field::boolean().default(false)),
        (
            "storage_ttl",
            Field::integer().description(
                "Number of seconds to keep resources in the storage backend. This value is independent of `cache_ttl` or resource TTLs defined by Cache-Control behaviors.",
            ),
        ),
        (
            "memory",
            Field::record(Record::new(vec![(
                "dictionary_name",
                Field::string().required().default(DEFAULT_DICTIONARY).description(
                    "The name of the shared dictionary in which to hold cache entities when the memory strategy is selected. Note that this dictionary currently must be defined manually in the Kong Nginx template.",
                ),
            )]))
            // Kong makes a plugin config's records required, so they show their defaults.
            .required(),
        ),
        (
            "vary_query_params",
            Field::array(Field::string()).description(
                "Relevant query parameters considered for the cache key. If undefined, all params are taken into consideration.",
            ),
        ),
        (
            "vary_headers",
            Field::array(Field::string()).description(
                "Relevant headers considered for the cache key. If undefined, none of the headers are taken into consideration.",
            ),
        ),
        (
            "response_headers",
            Field::record(Record::new(vec![
                ("age", Field::boolean().default(true)),
                ("X-Cache-Status", Field::boolean().default(true)),
                ("X-Cache-Key", Field::boolean().default(true)),
            ]))
            .required()
            .description(
                "Caching related diagnostic headers that should be included in cached responses",
            ),
        ),
    ])
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::{Value, json};

    fn validate(input: Value) -> Result<Value, Value> {
        crate::registry::validate_config(&config(), input)
    }

    #[test]
    fn kong_schema_spec() {
        let c = validate(json!({"strategy": "memory"})).unwrap();
        assert_eq!(c["content_type"], json!(["text/plain", "application/json"]));
        assert_eq!(c["storage_ttl"], Value::Null);
        assert_eq!(c["ignore_uri_case"], false);
        assert!(super::super::build(&c).is_ok());
        assert!(validate(json!({"strategy": "memory", "response_code": [123, 200]})).is_ok());
        let e = validate(json!({"strategy": "memory", "response_code": [99]})).unwrap_err();
        assert_eq!(
            e["response_code"],
            json!(["value should be between 100 and 900"])
        );
        let e = validate(json!({"strategy": "memory", "response_code": []})).unwrap_err();
        assert_eq!(e["response_code"], "length must be at least 1");
        let e = validate(json!({"strategy": "memory", "response_code": ""})).unwrap_err();
        assert_eq!(e["response_code"], "expected an array");
        let e = validate(json!({"strategy": "memory", "response_code": [123.5]})).unwrap_err();
        assert_eq!(e["response_code"], json!(["expected an integer"]));
        let e = validate(json!({"strategy": "memory", "cache_ttl": -1})).unwrap_err();
        assert_eq!(e["cache_ttl"], "value must be greater than 0");
        for types in [json!(["application/*", "*/text"]), json!(["*/*"])] {
            assert!(validate(json!({"strategy": "memory", "content_type": types})).is_ok());
        }
        let e = validate(json!({"strategy": "redis"})).unwrap_err();
        assert_eq!(e["strategy"], "expected one of: memory");
        let e = validate(json!({"strategy": "memory", "request_method": ["DELETE"]})).unwrap_err();
        assert_eq!(
            e["request_method"],
            json!(["expected one of: HEAD, GET, POST, PATCH, PUT"])
        );
    }
}
