//! Serves the Admin API on `admin_listen`, with every committed change forwarded to the live
//! proxy.

use super::NodeError;
use silverback_admin::{AdminState, ConfigSink, NodeInfo, TargetHealth, UpstreamHealth};
use silverback_config::Settings;
use silverback_model::{Change, Config};
use silverback_plugins::Runtime;
use silverback_proxy::tls;
use silverback_proxy::{Reconfigurer, Shared, Update};
use silverback_store::{Store, is_runtime_entity};
use std::net::SocketAddr;
use std::sync::Arc;

/// The Admin API's sink: changes go to the reconfigurer; the response does not wait for the
/// rebuild (it is live within milliseconds). Changes to runtime state (oauth2 codes and
/// tokens) are not config: they only evict the plugins' cached copies.
struct LiveConfig(Reconfigurer, Arc<Runtime>);

impl ConfigSink for LiveConfig {
    fn changed(&self, changes: Vec<Change>) {
        let mut config = Vec::with_capacity(changes.len());
        for change in changes {
            match &change {
                Change::Deleted(entity, id) if is_runtime_entity(entity) => {
                    self.1.oauth2.forget(*id);
                }
                Change::Upserted(entity, row) if is_runtime_entity(entity) => {
                    let id = row
                        .get("id")
                        .and_then(|v| v.as_str())
                        .and_then(|s| s.parse().ok());
                    match id {
                        Some(id) => self.1.oauth2.forget(id),
                        None => self.1.oauth2.forget_all(),
                    }
                }
                _ => config.push(change),
            }
        }
        if !config.is_empty() {
            self.0.send(Update::Changes(config));
        }
    }
    fn replaced(&self, config: Arc<Config>) {
        self.1.oauth2.forget_all();
        self.0.send(Update::Replace(config));
    }
}

/// Upstream health from the balancers of the proxy's current snapshot.
struct Balancers(Arc<Shared>);

impl UpstreamHealth for Balancers {
    fn targets(&self, upstream: uuid::Uuid) -> Option<Vec<TargetHealth>> {
        let snapshot = self.0.snapshot();
        let balancer = snapshot.balancer(upstream)?;
        Some(
            balancer
                .status()
                .iter()
                .map(|t| TargetHealth {
                    target: t.target.target.clone(),
                    health: t.health(),
                    data: t.to_json(false),
                })
                .collect(),
        )
    }

    fn balancer(&self, upstream: uuid::Uuid) -> Option<serde_json::Value> {
        self.0
            .snapshot()
            .balancer(upstream)
            .map(|b| b.balancer_health())
    }

    fn set(
        &self,
        upstream: uuid::Uuid,
        target: &str,
        address: Option<&str>,
        healthy: bool,
    ) -> Result<(), String> {
        let snapshot = self.0.snapshot();
        let balancer = snapshot
            .balancer(upstream)
            .ok_or_else(|| "balancer not found".to_string())?;
        // An address is `ip[:port]` (Kong's default port 8000); a name means the whole target.
        let address = match address.map(silverback_model::typedefs::normalize_host) {
            None => None,
            Some(Ok(hp)) if hp.is_ip => hp.host.parse().ok().map(|ip| {
                SocketAddr::new(
                    ip,
                    hp.port
                        .unwrap_or(silverback_model::entities::DEFAULT_TARGET_PORT),
                )
            }),
            Some(Ok(_)) => None,
            Some(Err(e)) => return Err(e),
        };
        balancer.set_health(target, address, healthy)
    }
}

/// Binds every `admin_listen` address and serves the Admin API on `runtime`; `ssl` listeners
/// serve it over TLS with `admin_ssl_cert` (or the generated default). Returns the plain and
/// the TLS addresses.
pub fn serve<S: Store>(
    settings: &Settings,
    store: Arc<S>,
    shared: &Arc<Shared>,
    reconfigurer: Reconfigurer,
    plugins: Arc<Runtime>,
    runtime: &tokio::runtime::Handle,
) -> Result<(Vec<SocketAddr>, Vec<SocketAddr>), NodeError> {
    let mut node = NodeInfo::new(configuration(settings));
    node.node_id = shared.node_id;
    let mut state = AdminState::new(store, node);
    state.admin_token = settings
        .admin_token
        .as_ref()
        .map(|t| t.expose().to_string());
    state.runtime = plugins.clone();
    state.sink = Arc::new(LiveConfig(reconfigurer, plugins));
    let counters = shared.clone();
    state.status = Arc::new(move || silverback_proxy::status::server_counters(&counters));
    let scraped = shared.clone();
    state.metrics = Arc::new(move || {
        let shared = scraped.clone();
        Box::pin(async move { silverback_proxy::metrics::render(&shared).await })
    });
    state.health = Arc::new(Balancers(shared.clone()));
    let router = silverback_admin::router(state);
    let mut addrs = Vec::new();
    let mut tls_addrs = Vec::new();
    for l in &settings.admin_listen {
        let listener = silverback_proxy::listener::bind_one(l.addr, l.backlog.unwrap_or(511))
            .map_err(|source| NodeError::Listen {
                what: "admin",
                addr: l.addr,
                source,
            })?;
        let local = listener.local_addr().unwrap_or(l.addr);
        let router = router.clone();
        if l.ssl {
            let config = tls::control_config(settings, tls::Listener::Admin, l.http2)?;
            tls_addrs.push(local);
            let _guard = runtime.enter();
            let listener = tokio::net::TcpListener::from_std(listener).map_err(|source| {
                NodeError::Listen {
                    what: "admin",
                    addr: l.addr,
                    source,
                }
            })?;
            let incoming = silverback_admin::TlsIncoming {
                connections: tls::spawn_handshakes(listener, config),
                local,
            };
            runtime.spawn(async move {
                if let Err(e) = silverback_admin::serve_tls(incoming, router).await {
                    tracing::error!(error = %e, "admin listener failed");
                }
            });
            continue;
        }
        addrs.push(local);
        runtime.spawn(async move {
            let served = match tokio::net::TcpListener::from_std(listener) {
                Ok(l) => silverback_admin::serve(l, router).await,
                Err(e) => Err(e),
            };
            if let Err(e) = served {
                tracing::error!(error = %e, "admin listener failed");
            }
        });
    }
    Ok((addrs, tls_addrs))
}

/// The settings as `GET /` shows them: Kong's names, list settings as arrays, secrets masked.
fn configuration(settings: &Settings) -> serde_json::Value {
    let listy = |name: &str| {
        name.ends_with("_listen") || matches!(name, "trusted_ips" | "headers" | "headers_upstream")
    };
    settings
        .shown
        .iter()
        .map(|(name, value)| {
            let v = if listy(name) {
                serde_json::Value::Array(
                    value
                        .split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(|s| s.to_string().into())
                        .collect(),
                )
            } else {
                value.clone().into()
            };
            (name.clone(), v)
        })
        .collect::<serde_json::Map<_, _>>()
        .into()
}
