//! ip-restriction's config (Kong 3.x `kong/plugins/ip-restriction/schema.lua`).

use serde::Deserialize;
use silverback_model::schema::{EntityCheck, Field, Record};
use silverback_model::typedefs;

#[derive(Debug, Clone, Deserialize)]
pub struct IpRestrictionConfig {
    pub allow: Option<Vec<String>>,
    pub deny: Option<Vec<String>>,
    pub status: Option<f64>,
    pub message: Option<String>,
}

pub fn config() -> Record {
    let ip_or_cidr = || Field::string().custom(typedefs::validate_ip_or_cidr);
    Record::new(vec![
        ("allow", Field::array(ip_or_cidr())),
        ("deny", Field::array(ip_or_cidr())),
        ("status", Field::number()),
        ("message", Field::string()),
    ])
    .with_plugin_checks(vec![EntityCheck::AtLeastOneOf(vec![
        "config.allow",
        "config.deny",
    ])])
}
