//! `plugins`: a plugin instance, its scope (route, service, consumer or global) and its config.

use super::{Context, EntitySchema, ForeignKey};
use crate::schema::{ErrorNode, Field, FieldErrors, Map, Record, Validator};
use crate::typedefs;
use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

#[derive(Debug, Clone, Deserialize)]
pub struct Plugin {
    pub id: Uuid,
    pub name: String,
    pub instance_name: Option<String>,
    pub route: Option<ForeignKey>,
    pub service: Option<ForeignKey>,
    pub consumer: Option<ForeignKey>,
    pub config: Value,
    pub protocols: Vec<String>,
    pub enabled: bool,
    pub tags: Option<Vec<String>>,
}

/// What the model needs to know about a plugin this build implements.
#[derive(Debug, Clone, Copy)]
pub struct PluginSchema<'a> {
    pub config: &'a Record,
    /// Protocols the plugin can run on.
    pub protocols: &'a [&'static str],
    /// Kong's `no_consumer`: authentication and similar plugins cannot be consumer-scoped.
    pub no_consumer: bool,
    pub no_route: bool,
    pub no_service: bool,
}

/// The plugins this build implements, looked up by Kong's plugin name.
pub trait PluginSchemas: Send + Sync {
    fn schema(&self, name: &str) -> Option<PluginSchema<'_>>;
    /// Every implemented plugin name, sorted.
    fn names(&self) -> Vec<&'static str>;
}

/// A registry with no plugins: every plugin entity is rejected.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoPlugins;

impl PluginSchemas for NoPlugins {
    fn schema(&self, _: &str) -> Option<PluginSchema<'_>> {
        None
    }
    fn names(&self) -> Vec<&'static str> {
        Vec::new()
    }
}

pub(super) fn schema() -> EntitySchema {
    EntitySchema {
        name: "plugins",
        endpoint_key: Some("instance_name"),
        cache_key: &["name", "route", "service", "consumer"],
        record: Record::new(vec![
            ("id", Field::id()),
            ("name", Field::string().required()),
            ("instance_name", typedefs::utf8_name()),
            ("created_at", Field::timestamp_s()),
            ("updated_at", Field::timestamp_s()),
            ("route", Field::foreign_cascade("routes").default_null()),
            ("service", Field::foreign_cascade("services").default_null()),
            (
                "consumer",
                Field::foreign_cascade("consumers").default_null(),
            ),
            ("config", Field::json()),
            ("protocols", typedefs::plugin_protocols()),
            ("enabled", Field::boolean().required().default(true)),
            ("tags", typedefs::tags()),
        ]),
        before: None,
        after: Some(validate_config),
        db_export: true,
        transform: None,
    }
}

/// Validates `config` against the plugin's own schema (filling its defaults) and the scope and
/// protocols against what the plugin allows. An unknown plugin is an error, never ignored.
fn validate_config(v: &Validator, ctx: &Context<'_>, map: &mut Map, errors: &mut FieldErrors) {
    let Some(name) = map.get("name").and_then(Value::as_str).map(str::to_string) else {
        return;
    };
    let Some(plugin) = ctx.plugins.schema(&name) else {
        let available = ctx.plugins.names();
        let list = if available.is_empty() {
            "none".to_string()
        } else {
            available.join(", ")
        };
        errors.field(
            "name",
            format!(
                "plugin '{name}' is not available in this build of Silverback (available: {list}); a config naming it is rejected rather than run without it"
            ),
        );
        return;
    };
    for (scope, forbidden) in [
        ("consumer", plugin.no_consumer),
        ("route", plugin.no_route),
        ("service", plugin.no_service),
    ] {
        if forbidden && !map.get(scope).is_none_or(Value::is_null) {
            errors.field(scope, "value must be null");
        }
    }
    if let Some(Value::Array(protocols)) = map.get("protocols") {
        for (i, p) in protocols.iter().enumerate() {
            if !p.as_str().is_some_and(|p| plugin.protocols.contains(&p)) {
                let mut items = std::collections::BTreeMap::new();
                items.insert(
                    i,
                    ErrorNode::Message(format!("expected one of: {}", plugin.protocols.join(", "))),
                );
                errors.node("protocols", ErrorNode::Items(items));
                break;
            }
        }
    }
    let config = map.entry("config").or_insert(Value::Null);
    if config.is_null() {
        *config = Value::Object(Map::new());
    }
    let Some(obj) = config.as_object_mut() else {
        errors.field("config", "expected a record");
        return;
    };
    let mut config_errors = FieldErrors::default();
    v.process(plugin.config, obj, &mut config_errors);
    if !config_errors.is_empty() {
        errors.node("config", ErrorNode::Fields(config_errors));
        return;
    }
    if let Some(check) = plugin.config.custom
        && let Err(e) = check(config)
    {
        errors.field("config", e);
        return;
    }
    for check in &plugin.config.plugin_checks {
        check.run(map, errors);
    }
}
