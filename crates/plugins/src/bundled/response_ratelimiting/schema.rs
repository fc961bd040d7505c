//! response-ratelimiting's config (Kong 3.x `kong/plugins/response-ratelimiting/schema.lua`).

use crate::counters::PERIODS;
use crate::counters::schema as counters;
use serde_json::Value;
use silverback_model::schema::{Check, EntityCheck, Field, Record};

/// Kong's order check on one limit (its message starts lower-case, unlike rate-limiting's).
fn periods_in_order(limit: &Value) -> Result<(), String> {
    let value = |p: &str| limit.get(p).and_then(Value::as_f64);
    for (i, lower) in PERIODS.iter().enumerate() {
        let Some(v1) = value(lower) else { continue };
        for upper in PERIODS.iter().skip(i + 1) {
            if let Some(v2) = value(upper).filter(|v2| *v2 < v1) {
                return Err(format!(
                    "the limit for {upper}({v2:.1}) cannot be lower than the limit for {lower}({v1:.1})"
                ));
            }
        }
    }
    Ok(())
}

fn limit() -> Field {
    Field::record(
        Record::new(
            PERIODS
                .iter()
                .map(|p| (*p, Field::number().check(Check::Gt(0.0))))
                .collect(),
        )
        .with_checks(vec![EntityCheck::AtLeastOneOf(PERIODS.to_vec())])
        .with_custom(periods_in_order),
    )
    .required()
}

pub fn config() -> Record {
    Record::new(vec![
        ("header_name", Field::string().default("x-kong-limit")),
        (
            "limit_by",
            Field::string()
                .default("consumer")
                .one_of(["consumer", "credential", "ip"]),
        ),
        ("policy", counters::policy()),
        ("fault_tolerant", Field::boolean().required().default(true)),
        ("redis", counters::redis()),
        (
            "block_on_first_violation",
            Field::boolean().required().default(false),
        ),
        (
            "hide_client_headers",
            Field::boolean().required().default(false),
        ),
        (
            "limits",
            Field::map(Field::string(), limit())
                .required()
                .check(Check::LenMin(1)),
        ),
    ])
    .with_shorthands(counters::expand_redis_shorthands)
    .with_plugin_checks(counters::redis_checks())
}
