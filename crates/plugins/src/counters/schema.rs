//! Config pieces rate-limiting and response-ratelimiting share: the `policy` field, Kong's
//! `redis` record, the deprecated flat `redis_*` fields that still set it, and the checks that
//! make `redis.host`, `.port` and `.timeout` required with the redis policy.

use serde_json::Value;
use silverback_model::schema::{EntityCheck, Field, Map, Matcher, Record};
use silverback_model::typedefs;
use std::sync::atomic::{AtomicBool, Ordering};

static DATABASE_OFF: AtomicBool = AtomicBool::new(false);

/// Tells the schemas the node runs DB-less (`database = off`): Kong then refuses the
/// `cluster` policy, which needs a database. Set once at start-up, before configs load.
pub fn set_database_off(off: bool) {
    DATABASE_OFF.store(off, Ordering::Relaxed);
}

fn known_policy(v: &Value) -> Result<(), String> {
    let dbless = DATABASE_OFF.load(Ordering::Relaxed);
    match v.as_str() {
        Some("local" | "redis") => Ok(()),
        Some("cluster") if !dbless => Ok(()),
        _ if dbless => Err("expected one of: local, redis".into()),
        _ => Err("expected one of: local, cluster, redis".into()),
    }
}

/// Kong's `policy`: `local`, `cluster` (not DB-less) or `redis`.
pub fn policy() -> Field {
    Field::string().default("local").custom(known_policy)
}

/// Kong's shared `redis` record (`kong/tools/redis/schema.lua`) with its defaults, plus the
/// Enterprise fields Kong Gateway configs may carry (accepted; sentinel and cluster fields
/// have no effect).
pub fn redis() -> Field {
    let timeout = || Field::integer().between(0, 2_147_483_646).default(2000);
    Field::record(Record::new(vec![
        ("host", typedefs::host()),
        ("port", typedefs::port().default(6379)),
        ("timeout", timeout()),
        ("connect_timeout", timeout()),
        ("send_timeout", timeout()),
        ("read_timeout", timeout()),
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

/// Kong 3.x's deprecated flat fields and where they go (removal announced for 4.0).
const SHORTHANDS: [(&str, &str); 9] = [
    ("redis_host", "host"),
    ("redis_port", "port"),
    ("redis_password", "password"),
    ("redis_username", "username"),
    ("redis_ssl", "ssl"),
    ("redis_ssl_verify", "ssl_verify"),
    ("redis_server_name", "server_name"),
    ("redis_timeout", "timeout"),
    ("redis_database", "database"),
];

/// Moves `redis_host` ... `redis_database` into the `redis` record (a null leaves it as is).
pub fn expand_redis_shorthands(config: &mut Map) {
    for (flat, field) in SHORTHANDS {
        let Some(value) = config.remove(flat) else {
            continue;
        };
        if value.is_null() {
            continue;
        }
        let redis = config
            .entry("redis")
            .or_insert_with(|| Value::Object(Map::new()));
        if !redis.is_object() {
            *redis = Value::Object(Map::new());
        }
        if let Some(redis) = redis.as_object_mut() {
            redis.insert(field.to_string(), value);
        }
    }
}

/// Kong's entity checks: with the redis policy, `redis.host`, `.port` and `.timeout` are
/// required.
pub fn redis_checks() -> Vec<EntityCheck> {
    [
        "config.redis.host",
        "config.redis.port",
        "config.redis.timeout",
    ]
    .into_iter()
    .map(|then_field| EntityCheck::Conditional {
        if_field: "config.policy",
        if_match: Matcher::Eq(Value::from("redis")),
        then_field,
        then_match: Matcher::Required,
        then_err: None,
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn flat_redis_fields_land_in_the_record() {
        let mut m = json!({"redis_host": "r1", "redis_port": 6380, "redis": {"database": 2}, "redis_ssl": null});
        if let Some(m) = m.as_object_mut() {
            expand_redis_shorthands(m);
        }
        assert_eq!(
            m,
            json!({"redis": {"database": 2, "host": "r1", "port": 6380}})
        );
    }
}
