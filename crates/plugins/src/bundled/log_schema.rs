//! Config fields the log plugins share: Kong's `queue` record (`typedefs.queue`) and
//! `custom_fields_by_lua`, which this gateway cannot run.

use serde_json::Value;
use silverback_model::schema::{Field, Record};

/// Kong's `queue` record with its defaults.
pub(crate) fn queue() -> Field {
    Field::record(queue_record()).required()
}

/// The `queue` record of a plugin that declares its own default for it (opentelemetry:
/// `{max_batch_size = 200}`): used when `queue` is absent; a given `queue` record gets the
/// record's own defaults, as in Kong.
pub(crate) fn queue_with_default(default: Value) -> Field {
    Field::record(queue_record()).required().default(default)
}

fn queue_record() -> Record {
    Record::new(vec![
        (
            "max_batch_size",
            Field::integer().default(1).between(1, 1_000_000),
        ),
        (
            "max_coalescing_delay",
            between(Field::number().default(1), 0.0, 3600.0),
        ),
        (
            "max_entries",
            Field::integer().default(10_000).between(1, 1_000_000),
        ),
        ("max_bytes", Field::integer()),
        ("max_retry_time", Field::number().default(60)),
        (
            "initial_retry_delay",
            between(Field::number().default(0.01), 0.001, 1_000_000.0),
        ),
        (
            "max_retry_delay",
            between(Field::number().default(60), 0.001, 1_000_000.0),
        ),
        (
            "concurrency_limit",
            Field::integer().default(1).one_of([-1, 1]),
        ),
    ])
}

fn between(f: Field, min: f64, max: f64) -> Field {
    f.check(silverback_model::schema::Check::Between(min, max))
}

/// `custom_fields_by_lua`: Kong runs each value as Lua to set a log field. There is no Lua
/// here, so a non-empty map is refused rather than silently ignored.
pub(crate) fn custom_fields_by_lua() -> Field {
    Field::map(Field::string(), Field::string()).custom(no_lua)
}

fn no_lua(v: &Value) -> Result<(), String> {
    match v {
        Value::Object(m) if !m.is_empty() => Err(
            "custom_fields_by_lua is not supported: Silverback does not run Lua code; \
             remove the field or leave it empty"
                .into(),
        ),
        _ => Ok(()),
    }
}
