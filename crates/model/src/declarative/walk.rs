//! From the nested document to flat, validated rows.

use super::errors::{DeclarativeError, EntityErrors, InvalidConfig};
use super::ids::{self, Fallback};
use crate::Config;
use crate::entities::{Context, EntitySchema};
use crate::schema::{FieldErrors, Kind, Map, Validator};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};

/// One entity found in the file.
struct Node {
    schema: &'static EntitySchema,
    path: Vec<(String, usize)>,
    map: Map,
    parent: Option<usize>,
    errors: FieldErrors,
}

impl Node {
    fn id(&self) -> Option<&str> {
        self.map.get("id").and_then(Value::as_str)
    }

    fn name(&self) -> Option<String> {
        let key = self.schema.endpoint_key?;
        self.map
            .get(key)
            .and_then(Value::as_str)
            .map(str::to_string)
    }
}

pub(super) fn load_entities(
    doc: Map,
    ctx: &Context<'_>,
    now: i64,
    legacy_paths: bool,
    transform: bool,
) -> Result<Config, DeclarativeError> {
    let mut nodes = Vec::new();
    let mut invalid = InvalidConfig::default();
    for schema in crate::entities::exported() {
        if let Some(v) = doc.get(schema.name) {
            collect(schema, v, &[], None, &mut nodes, &mut invalid);
        }
    }
    if legacy_paths {
        for node in nodes.iter_mut().filter(|n| n.schema.name == "routes") {
            migrate_route_paths(&mut node.map);
        }
    }
    assign_ids(&mut nodes);
    link_parents(&mut nodes);
    resolve_references(&mut nodes);
    let validator = Validator::new(now);
    for node in &mut nodes {
        let mut result = node.schema.validate(&validator, ctx, &mut node.map);
        if result.is_ok() && transform {
            result = node.schema.transform(&mut node.map, &|_| true);
        }
        if let Err(e) = result {
            for (k, v) in e.0 {
                node.errors.0.entry(k).or_insert(v);
            }
        }
    }
    check_unique_fields(&mut nodes);
    for node in &nodes {
        if !node.errors.is_empty() {
            invalid.entity(EntityErrors {
                path: node.path.clone(),
                entity_type: node.schema.name,
                name: node.name(),
                id: node.id().map(str::to_string),
                errors: node.errors.clone(),
            });
        }
    }
    if !invalid.is_empty() {
        return Err(DeclarativeError::Invalid(invalid));
    }
    let mut rows: BTreeMap<&'static str, Vec<Map>> = BTreeMap::new();
    for node in nodes {
        rows.entry(node.schema.name).or_default().push(node.map);
    }
    Ok(Config::from_rows(rows))
}

/// Entity types that may be nested under `parent` (those with a reference to it).
fn children_of(parent: &str) -> impl Iterator<Item = (&'static EntitySchema, &'static str)> + '_ {
    crate::entities::exported().filter_map(move |c| ids::child_key(c, parent).map(|k| (c, k)))
}

fn collect(
    schema: &'static EntitySchema,
    value: &Value,
    prefix: &[(String, usize)],
    parent: Option<usize>,
    nodes: &mut Vec<Node>,
    invalid: &mut InvalidConfig,
) {
    let items = match value {
        Value::Null => return,
        Value::Array(a) => a,
        _ => {
            let mut e = FieldErrors::default();
            e.field(schema.name, "expected an array");
            match prefix.split_last() {
                // Nested under an entity: report on that entity.
                Some(_) => invalid.entity(EntityErrors {
                    path: prefix.to_vec(),
                    entity_type: schema.name,
                    name: None,
                    id: None,
                    errors: e,
                }),
                None => invalid.top(schema.name, "expected an array"),
            }
            return;
        }
    };
    for (i, item) in items.iter().enumerate() {
        let mut path = prefix.to_vec();
        path.push((schema.name.to_string(), i));
        let mut errors = FieldErrors::default();
        let mut map = match item {
            Value::Object(m) => m.clone(),
            // `snis: [a.example.com]` under certificates.
            Value::String(s) if schema.name == "snis" && parent.is_some() => {
                let mut m = Map::new();
                m.insert("name".into(), s.clone().into());
                m
            }
            _ => {
                errors.entity("expected a record");
                Map::new()
            }
        };
        let mut children = Vec::new();
        for (child, _) in children_of(schema.name) {
            if let Some(v) = map.remove(child.name) {
                children.push((child, v));
            }
        }
        if let Some(p) = parent {
            let parent_name = nodes[p].schema.name;
            if let Some(fk) = ids::child_key(schema, parent_name)
                && map.contains_key(fk)
            {
                errors.field(fk, "unknown field");
            }
        }
        let idx = nodes.len();
        nodes.push(Node {
            schema,
            path: path.clone(),
            map,
            parent,
            errors,
        });
        for (child, v) in children {
            collect(child, &v, &path, Some(idx), nodes, invalid);
        }
    }
}

/// Formats 1.1 and 2.1 wrote regex paths without `~`; Kong converts them on load.
fn migrate_route_paths(route: &mut Map) {
    let Some(Value::Array(paths)) = route.get_mut("paths") else {
        return;
    };
    for p in paths.iter_mut() {
        let Some(s) = p.as_str() else { continue };
        if s.starts_with('~') {
            continue;
        }
        let plain = s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-_~/%".contains(&b));
        *p = if plain {
            Value::from(silverback_router::normalize_path(s).into_owned())
        } else {
            Value::from(format!("~{}", decode_regex_percent(s)))
        };
    }
}

/// Percent-decoding of a legacy regex path: reserved characters stay encoded (upper-cased),
/// regex metacharacters are decoded escaped.
fn decode_regex_percent(s: &str) -> String {
    const RESERVED: &[u8] = b"!#$%&'()*+,/:;=?@[]";
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && b[i + 1].is_ascii_hexdigit()
            && b[i + 2].is_ascii_hexdigit()
            && let Ok(n) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            if RESERVED.contains(&n) {
                out.push_str(&s[i..i + 3].to_ascii_uppercase());
            } else if b".^-{}\\|".contains(&n) {
                out.push('\\');
                out.push(n as char);
            } else {
                out.push(n as char);
            }
            i += 3;
            continue;
        }
        let ch = s[i..].chars().next().unwrap_or_default();
        out.push(ch);
        i += ch.len_utf8().max(1);
    }
    out
}

fn assign_ids(nodes: &mut [Node]) {
    let mut fallback = Fallback::default();
    for i in 0..nodes.len() {
        if nodes[i].map.get("id").is_some_and(|v| !v.is_null()) {
            continue;
        }
        let (parent_id, child_key) = match nodes[i].parent {
            Some(p) => (
                nodes[p].id().map(str::to_string),
                ids::child_key(nodes[i].schema, nodes[p].schema.name),
            ),
            None => (None, None),
        };
        let node = &nodes[i];
        let id = match ids::kong_key(node.schema, &node.map, parent_id.as_deref(), child_key) {
            Some(key) => ids::kong_id(node.schema.name, &key),
            None => fallback.id(node.schema.name, &node.map, parent_id.as_deref()),
        };
        nodes[i].map.insert("id".into(), id.to_string().into());
    }
}

/// Nested entities reference their parent.
fn link_parents(nodes: &mut [Node]) {
    for i in 0..nodes.len() {
        let Some(p) = nodes[i].parent else { continue };
        let Some(fk) = ids::child_key(nodes[i].schema, nodes[p].schema.name) else {
            continue;
        };
        if let Some(pid) = nodes[p].id().map(str::to_string) {
            nodes[i].map.insert(fk.into(), json!({ "id": pid }));
        }
    }
}

/// Indexes every entity by id and by endpoint key, reports duplicates, and replaces references
/// given by name or id with `{"id": ...}`.
fn resolve_references(nodes: &mut [Node]) {
    let mut by_id: HashMap<(&str, String), usize> = HashMap::new();
    let mut by_key: HashMap<(&str, String), usize> = HashMap::new();
    for (i, node) in nodes.iter_mut().enumerate() {
        let schema = node.schema;
        if let Some(key_field) = schema.endpoint_key
            && schema.record.field(key_field).is_some_and(|f| f.unique)
            && let Some(key) = node.map.get(key_field).and_then(Value::as_str)
        {
            let key = key.to_string();
            if by_key.contains_key(&(schema.name, key.clone())) {
                node.errors.entity(format!(
                    "uniqueness violation: '{}' entity with {key_field} set to '{key}' already declared",
                    schema.name
                ));
                continue;
            }
            by_key.insert((schema.name, key), i);
        }
        if let Some(id) = node.id().map(str::to_string) {
            if by_id.contains_key(&(schema.name, id.clone())) {
                node.errors.entity(format!(
                    "uniqueness violation: '{}' entity with primary key set to '{id}' already declared",
                    schema.name
                ));
            } else {
                by_id.insert((schema.name, id), i);
            }
        }
    }
    let find = |entity: &str, key: &str| {
        by_key
            .get(&(entity, key.to_string()))
            .or_else(|| by_id.get(&(entity, key.to_string())))
            .copied()
    };
    let mut resolved: Vec<(usize, &'static str, Result<String, String>)> = Vec::new();
    for (i, node) in nodes.iter().enumerate() {
        for (field, reference, _) in node.schema.foreign_fields() {
            let key = match node.map.get(field) {
                None | Some(Value::Null) => continue,
                Some(Value::String(s)) => s.clone(),
                Some(Value::Object(o)) => match o.get("id").and_then(Value::as_str) {
                    Some(id) => id.to_string(),
                    None => Value::Object(o.clone()).to_string(),
                },
                Some(other) => other.to_string(),
            };
            let result = match find(reference, &key) {
                Some(j) => Ok(nodes[j].id().unwrap_or_default().to_string()),
                None => Err(format!(
                    "invalid reference '{field}: {key}' (no such entry in '{reference}')"
                )),
            };
            resolved.push((i, field, result));
        }
        if node.schema.name == "services"
            && let Some(Value::Array(cas)) = node.map.get("ca_certificates")
        {
            for ca in cas.iter().filter_map(Value::as_str) {
                if find("ca_certificates", ca).is_none() {
                    resolved.push((
                        i,
                        "ca_certificates",
                        Err(format!(
                            "invalid reference 'ca_certificates: {ca}' (no such entry in 'ca_certificates')"
                        )),
                    ));
                }
            }
        }
    }
    for (i, field, result) in resolved {
        match result {
            Ok(id) => {
                nodes[i].map.insert(field.into(), json!({ "id": id }));
            }
            Err(msg) => {
                // Reported once as a reference error, not again by the schema.
                nodes[i].map.insert(field.into(), Value::Null);
                nodes[i].errors.entity(msg);
            }
        }
    }
}

/// Unique fields other than the endpoint key (consumers' `custom_id`, ...).
fn check_unique_fields(nodes: &mut [Node]) {
    let mut seen: HashMap<(&str, &str, String), usize> = HashMap::new();
    let mut dups = Vec::new();
    for (i, node) in nodes.iter().enumerate() {
        for (name, field) in &node.schema.record.fields {
            if !field.unique || Some(*name) == node.schema.endpoint_key {
                continue;
            }
            if matches!(field.kind, Kind::Foreign { .. }) {
                continue;
            }
            let Some(v) = node.map.get(*name).filter(|v| !v.is_null()) else {
                continue;
            };
            let text = v.as_str().map_or_else(|| v.to_string(), str::to_string);
            if seen
                .insert((node.schema.name, name, text.clone()), i)
                .is_some()
            {
                dups.push((i, *name, text));
            }
        }
    }
    for (i, name, text) in dups {
        let entity = nodes[i].schema.name;
        nodes[i].errors.entity(format!(
            "uniqueness violation: '{entity}' entity with {name} set to '{text}' already declared"
        ));
    }
}
