//! Shared by the SQLite store tests: temporary databases, a plugin registry, and rows validated
//! by the real entity schemas (the store only ever sees validated rows).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::{Value, json};
use silverback_model::entities::{PluginSchema, PluginSchemas};
use silverback_model::schema::{Field, Map, Record, Validator};
use silverback_model::{Context, EntitySchema};
use silverback_store::sqlite::Sqlite;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A fresh temporary directory, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let p = std::env::temp_dir().join(format!(
            "silverback-store-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

static CONFIG: LazyLock<Record> = LazyLock::new(|| Record::new(vec![("minute", Field::integer())]));

/// Two plugins, `test-plugin` and `other-plugin`, allowed on every scope.
pub struct TestPlugins;

impl PluginSchemas for TestPlugins {
    fn schema(&self, name: &str) -> Option<PluginSchema<'_>> {
        ["test-plugin", "other-plugin"]
            .contains(&name)
            .then(|| PluginSchema {
                config: &CONFIG,
                protocols: &["grpc", "grpcs", "http", "https"],
                no_consumer: false,
                no_route: false,
                no_service: false,
            })
    }
    fn names(&self) -> Vec<&'static str> {
        vec!["other-plugin", "test-plugin"]
    }
}

pub fn ctx() -> Context<'static> {
    Context {
        plugins: &TestPlugins,
    }
}

pub fn schema(entity: &str) -> &'static EntitySchema {
    silverback_model::entities::schema(entity).unwrap()
}

/// A row as the Admin API would hand it over: defaults and auto fields filled, validated.
pub fn row(entity: &str, fields: Value) -> Map {
    let mut map = fields.as_object().unwrap().clone();
    schema(entity)
        .validate(&Validator::new(1_700_000_000), &ctx(), &mut map)
        .unwrap_or_else(|e| panic!("invalid {entity} {fields}: {e:?}"));
    map
}

pub fn id_of(row: &Map) -> uuid::Uuid {
    uuid::Uuid::parse_str(row["id"].as_str().unwrap()).unwrap()
}

pub fn fk(row: &Map) -> Value {
    json!({ "id": row["id"] })
}

pub fn service(name: &str) -> Map {
    row("services", json!({ "name": name, "host": "example.com" }))
}

pub fn route(name: &str, service: Option<&Map>) -> Map {
    let mut v = json!({ "name": name, "paths": [format!("/{name}")] });
    if let Some(s) = service {
        v["service"] = fk(s);
    }
    row("routes", v)
}

/// A database in a fresh directory, migrated.
pub async fn fresh(tag: &str) -> (TempDir, Sqlite) {
    let dir = TempDir::new(tag);
    let db = Sqlite::open(dir.path().join("silverback.db"))
        .await
        .unwrap();
    db.migrate().await.unwrap();
    (dir, db)
}
