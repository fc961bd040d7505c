//! What the Admin API needs from the process that serves it.

use serde_json::Value;
use silverback_model::Config;
use silverback_model::entities::PluginSchemas;
use silverback_store::Change;
use std::sync::Arc;
use uuid::Uuid;

/// Receives every committed change, before the response is sent, so the gateway can update its
/// live snapshot. Implementations must be cheap (forward to a channel or a task); the request
/// waits for them.
pub trait ConfigSink: Send + Sync {
    /// Rows written or deleted by one entity write (cascades included).
    fn changed(&self, changes: Vec<Change>);
    /// The whole config was replaced (`POST /config`).
    fn replaced(&self, config: Arc<Config>);
}

/// A sink that drops everything (tests, tools that only read).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoSink;

impl ConfigSink for NoSink {
    fn changed(&self, _: Vec<Change>) {}
    fn replaced(&self, _: Arc<Config>) {}
}

/// A plugin this build implements, as `GET /` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginInfo {
    pub name: &'static str,
    pub version: String,
    pub priority: i32,
}

/// The bundled plugins of a registry. Kong's bundled plugins carry Kong's version.
pub fn plugin_infos(registry: &silverback_plugins::Registry) -> Vec<PluginInfo> {
    let mut out: Vec<PluginInfo> = registry
        .iter()
        .map(|p| PluginInfo {
            name: p.name,
            version: silverback_model::KONG_VERSION.to_string(),
            priority: p.priority,
        })
        .collect();
    out.sort_by_key(|p| p.name);
    out
}

/// Who this node is, for `GET /`.
#[derive(Debug, Clone)]
pub struct NodeInfo {
    /// The Kong version whose Admin API is implemented; reported as `version` so clients (decK,
    /// go-kong) pick their Kong 3 behaviour.
    pub kong_version: String,
    /// Silverback's own version, reported separately.
    pub silverback_version: String,
    pub hostname: String,
    pub node_id: Uuid,
    /// The node's settings as `GET /` shows them. Must already be free of secrets; it is
    /// passed through [`redact_configuration`] again before being sent.
    pub configuration: Value,
}

impl NodeInfo {
    /// This machine's hostname, a fresh node id and the given configuration.
    pub fn new(configuration: Value) -> Self {
        NodeInfo {
            kong_version: silverback_model::KONG_VERSION.to_string(),
            silverback_version: env!("CARGO_PKG_VERSION").to_string(),
            hostname: system_hostname(),
            node_id: Uuid::new_v4(),
            configuration: redact_configuration(configuration),
        }
    }
}

/// The kernel's hostname, or `localhost` where it cannot be read.
pub fn system_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

/// Whether a setting name holds a secret: the admin token, passwords, keys, tokens, secrets.
pub fn is_secret_key(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n == "admin_token"
        || n.contains("password")
        || n.contains("secret")
        || n.ends_with("_key")
        || n.ends_with("_token")
        || n.ends_with("_cert_key")
}

/// Replaces the values of secret settings (at any depth) with `"******"`, as Kong's
/// `remove_sensitive` does.
pub fn redact_configuration(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .map(|(k, v)| {
                    if is_secret_key(&k) && !v.is_null() {
                        (k, Value::String("******".into()))
                    } else {
                        (k, redact_configuration(v))
                    }
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(redact_configuration).collect()),
        other => other,
    }
}

/// Produces the `server` section of `GET /status` (connections, total_requests, ...).
pub type StatusFn = Arc<dyn Fn() -> Value + Send + Sync>;

/// Produces the `GET /metrics` body (the proxy's node and plugin metrics).
pub type MetricsFn = Arc<
    dyn Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = String> + Send>> + Send + Sync,
>;

/// One target's health as the node's balancer sees it.
#[derive(Debug, Clone)]
pub struct TargetHealth {
    /// `host:port`, as the target is stored.
    pub target: String,
    /// `HEALTHY`, `UNHEALTHY`, `HEALTHCHECKS_OFF` or `DNS_ERROR`.
    pub health: &'static str,
    /// Kong's per-target status object (`host`, `port`, `dns`, `weight`, `addresses` ...).
    pub data: Value,
}

/// The upstreams' health, served by the node's balancers (`/upstreams/{u}/health` and the
/// target `healthy` / `unhealthy` endpoints).
pub trait UpstreamHealth: Send + Sync {
    /// Every target of the upstream; `None` when this node has no balancer for it.
    fn targets(&self, upstream: Uuid) -> Option<Vec<TargetHealth>>;
    /// Kong's `get_balancer_health` object.
    fn balancer(&self, upstream: Uuid) -> Option<Value>;
    /// Marks a target (or one of its addresses, `ip[:port]`) healthy or unhealthy; the error
    /// is Kong's message.
    fn set(
        &self,
        upstream: Uuid,
        target: &str,
        address: Option<&str>,
        healthy: bool,
    ) -> Result<(), String>;
}

/// No balancers (tools and tests that only serve entities).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoBalancers;

impl UpstreamHealth for NoBalancers {
    fn targets(&self, _: Uuid) -> Option<Vec<TargetHealth>> {
        None
    }
    fn balancer(&self, _: Uuid) -> Option<Value> {
        None
    }
    fn set(&self, _: Uuid, _: &str, _: Option<&str>, _: bool) -> Result<(), String> {
        Err("balancer not found".into())
    }
}

/// Everything the Admin API serves from.
pub struct AdminState<S> {
    pub store: Arc<S>,
    /// Plugin schemas, for validating plugin configs and `GET /schemas/plugins/{name}`.
    pub plugins: &'static dyn PluginSchemas,
    /// The plugins available on this node (`GET /`, `GET /plugins/enabled`).
    pub plugin_list: Vec<PluginInfo>,
    pub node: NodeInfo,
    /// When set, every request must carry it (`Kong-Admin-Token` or `Authorization: Bearer`).
    pub admin_token: Option<String>,
    pub sink: Arc<dyn ConfigSink>,
    pub status: StatusFn,
    /// The state plugins keep at run time, shared with the proxy (proxy-cache's entries).
    pub runtime: Arc<silverback_plugins::Runtime>,
    pub metrics: MetricsFn,
    pub health: Arc<dyn UpstreamHealth>,
    /// Held from a store write until its changes reach the sink.
    pub write_order: tokio::sync::Mutex<()>,
}

impl<S> AdminState<S> {
    /// A state with the bundled plugins, no token, no sink, an empty status section and no
    /// metrics.
    pub fn new(store: Arc<S>, node: NodeInfo) -> Self {
        AdminState {
            store,
            plugins: &*silverback_plugins::registry::BUNDLED,
            plugin_list: plugin_infos(&silverback_plugins::registry::BUNDLED),
            node,
            admin_token: None,
            sink: Arc::new(NoSink),
            status: Arc::new(|| Value::Object(Default::default())),
            runtime: Arc::new(silverback_plugins::Runtime::in_memory()),
            metrics: Arc::new(|| Box::pin(async { String::new() })),
            health: Arc::new(NoBalancers),
            write_order: tokio::sync::Mutex::new(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secrets_are_redacted() {
        let v = redact_configuration(json!({
            "admin_token": "t0p",
            "pg_password": "pw",
            "ssl_cert_key": "/k.pem",
            "database": "off",
            "nested": {"redis_password": "x", "ok": 1},
            "pg_user": "kong",
            "lua_ssl_trusted_certificate": [],
            "unset_password": null,
        }));
        assert_eq!(v["admin_token"], "******");
        assert_eq!(v["pg_password"], "******");
        assert_eq!(v["ssl_cert_key"], "******");
        assert_eq!(v["nested"]["redis_password"], "******");
        assert_eq!(v["database"], "off");
        assert_eq!(v["nested"]["ok"], 1);
        assert_eq!(v["pg_user"], "kong");
        assert_eq!(v["unset_password"], Value::Null);
    }
}
