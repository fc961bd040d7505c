//! Kong's bundled plugins, one module each (Kong's `kong/plugins/<name>/`): `schema.rs` holds
//! the config record, `mod.rs` the handler.

mod key_auth;
mod oauth2;

use crate::registry::PluginDef;

/// Every plugin of this build.
pub(crate) fn all() -> Vec<PluginDef> {
    vec![key_auth::definition(), oauth2::definition()]
}
