//! A complete, validated configuration: every entity of every type.
//!
//! Rows are kept as the JSON objects Kong's Admin API returns (all schema fields present, defaults
//! filled); typed views are derived from them when a snapshot is compiled.

use crate::entities::credentials::{
    Acl, BasicAuthCredential, HmacAuthCredential, JwtSecret, KeyAuthCredential, OAuth2Credential,
};
use crate::entities::{
    CaCertificate, Certificate, Consumer, ENTITIES, Plugin, Route, Service, Sni, Target, Upstream,
};
use crate::schema::Map;
use md5::Digest;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;
use uuid::Uuid;

/// Kong's hash of an empty configuration.
pub const EMPTY_CONFIG_HASH: &str = "00000000000000000000000000000000";

#[derive(Debug, Clone, thiserror::Error)]
#[error("stored {entity} entity {id} does not match its schema: {reason}")]
pub struct RowError {
    pub entity: &'static str,
    pub id: String,
    pub reason: String,
}

/// One stored entity row with the digest of its content. Rows are shared between successive
/// configs, so a change to one entity copies pointers, not the other rows, and compiled
/// snapshots can tell an unchanged row by its address.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    map: Map,
    id: Option<Uuid>,
    digest: [u8; 16],
}

impl Row {
    pub fn new(map: Map) -> Self {
        let digest = row_digest(&map);
        let id = map
            .get("id")
            .and_then(Value::as_str)
            .and_then(|s| Uuid::parse_str(s).ok());
        Row { map, id, digest }
    }

    pub fn map(&self) -> &Map {
        &self.map
    }

    /// The row as its typed entity struct.
    pub fn typed<T: DeserializeOwned>(&self, entity: &'static str) -> Result<T, RowError> {
        serde_json::from_value(Value::Object(self.map.clone())).map_err(|e| RowError {
            entity,
            id: self
                .map
                .get("id")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            reason: e.to_string(),
        })
    }

    /// The row's `id`, when it is a UUID.
    pub fn id(&self) -> Option<Uuid> {
        self.id
    }

    /// A digest of the row's content (without its timestamps): equal content, equal digest.
    pub fn digest(&self) -> &[u8; 16] {
        &self.digest
    }
}

impl std::ops::Deref for Row {
    type Target = Map;
    fn deref(&self) -> &Map {
        &self.map
    }
}

impl PartialEq<Map> for Row {
    fn eq(&self, other: &Map) -> bool {
        &self.map == other
    }
}

/// What one write did to the stored config, cascades included.
#[derive(Debug, Clone)]
pub enum Change {
    /// The row as stored now (inserted or replaced).
    Upserted(&'static str, Map),
    Deleted(&'static str, Uuid),
}

#[derive(Debug, Clone, Default)]
pub struct Config {
    rows: BTreeMap<&'static str, Vec<Arc<Row>>>,
    hash: String,
}

impl Config {
    /// Builds a config from validated rows, computing its hash.
    pub fn from_rows(rows: BTreeMap<&'static str, Vec<Map>>) -> Self {
        let rows = rows
            .into_iter()
            .map(|(e, rows)| (e, rows.into_iter().map(|m| Arc::new(Row::new(m))).collect()))
            .collect();
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

    /// This config with `changes` applied, in order. Unchanged rows are shared with `self`. A
    /// new row goes where its id sorts, keeping the id order database stores load in, so the
    /// result hashes like a fresh load of the same rows.
    pub fn apply(&self, changes: &[Change]) -> Config {
        let mut rows = self.rows.clone();
        for change in changes {
            match change {
                Change::Upserted(entity, map) => {
                    let row = Arc::new(Row::new(map.clone()));
                    let list = rows.entry(entity).or_default();
                    let id = row.id();
                    match list.iter().position(|r| r.id() == id) {
                        Some(i) => list[i] = row,
                        None => {
                            let at = list.partition_point(|r| r.id() < id);
                            list.insert(at, row);
                        }
                    }
                }
                Change::Deleted(entity, id) => {
                    if let Some(list) = rows.get_mut(entity) {
                        list.retain(|r| r.id() != Some(*id));
                    }
                }
            }
        }
        rows.retain(|_, list| !list.is_empty());
        let mut c = Config {
            rows,
            hash: String::new(),
        };
        c.hash = c.compute_hash();
        c
    }

    /// Kong's `configuration_hash`: 32 hex digits, zeros for an empty config.
    pub fn hash(&self) -> &str {
        &self.hash
    }

    pub fn rows(&self, entity: &str) -> &[Arc<Row>] {
        self.rows.get(entity).map_or(&[], Vec::as_slice)
    }

    pub fn is_empty(&self) -> bool {
        self.rows.values().all(Vec::is_empty)
    }

    /// Entity types with their rows, in load order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &[Arc<Row>])> {
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
            .map(|row| row.typed(entity))
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
    pub fn keyauth_credentials(&self) -> Result<Vec<KeyAuthCredential>, RowError> {
        self.typed("keyauth_credentials")
    }
    pub fn basicauth_credentials(&self) -> Result<Vec<BasicAuthCredential>, RowError> {
        self.typed("basicauth_credentials")
    }
    pub fn jwt_secrets(&self) -> Result<Vec<JwtSecret>, RowError> {
        self.typed("jwt_secrets")
    }
    pub fn hmacauth_credentials(&self) -> Result<Vec<HmacAuthCredential>, RowError> {
        self.typed("hmacauth_credentials")
    }
    pub fn acls(&self) -> Result<Vec<Acl>, RowError> {
        self.typed("acls")
    }
    pub fn oauth2_credentials(&self) -> Result<Vec<OAuth2Credential>, RowError> {
        self.typed("oauth2_credentials")
    }

    /// MD5 over the entity names and the digests of their rows, in order: equal contents
    /// give equal hashes, and a change rehashes one row, not all of them.
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
                md5.update(row.digest);
            }
        }
        crate::hex(&md5.finalize())
    }
}

/// MD5 of a row's canonical JSON, timestamps left out so that reloading the same file gives
/// the same digest.
fn row_digest(map: &Map) -> [u8; 16] {
    let mut row = map.clone();
    row.remove("created_at");
    row.remove("updated_at");
    let bytes = serde_json::to_vec(&canonical(Value::Object(row))).unwrap_or_default();
    md5::Md5::digest(&bytes).into()
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
