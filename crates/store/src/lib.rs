//! Config storage behind one interface, so the gateway and the Admin API do not care where the
//! config lives.
//!
//! Backends: [`off`] (DB-less: the declarative config held in memory, replaced whole) and
//! [`sqlite`] (the embedded default). PostgreSQL implements the same trait. [`export`] writes a
//! config back out as a declarative file.
//!
//! A backend stores rows that the caller already validated against their schema; it enforces
//! what must hold atomically with the write (unique fields, foreign keys, cascades) and reports
//! what changed, so the gateway can update its snapshot without reading everything back.

pub mod export;
pub mod off;
mod offset;
pub mod sqlite;
mod tags;

use serde_json::Value;
pub use silverback_model::Change;
use silverback_model::declarative::DeclarativeError;
use silverback_model::schema::Map;
use silverback_model::{Config, EntitySchema};
use std::future::Future;
use std::sync::Arc;
use uuid::Uuid;

/// Entities that are runtime state written by plugins while serving (the oauth2 plugin's codes
/// and tokens), not configuration: [`Store::load`] leaves them out of the config (a token per
/// request must not rebuild the proxy), and changes to them are not config changes. The
/// Admin API still reads and deletes them in the store.
pub const RUNTIME_ENTITIES: &[&str] = &["oauth2_authorization_codes", "oauth2_tokens"];

/// Whether `entity` is runtime state rather than configuration ([`RUNTIME_ENTITIES`]).
pub fn is_runtime_entity(entity: &str) -> bool {
    RUNTIME_ENTITIES.contains(&entity)
}

/// Largest page the Admin API hands out (Kong's limit).
pub const MAX_PAGE_SIZE: usize = 1000;
/// Page size when the client does not ask (Kong's default).
pub const DEFAULT_PAGE_SIZE: usize = 100;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Declarative(#[from] DeclarativeError),
    /// Another row has the same value in a unique field (Kong code 5, HTTP 409).
    #[error("UNIQUE violation detected on '{}'", fields_text(.fields))]
    Unique {
        entity: &'static str,
        /// The conflicting field(s) and value(s).
        fields: Vec<(String, Value)>,
    },
    /// A row with this primary key exists (Kong code 3, HTTP 400).
    #[error("primary key violation on key '{{id=\"{id}\"}}'")]
    PrimaryKey { id: Uuid },
    /// A reference to a row that does not exist (Kong code 4, HTTP 400).
    #[error(
        "the foreign key '{}' does not reference an existing '{parent}' entity.",
        lua_text(.key)
    )]
    ForeignKey {
        field: &'static str,
        /// The reference as given, e.g. `{"id":"..."}`.
        key: Value,
        parent: &'static str,
    },
    /// Deleting a row that others reference without cascade (Kong code 4, HTTP 400).
    #[error("an existing '{child}' entity references this '{parent}' entity")]
    Referenced {
        parent: &'static str,
        child: &'static str,
    },
    /// The pagination offset is not one this store handed out (Kong code 7, HTTP 400).
    #[error("'{0}' is not a valid offset: bad base64 encoding")]
    InvalidOffset(String),
    /// Writes are not possible with this backend (DB-less: HTTP 405).
    #[error("cannot {operation} '{entity}' entities when not using a database")]
    ReadOnly {
        operation: &'static str,
        entity: &'static str,
    },
    /// The database failed (HTTP 500); the write did not happen.
    #[error("database error: {0}")]
    Database(String),
}

/// `{name="x"}`: the fields as Kong prints them (Penlight's `pretty.write` of a Lua table).
fn fields_text(fields: &[(String, Value)]) -> String {
    let inner: Vec<String> = fields
        .iter()
        .map(|(k, v)| format!("{k}={}", lua_text(v)))
        .collect();
    format!("{{{}}}", inner.join(","))
}

/// A JSON value written the way Kong's error messages write Lua values: strings quoted, `null`
/// for null, objects as `{k=v}` with sorted keys (`{id="..."}` for a foreign key).
fn lua_text(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        Value::Object(m) => {
            let mut entries: Vec<(&String, &Value)> = m.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            let inner: Vec<String> = entries
                .into_iter()
                .map(|(k, v)| format!("{k}={}", lua_text(v)))
                .collect();
            format!("{{{}}}", inner.join(","))
        }
        Value::Array(a) => {
            let inner: Vec<String> = a.iter().map(lua_text).collect();
            format!("{{{}}}", inner.join(","))
        }
        other => other.to_string(),
    }
}

/// `?tags=a,b` (all of them) or `?tags=a/b` (any of them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagFilter {
    All(Vec<String>),
    Any(Vec<String>),
}

impl TagFilter {
    pub fn matches(&self, tags: &[&str]) -> bool {
        match self {
            TagFilter::All(want) => want.iter().all(|w| tags.contains(&w.as_str())),
            TagFilter::Any(want) => want.iter().any(|w| tags.contains(&w.as_str())),
        }
    }
}

/// Which rows of an entity type to list.
#[derive(Debug, Clone)]
pub struct ListQuery {
    pub size: usize,
    /// Opaque token from the previous page.
    pub offset: Option<String>,
    pub tags: Option<TagFilter>,
    /// Only rows whose foreign field references this id (`/services/{id}/routes`).
    pub foreign: Option<(&'static str, Uuid)>,
}

impl Default for ListQuery {
    fn default() -> Self {
        ListQuery {
            size: DEFAULT_PAGE_SIZE,
            offset: None,
            tags: None,
            foreign: None,
        }
    }
}

/// One page of rows, in a stable order, and where the next one starts.
#[derive(Debug, Clone, Default)]
pub struct Page {
    pub rows: Vec<Map>,
    pub offset: Option<String>,
}

/// A config store.
pub trait Store: Send + Sync + 'static {
    /// Kong's name for the backend (`off`, `postgres`, ...), as `GET /` reports it.
    fn strategy(&self) -> &'static str;

    /// Whether the Admin API may write (false for DB-less).
    fn writable(&self) -> bool;

    /// The whole current configuration, without [`RUNTIME_ENTITIES`]. Rows of each entity
    /// type come in a stable order that
    /// depends only on the content, not on the write history (database backends: by id, the
    /// order Kong pages in), so equal contents give equal hashes.
    fn load(&self) -> impl Future<Output = Result<Arc<Config>, StoreError>> + Send;

    fn get(
        &self,
        entity: &'static EntitySchema,
        id: Uuid,
    ) -> impl Future<Output = Result<Option<Map>, StoreError>> + Send;

    /// By a unique field's value (the endpoint key: a service's name, ...).
    fn get_by(
        &self,
        entity: &'static EntitySchema,
        field: &'static str,
        value: &str,
    ) -> impl Future<Output = Result<Option<Map>, StoreError>> + Send;

    fn list(
        &self,
        entity: &'static EntitySchema,
        query: &ListQuery,
    ) -> impl Future<Output = Result<Page, StoreError>> + Send;

    /// Stores a new row; fails when its id exists.
    fn insert(
        &self,
        entity: &'static EntitySchema,
        row: Map,
    ) -> impl Future<Output = Result<Vec<Change>, StoreError>> + Send;

    /// Stores a row under its id, replacing any row with that id.
    fn upsert(
        &self,
        entity: &'static EntitySchema,
        row: Map,
    ) -> impl Future<Output = Result<Vec<Change>, StoreError>> + Send;

    /// Deletes a row and, per the schema, its cascading children; refuses when a
    /// non-cascading reference exists. Deleting a missing row is not an error (no changes).
    fn delete(
        &self,
        entity: &'static EntitySchema,
        id: Uuid,
    ) -> impl Future<Output = Result<Vec<Change>, StoreError>> + Send;

    /// Replaces everything with `config`, atomically (`POST /config`).
    fn replace_all(
        &self,
        config: Arc<Config>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// `GET /tags` (`tag: None`: every tag of every entity) and `GET /tags/{tag}`: rows of
    /// `entity_name`, `entity_id` and `tag`, ordered by entity id (then tag position) as Kong
    /// orders them, paged like [`Store::list`] (`query.tags` and `query.foreign` are ignored).
    ///
    /// The default computes the answer from [`Store::load`]; database backends answer it from
    /// their tag index.
    fn list_tags(
        &self,
        tag: Option<&str>,
        query: &ListQuery,
    ) -> impl Future<Output = Result<Page, StoreError>> + Send {
        async move {
            let config = self.load().await?;
            tags::page_from_config(&config, tag, query)
        }
    }
}
