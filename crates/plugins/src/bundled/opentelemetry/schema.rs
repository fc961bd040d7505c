//! opentelemetry's config (Kong 3.10 `kong/plugins/opentelemetry/schema.lua`, with
//! `typedefs.propagation` and the deprecated `endpoint`, `batch_span_count`,
//! `batch_flush_delay` and `header_type`).

use super::super::log_http::Endpoint;
use super::super::log_schema;
use super::propagation::Format;
use serde_json::{Value, json};
use silverback_model::schema::{EntityCheck, Field, Map, Record};
use silverback_model::typedefs;

/// `header_type`'s values.
const HEADER_TYPES: [&str; 11] = [
    "preserve",
    "ignore",
    "b3",
    "b3-single",
    "w3c",
    "jaeger",
    "ot",
    "aws",
    "gcp",
    "datadog",
    "instana",
];

pub fn config() -> Record {
    Record::new(vec![
        ("traces_endpoint", url()),
        ("logs_endpoint", url()),
        (
            "headers",
            Field::map(typedefs::header_name(), Field::string()),
        ),
        (
            "resource_attributes",
            Field::map(Field::string(), Field::string()),
        ),
        (
            "queue",
            log_schema::queue_with_default(json!({"max_batch_size": 200})),
        ),
        ("batch_span_count", Field::integer()),
        ("batch_flush_delay", Field::integer()),
        ("connect_timeout", timeout(1000)),
        ("send_timeout", timeout(5000)),
        ("read_timeout", timeout(5000)),
        ("http_response_header_for_traceid", Field::string()),
        (
            "header_type",
            Field::string().default("preserve").one_of(HEADER_TYPES),
        ),
        (
            "sampling_rate",
            Field::number().check(silverback_model::schema::Check::Between(0.0, 1.0)),
        ),
        ("propagation", propagation()),
    ])
    .with_checks(vec![EntityCheck::AtLeastOneOf(vec![
        "traces_endpoint",
        "logs_endpoint",
    ])])
    .with_shorthands(endpoint_shorthand)
}

/// `typedefs.url`, limited to what the exporter can post to (http and https).
fn url() -> Field {
    Field::string().custom(valid_url)
}

fn valid_url(v: &Value) -> Result<(), String> {
    let url = v.as_str().unwrap_or_default();
    match url.split_once("://") {
        None => Err("missing scheme in url".into()),
        Some((_, rest)) if rest.is_empty() || rest.starts_with('/') => {
            Err("missing host in url".into())
        }
        Some(_) => Endpoint::parse(url).map(|_| ()),
    }
}

/// `typedefs.timeout`: milliseconds, 0 to 2^31 - 2.
fn timeout(default: i64) -> Field {
    Field::integer().between(0, 2_147_483_646).default(default)
}

/// `typedefs.propagation`, defaulting to `{default_format = "w3c"}` as the plugin declares.
fn propagation() -> Field {
    let extractors: Vec<&str> = Format::ALL
        .iter()
        .filter(|f| **f != Format::B3Single)
        .map(|f| f.name())
        .collect();
    let mut injectors = vec!["preserve"];
    injectors.extend(Format::ALL.iter().map(|f| f.name()));
    let formats: Vec<&str> = Format::ALL.iter().map(|f| f.name()).collect();
    Field::record(Record::new(vec![
        ("extract", Field::array(Field::string().one_of(extractors))),
        ("clear", Field::array(typedefs::header_name())),
        ("inject", Field::array(Field::string().one_of(injectors))),
        ("default_format", Field::string().required().one_of(formats)),
    ]))
    .default(json!({"default_format": "w3c"}))
}

/// Kong's deprecated `endpoint`: the same as `traces_endpoint`.
fn endpoint_shorthand(config: &mut Map) {
    if let Some(v) = config.remove("endpoint")
        && !v.is_null()
    {
        config.insert("traces_endpoint".into(), v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::validate_config;

    #[test]
    fn kongs_defaults() {
        let c = validate_config(
            &config(),
            json!({"traces_endpoint": "http://c:4318/v1/traces"}),
        )
        .unwrap();
        assert_eq!(c["queue"]["max_batch_size"], 200);
        assert_eq!(c["queue"]["max_coalescing_delay"], 1);
        assert_eq!(c["connect_timeout"], 1000);
        assert_eq!(c["send_timeout"], 5000);
        assert_eq!(c["read_timeout"], 5000);
        assert_eq!(c["header_type"], "preserve");
        assert_eq!(
            c["propagation"],
            json!({"extract": null, "clear": null, "inject": null, "default_format": "w3c"})
        );
        assert_eq!(c["sampling_rate"], Value::Null);
        assert_eq!(c["logs_endpoint"], Value::Null);
        // A queue given in part gets the record's own defaults (Kong: 1 per batch).
        let c = validate_config(
            &config(),
            json!({"traces_endpoint": "http://c/", "queue": {"max_entries": 5}}),
        )
        .unwrap();
        assert_eq!(c["queue"]["max_batch_size"], 1);
    }

    #[test]
    fn deprecated_endpoint_is_traces_endpoint() {
        let c = validate_config(&config(), json!({"endpoint": "http://c:4318/v1/traces"})).unwrap();
        assert_eq!(c["traces_endpoint"], "http://c:4318/v1/traces");
        assert!(c.get("endpoint").is_none());
    }

    #[test]
    fn kongs_errors() {
        let err = validate_config(&config(), json!({})).unwrap_err();
        assert_eq!(
            err["@entity"][0],
            "at least one of these fields must be non-empty: 'traces_endpoint', 'logs_endpoint'"
        );
        let err = validate_config(
            &config(),
            json!({
                "traces_endpoint": "nope",
                "sampling_rate": 2,
                "header_type": "zipkin",
                "propagation": {"extract": ["b3-single"]},
            }),
        )
        .unwrap_err();
        assert_eq!(err["traces_endpoint"], "missing scheme in url");
        assert_eq!(err["sampling_rate"], "value should be between 0 and 1");
        assert!(
            err["header_type"]
                .as_str()
                .unwrap()
                .starts_with("expected one of: preserve")
        );
        assert!(
            err["propagation"]["extract"][0]
                .as_str()
                .unwrap()
                .starts_with("expected one of: w3c, b3, jaeger")
        );
        assert_eq!(
            err["propagation"]["default_format"],
            "required field missing"
        );
        let err = validate_config(&config(), json!({"traces_endpoint": "http://"})).unwrap_err();
        assert_eq!(err["traces_endpoint"], "missing host in url");
    }
}
