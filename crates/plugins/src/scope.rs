//! Plugin instances of a config and Kong's scope precedence: which configuration of a plugin
//! applies to a request, by route, service and consumer.
//!
//! Kong looks, for each plugin name, for the first configuration scoped to: route + service +
//! consumer, route + consumer, service + consumer, route + service, consumer, route, service,
//! and finally the global one. Plugins marked `no_route` / `no_service` / `no_consumer` ignore
//! that part of the request. All of this except the consumer is known when the config is
//! compiled, so chains are resolved then; only the consumer lookup happens per request.

use crate::chain::{Chain, Entry, Instance};
use crate::directory::Directory;
use crate::registry::{PluginDef, Registry};
use silverback_model::entities::Plugin;
use silverback_model::{Config, Row};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum PluginBuildError {
    #[error("plugin '{name}' ({id}): {reason}")]
    Instance {
        name: String,
        id: Uuid,
        reason: String,
    },
    #[error("plugin row: {0}")]
    Row(#[from] silverback_model::RowError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Scope {
    route: Option<Uuid>,
    service: Option<Uuid>,
    consumer: Option<Uuid>,
}

/// One plugin name's configurations, by scope.
struct Configured {
    def: &'static PluginDef,
    scopes: HashMap<Scope, Arc<Instance>>,
}

/// The plugins of one config: built instances and the chains resolved from them.
pub struct Plugins {
    instances: HashMap<Uuid, (Arc<Row>, Arc<Instance>)>,
    /// In run order: priority descending, then name descending (Kong's tie-break).
    configured: Vec<Configured>,
    routes: HashSet<Uuid>,
    services: HashSet<Uuid>,
    chains: HashMap<(Option<Uuid>, Option<Uuid>), Arc<Chain>>,
    /// The chain of requests no route matched, and of every route without plugins of its own.
    pub global: Arc<Chain>,
    pub directory: Arc<Directory>,
}

impl std::fmt::Debug for Plugins {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugins")
            .field("instances", &self.instances.len())
            .finish_non_exhaustive()
    }
}

impl Default for Plugins {
    fn default() -> Self {
        Plugins {
            instances: HashMap::new(),
            configured: Vec::new(),
            routes: HashSet::new(),
            services: HashSet::new(),
            chains: HashMap::new(),
            global: Arc::new(Chain::default()),
            directory: Arc::new(Directory::default()),
        }
    }
}

impl Plugins {
    /// Builds every enabled plugin of `config`, reusing `previous`'s instances of rows that did
    /// not change.
    pub fn build(
        config: &Config,
        registry: &'static Registry,
        previous: Option<&Plugins>,
    ) -> Result<Plugins, PluginBuildError> {
        let mut instances = HashMap::new();
        let mut by_name: HashMap<&'static str, Configured> = HashMap::new();
        let mut routes = HashSet::new();
        let mut services = HashSet::new();
        for row in config.rows("plugins") {
            let p: Plugin = row.typed("plugins")?;
            if !p.enabled {
                continue;
            }
            let def = registry
                .get(&p.name)
                .ok_or_else(|| PluginBuildError::Instance {
                    name: p.name.clone(),
                    id: p.id,
                    reason: "not available in this build".into(),
                })?;
            let reused = previous
                .and_then(|prev| prev.instances.get(&p.id))
                .filter(|(r, _)| Arc::ptr_eq(r, row))
                .map(|(_, i)| i.clone());
            let instance = match reused {
                Some(i) => i,
                None => Arc::new(Instance {
                    id: p.id,
                    def,
                    handler: (def.build)(&p.config).map_err(|reason| {
                        PluginBuildError::Instance {
                            name: p.name.clone(),
                            id: p.id,
                            reason,
                        }
                    })?,
                }),
            };
            instances.insert(p.id, (row.clone(), instance.clone()));
            let scope = Scope {
                route: p.route.map(|f| f.id).filter(|_| !def.no_route),
                service: p.service.map(|f| f.id).filter(|_| !def.no_service),
                consumer: p.consumer.map(|f| f.id).filter(|_| !def.no_consumer),
            };
            routes.extend(scope.route);
            services.extend(scope.service);
            by_name
                .entry(def.name)
                .or_insert_with(|| Configured {
                    def,
                    scopes: HashMap::new(),
                })
                .scopes
                .insert(scope, instance);
        }
        let mut configured: Vec<Configured> = by_name.into_values().collect();
        configured.sort_by(|a, b| (b.def.priority, b.def.name).cmp(&(a.def.priority, a.def.name)));
        let directory = Arc::new(Directory::build(
            config,
            registry,
            previous.map(|p| &*p.directory),
        ));
        let mut plugins = Plugins {
            instances,
            configured,
            routes,
            services,
            chains: HashMap::new(),
            global: Arc::new(Chain::default()),
            directory,
        };
        plugins.global = plugins.chain(None, None);
        Ok(plugins)
    }

    /// The chain of a route (with its service, when it has one). Routes and services without
    /// plugins of their own share chains.
    pub fn chain(&mut self, route: Option<Uuid>, service: Option<Uuid>) -> Arc<Chain> {
        let key = (
            route.filter(|r| self.routes.contains(r)),
            service.filter(|s| self.services.contains(s)),
        );
        if let Some(c) = self.chains.get(&key) {
            return c.clone();
        }
        let chain = Arc::new(self.resolve(key.0, key.1));
        self.chains.insert(key, chain.clone());
        chain
    }

    fn resolve(&self, route: Option<Uuid>, service: Option<Uuid>) -> Chain {
        let mut entries = Vec::new();
        for c in &self.configured {
            let at = |route, service| {
                c.scopes.get(&Scope {
                    route,
                    service,
                    consumer: None,
                })
            };
            // Ranks follow Kong's lookup order; 3 and 5..7 are the consumer-less ones.
            let combos = [
                (3, route.zip(service).map(|(r, s)| (Some(r), Some(s)))),
                (5, route.map(|r| (Some(r), None))),
                (6, service.map(|s| (None, Some(s)))),
                (7, Some((None, None))),
            ];
            let base = combos.into_iter().find_map(|(rank, scope)| {
                let (r, s) = scope?;
                at(r, s).map(|i| (rank, i.clone()))
            });
            let base_rank = base.as_ref().map_or(8, |b| b.0);
            let mut by_consumer: HashMap<Uuid, (u8, Arc<Instance>)> = HashMap::new();
            for (scope, inst) in &c.scopes {
                let Some(consumer) = scope.consumer else {
                    continue;
                };
                let rank = match (scope.route, scope.service) {
                    (Some(r), Some(s)) if Some(r) == route && Some(s) == service => 0,
                    (Some(r), None) if Some(r) == route => 1,
                    (None, Some(s)) if Some(s) == service => 2,
                    (None, None) => 4,
                    _ => continue,
                };
                if rank < base_rank && by_consumer.get(&consumer).is_none_or(|b| rank < b.0) {
                    by_consumer.insert(consumer, (rank, inst.clone()));
                }
            }
            if base.is_none() && by_consumer.is_empty() {
                continue;
            }
            entries.push(Entry {
                def: c.def,
                base: base.map(|b| b.1),
                by_consumer: by_consumer.into_iter().map(|(k, v)| (k, v.1)).collect(),
            });
        }
        Chain::new(entries)
    }
}
