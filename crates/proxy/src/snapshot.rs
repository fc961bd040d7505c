//! The immutable, compiled form of a config: router, per-route settings, services and
//! balancers. Built off the request path and swapped in atomically; a request keeps the snapshot
//! it started with until it ends.

use crate::tls::server::{CertStore, Pairs};
use crate::tls::upstream::UpstreamTls;
use http::HeaderValue;
use silverback_balancer::{Balancer, Registry};
use silverback_model::entities::Sni;
use silverback_model::entities::{Certificate, certified_key};
use silverback_model::entities::{PathHandling, Route, Service, Target, Upstream};
use silverback_model::{Config, Row, RowError};
use silverback_plugins::pdk::EntityRef;
use silverback_plugins::{BUNDLED, Chain, Plugins};
use silverback_router::{NetMatch, RouteSpec, Router};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error(transparent)]
    Row(#[from] RowError),
    #[error("cannot compile router: {0}")]
    Router(#[from] silverback_router::BuildError),
    #[error(transparent)]
    Plugins(#[from] silverback_plugins::PluginBuildError),
}

/// Where a service sends its requests.
#[derive(Debug)]
pub enum ServiceTarget {
    /// The service host names an upstream: balance over its targets.
    Upstream(Arc<Balancer>),
    /// A host name or IP, resolved by DNS when it is a name.
    Host,
}

#[derive(Debug)]
pub struct CompiledService {
    pub id: Uuid,
    pub name: Option<Arc<str>>,
    pub protocol: Arc<str>,
    pub host: Arc<str>,
    /// The address when `host` is an IP literal (no DNS needed).
    pub host_ip: Option<std::net::IpAddr>,
    pub port: u16,
    pub path: Option<Arc<str>>,
    pub retries: u32,
    pub connect_timeout: Duration,
    pub write_timeout: Duration,
    pub read_timeout: Duration,
    /// grpc or grpcs: requests go over HTTP/2.
    pub grpc: bool,
    pub target: ServiceTarget,
    /// The Host header sent to the service host (upstreams have one per address).
    pub host_header: Option<HeaderValue>,
    /// The scheme's default port is 443 (https, grpcs), for upstream addresses' Host headers.
    pub tls_default: bool,
    /// The service as plugins see it.
    pub entity: Arc<EntityRef>,
    /// `https` services: how to do TLS with the upstream.
    pub tls: Option<Arc<UpstreamTls>>,
}

impl CompiledService {
    /// The hashing rule of the service's consistent-hashing upstream.
    pub fn hash_rule(&self) -> Option<&silverback_balancer::HashRule> {
        match &self.target {
            ServiceTarget::Upstream(b) => b.hash_rule(),
            ServiceTarget::Host => None,
        }
    }

    /// The Host header sent upstream when the route does not preserve the client's: the
    /// host, with the port unless it is the scheme's default (Kong's `set_host_header`).
    pub fn host_header(&self, host: &str, port: u16) -> Option<HeaderValue> {
        let default_port = matches!(
            (&*self.protocol, port),
            ("http" | "grpc", 80) | ("https" | "grpcs", 443)
        );
        let host = if host.contains(':') {
            format!("[{host}]")
        } else {
            host.to_string()
        };
        let value = if default_port {
            host
        } else {
            format!("{host}:{port}")
        };
        HeaderValue::from_str(&value).ok()
    }
}

#[derive(Debug)]
pub struct CompiledRoute {
    pub id: Uuid,
    pub name: Option<Arc<str>>,
    /// Only https (and no http) in protocols: plain requests get 426 or a redirect.
    pub https_only: bool,
    pub https_redirect_status_code: u16,
    /// grpc or grpcs in protocols: only gRPC over HTTP/2 is accepted.
    pub grpc: bool,
    /// grpc in protocols (plain gRPC is accepted, not only grpcs).
    pub grpc_plain: bool,
    pub strip_path: bool,
    pub preserve_host: bool,
    pub path_handling: silverback_router::PathHandling,
    pub request_buffering: bool,
    pub response_buffering: bool,
    pub service: Option<Arc<CompiledService>>,
    /// The route as plugins see it.
    pub entity: Arc<EntityRef>,
    /// The plugins that run on this route, resolved by Kong's scope precedence.
    pub chain: Arc<Chain>,
}

/// Counts snapshots so each has its own version (cache keys include it).
static VERSIONS: AtomicU64 = AtomicU64::new(1);

pub struct Snapshot {
    pub version: u64,
    pub config: Arc<Config>,
    pub router: Router,
    /// Indexed like the router's route specs.
    pub routes: Vec<CompiledRoute>,
    /// Plugin instances, chains and the consumer directory.
    pub plugins: Plugins,
    /// The TLS listeners' certificates by SNI.
    pub certificates: CertStore,
    /// Upstream TLS configurations by id, reused by the next snapshot.
    upstream_tls: HashMap<u64, Arc<UpstreamTls>>,
    /// Routes of protocols tcp, tls and tls_passthrough, for `stream_listen`.
    pub streams: crate::stream::StreamRoutes,
    /// One per upstream; those whose upstream and targets did not change are the previous
    /// snapshot's, with their DNS answers and running checks.
    pub balancers: Vec<Arc<Balancer>>,
    /// Where balancers keep what outlives snapshots (DNS, address health).
    pub registry: Arc<Registry>,
    path_handling_v1: bool,
    /// Typed rows this snapshot was compiled from, by id, so the next one re-reads only rows
    /// that changed (unchanged rows are the same `Arc` in the next config).
    typed: Typed,
}

/// A stored row and its typed form.
type TypedRow<T> = (Arc<Row>, Arc<T>);

#[derive(Default)]
struct Typed {
    services: HashMap<Uuid, TypedRow<Service>>,
    routes: HashMap<Uuid, TypedRow<Route>>,
    certificates: HashMap<Uuid, TypedRow<Certificate>>,
    /// Each certificate's parsed pairs, by certificate id.
    pairs: HashMap<Uuid, Arc<Pairs>>,
    /// Per upstream: the rows its balancer was built from.
    upstreams: HashMap<Uuid, BalancerRows>,
}

/// An upstream row and its target rows, to tell whether a balancer can be reused.
struct BalancerRows {
    upstream: Arc<Row>,
    targets: Vec<Arc<Row>>,
    balancer: Arc<Balancer>,
}

/// The typed form of every row of `entity`, reusing `previous` for rows that did not change.
fn typed_rows<T: serde::de::DeserializeOwned>(
    config: &Config,
    entity: &'static str,
    previous: Option<&HashMap<Uuid, TypedRow<T>>>,
) -> Result<Vec<TypedRow<T>>, RowError> {
    config
        .rows(entity)
        .iter()
        .map(|row| {
            let reused = row
                .id()
                .and_then(|id| previous?.get(&id))
                .filter(|(prev, _)| Arc::ptr_eq(prev, row));
            Ok(match reused {
                Some((_, typed)) => (row.clone(), typed.clone()),
                None => (row.clone(), Arc::new(row.typed(entity)?)),
            })
        })
        .collect()
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot")
            .field("version", &self.version)
            .field("hash", &self.config.hash())
            .field("routes", &self.routes.len())
            .finish()
    }
}

impl Snapshot {
    /// Compiles a config. Routes of disabled services are left out, as in Kong; stream routes
    /// go to their own router. `path_handling_v1`: honour routes' `path_handling: v1` (Kong's
    /// `traditional` flavor); otherwise v1 behaves as v0, as in `traditional_compatible`.
    pub fn build(
        config: Arc<Config>,
        path_handling_v1: bool,
        registry: &Arc<Registry>,
    ) -> Result<Snapshot, SnapshotError> {
        Self::compile(config, path_handling_v1, registry, None)
    }

    /// Compiles the next config, reusing what this snapshot compiled for rows that did not
    /// change: an Admin API write pays for the rows it touched, not for the whole config.
    pub fn rebuild(&self, config: Arc<Config>) -> Result<Snapshot, SnapshotError> {
        Self::compile(config, self.path_handling_v1, &self.registry, Some(self))
    }

    fn compile(
        config: Arc<Config>,
        path_handling_v1: bool,
        registry: &Arc<Registry>,
        previous: Option<&Snapshot>,
    ) -> Result<Snapshot, SnapshotError> {
        let mut typed = Typed::default();
        let by_name = compile_balancers(&config, registry, previous, &mut typed.upstreams)?;
        // Kong presents an upstream's client_certificate when the service has none. Read from
        // the rows: the balancers above only parse the upstreams that changed.
        let upstream_client_certs: HashMap<String, Uuid> = config
            .rows("upstreams")
            .iter()
            .filter_map(|row| {
                let fields = row.map();
                let cert = fields.get("client_certificate")?.get("id")?.as_str()?;
                let name = fields.get("name")?.as_str()?;
                Some((name.to_ascii_lowercase(), cert.parse().ok()?))
            })
            .collect();
        let mut plugins = Plugins::build(&config, &BUNDLED, previous.map(|p| &p.plugins))?;
        let certificates = compile_certificates(&config, previous.map(|p| &p.typed), &mut typed)?;
        let certs_by_id: HashMap<Uuid, Certificate> = typed
            .certificates
            .iter()
            .map(|(id, (_, c))| (*id, (**c).clone()))
            .collect();
        let no_tls = HashMap::new();
        let previous_tls = previous.map_or(&no_tls, |p| &p.upstream_tls);
        let mut upstream_tls = HashMap::new();
        let mut services: HashMap<Uuid, (bool, Arc<CompiledService>)> = HashMap::new();
        for (row, s) in typed_rows(&config, "services", previous.map(|p| &p.typed.services))? {
            let mut compiled = compile_service(&s, &row, &by_name);
            if crate::tls::upstream::is_tls_protocol(&s.protocol) {
                let fallback = upstream_client_certs.get(&s.host.to_ascii_lowercase());
                let tls = crate::tls::upstream::for_service(
                    &s,
                    fallback.copied(),
                    &config,
                    &certs_by_id,
                    previous_tls,
                );
                upstream_tls.insert(tls.id, tls.clone());
                compiled.tls = Some(tls);
            }
            services.insert(s.id, (s.enabled, Arc::new(compiled)));
            typed.services.insert(s.id, (row, s));
        }
        let mut specs = Vec::new();
        let mut routes = Vec::new();
        let mut streams = crate::stream::StreamRoutesBuilder::default();
        for (row, r) in typed_rows(&config, "routes", previous.map(|p| &p.typed.routes))? {
            let id = r.id;
            let service = match r.service {
                Some(fk) => match services.get(&fk.id) {
                    Some((true, s)) => Some(Some(s.clone())),
                    // A disabled service takes its routes out of the router.
                    _ => None,
                },
                None => Some(None),
            };
            if r.is_stream() {
                if let Some(service) = service {
                    streams.add(route_spec(&r), &r, service);
                }
            } else if let Some(service) = service {
                specs.push(route_spec(&r));
                let chain = plugins.chain(Some(r.id), service.as_ref().map(|s| s.id));
                routes.push(compile_route(&r, &row, service, chain, path_handling_v1));
            }
            typed.routes.insert(id, (row, r));
        }
        let router = match previous {
            Some(p) => p.router.rebuild(&specs)?,
            None => Router::build(&specs)?,
        };
        let mut balancers: Vec<Arc<Balancer>> = typed
            .upstreams
            .values()
            .map(|b| b.balancer.clone())
            .collect();
        balancers.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(Snapshot {
            version: VERSIONS.fetch_add(1, Ordering::Relaxed),
            config,
            router,
            routes,
            plugins,
            certificates,
            upstream_tls,
            streams: streams.build(),
            balancers,
            registry: registry.clone(),
            path_handling_v1,
            typed,
        })
    }

    pub fn empty(registry: &Arc<Registry>) -> Snapshot {
        // An empty config always compiles.
        match Snapshot::build(Arc::new(Config::empty()), false, registry) {
            Ok(s) => s,
            Err(e) => unreachable!("empty config failed to compile: {e}"),
        }
    }

    /// The balancer of an upstream, by id.
    pub fn balancer(&self, upstream: Uuid) -> Option<&Arc<Balancer>> {
        self.typed.upstreams.get(&upstream).map(|b| &b.balancer)
    }
}

/// A balancer per upstream, by lower-case name; the previous snapshot's when neither the
/// upstream row nor any of its target rows changed.
fn compile_balancers(
    config: &Config,
    registry: &Arc<Registry>,
    previous: Option<&Snapshot>,
    built: &mut HashMap<Uuid, BalancerRows>,
) -> Result<HashMap<String, Arc<Balancer>>, SnapshotError> {
    let mut target_rows: HashMap<Uuid, Vec<Arc<Row>>> = HashMap::new();
    for row in config.rows("targets") {
        let upstream = row
            .map()
            .get("upstream")
            .and_then(|u| u.get("id"))
            .and_then(|id| id.as_str())
            .and_then(|id| id.parse().ok());
        if let Some(u) = upstream {
            target_rows.entry(u).or_default().push(row.clone());
        }
    }
    let mut by_name = HashMap::new();
    for row in config.rows("upstreams") {
        let Some(id) = row.id() else { continue };
        let targets = target_rows.remove(&id).unwrap_or_default();
        let reused = previous
            .and_then(|p| p.typed.upstreams.get(&id))
            .filter(|b| {
                Arc::ptr_eq(&b.upstream, row)
                    && b.targets.len() == targets.len()
                    && b.targets
                        .iter()
                        .zip(&targets)
                        .all(|(a, b)| Arc::ptr_eq(a, b))
            })
            .map(|b| b.balancer.clone());
        let balancer = match reused {
            Some(b) => b,
            None => {
                let upstream: Upstream = row.typed("upstreams")?;
                let typed: Vec<Target> = targets
                    .iter()
                    .map(|t| t.typed("targets"))
                    .collect::<Result<_, _>>()?;
                let refs: Vec<&Target> = typed.iter().collect();
                Arc::new(Balancer::new(&upstream, &refs, registry))
            }
        };
        by_name.insert(balancer.name.to_ascii_lowercase(), balancer.clone());
        built.insert(
            id,
            BalancerRows {
                upstream: row.clone(),
                targets,
                balancer,
            },
        );
    }
    Ok(by_name)
}

fn compile_service(
    s: &Service,
    row: &Arc<Row>,
    balancers: &HashMap<String, Arc<Balancer>>,
) -> CompiledService {
    let target = match balancers.get(&s.host.to_ascii_lowercase()) {
        Some(b) => ServiceTarget::Upstream(b.clone()),
        None => ServiceTarget::Host,
    };
    let mut svc = CompiledService {
        id: s.id,
        name: s.name.as_deref().map(Into::into),
        protocol: s.protocol.as_str().into(),
        host_ip: s
            .host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .ok(),
        host: s.host.as_str().into(),
        port: s.port,
        path: s.path.as_deref().map(Into::into),
        retries: s.retries,
        connect_timeout: Duration::from_millis(s.connect_timeout),
        write_timeout: Duration::from_millis(s.write_timeout),
        read_timeout: Duration::from_millis(s.read_timeout),
        grpc: matches!(s.protocol.as_str(), "grpc" | "grpcs"),
        target,
        host_header: None,
        tls_default: matches!(s.protocol.as_str(), "https" | "grpcs"),
        entity: Arc::new(EntityRef {
            id: s.id,
            name: s.name.clone(),
            row: row.clone(),
        }),
        tls: None,
    };
    svc.host_header = svc.host_header(&svc.host, svc.port);
    svc
}

/// The certificates by SNI name. Pairs are parsed once per certificate row and reused while
/// the row is unchanged; a pair that does not load (validation makes that rare) is logged and
/// left out.
fn compile_certificates(
    config: &Config,
    previous: Option<&Typed>,
    typed: &mut Typed,
) -> Result<CertStore, SnapshotError> {
    for (row, c) in
        typed_rows::<Certificate>(config, "certificates", previous.map(|p| &p.certificates))?
    {
        let reused = previous
            .and_then(|p| Some((p.certificates.get(&c.id)?, p.pairs.get(&c.id)?)))
            .filter(|((prev, _), _)| Arc::ptr_eq(prev, &row))
            .map(|(_, pairs)| pairs.clone());
        let pairs = reused.unwrap_or_else(|| {
            let mut keys = Vec::new();
            let alt = c.cert_alt.as_deref().zip(c.key_alt.as_deref());
            for (cert, key) in std::iter::once((c.cert.as_str(), c.key.as_str())).chain(alt) {
                match certified_key(cert, key) {
                    Ok(k) => keys.push(Arc::new(k)),
                    Err(e) => {
                        tracing::error!(certificate = %c.id, error = %e, "cannot load certificate")
                    }
                }
            }
            Arc::new(Pairs::from_keys(keys))
        });
        typed.pairs.insert(c.id, pairs);
        typed.certificates.insert(c.id, (row, c));
    }
    let mut by_name = HashMap::new();
    for sni in config.typed::<Sni>("snis")? {
        if let Some(pairs) = typed.pairs.get(&sni.certificate.id) {
            by_name.insert(sni.name.to_ascii_lowercase(), pairs.clone());
        }
    }
    Ok(CertStore::new(by_name))
}

fn route_spec(r: &Route) -> RouteSpec {
    let nets = |v: &Option<Vec<silverback_model::entities::NetEndpoint>>| -> Vec<NetMatch> {
        v.iter()
            .flatten()
            .map(|n| NetMatch {
                ip: n.ip.as_deref().and_then(|ip| {
                    ip.parse::<ipnet::IpNet>()
                        .ok()
                        .or_else(|| ip.parse::<std::net::IpAddr>().ok().map(Into::into))
                }),
                port: n.port,
            })
            .collect()
    };
    RouteSpec {
        id: r.id,
        methods: r.methods.clone().unwrap_or_default(),
        hosts: r.hosts.clone().unwrap_or_default(),
        paths: r.paths.clone().unwrap_or_default(),
        headers: r.headers.clone().unwrap_or_default().into_iter().collect(),
        snis: r.snis.clone().unwrap_or_default(),
        sources: nets(&r.sources),
        destinations: nets(&r.destinations),
        regex_priority: r.regex_priority,
    }
}

fn compile_route(
    r: &Route,
    row: &Arc<Row>,
    service: Option<Arc<CompiledService>>,
    chain: Arc<Chain>,
    path_handling_v1: bool,
) -> CompiledRoute {
    CompiledRoute {
        id: r.id,
        https_only: r.has_protocol("https") && !r.has_protocol("http"),
        https_redirect_status_code: r.https_redirect_status_code,
        grpc: r.has_protocol("grpc") || r.has_protocol("grpcs"),
        grpc_plain: r.has_protocol("grpc"),
        strip_path: r.strip_path,
        preserve_host: r.preserve_host,
        path_handling: match r.path_handling {
            PathHandling::V1 if path_handling_v1 => silverback_router::PathHandling::V1,
            _ => silverback_router::PathHandling::V0,
        },
        request_buffering: r.request_buffering,
        response_buffering: r.response_buffering,
        name: r.name.as_deref().map(Into::into),
        service,
        entity: Arc::new(EntityRef {
            id: r.id,
            name: r.name.clone(),
            row: row.clone(),
        }),
        chain,
    }
}
