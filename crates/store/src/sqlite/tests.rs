//! The SQLite store's own settings and schema, checked on real database files.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::tables::{ColumnKind, TABLES};
use super::{MIGRATIONS, MigrationError, Sqlite};
use sqlx::Row;
use std::path::PathBuf;

struct Dir(PathBuf);

impl Dir {
    fn new(tag: &str) -> Dir {
        let p = std::env::temp_dir().join(format!(
            "silverback-store-unit-{tag}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&p);
        Dir(p)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn pragma(db: &Sqlite, name: &str) -> String {
    let sql = format!("PRAGMA {name}");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .fetch_one(&db.writer)
        .await
        .unwrap();
    match row.try_get::<String, _>(0) {
        Ok(s) => s,
        Err(_) => row.get::<i64, _>(0).to_string(),
    }
}

#[tokio::test]
async fn opens_durable_and_creates_its_directory() {
    let dir = Dir::new("pragmas");
    let db = Sqlite::open(dir.0.join("nested/dir/silverback.db"))
        .await
        .unwrap();
    assert!(db.path().exists());
    assert_eq!(pragma(&db, "journal_mode").await, "wal");
    // 2 = FULL: the WAL is synced on every commit.
    assert_eq!(pragma(&db, "synchronous").await, "2");
    assert_eq!(pragma(&db, "foreign_keys").await, "1");
    assert_eq!(pragma(&db, "busy_timeout").await, "10000");
    let reader = sqlx::query("PRAGMA query_only")
        .fetch_one(&db.readers)
        .await
        .unwrap();
    assert_eq!(reader.get::<i64, _>(0), 1, "readers cannot write");
}

/// The migrations create exactly the columns the store derives from the schemas.
#[tokio::test]
async fn migrations_match_the_entity_schemas() {
    let dir = Dir::new("ddl");
    let db = Sqlite::open(dir.0.join("s.db")).await.unwrap();
    db.migrate().await.unwrap();
    for t in TABLES.iter() {
        let sql = format!("PRAGMA table_info({})", t.name());
        let cols: Vec<String> = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(&db.writer)
            .await
            .unwrap()
            .iter()
            .map(|r| r.get::<String, _>("name"))
            .collect();
        let mut want = vec!["id".to_string(), "data".into(), "created_at".into()];
        want.extend(t.columns.iter().map(|c| c.name.clone()));
        assert_eq!(cols, want, "columns of {}", t.name());
        let sql = format!("PRAGMA foreign_key_list({})", t.name());
        let mut fks: Vec<(String, String, String)> = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(&db.writer)
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get("from"), r.get("table"), r.get("on_delete")))
            .collect();
        fks.sort();
        let mut want: Vec<(String, String, String)> = t
            .columns
            .iter()
            .filter_map(|c| match c.kind {
                ColumnKind::Foreign {
                    parent, cascade, ..
                } => Some((
                    c.name.clone(),
                    parent.to_string(),
                    if cascade { "CASCADE" } else { "RESTRICT" }.to_string(),
                )),
                _ => None,
            })
            .collect();
        want.sort();
        assert_eq!(fks, want, "foreign keys of {}", t.name());
    }
}

#[tokio::test]
async fn migrate_is_idempotent_reset_starts_over_and_newer_schemas_are_refused() {
    let dir = Dir::new("migrate");
    let db = Sqlite::open(dir.0.join("s.db")).await.unwrap();
    let state = db.schema_state().await.unwrap();
    assert!(state.needs_bootstrap());
    assert_eq!(state.pending.len(), MIGRATIONS.len());
    assert_eq!(
        db.migrate().await.unwrap(),
        vec!["001_core", "002_credentials", "003_ratelimiting_metrics"]
    );
    assert!(db.migrate().await.unwrap().is_empty());
    assert!(db.schema_state().await.unwrap().is_up_to_date());

    db.reset().await.unwrap();
    assert!(db.schema_state().await.unwrap().needs_bootstrap());
    let tables: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
    )
    .fetch_one(&db.writer)
    .await
    .unwrap();
    assert_eq!(tables, 0);
    // Foreign keys are back on for the next writer.
    assert_eq!(pragma(&db, "foreign_keys").await, "1");

    db.migrate().await.unwrap();
    sqlx::query("INSERT INTO schema_migrations VALUES (999, '999_future', 0)")
        .execute(&db.writer)
        .await
        .unwrap();
    let state = db.schema_state().await.unwrap();
    assert_eq!(state.unknown, vec!["999_future".to_string()]);
    assert!(matches!(
        db.migrate().await,
        Err(MigrationError::Unknown(_))
    ));
}

/// The safety net: when a constraint fires without the explicit checks (they are bypassed
/// here), the SQLite error still maps to the Kong error it stands for.
#[tokio::test]
async fn constraint_failures_map_to_kong_errors() {
    use super::errors::write_error;
    use super::tables::table;
    use crate::StoreError;
    use serde_json::json;
    use silverback_model::schema::Map;

    let dir = Dir::new("safety");
    let db = Sqlite::open(dir.0.join("s.db")).await.unwrap();
    db.migrate().await.unwrap();
    // Writes `row` with the table's plain INSERT, no checks; returns the mapped error.
    async fn raw_insert(db: &Sqlite, entity: &str, row: serde_json::Value) -> Option<StoreError> {
        let t = table(entity).unwrap();
        let row: Map = row.as_object().unwrap().clone();
        let mut q = sqlx::query(t.sql.insert.as_str())
            .bind(row["id"].as_str().unwrap().to_string())
            .bind(serde_json::to_string(&row).unwrap())
            .bind(None::<i64>);
        for c in &t.columns {
            q = q.bind(c.value(&row));
        }
        q.execute(&db.writer)
            .await
            .err()
            .map(|e| write_error(t, &row, e))
    }
    let s1 = "00000000-0000-4000-8000-000000000001";
    let s2 = "00000000-0000-4000-8000-000000000002";
    assert!(
        raw_insert(&db, "services", json!({"id": s1, "name": "a"}))
            .await
            .is_none()
    );
    let e = raw_insert(&db, "services", json!({"id": s2, "name": "a"})).await;
    assert_eq!(
        e.map(|e| e.to_string()).as_deref(),
        Some("UNIQUE violation detected on '{name=\"a\"}'")
    );
    let e = raw_insert(&db, "services", json!({"id": s1, "name": "b"})).await;
    assert!(matches!(e, Some(StoreError::PrimaryKey { .. })), "{e:?}");
    let e = raw_insert(
        &db,
        "routes",
        json!({"id": s2, "service": {"id": "00000000-0000-4000-8000-0000000000ff"}}),
    )
    .await;
    assert!(
        matches!(
            e,
            Some(StoreError::ForeignKey {
                field: "service",
                parent: "services",
                ..
            })
        ),
        "{e:?}"
    );
    let p = |id: &str| json!({"id": id, "name": "x", "service": {"id": s1}, "route": null, "consumer": null});
    assert!(raw_insert(&db, "plugins", p(s1)).await.is_none());
    let e = raw_insert(&db, "plugins", p(s2)).await;
    assert_eq!(
        e.map(|e| e.to_string()).as_deref(),
        Some(
            "UNIQUE violation detected on '{consumer=null,name=\"x\",route=null,service={id=\"00000000-0000-4000-8000-000000000001\"}}'"
        )
    );
    // Deleting a referenced parent without the checks: RESTRICT holds.
    assert!(
        raw_insert(&db, "routes", json!({"id": s1, "service": {"id": s1}}))
            .await
            .is_none()
    );
    let err = sqlx::query("DELETE FROM services WHERE id = ?")
        .bind(s1)
        .execute(&db.writer)
        .await
        .unwrap_err();
    assert!(super::errors::is_foreign_key_failure(&err), "{err:?}");
    assert!(matches!(
        super::write::delete_error(table("services").unwrap(), err),
        StoreError::Referenced {
            parent: "services",
            child: "routes"
        }
    ));
}
