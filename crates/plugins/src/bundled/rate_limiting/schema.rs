//! rate-limiting's config (Kong 3.x `kong/plugins/rate-limiting/schema.lua`).

use serde::Deserialize;
use serde_json::Value;
use silverback_model::schema::{Check, EntityCheck, Field, Map, Record};
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
    pub policy: String,
    pub hide_client_headers: bool,
    pub error_code: f64,
    pub error_message: Option<String>,
}

impl RateLimitingConfig {
    /// The configured limits, shortest period first.
    pub fn limits(&self) -> Vec<(usize, u64)> {
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
        .filter_map(|(i, l)| l.map(|l| (i, l.floor() as u64)))
        .collect()
    }
}

/// Kong's shared `redis` record (`kong/tools/redis/schema.lua`), with its defaults.
fn redis() -> Field {
    Field::record(Record::new(vec![
        ("host", typedefs::host()),
        ("port", typedefs::port().default(6379)),
        (
            "timeout",
            Field::integer().between(0, 2_147_483_646).default(2000),
        ),
        (
            "connect_timeout",
            Field::integer().between(0, 2_147_483_646).default(2000),
        ),
        (
            "send_timeout",
            Field::integer().between(0, 2_147_483_646).default(2000),
        ),
        (
            "read_timeout",
            Field::integer().between(0, 2_147_483_646).default(2000),
        ),
        ("username", Field::string()),
        ("password", Field::string().sensitive()),
        ("sentinel_username", Field::string()),
        ("sentinel_password", Field::string().sensitive()),
        ("database", Field::integer().default(0)),
        (
            "keepalive_pool_size",
            Field::integer().between(1, 2_147_483_646).default(256),
        ),
        (
            "keepalive_backlog",
            Field::integer().between(0, 2_147_483_646),
        ),
        ("sentinel_master", Field::string()),
        (
            "sentinel_role",
            Field::string().one_of(["master", "slave", "any"]),
        ),
        ("sentinel_nodes", Field::array(Field::json())),
        ("cluster_nodes", Field::array(Field::json())),
        ("ssl", Field::boolean().required().default(false)),
        ("ssl_verify", Field::boolean().required().default(false)),
        ("server_name", typedefs::host()),
        ("cluster_max_redirections", Field::integer().default(5)),
        ("connection_is_proxied", Field::boolean().default(false)),
    ]))
    .required()
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
    if sync_rate != -1.0 {
        return Err("sync_rate can only be used with the redis policy".into());
    }
    Ok(())
}

/// Only the `local` policy is served by this build; a config asking for another is refused
/// rather than run without the limits it expects.
fn available_policy(v: &Value) -> Result<(), String> {
    match v.as_str() {
        Some("local") | None => Ok(()),
        Some(p @ ("cluster" | "redis")) => Err(format!(
            "policy '{p}' is not available in this build of Silverback yet; use 'local'"
        )),
        Some(_) => Err("expected one of: local, cluster, redis".into()),
    }
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
        (
            "policy",
            Field::string().default("local").custom(available_policy),
        ),
        ("fault_tolerant", Field::boolean().required().default(true)),
        ("redis", redis()),
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
    Record::new(fields).with_checks(vec![
        EntityCheck::AtLeastOneOf(PERIODS.to_vec()),
        EntityCheck::Custom {
            fields: PERIODS.iter().copied().chain(["sync_rate"]).collect(),
            check: periods_in_order,
        },
    ])
}
