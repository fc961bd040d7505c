//! Writes: each one a single `BEGIN IMMEDIATE` transaction on the one write connection, with
//! its checks inside, so what was checked is what gets committed.

use super::Sqlite;
use super::errors::{cache_key_error, db_error, is_foreign_key_failure, write_error};
use super::tables::{self, ColumnKind, TABLES, Table, canonical_id};
use crate::{Change, StoreError};
use serde_json::Value;
use silverback_model::schema::Map;
use silverback_model::{Config, EntitySchema};
use sqlx::SqliteConnection;
use std::collections::HashSet;
use uuid::Uuid;

/// Whether a row with the same id may exist (and is then replaced).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    Insert,
    Upsert,
}

const BEGIN: &str = "BEGIN IMMEDIATE";
const DELETE_TAGS: &str = "DELETE FROM tags WHERE entity_name = ? AND entity_id = ?";
const INSERT_TAG: &str =
    "INSERT INTO tags (entity_name, entity_id, position, tag) VALUES (?, ?, ?, ?)";

pub(super) fn table_of(entity: &EntitySchema) -> Result<&'static Table, StoreError> {
    tables::table(entity.name)
        .ok_or_else(|| StoreError::Database(format!("no table for entity '{}'", entity.name)))
}

/// `insert` and `upsert`.
pub(super) async fn put(
    store: &Sqlite,
    entity: &'static EntitySchema,
    row: Map,
    mode: Mode,
) -> Result<Vec<Change>, StoreError> {
    let table = table_of(entity)?;
    let mut tx = store.writer.begin_with(BEGIN).await.map_err(db_error)?;
    write_row(&mut tx, table, &row, mode).await?;
    tx.commit().await.map_err(db_error)?;
    Ok(vec![Change::Upserted(table.name(), row)])
}

/// The row's id as stored, and as a UUID for error reports.
fn row_id(row: &Map) -> Result<(String, Option<Uuid>), StoreError> {
    let id = row
        .get("id")
        .and_then(Value::as_str)
        .ok_or_else(|| StoreError::Database("row without an id".into()))?;
    Ok((canonical_id(id), Uuid::try_parse(id).ok()))
}

/// Checks `row` against the stored rows and writes it with its tags.
async fn write_row(
    conn: &mut SqliteConnection,
    table: &'static Table,
    row: &Map,
    mode: Mode,
) -> Result<(), StoreError> {
    let (id, uuid) = row_id(row)?;
    check(conn, table, row, &id, uuid, mode).await?;
    let data = serde_json::to_string(row).map_err(|e| StoreError::Database(e.to_string()))?;
    let sql = match mode {
        Mode::Insert => table.sql.insert.as_str(),
        Mode::Upsert => table.sql.upsert.as_str(),
    };
    let mut q = sqlx::query(sql)
        .bind(&id)
        .bind(data)
        .bind(tables::created_at(row));
    for c in &table.columns {
        q = q.bind(c.value(row));
    }
    q.execute(&mut *conn)
        .await
        .map_err(|e| write_error(table, row, e))?;
    if mode == Mode::Upsert {
        sqlx::query(DELETE_TAGS)
            .bind(table.name())
            .bind(&id)
            .execute(&mut *conn)
            .await
            .map_err(db_error)?;
    }
    for (i, tag) in tables::tags(row).into_iter().enumerate() {
        sqlx::query(INSERT_TAG)
            .bind(table.name())
            .bind(&id)
            .bind(i as i64 + 1)
            .bind(tag)
            .execute(&mut *conn)
            .await
            .map_err(db_error)?;
    }
    Ok(())
}

/// Kong's checks, in the order its DAO meets them: primary key (inserts only), unique fields,
/// the composite cache key, then each reference. Uniqueness is checked against other rows only,
/// so an upsert may keep its own values.
async fn check(
    conn: &mut SqliteConnection,
    table: &'static Table,
    row: &Map,
    id: &str,
    uuid: Option<Uuid>,
    mode: Mode,
) -> Result<(), StoreError> {
    if mode == Mode::Insert {
        let found: Option<i64> = sqlx::query_scalar(table.sql.exists.as_str())
            .bind(id)
            .fetch_optional(&mut *conn)
            .await
            .map_err(db_error)?;
        if found.is_some() {
            return Err(match uuid {
                Some(id) => StoreError::PrimaryKey { id },
                None => StoreError::Database(format!("duplicate id '{id}'")),
            });
        }
    }
    for c in table
        .columns
        .iter()
        .filter(|c| c.kind == ColumnKind::Unique)
    {
        let Some(value) = c.value(row) else { continue };
        let other: Option<String> = sqlx::query_scalar(c.conflict.as_str())
            .bind(value)
            .bind(id)
            .fetch_optional(&mut *conn)
            .await
            .map_err(db_error)?;
        if other.is_some() {
            return Err(StoreError::Unique {
                entity: table.name(),
                fields: vec![(
                    c.field.to_string(),
                    row.get(c.field).cloned().unwrap_or(Value::Null),
                )],
            });
        }
    }
    if let Some(sql) = &table.sql.cache_key_conflict {
        let mut q = sqlx::query_scalar::<_, String>(sql.as_str());
        for &i in &table.cache_key {
            q = q.bind(table.columns.get(i).and_then(|c| c.value(row)));
        }
        if q.bind(id)
            .fetch_optional(&mut *conn)
            .await
            .map_err(db_error)?
            .is_some()
        {
            return Err(cache_key_error(table, row));
        }
    }
    for (c, parent, _) in table.foreign() {
        let Some(parent_id) = c.value(row) else {
            continue;
        };
        let parent_table = tables::table(parent)
            .ok_or_else(|| StoreError::Database(format!("no table for entity '{parent}'")))?;
        let found: Option<i64> = sqlx::query_scalar(parent_table.sql.exists.as_str())
            .bind(parent_id)
            .fetch_optional(&mut *conn)
            .await
            .map_err(db_error)?;
        if found.is_none() {
            return Err(StoreError::ForeignKey {
                field: c.field,
                key: row.get(c.field).cloned().unwrap_or(Value::Null),
                parent,
            });
        }
    }
    Ok(())
}

/// Deletes a row and its cascading descendants, or nothing when something else refers to one
/// of them without cascade.
pub(super) async fn delete(
    store: &Sqlite,
    entity: &'static EntitySchema,
    id: Uuid,
) -> Result<Vec<Change>, StoreError> {
    let table = table_of(entity)?;
    let id = id.to_string();
    let mut tx = store.writer.begin_with(BEGIN).await.map_err(db_error)?;
    let found: Option<i64> = sqlx::query_scalar(table.sql.exists.as_str())
        .bind(&id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_error)?;
    if found.is_none() {
        return Ok(Vec::new());
    }
    // Everything the delete takes along, found before anything is deleted so it can be
    // reported (SQLite's own cascade would delete silently).
    let mut doomed: Vec<(&'static Table, String)> = vec![(table, id.clone())];
    let mut seen: HashSet<(&'static str, String)> = HashSet::from([(table.name(), id)]);
    let mut next = 0;
    while let Some((parent, parent_id)) = doomed.get(next).cloned() {
        next += 1;
        for (child, column, cascade) in tables::referencing(parent.name()) {
            if !cascade {
                continue;
            }
            let ids: Vec<String> = sqlx::query_scalar(column.rows_with.as_str())
                .bind(&parent_id)
                .fetch_all(&mut *tx)
                .await
                .map_err(db_error)?;
            for child_id in ids {
                if seen.insert((child.name(), child_id.clone())) {
                    doomed.push((child, child_id));
                }
            }
        }
    }
    // Kong refuses the whole delete when a non-cascading reference would dangle.
    for (parent, parent_id) in &doomed {
        for (child, column, cascade) in tables::referencing(parent.name()) {
            if cascade {
                continue;
            }
            let ids: Vec<String> = sqlx::query_scalar(column.rows_with.as_str())
                .bind(parent_id)
                .fetch_all(&mut *tx)
                .await
                .map_err(db_error)?;
            if ids.into_iter().any(|c| !seen.contains(&(child.name(), c))) {
                return Err(StoreError::Referenced {
                    parent: parent.name(),
                    child: child.name(),
                });
            }
        }
    }
    // Children first, so no constraint (RESTRICT or CASCADE) ever fires.
    for (t, row_id) in doomed.iter().rev() {
        sqlx::query(t.sql.delete.as_str())
            .bind(row_id)
            .execute(&mut *tx)
            .await
            .map_err(|e| delete_error(t, e))?;
        sqlx::query(DELETE_TAGS)
            .bind(t.name())
            .bind(row_id)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
    }
    tx.commit().await.map_err(db_error)?;
    Ok(doomed
        .into_iter()
        .filter_map(|(t, id)| {
            Uuid::try_parse(&id)
                .ok()
                .map(|u| Change::Deleted(t.name(), u))
        })
        .collect())
}

/// A reference the checks did not see (safety net): reported as Kong's restrict error.
pub(super) fn delete_error(table: &Table, e: sqlx::Error) -> StoreError {
    let restricted = is_foreign_key_failure(&e);
    match tables::referencing(table.name()).find(|(_, _, cascade)| !cascade) {
        Some((child, _, _)) if restricted => StoreError::Referenced {
            parent: table.name(),
            child: child.name(),
        },
        _ => db_error(e),
    }
}

/// Empties every table and writes `config`, all in one transaction.
pub(super) async fn replace_all(store: &Sqlite, config: &Config) -> Result<(), StoreError> {
    let mut tx = store.writer.begin_with(BEGIN).await.map_err(db_error)?;
    sqlx::query("DELETE FROM tags")
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
    for t in TABLES.iter().rev() {
        sqlx::query(t.sql.delete_all.as_str())
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
    }
    write_config(&mut tx, config, Mode::Insert).await?;
    tx.commit().await.map_err(db_error)
}

/// Upserts every row of `config` in one transaction (`db_import`).
pub(super) async fn import(store: &Sqlite, config: &Config) -> Result<Vec<Change>, StoreError> {
    let mut tx = store.writer.begin_with(BEGIN).await.map_err(db_error)?;
    let changes = write_config(&mut tx, config, Mode::Upsert).await?;
    tx.commit().await.map_err(db_error)?;
    Ok(changes)
}

/// Writes every row, parents first ([`Config::iter`] follows the entity order).
async fn write_config(
    conn: &mut SqliteConnection,
    config: &Config,
    mode: Mode,
) -> Result<Vec<Change>, StoreError> {
    let mut changes = Vec::new();
    for (entity, rows) in config.iter() {
        if rows.is_empty() {
            continue;
        }
        let table = tables::table(entity)
            .ok_or_else(|| StoreError::Database(format!("no table for entity '{entity}'")))?;
        for row in rows {
            write_row(conn, table, row, mode).await?;
            changes.push(Change::Upserted(table.name(), row.map().clone()));
        }
    }
    Ok(changes)
}
