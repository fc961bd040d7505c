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
use serde_json::Value;
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

/// The config a handler is built from: the row's, plus the ids of the entities the plugin is
/// scoped to, as Kong adds `route_id`, `service_id` and `consumer_id` to the `conf` its
/// handlers get (rate-limiting keys its counters by them).
fn handler_config(p: &Plugin) -> Value {
    let mut config = p.config.clone();
    if let Some(map) = config.as_object_mut() {
        for (key, fk) in [
            ("route_id", &p.route),
            ("service_id", &p.service),
            ("consumer_id", &p.consumer),
        ] {
            if let Some(fk) = fk {
                map.insert(key.into(), Value::String(fk.id.to_string()));
            }
        }
    }
    config
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
                    handler: (def.build)(&handler_config(&p)).map_err(|reason| {
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;
    use crate::handler::{Handler, Phase, Phases, PluginError};
    use crate::pdk::{Ctx, Exit};
    use http::{HeaderName, HeaderValue, StatusCode};
    use serde_json::{Value, json};
    use silverback_model::schema::Record;
    use std::collections::BTreeMap;
    use std::sync::LazyLock;

    /// Appends `config.tag` to the request's `x-order` header; exits with `config.exit`.
    struct Tag(Value);

    impl Handler for Tag {
        fn access<'a>(&'a self, ctx: &'a mut Ctx) -> Phase<'a> {
            match self.0["tag"].as_str() {
                Some("panic") => panic!("boom"),
                Some("fail") => return Err(PluginError::internal("broken")).into(),
                _ => {}
            }
            let mut order = ctx
                .request
                .header("x-order")
                .unwrap_or_default()
                .to_string();
            order.push_str(self.0["tag"].as_str().unwrap_or("?"));
            ctx.request.set_header(
                HeaderName::from_static("x-order"),
                HeaderValue::from_str(&order).unwrap(),
            );
            match self.0["exit"].as_u64() {
                Some(code) => Exit::empty(StatusCode::from_u16(code as u16).unwrap()).into(),
                None => Phase::CONTINUE,
            }
        }
    }

    fn def(name: &'static str, priority: i32, no_consumer: bool) -> PluginDef {
        PluginDef {
            name,
            priority,
            protocols: &["http", "https"],
            no_consumer,
            no_route: false,
            no_service: false,
            config: || Record::new(vec![]),
            phases: Phases::ACCESS,
            build: |c| Ok(Arc::new(Tag(c.clone()))),
            index: None,
        }
    }

    /// Works in every response phase: marks the head, upper-cases the body, ends it with `!`
    /// and counts its log calls.
    struct Filter;

    static LOGGED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

    impl Handler for Filter {
        fn access<'a>(&'a self, _ctx: &'a mut Ctx) -> Phase<'a> {
            panic!("access must not run after an earlier plugin's exit");
        }
        fn header_filter(&self, ctx: &mut Ctx) -> Result<(), PluginError> {
            ctx.response.headers.set(
                HeaderName::from_static("x-filtered"),
                HeaderValue::from_static("yes"),
            );
            Ok(())
        }
        fn body_filter(
            &self,
            _ctx: &mut Ctx,
            chunk: &mut bytes::Bytes,
            eof: bool,
        ) -> Result<(), PluginError> {
            *chunk = if eof {
                bytes::Bytes::from_static(b"!")
            } else {
                bytes::Bytes::from(chunk.to_ascii_uppercase())
            };
            Ok(())
        }
        fn log(&self, _ctx: &Ctx) {
            LOGGED.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }

    static REGISTRY: LazyLock<Registry> = LazyLock::new(|| {
        Registry::new(vec![
            PluginDef {
                phases: Phases {
                    rewrite: false,
                    access: true,
                    header_filter: true,
                    body_filter: true,
                    log: true,
                    serialize: false,
                    tries: false,
                },
                build: |_| Ok(Arc::new(Filter)),
                ..def("filter", 5, false)
            },
            def("low", 10, false),
            def("high", 1000, false),
            def("same-a", 500, false),
            def("same-b", 500, false),
            def("auth", 2000, true),
        ])
    });

    const ROUTE: &str = "00000000-0000-0000-0000-00000000000a";
    const SERVICE: &str = "00000000-0000-0000-0000-00000000000b";
    const CONSUMER: &str = "00000000-0000-0000-0000-00000000000c";

    fn plugin(n: u32, name: &str, tag: &str, scope: &[(&str, &str)]) -> Value {
        let mut p = json!({
            "id": format!("00000000-0000-0000-0001-{n:012}"),
            "name": name, "config": {"tag": tag}, "protocols": ["http"], "enabled": true,
            "route": null, "service": null, "consumer": null,
        });
        for (k, v) in scope {
            p[*k] = json!({"id": v});
        }
        p
    }

    fn config(plugins: Vec<Value>) -> Config {
        let mut rows = BTreeMap::new();
        rows.insert(
            "plugins",
            plugins
                .into_iter()
                .map(|p| p.as_object().unwrap().clone())
                .collect(),
        );
        rows.insert(
            "consumers",
            vec![
                json!({"id": CONSUMER, "username": "c"})
                    .as_object()
                    .unwrap()
                    .clone(),
            ],
        );
        Config::from_rows(rows)
    }

    fn ctx(plugins: &Plugins) -> Ctx {
        Ctx::for_tests(plugins.directory.clone())
    }

    fn uuid(s: &str) -> Option<Uuid> {
        s.parse().ok()
    }

    async fn run(plugins: &mut Plugins, consumer: bool) -> (String, Option<Exit>) {
        let chain = plugins.chain(uuid(ROUTE), uuid(SERVICE));
        let mut ctx = ctx(plugins);
        if consumer {
            let c = plugins
                .directory
                .consumer(&uuid(CONSUMER).unwrap())
                .cloned();
            ctx.authenticate(c, None);
        }
        let (_, exit) = chain.access(&mut ctx).await;
        let order = ctx
            .request
            .header("x-order")
            .unwrap_or_default()
            .to_string();
        (order, exit)
    }

    #[tokio::test]
    async fn priority_order_with_name_tie_break() {
        let cfg = config(vec![
            plugin(1, "low", "L", &[]),
            plugin(2, "same-a", "A", &[]),
            plugin(3, "high", "H", &[]),
            plugin(4, "same-b", "B", &[]),
        ]);
        let mut p = Plugins::build(&cfg, &REGISTRY, None).unwrap();
        // Equal priorities: Kong sorts by name, descending.
        assert_eq!(run(&mut p, false).await.0, "HBAL");
    }

    #[tokio::test]
    async fn scope_precedence_like_kong() {
        let r = ("route", ROUTE);
        let s = ("service", SERVICE);
        let c = ("consumer", CONSUMER);
        let all = vec![
            plugin(1, "low", "global", &[]),
            plugin(2, "low", "S", &[s]),
            plugin(3, "low", "R", &[r]),
            plugin(4, "low", "C", &[c]),
            plugin(5, "low", "RS", &[r, s]),
            plugin(6, "low", "SC", &[s, c]),
            plugin(7, "low", "RC", &[r, c]),
            plugin(8, "low", "RSC", &[r, s, c]),
        ];
        // Removing the winner each time walks Kong's order down.
        let order_with_consumer = ["RSC", "RC", "SC", "RS", "C", "R", "S", "global"];
        for i in 0..order_with_consumer.len() {
            let rows: Vec<Value> = all
                .iter()
                .filter(|p| {
                    !order_with_consumer[..i].contains(&p["config"]["tag"].as_str().unwrap())
                })
                .cloned()
                .collect();
            let mut p = Plugins::build(&config(rows), &REGISTRY, None).unwrap();
            assert_eq!(
                run(&mut p, true).await.0,
                order_with_consumer[i],
                "step {i}"
            );
        }
        // Without a consumer, consumer-scoped configs never apply.
        let mut p = Plugins::build(&config(all.clone()), &REGISTRY, None).unwrap();
        assert_eq!(run(&mut p, false).await.0, "RS");
        // A plugin that cannot be consumer-scoped ignores the consumer part.
        let mut p = Plugins::build(
            &config(vec![
                plugin(1, "auth", "G", &[]),
                plugin(2, "auth", "R", &[r]),
            ]),
            &REGISTRY,
            None,
        )
        .unwrap();
        assert_eq!(run(&mut p, true).await.0, "R");
        // A route on another service falls back to the global config.
        let other = p.chain(uuid("00000000-0000-0000-0000-0000000000ff"), uuid(SERVICE));
        assert_eq!(other.names(), vec!["auth"]);
    }

    #[tokio::test]
    async fn an_exit_stops_access_and_failures_become_500() {
        let cfg = config(vec![
            plugin(1, "high", "H", &[]),
            plugin(2, "low", "L", &[]),
        ]);
        let mut cfg_exit = cfg.clone();
        cfg_exit = cfg_exit.apply(&[silverback_model::Change::Upserted("plugins", {
            let mut p = plugin(1, "high", "H", &[]);
            p["config"]["exit"] = json!(403);
            p.as_object().unwrap().clone()
        })]);
        let mut p = Plugins::build(&cfg_exit, &REGISTRY, None).unwrap();
        let (order, exit) = run(&mut p, false).await;
        assert_eq!(order, "H");
        assert_eq!(exit.unwrap().status, 403);

        for tag in ["panic", "fail"] {
            let mut p = Plugins::build(
                &config(vec![
                    plugin(1, "high", tag, &[]),
                    plugin(2, "low", "L", &[]),
                ]),
                &REGISTRY,
                None,
            )
            .unwrap();
            let (order, exit) = run(&mut p, false).await;
            assert_eq!(order, "", "{tag}: later plugins do not run");
            let exit = exit.unwrap();
            assert_eq!(exit.status, 500);
            assert!(
                matches!(&exit.body, crate::ExitBody::Error(m) if m == "An unexpected error occurred")
            );
        }
    }

    #[tokio::test]
    async fn unchanged_rows_keep_their_instances() {
        let cfg = config(vec![
            plugin(1, "high", "H", &[]),
            plugin(2, "low", "L", &[]),
        ]);
        let first = Plugins::build(&cfg, &REGISTRY, None).unwrap();
        let next_cfg = cfg.apply(&[silverback_model::Change::Upserted(
            "plugins",
            plugin(2, "low", "L2", &[]).as_object().unwrap().clone(),
        )]);
        let next = Plugins::build(&next_cfg, &REGISTRY, Some(&first)).unwrap();
        let id = |n: u32| {
            format!("00000000-0000-0000-0001-{n:012}")
                .parse::<Uuid>()
                .unwrap()
        };
        assert!(Arc::ptr_eq(
            &first.instances[&id(1)].1,
            &next.instances[&id(1)].1
        ));
        assert!(!Arc::ptr_eq(
            &first.instances[&id(2)].1,
            &next.instances[&id(2)].1
        ));
        assert!(Arc::ptr_eq(
            &first
                .directory
                .consumer(&uuid(CONSUMER).unwrap())
                .unwrap()
                .row,
            &next
                .directory
                .consumer(&uuid(CONSUMER).unwrap())
                .unwrap()
                .row
        ));
    }

    #[tokio::test]
    async fn response_phases_run_for_plugins_collected_after_an_exit() {
        let mut exit = plugin(1, "high", "H", &[]);
        exit["config"]["exit"] = json!(403);
        let cfg = config(vec![exit, plugin(2, "filter", "F", &[])]);
        let mut p = Plugins::build(&cfg, &REGISTRY, None).unwrap();
        let chain = p.chain(uuid(ROUTE), uuid(SERVICE));
        let mut ctx = ctx(&p);
        let (run, exit) = chain.access(&mut ctx).await;
        assert_eq!(exit.unwrap().status, 403);
        assert!(run.has_header_filter() && run.needs_body_hooks());

        ctx.response.status = StatusCode::FORBIDDEN;
        assert!(run.header_filter(&mut ctx).is_none());
        assert_eq!(ctx.response.headers.get_str("x-filtered"), Some("yes"));
        let mut chunk = bytes::Bytes::from_static(b"denied");
        run.body_filter(&mut ctx, &mut chunk, false);
        assert_eq!(&chunk[..], b"DENIED");
        let mut last = bytes::Bytes::new();
        run.body_filter(&mut ctx, &mut last, true);
        assert_eq!(&last[..], b"!");
        let before = LOGGED.load(std::sync::atomic::Ordering::SeqCst);
        run.log(&mut ctx);
        assert_eq!(LOGGED.load(std::sync::atomic::Ordering::SeqCst), before + 1);
    }
}
