//! Validation errors shaped like Kong's: a tree keyed by field name, `@entity` for checks that
//! concern several fields, and Kong's one-line summary.

use serde_json::{Value, json};
use std::collections::BTreeMap;

/// Key under which errors that are not about one field are kept, as in Kong.
pub const ENTITY: &str = "@entity";

/// Errors of one field, of the elements of an array, or of a nested record.
#[derive(Debug, Clone, PartialEq)]
pub enum ErrorNode {
    Message(String),
    /// Entity-level messages (`@entity`).
    Messages(Vec<String>),
    Fields(FieldErrors),
    /// Errors by element position (0-based).
    Items(BTreeMap<usize, ErrorNode>),
}

/// Errors by field name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FieldErrors(pub BTreeMap<String, ErrorNode>);

impl FieldErrors {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Records an error for a field; the first error of a field wins, as in Kong.
    pub fn field(&mut self, name: &str, msg: impl Into<String>) {
        self.0
            .entry(name.to_string())
            .or_insert_with(|| ErrorNode::Message(msg.into()));
    }

    pub fn node(&mut self, name: &str, node: ErrorNode) {
        self.0.entry(name.to_string()).or_insert(node);
    }

    /// Records an error about the entity as a whole.
    pub fn entity(&mut self, msg: impl Into<String>) {
        let msg = msg.into();
        match self
            .0
            .entry(ENTITY.to_string())
            .or_insert_with(|| ErrorNode::Messages(Vec::new()))
        {
            ErrorNode::Messages(v) => {
                if !v.contains(&msg) {
                    v.push(msg)
                }
            }
            other => *other = ErrorNode::Messages(vec![msg]),
        }
    }

    pub fn has(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }

    /// The `fields` object of Kong's error body.
    pub fn to_json(&self) -> Value {
        Value::Object(
            self.0
                .iter()
                .map(|(k, v)| (k.clone(), v.to_json()))
                .collect(),
        )
    }

    /// Kong's summary: `2 schema violations (host: required field missing; path: ...)`.
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        if let Some(ErrorNode::Messages(v)) = self.0.get(ENTITY) {
            parts.extend(v.iter().cloned());
        }
        for (name, node) in &self.0 {
            if name == ENTITY {
                continue;
            }
            match node {
                ErrorNode::Message(m) => parts.push(format!("{name}: {m}")),
                ErrorNode::Messages(v) => {
                    parts.extend(v.iter().map(|m| format!("{name}: {m}")));
                }
                ErrorNode::Fields(sub) => {
                    for (k, v) in &sub.0 {
                        parts.push(format!("{name}.{k}: {}", v.inline()));
                    }
                }
                ErrorNode::Items(items) => {
                    // Kong numbers array elements from 1.
                    for (i, v) in items {
                        parts.push(format!("{name}.{}: {}", i + 1, v.inline()));
                    }
                }
            }
        }
        if parts.len() == 1 {
            format!("schema violation ({})", parts[0])
        } else {
            format!("{} schema violations ({})", parts.len(), parts.join("; "))
        }
    }

    /// One `path: message` line per error, for command-line output.
    pub fn flatten(&self, prefix: &str, out: &mut Vec<(String, String)>) {
        for (name, node) in &self.0 {
            let path = if name == ENTITY {
                prefix.to_string()
            } else if prefix.is_empty() {
                name.clone()
            } else {
                format!("{prefix}.{name}")
            };
            node.flatten(&path, out);
        }
    }
}

impl ErrorNode {
    pub fn to_json(&self) -> Value {
        match self {
            ErrorNode::Message(m) => Value::String(m.clone()),
            ErrorNode::Messages(v) => json!(v),
            ErrorNode::Fields(f) => f.to_json(),
            ErrorNode::Items(items) => {
                let len = items.keys().next_back().map_or(0, |k| k + 1);
                let mut arr = vec![Value::Null; len];
                for (i, v) in items {
                    if let Some(slot) = arr.get_mut(*i) {
                        *slot = v.to_json();
                    }
                }
                Value::Array(arr)
            }
        }
    }

    fn inline(&self) -> String {
        match self {
            ErrorNode::Message(m) => m.clone(),
            other => other.to_json().to_string(),
        }
    }

    fn flatten(&self, path: &str, out: &mut Vec<(String, String)>) {
        match self {
            ErrorNode::Message(m) => out.push((path.to_string(), m.clone())),
            ErrorNode::Messages(v) => {
                out.extend(v.iter().map(|m| (path.to_string(), m.clone())));
            }
            ErrorNode::Fields(f) => f.flatten(path, out),
            ErrorNode::Items(items) => {
                for (i, v) in items {
                    v.flatten(&format!("{path}[{i}]"), out);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_matches_kong() {
        let mut e = FieldErrors::default();
        e.field("host", "required field missing");
        e.field("path", "should start with: /");
        assert_eq!(
            e.summary(),
            "2 schema violations (host: required field missing; path: should start with: /)"
        );
        let mut one = FieldErrors::default();
        one.entity("at least one of these fields must be non-empty: 'custom_id', 'username'");
        assert_eq!(
            one.summary(),
            "schema violation (at least one of these fields must be non-empty: 'custom_id', 'username')"
        );
    }

    #[test]
    fn items_render_as_padded_arrays() {
        let mut items = BTreeMap::new();
        items.insert(1, ErrorNode::Message("bad".into()));
        let mut e = FieldErrors::default();
        e.node("paths", ErrorNode::Items(items));
        assert_eq!(e.to_json(), json!({"paths": [null, "bad"]}));
        assert_eq!(e.summary(), "schema violation (paths.2: bad)");
        let mut flat = Vec::new();
        e.flatten("routes[3]", &mut flat);
        assert_eq!(flat, vec![("routes[3].paths[1]".into(), "bad".into())]);
    }
}
