//! The `cluster` policy's counters (Kong's `ratelimiting_metrics` and
//! `response_ratelimiting_metrics`): rows beside the config, written on the one write
//! connection so a check and its increment never interleave with another request's.

use super::{Sqlite, db_error};
use crate::StoreError;
use sqlx::{Connection, SqliteConnection};

/// Which table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricsTable {
    RateLimiting,
    ResponseRateLimiting,
}

impl MetricsTable {
    fn name(self) -> &'static str {
        match self {
            MetricsTable::RateLimiting => "ratelimiting_metrics",
            MetricsTable::ResponseRateLimiting => "response_ratelimiting_metrics",
        }
    }
}

/// One counter: its primary key and when its row can go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metric {
    pub identifier: String,
    pub period: String,
    /// The window start, seconds.
    pub period_date: i64,
    pub service_id: String,
    pub route_id: String,
    /// Seconds since the epoch after which the row is not needed.
    pub expires_at: i64,
}

fn upsert(table: MetricsTable, guarded: bool) -> String {
    let table = table.name();
    // A guarded increment changes nothing (and returns no row) once the counter is at the
    // limit given as parameter 7.
    let guard = if guarded {
        format!(" WHERE {table}.value < ?7")
    } else {
        String::new()
    };
    format!(
        "INSERT INTO {table} (identifier, period, period_date, service_id, route_id, value, ttl) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?8) \
         ON CONFLICT (identifier, period, period_date, service_id, route_id) \
         DO UPDATE SET value = {table}.value + excluded.value{guard} \
         RETURNING value"
    )
}

fn select(table: MetricsTable) -> String {
    format!(
        "SELECT value FROM {} WHERE identifier = ?1 AND period = ?2 AND period_date = ?3 \
         AND service_id = ?4 AND route_id = ?5",
        table.name()
    )
}

async fn value(
    conn: &mut SqliteConnection,
    table: MetricsTable,
    m: &Metric,
) -> Result<u64, StoreError> {
    let v: Option<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(select(table)))
        .bind(&m.identifier)
        .bind(&m.period)
        .bind(m.period_date)
        .bind(&m.service_id)
        .bind(&m.route_id)
        .fetch_optional(&mut *conn)
        .await
        .map_err(db_error)?;
    Ok(v.unwrap_or(0).max(0) as u64)
}

impl Sqlite {
    /// Adds 1 to every counter unless one has reached its limit, in one transaction: returns
    /// each counter's value before, and the index of the first full one (nothing changed then).
    pub async fn take_metrics(
        &self,
        table: MetricsTable,
        metrics: &[(Metric, u64)],
    ) -> Result<(Vec<u64>, Option<usize>), StoreError> {
        let mut conn = self.writer.acquire().await.map_err(db_error)?;
        let mut tx = conn.begin_with("BEGIN IMMEDIATE").await.map_err(db_error)?;
        let mut used = Vec::with_capacity(metrics.len());
        let mut refused = None;
        for (i, (m, limit)) in metrics.iter().enumerate() {
            let after: Option<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(upsert(table, true)))
                .bind(&m.identifier)
                .bind(&m.period)
                .bind(m.period_date)
                .bind(&m.service_id)
                .bind(&m.route_id)
                .bind(1_i64)
                .bind(i64::try_from(*limit).unwrap_or(i64::MAX))
                .bind(m.expires_at)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db_error)?;
            match after {
                Some(v) => used.push((v - 1).max(0) as u64),
                None => {
                    used.push(value(&mut tx, table, m).await?);
                    refused.get_or_insert(i);
                }
            }
        }
        if refused.is_some() {
            tx.rollback().await.map_err(db_error)?;
        } else {
            tx.commit().await.map_err(db_error)?;
        }
        Ok((used, refused))
    }

    /// The counters' values (0 for a window without a row).
    pub async fn metrics(
        &self,
        table: MetricsTable,
        metrics: &[Metric],
    ) -> Result<Vec<u64>, StoreError> {
        let mut conn = self.readers.acquire().await.map_err(db_error)?;
        let mut out = Vec::with_capacity(metrics.len());
        for m in metrics {
            out.push(value(&mut conn, table, m).await?);
        }
        Ok(out)
    }

    /// Adds `value` to every counter, in one transaction.
    pub async fn add_metrics(
        &self,
        table: MetricsTable,
        metrics: &[Metric],
        value: u64,
    ) -> Result<(), StoreError> {
        let mut conn = self.writer.acquire().await.map_err(db_error)?;
        let mut tx = conn.begin_with("BEGIN IMMEDIATE").await.map_err(db_error)?;
        for m in metrics {
            sqlx::query(sqlx::AssertSqlSafe(upsert(table, false)))
                .bind(&m.identifier)
                .bind(&m.period)
                .bind(m.period_date)
                .bind(&m.service_id)
                .bind(&m.route_id)
                .bind(i64::try_from(value).unwrap_or(i64::MAX))
                .bind(i64::MAX)
                .bind(m.expires_at)
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
        }
        tx.commit().await.map_err(db_error)
    }

    /// Deletes counters whose window is over; how many went.
    pub async fn purge_metrics(&self, now: i64) -> Result<u64, StoreError> {
        let mut purged = 0;
        for table in [
            MetricsTable::RateLimiting,
            MetricsTable::ResponseRateLimiting,
        ] {
            let sql = format!("DELETE FROM {} WHERE ttl < ?1", table.name());
            purged += sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(now)
                .execute(&self.writer)
                .await
                .map_err(db_error)?
                .rows_affected();
        }
        Ok(purged)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn metric(period: &str) -> Metric {
        Metric {
            identifier: "1.2.3.4".into(),
            period: period.into(),
            period_date: 60,
            service_id: "00000000-0000-0000-0000-000000000000".into(),
            route_id: "00000000-0000-0000-0000-000000000001".into(),
            expires_at: 120,
        }
    }

    #[tokio::test]
    async fn take_is_all_or_nothing_and_add_counts_without_limit() {
        let dir = std::env::temp_dir().join(format!("sb-metrics-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let db = Sqlite::open(dir.join("s.db")).await.unwrap();
        db.migrate().await.unwrap();
        let t = MetricsTable::RateLimiting;
        let limits = [(metric("second"), 5), (metric("minute"), 2)];
        assert_eq!(
            db.take_metrics(t, &limits).await.unwrap(),
            (vec![0, 0], None)
        );
        assert_eq!(
            db.take_metrics(t, &limits).await.unwrap(),
            (vec![1, 1], None)
        );
        assert_eq!(
            db.take_metrics(t, &limits).await.unwrap(),
            (vec![2, 2], Some(1))
        );
        // The refused request was not counted in `second` either.
        let both = [metric("second"), metric("minute")];
        assert_eq!(db.metrics(t, &both).await.unwrap(), vec![2, 2]);
        db.add_metrics(t, &both[..1], 7).await.unwrap();
        assert_eq!(db.metrics(t, &both).await.unwrap(), vec![9, 2]);
        assert_eq!(
            db.metrics(MetricsTable::ResponseRateLimiting, &both)
                .await
                .unwrap(),
            vec![0, 0]
        );
        assert_eq!(db.purge_metrics(121).await.unwrap(), 2);
        db.close().await;
        let _ = std::fs::remove_dir_all(&dir);
    }
}
