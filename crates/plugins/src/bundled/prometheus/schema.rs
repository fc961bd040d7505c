//! prometheus's config (Kong 3.x `kong/plugins/prometheus/schema.lua`).

use serde::Deserialize;
use silverback_model::schema::{Field, Record};

/// Which metrics a request records. `ai_metrics` and `wasm_metrics` are accepted for
/// compatibility; nothing here produces AI or Wasm metrics. `upstream_health_metrics` is read
/// from the config rows at scrape time (`Switches`).
#[derive(Debug, Clone, Copy, Default, Deserialize)]
pub struct PrometheusConfig {
    #[serde(default)]
    pub per_consumer: Option<bool>,
    #[serde(default)]
    pub status_code_metrics: Option<bool>,
    #[serde(default)]
    pub latency_metrics: Option<bool>,
    #[serde(default)]
    pub bandwidth_metrics: Option<bool>,
}

pub fn config() -> Record {
    let flag = || Field::boolean().default(false);
    Record::new(vec![
        ("per_consumer", flag()),
        ("status_code_metrics", flag()),
        ("ai_metrics", flag()),
        ("latency_metrics", flag()),
        ("bandwidth_metrics", flag()),
        ("upstream_health_metrics", flag()),
        ("wasm_metrics", flag()),
    ])
}
