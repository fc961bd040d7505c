//! rate-limiting's config (Kong 3.x `kong/plugins/rate-limiting/schema.lua`).
//!
//! `sync_rate` has Kong's checks: -1 (the default: the redis policy counts in Redis on every
//! request), or at least 0.02 seconds with the redis policy (see `counters::redis_sync`).
//! Kong refuses 0 there too.

use crate::counters::schema as counters;
use serde::Deserialize;
use serde_json::Value;
use silverback_model::schema::{Check, EntityCheck, Field, Map, Matcher, Record};
use silverback_model::typedefs;

pub const PERIODS: [&str; 6] = ["second", "minute", "hour", "day", "month", "year"];

#[derive(Debug, Clone, Deserialize)]
pub struct RateLimitingConfig {
    pub second: Option<f64>,
    pub minute: Option<f64>,
    pub hour: Option<f64>,
    pub day: Option<f64>,
    pub month: Option<f64>,
    pub year: Option<f64>,
    pub limit_by: String,
    pub header_name: Option<String>,
    pub path: Option<String>,
    pub fault_tolerant: bool,
    pub hide_client_headers: bool,
    pub error_code: f64,
    pub error_message: Option<String>,
}

impl RateLimitingConfig {
    /// The configured limits, shortest period first.
    pub fn limits(&self) -> Vec<crate::counters::Limit> {
        [
            self.second,
            self.minute,
            self.hour,
            self.day,
            self.month,
            self.year,
        ]
        .into_iter()
        .enumerate()
        .filter_map(|(i, l)| l.map(|l| (i as u8, l.floor() as u64)))
        .collect()
    }
}

fn limit() -> Field {
    Field::number().check(Check::Gt(0.0))
}

/// Kong's order check: a longer period cannot allow fewer requests than a shorter one.
fn periods_in_order(config: &Map) -> Result<(), String> {
    let value = |p: &str| config.get(p).and_then(Value::as_f64);
    for (i, lower) in PERIODS.iter().enumerate() {
        let Some(v1) = value(lower) else { continue };
        for upper in &PERIODS[i + 1..] {
            if let Some(v2) = value(upper).filter(|v2| *v2 < v1) {
                return Err(format!(
                    "The limit for {upper}({v2:.1}) cannot be lower than the limit for {lower}({v1:.1})"
                ));
            }
        }
    }
    let sync_rate = config
        .get("sync_rate")
        .and_then(Value::as_f64)
        .unwrap_or(-1.0);
    let redis = config.get("policy").and_then(Value::as_str) == Some("redis");
    if !redis && sync_rate != -1.0 {
        return Err("sync_rate can only be used with the redis policy".into());
    }
    if redis && sync_rate != -1.0 && sync_rate < 0.02 {
        return Err("sync_rate must be greater than 0.02, or -1 to disable".into());
    }
    Ok(())
}

pub fn config() -> Record {
    let mut fields: Vec<(&'static str, Field)> = PERIODS.iter().map(|p| (*p, limit())).collect();
    fields.extend([
        (
            "limit_by",
            Field::string().default("consumer").one_of([
                "consumer",
                "credential",
                "ip",
                "service",
                "header",
                "path",
            ]),
        ),
        ("header_name", typedefs::header_name()),
        ("path", typedefs::path()),
        ("policy", counters::policy()),
        ("fault_tolerant", Field::boolean().required().default(true)),
        ("redis", counters::redis()),
        (
            "hide_client_headers",
            Field::boolean().required().default(false),
        ),
        (
            "error_code",
            Field::number().check(Check::Gt(0.0)).default(429),
        ),
        (
            "error_message",
            Field::string().default("API rate limit exceeded"),
        ),
        ("sync_rate", Field::number().required().default(-1)),
    ]);
    Record::new(fields)
        .with_checks(vec![
            EntityCheck::AtLeastOneOf(PERIODS.to_vec()),
            EntityCheck::Custom {
                fields: PERIODS
                    .iter()
                    .copied()
                    .chain(["policy", "sync_rate"])
                    .collect(),
                check: periods_in_order,
            },
        ])
        .with_shorthands(counters::expand_redis_shorthands)
        .with_plugin_checks(
            counters::redis_checks()
                .into_iter()
                .chain(
                    [("header", "config.header_name"), ("path", "config.path")].map(
                        |(limit_by, then_field)| EntityCheck::Conditional {
                            if_field: "config.limit_by",
                            if_match: Matcher::Eq(Value::from(limit_by)),
                            then_field,
                            then_match: Matcher::Required,
                            then_err: None,
                        },
                    ),
                )
                .collect(),
        )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(config: Value) -> Result<(), String> {
        periods_in_order(config.as_object().unwrap())
    }

    #[test]
    fn sync_rate_as_kong_checks_it() {
        let redis = |rate: f64| check(json!({"minute": 5, "policy": "redis", "sync_rate": rate}));
        assert_eq!(redis(-1.0), Ok(()));
        assert_eq!(redis(0.02), Ok(()));
        assert_eq!(redis(2.5), Ok(()));
        // 0 is not "sync on every request, in the background" in Kong's rate-limiting (that is
        // the Enterprise rate-limiting-advanced plugin): it is refused.
        for rate in [0.0, 0.01, -2.0] {
            assert_eq!(
                redis(rate),
                Err("sync_rate must be greater than 0.02, or -1 to disable".into())
            );
        }
        assert_eq!(
            check(json!({"minute": 5, "policy": "local", "sync_rate": 1})),
            Err("sync_rate can only be used with the redis policy".into())
        );
    }
}
