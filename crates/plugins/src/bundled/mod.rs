//! Kong's bundled plugins, one module each (Kong's `kong/plugins/<name>/`): `schema.rs` holds
//! the config record, `mod.rs` the handler.

mod bot_detection;
mod cors;
mod ip_restriction;
mod key_auth;
mod rate_limiting;
mod request_size_limiting;
mod request_termination;

use crate::registry::PluginDef;

/// Every plugin of this build.
pub(crate) fn all() -> Vec<PluginDef> {
    vec![
        bot_detection::definition(),
        cors::definition(),
        ip_restriction::definition(),
        key_auth::definition(),
        rate_limiting::definition(),
        request_size_limiting::definition(),
        request_termination::definition(),
    ]
}
