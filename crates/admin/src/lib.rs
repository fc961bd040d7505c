//! Kong's Admin API over a Silverback config [`Store`], so that Kong's clients (curl scripts,
//! decK, go-kong) work unchanged.
//!
//! The binary builds an [`AdminState`] (store, plugin schemas, node information, optional admin
//! token, a [`ConfigSink`] that receives every committed change, a status closure), turns it
//! into an axum [`Router`](axum::Router) with [`router`], and serves it with [`serve`]:
//!
//! ```ignore
//! let state = AdminState { admin_token, sink, status, ..AdminState::new(store, NodeInfo::new(conf)) };
//! serve(listener, router(state)).await?;
//! ```
//!
//! Modules, one concern each: [`table`] (which URL names map to which entity schemas),
//! [`router`] (paths and methods to endpoints), [`body`] and [`coerce`] (request bodies),
//! [`dao`] (reads, writes, merges on the store), [`entities`] (the generated entity endpoints),
//! [`certificates`] (their SNI list), [`query`] (pagination and tag filters), [`errors`] (Kong's
//! error bodies), [`node`], [`schemas`], [`tags`], [`dbless`] (`/config`), [`auth`], and the
//! plugins' own endpoints ([`proxy_cache`]), and the upstreams' health ([`upstreams`]).

pub mod auth;
pub mod body;
pub mod certificates;
pub mod coerce;
pub mod dao;
pub mod dbless;
pub mod entities;
pub mod errors;
pub mod node;
pub mod proxy_cache;
pub mod query;
pub mod response;
pub mod router;
pub mod schemas;
pub mod state;
pub mod table;
pub mod tags;
pub mod upstreams;

pub use errors::AdminError;
pub use state::{
    AdminState, ConfigSink, NoBalancers, NoSink, NodeInfo, PluginInfo, StatusFn, TargetHealth,
    UpstreamHealth, is_secret_key, plugin_infos, redact_configuration, system_hostname,
};

use silverback_store::Store;
use std::sync::Arc;

/// The Admin API as an axum router (every path is resolved by [`router::handle`]).
pub fn router<S: Store>(state: AdminState<S>) -> axum::Router {
    let state = Arc::new(state);
    axum::Router::new().fallback(move |req: axum::extract::Request| {
        let state = state.clone();
        async move { router::handle(state, req).await }
    })
}

/// Serves the router on a bound listener until the task is dropped or the listener fails.
pub async fn serve(listener: tokio::net::TcpListener, router: axum::Router) -> std::io::Result<()> {
    axum::serve(listener, router).await
}

/// Connections whose TLS handshake is done, as an `ssl` listener hands them over.
pub struct TlsIncoming {
    pub connections: tokio::sync::mpsc::Receiver<(
        tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
        std::net::SocketAddr,
    )>,
    pub local: std::net::SocketAddr,
}

impl axum::serve::Listener for TlsIncoming {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.connections.recv().await {
            Some(c) => c,
            // The acceptor is gone: nothing more will come.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

/// Serves the Admin API over TLS (an `ssl` admin listener).
pub async fn serve_tls(incoming: TlsIncoming, router: axum::Router) -> std::io::Result<()> {
    axum::serve(incoming, router).await
}

/// Like [`serve`], stopping gracefully when `shutdown` completes.
pub async fn serve_until(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}
