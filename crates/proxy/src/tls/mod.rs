//! TLS, with rustls: certificates from settings and entities ([`certs`]), the listeners'
//! server configuration and per-handshake certificate choice by SNI ([`server`]), the
//! handshake that turns an accepted socket into a [`crate::transport::Stream`] ([`accept`]),
//! and TLS to upstreams ([`upstream`]).

pub mod accept;
pub mod certs;
pub mod server;
pub mod upstream;

pub use accept::{control_config, spawn_handshakes};
pub use certs::Listener;

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("cannot write {path}: {reason}")]
    Write { path: PathBuf, reason: String },
    #[error("{what}: {reason}")]
    Pair { what: String, reason: String },
    #[error("cannot generate a certificate: {0}")]
    Generate(String),
    #[error("{0} already exists.\nWill not overwrite it.")]
    Exists(PathBuf),
    #[error("TLS settings: {0}")]
    Settings(String),
}
