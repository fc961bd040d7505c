//! prometheus: counts every request of the routes it covers (status codes, bandwidth, latency
//! histograms, by service, route and optionally consumer) for `/metrics` on the status and
//! Admin APIs, next to node-level metrics that are there with or without the plugin.
//! Recording happens in `log` (see `series.rs` for why it takes no lock); the text format is
//! in `exposition.rs`.

pub mod exposition;
mod schema;
pub mod series;

use crate::handler::{Handler, Phases};
use crate::pdk::{Ctx, ResponseSource, log::millis};
use crate::registry::PluginDef;
use schema::PrometheusConfig;
use serde_json::Value;
use silverback_model::Config;
use std::sync::Arc;

pub(crate) const NAME: &str = "prometheus";

pub(crate) fn definition() -> PluginDef {
    PluginDef {
        name: NAME,
        priority: 13,
        protocols: &[
            "grpc",
            "grpcs",
            "http",
            "https",
            "tcp",
            "tls",
            "tls_passthrough",
            "udp",
        ],
        no_consumer: false,
        no_route: false,
        no_service: false,
        config: schema::config,
        phases: Phases {
            log: true,
            ..Phases::default()
        },
        build,
        index: None,
    }
}

struct Prometheus {
    per_consumer: bool,
    status_code_metrics: bool,
    latency_metrics: bool,
    bandwidth_metrics: bool,
}

fn build(config: &Value) -> Result<Arc<dyn Handler>, String> {
    let conf: PrometheusConfig =
        serde_json::from_value(config.clone()).map_err(|e| e.to_string())?;
    Ok(Arc::new(Prometheus {
        per_consumer: conf.per_consumer.unwrap_or(false),
        status_code_metrics: conf.status_code_metrics.unwrap_or(false),
        latency_metrics: conf.latency_metrics.unwrap_or(false),
        bandwidth_metrics: conf.bandwidth_metrics.unwrap_or(false),
    }))
}

impl Handler for Prometheus {
    fn log(&self, ctx: &Ctx) {
        // Kong records nothing for a request that matched no route.
        let Some(route) = &ctx.route else { return };
        let mut id_buf = uuid::Uuid::encode_buffer();
        let route_label: &str = match &route.name {
            Some(n) => n,
            None => route.id.hyphenated().encode_lower(&mut id_buf),
        };
        let service = ctx.service.as_ref().and_then(|s| {
            s.name
                .as_deref()
                .or_else(|| s.row.map().get("host").and_then(Value::as_str))
        });
        let service = service.unwrap_or("");
        let consumer = match &ctx.consumer {
            Some(c) if self.per_consumer => c.username.as_deref().unwrap_or(""),
            _ => "",
        };
        let served = &ctx.served;
        series::record(&series::Observation {
            service,
            route: route_label,
            consumer,
            status: self.status_code_metrics.then(|| {
                let from_service = ctx.response.source == ResponseSource::Service;
                (ctx.response.status, from_service)
            }),
            bandwidth: self
                .bandwidth_metrics
                .then_some((served.request_size, served.response_size)),
            latencies: self.latency_metrics.then(|| {
                (
                    millis(served.request_latency),
                    served.upstream_latency.map(millis),
                    served.kong_latency.map_or(0, millis),
                )
            }),
        });
    }
}

/// What the configured prometheus plugins ask of `/metrics` (Kong's `exporter.configure`):
/// per-request metrics while any is enabled, upstream health when any enables it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Switches {
    pub enabled: bool,
    pub upstream_health: bool,
}

impl Switches {
    pub fn of(config: &Config) -> Self {
        let mut s = Switches::default();
        for row in config.rows("plugins") {
            let row = row.map();
            let enabled = row.get("enabled").and_then(Value::as_bool).unwrap_or(true);
            if row.get("name").and_then(Value::as_str) != Some(NAME) || !enabled {
                continue;
            }
            s.enabled = true;
            s.upstream_health |= row
                .get("config")
                .and_then(|c| c.get("upstream_health_metrics"))
                .and_then(Value::as_bool)
                .unwrap_or(false);
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn config(plugins: Value) -> Config {
        let rows = plugins
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p.as_object().cloned())
            .collect();
        Config::from_rows([("plugins", rows)].into_iter().collect())
    }

    #[test]
    fn switches_follow_enabled_plugins() {
        let none = config(json!([{"name": "key-auth", "enabled": true, "config": {}}]));
        assert_eq!(Switches::of(&none), Switches::default());

        let plain = config(json!([
            {"name": "prometheus", "enabled": true, "config": {"upstream_health_metrics": false}},
            {"name": "prometheus", "enabled": false, "config": {"upstream_health_metrics": true}},
        ]));
        assert_eq!(
            Switches::of(&plain),
            Switches {
                enabled: true,
                upstream_health: false
            }
        );

        let health = config(json!([
            {"name": "prometheus", "enabled": true, "config": {}},
            {"name": "prometheus", "enabled": true, "config": {"upstream_health_metrics": true}},
        ]));
        assert_eq!(
            Switches::of(&health),
            Switches {
                enabled: true,
                upstream_health: true
            }
        );
    }
}
