//! udp-log's config (Kong 3.x `kong/plugins/udp-log/schema.lua`).

use super::super::log_schema;
use silverback_model::schema::{Field, Record};
use silverback_model::typedefs;

pub fn config() -> Record {
    Record::new(vec![
        ("host", typedefs::host().required()),
        ("port", typedefs::port().required()),
        ("timeout", Field::number().default(10000)),
        ("custom_fields_by_lua", log_schema::custom_fields_by_lua()),
    ])
}
