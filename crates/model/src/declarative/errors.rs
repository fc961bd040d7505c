//! Errors of a declarative file: where each one is (entity path and field) and Kong's body.

use crate::schema::FieldErrors;
use serde_json::{Map, Value, json};

#[derive(Debug, Clone, thiserror::Error)]
pub enum DeclarativeError {
    /// The text is not YAML/JSON of the right overall shape.
    #[error("failed parsing declarative configuration: {0}")]
    Parse(String),
    #[error("{0}")]
    Invalid(InvalidConfig),
}

impl DeclarativeError {
    /// One line per problem, each naming the entity path and field.
    pub fn lines(&self) -> Vec<String> {
        match self {
            DeclarativeError::Parse(m) => vec![m.clone()],
            DeclarativeError::Invalid(i) => i.lines(),
        }
    }

    /// Kong's error body for `POST /config` (code 14).
    pub fn to_kong_json(&self) -> Value {
        match self {
            DeclarativeError::Parse(m) => json!({
                "code": 14,
                "name": "invalid declarative configuration",
                "message": format!("failed parsing declarative configuration: {m}"),
                "fields": {},
                "flattened_errors": [],
            }),
            DeclarativeError::Invalid(i) => i.to_kong_json(),
        }
    }
}

/// The errors of one entity in the file.
#[derive(Debug, Clone)]
pub struct EntityErrors {
    /// Where it is in the file, e.g. `services[0].routes[1]`.
    pub path: Vec<(String, usize)>,
    pub entity_type: &'static str,
    pub name: Option<String>,
    pub id: Option<String>,
    pub errors: FieldErrors,
}

impl EntityErrors {
    pub fn path_string(&self) -> String {
        self.path
            .iter()
            .map(|(k, i)| format!("{k}[{i}]"))
            .collect::<Vec<_>>()
            .join(".")
    }
}

/// Everything wrong with a declarative file.
#[derive(Debug, Clone, Default)]
pub struct InvalidConfig {
    /// Errors of top-level keys.
    pub top: FieldErrors,
    pub entities: Vec<EntityErrors>,
}

impl InvalidConfig {
    pub fn is_empty(&self) -> bool {
        self.top.is_empty() && self.entities.is_empty()
    }

    pub fn top(&mut self, key: &str, msg: &str) {
        self.top.field(key, msg);
    }

    /// Adds errors for an entity, merging with earlier ones for the same place.
    pub fn entity(&mut self, e: EntityErrors) {
        if let Some(existing) = self.entities.iter_mut().find(|x| x.path == e.path) {
            for (k, v) in e.errors.0 {
                existing.errors.0.entry(k).or_insert(v);
            }
        } else {
            self.entities.push(e);
        }
    }

    /// Adds everything `other` found; for a field reported by both, the first report wins.
    pub fn merge(&mut self, other: InvalidConfig) {
        for (k, v) in other.top.0 {
            self.top.node(&k, v);
        }
        for e in other.entities {
            self.entity(e);
        }
    }

    pub fn lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut flat = Vec::new();
        self.top.flatten("", &mut flat);
        for (path, msg) in flat {
            out.push(format!("{path}: {msg}"));
        }
        for e in &self.entities {
            let mut flat = Vec::new();
            e.errors.flatten("", &mut flat);
            let who = match (&e.name, &e.id) {
                (Some(n), _) => format!(" ({} '{n}')", singular(e.entity_type)),
                (None, Some(id)) => format!(" ({} {id})", singular(e.entity_type)),
                _ => String::new(),
            };
            let at = e.path_string();
            for (field, msg) in flat {
                if field.is_empty() {
                    out.push(format!("{at}{who}: {msg}"));
                } else {
                    out.push(format!("{at}{who}: {field}: {msg}"));
                }
            }
        }
        out
    }

    /// Kong's nested `fields` tree: `{"services": [{"routes": [null, {"paths": [...]}]}]}`.
    fn fields_tree(&self) -> Value {
        let mut root = match self.top.to_json() {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        for e in &self.entities {
            let leaf = e.errors.to_json();
            insert_at(&mut root, &e.path, leaf);
        }
        Value::Object(root)
    }

    fn flattened(&self) -> Value {
        let items: Vec<Value> = self
            .entities
            .iter()
            .map(|e| {
                let mut flat = Vec::new();
                e.errors.flatten("", &mut flat);
                let errors: Vec<Value> = flat
                    .into_iter()
                    .map(|(field, message)| {
                        if field.is_empty() {
                            json!({"type": "entity", "message": message})
                        } else {
                            json!({"type": "field", "field": field, "message": message})
                        }
                    })
                    .collect();
                json!({
                    "entity_type": singular(e.entity_type),
                    "entity_name": e.name,
                    "entity_id": e.id,
                    "entity_path": e.path_string(),
                    "errors": errors,
                })
            })
            .collect();
        Value::Array(items)
    }

    pub fn to_kong_json(&self) -> Value {
        let fields = self.fields_tree();
        json!({
            "code": 14,
            "name": "invalid declarative configuration",
            "message": format!("declarative config is invalid: {fields}"),
            "fields": fields,
            "flattened_errors": self.flattened(),
        })
    }
}

impl std::fmt::Display for InvalidConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "declarative config is invalid:")?;
        for l in self.lines() {
            write!(f, "\n  {l}")?;
        }
        Ok(())
    }
}

/// `services` → `service`, as Kong names entity types in flattened errors.
fn singular(entity: &str) -> &str {
    match entity {
        "ca_certificates" => "ca_certificate",
        e => e.strip_suffix('s').unwrap_or(e),
    }
}

fn insert_at(root: &mut Map<String, Value>, path: &[(String, usize)], leaf: Value) {
    let Some(((key, idx), rest)) = path.split_first() else {
        return;
    };
    let arr = root
        .entry(key.clone())
        .or_insert_with(|| Value::Array(Vec::new()));
    if !arr.is_array() {
        *arr = Value::Array(Vec::new());
    }
    let Some(arr) = arr.as_array_mut() else {
        return;
    };
    if arr.len() <= *idx {
        arr.resize(*idx + 1, Value::Null);
    }
    let slot = &mut arr[*idx];
    if !slot.is_object() {
        *slot = Value::Object(Map::new());
    }
    let Some(obj) = slot.as_object_mut() else {
        return;
    };
    if rest.is_empty() {
        if let Value::Object(m) = leaf {
            for (k, v) in m {
                obj.insert(k, v);
            }
        }
    } else {
        insert_at(obj, rest, leaf);
    }
}
