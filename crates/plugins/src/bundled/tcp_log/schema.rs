//! tcp-log's config (Kong 3.x `kong/plugins/tcp-log/schema.lua`).

use super::super::log_schema;
use silverback_model::schema::{Field, Record};
use silverback_model::typedefs;

pub fn config() -> Record {
    Record::new(vec![
        ("host", typedefs::host().required()),
        ("port", typedefs::port().required()),
        ("timeout", Field::number().default(10000)),
        ("keepalive", Field::number().default(60000)),
        ("tls", Field::boolean().required().default(false)),
        ("tls_sni", Field::string()),
        ("custom_fields_by_lua", log_schema::custom_fields_by_lua()),
    ])
}
