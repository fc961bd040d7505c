//! The plugins this build implements: one list, in one place.

use crate::phase::Handler;
use serde_json::Value;
use silverback_model::entities::{PluginSchema, PluginSchemas};
use silverback_model::schema::Record;
use std::sync::{Arc, LazyLock};

/// A plugin type: its identity, ordering, where it may be scoped, its schema and constructor.
pub struct PluginDef {
    pub name: &'static str,
    /// Higher runs first, as Kong's `PRIORITY`.
    pub priority: i32,
    pub protocols: &'static [&'static str],
    pub no_consumer: bool,
    pub no_route: bool,
    pub no_service: bool,
    pub config: Record,
    /// Builds an instance from a validated config (defaults filled).
    pub build: fn(&Value) -> Result<Arc<dyn Handler>, String>,
}

/// Every bundled plugin. Each entry comes from the plugin's own module.
pub static BUNDLED: LazyLock<Registry> = LazyLock::new(|| Registry {
    plugins: Vec::new(),
});

pub struct Registry {
    plugins: Vec<PluginDef>,
}

impl Registry {
    pub fn get(&self, name: &str) -> Option<&PluginDef> {
        self.plugins.iter().find(|p| p.name == name)
    }

    pub fn iter(&self) -> impl Iterator<Item = &PluginDef> {
        self.plugins.iter()
    }
}

impl PluginSchemas for Registry {
    fn schema(&self, name: &str) -> Option<PluginSchema<'_>> {
        self.get(name).map(|p| PluginSchema {
            config: &p.config,
            protocols: p.protocols,
            no_consumer: p.no_consumer,
            no_route: p.no_route,
            no_service: p.no_service,
        })
    }

    fn names(&self) -> Vec<&'static str> {
        let mut names: Vec<_> = self.plugins.iter().map(|p| p.name).collect();
        names.sort_unstable();
        names
    }
}
