//! Where a node's config comes from: the declarative file (database = off) or the embedded
//! SQLite store.

use super::NodeError;
use silverback_config::{Database, Settings};
use silverback_model::Config;
use silverback_plugins::registry::BUNDLED;
use silverback_store::Store;
use silverback_store::off::{Declarative, Memory};
use silverback_store::sqlite::Sqlite;
use std::sync::Arc;

pub enum Source {
    /// DB-less: the file is read at start and on reload; the Admin API reads (and `POST
    /// /config` replaces) the config held in memory.
    File {
        file: Declarative,
        memory: Arc<Memory>,
    },
    Sqlite(Arc<Sqlite>),
}

impl Source {
    pub async fn open(settings: &Settings) -> Result<Source, NodeError> {
        Ok(match settings.database {
            Database::Off => Source::File {
                file: Declarative {
                    path: settings.declarative_config.clone(),
                    plugins: &*BUNDLED,
                },
                memory: Arc::new(Memory::new(Arc::new(Config::empty()))),
            },
            Database::Sqlite => Source::Sqlite(Arc::new(open_sqlite(settings).await?)),
        })
    }

    /// For log lines: what was (re)loaded.
    pub fn what(&self) -> &'static str {
        match self {
            Source::File { .. } => "declarative config",
            Source::Sqlite(_) => "database config",
        }
    }

    /// DB-less without a file: nothing to load.
    pub fn is_empty_file(&self) -> bool {
        matches!(self, Source::File { file, .. } if file.path.is_none())
    }

    /// Reads the whole config (the file, or every row of the database).
    pub async fn read(&self) -> Result<Arc<Config>, NodeError> {
        match self {
            Source::File { file, .. } => file.read().map(Arc::new).map_err(|e| NodeError::Config {
                path: file
                    .path
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
                lines: match &e {
                    silverback_store::StoreError::Declarative(d) => d.lines().join("\n  "),
                    other => other.to_string(),
                },
            }),
            Source::Sqlite(db) => db.load().await.map_err(|e| store_error(db.path(), e)),
        }
    }

    /// Makes a config read from the file the one the Admin API serves (DB-less); the database
    /// already is the Admin API's store.
    pub async fn adopt(&self, config: Arc<Config>) {
        if let Source::File { memory, .. } = self {
            // Replacing the in-memory store cannot fail.
            let _ = memory.replace_all(config).await;
        }
    }
}

fn store_error(path: &std::path::Path, e: impl std::fmt::Display) -> NodeError {
    NodeError::Store {
        path: path.display().to_string(),
        reason: e.to_string(),
    }
}

/// Opens the SQLite store and brings its schema up to date: the first start creates it, and an
/// upgrade applies its migrations (Kong asks for `kong migrations` first; an embedded store has
/// no other node to coordinate with).
async fn open_sqlite(settings: &Settings) -> Result<Sqlite, NodeError> {
    let path = &settings.sqlite_path;
    if settings.declarative_config.is_some() {
        tracing::warn!(
            "database = sqlite: declarative_config is not read (use 'silverback config db_import')"
        );
    }
    let db = Sqlite::open(path).await.map_err(|e| store_error(path, e))?;
    let applied = db.migrate().await.map_err(|e| store_error(path, e))?;
    if !applied.is_empty() {
        tracing::info!(path = %path.display(), migrations = ?applied, "database schema migrated");
    }
    Ok(db)
}
