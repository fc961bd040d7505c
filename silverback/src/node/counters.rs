//! The `cluster` rate-limiting policy's counters in the node's SQLite store (Kong's
//! `ratelimiting_metrics` and `response_ratelimiting_metrics`), beside the config and never
//! through it: counting a request changes no config.

use silverback_plugins::PluginError;
use silverback_plugins::runtime::{CounterStore, Metric, MetricsTable, StoreFuture};
use silverback_store::sqlite::{self, Sqlite};
use std::sync::Arc;
use std::time::Duration;

/// How often rows of finished windows are deleted.
pub const PURGE_EVERY: Duration = Duration::from_secs(300);

pub struct SqliteCounters(pub Arc<Sqlite>);

fn table(t: MetricsTable) -> sqlite::MetricsTable {
    match t {
        MetricsTable::RateLimiting => sqlite::MetricsTable::RateLimiting,
        MetricsTable::ResponseRateLimiting => sqlite::MetricsTable::ResponseRateLimiting,
    }
}

fn row(m: Metric) -> sqlite::Metric {
    sqlite::Metric {
        identifier: m.identifier,
        period: m.period,
        period_date: m.period_date,
        service_id: m.service_id.to_string(),
        route_id: m.route_id.to_string(),
        expires_at: m.expires_at,
    }
}

fn backend(e: silverback_store::StoreError) -> PluginError {
    PluginError::Backend {
        what: "rate-limiting counters",
        reason: e.to_string(),
    }
}

impl CounterStore for SqliteCounters {
    fn take(
        &self,
        t: MetricsTable,
        metrics: Vec<(Metric, u64)>,
    ) -> StoreFuture<'_, (Vec<u64>, Option<usize>)> {
        Box::pin(async move {
            let rows: Vec<_> = metrics.into_iter().map(|(m, l)| (row(m), l)).collect();
            self.0.take_metrics(table(t), &rows).await.map_err(backend)
        })
    }

    fn usage(&self, t: MetricsTable, metrics: Vec<Metric>) -> StoreFuture<'_, Vec<u64>> {
        Box::pin(async move {
            let rows: Vec<_> = metrics.into_iter().map(row).collect();
            self.0.metrics(table(t), &rows).await.map_err(backend)
        })
    }

    fn add(&self, t: MetricsTable, metrics: Vec<Metric>, value: u64) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            let rows: Vec<_> = metrics.into_iter().map(row).collect();
            self.0
                .add_metrics(table(t), &rows, value)
                .await
                .map_err(backend)
        })
    }
}

/// Deletes finished windows every [`PURGE_EVERY`].
pub fn spawn_purge(db: Arc<Sqlite>, runtime: &tokio::runtime::Handle) {
    runtime.spawn(async move {
        loop {
            tokio::time::sleep(PURGE_EVERY).await;
            match db
                .purge_metrics(silverback_plugins::runtime::now_secs())
                .await
            {
                Ok(0) => {}
                Ok(n) => tracing::debug!(rows = n, "finished rate-limiting windows purged"),
                Err(e) => tracing::warn!(error = %e, "purging rate-limiting counters failed"),
            }
        }
    });
}
