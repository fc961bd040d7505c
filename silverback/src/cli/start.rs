//! `silverback start`: runs the gateway in the foreground until SIGTERM/SIGINT/SIGQUIT, reloading
//! its config on SIGHUP.

use super::instance::{listeners_file, pid_file, running_pid, write_atomic};
use super::{Common, load_settings};
use silverback_balancer::Dns;
use silverback_config::{Database, Settings};
use silverback_plugins::registry::BUNDLED;
use silverback_proxy::{Proxy, ProxySettings, Shared, Snapshot};
use silverback_store::Store;
use silverback_store::off::Declarative;
use silverback_store::sqlite::Sqlite;
use std::sync::Arc;
use std::time::Duration;
use tokio::signal::unix::{SignalKind, signal};

/// How long in-flight requests may take to finish after a stop signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

pub fn run(common: &Common) -> i32 {
    let settings = match load_settings(common) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("Error: {e}");
            return 1;
        }
    };
    init_logging(&settings);
    for w in &settings.warnings {
        tracing::warn!("{w}");
    }
    match start(settings) {
        Ok(()) => 0,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("Error: {e}");
            1
        }
    }
}

fn init_logging(settings: &Settings) {
    let filter = tracing_subscriber::EnvFilter::new(format!(
        "{},hyper=warn,h2=warn,hickory_resolver=warn,hickory_proto=warn",
        settings.log_level.as_filter()
    ));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

#[derive(Debug, thiserror::Error)]
enum StartError {
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
    #[error("cannot listen on {addr}: {source}")]
    Status {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
}

fn start(settings: Settings) -> Result<(), StartError> {
    let prefix = settings.prefix.clone();
    if let Some(pid) = running_pid(&prefix) {
        return Err(StartError::AlreadyRunning(
            prefix.display().to_string(),
            pid.as_raw(),
        ));
    }
    std::fs::create_dir_all(&prefix).map_err(|source| StartError::Prefix {
        path: prefix.display().to_string(),
        source,
    })?;
    // Control work (config loads, DNS, status API, signals) runs apart from the proxy workers.
    let control = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("silverback-control")
        .enable_all()
        .build()
        .map_err(StartError::Runtime)?;
    let dns = Dns::system(control.handle().clone())?;
    let shared = Shared::new(
        ProxySettings::from_settings(&settings),
        dns,
        settings.worker_threads,
    );
    let store = Arc::new(match settings.database {
        Database::Off => Source::File(Declarative {
            path: settings.declarative_config.clone(),
            plugins: &*BUNDLED,
        }),
        Database::Sqlite => Source::Sqlite(control.block_on(open_sqlite(&settings))?),
    });
    control.block_on(async {
        match &*store {
            Source::File(d) if d.path.is_none() => {
                tracing::warn!("database = off and no declarative_config: serving an empty config");
            }
            _ => {
                let snap = load_snapshot(&store, &shared).await?;
                tracing::info!(hash = snap.config.hash(), "{} loaded", store.what());
                shared.install(snap);
            }
        }
        Ok::<_, StartError>(())
    })?;

    let proxy = Proxy::start(&settings, shared.clone(), SHUTDOWN_GRACE)?;
    let mut status_addrs = Vec::new();
    for l in &settings.status_listen {
        let std_listener = silverback_proxy::listener::bind_one(l.addr, l.backlog.unwrap_or(511))
            .map_err(|source| StartError::Status {
            addr: l.addr,
            source,
        })?;
        if let Ok(a) = std_listener.local_addr() {
            status_addrs.push(a);
        }
        let shared = shared.clone();
        control.spawn(async move {
            match tokio::net::TcpListener::from_std(std_listener) {
                Ok(l) => silverback_proxy::status::serve(l, shared).await,
                Err(e) => tracing::error!(error = %e, "status listener failed"),
            }
        });
    }
    write_instance_files(&settings, &proxy, &status_addrs)?;
    for a in &proxy.addrs {
        tracing::info!("proxy listening on {a}");
    }
    for a in &status_addrs {
        tracing::info!("status listening on {a}");
    }
    tracing::info!(
        workers = settings.worker_threads,
        "Silverback {} started",
        env!("CARGO_PKG_VERSION")
    );

    control.block_on(wait_for_signals(&store, &shared));
    tracing::info!("stopping: letting in-flight requests finish");
    proxy.stop();
    let _ = std::fs::remove_file(pid_file(&prefix));
    let _ = std::fs::remove_file(listeners_file(&prefix));
    tracing::info!("Silverback stopped");
    Ok(())
}

/// Where the config comes from: the declarative file (database = off) or the SQLite store.
enum Source {
    File(Declarative),
    Sqlite(Sqlite),
}

impl Source {
    /// For log lines: what was (re)loaded.
    fn what(&self) -> &'static str {
        match self {
            Source::File(_) => "declarative config",
            Source::Sqlite(_) => "database config",
        }
    }

    async fn read(&self) -> Result<Arc<silverback_model::Config>, StartError> {
        match self {
            Source::File(d) => d.read().map(Arc::new).map_err(|e| StartError::Config {
                path: d
                    .path
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
                lines: match &e {
                    silverback_store::StoreError::Declarative(d) => d.lines().join("\n  "),
                    other => other.to_string(),
                },
            }),
            Source::Sqlite(db) => db.load().await.map_err(|e| store_error(db.path(), e)),
        }
    }
}

fn store_error(path: &std::path::Path, e: impl std::fmt::Display) -> StartError {
    StartError::Store {
        path: path.display().to_string(),
        reason: e.to_string(),
    }
}

/// Opens the SQLite store and brings its schema up to date: the first start creates it, and an
/// upgrade applies its migrations (Kong asks for `kong migrations` first; an embedded store has
/// no other node to coordinate with).
async fn open_sqlite(settings: &Settings) -> Result<Sqlite, StartError> {
    let path = &settings.sqlite_path;
    if settings.declarative_config.is_some() {
        tracing::warn!(
            "database = sqlite: declarative_config is not read (use 'silverback config db_import')"
        );
    }
    let db = Sqlite::open(path).await.map_err(|e| store_error(path, e))?;
    let applied = db.migrate().await.map_err(|e| store_error(path, e))?;
    if !applied.is_empty() {
        tracing::info!(path = %path.display(), migrations = ?applied, "database schema migrated");
    }
    Ok(db)
}

/// Loads the store's config and compiles it, off the proxy workers.
async fn load_snapshot(store: &Arc<Source>, shared: &Shared) -> Result<Snapshot, StartError> {
    let v1_paths = shared.settings.path_handling_v1;
    let config = store.read().await?;
    let snap = tokio::task::spawn_blocking(move || Snapshot::build(config, v1_paths))
        .await
        .map_err(|e| StartError::Runtime(std::io::Error::other(e)))??;
    Ok(snap)
}

fn write_instance_files(
    settings: &Settings,
    proxy: &Proxy,
    status: &[std::net::SocketAddr],
) -> Result<(), StartError> {
    let prefix = &settings.prefix;
    let listeners = serde_json::json!({
        "proxy": proxy.addrs.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
        "status": status.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
    });
    let write = |path: std::path::PathBuf, content: String| {
        write_atomic(&path, &content).map_err(|source| StartError::Write {
            path: path.display().to_string(),
            source,
        })
    };
    write(listeners_file(prefix), listeners.to_string())?;
    write(pid_file(prefix), format!("{}\n", std::process::id()))
}

/// Reloads on SIGHUP; returns on SIGTERM, SIGINT or SIGQUIT.
async fn wait_for_signals(store: &Arc<Source>, shared: &Arc<Shared>) {
    let (Ok(mut hup), Ok(mut term), Ok(mut int), Ok(mut quit)) = (
        signal(SignalKind::hangup()),
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::quit()),
    ) else {
        tracing::error!("cannot install signal handlers");
        return;
    };
    loop {
        tokio::select! {
            _ = hup.recv() => reload(store, shared).await,
            _ = term.recv() => return,
            _ = int.recv() => return,
            _ = quit.recv() => return,
        }
    }
}

/// A bad file leaves the running config untouched.
async fn reload(store: &Arc<Source>, shared: &Arc<Shared>) {
    match load_snapshot(store, shared).await {
        Ok(snap) => {
            let hash = snap.config.hash().to_string();
            shared.install(snap);
            tracing::info!(hash, "{} reloaded", store.what());
        }
        Err(e) => tracing::error!("reload rejected, keeping the current config: {e}"),
    }
}
