//! DB-less storage: the declarative config, held in memory and replaced whole.

use crate::{Change, ListQuery, Page, Store, StoreError};
use arc_swap::ArcSwap;
use serde_json::Value;
use silverback_model::entities::PluginSchemas;
use silverback_model::schema::Map;
use silverback_model::{Config, Context, EntitySchema, declarative};
use std::path::PathBuf;
use std::sync::Arc;
use uuid::Uuid;

/// The declarative file: read and validated on start and on reload.
pub struct Declarative {
    /// `None`: no file configured, the config is empty.
    pub path: Option<PathBuf>,
    pub plugins: &'static dyn PluginSchemas,
}

impl Declarative {
    /// Parses and validates declarative text.
    pub fn parse(&self, text: &str) -> Result<Config, StoreError> {
        let ctx = Context {
            plugins: self.plugins,
        };
        Ok(declarative::load_text(
            text,
            &ctx,
            silverback_model::now_secs(),
        )?)
    }

    /// Reads the file (an empty config when there is none).
    pub fn read(&self) -> Result<Config, StoreError> {
        let Some(path) = &self.path else {
            return Ok(Config::empty());
        };
        let text = std::fs::read_to_string(path).map_err(|source| StoreError::Read {
            path: path.clone(),
            source,
        })?;
        self.parse(&text)
    }
}

/// The DB-less store: reads are served from the current config; entity writes are refused
/// (Kong answers 405), and the config is only ever replaced whole.
pub struct Memory {
    current: ArcSwap<Config>,
}

impl Memory {
    pub fn new(config: Arc<Config>) -> Self {
        Memory {
            current: ArcSwap::new(config),
        }
    }

    pub fn current(&self) -> Arc<Config> {
        self.current.load_full()
    }
}

/// Pages over in-memory rows use the row position as the offset.
fn encode_offset(n: usize) -> String {
    format!("{n:x}")
}

fn decode_offset(s: &str) -> Result<usize, StoreError> {
    usize::from_str_radix(s, 16).map_err(|_| StoreError::InvalidOffset(s.to_string()))
}

fn row_id(row: &Map) -> Option<Uuid> {
    row.get("id")
        .and_then(Value::as_str)
        .and_then(|s| Uuid::try_parse(s).ok())
}

fn row_tags(row: &Map) -> Vec<&str> {
    row.get("tags")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

fn references(row: &Map, field: &str, id: Uuid) -> bool {
    row.get(field)
        .and_then(|f| f.get("id"))
        .and_then(Value::as_str)
        .and_then(|s| Uuid::try_parse(s).ok())
        == Some(id)
}

fn read_only(operation: &'static str, entity: &'static EntitySchema) -> StoreError {
    StoreError::ReadOnly {
        operation,
        entity: entity.name,
    }
}

impl Store for Memory {
    fn strategy(&self) -> &'static str {
        "off"
    }

    fn writable(&self) -> bool {
        false
    }

    async fn load(&self) -> Result<Arc<Config>, StoreError> {
        Ok(self.current())
    }

    async fn get(
        &self,
        entity: &'static EntitySchema,
        id: Uuid,
    ) -> Result<Option<Map>, StoreError> {
        let config = self.current();
        Ok(config
            .rows(entity.name)
            .iter()
            .find(|r| row_id(r) == Some(id))
            .map(|r| r.map().clone()))
    }

    async fn get_by(
        &self,
        entity: &'static EntitySchema,
        field: &'static str,
        value: &str,
    ) -> Result<Option<Map>, StoreError> {
        let config = self.current();
        Ok(config
            .rows(entity.name)
            .iter()
            .find(|r| r.get(field).and_then(Value::as_str) == Some(value))
            .map(|r| r.map().clone()))
    }

    async fn list(
        &self,
        entity: &'static EntitySchema,
        query: &ListQuery,
    ) -> Result<Page, StoreError> {
        let config = self.current();
        let start = match &query.offset {
            Some(o) => decode_offset(o)?,
            None => 0,
        };
        let mut rows = Vec::new();
        let mut next = None;
        for (i, row) in config.rows(entity.name).iter().enumerate().skip(start) {
            if let Some((field, id)) = query.foreign
                && !references(row, field, id)
            {
                continue;
            }
            if let Some(tags) = &query.tags
                && !tags.matches(&row_tags(row))
            {
                continue;
            }
            if rows.len() == query.size {
                next = Some(encode_offset(i));
                break;
            }
            rows.push(row.map().clone());
        }
        Ok(Page { rows, offset: next })
    }

    async fn insert(
        &self,
        entity: &'static EntitySchema,
        _: Map,
    ) -> Result<Vec<Change>, StoreError> {
        Err(read_only("create", entity))
    }

    async fn upsert(
        &self,
        entity: &'static EntitySchema,
        _: Map,
    ) -> Result<Vec<Change>, StoreError> {
        Err(read_only("create", entity))
    }

    async fn delete(
        &self,
        entity: &'static EntitySchema,
        _: Uuid,
    ) -> Result<Vec<Change>, StoreError> {
        Err(read_only("delete", entity))
    }

    async fn replace_all(&self, config: Arc<Config>) -> Result<(), StoreError> {
        self.current.store(config);
        Ok(())
    }
}
