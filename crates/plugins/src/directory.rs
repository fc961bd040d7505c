//! Consumers and the credential indexes of one config, shared by every request on it.

use crate::pdk::ConsumerRef;
use crate::registry::Registry;
use silverback_model::{Config, Row};
use std::any::Any;
// hashbrown: foldhash, seeded per process, is cheaper per lookup than std's SipHash.
use hashbrown::HashMap;
use std::sync::Arc;
use uuid::Uuid;

struct Index {
    plugin: &'static str,
    /// The rows it was built from: the next config reuses it when they are the same.
    rows: Vec<Arc<Row>>,
    value: Arc<dyn Any + Send + Sync>,
}

#[derive(Default)]
pub struct Directory {
    consumers: HashMap<Uuid, Arc<ConsumerRef>>,
    by_username: HashMap<String, Arc<ConsumerRef>>,
    consumer_rows: Vec<Arc<Row>>,
    indexes: Vec<Index>,
}

impl std::fmt::Debug for Directory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Directory")
            .field("consumers", &self.consumers.len())
            .finish_non_exhaustive()
    }
}

fn same_rows(a: &[Arc<Row>], b: &[Arc<Row>]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| Arc::ptr_eq(x, y))
}

impl Directory {
    /// Builds the directory of `config`, reusing what `previous` built from the same rows.
    pub fn build(config: &Config, registry: &Registry, previous: Option<&Directory>) -> Directory {
        let consumer_rows = config.rows("consumers");
        let mut d = match previous.filter(|p| same_rows(&p.consumer_rows, consumer_rows)) {
            Some(p) => Directory {
                consumers: p.consumers.clone(),
                by_username: p.by_username.clone(),
                consumer_rows: p.consumer_rows.clone(),
                indexes: Vec::new(),
            },
            None => consumers(consumer_rows),
        };
        for def in registry.iter() {
            let Some(index) = def.index else { continue };
            let rows = config.rows(index.entity);
            let reused = previous
                .and_then(|p| p.indexes.iter().find(|i| i.plugin == def.name))
                .filter(|i| same_rows(&i.rows, rows))
                .map(|i| i.value.clone());
            d.indexes.push(Index {
                plugin: def.name,
                rows: rows.to_vec(),
                value: reused.unwrap_or_else(|| (index.build)(rows)),
            });
        }
        d
    }

    pub fn consumer(&self, id: &Uuid) -> Option<&Arc<ConsumerRef>> {
        self.consumers.get(id)
    }

    /// A consumer by id or, failing that, by username (how Kong resolves `anonymous`).
    pub fn consumer_by_id_or_username(&self, key: &str) -> Option<&Arc<ConsumerRef>> {
        key.parse::<Uuid>()
            .ok()
            .and_then(|id| self.consumers.get(&id))
            .or_else(|| self.by_username.get(key))
    }

    /// The index a plugin built over its credentials.
    pub fn index<T: Any + Send + Sync>(&self, plugin: &str) -> Option<&T> {
        self.indexes
            .iter()
            .find(|i| i.plugin == plugin)
            .and_then(|i| i.value.downcast_ref())
    }
}

fn consumers(rows: &[Arc<Row>]) -> Directory {
    let mut d = Directory {
        consumer_rows: rows.to_vec(),
        ..Directory::default()
    };
    for row in rows {
        let Some(id) = row.id() else { continue };
        let text = |f: &str| row.get(f).and_then(|v| v.as_str()).map(str::to_string);
        let c = Arc::new(ConsumerRef::new(
            id,
            text("username"),
            text("custom_id"),
            row.clone(),
        ));
        if let Some(u) = &c.username {
            d.by_username.insert(u.clone(), c.clone());
        }
        d.consumers.insert(id, c);
    }
    d
}
