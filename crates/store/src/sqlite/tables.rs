//! What the store knows about each entity table, derived from the entity schemas: which fields
//! have their own column (unique fields, references, composite cache keys) and the statements
//! that read and write them. The migrations create exactly these columns; a test checks that
//! the two agree.

use serde_json::Value;
use silverback_model::EntitySchema;
use silverback_model::entities::ENTITIES;
use silverback_model::schema::Map;
use std::sync::LazyLock;
use uuid::Uuid;

/// Why a field has a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ColumnKind {
    /// A unique field (`name`, `username`, ...).
    Unique,
    /// A reference, stored as the referenced id in `<field>_id`.
    Foreign {
        parent: &'static str,
        cascade: bool,
        required: bool,
    },
    /// A plain part of a composite cache key (plugins' `name`, targets' `target`).
    Key,
}

#[derive(Debug)]
pub(crate) struct Column {
    pub field: &'static str,
    pub name: String,
    /// The name quoted for SQL (`"group"` is a keyword).
    pub ident: String,
    pub kind: ColumnKind,
    /// `SELECT id FROM t WHERE col = ? AND id <> ? LIMIT 1`, for unique columns.
    pub conflict: String,
    /// `SELECT id FROM t WHERE col = ?`: the rows referencing a parent, for deletes.
    pub rows_with: String,
}

impl Column {
    /// The column's value for a row: the id of a reference (canonical UUID text when it parses),
    /// the text of a string field, `None` for null or missing.
    pub fn value(&self, row: &Map) -> Option<String> {
        let v = row.get(self.field)?;
        match self.kind {
            ColumnKind::Foreign { .. } => {
                let id = match v {
                    Value::Object(o) => o.get("id")?.as_str()?,
                    Value::String(s) => s.as_str(),
                    _ => return None,
                };
                Some(canonical_id(id))
            }
            _ => match v {
                Value::Null => None,
                Value::String(s) => Some(s.clone()),
                other => Some(other.to_string()),
            },
        }
    }
}

/// Ids as stored: lower-case hyphenated when the text is a UUID (Kong's Postgres `uuid` type
/// normalizes the same way), so lookups by a parsed `Uuid` and `ORDER BY id` agree.
pub(crate) fn canonical_id(s: &str) -> String {
    Uuid::try_parse(s).map_or_else(|_| s.to_string(), |u| u.to_string())
}

/// SQL for one table. Built once from static names, so the strings are `'static`.
#[derive(Debug)]
pub(crate) struct Sql {
    pub exists: String,
    pub select: String,
    pub insert: String,
    pub upsert: String,
    pub delete: String,
    pub delete_all: String,
    pub load: String,
    /// `SELECT id ... WHERE <cache key matches> AND id <> ?`, for composite cache keys.
    pub cache_key_conflict: Option<String>,
}

pub(crate) struct Table {
    pub schema: &'static EntitySchema,
    pub columns: Vec<Column>,
    /// Indexes into `columns` of a composite cache key (plugins, targets), in Kong's order.
    pub cache_key: Vec<usize>,
    pub sql: Sql,
}

impl Table {
    pub fn name(&self) -> &'static str {
        self.schema.name
    }

    pub fn column(&self, field: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.field == field)
    }

    /// The foreign columns of this table (`(column, parent entity, cascade)`).
    pub fn foreign(&self) -> impl Iterator<Item = (&Column, &'static str, bool)> {
        self.columns.iter().filter_map(|c| match c.kind {
            ColumnKind::Foreign {
                parent, cascade, ..
            } => Some((c, parent, cascade)),
            _ => None,
        })
    }

    fn build(schema: &'static EntitySchema) -> Table {
        let t = schema.name;
        let mut columns: Vec<Column> = Vec::new();
        let mut add = |field: &'static str, name: String, kind: ColumnKind| {
            let ident = format!("\"{name}\"");
            let conflict = format!("SELECT id FROM {t} WHERE {ident} = ? AND id <> ? LIMIT 1");
            let rows_with = format!("SELECT id FROM {t} WHERE {ident} = ? ORDER BY id");
            columns.push(Column {
                field,
                name,
                ident,
                kind,
                conflict,
                rows_with,
            });
        };
        for (field, f) in &schema.record.fields {
            match f.kind {
                silverback_model::schema::Kind::Foreign { reference, cascade } => add(
                    field,
                    format!("{field}_id"),
                    ColumnKind::Foreign {
                        parent: reference,
                        cascade,
                        required: f.required,
                    },
                ),
                _ if f.unique => add(field, (*field).to_string(), ColumnKind::Unique),
                _ if schema.cache_key.len() > 1 && schema.cache_key.contains(field) => {
                    add(field, (*field).to_string(), ColumnKind::Key)
                }
                _ => {}
            }
        }
        let cache_key: Vec<usize> = if schema.cache_key.len() > 1 {
            schema
                .cache_key
                .iter()
                .filter_map(|k| columns.iter().position(|c| c.field == *k))
                .collect()
        } else {
            Vec::new()
        };
        let names: Vec<&str> = columns.iter().map(|c| c.ident.as_str()).collect();
        let mut all = vec!["id", "data", "created_at"];
        all.extend(&names);
        let marks = vec!["?"; all.len()].join(", ");
        let insert = format!("INSERT INTO {t} ({}) VALUES ({marks})", all.join(", "));
        let updates: Vec<String> = all
            .iter()
            .skip(1)
            .map(|c| format!("{c} = excluded.{c}"))
            .collect();
        let upsert = format!(
            "{insert} ON CONFLICT (id) DO UPDATE SET {}",
            updates.join(", ")
        );
        let cache_key_conflict = (!cache_key.is_empty()).then(|| {
            let conds: Vec<String> = cache_key
                .iter()
                .filter_map(|&i| columns.get(i))
                .map(|c| {
                    match c.kind {
                        // Matches the expressions of the unique index, so the index is used.
                        ColumnKind::Foreign {
                            required: false, ..
                        } => format!("COALESCE({}, '') = COALESCE(?, '')", c.ident),
                        _ => format!("{} = ?", c.ident),
                    }
                })
                .collect();
            format!(
                "SELECT id FROM {t} WHERE {} AND id <> ? LIMIT 1",
                conds.join(" AND ")
            )
        });
        Table {
            schema,
            sql: Sql {
                exists: format!("SELECT 1 FROM {t} WHERE id = ?"),
                select: format!("SELECT data FROM {t} WHERE id = ?"),
                insert,
                upsert,
                delete: format!("DELETE FROM {t} WHERE id = ?"),
                delete_all: format!("DELETE FROM {t}"),
                load: format!("SELECT data FROM {t} ORDER BY id"),
                cache_key_conflict,
            },
            columns,
            cache_key,
        }
    }
}

/// Every entity table, in [`ENTITIES`] order (parents before children).
pub(crate) static TABLES: LazyLock<Vec<Table>> =
    LazyLock::new(|| ENTITIES.iter().map(Table::build).collect());

/// The table of an entity type.
pub(crate) fn table(entity: &str) -> Option<&'static Table> {
    TABLES.iter().find(|t| t.name() == entity)
}

/// Tables holding a reference to `parent`: `(child table, its column, cascade)`.
pub(crate) fn referencing(
    parent: &str,
) -> impl Iterator<Item = (&'static Table, &'static Column, bool)> + '_ {
    TABLES.iter().flat_map(move |t| {
        t.foreign()
            .filter(move |(_, p, _)| *p == parent)
            .map(move |(c, _, cascade)| (t, c, cascade))
    })
}

/// `created_at` in whole seconds (targets keep milliseconds with decimals).
pub(crate) fn created_at(row: &Map) -> Option<i64> {
    let v = row.get("created_at")?;
    v.as_i64().or_else(|| v.as_f64().map(|f| f.floor() as i64))
}

/// The row's tags, in order.
pub(crate) fn tags(row: &Map) -> Vec<&str> {
    row.get("tags")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}
