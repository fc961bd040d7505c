//! Kong's bundled plugins, one module each (Kong's `kong/plugins/<name>/`): `schema.rs` holds
//! the config record, `mod.rs` the handler.

mod acl;
mod auth;
mod basic_auth;
mod hmac_auth;
mod jwt;
mod key_auth;

use crate::registry::PluginDef;

/// Every plugin of this build.
pub(crate) fn all() -> Vec<PluginDef> {
    vec![
        jwt::definition(),
        key_auth::definition(),
        basic_auth::definition(),
        hmac_auth::definition(),
        acl::definition(),
    ]
}
