//! The embedded default store: one SQLite file.
//!
//! Durability and concurrency are settled when the file is opened: WAL journal with
//! `synchronous = FULL` (a write that returned survives a crash, even of the machine), foreign
//! keys enforced, one write connection that serializes every writer (so checks and writes of
//! one Admin request never interleave with another's), and a small pool of readers that see
//! consistent snapshots beside it.
//!
//! Each write runs its own checks inside its `BEGIN IMMEDIATE` transaction to report precise,
//! Kong-shaped errors; the constraints in the schema (`migrations/`) are the safety net, and
//! their failures map to the same [`StoreError`] variants (`errors.rs`).

mod counters;
mod errors;
mod migrate;
mod read;
mod tables;
mod write;

pub use counters::{Metric, MetricsTable};
pub use migrate::{MIGRATIONS, Migration, MigrationError, SchemaState};

use crate::{Change, ListQuery, Page, Store, StoreError};
use silverback_model::schema::Map;
use silverback_model::{Config, EntitySchema};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

pub(crate) use errors::db_error;

/// How long a statement waits for a lock held by another process (a `db_import` run while the
/// gateway serves) before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// Readers beside the writer; reads are short, so a few connections serve many requests.
const READERS: u32 = 4;
/// Statements cached per connection: a few per table and per list variant.
const STATEMENT_CACHE: usize = 512;

/// A config store in one SQLite file.
pub struct Sqlite {
    path: PathBuf,
    /// Exactly one connection: writers queue for it (FIFO) instead of failing with SQLITE_BUSY.
    writer: SqlitePool,
    readers: SqlitePool,
}

impl std::fmt::Debug for Sqlite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sqlite").field("path", &self.path).finish()
    }
}

impl Sqlite {
    /// Opens the database at `path`, creating it (and its directory) when missing. The schema
    /// is not touched: see [`Sqlite::migrate`].
    pub async fn open(path: impl AsRef<Path>) -> Result<Sqlite, StoreError> {
        let path = path.as_ref().to_path_buf();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                StoreError::Database(format!("cannot create {}: {e}", dir.display()))
            })?;
        }
        let options = SqliteConnectOptions::new()
            .filename(&path)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT)
            .statement_cache_capacity(STATEMENT_CACHE);
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            // Writers wait their turn; a minute covers any queue of Admin writes.
            .acquire_timeout(Duration::from_secs(60))
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options.clone().create_if_missing(true))
            .await
            .map_err(|e| open_error(&path, e))?;
        let readers = SqlitePoolOptions::new()
            .max_connections(READERS)
            .min_connections(0)
            .acquire_timeout(Duration::from_secs(60))
            .connect_with(options.pragma("query_only", "ON"))
            .await
            .map_err(|e| open_error(&path, e))?;
        Ok(Sqlite {
            path,
            writer,
            readers,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Closes every connection (checkpointing the WAL into the main file).
    pub async fn close(&self) {
        self.readers.close().await;
        self.writer.close().await;
    }

    /// Upserts every row of `config` in one transaction, parents first, leaving rows the
    /// config does not name in place: `config db_import`, which in Kong adds to and updates
    /// the database but never deletes. Any failure rolls the whole import back.
    pub async fn import(&self, config: &Config) -> Result<Vec<Change>, StoreError> {
        write::import(self, config).await
    }
}

fn open_error(path: &Path, e: sqlx::Error) -> StoreError {
    StoreError::Database(format!("cannot open {}: {e}", path.display()))
}

impl Store for Sqlite {
    fn strategy(&self) -> &'static str {
        "sqlite"
    }

    fn writable(&self) -> bool {
        true
    }

    async fn load(&self) -> Result<Arc<Config>, StoreError> {
        read::load(self).await.map(Arc::new)
    }

    async fn get(
        &self,
        entity: &'static EntitySchema,
        id: Uuid,
    ) -> Result<Option<Map>, StoreError> {
        read::get(self, entity, id).await
    }

    async fn get_by(
        &self,
        entity: &'static EntitySchema,
        field: &'static str,
        value: &str,
    ) -> Result<Option<Map>, StoreError> {
        read::get_by(self, entity, field, value).await
    }

    async fn list(
        &self,
        entity: &'static EntitySchema,
        query: &ListQuery,
    ) -> Result<Page, StoreError> {
        read::list(self, entity, query).await
    }

    async fn insert(
        &self,
        entity: &'static EntitySchema,
        row: Map,
    ) -> Result<Vec<Change>, StoreError> {
        write::put(self, entity, row, write::Mode::Insert).await
    }

    async fn upsert(
        &self,
        entity: &'static EntitySchema,
        row: Map,
    ) -> Result<Vec<Change>, StoreError> {
        write::put(self, entity, row, write::Mode::Upsert).await
    }

    async fn delete(
        &self,
        entity: &'static EntitySchema,
        id: Uuid,
    ) -> Result<Vec<Change>, StoreError> {
        write::delete(self, entity, id).await
    }

    async fn replace_all(&self, config: Arc<Config>) -> Result<(), StoreError> {
        write::replace_all(self, &config).await
    }

    async fn list_tags(&self, tag: Option<&str>, query: &ListQuery) -> Result<Page, StoreError> {
        read::list_tags(self, tag, query).await
    }
}

#[cfg(test)]
mod tests;
