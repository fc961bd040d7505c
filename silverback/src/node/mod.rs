//! A running node: its config source, the proxy workers, the Admin and status APIs, and the
//! task that keeps the proxy's snapshot in step with the store.
//!
//! Threads: proxy workers run their own event loops (see `silverback_proxy::worker`); the
//! control runtime runs everything else (Admin API, status API, DNS, config rebuilds, signals),
//! so control work never competes with a worker's event loop.

mod admin;
mod counters;
mod oauth2;
mod source;

use crate::cli::instance::{listeners_file, pid_file, running_pid, write_atomic};
use silverback_balancer::{Dns, Registry};
use silverback_config::Settings;
use silverback_plugins::Runtime;
use silverback_proxy::{Proxy, ProxySettings, Reconfigurer, Shared, Snapshot, Update};
pub use source::Source;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::signal::unix::{SignalKind, signal};

/// How long queued log entries may take to be delivered when the node stops.
const LOG_DRAIN_GRACE: Duration = Duration::from_secs(5);

/// How long in-flight requests may take to finish after a stop signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("Silverback is already running in {0} (pid {1})")]
    AlreadyRunning(String, i32),
    #[error("cannot create prefix {path}: {source}; set --prefix or SILVERBACK_PREFIX")]
    Prefix {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot start the control runtime: {0}")]
    Runtime(std::io::Error),
    #[error("{0}")]
    Dns(#[from] silverback_balancer::DnsError),
    #[error("invalid declarative config {path}:\n  {lines}")]
    Config { path: String, lines: String },
    #[error("config store {path}: {reason}")]
    Store { path: String, reason: String },
    #[error("{0}")]
    Snapshot(#[from] silverback_proxy::SnapshotError),
    #[error("{0}")]
    Proxy(#[from] silverback_proxy::StartError),
    #[error("{0}")]
    Tls(#[from] silverback_proxy::tls::TlsError),
    #[error("cannot listen on {addr} ({what}): {source}")]
    Listen {
        what: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
}

/// Runs a node until SIGTERM, SIGINT or SIGQUIT; SIGHUP reloads its config.
pub fn run(settings: Settings) -> Result<(), NodeError> {
    let prefix = settings.prefix.clone();
    if let Some(pid) = running_pid(&prefix) {
        return Err(NodeError::AlreadyRunning(
            prefix.display().to_string(),
            pid.as_raw(),
        ));
    }
    std::fs::create_dir_all(&prefix).map_err(|source| NodeError::Prefix {
        path: prefix.display().to_string(),
        source,
    })?;
    silverback_plugins::counters::schema::set_database_off(
        settings.database == silverback_config::Database::Off,
    );
    let control = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("silverback-control")
        .enable_all()
        .build()
        .map_err(NodeError::Runtime)?;
    let registry = Registry::new(Dns::new(&settings.dns, control.handle().clone())?);
    let shared = Shared::new(
        ProxySettings::from_settings(&settings),
        registry.clone(),
        settings.worker_threads,
    );
    // Before any plugin is built.
    silverback_plugins::logs::set_syslog_socket(settings.syslog_socket.clone());
    // Before the first snapshot compiles its upstream TLS configurations.
    silverback_proxy::tls::upstream::init(&settings.tls)?;
    silverback_plugins::tracing_settings::configure(
        &settings.tracing_instrumentations,
        settings.tracing_sampling_rate,
        shared.node_id.to_string(),
    );
    let source = Arc::new(control.block_on(Source::open(&settings))?);
    let runtime = plugin_runtime(&source, control.handle(), settings.mem_cache_size);
    if let Source::Sqlite(db) = &*source {
        shared.set_datastore_probe(datastore_probe(db.clone()));
    }
    shared.set_runtime(runtime.clone());
    control.block_on(async {
        if source.is_empty_file() {
            tracing::warn!("database = off and no declarative_config: serving an empty config");
            return Ok(());
        }
        let config = source.read().await?;
        let v1_paths = shared.settings.path_handling_v1;
        let build = config.clone();
        let snap = tokio::task::spawn_blocking(move || Snapshot::build(build, v1_paths, &registry))
            .await
            .map_err(|e| NodeError::Runtime(std::io::Error::other(e)))??;
        tracing::info!(hash = config.hash(), "{} loaded", source.what());
        source.adopt(config).await;
        drop(shared.install(snap));
        Ok::<_, NodeError>(())
    })?;
    let reconfigurer = Reconfigurer::spawn(shared.clone(), control.handle());

    let proxy = Proxy::start(&settings, shared.clone(), SHUTDOWN_GRACE)?;
    let (admin_addrs, admin_tls_addrs) = match &*source {
        Source::File { memory, .. } => admin::serve(
            &settings,
            memory.clone(),
            &shared,
            reconfigurer.clone(),
            runtime.clone(),
            control.handle(),
        )?,
        Source::Sqlite(db) => admin::serve(
            &settings,
            db.clone(),
            &shared,
            reconfigurer.clone(),
            runtime.clone(),
            control.handle(),
        )?,
    };
    let (status_addrs, status_tls_addrs) = serve_status(&settings, &shared, control.handle())?;
    let listening = Listening {
        proxy: proxy.addrs.clone(),
        proxy_ssl: proxy.tls_addrs.clone(),
        stream: proxy.stream_addrs.clone(),
        admin: admin_addrs,
        admin_ssl: admin_tls_addrs,
        status: status_addrs,
        status_ssl: status_tls_addrs,
    };
    write_instance_files(&settings, &listening)?;
    listening.log();
    tracing::info!(
        workers = settings.worker_threads,
        "Silverback {} started",
        env!("CARGO_PKG_VERSION")
    );

    control.block_on(wait_for_signals(&source, &reconfigurer));
    tracing::info!("stopping: letting in-flight requests finish");
    proxy.stop();
    // Log entries of the last requests are still on their way to files and log servers.
    let pending = silverback_plugins::logs::wait_drained(LOG_DRAIN_GRACE);
    if pending > 0 {
        tracing::warn!(entries = pending, "stopping with log entries undelivered");
    }
    let _ = std::fs::remove_file(pid_file(&prefix));
    let _ = std::fs::remove_file(listeners_file(&prefix));
    tracing::info!("Silverback stopped");
    Ok(())
}

/// The state plugins write while serving: proxy-cache's responses (in memory, bounded by
/// `mem_cache_size`) and oauth2's codes and tokens. With SQLite, oauth2 codes and tokens are rows of the
/// database (they survive restarts; rows past their ttl are purged every
/// [`oauth2::PURGE_EVERY`]), and so are the `cluster` rate-limiting counters; DB-less, tokens
/// live in memory and are lost on restart, and there are no cluster counters.
fn plugin_runtime(
    source: &Source,
    runtime: &tokio::runtime::Handle,
    mem_cache_size: u64,
) -> Arc<Runtime> {
    match source {
        Source::File { .. } => {
            Arc::new(Runtime::in_memory().with_response_cache_size(mem_cache_size))
        }
        Source::Sqlite(db) => {
            let store = Arc::new(oauth2::StoreOAuth2::new(db.clone()));
            let purging = store.clone();
            runtime.spawn(async move {
                loop {
                    tokio::time::sleep(oauth2::PURGE_EVERY).await;
                    match purging.purge_expired().await {
                        Ok(0) => {}
                        Ok(n) => {
                            tracing::debug!(rows = n, "expired oauth2 codes and tokens purged")
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "purging expired oauth2 tokens failed")
                        }
                    }
                }
            });
            counters::spawn_purge(db.clone(), runtime);
            Arc::new(
                Runtime::new(store)
                    .with_response_cache_size(mem_cache_size)
                    .with_counters(Arc::new(counters::SqliteCounters(db.clone()))),
            )
        }
    }
}

/// Whether the database answers a one-row read, for `kong_datastore_reachable`.
fn datastore_probe<S: silverback_store::Store>(
    store: Arc<S>,
) -> silverback_proxy::state::DatastoreProbe {
    Arc::new(move || {
        let store = store.clone();
        Box::pin(async move {
            let Some(schema) = silverback_model::entities::schema("services") else {
                return true;
            };
            let q = silverback_store::ListQuery {
                size: 1,
                ..Default::default()
            };
            store.list(schema, &q).await.is_ok()
        })
    })
}

/// Binds every `status_listen` address; `ssl` ones serve over TLS with `status_ssl_cert`.
/// Returns the plain and the TLS addresses.
fn serve_status(
    settings: &Settings,
    shared: &Arc<Shared>,
    runtime: &tokio::runtime::Handle,
) -> Result<(Vec<SocketAddr>, Vec<SocketAddr>), NodeError> {
    let mut addrs = Vec::new();
    let mut tls_addrs = Vec::new();
    for l in &settings.status_listen {
        let listen_error = |source| NodeError::Listen {
            what: "status",
            addr: l.addr,
            source,
        };
        let listener = silverback_proxy::listener::bind_one(l.addr, l.backlog.unwrap_or(511))
            .map_err(listen_error)?;
        let local = listener.local_addr().unwrap_or(l.addr);
        let shared = shared.clone();
        if l.ssl {
            use silverback_proxy::tls;
            let config = tls::control_config(settings, tls::Listener::Status, l.http2)?;
            let _guard = runtime.enter();
            let listener = tokio::net::TcpListener::from_std(listener).map_err(listen_error)?;
            let incoming = tls::spawn_handshakes(listener, config);
            runtime.spawn(silverback_proxy::status::serve_tls(incoming, shared));
            tls_addrs.push(local);
            continue;
        }
        addrs.push(local);
        runtime.spawn(async move {
            match tokio::net::TcpListener::from_std(listener) {
                Ok(l) => silverback_proxy::status::serve(l, shared).await,
                Err(e) => tracing::error!(error = %e, "status listener failed"),
            }
        });
    }
    Ok((addrs, tls_addrs))
}

/// The addresses the node listens on, plain and TLS, as `listeners.json` records them.
struct Listening {
    proxy: Vec<SocketAddr>,
    proxy_ssl: Vec<SocketAddr>,
    stream: Vec<SocketAddr>,
    admin: Vec<SocketAddr>,
    admin_ssl: Vec<SocketAddr>,
    status: Vec<SocketAddr>,
    status_ssl: Vec<SocketAddr>,
}

impl Listening {
    fn lists(&self) -> [(&'static str, &[SocketAddr]); 7] {
        [
            ("proxy", &self.proxy),
            ("proxy_ssl", &self.proxy_ssl),
            ("stream", &self.stream),
            ("admin", &self.admin),
            ("admin_ssl", &self.admin_ssl),
            ("status", &self.status),
            ("status_ssl", &self.status_ssl),
        ]
    }

    fn log(&self) {
        for (what, addrs) in self.lists() {
            let (name, tls) = match what.strip_suffix("_ssl") {
                Some(n) => (n, " (TLS)"),
                None => (what, ""),
            };
            for a in addrs {
                tracing::info!("{name} listening on {a}{tls}");
            }
        }
    }
}

fn write_instance_files(settings: &Settings, listening: &Listening) -> Result<(), NodeError> {
    let prefix = &settings.prefix;
    let listeners: serde_json::Map<String, serde_json::Value> = listening
        .lists()
        .into_iter()
        .map(|(name, addrs)| {
            let list = addrs.iter().map(|a| a.to_string().into()).collect();
            (name.to_string(), serde_json::Value::Array(list))
        })
        .collect();
    let listeners = serde_json::Value::Object(listeners);
    let write = |path: std::path::PathBuf, content: String| {
        write_atomic(&path, &content).map_err(|source| NodeError::Write {
            path: path.display().to_string(),
            source,
        })
    };
    // The pid file first: whoever sees the listeners file may look for the pid at once.
    write(pid_file(prefix), format!("{}\n", std::process::id()))?;
    write(listeners_file(prefix), listeners.to_string())
}

/// Reloads on SIGHUP; reopens log files on SIGUSR1 (as nginx does after logrotate); returns on
/// SIGTERM, SIGINT or SIGQUIT.
async fn wait_for_signals(source: &Arc<Source>, reconfigurer: &Reconfigurer) {
    let (Ok(mut hup), Ok(mut usr1), Ok(mut term), Ok(mut int), Ok(mut quit)) = (
        signal(SignalKind::hangup()),
        signal(SignalKind::user_defined1()),
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::quit()),
    ) else {
        tracing::error!("cannot install signal handlers");
        return;
    };
    loop {
        tokio::select! {
            _ = hup.recv() => reload(source, reconfigurer).await,
            _ = usr1.recv() => {
                silverback_plugins::logs::request_reopen();
                tracing::info!("SIGUSR1: reopening log files");
            }
            _ = term.recv() => return,
            _ = int.recv() => return,
            _ = quit.recv() => return,
        }
    }
}

/// Re-reads the whole config; one that does not load or compile leaves the running config
/// untouched.
async fn reload(source: &Arc<Source>, reconfigurer: &Reconfigurer) {
    let config = match source.read().await {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("reload rejected, keeping the current config: {e}");
            return;
        }
    };
    match reconfigurer.apply(Update::Replace(config.clone())).await {
        Ok(()) => {
            tracing::info!(hash = config.hash(), "{} reloaded", source.what());
            source.adopt(config).await;
        }
        Err(e) => tracing::error!("reload rejected, keeping the current config: {e}"),
    }
}
