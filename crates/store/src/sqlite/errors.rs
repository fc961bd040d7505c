//! SQLite failures as [`StoreError`]s. Writes check constraints themselves first, so these
//! mappings are the safety net: a constraint the checks missed still surfaces as the Kong error
//! it stands for, never as a bare database error.

use super::tables::{ColumnKind, Table};
use crate::StoreError;
use serde_json::{Value, json};
use silverback_model::schema::Map;
use sqlx::error::ErrorKind;
use uuid::Uuid;

/// A foreign key failure: SQLITE_CONSTRAINT_FOREIGNKEY for a missing parent, but
/// SQLITE_CONSTRAINT_TRIGGER for an `ON DELETE RESTRICT` (SQLite runs RESTRICT as a trigger), so
/// the message is what identifies both.
pub(crate) fn is_foreign_key_failure(e: &sqlx::Error) -> bool {
    e.as_database_error().is_some_and(|d| {
        d.kind() == ErrorKind::ForeignKeyViolation || d.message() == "FOREIGN KEY constraint failed"
    })
}

/// A failure with no constraint behind it (I/O, corruption, a missing schema).
pub(crate) fn db_error(e: sqlx::Error) -> StoreError {
    StoreError::Database(e.to_string())
}

/// A failed write of `row` into `table`, as the violation it reports.
pub(crate) fn write_error(table: &Table, row: &Map, e: sqlx::Error) -> StoreError {
    let Some(db) = e.as_database_error() else {
        return db_error(e);
    };
    let message = db.message().to_string();
    if is_foreign_key_failure(&e) {
        // SQLite does not say which reference failed: name the first one set.
        return match table.foreign().find(|(c, _, _)| c.value(row).is_some()) {
            Some((c, parent, _)) => StoreError::ForeignKey {
                field: c.field,
                key: row.get(c.field).cloned().unwrap_or(Value::Null),
                parent,
            },
            None => StoreError::Database(message),
        };
    }
    match db.kind() {
        ErrorKind::UniqueViolation => unique_error(table, row, &message),
        _ => StoreError::Database(message),
    }
}

/// `UNIQUE constraint failed: services.name` (a column), `...: plugins.id` (the primary key) or
/// `...: index 'plugins_cache_key_idx'` (the composite cache key).
fn unique_error(table: &Table, row: &Map, message: &str) -> StoreError {
    let detail = message
        .strip_prefix("UNIQUE constraint failed: ")
        .unwrap_or(message);
    let columns: Vec<&str> = detail
        .split(", ")
        .filter_map(|c| c.strip_prefix(table.name()))
        .filter_map(|c| c.strip_prefix('.'))
        .collect();
    if columns == ["id"] {
        let id = row.get("id").and_then(Value::as_str).unwrap_or_default();
        return match Uuid::try_parse(id) {
            Ok(id) => StoreError::PrimaryKey { id },
            Err(_) => StoreError::Database(message.to_string()),
        };
    }
    if let [one] = columns.as_slice()
        && let Some(c) = table.columns.iter().find(|c| c.name == *one)
        && c.kind == ColumnKind::Unique
    {
        return StoreError::Unique {
            entity: table.name(),
            fields: vec![(
                c.field.to_string(),
                row.get(c.field).cloned().unwrap_or(Value::Null),
            )],
        };
    }
    if !table.cache_key.is_empty() {
        return cache_key_error(table, row);
    }
    StoreError::Database(message.to_string())
}

/// Kong reports a composite cache key whole, fields sorted by name, references as `{id=...}`.
pub(crate) fn cache_key_error(table: &Table, row: &Map) -> StoreError {
    let mut fields: Vec<(String, Value)> = table
        .cache_key
        .iter()
        .filter_map(|&i| table.columns.get(i))
        .map(|c| {
            let v = match c.kind {
                ColumnKind::Foreign { .. } => {
                    c.value(row).map_or(Value::Null, |id| json!({"id": id}))
                }
                _ => row.get(c.field).cloned().unwrap_or(Value::Null),
            };
            (c.field.to_string(), v)
        })
        .collect();
    fields.sort_by(|a, b| a.0.cmp(&b.0));
    StoreError::Unique {
        entity: table.name(),
        fields,
    }
}
