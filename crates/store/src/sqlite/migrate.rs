//! Schema migrations: numbered SQL files applied in order, each in its own transaction together
//! with its record in `schema_migrations`, so a crash leaves either all of a migration or none.
//!
//! Adding a migration is adding `migrations/00N_name.sql` and one line to [`MIGRATIONS`];
//! applied migrations are never edited (a database remembers what it ran by version). A file
//! holds plain DDL/DML without `BEGIN`/`COMMIT` (the runner owns the transaction), in SQL that
//! PostgreSQL accepts too where that costs nothing.

use super::{Sqlite, db_error};
use sqlx::{Connection, Row};

/// One schema change.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
}

/// Every migration this build knows, oldest first.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "001_core",
        sql: include_str!("migrations/001_core.sql"),
    },
    Migration {
        version: 2,
        name: "002_credentials",
        sql: include_str!("migrations/002_credentials.sql"),
    },
    Migration {
        version: 3,
        name: "003_ratelimiting_metrics",
        sql: include_str!("migrations/003_ratelimiting_metrics.sql"),
    },
];

/// The table that records applied migrations.
const CREATE_META: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
  version     INTEGER PRIMARY KEY,
  name        TEXT    NOT NULL,
  applied_at  INTEGER NOT NULL
)";

#[derive(Debug, thiserror::Error)]
pub enum MigrationError {
    /// The database has migrations this build does not know: it was written by a newer
    /// Silverback, and this one must not touch it.
    #[error(
        "the database has migrations this build does not know ({}); it was written by a newer Silverback",
        .0.join(", ")
    )]
    Unknown(Vec<String>),
    #[error("migration {name} failed: {reason}")]
    Failed { name: &'static str, reason: String },
    #[error("database error: {0}")]
    Database(String),
}

impl From<crate::StoreError> for MigrationError {
    fn from(e: crate::StoreError) -> Self {
        MigrationError::Database(e.to_string())
    }
}

/// Where the schema stands.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SchemaState {
    /// Applied migrations, by name, oldest first.
    pub executed: Vec<String>,
    /// Known migrations not applied yet.
    pub pending: Vec<String>,
    /// Applied migrations this build does not know.
    pub unknown: Vec<String>,
}

impl SchemaState {
    /// Nothing applied yet: the database needs `migrations bootstrap`.
    pub fn needs_bootstrap(&self) -> bool {
        self.executed.is_empty() && self.unknown.is_empty()
    }

    pub fn is_up_to_date(&self) -> bool {
        !self.needs_bootstrap() && self.pending.is_empty() && self.unknown.is_empty()
    }
}

impl Sqlite {
    /// Reads which migrations were applied.
    pub async fn schema_state(&self) -> Result<SchemaState, MigrationError> {
        let mut conn = self.writer.acquire().await.map_err(db_error)?;
        let exists: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'",
        )
        .fetch_optional(&mut *conn)
        .await
        .map_err(db_error)?;
        let applied: Vec<(i64, String)> = if exists.is_some() {
            sqlx::query("SELECT version, name FROM schema_migrations ORDER BY version")
                .fetch_all(&mut *conn)
                .await
                .map_err(db_error)?
                .iter()
                .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
                .collect::<Result<_, sqlx::Error>>()
                .map_err(db_error)?
        } else {
            Vec::new()
        };
        Ok(state_of(&applied))
    }

    /// Applies every pending migration, oldest first; returns the names applied. Refuses a
    /// database written by a newer build.
    pub async fn migrate(&self) -> Result<Vec<&'static str>, MigrationError> {
        let state = self.schema_state().await?;
        if !state.unknown.is_empty() {
            return Err(MigrationError::Unknown(state.unknown));
        }
        let mut conn = self.writer.acquire().await.map_err(db_error)?;
        let mut applied = Vec::new();
        for m in MIGRATIONS {
            if state.executed.iter().any(|e| e == m.name) {
                continue;
            }
            let failed = |e: sqlx::Error| MigrationError::Failed {
                name: m.name,
                reason: e.to_string(),
            };
            let mut tx = conn.begin_with("BEGIN IMMEDIATE").await.map_err(failed)?;
            sqlx::raw_sql(CREATE_META)
                .execute(&mut *tx)
                .await
                .map_err(failed)?;
            // Another process may have applied it since the state was read.
            let done: Option<i64> =
                sqlx::query_scalar("SELECT 1 FROM schema_migrations WHERE version = ?")
                    .bind(m.version)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(failed)?;
            if done.is_some() {
                continue;
            }
            sqlx::raw_sql(m.sql)
                .execute(&mut *tx)
                .await
                .map_err(failed)?;
            sqlx::query(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
            )
            .bind(m.version)
            .bind(m.name)
            .bind(silverback_model::now_secs())
            .execute(&mut *tx)
            .await
            .map_err(failed)?;
            tx.commit().await.map_err(failed)?;
            tracing::info!(migration = m.name, "database migration applied");
            applied.push(m.name);
        }
        Ok(applied)
    }

    /// Drops every table (entities, tags, the migration record): the database is as new.
    pub async fn reset(&self) -> Result<(), MigrationError> {
        let mut conn = self.writer.acquire().await.map_err(db_error)?;
        // Tables are dropped newest first (children before parents); checks are off for the
        // drop so a schema of a later version, with references we do not know, drops as well.
        sqlx::raw_sql("PRAGMA foreign_keys = OFF")
            .execute(&mut *conn)
            .await
            .map_err(db_error)?;
        let result = drop_all(&mut conn).await;
        // The connection goes back to the pool only with its usual settings.
        let restored = sqlx::raw_sql("PRAGMA foreign_keys = ON")
            .execute(&mut *conn)
            .await;
        if restored.is_err() {
            conn.close_on_drop();
        }
        result
    }
}

async fn drop_all(conn: &mut sqlx::SqliteConnection) -> Result<(), MigrationError> {
    let mut tx = conn.begin_with("BEGIN IMMEDIATE").await.map_err(db_error)?;
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' \
         ORDER BY rowid DESC",
    )
    .fetch_all(&mut *tx)
    .await
    .map_err(db_error)?;
    for name in names {
        // Names come from sqlite_master; quoted as identifiers.
        let sql = format!("DROP TABLE \"{}\"", name.replace('"', "\"\""));
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
    }
    tx.commit().await.map_err(db_error)?;
    Ok(())
}

/// Compares applied migrations with the known ones.
fn state_of(applied: &[(i64, String)]) -> SchemaState {
    let mut state = SchemaState::default();
    for (version, name) in applied {
        if MIGRATIONS.iter().any(|m| m.version == *version) {
            state.executed.push(name.clone());
        } else {
            state.unknown.push(name.clone());
        }
    }
    for m in MIGRATIONS {
        if !applied.iter().any(|(v, _)| *v == m.version) {
            state.pending.push(m.name.to_string());
        }
    }
    state
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_increase_and_names_match_files() {
        for pair in MIGRATIONS.windows(2) {
            assert!(pair[0].version < pair[1].version);
        }
        for m in MIGRATIONS {
            assert!(
                m.name.starts_with(&format!("{:03}_", m.version)),
                "{}",
                m.name
            );
        }
    }

    #[test]
    fn state_of_reports_pending_and_unknown() {
        let fresh = state_of(&[]);
        assert!(fresh.needs_bootstrap() && !fresh.is_up_to_date());
        assert_eq!(
            fresh.pending,
            vec![
                "001_core".to_string(),
                "002_credentials".to_string(),
                "003_ratelimiting_metrics".to_string()
            ]
        );
        let older = state_of(&[(1, "001_core".into())]);
        assert_eq!(
            older.pending,
            vec![
                "002_credentials".to_string(),
                "003_ratelimiting_metrics".to_string()
            ]
        );
        assert!(!older.is_up_to_date() && !older.needs_bootstrap());
        let done = state_of(&[
            (1, "001_core".into()),
            (2, "002_credentials".into()),
            (3, "003_ratelimiting_metrics".into()),
        ]);
        assert!(done.is_up_to_date());
        let newer = state_of(&[
            (1, "001_core".into()),
            (2, "002_credentials".into()),
            (3, "003_ratelimiting_metrics".into()),
            (99, "099_future".into()),
        ]);
        assert_eq!(newer.unknown, vec!["099_future".to_string()]);
        assert!(!newer.is_up_to_date() && !newer.needs_bootstrap());
    }
}
