//! A complete, validated configuration: every entity of every type.
//!
//! Rows are kept as the JSON objects Kong's Admin API returns (all schema fields present, defaults
//! filled); typed views are derived from them when a snapshot is compiled.

use crate::entities::{
    CaCertificate, Certificate, Consumer, ENTITIES, Plugin, Route, Service, Sni, Target, Upstream,
};
use crate::schema::Map;
use md5::Digest;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::collections::BTreeMap;

/// Kong's hash of an empty configuration.
pub const EMPTY_CONFIG_HASH: &str = "00000000000000000000000000000000";

#[derive(Debug, Clone, thiserror::Error)]
#[error("stored {entity} entity {id} does not match its schema: {reason}")]
pub struct RowError {
    pub entity: &'static str,
    pub id: String,
    pub reason: String,
}

#[derive(Debug, Clone, Default)]
pub struct Config {
    rows: BTreeMap<&'static str, Vec<Map>>,
    hash: String,
}

impl Config {
    /// Builds a config from validated rows, computing its hash.
    pub fn from_rows(rows: BTreeMap<&'static str, Vec<Map>>) -> Self {
        let mut c = Config {
            rows,
            hash: String::new(),
        };
        c.hash = c.compute_hash();
        c
    }

    pub fn empty() -> Self {
        Self::from_rows(BTreeMap::new())
    }

    /// Kong's `configuration_hash`: 32 hex digits, zeros for an empty config.
    pub fn hash(&self) -> &str {
        &self.hash
    }

    pub fn rows(&self, entity: &str) -> &[Map] {
        self.rows.get(entity).map_or(&[], Vec::as_slice)
    }

    pub fn is_empty(&self) -> bool {
        self.rows.values().all(Vec::is_empty)
    }

    /// Entity types with their rows, in load order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &[Map])> {
        ENTITIES.iter().map(|e| (e.name, self.rows(e.name))).chain(
            self.rows
                .iter()
                .filter(|(k, _)| crate::entities::schema(k).is_none())
                .map(|(k, v)| (*k, v.as_slice())),
        )
    }

    /// Typed view of one entity type.
    pub fn typed<T: DeserializeOwned>(&self, entity: &'static str) -> Result<Vec<T>, RowError> {
        self.rows(entity)
            .iter()
            .map(|row| {
                serde_json::from_value(Value::Object(row.clone())).map_err(|e| RowError {
                    entity,
                    id: row
                        .get("id")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                    reason: e.to_string(),
                })
            })
            .collect()
    }

    pub fn services(&self) -> Result<Vec<Service>, RowError> {
        self.typed("services")
    }
    pub fn routes(&self) -> Result<Vec<Route>, RowError> {
        self.typed("routes")
    }
    pub fn consumers(&self) -> Result<Vec<Consumer>, RowError> {
        self.typed("consumers")
    }
    pub fn plugins(&self) -> Result<Vec<Plugin>, RowError> {
        self.typed("plugins")
    }
    pub fn upstreams(&self) -> Result<Vec<Upstream>, RowError> {
        self.typed("upstreams")
    }
    pub fn targets(&self) -> Result<Vec<Target>, RowError> {
        self.typed("targets")
    }
    pub fn certificates(&self) -> Result<Vec<Certificate>, RowError> {
        self.typed("certificates")
    }
    pub fn snis(&self) -> Result<Vec<Sni>, RowError> {
        self.typed("snis")
    }
    pub fn ca_certificates(&self) -> Result<Vec<CaCertificate>, RowError> {
        self.typed("ca_certificates")
    }

    /// MD5 of the canonical JSON of every row, timestamps left out so that reloading the same
    /// file gives the same hash.
    fn compute_hash(&self) -> String {
        if self.is_empty() {
            return EMPTY_CONFIG_HASH.to_string();
        }
        let mut md5 = md5::Md5::new();
        for (entity, rows) in self.iter() {
            if rows.is_empty() {
                continue;
            }
            md5.update(entity.as_bytes());
            for row in rows {
                let mut row = row.clone();
                row.remove("created_at");
                row.remove("updated_at");
                if let Ok(bytes) = serde_json::to_vec(&canonical(Value::Object(row))) {
                    md5.update(&bytes);
                }
            }
        }
        crate::hex(&md5.finalize())
    }
}

/// The value with every object's keys sorted, so equal content hashes equally.
fn canonical(v: Value) -> Value {
    match v {
        Value::Object(m) => {
            let sorted: BTreeMap<String, Value> =
                m.into_iter().map(|(k, v)| (k, canonical(v))).collect();
            Value::Object(sorted.into_iter().collect())
        }
        Value::Array(a) => Value::Array(a.into_iter().map(canonical).collect()),
        other => other,
    }
}
