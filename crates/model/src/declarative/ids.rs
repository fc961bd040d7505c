//! Deterministic ids for entities declared without one.
//!
//! Where Kong derives a UUIDv5 (from the endpoint key or the cache key) we derive the same one, so
//! a file gives the same ids in Kong and in Silverback. Where Kong would pick a random id (an
//! unnamed route, say) we derive one from the entity's content and its parent instead, so that
//! the same file always yields the same ids.

use crate::entities::EntitySchema;
use crate::schema::{Kind, Map};
use serde_json::Value;
use std::collections::HashMap;
use uuid::Uuid;

/// Kong's namespace for declarative entity ids.
const ENTITIES_NAMESPACE: Uuid = Uuid::from_u128(0xfd02801f_0957_4a15_a55a_c8d9606f30b5);

fn namespace(entity: &str) -> Uuid {
    Uuid::new_v5(&ENTITIES_NAMESPACE, entity.as_bytes())
}

/// The id Kong generates for an entity of this type with this key.
pub fn kong_id(entity: &str, key: &str) -> Uuid {
    Uuid::new_v5(&namespace(entity), key.as_bytes())
}

/// Kong's key for id generation (`get_key_for_uuid_gen`); `None` where Kong would use a random id.
pub fn kong_key(
    schema: &EntitySchema,
    item: &Map,
    parent_id: Option<&str>,
    child_key: Option<&str>,
) -> Option<String> {
    if !schema.cache_key.is_empty() {
        // Kong's workspace marker in declarative mode is "*".
        let mut parts = vec![schema.name.to_string(), "*".to_string()];
        for k in schema.cache_key {
            let field = schema.record.field(k)?;
            if field.auto {
                return None;
            }
            match item.get(*k) {
                Some(Value::String(s)) => parts.push(s.clone()),
                None if Some(*k) == child_key => parts.push(parent_id?.to_string()),
                None if field.required => return None,
                None => parts.push(String::new()),
                // Tables and explicit nulls add nothing, as in Kong.
                Some(_) => {}
            }
        }
        return Some(parts.join(":"));
    }
    let key = schema.endpoint_key?;
    match item.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Gives ids to entities Kong would leave to chance, from their content and parent.
#[derive(Default)]
pub struct Fallback {
    seen: HashMap<String, usize>,
}

impl Fallback {
    pub fn id(&mut self, entity: &str, item: &Map, parent_id: Option<&str>) -> Uuid {
        let content = serde_json::to_string(&sorted(item)).unwrap_or_default();
        let base = format!("silverback:{}:{content}", parent_id.unwrap_or(""));
        let n = self.seen.entry(format!("{entity}|{base}")).or_insert(0);
        let key = format!("{base}#{n}");
        *n += 1;
        Uuid::new_v5(&namespace(entity), key.as_bytes())
    }
}

fn sorted(item: &Map) -> std::collections::BTreeMap<&String, &Value> {
    item.iter().collect()
}

/// The name of the field of `child` that references `parent` (`service` for routes in services).
pub fn child_key(child: &EntitySchema, parent: &str) -> Option<&'static str> {
    child
        .record
        .fields
        .iter()
        .find_map(|(name, f)| match f.kind {
            Kind::Foreign { reference, .. } if reference == parent => Some(*name),
            _ => None,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entities::schema;
    use serde_json::json;

    #[test]
    fn ids_match_kong_for_named_entities() {
        // Kong derives v5(v5(ns, "services"), name): check the structure is stable.
        let svc = schema("services").unwrap();
        let item = json!({"name": "example-service"})
            .as_object()
            .unwrap()
            .clone();
        let key = kong_key(svc, &item, None, None).unwrap();
        assert_eq!(key, "example-service");
        assert_eq!(
            kong_id("services", &key),
            kong_id("services", "example-service")
        );
        assert_ne!(kong_id("services", &key), kong_id("routes", &key));
    }

    #[test]
    fn plugin_cache_key_uses_parent() {
        let plugins = schema("plugins").unwrap();
        let item = json!({"name": "key-auth"}).as_object().unwrap().clone();
        let key = kong_key(plugins, &item, Some("SVC"), Some("service")).unwrap();
        assert_eq!(key, "plugins:*:key-auth::SVC:");
        // Without a parent id Kong gives up (random id): so do we, and the fallback takes over.
        assert_eq!(kong_key(plugins, &item, None, Some("service")), None);
    }

    #[test]
    fn fallback_is_deterministic_and_distinct() {
        let item = json!({"paths": ["/a"]}).as_object().unwrap().clone();
        let (mut a, mut b) = (Fallback::default(), Fallback::default());
        let first = a.id("routes", &item, Some("p"));
        assert_eq!(first, b.id("routes", &item, Some("p")));
        assert_ne!(
            first,
            a.id("routes", &item, Some("p")),
            "duplicates get distinct ids"
        );
    }
}
