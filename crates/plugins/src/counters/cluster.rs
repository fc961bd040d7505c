//! The `cluster` policy: counters as rows of the node's config store (Kong's
//! `ratelimiting_metrics`), through the runtime's [`CounterStore`]. Taking is one transaction
//! on the store's single writer, so it is exact across the node's workers.

use super::{CounterError, Counting, Limit, Scope, Taken, period_len, period_name, window_start};
use crate::runtime::{CounterStore, Metric, MetricsTable, Runtime};
use smallvec::SmallVec;
use std::sync::Arc;
use uuid::Uuid;

fn store(runtime: &Runtime) -> Result<&Arc<dyn CounterStore>, CounterError> {
    runtime
        .counters
        .as_ref()
        .ok_or_else(|| CounterError::Store("this node has no database for counters".into()))
}

fn table(scope: &Scope<'_>) -> MetricsTable {
    match scope.counting {
        Counting::Requests => MetricsTable::RateLimiting,
        Counting::Responses => MetricsTable::ResponseRateLimiting,
    }
}

/// Kong's row key: response-ratelimiting names its periods `<limit>_<period>`.
fn metric(scope: &Scope<'_>, period: u8, now: i64) -> Metric {
    let window = window_start(period, now);
    Metric {
        identifier: scope.identifier.to_string(),
        period: match scope.name {
            Some(name) => format!("{name}_{}", period_name(period)),
            None => period_name(period).to_string(),
        },
        period_date: window,
        service_id: scope.service.unwrap_or(Uuid::nil()),
        route_id: scope.route.unwrap_or(Uuid::nil()),
        expires_at: window + period_len(period),
    }
}

fn failed(e: crate::PluginError) -> CounterError {
    CounterError::Store(e.to_string())
}

pub async fn take(
    runtime: &Runtime,
    scope: Scope<'_>,
    limits: &[Limit],
    now: i64,
) -> Result<Taken, CounterError> {
    let metrics = limits
        .iter()
        .map(|&(p, limit)| (metric(&scope, p, now), limit))
        .collect();
    let (used, refused) = store(runtime)?
        .take(table(&scope), metrics)
        .await
        .map_err(failed)?;
    Ok(Taken {
        used: used.into_iter().collect(),
        refused,
    })
}

pub async fn usage(
    runtime: &Runtime,
    scope: Scope<'_>,
    periods: &[u8],
    now: i64,
) -> Result<SmallVec<[u64; 6]>, CounterError> {
    let metrics = periods.iter().map(|&p| metric(&scope, p, now)).collect();
    let values = store(runtime)?
        .usage(table(&scope), metrics)
        .await
        .map_err(failed)?;
    Ok(values.into_iter().collect())
}

pub async fn add(
    runtime: &Runtime,
    scope: Scope<'_>,
    periods: &[u8],
    now: i64,
    value: u64,
) -> Result<(), CounterError> {
    let metrics = periods.iter().map(|&p| metric(&scope, p, now)).collect();
    store(runtime)?
        .add(table(&scope), metrics, value)
        .await
        .map_err(failed)
}
