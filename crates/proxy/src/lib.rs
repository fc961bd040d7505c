//! Silverback's data plane.
//!
//! - [`snapshot`]: the compiled, immutable form of a config, swapped atomically on changes;
//! - [`reconfigure`]: folds store changes into the config and swaps in the next snapshot;
//! - [`worker`]: thread-per-core event loops accepting client connections (HTTP/1.1, h2c, and
//!   both over TLS: [`tls`], [`transport`]);
//! - [`request`]: the life of a proxied request (route → checks → upstream → response);
//! - [`upstream`]: upstream connections (HTTP/1.1 with a keepalive pool, HTTP/2 for gRPC);
//! - [`grpc`]: Kong's gRPC rules and gRPC-form errors;
//! - [`stream`]: the `stream_listen` proxy (tcp, tls, tls_passthrough and udp routes); [`tunnel`]: relaying
//!   bytes both ways (streams, [`websocket`]);
//! - [`error`] / [`response`]: the one place failures become Kong's responses;
//! - [`status`]: the status API; [`metrics`]: its (and the Admin API's) `/metrics`.

pub mod access_log;
pub mod body;
pub mod error;
pub mod grpc;
pub mod http;
pub mod listener;
pub mod metrics;
pub mod reconfigure;
pub mod request;
pub mod response;
pub mod snapshot;
pub mod state;
pub mod status;
pub mod stream;
pub mod tls;
pub mod transport;
pub mod tunnel;
pub mod upstream;
pub mod websocket;
pub mod worker;

pub use reconfigure::{ReconfigureError, Reconfigurer, Update};
pub use snapshot::{Snapshot, SnapshotError};
pub use state::{ProxySettings, Shared};

use silverback_config::Settings;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Bind(#[from] listener::BindError),
    #[error("cannot start worker thread: {0}")]
    Thread(std::io::Error),
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error("cannot create {path}: {source}")]
    TempDir {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}

/// The running proxy: its workers and the addresses they listen on.
pub struct Proxy {
    /// Plain listeners.
    pub addrs: Vec<SocketAddr>,
    /// `ssl` listeners.
    pub tls_addrs: Vec<SocketAddr>,
    /// The `stream_listen` addresses (TCP and UDP), in the configured order.
    pub stream_addrs: Vec<SocketAddr>,
    shutdown: watch::Sender<bool>,
    workers: Vec<std::thread::JoinHandle<()>>,
}

impl Proxy {
    /// Binds every proxy listener once per worker and starts the workers. `ssl` listeners
    /// share one session cache and ticket key, and pick certificates from the current
    /// snapshot.
    pub fn start(
        settings: &Settings,
        shared: Arc<Shared>,
        grace: Duration,
    ) -> Result<Proxy, StartError> {
        let temp = &shared.settings.temp_dir;
        std::fs::create_dir_all(temp).map_err(|source| StartError::TempDir {
            path: temp.clone(),
            source,
        })?;
        let workers = settings.worker_threads.max(1);
        let mut per_worker: Vec<Vec<worker::Listening>> =
            (0..workers).map(|_| Vec::new()).collect();
        let mut addrs = Vec::new();
        let mut tls_addrs = Vec::new();
        let any_ssl = settings.proxy_listen.iter().any(|l| l.ssl)
            || settings.stream_listen.iter().any(|l| l.ssl);
        let tls = if any_ssl {
            let default = tls::certs::default_pairs(
                &settings.prefix,
                tls::certs::Listener::Proxy,
                &settings.tls.ssl_cert,
                "ssl_cert",
            )?;
            let current: Arc<dyn tls::server::CurrentCerts> = shared.clone();
            let resolver = Arc::new(tls::server::SniResolver::new(
                Some(current),
                tls::server::Pairs::from_keys(default),
            ));
            Some((resolver, tls::server::Sessions::new(&settings.tls)?))
        } else {
            None
        };
        for l in &settings.proxy_listen {
            let config = match (&tls, l.ssl) {
                (Some((resolver, sessions)), true) => Some(tls::server::server_config(
                    &settings.tls,
                    resolver.clone(),
                    tls::server::Alpn::http(l.http2),
                    sessions,
                )?),
                _ => None,
            };
            let socks = listener::bind_reuseport(l.addr, workers, l.backlog.unwrap_or(16384))?;
            if let Some(first) = socks.first()
                && let Ok(a) = first.local_addr()
            {
                if l.ssl { &mut tls_addrs } else { &mut addrs }.push(a);
            }
            for (i, socket) in socks.into_iter().enumerate() {
                per_worker[i].push(worker::Listening {
                    socket,
                    tls: config.clone(),
                });
            }
        }
        // tls stream routes terminate with the proxy's certificates, offering no ALPN.
        let stream_tls = match &tls {
            Some((resolver, sessions)) if settings.stream_listen.iter().any(|l| l.ssl) => {
                Some(tls::server::server_config(
                    &settings.tls,
                    resolver.clone(),
                    tls::server::Alpn::None,
                    sessions,
                )?)
            }
            _ => None,
        };
        let (streams, stream_addrs) =
            stream::bind(&settings.stream_listen, workers, stream_tls.as_ref())?;
        let (shutdown, rx) = watch::channel(false);
        let mut handles = Vec::new();
        for (i, (socks, streams)) in per_worker.into_iter().zip(streams).enumerate() {
            let h = worker::spawn(i, socks, streams, shared.clone(), rx.clone(), grace)
                .map_err(StartError::Thread)?;
            handles.push(h);
        }
        Ok(Proxy {
            addrs,
            tls_addrs,
            stream_addrs,
            shutdown,
            workers: handles,
        })
    }

    /// Stops accepting, lets in-flight requests finish (up to the grace period) and joins the
    /// workers.
    pub fn stop(self) {
        let _ = self.shutdown.send(true);
        for w in self.workers {
            let _ = w.join();
        }
    }
}
