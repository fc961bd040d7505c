//! Reads, on the reader pool: they never wait for writers (WAL), and each sees one committed
//! state of the database.

use super::Sqlite;
use super::errors::db_error;
use super::tables::{ColumnKind, TABLES, Table};
use super::write::table_of;
use crate::tags::{self, TagRow};
use crate::{ListQuery, Page, StoreError, TagFilter, offset};
use serde_json::Value;
use silverback_model::schema::Map;
use silverback_model::{Config, EntitySchema};
use sqlx::{AssertSqlSafe, Row};
use std::collections::BTreeMap;
use uuid::Uuid;

fn parse(data: &str, table: &Table) -> Result<Map, StoreError> {
    serde_json::from_str(data).map_err(|e| {
        StoreError::Database(format!("a stored '{}' row is not JSON: {e}", table.name()))
    })
}

/// Every row of every config entity (runtime state left out), each type ordered by id, from
/// one snapshot of the database.
pub(super) async fn load(store: &Sqlite) -> Result<Config, StoreError> {
    let mut tx = store.readers.begin().await.map_err(db_error)?;
    let mut rows: BTreeMap<&'static str, Vec<Map>> = BTreeMap::new();
    for table in TABLES.iter() {
        if crate::is_runtime_entity(table.name()) {
            continue;
        }
        let data: Vec<String> = sqlx::query_scalar(table.sql.load.as_str())
            .fetch_all(&mut *tx)
            .await
            .map_err(db_error)?;
        if data.is_empty() {
            continue;
        }
        let parsed = data
            .iter()
            .map(|d| parse(d, table))
            .collect::<Result<Vec<_>, _>>()?;
        rows.insert(table.name(), parsed);
    }
    tx.rollback().await.map_err(db_error)?;
    Ok(Config::from_rows(rows))
}

pub(super) async fn get(
    store: &Sqlite,
    entity: &'static EntitySchema,
    id: Uuid,
) -> Result<Option<Map>, StoreError> {
    let table = table_of(entity)?;
    let data: Option<String> = sqlx::query_scalar(table.sql.select.as_str())
        .bind(id.to_string())
        .fetch_optional(&store.readers)
        .await
        .map_err(db_error)?;
    data.map(|d| parse(&d, table)).transpose()
}

/// By a field's value: an indexed column for unique fields and cache-key parts, a scan of the
/// JSON otherwise (the first match by id, as targets' addresses repeat across upstreams).
pub(super) async fn get_by(
    store: &Sqlite,
    entity: &'static EntitySchema,
    field: &'static str,
    value: &str,
) -> Result<Option<Map>, StoreError> {
    let table = table_of(entity)?;
    let t = table.name();
    let column = table
        .column(field)
        .filter(|c| !matches!(c.kind, ColumnKind::Foreign { .. }));
    let data: Option<String> = match column {
        Some(c) => {
            let sql = format!(
                "SELECT data FROM {t} WHERE {} = ? ORDER BY id LIMIT 1",
                c.ident
            );
            sqlx::query_scalar(AssertSqlSafe(sql))
                .bind(value)
                .fetch_optional(&store.readers)
                .await
        }
        None => {
            let sql =
                format!("SELECT data FROM {t} WHERE json_extract(data, ?) = ? ORDER BY id LIMIT 1");
            sqlx::query_scalar(AssertSqlSafe(sql))
                .bind(format!("$.\"{field}\""))
                .bind(value)
                .fetch_optional(&store.readers)
                .await
        }
    }
    .map_err(db_error)?;
    data.map(|d| parse(&d, table)).transpose()
}

/// A keyset page ordered by id: `id > <offset>`, then the filters, `size + 1` rows fetched to
/// know whether another page follows.
pub(super) async fn list(
    store: &Sqlite,
    entity: &'static EntitySchema,
    query: &ListQuery,
) -> Result<Page, StoreError> {
    let table = table_of(entity)?;
    let after = query.offset.as_deref().map(offset::decode_id).transpose()?;
    let size = tags::page_size(query);
    let mut sql = format!("SELECT id, data FROM {} WHERE 1 = 1", table.name());
    let mut binds: Vec<String> = Vec::new();
    if let Some(after) = after {
        sql.push_str(" AND id > ?");
        binds.push(after);
    }
    if let Some((field, parent_id)) = query.foreign {
        let column = table
            .column(field)
            .filter(|c| matches!(c.kind, ColumnKind::Foreign { .. }))
            .ok_or_else(|| {
                StoreError::Database(format!(
                    "'{field}' is not a reference of '{}'",
                    table.name()
                ))
            })?;
        sql.push_str(&format!(" AND {} = ?", column.ident));
        binds.push(parent_id.to_string());
    }
    match &query.tags {
        None => {}
        Some(filter) => {
            let (TagFilter::All(want) | TagFilter::Any(want)) = filter;
            let mut want: Vec<&String> = want.iter().collect();
            want.sort();
            want.dedup();
            let all = matches!(filter, TagFilter::All(_));
            if !want.is_empty() {
                let marks = vec!["?"; want.len()].join(", ");
                sql.push_str(&format!(
                    " AND id IN (SELECT entity_id FROM tags WHERE entity_name = ? AND tag IN ({marks})"
                ));
                binds.push(table.name().to_string());
                binds.extend(want.iter().map(|t| t.to_string()));
                if all {
                    sql.push_str(&format!(
                        " GROUP BY entity_id HAVING COUNT(DISTINCT tag) = {}",
                        want.len()
                    ));
                }
                sql.push(')');
            } else if !all {
                // Any of no tags: nothing matches (as `TagFilter::matches` says).
                sql.push_str(" AND 1 = 0");
            }
        }
    }
    sql.push_str(&format!(" ORDER BY id LIMIT {}", size + 1));
    let mut q = sqlx::query(AssertSqlSafe(sql));
    for b in binds {
        q = q.bind(b);
    }
    let fetched = q.fetch_all(&store.readers).await.map_err(db_error)?;
    let more = fetched.len() > size;
    let mut rows = Vec::with_capacity(fetched.len().min(size));
    let mut last = None;
    for r in fetched.iter().take(size) {
        let id: String = r.try_get(0).map_err(db_error)?;
        let data: String = r.try_get(1).map_err(db_error)?;
        rows.push(parse(&data, table)?);
        last = Some(id);
    }
    let offset = match last {
        Some(id) if more => Some(offset::encode(&[Value::from(id)])),
        _ => None,
    };
    Ok(Page { rows, offset })
}

/// `GET /tags[/{tag}]` from the tags table.
pub(super) async fn list_tags(
    store: &Sqlite,
    tag: Option<&str>,
    query: &ListQuery,
) -> Result<Page, StoreError> {
    let one_tag = tag.is_some();
    let cursor = query
        .offset
        .as_deref()
        .map(|t| tags::decode_cursor(t, one_tag))
        .transpose()?;
    let size = tags::page_size(query);
    let mut sql = "SELECT entity_id, position, entity_name, tag FROM tags WHERE 1 = 1".to_string();
    if tag.is_some() {
        sql.push_str(" AND tag = ?");
    }
    match (&cursor, one_tag) {
        (None, _) => {}
        (Some(_), true) => sql.push_str(" AND entity_id > ?"),
        (Some(_), false) => {
            sql.push_str(" AND (entity_id > ? OR (entity_id = ? AND position > ?))")
        }
    }
    sql.push_str(&format!(" ORDER BY entity_id, position LIMIT {}", size + 1));
    let mut q = sqlx::query(AssertSqlSafe(sql));
    if let Some(t) = tag {
        q = q.bind(t);
    }
    if let Some(c) = &cursor {
        q = q.bind(c.entity_id.clone());
        if !one_tag {
            q = q
                .bind(c.entity_id.clone())
                .bind(i64::try_from(c.position).unwrap_or(i64::MAX));
        }
    }
    let fetched = q.fetch_all(&store.readers).await.map_err(db_error)?;
    let rows = fetched
        .iter()
        .map(|r| {
            Ok(TagRow {
                entity_id: r.try_get(0)?,
                position: u64::try_from(r.try_get::<i64, _>(1)?).unwrap_or_default(),
                entity_name: r.try_get(2)?,
                tag: r.try_get(3)?,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()
        .map_err(db_error)?;
    Ok(tags::into_page(rows, size, one_tag))
}
