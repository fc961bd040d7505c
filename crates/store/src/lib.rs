//! Config storage behind one interface, so the gateway does not care where its config comes from.
//!
//! Backends: [`off::Declarative`] (DB-less: a kong.yml / JSON file is the whole config).

pub mod off;

use silverback_model::Config;
use silverback_model::declarative::DeclarativeError;
use std::future::Future;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Declarative(#[from] DeclarativeError),
}

/// A source of complete configurations.
pub trait Store: Send + Sync + 'static {
    /// Kong's name for the backend (`off`, `postgres`, ...), as shown by `GET /`.
    fn strategy(&self) -> &'static str;

    /// The whole current configuration, validated.
    fn load(&self) -> impl Future<Output = Result<Config, StoreError>> + Send;
}
