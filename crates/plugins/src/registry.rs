//! The plugins this build implements: one list, in one place ([`BUNDLED`]).

use crate::handler::{Handler, Phases};
use serde_json::Value;
use silverback_model::Row;
use silverback_model::entities::{PluginSchema, PluginSchemas};
use silverback_model::schema::Record;
use std::any::Any;
use std::sync::{Arc, LazyLock};

/// A plugin type: its identity, ordering, where it may be scoped, its schema and constructor
/// (Kong's `handler.lua` PRIORITY and `schema.lua`, side by side in the plugin's module).
pub struct PluginDef {
    pub name: &'static str,
    /// Higher runs first, as Kong's `PRIORITY`.
    pub priority: i32,
    pub protocols: &'static [&'static str],
    pub no_consumer: bool,
    pub no_route: bool,
    pub no_service: bool,
    /// The `config` record: fields, defaults, checks.
    pub config: fn() -> Record,
    /// The phases its handler implements.
    pub phases: Phases,
    /// Builds an instance from a validated config (defaults filled in).
    pub build: fn(&Value) -> Result<Arc<dyn Handler>, String>,
    /// A lookup table over an entity's rows (credentials), built once per config and shared by
    /// all instances; read at request time through [`crate::Directory::index`].
    pub index: Option<IndexDef>,
}

impl std::fmt::Debug for PluginDef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginDef")
            .field("name", &self.name)
            .field("priority", &self.priority)
            .finish_non_exhaustive()
    }
}

/// An index a plugin keeps over an entity (key-auth: credentials by key).
#[derive(Debug, Clone, Copy)]
pub struct IndexDef {
    pub entity: &'static str,
    pub build: fn(&[Arc<Row>]) -> Arc<dyn Any + Send + Sync>,
}

/// Every bundled plugin, each entry from the plugin's own module.
pub static BUNDLED: LazyLock<Registry> = LazyLock::new(|| Registry::new(crate::bundled::all()));

pub struct Registry {
    plugins: Vec<(PluginDef, Record)>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.plugins.iter().map(|p| p.0.name))
            .finish()
    }
}

impl Registry {
    pub fn new(defs: Vec<PluginDef>) -> Self {
        Registry {
            plugins: defs
                .into_iter()
                .map(|d| {
                    let config = (d.config)();
                    (d, config)
                })
                .collect(),
        }
    }

    pub fn get(&self, name: &str) -> Option<&PluginDef> {
        self.plugins.iter().find(|p| p.0.name == name).map(|p| &p.0)
    }

    pub fn iter(&self) -> impl Iterator<Item = &PluginDef> {
        self.plugins.iter().map(|p| &p.0)
    }
}

impl PluginSchemas for Registry {
    fn schema(&self, name: &str) -> Option<PluginSchema<'_>> {
        self.plugins
            .iter()
            .find(|p| p.0.name == name)
            .map(|(p, config)| PluginSchema {
                config,
                protocols: p.protocols,
                no_consumer: p.no_consumer,
                no_route: p.no_route,
                no_service: p.no_service,
            })
    }

    fn names(&self) -> Vec<&'static str> {
        let mut names: Vec<_> = self.plugins.iter().map(|p| p.0.name).collect();
        names.sort_unstable();
        names
    }
}

/// A plugin's `config` input checked against its record: defaults filled in, or Kong's errors
/// as JSON (the schema unit tests of every plugin).
#[cfg(test)]
pub(crate) fn validate_config(record: &Record, input: Value) -> Result<Value, Value> {
    use silverback_model::schema::{FieldErrors, Validator};
    let mut map = input.as_object().cloned().unwrap_or_default();
    let mut errors = FieldErrors::default();
    Validator::new(0).process(record, &mut map, &mut errors);
    if errors.is_empty() {
        Ok(Value::Object(map))
    } else {
        Err(errors.to_json())
    }
}
